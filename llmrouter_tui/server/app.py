"""The ASGI 3 application: routing, auth, error answers and the runtime's lifecycle.

Runs unchanged under the embedded server (`llmrouter-tui --serve`), uvicorn, hypercorn or
gunicorn with uvicorn workers:

    uvicorn --factory llmrouter_tui.server.app:create_app

Without a runtime, the app opens one at lifespan startup from the environment
(LLMROUTER_CONFIG, LLMROUTER_DATA_DIR, provider keys, LLMROUTER_SERVER_TOKEN; LLMROUTER_DEMO=1
for the built-in fake upstream) and closes it at shutdown.

Every request first passes the guard (guard.py: Host, Origin, CORS, then the JSON content
type of every POST), so a web page the user visits cannot use the server.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from contextlib import ExitStack, suppress

from ..core.errors import BudgetExceeded, ConfigError, InputError, RouterError, StorageError
from ..core.redact import Redactor
from ..core.runtime import Runtime
from ..logconfig import ensure_configured, redact_with
from .asgi import HTTPError, Request
from .auth import TOKEN_ENV, bearer_matches, unauthorized
from .errors import budget_error, send_http_error
from .guard import Guard, guard_for, require_json, send_preflight, with_headers
from .routes import OPEN_PATHS, Context, Handler, endpoint_of, find_route, not_found
from .types import Message, Receive, Scope, Send

DEMO_ENV = "LLMROUTER_DEMO"
DEFAULT_MAX_BODY = 1 << 20
_log = logging.getLogger(__name__)


def _is_disconnect(exc: BaseException) -> bool:
    """The client went away (this server's, uvicorn's or the OS's way of saying so)."""
    return isinstance(exc, ConnectionError) or type(exc).__name__ == "ClientDisconnected"


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


class LLMRouterApp:
    """See the module docstring; build it with `create_app()`."""

    def __init__(
        self,
        runtime: Runtime | None,
        *,
        token: str | None,
        max_body_bytes: int,
        live_timeout_s: float,
        owns_runtime: bool,
        allow_hosts: Sequence[str] = (),
        cors_origins: Sequence[str] = (),
        bind_host: str | None = None,
    ) -> None:
        self._token = token.encode() if token else None
        self._allow_hosts = tuple(allow_hosts)
        self._cors_origins = tuple(cors_origins)
        self._bind_host = bind_host
        self._guard = Guard()  # replaced with the configured one with the runtime
        self.max_body_bytes = max_body_bytes
        self._live_timeout_s = live_timeout_s
        self._owns_runtime = owns_runtime
        self._ctx: Context | None = None
        self._stack = ExitStack()
        self._open_lock = asyncio.Lock()
        if runtime is not None:
            self._ctx = self._context(runtime)

    @property
    def auth_required(self) -> bool:
        return self._token is not None

    @property
    def guard(self) -> Guard:
        """The Host/Origin rules in force (the configured ones once the runtime is open)."""
        return self._guard

    @property
    def runtime(self) -> Runtime | None:
        return self._ctx.runtime if self._ctx is not None else None

    def _context(self, runtime: Runtime) -> Context:
        token = self._token.decode() if self._token else None
        # The guard reads [server] from the runtime's config: it exists from here on.
        self._guard = guard_for(
            runtime.settings,
            allow_hosts=self._allow_hosts,
            cors_origins=self._cors_origins,
            bind_host=self._bind_host,
        )
        redactor = Redactor.for_settings(runtime.settings, [token], runtime.catalog.models)
        # The log is scrubbed like everything else the server emits. Storage trouble (full
        # disk, read-only logs) reaches the operator there: the store logs each warning.
        redact_with(redactor.text)
        metrics = runtime.router.metrics

        def count(warning: str) -> None:
            metrics.storage_warnings += 1

        runtime.store.on_warning = count
        return Context(runtime, redactor, self._live_timeout_s)

    # ---- runtime lifecycle --------------------------------------------------------------------

    def _open_from_env(self) -> Context:
        """Open the runtime the environment describes (uvicorn/gunicorn deployments)."""
        ensure_configured()  # $LLMROUTER_LOG_LEVEL / _FORMAT, unless the host server set it up
        demo_url = None
        if _env_flag(DEMO_ENV):
            from ..demo import demo_upstream

            demo_url = self._stack.enter_context(demo_upstream(True))
        try:
            runtime = Runtime.open(demo_upstream=demo_url)
        except BaseException:
            self._stack.close()
            raise
        for notice in runtime.notices:  # refused working-directory settings, template overrides
            level = logging.WARNING if notice.level == "warning" else logging.INFO
            _log.log(level, "%s: %s", notice.label, notice.text)
        try:
            self._ctx = self._context(runtime)
        except BaseException:  # e.g. a bad allow_hosts entry: close what was opened
            runtime.close()
            self._stack.close()
            raise
        self._owns_runtime = True
        return self._ctx

    async def _ensure_context(self) -> Context:
        if self._ctx is not None:
            return self._ctx
        async with self._open_lock:
            return self._ctx or self._open_from_env()

    async def aclose(self) -> None:
        """Close the runtime (store flushed and closed) if this app owns it."""
        ctx = self._ctx
        if ctx is not None and self._owns_runtime:
            self._ctx = None
            await ctx.runtime.aclose()
        self._stack.close()

    # ---- ASGI ---------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await receive()
            await send({"type": "websocket.close", "code": 1003})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message: Message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._ensure_context()
                except (ConfigError, StorageError) as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one request, counted for /metrics (by endpoint and the status sent)."""
        status: int | None = None

        async def counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        ctx = self._ctx
        if ctx is not None:
            ctx.runtime.router.metrics.in_flight += 1
            ctx.runtime.router.metrics.loop_lag.watch()  # started on the serving loop
        try:
            await self._answer_http(scope, receive, counted)
        finally:
            if ctx is not None:
                ctx.runtime.router.metrics.in_flight -= 1
            else:  # no lifespan: this request opened the runtime (unless that failed)
                ctx = self._ctx
            if ctx is not None:
                ctx.runtime.router.metrics.request(endpoint_of(scope["path"]), status)

    async def _answer_http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, self.max_body_bytes)
        path = request.path
        try:
            ctx = self._ctx or await self._ensure_context()
            admission = self._guard.admit(request)  # before anything else: 421 / 403
            if admission.headers:
                send = with_headers(send, admission.headers)  # errors below get them too
            if admission.preflight:
                await send_preflight(send)
                return
            await self._handler_for(request)(ctx, request, send)
        except Exception as exc:
            await self._answer(send, path, self._http_error(request, exc))

    def _handler_for(self, request: Request) -> Handler:
        """The endpoint that answers `request`; HTTPError (401, 404, 405, 415) when none may."""
        path = request.path
        if (
            self._token is not None
            and path not in OPEN_PATHS
            and not bearer_matches(request.header(b"authorization"), self._token)
        ):
            raise unauthorized()
        methods = find_route(path)
        if methods is None:
            raise not_found(path)
        method = "GET" if request.method == "HEAD" else request.method
        handler = methods.get(method)
        if handler is None:
            allowed = ", ".join([*methods, "HEAD"] if "GET" in methods else methods)
            raise HTTPError(
                405,
                f"method {request.method} is not allowed on {path}; use {allowed}",
                headers=[(b"allow", allowed.encode())],
            )
        if method == "POST":  # every POST endpoint takes JSON
            require_json(request)
        return handler

    def _http_error(self, request: Request, exc: Exception) -> HTTPError:
        """The answer for a request that failed with `exc` (redacted; internal ones logged)."""
        if isinstance(exc, HTTPError):
            return exc
        if isinstance(exc, InputError):
            return HTTPError(exc.http_status, self._clean(str(exc)))
        if isinstance(exc, StorageError):
            return HTTPError(503, self._clean(f"storage unavailable: {exc}"))
        if isinstance(exc, BudgetExceeded):
            return budget_error(exc, self._clean(str(exc)))
        if isinstance(exc, RouterError):
            return HTTPError(exc.http_status, self._clean(str(exc)))
        if not (isinstance(exc, OSError) and _is_disconnect(exc)):
            self._log_internal(request, exc)
        return HTTPError(500, "internal error")

    async def _answer(self, send: Send, path: str, error: HTTPError) -> None:
        # RuntimeError: a response was already under way; OSError: the client left.
        with suppress(RuntimeError, OSError):
            await send_http_error(send, path, error)

    def _clean(self, text: str) -> str:
        return self._ctx.redactor.text(text) if self._ctx is not None else text

    def _log_internal(self, request: Request, exc: BaseException) -> None:
        reason = self._clean(" ".join(str(exc).split()))[:200]
        _log.error(
            "internal error on %s %s: %s: %s",
            request.method,
            request.path,
            type(exc).__name__,
            reason,
            extra={"method": request.method, "path": request.path, "exc_type": type(exc).__name__},
        )


def create_app(
    runtime: Runtime | None = None,
    *,
    token: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    live_timeout_s: float = 3.0,
    owns_runtime: bool | None = None,
    allow_hosts: Sequence[str] = (),
    cors_origins: Sequence[str] = (),
    bind_host: str | None = None,
) -> LLMRouterApp:
    """The ASGI app.

    `runtime`: the core to serve; None opens one from the environment at startup (and the
    app then owns and closes it). `token`: required bearer token; None reads
    $LLMROUTER_SERVER_TOKEN (unset or empty means no auth). `owns_runtime`: close the given
    runtime at lifespan shutdown (default: only when the app opened it). `allow_hosts`,
    `cors_origins`: names and origins (`--allow-host`, `--cors-origin`) accepted besides those
    of the config's [server] table and $LLMROUTER_ALLOW_HOSTS / $LLMROUTER_CORS_ORIGINS;
    `bind_host`: the address the server listens on (accepted as a Host name).
    Raises ConfigError for a malformed name or origin when `runtime` is given.
    """
    if token is None:
        token = os.environ.get(TOKEN_ENV) or None
    owns = runtime is None if owns_runtime is None else owns_runtime
    return LLMRouterApp(
        runtime,
        token=token,
        max_body_bytes=max_body_bytes,
        live_timeout_s=live_timeout_s,
        owns_runtime=owns,
        allow_hosts=allow_hosts,
        cors_origins=cors_origins,
        bind_host=bind_host,
    )
