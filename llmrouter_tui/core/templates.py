"""Prompt templates: loading, validating, rendering and watching the templates files.

A templates file is TOML (one table per template, the table name is the id) or, for users
migrating from the original project, a JSON list of objects with an ``id``. The shipped
``prompt_templates.toml`` documents the format in its header.

User files (`user_template_paths`) are read in this order, each adding to or replacing the
templates before it: ``./prompt_templates.json``, ``./prompt_templates.toml``,
``<data dir>/prompt_templates.json``, ``<data dir>/prompt_templates.toml``. In one directory
the TOML file wins over the JSON one (TOML is this app's format; the JSON list is read for
compatibility), and each such conflict is reported as a notice. A working-directory file that
changes what a built-in template sends is announced too (`TemplateSet.notices`).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, TypedDict

from .errors import ConfigError, MissingVariablesError, UnknownTemplateError
from .provenance import Notice
from .wire_meta import Field

__all__ = [
    "RenderedTemplate",
    "Template",
    "TemplateInfo",
    "TemplateSet",
    "TemplateWatcher",
    "default_templates_path",
    "load_templates",
    "load_templates_file",
    "user_template_paths",
]

TEMPLATES_FILENAME = "prompt_templates.toml"
LEGACY_TEMPLATES_FILENAME = "prompt_templates.json"

#: A placeholder: `{{name}}`, whitespace allowed inside the braces.
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_TOML_POS = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_TOML_EOF = re.compile(r"\s*\(at end of document\)\s*$")

_ALLOWED_KEYS = ("title", "category", "tags", "prompt", "system", "defaults", "description")
DEFAULT_CATEGORY = "general"


def default_templates_path() -> Path:
    """The shipped default templates file.

    The copy inside the package (``llmrouter_tui/data/prompt_templates.toml``, present in an
    installed wheel) when it exists, else the repository-root file of a source checkout.
    """
    package_dir = Path(__file__).resolve().parent.parent
    packaged = package_dir / "data" / TEMPLATES_FILENAME
    if packaged.is_file():
        return packaged
    return package_dir.parent / TEMPLATES_FILENAME


@dataclass(frozen=True, slots=True)
class RenderedTemplate:
    """A template filled with values: the user prompt and the optional system message."""

    prompt: str
    system: str | None = None


class TemplateInfo(TypedDict):
    """One template as listed (GET /templates): its variables are the `{{name}}`
    placeholders of its prompt, then of its system message."""

    id: str
    title: str
    category: str
    tags: list[str]
    variables: Annotated[list[str], Field("Every placeholder's name, in order of first use.")]
    defaults: Annotated[dict[str, str], Field("Values used for variables left without one.")]
    system: str | None
    description: str | None
    prompt: str


@dataclass(frozen=True)
class Template:
    """One prompt template as read from a templates file."""

    id: str
    title: str
    category: str
    tags: tuple[str, ...]
    prompt: str
    system: str | None = None
    defaults: dict[str, str] = field(default_factory=dict, hash=False)
    description: str | None = None
    source: str = ""
    #: Line of the template in `source` (for messages); not part of equality.
    line: int | None = field(default=None, compare=False)

    @cached_property
    def _variable_names(self) -> tuple[str, ...]:
        return tuple(_variables_of(self.prompt, self.system))

    @property
    def variables(self) -> list[str]:
        """Variable names, unique, in order of first appearance (prompt first, then system)."""
        return list(self._variable_names)

    def render(self, values: Mapping[str, object]) -> RenderedTemplate:
        """Fill the placeholders with `values` (over `defaults`).

        A value that is None, empty or only whitespace counts as not given, so the default is
        used if there is one. Raises MissingVariablesError naming every variable left without a
        value. Values are inserted once and never expanded themselves; extra values are ignored.
        """
        filled: dict[str, str] = {}
        missing: list[str] = []
        for name in self._variable_names:
            raw = values.get(name)
            text = None if raw is None else str(raw)
            if text is None or not text.strip():
                text = self.defaults.get(name)
            if text is None or not text.strip():
                missing.append(name)
            else:
                filled[name] = text
        if missing:
            raise MissingVariablesError(self.id, missing)

        def substitute(match: re.Match[str]) -> str:
            return filled[match.group(1)]

        prompt = _PLACEHOLDER.sub(substitute, self.prompt)
        system = None if self.system is None else _PLACEHOLDER.sub(substitute, self.system)
        return RenderedTemplate(prompt=prompt, system=system)

    def as_dict(self) -> TemplateInfo:
        """A JSON-ready description of the template."""
        return {
            "id": self.id,
            "title": self.title,
            "category": self.category,
            "tags": list(self.tags),
            "variables": list(self.variables),
            "defaults": dict(self.defaults),
            "system": self.system,
            "description": self.description,
            "prompt": self.prompt,
        }


class TemplateSet(Mapping[str, Template]):
    """The templates in effect, by id, in load order (later files add to or replace earlier)."""

    def __init__(
        self, templates: Mapping[str, Template] | None = None, notices: Sequence[Notice] = ()
    ) -> None:
        self._templates: dict[str, Template] = dict(templates or {})
        #: Conflicts and working-directory overrides found while loading (shown once at start).
        self.notices: tuple[Notice, ...] = tuple(notices)

    def __getitem__(self, template_id: str) -> Template:
        return self._templates[template_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._templates)

    def __len__(self) -> int:
        return len(self._templates)

    def __contains__(self, template_id: object) -> bool:
        return template_id in self._templates

    def __repr__(self) -> str:
        return f"TemplateSet({list(self._templates)!r})"

    def ids(self) -> list[str]:
        """Every template id, in load order."""
        return list(self._templates)

    def by_category(self) -> dict[str, list[Template]]:
        """Templates grouped by category; categories sorted by name, templates in load order."""
        groups: dict[str, list[Template]] = {}
        for template in self._templates.values():
            groups.setdefault(template.category, []).append(template)
        return {name: groups[name] for name in sorted(groups, key=lambda c: (c.casefold(), c))}

    def require(self, template_id: str) -> Template:
        """The template with this id; UnknownTemplateError (listing the known ids) if none."""
        template = self._templates.get(template_id)
        if template is not None:
            return template
        known = ", ".join(self._templates) or "(none)"
        hint = ""
        close = difflib.get_close_matches(template_id, list(self._templates), n=1)
        if close:
            hint = f" Did you mean {close[0]!r}?"
        raise UnknownTemplateError(
            f"unknown template {template_id!r}.{hint} Known templates: {known}."
        )

    def render(self, template_id: str, values: Mapping[str, object]) -> RenderedTemplate:
        """Render the template with this id (see `Template.render`)."""
        return self.require(template_id).render(values)


# ---- loading ---------------------------------------------------------------------------------


def load_templates_file(path: Path | str, *, json_list: bool | None = None) -> dict[str, Template]:
    """Read and validate one templates file (TOML, or the legacy JSON list if it ends in .json;
    `json_list` forces either format).

    Raises ConfigError naming the file, and where possible the line, the template and the key.
    """
    path = Path(path)
    where = str(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"cannot read templates file: {exc.strerror or exc}", path=where) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"templates file is not UTF-8 text: {exc.reason}", path=where) from exc

    if json_list or (json_list is None and path.suffix.lower() == ".json"):
        return _load_json(text, where)
    return _load_toml(text, where)


def _load_toml(text: str, where: str) -> dict[str, Template]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        line: int | None = None
        column: int | None = None
        if match := _TOML_POS.search(message):
            line, column = int(match.group(1)), int(match.group(2))
            message = message[: match.start()]
        elif match := _TOML_EOF.search(message):
            line = max(1, text.count("\n") + (0 if text.endswith("\n") else 1))
            message = message[: match.start()] + " at end of file"
        detail = f"invalid TOML: {message}"
        if column is not None:
            detail += f" (column {column})"
        raise ConfigError(detail, path=where, line=line) from exc

    templates: dict[str, Template] = {}
    for template_id, body in data.items():

        def locate(key: str | None = None, _id: str = template_id) -> int | None:
            return _toml_line(text, _id, key)

        if not isinstance(body, dict):
            raise ConfigError(
                f"top-level key {template_id!r} is not a template; write each template as a "
                f"table: [{template_id}] followed by its keys",
                path=where,
                line=_toml_key_line(text, template_id),
            )
        templates[template_id] = _build(template_id, body, where, locate)
    return templates


def _load_json(text: str, where: str) -> dict[str, Template]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"invalid JSON: {exc.msg} (column {exc.colno}); fix the file, or move it away "
            "to use the other templates",
            path=where,
            line=exc.lineno,
        ) from exc
    if not isinstance(data, list):
        raise ConfigError(
            "a JSON templates file must be a list of objects with an 'id'", path=where
        )

    templates: dict[str, Template] = {}
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise ConfigError(f"item {index} is not an object", path=where)
        template_id = item.get("id")
        if not isinstance(template_id, str) or not template_id:
            raise ConfigError(f"item {index} has no string 'id'", path=where)

        def locate(key: str | None = None, _id: str = template_id) -> int | None:
            return _json_line(text, _id)

        if template_id in templates:
            raise ConfigError(
                f"template {template_id!r} is defined twice", path=where, line=locate()
            )
        body = {k: v for k, v in item.items() if k != "id"}
        templates[template_id] = _build(template_id, body, where, locate)
    return templates


#: Finds the line of a template's key (or of its header for None); None if unknown.
_Locator = Callable[[str | None], int | None]


#: Makes the error for a template: (message, key it is about or None).
_Fail = Callable[[str, str | None], ConfigError]


def _build(template_id: str, body: dict[str, Any], where: str, locate: _Locator) -> Template:
    """Validate one template's keys and make the Template."""

    def fail(message: str, key: str | None = None) -> ConfigError:
        return ConfigError(f"template {template_id!r}: {message}", path=where, line=locate(key))

    if not _ID_RE.match(template_id):
        raise fail("an id may hold only letters, digits, '_', '-' and '.'")
    _check_keys(body, fail)
    prompt = _prompt_of(body, fail)
    title = _optional_str(body, "title", fail)
    category = _optional_str(body, "category", fail)
    system = _optional_str(body, "system", fail)
    description = _optional_str(body, "description", fail)
    tags_raw = _tags_of(body, fail)
    defaults_raw = _defaults_of(body, fail)
    _check_placeholders(prompt, system, defaults_raw, fail)

    return Template(
        id=template_id,
        title=title if title and title.strip() else template_id,
        category=category if category and category.strip() else DEFAULT_CATEGORY,
        tags=tuple(tags_raw),
        prompt=prompt,
        system=system,
        defaults=dict(defaults_raw),
        description=description,
        source=where,
        line=locate(None),
    )


def _check_keys(body: dict[str, Any], fail: _Fail) -> None:
    for key in body:
        if key not in _ALLOWED_KEYS:
            close = difflib.get_close_matches(key, _ALLOWED_KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise fail(f"unknown key {key!r}{hint}; allowed keys: {', '.join(_ALLOWED_KEYS)}", key)


def _prompt_of(body: dict[str, Any], fail: _Fail) -> str:
    if "prompt" not in body:
        raise fail("missing required key 'prompt'", None)
    prompt = body["prompt"]
    if not isinstance(prompt, str):
        raise fail(f"key 'prompt' must be a string, not {_type_name(prompt)}", "prompt")
    if not prompt.strip():
        raise fail("key 'prompt' is empty", "prompt")
    return prompt


def _optional_str(body: dict[str, Any], key: str, fail: _Fail) -> str | None:
    value = body.get(key)
    if value is None or isinstance(value, str):
        return value
    raise fail(f"key {key!r} must be a string, not {_type_name(value)}", key)


def _tags_of(body: dict[str, Any], fail: _Fail) -> list[str]:
    tags_raw = body.get("tags", [])
    if not isinstance(tags_raw, list) or not all(isinstance(t, str) for t in tags_raw):
        raise fail("key 'tags' must be a list of strings", "tags")
    return tags_raw


def _defaults_of(body: dict[str, Any], fail: _Fail) -> dict[str, Any]:
    defaults_raw = body.get("defaults", {})
    if not isinstance(defaults_raw, dict):
        raise fail(
            f"key 'defaults' must be a table of strings, not {_type_name(defaults_raw)}",
            "defaults",
        )
    for name, value in defaults_raw.items():
        if not isinstance(value, str):
            raise fail(
                f"key 'defaults': {name!r} must be a string (write {name} = \"{value}\"), "
                f"not {_type_name(value)}",
                "defaults",
            )
    return defaults_raw


def _check_placeholders(
    prompt: str, system: str | None, defaults: dict[str, Any], fail: _Fail
) -> None:
    """Placeholders are well formed, and every default names one of them."""
    for key, text in (("prompt", prompt), ("system", system)):
        if text is not None:
            bad = _malformed_placeholder(text)
            if bad is not None:
                raise fail(
                    f"key {key!r} has an unbalanced or malformed placeholder near {bad!r}; "
                    "write variables as {{name}} (letters, digits, underscores)",
                    key,
                )
    variables = _variables_of(prompt, system)
    for name in defaults:
        if name not in variables:
            known = ", ".join(variables) or "(none)"
            raise fail(
                f"key 'defaults': {name!r} is not a variable of this template (variables: {known})",
                "defaults",
            )


def user_template_paths(cwd: Path, data_dir: Path) -> list[Path]:
    """User template files that add to or override the shipped set, in override order."""
    return [
        directory / name
        for directory in (cwd, data_dir)
        for name in (LEGACY_TEMPLATES_FILENAME, TEMPLATES_FILENAME)
    ]


def load_templates(
    extra_paths: Sequence[Path | str] = (), *, announce: Collection[Path | str] = ()
) -> TemplateSet:
    """The default templates, then each existing extra file adding or replacing by id.

    Extra paths that do not exist are skipped, and so is any that is the default file itself
    (running from the repository root) or a file already read. Raises ConfigError for a
    missing default file or any invalid file. A template replaced by the other format's file
    in the same directory, and a built-in template that a file in `announce` (the working
    directory's) changes, are reported in `TemplateSet.notices`.
    """
    paths = _effective_paths(extra_paths)
    templates: dict[str, Template] = {}
    builtin: dict[str, Template] = {}
    clashes: dict[tuple[str, str], list[str]] = {}
    for index, path in enumerate(paths):
        loaded = load_templates_file(path)
        if index == 0:
            builtin = loaded
        for template_id, template in loaded.items():
            before = templates.get(template_id)
            if before is not None and _same_directory_other_format(Path(before.source), path):
                clashes.setdefault((before.source, template.source), []).append(template_id)
        templates.update(loaded)
    notices = [_clash_notice(loser, winner, ids) for (loser, winner), ids in clashes.items()]
    notices += _override_notices(templates, builtin, [Path(p) for p in announce])
    return TemplateSet(templates, notices)


def _same_directory_other_format(earlier: Path, later: Path) -> bool:
    if earlier.suffix.lower() == later.suffix.lower():
        return False
    return earlier.parent == later.parent or _same_file(earlier.parent, later.parent)


def _clash_notice(loser: str, winner: str, ids: list[str]) -> Notice:
    names = ", ".join(repr(i) for i in ids)
    return Notice(
        "info",
        f"template(s) {names} are defined in both {loser} and {winner}; using {winner} (in "
        "one directory the TOML file wins: it is this app's format, the JSON list is read "
        "only for compatibility). Remove them from one file, or convert the JSON file with "
        "`llmrouter-tui templates import`.",
    )


def _override_notices(
    templates: Mapping[str, Template], builtin: Mapping[str, Template], announce: list[Path]
) -> list[Notice]:
    """One notice per announced file that changes what built-in templates send."""
    by_file: dict[str, list[str]] = {}
    for template_id, shipped in builtin.items():
        current = templates.get(template_id)
        if current is None or current.source == shipped.source:
            continue
        if not any(_same_file(Path(current.source), path) for path in announce):
            continue
        if (current.prompt, current.system, current.defaults) == (
            shipped.prompt,
            shipped.system,
            shipped.defaults,
        ):
            continue  # same text under the same id: nothing changes for the user
        at = f" (line {current.line})" if current.line else ""
        by_file.setdefault(current.source, []).append(f"{template_id!r}{at}")
    return [
        Notice(
            "warning",
            f"{source} replaces built-in template(s) {', '.join(ids)} with a different "
            "prompt or system message. It is a file in the working directory: check it, or "
            "run from another directory to use the built-in versions.",
        )
        for source, ids in by_file.items()
    ]


def _effective_paths(extra_paths: Sequence[Path | str]) -> list[Path]:
    default = default_templates_path()
    if not default.is_file():
        raise ConfigError(
            "the default templates file is missing; reinstall llmrouter-tui", path=str(default)
        )
    paths = [default]
    for extra in extra_paths:
        candidate = Path(extra)
        if not candidate.is_file():
            continue
        if any(_same_file(candidate, seen) for seen in paths):
            continue
        paths.append(candidate)
    return paths


class TemplateWatcher:
    """Keeps a TemplateSet up to date with its files, reloading only when one changed.

    Watches the default file and the extra paths (including ones that do not exist yet).
    """

    def __init__(
        self,
        extra_paths: Sequence[Path | str] = (),
        initial: TemplateSet | None = None,
        *,
        announce: Collection[Path | str] = (),
    ) -> None:
        """Load now (may raise ConfigError) unless `initial` is given.

        `announce`: the working directory's files (see `load_templates`).
        """
        self.extra_paths: tuple[Path, ...] = tuple(Path(p) for p in extra_paths)
        self.announce: tuple[Path, ...] = tuple(Path(p) for p in announce)
        #: The last set that loaded without error.
        self.current: TemplateSet
        #: The error of the last failed reload, None once a reload succeeds.
        self.error: ConfigError | None = None
        self._signature = self._stat()
        self.current = (
            initial
            if initial is not None
            else load_templates(self.extra_paths, announce=self.announce)
        )

    def _watched(self) -> list[Path]:
        return [default_templates_path(), *self.extra_paths]

    def _stat(self) -> tuple[tuple[int, int, int] | None, ...]:
        signature: list[tuple[int, int, int] | None] = []
        for path in self._watched():
            try:
                st = os.stat(path)
            except OSError:
                signature.append(None)
            else:
                signature.append((st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(signature)

    def check(self) -> TemplateSet | None:
        """The reloaded set if any file changed since the last check, else None.

        On an invalid file raises ConfigError (also kept in `.error`) and keeps `.current`;
        the same broken state is reported once, not on every call.
        """
        signature = self._stat()
        if signature == self._signature:
            return None
        self._signature = signature
        try:
            fresh = load_templates(self.extra_paths, announce=self.announce)
        except ConfigError as exc:
            self.error = exc
            raise
        self.error = None
        self.current = fresh
        return fresh


# ---- helpers ---------------------------------------------------------------------------------


def _variables_of(prompt: str, system: str | None) -> list[str]:
    seen: dict[str, None] = {}
    for text in (prompt, system or ""):
        for match in _PLACEHOLDER.finditer(text):
            seen.setdefault(match.group(1), None)
    return list(seen)


def _malformed_placeholder(text: str) -> str | None:
    """The text around the first `{{` or `}}` that is not part of a valid placeholder."""
    stripped = _PLACEHOLDER.sub(lambda m: "\0" * len(m.group(0)), text)
    positions = [p for p in (stripped.find("{{"), stripped.find("}}")) if p >= 0]
    if not positions:
        return None
    start = min(positions)
    snippet = text[max(0, start - 10) : start + 20]
    return snippet.replace("\0", "")


def _type_name(value: object) -> str:
    return {
        dict: "a table",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a float",
    }.get(type(value), type(value).__name__)


def _header_pattern(template_id: str) -> re.Pattern[str]:
    name = re.escape(template_id)
    return re.compile(rf"""^\s*\[\s*(?:{name}|"{name}"|'{name}')\s*\]""")


def _toml_line(text: str, template_id: str, key: str | None) -> int | None:
    """Best-effort line of `[template_id]`, or of `key = ` inside that table."""
    lines = text.splitlines()
    header = _header_pattern(template_id)
    start = next((i for i, line in enumerate(lines) if header.match(line)), None)
    if start is None:
        return _toml_key_line(text, template_id)
    if key is not None:
        key_re = re.compile(
            rf"""^\s*(?:{re.escape(key)}|"{re.escape(key)}"|'{re.escape(key)}')\s*[=.]"""
        )
        sub_header = re.compile(
            rf"""^\s*\[\s*["']?{re.escape(template_id)}["']?\s*\.\s*["']?{re.escape(key)}\b"""
        )
        for offset, line in enumerate(lines[start + 1 :], start=start + 1):
            if key_re.match(line) or sub_header.match(line):
                return offset + 1
            stripped = line.lstrip()
            if stripped.startswith("[") and not re.match(
                rf"""^\[\s*["']?{re.escape(template_id)}["']?\s*\.""", stripped
            ):
                break
    return start + 1


def _toml_key_line(text: str, key: str) -> int | None:
    """Line of a top-level `key = ...` or inline-table template definition."""
    key_re = re.compile(
        rf"""^\s*(?:{re.escape(key)}|"{re.escape(key)}"|'{re.escape(key)}')\s*[=.]"""
    )
    for index, line in enumerate(text.splitlines()):
        if key_re.match(line):
            return index + 1
    return None


def _json_line(text: str, template_id: str) -> int | None:
    needle = re.compile(r'"id"\s*:\s*' + re.escape(json.dumps(template_id)))
    for index, line in enumerate(text.splitlines()):
        if needle.search(line):
            return index + 1
    return None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()
