"""One TLS context for every provider client of this process."""

from __future__ import annotations

import functools
import ssl


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """The context httpx would build by default (certifi's CA bundle, SSL_CERT_FILE and
    SSL_CERT_DIR honoured), built once: loading the CA bundle takes milliseconds, and a
    provider may build several clients (see ProviderBase)."""
    import httpx

    return httpx.create_ssl_context()
