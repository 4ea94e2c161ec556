"""The scrolling list of turns; focused, it selects replies for rating, copying and more.

A saved conversation can hold dozens of long replies. `show_turns` mounts only the newest
turns (enough to fill the screen a couple of times) and keeps the older ones, built but not
mounted, until the view is scrolled up to them (or a reply among them is selected): opening
a conversation costs the same however long it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from time import perf_counter
from typing import ClassVar

from textual import events, work
from textual.await_remove import AwaitRemove
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.css.query import QueryType
from textual.reactive import reactive
from textual.widget import Widget

from .._css import sibling_tcss
from ..clipboard import copy_text
from .reply import ReplyView
from .table_block import SCROLL_STEP
from .user_message import UserMessage

#: Opening a conversation mounts its newest turns until they fill about this many screens.
FILL_SCREENS = 2
#: Scrolling up to the top of what is mounted mounts about this many screens of older turns.
OLDER_SCREENS = 3
#: Older turns are mounted when the view is scrolled to within this many screens of the top.
NEAR_TOP_SCREENS = 1


def estimated_rows(widget: Widget, width: int) -> int:
    """A quick guess of the rows a turn takes at `width` (no layout needed)."""
    text = getattr(widget, "text", "") or ""
    width = max(20, width - 8)
    return 3 + text.count("\n") + len(text) // width


class ConversationView(VerticalScroll, can_focus=True):
    """Turns of the open conversation; Up/Down move the reply selection when focused."""

    DEFAULT_CSS = sibling_tcss(__file__)

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "select_previous", "Prev reply", show=False, id="reply.previous"),
        Binding("down", "select_next", "Next reply", show=False, id="reply.next"),
        Binding("1", "screen.rate(1)", "Rate", key_display="1-5", id="reply.rate1"),
        Binding("2", "screen.rate(2)", "Rate 2", show=False, id="reply.rate2"),
        Binding("3", "screen.rate(3)", "Rate 3", show=False, id="reply.rate3"),
        Binding("4", "screen.rate(4)", "Rate 4", show=False, id="reply.rate4"),
        Binding("5", "screen.rate(5)", "Rate 5", show=False, id="reply.rate5"),
        Binding("f", "screen.feedback", "Feedback", show=False, id="reply.feedback"),
        Binding("c", "screen.copy_reply", "Copy", id="reply.copy"),
        Binding("y", "copy_code", "Copy code", key_display="y N", id="reply.copy_code"),
        Binding("r", "screen.regenerate", "Regenerate", id="reply.regenerate"),
        Binding("e", "screen.export_conversation", "Export", id="reply.export"),
        Binding("left", "scroll_tables(-1)", "Table ←", show=False, id="reply.table_left"),
        Binding("right", "scroll_tables(1)", "Table →", show=False, id="reply.table_right"),
        Binding("E", "screen.edit_turn", "Edit", id="reply.edit"),
        Binding("d", "screen.attempt_details", "Details", id="reply.details"),
        Binding(
            "left_square_bracket",
            "screen.alternative(-1)",
            "Older version",
            key_display="[",
            show=False,
            id="reply.older",
        ),
        Binding(
            "right_square_bracket",
            "screen.alternative(1)",
            "Newer version",
            key_display="]",
            show=False,
            id="reply.newer",
        ),
        Binding("i,enter", "screen.focus_prompt", "Prompt", key_display="i", id="reply.prompt"),
    ]

    selected: reactive[int] = reactive(-1, init=False)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._follow = True
        #: Turns of the open conversation not mounted yet, oldest first.
        self._older: list[Widget] = []
        self._loading_older = False
        #: Digits typed after `y` (None: not choosing a code block).
        self._code_digits: str | None = None
        #: When the prompt last changed (perf_counter seconds), and whether that change is
        #: on screen yet; see `note_input`.
        self.last_input_at = 0.0
        self.input_drawn = True

    # ---- turns -------------------------------------------------------------------------------

    @property
    def replies(self) -> list[ReplyView]:
        """Every reply of the conversation, oldest first (mounted or not yet)."""
        older = [w for w in self._older if isinstance(w, ReplyView)]
        return older + [w for w in self.children if isinstance(w, ReplyView)]

    @property
    def older_count(self) -> int:
        """Turns (prompts and replies) waiting to be mounted."""
        return len(self._older)

    async def show_turns(self, widgets: Sequence[Widget]) -> None:
        """Show a conversation's turns: the newest are mounted now, enough to fill the view
        about FILL_SCREENS times; older ones when scrolled to."""
        height = self.size.height or self.app.size.height or 24
        width = self.size.width or 80
        split = _split_for(widgets, height * FILL_SCREENS, width)
        self._older = list(widgets[:split])
        if sum(estimated_rows(w, width) for w in widgets[split:]) > 2 * height:
            # It will overflow (the estimate errs low): stay at the end from the first
            # layout on; follow() would only get there a frame later. (Anchoring what does
            # not overflow would push it down, so not on a guess that it might.)
            self._follow = True
            self.anchor()
        if split < len(widgets):
            await self.mount_all(widgets[split:])
        self.call_after_refresh(self._fill_screen)

    def remove_children(
        self, selector: str | type[QueryType] | Iterable[Widget] = "*"
    ) -> AwaitRemove:
        """Remove children; removing all of them also forgets the turns not mounted yet."""
        if selector == "*":
            self._older.clear()
            self.selected = -1
        return super().remove_children(selector)

    def _first_turn(self) -> Widget | None:
        return next((w for w in self.children if isinstance(w, ReplyView | UserMessage)), None)

    def _fill_screen(self) -> None:
        """Mount older turns while what is mounted does not fill the view."""
        if self._older and self.max_scroll_y < self.size.height:
            self._mount_older()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self._older and new_value < self.size.height * NEAR_TOP_SCREENS:
            self._mount_older()

    @work(group="older-turns")
    async def _mount_older(self, through: Widget | None = None) -> None:
        """Mount a few screens of older turns above the mounted ones (or all the older turns
        down to `through`), keeping what is on screen where it is."""
        if not self._older:
            return
        if self._loading_older:  # one at a time; a selection's turn comes after this one
            if through is not None:
                self.set_timer(0.05, lambda: self._mount_older(through))
            return
        self._loading_older = True
        batch = ExitStack()
        try:
            if through is not None and through in self._older:
                split = self._older.index(through)
                if split and isinstance(self._older[split - 1], UserMessage):
                    split -= 1
            else:
                budget = (self.size.height or 24) * OLDER_SCREENS
                split = _split_for(self._older, budget, self.size.width or 80)
            chunk, self._older = self._older[split:], self._older[:split]
            before = self.virtual_size.height
            # No repaint until the scroll position is corrected for what was added above:
            # the screen is laid out (not painted) right after mounting, to know its height.
            refresh_layout = getattr(self.screen, "_refresh_layout", None)
            if callable(refresh_layout):
                batch.enter_context(self.app.batch_update())
            await self.mount_all(chunk, before=self._first_turn())
            if callable(refresh_layout):
                refresh_layout()
            else:  # (a Textual without it) correct after a frame
                await _next_refresh(self)
            added = self.virtual_size.height - before
            if added > 0:
                self.scroll_to(y=self.scroll_y + added, animate=False, immediate=True)
        finally:
            batch.close()
            self._loading_older = False
        if through is not None:
            self.call_after_refresh(self._scroll_to_selected)
        elif self._older and self.scroll_y < self.size.height * NEAR_TOP_SCREENS:
            self.call_after_refresh(self._mount_older)

    def note_input(self) -> None:
        """The user typed in the prompt: a streaming reply holds its next batch until the
        key's echo is drawn (`ReplyView.INPUT_QUIET_S`), so the echo gets a frame of its own
        and the batch runs right after it, as far as possible from the next key."""
        self.last_input_at = at = perf_counter()
        self.input_drawn = False
        self.call_after_refresh(self._input_was_drawn, at)

    def _input_was_drawn(self, at: float) -> None:
        if at != self.last_input_at:
            return  # another key came since: its own notice follows
        self.input_drawn = True
        for child in self.children:
            if isinstance(child, ReplyView) and child.state == "streaming":
                child.input_drawn()

    # ---- selection ---------------------------------------------------------------------------

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
        if reply is None:
            return
        if reply in self._older:
            self._mount_older(through=reply)  # then scrolls to it
            return
        self._scroll_to_selected()

    def _scroll_to_selected(self) -> None:
        reply = self.selected_reply
        if reply is not None and reply.is_mounted:
            self.release_anchor()
            self.scroll_to_widget(
                reply, animate=False, top=reply.outer_size.height > self.size.height
            )

    def on_blur(self) -> None:
        self._code_digits = None
        for reply in self.replies:
            reply.remove_class("-selected")

    def on_focus(self) -> None:
        self._show_selection()

    # ---- following the end -------------------------------------------------------------------

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

    # ---- code blocks and tables of the selected reply ----------------------------------------

    def _target_reply(self) -> ReplyView | None:
        """The selected reply, else the newest one."""
        replies = self.replies
        return self.selected_reply or (replies[-1] if replies else None)

    def action_copy_code(self) -> None:
        """`y`, then the number in a code block's label: copy that block."""
        reply = self._target_reply()
        if reply is None:
            self.notify("No reply to copy code from.")
            return
        count = len(reply.code_blocks)
        if not count:
            self.notify("This reply has no code blocks.")
            return
        if count == 1:
            self._copy_code(reply, 1)
            return
        self._code_digits = ""
        if not self.has_focus:
            self.focus()  # the number is typed here (from the palette, focus was elsewhere)
        self.notify(
            f"Copy code block: type its number (1–{count}, shown in its label); Esc cancels.",
            timeout=4,
        )

    async def _on_key(self, event: events.Key) -> None:
        # While choosing a code block, digits, Enter and Esc are ours (not the rating keys');
        # any other key ends the choice and does what it does.
        if self._code_digits is None:
            return
        is_digit = bool(event.character and event.character.isdigit())
        if not (is_digit or event.key in ("escape", "enter")):
            self._code_digits = None
            return
        event.stop()
        event.prevent_default()
        reply = self._target_reply()
        if reply is None or event.key == "escape":
            self._code_digits = None
            return
        count = len(reply.code_blocks)
        if event.key == "enter":
            number, self._code_digits = int(self._code_digits or 0), None
            if number:
                self._copy_chosen(reply, number, count)
            return
        digits = self._code_digits + (event.character or "")
        number = int(digits)
        if number == 0 or number > count or number * 10 > count:
            # A choice as soon as no longer number starts with these digits.
            self._code_digits = None
            self._copy_chosen(reply, number, count)
        else:
            self._code_digits = digits

    def _copy_chosen(self, reply: ReplyView, number: int, count: int) -> None:
        if 1 <= number <= count:
            self._copy_code(reply, number)
        else:
            self.notify(f"No code block {number}; this reply has {count}.", severity="warning")

    def _copy_code(self, reply: ReplyView, number: int) -> None:
        snippet = reply.code_blocks[number - 1]
        language = f"{snippet.language} " if snippet.language else ""
        self.copy(snippet.code, f"{language}code block {number}")

    def copy(self, text: str, what: str) -> None:
        """Copy `text` and say truthfully where it went (see `clipboard.copy_text`)."""
        self._copy_worker(text, what)

    @work(group="clipboard", exclusive=True)
    async def _copy_worker(self, text: str, what: str) -> None:
        message = await copy_text(self.app, text)
        self.notify(f"{what[:1].upper()}{what[1:]} ({len(text):,} characters): {message}")

    def action_scroll_tables(self, direction: int) -> None:
        """←/→: scroll the wide tables of the selected reply sideways."""
        reply = self._target_reply()
        if reply is None or not reply.is_mounted or not reply.body.tables:
            return
        reply.body.scroll_tables(direction * SCROLL_STEP)


def _split_for(widgets: Sequence[Widget], rows: int, width: int) -> int:
    """Index from which the last `widgets` fill about `rows` rows, never splitting a prompt
    from its reply."""
    split = len(widgets)
    used = 0
    while split > 0 and used < rows:
        split -= 1
        used += estimated_rows(widgets[split], width)
    if 0 < split < len(widgets) and isinstance(widgets[split - 1], UserMessage):
        split -= 1
    return split


async def _next_refresh(widget: Widget) -> None:
    """Wait until the screen has been laid out again."""
    import asyncio

    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def finish() -> None:
        if not done.done():
            done.set_result(None)

    widget.call_after_refresh(finish)
    await done
