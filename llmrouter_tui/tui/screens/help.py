"""F1: every key binding of the app, grouped by where it applies."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from ..widgets.conversation_view import ConversationView
from ..widgets.prompt_input import PromptInput
from ..widgets.sidebar import ConversationSidebar
from .analytics import AnalyticsScreen
from .attempts import AttemptsModal
from .chat import ChatScreen
from .compare import CompareScreen
from .confirm import ConfirmModal
from .conversation_settings import ConversationSettingsModal
from .feedback import FeedbackModal
from .model_picker import ModelPicker
from .retired_model import RetiredModelModal
from .template_review import TemplateReviewModal
from .templates import TemplatesScreen
from .text_prompt import TextPromptModal

#: Keys that scroll (Textual's own scrolling bindings, listed for the help only).
SCROLLING: tuple[Binding, ...] = (
    Binding(
        "pageup,pagedown",
        "scroll_page",
        "Scroll a page (also from the prompt box)",
        id="scroll.page",
    ),
    Binding("home,end", "scroll_ends", "Replies: to the top / the end", id="scroll.ends"),
    Binding("up,down", "select_reply", "Replies: previous / next reply", id="scroll.replies"),
    Binding("left,right", "scroll_tables", "Replies: wide tables sideways", id="scroll.tables"),
    Binding("ctrl+pageup,ctrl+pagedown", "scroll_lists", "Lists: a page", id="scroll.lists"),
)


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
        ("Scrolling", list(SCROLLING)),
        ("Conversation list (ctrl+b)", _bindings(ConversationSidebar.BINDINGS)),
        ("Compare (ctrl+k)", _bindings(CompareScreen.BINDINGS)),
        ("Templates", _bindings(TemplatesScreen.BINDINGS)),
        ("Template review", _bindings(TemplateReviewModal.BINDINGS)),
        ("Analytics", _bindings(AnalyticsScreen.BINDINGS)),
        ("Model picker", _bindings(ModelPicker.BINDINGS)),
        ("Retired model", _bindings(RetiredModelModal.BINDINGS)),
        ("Request details (d)", _bindings(AttemptsModal.BINDINGS)),
        ("Conversation settings", _bindings(ConversationSettingsModal.BINDINGS)),
        ("Feedback", _bindings(FeedbackModal.BINDINGS)),
        ("Rename", _bindings(TextPromptModal.BINDINGS)),
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
        table.add_columns("Key", "Action")
        for section, bindings in binding_sections(self.app):
            table.add_row(Text(section, style="bold"), "", key=f"section:{section}")
            for binding in bindings:
                if binding.system:
                    continue
                table.add_row(
                    "  " + key_label(self.app, binding), binding.description or binding.action
                )
        table.focus()

    def binding_rows(self) -> list[tuple[str, str]]:
        """(key, action) of every binding row shown (section titles left out)."""
        table = self.query_one(DataTable)
        rows = []
        for index in range(table.row_count):
            key, action = (str(cell) for cell in table.get_row_at(index))
            if action:
                rows.append((key.strip(), action))
        return rows

    def action_close(self) -> None:
        self.dismiss(None)
