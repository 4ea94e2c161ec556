"""Asked when a retired model is picked: use its replacement (the default) or keep the id."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class RetiredModelModal(ModalScreen[str | None]):
    """Dismisses with the model to use (the replacement or the retired id), None: neither."""

    CSS_PATH = "retired_model.tcss"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("u", "use_replacement", "Use replacement", id="retired.replace"),
        Binding("k", "keep", "Keep the retired id", id="retired.keep"),
        Binding("escape", "cancel", "Cancel", id="retired.cancel"),
    ]

    def __init__(self, model: str, replacement: str | None) -> None:
        super().__init__()
        self.model = model
        self.replacement = replacement

    def compose(self) -> ComposeResult:
        if self.replacement:
            text = (
                f"{self.model} was retired by its provider. Requests naming it are served by "
                f"{self.replacement} (each reply says so).\n\nUse {self.replacement} instead?"
            )
        else:
            text = f"{self.model} was retired by its provider and has no replacement."
        with Vertical(id="retired-box") as box:
            box.border_title = "Retired model"
            box.border_subtitle = "Enter choose · Esc cancel"
            yield Static(text, id="retired-text", markup=False)
            with Horizontal(id="retired-buttons"):
                if self.replacement:
                    yield Button(
                        f"Use {self.replacement} (u)",
                        id="retired-use",
                        variant="primary",
                        compact=True,
                    )
                yield Button("Keep the retired id (k)", id="retired-keep", compact=True)

    def on_mount(self) -> None:
        first = "#retired-use" if self.replacement else "#retired-keep"
        self.query_one(first, Button).focus()

    @on(Button.Pressed, "#retired-use")
    def action_use_replacement(self) -> None:
        if self.replacement:
            self.dismiss(self.replacement)

    @on(Button.Pressed, "#retired-keep")
    def action_keep(self) -> None:
        self.dismiss(self.model)

    def action_cancel(self) -> None:
        self.dismiss(None)
