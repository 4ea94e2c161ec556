"""Where a setting came from: a default, the environment, a `.env` line or a config file line.

Every value the settings loader reads carries an `Origin`, so warnings can name the file and
line, `llmrouter-tui config` can show each setting's source, and the working-directory rule
(core/trust.py) can tell a file the user chose from one that merely sits where they ran.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

OriginKind = Literal["default", "env", "dotenv", "file", "cli"]


@dataclass(frozen=True, slots=True)
class Origin:
    """The source of one value.

    `trusted` is False for files that sit in (or were chosen by a file in) the working
    directory: `./llmrouter.toml`, `./.env`, and what `./.env` points at.
    """

    kind: OriginKind
    path: Path | None = None
    line: int | None = None
    #: The environment variable or command-line option, when there is one.
    name: str | None = None
    trusted: bool = True

    def describe(self) -> str:
        """A short human description, e.g. `/repo/.env, line 3 (GROQ_BASE_URL)`."""
        if self.kind == "default":
            return "default"
        if self.kind == "env":
            return f"environment (${self.name})"
        if self.kind == "cli":
            return f"command line ({self.name})"
        where = str(self.path)
        if self.line:
            where += f", line {self.line}"
        if self.name:
            where += f" ({self.name})"
        return where

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form (for `llmrouter-tui config --json`)."""
        return {
            "kind": self.kind,
            "path": str(self.path) if self.path else None,
            "line": self.line,
            "name": self.name,
            "working_directory": not self.trusted,
            "description": self.describe(),
        }

    def same_file(self, other: Origin) -> bool:
        """Both values come from one and the same working-directory file."""
        return (
            not self.trusted
            and not other.trusted
            and self.path is not None
            and self.path == other.path
        )


DEFAULT = Origin("default")


def from_env(name: str) -> Origin:
    return Origin("env", name=name)


def from_file(path: Path, line: int | None, *, trusted: bool, name: str | None = None) -> Origin:
    return Origin("file", path=path, line=line, name=name, trusted=trusted)


@dataclass(frozen=True, slots=True)
class Notice:
    """Something a front-end shows once at start: a refused setting, a replaced template…"""

    level: Literal["warning", "info"]
    text: str

    @property
    def label(self) -> str:
        """How a line of text introduces it: "warning" or "notice"."""
        return "warning" if self.level == "warning" else "notice"

    def __str__(self) -> str:
        return self.text


def display_url(url: str | None) -> str:
    """A URL for messages, with any `user:password@` part masked."""
    if not url:
        return "(the provider's default endpoint)"
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, "***@" + host, parts.path, parts.query, parts.fragment))


# ---- finding a key's line in a TOML file -----------------------------------------------------

_HEADER = re.compile(r"^\s*\[(?!\[)\s*(.+?)\s*\]\s*(?:#.*)?$")
_ONE_KEY = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_KEY = re.compile(rf"^\s*({_ONE_KEY}(?:\s*\.\s*{_ONE_KEY})*)\s*=")
_PART = re.compile(r"""\s*([A-Za-z0-9_-]+|"((?:[^"\\]|\\.)*)"|'([^']*)')\s*(?:\.|$)""")


def _split_key(dotted: str) -> tuple[str, ...]:
    parts: list[str] = []
    for match in _PART.finditer(dotted):
        bare, double, single = match.group(1), match.group(2), match.group(3)
        if double is not None:
            parts.append(double)
        elif single is not None:
            parts.append(single)
        else:
            parts.append(bare)
    return tuple(parts)


def toml_key_line(text: str, table: Sequence[str], key: str | None = None) -> int | None:
    """Best-effort 1-based line where `key` of `[table]` is set (or the table, for None).

    Understands `[a.b]` headers (quoted parts too), `key = …` inside them, dotted keys
    (`b.key = …` under `[a]`) and inline tables (the line of the enclosing key is returned).
    Used only to point messages at a line; None when the line cannot be found.
    """
    target = (*table, key) if key is not None else tuple(table)
    current: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            current = _split_key(header.group(1))
            if key is None and current == target:
                return number
            continue
        match = _KEY.match(line)
        if not match:
            continue
        full = current + _split_key(match.group(1))
        # The exact key, or an inline table / dotted prefix that contains it.
        if full == target or (len(full) < len(target) and target[: len(full)] == full):
            return number
        if key is None and full[: len(target)] == target:
            return number
    return None
