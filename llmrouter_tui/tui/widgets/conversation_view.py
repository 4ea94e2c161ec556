"""The scrolling list of turns; focused, it selects replies for rating, copying and more."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.reactive import reactive

from .._css import sibling_tcss
from .reply import ReplyView


class ConversationView(VerticalScroll, can_focus=True):
    """Turns of the open conversation; Up/Down move the reply selection when focused."""

    DEFAULT_CSS = sibling_tcss(__file__)

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "select_previous", "Prev reply", id="reply.previous"),
        Binding("down", "select_next", "Next reply", id="reply.next"),
        Binding("1", "screen.rate(1)", "Rate 1-5", key_display="1-5", id="reply.rate1"),
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

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._follow = True

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
        for index, each in enumerate(self.replies):
            each.set_class(index == self.selected, "-selected")
        reply = self.selected_reply
        if reply is not None:
            self.release_anchor()
            self.scroll_to_widget(
                reply, animate=False, top=reply.outer_size.height > self.size.height
            )

    def on_blur(self) -> None:
        for reply in self.replies:
            reply.remove_class("-selected")

    def on_focus(self) -> None:
        self._show_selection()

    def follow(self) -> None:
        """Scroll to the end and keep following new output (until the user scrolls up)."""
        self._follow = True
        self.scroll_end(animate=False)
        self.call_after_refresh(self.content_grew)

    def unfollow(self) -> None:
        """Stop following (the conversation is being replaced)."""
        self._follow = False
        self.anchor(False)

    def on_reply_view_grew(self, event: ReplyView.Grew) -> None:
        event.stop()
        self.content_grew()

    def content_grew(self) -> None:
        """Keep the end in view while following.

        The anchor is only set once the content overflows, so short conversations stay at
        the top; scrolling up releases it and scrolling back to the end restores it.
        """
        if (
            self._follow
            and not self.is_anchored
            and self.virtual_size.height > self.scrollable_content_region.height
        ):
            self.anchor()
