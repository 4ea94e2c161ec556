"""An embedded HTTP/1.1 server that hosts any ASGI 3 app (http + lifespan scopes).

Built on asyncio streams with h11 doing all HTTP parsing. It provides keep-alive, a request
body limit (413), a header size limit (431), timeouts for idle and slow clients (408), a cap
on open connections (at the cap the connection idle longest between requests is closed to
make room; 503 when none is), one access-log line per request and graceful shutdown on
SIGINT/SIGTERM: stop accepting, let in-flight requests finish within a grace period, then
run the app's lifespan shutdown.

A request with both Content-Length and Transfer-Encoding is refused (400) and its connection
closed (RFC 9112 section 6.1: its framing is ambiguous, the stuff of request smuggling). When
the server answers before reading a whole request body (413, a malformed body, an app that
did not read it), it half-closes and reads and drops what the client still sends, for a
bounded time and amount, before closing: closing with unread data makes the kernel send a
reset, and clients that are still uploading then lose the answer.

Errors the server answers itself use the app's error shape (`{"detail": ...}`, plus OpenAI's
`error` object under /v1).

The access log carries the client address, method, path (never the query string), status
and milliseconds; never bodies or headers. A request refused before it was parsed whole
(400, 408, 431, 503) shows its method and path when its request line arrived well formed,
"-" otherwise. It goes to the "llmrouter_tui.server.access"
logger (INFO; the record also has them as fields: client, method, path, status,
duration_ms), errors to this module's logger, unless a `log` stream is given.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import time
import traceback
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TextIO, cast
from urllib.parse import unquote

import h11

from .errors import error_body
from .lifespan import Lifespan
from .types import ASGIApp, Message

__all__ = ["ACCESS_LOGGER", "ClientDisconnected", "HttpServer", "ServerConfig"]

ACCESS_LOGGER = "llmrouter_tui.server.access"
_access_log = logging.getLogger(ACCESS_LOGGER)
_log = logging.getLogger(__name__)

_REASONS: dict[int, bytes] = {s.value: s.phrase.encode() for s in HTTPStatus}
_READ_SIZE = 65536
_WRITE_HIGH_WATER = 256 * 1024
_ASGI_VERSION = {"version": "3.0", "spec_version": "2.4"}
_JSON_TYPE = (b"content-type", b"application/json")
_CLOSE = (b"connection", b"close")
# A request's start kept for when it is refused before h11 parsed it: its path says which
# error shape to answer with (/v1 or not), and its method and path go to the access log.
_SNIFF_BYTES = 1024
# A request line as h11 accepts it (RFC 9110 token method, visible-ASCII target): only then
# are a refused request's method and path logged, so no control bytes reach the log.
_REQUEST_LINE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([\x21-\x7e]+) HTTP/\d\.\d\r?\n")
_BOTH_LENGTHS = (
    "malformed HTTP request: it has both Content-Length and Transfer-Encoding; send only one"
)

# h11's reasons for refusing a request, as messages that say what to fix. h11's own text can
# quote the offending line, which may hold a token: it is never shown.
_PROTOCOL_PROBLEMS: dict[str, str] = {
    "illegal header line": "a header line is not 'Name: value' (header names cannot contain "
    "spaces or control characters)",
    "illegal header name": "a header name contains characters that are not allowed",
    "illegal header value": "a header value contains control characters",
    "continuation line at start of headers": "the first header line starts with whitespace",
    "illegal request line": "the request line is not 'METHOD /path HTTP/1.1'",
    "no request line received": "no request line was received",
    "illegal method characters": "the method contains characters that are not allowed",
    "illegal target characters": "the request path contains characters that are not allowed "
    "(percent-encode them)",
    "missing mandatory host: header": "the Host header is missing (HTTP/1.1 requires it)",
    "found multiple host: headers": "the Host header is given more than once",
    "bad content-length": "Content-Length is not a whole number of bytes",
    "conflicting content-length headers": "Content-Length is given more than once with "
    "different values",
    "multiple transfer-encoding headers": "Transfer-Encoding is given more than once",
    "only transfer-encoding: chunked is supported": "only Transfer-Encoding: chunked is supported",
    "illegal chunk header": "a chunk-size line of the chunked body is not a hexadecimal size",
    "malformed chunk footer": "a chunk of the chunked body does not end with CRLF",
    "peer unexpectedly closed connection": "the connection closed in the middle of the request",
}


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Where to listen and the limits applied to every connection."""

    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 1 << 20
    max_header_bytes: int = 16 * 1024
    max_connections: int = 1000
    # Idle time allowed between requests: longer than common clients' own idle expiry (httpx
    # 5 s), so a client never reuses a connection just as the server closes it, which loses
    # that request. nginx's default is 75 s too.
    keepalive_timeout_s: float = 75.0
    request_timeout_s: float = 10.0  # to receive a whole request head, and each body read
    body_timeout_s: float = 60.0  # to receive a whole request body
    write_timeout_s: float = 30.0  # a client that stops reading a response is dropped
    shutdown_grace_s: float = 5.0  # in-flight requests get this long after SIGTERM
    linger_timeout_s: float = 5.0  # reading the unread rest of a refused request, at most
    linger_max_bytes: int = 32 << 20  # and this many bytes of it
    access_log: bool = True
    backlog: int = 1024
    # `--workers N`: several processes listen on the same port, each with its own socket, and
    # the kernel spreads new connections across them (SO_REUSEPORT, Linux).
    reuse_port: bool = False
    # Name this process in every response (`x-llmrouter-worker: <pid>`), so a client or a test
    # can see which worker answered.
    worker_header: bool = False


class ClientDisconnected(OSError):
    """Raised by `send()` once the client has gone away (ASGI spec 2.4)."""


def _canned_response(status: int, detail: str, path: str = "") -> bytes:
    """A complete `Connection: close` error response for when no request was parsed."""
    body = error_body(path, status, detail)
    head = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n" % (
        status,
        _REASONS.get(status, b""),
        len(body),
    )
    return head + b"connection: close\r\n\r\n" + body


def _protocol_problem(exc: h11.RemoteProtocolError) -> str:
    """What is wrong with what h11 refused, in words (never a repr of the client's bytes)."""
    text = str(exc).lower()
    for prefix, problem in _PROTOCOL_PROBLEMS.items():
        if text.startswith(prefix):
            return problem
    return "it does not follow HTTP/1.1 (RFC 9112)"


def _sniffed_path(start: bytes) -> str:
    """The path at the start of a raw request ("" if there is none), for an error's shape."""
    parts = start.lstrip(b"\r\n").split(b" ", 2)
    return parts[1].partition(b"?")[0].decode("latin-1") if len(parts) > 1 else ""


def _sniffed_request(start: bytes) -> tuple[str, str]:
    """Method and path (no query) of a raw request whose request line arrived whole and is
    well formed; ("-", "-") otherwise, as the access log shows what is not known."""
    match = _REQUEST_LINE.match(start.lstrip(b"\r\n"))
    if match is None:
        return "-", "-"
    return match[1].decode("ascii"), match[2].partition(b"?")[0].decode("ascii")


def _has_both_lengths(headers: list[tuple[bytes, bytes]]) -> bool:
    """Content-Length and Transfer-Encoding together (an ambiguous body length)."""
    names = [name for name, _ in headers]
    return b"transfer-encoding" in names and b"content-length" in names


def _client_text(client: tuple[str, int] | None) -> str:
    if client is None:
        return "-"
    host, port = client
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class HttpServer:
    """Serves one ASGI app on one address; see the module docstring."""

    def __init__(
        self, app: ASGIApp, config: ServerConfig | None = None, *, log: TextIO | None = None
    ) -> None:
        self.app = app
        self.config = config or ServerConfig()
        self._log = log
        self.state: dict[str, Any] = {}
        self._lifespan = Lifespan(app, self.state)
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stop = asyncio.Event()
        self._stop_is_gentle = False  # stopping since stop_gently(), not request_stop()
        self._force = asyncio.Event()
        self._shutdown_task: asyncio.Future[None] | None = None
        self.shutting_down = False
        self.accepted = 0  # connections accepted so far (shows keep-alive reuse)
        self.evicted = 0  # idle keep-alive connections closed to admit new ones at the cap
        # (client, method, path, status, ms) of requests not yet logged.
        self._access_lines: list[tuple[tuple[str, int] | None, str, str, int | None, float]] = []
        #: Added to every response when `config.worker_header` is set.
        self.extra_headers: tuple[tuple[bytes, bytes], ...] = (
            ((b"x-llmrouter-worker", b"%d" % os.getpid()),) if self.config.worker_header else ()
        )

    # ---- addresses ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (useful after binding port 0)."""
        if self._server is None or not self._server.sockets:
            return self.config.port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def open_connections(self) -> int:
        """Connections counted against the cap (`config.max_connections`)."""
        return len(self._connections)

    @property
    def url(self) -> str:
        host = self.config.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    # ---- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Run the app's lifespan startup, then bind and start accepting connections."""
        await self._lifespan.startup()
        try:
            self._server = await asyncio.start_server(
                self._accept,
                self.config.host,
                self.config.port,
                backlog=self.config.backlog,
                reuse_port=self.config.reuse_port or None,
            )
        except BaseException:
            await self._lifespan.shutdown()
            raise

    def request_stop(self) -> None:
        """Begin a graceful shutdown (a second call skips the grace period)."""
        if self._stop.is_set() and not self._stop_is_gentle:
            self._force.set()
        self._stop_is_gentle = False
        self._stop.set()

    def stop_gently(self) -> None:
        """Begin a graceful shutdown that the next request_stop() does not cut short.

        For `--workers`: the supervisor's request and the worker's own signal (Ctrl-C reaches
        every process of the group, systemd signals them all) may come in either order, and
        together they are one stop, not two.
        """
        if not self._stop.is_set():
            self._stop_is_gentle = True
            self._stop.set()

    def stop_now(self) -> None:
        """Shut down without waiting for in-flight requests (as a second Ctrl-C does)."""
        self._force.set()
        self._stop.set()

    async def run(
        self,
        *,
        install_signal_handlers: bool = True,
        ready: Callable[[HttpServer], None] | None = None,
    ) -> None:
        """Start, call `ready(self)`, serve until SIGINT/SIGTERM or request_stop(), shut down."""
        await self.start()
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        if install_signal_handlers:
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, self.request_stop)
                    installed.append(sig)
                except (NotImplementedError, RuntimeError, ValueError):
                    pass  # not the main thread, or no signal support on this platform
        try:
            if ready is not None:
                ready(self)
            await self._stop.wait()
        finally:
            try:
                await self.shutdown()
            finally:
                for sig in installed:
                    loop.remove_signal_handler(sig)

    async def shutdown(self) -> None:
        """Stop accepting, let in-flight requests finish (bounded), then lifespan shutdown.

        Calling it again (or concurrently) waits for the same shutdown.
        """
        if self._shutdown_task is None:
            self._shutdown_task = asyncio.ensure_future(self._shutdown())
        await asyncio.shield(self._shutdown_task)

    async def _shutdown(self) -> None:
        self.shutting_down = True
        self._stop.set()
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            if conn.idle:
                conn.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.shutdown_grace_s
        pending = {t for t in self._tasks if not t.done()}
        force = asyncio.ensure_future(self._force.wait())
        try:
            while pending and not self._force.is_set():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                await asyncio.wait(
                    {*pending, force}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                pending = {t for t in pending if not t.done()}
        finally:
            force.cancel()
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=2.0)
        self.flush_access_log()
        try:
            await self._lifespan.shutdown()
        finally:
            _flush_log_handlers()  # handlers may hold lines until the loop's turn ends

    # ---- logging ------------------------------------------------------------------------------

    def _write(self, line: str) -> None:
        if self._log is not None:
            with suppress(OSError, ValueError):  # a closed stream must not break serving
                self._log.write(line)

    def access(
        self, client: tuple[str, int] | None, method: str, path: str, status: int | None, ms: float
    ) -> None:
        """One access-log line: client, method, path (no query string), status, milliseconds.

        Lines are logged once per event-loop turn (after the responses that finished in it
        were sent) rather than each on its request's own path.
        """
        if not self.config.access_log:
            return
        if not self._access_lines:
            asyncio.get_running_loop().call_soon(self.flush_access_log)
        self._access_lines.append((client, method, path, status, ms))

    def flush_access_log(self) -> None:
        """Log the access-log lines not yet logged."""
        entries, self._access_lines = self._access_lines, []
        if not entries:
            return
        lines = [
            f'{_client_text(client)} - "{method} {path}" {status or "-"} {ms:.1f}ms'
            for client, method, path, status, ms in entries
        ]
        if self._log is not None:
            self._write("\n".join(lines) + "\n")
            return
        if not _access_log.isEnabledFor(logging.INFO):
            return
        for line, (client, method, path, status, ms) in zip(lines, entries, strict=True):
            # Built directly: Logger.info() would also look up the caller's frame each time.
            record = logging.LogRecord(ACCESS_LOGGER, logging.INFO, "", 0, line, None, None)
            record.client = _client_text(client)
            record.method = method
            record.path = path
            record.status = status
            record.duration_ms = round(ms, 1)
            _access_log.handle(record)

    def log_app_error(self, exc: BaseException) -> None:
        """A one-line note about an exception the app let escape (type and place only)."""
        frames = traceback.extract_tb(exc.__traceback__)
        where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
        line = f"error: unhandled {type(exc).__name__} in the app{where}"
        if self._log is not None:
            self._write(f"llmrouter-tui: {line}\n")
        else:
            _log.error(line, extra={"exc_type": type(exc).__name__})

    # ---- connections --------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if self.shutting_down:
            writer.transport.close()
            return
        if len(self._connections) >= self.config.max_connections and not self._evict_idle():
            await self._refuse(reader, writer)
            return
        self.accepted += 1
        conn = _Connection(self, reader, writer)
        self._connections.add(conn)
        if task is not None:
            self._tasks.add(task)
        try:
            await conn.run()
        except asyncio.CancelledError:
            pass  # shutdown gave up on this connection; 3.11 would log a spurious traceback
        except Exception as exc:  # a bug in this server: drop the connection, keep serving
            self.log_app_error(exc)
        finally:
            conn.close()
            self._connections.discard(conn)
            if task is not None:
                self._tasks.discard(task)

    def _evict_idle(self) -> bool:
        """Make room for a new connection by closing the one that has waited longest for its
        next request (never one before its first request or with a request in flight);
        False when there is none.

        Idle keep-alive connections would otherwise hold slots of the cap for up to the
        keep-alive timeout while new clients are refused; a client's pool reconnects.
        """
        oldest: _Connection | None = None
        for conn in self._connections:
            since = conn.waiting_since
            if since and (oldest is None or since < oldest.waiting_since):
                oldest = conn
        if oldest is None:
            return False
        self._connections.discard(oldest)  # its slot is free now, not when its task ends
        oldest.close()
        self.evicted += 1
        return True

    async def _refuse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """503 for a connection over the cap (after reading its request head, if it comes)."""
        start = b""
        try:
            async with asyncio.timeout(1.0):
                start = await reader.read(_READ_SIZE)
        except (TimeoutError, OSError):
            pass
        detail = "server busy: too many open connections; retry"
        start = start[:_SNIFF_BYTES]
        writer.write(_canned_response(503, detail, _sniffed_path(start)))
        writer.transport.close()
        peer = writer.transport.get_extra_info("peername")
        client = peer[:2] if isinstance(peer, tuple) else None
        self.access(client, *_sniffed_request(start), 503, 0.0)


class _Connection:
    """One client connection: reads requests in turn and runs the app for each."""

    __slots__ = (
        "bg_read",
        "client",
        "eof",
        "h11",
        "idle",
        "pipelined",
        "reader",
        "served",
        "server",
        "server_addr",
        "transport",
        "waiting_since",
        "writer",
    )

    def __init__(
        self, server: HttpServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.transport = writer.transport
        self.h11 = h11.Connection(
            h11.SERVER, max_incomplete_event_size=server.config.max_header_bytes
        )
        peer = self.transport.get_extra_info("peername")
        sock = self.transport.get_extra_info("sockname")
        self.client: tuple[str, int] | None = (
            (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else None
        )
        self.server_addr: tuple[str, int] | None = (
            (str(sock[0]), int(sock[1])) if isinstance(sock, tuple) else None
        )
        self.idle = True
        self.eof = False
        self.pipelined = False
        self.bg_read: asyncio.Future[bytes] | None = None
        self.served = False  # a request was answered: waiting now is keep-alive idling
        # When the wait for the next request began (0.0: not waiting between requests).
        self.waiting_since = 0.0

    # ---- socket reads -------------------------------------------------------------------------

    async def _read_raw(self) -> bytes:
        try:
            return await self.reader.read(_READ_SIZE)
        except OSError:
            return b""

    async def read(self) -> bytes:
        """The next bytes from the client (b"" at EOF), reusing a pending background read."""
        pending = self.bg_read
        if pending is not None:
            self.bg_read = None
            return await pending
        return await self._read_raw()

    def background_read(self) -> asyncio.Future[bytes]:
        """A read left running while the app works, so a disconnect can be noticed."""
        if self.bg_read is None:
            self.bg_read = asyncio.ensure_future(self._read_raw())
        return self.bg_read

    def close(self) -> None:
        if self.bg_read is not None and not self.bg_read.done():
            self.bg_read.cancel()
        if not self.transport.is_closing():
            self.transport.close()

    async def drain(self) -> None:
        """Wait for the client to take buffered output; ClientDisconnected if it will not."""
        try:
            async with asyncio.timeout(self.server.config.write_timeout_s):
                await self.writer.drain()
        except TimeoutError:
            self.transport.abort()
            raise ClientDisconnected("the client stopped reading the response") from None
        except OSError as exc:
            raise ClientDisconnected("the client closed the connection") from exc

    # ---- request loop -------------------------------------------------------------------------

    async def run(self) -> None:
        server = self.server
        while True:
            head = await self._read_request()
            if head is None:
                return
            exchange = _Exchange(self, *head)
            await exchange.handle()
            if self.eof:
                return
            conn = self.h11
            if exchange.close_after or server.shutting_down:
                if exchange.may_linger and conn.their_state is not h11.DONE:
                    await self._linger()
                return
            if conn.their_state is h11.SEND_BODY and not await self._discard_body():
                return
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()
            self.pipelined = False
            self.served = True

    async def _read_request(self) -> tuple[h11.Request, list[tuple[bytes, bytes]]] | None:
        """The next request and its headers (as a list: h11's own sequence is slow to walk)."""
        conn = self.h11
        config = self.server.config
        t0 = time.perf_counter()
        data, closed = conn.trailing_data
        start = data[:_SNIFF_BYTES]  # the request's first bytes: its path, should it be refused
        try:
            # Usually nothing is buffered between requests: go straight to reading.
            event = conn.next_event() if data or closed else h11.NEED_DATA
            if event is h11.NEED_DATA:
                if self.server.shutting_down:
                    return None
                self.idle = True
                if self.served:
                    self.waiting_since = time.monotonic()
                try:
                    async with asyncio.timeout(config.keepalive_timeout_s):
                        data = await self.read()
                except TimeoutError:
                    return None
                finally:
                    self.idle = False
                    self.waiting_since = 0.0
                t0 = time.perf_counter()
                start += data[: _SNIFF_BYTES - len(start)]
                conn.receive_data(data)
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    try:
                        async with asyncio.timeout(config.request_timeout_s):
                            while event is h11.NEED_DATA:
                                data = await self.read()
                                start += data[: _SNIFF_BYTES - len(start)]
                                conn.receive_data(data)
                                event = conn.next_event()
                    except TimeoutError:
                        detail = "request headers not received in time"
                        self.transport.write(_canned_response(408, detail, _sniffed_path(start)))
                        self.server.access(self.client, *_sniffed_request(start), 408, _ms(t0))
                        return None
        except h11.RemoteProtocolError as exc:
            status = exc.error_status_hint
            detail = (
                f"request headers too large (limit {config.max_header_bytes} bytes)"
                if status == 431
                else f"malformed HTTP request: {_protocol_problem(exc)}"
            )
            method, path = _sniffed_request(start)
            await self._refuse_request(status, detail, _sniffed_path(start), t0, method, path)
            return None
        if type(event) is not h11.Request:
            return None  # ConnectionClosed (EOF) or PAUSED
        headers = list(event.headers)
        if not await self._head_acceptable(event, headers, t0):
            return None
        return event, headers

    async def _head_acceptable(
        self, event: h11.Request, headers: list[tuple[bytes, bytes]], t0: float
    ) -> bool:
        """Whether a parsed head may go on to the app; if not, it has been refused."""
        limit = self.server.config.max_header_bytes
        # h11 bounds only incomplete heads; one that arrived whole in a read is measured here.
        size = len(event.target) + sum([len(n) + len(v) + 4 for n, v in headers])
        refusal: tuple[int, str] | None = None
        if size > limit:
            refusal = 431, f"request headers too large (limit {limit} bytes)"
        elif _has_both_lengths(headers):
            refusal = 400, _BOTH_LENGTHS
        if refusal is None:
            return True
        path = event.target.partition(b"?")[0].decode("latin-1")
        method = event.method.decode("latin-1")
        await self._refuse_request(*refusal, path, t0, method, path)
        return False

    async def _refuse_request(
        self, status: int, detail: str, path: str, t0: float, method: str, logged_path: str
    ) -> None:
        """Answer a request that will not reach the app, then close (after lingering).

        `path` shapes the error body; `method` and `logged_path` go to the access log ("-"
        where not known).
        """
        self._send_protocol_error(status, detail, path)
        self.server.access(self.client, method, logged_path, status, _ms(t0))
        await self._linger()

    def _send_protocol_error(self, status: int, detail: str, path: str) -> None:
        conn = self.h11
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        body = error_body(path, status, detail)
        headers = [_JSON_TYPE, (b"content-length", b"%d" % len(body)), _CLOSE]
        headers.extend(self.server.extra_headers)
        try:
            out = conn.send(
                h11.Response(status_code=status, headers=headers, reason=_REASONS.get(status, b""))
            )
            out += conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            out = _canned_response(status, detail, path)
        self.transport.write(out)

    async def _discard_body(self) -> bool:
        """Read and drop a request body the app left unread, so the connection can be reused.

        False when the connection must close instead (after lingering, if the client may
        still be sending).
        """
        conn = self.h11
        left = self.server.config.max_body_bytes
        try:
            async with asyncio.timeout(self.server.config.request_timeout_s):
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        data = await self.read()
                        if not data:
                            return False
                        conn.receive_data(data)
                        continue
                    if type(event) is not h11.Data:
                        return type(event) is h11.EndOfMessage
                    left -= len(event.data)
                    if left < 0:
                        break
        except TimeoutError:
            return False  # too slow to be worth lingering for
        except h11.RemoteProtocolError:
            pass
        await self._linger()
        return False

    async def _linger(self) -> None:
        """Before closing with a request unread: half-close, then read and drop what the
        client still sends until it closes, for a bounded time and amount.

        Closing a socket with unread data makes the kernel answer with a reset, and a client
        still uploading (urllib, http.client, httpx) then sees "connection reset" instead of
        the status it was sent. Shutdown stops a linger at once (the connection counts as idle).
        """
        server = self.server
        transport = self.transport
        if self.eof or server.shutting_down or transport.is_closing():
            return
        with suppress(OSError, RuntimeError):
            if transport.can_write_eof():
                transport.write_eof()  # sent once the answer is flushed: the client reads EOF
        left = server.config.linger_max_bytes
        self.idle = True
        try:
            async with asyncio.timeout(server.config.linger_timeout_s):
                while left > 0:
                    data = await self.read()
                    if not data:
                        break
                    left -= len(data)
        except TimeoutError:
            pass
        finally:
            self.idle = False


def _flush_log_handlers() -> None:
    """Write out what logging handlers still hold (before a process may end at once)."""
    for handler in logging.getLogger().handlers:
        with suppress(Exception):
            handler.flush()


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


_DISCONNECT: Message = {"type": "http.disconnect"}


class _Exchange:
    """One request/response on a connection: the ASGI scope, `receive` and `send`."""

    __slots__ = (
        "aborted",
        "body_bytes",
        "body_deadline",
        "body_done",
        "close_after",
        "complete",
        "conn",
        "head",
        "headers",
        "is_head",
        "may_linger",
        "path",
        "request",
        "started",
        "status",
        "t0",
        "waiter",
    )

    def __init__(
        self, conn: _Connection, request: h11.Request, headers: list[tuple[bytes, bytes]]
    ) -> None:
        self.conn = conn
        self.request = request
        self.headers = headers
        self.t0 = time.perf_counter()
        self.status: int | None = None
        self.head: tuple[int, list[tuple[bytes, bytes]]] | None = None
        self.started = False
        self.complete = False
        self.aborted = False
        self.body_done = False
        self.body_bytes = 0
        self.body_deadline = 0.0
        self.close_after = False
        self.may_linger = True  # False once the client proved too slow to wait for
        self.path = ""
        self.is_head = request.method == b"HEAD"
        self.waiter: asyncio.Future[None] | None = None

    async def handle(self) -> None:
        conn = self.conn
        server = conn.server
        request = self.request
        path_bytes, _, query = request.target.partition(b"?")
        raw_path = self.path = path_bytes.decode("latin-1")
        method = request.method.decode("latin-1")
        headers = self.headers
        try:
            length = next((v for n, v in headers if n == b"content-length"), None)
            if length is not None and int(length) > server.config.max_body_bytes:
                await self._abort(
                    413,
                    f"request body too large: {int(length)} bytes; the limit is "
                    f"{server.config.max_body_bytes} bytes",
                )
                return
            scope = {
                "type": "http",
                "asgi": _ASGI_VERSION,
                "http_version": request.http_version.decode("latin-1"),
                "server": conn.server_addr,
                "client": conn.client,
                "scheme": "http",
                "method": method,
                "root_path": "",
                "path": unquote(raw_path) if "%" in raw_path else raw_path,
                "raw_path": path_bytes,
                "query_string": query,
                "headers": headers,
                "state": dict(server.state),
            }
            try:
                await server.app(scope, self.receive, self.send)
            except ClientDisconnected:
                self.close_after = True
            except Exception as exc:
                server.log_app_error(exc)
                if not self.started:
                    await self._abort(500, "internal error")
                self.close_after = True
            else:
                if not self.started and not self.client_gone:
                    server.log_app_error(RuntimeError("the app returned without a response"))
                    await self._abort(500, "internal error")
        finally:
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(None)
            if not self.complete:
                self.close_after = True
            server.access(conn.client, method, raw_path, self.status, _ms(self.t0))

    @property
    def client_gone(self) -> bool:
        """The client closed the connection (an app may then end without answering)."""
        return self.conn.eof or self.conn.transport.is_closing()

    # ---- ASGI receive -------------------------------------------------------------------------

    async def receive(self) -> Message:
        if self.body_done or self.aborted:
            return await self._wait_disconnect()
        conn = self.conn
        h = conn.h11
        config = conn.server.config
        if h.client_is_waiting_for_100_continue and h.our_state is h11.SEND_RESPONSE:
            conn.transport.write(h.send(h11.InformationalResponse(status_code=100, headers=[])))
        chunks: list[bytes] = []
        loop = asyncio.get_running_loop()
        if self.body_deadline == 0.0:
            self.body_deadline = loop.time() + config.body_timeout_s
        while True:
            try:
                event = h.next_event()
            except h11.RemoteProtocolError as exc:
                await self._abort(400, f"malformed request body: {_protocol_problem(exc)}")
                return _DISCONNECT
            if event is h11.NEED_DATA:
                if chunks:
                    break
                if not await self._read_body_bytes(loop):
                    return _DISCONNECT
                continue
            kind = type(event)
            if kind is h11.Data:
                event = cast(h11.Data, event)  # `type(event) is h11.Data` does not narrow
                self.body_bytes += len(event.data)
                if self.body_bytes > config.max_body_bytes:
                    await self._abort(
                        413,
                        f"request body too large; the limit is {config.max_body_bytes} bytes",
                    )
                    return _DISCONNECT
                chunks.append(bytes(event.data))
            elif kind is h11.EndOfMessage:
                self.body_done = True
                break
            else:
                self.aborted = True
                self.close_after = True
                return _DISCONNECT
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return {"type": "http.request", "body": body, "more_body": not self.body_done}

    async def _read_body_bytes(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Feed the next bytes of the body to h11; False when the exchange ended instead
        (timed out: answered 408; or the client closed the connection)."""
        conn = self.conn
        when = min(self.body_deadline, loop.time() + conn.server.config.request_timeout_s)
        try:
            async with asyncio.timeout_at(when):
                data = await conn.read()
        except TimeoutError:
            self.may_linger = False
            await self._abort(408, "request body not received in time")
            return False
        if not data:
            conn.eof = True
            self.aborted = True
            self.close_after = True
            return False
        conn.h11.receive_data(data)
        return True

    async def _wait_disconnect(self) -> Message:
        """Block until the client disconnects or the response is complete."""
        conn = self.conn
        if self.complete or self.aborted or conn.eof or conn.transport.is_closing():
            return _DISCONNECT
        if self.waiter is None:
            self.waiter = asyncio.get_running_loop().create_future()
        waiters: set[asyncio.Future[Any]] = {self.waiter}
        if not conn.pipelined:
            waiters.add(conn.background_read())
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        pending = conn.bg_read
        if pending is not None and pending.done():
            conn.bg_read = None
            data = pending.result() if not pending.cancelled() else b""
            conn.h11.receive_data(data)
            if not data:
                conn.eof = True
                return _DISCONNECT
            conn.pipelined = True  # the next request arrived early; keep it for later
            return await self._wait_disconnect()
        return _DISCONNECT

    # ---- ASGI send ----------------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        if self.aborted:
            return
        kind = message["type"]
        if kind == "http.response.start":
            self._start(message)
            return
        if kind != "http.response.body":
            raise RuntimeError(f"unexpected ASGI message type {kind!r}")
        if not self.started or self.complete:
            raise RuntimeError("http.response.body outside of a response")
        conn = self.conn
        transport = conn.transport
        if transport.is_closing():
            self.close_after = True
            raise ClientDisconnected("the client closed the connection")
        body = message.get("body", b"")
        more = message.get("more_body", False)
        h = conn.h11
        out: list[bytes] = []
        head = self.head
        if head is not None:
            self.head = None
            out.append(self._head_bytes(head, len(body), more))
        if body and not self.is_head:
            out.append(h.send(h11.Data(data=body)))
        if not more:
            out.append(h.send(h11.EndOfMessage()))
            self.complete = True
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(None)
        transport.write(b"".join(out))
        if more or transport.get_write_buffer_size() > _WRITE_HIGH_WATER:
            await conn.drain()

    def _start(self, message: Message) -> None:
        """http.response.start: keep the head until the first body message (one write)."""
        if self.started:
            raise RuntimeError("http.response.start sent twice")
        self.started = True
        self.status = int(message["status"])
        self.head = (self.status, [(bytes(n), bytes(v)) for n, v in message.get("headers", ())])

    def _head_bytes(
        self, head: tuple[int, list[tuple[bytes, bytes]]], body_length: int, more: bool
    ) -> bytes:
        """The response head; a whole body in one message gets its content-length."""
        status, headers = head
        server = self.conn.server
        if not more and not any(n.lower() == b"content-length" for n, _ in headers):
            headers.append((b"content-length", b"%d" % body_length))
        if server.shutting_down:
            headers.append(_CLOSE)
        if server.extra_headers:
            headers.extend(server.extra_headers)
        return self.conn.h11.send(
            h11.Response(status_code=status, headers=headers, reason=_REASONS.get(status, b""))
        )

    async def _abort(self, status: int, detail: str) -> None:
        """Answer with an error ourselves (if nothing was sent yet) and end the exchange."""
        self.close_after = True
        if not self.started:
            self.started = True
            self.status = status
            self.head = None
            body = error_body(self.path, status, detail)
            headers = [_JSON_TYPE, (b"content-length", b"%d" % len(body)), _CLOSE]
            headers.extend(self.conn.server.extra_headers)
            h = self.conn.h11
            try:
                out = h.send(
                    h11.Response(
                        status_code=status, headers=headers, reason=_REASONS.get(status, b"")
                    )
                )
                if not self.is_head:
                    out += h.send(h11.Data(data=body))
                out += h.send(h11.EndOfMessage())
                self.conn.transport.write(out)
                self.complete = True
            except h11.LocalProtocolError:
                pass
        self.aborted = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)
