"""Modal for the open conversation's system prompt, temperature and max tokens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static, TextArea


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """Per-conversation request settings; None means the provider's default."""

    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None


def parse_settings(system: str, temperature: str, max_tokens: str) -> ChatSettings:
    """Validate the form's text; ValueError says which field is wrong and why."""
    temp: float | None = None
    if temperature.strip():
        try:
            temp = float(temperature)
        except ValueError:
            raise ValueError("Temperature must be a number from 0 to 2.") from None
        if not 0 <= temp <= 2:
            raise ValueError("Temperature must be a number from 0 to 2.")
    limit: int | None = None
    if max_tokens.strip():
        try:
            limit = int(max_tokens)
        except ValueError:
            raise ValueError("Max tokens must be a whole number above 0.") from None
        if limit < 1:
            raise ValueError("Max tokens must be a whole number above 0.")
    return ChatSettings(system.strip() or None, temp, limit)


class ConversationSettingsModal(ModalScreen[ChatSettings | None]):
    """Edit the settings; dismisses with the new ChatSettings or None when cancelled."""

    CSS_PATH = "conversation_settings.tcss"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="settings.cancel"),
        Binding("ctrl+s", "save", "Save", id="settings.save"),
    ]

    def __init__(self, current: ChatSettings) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        c = self.current
        with Vertical(id="settings-box") as box:
            box.border_title = "Conversation settings"
            box.border_subtitle = "ctrl+s save · Esc cancel"
            yield Label("System prompt")
            yield TextArea(
                c.system or "",
                id="settings-system",
                soft_wrap=True,
                placeholder="None: the model's own default behaviour",
            )
            with Horizontal(id="settings-numbers"):
                with Vertical():
                    yield Label("Temperature (0–2)")
                    yield Input(
                        "" if c.temperature is None else f"{c.temperature:g}",
                        id="settings-temperature",
                        placeholder="default",
                        compact=True,
                    )
                with Vertical():
                    yield Label("Max tokens")
                    yield Input(
                        "" if c.max_tokens is None else str(c.max_tokens),
                        id="settings-max-tokens",
                        placeholder="default",
                        compact=True,
                        type="integer",
                    )
            yield Static("", id="settings-error", markup=False)
            with Horizontal(id="settings-buttons"):
                yield Button("Save", id="settings-save", variant="primary", compact=True)
                yield Button("Cancel", id="settings-cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#settings-system", TextArea).focus()

    @on(Button.Pressed, "#settings-save")
    def action_save(self) -> None:
        try:
            settings = parse_settings(
                self.query_one("#settings-system", TextArea).text,
                self.query_one("#settings-temperature", Input).value,
                self.query_one("#settings-max-tokens", Input).value,
            )
        except ValueError as exc:
            self.query_one("#settings-error", Static).update(str(exc))
            return
        self.dismiss(settings)

    @on(Button.Pressed, "#settings-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
