"""Refuse text that cannot be stored or sent: lone surrogates (not valid Unicode).

Python strings may hold lone surrogates (from a JSON `\\udc80` escape, or undecodable bytes
in argv decoded with surrogateescape). No provider, SQLite column or UTF-8 log can take them,
so they are refused where they enter, naming the field, before any attempt is made.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .errors import InputError


def surrogate_at(text: str) -> int | None:
    """Index of the first lone surrogate in `text`, or None when it is valid Unicode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


def invalid_text_field(value: Any, field: str) -> tuple[str, int] | None:
    """The first string in `value` (walked through dicts, lists, tuples and dataclasses,
    keys included) that is not valid Unicode: its field path and the offending index."""
    stack: list[tuple[Any, str]] = [(value, field)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            index = surrogate_at(item)
            if index is not None:
                return path, index
        elif isinstance(item, dict):
            for key, sub in reversed(list(item.items())):
                if isinstance(key, str):
                    index = surrogate_at(key)
                    if index is not None:
                        return f"a key of {path}" if path else "a key of the body", index
                stack.append((sub, f"{path}.{key}" if path else str(key)))
        elif isinstance(item, list | tuple):
            for position in range(len(item) - 1, -1, -1):
                stack.append((item[position], f"{path}[{position}]"))
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            for spec in reversed(dataclasses.fields(item)):
                sub = getattr(item, spec.name)
                stack.append((sub, f"{path}.{spec.name}" if path else spec.name))
    return None


def invalid_text_message(field: str, index: int) -> str:
    return (
        f"{field} is not valid Unicode text (a lone surrogate at character {index}, e.g. an "
        "unpaired \\udc80 escape); send UTF-8 text"
    )


def require_valid_text(value: Any, field: str) -> None:
    """Raise InputError naming the first field of `value` that is not valid Unicode."""
    found = invalid_text_field(value, field)
    if found is not None:
        raise InputError(invalid_text_message(*found))
