"""Cost per reply, cache savings, spend per model and day, and [budget] limits, through the
real Router and Store against the fake upstream."""

from __future__ import annotations

import argparse
import sqlite3
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import pytest
from conftest import GEMINI_KEY, GROQ_KEY, fake_settings

from llmrouter_tui.core.budget import Spend, SpendTracker, check, resets_at
from llmrouter_tui.core.config import BudgetSettings, load_settings
from llmrouter_tui.core.errors import BudgetExceeded, ConfigError
from llmrouter_tui.core.logsinks import read_csv, read_jsonl
from llmrouter_tui.core.pricing import PriceTable, format_usd
from llmrouter_tui.core.runtime import Runtime
from llmrouter_tui.core.types import ChatRequest
from llmrouter_tui.testing.fake_upstream import FakeUpstream, Fault

GROQ = "openai/gpt-oss-20b"
GEMINI = "gemini-3.5-flash"
LOCAL = "llama3.2"  # kind "openai" provider: free


def shipped_prices() -> dict[str, dict]:
    """The price table read straight from the data file (not through core.pricing)."""
    text = resources.files("llmrouter_tui").joinpath("data", "prices.toml").read_text("utf-8")
    return tomllib.loads(text)["prices"]


def expected_cost(model: str, prompt: int, completion: int) -> float:
    price = shipped_prices()[model]
    return (prompt * price["input"] + completion * price["output"]) / 1_000_000


@pytest.fixture
def build(upstream: FakeUpstream, tmp_path: Path) -> Iterator[Callable[..., Runtime]]:
    made: list[Runtime] = []

    def make(data_dir: Path | None = None, models: dict | None = None, **changes) -> Runtime:
        settings = fake_settings(upstream.base_url, data_dir or tmp_path / "data")
        if models:
            settings = replace(settings, models={**settings.models, **models})
        runtime = Runtime(replace(settings, **changes))
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        runtime.close()


# ---- the price table ---------------------------------------------------------------------------


def test_every_price_has_a_date_and_a_source():
    prices = shipped_prices()
    assert GROQ in prices and "gemini-2.5-flash" in prices
    for model, price in prices.items():
        assert price["date"] and price["source"].startswith("https://"), model
        assert price["input"] >= 0 and price["output"] >= 0, model
        assert isinstance(price["free_tier"], bool), model
    table = PriceTable()
    for model, price in prices.items():
        loaded = table.price(model)
        assert loaded is not None
        assert (loaded.input, loaded.output) == (price["input"], price["output"])
    # A model of a kind-"openai" provider is free unless priced; unknown ids are unpriced.
    settings = fake_settings("http://127.0.0.1:9", Path("."))
    table = PriceTable.for_settings(settings.models, settings.providers)
    assert table.is_free(LOCAL, "local") and table.cost(LOCAL, "local", 1000, 1000) == 0
    assert table.price("groq:brand-new-model", "groq") is None
    assert table.price(f"groq:{GROQ}", "groq") == table.price(GROQ)


def test_money_is_shown_readably():
    assert format_usd(0.0004) == "$0.0004"
    assert format_usd(0.000432) == "$0.00043"
    assert format_usd(1.5) == "$1.50"
    assert format_usd(0) == "free" and format_usd(None) == "price unknown"


# ---- cost of each reply ------------------------------------------------------------------------


async def test_cost_per_reply_matches_the_price_table_everywhere(build, upstream):
    runtime = build()
    result = await runtime.router.complete(ChatRequest(model=GROQ, prompt="price me"))
    assert result.status == "ok" and not result.usage.estimated
    cost = expected_cost(GROQ, result.usage.prompt, result.usage.completion)
    assert cost > 0
    assert result.cost_usd == pytest.approx(cost, rel=1e-12)
    assert result.cost_estimated is False and result.saved_usd is None
    assert result.as_dict()["cost_usd"] == result.cost_usd

    row = runtime.store.get_request(result.prompt_id)
    assert row is not None
    assert row["cost_usd"] == pytest.approx(cost) and row["cost_estimated"] is False
    jsonl, _ = read_jsonl(runtime.store.logs_dir / "prompts.jsonl")
    assert jsonl[-1]["cost_usd"] == pytest.approx(cost) and jsonl[-1]["cost_estimated"] is False
    csv_rows, _ = read_csv(runtime.store.logs_dir / "prompts.csv")
    assert float(csv_rows[-1]["cost_usd"]) == pytest.approx(cost)

    # The cache hit costs nothing and records what it saved.
    again = await runtime.router.complete(ChatRequest(model=GROQ, prompt="price me"))
    assert again.from_cache
    assert again.cost_usd == 0.0 and again.saved_usd == pytest.approx(cost)
    assert runtime.store.get_request(again.prompt_id)["saved_usd"] == pytest.approx(cost)

    # A free local model costs 0; a failed request has no cost.
    local = await runtime.router.complete(ChatRequest(model=LOCAL, prompt="free"))
    assert local.cost_usd == 0.0
    upstream.add_fault(Fault(kind="status", status=400, model=GEMINI))
    failed = await runtime.router.complete(ChatRequest(model=GEMINI, prompt="bad"))
    assert failed.status == "error" and failed.cost_usd is None

    stats = runtime.store.stats()
    assert stats["cost"]["total_usd"] == pytest.approx(cost)
    assert stats["cost"]["saved_usd"] == pytest.approx(cost)
    assert stats["per_model"][GROQ]["cost_usd"] == pytest.approx(cost)
    assert stats["per_model"][GROQ]["saved_usd"] == pytest.approx(cost)
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    (day,) = stats["cost"]["per_day"]
    assert day["day"] == today and day["requests"] == 4
    assert day["cost_usd"] == pytest.approx(cost) and day["saved_usd"] == pytest.approx(cost)
    assert day["by_model"] == {GROQ: pytest.approx(cost)}


async def test_estimated_tokens_give_an_estimated_cost(build, upstream):
    runtime = build()
    upstream.add_fault(Fault(kind="cut", model=GROQ, after_chunks=3, times=1))
    result = await runtime.router.complete(ChatRequest(model=GROQ, prompt="continue me"))
    assert result.status == "ok" and result.usage.estimated  # a continued reply
    assert result.cost_estimated is True
    assert result.cost_usd == pytest.approx(
        expected_cost(GROQ, result.usage.prompt, result.usage.completion)
    )
    assert runtime.store.get_request(result.prompt_id)["cost_estimated"] is True
    assert runtime.store.stats()["cost"]["estimated_requests"] == 1


async def test_config_prices_override_the_table(build):
    runtime = build(models={GROQ: {"price_in": 1.0, "price_out": 2.0}})
    result = await runtime.router.complete(ChatRequest(model=GROQ, prompt="override"))
    assert result.cost_usd == pytest.approx(
        (result.usage.prompt * 1.0 + result.usage.completion * 2.0) / 1e6
    )


def test_config_validates_prices_and_budgets(tmp_path: Path):
    good = tmp_path / "good.toml"
    good.write_text(
        '[budget]\ndaily_usd = 1.5\nmonthly_usd = 20\n[models."openai/gpt-oss-20b"]\n'
        "price_in = 0.1\nprice_out = 0.5\n"
    )
    settings = load_settings(config=good, data_dir=tmp_path, load_dotenv_file=False)
    assert settings.budget == BudgetSettings(daily_usd=1.5, monthly_usd=20.0)
    assert settings.models[GROQ]["price_out"] == 0.5
    for text, line, words in [
        ('[models."x"]\nprovider = "groq"\nprice_in = "cheap"\n', 3, "price_in"),
        ("[budget]\ndaily_usd = -1\n", 2, "daily_usd"),
        ("[budget]\nweekly_usd = 1\n", 2, "weekly_usd"),
    ]:
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(ConfigError) as info:
            load_settings(config=bad, data_dir=tmp_path, load_dotenv_file=False)
        assert info.value.line == line and words in str(info.value)
        assert str(bad) in str(info.value)


# ---- budgets -----------------------------------------------------------------------------------


def test_budget_periods_and_messages():
    now = datetime(2026, 12, 31, 22, 30, tzinfo=UTC)
    assert resets_at("daily_usd", now) == datetime(2027, 1, 1, tzinfo=UTC)
    assert resets_at("monthly_usd", now) == datetime(2027, 1, 1, tzinfo=UTC)
    spend = Spend("2026-12-31", today_usd=0.5, month_usd=9.0)
    assert check(1.0, 10.0, spend, now) is None
    block = check(0.5, 10.0, spend, now)
    assert block is not None and block.budget == "daily_usd"
    both = check(0.5, 9.0, spend, now)
    assert both is not None and both.budget == "monthly_usd"  # the longer wait decides
    error = both.error("gemini-3.1-pro-preview", now)
    assert error.http_status == 429 and error.resets_at == "2027-01-01T00:00:00Z"
    assert error.retry_after_s == pytest.approx(90 * 60)
    assert "monthly_usd" in str(error) and "2027-01-01T00:00:00Z" in str(error)


def test_spend_tracker_adds_local_spend_and_rereads_the_store():
    reads: list[str] = []
    stored = {"day": 0.25, "month": 1.0}
    clock = [0.0]

    def load(day: str) -> tuple[float, float]:
        reads.append(day)
        return stored["day"], stored["month"]

    tracker = SpendTracker(load, refresh_s=5, clock=lambda: clock[0])
    now = datetime(2026, 3, 4, 12, tzinfo=UTC)
    assert tracker.current(now) == Spend("2026-03-04", 0.25, 1.0)
    tracker.add(0.5, "2026-03-04")
    assert tracker.current(now) == Spend("2026-03-04", 0.75, 1.5) and len(reads) == 1
    stored.update(day=0.8, month=1.55)  # another process spent too; this one's is stored
    clock[0] = 5.0
    assert tracker.current(now) == Spend("2026-03-04", 0.8, 1.55) and len(reads) == 2
    assert tracker.current(now + timedelta(days=1)).day == "2026-03-05" and len(reads) == 3


async def test_budget_refuses_paid_requests_and_keeps_free_ones(build, upstream):
    runtime = build(budget=BudgetSettings(daily_usd=1e-9))
    first = await runtime.router.complete(ChatRequest(model=GROQ, prompt="one"))
    assert first.status == "ok" and first.cost_usd > 1e-9  # spend crosses the budget
    calls = len(upstream.requests_for(GROQ))
    with pytest.raises(BudgetExceeded) as info:
        await runtime.router.complete(ChatRequest(model=GROQ, prompt="two"))
    error = info.value
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT00:00:00Z")
    assert error.http_status == 429 and error.budget == "daily_usd"
    assert error.resets_at == tomorrow
    assert "daily_usd" in str(error) and tomorrow in str(error) and GROQ in str(error)
    assert len(upstream.requests_for(GROQ)) == calls  # no provider was called
    assert runtime.store.get_request(first.prompt_id) is not None

    free = await runtime.router.complete(ChatRequest(model=LOCAL, prompt="free"))
    assert free.status == "ok" and free.model_used == LOCAL and free.cost_usd == 0.0
    # A free model's paid fallbacks are skipped while the budget is reached.
    upstream.add_fault(Fault(kind="status", status=500, model=LOCAL))
    failed = await runtime.router.complete(ChatRequest(model=LOCAL, prompt="fails"))
    assert failed.status == "error"
    skipped = [a for a in failed.attempts if a.outcome == "skipped_budget"]
    assert [a.model for a in skipped] == [GEMINI]
    assert "daily budget reached" in (skipped[0].message or "")
    assert len(upstream.requests_for(GEMINI)) == 0

    # auto keeps working with the free models only, and says why.
    upstream.clear()
    picked = await runtime.router.complete(ChatRequest(model="auto", prompt="auto"))
    assert picked.status == "ok" and picked.model_used == LOCAL
    assert [a.model for a in picked.attempts] == [LOCAL]  # paid ones are not even candidates
    assert picked.auto_reason is not None
    assert picked.auto_reason.startswith(f"auto → {LOCAL}: ")
    assert "paid models skipped: daily budget reached" in picked.auto_reason


async def test_spend_recorded_by_another_process_counts(build, tmp_path: Path):
    shared = tmp_path / "shared"
    spender = build(data_dir=shared)
    result = await spender.router.complete(ChatRequest(model=GEMINI, prompt="spend"))
    assert result.cost_usd and result.cost_usd > 0
    other = build(data_dir=shared, budget=BudgetSettings(monthly_usd=result.cost_usd / 2))
    with pytest.raises(BudgetExceeded) as info:
        await other.router.complete(ChatRequest(model=GROQ, prompt="refused"))
    assert info.value.budget == "monthly_usd" and "monthly_usd" in str(info.value)
    conn = sqlite3.connect(shared / "llmrouter.db")
    (spent,) = conn.execute("SELECT sum(cost_usd) FROM daily_stats").fetchone()
    conn.close()
    assert spent == pytest.approx(result.cost_usd)


def test_ask_exits_3_when_the_budget_is_reached(upstream, tmp_path, monkeypatch, capsys):
    from llmrouter_tui.ask import run_ask
    from llmrouter_tui.cli import ask_parser

    config = tmp_path / "llmrouter.toml"
    config.write_text(
        f'[providers.groq]\nkind = "groq"\nbase_url = "{upstream.base_url}"\n'
        f'[providers.gemini]\nkind = "gemini"\nbase_url = "{upstream.base_url}"\n'
        "[budget]\ndaily_usd = 0.000000001\n"
    )
    monkeypatch.setenv("GROQ_API_KEY", GROQ_KEY)
    monkeypatch.setenv("GEMINI_API_KEY", GEMINI_KEY)
    data = tmp_path / "ask-data"

    def ask(prompt: str) -> int:
        args: argparse.Namespace = ask_parser().parse_args(
            ["--config", str(config), "--data-dir", str(data), "-m", GROQ, prompt]
        )
        return run_ask(args)

    assert ask("first") == 0
    capsys.readouterr()
    assert ask("second") == 3
    err = capsys.readouterr().err
    assert "daily budget reached" in err and "daily_usd" in err and "T00:00:00Z" in err
