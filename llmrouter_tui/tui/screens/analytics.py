"""The analytics screen: summary cards, per-model table and charts from `Store.stats()`."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Sparkline, Static

from ...core.runtime import Runtime
from ..format import count, duration, ms_value, percent, rating_value
from ..widgets.bar_chart import BarChart
from ..widgets.key_footer import KeyFooter
from ..widgets.stat_card import StatCard
from ..widgets.top_bar import TopBar

RECENT_LIMIT = 200
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


def card_values(stats: dict[str, Any]) -> dict[str, tuple[str, str]]:
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


def table_rows(stats: dict[str, Any]) -> list[tuple[str, ...]]:
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


def latency_series(recent: list[dict[str, Any]]) -> list[float]:
    """Latency (ms) of the recent successful requests, oldest first."""
    return [
        float(r["latency_ms"])
        for r in recent
        if r.get("status") == "ok" and r.get("latency_ms") is not None
    ]


class AnalyticsScreen(Screen[None]):
    """Numbers from the same stats function as `/stats`, refreshed when a request or rating
    is recorded."""

    CSS_PATH = "analytics.tcss"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "refresh", "Refresh", id="analytics.refresh")
    ]

    def __init__(self) -> None:
        super().__init__()
        self.stats: dict[str, Any] | None = None
        self.recent: list[dict[str, Any]] = []
        self._stale = True

    @property
    def runtime(self) -> Runtime:
        return self.app.runtime  # type: ignore[attr-defined,no-any-return]

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
        yield KeyFooter()

    def on_mount(self) -> None:
        table = self.query_one("#an-table", DataTable)
        for key, label in TABLE_COLUMNS:
            table.add_column(label, key=key)
        self.app.stats_changed.subscribe(self, self._stats_changed)  # type: ignore[attr-defined]
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

    @work(exclusive=True, group="analytics")
    async def refresh_stats(self) -> None:
        """Read stats and recent requests in a thread, then show them."""
        self._stale = False
        store = self.runtime.store
        stats = await asyncio.to_thread(store.stats)
        recent = await asyncio.to_thread(store.recent_requests, RECENT_LIMIT)
        self.show_stats(stats, recent)

    def show_stats(self, stats: dict[str, Any], recent: list[dict[str, Any]]) -> None:
        """Render a stats dict (as returned by `Store.stats()`) and recent requests."""
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
