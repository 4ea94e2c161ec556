"""The leaderboard on the analytics screen: which template's votes, a table, interval charts.

Rows are `Store.leaderboard()`'s (core.leaderboard.rows). The table shows each model's
Bradley–Terry score with its 95 % interval (from compares), the share of its compares it won
(`62% of 24`), then its mean rating with its interval and the number of ratings. The charts
draw the intervals (`├──●──┤`): models whose intervals overlap a lot are not really ranked yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widget import Widget
from textual.widgets import DataTable, Select, Static

from .._css import sibling_tcss
from ..evidence import LEADERBOARD_COLUMNS, leaderboard_cells, rating_text, score_text

#: The template selector's value for "every template".
ALL_TEMPLATES = ""
NO_COMPARES = "no compares yet: ctrl+k in the chat sends a prompt to two models"
NO_RATINGS = "no ratings yet: 1–5 on a selected reply rates it"


@dataclass(frozen=True, slots=True)
class Interval:
    """One row of an interval chart: a value, its interval (if known) and how it reads."""

    label: str
    value: float
    low: float | None
    high: float | None
    text: str


def score_intervals(rows: Iterable[Mapping[str, Any]]) -> list[Interval]:
    """Bradley–Terry scores with their intervals, in leaderboard order (compared models)."""
    return [
        Interval(str(r["model"]), float(r["bt_score"]), r["bt_low"], r["bt_high"], score_text(r))
        for r in rows
        if r.get("bt_score") is not None
    ]


def rating_intervals(rows: Iterable[Mapping[str, Any]]) -> list[Interval]:
    """Mean ratings with their intervals, best first (rated models)."""
    rated = [r for r in rows if r.get("mean_rating") is not None]
    rated.sort(key=lambda r: (-float(r["mean_rating"]), str(r["model"])))
    return [
        Interval(
            str(r["model"]),
            float(r["mean_rating"]),
            r.get("rating_low"),
            r.get("rating_high"),
            rating_text(r),
        )
        for r in rated
    ]


def interval_line(item: Interval, lo: float, hi: float, width: int) -> tuple[str, int]:
    """The plot of one row over the axis lo..hi in `width` cells, and where its marker is."""
    if width <= 0:
        return "", -1
    span = hi - lo

    def cell(x: float) -> int:
        if span <= 0:
            return width // 2
        return max(0, min(width - 1, round((x - lo) / span * (width - 1))))

    cells = [" "] * width
    mark = cell(item.value)
    if item.low is not None and item.high is not None:
        start, end = cell(item.low), cell(item.high)
        for i in range(start, end + 1):
            cells[i] = "─"
        if end > start:
            cells[start], cells[end] = "├", "┤"
    cells[mark] = "●"
    return "".join(cells), mark


class IntervalChart(Widget):
    """One row per model: its value as a dot on a shared axis, its interval as a bar."""

    def __init__(self, empty: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.empty = empty
        self.rows: list[Interval] = []

    def set_data(self, rows: Sequence[Interval]) -> None:
        self.rows = list(rows)
        self.refresh(layout=True)

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        return max(1, len(self.rows))

    def render(self) -> Content:
        if not self.rows:
            return Content.styled(self.empty, "dim")
        width = self.content_region.width or self.size.width
        label_w = min(max(len(r.label) for r in self.rows), max(8, width // 3))
        text_w = max(len(r.text) for r in self.rows)
        plot_w = max(3, width - label_w - text_w - 2)
        ends = [v for r in self.rows for v in (r.low, r.high, r.value) if v is not None]
        lo, hi = min(ends), max(ends)
        lines = []
        for r in self.rows:
            name = r.label if len(r.label) <= label_w else r.label[: label_w - 1] + "…"
            plot, mark = interval_line(r, lo, hi, plot_w)
            lines.append(
                Content.assemble(
                    (name.ljust(label_w), "$text-muted"),
                    " ",
                    (plot[:mark], "$accent"),
                    (plot[mark : mark + 1], "bold $text"),
                    (plot[mark + 1 :], "$accent"),
                    " ",
                    (r.text.rjust(text_w), "bold"),
                )
            )
        return Content("\n").join(lines)


class LeaderboardPanel(Vertical):
    """A template selector, the leaderboard table and its two charts."""

    DEFAULT_CSS = sibling_tcss(__file__)

    class ScopeChanged(Message):
        """Another template (or every template: None) was chosen."""

        def __init__(self, template_id: str | None) -> None:
            super().__init__()
            self.template_id = template_id

    def __init__(self, templates: Sequence[str], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.templates = list(templates)
        self.rows: list[Mapping[str, Any]] = []
        self.template_id: str | None = None

    def compose(self) -> ComposeResult:
        options = [("every template", ALL_TEMPLATES), *((t, t) for t in self.templates)]
        yield Select(
            options, allow_blank=False, value=ALL_TEMPLATES, id="lb-template", compact=True
        )
        table: DataTable[str] = DataTable(id="lb-table", zebra_stripes=True, cursor_type="row")
        yield table
        yield Static("Score from compares (Bradley–Terry, 95% interval)", classes="lb-caption")
        yield IntervalChart(NO_COMPARES, id="lb-scores")
        yield Static("Mean rating (95% interval)", classes="lb-caption")
        yield IntervalChart(NO_RATINGS, id="lb-ratings")

    def on_mount(self) -> None:
        table = self.query_one("#lb-table", DataTable)
        for key, label in LEADERBOARD_COLUMNS:
            table.add_column(label, key=key)

    @property
    def table(self) -> DataTable[str]:
        return self.query_one("#lb-table", DataTable)

    @on(Select.Changed, "#lb-template")
    def _scope(self, event: Select.Changed) -> None:
        event.stop()
        value = event.value
        template_id = value if isinstance(value, str) and value != ALL_TEMPLATES else None
        if template_id != self.template_id:
            self.template_id = template_id
            self.post_message(self.ScopeChanged(template_id))

    def show(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Show these leaderboard rows (best first, as `Store.leaderboard()` gives them)."""
        self.rows = list(rows)
        table = self.table
        table.clear()
        for row in self.rows:
            table.add_row(*leaderboard_cells(row), key=str(row["model"]))
        if not self.rows:
            table.add_row("", "no votes yet", "", "", "", "", key="-empty")
        self.query_one("#lb-scores", IntervalChart).set_data(score_intervals(self.rows))
        self.query_one("#lb-ratings", IntervalChart).set_data(rating_intervals(self.rows))
