"""Horizontal bars drawn with block characters (theme colours, no plotting library)."""

from __future__ import annotations

from collections.abc import Callable

from textual.content import Content
from textual.widget import Widget

from .._css import sibling_tcss

_PARTIALS = " ▏▎▍▌▋▊▉"


def bar(value: float, maximum: float, width: int) -> str:
    """A bar of up to `width` cells for `value` out of `maximum`, with eighth-cell ends."""
    if maximum <= 0 or width <= 0 or value <= 0:
        return ""
    eighths = max(1, round(value / maximum * width * 8))
    full, rest = divmod(eighths, 8)
    return "█" * full + (_PARTIALS[rest] if rest else "")


class BarChart(Widget):
    """Labelled horizontal bars, one per row, largest value filling the width."""

    DEFAULT_CSS = sibling_tcss(__file__)

    def __init__(
        self, *, id: str | None = None, fmt: Callable[[float], str] | None = None, empty: str = ""
    ) -> None:
        super().__init__(id=id)
        self.rows: list[tuple[str, float]] = []
        #: How a value is written at the end of its bar (default: a whole number).
        self.fmt = fmt or (lambda value: f"{value:,.0f}")
        self.empty = empty or "no requests yet"

    def set_data(self, rows: list[tuple[str, float]]) -> None:
        """Show these (label, value) rows, in the given order."""
        self.rows = rows
        self.refresh(layout=True)

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        return max(1, len(self.rows))

    def render(self) -> Content:
        if not self.rows:
            return Content.styled(self.empty, "dim")
        width = self.content_region.width or self.size.width
        label_w = min(max(len(label) for label, _ in self.rows), max(8, width // 3))
        numbers = [self.fmt(value) for _, value in self.rows]
        number_w = max(len(n) for n in numbers)
        bar_w = max(1, width - label_w - number_w - 3)
        maximum = max(value for _, value in self.rows)
        lines = []
        for (label, value), number in zip(self.rows, numbers, strict=True):
            name = label if len(label) <= label_w else label[: label_w - 1] + "…"
            lines.append(
                Content.assemble(
                    (name.ljust(label_w), "$text-muted"),
                    " ",
                    (bar(value, maximum, bar_w).ljust(bar_w), "$accent"),
                    " ",
                    (number.rjust(number_w), "bold"),
                )
            )
        return Content("\n").join(lines)
