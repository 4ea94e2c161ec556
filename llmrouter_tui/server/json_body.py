"""Parse a request body as JSON, refusing what the core could not store or send.

Each refusal is a BadBody (answered 400) naming the field: text that is not valid Unicode
(lone surrogates from `\\udXXX` escapes), integers too long to convert, and NaN/Infinity.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..core.textcheck import invalid_text_field, invalid_text_message

# A surrogate can only reach a str through a \\uD800-\\uDFFF escape (the UTF-8 decoder
# refuses encoded ones), so bodies without such an escape skip the walk.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class BadBody(ValueError):
    """The body is not JSON the router can use; the message says why and where."""


class _TooLongInt:
    """Stands in for an integer literal of more digits than Python converts."""

    def __init__(self, digits: int) -> None:
        self.digits = digits


def _refuse_constant(name: str) -> Any:
    raise BadBody(f"malformed JSON: {name} is not a JSON number; send a finite number")


def _marking_int(text: str) -> int | _TooLongInt:
    try:
        return int(text)
    except ValueError:
        return _TooLongInt(len(text.lstrip("-")))


def _too_long_field(value: Any, path: str) -> tuple[str, int] | None:
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, _TooLongInt):
            return where or "the body", item.digits
        if isinstance(item, dict):
            stack.extend(
                (sub, f"{where}.{key}" if where else str(key)) for key, sub in item.items()
            )
        elif isinstance(item, list):
            stack.extend((sub, f"{where}[{i}]") for i, sub in enumerate(item))
    return None


def parse_json(body: bytes) -> Any:
    """`body` as JSON; BadBody naming the problem (and the field, when there is one)."""
    try:
        value = json.loads(body, parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise BadBody("malformed JSON: the body is not UTF-8") from None
    except RecursionError:
        raise BadBody("malformed JSON: nested too deeply") from None
    except BadBody:
        raise
    except json.JSONDecodeError as exc:
        raise BadBody(
            f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except ValueError:  # an integer literal beyond Python's digit limit
        marked = json.loads(body, parse_int=_marking_int)
        found = _too_long_field(marked, "")
        where, digits = found if found is not None else ("a number", 0)
        raise BadBody(
            f"{where} is an integer of {digits} digits, too long to use; send a smaller one"
        ) from None
    if _SURROGATE_ESCAPE.search(body) is not None:
        bad = invalid_text_field(value, "")
        if bad is not None:
            field, index = bad
            raise BadBody(invalid_text_message(field or "the body", index))
    return value
