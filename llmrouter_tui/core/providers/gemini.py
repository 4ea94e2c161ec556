"""Gemini through `google-genai` (client.aio, API version pinned to v1beta)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
from collections.abc import AsyncGenerator
from typing import Any

from ..types import ToolCallDelta, Usage
from .base import (
    LiveModel,
    ProviderBase,
    ProviderCall,
    ProviderFailure,
    StreamEnd,
    StreamItem,
    StreamState,
)
from .classify import failure_from_status
from .gemini_shape import gemini_request

# Finish reasons that mean the provider refused or withheld content.
_FILTER_REASONS = {
    "SAFETY",
    "PROHIBITED_CONTENT",
    "BLOCKLIST",
    "SPII",
    "RECITATION",
    "IMAGE_SAFETY",
}
_FINISH_MAP = {"STOP": "stop", "MAX_TOKENS": "length"}


def _enum_name(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "name", value)).upper()


def _usage(meta: Any) -> Usage | None:
    if meta is None:
        return None
    prompt = meta.prompt_token_count
    completion = (meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0)
    if prompt is None and not completion:
        return None
    prompt = int(prompt or 0)
    total = int(meta.total_token_count or prompt + completion)
    return Usage(prompt, int(completion), total, estimated=False)


async def _fetched_images(call: ProviderCall, timeout_s: float) -> dict[str, tuple[str, bytes]]:
    """Gemini takes images inline only: http(s) ones (allowed by the router) are fetched."""
    urls = [image.url for m in call.messages for image in m.images if not image.is_data_url]
    if not urls:
        return {}
    from .image_fetch import fetch_images

    return await fetch_images(urls, timeout_s)


def _tool_call(index: int, part: Any) -> ToolCallDelta:
    """A whole Gemini functionCall part as one tool-call delta (Gemini sends calls whole)."""
    function = part.function_call
    signature = part.thought_signature
    return ToolCallDelta(
        index=index,
        # Gemini may leave the id out; callers need one to answer the call.
        id=function.id or f"call_{os.urandom(6).hex()}",
        name=function.name or "",
        arguments=json.dumps(function.args or {}, ensure_ascii=False),
        signature=base64.b64encode(signature).decode("ascii") if signature else None,
    )


class GeminiProvider(ProviderBase):
    """Streams `streamGenerateContent` replies from the Gemini Developer API."""

    kind = "gemini"

    def _new_client(self, pool: dict[str, Any]) -> Any:
        from google import genai  # lazy: ~0.35 s to import
        from google.genai import types

        key = self._settings.api_key.reveal() if self._settings.api_key else "missing"
        options = types.HttpOptions(
            base_url=self._settings.base_url,
            api_version="v1beta",  # google-genai 3.x defaults to v1
            # google-genai waits forever without a timeout (ms); the router's own
            # first-token/idle/attempt limits are tighter, this is the backstop.
            timeout=int(self._request_timeout_s * 1000),
            async_client_args=pool,
        )
        return genai.Client(api_key=key, http_options=options)

    async def _stream(
        self, client: Any, call: ProviderCall, state: StreamState
    ) -> AsyncGenerator[StreamItem, None]:
        request = gemini_request(call, await _fetched_images(call, self._request_timeout_s))
        stream = await client.aio.models.generate_content_stream(**request)
        async for chunk in stream:
            state.take_usage(_usage(chunk.usage_metadata))
            feedback = chunk.prompt_feedback
            if feedback is not None and feedback.block_reason is not None:
                reason = feedback.block_reason_message or _enum_name(feedback.block_reason)
                raise ProviderFailure("content_filter", f"Gemini blocked the prompt: {reason}")
            for candidate in chunk.candidates or ():
                for part in (candidate.content.parts or ()) if candidate.content else ():
                    if part.function_call is not None:
                        yield state.tool_call(_tool_call(state.tool_calls, part))
                    elif part.text and not part.thought:
                        yield state.text(part.text)
                if candidate.finish_reason is not None:
                    state.finish = _enum_name(candidate.finish_reason)

    def _failure(self, exc: Exception, state: StreamState) -> ProviderFailure:
        import pydantic
        from google.genai import errors

        if isinstance(exc, errors.APIError):
            return failure_from_status(exc.code, exc.details, got_output=state.got_output)
        # A chunk the SDK could not read: not JSON, or not the shape its models declare.
        if isinstance(
            exc, pydantic.ValidationError | json.JSONDecodeError | errors.UnknownApiResponseError
        ):
            detail = type(exc).__name__
            return state.failure("malformed", f"unparseable chunk ({detail})")
        return super()._failure(exc, state)

    def _end(self, state: StreamState) -> StreamEnd:
        finish = state.finish
        if finish is None:
            raise state.failure("stream_cut", "stream ended without a finish reason")
        if finish in _FILTER_REASONS:
            raise ProviderFailure(
                "content_filter", f"Gemini stopped the reply: finish reason {finish}"
            )
        reason = _FINISH_MAP.get(finish, finish.lower())
        # Gemini ends a turn of function calls with STOP; callers know it as "tool_calls".
        return StreamEnd(
            "tool_calls" if state.tool_calls and reason == "stop" else reason, state.usage
        )

    async def list_models(self, timeout_s: float) -> list[LiveModel]:
        import asyncio

        client = self._get_client()

        async def collect() -> list[LiveModel]:
            found = []
            async for model in await client.aio.models.list():
                name = (model.name or "").removeprefix("models/")
                found.append(LiveModel(name, model.input_token_limit, model.display_name))
            return found

        return await asyncio.wait_for(collect(), timeout_s)

    async def aclose(self) -> None:
        for client in self._take_clients():
            # Older SDKs have no aio.aclose; their client closes when collected.
            with contextlib.suppress(Exception):
                await client.aio.aclose()
