"""F1: every key binding of the app, grouped by where it applies."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from ..widgets.conversation_view import ConversationView
from ..widgets.prompt_input import PromptInput
from ..widgets.sidebar import ConversationSidebar
from .analytics import AnalyticsScreen
from .chat import ChatScreen
from .confirm import ConfirmModal
from .conversation_settings import ConversationSettingsModal
from .feedback import FeedbackModal
from .model_picker import ModelPicker
from .templates import TemplatesScreen


def _bindings(items: Iterable[BindingType]) -> list[Binding]:
    out: list[Binding] = []
    for item in items:
        if isinstance(item, Binding):
            out.append(item)
        else:
            key, action, *rest = item
            out.append(Binding(key, action, rest[0] if rest else ""))
    return out


def binding_sections(app: App[object]) -> list[tuple[str, list[Binding]]]:
    """(section title, bindings) for every place the app defines keys."""
    palette = Binding(app.COMMAND_PALETTE_BINDING, "command_palette", "Command palette")
    return [
        ("Everywhere", [*_bindings(type(app).BINDINGS), palette]),
        ("Chat", _bindings(ChatScreen.BINDINGS)),
        ("Prompt box", _bindings(PromptInput.BINDINGS)),
        ("Replies (after Esc)", _bindings(ConversationView.BINDINGS)),
        ("Conversation list (ctrl+b)", _bindings(ConversationSidebar.BINDINGS)),
        ("Templates", _bindings(TemplatesScreen.BINDINGS)),
        ("Analytics", _bindings(AnalyticsScreen.BINDINGS)),
        ("Model picker", _bindings(ModelPicker.BINDINGS)),
        ("Conversation settings", _bindings(ConversationSettingsModal.BINDINGS)),
        ("Feedback", _bindings(FeedbackModal.BINDINGS)),
        ("Confirm", _bindings(ConfirmModal.BINDINGS)),
    ]


def key_label(app: App[object], binding: Binding) -> str:
    """All keys of a binding as the user would type them (`ctrl+j / shift+enter`)."""
    keys = [k.strip() for k in binding.key.split(",") if k.strip()]
    return " / ".join(app.get_key_display(Binding(k, binding.action)) for k in keys)


class HelpScreen(ModalScreen[None]):
    """A scrollable table of every binding; Esc or F1 closes it."""

    CSS_PATH = "help.tcss"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,f1,q", "close", "Close", id="help.close")
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box") as box:
            box.border_title = "Keys"
            box.border_subtitle = "Esc close · ctrl+p lists every action"
            yield DataTable(id="help-table", cursor_type="row", zebra_stripes=True)
            yield Static(
                "Every action is also in the command palette (ctrl+p).",
                id="help-footnote",
                markup=False,
            )

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Where", "Key", "Action")
        for section, bindings in binding_sections(self.app):
            first = True
            for binding in bindings:
                if binding.system:
                    continue
                table.add_row(
                    section if first else "",
                    key_label(self.app, binding),
                    binding.description or binding.action,
                )
                first = False
        table.focus()

    def action_close(self) -> None:
        self.dismiss(None)
