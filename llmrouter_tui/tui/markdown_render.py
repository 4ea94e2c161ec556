"""Markdown → lines of Textual `Content`, cheap enough for long replies and live streams.

Textual's own Markdown widget makes a widget per paragraph, list item and table cell (about
330 widgets for a 3,000-token reply, 0.8 s to show one on this project's 2-core machine). Here a
reply is split into a few top-level *blocks* (runs of prose, code blocks, tables), each drawn
by one widget from lines computed here:

- prose: headings, paragraphs, lists (nested, hanging indent), block quotes, rules; word
  wrapped at the widget's width;
- code: highlighted once, folded at the width with a `↪` marker on each continuation row, so a
  long line is never cut off silently; every code block (nested ones too) has a number, shown
  in its label, which is what `y` + number copies;
- tables: every column as wide as its widest cell (numbers are never shortened to "13…");
  the table widget scrolls sideways when it is wider than the reply.

`parse_blocks` works on any suffix of a document that starts at a block boundary, which is how
streaming stays cheap: only the last block is parsed and drawn again as text arrives.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from textual.content import Content, Span

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

BlockKind = Literal["prose", "code", "table"]

#: A run of prose blocks is cut into pieces of about this many source lines, so the piece
#: being streamed into (parsed and wrapped again on every batch) stays small.
PROSE_MAX_LINES = 24
#: Columns in the gutter of a code block: blank on a line's first row, `↪ ` after a fold.
CODE_GUTTER = 2

CODE_STYLE = "$text-warning 95%"
INLINE_CODE_STYLE = "$text-warning on $warning 10%"
HEADING_STYLES = {
    "h1": "bold underline $text-primary",
    "h2": "bold $text-primary",
    "h3": "bold $text-secondary",
}
LINK_STYLE = "underline $text-primary"
MUTED = "$text-muted"

_EMPTY = Content("")
_BULLETS = ("•", "◦", "▪", "‣")


@dataclass(frozen=True, slots=True)
class Line:
    """One logical line: a body wrapped (prose) or folded (code) at the width, with prefixes.

    `first` prefixes the first row and `rest` every continuation row (they have the same
    width). A `rule` fills the width with a horizontal line.
    """

    body: Content
    first: Content = _EMPTY
    rest: Content = _EMPTY
    fold: bool = False
    rule: bool = False


@dataclass(slots=True)
class Block:
    """A top-level piece of a reply: prose, a code block or a table."""

    kind: BlockKind
    start: int  # first source line (0-based, in the whole document)
    end: int  # line after the last one
    lines: list[Line] = field(default_factory=list)  # prose (with any nested code)
    code: str = ""  # code
    language: str = ""  # code
    number: int = 1  # number of its first code block, counted from 1 in the reply
    header: list[Content] = field(default_factory=list)  # table
    rows: list[list[Content]] = field(default_factory=list)  # table
    aligns: list[str] = field(default_factory=list)  # table: "left" | "right" | "center"
    codes: int = 0  # code blocks in this block (1 for code, nested ones for prose)


@dataclass(frozen=True, slots=True)
class CodeSnippet:
    """A code block as it would be copied."""

    number: int
    language: str
    code: str


# ---- parsing -----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    from markdown_it import MarkdownIt

    # CommonMark plus GFM tables and strikethrough; raw HTML stays text.
    return MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


def parse(text: str) -> list[Token]:
    return _parser().parse(text)


def code_snippets(text: str) -> list[CodeSnippet]:
    """Every code block of `text` (nested ones too) in order, numbered from 1."""
    out: list[CodeSnippet] = []
    for token in parse(text):
        if token.type in ("fence", "code_block"):
            out.append(CodeSnippet(len(out) + 1, _language(token), _code_of(token)))
    return out


def _language(token: Token) -> str:
    return token.info.strip().split(" ", 1)[0] if token.type == "fence" else ""


def _code_of(token: Token) -> str:
    return token.content.rstrip("\n")


def parse_blocks(text: str, first_line: int = 0, first_number: int = 1) -> list[Block]:
    """The blocks of `text`, a document (or a suffix of one starting at a block boundary,
    whose first line is line `first_line` of the document; its first code block is number
    `first_number`)."""
    tokens = parse(text)
    blocks: list[Block] = []
    number = first_number
    prose: list[Token] = []
    prose_start = prose_end = 0

    def close_prose() -> None:
        nonlocal number, prose
        if prose:
            lines, codes = prose_lines(prose, number)
            blocks.append(
                Block(
                    "prose",
                    prose_start + first_line,
                    prose_end + first_line,
                    lines,
                    number=number,
                    codes=codes,
                )
            )
            number += codes
            prose = []

    for start, end, group in _top_level(tokens):
        head = group[0]
        if head.type in ("fence", "code_block"):
            close_prose()
            blocks.append(
                Block(
                    "code",
                    start + first_line,
                    end + first_line,
                    code=_code_of(head),
                    language=_language(head),
                    number=number,
                    codes=1,
                )
            )
            number += 1
        elif head.type == "table_open":
            close_prose()
            header, rows, aligns = _table(group)
            blocks.append(
                Block(
                    "table",
                    start + first_line,
                    end + first_line,
                    header=header,
                    rows=rows,
                    aligns=aligns,
                    number=number,
                )
            )
        else:
            if prose and end - prose_start > PROSE_MAX_LINES:
                close_prose()
            if not prose:
                prose_start = start
            prose += group
            prose_end = end
    close_prose()
    return blocks


def _top_level(tokens: Sequence[Token]) -> Iterator[tuple[int, int, list[Token]]]:
    """(first line, end line, tokens) of each top-level block."""
    i = 0
    n = len(tokens)
    while i < n:
        token = tokens[i]
        start, end = token.map or (0, 0)
        if token.nesting == 1:
            depth, j = 1, i + 1
            while j < n and depth:
                depth += tokens[j].nesting
                j += 1
            yield start, end, list(tokens[i:j])
            i = j
        else:
            yield start, end, [token]
            i += 1


# ---- inline text -------------------------------------------------------------------------------


#: What a line break inside a paragraph becomes.
_BREAKS = {"softbreak": " ", "hardbreak": "\n"}
#: The style an opening inline token gives the text up to its closing one.
_OPEN_STYLES = {
    "em_open": "italic",
    "strong_open": "bold",
    "s_open": "strike",
    "link_open": LINK_STYLE,
}


def inline_content(token: Token | None) -> Content:
    """The styled text of an inline token (emphasis, strong, code, links, strikethrough)."""
    if token is None or not token.children:
        return Content(token.content if token is not None else "")
    text: list[str] = []
    spans: list[Span] = []
    stack: list[tuple[str, int]] = []
    position = 0

    def add(piece: str, style: str = "") -> None:
        nonlocal position
        text.append(piece)
        if style and piece:
            spans.append(Span(position, position + len(piece), style))
        position += len(piece)

    for child in token.children:
        kind = child.type
        if kind == "text" or kind == "html_inline":
            add(child.content)
        elif kind in _BREAKS:
            add(_BREAKS[kind])
        elif kind == "code_inline":
            add(child.content, INLINE_CODE_STYLE)
        elif kind == "image":
            add(f"[image: {child.content or child.attrs.get('src', '')}]", MUTED)
        elif kind.endswith("_open"):
            stack.append((_OPEN_STYLES.get(kind, ""), position))
        elif kind.endswith("_close") and stack:
            style, start = stack.pop()
            if style and position > start:
                spans.append(Span(start, position, style))
    return Content("".join(text), spans=spans)


# ---- prose -------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Frame:
    """A container a line is inside (list item, block quote): its prefixes."""

    first: Content
    rest: Content
    used: bool = False


def _prefix(frames: list[_Frame]) -> tuple[Content, Content]:
    first = rest = _EMPTY
    for frame in frames:
        if frame.used:
            first += frame.rest
        else:
            first += frame.first
            frame.used = True
        rest += frame.rest
    return first, rest


def prose_lines(tokens: Sequence[Token], first_number: int = 1) -> tuple[list[Line], int]:
    """The lines of a run of prose blocks, and how many code blocks were nested in it."""
    writer = _ProseWriter(first_number)
    i = 0
    n = len(tokens)
    while i < n:
        token = tokens[i]
        if token.type == "table_open":
            i = writer.table(tokens, i)
            continue
        step = _PROSE_STEPS.get(token.type)
        if step is not None:
            step(writer, token)
        i += 1
    return writer.lines, writer.number - first_number


class _ProseWriter:
    """The lines of prose as its tokens arrive: one method per kind of token."""

    __slots__ = ("frames", "heading", "lines", "lists", "number")

    def __init__(self, first_number: int) -> None:
        self.lines: list[Line] = []
        self.frames: list[_Frame] = []
        self.lists: list[tuple[bool, int]] = []  # (ordered, depth) of the open lists
        self.number = first_number
        self.heading: str | None = None

    def blank(self) -> None:
        lines = self.lines
        if lines and lines[-1].body.plain:
            lines.append(Line(_EMPTY))

    def separate(self, token: Token) -> None:
        # Top-level blocks are separated by a blank line, as are paragraphs of loose lists.
        if token.level == 0 or (
            token.type == "paragraph_open" and not token.hidden and self.frames
        ):
            self.blank()

    def heading_open(self, token: Token) -> None:
        self.separate(token)
        self.heading = token.tag

    def heading_close(self, token: Token) -> None:
        self.heading = None

    def inline(self, token: Token) -> None:
        body = inline_content(token)
        if self.heading is not None:
            body = body.stylize_before(HEADING_STYLES.get(self.heading, "bold"))
        first, rest = _prefix(self.frames)
        lines = self.lines
        for part in body.split("\n", allow_blank=True) if "\n" in body.plain else [body]:
            lines.append(Line(part, first, rest))
            first = rest

    def list_open(self, token: Token) -> None:
        if not self.frames:
            self.separate(token)
        self.lists.append((token.type == "ordered_list_open", len(self.lists)))

    def list_close(self, token: Token) -> None:
        if self.lists:
            self.lists.pop()

    def item_open(self, token: Token) -> None:
        ordered, depth = self.lists[-1] if self.lists else (False, 0)
        mark = f"{token.info}{token.markup} " if ordered else f"{_BULLETS[depth % 4]} "
        style = "$text-primary" if not ordered else "bold $text-primary"
        self.frames.append(_Frame(Content.styled(mark, style), Content(" " * len(mark))))

    def quote_open(self, token: Token) -> None:
        self.separate(token)
        bar = Content.styled("▌ ", "$text-primary 50%")
        self.frames.append(_Frame(bar, bar))

    def frame_close(self, token: Token) -> None:
        if self.frames:
            self.frames.pop()

    def rule(self, token: Token) -> None:
        self.separate(token)
        first, rest = _prefix(self.frames)
        self.lines.append(Line(_EMPTY, first, rest, rule=True))

    def code(self, token: Token) -> None:
        self.separate(token)
        first, rest = _prefix(self.frames)
        lines = self.lines
        lines.append(Line(code_label(_language(token), self.number, None), first, rest))
        code = highlight(_code_of(token), _language(token), wait=False)
        for code_line in code.split("\n", allow_blank=True):
            lines.append(
                Line(
                    code_line,
                    rest + Content("  "),
                    rest + Content.styled("↪ ", MUTED),
                    fold=True,
                )
            )
        self.number += 1

    def table(self, tokens: Sequence[Token], i: int) -> int:
        """A table inside a list: its source, folded; returns the index after it."""
        n = len(tokens)
        depth, j = 1, i + 1
        while j < n and depth:
            depth += tokens[j].nesting
            j += 1
        first, rest = _prefix(self.frames)
        for row in tokens[i + 1 : j]:
            if row.type == "inline":
                self.lines.append(Line(inline_content(row), first, rest, fold=True))
                first = rest
        return j


#: What each kind of token does to the prose (tables are handled apart: they span tokens).
_PROSE_STEPS: dict[str, Callable[[_ProseWriter, Token], None]] = {
    "heading_open": _ProseWriter.heading_open,
    "paragraph_open": _ProseWriter.separate,
    "inline": _ProseWriter.inline,
    "heading_close": _ProseWriter.heading_close,
    "bullet_list_open": _ProseWriter.list_open,
    "ordered_list_open": _ProseWriter.list_open,
    "bullet_list_close": _ProseWriter.list_close,
    "ordered_list_close": _ProseWriter.list_close,
    "list_item_open": _ProseWriter.item_open,
    "list_item_close": _ProseWriter.frame_close,
    "blockquote_open": _ProseWriter.quote_open,
    "blockquote_close": _ProseWriter.frame_close,
    "hr": _ProseWriter.rule,
    "fence": _ProseWriter.code,
    "code_block": _ProseWriter.code,
}


def code_label(language: str, number: int, width: int | None) -> Content:
    """`python ·········· y 2`: the label row of code block `number` (full width if given)."""
    left = Content.styled(f" {language or 'code'} ", "bold $text-accent")
    right = Content.styled(f" y {number} ", MUTED)
    if width is None:
        return left + right
    fill = max(1, width - left.cell_length - right.cell_length)
    return left + Content.styled("─" * fill, "$text-accent 30%") + right


# ---- code --------------------------------------------------------------------------------------


#: Lexers by language name (None: no lexer for it). Loading one imports its module and
#: compiles its regular expressions: 20-60 ms the first time, which `load_lexer` does in a
#: thread so that showing a reply never waits for it.
_LEXERS: dict[str, Any] = {}
_LEXERS_LOCK = threading.Lock()


def lexer_ready(language: str) -> bool:
    """Whether `language` can be highlighted without loading anything."""
    return not language or language.lower() in _LEXERS


def load_lexer(language: str) -> Any:
    """The Pygments lexer for `language` (None: plain text), loaded once; may block."""
    name = language.lower()
    if name in _LEXERS:
        return _LEXERS[name]
    with _LEXERS_LOCK:
        if name not in _LEXERS:
            from pygments.lexers import get_lexer_by_name
            from pygments.util import ClassNotFound

            try:
                # The first instance compiles the lexer's rules; later ones are cheap.
                lexer = get_lexer_by_name(name, stripnl=False, ensurenl=True, tabsize=4)
            except ClassNotFound:
                lexer = None
            _LEXERS[name] = lexer
    return _LEXERS[name]


def highlight(code: str, language: str, *, wait: bool = True) -> Content:
    """`code` with syntax colours for `language` (theme variables, so any theme works).

    With `wait=False` a lexer that is not loaded yet is not loaded: the code is plain.
    """
    code = code.expandtabs(4)
    lexer = load_lexer(language) if wait or lexer_ready(language) else None
    if lexer is None:
        return Content.styled(code, CODE_STYLE) if code else _EMPTY
    from textual.highlight import HighlightTheme

    styles = HighlightTheme.STYLES
    spans: list[Span] = []
    start = 0
    for token_type, value in lexer.get_tokens(code):
        end = start + len(value)
        kind = token_type
        while kind is not None:
            style = styles.get(kind)
            if style:
                spans.append(Span(start, end, style))
                break
            kind = kind.parent
        start = end
    return Content(code, spans=spans).stylize_before("$text")


_GUTTER = Content(" " * CODE_GUTTER)
_FOLDED = Content.styled("↪".ljust(CODE_GUTTER), MUTED)


def code_lines(code: str, language: str, *, wait: bool = True) -> list[Line]:
    """The rows of a code block: highlighted, folded with a `↪` marker when too wide."""
    return [
        Line(line, _GUTTER, _FOLDED, fold=True)
        for line in highlight(code, language, wait=wait).split("\n", allow_blank=True)
    ]


def code_lines_by_line(code: str, language: str, cache: dict[str, Content]) -> list[Line]:
    """Like `code_lines`, but each line highlighted on its own and remembered in `cache`.

    For a code block that is still streaming: a batch costs the lines that are new, not the
    whole block again. Constructs spanning lines (a multi-line string) may be coloured wrong
    until the block is complete and highlighted whole (`code_lines`).
    """
    lines = []
    for text in code.split("\n"):
        content = cache.get(text)
        if content is None:
            content = cache[text] = highlight(text, language, wait=False)
        lines.append(Line(content, _GUTTER, _FOLDED, fold=True))
    return lines


# ---- tables ------------------------------------------------------------------------------------


def _table(tokens: Sequence[Token]) -> tuple[list[Content], list[list[Content]], list[str]]:
    header: list[Content] = []
    rows: list[list[Content]] = []
    aligns: list[str] = []
    in_head = False
    cell: Token | None = None
    for token in tokens:
        kind = token.type
        if kind == "thead_open":
            in_head = True
        elif kind == "thead_close":
            in_head = False
        elif kind == "tr_open" and not in_head:
            rows.append([])
        elif kind in ("th_open", "td_open"):
            cell = token
            if in_head:
                style = str(token.attrs.get("style", ""))
                aligns.append(style.removeprefix("text-align:") if style else "")
        elif kind == "inline" and cell is not None:
            content = inline_content(token)
            if in_head:
                header.append(content)
            elif rows:
                rows[-1].append(content)
            cell = None
    return header, rows, aligns


_NUMBER = re.compile(r"[-+−]?[$€£¥]?\d[\d,._ ]*(?:\.\d+)?\s*(?:%|ms|s|x|×|k|M|G)?")


def _numeric(rows: Sequence[Sequence[Content]], column: int) -> bool:
    """Whether every filled cell of `column` is a number (then it is right-aligned)."""
    cells = [row[column].plain.strip() for row in rows if column < len(row)]
    cells = [cell for cell in cells if cell and cell not in ("-", "–", "—", "n/a")]
    return bool(cells) and all(_NUMBER.fullmatch(cell) for cell in cells)


def table_lines(
    header: Sequence[Content], rows: Sequence[Sequence[Content]], aligns: Sequence[str]
) -> list[Content]:
    """A table at its natural width: each column as wide as its widest cell."""
    columns = max([len(header), *(len(r) for r in rows)], default=0)
    if not columns:
        return []
    widths = [1] * columns
    for row in [header, *rows]:
        for c, cell in enumerate(row):
            widths[c] = max(widths[c], cell.cell_length)
    aligns = [
        (aligns[c] if c < len(aligns) else "") or ("right" if _numeric(rows, c) else "left")
        for c in range(columns)
    ]

    def render(row: Sequence[Content], style: str = "") -> Content:
        # One Content per row, its spans placed by hand: adding Contents cell by cell
        # copies the spans every time.
        text: list[str] = [" "]
        spans: list[Span] = []
        position = 1
        for c in range(columns):
            if c:
                spans.append(Span(position, position + 3, MUTED))
                text.append(" │ ")
                position += 3
            cell = row[c] if c < len(row) else _EMPTY
            plain = cell.plain
            pad = widths[c] - cell.cell_length
            align = aligns[c]
            before = pad if align == "right" else pad // 2 if align == "center" else 0
            begin = position + before
            text.append(" " * before + plain + " " * (pad - before))
            spans.extend(
                Span(begin + span.start, begin + span.end, span.style) for span in cell.spans
            )
            if style:
                spans.insert(0, Span(begin, begin + len(plain), style))
            position += len(plain) + pad
        text.append(" ")
        return Content("".join(text), spans=spans)

    rule = Content.styled("─" + "─┼─".join("─" * w for w in widths) + "─", MUTED)
    return [render(header, "bold $text-primary"), rule, *(render(r) for r in rows)]


# ---- layout ------------------------------------------------------------------------------------


def layout(lines: Sequence[Line], width: int) -> list[Content]:
    """Rows of `lines` at `width`: prose word-wrapped, code folded, rules drawn."""
    rows: list[Content] = []
    for line in lines:
        room = max(4, width - line.first.cell_length)
        if line.rule:
            rows.append(line.first + Content.styled("─" * room, MUTED))
            continue
        body = line.body
        if not body.plain:
            rows.append(line.first)
            continue
        if body.cell_length <= room:
            rows.append(line.first + body)
            continue
        pieces = (body.fold(room) if line.fold else body.wrap(room)) or [_EMPTY]
        rows.append(line.first + pieces[0])
        rows.extend(line.rest + piece for piece in pieces[1:])
    return rows
