"""Groq through the official `groq` SDK (AsyncGroq, no SDK retries: the router owns them)."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Iterator
from contextlib import aclosing
from typing import Any

from ..types import ToolCallDelta, Usage
from .base import (
    LiveModel,
    ProviderBase,
    ProviderCall,
    ProviderFailure,
    StreamItem,
    TextChunk,
)
from .classify import (
    UpstreamError,
    error_from_value,
    failure_from_inband,
    failure_from_status,
    failure_from_transport,
    kind_for_text,
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


class GroqProvider(ProviderBase):
    """Streams chat completions from Groq."""

    kind = "groq"

    def _new_client(self, pool: dict[str, Any]) -> Any:
        import groq  # lazy: keeps start-up fast
        import httpx

        key = self._settings.api_key.reveal() if self._settings.api_key else "missing"
        # The router enforces first-token, idle and attempt limits itself.
        timeout = httpx.Timeout(None, connect=self._connect_timeout_s)
        return groq.AsyncGroq(
            api_key=key,
            base_url=self._settings.base_url,
            max_retries=0,
            timeout=timeout,
            http_client=groq.DefaultAsyncHttpxClient(timeout=timeout, **pool),
        )

    async def _stream(self, client: Any, call: ProviderCall) -> AsyncGenerator[StreamItem, None]:
        import groq

        params: dict[str, Any] = {
            "model": call.model,
            "messages": openai_messages(call),
            "stream": True,
            **openai_params(call),
        }
        if call.temperature is not None:
            params["temperature"] = call.temperature
        if call.max_tokens is not None:
            params["max_completion_tokens"] = call.max_tokens
        reply = _Reply()
        try:
            stream = await client.chat.completions.create(**params)
            async with stream, aclosing(aiter(stream)) as chunks:
                if is_json_reply(stream.response.headers.get("content-type")):
                    # A whole reply to a stream request (a proxy in front of Groq may do that).
                    for item in reply.take_whole(json_or_text(await stream.response.aread())):
                        yield item
                else:
                    async for chunk in chunks:
                        for chunk_item in reply.take(chunk):
                            yield chunk_item
                        if reply.finish is not None:
                            break
                    if reply.finish is not None:
                        grace_s = trailer_grace_s(call.timeouts)
                        await read_trailer(chunks, reply.take_trailer, grace_s)
        except ProviderFailure:
            raise
        except groq.APIStatusError as exc:
            raise failure_from_status(
                exc.status_code, exc.body, exc.response.headers, got_output=reply.got_output
            ) from None
        except groq.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            raise failure_from_transport(cause, got_output=reply.got_output) from None
        except groq.APIError as exc:  # an error the server sent inside the stream
            # The SDK keeps the `error` field's value (an object or a string) as the body.
            error = error_from_value(exc.body if exc.body is not None else exc.message)
            raise failure_from_inband(error, "stream error", got_output=reply.got_output) from None
        except json.JSONDecodeError as exc:
            raise _undecodable_chunk(exc.doc, got_output=reply.got_output) from None
        except ValueError as exc:
            raise ProviderFailure(
                "malformed",
                f"unparseable chunk ({type(exc).__name__})",
                got_output=reply.got_output,
            ) from None
        except Exception as exc:
            raise failure_from_transport(exc, got_output=reply.got_output) from None
        yield stream_end(reply.finish, reply.usage, "Groq", got_output=reply.got_output)

    async def list_models(self, timeout_s: float) -> list[LiveModel]:
        client = self._get_client()
        page = await client.with_options(timeout=timeout_s).models.list()
        return [
            LiveModel(m.id, getattr(m, "context_window", None), getattr(m, "owned_by", None))
            for m in page.data
        ]

    async def aclose(self) -> None:
        for client in self._take_clients():
            await client.close()


class _Reply:
    """One reply as the SDK hands it over: what it gave so far and how it ended."""

    __slots__ = ("finish", "got_output", "usage")

    def __init__(self) -> None:
        self.got_output = False  # text or a tool call reached the caller
        self.finish: str | None = None
        self.usage: Usage | None = None

    def take(self, chunk: Any) -> Iterator[StreamItem]:
        """The items of one chunk; raises the failure an error in it reports."""
        self.usage = _chunk_usage(chunk) or self.usage
        error = getattr(getattr(chunk, "x_groq", None), "error", None)
        if error:
            raise ProviderFailure(
                "stream_cut", f"Groq stopped the stream: {error}", got_output=self.got_output
            )
        event_error = _event_error(chunk)
        if event_error is not None:
            raise failure_from_inband(event_error, "stream error event", got_output=self.got_output)
        for choice in chunk.choices or ():
            delta = choice.delta
            text = delta.content if delta else None
            if text:
                self.got_output = True
                yield TextChunk(text)
            for call_delta in tool_call_deltas(delta.tool_calls if delta else None):
                self.got_output = True
                yield call_delta
            if choice.finish_reason:
                self.finish = finish_reason(choice.finish_reason)

    def take_trailer(self, chunk: Any) -> bool:
        """Usage from what follows the finish reason (the SDK itself stops at [DONE])."""
        self.usage = _chunk_usage(chunk) or self.usage
        return False

    def take_whole(self, body: Any) -> list[TextChunk | ToolCallDelta]:
        """The items of a whole JSON reply to a stream request (or the error it reports)."""
        items, self.finish, self.usage = whole_reply(body)
        self.got_output = bool(items)
        return items


def _chunk_usage(chunk: Any) -> Usage | None:
    """A chunk's usage: Groq's `x_groq.usage` first, then the OpenAI-style `usage`."""
    x_groq = getattr(chunk, "x_groq", None)
    return usage_from_openai(getattr(x_groq, "usage", None)) or usage_from_openai(
        getattr(chunk, "usage", None)
    )


def _event_error(chunk: Any) -> UpstreamError | None:
    """The error of an `event: error` the SDK did not raise itself: when the event's data has
    no `error` field (vLLM's `{"object": "error", …}`), the SDK yields it as a chunk holding
    `event` and `data`."""
    if getattr(chunk, "event", None) != "error":
        return None
    data = getattr(chunk, "data", None)
    return read_error(data) or error_from_value(data)


def _undecodable_chunk(data: str, *, got_output: bool) -> ProviderFailure:
    """A stream event whose data is not JSON. The SDK raises this for an `event: error` whose
    data is plain text as well, so a text that names a known failure ("model overloaded")
    is that error; anything else is a malformed chunk."""
    text = data.strip()
    if not text.startswith(("{", "[")) and kind_for_text(text.lower()) is not None:
        return failure_from_inband(error_from_value(text), "stream error", got_output=got_output)
    return ProviderFailure("malformed", f"unparseable chunk: {text[:80]!r}", got_output=got_output)
