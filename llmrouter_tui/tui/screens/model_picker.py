"""Modal model picker: a filterable list of models with provider, context window, status and
(when the catalog declares them) capabilities.

Each model takes two lines, the full id on the first and everything else on the second, so
nothing is cut at 80 columns (a table with one column per fact needs about 95). `auto` comes
first, with what it does and, once worked out in the background, what it would pick now.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from ...core.auto import AUTO_MODEL
from ..workers import background

STATUS_STYLE = {
    "available": "$success",
    "preview": "$accent",
    "no key": "$error",
    "no provider": "$error",
    "cooling down": "$warning",
    "deprecated": "$warning",
}
#: Capability flags worth showing in a picker, with the word shown (the rest are details).
CAPABILITY_WORDS: tuple[tuple[str, str], ...] = (
    ("tools", "tools"),
    ("json_schema", "JSON"),
    ("json_object", "JSON"),
    ("images", "images"),
    ("reasoning_effort", "reasoning"),
)

CapabilitiesOf = Callable[[str], list[str]]
#: Works out auto's current pick as one line (blocking: run in a thread).
AutoPick = Callable[[], str]
AUTO_EXPLAINED = "picks by your votes, speed, reliability and cost"
AUTO_PICK_PENDING = "working out its current pick…"


def status_content(status: str) -> Content:
    """The status, coloured by how usable the model is."""
    style = STATUS_STYLE.get(status, "$text-muted" if status.startswith("retired") else "")
    return Content.styled(status, style)


def context_label(window: int | None) -> str:
    """`131k`, `1M`, or `–`."""
    if not window:
        return "–"
    if window >= 1_000_000:
        return f"{window / 1_048_576:.0f}M" if window % 1_048_576 == 0 else f"{window / 1e6:.1f}M"
    return f"{window // 1024}k" if window % 1024 == 0 else f"{window / 1000:.0f}k"


def capability_labels(catalog: object, model: str) -> list[str]:
    """What `model` can do beyond plain chat, if the catalog says (else nothing)."""
    lookup = getattr(catalog, "capabilities", None)
    if not callable(lookup):
        return []
    try:
        caps = lookup(model)
    except Exception:  # an id the catalog cannot describe: show nothing rather than fail
        return []
    if caps is None:
        return []
    words = [word for name, word in CAPABILITY_WORDS if getattr(caps, name, False)]
    return list(dict.fromkeys(words))


def matches(row: Mapping[str, Any], needle: str) -> bool:
    """Whether a model row contains every word of `needle` (id, label, provider, status)."""
    hay = " ".join(str(row.get(k) or "") for k in ("id", "label", "provider", "status")).casefold()
    return all(word in hay for word in needle.casefold().split())


def auto_option(row: Mapping[str, Any], current: bool, pick: str | None) -> Content:
    """Two lines: `auto` and what it does (and its status if not available), then what it
    would pick now and why."""
    status = str(row["status"])
    explained: list[Content | str] = [Content.styled(AUTO_EXPLAINED, "$text-muted")]
    if status != "available":
        explained.append(status_content(status))
    return Content.assemble(
        ("● " if current else "  ", "$accent"),
        (AUTO_MODEL, "bold" if current else ""),
        " · ",
        Content(" · ").join(explained),
        "\n    ",
        Content.styled(pick or AUTO_PICK_PENDING, "$text-accent italic"),
    )


def model_option(row: Mapping[str, Any], current: bool, capabilities: list[str]) -> Content:
    """Two lines: the full id, then provider · context · status · capabilities."""
    details: list[Content | str] = [
        Content.styled(str(row["provider"]), "$text-muted"),
        Content.styled(f"{context_label(row.get('context_window'))} ctx", "$text-muted"),
        status_content(str(row["status"])),
    ]
    if capabilities:
        details.append(Content.styled(", ".join(capabilities), "$text-muted italic"))
    return Content.assemble(
        ("● " if current else "  ", "$accent"),
        (str(row["id"]), "bold" if current else ""),
        "\n    ",
        Content(" · ").join(details),
    )


class ModelPicker(ModalScreen[str | None]):
    """Choose a model; dismisses with its id, or None when cancelled."""

    CSS_PATH = "model_picker.tcss"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Close", id="picker.close"),
        Binding("down", "cursor_down", "Down", show=False, id="picker.down"),
        Binding("up", "cursor_up", "Up", show=False, id="picker.up"),
        Binding("pagedown", "page_down", "Page down", show=False, id="picker.page_down"),
        Binding("pageup", "page_up", "Page up", show=False, id="picker.page_up"),
    ]

    def __init__(
        self,
        rows: Sequence[Mapping[str, Any]],
        current: str,
        capabilities: CapabilitiesOf | None = None,
        *,
        auto_pick: AutoPick | None = None,
        title: str = "Choose a model",
        subtitle: str = "Enter select · Esc close",
        highlight: str | None = None,
    ) -> None:
        """`auto_pick` works out auto's current pick (in a thread, after the list shows);
        `highlight` is the row the cursor starts on (default: `current`)."""
        super().__init__()
        self.rows = [r for r in rows if r.get("kind", "chat") == "chat"]
        self.current = current
        self._capabilities = capabilities or (lambda _model: [])
        self._auto_pick = auto_pick
        #: Auto's current pick as shown (None: not worked out yet).
        self.auto_pick: str | None = None
        self._box_title = title
        self._box_subtitle = subtitle
        self._highlight = highlight or current

    def compose(self) -> ComposeResult:
        with Vertical(id="picker-box") as box:
            box.border_title = self._box_title
            box.border_subtitle = self._box_subtitle
            yield Input(
                placeholder="Filter: id, provider or status…", id="picker-filter", compact=True
            )
            yield OptionList(id="picker-list")
            yield Static("", id="picker-empty", markup=False)

    def on_mount(self) -> None:
        self._fill("")
        self.query_one(Input).focus()
        if self._auto_pick is not None and any(r["id"] == AUTO_MODEL for r in self.rows):
            self._work_out_auto_pick(self._auto_pick)

    @background("work out auto's current pick", group="picker-auto")
    async def _work_out_auto_pick(self, auto_pick: AutoPick) -> None:
        self.auto_pick = await asyncio.to_thread(auto_pick)
        if not self.is_attached:
            return
        row = next(r for r in self.rows if r["id"] == AUTO_MODEL)
        if AUTO_MODEL in self.visible_ids:
            prompt = auto_option(row, self.current == AUTO_MODEL, self.auto_pick)
            self.option_list.replace_option_prompt(AUTO_MODEL, prompt)

    def _prompt(self, row: Mapping[str, Any]) -> Content:
        current = row["id"] == self.current
        if row["id"] == AUTO_MODEL:
            return auto_option(row, current, self.auto_pick)
        return model_option(row, current, self._capabilities(row["id"]))

    @property
    def option_list(self) -> OptionList:
        return self.query_one("#picker-list", OptionList)

    @property
    def visible_ids(self) -> list[str]:
        options = self.option_list
        return [str(options.get_option_at_index(i).id) for i in range(options.option_count)]

    def _fill(self, needle: str) -> None:
        options = self.option_list
        options.clear_options()
        shown = [r for r in self.rows if matches(r, needle)] if needle.strip() else self.rows
        if needle.strip():  # ids that match come before rows matching only by status or label
            shown.sort(key=lambda r: not matches({"id": r["id"]}, needle))
        options.add_options(Option(self._prompt(row), id=row["id"]) for row in shown)
        empty = self.query_one("#picker-empty", Static)
        empty.update("" if shown else "No model matches.")
        empty.display = not shown
        if shown:
            ids = [r["id"] for r in shown]
            options.highlighted = ids.index(self._highlight) if self._highlight in ids else 0

    @on(Input.Changed, "#picker-filter")
    def _filter(self, event: Input.Changed) -> None:
        self._fill(event.value)

    @on(Input.Submitted, "#picker-filter")
    def _submit(self) -> None:
        self._choose_highlighted()

    @on(OptionList.OptionSelected, "#picker-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(str(event.option.id))

    def _choose_highlighted(self) -> None:
        options = self.option_list
        option = options.highlighted_option
        if option is None:
            self.app.bell()
            return
        self.dismiss(str(option.id))

    def action_cursor_down(self) -> None:
        self.option_list.action_cursor_down()

    def action_cursor_up(self) -> None:
        self.option_list.action_cursor_up()

    def action_page_down(self) -> None:
        self.option_list.action_page_down()

    def action_page_up(self) -> None:
        self.option_list.action_page_up()

    def action_cancel(self) -> None:
        self.dismiss(None)
