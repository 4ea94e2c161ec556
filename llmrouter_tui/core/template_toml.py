"""Writing templates as TOML (for `llmrouter-tui templates import`).

The output reads back (core/templates.py) as exactly the same templates: every string is a
TOML basic string with escapes, so quotes, backslashes, control characters and `{{...}}`
survive unchanged. Text with line breaks is written as a multi-line string, readable in an
editor.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .templates import Template

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


class NotRepresentable(ValueError):
    """A string TOML cannot hold (a lone surrogate, which is not Unicode text)."""


def _escape_char(char: str, *, multiline: bool) -> str:
    if multiline and char in "\n\t":
        return char
    if char in _ESCAPES:
        return _ESCAPES[char]
    code = ord(char)
    if code < 0x20 or code == 0x7F:
        return f"\\u{code:04x}"
    if 0xD800 <= code <= 0xDFFF:
        raise NotRepresentable(f"lone surrogate U+{code:04X}")
    return char


def toml_string(text: str) -> str:
    """`text` as a TOML basic string (multi-line when it holds line breaks)."""
    if "\n" in text:
        body = "".join(_escape_char(c, multiline=True) for c in text)
        # A newline right after the opening quotes is dropped by TOML readers.
        return f'"""\n{body}"""'
    return '"' + "".join(_escape_char(c, multiline=False) for c in text) + '"'


def toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else toml_string(key)


def dump_template(template: Template) -> str:
    """One template as a TOML table (and its `defaults` sub-table)."""
    table = toml_key(template.id)
    lines = [f"[{table}]"]
    lines.append(f"title = {toml_string(template.title)}")
    lines.append(f"category = {toml_string(template.category)}")
    if template.tags:
        lines.append(f"tags = [{', '.join(toml_string(t) for t in template.tags)}]")
    if template.description is not None:
        lines.append(f"description = {toml_string(template.description)}")
    if template.system is not None:
        lines.append(f"system = {toml_string(template.system)}")
    lines.append(f"prompt = {toml_string(template.prompt)}")
    if template.defaults:
        lines.append("")
        lines.append(f"[{table}.defaults]")
        lines.extend(f"{toml_key(k)} = {toml_string(v)}" for k, v in template.defaults.items())
    return "\n".join(lines) + "\n"


def dump_templates(templates: Iterable[Template], *, converted_from: str | None = None) -> str:
    """A whole templates file; raises NotRepresentable for text TOML cannot hold."""
    header = ["# llmrouter-tui prompt templates (format: see the shipped prompt_templates.toml)."]
    if converted_from:
        name = "".join(c if c.isprintable() else "?" for c in converted_from)
        header.append(f"# Converted from {name} by `llmrouter-tui templates import`.")
    parts = ["\n".join(header) + "\n"]
    parts.extend(dump_template(t) for t in templates)
    return "\n".join(parts)
