"""Schema migration 6: the daily, rating and preference summaries rebuilt from recorded rows.

Every test records requests live through a real Store (the numbers recording gives), then
makes a database whose summaries are missing or already filled, upgrades it by opening a
Store on it, and compares every summary row with the live ones.
"""

from __future__ import annotations

import math
import sqlite3
import tempfile
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmrouter_tui.core.db import MIGRATIONS, SCHEMA_VERSION, migrate
from llmrouter_tui.core.stats import BUCKET_RATIO, bucket_of
from llmrouter_tui.core.store import Store
from llmrouter_tui.core.summary_rebuild import NATIVE_BUCKET, bucket_sql
from llmrouter_tui.core.types import Attempt, Result, Usage

GROQ = "groq:llama-3.1-8b-instant"
GEMINI = "gemini:gemini-2.5-flash"
OPENAI = "openai:gpt-4o-mini"

# Summary table -> its key columns (the rest are the numbers compared).
_KEYS = {
    "daily_stats": ("day", "model"),
    "daily_hist": ("day", "model", "kind", "bucket"),
    "rating_stats": ("template_id", "model"),
    "preference_stats": ("template_id", "model_a", "model_b"),
}
# The columns a version 3 database had (what an upgrade finds in it).
_V3_REQUEST_COLUMNS = (
    "prompt_id, created_at, conversation_id, requested_model, model_used, provider, "
    "template_id, prompt, response, latency_ms, ttft_ms, prompt_tokens, completion_tokens, "
    "total_tokens, tokens_estimated, from_cache, fallback_used, status, error, error_kind, "
    "finish_reason, truncated, notice, source, demo, tool_calls"
)


def attempt(model: str, outcome: Any, error: str | None = None) -> Attempt:
    return Attempt(model=model, provider=model.split(":")[0], outcome=outcome, error=error)


def result(prompt_id: str, day: str, **overrides: Any) -> Result:
    fields: dict[str, Any] = {
        "prompt_id": prompt_id,
        "requested_model": GROQ,
        "model_used": GROQ,
        "provider": "groq",
        "prompt": "q",
        "response_text": "r",
        "status": "ok",
        "latency_ms": 250.0,
        "ttft_ms": 80.0,
        "usage": Usage(prompt=7, completion=11, total=18),
        "from_cache": False,
        "fallback_used": False,
        "attempts": [attempt(GROQ, "ok")],
        "created_at": f"{day}T12:34:56.000001+00:00",
    }
    fields.update(overrides)
    return Result(**fields)


def history(priced: bool) -> list[Result]:
    """Requests covering every rule of the daily summaries; costs only when `priced` (a
    version 3 database never recorded any)."""
    cost = (lambda usd: usd) if priced else (lambda usd: None)
    d1, d2, d3 = "2025-03-01", "2025-03-02", "2026-11-30"
    return [
        result("ok-1", d1, cost_usd=cost(0.0012), template_id="commit_message"),
        result("ok-2", d1, latency_ms=0.4, ttft_ms=None, cost_usd=cost(0.5), cost_estimated=True),
        result(
            "fallback",
            d1,
            requested_model=GEMINI,
            fallback_used=True,
            cost_usd=cost(0.25),
            attempts=[
                attempt(GEMINI, "error", "rate_limited"),
                attempt(GEMINI, "timeout", "timeout"),
                attempt(GROQ, "ok"),
            ],
        ),
        result(
            "hit",
            d1,
            from_cache=True,
            latency_ms=0.9,
            ttft_ms=0.9,
            saved_usd=cost(0.003),
            attempts=[attempt(GROQ, "cache_hit")],
        ),
        result(
            "error",
            d2,
            model_used=None,
            provider=None,
            status="error",
            ttft_ms=None,
            usage=Usage(prompt=9),
            attempts=[
                attempt(GROQ, "skipped_circuit_open"),
                attempt(GEMINI, "error", "bad_request"),  # the caller's fault: not counted
                attempt(OPENAI, "error", None),
            ],
            error="upstream failed",
            error_kind="server_error",
        ),
        result(
            "cancelled",
            d2,
            model_used=GEMINI,
            status="cancelled",
            ttft_ms=30.0,
            attempts=[attempt(GEMINI, "cancelled")],
        ),
        result(
            "continued",
            d3,
            model_used=OPENAI,
            requested_model=OPENAI,
            latency_ms=12_345.6,
            ttft_ms=999.9,
            cost_usd=cost(1.75),
            attempts=[attempt(OPENAI, "error", "stream_cut"), attempt(OPENAI, "continued")],
            template_id="commit_message",
        ),
        result("empty-model", d3, model_used="", requested_model=GEMINI, cost_usd=cost(0.0)),
    ]


def record_live(data_dir: Path, results: Sequence[Result], *, votes: bool) -> Path:
    """Record `results` through a Store (plus ratings and, with `votes`, preferences)."""
    with Store(data_dir) as store:
        assert all(not warnings for warnings in store.record_many(results))
        store.rate("ok-1", 5)
        store.rate("fallback", 2, model=GEMINI)
        store.rate("fallback", 4)  # re-rating moves the vote to the model that answered
        store.rate("continued", 3)
        if votes:
            store.prefer("ok-1", "continued", "a")
            store.prefer("continued", "ok-1", "b")  # the same pair again, in the other order
            store.prefer("fallback", "continued", "tie")
            store.prefer("ok-1", "ok-2", "both_bad")  # one model on both sides: not counted
        return store.path


def summaries(path: Path) -> dict[str, dict[tuple[Any, ...], tuple[Any, ...]]]:
    """Every summary row by table and key; rows of zeros (a vote moved away) are left out:
    every reader treats them as absent."""
    out: dict[str, dict[tuple[Any, ...], tuple[Any, ...]]] = {}
    with closing(sqlite3.connect(path)) as conn:
        for table, keys in _KEYS.items():
            cursor = conn.execute(f"SELECT * FROM {table}")
            columns = [d[0] for d in cursor.description]
            rows = out[table] = {}
            for row in cursor:
                named = dict(zip(columns, row, strict=True))
                values = tuple(v for c, v in named.items() if c not in keys)
                if any(values):
                    rows[tuple(named[k] for k in keys)] = values
    return out


def assert_same_summaries(got: Path, expected: Path) -> None:
    mine, live = summaries(got), summaries(expected)
    for table in _KEYS:
        assert sorted(mine[table]) == sorted(live[table]), table
        for key, values in live[table].items():
            for a, b in zip(mine[table][key], values, strict=True):
                # Sums of costs may be added in another order: equal up to rounding.
                same = a == b if isinstance(b, int) else math.isclose(a, b, abs_tol=1e-12)
                assert same, (table, key, mine[table][key], values)


def make_version_3(live: Path, path: Path) -> None:
    """A version 3 database holding what `live` recorded, as that release recorded it."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        assert migrate(conn, path, MIGRATIONS[:3]) == 3
        conn.execute("ATTACH DATABASE ? AS live", (str(live),))
        conn.execute("BEGIN")
        conn.execute(
            f"INSERT INTO requests ({_V3_REQUEST_COLUMNS}) "
            f"SELECT {_V3_REQUEST_COLUMNS} FROM live.requests"
        )
        for table in ("attempts", "ratings", "rating_events", "latency_hist"):
            conn.execute(f"INSERT INTO {table} SELECT * FROM live.{table}")
        conn.execute(
            "INSERT INTO model_stats SELECT model, requests, ok, errors, cancelled, cache_hits, "
            "fallbacks, latency_ms_sum, latency_n, ttft_ms_sum, ttft_n, prompt_tokens, "
            "completion_tokens, total_tokens, estimated_requests FROM live.model_stats"
        )
        conn.execute("COMMIT")
        conn.execute("DETACH DATABASE live")


def downgrade_to_5(path: Path, *, forget: bool) -> None:
    """Mark the database as version 5 again; with `forget`, empty its summaries too (what an
    upgrade under the shipped migration 4 left for the history it found)."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        if forget:
            for table in _KEYS:
                conn.execute(f"DELETE FROM {table}")
        conn.execute("PRAGMA user_version = 5")


def test_upgrading_a_version_3_database_fills_the_daily_summaries(tmp_path: Path):
    live = record_live(tmp_path / "live", history(priced=False), votes=False)
    old = tmp_path / "old"
    old.mkdir()
    make_version_3(live, old / "llmrouter.db")
    with Store(old) as upgraded:
        spend_days = [entry["day"] for entry in upgraded.stats()["cost"]["per_day"]]
        assert spend_days == ["2025-03-01", "2025-03-02", "2026-11-30"]
        assert upgraded.leaderboard("commit_message")  # the template's ratings are there
    with closing(sqlite3.connect(old / "llmrouter.db")) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 6
    assert summaries(old / "llmrouter.db")["daily_stats"]  # not two empty sets
    assert_same_summaries(old / "llmrouter.db", live)


def test_rebuilding_live_filled_summaries_changes_nothing(tmp_path: Path):
    live = record_live(tmp_path / "data", history(priced=True), votes=True)
    before = summaries(live)
    assert before["preference_stats"] and before["daily_hist"]
    copy = tmp_path / "expected.db"
    with closing(sqlite3.connect(live)) as src, closing(sqlite3.connect(copy)) as dst:
        src.backup(dst)
    for _ in range(2):  # replaced, not added to: twice gives the same numbers
        downgrade_to_5(live, forget=False)
        with Store(tmp_path / "data") as store:
            assert store.stats()["cost"]["total_usd"] > 0
        assert_same_summaries(live, copy)


def test_the_rebuild_is_one_transaction(tmp_path: Path):
    live = record_live(tmp_path / "data", history(priced=True), votes=True)
    before = summaries(live)
    path = tmp_path / "data" / "llmrouter.db"
    downgrade_to_5(path, forget=False)
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        # A step after the rebuild fails: the rebuild's deletes must be rolled back with it.
        with pytest.raises(sqlite3.OperationalError, match="syntax error"):
            migrate(conn, path, [*MIGRATIONS, ("THIS IS NOT SQL",)])
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 5
    assert summaries(path) == before


_DAYS = st.sampled_from(["2024-12-31", "2025-01-01", "2026-11-30"])
_MODELS = st.sampled_from([GROQ, GEMINI, OPENAI])
_ATTEMPTS = st.lists(
    st.builds(
        attempt,
        _MODELS,
        st.sampled_from(["ok", "error", "timeout", "continued", "cache_hit", "skipped_no_key"]),
        st.sampled_from([None, "rate_limited", "bad_request", "context_length", "server_error"]),
    ),
    max_size=3,
)
_REQUESTS = st.lists(
    st.fixed_dictionaries(
        {
            "day": _DAYS,
            "status": st.sampled_from(["ok", "ok", "error", "cancelled"]),
            "model_used": st.one_of(st.none(), _MODELS),
            "requested_model": _MODELS,
            "from_cache": st.booleans(),
            "latency_ms": st.floats(0.0, 60_000.0),
            "ttft_ms": st.one_of(st.none(), st.floats(0.0, 60_000.0)),
            "cost_usd": st.one_of(st.none(), st.floats(0.0, 5.0)),
            "saved_usd": st.one_of(st.none(), st.floats(0.0, 5.0)),
            "cost_estimated": st.booleans(),
            "tokens": st.integers(0, 5000),
            "attempts": _ATTEMPTS,
        }
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_REQUESTS)
def test_any_recorded_history_rebuilds_to_the_live_numbers(requests: list[dict[str, Any]]):
    results = []
    for i, drawn in enumerate(requests):
        fields = dict(drawn)
        day, tokens = fields.pop("day"), fields.pop("tokens")
        results.append(result(f"p{i}", day, usage=Usage(tokens, tokens // 2), **fields))
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        with Store(data) as store:
            assert all(not w for w in store.record_many(results))
        path = store.path
        copy = Path(tmp) / "expected.db"
        with closing(sqlite3.connect(path)) as src, closing(sqlite3.connect(copy)) as dst:
            src.backup(dst)
        downgrade_to_5(path, forget=True)
        Store(data).close()
        assert_same_summaries(path, copy)


def test_migrating_restores_the_ordinary_lock_wait(tmp_path: Path):
    path = tmp_path / "llmrouter.db"
    with closing(sqlite3.connect(path, timeout=5.0, isolation_level=None)) as conn:
        assert migrate(conn, path) == SCHEMA_VERSION
        # Only taking the migration lock may wait longer than an ordinary write.
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000


_BOUNDARIES = [BUCKET_RATIO**k for k in range(0, 400)]


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.floats(0.0, 1e7),
        st.sampled_from(_BOUNDARIES).flatmap(
            lambda edge: st.sampled_from([edge, math.nextafter(edge, 0), math.nextafter(edge, 2e7)])
        ),
    )
)
def test_the_sql_histogram_bucket_is_the_recorded_one(ms: float):
    with closing(sqlite3.connect(":memory:")) as conn:
        sql, params = bucket_sql(conn)
        if sql != NATIVE_BUCKET:  # pragma: no cover - this SQLite has no ln(): bucket_of runs
            return
        (got,) = conn.execute(f"SELECT {sql} FROM (SELECT ? AS ms)", (*params, ms)).fetchone()
        assert got == bucket_of(ms)
