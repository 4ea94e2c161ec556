"""JSON Schema (OpenAPI 3.1 components) from the wire shapes' declarations."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any, get_origin

from ..core.wire_meta import Field
from .wire import Derived, Node, OneOf, compile_type, fields_of


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _node_schema(node: Node, found: dict[str, Any]) -> dict[str, Any]:
    meta = node.meta
    if meta is not None and meta.schema is not None:
        schema = dict(meta.schema)
    else:
        schema = _kind_schema(node, found)
    if node.nullable:
        schema = _with_null(schema)
    if meta is not None:
        _add_meta(schema, meta)
    return schema


def _kind_schema(node: Node, found: dict[str, Any]) -> dict[str, Any]:
    """The schema of a node's kind: a reference to a named one, or made here."""
    if node.name is not None:
        found.setdefault(node.name, node)
        return _ref(node.name)
    if node.kind == "shape":
        found.setdefault(node.shape.__name__, node.shape)
        return _ref(node.shape.__name__)
    if node.kind == "literal":
        values = list(node.values)
        return {"const": values[0]} if len(values) == 1 else {"enum": values}
    if node.kind == "union":
        return {"anyOf": [_node_schema(option, found) for option in node.options]}
    if node.kind == "any":
        return {}
    schema: dict[str, Any] = {"type": node.kind}
    if node.kind == "array" and node.item is not None:
        schema["items"] = _node_schema(node.item, found)
    if node.kind == "object" and node.item is not None:
        schema["additionalProperties"] = _node_schema(node.item, found)
    return schema


def _add_meta(schema: dict[str, Any], meta: Field) -> None:
    """The bounds and description a field declares, added to its schema."""
    for key, value in (
        ("minimum", meta.minimum),
        ("maximum", meta.maximum),
        ("minItems", meta.min_items),
        ("maxItems", meta.max_items),
        ("minLength", meta.min_length),
    ):
        if value is not None:
            schema[key] = value
    if meta.doc:
        schema["description"] = meta.doc


def _with_null(schema: dict[str, Any]) -> dict[str, Any]:
    if isinstance(schema.get("type"), str) and "$ref" not in schema:
        return {**schema, "type": [schema["type"], "null"]}
    if "enum" in schema:
        return {**schema, "enum": [*schema["enum"], None]}
    if "anyOf" in schema:
        return {**schema, "anyOf": [*schema["anyOf"], {"type": "null"}]}
    return {"anyOf": [schema, {"type": "null"}]}


def shape_schema(
    shape: Any, found: dict[str, Any], extra: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """A TypedDict's object schema; `extra`: properties declared elsewhere (the OpenAI
    parameter table) appended. Shapes it refers to are added to `found`."""
    specs = fields_of(shape)
    properties = {spec.name: _node_schema(spec.node, found) for spec in specs}
    properties.update({name: dict(schema) for name, schema in (extra or {}).items()})
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    required = [spec.name for spec in specs if spec.required]
    if required:
        schema["required"] = required
    if shape.__doc__:
        schema["description"] = " ".join(shape.__doc__.split())
    return schema


def _derived_schema(derived: Derived, found: dict[str, Any]) -> dict[str, Any]:
    base = shape_schema(derived.base, found)
    properties = {k: v for k, v in base["properties"].items() if k not in derived.drop}
    if derived.add is not None:
        properties = {**shape_schema(derived.add, found)["properties"], **properties}
    if derived.refs:
        swap = {_ref(old)["$ref"]: _ref(new) for old, new in derived.refs.items()}
        for name, prop in properties.items():
            if prop.get("$ref") in swap:
                properties[name] = swap[prop["$ref"]]
    added = fields_of(derived.add) if derived.add is not None else ()
    leave = {*derived.drop, *derived.optional}
    required = [
        name
        for name in (*(spec.name for spec in added if spec.required), *base.get("required", ()))
        if name not in leave
    ]
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(dict.fromkeys(required))
    if derived.doc:
        schema["description"] = derived.doc
    return schema


def _name(item: Any) -> str:
    if isinstance(item, Derived | OneOf):
        return item.name
    if isinstance(item, Node):
        return item.name or ""
    return str(item.__name__)


def _component(
    item: Any, found: dict[str, Any], extra: Mapping[str, Mapping[str, Any]] | None
) -> dict[str, Any]:
    if isinstance(item, Derived):
        return _derived_schema(item, found)
    if isinstance(item, OneOf):
        for option in item.options:
            found.setdefault(_name(option), option)
        return {"description": item.doc, "oneOf": [_ref(_name(o)) for o in item.options]}
    if isinstance(item, Node):  # a Named union
        schema: dict[str, Any] = {"oneOf": [_node_schema(o, found) for o in item.options]}
        if item.meta is not None and item.meta.doc:
            schema = {"description": item.meta.doc, **schema}
        return schema
    return shape_schema(item, found, extra)


def schemas(
    roots: Iterable[Any], extra: Mapping[str, Mapping[str, Mapping[str, Any]]] | None = None
) -> dict[str, Any]:
    """Components for `roots` (TypedDicts, Named unions, OneOf, Derived) and every shape they
    refer to, each once, by name. `extra[name]`: properties appended to that shape."""
    extra = extra or {}
    pending = [compile_type(r) if get_origin(r) is Annotated else r for r in roots]
    out: dict[str, Any] = {}
    while pending:
        item = pending.pop(0)
        name = _name(item)
        if name in out:
            continue
        found: dict[str, Any] = {}
        out[name] = _component(item, found, extra.get(name))
        pending.extend(thing for key, thing in found.items() if key not in out)
    return out
