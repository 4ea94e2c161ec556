"""Any OpenAI-compatible server (Ollama, vLLM, LM Studio…) over plain httpx.

The stream is read by `openai_stream` (errors in every shape, whole JSON replies to stream
requests, streams without `[DONE]`); this module only makes the request.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from .base import (
    LiveModel,
    ProviderBase,
    ProviderCall,
    StreamItem,
    StreamState,
    trailer_grace_s,
)
from .classify import failure_from_status
from .openai_shape import json_or_text, openai_messages, openai_params
from .openai_stream import ChunkReader, read_stream


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

    async def _stream(
        self, client: Any, call: ProviderCall, state: StreamState
    ) -> AsyncGenerator[StreamItem, None]:
        async with client.stream("POST", "/chat/completions", json=_request(call)) as response:
            if response.status_code >= 400:
                body = json_or_text(await response.aread())
                raise failure_from_status(response.status_code, body, response.headers)
            reader = ChunkReader(state)
            grace_s = trailer_grace_s(call.timeouts)
            async for item in read_stream(response, reader, grace_s):
                yield item

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
