"""Small modal asking for one line of text (used to rename a conversation)."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


class TextPromptModal(ModalScreen[str | None]):
    """Dismisses with the entered text, or None when cancelled."""

    CSS_PATH = "text_prompt.tcss"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="text-prompt.cancel")
    ]

    def __init__(self, title: str, label: str, value: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.label = label
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(id="text-prompt-box") as box:
            box.border_title = self.title_text
            box.border_subtitle = "Enter save · Esc cancel"
            yield Label(self.label)
            yield Input(self.value, placeholder=self.label, id="text-prompt-input", compact=True)

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
