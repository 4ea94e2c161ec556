"""A Markdown table at its natural width, scrolled sideways when wider than the reply."""

from __future__ import annotations

from textual import events
from textual.content import Content

from .._css import sibling_tcss
from ..markdown_render import MUTED, Block, table_lines
from .block_view import BlockView

#: Columns moved by one ←/→ press (or one sideways mouse-wheel step).
SCROLL_STEP = 8


class TableBlock(BlockView):
    """Every column as wide as its widest cell; never truncated.

    When the table is wider than the reply it shows a window of it, with a last row saying
    which columns are in view and how to scroll (←/→ on a selected reply, or the mouse wheel
    with shift).
    """

    DEFAULT_CSS = sibling_tcss(__file__)

    def __init__(self, block: Block) -> None:
        super().__init__(block)
        self.scroll_column = 0
        self._table: list[Content] = table_lines(block.header, block.rows, block.aligns)

    def set_block(self, block: Block) -> None:
        self._table = table_lines(block.header, block.rows, block.aligns)
        super().set_block(block)

    @property
    def natural_width(self) -> int:
        return max((row.cell_length for row in self._table), default=0)

    @property
    def overflows(self) -> bool:
        return self.natural_width > self.content_size.width > 0

    def scroll_columns(self, delta: int) -> bool:
        """Scroll sideways by `delta` columns; False when already at that edge."""
        width = self.content_size.width
        limit = max(0, self.natural_width - width)
        new = min(limit, max(0, self.scroll_column + delta))
        if new == self.scroll_column:
            return False
        self.scroll_column = new
        self.redraw()
        return True

    def make_rows(self, width: int) -> list[Content]:
        natural = self.natural_width
        if natural <= width or width <= 0:
            self.scroll_column = 0
            return list(self._table)
        x = self.scroll_column = min(self.scroll_column, natural - width)
        rows = [row[x : x + width] for row in self._table]
        left = "◀ " if x else ""
        right = " ▶" if x + width < natural else ""
        hint = (
            f"{left}columns {x + 1}–{x + width} of {natural}{right} · "
            "select the reply, then ←/→ to scroll"
        )
        rows.append(Content.styled(hint[:width], MUTED))
        return rows

    def _on_mouse_scroll_right(self, event: events.MouseScrollRight) -> None:
        if self.scroll_columns(SCROLL_STEP):
            event.stop()

    def _on_mouse_scroll_left(self, event: events.MouseScrollLeft) -> None:
        if self.scroll_columns(-SCROLL_STEP):
            event.stop()
