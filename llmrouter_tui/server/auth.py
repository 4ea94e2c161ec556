"""Bearer-token check for every endpoint but /health."""

from __future__ import annotations

import hmac

from .asgi import HTTPError

TOKEN_ENV = "LLMROUTER_SERVER_TOKEN"


def unauthorized() -> HTTPError:
    """The 401 answer (it never says whether a token was close)."""
    return HTTPError(
        401,
        "missing or wrong token: send the header 'Authorization: Bearer <token>'",
        headers=[(b"www-authenticate", b'Bearer realm="llmrouter"')],
    )


def bearer_matches(header: bytes | None, token: bytes) -> bool:
    """True when `header` is `Bearer <token>`; the comparison takes constant time."""
    supplied = b""
    if header is not None and header[:7].lower() == b"bearer ":
        supplied = header[7:].strip()
    return hmac.compare_digest(supplied, token)
