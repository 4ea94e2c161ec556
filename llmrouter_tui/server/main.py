"""`llmrouter-tui --serve`: the router headless over HTTP on the embedded server."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import math
import os
import sys

from ..core.errors import ConfigError, StorageError
from ..core.runtime import Runtime
from ..demo import demo_upstream
from .app import DEFAULT_MAX_BODY, create_app
from .auth import TOKEN_ENV
from .http import HttpServer, ServerConfig
from .lifespan import LifespanFailed

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() in {"localhost", "localhost."}:
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


def _say(message: str) -> None:
    print(f"llmrouter-tui: {message}", file=sys.stderr, flush=True)


def _banner(server: HttpServer, *, demo: bool, auth: bool) -> None:
    mode = " (demo mode: replies come from the built-in fake upstream)" if demo else ""
    _say(f"serving on {server.url}{mode}")
    _say("token required (Authorization: Bearer ...)" if auth else "no token required")
    _say("press Ctrl-C to stop")


def run_server(args: argparse.Namespace) -> int:
    """Run until SIGINT/SIGTERM; 0 after a clean shutdown, 2 for bad input, 1 otherwise."""
    host: str = args.host.strip().strip("[]")
    token = args.token or os.environ.get(TOKEN_ENV) or None
    if not is_loopback(host) and token is None and not args.insecure_no_auth:
        _say(
            f"refusing to listen on {host} without a token: anyone who can reach it could "
            f"use your API keys. Pass --token TOKEN (or set {TOKEN_ENV}), bind 127.0.0.1, "
            "or pass --insecure-no-auth if you really mean it."
        )
        return EXIT_BAD_INPUT
    if not 0 <= args.port <= 65535:
        _say(f"--port must be between 0 and 65535, got {args.port}")
        return EXIT_BAD_INPUT
    if not 0 < args.keep_alive < math.inf:
        _say(f"--keep-alive must be a number of seconds above 0, got {args.keep_alive:g}")
        return EXIT_BAD_INPUT
    with demo_upstream(args.demo) as demo_url:
        try:
            runtime = Runtime.open(
                config=args.config, data_dir=args.data_dir, demo_upstream=demo_url
            )
        except ConfigError as exc:
            _say(f"configuration error: {exc}")
            return EXIT_BAD_INPUT
        except StorageError as exc:
            _say(f"storage error: {exc}")
            return EXIT_FAILURE
        for notice in runtime.notices:  # refused working-directory settings, template overrides
            _say(f"{notice.label}: {notice.text}")
        try:
            app = create_app(
                runtime,
                token=token or "",
                max_body_bytes=DEFAULT_MAX_BODY,
                owns_runtime=True,
                allow_hosts=args.allow_host,
                cors_origins=args.cors_origin,
                bind_host=host,
            )
        except ConfigError as exc:  # a malformed --allow-host / --cors-origin / [server] entry
            _say(f"configuration error: {exc}")
            runtime.close()
            return EXIT_BAD_INPUT
        config = ServerConfig(
            host=host,
            port=args.port,
            max_body_bytes=DEFAULT_MAX_BODY,
            keepalive_timeout_s=args.keep_alive,
            access_log=not args.quiet,
        )
        server = HttpServer(app, config)

        def ready(srv: HttpServer) -> None:
            _banner(srv, demo=bool(demo_url), auth=token is not None)

        try:
            asyncio.run(server.run(ready=ready))
        except OSError as exc:
            _say(f"cannot listen on {host}:{args.port}: {exc.strerror or exc}")
            runtime.close()
            return EXIT_FAILURE
        except LifespanFailed as exc:
            _say(f"could not start: {exc}")
            return EXIT_FAILURE
        except KeyboardInterrupt:
            pass
    _say("stopped")
    return EXIT_OK
