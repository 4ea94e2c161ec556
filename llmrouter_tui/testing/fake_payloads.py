"""Wire-format bodies for the fake upstream: replies, stream events, errors and model listings.

Every builder returns bytes ready to put on the wire. Shapes follow
`/work/shared/notes/provider-facts.md` (Groq, OpenAI-compatible, Gemini REST).
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from llmrouter_tui.testing.fake_features import FakeToolCall, field_of

Provider = str  # "groq" | "gemini" | "openai"

DEFAULT_MODELS: dict[str, list[str]] = {
    "groq": [
        "openai/gpt-oss-20b",
        "openai/gpt-oss-120b",
        "qwen/qwen3.6-27b",
        "groq/compound",
        "groq/compound-mini",
    ],
    "gemini": [
        "gemini-3.5-flash",
        "gemini-3.5-flash-lite",
        "gemini-3.8-flash",
        "gemini-3.1-pro-preview",
        "gemini-2.5-flash-lite",
    ],
    "openai": ["llama3.2"],
}

# (context window, max output) for listings; unknown ids get the provider default.
_LIMITS: dict[str, tuple[int, int]] = {
    "openai/gpt-oss-20b": (131_072, 65_536),
    "openai/gpt-oss-120b": (131_072, 65_536),
    "qwen/qwen3.6-27b": (131_072, 16_384),
    "groq/compound": (131_072, 8_192),
    "groq/compound-mini": (131_072, 8_192),
    "llama3.2": (131_072, 8_192),
}
_DEFAULT_LIMITS: dict[str, tuple[int, int]] = {
    "groq": (131_072, 32_768),
    "gemini": (1_048_576, 65_536),
    "openai": (131_072, 8_192),
}
_OWNERS = {"openai/": "OpenAI", "qwen/": "Alibaba Cloud", "groq/": "Groq"}
_CREATED = 1_760_000_000

MALFORMED_EVENT = b"data: {not json\n\n"
DONE_EVENT = b"data: [DONE]\n\n"
HTML_BAD_GATEWAY = b"<html>Bad gateway</html>"

_CHUNK_RE = re.compile(r"\s*\S+\s*")


def dumps(obj: Any) -> bytes:
    """Compact JSON bytes, as real APIs send."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def sse(obj: Any) -> bytes:
    """One bare `data:` SSE event (no `event:` field; the Groq SDK would mis-wrap it)."""
    return b"data: " + dumps(obj) + b"\n\n"


# --------------------------------------------------------------------------- requests


def _image_label(mime: str, data: str) -> str:
    try:
        size = len(base64.b64decode(data, validate=False))
    except ValueError:
        size = -1
    return f"[image {mime} {size} bytes]"


def _oa_part_text(part: dict[str, Any]) -> str | None:
    if "text" in part:
        return str(part["text"])
    if part.get("type") == "image_url":
        spec = part.get("image_url")
        url = spec.get("url", "") if isinstance(spec, dict) else str(spec)
        head, _, data = url.partition(";base64,")
        if head.startswith("data:") and data:
            return _image_label(head[5:], data)
        return f"[image {url}]"
    return None


def _text_of(content: Any) -> str:
    """Flatten OpenAI string-or-parts content to text (images as "[image mime n bytes]")."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [_oa_part_text(p) for p in content if isinstance(p, dict)]
        return " ".join(t for t in texts if t is not None)
    return ""


def openai_messages(body: Any) -> list[dict[str, str]]:
    """Chat messages from an OpenAI/Groq request body, content flattened to text."""
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return []
    return [
        {"role": str(m.get("role", "user")), "content": _text_of(m.get("content"))}
        for m in body["messages"]
        if isinstance(m, dict)
    ]


def _gm_part_text(part: dict[str, Any]) -> str:
    blob = field_of(part, "inlineData")
    if isinstance(blob, dict):
        return _image_label(str(field_of(blob, "mimeType")), str(blob.get("data", "")))
    call = field_of(part, "functionCall")
    if isinstance(call, dict):
        return f"[call {call.get('name')} {json.dumps(call.get('args'), ensure_ascii=False)}]"
    result = field_of(part, "functionResponse")
    if isinstance(result, dict):
        answer = json.dumps(result.get("response"), ensure_ascii=False)
        return f"[result {result.get('name')} {answer}]"
    return str(part.get("text", ""))


def _parts_text(node: Any) -> str:
    if not isinstance(node, dict) or not isinstance(node.get("parts"), list):
        return ""
    return " ".join(_gm_part_text(p) for p in node["parts"] if isinstance(p, dict))


def gemini_messages(body: Any) -> list[dict[str, str]]:
    """Chat messages from a Gemini request body, in OpenAI roles (system/user/assistant)."""
    if not isinstance(body, dict):
        return []
    out: list[dict[str, str]] = []
    system = _parts_text(body.get("systemInstruction"))
    if system:
        out.append({"role": "system", "content": system})
    for c in body.get("contents") or []:
        if isinstance(c, dict):
            role = "assistant" if c.get("role") == "model" else "user"
            out.append({"role": role, "content": _parts_text(c)})
    return out


def prefill_of(messages: list[dict[str, str]]) -> str | None:
    """The text of a trailing assistant message (a prefill the model should continue)."""
    if len(messages) > 1 and messages[-1].get("role") == "assistant" and messages[-1]["content"]:
        return messages[-1]["content"]
    return None


def count_prompt_tokens(messages: Iterable[dict[str, str]]) -> int:
    """Rough prompt size: whitespace-separated words across all messages."""
    return sum(len(m.get("content", "").split()) for m in messages)


# --------------------------------------------------------------------------- replies

_OPENERS = (
    "This is a reply from the built-in fake upstream, so no request left this machine.",
    "You are talking to the built-in fake upstream; nothing was sent over the network.",
    "The built-in fake upstream answered this one locally, with no real model involved.",
)
_MIDDLES = (
    "It streams word by word and reports token usage the way a real provider does.",
    "Replies arrive in small chunks so you can watch the interface render them live.",
    "Usage numbers are rough word counts, close enough to exercise the analytics views.",
)


def default_reply(provider: str, model: str, messages: list[dict[str, str]]) -> str:
    """Deterministic Markdown reply that echoes the last user message (demo and tests)."""
    last = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
    last = " ".join(last.split())
    if len(last) > 160:
        last = last[:157] + "..."
    seed = zlib.crc32(f"{provider}|{model}|{last}".encode())
    words = len(last.split())
    return (
        f"**{model}** (fake {provider}) received: {last or '(no user message)'}\n\n"
        f"{_OPENERS[seed % 3]} {_MIDDLES[(seed // 3) % 3]}\n\n"
        "```python\n"
        "def reply(prompt: str) -> str:\n"
        f'    return "{words} words received"\n'
        "```\n\n"
        "Add a real API key to get real answers."
    )


def split_chunks(text: str) -> list[str]:
    """Whitespace-preserving word chunks; joining them gives `text` back exactly."""
    chunks = _CHUNK_RE.findall(text)
    return chunks or [text]


@dataclass(slots=True)
class Reply:
    """One generated answer: its stream chunks, token counts and finish state."""

    chunks: list[str]
    prompt_tokens: int
    truncated: bool = False
    tool_calls: list[FakeToolCall] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    @property
    def completion_tokens(self) -> int:
        return len(self.chunks) + 8 * len(self.tool_calls)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def finish(self) -> str:
        """OpenAI finish reason."""
        if self.tool_calls:
            return "tool_calls"
        return "length" if self.truncated else "stop"


# --------------------------------------------------------------------------- groq / openai


def _oa_usage(provider: str, r: Reply) -> dict[str, Any]:
    if provider == "groq":
        return {
            "queue_time": 0.01,
            "prompt_tokens": r.prompt_tokens,
            "prompt_time": 0.002,
            "completion_tokens": r.completion_tokens,
            "completion_time": 0.004,
            "total_tokens": r.total_tokens,
            "total_time": 0.006,
        }
    return {
        "prompt_tokens": r.prompt_tokens,
        "completion_tokens": r.completion_tokens,
        "total_tokens": r.total_tokens,
    }


def oa_whole(provider: str, model: str, rid: str, created: int, r: Reply) -> bytes:
    """Non-streaming chat.completion body (Groq adds x_groq and timing usage)."""
    body: dict[str, Any] = {
        "id": f"chatcmpl-{rid}",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": _oa_message(r),
                "logprobs": None,
                "finish_reason": r.finish,
            }
        ],
        "usage": _oa_usage(provider, r),
        "system_fingerprint": "fp_fake",
    }
    if provider == "groq":
        body["usage_breakdown"] = None
        body["x_groq"] = {"id": f"req_{rid}", "seed": 42}
        body["service_tier"] = "on_demand"
    return dumps(body)


def _oa_call(call: FakeToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments_text},
    }


def _oa_message(r: Reply) -> dict[str, Any]:
    if not r.tool_calls:
        return {"role": "assistant", "content": r.text}
    return {
        "role": "assistant",
        "content": r.text or None,
        "tool_calls": [_oa_call(c) for c in r.tool_calls],
    }


def _oa_tool_deltas(provider: str, r: Reply) -> list[list[dict[str, Any]]]:
    """`delta.tool_calls` of each tool-call chunk. Groq sends each call whole in one chunk;
    OpenAI-style servers send the id and name first, then the arguments in pieces."""
    if not r.tool_calls:
        return []
    if provider == "groq":
        return [[{"index": i, **_oa_call(c)} for i, c in enumerate(r.tool_calls)]]
    deltas: list[list[dict[str, Any]]] = []
    for i, call in enumerate(r.tool_calls):
        first = {"index": i, **_oa_call(call)}
        first["function"] = {"name": call.name, "arguments": ""}
        deltas.append([first])
        text = call.arguments_text
        step = max(1, len(text) // 3)
        for at in range(0, len(text), step):
            deltas.append([{"index": i, "function": {"arguments": text[at : at + step]}}])
    return deltas


def oa_stream(
    provider: str, model: str, rid: str, created: int, r: Reply, include_usage: bool
) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """Stream events as (head, one per content chunk, tail); tail ends with [DONE].

    Groq always puts usage on the finish chunk (x_groq.usage and top level); plain
    OpenAI sends a separate final `choices: []` chunk with usage only when asked.
    Tool calls stream as `delta.tool_calls` chunks after any text.
    """
    base = f'{{"id":"chatcmpl-{rid}","object":"chat.completion.chunk","created":{created},'
    base += f'"model":{json.dumps(model)},"system_fingerprint":"fp_fake","choices":['
    pre = b"data: " + base.encode()
    role = {"index": 0, "delta": {"role": "assistant", "content": ""}}
    role |= {"logprobs": None, "finish_reason": None}
    head_extra = f',"x_groq":{{"id":"req_{rid}","seed":42}}' if provider == "groq" else ""
    head = [pre + dumps(role) + b"]" + head_extra.encode() + b"}\n\n"]
    content = [
        pre
        + b'{"index":0,"delta":{"content":'
        + json.dumps(c, ensure_ascii=False).encode()
        + b'},"logprobs":null,"finish_reason":null}]}\n\n'
        for c in r.chunks
    ]
    content.extend(
        pre
        + dumps({"index": 0, "delta": {"tool_calls": d}, "logprobs": None, "finish_reason": None})
        + b"]}\n\n"
        for d in _oa_tool_deltas(provider, r)
    )
    finish = {"index": 0, "delta": {}, "logprobs": None}
    finish["finish_reason"] = r.finish
    usage = _oa_usage(provider, r)
    tail: list[bytes]
    if provider == "groq":
        extra = {"x_groq": {"id": f"req_{rid}", "usage": usage}, "usage": usage}
        tail = [pre + dumps(finish) + b"]," + dumps(extra)[1:] + b"\n\n"]
    else:
        tail = [pre + dumps(finish) + b"]}\n\n"]
        if include_usage:
            tail.append(pre + b"]," + dumps({"usage": usage})[1:] + b"\n\n")
    tail.append(DONE_EVENT)
    return head, content, tail


# --------------------------------------------------------------------------- gemini


def _gm_usage(r: Reply, final: bool) -> dict[str, Any]:
    # Real streams carry prompt counts on every chunk and the full tally only at the end.
    if not final:
        return {"promptTokenCount": r.prompt_tokens, "totalTokenCount": r.prompt_tokens}
    return {
        "promptTokenCount": r.prompt_tokens,
        "candidatesTokenCount": r.completion_tokens,
        "totalTokenCount": r.total_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": r.prompt_tokens}],
    }


def _gm_calls(r: Reply) -> list[dict[str, Any]]:
    # Gemini 3 sends a thought signature with each call; it must come back with it.
    return [
        {
            "functionCall": {"name": c.name, "args": c.arguments},
            "thoughtSignature": base64.b64encode(f"sig:{c.id}".encode()).decode(),
        }
        for c in r.tool_calls
    ]


def _gm_response(
    model: str,
    rid: str,
    text: str,
    finish: str | None,
    usage: dict,
    calls: list[dict[str, Any]] | None = None,
) -> dict:
    parts: list[dict[str, Any]] = [{"text": text}] if text or not calls else []
    cand: dict[str, Any] = {"content": {"parts": parts + (calls or []), "role": "model"}}
    if finish:
        cand["finishReason"] = finish
    cand["index"] = 0
    return {
        "candidates": [cand],
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": rid,
    }


def gm_whole(model: str, rid: str, r: Reply) -> bytes:
    """Non-streaming GenerateContentResponse body."""
    finish = "MAX_TOKENS" if r.truncated else "STOP"
    return dumps(_gm_response(model, rid, r.text, finish, _gm_usage(r, True), _gm_calls(r)))


def gm_stream(model: str, rid: str, r: Reply) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """Stream events as (head, content, tail); the last text chunk carries finish + usage.

    Never CONTINUATION and never [DONE]: google-genai would follow up or fail on them.
    """
    partial = _gm_usage(r, False)
    finish = "MAX_TOKENS" if r.truncated else "STOP"
    if r.tool_calls:  # Gemini sends function calls whole, in the last chunk
        content = [sse(_gm_response(model, rid, c, None, partial)) for c in r.chunks]
        last = _gm_response(model, rid, "", finish, _gm_usage(r, True), _gm_calls(r))
        return [], content, [sse(last)]
    content = [sse(_gm_response(model, rid, c, None, partial)) for c in r.chunks[:-1]]
    last = _gm_response(model, rid, r.chunks[-1], finish, _gm_usage(r, True))
    return [], content, [sse(last)]


def gm_blocked(model: str, rid: str, prompt_tokens: int) -> dict[str, Any]:
    """A prompt blocked by safety filters: promptFeedback and no candidates, HTTP 200."""
    return {
        "promptFeedback": {
            "blockReason": "SAFETY",
            "blockReasonMessage": "The prompt was blocked by the fake upstream's safety filter.",
        },
        "usageMetadata": {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens},
        "modelVersion": model,
        "responseId": rid,
    }


# --------------------------------------------------------------------------- errors

_RPC_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_GEMINI_KEY_MESSAGE = "API key not valid. Please pass a valid API key."


def oa_invalid_key() -> bytes:
    """Groq/OpenAI 401 body for a missing or wrong key."""
    return oa_error("Invalid API Key", "invalid_request_error", "invalid_api_key")


def oa_error(message: str, type_: str, code: str | None) -> bytes:
    """Groq/OpenAI error body."""
    return dumps({"error": {"message": message, "type": type_, "code": code}})


def fmt_seconds(s: float) -> str:
    """0.3 -> "0.3", 1.0 -> "1" (Groq messages and Gemini retryDelay use this style)."""
    return f"{s:.3f}".rstrip("0").rstrip(".") or "0"


def oa_status_error(
    status: int, model: str | None, retry_s: float | None, message: str | None, code: str | None
) -> bytes:
    """Realistic Groq/OpenAI error body for an HTTP status."""
    m = model or "unknown"
    wait = fmt_seconds(retry_s) if retry_s is not None else "1"
    table: dict[int, tuple[str, str, str]] = {
        400: (
            "Bad request: the fake upstream rejected this request.",
            "invalid_request_error",
            "bad_request",
        ),
        401: ("Invalid API Key", "invalid_request_error", "invalid_api_key"),
        403: (
            "Permission denied: your organization does not have access to this model.",
            "permission_error",
            "permission_denied",
        ),
        404: (
            f"The model `{m}` does not exist or you do not have access to it.",
            "invalid_request_error",
            "model_not_found",
        ),
        413: (
            f"Request too large for model `{m}` in organization org_fake service tier "
            "on_demand on tokens per minute (TPM): Limit 6000, Requested 12328, please "
            "reduce your message size and try again.",
            "tokens",
            "request_too_large",
        ),
        429: (
            f"Rate limit reached for model `{m}` in organization org_fake service tier "
            "on_demand on requests per minute (RPM): Limit 30, Used 30, Requested 1. "
            f"Please try again in {wait}s.",
            "requests",
            "rate_limit_exceeded",
        ),
        498: (
            "Flex tier capacity exceeded. This is a temporary condition; please try again later.",
            "invalid_request_error",
            "capacity_exceeded",
        ),
        500: ("Internal Server Error", "internal_server_error", "internal_server_error"),
        502: ("Bad Gateway", "internal_server_error", "bad_gateway"),
        503: ("Service Unavailable", "internal_server_error", "service_unavailable"),
    }
    default_msg = _phrase(status)
    msg, type_, c = table.get(status, (default_msg, "api_error", "error"))
    return oa_error(message or msg, type_, code or c)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def gm_error(
    status: int, message: str, rpc: str | None = None, details: list | None = None
) -> bytes:
    """Gemini (google.rpc.Status) error body."""
    err: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": rpc or _RPC_STATUS.get(status, "UNKNOWN"),
    }
    if details:
        err["details"] = details
    return dumps({"error": err})


def gm_invalid_key() -> bytes:
    """Gemini 400 INVALID_ARGUMENT body with ErrorInfo API_KEY_INVALID."""
    return gm_error(
        400,
        _GEMINI_KEY_MESSAGE,
        "INVALID_ARGUMENT",
        [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
            {
                "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                "locale": "en-US",
                "message": _GEMINI_KEY_MESSAGE,
            },
        ],
    )


def gm_status_error(
    status: int, model: str | None, retry_s: float | None, message: str | None, code: str | None
) -> bytes:
    """Realistic Gemini error body for an HTTP status (RetryInfo when a delay is given)."""
    m = model or "unknown"
    if status == 400 and code and "key" in code.lower():
        return gm_invalid_key()
    details: list[dict[str, Any]] = []
    messages = {
        400: "Request contains an invalid argument.",
        403: "The caller does not have permission.",
        404: f"This model models/{m} is no longer available. Please update your code to use "
        "a newer model for the latest features and improvements.",
        429: "You exceeded your current quota, please check your plan and billing details.",
        500: "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
        503: "The model is overloaded. Please try again later.",
        504: "Deadline expired before operation could complete.",
    }
    if status == 429:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": "generativelanguage.googleapis.com/"
                        "generate_content_free_tier_requests",
                        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                        "quotaDimensions": {"location": "global", "model": m},
                    }
                ],
            }
        )
    if retry_s is not None:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": f"{fmt_seconds(retry_s)}s",
            }
        )
    return gm_error(status, message or messages.get(status, _phrase(status)), None, details)


def oa_context_length(model: str, limit: int) -> bytes:
    """Groq/OpenAI 400 context_length_exceeded body."""
    return oa_error(
        f"This model's maximum context length is {limit} tokens. However, you requested "
        f"{limit + 4096} tokens. Please reduce the length of the messages or completion.",
        "invalid_request_error",
        "context_length_exceeded",
    )


def gm_context_length(limit: int) -> bytes:
    """Gemini 400 INVALID_ARGUMENT body for too many input tokens."""
    return gm_error(
        400,
        f"The input token count ({limit + 4096}) exceeds the maximum number of tokens "
        f"allowed ({limit}).",
    )


def oa_content_filter(reason: str | None) -> bytes:
    """Groq/OpenAI 400 content_filter body."""
    return oa_error(
        f"This request was flagged by the content filter: {reason or 'unsafe content'}.",
        "invalid_request_error",
        "content_filter",
    )


# Error body shapes of OpenAI-compatible servers (Fault.error_shape):
#   object  {"error": {"message", "type", "code"}}  OpenAI, Groq, llama.cpp, LiteLLM, OpenRouter
#   string  {"error": "text"}                        Ollama, LM Studio, TGI
#   flat    {"object": "error", "message", "type", "code"}  older vLLM, Mistral
#   text    the message as plain text                proxies, `event: error` data
ERROR_SHAPES = frozenset({"object", "string", "flat", "text"})
DEFAULT_ERROR_MESSAGE = "The server had an error while processing your request. Sorry about that!"


def _error_fields(message: str, type_: str | None, code: str | int | None) -> dict[str, Any]:
    fields: dict[str, Any] = {"message": message} if message else {}
    if type_ is not None:
        fields["type"] = type_
    if code is not None:
        fields["code"] = code
    return fields


def oa_error_body(shape: str, message: str, type_: str | None, code: str | int | None) -> bytes:
    """An error body in one of ERROR_SHAPES (`message`, `type` and `code` only where given)."""
    if shape == "string":
        return dumps({"error": message})
    if shape == "flat":
        return dumps({"object": "error", **_error_fields(message, type_, code), "param": None})
    if shape == "text":
        return message.encode()
    return dumps({"error": _error_fields(message, type_, code)})


def oa_error_event(
    kind: str, shape: str | None, message: str, type_: str | None, code: str | int | None
) -> bytes:
    """The SSE bytes of an error sent inside a 200 stream (Fault kinds error_*), then [DONE]
    as vLLM, SGLang and llama.cpp send it."""
    if kind == "error_string":
        event = b"data: " + dumps({"error": message})
    elif kind == "error_event":
        event = b"event: error\ndata: " + oa_error_body(shape or "object", message, type_, code)
    elif kind == "error_field":  # llama.cpp server builds of 2025: a non-standard SSE field
        event = b"error: " + dumps(_error_fields(message, type_, code))
    elif kind == "error_finish":  # OpenRouter: an error chunk that also ends the choice
        event = b"data: " + dumps(
            {
                "id": "gen-fake-error",
                "object": "chat.completion.chunk",
                "provider": "fake",
                "error": _error_fields(message, None, code),
                "choices": [
                    {"index": 0, "delta": {"content": ""}, "finish_reason": "error"},
                ],
            }
        )
    else:  # error_object_midstream
        event = b"data: " + dumps({"error": _error_fields(message, type_, code)})
    return event + b"\n\n" + DONE_EVENT


def not_found(method: str, path: str) -> bytes:
    """404 body for an unknown route."""
    return oa_error(f"Unknown route: {method} {path}", "invalid_request_error", "not_found")


# --------------------------------------------------------------------------- listings


def limits(provider: str, model: str) -> tuple[int, int]:
    """(context window, max output tokens) the fake reports for a model."""
    return _LIMITS.get(model) or _DEFAULT_LIMITS.get(provider, (131_072, 8_192))


def _oa_model(provider: str, mid: str) -> dict[str, Any]:
    owner = next((o for p, o in _OWNERS.items() if mid.startswith(p)), "fake")
    entry: dict[str, Any] = {"id": mid, "object": "model", "created": _CREATED, "owned_by": owner}
    if provider == "groq":
        ctx, out = limits(provider, mid)
        entry |= {
            "active": True,
            "context_window": ctx,
            "public_apps": None,
            "max_completion_tokens": out,
        }
    return entry


def _gm_model(mid: str) -> dict[str, Any]:
    ctx, out = limits("gemini", mid)
    return {
        "name": f"models/{mid}",
        "version": "001",
        "displayName": mid.replace("-", " ").title(),
        "description": "Served by the built-in fake upstream.",
        "inputTokenLimit": ctx,
        "outputTokenLimit": out,
        "supportedGenerationMethods": ["generateContent", "countTokens"],
        "temperature": 1,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2,
        "thinking": True,
    }


def models_list(provider: str, ids: list[str]) -> bytes:
    """Model listing body in the provider's shape."""
    if provider == "gemini":
        return dumps({"models": [_gm_model(m) for m in ids]})
    return dumps({"object": "list", "data": [_oa_model(provider, m) for m in ids]})


def model_get(provider: str, mid: str) -> bytes:
    """Single-model body in the provider's shape."""
    return dumps(_gm_model(mid) if provider == "gemini" else _oa_model(provider, mid))
