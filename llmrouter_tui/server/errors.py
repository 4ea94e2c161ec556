"""Error responses: `{"detail": ...}` everywhere, plus OpenAI's `error` object under /v1.

Both the app and the embedded HTTP server (for the errors it answers itself: 400, 408, 413,
431, 500, 503) build their bodies here, so a stock OpenAI client shows the message of every
error on a /v1 path.
"""

from __future__ import annotations

import math
from typing import Any

from ..core.errors import BudgetExceeded
from .asgi import HTTPError, dumps, send_json
from .types import Send
from .wire_shapes import OpenAIErrorObject

OPENAI_PREFIX = "/v1"

# HTTP status -> OpenAI's error `type` (anything else is a "server_error").
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "content_filter",
    429: "rate_limit_error",
    431: "invalid_request_error",
    501: "invalid_request_error",
    502: "upstream_error",
    503: "service_unavailable",
    504: "timeout",
}


# OpenAI's error `code` -> its `type`, where the status alone does not say it. A reached
# [budget] is OpenAI's "insufficient_quota" (what it answers when a quota is used up), not
# "rate_limit_exceeded": retrying soon does not help, the budget resets at a fixed time.
_CODE_TYPES = {"budget_exceeded": "insufficient_quota"}
BUDGET_CODE = "budget_exceeded"


def is_openai_path(path: str) -> bool:
    """True for the OpenAI-compatible surface (/v1 and below)."""
    return path == OPENAI_PREFIX or path.startswith(OPENAI_PREFIX + "/")


def error_object(
    status: int, message: str, code: str | None = None, param: str | None = None
) -> OpenAIErrorObject:
    """OpenAI's `error` object, so stock clients show the message."""
    return {
        "message": message,
        "type": _CODE_TYPES.get(code or "") or _ERROR_TYPES.get(status, "server_error"),
        "code": code,
        "param": param,
    }


def error_payload(
    path: str, status: int, detail: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`{"detail": ..., **extra}`; under /v1 also `"error": {message, type, code, param}`
    (`code` from extra's `error_kind`, `param`, the request field at fault, from its `param`)."""
    payload: dict[str, Any] = {"detail": detail, **(extra or {})}
    if is_openai_path(path):
        code = payload.get("error_kind")
        param = payload.get("param")
        payload["error"] = error_object(
            status,
            detail,
            code if isinstance(code, str) else None,
            param if isinstance(param, str) else None,
        )
    return payload


def budget_error(exc: BudgetExceeded, detail: str) -> HTTPError:
    """429 for a reached [budget]: `Retry-After` (whole seconds until it resets), the budget,
    its limit, the spend and when it resets; `x-should-retry: false` tells the openai SDKs
    not to spend their retries on it."""
    wait = max(1, math.ceil(exc.retry_after_s))
    return HTTPError(
        429,
        detail,
        headers=[(b"retry-after", b"%d" % wait), (b"x-should-retry", b"false")],
        extra={
            "error_kind": BUDGET_CODE,
            "budget": exc.budget,
            "limit_usd": exc.limit_usd,
            "spent_usd": exc.spent_usd,
            "resets_at": exc.resets_at,
            "retry_after_s": wait,
        },
    )


def error_body(path: str, status: int, detail: str) -> bytes:
    """The JSON body of an error the HTTP layer answers itself."""
    return dumps(error_payload(path, status, detail))


async def send_http_error(send: Send, path: str, error: HTTPError) -> None:
    """Answer `error`; under /v1 the body also carries OpenAI's `{"error": {...}}`."""
    payload = error_payload(path, error.status, error.detail, error.extra)
    await send_json(send, error.status, payload, error.headers)
