"""Logging set-up for the command-line front-ends (`--serve`, `ask`, the app).

Modules log through `logging.getLogger(__name__)`; this module decides where it goes:

- `--serve` and `ask`: stderr, as "text" (the lines the server always wrote: access lines as
  they were, everything else as "llmrouter-tui: <message>") or "json" (one object per line:
  ts, level, logger, message, plus the record's structured fields).
- the app: `<data dir>/logs/app.log` (never the terminal it draws on), with timestamps.

Every line is scrubbed of API keys (and 6-character pieces of them) by the redactor the
front-end installs with `redact_with()`. Levels apply to this package's loggers; other
libraries' records get through from WARNING up.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported lazily: `llmrouter-tui --version` and the parser load this module
    from pathlib import Path

    from .core.runtime import Runtime

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
LEVEL_ENV = "LLMROUTER_LOG_LEVEL"
FORMAT_ENV = "LLMROUTER_LOG_FORMAT"
PACKAGE = "llmrouter_tui"
#: The embedded server's access log (server/http.py); text lines carry no prefix.
ACCESS_LOGGER = "llmrouter_tui.server.access"
APP_LOG = "app.log"
APP_LOG_MAX_BYTES = 5 << 20  # at start, a larger app.log is moved to app.log.1
PREFIX = "llmrouter-tui: "

_SCALARS = (str, int, float, bool, type(None))
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_redact: Callable[[str], str] = str


def redact_with(redact: Callable[[str], str] | None) -> None:
    """Scrub every line written from now on with `redact` (None: no scrubbing)."""
    global _redact
    _redact = redact or str


def _iso(created: float) -> str:
    whole = int(created)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return f"{stamp}.{int((created - whole) * 1000):03d}Z"


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields a record was logged with (`extra=`)."""
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and k[0] != "_"}


class TextFormatter(logging.Formatter):
    """The server's stderr lines: access lines as they are, the rest prefixed."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.name == ACCESS_LOGGER:
            return _redact(message)
        if not record.name.startswith(PACKAGE):
            message = f"{record.name}: {message}"
        if record.exc_info:  # other libraries' errors (ours log type and place only)
            message = f"{message}\n{self.formatException(record.exc_info)}"
        return _redact(PREFIX + message)


class FileFormatter(logging.Formatter):
    """The app's log file: time, level, logger, message."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_iso(record.created)} {record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return _redact(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message and the record's fields."""

    def __init__(self) -> None:
        super().__init__()
        from .core.jsonbytes import dumps

        self._dumps = dumps

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": _redact(record.getMessage()),
        }
        for key, value in _fields(record).items():
            if not isinstance(value, _SCALARS):
                value = str(value)
            out.setdefault(key, _redact(value) if isinstance(value, str) else value)
        if record.exc_info:
            out["exception"] = _redact(self.formatException(record.exc_info))
        return self._dumps(out).decode()


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (tests and embedders replace it).

    Lines logged on a running event loop are written together once the loop's turn is over
    (one write for, say, the access lines of every request that finished in it, instead of
    one each); lines logged elsewhere are written at once, after any still waiting.
    """

    def __init__(self) -> None:
        super().__init__()
        self._pending: list[str] = []
        self._flush_on: object = None  # the loop a flush is scheduled on

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, value: IO[str]) -> None:
        pass

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        events = sys.modules.get("asyncio.events")  # no asyncio loaded: no loop running
        loop = events._get_running_loop() if events is not None else None
        if loop is not None:
            if self._flush_on is not loop:  # (a loop that ended before flushing is forgotten)
                loop.call_soon(self.flush)
                self._flush_on = loop
            self._pending.append(line)
            return
        self._pending.append(line)
        self.flush()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            lines, self._pending = self._pending, []
            self._flush_on = None
            with contextlib.suppress(OSError, ValueError):  # a closed stderr must not break us
                stream = self.stream
                if lines:
                    stream.write("".join(lines))
                stream.flush()


class _PrivateFileHandler(logging.FileHandler):
    """A log file only its owner can read (mode 0600, like the other logs), opened at the
    first line written."""

    def _open(self) -> io.TextIOWrapper:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return open(fd, "a", encoding=self.encoding or "utf-8", errors=self.errors)


def _choose(
    given: str | None, env: str, choices: tuple[str, ...], default: str, problems: list[str]
) -> str:
    """`given`, else $env when it is one of `choices`, else `default`."""
    if given is not None:
        if given not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {given!r}")
        return given
    value = os.environ.get(env, "").strip().lower()
    if value and value not in choices:
        problems.append(f"{env}={value!r} is not one of {', '.join(choices)}; using {default}")
    return value if value in choices else default


def configure(
    level: str | None = None, fmt: str | None = None, *, path: Path | None = None
) -> logging.Handler:
    """Send logging to stderr (or to the file `path`) at `level` in format `fmt`; None
    means $LLMROUTER_LOG_LEVEL / $LLMROUTER_LOG_FORMAT, or else info and text.

    Replaces what an earlier call installed; handlers others installed are kept.
    """
    problems: list[str] = []
    level = _choose(level, LEVEL_ENV, LEVELS, "info", problems)
    fmt = _choose(fmt, FORMAT_ENV, FORMATS, "text", problems)
    number: int = getattr(logging, level.upper())
    reset()
    # Nothing here prints threads or processes: skip looking them up for every record.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler: logging.Handler
    if path is not None:
        _rotate_if_large(path)
        handler = _PrivateFileHandler(path, delay=True, encoding="utf-8")
        handler.setFormatter(JsonFormatter() if fmt == "json" else FileFormatter())
    else:
        handler = _StderrHandler()
        handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.setLevel(number)
    # Our marker on the handler; mypy narrowed `handler` to our two classes, neither declares it.
    handler._llmrouter = True  # type: ignore[union-attr]
    logging.getLogger().addHandler(handler)
    logging.getLogger(PACKAGE).setLevel(number)
    for problem in problems:
        logging.getLogger(__name__).warning(problem)
    return handler


def reset() -> None:
    """Remove what `configure()` installed (its handlers, this package's level)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_llmrouter", False):
            root.removeHandler(handler)
            handler.flush()
            handler.close()
    logging.getLogger(PACKAGE).setLevel(logging.NOTSET)


def configured_elsewhere() -> bool:
    """Has the process's logging been set up by someone else (uvicorn/gunicorn --log-config,
    an embedding program)? Then `ensure_configured()` leaves it alone."""
    return bool(logging.getLogger().handlers or logging.getLogger(PACKAGE).handlers)


def ensure_configured() -> None:
    """For the app under uvicorn/gunicorn: stderr logging from $LLMROUTER_LOG_LEVEL and
    $LLMROUTER_LOG_FORMAT, unless logging is already set up."""
    if not configured_elsewhere():
        configure()


@contextmanager
def logging_to_stderr(level: str | None, fmt: str | None = "text") -> Iterator[None]:
    """`configure()` for the length of a command (`--serve`, `ask`)."""
    configure(level, fmt)
    try:
        yield
    finally:
        reset()
        redact_with(None)


@contextmanager
def app_log(runtime: Runtime, args: Any) -> Iterator[None]:
    """The app's logging, for as long as it runs: `<data dir>/logs/app.log`, keys scrubbed."""
    from .core.redact import Redactor

    path = runtime.store.logs_dir / APP_LOG
    configure(getattr(args, "log_level", None), getattr(args, "log_format", None), path=path)
    redact_with(Redactor.for_settings(runtime.settings, public=runtime.catalog.models).text)
    try:
        yield
    finally:
        reset()
        redact_with(None)


def _rotate_if_large(path: Path) -> None:
    try:
        if path.stat().st_size > APP_LOG_MAX_BYTES:
            os.replace(path, path.with_name(path.name + ".1"))
    except OSError:
        pass  # no file yet, or it cannot be moved: keep appending
