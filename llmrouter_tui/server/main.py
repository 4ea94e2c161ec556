"""`llmrouter-tui --serve`: the router headless over HTTP on the embedded server."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import math
import os
from collections.abc import Callable

from ..core.errors import ConfigError, StorageError
from ..core.runtime import Runtime
from ..demo import demo_upstream
from ..exit_codes import ExitCode
from ..logconfig import configure
from .app import DEFAULT_MAX_BODY, create_app
from .auth import TOKEN_ENV
from .http import HttpServer, ServerConfig
from .lifespan import LifespanFailed

_log = logging.getLogger(__name__)
_NOTICE_LEVELS = {"warning": logging.WARNING, "info": logging.INFO}


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() in {"localhost", "localhost."}:
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


def _say(message: str, level: int = logging.INFO) -> None:
    """Tell the operator (stderr, through logging: "llmrouter-tui: <message>" as text)."""
    _log.log(level, message)


def _banner(server: HttpServer, *, demo: bool, auth: bool, access: list[str]) -> None:
    mode = " (demo mode: replies come from the built-in fake upstream)" if demo else ""
    _say(f"serving on {server.url}{mode}")
    _say("token required (Authorization: Bearer ...)" if auth else "no token required")
    for line in access:  # host names and CORS origins allowed on purpose
        _say(line)
    _say("press Ctrl-C to stop")


def run_server(args: argparse.Namespace) -> int:
    """Run until SIGINT/SIGTERM; 0 after a clean shutdown, 2 for bad input, 1 otherwise.

    `--workers N` above 1 hands over to the supervisor (workers.py), which runs `serve()` in
    N processes.
    """
    configure(getattr(args, "log_level", None), getattr(args, "log_format", None))
    host: str = args.host.strip().strip("[]")
    token = args.token or os.environ.get(TOKEN_ENV) or None
    if not is_loopback(host) and token is None and not args.insecure_no_auth:
        _say(
            f"refusing to listen on {host} without a token: anyone who can reach it could "
            f"use your API keys. Pass --token TOKEN (or set {TOKEN_ENV}), bind 127.0.0.1, "
            "or pass --insecure-no-auth if you really mean it.",
            logging.ERROR,
        )
        return ExitCode.BAD_INPUT
    if not 0 <= args.port <= 65535:
        _say(f"--port must be between 0 and 65535, got {args.port}", logging.ERROR)
        return ExitCode.BAD_INPUT
    if not 0 < args.keep_alive < math.inf:
        _say(
            f"--keep-alive must be a number of seconds above 0, got {args.keep_alive:g}",
            logging.ERROR,
        )
        return ExitCode.BAD_INPUT
    workers: int = getattr(args, "workers", 1)
    if workers != 1:
        from .workers import run_workers

        return run_workers(args, host=host, token=token, count=workers)
    return serve(args, host=host, token=token)


def serve(
    args: argparse.Namespace,
    *,
    host: str,
    token: str | None,
    port: int | None = None,
    worker_ready: Callable[[HttpServer], None] | None = None,
) -> int:
    """Open the runtime and serve on the embedded server until stopped.

    As one of `--workers N` (`worker_ready` given): listen on `port` beside the other workers
    (SO_REUSEPORT), name the worker in every response, call `worker_ready` once listening, and
    leave the banner and start-up notices to the supervisor.
    """
    worker = worker_ready is not None
    with demo_upstream(args.demo) as demo_url:
        try:
            runtime = Runtime.open(
                config=args.config, data_dir=args.data_dir, demo_upstream=demo_url
            )
        except ConfigError as exc:
            _say(f"configuration error: {exc}", logging.ERROR)
            return ExitCode.BAD_INPUT
        except StorageError as exc:
            _say(f"storage error: {exc}", logging.ERROR)
            return ExitCode.FAILURE
        for notice in () if worker else runtime.notices:  # refused workdir settings, overrides
            _say(f"{notice.label}: {notice.text}", _NOTICE_LEVELS[notice.level])
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
            _say(f"configuration error: {exc}", logging.ERROR)
            runtime.close()
            return ExitCode.BAD_INPUT
        config = ServerConfig(
            host=host,
            port=args.port if port is None else port,
            max_body_bytes=DEFAULT_MAX_BODY,
            keepalive_timeout_s=args.keep_alive,
            access_log=not args.quiet,
            reuse_port=worker,
            worker_header=worker,
        )
        server = HttpServer(app, config)

        def ready(srv: HttpServer) -> None:
            if worker_ready is not None:
                worker_ready(srv)
            else:
                access = app.guard.listed.banner_lines()
                _banner(srv, demo=bool(demo_url), auth=token is not None, access=access)

        try:
            asyncio.run(server.run(ready=ready))
        except OSError as exc:
            _say(f"cannot listen on {host}:{config.port}: {exc.strerror or exc}", logging.ERROR)
            runtime.close()
            return ExitCode.FAILURE
        except LifespanFailed as exc:
            _say(f"could not start: {exc}", logging.ERROR)
            return ExitCode.FAILURE
        except KeyboardInterrupt:
            pass
    if not worker:
        _say("stopped")
    return ExitCode.OK
