"""What the /v1 and parameter tests share: tool definitions, a tiny image, and an httpx
transport that keeps every response for the OpenAPI check."""

from __future__ import annotations

import base64

import httpx

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}},
    },
}
WEATHER_ARGS = {"city": "value", "days": 1}  # the fake's example value for WEATHER's schema
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(59))
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()


class RecordingTransport(httpx.AsyncBaseTransport):
    """Real HTTP; each response is read whole and kept, so it can be checked against the
    OpenAPI document after the client has used it."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.seen: list[httpx.Response] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        body = await response.aread()
        await response.aclose()
        kept = httpx.Response(
            response.status_code, headers=response.headers, content=body, request=request
        )
        self.seen.append(kept)
        return kept

    async def aclose(self) -> None:
        await self._inner.aclose()
