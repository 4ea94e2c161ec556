"""Request checks from the wire shapes' declarations: each field set is checked against its
declared type, bounds and values, and an error names the field and what it must be."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from .wire import Field, Node, fields_of


class FieldProblem(ValueError):
    """A request field that does not match its declaration; `path` names it
    (`messages[2].role`)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path


def type_name(value: object) -> str:
    """The JSON type of `value`, as an error says what was sent."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


_WORDS = {
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "an array",
    "object": "an object",
}

# Each Node becomes a small function once, when its Checker is built, so checking a body is a
# few calls per field it sets (no walk over the declaration per request).
Check = Callable[[Any, str], Any]
_KIND_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "boolean": (bool,),
    "number": (int, float),
    "integer": (int,),
    "array": (list,),
    "object": (dict,),
    "shape": (dict,),
}


def _words(node: Node) -> str:
    if node.meta is not None and node.meta.expect:
        return node.meta.expect
    if node.kind == "shape":
        return "an object"
    if node.kind == "union":
        return " or ".join(_words(option) for option in node.options)
    if node.kind == "literal":
        return "one of " + ", ".join(str(value) for value in node.values)
    return _WORDS.get(node.kind, "a valid value")


def _bounds(meta: Field) -> str:
    if meta.minimum is not None and meta.maximum is not None:
        return f"from {meta.minimum:g} to {meta.maximum:g}"
    if meta.minimum is not None:
        return f"at least {meta.minimum:g}"
    return f"at most {meta.maximum:g}"


def _expected(node: Node) -> str:
    """What a value must be, with its bounds ("a whole number from 1 to 5")."""
    meta = node.meta
    if meta is None or meta.expect or (meta.minimum is None and meta.maximum is None):
        return _words(node)
    return f"{_words(node)} {_bounds(meta)}"


def compile_check(node: Node) -> Check:
    """The check of one Node: `check(value, path)` returns the value (an integral float for a
    whole number as an int) or raises FieldProblem naming `path`."""
    inner = _inner_check(node)
    nullable = node.nullable or node.kind in ("any", "null")
    expected = _expected(node)

    def check(value: Any, path: str) -> Any:
        if value is None:
            if nullable:
                return None
            raise FieldProblem(path, f"{path} must be {expected}; got null")
        return inner(value, path)

    return check


def _inner_check(node: Node) -> Check:
    kind = node.kind
    if kind in ("any", "null"):
        return lambda value, path: value
    expected = _expected(node)
    if kind == "literal":
        return _literal_check(node, expected)
    if kind == "union":
        return _union_check(node, expected)
    return _typed_check(node, expected)


def _wrong(value: Any, path: str, expected: str) -> FieldProblem:
    return FieldProblem(path, f"{path} must be {expected}; got {type_name(value)}")


def _literal_check(node: Node, expected: str) -> Check:
    allowed = {(type(v), v) for v in node.values}
    types_ = {type(v) for v in node.values}

    def literal(value: Any, path: str) -> Any:
        if type(value) in types_ and (type(value), value) in allowed:
            return value
        sent = repr(value)[:60] if type(value) in types_ else type_name(value)
        raise FieldProblem(path, f"{path} must be {expected}; got {sent}")

    return literal


def _union_check(node: Node, expected: str) -> Check:
    options = [compile_check(option) for option in node.options]

    def union(value: Any, path: str) -> Any:
        for option in options:
            try:
                return option(value, path)
            except FieldProblem:
                continue
        raise _wrong(value, path, expected)

    return union


def _typed_check(node: Node, expected: str) -> Check:
    """A string, number, boolean, array or object, with its items or shape and its bounds."""
    kind = node.kind
    accepted = _KIND_TYPES[kind]
    item = compile_check(node.item) if node.item is not None else None
    shape = node.shape
    limit = _limit(node, expected)

    def typed(value: Any, path: str) -> Any:
        if not isinstance(value, accepted) or (isinstance(value, bool) and kind != "boolean"):
            if kind == "integer" and isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise _wrong(value, path, expected)
        if item is not None:
            if kind == "array":
                value = [item(entry, f"{path}[{i}]") for i, entry in enumerate(value)]
            else:
                value = {key: item(entry, f"{path}.{key}") for key, entry in value.items()}
        elif shape is not None:
            value = checker(shape).check(value, path)
        if limit is not None:
            limit(value, path)
        return value

    return typed


def _limit(node: Node, expected: str) -> Callable[[Any, str], None] | None:
    """The bounds check of a node (None: it has none)."""
    meta = node.meta
    if meta is None:
        return None
    low, high = meta.minimum, meta.maximum
    fewest, most, shortest = meta.min_items, meta.max_items, meta.min_length
    if low is None and high is None and fewest is None and most is None and shortest is None:
        return None

    def limit(value: Any, path: str) -> None:
        if isinstance(value, list):
            if (fewest is not None and len(value) < fewest) or (
                most is not None and len(value) > most
            ):
                raise FieldProblem(path, f"{path} must be {expected}; got {len(value)} items")
        elif isinstance(value, str):
            if shortest is not None and len(value) < shortest:
                raise FieldProblem(path, f"{path} must be {expected}; got an empty string")
        elif (low is not None and value < low) or (high is not None and value > high):
            raise FieldProblem(path, f"{path} must be {expected}; got {value!r}")

    return limit


class Checker:
    """The request check made from one shape (compiled once)."""

    def __init__(self, shape: Any) -> None:
        self.shape = shape
        self.fields = fields_of(shape)
        self.names = frozenset(spec.name for spec in self.fields)
        self._checks = {spec.name: compile_check(spec.node) for spec in self.fields}
        self._required = tuple(spec for spec in self.fields if spec.required)

    def check(self, body: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
        """The declared fields of `body` that are set, checked; unknown fields are left out
        (old scripts send extra keys) and null means "not set"."""
        for spec in self._required:
            value = body.get(spec.name)
            if value is None or value == "":
                path = f"{prefix}.{spec.name}" if prefix else spec.name
                raise FieldProblem(path, _required(path, spec.node))
        out: dict[str, Any] = {}
        checks = self._checks
        for name, value in body.items():
            check = checks.get(name)
            if check is not None and value is not None:
                out[name] = check(value, f"{prefix}.{name}" if prefix else name)
        return out


@cache
def checker(shape: Any) -> Checker:
    """The Checker of `shape` (built once)."""
    return Checker(shape)


def _required(path: str, node: Node) -> str:
    doc = node.meta.doc if node.meta is not None else ""
    if not doc:
        return f"{path} is required"
    return f"{path} is required: {doc[0].lower()}{doc[1:].rstrip('.')}"
