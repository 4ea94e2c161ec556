"""Relay router event streams to an ASGI client as server-sent events.

Headers wait for the first piece of a reply (text or a tool call), so a request that fails
before any gets a proper HTTP error status instead of a 200 stream. After that, a failure
becomes the shape's error event and the stream ends without its normal end marker. A client
that disconnects cancels the routing (the router records the request as cancelled).

`relay` carries one reply; `relay_compare` the two replies of a compare, interleaved as they
come, each event tagged by its shape with its side.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import aclosing
from typing import Protocol

from ..core.compare import CompareEvent
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


class _Reply:
    """One routed request's events turned into its shape's bytes."""

    __slots__ = ("model", "opened", "result", "shape", "started")

    def __init__(self, shape: StreamShape) -> None:
        self.shape = shape
        self.model = ""
        self.started: Started | None = None
        self.opened = False  # the opening was emitted (text, a tool call, or a whole reply)
        self.result: Result | None = None  # set when the request finished (Done or Failed)

    def feed(self, event: Event) -> bytes:
        """The bytes `event` adds to the stream (b"" for none). A failure before the opening
        gives the shape's error event alone."""
        kind = type(event)
        shape = self.shape
        if kind is Delta or kind is ToolCallDelta:
            chunk = b""
            if not self.opened:
                self.opened = True
                chunk = shape.opening(self.model, self.started, kind is Delta)
            if kind is Delta:
                return chunk + shape.delta(event.text)  # type: ignore[union-attr]
            return chunk + shape.tool_call(event)  # type: ignore[arg-type]
        if kind is Started:
            self.started = event  # type: ignore[assignment]
            self.model = event.model  # type: ignore[union-attr]
        elif kind is AttemptFailed:
            if event.next_model:  # type: ignore[union-attr]
                self.model = event.next_model  # type: ignore[union-attr]
        elif kind is Done:
            result = self.result = event.result  # type: ignore[union-attr]
            if self.opened:
                return shape.done(result)
            self.opened = True  # an empty reply: no delta at all
            return shape.opening(result.model_used or self.model, self.started) + shape.done(result)
        elif kind is Failed:
            self.result = event.result  # type: ignore[union-attr]
            return shape.failed(self.result)
        return b""


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


async def _head(send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})


async def relay(
    events: AsyncGenerator[Event, None],
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
    reply = _Reply(shape)
    try:
        async with aclosing(events) as stream:
            async for event in stream:
                if type(event) is Failed and not reply.opened:
                    watch.finished = True
                    await early_failure(event.result)
                    return
                was_open = reply.opened
                chunk = reply.feed(event)
                if not chunk:
                    continue
                if not was_open:
                    await _head(send)
                last = reply.result is not None
                watch.finished = last
                await send({"type": "http.response.body", "body": chunk, "more_body": not last})
                if last:
                    return
    except asyncio.CancelledError:
        if not watch.gone:
            raise
        task.uncancel()  # the client left: nothing more to send
    finally:
        watch.finished = True
        watcher.cancel()


async def relay_compare(
    items: AsyncGenerator[CompareEvent, None],
    shapes: Sequence[StreamShape],
    send: Send,
    receive: Receive,
    *,
    opening: bytes,
    closing: bytes,
    early_failure: Callable[[tuple[Result, Result]], Awaitable[None]],
) -> None:
    """Forward both sides of a compare: `opening` first, then each side's events as they
    come, then `closing` once both finished. Headers wait for either side's first text (or
    whole reply); a side that fails before that is reported in the stream once the other one
    answers, and when both fail first `early_failure(results)` answers instead."""
    task = asyncio.current_task()
    assert task is not None
    watch = _Watch()
    watcher = asyncio.ensure_future(_watch_disconnect(receive, task, watch))
    replies = (_Reply(shapes[0]), _Reply(shapes[1]))
    pending = opening
    head_sent = False
    try:
        async with aclosing(items) as stream:
            async for item in stream:
                chunk = replies[item.side].feed(item.event)
                if not chunk:
                    continue
                pending += chunk
                if not head_sent:
                    if not any(reply.opened for reply in replies):
                        if all(reply.result is not None for reply in replies):
                            watch.finished = True
                            a, b = (reply.result for reply in replies)
                            await early_failure((a, b))  # type: ignore[arg-type]
                            return
                        continue  # a side failed first: said once the other one answers
                    head_sent = True
                    await _head(send)
                if all(reply.result is not None for reply in replies):
                    watch.finished = True
                    body = pending + closing
                    await send({"type": "http.response.body", "body": body, "more_body": False})
                    return
                await send({"type": "http.response.body", "body": pending, "more_body": True})
                pending = b""
        # pragma: no cover - every side ends with Done or Failed (core.compare)
        raise RuntimeError("a compare stream ended before both sides finished")
    except asyncio.CancelledError:
        if not watch.gone:
            raise
        task.uncancel()  # the client left: nothing more to send
    finally:
        watch.finished = True
        watcher.cancel()
