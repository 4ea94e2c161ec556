"""Reading an OpenAI-style chat-completion stream (Groq, OpenAI-compatible servers).

The body is read as bytes and split into server-sent events here, and each chunk is parsed
with orjson: the SDK's per-chunk pydantic models and SSE decoder cost more CPU than the rest
of a cache miss's provider work together (BENCHMARKS.md, "The streamed cache miss").

Servers differ from OpenAI in ways this reads as they are: errors in every shape
(`classify.read_error`) inside a 200 stream (a `data:` chunk, an `event: error`, llama.cpp's
non-standard `error:` field, OpenRouter's finish reason `error`); a whole JSON reply to a
stream request; streams that end without `[DONE]` or stay open after the finish reason.
Providers adjust what differs through `ChunkReader`'s hooks.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import aclosing
from typing import Any

import orjson

from .base import ProviderFailure, StreamItem, StreamState, read_trailer
from .classify import UpstreamError, error_from_value, failure_from_inband, read_error
from .openai_shape import (
    finish_reason,
    is_json_reply,
    json_or_text,
    tool_call_deltas,
    usage_from_openai,
    whole_reply,
)


async def sse_events(
    chunks: AsyncIterator[bytes], *, error_field: bool = True
) -> AsyncGenerator[tuple[str, bytes], None]:
    """(event name, data) per data line of an event stream, read leniently: every `data:`
    line is an event of its own (servers send one JSON object per line, some without the
    blank line between events), `event:` names the data lines after it until a blank line,
    and (with `error_field`) llama.cpp's non-standard `error: {…}` field (its builds up to
    late 2025) is an error event. Comments (`: OPENROUTER PROCESSING`) and other fields are
    skipped. Lines end with LF, CRLF or CR."""
    name = ""
    rest = b""
    async for chunk in chunks:
        buffer = rest + chunk if rest else chunk
        held = b""
        if b"\r" in buffer:
            if buffer.endswith(b"\r"):  # maybe the first half of a CRLF: wait for the rest
                buffer, held = buffer[:-1], b"\r"
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buffer.split(b"\n")
        rest = lines.pop() + held
        for line in lines:
            if not line:
                name = ""
                continue
            field, _, value = line.partition(b":")
            if field == b"data":
                data = value.strip()
                if data:
                    yield name, data
            elif field == b"event":
                name = value.strip().decode("utf-8", "replace")
            elif field == b"error" and error_field:
                yield "error", value.strip()
    field, _, value = rest.rstrip(b"\r").partition(b":")
    if field == b"data" and value.strip():  # a last line without its line break
        yield name, value.strip()


def parse_json(data: bytes) -> Any:
    """JSON from event data: orjson first (fast), then the standard library for what orjson
    refuses and it takes (lone surrogates; bytes that are not UTF-8, read as a text decoder
    would, with U+FFFD); raises ValueError when neither can. (orjson reads an integer beyond
    64 bits as a float; no field of a chunk holds one.)"""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data.decode("utf-8", "replace"))


class ChunkReader:
    """Turns one stream's events into items through `state`; raises the failure an error
    in the stream reports. The hooks (`undecodable`, `error_event`, `chunk_error`,
    `check_chunk`, `chunk_usage`) are where providers differ."""

    error_field = True  # read llama.cpp's `error:` field (see sse_events)

    def __init__(self, state: StreamState) -> None:
        self.state = state
        self.done = False  # [DONE] arrived

    def take_event(self, name: str, data: bytes) -> list[StreamItem]:
        """The items of one stream event."""
        if data.startswith(b"[DONE]"):
            self.done = True
            return []
        if name == "error":
            raise self.error_event(data)
        try:
            chunk = parse_json(data)
        except ValueError:
            raise self.undecodable(data.decode("utf-8", "replace")) from None
        if not isinstance(chunk, dict):
            raise self.state.failure("malformed", "stream chunk is not an object")
        error = self.chunk_error(chunk)
        if error is not None:
            raise failure_from_inband(error, "stream error", got_output=self.state.got_output)
        self.check_chunk(chunk)
        got_output = self.state.got_output
        try:
            return list(self.take_chunk(chunk))
        except (AttributeError, TypeError, ValueError) as exc:  # JSON, but not a chunk's shape
            self.state.got_output = got_output  # none of this chunk's items were sent
            detail = type(exc).__name__
            raise self.state.failure("malformed", f"unreadable stream chunk ({detail})") from None

    def take_chunk(self, chunk: dict[str, Any]) -> Iterator[StreamItem]:
        state = self.state
        state.take_usage(self.chunk_usage(chunk))
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if text:
                yield state.text(text)
            for call_delta in tool_call_deltas(delta.get("tool_calls")):
                yield state.tool_call(call_delta)
            if choice.get("finish_reason"):
                state.finish = finish_reason(choice["finish_reason"])

    def take_trailer(self, event: tuple[str, bytes]) -> bool:
        """Usage from what follows the finish reason. Reads on to the end of the body, past
        [DONE]: a response read to its end leaves its connection open for the next call."""
        try:
            chunk = parse_json(event[1])
        except ValueError:
            return False
        if isinstance(chunk, dict):
            self.state.take_usage(self.chunk_usage(chunk))
        return False

    def take_whole(self, body: Any) -> list[Any]:
        """The items of a whole JSON reply to a stream request (or the error it reports)."""
        items, self.state.finish, usage = whole_reply(body)
        self.state.take_usage(usage)
        self.state.got_output = bool(items)
        return items

    # ---- hooks ----------------------------------------------------------------------------

    def undecodable(self, text: str) -> ProviderFailure:
        """The failure for event data that is not JSON."""
        return self.state.failure("malformed", "unparseable stream chunk")

    def error_event(self, data: bytes) -> ProviderFailure:
        """The failure an `event: error` (or llama.cpp `error:` field) reports."""
        parsed = json_or_text(data)
        error = read_error(parsed) or error_from_value(parsed)
        return failure_from_inband(error, "stream error event", got_output=self.state.got_output)

    def chunk_error(self, chunk: dict[str, Any]) -> UpstreamError | None:
        """The error a chunk carries instead of a reply, if any."""
        return read_error(chunk)

    def check_chunk(self, chunk: dict[str, Any]) -> None:
        """Raise the failure a provider's own field in a chunk reports (none by default)."""

    def chunk_usage(self, chunk: dict[str, Any]) -> Any:
        return usage_from_openai(chunk.get("usage"))


async def read_stream(
    response: Any, reader: ChunkReader, grace_s: float
) -> AsyncGenerator[StreamItem, None]:
    """The items of a 2xx chat-completion response (an httpx response, not yet read): an
    event stream, or a whole JSON reply. After the finish reason the rest of the body is
    read for up to `grace_s` (usage, [DONE]), so the connection can be reused."""
    if is_json_reply(response.headers.get("content-type")):
        for item in reader.take_whole(json_or_text(await response.aread())):
            yield item
        return
    events = sse_events(response.aiter_bytes(), error_field=reader.error_field)
    async with aclosing(events):
        async for name, data in events:
            for item in reader.take_event(name, data):
                yield item
            if reader.state.finish is not None or reader.done:
                break
        if reader.state.finish is not None:
            await read_trailer(events, reader.take_trailer, grace_s)
