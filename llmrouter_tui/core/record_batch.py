"""Group commit for the records of requests that finish together, written off the event loop.

Every request is still recorded before its caller gets the result (the reply carries any
storage warnings, and a rating may follow at once). What changes under load is the cost:
the requests that finish in the same turn of the event loop share one SQLite transaction
and one write per log file, instead of one each. A lone request waits one loop turn.

The batch is written on the store's writer thread (core.writer) and the callers await it
there, so a write waiting for another process's database or log lock never stalls the
loop: other requests keep being served meanwhile. One batch is on the writer at a time;
records that finish meanwhile wait for it and go together in the next (up to MAX_BATCH),
so a transaction's fixed cost (its commit, the summary-table upserts) is shared by as many
requests as finished during the previous write. Without this, a free loop handed the
writer one- or two-record batches and a cache miss cost about 1 ms more CPU
(BENCHMARKS.md, "The streamed cache miss").
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Protocol

from .recorder import CacheWrite
from .types import Result
from .writer import Writer

#: Most records written in one transaction; bounds how many records a killed process can
#: leave in SQLite without their log lines (see README, "Data").
MAX_BATCH = 64

_Written = tuple[list[list[str]], float]  # each result's warnings, perf_counter() when written


class BatchSink(Protocol):
    """What the batcher needs from the store (see core.store.Store.record_many)."""

    def record_many(
        self, results: Sequence[Result], cache_writes: Sequence[CacheWrite] = ()
    ) -> list[list[str]]: ...


class RecordBatcher:
    """Collects records during one event-loop turn and writes them with one `record_many`."""

    def __init__(
        self,
        store: BatchSink,
        max_batch: int = MAX_BATCH,
        on_recorded: Callable[[Result, list[str]], None] | None = None,
        on_lag: Callable[[float], None] | None = None,
        writer: Writer | None = None,
    ) -> None:
        """`on_recorded(result, warnings)` runs on the loop for every result once it is
        written, also when the caller that submitted it has been cancelled meanwhile.
        `on_lag(seconds)` gets, for every result, the time from its submission to its being
        written. Writes go to `writer` (default: the store's own `writer`, if it has one;
        without one they run on the loop, as a test double may want)."""
        self._store = store
        self._max_batch = max_batch
        self._on_recorded = on_recorded
        self._on_lag = on_lag
        found = getattr(store, "writer", None)
        self._writer = (
            writer if writer is not None else found if isinstance(found, Writer) else None
        )
        self._results: list[Result] = []
        self._submitted: list[float] = []  # perf_counter() of each pending result
        self._cache_writes: list[CacheWrite] = []
        self._waiters: list[asyncio.Future[list[str]] | None] = []
        self._in_flight: set[asyncio.Future[_Written]] = set()
        self._unwritten = 0  # records handed to the writer and not yet delivered

    @property
    def pending(self) -> int:
        """Records submitted and not yet written (queued here or on the writer thread)."""
        return len(self._results) + self._unwritten

    async def record(self, result: Result, cache_write: CacheWrite | None = None) -> list[str]:
        """Record `result` (and `cache_write`) with the others of this loop turn; its warnings.

        Cancelling the caller does not cancel the record: it is written with its batch.
        """
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[list[str]] = loop.create_future()
        if not self._results:
            loop.call_soon(self.flush)
        self._results.append(result)
        self._submitted.append(time.perf_counter())
        if cache_write is not None:
            self._cache_writes.append(cache_write)
        self._waiters.append(waiter)
        if len(self._results) >= self._max_batch:
            self.flush()
        return await waiter

    def record_now(self, result: Result) -> None:
        """Send `result` (with anything pending) to be written now, for callers that cannot
        await (a cancelled request): it is written in order behind earlier writes."""
        self._results.append(result)
        self._submitted.append(time.perf_counter())
        self._waiters.append(None)
        self.flush(now=True)

    def flush(self, now: bool = False) -> None:
        """Hand everything pending to the writer; each waiter gets its own warnings once it
        is written. Outside an event loop (or without a writer) this writes before returning.

        While a batch is being written, the pending records wait for it (they are sent when
        it is done) unless `now` or there are `max_batch` of them."""
        if self._in_flight and not now and len(self._results) < self._max_batch:
            return
        results, self._results = self._results, []
        cache_writes, self._cache_writes = self._cache_writes, []
        waiters, self._waiters = self._waiters, []
        submitted, self._submitted = self._submitted, []
        if not results:
            return
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        future: Future[_Written] | None = None
        if self._writer is not None:
            with contextlib.suppress(RuntimeError):  # closed: written here instead
                future = self._writer.submit(self._write, results, cache_writes)
        if future is None or loop is None:
            written = future.result() if future is not None else self._write(results, cache_writes)
            self._deliver(results, waiters, submitted, written)
            return
        self._unwritten += len(results)
        wrapped = asyncio.wrap_future(future, loop=loop)
        self._in_flight.add(wrapped)

        def delivered(done: asyncio.Future[_Written]) -> None:
            self._in_flight.discard(done)
            self._unwritten -= len(results)
            if done.cancelled():  # pragma: no cover - the writer never cancels a write
                return
            self._deliver(results, waiters, submitted, done.result())
            self.flush()  # what finished during this write

        wrapped.add_done_callback(delivered)

    async def drained(self) -> None:
        """Wait until every record submitted so far is written and delivered."""
        self.flush(now=True)
        while self._in_flight or self._results:
            if self._in_flight:
                await asyncio.wait(set(self._in_flight))
            self.flush(now=True)

    def _deliver(
        self,
        results: Sequence[Result],
        waiters: Sequence[asyncio.Future[list[str]] | None],
        submitted: Sequence[float],
        written: _Written,
    ) -> None:
        warnings, at = written
        if self._on_lag is not None:
            for started in submitted:
                self._on_lag(at - started)
        for result, waiter, mine in zip(results, waiters, warnings, strict=True):
            if self._on_recorded is not None:
                self._on_recorded(result, mine)
            if waiter is not None and not waiter.done():  # a cancelled caller is gone
                waiter.set_result(mine)

    def _write(self, results: Sequence[Result], cache_writes: Sequence[CacheWrite]) -> _Written:
        """Runs on the writer thread; never raises (recording must never lose the replies)."""
        try:
            warnings = self._store.record_many(results, cache_writes)
        except Exception:
            warnings = self._one_by_one(results, cache_writes)
        return warnings, time.perf_counter()

    def _one_by_one(
        self, results: Sequence[Result], cache_writes: Sequence[CacheWrite]
    ) -> list[list[str]]:
        """Write each record on its own, so only a record that cannot be stored fails (and
        only its caller hears of it)."""
        warnings: list[list[str]] = []
        for result in results:
            try:
                warnings.append(self._store.record_many([result])[0])
            except Exception as exc:
                warnings.append([f"could not record the request: {exc}"])
        for write in cache_writes:
            with contextlib.suppress(Exception):  # a cache entry is an optimisation
                self._store.record_many([], [write])
        return warnings
