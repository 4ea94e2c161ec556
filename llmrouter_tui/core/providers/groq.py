"""Groq through the official `groq` SDK (AsyncGroq, no SDK retries: the router owns them).

The SDK makes the request (auth, base URL, headers) and raises its own exceptions for error
statuses and transport failures; the streamed body is read by `openai_stream`, not by the
SDK's per-chunk pydantic models, through the SDK's documented generic `client.post(...,
cast_to=httpx.Response, stream=True)`: a streamed cache miss then costs about a third less
CPU (BENCHMARKS.md, "The streamed cache miss").
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from .base import (
    LiveModel,
    ProviderBase,
    ProviderCall,
    ProviderFailure,
    StreamEnd,
    StreamItem,
    StreamState,
    trailer_grace_s,
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
from .openai_shape import openai_messages, openai_params, usage_from_openai
from .openai_stream import ChunkReader, parse_json, read_stream

CHAT_PATH = "/openai/v1/chat/completions"  # the path the SDK's chat.completions.create uses


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

    async def _stream(
        self, client: Any, call: ProviderCall, state: StreamState
    ) -> AsyncGenerator[StreamItem, None]:
        import httpx

        body: dict[str, Any] = {
            "messages": openai_messages(call),
            "model": call.model,
            "stream": True,
            **openai_params(call),
        }
        if call.temperature is not None:
            body["temperature"] = call.temperature
        if call.max_tokens is not None:
            body["max_completion_tokens"] = call.max_tokens
        # An error status raises the SDK's APIStatusError here, as create() would.
        response = await client.post(CHAT_PATH, cast_to=httpx.Response, body=body, stream=True)
        try:
            reader = _GroqChunks(state)
            async for item in read_stream(response, reader, trailer_grace_s(call.timeouts)):
                yield item
        finally:
            await response.aclose()

    def _failure(self, exc: Exception, state: StreamState) -> ProviderFailure:
        import groq

        got_output = state.got_output
        if isinstance(exc, groq.APIStatusError):
            return failure_from_status(
                exc.status_code, exc.body, exc.response.headers, got_output=got_output
            )
        if isinstance(exc, groq.APIConnectionError):  # the SDK wraps httpx's exception
            cause = exc.__cause__
            if isinstance(cause, Exception):
                return failure_from_transport(cause, got_output=got_output)
            detail = type(exc).__name__
            if got_output:
                return state.failure("stream_cut", f"stream broke mid-answer ({detail})")
            if isinstance(exc, groq.APITimeoutError):
                return ProviderFailure("timeout", f"no response in time ({detail})")
            return ProviderFailure("connect_error", f"connection dropped before a reply ({detail})")
        if isinstance(exc, groq.APIError):  # an error the server sent (the SDK's own parse)
            error = error_from_value(exc.body if exc.body is not None else exc.message)
            return failure_from_inband(error, "stream error", got_output=got_output)
        return super()._failure(exc, state)

    def _end(self, state: StreamState) -> StreamEnd:
        return state.end("Groq")

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


class _GroqChunks(ChunkReader):
    """Groq's stream as its SDK reads it: usage in `x_groq.usage` (else `usage`), an
    `x_groq.error` that stops the stream, no llama.cpp `error:` field, and an `event: error`
    or data that is not JSON read the way the SDK's own stream did."""

    error_field = False

    def check_chunk(self, chunk: dict[str, Any]) -> None:
        x_groq = chunk.get("x_groq")
        error = x_groq.get("error") if isinstance(x_groq, dict) else None
        if error:
            raise self.state.failure("stream_cut", f"Groq stopped the stream: {error}")

    def chunk_usage(self, chunk: dict[str, Any]) -> Any:
        x_groq = chunk.get("x_groq")
        usage = usage_from_openai(x_groq.get("usage")) if isinstance(x_groq, dict) else None
        return usage or usage_from_openai(chunk.get("usage"))

    def error_event(self, data: bytes) -> ProviderFailure:
        """An `event: error`: its `error` field's value (an object or a string) when it has
        one, else the data as an error of its own (vLLM's `{"object": "error", …}`); data
        that is not JSON is read as `undecodable` reads it."""
        try:
            parsed = parse_json(data)
        except ValueError:
            return self.undecodable(data.decode("utf-8", "replace"))
        got_output = self.state.got_output
        if isinstance(parsed, dict) and parsed.get("error"):
            error: UpstreamError = error_from_value(parsed["error"])
            return failure_from_inband(error, "stream error", got_output=got_output)
        error = read_error(parsed) or error_from_value(parsed)
        return failure_from_inband(error, "stream error event", got_output=got_output)

    def undecodable(self, text: str) -> ProviderFailure:
        """Event data that is not JSON: a text that names a known failure ("model
        overloaded", as an `event: error` may carry) is that error; anything else is a
        malformed chunk."""
        text = text.strip()
        if not text.startswith(("{", "[")) and kind_for_text(text.lower()) is not None:
            error = error_from_value(text)
            return failure_from_inband(error, "stream error", got_output=self.state.got_output)
        return self.state.failure("malformed", f"unparseable chunk: {text[:80]!r}")
