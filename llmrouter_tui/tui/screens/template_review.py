"""Before a template is sent: the prompt (and system prompt) exactly as they will be sent."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class TemplateReviewModal(ModalScreen[str | None]):
    """Dismisses with "send", "edit" (put it in the prompt box instead) or None (back)."""

    CSS_PATH = "template_review.tcss"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "send", "Send", id="review.send"),
        Binding("e", "edit", "Edit in the prompt box", id="review.edit"),
        Binding("escape", "back", "Back", id="review.back"),
    ]

    def __init__(self, template_id: str, prompt: str, system: str | None) -> None:
        super().__init__()
        self.template_id = template_id
        self.prompt = prompt
        self.system = system

    def compose(self) -> ComposeResult:
        with Vertical(id="review-box") as box:
            box.border_title = f"Send “{self.template_id}”?"
            box.border_subtitle = "Enter send · e edit first · Esc back"
            with VerticalScroll(id="review-scroll", can_focus=False):
                if self.system:
                    yield Static("System prompt", classes="review-label")
                    yield Static(self.system, id="review-system", markup=False)
                yield Static("Prompt", classes="review-label")
                yield Static(self.prompt, id="review-prompt", markup=False)
            with Horizontal(id="review-buttons"):
                yield Button("Send (Enter)", id="review-send", variant="primary", compact=True)
                yield Button("Edit first (e)", id="review-edit", compact=True)
                yield Button("Back (Esc)", id="review-back", compact=True)

    def on_mount(self) -> None:
        self.query_one("#review-send", Button).focus()

    @on(Button.Pressed, "#review-send")
    def action_send(self) -> None:
        self.dismiss("send")

    @on(Button.Pressed, "#review-edit")
    def action_edit(self) -> None:
        self.dismiss("edit")

    @on(Button.Pressed, "#review-back")
    def action_back(self) -> None:
        self.dismiss(None)
