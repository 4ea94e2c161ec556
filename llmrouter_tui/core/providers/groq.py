"""Groq through the official `groq` SDK (AsyncGroq, no SDK retries: the router owns them)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from ..types import Usage
from .base import (
    LiveModel,
    ProviderBase,
    ProviderCall,
    ProviderFailure,
    StreamEnd,
    StreamItem,
    TextChunk,
)
from .classify import failure_from_status, failure_from_transport
from .openai_shape import (
    finish_reason,
    openai_messages,
    openai_params,
    tool_call_deltas,
    usage_from_openai,
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

    async def _stream(self, client: Any, call: ProviderCall) -> AsyncIterator[StreamItem]:
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
        got_output = False
        finish: str | None = None
        usage: Usage | None = None
        try:
            stream = await client.chat.completions.create(**params)
            async for chunk in stream:
                x_groq = getattr(chunk, "x_groq", None)
                usage = usage_from_openai(getattr(x_groq, "usage", None)) or usage
                usage = usage_from_openai(getattr(chunk, "usage", None)) or usage
                error = getattr(x_groq, "error", None)
                if error:
                    raise ProviderFailure(
                        "stream_cut", f"Groq stopped the stream: {error}", got_output=got_output
                    )
                for choice in chunk.choices or ():
                    delta = choice.delta
                    text = delta.content if delta else None
                    if text:
                        got_output = True
                        yield TextChunk(text)
                    for call_delta in tool_call_deltas(delta.tool_calls if delta else None):
                        got_output = True
                        yield call_delta
                    if choice.finish_reason:
                        finish = finish_reason(choice.finish_reason)
        except ProviderFailure:
            raise
        except groq.APIStatusError as exc:
            raise failure_from_status(
                exc.status_code, exc.body, exc.response.headers, got_output=got_output
            ) from None
        except groq.APIConnectionError as exc:
            raise failure_from_transport(exc.__cause__ or exc, got_output=got_output) from None
        except groq.APIError as exc:  # an error event inside the stream
            raise ProviderFailure(
                "stream_cut" if got_output else "server_error",
                f"error in stream: {exc.message}"[:500],
                got_output=got_output,
            ) from None
        except (json.JSONDecodeError, ValueError) as exc:
            raise ProviderFailure(
                "malformed", f"unparseable chunk ({type(exc).__name__})", got_output=got_output
            ) from None
        except Exception as exc:
            raise failure_from_transport(exc, got_output=got_output) from None
        if finish is None:
            raise ProviderFailure(
                "stream_cut", "stream ended without a finish reason", got_output=got_output
            )
        if finish == "content_filter":
            raise ProviderFailure("content_filter", "Groq's content filter stopped the reply")
        yield StreamEnd(finish, usage)

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
