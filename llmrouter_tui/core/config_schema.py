"""The llmrouter.toml schema: every key's type, bounds, default and meaning, declared once.

The settings dataclasses in core/config.py carry each key's `Key` in `field(metadata=...)`
(see `setting`); provider and model tables, which are not dataclasses, have a map of `Key`s
there. From these come: the checks and conversions when a file is read (`check_table`; errors
name the file and the line, unknown keys list the valid ones with a "did you mean"), the
`llmrouter-tui config` listing, and README's configuration reference (`reference`).
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeVar, cast
from urllib.parse import urlsplit

from .errors import ConfigError
from .provenance import toml_key_line

T = TypeVar("T")

#: The `field(metadata=...)` entry that holds a setting's `Key`.
SCHEMA = "llmrouter_tui.schema"

ValueType = Literal[
    "bool", "int", "number", "text", "texts", "url", "choice", "date", "weights", "table"
]


@dataclass(frozen=True, slots=True)
class Key:
    """One setting of llmrouter.toml."""

    type: ValueType
    #: One line: what the setting does (README's reference and `config --json`).
    doc: str
    #: What leaving the key out means (None: not set).
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    #: "choice": the allowed values, or a function giving them (read when first needed).
    choices: tuple[str, ...] | Callable[[], Sequence[str]] = ()
    #: "text": whether "" is allowed (an empty `api_key_env` means "send no key").
    allow_empty: bool = False
    #: "table": checks the value; returns what is wrong with it, or None.
    check: Callable[[Any], str | None] | None = None
    #: TOML text for README's example, for keys whose default shows nothing useful.
    example: str | None = None
    #: Whether README's example shows `example` commented out (a price of 0 is not a default).
    example_commented: bool = False

    def allowed(self) -> tuple[str, ...]:
        return tuple(self.choices() if callable(self.choices) else self.choices)

    def describe(self) -> str:
        """The values the key accepts, as a message and the reference say it."""
        low, high = self.minimum, self.maximum
        if self.type in ("int", "number"):
            noun = "an integer" if self.type == "int" else "a number"
            if low is not None and high is not None:
                return f"{noun} from {_num(low)} to {_num(high)}"
            if low is not None:
                return f"{noun} ≥ {_num(low)}"
            return noun
        if self.type == "choice":
            return "one of " + ", ".join(repr(c) for c in self.allowed())
        if self.type == "weights":
            names = ", ".join(self.default or {})
            return f"a table of numbers ≥ 0 named {names} (not all 0)"
        if self.type == "text":
            return "a string" if self.allow_empty else "a non-empty string"
        return _PLAIN[self.type]


_PLAIN: Mapping[str, str] = {
    "bool": "true or false",
    "texts": "a list of non-empty strings",
    "url": "an http(s) URL",
    "date": "a date (YYYY-MM-DD)",
    "table": "a table",
}


def _num(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


def setting(
    default: T,
    doc: str,
    type: ValueType,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    example: str | None = None,
) -> T:
    """A dataclass field with its schema entry: `x: int = setting(2, "what x does", "int")`."""
    key = Key(type, doc, default, minimum, maximum, example=example)
    metadata = {SCHEMA: key}
    if isinstance(default, Mapping):
        mapping = dict(default)  # each instance gets its own copy
        return cast(T, field(default_factory=lambda: dict(mapping), metadata=metadata))
    return field(default=default, metadata=metadata)


@dataclass(frozen=True, slots=True)
class Section:
    """A table of llmrouter.toml: `[routing]`, or `[providers.NAME]` when `named`."""

    name: str
    doc: str
    keys: Mapping[str, Key]
    #: A table of tables, one per provider name or model id.
    named: bool = False
    #: How the reference writes the name part, and its example ("NAME", "ollama").
    placeholder: str = ""
    example_name: str = ""

    def title(self, name: str | None = None) -> str:
        """`[routing]`, `[providers.ollama]`, `[models."llama3.2"]`; "" for the top level."""
        if not self.named:
            return f"[{self.name}]" if self.name else ""
        part = name if name is not None else self.placeholder
        return f'[{self.name}."{part}"]' if self.name == "models" else f"[{self.name}.{part}]"


def keys_of(cls: type) -> dict[str, Key]:
    """The schema entries of a settings dataclass, in declaration order."""
    return {f.name: f.metadata[SCHEMA] for f in fields(cls) if SCHEMA in f.metadata}


# ---- checking what a file gives -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TomlFile:
    """A config file's text, for pointing errors at lines."""

    path: Path
    text: str

    def line(self, *keys: str) -> int | None:
        """The line of `keys` (a dotted path), else of the closest enclosing table."""
        for depth in range(len(keys), 0, -1):
            found = toml_key_line(self.text, keys[: depth - 1], keys[depth - 1])
            if found is None:
                found = toml_key_line(self.text, keys[:depth])
            if found is not None:
                return found
        return None

    def error(self, message: str, *keys: str) -> ConfigError:
        return ConfigError(message, path=str(self.path), line=self.line(*keys))


class Invalid(ValueError):
    """A value a key does not accept; the text follows "[section] key " in the message.

    `part` names an entry inside the value (a weight's name), written `key.part`.
    """

    def __init__(self, text: str, part: str | None = None) -> None:
        super().__init__(text)
        self.part = part


def _did_you_mean(name: str, valid: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_key(key: str, where: str, valid: Iterable[str]) -> str:
    """The message for a key the schema does not have: the valid ones, and the likely one."""
    valid = list(valid)
    place = f"in {where}" if where else "at the top level"
    return (
        f"unknown setting {key!r} {place}{_did_you_mean(key, valid)}; "
        f"valid keys: {', '.join(valid)}. Fix or remove it"
    )


def _finite(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _shown(value: Any) -> str:
    """A value for a message: a huge one (a 400-digit number) is cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _in_bounds(key: Key, value: float) -> bool:
    return (key.minimum is None or value >= key.minimum) and (
        key.maximum is None or value <= key.maximum
    )


def _weights(key: Key, value: Any) -> dict[str, float]:
    names: Mapping[str, float] = key.default or {}
    if not isinstance(value, dict):
        raise Invalid(f"must be {key.describe()}, got {_shown(value)}")
    for name, weight in value.items():
        if name not in names:
            valid = list(names)
            raise Invalid(
                f"has an unknown weight {name!r}{_did_you_mean(name, valid)}; "
                f"valid weights: {', '.join(valid)}"
            )
        if not _finite(weight) or weight < 0:
            raise Invalid(f"must be a number ≥ 0, got {_shown(weight)}", part=name)
    merged = {**names, **{k: float(v) for k, v in value.items()}}
    if not any(merged.values()):
        raise Invalid("must not all be 0")
    return merged


def convert(key: Key, value: Any) -> Any:
    """`value` as the settings hold it; Invalid names what the key accepts."""
    ok = True
    if key.type == "bool":
        ok = isinstance(value, bool)
    elif key.type == "int":
        ok = isinstance(value, int) and not isinstance(value, bool) and _in_bounds(key, value)
    elif key.type == "number":
        ok = _finite(value) and _in_bounds(key, value)
        value = float(value) if ok else value
    elif key.type == "text":
        ok = isinstance(value, str) and (key.allow_empty or bool(value.strip()))
        value = value.strip() if ok else value
    elif key.type == "texts":
        ok = isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)
        value = tuple(value) if ok else value
    elif key.type == "url":
        ok = isinstance(value, str) and _is_http_url(value)
    elif key.type == "choice":
        ok = isinstance(value, str) and value in key.allowed()
    elif key.type == "date":
        ok, value = _date(value)
    elif key.type == "weights":
        return _weights(key, value)
    elif key.type == "table":
        ok = _table_ok(key, value)
    if not ok:
        raise Invalid(f"must be {key.describe()}, got {_shown(value)}")
    return value


def _table_ok(key: Key, value: Any) -> bool:
    """Whether `value` is a table; Invalid carries the key's own check's complaint."""
    if not isinstance(value, dict):
        return False
    if key.check is not None:
        problem = key.check(value)
        if problem:
            raise Invalid(problem)
    return True


def _is_http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _date(value: Any) -> tuple[bool, Any]:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return True, value.isoformat()
    if isinstance(value, str):
        try:
            return True, dt.date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    return False, value


def check_table(
    section: Section, table: Any, file: TomlFile, where: tuple[str, ...], name: str | None = None
) -> dict[str, Any]:
    """The keys of one table, checked and converted; errors name the file and the line.

    `where` is the table's path in the file (("routing",), ("providers", "ollama")); `name`
    the provider name or model id of a named section.
    """
    title = section.title(name)
    if not isinstance(table, dict):
        raise file.error(f"{title} must be a table", *where)
    prefix = f"{title} " if title else ""
    values: dict[str, Any] = {}
    for key_name, value in table.items():
        key = section.keys.get(key_name)
        if key is None:
            raise file.error(unknown_key(key_name, title, section.keys), *where, key_name)
        try:
            values[key_name] = convert(key, value)
        except Invalid as exc:
            label = f"{key_name}.{exc.part}" if exc.part else key_name
            raise file.error(f"{prefix}{label} {exc}", *where, key_name) from None
    return values


# ---- README's configuration reference ---------------------------------------------------------


def toml_value(value: Any) -> str:
    """A default as TOML text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _num(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML form for {value!r}")


def _commented(line: str, doc: str) -> str:
    return f"{line:<26} # {doc}" if len(line) < 26 else f"{line}   # {doc}"


def _example_lines(section: Section) -> list[str]:
    lines: list[str] = []
    if section.name:
        header = section.title(section.example_name) if section.named else f"[{section.name}]"
        lines.append(_commented(header, section.doc))
    for name, key in section.keys.items():
        if section.named or key.default is None:
            if key.example is None:
                continue
            line = f"{name} = {key.example}"
            if key.example_commented or not section.named:
                line = "# " + line
        else:
            line = f"{name} = {toml_value(key.default)}"
        lines.append(_commented(line, key.doc))
    return lines


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def reference(sections: Sequence[Section]) -> str:
    """README's configuration reference: an example with every default, then each key's values."""
    example = [line for section in sections for line in _example_lines(section)]
    rows = ["| setting | accepted values | default | meaning |", "|---|---|---|---|"]
    for section in sections:
        for name, key in section.keys.items():
            where = f"{section.title()} {name}" if section.name else name
            default = "not set" if key.default is None else f"`{toml_value(key.default)}`"
            cells = (f"`{where}`", key.describe(), default, key.doc)
            rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "```toml\n" + "\n".join(example) + "\n```\n\n" + "\n".join(rows) + "\n"
