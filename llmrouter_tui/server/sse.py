"""Relay a router event stream to an ASGI client as server-sent events.

Headers wait for the first piece of the reply (text or a tool call), so a request that fails
before any gets a proper HTTP error status instead of a 200 stream. After that, a failure
becomes the shape's error event and the stream ends without its normal end marker. A client
that disconnects cancels the routing (the router records the request as cancelled).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Protocol

from ..core.types import (
    AttemptFailed,
    Delta,
    Done,
    Event,
    Failed,
    Result,
    Started,
    ToolCallDelta,
)
from .types import Receive, Send

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class StreamShape(Protocol):
    """Bytes for each stage of a stream (one or more complete SSE events each)."""

    def opening(self, model: str, started: Started | None, text_first: bool = True) -> bytes:
        """The start of the stream; `text_first` is False when the reply opens with a tool
        call."""
        ...

    def delta(self, text: str) -> bytes: ...

    def tool_call(self, delta: ToolCallDelta) -> bytes: ...

    def done(self, result: Result) -> bytes: ...

    def failed(self, result: Result) -> bytes: ...


class _Watch:
    __slots__ = ("finished", "gone")

    def __init__(self) -> None:
        self.finished = False
        self.gone = False


async def _watch_disconnect(receive: Receive, task: asyncio.Task[object], watch: _Watch) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            if not watch.finished:
                watch.gone = True
                task.cancel()
            return


async def relay(
    events: AsyncIterator[Event],
    shape: StreamShape,
    send: Send,
    receive: Receive,
    early_failure: Callable[[Result], Awaitable[None]],
) -> None:
    """Forward `events` to the client; `early_failure(result)` answers a failure before text."""
    task = asyncio.current_task()
    assert task is not None
    watch = _Watch()
    watcher = asyncio.ensure_future(_watch_disconnect(receive, task, watch))
    model = ""
    started: Started | None = None
    head_sent = False
    try:
        async with aclosing(events) as stream:
            async for event in stream:
                kind = type(event)
                if kind is Delta or kind is ToolCallDelta:
                    chunk = b""
                    if not head_sent:
                        head_sent = True
                        await send(
                            {"type": "http.response.start", "status": 200, "headers": SSE_HEADERS}
                        )
                        chunk = shape.opening(model, started, kind is Delta)
                    if kind is Delta:
                        chunk += shape.delta(event.text)  # type: ignore[union-attr]
                    else:
                        chunk += shape.tool_call(event)  # type: ignore[arg-type]
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                elif kind is Started:
                    started = event  # type: ignore[assignment]
                    model = started.model  # type: ignore[union-attr]
                elif kind is AttemptFailed:
                    if event.next_model:  # type: ignore[union-attr]
                        model = event.next_model  # type: ignore[union-attr]
                elif kind is Done or kind is Failed:
                    watch.finished = True
                    result: Result = event.result  # type: ignore[union-attr]
                    if head_sent:
                        body = shape.done(result) if kind is Done else shape.failed(result)
                    elif kind is Failed:
                        await early_failure(result)
                        return
                    else:  # an empty reply: no delta at all
                        await send(
                            {"type": "http.response.start", "status": 200, "headers": SSE_HEADERS}
                        )
                        body = shape.opening(result.model_used or model, started) + shape.done(
                            result
                        )
                    await send({"type": "http.response.body", "body": body, "more_body": False})
                    return
    except asyncio.CancelledError:
        if not watch.gone:
            raise
        task.uncancel()  # the client left: nothing more to send
    finally:
        watch.finished = True
        watcher.cancel()
