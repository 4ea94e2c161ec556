"""The app's storage writes, queued on the store's writer thread instead of run on the loop.

A SQLite write waits for another process's write lock (a `--serve` worker, a second app on
the same data directory) up to the busy timeout; run on the event loop, that wait froze every
key and timer of the app. Here the loop only awaits a future. Writes go to the Store's one
writer thread (`core.writer`), the queue the router's records use too, and run in the order
they were queued. Queueing is synchronous: whatever the code queues first is written first
(a turn's messages before a rating of it, two ratings in the order given).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from textual.app import App
from textual.widget import Widget

from ..core.errors import RouterError, StorageError
from ..core.store import Store

P = ParamSpec("P")
T = TypeVar("T")

CLOSED = "the data store is closed (the app is stopping or changed runtime); nothing was saved"


def queue_write(
    store: Store, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
) -> asyncio.Future[T]:
    """Queue `fn(*args, **kwargs)` on `store`'s writer thread now; await the result later.

    Cancelling whoever awaits does not cancel the write: once queued it runs whole. A closed
    store gives a future that fails with StorageError.
    """
    try:
        future = store.writer.submit(fn, *args, **kwargs)
    except RuntimeError:  # the writer was closed with its store
        failed: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        failed.set_exception(StorageError(CLOSED))
        return failed
    return asyncio.shield(asyncio.wrap_future(future))


def report_failure_of(node: App[Any] | Widget, pending: Awaitable[object], title: str) -> None:
    """Await a queued write whose success shows nothing more; a notice if it failed."""

    async def wait() -> None:
        try:
            await pending
        except (RouterError, OSError) as exc:
            reason = str(exc) if isinstance(exc, RouterError) else (exc.strerror or str(exc))
            node.notify(reason, title=title, severity="error", markup=False)

    node.run_worker(wait(), group="storage-writes", exit_on_error=False)
