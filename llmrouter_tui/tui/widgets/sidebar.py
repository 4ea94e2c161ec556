"""Saved conversations: search box and list; open, rename and delete from here."""

from __future__ import annotations

import asyncio
from contextlib import suppress
from typing import Any, ClassVar

from rich.cells import cell_len
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option, OptionDoesNotExist

from .._css import sibling_tcss
from ..router_app import router_app
from ..workers import background

#: Columns of a list row that are not title: the "▶ " marker and a scrollbar.
ROW_CHROME = 3


def fit(text: str, width: int) -> str:
    """`text` on one line of at most `width` cells, cut with "…" when longer."""
    line = " ".join(text.split())
    if cell_len(line) <= width:
        return line
    out = ""
    for char in line:
        if cell_len(out + char) > width - 1:
            break
        out += char
    return out + "…"


class ConversationSidebar(Vertical):
    """Conversation list, most recent first, filtered by the search box."""

    DEFAULT_CSS = sibling_tcss(__file__)

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "rename", "Rename", id="sidebar.rename"),
        Binding("delete,d", "delete", "Delete", key_display="del", id="sidebar.delete"),
    ]

    class Opened(Message):
        """Open this conversation."""

        def __init__(self, conversation_id: str) -> None:
            super().__init__()
            self.conversation_id = conversation_id

    class RenameRequested(Message):
        """Rename this conversation (the screen asks for the new title)."""

        def __init__(self, conversation_id: str, title: str) -> None:
            super().__init__()
            self.conversation_id = conversation_id
            self.title = title

    class DeleteRequested(Message):
        """Delete this conversation (the screen asks for confirmation)."""

        def __init__(self, conversation_id: str, title: str) -> None:
            super().__init__()
            self.conversation_id = conversation_id
            self.title = title

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[dict[str, Any]] = []
        self.current_id: str | None = None

    def compose(self) -> ComposeResult:
        yield Static("Conversations", classes="sidebar-title")
        yield Input(placeholder="Search (ctrl+f)…", id="conv-search", compact=True)
        yield OptionList(id="conv-list")

    @property
    def search_text(self) -> str:
        return self.query_one("#conv-search", Input).value

    def focus_search(self) -> None:
        self.query_one("#conv-search", Input).focus()

    @on(Input.Changed, "#conv-search")
    def _search_changed(self) -> None:
        self.reload()

    @on(Input.Submitted, "#conv-search")
    def _search_submitted(self) -> None:
        self.query_one("#conv-list", OptionList).focus()

    @background("list the conversations", group="conversation-list")
    async def reload(self) -> None:
        """Re-read the list from the store (in a thread) and show it."""
        store = router_app(self).runtime.store
        search = self.search_text.strip() or None
        rows = await asyncio.to_thread(store.conversations.list, search)
        self.show_rows(rows)

    def show_rows(self, rows: list[dict[str, Any]]) -> None:
        """Replace the listed conversations."""
        self.rows = rows
        option_list = self.query_one("#conv-list", OptionList)
        highlighted = option_list.highlighted_option
        keep = highlighted.id if highlighted is not None else self.current_id
        option_list.clear_options()
        width = max(
            8,
            (
                option_list.content_region.width
                or (width.value if (width := self.styles.width) else 0)
                or 30
            )
            - ROW_CHROME,
        )
        for row in rows:
            count = row.get("message_count", 0)
            title = fit(row.get("title") or "Untitled", int(width))
            marker = "▶ " if row["id"] == self.current_id else "  "
            label = Content.assemble(
                marker,
                (title, "bold" if row["id"] == self.current_id else ""),
                "\n  ",
                (f"{count} message" + ("" if count == 1 else "s"), "dim"),
            )
            option_list.add_option(Option(label, id=row["id"]))
        if not rows:
            empty = "No matches." if self.search_text.strip() else "No conversations yet."
            option_list.add_option(Option(Content.styled(empty, "dim"), disabled=True))
        if keep is not None:
            with suppress(OptionDoesNotExist):
                option_list.highlighted = option_list.get_option_index(keep)

    def set_current(self, conversation_id: str | None) -> None:
        """Mark the open conversation and refresh the list."""
        self.current_id = conversation_id
        self.reload()

    @on(OptionList.OptionSelected, "#conv-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self.post_message(self.Opened(event.option.id))

    def _highlighted_row(self) -> dict[str, Any] | None:
        option = self.query_one("#conv-list", OptionList).highlighted_option
        if option is None or not option.id:
            return None
        return next((r for r in self.rows if r["id"] == option.id), None)

    def action_rename(self) -> None:
        row = self._highlighted_row()
        if row is not None:
            self.post_message(self.RenameRequested(row["id"], row.get("title") or ""))

    def action_delete(self) -> None:
        row = self._highlighted_row()
        if row is not None:
            self.post_message(self.DeleteRequested(row["id"], row.get("title") or ""))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Rename/delete keys only apply to the list, not while typing a search.
        if action in ("rename", "delete"):
            return self.query_one("#conv-list", OptionList).has_focus
        return True
