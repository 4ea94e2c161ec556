"""Group commit for the records of requests that finish together.

Every request is still recorded before its caller gets the result (the reply carries any
storage warnings, and a rating may follow at once). What changes under load is the cost:
the requests that finish in the same turn of the event loop share one SQLite transaction
and one write per log file, instead of one each. A lone request waits one loop turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from .recorder import CacheWrite
from .types import Result

#: Most records written in one transaction; bounds how many records a killed process can
#: leave in SQLite without their log lines (see README, "Data").
MAX_BATCH = 64


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
    ) -> None:
        """`on_recorded(result, warnings)` runs for every result once it is written, also
        when the caller that submitted it has been cancelled meanwhile. `on_lag(seconds)`
        gets, for every result, the time from its submission to its being written."""
        self._store = store
        self._max_batch = max_batch
        self._on_recorded = on_recorded
        self._on_lag = on_lag
        self._results: list[Result] = []
        self._submitted: list[float] = []  # perf_counter() of each pending result
        self._cache_writes: list[CacheWrite] = []
        self._waiters: list[asyncio.Future[list[str]] | None] = []

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

    def record_now(self, result: Result) -> list[str]:
        """Record `result` at once (with anything pending), for callers that cannot wait."""
        self._results.append(result)
        self._submitted.append(time.perf_counter())
        self._waiters.append(None)
        return self.flush()[-1]

    def flush(self) -> list[list[str]]:
        """Write everything pending now; each waiter gets its own warnings."""
        results, self._results = self._results, []
        cache_writes, self._cache_writes = self._cache_writes, []
        waiters, self._waiters = self._waiters, []
        submitted, self._submitted = self._submitted, []
        if not results:
            return []
        try:
            warnings = self._store.record_many(results, cache_writes)
        except Exception:  # recording must never lose the replies
            warnings = self._one_by_one(results, cache_writes)
        if self._on_lag is not None:
            written = time.perf_counter()
            for at in submitted:
                self._on_lag(written - at)
        for result, waiter, mine in zip(results, waiters, warnings, strict=True):
            if self._on_recorded is not None:
                self._on_recorded(result, mine)
            if waiter is not None and not waiter.done():  # a cancelled caller is gone
                waiter.set_result(mine)
        return warnings

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
