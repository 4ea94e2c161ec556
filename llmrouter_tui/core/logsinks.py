"""Append-only JSONL and CSV logs that several processes can share, and readers that survive
torn lines.

Each record is formatted completely first and then written with exactly one `os.write` on a
file opened `O_APPEND`, so concurrent writers never interleave within a line. Files are 0600.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import secrets
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from .jsonbytes import dumps as json_bytes

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

PROMPT_FIELDS: tuple[str, ...] = (
    "timestamp",
    "prompt_id",
    "conversation_id",
    "requested_model",
    "model_used",
    "provider",
    "template_id",
    "prompt",
    "response",
    "latency_ms",
    "ttft_ms",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "tokens_estimated",
    "from_cache",
    "fallback_used",
    "attempts",
    "status",
    "error",
    "finish_reason",
    "truncated",
    "notice",
    "source",
    "tool_calls",  # OpenAI-shaped tool calls the model asked for ([] if none)
    "cost_usd",  # USD (null: no price known, or the request failed)
    "cost_estimated",  # cost_usd comes from estimated token counts
    "saved_usd",  # cache hits: what the reply would have cost
    "auto_reason",  # why `auto` chose the model (null for other requests)
    "compare_id",  # the two replies of a side-by-side compare share it
)

RATING_FIELDS: tuple[str, ...] = ("timestamp", "prompt_id", "model", "rating", "feedback")

PREFERENCE_FIELDS: tuple[str, ...] = (
    "timestamp",
    "compare_id",
    "prompt_a",
    "prompt_b",
    "model_a",
    "model_b",
    "template_id",
    "outcome",  # "a" | "b" | "tie" | "both_bad"
    "winner",  # model_a, model_b, or null for a tie or both bad
    "feedback",
)

Format = Literal["jsonl", "csv"]

# Spreadsheets run cells starting with these as formulas.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NO_LINK = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV, errno.EMLINK}


def neutralise(text: str) -> str:
    """Prefix `'` to text a spreadsheet would treat as a formula."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def _csv_cell(value: Any) -> str:
    """One CSV field, quoted as csv.writer's default dialect (QUOTE_MINIMAL) would quote it."""
    if not isinstance(value, str):
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return repr(value)  # numbers are ours, never formulas
        value = json_bytes(value).decode("utf-8")
    text = neutralise(value)
    if '"' in text:
        return '"' + text.replace('"', '""') + '"'
    if "," in text or "\n" in text or "\r" in text:
        return '"' + text + '"'
    return text


def format_jsonl(row: Mapping[str, Any], fields: Sequence[str]) -> bytes:
    """One JSON object line (keys in `fields` order) as UTF-8 bytes."""
    # A row built in field order (the usual case) is written as it is.
    obj = row if tuple(row) == tuple(fields) else {name: row.get(name) for name in fields}
    return json_bytes(obj) + b"\n"


def format_csv(values: Sequence[Any]) -> bytes:
    """One CSV record (RFC 4180 quoting, CRLF) with formula-looking text neutralised."""
    line = ",".join([_csv_cell(v) for v in values])
    if len(values) == 1 and not line:
        line = '""'  # a lone empty field must not read back as an empty record
    return (line + "\r\n").encode("utf-8", "replace")


def _os_reason(exc: OSError) -> str:
    if exc.errno is not None and exc.strerror:
        return f"[Errno {exc.errno}] {exc.strerror}"
    return str(exc)


class AppendLog:
    """One shared append-only log file; `append` never raises for I/O problems."""

    def __init__(self, path: Path, fields: Sequence[str], fmt: Format) -> None:
        self.path = path
        self.fields = tuple(fields)
        self.fmt: Format = fmt
        self._header = format_csv(self.fields) if fmt == "csv" else b""
        # The CSV file's own columns, read from its header once it exists: a file an older
        # version started (fewer fields) keeps its columns, and fields it lacks are left out
        # of it (the JSONL log has them), instead of every later record being garbled.
        self._columns: tuple[str, ...] | None = None

    def format(self, row: Mapping[str, Any]) -> bytes:
        """The exact bytes one record occupies in this file."""
        if self.fmt == "jsonl":
            return format_jsonl(row, self.fields)
        columns = self._columns if self._columns is not None else self._file_columns()
        return format_csv([row.get(name) for name in columns])

    def _file_columns(self) -> tuple[str, ...]:
        try:
            with open(self.path, "rb") as file:
                first = file.readline(1 << 16)
        except OSError:
            return self.fields  # not there yet: it will be created with our header
        if not first.endswith(b"\n"):
            return self.fields  # empty or torn: decided again on the next record
        try:
            header = next(csv.reader([first.decode("utf-8").rstrip("\r\n")]))
        except (csv.Error, UnicodeDecodeError, StopIteration):
            header = list(self.fields)
        self._columns = tuple(header) if header else self.fields
        return self._columns

    def append(self, row: Mapping[str, Any], kept: str = "the reply was kept") -> str | None:
        """Append one record; return a human-readable warning instead of raising on failure."""
        return self.append_many((row,), kept)

    def append_many(
        self, rows: Sequence[Mapping[str, Any]], kept: str = "the reply was kept"
    ) -> str | None:
        """Append records with one write; a warning (naming the file) instead of raising."""
        return self.append_formatted(b"".join([self.format(row) for row in rows]), kept)

    def append_formatted(self, data: bytes, kept: str = "the reply was kept") -> str | None:
        """Append already formatted records (`format` output) with one write."""
        try:
            fd = self._open()
            try:
                if fcntl is not None:
                    # Appenders take turns (released by close), so another process's record
                    # being written is never mistaken for a torn one.
                    with contextlib.suppress(OSError):
                        fcntl.flock(fd, fcntl.LOCK_EX)
                # A crashed or short write (any process) may have left a torn line: end it
                # rather than glue this record onto it.
                if self._tail_is_torn(fd):
                    data = self._after_torn_tail() + data
                written = os.write(fd, data)  # the one write for all these records
            finally:
                os.close(fd)
        except OSError as exc:
            return f"could not write {self.path}: {_os_reason(exc)}; {kept}"
        if written != len(data):
            return (
                f"could not write {self.path}: only {written} of {len(data)} bytes were "
                f"written; {kept}"
            )
        return None

    # ---- file handling ---------------------------------------------------------------------

    def _open(self) -> int:
        # Opened per write so a rotated, deleted or repaired file is picked up next time;
        # read-write so the torn-tail check needs no second descriptor.
        flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC
        try:
            return os.open(self.path, flags)
        except FileNotFoundError:
            pass
        except PermissionError:  # a write-only file: append without the torn-tail check
            return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        try:
            return self._create()
        except FileNotFoundError:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            return self._create()

    def _create(self) -> int:
        """Create the file (0600, with its header) unless another process just did; open it."""
        self._columns = None  # a new file: its header is read again on the next record
        flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC
        if not self._header:
            try:
                fd = os.open(self.path, flags | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                return os.open(self.path, flags)
            os.fchmod(fd, 0o600)
            return fd
        # The file must never be visible without its header, or another process could append
        # a row above it: build it aside and hard-link it into place (atomic, fails if taken).
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            try:
                os.fchmod(fd, 0o600)
                os.write(fd, self._header)
            finally:
                os.close(fd)
            try:
                os.link(tmp, self.path)
            except FileExistsError:
                pass
            except OSError as exc:
                if exc.errno not in _NO_LINK:
                    raise
                return self._create_without_link(flags)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        return os.open(self.path, flags)

    def _create_without_link(self, flags: int) -> int:
        # Filesystems without hard links: O_EXCL decides who writes the header.
        try:
            fd = os.open(self.path, flags | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return os.open(self.path, flags)
        os.fchmod(fd, 0o600)
        os.write(fd, self._header)
        return fd

    def _after_torn_tail(self) -> bytes:
        """What to write after a torn record so that it ends and every reader skips it."""
        if self.fmt == "jsonl":
            return b"\n"  # JSON lines never hold a raw newline
        # A CSV record torn inside a quoted field would swallow the records after it: close
        # the quote (an odd count so far) and add more fields than any record has, so the
        # torn record is always skipped as garbled.
        quotes = self.path.read_bytes().count(b'"')
        return (b'"' if quotes % 2 else b"") + b"," * (len(self.fields) + 1) + b"\r\n"

    @staticmethod
    def _tail_is_torn(fd: int) -> bool:
        try:
            size = os.fstat(fd).st_size
            return size > 0 and os.pread(fd, 1, size - 1) != b"\n"
        except OSError:  # not readable (write-only file, a device): nothing to check
            return False


# ---- readers (for tests and tools; stats never read logs) -------------------------------------


def _read_text(path: Path) -> str:
    return Path(path).read_bytes().decode("utf-8", "replace")


def read_jsonl(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every complete JSON-object line, and a warning (with line number) per skipped line."""
    text = _read_text(path)
    rows: list[dict[str, Any]] = []
    warnings: list[str] = []
    lines = text.split("\n")
    last = len(lines) - 1  # lines[last] is "" when the file ends with a newline
    for number, line in enumerate(lines, start=1):
        if number - 1 == last:
            if line.strip():
                warnings.append(f"{path}, line {number}: skipped a torn last line (no newline)")
            break
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            warnings.append(f"{path}, line {number}: skipped an unreadable line ({exc})")
            continue
        if not isinstance(obj, dict):
            warnings.append(f"{path}, line {number}: skipped a line that is not a JSON object")
            continue
        rows.append(obj)
    return rows, warnings


def read_csv(path: Path) -> tuple[list[dict[str, str]], list[str]]:
    """Every complete CSV record keyed by the header, and a warning per skipped record.

    A record whose field count differs from the header's, or a last record without its line
    end, is skipped. Line numbers are those where the record ends.
    """
    text = _read_text(path)
    rows: list[dict[str, str]] = []
    warnings: list[str] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    torn_tail = bool(text) and not text.endswith("\n")
    header: list[str] | None = None
    try:
        records = list(_numbered(reader))
    except csv.Error as exc:
        return rows, [f"{path}: could not parse ({exc})"]
    for index, (number, record) in enumerate(records):
        if not record:
            continue
        if torn_tail and index == len(records) - 1:
            warnings.append(f"{path}, line {number}: skipped a torn last record (no line end)")
            break
        if header is None:
            header = record
            continue
        if len(record) != len(header):
            warnings.append(
                f"{path}, line {number}: skipped a garbled record "
                f"({len(record)} fields, the header has {len(header)})"
            )
            continue
        rows.append(dict(zip(header, record, strict=True)))
    return rows, warnings


def _numbered(reader: Any) -> Iterator[tuple[int, list[str]]]:
    for record in reader:
        yield reader.line_num, record
