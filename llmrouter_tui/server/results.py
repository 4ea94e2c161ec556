"""How a routed Result becomes an HTTP answer: statuses, error details, /chat stream events,
and what happens when the client leaves before a whole reply is ready."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar, cast

from ..core.redact import Redactor
from ..core.types import Result, Started, ToolCallDelta
from .asgi import HTTPError, dumps
from .types import Receive
from .wire_shapes import (
    ChatResult,
    DeltaEvent,
    DoneEvent,
    ErrorEvent,
    StartEvent,
    ToolCallChunk,
    ToolCallEvent,
)

#: Result.error_kind -> HTTP status for a request that failed for good.
FAILURE_STATUS: dict[str, int] = {
    "deadline": 504,  # total_timeout_s ran out
    "content_filter": 422,  # the provider refused the content; retrying elsewhere will not help
    "bad_request": 400,  # the provider rejected the request itself (e.g. bad parameters)
    "context_length": 400,  # too long for every candidate's context window
}
DEFAULT_FAILURE_STATUS = 502  # every candidate failed (or the stream broke)


def failure_status(result: Result) -> int:
    return FAILURE_STATUS.get(result.error_kind or "", DEFAULT_FAILURE_STATUS)


def failure_detail(result: Result, redactor: Redactor) -> str:
    """The reason with every attempt listed (the router's summary), keys removed."""
    return redactor.text(result.error or "the request failed")


def record(result: Result, redactor: Redactor) -> ChatResult:
    """The full result record as JSON-ready data, keys removed from error texts."""
    # Result.as_dict is the core's (typed loosely there); its fields are wire_shapes.ChatResult,
    # as tests/test_wire_shapes.py checks on every route.
    return cast(ChatResult, redactor.record(result.as_dict()))


def failure_error(result: Result, redactor: Redactor) -> HTTPError:
    """An HTTPError for a failed Result: detail plus prompt_id, error_kind and attempts."""
    data = record(result, redactor)
    return HTTPError(
        failure_status(result),
        failure_detail(result, redactor),
        extra={
            "prompt_id": result.prompt_id,
            "error_kind": result.error_kind,
            "attempts": data["attempts"],
        },
    )


T = TypeVar("T")

# Watching for a disconnect costs two tasks and a socket read per request; replies quicker than
# this (cache hits, fast upstreams) finish before a disconnect could matter, so are not watched.
WATCH_AFTER_S = 0.05


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass  # a body left unread: the request already has all it needs


async def unless_disconnected(routing: Awaitable[T], receive: Receive) -> T | None:
    """Await a whole-reply `routing`; None if the client disconnects first.

    The disconnect cancels the routing (and so its upstream call), and the router records
    the request as cancelled, as for a stream whose client leaves.
    """
    task = asyncio.current_task()
    assert task is not None
    gone = False
    watcher: asyncio.Future[None] | None = None

    async def watch() -> None:
        nonlocal gone
        await _until_disconnect(receive)
        gone = True
        task.cancel()

    def start_watching() -> None:
        nonlocal watcher
        watcher = asyncio.ensure_future(watch())

    timer = asyncio.get_running_loop().call_later(WATCH_AFTER_S, start_watching)
    try:
        result = await routing
    except asyncio.CancelledError:
        if not gone:
            raise  # cancelled for another reason (server shutdown): not ours to swallow
        task.uncancel()
        return None
    finally:
        timer.cancel()
        if watcher is not None:
            watcher.cancel()
    if gone:  # the routing ended before our cancel reached it: still nobody to answer
        task.uncancel()
        return None
    return result


def sse(payload: Any) -> bytes:
    """One server-sent event carrying JSON (a single `data:` line)."""
    return b"data: " + dumps(payload) + b"\n\n"


class ChatStreamShape:
    """Events of `POST /chat?stream=true`.

    `start` (prompt_id, model…), `delta` (text) per piece (`tool_call`, OpenAI's streamed
    tool-call entry, for a model that calls a tool), then exactly one of `done` (the full
    record, as the non-streaming reply) or `error` (`{"error": {...}}`, never a normal end).
    Subclasses change every event in one place, `event()` (a compare tags them by side).
    """

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor

    def event(self, payload: Mapping[str, Any]) -> bytes:
        return sse(payload)

    def opening(self, model: str, started: Started | None, text_first: bool = True) -> bytes:
        start: StartEvent = {
            "type": "start",
            "prompt_id": started.prompt_id if started else None,
            "requested_model": started.requested_model if started else None,
            "model": model,
            "notice": started.notice if started else None,
        }
        return self.event(start)

    def delta(self, text: str) -> bytes:
        delta: DeltaEvent = {"type": "delta", "text": text}
        return self.event(delta)

    def tool_call(self, delta: ToolCallDelta) -> bytes:
        # The core's dict is OpenAI's streamed tool-call entry (wire_shapes.ToolCallChunk).
        piece: ToolCallEvent = {
            "type": "tool_call",
            "tool_call": cast(ToolCallChunk, delta.as_openai()),
        }
        return self.event(piece)

    def done(self, result: Result) -> bytes:
        done: DoneEvent = {"type": "done", "result": record(result, self._redactor)}
        return self.event(done)

    def failed(self, result: Result) -> bytes:
        failed: ErrorEvent = {
            "type": "error",
            "error": {
                "status": failure_status(result),
                "kind": result.error_kind,
                "message": failure_detail(result, self._redactor),
            },
            "result": record(result, self._redactor),
        }
        return self.event(failed)
