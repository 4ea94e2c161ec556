"""Writes wait for locks on the store's writer thread, never on the event loop.

Another connection holds the database's write lock (as another worker's long write would):
requests whose records wait for it keep waiting, while the loop keeps running other work and
the server keeps answering; once the lock is released each record is written exactly once
(SQLite, JSONL, CSV) before its request is acknowledged.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from server_helpers import serving
from waiting import until, wait_until

from llmrouter_tui.core import db
from llmrouter_tui.core.logsinks import read_csv, read_jsonl
from llmrouter_tui.core.metrics import LoopLag
from llmrouter_tui.core.runtime import Runtime
from llmrouter_tui.core.store import Store
from llmrouter_tui.core.types import ChatRequest, Started
from llmrouter_tui.server.app import create_app

GROQ = "openai/gpt-oss-20b"


@contextmanager
def write_locked(db: Path) -> Iterator[sqlite3.Connection]:
    """Hold the database's write lock from a connection of its own until the block ends."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    try:
        yield conn
    finally:
        conn.execute("COMMIT")
        conn.close()


class Ticker:
    """A task that counts the loop turns it gets: a loop stalled by a lock wait gets none."""

    def __init__(self) -> None:
        self.ticks = 0
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0.005)
            self.ticks += 1

    async def until(self, ticks: int, unless: asyncio.Future[object]) -> None:
        """Wait for `ticks` more ticks, or for `unless` to finish first."""
        goal = self.ticks + ticks
        while self.ticks < goal and not unless.done():
            await asyncio.sleep(0.005)

    def stop(self) -> None:
        self._task.cancel()


def recorded(runtime: Runtime, prompt_id: str) -> dict[str, int]:
    logs = runtime.store.logs_dir
    db = sqlite3.connect(runtime.store.path)
    try:
        (in_db,) = db.execute(
            "SELECT count(*) FROM requests WHERE prompt_id = ?", (prompt_id,)
        ).fetchone()
    finally:
        db.close()
    return {
        "sqlite": in_db,
        "jsonl": Counter(r["prompt_id"] for r in read_jsonl(logs / "prompts.jsonl")[0])[prompt_id],
        "csv": Counter(r["prompt_id"] for r in read_csv(logs / "prompts.csv")[0])[prompt_id],
    }


async def test_a_locked_database_does_not_stop_the_loop_and_the_record_waits_for_it(
    make_runtime: Callable[..., Runtime], upstream
) -> None:
    runtime = make_runtime()
    await runtime.router.complete(ChatRequest(model=GROQ, prompt="warm"))  # logs exist
    ticker = Ticker()
    try:
        with write_locked(runtime.store.path):
            routed = asyncio.ensure_future(
                runtime.router.complete(ChatRequest(model=GROQ, prompt="under the lock"))
            )
            await ticker.until(40, unless=routed)
            # The loop kept turning while the record waited for the lock; the reply is not
            # acknowledged before it is recorded.
            assert ticker.ticks >= 40 and not routed.done()
        result = await routed
    finally:
        ticker.stop()
    assert result.status == "ok" and result.warnings == []
    assert recorded(runtime, result.prompt_id) == {"sqlite": 1, "jsonl": 1, "csv": 1}


async def test_requests_finishing_and_cancelled_under_the_lock_are_each_recorded_once(
    make_runtime: Callable[..., Runtime], upstream
) -> None:
    upstream.chunk_delay_s = 0.02
    runtime = make_runtime()
    await runtime.router.complete(ChatRequest(model=GROQ, prompt="warm"))
    started: list[str] = []

    async def leave_early() -> None:
        async for event in runtime.router.stream(ChatRequest(model=GROQ, prompt="long")):
            if isinstance(event, Started):
                started.append(event.prompt_id)

    with write_locked(runtime.store.path):
        finished = [
            asyncio.ensure_future(
                runtime.router.complete(ChatRequest(model=GROQ, prompt=f"under the lock {i}"))
            )
            for i in range(8)
        ]
        leaving = asyncio.ensure_future(leave_early())
        await until(lambda: started, "the request that leaves early to start")
        leaving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leaving  # the cancelled request's record is queued behind the lock
        await asyncio.sleep(0.05)
        assert not any(task.done() for task in finished)
    results = await asyncio.gather(*finished)
    await runtime.store.writer.drained()
    for prompt_id in [r.prompt_id for r in results] + started:
        assert recorded(runtime, prompt_id) == {"sqlite": 1, "jsonl": 1, "csv": 1}, prompt_id
    assert runtime.store.get_request(started[0])["status"] == "cancelled"


@pytest.fixture
async def app_server(
    make_runtime: Callable[..., Runtime],
) -> AsyncIterator[tuple[str, Runtime]]:
    runtime = make_runtime()
    async with serving(create_app(runtime, token="")) as server:
        yield server.url, runtime


async def test_the_server_answers_while_a_rating_waits_for_the_lock(app_server, upstream) -> None:
    url, runtime = app_server
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        chat = await client.post(f"/chat?model={GROQ}", json={"prompt": "rate me"})
        prompt_id = chat.json()["prompt_id"]
        with write_locked(runtime.store.path):
            rating = asyncio.ensure_future(
                client.post("/rate", json={"prompt_id": prompt_id, "rating": 4})
            )
            metrics = runtime.router.metrics
            await until(  # the server has it
                lambda: metrics.in_flight > 0 or rating.done(), "the server to take the rating"
            )
            # Other requests are served while the rating waits for the lock.
            stats = await client.get("/stats")
            assert stats.status_code == 200
            assert not rating.done()
        rated = await rating
    assert rated.status_code == 200, rated.text
    assert rated.json()["rating"] == 4
    ratings = read_jsonl(runtime.store.logs_dir / "ratings.jsonl")[0]
    assert [r["prompt_id"] for r in ratings] == [prompt_id]  # once
    assert runtime.store.get_rating(prompt_id)["rating"] == 4


# ---- the loop-lag probe behind /metrics ------------------------------------------------------


async def test_the_loop_lag_probe_sees_a_stall() -> None:
    lag = LoopLag(interval_s=0.005)
    lag.watch()
    lag.watch()  # idempotent: one probe
    try:
        await until(lambda: lag.histogram.count >= 2, "two loop-lag probe ticks")
        time.sleep(0.1)  # a blocking call on the loop, deliberately
        seen = lag.histogram.count
        await until(lambda: lag.histogram.count > seen, "a probe tick after the stall")
    finally:
        lag.stop()
    assert lag.max_s >= 0.09  # the probe woke at least the blocked time late
    above_50ms = sum(lag.histogram.counts[lag.histogram.bounds.index(0.05) + 1 :])
    assert above_50ms >= 1


async def test_metrics_exposes_the_loop_lag(app_server, upstream) -> None:
    url, _runtime = app_server
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        await client.get("/health")  # the first request starts the probe

        async def lag_counted() -> str | None:
            text = (await client.get("/metrics")).text
            count = re.search(r"^llmrouter_event_loop_lag_seconds_count (\S+)$", text, re.M)
            return text if count is not None and float(count[1]) >= 1 else None

        text = await until(lag_counted, "/metrics to count a loop-lag probe tick")
    assert re.search(r"^llmrouter_event_loop_lag_max_seconds \S+$", text, re.M)


# ---- conversation writes do not hold up readers ----------------------------------------------


def test_a_conversation_write_waiting_for_the_lock_leaves_reads_free(tmp_path: Path, monkeypatch):
    # A long busy timeout: a reader stuck behind the waiting write would wait past HANG_S.
    monkeypatch.setattr(db, "BUSY_TIMEOUT_S", 120.0)
    store = Store(tmp_path)
    try:
        conv_id = store.conversations.create("before")
        with write_locked(store.path):
            writing = threading.Thread(
                target=store.conversations.update_settings,
                args=(conv_id,),
                kwargs={"title": "after"},
            )
            writing.start()
            # The write holds one of the store's locks while it waits for SQLite's.
            wait_until(
                lambda: store._write_lock.locked() or store._lock.locked(),
                "the conversation write to wait for the database lock",
            )
            read: list[object] = []
            reading = threading.Thread(target=lambda: read.append(store.conversations.list()))
            reading.start()
            wait_until(lambda: read, "a conversation read while the write waits")
            assert [c["title"] for c in read[0]] == ["before"]  # type: ignore[index]
            assert writing.is_alive()
        writing.join()
        reading.join()
        assert store.conversations.get(conv_id)["title"] == "after"
    finally:
        store.close()
