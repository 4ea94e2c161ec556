"""The multi-line prompt box: Enter sends, ctrl+j (or shift+enter) adds a newline."""

from __future__ import annotations

from typing import ClassVar

from textual import events
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import TextArea

from .._css import sibling_tcss


class PromptInput(TextArea):
    """A TextArea whose Enter key submits the text instead of inserting a newline."""

    DEFAULT_CSS = sibling_tcss(__file__)

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "submit", "Send", id="prompt.send"),
        Binding(
            "ctrl+j,shift+enter",
            "newline",
            "Newline",
            key_display="ctrl+j",
            show=False,
            id="prompt.newline",
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

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(
            "",
            id=id,
            soft_wrap=True,
            show_line_numbers=False,
            tab_behavior="focus",
            highlight_cursor_line=False,
            placeholder="Type a prompt · Enter sends · ctrl+j newline · Esc selects replies",
        )

    def on_mount(self) -> None:
        if self.app.is_headless:
            self.cursor_blink = False  # stable screenshots and snapshots

    async def _on_key(self, event: events.Key) -> None:
        # TextArea inserts a newline on Enter before bindings run; take Enter first.
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.action_submit()

    def action_submit(self) -> None:
        """Ask the screen to send the current text."""
        self.post_message(self.Submitted(self, self.text))

    def action_newline(self) -> None:
        """Insert a newline at the cursor (replacing any selection)."""
        start, end = self.selection
        self.replace("\n", start, end, maintain_selection_offset=False)

    def set_text(self, text: str) -> None:
        """Replace the content and put the cursor at its end."""
        self.text = text
        self.move_cursor(self.document.end)
