"""The analytics screen: summary cards, per-model table and charts from `Store.stats()`, the
leaderboard (overall or per template) and spend (per model, per day, cache savings)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Sparkline, Static

from ...core.runtime import Runtime
from ..evidence import spend_summary, usd
from ..format import count, duration, ms_value, percent, rating_value
from ..router_app import router_app
from ..widgets.bar_chart import BarChart
from ..widgets.key_footer import KeyFooter
from ..widgets.leaderboard import LeaderboardPanel
from ..widgets.stat_card import StatCard
from ..widgets.top_bar import TopBar
from ..workers import background

RECENT_LIMIT = 200
SPEND_DAYS = 14  # days of spend charted (the stats keep 31)
NARROW_BELOW = 96
TABLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("model", "Model"),
    ("requests", "Requests"),
    ("errors", "Errors"),
    ("p50", "p50 ms"),
    ("p95", "p95 ms"),
    ("ttft", "TTFT p50"),
    ("rating", "Rating"),
    ("tokens", "Tokens"),
)


def card_values(stats: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """Card id → (value, detail) as shown, from a `Store.stats()` dict."""
    ratings = stats.get("ratings", {}).get("count", 0)
    tokens = stats.get("tokens", {})
    estimated = tokens.get("estimated_requests", 0)
    return {
        "card-prompts": (count(stats["total_prompts"]), f"{count(stats['ok'])} ok"),
        "card-cache": (percent(stats["cache_hit_rate"]), f"{count(stats['cache_hits'])} hits"),
        "card-fallbacks": (count(stats["total_fallbacks"]), ""),
        "card-errors": (count(stats["errors"]), ""),
        "card-rating": (rating_value(stats["avg_rating"]), f"{count(ratings)} rated"),
        "card-tokens": (
            count(tokens.get("total", 0)),
            f"{count(estimated)} est." if estimated else "",
        ),
    }


def table_rows(stats: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """Per-model rows as shown, busiest model first."""
    per_model: dict[str, dict[str, Any]] = stats.get("per_model", {})
    ordered = sorted(per_model.items(), key=lambda item: (-item[1]["requests"], item[0]))
    return [
        (
            model,
            count(m["requests"]),
            count(m["errors"]),
            ms_value(m["p50_latency_ms"]),
            ms_value(m["p95_latency_ms"]),
            ms_value(m["p50_ttft_ms"]),
            rating_value(m["avg_rating"]),
            count(m["total_tokens"]),
        )
        for model, m in ordered
    ]


def spend_per_model(stats: Mapping[str, Any]) -> list[tuple[str, float]]:
    """(model, USD spent) for every model that cost something, most first."""
    per_model: dict[str, dict[str, Any]] = stats.get("per_model", {})
    spent = [(model, float(m.get("cost_usd") or 0.0)) for model, m in per_model.items()]
    return sorted(((m, v) for m, v in spent if v > 0), key=lambda item: (-item[1], item[0]))


def spend_per_day(stats: Mapping[str, Any]) -> list[tuple[str, float]]:
    """(day, USD spent) of the last SPEND_DAYS days with requests, oldest first."""
    days: list[dict[str, Any]] = stats.get("cost", {}).get("per_day", [])
    return [(str(d["day"]), float(d.get("cost_usd") or 0.0)) for d in days[-SPEND_DAYS:]]


def latency_series(recent: Sequence[Mapping[str, Any]]) -> list[float]:
    """Latency (ms) of the recent successful requests, oldest first."""
    return [
        float(r["latency_ms"])
        for r in recent
        if r.get("status") == "ok" and r.get("latency_ms") is not None
    ]


class AnalyticsScreen(Screen[None]):
    """Numbers from the same stats function as `/stats`, refreshed when a request, rating or
    vote is recorded."""

    CSS_PATH = "analytics.tcss"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "refresh", "Refresh", id="analytics.refresh"),
        Binding("l", "focus_leaderboard", "Leaderboard", id="analytics.leaderboard"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.stats: Mapping[str, Any] | None = None
        self.recent: Sequence[Mapping[str, Any]] = []
        self._stale = True

    @property
    def runtime(self) -> Runtime:
        return router_app(self).runtime

    def compose(self) -> ComposeResult:
        yield TopBar("analytics")
        with VerticalScroll(id="an-body"):
            with Grid(id="an-cards"):
                yield StatCard("Prompts", id="card-prompts")
                yield StatCard("Cache hits", id="card-cache")
                yield StatCard("Fallbacks", id="card-fallbacks")
                yield StatCard("Errors", id="card-errors")
                yield StatCard("Rating", id="card-rating")
                yield StatCard("Tokens", id="card-tokens")
            table: DataTable[str] = DataTable(id="an-table", zebra_stripes=True, cursor_type="row")
            table.border_title = "Per model"
            yield table
            with Horizontal(id="an-charts"):
                with Vertical(id="an-bars-box") as bars:
                    bars.border_title = "Requests per model"
                    yield BarChart(id="an-bars")
                with Vertical(id="an-spark-box") as spark:
                    spark.border_title = "Latency over time"
                    yield Sparkline([], id="an-spark")
                    yield Static("", id="an-spark-range", markup=False)
            board = LeaderboardPanel(self.runtime.templates.ids(), id="an-leaderboard")
            board.border_title = "Leaderboard"
            board.border_subtitle = "your compares and ratings · overlapping intervals: no rank yet"
            yield board
            with Vertical(id="an-spend") as spend:
                spend.border_title = "Spend"
                yield Static("", id="an-spend-summary", markup=False)
                with Horizontal(id="an-spend-charts"):
                    with Vertical(id="an-spend-models"):
                        yield Static("per model", classes="an-caption")
                        yield BarChart(id="an-spend-bars", fmt=usd, empty="nothing spent yet")
                    with Vertical(id="an-spend-days"):
                        yield Static("per day (UTC)", classes="an-caption")
                        yield BarChart(id="an-spend-daily", fmt=usd, empty="no requests yet")
        yield KeyFooter()

    def on_mount(self) -> None:
        table = self.query_one("#an-table", DataTable)
        for key, label in TABLE_COLUMNS:
            table.add_column(label, key=key)
        router_app(self).stats_changed.subscribe(self, self._stats_changed)
        self.refresh_stats()

    def on_resize(self, event: events.Resize) -> None:
        # Six cards in a row need about 96 columns; narrower terminals get two rows of three.
        self.set_class(event.size.width < NARROW_BELOW, "-narrow")

    def on_screen_resume(self) -> None:
        if self._stale:
            self.refresh_stats()

    def _stats_changed(self, _: object) -> None:
        if self.is_current:
            self.refresh_stats()
        else:
            self._stale = True

    def action_refresh(self) -> None:
        self.refresh_stats()

    def action_focus_leaderboard(self) -> None:
        """Scroll to the leaderboard and put the cursor in its table."""
        board = self.query_one("#an-leaderboard", LeaderboardPanel)
        board.table.focus(scroll_visible=False)
        self.query_one("#an-body", VerticalScroll).scroll_to_widget(board, animate=False, top=True)

    @property
    def leaderboard(self) -> LeaderboardPanel:
        return self.query_one("#an-leaderboard", LeaderboardPanel)

    @work(exclusive=True, group="analytics")
    async def refresh_stats(self) -> None:
        """Read stats and recent requests in a thread, then show them."""
        self._stale = False
        store = self.runtime.store
        stats = await asyncio.to_thread(store.stats)
        recent = await asyncio.to_thread(store.recent_requests, RECENT_LIMIT)
        template_id = self.leaderboard.template_id
        board = None
        if template_id is not None:
            board = await asyncio.to_thread(store.leaderboard, template_id)
            if self.leaderboard.template_id != template_id:
                board = None  # another template was chosen meanwhile: load_leaderboard shows it
        self.show_stats(stats, recent, board)

    @on(LeaderboardPanel.ScopeChanged)
    def _leaderboard_scope(self, event: LeaderboardPanel.ScopeChanged) -> None:
        self.load_leaderboard(event.template_id)

    @background("read the leaderboard", group="analytics-leaderboard")
    async def load_leaderboard(self, template_id: str | None) -> None:
        """Show the leaderboard of one template's votes (None: every template's)."""
        rows = await asyncio.to_thread(self.runtime.store.leaderboard, template_id)
        if self.leaderboard.template_id == template_id:
            self.leaderboard.show(rows)

    def show_stats(
        self,
        stats: Mapping[str, Any],
        recent: Sequence[Mapping[str, Any]],
        leaderboard: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        """Render a stats dict (as returned by `Store.stats()`) and recent requests. The
        leaderboard shown is `leaderboard` if given, else the stats' own (every template)
        when every template is chosen."""
        self.stats = stats
        self.recent = recent
        for card_id, (value, detail) in card_values(stats).items():
            self.query_one(f"#{card_id}", StatCard).set_value(value, detail)
        table = self.query_one("#an-table", DataTable)
        table.clear()
        for row in table_rows(stats):
            table.add_row(*row, key=row[0])
        per_model = stats.get("per_model", {})
        bars = sorted(
            ((model, float(m["requests"])) for model, m in per_model.items() if m["requests"]),
            key=lambda item: (-item[1], item[0]),
        )
        self.query_one("#an-bars", BarChart).set_data(bars)
        series = latency_series(recent)
        self.query_one("#an-spark", Sparkline).data = series
        label = self.query_one("#an-spark-range", Static)
        if series:
            label.update(
                f"last {len(series)} ok requests · min {duration(min(series))} · "
                f"max {duration(max(series))}"
            )
        else:
            label.update("no successful requests yet")
        shown = self.leaderboard
        if leaderboard is not None:
            shown.show(leaderboard)
        elif shown.template_id is None:
            shown.show(stats.get("leaderboard", []))
        self.query_one("#an-spend-summary", Static).update(spend_summary(stats.get("cost", {})))
        self.query_one("#an-spend-bars", BarChart).set_data(spend_per_model(stats))
        self.query_one("#an-spend-daily", BarChart).set_data(spend_per_day(stats))
