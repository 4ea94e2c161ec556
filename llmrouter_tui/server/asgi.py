"""Small ASGI request/response helpers for the app: body limits, JSON in, JSON out."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs

from ..core.jsonbytes import dumps  # compact UTF-8 JSON, re-exported for the endpoints
from .json_body import BadBody, parse_json
from .types import Receive, Scope, Send

Header = tuple[bytes, bytes]

JSON_CONTENT_TYPE: Header = (b"content-type", b"application/json")


class HTTPError(Exception):
    """An error answered as `{"detail": ...}` (plus `extra` fields) with `status`."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        headers: Iterable[Header] = (),
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = list(headers)
        self.extra = extra or {}


async def send_json(send: Send, status: int, payload: Any, headers: Iterable[Header] = ()) -> None:
    """A whole JSON response."""
    body = dumps(payload)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [JSON_CONTENT_TYPE, (b"content-length", b"%d" % len(body)), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Send, error: HTTPError) -> None:
    """An HTTPError as JSON `{"detail": ..., **extra}`."""
    await send_json(send, error.status, {"detail": error.detail, **error.extra}, error.headers)


class Request:
    """The parts of an ASGI http scope the endpoints use."""

    __slots__ = ("_query", "max_body", "method", "path", "receive", "scope")

    def __init__(self, scope: Scope, receive: Receive, max_body: int) -> None:
        self.scope = scope
        self.receive = receive
        self.max_body = max_body
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self._query: dict[str, list[str]] | None = None

    def header(self, name: bytes) -> bytes | None:
        """The first value of a header (name in lower case), if present."""
        for key, value in self.scope["headers"]:
            if key == name:
                return bytes(value)
        return None

    @property
    def query(self) -> dict[str, list[str]]:
        if self._query is None:
            raw = self.scope.get("query_string", b"")
            self._query = parse_qs(raw.decode("latin-1"), keep_blank_values=True) if raw else {}
        return self._query

    def query_value(self, name: str) -> str | None:
        """A query parameter given at most once; 400 if it is repeated."""
        values = self.query.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise HTTPError(400, f"query parameter {name!r} is given more than once")
        return values[0]

    async def body(self) -> bytes:
        """The whole request body; 413 beyond `max_body` bytes."""
        length = self.header(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            raise HTTPError(
                413,
                f"request body too large: {int(length)} bytes; the limit is {self.max_body} bytes",
            )
        message = await self.receive()
        if message["type"] != "http.request":
            raise HTTPError(400, "the client went away before sending the body")
        body = message.get("body", b"")
        if not message.get("more_body", False):
            return body
        parts = [body]
        size = len(body)
        while True:
            message = await self.receive()
            if message["type"] != "http.request":
                raise HTTPError(400, "the client went away before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise HTTPError(413, f"request body too large; the limit is {self.max_body} bytes")
            parts.append(chunk)
            if not message.get("more_body", False):
                return b"".join(parts)

    async def json(self) -> Any:
        """The body parsed as JSON, or None when there is no body; 400 when it is not JSON.

        The app checked the content type before the endpoint ran (guard.require_json).
        """
        body = await self.body()
        if not body.strip():
            return None
        try:
            return parse_json(body)
        except BadBody as exc:
            raise HTTPError(400, str(exc)) from None
