"""Turning HTTP statuses, error bodies and transport exceptions into ProviderFailure.

Error bodies come in several shapes, at an HTTP error status or inside a 200 reply or stream
(an "in-band" error, which has no status of its own); `read_error` reads them all:

- `{"error": {"message", "type", "code"}}`: OpenAI, Groq, llama.cpp server, LiteLLM proxy (code
  as a string, "429"), OpenRouter (numeric code, e.g. 502 inside a 200 stream), newer vLLM and
  SGLang (`code` 400…), Google (`code`, `status`, `details`), Anthropic-style
  `{"type": "error", "error": {…}}`.
- `{"error": "text"}`: Ollama, LM Studio (even at HTTP 200), Hugging Face TGI (`error_type`).
- `{"object": "error", "message", "type", "code"}`: older vLLM, Mistral.
- `{"detail": …}` or a plain-text body: FastAPI-style servers and proxies (error statuses only).
"""

from __future__ import annotations

import email.utils
import json
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .base import FailureKind, ProviderFailure

_CONTEXT_HINTS = (
    "context_length",
    "context length",
    "maximum context",
    "reduce the length",
    "exceeds the maximum number of tokens",
    "context size",  # llama.cpp: "the request exceeds the available context size"
    "context window",
    "exceed_context_size",
)
_FILTER_HINTS = (
    "content_filter",
    "content filter",
    "content_policy",
    "content policy",
    "moderation",
    "flagged",
    "safety",
)
_KEY_HINTS = ("invalid_api_key", "api_key_invalid", "invalid api key", "api key not valid")
_NOT_FOUND_HINTS = ("model_not_found", "model_decommissioned", "decommissioned", "no longer")
# Only for in-band errors, which have no HTTP status to go by.
_AUTH_HINTS = (*_KEY_HINTS, "unauthorized", "unauthenticated", "authentication")
_RATE_HINTS = (
    "rate limit",
    "rate_limit",
    "ratelimit",
    "too many requests",
    "resource_exhausted",
    "quota",
)
_SERVER_HINTS = (
    "overloaded",
    "unavailable",
    "capacity",
    "server_error",
    "server error",
    "internal",
    "try again later",
    "timed out",
    "timeout",
    "bad gateway",
)
_MISSING_HINTS = (
    *_NOT_FOUND_HINTS,
    "not found",
    "not_found",
    "does not exist",
    "no such model",
    "unknown model",
    "unexpected endpoint",  # LM Studio, at HTTP 200, for a wrong base URL
)
_BAD_REQUEST_HINTS = (
    "invalid_request",
    "badrequest",
    "bad_request",
    "bad request",
    "invalid_argument",
    "validation",
)
# First match wins: the more specific kinds come first.
_TEXT_KINDS: tuple[tuple[FailureKind, tuple[str, ...]], ...] = (
    ("auth", _AUTH_HINTS),
    ("context_length", _CONTEXT_HINTS),
    ("content_filter", _FILTER_HINTS),
    ("rate_limited", _RATE_HINTS),
    ("server_error", _SERVER_HINTS),
    ("not_found", _MISSING_HINTS),
    ("bad_request", _BAD_REQUEST_HINTS),
)
_MAX_MESSAGE = 400


def kind_for_status(status: int, text: str = "") -> FailureKind:
    """Failure kind for an HTTP error status and the lower-cased error text."""
    if any(h in text for h in _KEY_HINTS) or status == 401:
        return "auth"
    if any(h in text for h in _CONTEXT_HINTS):
        return "context_length"
    if status in (400, 422) and any(h in text for h in _FILTER_HINTS):
        return "content_filter"
    if status in (429, 498):
        return "rate_limited"
    if status == 408 or status >= 500:
        return "server_error"
    if status == 403:
        return "forbidden"
    if status == 404 or any(h in text for h in _NOT_FOUND_HINTS):
        return "not_found"
    if status == 413:
        return "too_large"
    if status in (400, 409, 422):
        return "bad_request"
    return "unknown"


def retry_after_from_headers(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from `retry-after-ms` or `retry-after` (seconds or an HTTP date)."""
    if not headers:
        return None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(raw) if raw else None
        if parsed is None:
            return None
        return max(0.0, parsed.timestamp() - time.time())


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def retry_after_from_google_details(body: Any) -> float | None:
    """Seconds from a Google RPC RetryInfo `retryDelay` ("41s", "0.3s") in an error body."""
    error = body.get("error", body) if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    for detail in details if isinstance(details, list) else ():
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("RetryInfo"):
            match = _DURATION.match(str(detail.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None


@dataclass(frozen=True, slots=True)
class UpstreamError:
    """An error a server sent, read from whichever shape it used."""

    message: str  # the provider's own words ("" when it gave none)
    text: str  # message, type, code, status and reasons, lower-cased, for matching
    code: int | None = None  # an HTTP-like status carried inside the body (400-599)
    retry_after_s: float | None = None  # a delay the body asks for (fields or RetryInfo)


def read_error(body: Any) -> UpstreamError | None:
    """The error a reply body or stream chunk carries; None when it is not an error.

    Only explicit markers count (a truthy `error`, `object: "error"`, `type: "error"`), so
    a normal chunk is never mistaken for one.
    """
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if error:
        return error_from_value(error, body)
    if body.get("object") == "error" or body.get("type") == "error":
        return _error_from_fields(body)
    return None


def error_from_value(value: Any, outer: Mapping[str, Any] | None = None) -> UpstreamError:
    """The error described by `value`: an `error` field's value (an object or a string),
    an SSE error event's data, or whatever else a server put there. `outer` is the object
    holding an `error` string, whose other fields may say more (TGI's `error_type`)."""
    if isinstance(value, dict):
        return _error_from_fields(value)
    message = _as_text(value)[:_MAX_MESSAGE]
    outer = outer or {}
    labels = [_as_text(outer.get(name)) for name in ("error_type", "type", "code")]
    text = " ".join(filter(None, [message, *labels])).lower()
    return UpstreamError(message, text, _http_code(outer.get("code")))


def _error_from_fields(fields: Mapping[str, Any]) -> UpstreamError:
    message = _as_text(fields.get("message") or fields.get("msg") or fields.get("detail"))
    labels = [_as_text(fields.get(name)) for name in ("type", "code", "status", "error_type")]
    labels = [label for label in labels if label]
    details = fields.get("details")
    for detail in details if isinstance(details, list) else ():
        if isinstance(detail, dict) and detail.get("reason"):
            labels.append(_as_text(detail["reason"]))
    metadata = fields.get("metadata")
    raw = metadata.get("raw") if isinstance(metadata, dict) else None
    if isinstance(raw, str) and raw and raw not in message:
        message = f"{message}: {raw}" if message else raw  # OpenRouter: the provider's words
    if not message:
        message = " / ".join(labels)  # an error with a type or code only
    code = _http_code(fields.get("code"))
    retry = _retry_after_field(fields)
    if retry is None:
        retry = retry_after_from_google_details(fields)
    text = " ".join([message, *labels]).lower()
    return UpstreamError(message[:_MAX_MESSAGE], text, code, retry)


def _as_text(value: Any) -> str:
    if value is None or isinstance(value, str):
        return value or ""
    return json.dumps(value, ensure_ascii=False, default=str)[:_MAX_MESSAGE]


def _http_code(value: Any) -> int | None:
    """An HTTP error status given as a number or a numeric string ("429"), else None."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 400 <= value <= 599:
        return value
    return None


def _retry_after_field(fields: Mapping[str, Any]) -> float | None:
    metadata = fields.get("metadata")
    for holder in (fields, metadata if isinstance(metadata, dict) else {}):
        for name in ("retry_after", "retry_after_seconds", "retryAfter"):
            value = holder.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
                return float(value)
    return None


_RETRY_PHRASE = re.compile(
    r"(?:try again|retry)\s+(?:in|after)\s+"
    r"((?:\d+(?:\.\d+)?\s*(?:ms|milliseconds?|hours?|h|minutes?|mins?|m|seconds?|secs?|s)?)+)",
    re.IGNORECASE,
)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)", re.IGNORECASE)


def retry_after_from_text(message: str) -> float | None:
    """Seconds from "try again in 5.289s", "retry in 1m26.4s", "retry after 20 seconds"…"""
    match = _RETRY_PHRASE.search(message)
    if match is None:
        return None
    total = 0.0
    for number, unit in _DURATION_PART.findall(match.group(1)):
        unit = unit.lower()
        scale = 1.0
        if unit.startswith(("ms", "milli")):
            scale = 0.001
        elif unit.startswith("h"):
            scale = 3600.0
        elif unit.startswith("m"):
            scale = 60.0
        total += float(number) * scale
    return total


def error_text(body: Any) -> tuple[str, str]:
    """(human message, lower-cased text for matching) from an error body of any shape."""
    error = read_error(body)
    if error is None and isinstance(body, dict):
        error = _error_from_fields(body)  # {"detail": …}, {"message": …}
    elif error is None and isinstance(body, str):
        error = error_from_value(body[:300])
    return (error.message, error.text) if error is not None else ("", "")


def kind_for_text(text: str) -> FailureKind | None:
    """The failure kind the lower-cased error text names, or None when it names none."""
    for kind, hints in _TEXT_KINDS:
        if any(h in text for h in hints):
            return kind
    return None


def kind_for_inband(error: UpstreamError) -> FailureKind:
    """Failure kind for an error sent inside a 200 reply or stream: by the HTTP-like code it
    carries if any, else by its words; an error that says nothing known is a server error."""
    if error.code is not None:
        return kind_for_status(error.code, error.text)
    return kind_for_text(error.text) or "server_error"


def failure_from_inband(error: UpstreamError, where: str, *, got_output: bool) -> ProviderFailure:
    """A ProviderFailure for an error sent inside a 200 reply or stream (`where` says which);
    the provider's message is kept, and a retry delay it names is honoured."""
    retry = error.retry_after_s
    if retry is None:
        retry = retry_after_from_text(error.message)
    code = f" (code {error.code})" if error.code is not None else ""
    return ProviderFailure(
        kind_for_inband(error),
        f"{where}{code}: {error.message or 'no error message'}"[:500],
        retry_after_s=retry,
        got_output=got_output,
    )


def failure_from_status(
    status: int,
    body: Any,
    headers: Mapping[str, str] | None = None,
    *,
    got_output: bool = False,
) -> ProviderFailure:
    """A ProviderFailure for an HTTP error response."""
    message, text = error_text(body)
    kind = kind_for_status(status, text)
    retry_after = retry_after_from_headers(headers)
    if retry_after is None:
        retry_after = retry_after_from_google_details(body)
    return ProviderFailure(
        kind,
        f"HTTP {status}: {message or 'no error message'}"[:500],
        status=status,
        retry_after_s=retry_after,
        got_output=got_output,
    )


def failure_from_transport(exc: BaseException, *, got_output: bool) -> ProviderFailure:
    """A ProviderFailure for a transport exception: httpx's (and httpx2's, the fork some SDKs
    take, when it is loaded) or the operating system's. SDK exception types are mapped by
    each provider first (`ProviderBase._failure`)."""
    detail = type(exc).__name__
    if got_output:
        return ProviderFailure("stream_cut", f"stream broke mid-answer ({detail})", got_output=True)
    types = _transport_types()
    if isinstance(exc, types.connect_timeout):
        return ProviderFailure("connect_error", f"connect timeout ({detail})")
    if isinstance(exc, types.timeout):
        return ProviderFailure("timeout", f"no response in time ({detail})")
    if isinstance(exc, (*types.connect, ConnectionError)):
        return ProviderFailure("connect_error", f"connection failed ({detail})")
    if isinstance(exc, types.dropped):
        return ProviderFailure("connect_error", f"connection dropped before a reply ({detail})")
    return ProviderFailure("unknown", f"transport error ({detail})")


@dataclass(frozen=True, slots=True)
class _TransportTypes:
    """httpx exception classes by what they mean, from every httpx-like library loaded."""

    connect_timeout: tuple[type[BaseException], ...]
    timeout: tuple[type[BaseException], ...]
    connect: tuple[type[BaseException], ...]
    dropped: tuple[type[BaseException], ...]


_TRANSPORT_TYPES: dict[tuple[str, ...], _TransportTypes] = {}


def _transport_types() -> _TransportTypes:
    """The classes of httpx and of httpx2 if something imported it. Looked up on use, not
    imported here: core imports no HTTP library before a provider needs one."""
    import httpx

    modules = [httpx] + [m for m in (sys.modules.get("httpx2"),) if m is not None]
    key = tuple(m.__name__ for m in modules)
    found = _TRANSPORT_TYPES.get(key)
    if found is None:
        found = _TransportTypes(
            connect_timeout=tuple(m.ConnectTimeout for m in modules),
            timeout=tuple(m.TimeoutException for m in modules),
            connect=tuple(m.ConnectError for m in modules),
            # ReadError, WriteError, CloseError; RemoteProtocolError (a reply cut short)
            dropped=tuple(t for m in modules for t in (m.NetworkError, m.RemoteProtocolError)),
        )
        _TRANSPORT_TYPES[key] = found
    return found
