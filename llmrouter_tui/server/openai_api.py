"""OpenAI-compatible surface: request checks and response/chunk shapes for /v1.

`model` in replies is the model that answered; router details (requested model, fallback,
attempts, cache, timings) ride along under the extra field `x_llmrouter`. Which request
fields are passed, accepted or refused is declared once, in parameters.PARAMETERS.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast, get_args

from ..core.catalog import ModelRow
from ..core.errors import UnknownModelError
from ..core.params import params_from_openai
from ..core.redact import Redactor
from ..core.runtime import Runtime
from ..core.types import ChatRequest, Result, Started, ToolCallDelta
from .errors import error_object
from .parameters import check_v1_fields
from .results import failure_detail, failure_status, record, sse
from .validation import bad, opt_bool, opt_int, opt_number, opt_str, require_object
from .wire_shapes import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunkBody,
    ChunkDelta,
    FinishReason,
    Model,
    ModelList,
    StreamError,
    ToolCall,
    ToolCallChunk,
    Usage,
)

EXTRA_FIELD: Final = "x_llmrouter"
DONE_EVENT = b"data: [DONE]\n\n"

_FINISH = frozenset(get_args(FinishReason))


@dataclass(frozen=True, slots=True)
class V1Input:
    """A validated /v1/chat/completions request."""

    request: ChatRequest
    stream: bool
    include_usage: bool


def parse_v1(body: Any, default_model: str) -> V1Input:
    """Check an OpenAI chat.completions body. Unknown fields, and fields no model here can
    honour, are refused by name (parameters.check_v1_fields); messages go to the core as
    they are (it reads content parts, tool calls and tool results, and names a bad field).
    """
    body = require_object(body, "a chat.completions request")
    model = opt_str(body, "model")
    check_v1_fields(body, model if model is not None else default_model)
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise bad("messages", "a non-empty array of message objects", raw)
    max_tokens = opt_int(body, "max_completion_tokens")
    if max_tokens is None:
        max_tokens = opt_int(body, "max_tokens")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise bad("stream_options", "an object", options)
    include_usage = bool(opt_bool(options or {}, "include_usage"))
    opt_bool(options or {}, "include_obfuscation")  # accepted (and checked), nothing to do
    chat = ChatRequest(
        model=model,
        messages=list(raw),  # the core parses OpenAI message dicts itself
        temperature=opt_number(body, "temperature"),
        max_tokens=max_tokens,
        ignore_cache=bool(opt_bool(body, "ignore_cache")),
        conversation_id=opt_str(body, "conversation_id"),
        source="v1",
        params=params_from_openai(body),
    )
    return V1Input(chat, bool(opt_bool(body, "stream")), include_usage)


def _finish(result: Result) -> FinishReason:
    reason = result.finish_reason or "stop"
    return cast(FinishReason, reason) if reason in _FINISH else "stop"


def _usage(result: Result) -> Usage:
    """OpenAI's usage object, plus `estimated` (our count, not the provider's, for some of it)."""
    usage = result.usage
    return {
        "prompt_tokens": usage.prompt,
        "completion_tokens": usage.completion,
        "total_tokens": usage.total,
        "estimated": usage.estimated,
    }


def _details(result: Result, redactor: Redactor) -> dict[str, Any]:
    data = cast(dict[str, Any], record(result, redactor))  # RouterDetails: it, less the text
    data.pop("response_text", None)
    return data


def _message(result: Result) -> AssistantMessage:
    """The assistant message: `content` null when the model only called tools (as OpenAI)."""
    if not result.tool_calls:
        return {"role": "assistant", "content": result.response_text}
    return {
        "role": "assistant",
        "content": result.response_text or None,
        # The core's as_dict is OpenAI's tool call (wire_shapes.ToolCall), typed loosely there.
        "tool_calls": cast(list[ToolCall], [call.as_dict() for call in result.tool_calls]),
    }


def completion(result: Result, redactor: Redactor) -> ChatCompletion:
    """A `chat.completion` object for a successful Result."""
    return {
        "id": f"chatcmpl-{result.prompt_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": result.model_used or result.requested_model,  # set on every answer
        "choices": [
            {
                "index": 0,
                "message": _message(result),
                "finish_reason": _finish(result),
                "logprobs": None,
            }
        ],
        "usage": _usage(result),
        "system_fingerprint": None,
        EXTRA_FIELD: _details(result, redactor),
    }


def model_object(row: Mapping[str, Any]) -> Model:
    """One `model` object; our details (capabilities included) under `x_llmrouter`."""
    return {
        "id": row["id"],
        "object": "model",
        "created": 0,
        "owned_by": row["provider"],
        EXTRA_FIELD: {
            "label": row["label"],
            "context_window": row["context_window"],
            "status": row["status"],
            "replacement": row["replacement"],
            "capabilities": row["capabilities"],
        },
    }


def retrieved_model(runtime: Runtime, model_id: str) -> Model | None:
    """GET /v1/models/{id}: a catalog model (retired ones too: they are still served), or a
    `PROVIDER:MODEL` id /v1/chat/completions would accept (its provider configured, the id
    valid for the provider's kind); None when neither."""
    rows = runtime.model_rows()
    for row in rows:
        if row["id"] == model_id:
            return model_object(row)
    provider, sep, _ = model_id.partition(":")
    if not sep or provider not in runtime.settings.providers:
        return None
    catalog = runtime.catalog
    try:
        resolution = catalog.resolve(model_id)  # checks the id as a request would
    except UnknownModelError:
        return None
    router = runtime.router
    status = "not in the catalog"  # the provider alone knows whether it serves this id
    if not router.providers.has_key(provider):
        status = "no key"
    elif router.breaker.state(resolution.key) != "closed":
        status = "cooling down"
    return model_object(
        {
            "id": model_id,
            "provider": provider,
            "label": model_id,
            "context_window": catalog.context_window(model_id, provider),
            "status": status,
            "replacement": None,
            # The catalog entry's when the id names a catalog model, else the kind's defaults.
            "capabilities": catalog.capabilities(model_id, provider).as_dict(),
        }
    )


def listed(row: ModelRow) -> bool:
    """Is a model row listed (GET /v1/models, /models' available_models)? `auto` and every
    catalog model that is not retired (retired ids still answer: their replacement serves)."""
    return row["catalog_status"] != "retired"


def model_list(rows: Sequence[ModelRow]) -> ModelList:
    """A `list` of `model` objects: `auto` and every catalog model that is not retired."""
    return {"object": "list", "data": [model_object(row) for row in rows if listed(row)]}


class OpenAIStreamShape:
    """`chat.completion.chunk` events; a failure after the first chunk is a
    `data: {"error": {...}}` event and no `data: [DONE]`."""

    def __init__(self, redactor: Redactor, include_usage: bool) -> None:
        self._redactor = redactor
        self._include_usage = include_usage
        self._id = ""
        self._model = ""
        self._created = int(time.time())

    def _chunk(self, delta: ChunkDelta, finish: FinishReason | None) -> ChatCompletionChunkBody:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }

    def opening(self, model: str, started: Started | None, text_first: bool = True) -> bytes:
        self._model = model
        self._id = f"chatcmpl-{started.prompt_id}" if started else "chatcmpl-unknown"
        # A reply that starts with a tool call has no content, as OpenAI's own streams show.
        return sse(self._chunk({"role": "assistant", "content": "" if text_first else None}, None))

    def delta(self, text: str) -> bytes:
        return sse(self._chunk({"content": text}, None))

    def tool_call(self, delta: ToolCallDelta) -> bytes:
        piece = cast(ToolCallChunk, delta.as_openai())  # the core's dict is OpenAI's chunk
        return sse(self._chunk({"tool_calls": [piece]}, None))

    def done(self, result: Result) -> bytes:
        self._model = result.model_used or self._model
        last = self._chunk({}, _finish(result))
        last[EXTRA_FIELD] = _details(result, self._redactor)
        if not self._include_usage:
            # Every stream ends with its usage: alongside finish_reason unless the client
            # asked for OpenAI's separate usage chunk.
            last["usage"] = _usage(result)
        out = sse(last)
        if self._include_usage:
            usage_chunk = self._chunk({}, None)
            usage_chunk["choices"] = []
            usage_chunk["usage"] = _usage(result)
            out += sse(usage_chunk)
        return out + DONE_EVENT

    def failed(self, result: Result) -> bytes:
        status = failure_status(result)
        event: StreamError = {
            "error": error_object(
                status, failure_detail(result, self._redactor), result.error_kind
            ),
            EXTRA_FIELD: _details(result, self._redactor),
        }
        return sse(event)
