"""Drives an ASGI app's lifespan protocol (startup / shutdown) for the embedded server."""

from __future__ import annotations

import asyncio
from typing import Any

from .types import ASGIApp, Message


class LifespanFailed(Exception):
    """The app reported `lifespan.startup.failed` (or `shutdown.failed`)."""


class Lifespan:
    """Runs one lifespan scope for `app`; apps without lifespan support are tolerated."""

    def __init__(self, app: ASGIApp, state: dict[str, Any]) -> None:
        self._app = app
        self._state = state
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._started = asyncio.Event()
        self._stopped = asyncio.Event()
        self._error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._sent_any = False
        self.supported = True

    async def startup(self) -> None:
        """Send `lifespan.startup` and wait for the app's answer; raise LifespanFailed."""
        self._task = asyncio.create_task(self._run())
        await self._inbox.put({"type": "lifespan.startup"})
        await self._wait(self._started)
        if self._error is not None:
            raise LifespanFailed(self._error)

    async def shutdown(self, timeout_s: float = 10.0) -> None:
        """Send `lifespan.shutdown` and wait (bounded) for the app to finish cleaning up."""
        if self._task is None or not self.supported or self._task.done():
            return
        await self._inbox.put({"type": "lifespan.shutdown"})
        try:
            async with asyncio.timeout(timeout_s):
                await self._wait(self._stopped)
        except TimeoutError:
            self._task.cancel()
        if self._error is not None:
            raise LifespanFailed(self._error)

    async def _wait(self, event: asyncio.Event) -> None:
        assert self._task is not None
        waiter = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()

    async def _run(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self._state,
        }
        try:
            await self._app(scope, self._inbox.get, self._send)
        except Exception as exc:
            if not self._sent_any:
                self.supported = False  # the app does not speak lifespan: serve anyway
            elif not self._stopped.is_set():
                self._error = f"{type(exc).__name__} in the app's lifespan handler"
        finally:
            self._started.set()
            self._stopped.set()

    async def _send(self, message: Message) -> None:
        self._sent_any = True
        kind = message["type"]
        if kind == "lifespan.startup.complete":
            self._started.set()
        elif kind == "lifespan.startup.failed":
            self._error = message.get("message") or "startup failed"
            self._started.set()
        elif kind == "lifespan.shutdown.complete":
            self._stopped.set()
        elif kind == "lifespan.shutdown.failed":
            self._error = message.get("message") or "shutdown failed"
            self._stopped.set()
