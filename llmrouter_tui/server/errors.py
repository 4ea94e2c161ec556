"""Error responses: `{"detail": ...}` everywhere, plus OpenAI's `error` object under /v1."""

from __future__ import annotations

from .asgi import HTTPError, send_json
from .openai_api import error_object
from .types import Send


async def send_http_error(send: Send, path: str, error: HTTPError) -> None:
    """Answer `error`; under /v1 the body also carries OpenAI's `{"error": {...}}`."""
    payload = {"detail": error.detail, **error.extra}
    if path.startswith("/v1/"):
        payload["error"] = error_object(error.status, error.detail, error.extra.get("error_kind"))
    await send_json(send, error.status, payload, error.headers)
