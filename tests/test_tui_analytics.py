"""Analytics screen: numbers equal `Store.stats()` and refresh on new requests and ratings."""

# Fixtures are imported from test_tui_support; tests take them as same-named arguments.
# ruff: noqa: F811

from __future__ import annotations

from typing import Any

import pytest
from test_tui_support import (  # noqa: F401 - fixtures
    SIZE,
    app,
    data_dir,
    fake,
    isolated_env,
    quick_config,
    runtime,
    send,
    settle,
)
from textual.widgets import DataTable, Sparkline

from llmrouter_tui.testing.history import generate_history
from llmrouter_tui.tui.app import LLMRouterApp
from llmrouter_tui.tui.screens.analytics import AnalyticsScreen
from llmrouter_tui.tui.widgets.bar_chart import BarChart
from llmrouter_tui.tui.widgets.stat_card import StatCard

pytestmark = pytest.mark.slow  # every test runs the Textual app (seconds each)


def cards(screen: AnalyticsScreen) -> dict[str, str]:
    return {card.id or "": card.value for card in screen.query(StatCard)}


def expected_cards(stats: dict[str, Any]) -> dict[str, str]:
    avg = stats["avg_rating"]
    return {
        "card-prompts": f"{stats['total_prompts']:,}",
        "card-cache": f"{stats['cache_hit_rate'] * 100:.1f}%",
        "card-fallbacks": f"{stats['total_fallbacks']:,}",
        "card-errors": f"{stats['errors']:,}",
        "card-rating": "–" if avg is None else f"{avg:.2f}",
        "card-tokens": f"{stats['tokens']['total']:,}",
    }


def table(screen: AnalyticsScreen) -> dict[str, list[str]]:
    data = screen.query_one("#an-table", DataTable)
    return {str(key.value): [str(cell) for cell in data.get_row(key)][1:] for key in data.rows}


def expected_table(stats: dict[str, Any]) -> dict[str, list[str]]:
    def ms(value: float | None) -> str:
        return "–" if value is None else f"{value:,.0f}"

    return {
        model: [
            f"{m['requests']:,}",
            f"{m['errors']:,}",
            ms(m["p50_latency_ms"]),
            ms(m["p95_latency_ms"]),
            ms(m["p50_ttft_ms"]),
            "–" if m["avg_rating"] is None else f"{m['avg_rating']:.2f}",
            f"{m['total_tokens']:,}",
        ]
        for model, m in stats["per_model"].items()
    }


async def test_analytics_equal_stats_and_refresh_on_request_and_rating(
    app: LLMRouterApp,
) -> None:
    store = app.runtime.store
    generate_history(store, 300, seed=3)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "count me")
        await pilot.press("f4")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, AnalyticsScreen)
        stats = store.stats()
        assert stats["total_prompts"] == 301
        assert screen.stats == stats
        assert cards(screen) == expected_cards(stats)
        assert table(screen) == expected_table(stats)
        bars = dict(screen.query_one("#an-bars", BarChart).rows)
        assert bars == {m: float(v["requests"]) for m, v in stats["per_model"].items()}
        spark = screen.query_one("#an-spark", Sparkline).data
        assert spark and len(spark) == sum(r["status"] == "ok" for r in store.recent_requests(200))

        # a rating recorded anywhere refreshes the screen (no polling)
        prompt_id = app.chat_screen.view.replies[0].prompt_id
        app.runtime.rate(prompt_id, 3)
        await settle(pilot)
        assert cards(screen)["card-rating"] == "3.00"
        assert cards(screen) == expected_cards(store.stats())

        # so does a new request
        await pilot.press("f2")
        await send(pilot, "one more")
        await pilot.press("f4")
        await settle(pilot)
        assert cards(screen)["card-prompts"] == "302"
        assert table(screen) == expected_table(store.stats())
