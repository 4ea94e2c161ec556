"""Modal model picker: a filterable table of models with provider, context window and status."""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Static

STATUS_STYLE = {
    "available": "$success",
    "preview": "$accent",
    "no key": "$error",
    "no provider": "$error",
    "cooling down": "$warning",
    "deprecated": "$warning",
}


def status_content(status: str) -> Content:
    """The status cell, coloured by how usable the model is."""
    style = STATUS_STYLE.get(status, "$text-muted" if status.startswith("retired") else "")
    return Content.styled(status, style)


def context_label(window: int | None) -> str:
    """`131k`, `1M`, or `–`."""
    if not window:
        return "–"
    if window >= 1_000_000:
        return f"{window / 1_048_576:.0f}M" if window % 1_048_576 == 0 else f"{window / 1e6:.1f}M"
    return f"{window // 1024}k" if window % 1024 == 0 else f"{window / 1000:.0f}k"


def matches(row: dict[str, Any], needle: str) -> bool:
    """Whether a model row contains every word of `needle` (id, label, provider, status)."""
    hay = " ".join(str(row.get(k) or "") for k in ("id", "label", "provider", "status")).casefold()
    return all(word in hay for word in needle.casefold().split())


class ModelPicker(ModalScreen[str | None]):
    """Choose a model; dismisses with its id, or None when cancelled."""

    CSS_PATH = "model_picker.tcss"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Close", id="picker.close"),
        Binding("down", "cursor_down", "Down", show=False, id="picker.down"),
        Binding("up", "cursor_up", "Up", show=False, id="picker.up"),
    ]

    def __init__(self, rows: list[dict[str, Any]], current: str) -> None:
        super().__init__()
        self.rows = [r for r in rows if r.get("kind", "chat") == "chat"]
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="picker-box") as box:
            box.border_title = "Choose a model"
            box.border_subtitle = "Enter select · Esc close"
            yield Input(placeholder="Filter models…", id="picker-filter", compact=True)
            yield DataTable(id="picker-table", cursor_type="row", zebra_stripes=True)
            yield Static("", id="picker-empty", markup=False)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("Model", key="id")
        table.add_column("Provider", key="provider")
        table.add_column("Context", key="context")
        table.add_column("Status", key="status")
        self._fill("")
        self.query_one(Input).focus()

    @property
    def visible_ids(self) -> list[str]:
        table = self.query_one(DataTable)
        return [str(row_key.value) for row_key in table.rows]

    def _fill(self, needle: str) -> None:
        table = self.query_one(DataTable)
        table.clear()
        shown = [r for r in self.rows if matches(r, needle)] if needle.strip() else self.rows
        if needle.strip():  # ids that match come before rows matching only by status or label
            shown.sort(key=lambda r: not matches({"id": r["id"]}, needle))
        for row in shown:
            name = Content.assemble(
                ("● " if row["id"] == self.current else "  ", "$accent"), row["id"]
            )
            table.add_row(
                name,
                row["provider"],
                context_label(row.get("context_window")),
                status_content(str(row["status"])),
                key=row["id"],
            )
        self.query_one("#picker-empty", Static).update("" if shown else "No model matches.")
        if shown:
            ids = [r["id"] for r in shown]
            table.move_cursor(row=ids.index(self.current) if self.current in ids else 0)

    @on(Input.Changed, "#picker-filter")
    def _filter(self, event: Input.Changed) -> None:
        self._fill(event.value)

    @on(Input.Submitted, "#picker-filter")
    def _submit(self) -> None:
        self._choose_cursor()

    @on(DataTable.RowSelected, "#picker-table")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.dismiss(str(event.row_key.value))

    def _choose_cursor(self) -> None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            self.app.bell()
            return
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        self.dismiss(str(row_key.value))

    def action_cursor_down(self) -> None:
        self.query_one(DataTable).action_cursor_down()

    def action_cursor_up(self) -> None:
        self.query_one(DataTable).action_cursor_up()

    def action_cancel(self) -> None:
        self.dismiss(None)
