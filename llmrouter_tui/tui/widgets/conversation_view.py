"""The scrolling list of turns; focused, it selects replies for rating, copying and more."""

from __future__ import annotations

from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.reactive import reactive

from .._css import sibling_tcss
from .reply import ReplyView


class ConversationView(VerticalScroll, can_focus=True):
    """Turns of the open conversation; Up/Down move the reply selection when focused."""

    DEFAULT_CSS = sibling_tcss(__file__)

    BINDINGS = [
        Binding("up", "select_previous", "Prev reply", id="reply.previous"),
        Binding("down", "select_next", "Next reply", id="reply.next"),
        Binding("1", "screen.rate(1)", "Rate", key_display="1-5", id="reply.rate1"),
        Binding("2", "screen.rate(2)", "Rate 2", show=False, id="reply.rate2"),
        Binding("3", "screen.rate(3)", "Rate 3", show=False, id="reply.rate3"),
        Binding("4", "screen.rate(4)", "Rate 4", show=False, id="reply.rate4"),
        Binding("5", "screen.rate(5)", "Rate 5", show=False, id="reply.rate5"),
        Binding("f", "screen.feedback", "Feedback", id="reply.feedback"),
        Binding("c", "screen.copy_reply", "Copy", id="reply.copy"),
        Binding("r", "screen.regenerate", "Regenerate", id="reply.regenerate"),
        Binding("i,enter", "screen.focus_prompt", "Prompt", key_display="i", id="reply.prompt"),
    ]

    selected: reactive[int] = reactive(-1, init=False)

    def on_mount(self) -> None:
        self.anchor()

    @property
    def replies(self) -> list[ReplyView]:
        return list(self.query(ReplyView))

    @property
    def selected_reply(self) -> ReplyView | None:
        replies = self.replies
        if 0 <= self.selected < len(replies):
            return replies[self.selected]
        return None

    def select_latest(self) -> ReplyView | None:
        """Select the newest reply (if any) and return it."""
        count = len(self.replies)
        self.selected = count - 1
        self._show_selection()
        return self.selected_reply

    def action_select_previous(self) -> None:
        if self.selected > 0:
            self.selected -= 1

    def action_select_next(self) -> None:
        if self.selected < len(self.replies) - 1:
            self.selected += 1

    def watch_selected(self) -> None:
        self._show_selection()

    def _show_selection(self) -> None:
        for index, reply in enumerate(self.replies):
            reply.set_class(index == self.selected, "-selected")
        reply = self.selected_reply
        if reply is not None:
            self.release_anchor()
            self.scroll_to_widget(reply, animate=False, top=reply.outer_size.height > self.size.height)

    def on_blur(self) -> None:
        for reply in self.replies:
            reply.remove_class("-selected")

    def on_focus(self) -> None:
        self._show_selection()

    def follow(self) -> None:
        """Scroll to the end and keep following new output (until the user scrolls up)."""
        self.anchor()
        self.scroll_end(animate=False)
