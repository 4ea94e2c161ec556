"""Modal to rate a reply 1–5 and add or edit written feedback."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from ..format import stars


class FeedbackModal(ModalScreen[tuple[int, str] | None]):
    """Dismisses with (rating, feedback) or None when cancelled."""

    CSS_PATH = "feedback.tcss"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="feedback.cancel")
    ]

    def __init__(self, rating: int | None, feedback: str | None) -> None:
        super().__init__()
        self.rating = rating
        self.feedback = feedback

    def compose(self) -> ComposeResult:
        with Vertical(id="feedback-box") as box:
            box.border_title = "Feedback on this reply"
            box.border_subtitle = "Enter save · Esc cancel"
            yield Label("Rating")
            yield Select(
                [(stars(n), n) for n in range(5, 0, -1)],
                value=self.rating if self.rating else Select.NULL,
                prompt="Choose 1–5",
                id="feedback-rating",
                compact=True,
            )
            yield Label("What was good or bad?")
            yield Input(
                self.feedback or "",
                placeholder="optional: a few words for later",
                id="feedback-text",
                compact=True,
            )
            yield Static("", id="feedback-error", markup=False)
            with Horizontal(id="feedback-buttons"):
                yield Button("Save", id="feedback-save", variant="primary", compact=True)
                yield Button("Cancel", id="feedback-cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#feedback-text", Input).focus()

    @on(Input.Submitted, "#feedback-text")
    @on(Button.Pressed, "#feedback-save")
    def save(self) -> None:
        rating = self.query_one("#feedback-rating", Select).value
        if not isinstance(rating, int):
            self.query_one("#feedback-error", Static).update("Choose a rating from 1 to 5 first.")
            return
        self.dismiss((rating, self.query_one("#feedback-text", Input).value.strip()))

    @on(Button.Pressed, "#feedback-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
