"""`llmrouter-tui --serve --workers N`: N server processes on one port (Linux).

One process runs the router on one core. With `--workers N` this process becomes a
supervisor that forks N workers, each a complete `--serve` (its own event loop, its own
Runtime on the shared data directory: SQLite in WAL mode and whole-line log appends are safe
for several processes) listening on its own socket bound to the same address with
SO_REUSEPORT. The kernel hashes every new connection to one of those sockets, so connections
are spread evenly with no shared accept queue (a shared socket, as in uvicorn's or
gunicorn's `--workers`, wakes whichever process the scheduler favours and the spread can be
very uneven). A kept-alive connection stays with the worker that accepted it.

Start-up. The supervisor first opens the runtime and builds the app once, then closes them:
a bad config or an unusable data directory stops start-up with the usual exit codes (2 and
1) before any worker runs, and the start-up notices are printed once rather than N times. It
then binds (never listens on) a reservation socket with SO_REUSEPORT: port 0 then chooses
one free port for all the workers, and the port stays reserved while a worker is replaced.
A port another program (or another supervisor) already listens on is refused (exit 1).
The banner ("serving on URL with N workers") comes once every worker listens.

Stopping. SIGINT/SIGTERM to the supervisor: it closes the write end of a pipe every worker
watches, and each worker stops gracefully (stop accepting, finish in-flight requests within
the grace period, close the store), exactly as on its own signal; a worker that receives the
signal directly too (Ctrl-C reaches the whole process group; systemd signals every process)
stops once: the two together do not count as the second signal that cuts the grace period
short. A second signal to the supervisor ends every worker's grace period at once (through a
pipe of each worker's own), as a second Ctrl-C does for one process. The supervisor exits 0
once every worker has stopped cleanly, 1 if one did not. If the supervisor itself is killed
(SIGKILL), the pipe closes and the workers stop on their own, gracefully.

A worker that dies while serving (killed, out of memory, a crash) is reported on stderr with
how it ended and replaced by a new one; connections waiting in its accept queue are lost
(their clients see a reset). More than `MAX_RESTARTS` deaths within `RESTART_WINDOW_S`
seconds stop everything (exit 1): something is wrong that a restart will not fix. A worker
that fails to start stops the others and the supervisor exits with its exit code.

Every response names the worker that served it (`x-llmrouter-worker: <pid>`).
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import selectors
import signal
import socket
import sys
import time
from collections import deque
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..core.errors import ConfigError, StorageError
from ..core.runtime import Runtime
from ..exit_codes import ExitCode
from .app import DEFAULT_MAX_BODY, create_app

if TYPE_CHECKING:
    from .http import HttpServer


#: More worker deaths than this within RESTART_WINDOW_S seconds stop the server.
MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_HANDLED = (*_STOP_SIGNALS, signal.SIGCHLD)
_READY = b"r"
_FORCE = b"f"


_log = logging.getLogger(__name__)


def _say(message: str, level: int = logging.INFO) -> None:
    """Tell the operator (stderr, through logging, as `--serve` does)."""
    _log.log(level, message)


def spreads_connections() -> str | None:
    """None when this platform spreads connections across SO_REUSEPORT sockets, else why not."""
    if not sys.platform.startswith("linux"):
        return (
            f"this platform ({sys.platform}) does not spread connections across sockets that "
            "share a port (only Linux's SO_REUSEPORT does)"
        )
    if not hasattr(socket, "SO_REUSEPORT") or not hasattr(os, "fork"):
        return "this Python has no SO_REUSEPORT or fork()"
    return None


def how_it_ended(status: int) -> str:
    """A wait status in words: "exit code 1", "killed by SIGKILL"."""
    code = os.waitstatus_to_exitcode(status)
    if code >= 0:
        return f"exit code {code}"
    try:
        return f"killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


def reserve_port(host: str, port: int) -> tuple[list[socket.socket], int]:
    """Bind (without listening) one SO_REUSEPORT socket per address of `host`; return them
    and the port (the one chosen when `port` is 0).

    Raises OSError (EADDRINUSE) when something already listens on `port`: workers joining
    another program's SO_REUSEPORT group would silently share its traffic.
    """
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    addresses = list(dict.fromkeys((family, sockaddr) for family, _, _, _, sockaddr in infos))
    if port != 0:
        for family, sockaddr in addresses:  # a listener without our flag makes this fail
            with _socket(family) as probe:
                probe.bind(sockaddr)
    reserved: list[socket.socket] = []
    chosen = port
    try:
        for family, sockaddr in addresses:
            sock = _socket(family)
            reserved.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((sockaddr[0], chosen, *sockaddr[2:]))
            chosen = chosen or int(sock.getsockname()[1])
    except BaseException:
        for sock in reserved:
            sock.close()
        raise
    return reserved, chosen


def _socket(family: int) -> socket.socket:
    """A TCP socket set up as asyncio sets up a listening one (SO_REUSEADDR, v6 only)."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6 and hasattr(socket, "IPV6_V6ONLY"):
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    return sock


def _check_settings(args: argparse.Namespace, host: str, token: str | None) -> int | list[str]:
    """Open the runtime and build the app once, as each worker will: an exit code if that
    fails (having said why), else the banner's lines on the host names and CORS origins
    allowed. Prints the start-up notices (once for all workers)."""
    try:
        runtime = Runtime.open(config=args.config, data_dir=args.data_dir)
    except ConfigError as exc:
        _say(f"configuration error: {exc}", logging.ERROR)
        return ExitCode.BAD_INPUT
    except StorageError as exc:
        _say(f"storage error: {exc}", logging.ERROR)
        return ExitCode.FAILURE
    try:
        for notice in runtime.notices:
            level = logging.WARNING if notice.level == "warning" else logging.INFO
            _say(f"{notice.label}: {notice.text}", level)
        app = create_app(
            runtime,
            token=token or "",
            max_body_bytes=DEFAULT_MAX_BODY,
            owns_runtime=False,
            allow_hosts=args.allow_host,
            cors_origins=args.cors_origin,
            bind_host=host,
        )
    except ConfigError as exc:
        _say(f"configuration error: {exc}", logging.ERROR)
        return ExitCode.BAD_INPUT
    finally:
        runtime.close()
    return app.guard.listed.banner_lines()


@dataclass(slots=True)
class _Worker:
    pid: int
    ready_fd: int  # the supervisor's end of the pipe the worker says "ready" on
    force_fd: int  # the supervisor's end of the pipe that ends the worker's grace period
    replaces: int | None = None
    ready: bool = False


@dataclass
class Supervisor:
    """Forks and watches the workers; see the module docstring."""

    args: argparse.Namespace
    host: str
    token: str | None
    count: int
    workers: dict[int, _Worker] = field(default_factory=dict)
    exit_code: int = ExitCode.OK
    stopping: bool = False
    announced: bool = False
    access_lines: list[str] = field(default_factory=list)  # allowed host names, CORS origins

    def __post_init__(self) -> None:
        self.port = 0
        self.reserved: list[socket.socket] = []
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = os.pipe()
        # Workers watch the read end; closing the write end asks them all to stop.
        self.alive_r, self.alive_w = os.pipe()
        self.deaths: deque[float] = deque()
        self.unclean: list[str] = []

    # ---- the supervisor's loop ----------------------------------------------------------------

    def run(self, reserved: list[socket.socket], port: int) -> int:
        self.reserved, self.port = reserved, port
        os.set_blocking(self.wake_w, False)
        os.set_blocking(self.wake_r, False)
        self.selector.register(self.wake_r, selectors.EVENT_READ)
        previous = {sig: signal.signal(sig, _note_signal) for sig in _HANDLED}
        previous_fd = signal.set_wakeup_fd(self.wake_w)
        try:
            for _ in range(self.count):
                if not self.stopping:
                    self._spawn()
            while self.workers:
                for key, _ in self.selector.select(timeout=1.0):
                    if key.fd == self.wake_r:
                        self._on_signals()
                    else:
                        self._on_ready_pipe(key.fd)
                self._reap()
                self._announce()
        finally:
            signal.set_wakeup_fd(previous_fd)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._close_all()
        if self.unclean and self.exit_code == ExitCode.OK:
            _say(f"a worker did not stop cleanly: {'; '.join(self.unclean)}", logging.ERROR)
            self.exit_code = ExitCode.FAILURE
        if self.exit_code == ExitCode.OK:
            _say("stopped")
        return self.exit_code

    def _announce(self) -> None:
        if self.announced or self.stopping or len(self.workers) < self.count:
            return
        if not all(w.ready for w in self.workers.values()):
            return
        self.announced = True
        host = f"[{self.host}]" if ":" in self.host else self.host
        pids = ", ".join(str(pid) for pid in self.workers)
        mode = (
            " (demo mode: replies come from the built-in fake upstream)" if self.args.demo else ""
        )
        _say(f"serving on http://{host}:{self.port} with {self.count} workers (pids {pids}){mode}")
        _say("token required (Authorization: Bearer ...)" if self.token else "no token required")
        for line in self.access_lines:
            _say(line)
        _say("press Ctrl-C to stop")

    def _on_signals(self) -> None:
        try:
            data = os.read(self.wake_r, 512)
        except BlockingIOError:
            return
        for signum in data:
            if signum in _STOP_SIGNALS:
                self.stop()

    def stop(self) -> None:
        """First call: every worker stops gracefully. Later calls: they skip the grace."""
        if not self.stopping:
            self.stopping = True
            if self.alive_w >= 0:
                os.close(self.alive_w)
                self.alive_w = -1
            return
        for worker in self.workers.values():
            with suppress(OSError):  # it may have stopped already
                os.write(worker.force_fd, _FORCE)

    def _on_ready_pipe(self, fd: int) -> None:
        worker = next((w for w in self.workers.values() if w.ready_fd == fd), None)
        try:
            data = os.read(fd, 16)
        except OSError:
            data = b""
        if worker is not None and data.startswith(_READY):
            worker.ready = True
            if worker.replaces is not None:
                _say(f"worker {worker.pid} ready (replaces {worker.replaces})")
        if not data or worker is None or worker.ready:  # said its word, or exited
            self._close_ready(fd)
            if worker is not None:
                worker.ready_fd = -1

    def _reap(self) -> None:
        for pid in list(self.workers):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, status = pid, 0
            if done == 0:
                continue
            worker = self.workers.pop(pid)
            if worker.ready_fd >= 0:
                self._close_ready(worker.ready_fd)
            with suppress(OSError):
                os.close(worker.force_fd)
            self._ended(worker, status)

    def _ended(self, worker: _Worker, status: int) -> None:
        how = how_it_ended(status)
        code = os.waitstatus_to_exitcode(status)
        if self.stopping:
            if code != 0 and -code not in _STOP_SIGNALS:
                self.unclean.append(f"worker {worker.pid}: {how}")
            return
        if not worker.ready:
            _say(
                f"worker {worker.pid} could not start ({how}); stopping the other workers",
                logging.ERROR,
            )
            known = code in (ExitCode.FAILURE, ExitCode.BAD_INPUT)
            self.exit_code = code if known else ExitCode.FAILURE
            self.stop()
            return
        now = time.monotonic()
        while self.deaths and now - self.deaths[0] > RESTART_WINDOW_S:
            self.deaths.popleft()
        self.deaths.append(now)
        if len(self.deaths) > MAX_RESTARTS:
            _say(
                f"worker {worker.pid} stopped while serving ({how}): {len(self.deaths)} workers "
                f"have died within {RESTART_WINDOW_S:g} s, so the server stops; see the "
                "messages above for why they died",
                logging.ERROR,
            )
            self.exit_code = ExitCode.FAILURE
            self.stop()
            return
        _say(
            f"worker {worker.pid} stopped while serving ({how}); starting a replacement",
            logging.WARNING,
        )
        self._spawn(replaces=worker.pid)

    # ---- forking a worker ---------------------------------------------------------------------

    def _spawn(self, replaces: int | None = None) -> None:
        ready_r, ready_w = os.pipe()
        force_r, force_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _HANDLED)
        try:
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the worker (the tests see it over HTTP)
                code: int = ExitCode.FAILURE
                try:
                    os.close(ready_r)
                    os.close(force_w)
                    code = self._worker_main(ready_w, force_r, blocked)
                except KeyboardInterrupt:
                    code = ExitCode.OK
                except BaseException as exc:
                    _say(f"worker {os.getpid()} failed: {type(exc).__name__}: {exc}", logging.ERROR)
                finally:  # os._exit skips the interpreter's clean-up: flush what is held
                    for handler in logging.getLogger().handlers:
                        with suppress(Exception):
                            handler.flush()
                    with suppress(OSError, KeyError, ValueError):
                        sys.stdout.flush()
                        sys.stderr.flush()
                    os._exit(code)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        os.close(ready_w)
        os.close(force_r)
        os.set_blocking(force_w, False)
        self.workers[pid] = _Worker(pid=pid, ready_fd=ready_r, force_fd=force_w, replaces=replaces)
        self.selector.register(ready_r, selectors.EVENT_READ)

    def _worker_main(  # pragma: no cover - runs in the worker
        self, ready_w: int, force_r: int, blocked: set[int | signal.Signals]
    ) -> int:
        """In the forked worker: drop the supervisor's state, then serve."""
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        self.selector.close()
        for fd in (self.wake_r, self.wake_w, self.alive_w):
            if fd >= 0:
                os.close(fd)
        for worker in self.workers.values():
            os.close(worker.force_fd)
            if worker.ready_fd >= 0:
                os.close(worker.ready_fd)
        for sock in self.reserved:
            sock.close()
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        alive_r = self.alive_r

        def ready(server: HttpServer) -> None:
            import asyncio

            loop = asyncio.get_running_loop()

            def stop_asked() -> None:  # end of file: the supervisor asks, or is gone
                loop.remove_reader(alive_r)
                server.stop_gently()  # at one with the worker's own signal, if it came too

            def force_asked() -> None:
                with suppress(OSError):
                    if os.read(force_r, 16):  # nothing but end of file: the supervisor is gone
                        server.stop_now()
                loop.remove_reader(force_r)

            loop.add_reader(alive_r, stop_asked)
            loop.add_reader(force_r, force_asked)
            os.write(ready_w, _READY)
            os.close(ready_w)

        from .main import serve

        return serve(
            self.args, host=self.host, token=self.token, port=self.port, worker_ready=ready
        )

    # ---- clean-up -----------------------------------------------------------------------------

    def _close_ready(self, fd: int) -> None:
        with suppress(OSError, KeyError, ValueError):
            self.selector.unregister(fd)
        with suppress(OSError, KeyError, ValueError):
            os.close(fd)

    def _close_all(self) -> None:
        for worker in self.workers.values():  # only after an error in the supervisor itself
            _signal(worker.pid, signal.SIGTERM)
            with suppress(OSError):
                os.close(worker.force_fd)
        self.selector.close()
        for fd in (self.wake_r, self.wake_w, self.alive_r, self.alive_w):
            if fd >= 0:
                with suppress(OSError, KeyError, ValueError):
                    os.close(fd)
        for sock in self.reserved:
            sock.close()


def _note_signal(signum: int, frame: object) -> None:
    """The signal itself is handled by the loop, which reads it from the wake-up pipe."""


def _signal(pid: int, sig: signal.Signals) -> None:
    with suppress(OSError, KeyError, ValueError):
        os.kill(pid, sig)


def run_workers(args: argparse.Namespace, *, host: str, token: str | None, count: int) -> int:
    """`--serve --workers N`: see the module docstring."""
    if count < 1:
        _say(f"--workers must be 1 or more, got {count}", logging.ERROR)
        return ExitCode.BAD_INPUT
    why_not = spreads_connections()
    if why_not is not None:
        _say(
            f"--workers {count} is not available: {why_not}. Run without --workers (one "
            "process), or run the app under uvicorn or gunicorn with their --workers (README, "
            "Deploy).",
            logging.ERROR,
        )
        return ExitCode.BAD_INPUT
    checked = _check_settings(args, host, token)
    if isinstance(checked, int):
        return checked
    try:
        reserved, port = reserve_port(host, args.port)
    except OSError as exc:
        busy = exc.errno == errno.EADDRINUSE
        hint = " (another program listens on it; choose another --port)" if busy else ""
        _say(f"cannot listen on {host}:{args.port}: {exc.strerror or exc}{hint}", logging.ERROR)
        return ExitCode.FAILURE
    return Supervisor(args, host, token, count, access_lines=checked).run(reserved, port)
