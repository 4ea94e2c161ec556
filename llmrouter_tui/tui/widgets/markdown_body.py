"""The Markdown body of a reply: a few block widgets, streamed into by re-parsing the last."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widget import Widget

from .._css import sibling_tcss
from ..markdown_render import Block, CodeSnippet, code_snippets, parse_blocks
from .block_view import BlockView
from .code_block import CodeBlock
from .prose_block import ProseBlock
from .table_block import TableBlock

_VIEWS: dict[str, type[BlockView]] = {"prose": ProseBlock, "code": CodeBlock, "table": TableBlock}


def _view(block: Block) -> BlockView:
    return _VIEWS[block.kind](block)


def _normal(text: str) -> str:
    # markdown-it counts "\r\n" and a lone "\r" as one line break; so does this.
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


class MarkdownBody(Widget):
    """Markdown drawn as prose, code and table blocks (see `markdown_render`).

    `append` re-parses only from the start of the last block: blocks before it cannot change
    when text is added at the end, so the cost of a streamed batch does not grow with the
    reply. `update` replaces everything.
    """

    DEFAULT_CSS = sibling_tcss(__file__)

    def __init__(self, source: str = "", *, classes: str | None = None) -> None:
        super().__init__(classes=classes)
        self._source = source
        self._text = _normal(source)
        #: The first line of the last block, and where it starts in `_text`.
        self._tail_line = 0
        self._tail_offset = 0

    @property
    def source(self) -> str:
        """The Markdown shown (as given)."""
        return self._source

    @property
    def blocks(self) -> list[BlockView]:
        return [child for child in self.children if isinstance(child, BlockView)]

    @property
    def code_blocks(self) -> list[CodeSnippet]:
        """Every code block, nested ones too, numbered as their labels show."""
        return code_snippets(self._source)

    @property
    def tables(self) -> list[TableBlock]:
        return [child for child in self.children if isinstance(child, TableBlock)]

    @property
    def plain_text(self) -> str:
        """What the body shows at its width, without styles, blocks separated by a blank line."""
        return "\n\n".join(block.plain_text for block in self.blocks)

    def compose(self) -> ComposeResult:
        self._tail_line = self._tail_offset = 0
        yield from (_view(block) for block in parse_blocks(self._text))

    async def update(self, source: str) -> None:
        """Show `source` instead, parsed whole."""
        self._source = source
        self._text = _normal(source)
        self._tail_line = self._tail_offset = 0
        views = [_view(block) for block in parse_blocks(self._text)]
        with self.app.batch_update():
            await self.remove_children()
            if views:
                await self.mount_all(views)

    async def append(self, text: str) -> None:
        """Add `text` at the end; only the last block is parsed and drawn again."""
        if not text:
            return
        self._source += text
        self._text += _normal(text)
        views = self.blocks
        last = views[-1] if views else None
        line = last.block.start if last is not None else 0
        number = last.block.number if last is not None else 1
        tail = self._text[self._offset_of(line) :]
        fresh = parse_blocks(tail, line, number)
        if last is not None:
            if fresh and type(last) is _VIEWS[fresh[0].kind]:
                last.set_block(fresh.pop(0))
                if fresh:
                    last.finalize()  # a block follows it: it is complete
            else:
                await last.remove()
        if fresh:
            await self.mount_all([_view(block) for block in fresh])

    def finalize(self) -> None:
        """The text is complete: the last block does what it put off while streaming."""
        views = self.blocks
        if views:
            views[-1].finalize()

    def _offset_of(self, line: int) -> int:
        """Where line `line` starts in the text (lines only move forward while streaming)."""
        if line < self._tail_line:
            self._tail_line = self._tail_offset = 0
        text = self._text
        while self._tail_line < line:
            newline = text.find("\n", self._tail_offset)
            if newline < 0:
                break
            self._tail_offset = newline + 1
            self._tail_line += 1
        return self._tail_offset

    def scroll_tables(self, columns: int) -> bool:
        """Scroll every table wider than the reply sideways; False if none moved."""
        moved = False
        for table in self.tables:
            moved = table.scroll_columns(columns) or moved
        return moved
