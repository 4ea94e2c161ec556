"""A code block of a reply: language label, number for `y`, lines folded with `↪`."""

from __future__ import annotations

import asyncio

from textual import work
from textual.content import Content

from .._css import sibling_tcss
from ..markdown_render import (
    Block,
    Line,
    code_label,
    code_lines,
    code_lines_by_line,
    layout,
    lexer_ready,
    load_lexer,
)
from .block_view import BlockView


class CodeBlock(BlockView):
    """Highlighted code set apart by its background and a label row.

    Lines wider than the reply are folded, each continuation row marked `↪` in the gutter:
    nothing is cut off, and the label's number is what `y` + number copies. The first block
    in a language the app has not highlighted yet is shown plain while its lexer loads in a
    thread (20-60 ms), then coloured: showing a reply never waits for it.
    """

    DEFAULT_CSS = sibling_tcss(__file__)

    def __init__(self, block: Block) -> None:
        super().__init__(block)
        self._lines: list[Line] = code_lines(block.code, block.language, wait=False)
        #: Lines highlighted one by one while the block streams (see `finalize`).
        self._by_line: dict[str, Content] | None = None

    def on_mount(self) -> None:
        if not lexer_ready(self.block.language):
            # After the first paint: the thread competes with the event loop for the GIL.
            self.call_after_refresh(self._load_lexer, self.block.language)

    @work(group="lexer")
    async def _load_lexer(self, language: str) -> None:
        await asyncio.to_thread(load_lexer, language)
        if self.is_mounted and self.block.language == language:
            self._recolour()

    def _recolour(self) -> None:
        self._by_line = None
        self._lines = code_lines(self.block.code, self.block.language, wait=False)
        self.redraw()

    def set_block(self, block: Block) -> None:
        """The block grew (streaming): highlight the new lines only."""
        if block.language != self.block.language:
            self._by_line = None
            if not lexer_ready(block.language):
                self._load_lexer(block.language)
        if self._by_line is None:
            self._by_line = {}
        self._lines = code_lines_by_line(block.code, block.language, self._by_line)
        super().set_block(block)

    def finalize(self) -> None:
        """The block is complete: highlight it whole once (multi-line strings and all)."""
        if self._by_line is not None:
            self._recolour()

    @property
    def code(self) -> str:
        return self.block.code

    @property
    def language(self) -> str:
        return self.block.language

    @property
    def number(self) -> int:
        return self.block.number

    def make_rows(self, width: int) -> list[Content]:
        label = code_label(self.block.language, self.block.number, width)
        return [label, *layout(self._lines, width)]
