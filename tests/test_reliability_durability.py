"""Durability: SIGKILL mid-flight, torn log lines, full and read-only disks, corrupt databases.

The invariant every test here checks (`assert_recorded_once`): each request and rating is
in every sink at most once, SQLite ⊇ JSONL ⊇ CSV, and only a record that was being written
when a process died may be in SQLite but missing from the logs. Replies acknowledged to a
caller are in all three.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from reliability_helpers import (
    GEMINI,
    GROQ,
    GROQ_BIG,
    TESTS_DIR,
    WORKER_MODELS,
    assert_cache_complete,
    assert_ok_rows_complete,
    assert_recorded_once,
    audit,
    cache_keys_for,
    db_rows,
    integrity,
    tree_bytes,
    worker_prompt,
)
from server_helpers import ServerProcess, clean_env, serving
from waiting import until

from llmrouter_tui.core.errors import StorageError
from llmrouter_tui.core.logsinks import read_csv, read_jsonl
from llmrouter_tui.core.store import Store
from llmrouter_tui.core.types import ChatRequest
from llmrouter_tui.server.app import create_app

WORKER = [sys.executable, str(TESTS_DIR / "reliability_helpers.py"), "worker"]


def _run_worker(data_dir: Path, count: int, kill_after: int | None, cwd: Path):
    """Run the core worker; SIGKILL it once `kill_after` requests completed.

    Returns (acknowledged prompt ids, acknowledged ratings, whether it was killed).
    """
    proc = subprocess.Popen(
        [*WORKER, str(data_dir), str(count)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
        cwd=cwd,
    )
    done: list[str] = []
    rated: list[tuple[str, int, str]] = []
    killed = False
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            parts = line.split()
            if parts[:1] == ["done"]:
                done.append(parts[1])
            elif parts[:1] == ["rated"]:
                rated.append((parts[1], int(parts[2]), " ".join(parts[3:])))
            if kill_after is not None and len(done) >= kill_after and not killed:
                os.kill(proc.pid, signal.SIGKILL)  # mid-flight: dozens of requests open
                killed = True
            assert time.monotonic() < deadline, "the worker took too long"
    finally:
        if proc.poll() is None and not killed:
            proc.kill()
        proc.wait(10)
    if not killed:
        assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    if proc.stderr is not None:
        proc.stderr.close()
    return done, rated, killed


@pytest.mark.slow
def test_sigkill_mid_flight_then_restart(tmp_path: Path):
    """Hundreds of requests and ratings in flight, SIGKILL, restart, audit every sink."""
    data = tmp_path / "data"
    done, rated, killed = _run_worker(data, 1500, kill_after=200, cwd=tmp_path)
    assert killed and len(done) >= 200

    first = audit(data)
    assert_recorded_once(first, in_flight=1)
    assert set(done) <= set(first.csv)  # acknowledged means in every sink
    assert set(rated) <= set(first.ratings_csv)
    assert len(first.requests) < 1500  # it really died mid-run
    # Replies are whole wherever they were kept: request rows and every cache entry, although
    # every GROQ_BIG reply and about half the GROQ ones were cut mid-stream.
    prompts = [worker_prompt(i) for i in range(1500)]
    expected = cache_keys_for([*WORKER_MODELS, GROQ_BIG], prompts)
    assert assert_cache_complete(data / "llmrouter.db", expected) > 10
    assert assert_ok_rows_complete(data / "llmrouter.db") >= len(done)
    cut = db_rows(data / "llmrouter.db", "SELECT count(*) FROM attempts WHERE error='stream_cut'")
    assert cut[0][0] >= 4  # partial replies really happened

    # Restart on the same directory: everything new is recorded everywhere, nothing repaired
    # by guesswork, the old in-flight record (if any) stays the only gap.
    done2, rated2, _ = _run_worker(data, 90, kill_after=None, cwd=tmp_path)
    second = audit(data)
    assert_recorded_once(second, in_flight=1)
    assert set(done2) <= set(second.csv) and set(rated2) <= set(second.ratings_csv)
    assert set(second.requests) - set(second.csv) <= set(first.requests) - set(first.csv)
    assert second.requests[: len(first.requests)] == first.requests
    assert_cache_complete(data / "llmrouter.db", expected)
    assert_ok_rows_complete(data / "llmrouter.db")
    with Store(data) as store:
        stats = store.stats()
    assert stats["total_prompts"] == len(second.requests)  # summaries agree with the rows


# ---- torn lines -------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["in_quoted_reply", "after_quoted_reply", "last_byte"])
async def test_a_torn_record_is_skipped_and_never_swallows_later_ones(
    make_runtime, upstream, where: str
):
    """A short write (full disk, power loss) leaves a torn last record in the logs. Readers
    skip and report it, and every record appended afterwards is read back intact (a CSV
    record torn inside a quoted multi-line field used to swallow the next record)."""
    runtime = make_runtime()
    first = await runtime.router.complete(ChatRequest(model=GROQ, prompt='say "hi",\nplease'))
    torn = await runtime.router.complete(ChatRequest(model=GROQ, prompt="this one is torn"))
    logs = runtime.store.logs_dir
    for name in ("prompts.jsonl", "prompts.csv"):
        data = (logs / name).read_bytes()
        start = data.rindex(torn.prompt_id.encode())
        cut = {
            "in_quoted_reply": data.index(b"fake groq", start) + 4,
            "after_quoted_reply": data.index(b"real answers.", start) + 14,
            "last_byte": len(data) - 1,
        }[where]
        (logs / name).write_bytes(data[:cut])
        found = (read_jsonl if name.endswith("jsonl") else read_csv)(logs / name)[1]
        assert len(found) == 1 and "torn" in found[0], found

    later = [
        await runtime.router.complete(ChatRequest(model=GROQ, prompt=f'after "{i}",\nline'))
        for i in range(3)
    ]
    a = audit(runtime.store.data_dir)
    expected = [first.prompt_id, *(r.prompt_id for r in later)]
    if where == "last_byte":  # only the line end was lost: the record itself is whole
        expected.insert(1, torn.prompt_id)
    assert a.jsonl == expected and a.csv == expected
    assert a.requests == [first.prompt_id, torn.prompt_id, *(r.prompt_id for r in later)]
    for name in ("prompts.jsonl", "prompts.csv"):
        assert len(a.warnings[name]) == (where != "last_byte" or name.endswith("csv")), a.warnings
    assert_recorded_once(a, in_flight=1)


# ---- full disk -------------------------------------------------------------------------------


async def test_full_disk_log_warns_keeps_replies_and_resumes(make_runtime, upstream):
    """prompts.jsonl on a full disk (/dev/full: every write fails with ENOSPC)."""
    runtime = make_runtime()
    store = runtime.store
    jsonl = store.logs_dir / "prompts.jsonl"
    ok = await runtime.router.complete(ChatRequest(model=GROQ, prompt="before"))
    assert ok.warnings == []
    saved = jsonl.read_bytes()
    jsonl.unlink()
    jsonl.symlink_to("/dev/full")

    during = [
        await runtime.router.complete(ChatRequest(model=GEMINI, prompt=f"while full {i}"))
        for i in range(3)
    ]
    for result in during:
        assert result.status == "ok" and result.response_text  # the reply is still returned
        assert len(result.warnings) == 1
        warning = result.warnings[0]
        assert str(jsonl) in warning and "No space left on device" in warning
        assert "the reply was kept" in warning
    assert store.sink_warnings[-1] == during[-1].warnings[0]

    jsonl.unlink()  # space returns: a real file again
    jsonl.write_bytes(saved)
    after = await runtime.router.complete(ChatRequest(model=GROQ, prompt="after"))
    assert after.warnings == []
    a = audit(store.data_dir)
    assert a.jsonl == [ok.prompt_id, after.prompt_id]  # recording resumed
    assert a.csv == [ok.prompt_id, *(r.prompt_id for r in during), after.prompt_id]
    assert a.requests == a.csv
    assert a.warnings == {name: [] for name in a.warnings}  # nothing corrupted


def _ask(args: list[str], data_dir: Path, cwd: Path, upstream) -> subprocess.CompletedProcess:
    from reliability_helpers import GEMINI_KEY, GROQ_KEY

    env = clean_env(
        GROQ_API_KEY=GROQ_KEY,
        GEMINI_API_KEY=GEMINI_KEY,
        GROQ_BASE_URL=upstream.base_url,
        GEMINI_BASE_URL=upstream.base_url,
        LLMROUTER_DATA_DIR=str(data_dir),
    )
    return subprocess.run(
        [sys.executable, "-m", "llmrouter_tui", "ask", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
    )


@pytest.mark.slow
def test_full_disk_ask_prints_the_reply_and_one_warning_line(tmp_path: Path, upstream):
    data = tmp_path / "data"
    first = _ask(["-m", GROQ, "first"], data, tmp_path, upstream)
    assert first.returncode == 0, first.stderr
    csv_path = data / "logs" / "prompts.csv"
    saved = csv_path.read_bytes()
    csv_path.unlink()
    csv_path.symlink_to("/dev/full")
    done = _ask(["-m", GROQ, "while full"], data, tmp_path, upstream)
    assert done.returncode == 0, done.stderr
    assert "received: while full" in done.stdout
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert str(csv_path) in warnings[0] and "No space left on device" in warnings[0]
    assert "Traceback" not in done.stderr
    csv_path.unlink()
    csv_path.write_bytes(saved)
    again = _ask(["-m", GROQ, "space is back"], data, tmp_path, upstream)
    assert again.returncode == 0 and "warning" not in again.stderr
    a = audit(data)
    assert len(a.requests) == len(a.jsonl) == 3 and len(a.csv) == 2
    assert_recorded_once(a, in_flight=1)


# ---- real full and read-only filesystems (root with mount only) ------------------------------


def _can_mount() -> bool:
    if os.geteuid() != 0 or not any(Path(d, "mount").exists() for d in ("/bin", "/usr/bin")):
        return False
    probe = Path(f"/tmp/llmrouter-mount-probe-{os.getpid()}")
    probe.mkdir(exist_ok=True)
    try:
        ok = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)], capture_output=True
        )
        if ok.returncode != 0:
            return False
        subprocess.run(["umount", str(probe)], capture_output=True)
        return True
    finally:
        with contextlib.suppress(OSError):
            probe.rmdir()


CAN_MOUNT = _can_mount()
needs_mount = pytest.mark.skipif(not CAN_MOUNT, reason="needs root and mount (tmpfs, bind)")


@contextlib.contextmanager
def _mounted(*args: str, target: Path):
    subprocess.run(["mount", *args, str(target)], check=True, capture_output=True)
    try:
        yield target
    finally:
        if subprocess.run(["umount", str(target)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(target)], capture_output=True)


@needs_mount
async def test_really_full_filesystem_database_and_logs(make_runtime, upstream, tmp_path: Path):
    """A data directory on a tiny tmpfs that fills up: SQLite and both logs fail; replies
    still come back with clear warnings; once space returns recording resumes and nothing
    is corrupted (short writes leave torn records that readers skip)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    with _mounted("-t", "tmpfs", "-o", "size=1m", "tmpfs", target=mnt):
        data = mnt / "data"
        runtime = make_runtime(data_dir=data)
        before = await runtime.router.complete(ChatRequest(model=GROQ, prompt="before"))
        filler = mnt / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * 4096):
                    pass
        finally:
            os.close(fd)
        during = []
        for i in range(4):
            prompt = f"while full {i} " + "long words " * 200
            during.append(await runtime.router.complete(ChatRequest(model=GROQ, prompt=prompt)))
        for result in during:
            assert result.status == "ok"
            assert result.response_text.startswith(f"**{GROQ}**")
            assert result.warnings, "a failed write went unreported"
            text = " ".join(result.warnings)
            assert "could not" in text and "the reply was kept" in text
        assert any(str(runtime.store.path) in w for r in during for w in r.warnings)
        filler.unlink()  # space returns
        after = [
            await runtime.router.complete(ChatRequest(model=GROQ, prompt=f"after {i}"))
            for i in range(3)
        ]
        assert all(r.warnings == [] for r in after)
        await runtime.aclose()
        a = audit(data)
        assert integrity(data / "llmrouter.db") == "ok"
        ids = [before.prompt_id, *(r.prompt_id for r in after)]
        for sink in (a.requests, a.jsonl, a.csv):
            assert [i for i in sink if i in ids] == ids  # recording resumed everywhere
        for found in a.warnings.values():
            assert all("torn" in w or "unreadable" in w or "garbled" in w for w in found)


@needs_mount
async def test_data_directory_turned_read_only_while_running(
    make_runtime, upstream, tmp_path: Path
):
    data = tmp_path / "data"
    runtime = make_runtime(data_dir=data)
    before = await runtime.router.complete(ChatRequest(model=GROQ, prompt="before"))
    snapshot = tree_bytes(data / "logs")
    with _mounted("--bind", str(data), target=data):
        subprocess.run(["mount", "-o", "remount,bind,ro", str(data)], check=True)
        with pytest.raises(OSError) as probe:  # the environment really is read-only now
            os.open(data / "logs" / "probe", os.O_WRONLY | os.O_CREAT, 0o600)
        assert probe.value.errno == errno.EROFS
        during = await runtime.router.complete(ChatRequest(model=GEMINI, prompt="read-only"))
        assert during.status == "ok" and during.response_text
        text = " ".join(during.warnings)
        assert "Read-only file system" in text or "readonly" in text.lower(), during.warnings
        assert str(data / "logs" / "prompts.jsonl") in text
        assert tree_bytes(data / "logs") == snapshot  # nothing half-written
        subprocess.run(["mount", "-o", "remount,bind,rw", str(data)], check=True)
        after = await runtime.router.complete(ChatRequest(model=GROQ, prompt="writable again"))
        assert after.warnings == []
    a = audit(data)
    assert [before.prompt_id, after.prompt_id] == [i for i in a.csv if i != during.prompt_id]
    assert_recorded_once(a, in_flight=1)


@needs_mount
@pytest.mark.slow
def test_read_only_data_directory_at_start_is_one_clear_error(tmp_path: Path, upstream):
    data = tmp_path / "data"
    assert _ask(["-m", GROQ, "hi"], data, tmp_path, upstream).returncode == 0
    before = tree_bytes(data)
    with _mounted("--bind", str(data), target=data):
        subprocess.run(["mount", "-o", "remount,bind,ro", str(data)], check=True)
        with pytest.raises(StorageError) as info:
            Store(data)
        assert str(data) in str(info.value) and "writable" in str(info.value)
        done = _ask(["-m", GROQ, "hi"], data, tmp_path, upstream)
        assert done.returncode == 1
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and str(data) in lines[0], done.stderr
    assert tree_bytes(data) == before


# ---- corrupt database ------------------------------------------------------------------------


def _corrupt(data: Path) -> bytes:
    db = data / "llmrouter.db"
    raw = bytearray(db.read_bytes())
    raw[:16] = b"definitely not!!"  # the SQLite header: no longer a database
    db.write_bytes(bytes(raw))
    for extra in ("llmrouter.db-wal", "llmrouter.db-shm"):
        with contextlib.suppress(FileNotFoundError):
            (data / extra).unlink()
    return bytes(raw)


@pytest.mark.slow
def test_corrupt_database_through_ask_is_one_line_and_untouched(tmp_path: Path, upstream):
    data = tmp_path / "data"
    assert _ask(["-m", GROQ, "hi"], data, tmp_path, upstream).returncode == 0
    broken = _corrupt(data)
    before = tree_bytes(data)
    done = _ask(["-m", GROQ, "hi again"], data, tmp_path, upstream)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    db = data / "llmrouter.db"
    assert str(db) in lines[0] and "Move it aside" in lines[0]
    assert (data / "llmrouter.db").read_bytes() == broken  # never deleted nor overwritten
    assert tree_bytes(data) == before
    assert done.stdout == ""


@pytest.mark.slow
def test_corrupt_database_through_serve_names_the_file_and_exits_1(tmp_path: Path, upstream):
    data = tmp_path / "data"
    assert _ask(["-m", GROQ, "hi"], data, tmp_path, upstream).returncode == 0
    broken = _corrupt(data)
    done = subprocess.run(
        [
            *(sys.executable, "-m", "llmrouter_tui", "--serve", "--demo", "--port", "0"),
            *("--data-dir", str(data), "--quiet"),
        ],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=tmp_path,
        timeout=30,
    )
    assert done.returncode == 1
    assert str(data / "llmrouter.db") in done.stderr and "Move it aside" in done.stderr
    assert "Traceback" not in done.stderr
    assert (data / "llmrouter.db").read_bytes() == broken


# ---- the real server: SIGKILL mid-flight, concurrency, two processes on one directory ---------

SERVER_MODELS = (GROQ, GEMINI, "gemini-3.8-flash")
# The server keeps idle connections 75 s, far longer than httpx's 5 s pool expiry, so a
# client never reuses a connection just as the server closes it (the usual HTTP/1.1 race,
# which loses the request).


def _serve(data: Path, cwd: Path) -> ServerProcess:
    server = ServerProcess(
        ["--serve", "--demo", "--port", "0", "--data-dir", str(data), "--quiet"],
        clean_env(),
        cwd=cwd,
    )
    server.wait_for_url()
    return server


async def _chat_and_rate(
    client: httpx.AsyncClient,
    i: int,
    acked: list[str],
    rated: list[tuple[str, int, str | None]],
    rate_client: httpx.AsyncClient | None = None,
) -> None:
    """POST /chat, then rate the reply (through `rate_client` if given); record what was
    acknowledged with a 200."""
    model = SERVER_MODELS[i % len(SERVER_MODELS)]
    response = await client.post("/chat", json={"model": model, "prompt": worker_prompt(i)})
    if response.status_code != 200:
        return
    prompt_id = response.json()["prompt_id"]
    acked.append(prompt_id)
    for turn in range(1 + (i % 3 == 0)):  # some replies are rated twice
        score = 1 + (i + turn) % 5
        feedback = f"fb {i}.{turn}" if i % 2 else None
        body = {"prompt_id": prompt_id, "rating": score, "feedback": feedback}
        rate = await (rate_client or client).post("/rate", json=body)
        if rate.status_code != 200:
            return
        rated.append((prompt_id, score, feedback))


@pytest.mark.slow
async def test_sigkill_the_server_mid_flight_then_restart(tmp_path: Path):
    data = tmp_path / "data"
    server = _serve(data, tmp_path)
    acked: list[str] = []
    rated: list[tuple[str, int, str | None]] = []
    limits = httpx.Limits(max_connections=400, keepalive_expiry=2)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as client:

            async def guarded(i: int) -> None:
                with contextlib.suppress(httpx.TransportError):
                    await _chat_and_rate(client, i, acked, rated)

            tasks = [asyncio.create_task(guarded(i)) for i in range(300)]
            await until(
                lambda: len(acked) >= 100 and len(rated) >= 20, "100 chats and 20 ratings acked"
            )
            in_flight = sum(not t.done() for t in tasks)
            os.kill(server.proc.pid, signal.SIGKILL)
            await asyncio.gather(*tasks)
    finally:
        server.kill()
    assert len(acked) >= 100 and in_flight >= 100, (len(acked), in_flight)
    assert rated, "no rating was acknowledged before the kill"

    first = audit(data)
    assert_recorded_once(first, in_flight=1)
    assert set(acked) <= set(first.csv)
    assert not Counter(rated) - Counter(first.ratings_csv)
    prompts = [worker_prompt(i) for i in range(300)]
    expected = cache_keys_for(SERVER_MODELS, prompts)
    assert assert_cache_complete(data / "llmrouter.db", expected) > 0
    assert_ok_rows_complete(data / "llmrouter.db")

    server = _serve(data, tmp_path)  # restart on the same directory
    acked2: list[str] = []
    rated2: list[tuple[str, int, str | None]] = []
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            await asyncio.gather(
                *(_chat_and_rate(client, 1000 + i, acked2, rated2) for i in range(20))
            )
    finally:
        assert server.stop() == 0  # a graceful stop this time
    assert len(acked2) == 20
    second = audit(data)
    assert_recorded_once(second, in_flight=1)
    assert set(acked2) <= set(second.csv)
    assert not Counter(rated2) - Counter(second.ratings_csv)
    assert set(second.requests) - set(second.csv) <= set(first.requests) - set(first.csv)
    prompts += [worker_prompt(1000 + i) for i in range(20)]
    assert_cache_complete(data / "llmrouter.db", cache_keys_for(SERVER_MODELS, prompts))


@pytest.mark.slow
async def test_hundreds_of_concurrent_requests_and_ratings_recorded_exactly_once(
    make_runtime, upstream, tmp_path: Path
):
    """Through the embedded server: every acknowledged request and rating is in SQLite,
    JSONL and CSV exactly once, and nothing else is."""
    data = tmp_path / "many"
    # Client, server and fake upstream share this process: generous limits under this load.
    runtime = make_runtime(
        data_dir=data,
        first_token_timeout_s=30,
        stream_idle_timeout_s=30,
        attempt_timeout_s=30,
        total_timeout_s=60,
    )
    acked: list[str] = []
    rated: list[tuple[str, int, str | None]] = []
    async with serving(create_app(runtime, token="")) as server:
        # httpx's own pool expiry (5 s) against the server's default keep-alive (75 s): the
        # client drops a pooled connection long before the server would close it.
        limits = httpx.Limits(max_connections=300)
        assert server.config.keepalive_timeout_s > (limits.keepalive_expiry or 0)
        async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as client:
            await asyncio.gather(*(_chat_and_rate(client, i, acked, rated) for i in range(240)))
    await runtime.aclose()
    assert len(acked) == 240 and len(rated) == 320
    a = audit(data)
    assert_recorded_once(a, in_flight=0)
    assert sorted(a.requests) == sorted(a.jsonl) == sorted(a.csv) == sorted(acked)
    assert Counter(a.ratings_db) == Counter(a.ratings_jsonl) == Counter(a.ratings_csv)
    assert Counter(a.ratings_csv) == Counter(rated)
    with Store(data) as store:
        stats = store.stats()
        assert stats["total_prompts"] == 240
        latest = {pid: score for pid, score, _ in rated}  # the last rating of each reply counts
        assert store.get_rating(acked[0])["rating"] == latest[acked[0]]


@pytest.mark.slow
async def test_two_server_processes_share_one_data_directory(tmp_path: Path):
    """Two `--serve` workers on one directory; each rates the other's replies."""
    data = tmp_path / "shared"
    one, two = _serve(data, tmp_path), None
    try:
        two = _serve(data, tmp_path)
        acked: list[str] = []
        rated: list[tuple[str, int, str | None]] = []
        limits = httpx.Limits(max_connections=100, keepalive_expiry=2)
        async with (
            httpx.AsyncClient(base_url=one.url, timeout=60, limits=limits) as a,
            httpx.AsyncClient(base_url=two.url, timeout=60, limits=limits) as b,
        ):
            await asyncio.gather(
                *(_chat_and_rate(a, i, acked, rated, rate_client=b) for i in range(0, 240, 2)),
                *(_chat_and_rate(b, i, acked, rated, rate_client=a) for i in range(1, 240, 2)),
            )
    finally:
        codes = [one.stop(), two.stop() if two else 0]
    assert codes == [0, 0]
    assert len(acked) == 240 and len(rated) == 320
    result = audit(data)
    assert_recorded_once(result, in_flight=0)
    assert sorted(result.requests) == sorted(result.jsonl) == sorted(result.csv) == sorted(acked)
    assert Counter(result.ratings_csv) == Counter(result.ratings_jsonl) == Counter(rated)
    assert Counter(result.ratings_db) == Counter(rated)
    header = (data / "logs" / "prompts.csv").read_bytes().count(b"timestamp,prompt_id,")
    assert header == 1
    assert_ok_rows_complete(data / "llmrouter.db")


# ---- workers starting together on a fresh directory ----------------------------------------------


def _open_and_record(data_dir: str, tag: str, barrier, errors) -> None:  # type: ignore[no-untyped-def]
    from llmrouter_tui.core.types import Attempt, Result, Usage

    barrier.wait()
    try:
        with Store(Path(data_dir)) as store:
            for i in range(40):
                attempt = Attempt(GROQ, "groq", "ok", ms=1.0, started_at=1.7e9)
                store.record(
                    Result(f"{tag}-{i}", GROQ, GROQ, "groq", "hi", "hello", "ok", 1.0, 1.0,
                           Usage(1, 1, 2), False, False, [attempt], "2026-01-01T00:00:00Z")
                )  # fmt: skip
    except StorageError as exc:
        errors.put(str(exc))


@pytest.mark.slow
def test_workers_starting_at_once_on_a_fresh_directory_all_open_it(tmp_path: Path):
    """gunicorn-style: several processes open a brand-new data directory at the same moment
    (creating the database, switching it to WAL) and record at once. None may fail with
    "database is locked"."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    for round_ in range(8):
        data = tmp_path / f"fresh{round_}"
        barrier = ctx.Barrier(4)
        errors = ctx.Queue()
        procs = [
            ctx.Process(target=_open_and_record, args=(str(data), f"w{n}", barrier, errors))
            for n in range(4)
        ]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(30)
        found = []
        while not errors.empty():
            found.append(errors.get())
        assert found == [], found
        assert [p.exitcode for p in procs] == [0] * 4
        a = audit(data)
        assert_recorded_once(a)
        assert len(a.requests) == len(a.jsonl) == len(a.csv) == 160
