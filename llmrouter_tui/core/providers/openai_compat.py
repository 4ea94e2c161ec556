"""Any OpenAI-compatible server (Ollama, vLLM, LM Studio…) over plain httpx and SSE.

Servers differ from OpenAI in ways this reads as they are: errors in every shape
(`classify.read_error`), at an error status or inside a 200 stream (a `data:` chunk, an
`event: error`, llama.cpp's non-standard `error:` field, OpenRouter's finish reason
`error`); a whole JSON reply to a stream request; streams that end without `[DONE]` or
stay open after the finish reason.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import aclosing
from typing import Any

from ..types import ToolCallDelta, Usage
from .base import (
    LiveModel,
    ProviderBase,
    ProviderCall,
    ProviderFailure,
    StreamEnd,
    StreamItem,
    TextChunk,
)
from .classify import (
    error_from_value,
    failure_from_inband,
    failure_from_status,
    failure_from_transport,
    read_error,
)
from .openai_shape import (
    finish_reason,
    is_json_reply,
    json_or_text,
    openai_messages,
    openai_params,
    read_trailer,
    stream_end,
    tool_call_deltas,
    trailer_grace_s,
    usage_from_openai,
    whole_reply,
)

_SERVER = "the server"


class OpenAICompatProvider(ProviderBase):
    """Streams `/chat/completions` from `base_url` (which includes `/v1`)."""

    kind = "openai"

    def _new_client(self, pool: dict[str, Any]) -> Any:
        import httpx

        headers = {"Accept": "application/json"}
        if self._settings.api_key:
            headers["Authorization"] = f"Bearer {self._settings.api_key.reveal()}"
        return httpx.AsyncClient(
            base_url=(self._settings.base_url or "").rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(None, connect=self._connect_timeout_s),
            **pool,
        )

    async def _stream(self, client: Any, call: ProviderCall) -> AsyncGenerator[StreamItem, None]:
        reply = _Reply()
        try:
            async with client.stream("POST", "/chat/completions", json=_request(call)) as response:
                if response.status_code >= 400:
                    body = await _read_body(response)
                    raise failure_from_status(response.status_code, body, response.headers)
                if is_json_reply(response.headers.get("content-type")):
                    for item in reply.take_whole(await _read_body(response)):
                        yield item
                else:
                    async with aclosing(_sse_events(response.aiter_lines())) as events:
                        async for name, data in events:
                            for event_item in reply.take_event(name, data):
                                yield event_item
                            if reply.finish is not None or reply.done:
                                break
                        if reply.finish is not None:
                            await read_trailer(
                                events, reply.take_trailer, trailer_grace_s(call.timeouts)
                            )
        except ProviderFailure:
            raise
        except Exception as exc:
            raise failure_from_transport(exc, got_output=reply.got_output) from None
        # A stream that finished but never sent [DONE] is complete: the finish reason says so.
        yield reply.end()

    async def list_models(self, timeout_s: float) -> list[LiveModel]:
        client = self._get_client()
        response = await client.get("/models", timeout=timeout_s)
        if response.status_code >= 400:
            raise failure_from_status(
                response.status_code, json_or_text(response.content), response.headers
            )
        return [
            LiveModel(str(m["id"]), m.get("context_window"), m.get("owned_by"))
            for m in response.json().get("data", [])
            if isinstance(m, dict) and "id" in m
        ]

    async def aclose(self) -> None:
        for client in self._take_clients():
            await client.aclose()


def _request(call: ProviderCall) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": call.model,
        "messages": openai_messages(call),
        "stream": True,
        "stream_options": {"include_usage": True},
        **openai_params(call),
    }
    if call.temperature is not None:
        body["temperature"] = call.temperature
    if call.max_tokens is not None:
        body["max_tokens"] = call.max_tokens
    return body


async def _read_body(response: Any) -> Any:
    return json_or_text(await response.aread())


async def _sse_events(lines: AsyncIterator[str]) -> AsyncGenerator[tuple[str, str], None]:
    """(event name, data) per data line of an event stream, read leniently: every `data:`
    line is an event of its own (servers send one JSON object per line, some without the
    blank line between events), `event:` names the data lines after it until a blank line,
    and llama.cpp's non-standard `error: {…}` field (its builds up to late 2025) is an
    error event. Comments (`: OPENROUTER PROCESSING`) and other fields are skipped."""
    name = ""
    async for line in lines:
        if not line:
            name = ""
            continue
        field, _, value = line.partition(":")
        if field == "data":
            data = value.strip()
            if data:
                yield name, data
        elif field == "event":
            name = value.strip()
        elif field == "error":
            yield "error", value.strip()


class _Reply:
    """One reply as it arrives: what it gave so far and how it ended."""

    __slots__ = ("done", "finish", "got_output", "usage")

    def __init__(self) -> None:
        self.got_output = False  # text or a tool call reached the caller
        self.finish: str | None = None
        self.usage: Usage | None = None
        self.done = False  # [DONE] arrived

    def take_event(self, name: str, data: str) -> Iterator[StreamItem]:
        """The items of one stream event; raises the failure an error event reports."""
        if data == "[DONE]":
            self.done = True
            return
        if name == "error":
            parsed = json_or_text(data)
            error = read_error(parsed) or error_from_value(parsed)
            raise failure_from_inband(error, "stream error event", got_output=self.got_output)
        try:
            chunk = json.loads(data)
        except ValueError:
            raise ProviderFailure(
                "malformed", "unparseable stream chunk", got_output=self.got_output
            ) from None
        if not isinstance(chunk, dict):
            raise ProviderFailure(
                "malformed", "stream chunk is not an object", got_output=self.got_output
            )
        chunk_error = read_error(chunk)
        if chunk_error is not None:
            raise failure_from_inband(chunk_error, "stream error", got_output=self.got_output)
        yield from self._take_chunk(chunk)

    def _take_chunk(self, chunk: dict[str, Any]) -> Iterator[StreamItem]:
        self.usage = usage_from_openai(chunk.get("usage")) or self.usage
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if text:
                self.got_output = True
                yield TextChunk(text)
            for call_delta in tool_call_deltas(delta.get("tool_calls")):
                self.got_output = True
                yield call_delta
            if choice.get("finish_reason"):
                self.finish = finish_reason(choice["finish_reason"])

    def take_trailer(self, event: tuple[str, str]) -> bool:
        """Usage from what follows the finish reason. Reads on to the end of the body, past
        [DONE]: a response read to its end leaves its connection open for the next call."""
        chunk = json_or_text(event[1])
        if isinstance(chunk, dict):
            self.usage = usage_from_openai(chunk.get("usage")) or self.usage
        return False

    def take_whole(self, body: Any) -> list[TextChunk | ToolCallDelta]:
        """The items of a whole JSON reply to a stream request (or the error it reports)."""
        items, self.finish, self.usage = whole_reply(body)
        self.got_output = bool(items)
        return items

    def end(self) -> StreamEnd:
        return stream_end(self.finish, self.usage, _SERVER, got_output=self.got_output)
