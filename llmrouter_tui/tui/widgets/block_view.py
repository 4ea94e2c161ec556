"""Base of the widgets that draw one block of a reply from lines computed for their width."""

from __future__ import annotations

from textual.content import Content
from textual.geometry import Size
from textual.strip import Strip
from textual.visual import Visual
from textual.widget import Widget

from ..markdown_render import Block


class BlockView(Widget):
    """One top-level block of a reply (prose, code or table), drawn by `rows(width)`.

    The rows are computed once per width and block (a long reply is laid out when the
    terminal is resized, not on every repaint), and each row is turned into a strip only
    when it is on screen (Textual's line API), once: a block that grows while a reply streams
    costs the rows that changed, not a re-render of the whole block. `set_block` swaps in a
    newer parse of the same block.
    """

    DEFAULT_CSS = """
    BlockView {
        height: auto;
    }
    """

    def __init__(self, block: Block) -> None:
        super().__init__()
        self.block = block
        self._rows: tuple[int, list[Content]] | None = None
        self._strips: dict[int, Strip] = {}
        self._strips_width = 0

    def set_block(self, block: Block) -> None:
        """Show a newer version of this block (streaming)."""
        self.block = block
        self.redraw(layout=True)

    def finalize(self) -> None:
        """No more text will be added to this block (what streaming put off can be done)."""

    def redraw(self, *, layout: bool = False) -> None:
        """Forget the rows and strips (the block or how it is shown changed)."""
        self._rows = None
        self._strips.clear()
        self.refresh(layout=layout)

    def notify_style_update(self) -> None:
        self._strips.clear()  # the theme changed: strips carry resolved colours
        super().notify_style_update()

    def rows(self, width: int) -> list[Content]:
        """The rows of this block at `width` cells."""
        cached = self._rows
        if cached is None or cached[0] != width:
            cached = self._rows = (width, self.make_rows(width))
        return cached[1]

    def make_rows(self, width: int) -> list[Content]:
        raise NotImplementedError

    @property
    def plain_text(self) -> str:
        """What the block shows at its current width, without styles (tests, copying)."""
        return "\n".join(row.plain for row in self.rows(self.content_size.width or 80))

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self.rows(width))

    def render(self) -> Content:
        return Content("\n").join(self.rows(self.content_size.width))

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if width != self._strips_width:
            self._strips.clear()
            self._strips_width = width
        strip = self._strips.get(y)
        if strip is None:
            rows = self.rows(width)
            if y >= len(rows):
                return Strip.blank(width, self.visual_style.rich_style)
            rendered = Visual.to_strips(self, rows[y], width, 1, self.visual_style)
            strip = rendered[0] if rendered else Strip.blank(width, self.visual_style.rich_style)
            self._strips[y] = strip
        return strip
