"""What a type does not say about a field of a JSON shape: `Annotated[T, Field(...)]`.

Here in core (which imports nothing above it) so the core's own return shapes (stats rows,
leaderboard rows, model rows, template listings) carry their field docs where they are
declared; server/wire.py reads the metadata and re-exports `Field` for the server's shapes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Field:
    """What a type does not say about a field (put in `Annotated[T, Field(...)]`)."""

    doc: str = ""
    minimum: float | None = None
    maximum: float | None = None
    min_items: int | None = None
    max_items: int | None = None
    min_length: int | None = None
    expect: str | None = None  # how an error words what the field must be, when the type's
    # own words ("a string", "an array") say too little
    schema: Mapping[str, Any] | None = None  # a JSON Schema written out (documented, not checked)


def ref(name: str) -> dict[str, str]:
    """A field documented as a component that is not a TypedDict of its own (derived, or
    made from a core table), for `Field(schema=...)`."""
    return {"$ref": f"#/components/schemas/{name}"}
