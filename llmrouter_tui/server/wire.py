"""Wire shapes declared once, as TypedDicts, and how a declaration is read.

A shape is a TypedDict (server/wire_shapes.py holds them, or imports the core's own return
shapes). Its fields' types, whether each is required (`NotRequired`), and
`Annotated[..., Field(...)]` details (description, bounds, how a 400 words what is expected;
`Field` lives in core/wire_meta.py so core shapes can carry it) are the declaration. Made from
it: the /openapi.json components (wire_schema.schemas) and the request checks
(wire_check.Checker), which return only the declared fields, so a field taken out of a
declaration is neither documented nor read.

Plain typing rather than pydantic: a declaration is read once (at import, or when the document
is first asked for), and checking a body is a few precompiled calls per field it sets.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import (
    Annotated,
    Any,
    Literal,
    NotRequired,
    Required,
    Union,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)

from ..core.wire_meta import Field

__all__ = ["Derived", "Field", "FieldSpec", "Named", "Node", "OneOf", "compile_type", "fields_of"]


@dataclass(frozen=True, slots=True)
class Named:
    """Names a union of shapes (`Annotated[A | B, Named(...)]`): a oneOf component."""

    name: str
    doc: str = ""


@dataclass(frozen=True, slots=True)
class Derived:
    """A component that is another shape with a difference (documented, never checked):
    fields left out (`drop`), no longer required (`optional`), added in front (`add`), or
    whose component reference is swapped (`refs`: old name -> new name)."""

    name: str
    base: Any
    doc: str = ""
    drop: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    add: Any = None  # a TypedDict whose fields go first
    refs: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class OneOf:
    """A component that is one of several shapes (TypedDicts or Derived), told apart by a
    field (documented, never checked)."""

    name: str
    doc: str
    options: tuple[Any, ...]


# ---- the declaration, read once -------------------------------------------------------------

_SCALARS: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


@dataclass(frozen=True, slots=True)
class Node:
    """One type, compiled: `kind` is a JSON type, "literal", "shape", "union" or "any"."""

    kind: str
    nullable: bool = False
    meta: Field | None = None
    values: tuple[Any, ...] = ()  # literal
    item: Node | None = None  # array items, object values
    shape: Any = None  # the TypedDict
    options: tuple[Node, ...] = ()  # union
    name: str | None = None  # a Named union


def compile_type(annotation: Any) -> Node:
    """A type as a Node (raises TypeError for a type the wire cannot carry)."""
    if get_origin(annotation) in (NotRequired, Required):  # said by fields_of, not the type
        annotation = get_args(annotation)[0]
    if get_origin(annotation) is not Annotated:
        return _compile_bare(annotation)
    annotation, *extras = get_args(annotation)
    node = _compile_bare(annotation)
    for extra in extras:
        if isinstance(extra, Field):
            node = replace(node, meta=extra)
        elif isinstance(extra, Named):
            node = replace(node, meta=Field(doc=extra.doc), name=extra.name)
    return node


def _compile_bare(annotation: Any) -> Node:
    if annotation is Any:
        return Node("any")
    if annotation is None or annotation is type(None):
        return Node("null")
    if annotation in _SCALARS:
        return Node(_SCALARS[annotation])
    if is_typeddict(annotation):
        return Node("shape", shape=annotation)
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Literal:
        return Node("literal", values=args)
    if origin is list:
        return Node("array", item=compile_type(args[0]))
    if origin is dict:
        return Node("object", item=None if args[1] is Any else compile_type(args[1]))
    if origin is Union or origin is types.UnionType:
        present = [a for a in args if a is not type(None)]
        nullable = len(present) < len(args)
        if len(present) == 1:
            return replace(compile_type(present[0]), nullable=True)
        return Node("union", nullable, options=tuple(compile_type(a) for a in present))
    if origin is Annotated:
        return compile_type(annotation)
    raise TypeError(f"the wire cannot carry {annotation!r}")


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of a shape."""

    name: str
    required: bool
    node: Node


def fields_of(shape: Any) -> tuple[FieldSpec, ...]:
    """A TypedDict's fields in declaration order (inherited ones first)."""
    hints = get_type_hints(shape, include_extras=True)
    return tuple(
        FieldSpec(name, _is_required(shape, name, hint), compile_type(hint))
        for name, hint in hints.items()
    )


def _is_required(shape: Any, name: str, hint: Any) -> bool:
    # The hint's own Required/NotRequired first: a module with `from __future__ import
    # annotations` hands TypedDict strings, so its __required_keys__ cannot see them (3.11).
    origin = get_origin(hint)
    if origin is NotRequired:
        return False
    if origin is Required:
        return True
    return name in shape.__required_keys__
