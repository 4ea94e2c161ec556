"""The multi-line prompt box: Enter sends, ctrl+j (or shift+enter) adds a newline.

Also: ↑ / ↓ in an empty box walk through earlier prompts; a prompt put back after a failed
or cancelled reply is selected, so typing replaces it instead of adding to it; an Enter
that arrives in a burst of keys (a paste without bracketed paste) is a newline, not a send;
and the remains of an escape sequence split by a slow terminal (`ESC O` + `R` is F3) are
not typed into the prompt.
"""

from __future__ import annotations

from typing import ClassVar

from textual import events
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import TextArea
from textual.widgets.text_area import Selection

from .._css import sibling_tcss

#: The last byte of an SS3 key sequence (`ESC O x`: F1–F4, arrows, Home, End).
_SS3_FINALS = frozenset("PQRSABCDHF")


class PromptInput(TextArea):
    """A TextArea whose Enter key submits the text instead of inserting a newline."""

    DEFAULT_CSS = sibling_tcss(__file__)

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "submit", "Send", id="prompt.send"),
        Binding("escape", "screen.leave_prompt", "Replies", key_display="esc", id="prompt.replies"),
        Binding(
            "ctrl+j,shift+enter",
            "newline",
            "Newline",
            key_display="ctrl+j",
            show=False,
            id="prompt.newline",
        ),
        Binding("up", "history(-1)", "Earlier prompt", show=False, id="prompt.history_back"),
        Binding("down", "history(1)", "Later prompt", show=False, id="prompt.history_forward"),
        Binding(
            "pageup",
            "screen.scroll_conversation(-1)",
            "Scroll replies up",
            show=False,
            id="prompt.page_up",
        ),
        Binding(
            "pagedown",
            "screen.scroll_conversation(1)",
            "Scroll replies down",
            show=False,
            id="prompt.page_down",
        ),
    ]

    class Submitted(Message):
        """The user pressed Enter with this text in the box."""

        def __init__(self, prompt_input: PromptInput, text: str) -> None:
            super().__init__()
            self.prompt_input = prompt_input
            self.text = text

        @property
        def control(self) -> PromptInput:
            return self.prompt_input

    class Interrupted(Message):
        """ctrl+c with nothing selected: cancel what is running (a streaming reply)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(
            "",
            id=id,
            soft_wrap=True,
            show_line_numbers=False,
            tab_behavior="focus",
            highlight_cursor_line=False,
            placeholder="Type a prompt · Enter sends · ctrl+j newline · ↑ earlier prompts",
        )
        #: Earlier prompts, newest first (this conversation's, then the others').
        self.prompt_history: list[str] = []
        #: Position in `prompt_history` while walking it with ↑ / ↓ (-1: not walking).
        self._history_index = -1
        #: The text shown is a prompt put back after a failure (selected until typed over).
        self.restored = False
        self._ss3_pending = False

    def on_mount(self) -> None:
        if self.app.is_headless:
            self.cursor_blink = False  # stable screenshots and snapshots

    async def _on_key(self, event: events.Key) -> None:
        key = event.key
        if self._ss3_pending:
            self._ss3_pending = False
            if event.character is not None and event.character in _SS3_FINALS:
                self._swallow(event)
                return
        if key == "alt+shift+o":  # ESC O of a function key whose last byte comes later
            self._ss3_pending = True
            self._swallow(event)
            return
        if key.startswith("alt+") and event.is_printable:
            self._swallow(event)  # Alt+letter is not text (and may be a split sequence)
            return
        if key == "enter":
            # TextArea inserts a newline on Enter before bindings run; take Enter first.
            self._swallow(event)
            if getattr(self.app, "keys_waiting", 0):
                self.action_newline()  # more keys right behind: a paste, not a send
            else:
                self.action_submit()
            return
        if key == "ctrl+c" and not self.selected_text:
            self._swallow(event)
            self.post_message(self.Interrupted())
            return
        if event.is_printable or key in ("backspace", "delete"):
            self.restored = False
            self._history_index = -1
        # TextArea._on_key runs next (Textual calls each class's handler in turn).

    @staticmethod
    def _swallow(event: events.Key) -> None:
        event.stop()
        event.prevent_default()

    def action_submit(self) -> None:
        """Ask the screen to send the current text."""
        self.post_message(self.Submitted(self, self.text))

    def action_newline(self) -> None:
        """Insert a newline at the cursor (replacing any selection)."""
        start, end = self.selection
        self.replace("\n", start, end, maintain_selection_offset=False)

    def action_history(self, step: int) -> None:
        """↑ (-1) / ↓ (+1): earlier or later prompt when the box is empty or shows one;
        otherwise move the cursor as usual."""
        walking = self._history_index >= 0 and self.text == self._history_entry()
        if not walking and self.text:
            if step < 0:
                self.action_cursor_up()
            else:
                self.action_cursor_down()
            return
        row = self.cursor_location[0]
        if walking and step < 0 and row > 0:
            self.action_cursor_up()
            return
        if walking and step > 0 and row < self.document.line_count - 1:
            self.action_cursor_down()
            return
        index = (self._history_index if walking else -1) - step
        if index < 0:
            self._history_index = -1
            self.text = ""
            return
        if index >= len(self.prompt_history):
            self.app.bell()
            return
        self._history_index = index
        self.set_text(self.prompt_history[index])
        self._history_index = index  # set_text leaves it alone; kept explicit

    def _history_entry(self) -> str | None:
        if 0 <= self._history_index < len(self.prompt_history):
            return self.prompt_history[self._history_index]
        return None

    def remember(self, text: str) -> None:
        """`text` was just sent: it becomes the newest history entry."""
        self.prompt_history = [text, *(h for h in self.prompt_history if h != text)]
        self._history_index = -1

    def set_text(self, text: str) -> None:
        """Replace the content and put the cursor at its end."""
        self.restored = False
        self.text = text
        self.move_cursor(self.document.end)

    def restore(self, text: str) -> None:
        """Put a prompt back, all of it selected: typing replaces it, Enter sends it."""
        self.text = text
        self.selection = Selection((0, 0), self.document.end)
        self.restored = True
        self._history_index = -1

    def consume(self, sent: str) -> None:
        """`sent` was taken by the screen: remove it, keeping anything typed after it."""
        self.restored = False
        self._history_index = -1
        text = self.text
        self.text = text[len(sent) :] if text.startswith(sent) else ""
        self.move_cursor(self.document.end)
