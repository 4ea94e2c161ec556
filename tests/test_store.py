"""The Store: database lifecycle, recording to all sinks, cache, ratings, conversations."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmrouter_tui.core.cache import CachedReply, cache_key
from llmrouter_tui.core.conversations import UnknownConversationError
from llmrouter_tui.core.db import MIGRATIONS, SCHEMA_VERSION, migrate
from llmrouter_tui.core.errors import InputError, StorageError, UnknownPromptError
from llmrouter_tui.core.logsinks import PROMPT_FIELDS, RATING_FIELDS, read_csv, read_jsonl
from llmrouter_tui.core.store import Store
from llmrouter_tui.core.types import Attempt, Message, Result, Usage

MODEL = "groq:llama-3.1-8b-instant"
OTHER = "gemini:gemini-2.5-flash"


def make_result(prompt_id: str = "p1", **overrides: Any) -> Result:
    fields: dict[str, Any] = {
        "prompt_id": prompt_id,
        "requested_model": MODEL,
        "model_used": MODEL,
        "provider": "groq",
        "prompt": "hi",
        "response_text": "hello",
        "status": "ok",
        "latency_ms": 120.5,
        "ttft_ms": 40.25,
        "usage": Usage(prompt=3, completion=5, total=8),
        "from_cache": False,
        "fallback_used": False,
        "attempts": [
            Attempt(
                model=MODEL, provider="groq", outcome="ok", status=200, ms=120.0, started_at=1.7e9
            )
        ],
        "created_at": "2025-01-02T03:04:05.678901+00:00",
    }
    fields.update(overrides)
    return Result(**fields)


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "data") as s:
        yield s


def db_count(path: Path, table: str = "requests") -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        conn.close()


# ---- database lifecycle ---------------------------------------------------------------------


def test_creates_layout_and_migrates_from_empty(tmp_path: Path):
    data = tmp_path / "nested" / "data"
    with Store(data) as s:
        assert s.data_dir == data and s.logs_dir == data / "logs"
        assert s.path == data / "llmrouter.db" and s.path.is_file()
        conn = s._conn
        assert conn is not None
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"requests", "attempts", "ratings", "rating_events", "cache_entries"} <= tables
        assert {"conversations", "messages", "model_stats", "latency_hist"} <= tables
        s.record(make_result())
    with Store(data) as again:  # reopen: no re-migration, data kept
        assert again.get_request("p1") is not None
        assert again.stats()["total_prompts"] == 1


def test_empty_file_is_a_new_database(tmp_path: Path):
    (tmp_path / "llmrouter.db").write_bytes(b"")
    with Store(tmp_path) as s:
        assert s.stats()["total_prompts"] == 0


def test_migrations_apply_only_above_current_version(store: Store):
    conn = store._conn
    assert conn is not None
    extra = [*MIGRATIONS, ("CREATE TABLE extra (x INTEGER)",)]
    assert migrate(conn, store.path, extra) == SCHEMA_VERSION + 1
    assert migrate(conn, store.path, extra) == SCHEMA_VERSION + 1  # idempotent
    assert conn.execute("SELECT count(*) FROM extra").fetchone()[0] == 0


def test_failed_migration_rolls_back(store: Store):
    conn = store._conn
    assert conn is not None
    broken = [*MIGRATIONS, ("CREATE TABLE extra (x)", "THIS IS NOT SQL")]
    with pytest.raises(sqlite3.Error):
        migrate(conn, store.path, broken)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("SELECT name FROM sqlite_master WHERE name='extra'").fetchone() is None


def test_refuses_database_from_newer_version(tmp_path: Path):
    Store(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "llmrouter.db")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 3}")
    conn.close()
    with pytest.raises(StorageError) as info:
        Store(tmp_path)
    message = str(info.value)
    assert str(tmp_path / "llmrouter.db") in message
    assert "newer" in message and "Upgrade llmrouter-tui" in message


@pytest.mark.parametrize("content", [os.urandom(8192), b"not a database at all\n" * 20])
def test_corrupt_database_is_reported_and_left_untouched(tmp_path: Path, content: bytes):
    db = tmp_path / "llmrouter.db"
    db.write_bytes(content)
    with pytest.raises(StorageError) as info:
        Store(tmp_path)
    message = str(info.value)
    assert str(db) in message
    assert "Move it aside" in message and "Nothing was deleted" in message
    assert db.read_bytes() == content


def test_unusable_data_dir_is_reported(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError) as info:
        Store(blocker / "data")
    assert str(blocker / "data") in str(info.value)
    assert "writable data directory" in str(info.value)


def test_close_is_idempotent_and_final(tmp_path: Path):
    s = Store(tmp_path)
    s.close()
    s.close()
    with pytest.raises(StorageError, match="closed"):
        s.stats()
    with pytest.raises(StorageError, match="closed"):
        s.record(make_result())


# ---- recording --------------------------------------------------------------------------------


def test_record_writes_sqlite_jsonl_and_csv_once(store: Store):
    result = make_result(
        conversation_id="c1",
        template_id="t1",
        prompt="=cmd|' /C calc'!A0",
        response_text='line one\nline, "two"',
        fallback_used=True,
        finish_reason="stop",
        notice="used fallback",
        source="tui",
        attempts=[
            Attempt(model=OTHER, provider="gemini", outcome="error", status=503, error="x", ms=5),
            Attempt(model=MODEL, provider="groq", outcome="ok", status=200, ms=100.0),
        ],
    )
    assert store.record(result) == []
    assert store.record(result) == []  # a second record of the same id changes nothing

    row = store.get_request("p1")
    assert row is not None
    assert row["response"] == 'line one\nline, "two"'
    assert row["fallback_used"] is True and row["from_cache"] is False
    assert row["total_tokens"] == 8 and row["status"] == "ok" and row["source"] == "tui"
    assert [a["model"] for a in store.request_attempts("p1")] == [OTHER, MODEL]
    assert store.request_attempts("p1")[0]["status"] == 503
    assert store.get_request("nope") is None and store.request_attempts("nope") == []

    rows, warnings = read_jsonl(store.logs_dir / "prompts.jsonl")
    assert warnings == [] and len(rows) == 1
    line = rows[0]
    assert list(line) == list(PROMPT_FIELDS)
    assert line["timestamp"] == result.created_at
    assert line["prompt"] == result.prompt  # JSONL keeps text as is
    assert line["latency_ms"] == 120.5 and line["ttft_ms"] == 40.25
    assert line["tokens_estimated"] is False and line["fallback_used"] is True
    assert [a["outcome"] for a in line["attempts"]] == ["error", "ok"]

    rows, warnings = read_csv(store.logs_dir / "prompts.csv")
    assert warnings == [] and len(rows) == 1
    cells = rows[0]
    assert list(cells) == list(PROMPT_FIELDS)
    assert cells["prompt"] == "'" + result.prompt  # neutralised for spreadsheets
    assert cells["response"] == result.response_text
    assert cells["fallback_used"] == "true" and cells["total_tokens"] == "8"
    assert cells["ttft_ms"] == "40.25" and cells["conversation_id"] == "c1"
    assert [a["model"] for a in json.loads(cells["attempts"])] == [OTHER, MODEL]


def test_failed_request_is_recorded(store: Store):
    failed = make_result(
        "bad",
        model_used=None,
        provider=None,
        response_text="",
        status="error",
        ttft_ms=None,
        usage=Usage(),
        error="every model failed",
        error_kind="all_failed",
    )
    assert store.record(failed) == []
    row = store.get_request("bad")
    assert row is not None and row["status"] == "error" and row["model_used"] is None
    rows, _ = read_csv(store.logs_dir / "prompts.csv")
    assert rows[0]["model_used"] == "" and rows[0]["error"] == "every model failed"


def test_files_are_private_even_with_lax_umask(tmp_path: Path):
    old = os.umask(0)
    try:
        with Store(tmp_path / "d") as s:
            s.record(make_result())
            s.rate("p1", 5)
    finally:
        os.umask(old)
    logs = tmp_path / "d" / "logs"
    for name in ("prompts.jsonl", "prompts.csv", "ratings.jsonl", "ratings.csv"):
        assert stat.S_IMODE((logs / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE((tmp_path / "d" / "llmrouter.db").stat().st_mode) == 0o600


def test_failing_sink_warns_keeps_reply_and_recovers(store: Store):
    jsonl = store.logs_dir / "prompts.jsonl"
    assert store.record(make_result("p1")) == []
    jsonl.rename(store.logs_dir / "moved.jsonl")
    jsonl.mkdir()  # writing to a directory fails even as root

    warnings = store.record(make_result("p2"))
    assert len(warnings) == 1
    assert warnings[0].startswith(f"could not write {jsonl}: [Errno 21]")
    assert warnings[0].endswith("the reply was kept")
    assert store.sink_warnings == warnings
    assert store.get_request("p2") is not None  # SQLite still has it
    assert len(read_csv(store.logs_dir / "prompts.csv")[0]) == 2

    jsonl.rmdir()
    assert store.record(make_result("p3")) == []
    rows, problems = read_jsonl(jsonl)
    assert [r["prompt_id"] for r in rows] == ["p3"] and problems == []
    assert db_count(store.path) == 3


def test_csv_sink_recovers_with_a_fresh_header(store: Store):
    csv_path = store.logs_dir / "prompts.csv"
    store.record(make_result("p1"))
    csv_path.unlink()
    csv_path.mkdir()
    assert len(store.record(make_result("p2"))) == 1
    csv_path.rmdir()
    assert store.record(make_result("p3")) == []
    rows, problems = read_csv(csv_path)
    assert [r["prompt_id"] for r in rows] == ["p3"] and problems == []


def test_database_failure_still_logs_the_reply(store: Store, monkeypatch):
    from llmrouter_tui.core import recorder

    def full_disk(conn: sqlite3.Connection, *args: object, **kwargs: object) -> list[bool]:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(recorder, "write_db", full_disk)
    warnings = store.record(make_result("p1"))
    assert len(warnings) == 1
    assert str(store.path) in warnings[0] and "database or disk is full" in warnings[0]
    assert "the reply was kept" in warnings[0]
    assert [r["prompt_id"] for r in read_jsonl(store.logs_dir / "prompts.jsonl")[0]] == ["p1"]


def test_threads_share_one_store(store: Store):
    def work(tag: str) -> None:
        for i in range(50):
            store.record(make_result(f"{tag}-{i}"))
            store.cache_put(f"{tag}-{i}", reply(), ttl_s=0)
            assert store.cache_get(f"{tag}-{i}") is not None
            store.stats()

    threads = [threading.Thread(target=work, args=(f"t{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.stats()["total_prompts"] == 200
    assert len(read_jsonl(store.logs_dir / "prompts.jsonl")[0]) == 200


def _record_many(data_dir: str, tag: str, count: int, barrier: Any) -> None:
    barrier.wait()
    with Store(Path(data_dir)) as s:
        for i in range(count):
            text = f'reply {i} from {tag}\nwith, "csv" trouble\n' + "x" * (i * 37)
            s.record(make_result(f"{tag}-{i}", response_text=text, prompt=f"-{i}"))


def test_two_processes_append_concurrently(tmp_path: Path):
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(2)
    procs = [
        ctx.Process(target=_record_many, args=(str(tmp_path), tag, 200, barrier))
        for tag in ("a", "b")
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0

    logs = tmp_path / "logs"
    jsonl_rows, jsonl_problems = read_jsonl(logs / "prompts.jsonl")
    csv_rows, csv_problems = read_csv(logs / "prompts.csv")
    assert jsonl_problems == [] and csv_problems == []
    assert (logs / "prompts.csv").read_bytes().count(b"timestamp,prompt_id,") == 1
    expected = {f"{t}-{i}" for t in "ab" for i in range(200)}
    assert {r["prompt_id"] for r in jsonl_rows} == expected
    assert {r["prompt_id"] for r in csv_rows} == expected
    assert len(jsonl_rows) == len(csv_rows) == db_count(tmp_path / "llmrouter.db") == 400
    with Store(tmp_path) as s:
        assert s.stats()["total_prompts"] == 400


# ---- cache --------------------------------------------------------------------------------------


@given(
    model=st.text(max_size=12),
    turns=st.lists(
        st.tuples(st.sampled_from(["user", "assistant"]), st.text(max_size=20)),
        min_size=1,
        max_size=3,
    ),
    system=st.none() | st.text(max_size=12),
    temperature=st.none() | st.floats(min_value=0, max_value=2) | st.integers(0, 2),
    max_tokens=st.none() | st.integers(1, 10**7),
)
def test_cache_key_is_the_sha256_of_sorted_compact_json(
    model, turns, system, temperature, max_tokens
):
    """The hand-written canonical text is exactly json.dumps(sort_keys=True) of the payload."""
    messages = [Message(role, content) for role, content in turns]
    payload = {
        "model": model,
        "messages": [{"role": role, "content": content} for role, content in turns],
        "system": system,
        "temperature": None if temperature is None else float(temperature),
        "max_tokens": max_tokens,
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    expected = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    assert cache_key(model, messages, system, temperature, max_tokens) == expected


def test_cache_key_is_stable_and_canonical():
    messages = [Message("user", "Hello, wörld")]
    key = cache_key("groq:openai/gpt-oss-20b", messages, "Be brief.", 0.7, 256)
    # sha256 of {"max_tokens":256,"messages":[{"content":"Hello, wörld","role":"user"}],
    #            "model":"groq:openai/gpt-oss-20b","system":"Be brief.","temperature":0.7}
    assert key == "de3710227192d9321297828bbdb49bd7fb98c9af672bc96c041b10a5c1076936"
    # Same key from another interpreter (no hash randomisation leaks in).
    code = (
        "from llmrouter_tui.core.cache import cache_key;"
        "from llmrouter_tui.core.types import Message;"
        "print(cache_key('groq:openai/gpt-oss-20b', [Message('user', 'Hello, wörld')],"
        " 'Be brief.', 0.7, 256))"
    )
    env = {
        **os.environ,
        "PYTHONHASHSEED": "123",
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == key
    assert cache_key("m", [{"role": "user", "content": "x"}], None, 1, None) == cache_key(
        "m", [Message("user", "x")], None, 1.0, None
    )
    variants = {
        cache_key("groq:openai/gpt-oss-20b", messages, "Be brief.", 0.7, 256),
        cache_key("groq:other", messages, "Be brief.", 0.7, 256),
        cache_key("groq:openai/gpt-oss-20b", [Message("user", "x")], "Be brief.", 0.7, 256),
        cache_key("groq:openai/gpt-oss-20b", messages, None, 0.7, 256),
        cache_key("groq:openai/gpt-oss-20b", messages, "Be brief.", 0.8, 256),
        cache_key("groq:openai/gpt-oss-20b", messages, "Be brief.", 0.7, None),
    }
    assert len(variants) == 6


def reply(text: str = "cached answer") -> CachedReply:
    return CachedReply(
        text=text,
        finish_reason="stop",
        usage=Usage(prompt=2, completion=3, total=5, estimated=True),
        model=MODEL,
        provider="groq",
    )


def test_cache_get_put_and_expiry(store: Store):
    assert store.cache_get("k", now=1000.0) is None
    store.cache_put("k", reply(), ttl_s=10, now=1000.0)
    assert store.cache_get("k", now=1009.9) == reply()
    assert store.cache_get("k", now=1010.0) is None  # expired
    store.cache_put("k", reply("newer"), ttl_s=10, now=2000.0)  # upsert
    hit = store.cache_get("k", now=2001.0)
    assert hit is not None and hit.text == "newer" and hit.usage.estimated is True
    store.cache_put("forever", reply(), ttl_s=0, now=0.0)
    assert store.cache_get("forever", now=1e12) == reply()
    assert store.cache_get("forever") == reply()  # default clock
    assert store.cache_purge(now=5000.0) == 1
    assert store.cache_get("forever", now=1e12) is not None
    with pytest.raises(InputError, match="ttl"):
        store.cache_put("k", reply(), ttl_s=-1)


def test_cache_survives_reopen(tmp_path: Path):
    with Store(tmp_path) as s:
        s.cache_put("k", reply(), ttl_s=0)
    with Store(tmp_path) as s:
        assert s.cache_get("k") == reply()


# ---- ratings ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, 6, -1, True, False, "5", 4.0, None, [5]])
def test_rating_validation(store: Store, bad: object):
    store.record(make_result())
    with pytest.raises(InputError) as info:
        store.rate("p1", bad)
    assert repr(bad) in str(info.value) and "1 to 5" in str(info.value)
    assert store.get_rating("p1") is None


def test_rating_unknown_prompt(store: Store):
    with pytest.raises(UnknownPromptError, match="nope-123"):
        store.rate("nope-123", 4)


def test_rating_and_re_rating(store: Store):
    store.record(make_result("p1"))
    store.record(make_result("p2", model_used=None, status="error", requested_model=OTHER))
    first = store.rate("p1", 2, "meh")
    assert first["model"] == MODEL and first["rating"] == 2 and first["feedback"] == "meh"
    assert set(first) == {"prompt_id", "model", "rating", "feedback", "created_at", "warnings"}
    assert first["warnings"] == []
    second = store.rate("p1", 5)
    assert store.get_rating("p1") == {k: v for k, v in second.items() if k != "warnings"}
    assert [r["rating"] for r in store.rating_history("p1")] == [2, 5]
    assert store.rate("p2", 1)["model"] == OTHER  # failed request: the requested model
    assert store.rate("p2", 3, model="custom:model")["model"] == "custom:model"
    assert store.get_rating("unknown") is None

    stats = store.stats()
    assert stats["ratings"]["count"] == 2
    assert stats["avg_rating"] == 4.0  # latest ratings only: 5 and 3

    rows, problems = read_jsonl(store.logs_dir / "ratings.jsonl")
    assert problems == [] and [r["rating"] for r in rows] == [2, 5, 1, 3]
    assert list(rows[0]) == list(RATING_FIELDS)
    csv_rows, problems = read_csv(store.logs_dir / "ratings.csv")
    assert problems == [] and [r["rating"] for r in csv_rows] == ["2", "5", "1", "3"]
    assert csv_rows[0]["feedback"] == "meh"


# ---- conversations --------------------------------------------------------------------------


def test_conversations_crud_and_search(store: Store):
    conv = store.conversations
    assert conv.last_conversation_id() is None
    a = conv.create("Trip to Köln", model=MODEL, system="Be brief.", temperature=0.5)
    b = conv.create("Recipes", max_tokens=300)
    assert len(a) == 32 and a != b
    assert conv.get(a)["system"] == "Be brief." and conv.get(b)["max_tokens"] == 300

    conv.add_message(a, "user", "What to see?")
    conv.add_message(a, "assistant", "The CATHEDRAL.", prompt_id="p1")
    conv.add_message(b, "user", "Pancakes please")
    assert conv.last_conversation_id() == b
    assert [c["id"] for c in conv.list()] == [b, a]
    assert conv.list()[1]["message_count"] == 2

    msgs = conv.messages(a)
    assert [(m["role"], m["content"]) for m in msgs] == [
        ("user", "What to see?"),
        ("assistant", "The CATHEDRAL."),
    ]
    assert msgs[1]["prompt_id"] == "p1"

    assert [c["id"] for c in conv.list(search="cathedral")] == [a]
    assert [c["id"] for c in conv.list(search="KÖLN")] == [a]
    assert [c["id"] for c in conv.list(search="pancake")] == [b]
    assert conv.list(search="zzz") == []
    assert len(conv.list(limit=1)) == 1

    conv.rename(a, "Cologne")
    conv.update_settings(a, model=OTHER, temperature=None, max_tokens=100)
    got = conv.get(a)
    assert (got["title"], got["model"], got["temperature"], got["max_tokens"]) == (
        "Cologne",
        OTHER,
        None,
        100,
    )
    with pytest.raises(InputError, match="unknown conversation setting"):
        conv.update_settings(a, colour="red")
    with pytest.raises(InputError, match="role"):
        conv.add_message(a, "robot", "beep")

    conv.delete(a)
    assert [c["id"] for c in conv.list()] == [b]
    assert db_count(store.path, "messages") == 1
    for call in (
        lambda: conv.get(a),
        lambda: conv.messages(a),
        lambda: conv.rename(a, "x"),
        lambda: conv.delete(a),
        lambda: conv.add_message(a, "user", "x"),
    ):
        with pytest.raises(UnknownConversationError, match=a):
            call()
    assert issubclass(UnknownConversationError, InputError)


def test_storage_warnings_reach_the_hook_and_the_rating(store: Store):
    store.record(make_result("p1"))
    heard: list[str] = []
    store.on_warning = heard.append
    ratings_log = store.logs_dir / "ratings.jsonl"
    ratings_log.unlink(missing_ok=True)
    ratings_log.mkdir()  # writing a line into a directory fails, even as root
    record = store.rate("p1", 4)
    assert record["rating"] == 4 and store.get_rating("p1")["rating"] == 4
    (warning,) = record["warnings"]
    assert str(ratings_log) in warning and "the rating was kept" in warning
    assert heard == [warning]


# ---- schema version 5: circuit-breaker state shared through the database ----------------------


def test_a_version_4_database_is_upgraded_to_5_with_its_data(tmp_path: Path):
    path = tmp_path / "llmrouter.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, path, MIGRATIONS[:4]) == 4  # as the previous release left it
    conn.execute(
        "INSERT INTO requests (prompt_id, created_at, requested_model, prompt, response, "
        "latency_ms, status) VALUES ('from-v4', '2026-11-30T00:00:00+00:00', 'm', 'p', 'r', 1, "
        "'ok')"
    )
    conn.close()
    with Store(tmp_path) as upgraded:
        assert upgraded.get_request("from-v4") is not None
        upgraded.breaker_board(refresh_s=0).opened("groq:m", 30)
        upgraded.writer.drain()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 5
    ((model, until, pid),) = conn.execute("SELECT model, open_until, pid FROM breaker_state")
    conn.close()
    assert model == "groq:m" and until > 0 and pid == os.getpid()


def test_two_stores_on_one_data_dir_share_an_open_circuit(tmp_path: Path):
    with Store(tmp_path) as one, Store(tmp_path) as two:
        mine, theirs = one.breaker_board(refresh_s=0), two.breaker_board(refresh_s=0)
        assert theirs.remaining_s("groq:m") is None
        mine.opened("groq:m", 30)
        one.writer.drain()  # committed by the writer thread
        left = theirs.remaining_s("groq:m")
        assert left is not None and 25 < left <= 30
        assert list(theirs.keys()) == ["groq:m"]
        theirs.closed("groq:m")
        two.writer.drain()
        assert mine.remaining_s("groq:m") is None


def test_a_cached_breaker_read_is_not_a_query_per_call(tmp_path: Path):
    with Store(tmp_path) as one, Store(tmp_path) as two:
        clock = [0.0]
        theirs = two.breaker_board()
        theirs._monotonic = lambda: clock[0]  # type: ignore[method-assign]
        assert theirs.remaining_s("groq:m") is None  # read now, kept for REFRESH_S
        one.breaker_board().opened("groq:m", 30)
        one.writer.drain()
        assert theirs.remaining_s("groq:m") is None  # still the snapshot
        clock[0] += 1.0
        assert theirs.remaining_s("groq:m") is not None
