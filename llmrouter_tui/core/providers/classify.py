"""Turning HTTP statuses, error bodies and transport exceptions into ProviderFailure."""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping
from typing import Any

from .base import FailureKind, ProviderFailure

_CONTEXT_HINTS = (
    "context_length",
    "context length",
    "maximum context",
    "reduce the length",
    "exceeds the maximum number of tokens",
)
_FILTER_HINTS = ("content_filter", "content filter", "flagged", "safety")
_KEY_HINTS = ("invalid_api_key", "api_key_invalid", "invalid api key", "api key not valid")
_NOT_FOUND_HINTS = ("model_not_found", "model_decommissioned", "decommissioned", "no longer")


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


def error_text(body: Any) -> tuple[str, str]:
    """(human message, lower-cased text for matching) from an OpenAI- or Google-style body."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message") or "")
        parts = [message, str(error.get("code") or ""), str(error.get("type") or "")]
        parts.append(str(error.get("status") or ""))
        for detail in error.get("details") or ():
            if isinstance(detail, dict):
                parts.append(str(detail.get("reason") or ""))
        return message, " ".join(parts).lower()
    if isinstance(body, str):
        return body[:300], body[:300].lower()
    return "", ""


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
    """A ProviderFailure for an httpx/httpx2 transport exception (by class name, both libs)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    detail = type(exc).__name__
    if got_output:
        return ProviderFailure("stream_cut", f"stream broke mid-answer ({detail})", got_output=True)
    if names & {"ConnectTimeout"}:
        return ProviderFailure("connect_error", f"connect timeout ({detail})")
    if names & {"TimeoutException", "APITimeoutError"}:
        return ProviderFailure("timeout", f"no response in time ({detail})")
    if names & {
        "ConnectError",
        "ConnectionError",
        "ConnectionRefusedError",
        "ConnectionResetError",
    }:
        return ProviderFailure("connect_error", f"connection failed ({detail})")
    if names & {"RemoteProtocolError", "ReadError", "NetworkError", "APIConnectionError"}:
        return ProviderFailure("connect_error", f"connection dropped before a reply ({detail})")
    return ProviderFailure("unknown", f"transport error ({detail})")
