"""Any OpenAI-compatible server (Ollama, vLLM, LM Studio…) over plain httpx and SSE."""

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

    async def _stream(self, client: Any, call: ProviderCall) -> AsyncIterator[StreamItem]:
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
        got_output = False
        finish: str | None = None
        usage: Usage | None = None
        try:
            async with client.stream("POST", "/chat/completions", json=body) as response:
                if response.status_code >= 400:
                    raw = await response.aread()
                    try:
                        parsed: Any = json.loads(raw)
                    except ValueError:
                        parsed = raw.decode("utf-8", "replace")
                    raise failure_from_status(response.status_code, parsed, response.headers)
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    try:
                        chunk = json.loads(data)
                    except ValueError:
                        raise ProviderFailure(
                            "malformed", "unparseable stream chunk", got_output=got_output
                        ) from None
                    if not isinstance(chunk, dict):
                        raise ProviderFailure("malformed", "stream chunk is not an object")
                    if "error" in chunk:
                        raise failure_from_status(
                            int(chunk["error"].get("code") or 500)
                            if str(chunk["error"].get("code", "")).isdigit()
                            else 500,
                            chunk,
                            got_output=got_output,
                        )
                    usage = usage_from_openai(chunk.get("usage")) or usage
                    for choice in chunk.get("choices") or ():
                        delta = choice.get("delta") or {}
                        text = delta.get("content")
                        if text:
                            got_output = True
                            yield TextChunk(text)
                        for call_delta in tool_call_deltas(delta.get("tool_calls")):
                            got_output = True
                            yield call_delta
                        if choice.get("finish_reason"):
                            finish = finish_reason(choice["finish_reason"])
        except ProviderFailure:
            raise
        except Exception as exc:
            raise failure_from_transport(exc, got_output=got_output) from None
        if finish is None:
            raise ProviderFailure(
                "stream_cut", "stream ended without a finish reason", got_output=got_output
            )
        if finish == "content_filter":
            raise ProviderFailure("content_filter", "the server's content filter stopped the reply")
        # A stream that finished but never sent [DONE] is complete: the finish reason says so.
        yield StreamEnd(finish, usage)

    async def list_models(self, timeout_s: float) -> list[LiveModel]:
        client = self._get_client()
        response = await client.get("/models", timeout=timeout_s)
        if response.status_code >= 400:
            raise failure_from_status(response.status_code, response.json(), response.headers)
        return [
            LiveModel(str(m["id"]), m.get("context_window"), m.get("owned_by"))
            for m in response.json().get("data", [])
            if isinstance(m, dict) and "id" in m
        ]

    async def aclose(self) -> None:
        for client in self._take_clients():
            await client.aclose()
