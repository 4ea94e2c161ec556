"""A run of prose (headings, paragraphs, lists, quotes) of a reply."""

from __future__ import annotations

from textual.content import Content

from ..markdown_render import layout
from .block_view import BlockView


class ProseBlock(BlockView):
    """Prose, word-wrapped at the width, lists with a hanging indent."""

    def make_rows(self, width: int) -> list[Content]:
        return layout(self.block.lines, width)
