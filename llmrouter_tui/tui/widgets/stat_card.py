"""A bordered card with a label (as the border title) and one big value."""

from __future__ import annotations

from textual.widgets import Static

from .._css import sibling_tcss


class StatCard(Static):
    """One summary number on the analytics screen."""

    DEFAULT_CSS = sibling_tcss(__file__)

    def __init__(self, label: str, *, id: str | None = None) -> None:
        super().__init__("–", id=id, markup=False)
        self.border_title = label
        self.value = "–"

    def set_value(self, value: str, detail: str = "") -> None:
        """Show `value` (and an optional dim detail in the bottom border)."""
        self.value = value
        self.update(value)
        self.border_subtitle = detail
