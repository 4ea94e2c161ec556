"""OpenAI-compatible surface: request checks and response/chunk shapes for /v1.

`model` in replies is the model that answered; router details (requested model, fallback,
attempts, cache, timings) ride along under the extra field `x_llmrouter`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ..core.redact import Redactor
from ..core.types import ChatRequest, Result, Started
from .asgi import HTTPError
from .errors import error_object
from .results import failure_detail, failure_status, record, sse
from .validation import bad, opt_bool, opt_int, opt_number, opt_str, require_object

EXTRA_FIELD = "x_llmrouter"
DONE_EVENT = b"data: [DONE]\n\n"

_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
_FINISH = {"stop", "length", "content_filter", "tool_calls", "function_call"}
_UNSUPPORTED = ("tools", "functions", "tool_choice", "function_call")


@dataclass(frozen=True, slots=True)
class V1Input:
    """A validated /v1/chat/completions request."""

    request: ChatRequest
    stream: bool
    include_usage: bool


def _content(value: Any, field: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # content parts: only text is supported
        texts = []
        for index, part in enumerate(value):
            if not isinstance(part, dict) or part.get("type") != "text":
                raise HTTPError(400, f"{field}[{index}]: only text content parts are supported")
            text = part.get("text")
            if not isinstance(text, str):
                raise bad(f"{field}[{index}].text", "a string", text)
            texts.append(text)
        return "".join(texts)
    raise bad(field, "a string or an array of text parts", value)


def parse_v1(body: Any) -> V1Input:
    """Check an OpenAI chat.completions body; unknown sampling options are ignored."""
    body = require_object(body, "a chat.completions request")
    for name in _UNSUPPORTED:
        if body.get(name):
            raise HTTPError(400, f"{name} is not supported by this router")
    n = opt_int(body, "n")
    if n is not None and n != 1:
        raise HTTPError(400, f"n must be 1; got {n}")
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise bad("messages", "a non-empty array of {role, content} objects", raw)
    messages = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise bad(f"messages[{index}]", "an object with role and content", item)
        role = item.get("role")
        if not isinstance(role, str) or role not in _ROLES:
            raise HTTPError(
                400,
                f"messages[{index}].role must be system, developer, user or assistant; "
                f"got {role!r}",
            )
        content = _content(item.get("content"), f"messages[{index}].content")
        messages.append({"role": _ROLES[role], "content": content})
    max_tokens = opt_int(body, "max_completion_tokens")
    if max_tokens is None:
        max_tokens = opt_int(body, "max_tokens")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise bad("stream_options", "an object", options)
    include_usage = bool(opt_bool(options or {}, "include_usage"))
    chat = ChatRequest(
        model=opt_str(body, "model"),
        messages=messages,  # type: ignore[arg-type]  # the router accepts role/content dicts
        temperature=opt_number(body, "temperature"),
        max_tokens=max_tokens,
        ignore_cache=bool(opt_bool(body, "ignore_cache")),
        conversation_id=opt_str(body, "conversation_id"),
        source="v1",
    )
    return V1Input(chat, bool(opt_bool(body, "stream")), include_usage)


def _finish(result: Result) -> str:
    reason = result.finish_reason or "stop"
    return reason if reason in _FINISH else "stop"


def _usage(result: Result) -> dict[str, int]:
    usage = result.usage
    return {
        "prompt_tokens": usage.prompt,
        "completion_tokens": usage.completion,
        "total_tokens": usage.total,
    }


def _details(result: Result, redactor: Redactor) -> dict[str, Any]:
    data = record(result, redactor)
    data.pop("response_text", None)
    return data


def completion(result: Result, redactor: Redactor) -> dict[str, Any]:
    """A `chat.completion` object for a successful Result."""
    return {
        "id": f"chatcmpl-{result.prompt_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": result.model_used,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.response_text},
                "finish_reason": _finish(result),
                "logprobs": None,
            }
        ],
        "usage": _usage(result),
        "system_fingerprint": None,
        EXTRA_FIELD: _details(result, redactor),
    }


def model_list(rows: list[dict[str, Any]], usable: set[str]) -> dict[str, Any]:
    """A `list` of `model` objects: every catalog model that is not retired."""
    return {
        "object": "list",
        "data": [
            {
                "id": row["id"],
                "object": "model",
                "created": 0,
                "owned_by": row["provider"],
                EXTRA_FIELD: {
                    "label": row["label"],
                    "context_window": row["context_window"],
                    "status": row["status"],
                },
            }
            for row in rows
            if row["id"] in usable
        ],
    }


class OpenAIStreamShape:
    """`chat.completion.chunk` events; a failure after the first chunk is a
    `data: {"error": {...}}` event and no `data: [DONE]`."""

    def __init__(self, redactor: Redactor, include_usage: bool) -> None:
        self._redactor = redactor
        self._include_usage = include_usage
        self._id = ""
        self._model = ""
        self._created = int(time.time())

    def _chunk(self, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }

    def opening(self, model: str, started: Started | None) -> bytes:
        self._model = model
        self._id = f"chatcmpl-{started.prompt_id}" if started else "chatcmpl-unknown"
        return sse(self._chunk({"role": "assistant", "content": ""}, None))

    def delta(self, text: str) -> bytes:
        return sse(self._chunk({"content": text}, None))

    def done(self, result: Result) -> bytes:
        self._model = result.model_used or self._model
        last = self._chunk({}, _finish(result))
        last[EXTRA_FIELD] = _details(result, self._redactor)
        out = sse(last)
        if self._include_usage:
            usage_chunk = self._chunk({}, None)
            usage_chunk["choices"] = []
            usage_chunk["usage"] = _usage(result)
            out += sse(usage_chunk)
        return out + DONE_EVENT

    def failed(self, result: Result) -> bytes:
        status = failure_status(result)
        return sse(
            {
                "error": error_object(
                    status, failure_detail(result, self._redactor), result.error_kind
                ),
                EXTRA_FIELD: _details(result, self._redactor),
            }
        )
