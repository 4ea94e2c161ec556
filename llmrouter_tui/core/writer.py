"""The one thread per Store that writes: SQLite transactions, log appends and their file locks.

Writes wait for SQLite's busy timeout and for other processes' log locks. Done on the event
loop, one such wait stalls every request the process is serving; done here, the loop only
awaits a future. One thread keeps writes in submission order (batches, ratings, breaker
state), so nothing about exactly-once changes: each write still runs once, whole.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class Writer:
    """A single-thread executor, started on first use and stopped by `close`."""

    def __init__(self, name: str = "llmrouter-writer") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False
        self._pending = 0  # submitted and not yet finished (for drain checks)

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Queue `fn(*args, **kwargs)` behind every earlier write; its future."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the store's writer is closed; open a new Store")
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix=self._name)
            self._pending += 1
            future = self._executor.submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args, **kwargs)` on the writer thread, awaited without blocking the loop.

        Cancelling the caller does not cancel a write that has started (or is queued): it
        runs whole, as if the caller had stayed.
        """
        return await asyncio.shield(asyncio.wrap_future(self.submit(fn, *args, **kwargs)))

    @property
    def pending(self) -> int:
        """Writes submitted and not finished yet."""
        return self._pending

    def drain(self) -> None:
        """Block until every write submitted so far has finished (for shutdown and tests)."""
        with self._lock:
            executor = self._executor
        if executor is not None:
            executor.submit(lambda: None).result()

    async def drained(self) -> None:
        """Await every write submitted so far (they finish in order)."""
        with self._lock:
            executor = self._executor
        if executor is not None:
            await asyncio.wrap_future(executor.submit(lambda: None))

    def close(self) -> None:
        """Finish the queued writes, then stop the thread; calling it again does nothing."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def _done(self, _future: object) -> None:
        with self._lock:
            self._pending -= 1
