"""Choosing models from evidence in the app: compare side by side and vote with one key (blind
too), `auto` in the model picker and its reason and cost under a reply, the leaderboard and
spend on the analytics screen, and the notice of a reached budget. Pilot drives the real app
against the fake upstream; the snapshots use fixed seeded data."""

# Fixtures are imported from test_tui_support; tests take them as same-named arguments.
# ruff: noqa: F811

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from test_tui_support import (  # noqa: F401 - fixtures
    MODEL,
    QUICK_CONFIG,
    SIZE,
    app,
    chat,
    data_dir,
    fake,
    isolated_env,
    palette_hit,
    quick_config,
    runtime,
    send,
    settle,
)
from textual.pilot import Pilot
from textual.widgets import DataTable, Select, Static
from waiting import until

from llmrouter_tui.core.pricing import format_usd
from llmrouter_tui.core.runtime import Runtime
from llmrouter_tui.core.store import Store
from llmrouter_tui.core.types import Attempt, Result, Usage
from llmrouter_tui.testing.fake_upstream import FakeUpstream
from llmrouter_tui.tui.app import LLMRouterApp
from llmrouter_tui.tui.screens.analytics import AnalyticsScreen
from llmrouter_tui.tui.screens.compare import CompareScreen
from llmrouter_tui.tui.screens.help import HelpScreen
from llmrouter_tui.tui.screens.model_picker import AUTO_EXPLAINED, ModelPicker
from llmrouter_tui.tui.screenshots import fixed_settings, seed_store, seeded_runtime
from llmrouter_tui.tui.widgets.bar_chart import BarChart
from llmrouter_tui.tui.widgets.leaderboard import IntervalChart

pytestmark = pytest.mark.slow  # every test runs the Textual app (seconds each)

SECOND = "gemini-3.5-flash"
SNAPSHOT_SIZES = {"80x24": (80, 24), "100x30": (100, 30)}


def meta_of(reply: Any) -> str:
    return str(reply.query_one(".reply-meta").render())


def notices(app: LLMRouterApp) -> list[tuple[str, str]]:
    return [(n.title or "", n.message) for n in app._notifications]


def neutral_reply(provider: str, model: str, messages: list[dict[str, str]]) -> str:
    """Replies that do not name their model (the fake's default one does): one for the
    chat's model, another for any other."""
    if model == MODEL:
        return (
            "Keep a set of the items seen so far:\n\n"
            "```python\nseen, dupes = set(), set()\nfor x in items:\n"
            "    (dupes if x in seen else seen).add(x)\n```\n\n"
            "One pass, O(n) time."
        )
    return (
        "Count them with `collections.Counter(items)` and keep the keys whose count is "
        "above 1.\n\nSorting a copy and comparing neighbours also works, in O(n log n)."
    )


async def open_compare(pilot: Pilot[None], text: str) -> CompareScreen:
    """Type `text`, press ctrl+k, take the suggested second model, wait for both replies."""
    screen = chat(pilot)
    screen.prompt.focus()
    screen.prompt.set_text(text)
    await pilot.press("ctrl+k")
    await settle(pilot)
    picker = pilot.app.screen
    assert isinstance(picker, ModelPicker)
    await pilot.press("enter")
    await settle(pilot)
    compare = pilot.app.screen
    assert isinstance(compare, CompareScreen)
    return compare


# ---- compare -----------------------------------------------------------------------------------


async def test_compare_streams_two_replies_and_one_key_records_the_preference(
    app: LLMRouterApp, fake: FakeUpstream
) -> None:
    store = app.runtime.store
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = chat(pilot)
        screen.prompt.set_text("which is better?")
        await pilot.press("ctrl+k")
        await settle(pilot)
        picker = app.screen
        assert isinstance(picker, ModelPicker)
        assert MODEL not in picker.visible_ids, "a model is not compared with itself"
        await pilot.press(*SECOND)  # filter to the second model, then Enter
        await pilot.pause()
        await pilot.press("enter")
        await settle(pilot)
        compare = app.screen
        assert isinstance(compare, CompareScreen)
        assert compare.models == (MODEL, SECOND)
        assert compare.labels == [f"A · {MODEL}", f"B · {SECOND}"]
        a, b = compare.sides
        assert a.reply.state == b.reply.state == "done"
        assert f"**{MODEL}**" in a.reply.text and f"**{SECOND}**" in b.reply.text
        assert fake.requests_for(MODEL) and fake.requests_for(SECOND)
        rows = [store.get_request(side.prompt_id) for side in compare.sides]
        assert [r["status"] for r in rows] == ["ok", "ok"]
        assert rows[0]["compare_id"] == rows[1]["compare_id"] == compare.compare_id
        assert screen.prompt.text == "", "the prompt went to the compare"

        await pilot.press("right")  # B is better: one key
        await settle(pilot)
        assert app.screen is screen
        preference = store.get_preference(a.prompt_id, b.prompt_id)
        assert preference is not None
        assert preference["outcome"] == "b" and preference["compare_id"] == compare.compare_id
        assert (preference["model_a"], preference["model_b"]) == (MODEL, SECOND)
        assert any("B was gemini-3.5-flash" in text for _, text in notices(app))

        # the preferred reply continues the conversation; the other one is its sibling
        reply = screen.view.replies[-1]
        assert reply.prompt_id == b.prompt_id and reply.text == b.reply.text
        meta = meta_of(reply)
        assert meta.startswith(SECOND + " · ")
        assert f"⚖ preferred over {MODEL}" in meta and "version 2/2" in meta
        conversations = store.conversations
        thread = conversations.thread(screen.conversation_id)
        assert [(m["role"], m["prompt_id"]) for m in thread] == [
            ("user", None),
            ("assistant", b.prompt_id),
        ]
        messages = conversations.messages(screen.conversation_id)
        assert [m["prompt_id"] for m in messages] == [None, a.prompt_id, b.prompt_id]
        assert messages[1]["parent_id"] == messages[2]["parent_id"] == messages[0]["id"]

        await send(pilot, "and now?")
        history = fake.requests_for(MODEL)[-1].body["messages"]
        assert [m["role"] for m in history] == ["user", "assistant", "user"]
        assert history[1]["content"] == b.reply.text, "the preferred reply is the history"

        # the other reply is one key away ([ on the reply)
        await pilot.press("escape", "up")
        await pilot.press("left_square_bracket")
        await settle(pilot)
        (other,) = screen.view.replies
        assert other.prompt_id == a.prompt_id
        meta = meta_of(other)
        assert "⚖ from a compare" in meta and "version 1/2" in meta


@pytest.mark.parametrize(
    ("key", "outcome", "continues"),
    [("1", "a", 0), ("2", "b", 1), ("=", "tie", 0), ("x", "both_bad", 0)],
)
async def test_every_vote_key(app: LLMRouterApp, key: str, outcome: str, continues: int) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        compare = await open_compare(pilot, f"vote {outcome}")
        first, second = compare.shown
        await pilot.press(key)
        await settle(pilot)
        record = app.runtime.store.get_preference(first.prompt_id, second.prompt_id)
        assert record is not None and record["outcome"] == outcome
        reply = chat(pilot).view.replies[-1]
        assert reply.prompt_id == compare.sides[continues].prompt_id


@pytest.mark.parametrize("key", ["escape", "ctrl+c"])
async def test_vote_waits_for_both_replies_and_escape_cancels_both(
    data_dir: Path, quick_config: Path, key: str
) -> None:
    with FakeUpstream(chunk_delay_s=0.05) as slow:
        slow.reply_fn = lambda provider, model, messages: " ".join(f"w{i}" for i in range(300))
        rt = Runtime.open(data_dir=data_dir, demo_upstream=slow.base_url)
        app = LLMRouterApp(rt)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            screen = chat(pilot)
            screen.prompt.set_text("a long one")
            await pilot.press("ctrl+k")
            await settle(pilot)
            await pilot.press("enter")
            await pilot.pause()
            compare = app.screen
            assert isinstance(compare, CompareScreen)
            await until(
                lambda: all(side.reply._parts for side in compare.sides), "both sides streaming"
            )
            assert compare.streaming and not compare.ready
            await pilot.press("1")  # no vote before both have ended
            assert app.screen is compare
            await pilot.press(key)
            await settle(pilot)
            assert app.screen is screen
            store = app.runtime.store
            for side in compare.sides:
                assert side.reply.state == "cancelled"
                assert store.get_request(side.prompt_id)["status"] == "cancelled"
            assert screen.prompt.text == "a long one", "the prompt is put back"
            assert store.conversations.list() == [], "no turn, so no conversation"
            assert screen.view.replies == []
        rt.close()


async def test_escape_after_both_replies_closes_without_a_vote(app: LLMRouterApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "first turn")
        screen = chat(pilot)
        before = app.runtime.store.conversations.messages(screen.conversation_id)
        compare = await open_compare(pilot, "no vote on this one")
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is screen
        store = app.runtime.store
        first, second = (side.prompt_id for side in compare.sides)
        assert store.get_preference(first, second) is None
        assert [store.get_request(p)["status"] for p in (first, second)] == ["ok", "ok"]
        assert store.conversations.messages(screen.conversation_id) == before
        assert len(screen.view.replies) == 1
        assert screen.prompt.text == "no vote on this one"


async def test_blind_compare_hides_the_models_until_the_vote(
    app: LLMRouterApp, fake: FakeUpstream
) -> None:
    fake.reply_fn = neutral_reply
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"blind compare")
        await palette_hit(pilot, "blind compare")
        await pilot.press("enter")
        await settle(pilot)
        assert app.ui_state.blind_compare is True
        saved = json.loads((app.runtime.settings.data_dir / "tui.json").read_text())
        assert saved["blind_compare"] is True, "the choice is remembered"

        compare = await open_compare(pilot, "blind test")
        models = [side.model for side in compare.sides]
        assert compare.ready
        shown_text = [
            *compare.labels,
            *(
                str(w.render())
                for side in compare.sides
                for w in side.reply.query(Static)
                if w.display
            ),
        ]
        assert all("hidden" in label for label in compare.labels)
        for text in shown_text:
            for model in models:
                assert model not in text, f"{model} shown before the vote: {text!r}"

        first = compare.shown[0]
        await pilot.press("left")  # A is better
        await settle(pilot)
        assert all(not side.reply.hidden for side in compare.sides)
        record = app.runtime.store.get_preference(first.prompt_id, compare.shown[1].prompt_id)
        assert record is not None and record["winner"] == first.model
        (_, summary) = next(n for n in notices(app) if n[0] == "Preference saved")
        assert f"A was {first.model}" in summary
        reply = chat(pilot).view.replies[-1]
        assert reply.prompt_id == first.prompt_id
        assert meta_of(reply).startswith(first.model + " · ")


@pytest.mark.parametrize(("size", "stacked"), [((140, 40), False), ((100, 30), True)])
async def test_side_by_side_when_wide_stacked_when_narrow(
    app: LLMRouterApp, size: tuple[int, int], stacked: bool
) -> None:
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        compare = await open_compare(pilot, "layout")
        a, b = (compare.query_one(f"#cmp-side-{n}").region for n in "ab")
        assert compare.stacked is stacked
        if stacked:
            assert b.y >= a.bottom and a.x == b.x
        else:
            assert b.x >= a.right and a.y == b.y


async def test_compare_keys_are_in_help_and_palette(app: LLMRouterApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        footer = " ".join(str(w.render()) for w in chat(pilot).query("FooterKey"))
        assert "Compare" in footer
        await pilot.press("f1")
        await pilot.pause()
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        rows = dict((action, key) for key, action in help_screen.binding_rows())
        assert "ctrl+k" in rows["Compare"] or "^k" in rows["Compare"]
        assert {"A better", "B better", "Tie", "Both bad"} <= set(rows)


# ---- auto and cost -------------------------------------------------------------------------------


async def test_auto_in_the_picker_and_its_reason_and_cost_under_the_reply(
    app: LLMRouterApp,
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+o")
        await settle(pilot)
        picker = app.screen
        assert isinstance(picker, ModelPicker)
        assert picker.visible_ids[0] == "auto"
        assert picker.auto_pick is not None and picker.auto_pick.startswith("now → ")
        shown = str(picker.option_list.get_option("auto").prompt)
        assert AUTO_EXPLAINED in shown and picker.auto_pick in shown
        preview = app.runtime.router.selection.preview()
        assert preview is not None and preview.pick.model in picker.auto_pick
        await pilot.press(*"auto", "enter")
        await settle(pilot)
        screen = chat(pilot)
        assert screen.model == "auto"

        await send(pilot, "pick for me")
        reply = screen.view.replies[-1]
        result = reply.result
        assert result is not None and result.auto_reason and result.cost_usd
        first, reason = meta_of(reply).split("\n")
        assert first.startswith(result.model_used + " · ")
        cost = f"{'~' if result.cost_estimated else ''}$"
        assert f" · {cost}" in first
        assert reason == result.auto_reason and reason.startswith(f"auto → {result.model_used}")

        # read back from the database: the same line
        await pilot.press("ctrl+n")
        screen.open_conversation(app.runtime.store.conversations.list()[0]["id"])
        await settle(pilot)
        assert meta_of(screen.view.replies[-1]) == f"{first}\n{reason}"


async def test_compare_auto_with_the_runner_up(app: LLMRouterApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await app.choose_model("auto")
        preview = app.runtime.router.selection.preview()
        assert preview is not None and len(preview.ranking) > 1
        compare = await open_compare(pilot, "auto against its runner-up")
        picked = compare.sides[0].model_used
        assert compare.models == ("auto", preview.ranking[1].model)
        assert compare.labels[0] == f"A · auto → {picked}"
        assert compare.sides[0].result.auto_reason.startswith(f"auto → {picked}")


async def test_cache_hits_say_what_they_saved(app: LLMRouterApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "cache me")
        paid = chat(pilot).view.replies[-1].result
        await pilot.press("ctrl+n")
        await send(pilot, "cache me")
        reply = chat(pilot).view.replies[-1]
        assert reply.result is not None and reply.result.from_cache
        assert paid is not None and paid.cost_usd
        meta = meta_of(reply)
        assert "⚡ cached" in meta and "saved $" in meta


# ---- budget --------------------------------------------------------------------------------------


@pytest.fixture
def budget_config(tmp_path: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "budget.toml"
    path.write_text(QUICK_CONFIG + "[budget]\ndaily_usd = 0.000000001\n", encoding="utf-8")
    monkeypatch.setenv("LLMROUTER_CONFIG", str(path))
    return path


async def test_a_reached_budget_is_a_clear_notice_and_the_prompt_comes_back(
    data_dir: Path, fake: FakeUpstream, budget_config: Path
) -> None:
    rt = Runtime.open(data_dir=data_dir, demo_upstream=fake.base_url)
    app = LLMRouterApp(rt)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "this one crosses the budget")
        screen = chat(pilot)
        assert screen.view.replies[-1].state == "done"
        await send(pilot, "this one is refused")
        assert screen.view.replies[-1].state == "error"
        assert screen.prompt.text == "this one is refused"
        title, text = notices(app)[-1]
        assert title == "Daily budget reached"
        assert "[budget] daily_usd" in text and "resets at" in text and "UTC" in text
        assert "free models still answer" in text

        # a compare is refused the same way, before anything is sent
        sent = len(fake.requests)
        screen.prompt.clear()
        await open_compare_refused(pilot, "compare refused")
        assert app.screen is screen
        assert len(fake.requests) == sent
        assert notices(app)[-1][0] == "Daily budget reached"
        assert screen.prompt.text == "compare refused"
    rt.close()


async def open_compare_refused(pilot: Pilot[None], text: str) -> None:
    screen = chat(pilot)
    screen.prompt.set_text(text)
    await pilot.press("ctrl+k")
    await settle(pilot)
    assert isinstance(pilot.app.screen, ModelPicker)
    await pilot.press("enter")
    await settle(pilot)


# ---- analytics -----------------------------------------------------------------------------------

VOTE_MODELS = ("openai/gpt-oss-20b", "openai/gpt-oss-120b", "gemini-3.5-flash", "groq/compound")


def _recorded(store: Store, index: int, model: str, template: str | None, compare_id: str) -> str:
    prompt_id = f"vote-{index:04d}"
    provider = "gemini" if model.startswith("gemini") else "groq"
    store.record(
        Result(
            prompt_id=prompt_id,
            requested_model=model,
            model_used=model,
            provider=provider,
            prompt="seeded compare",
            response_text="seeded reply",
            status="ok",
            latency_ms=700.0,
            ttft_ms=200.0,
            usage=Usage(50, 150, 200),
            from_cache=False,
            fallback_used=False,
            attempts=[Attempt(model, provider, "ok", ms=700.0)],
            created_at=f"2025-03-{2 + index % 5:02d}T10:00:00.000Z",
            template_id=template,
            demo=True,
            source="tui",
            cost_usd=0.0001 * (1 + VOTE_MODELS.index(model)),
            compare_id=compare_id,
        )
    )
    return prompt_id


def seed_votes(store: Store, compares: int = 40, seed: int = 11) -> None:
    """Fixed compares between VOTE_MODELS (some from templates) with preferences, plus
    ratings of the replies: the first models tend to win."""
    rng = random.Random(seed)
    strength = {m: 3.0 - i * 0.6 for i, m in enumerate(VOTE_MODELS)}
    index = 0
    for n in range(compares):
        a, b = rng.sample(VOTE_MODELS, 2)
        template = ("summarize", "commit_message", None)[n % 3]
        compare_id = f"cmp_seed{n:03d}"
        pa = _recorded(store, index, a, template, compare_id)
        pb = _recorded(store, index + 1, b, template, compare_id)
        index += 2
        roll = rng.random()
        p_a = strength[a] / (strength[a] + strength[b])
        outcome = "tie" if roll > 0.9 else ("both_bad" if roll > 0.85 else None)
        if outcome is None:
            outcome = "a" if rng.random() < p_a else "b"
        store.prefer(pa, pb, outcome, compare_id=compare_id)
        if n % 4 == 0:
            store.rate(pa, rng.choice((3, 4, 5)) if strength[a] > 2 else rng.choice((2, 3)))


def expected_leaderboard(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The table as the user should read it, written out independently of the app."""

    def score(r: dict[str, Any]) -> str:
        if r["bt_score"] is None:
            return "–"
        return f"{round(r['bt_score'])} ±{round((r['bt_high'] - r['bt_low']) / 2)}"

    def rating(r: dict[str, Any]) -> str:
        if r["mean_rating"] is None:
            return "–"
        if r["rating_low"] is None:
            return f"{r['mean_rating']:.2f}"
        return f"{r['mean_rating']:.2f} ({r['rating_low']:.1f}–{r['rating_high']:.1f})"

    return {
        r["model"]: [
            str(r["rank"]),
            r["model"],
            score(r),
            "–" if not r["compares"] else f"{round(r['win_rate'] * 100)}% of {r['compares']}",
            rating(r),
            str(r["ratings"]),
        ]
        for r in rows
    }


def shown_leaderboard(screen: AnalyticsScreen) -> dict[str, list[str]]:
    table = screen.query_one("#lb-table", DataTable)
    return {str(key.value): [str(c) for c in table.get_row(key)] for key in table.rows}


async def test_analytics_leaderboard_matches_the_store_overall_and_per_template(
    app: LLMRouterApp,
) -> None:
    store = app.runtime.store
    seed_votes(store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f4")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, AnalyticsScreen)
        overall = store.leaderboard()
        assert len(overall) == len(VOTE_MODELS)
        assert shown_leaderboard(screen) == expected_leaderboard(overall)
        order = [str(k.value) for k in screen.query_one("#lb-table", DataTable).rows]
        assert order == [r["model"] for r in overall], "best first"
        scores = screen.query_one("#lb-scores", IntervalChart).rows
        assert [(s.label, s.value, s.low, s.high) for s in scores] == [
            (r["model"], r["bt_score"], r["bt_low"], r["bt_high"]) for r in overall
        ]

        # per template: the selector
        await pilot.press("l")
        await pilot.pause()
        select = screen.query_one("#lb-template", Select)
        select.value = "summarize"
        await settle(pilot)
        assert shown_leaderboard(screen) == expected_leaderboard(store.leaderboard("summarize"))
        assert store.leaderboard("summarize") != overall

        # spend per model and per day, and the cache's savings
        stats = store.stats()
        cost = stats["cost"]
        summary = str(screen.query_one("#an-spend-summary", Static).render())
        assert f"spent {format_usd(cost['total_usd'])} on {cost['priced_requests']}" in summary
        assert "the cache saved $0" in summary
        per_model = dict(screen.query_one("#an-spend-bars", BarChart).rows)
        assert per_model == pytest.approx(
            {m: v["cost_usd"] for m, v in stats["per_model"].items() if v["cost_usd"]}
        )
        per_day = screen.query_one("#an-spend-daily", BarChart).rows
        assert per_day == [(d["day"], pytest.approx(d["cost_usd"])) for d in cost["per_day"]]

        # a vote recorded anywhere refreshes it (the template shown stays chosen)
        a = _recorded(store, 900, "groq/compound", "summarize", "cmp_new")
        b = _recorded(store, 901, "openai/gpt-oss-20b", "summarize", "cmp_new")
        app.runtime.prefer(a, b, "a")
        await settle(pilot)
        assert shown_leaderboard(screen) == expected_leaderboard(store.leaderboard("summarize"))


# ---- snapshots -----------------------------------------------------------------------------------


@pytest.fixture
def compare_fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        upstream.reply_fn = neutral_reply
        yield upstream


async def _compare_view(pilot: Pilot[None]) -> None:
    await settle(pilot)
    screen = chat(pilot)
    await pilot.press("ctrl+n")
    screen.prompt.set_text("How do I find duplicates in a list quickly?")
    await pilot.press("ctrl+k")
    await settle(pilot)
    await pilot.press("enter")
    await settle(pilot)
    assert isinstance(pilot.app.screen, CompareScreen)


@pytest.mark.parametrize("size", SNAPSHOT_SIZES)
def test_compare_snapshot(
    size: str, snap_compare: Any, tmp_path: Path, isolated_env: Path, compare_fake: FakeUpstream
) -> None:
    """A blind compare once both replies are in (the sides are seeded by [auto] seed)."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "tui.json").write_text('{"blind_compare": true}\n', encoding="utf-8")
    settings = fixed_settings(data)
    settings = replace(settings, auto=replace(settings.auto, seed=3))
    runtime = Runtime.open(settings=settings, demo_upstream=compare_fake.base_url)
    try:
        seed_store(runtime.store)
        app = LLMRouterApp(runtime)
        assert snap_compare(app, terminal_size=SNAPSHOT_SIZES[size], run_before=_compare_view)
    finally:
        runtime.close()


async def _leaderboard_view(pilot: Pilot[None]) -> None:
    await settle(pilot)
    await pilot.app.switch_mode("analytics")  # type: ignore[attr-defined]
    await settle(pilot)
    await pilot.press("l")
    await settle(pilot)


@pytest.mark.parametrize("size", SNAPSHOT_SIZES)
def test_analytics_leaderboard_snapshot(
    size: str, snap_compare: Any, tmp_path: Path, isolated_env: Path
) -> None:
    with seeded_runtime(tmp_path / "data") as runtime:
        seed_votes(runtime.store)
        app = LLMRouterApp(runtime)
        assert snap_compare(app, terminal_size=SNAPSHOT_SIZES[size], run_before=_leaderboard_view)
