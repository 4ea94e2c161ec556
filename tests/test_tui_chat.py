"""Chat screen against the fake upstream: streaming, metadata, fallback, errors, cancel,
rating, feedback, copy, regenerate, model picker, settings and the no-keys first run."""

# Fixtures are imported from test_tui_support; tests take them as same-named arguments.
# ruff: noqa: F811

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from test_tui_support import (  # noqa: F401 - fixtures
    MODEL,
    SIZE,
    app,
    chat,
    data_dir,
    fake,
    isolated_env,
    quick_config,
    runtime,
    send,
    settle,
)
from waiting import until

from llmrouter_tui.core.runtime import Runtime
from llmrouter_tui.testing.fake_upstream import FakeUpstream, Fault
from llmrouter_tui.tui.app import LLMRouterApp
from llmrouter_tui.tui.screens.feedback import FeedbackModal
from llmrouter_tui.tui.screens.model_picker import ModelPicker
from llmrouter_tui.tui.widgets.code_block import CodeBlock
from llmrouter_tui.tui.widgets.keys_help import KeysHelp
from llmrouter_tui.tui.widgets.markdown_body import MarkdownBody

pytestmark = pytest.mark.slow  # every test runs the Textual app (seconds each)


def meta_of(reply) -> str:  # type: ignore[no-untyped-def]
    return str(reply.query_one(".reply-meta").render())


async def test_send_streams_reply_with_metadata(app: LLMRouterApp, fake: FakeUpstream) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "hello there")
        screen = chat(pilot)
        (reply,) = screen.view.replies
        assert reply.state == "done"
        assert "received: hello there" in reply.text
        body = reply.query_one(".reply-body", MarkdownBody)
        assert body.query(CodeBlock), "the code block is rendered as Markdown"
        meta = meta_of(reply)
        assert meta.startswith(MODEL + " · ")
        assert "TTFT" in meta and " tok" in meta and "1 attempt" in meta and "demo" in meta
        assert "⚡ cached" not in meta
        (seen,) = fake.requests_for(MODEL)
        assert seen.stream is True
        row = app.runtime.store.get_request(reply.prompt_id)
        assert row is not None
        assert row["status"] == "ok" and row["source"] == "tui"
        assert row["conversation_id"] == screen.conversation_id
        assert screen.prompt.text == ""
        # the conversation is saved and listed
        conversations = app.runtime.store.conversations.list()
        assert [c["title"] for c in conversations] == ["hello there"]
        assert [r["id"] for r in screen.sidebar.rows] == [screen.conversation_id]


async def test_multi_turn_sends_the_conversation_so_far(
    app: LLMRouterApp, fake: FakeUpstream
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "first question")
        await send(pilot, "second question")
        body = fake.requests_for(MODEL)[-1].body
        roles = [m["role"] for m in body["messages"]]
        assert roles == ["user", "assistant", "user"]
        assert body["messages"][0]["content"] == "first question"
        messages = app.runtime.store.conversations.messages(chat(pilot).conversation_id)
        assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]


async def test_fallback_is_shown(app: LLMRouterApp, fake: FakeUpstream) -> None:
    fake.add_fault(Fault(kind="status", status=503, model=MODEL))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "fall back please")
        (reply,) = chat(pilot).view.replies
        assert reply.state == "done"
        meta = meta_of(reply)
        assert f"openai/gpt-oss-120b ↪ fallback from {MODEL}" in meta
        assert "2 attempts" in meta


async def test_total_failure_shows_attempts_and_restores_prompt(
    app: LLMRouterApp, fake: FakeUpstream
) -> None:
    fake.add_fault(Fault(kind="status", status=503))  # every model, every time
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "this will fail")
        screen = chat(pilot)
        (reply,) = screen.view.replies
        assert reply.state == "error"
        error = str(reply.query_one(".reply-error").render())
        assert error.startswith("✗ Request failed")
        for model in (MODEL, "openai/gpt-oss-120b", "gemini-3.5-flash"):
            assert f"• {model} [" in error
        attempt_lines = [line for line in error.splitlines() if line.startswith("•")]
        assert len(attempt_lines) == 3 and all("HTTP 503" in line for line in attempt_lines)
        assert screen.prompt.text == "this will fail"
        assert screen.prompt.has_focus
        # the failed first turn is kept, with its conversation, to be retried
        (conversation,) = app.runtime.store.conversations.list()
        messages = app.runtime.store.conversations.messages(conversation["id"])
        assert [(m["role"], m["status"]) for m in messages] == [
            ("user", "ok"),
            ("assistant", "error"),
        ]
        row = app.runtime.store.get_request(reply.prompt_id)
        assert row is not None and row["status"] == "error"


async def test_streamed_text_shows_in_batches_then_renders_in_full(
    data_dir: Path, quick_config: Path
) -> None:
    long_reply = "# Title\n\n" + " ".join(f"word{i}" for i in range(300)) + "\n\n- a\n- b\n"
    with FakeUpstream(chunk_delay_s=0.02) as slow:
        slow.reply_fn = lambda provider, model, messages: long_reply
        rt = Runtime.open(data_dir=data_dir, demo_upstream=slow.base_url)
        app = LLMRouterApp(rt)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await send(pilot, "tell me everything", wait=False)
            screen = chat(pilot)

            def live_text() -> str:
                replies = screen.view.replies
                return replies[0].body.source if replies and screen.streaming else ""

            live = await until(live_text, "streamed text on screen while the reply streams")
            assert long_reply.startswith(live)
            await settle(pilot)
            (reply,) = screen.view.replies
            assert reply.state == "done"
            assert reply.body.source == long_reply
            assert "• a\n• b" in reply.body.plain_text, "the final render is full Markdown"
        app.runtime.close()


async def test_escape_twice_cancels_streaming(
    data_dir: Path, quick_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_reply = " ".join(f"word{i}" for i in range(400))
    with FakeUpstream(chunk_delay_s=0.05) as slow:
        slow.reply_fn = lambda provider, model, messages: long_reply
        rt = Runtime.open(data_dir=data_dir, demo_upstream=slow.base_url)
        app = LLMRouterApp(rt)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await send(pilot, "tell me everything", wait=False)
            screen = chat(pilot)
            await until(
                lambda: screen.view.replies and screen.view.replies[0]._parts,
                "the first streamed part",
            )
            assert screen.streaming
            await pilot.press("escape")  # one Esc selects the replies; the reply goes on
            assert screen.view.has_focus and screen.streaming
            await pilot.press("escape")  # a second one cancels it
            await settle(pilot)
            (reply,) = screen.view.replies
            assert reply.state == "cancelled"
            assert reply.text and reply.text != long_reply
            assert long_reply.startswith(reply.text.strip())
            assert "cancelled" in meta_of(reply)
            row = app.runtime.store.get_request(reply.prompt_id)
            assert row is not None and row["status"] == "cancelled"
            assert not screen.streaming
        app.runtime.close()


async def test_rating_keys_and_feedback_reach_sqlite_and_logs(app: LLMRouterApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "rate me")
        screen = chat(pilot)
        await pilot.press("escape")
        assert screen.view.has_focus
        (reply,) = screen.view.replies
        assert reply.has_class("-selected")
        store = app.runtime.store
        await pilot.press("4")
        await settle(pilot)  # the rating is written on the store's writer thread
        assert store.get_rating(reply.prompt_id)["rating"] == 4
        assert "★★★★☆ 4/5" in meta_of(reply)
        await pilot.press("2")
        await settle(pilot)
        assert store.get_rating(reply.prompt_id)["rating"] == 2
        await pilot.press("f")
        await pilot.pause()
        assert isinstance(app.screen, FeedbackModal)
        await pilot.press(*"too short")
        await pilot.press("enter")
        await settle(pilot)
        assert not isinstance(app.screen, FeedbackModal)
        rating = store.get_rating(reply.prompt_id)
        assert rating["rating"] == 2 and rating["feedback"] == "too short"
        assert "★★☆☆☆ 2/5" in meta_of(reply)
        logs = store.logs_dir
        lines = [json.loads(x) for x in (logs / "ratings.jsonl").read_text().splitlines()]
        assert [(x["prompt_id"], x["rating"]) for x in lines] == [
            (reply.prompt_id, n) for n in (4, 2, 2)
        ]
        assert lines[-1]["feedback"] == "too short"
        with (logs / "ratings.csv").open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert [row["rating"] for row in rows] == ["4", "2", "2"]
        assert rows[-1]["feedback"] == "too short"
        assert {row["prompt_id"] for row in rows} == {reply.prompt_id}


async def test_copy_puts_reply_on_clipboard(app: LLMRouterApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "copy this")
        await pilot.press("escape", "c")
        (reply,) = chat(pilot).view.replies
        assert app.clipboard == reply.text
        assert "copy this" in app.clipboard


async def test_regenerate_bypasses_cache(app: LLMRouterApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "same question")
        await pilot.press("ctrl+n")
        await send(pilot, "same question")
        screen = chat(pilot)
        (cached,) = screen.view.replies
        assert cached.result is not None and cached.result.from_cache
        assert "⚡ cached" in meta_of(cached)
        old_id = cached.prompt_id
        await pilot.press("escape", "r")
        await settle(pilot)
        (reply,) = screen.view.replies
        assert reply.prompt_id != old_id
        assert reply.result is not None and reply.result.from_cache is False
        assert app.runtime.store.get_request(reply.prompt_id)["from_cache"] is False
        messages = app.runtime.store.conversations.messages(screen.conversation_id)
        assert [m["role"] for m in messages] == ["user", "assistant", "assistant"]
        assert messages[-1]["prompt_id"] == reply.prompt_id


async def test_model_picker_filters_and_switches(app: LLMRouterApp, fake: FakeUpstream) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+o")
        await pilot.pause()
        picker = app.screen
        assert isinstance(picker, ModelPicker)
        assert MODEL in picker.visible_ids and "gemini-3.5-flash" in picker.visible_ids
        await pilot.press(*"120b")
        await pilot.pause()
        assert picker.visible_ids[0] == "openai/gpt-oss-120b"
        assert MODEL not in picker.visible_ids and "gemini-3.5-flash" not in picker.visible_ids
        await pilot.press("enter")
        await pilot.pause()
        screen = chat(pilot)
        assert app.screen is screen
        assert screen.model == app.current_model == "openai/gpt-oss-120b"
        assert "model: openai/gpt-oss-120b" in str(screen.query_one("#top-model").render())
        await send(pilot, "which model?")
        assert fake.requests_for("openai/gpt-oss-120b")
        info = app.runtime.store.conversations.get(screen.conversation_id)
        assert info["model"] == "openai/gpt-oss-120b"


async def test_retired_model_shows_notice_and_status(app: LLMRouterApp) -> None:
    retired = "llama-3.1-8b-instant"
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+o")
        await pilot.pause()
        picker = app.screen
        assert isinstance(picker, ModelPicker)
        status = {r["id"]: r["status"] for r in picker.rows}
        assert status[retired] == f"retired → {MODEL}"
        await pilot.press("escape")
        await app.choose_model(retired)
        await send(pilot, "old scripts still work")
        (reply,) = chat(pilot).view.replies
        assert reply.state == "done" and meta_of(reply).startswith(MODEL + " · ")
        notice = str(reply.query_one(".reply-notice").render())
        assert notice.startswith(f"⚠ {retired} was retired") and f"served by {MODEL}" in notice


async def test_settings_modal_applies_to_requests(app: LLMRouterApp, fake: FakeUpstream) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.press(*"Be brief")
        modal = app.screen
        modal.query_one("#settings-temperature").value = "3"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is modal, "an out-of-range temperature is refused"
        assert "0 to 2" in str(modal.query_one("#settings-error").render())
        modal.query_one("#settings-temperature").value = "0.5"
        modal.query_one("#settings-max-tokens").value = "100"
        await pilot.press("ctrl+s")
        await pilot.pause()
        await send(pilot, "short answer")
        body = fake.requests_for(MODEL)[-1].body
        assert body["messages"][0] == {"role": "system", "content": "Be brief"}
        assert body["temperature"] == 0.5 and body["max_completion_tokens"] == 100
        info = app.runtime.store.conversations.get(chat(pilot).conversation_id)
        assert (info["system"], info["temperature"], info["max_tokens"]) == ("Be brief", 0.5, 100)


async def test_ignore_cache_switch(app: LLMRouterApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "cache me")
        await pilot.press("ctrl+n", "ctrl+r")
        screen = chat(pilot)
        assert screen.ignore_cache is True
        await send(pilot, "cache me")
        (reply,) = screen.view.replies
        assert reply.result is not None and reply.result.from_cache is False


async def test_newline_keys_do_not_send(app: LLMRouterApp, fake: FakeUpstream) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = chat(pilot)
        await pilot.press("a", "ctrl+j", "b")
        assert screen.prompt.text == "a\nb"
        assert fake.requests == [] and screen.view.replies == []


async def test_no_keys_first_run(
    data_dir: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = Runtime.open(data_dir=data_dir)
    assert not rt.settings.demo
    app = LLMRouterApp(rt)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = chat(pilot)
        help_text = str(screen.query_one(KeysHelp).query_one("Markdown").source)
        assert "GROQ_API_KEY" in help_text and "GEMINI_API_KEY" in help_text
        assert str(isolated_env / ".env") in help_text
        assert "demo mode" in help_text
        rows = {r["id"]: r["status"] for r in app.runtime.model_rows()}
        assert rows[MODEL] == "no key"
        await send(pilot, "hello?")
        (reply,) = screen.view.replies
        assert reply.state == "error"
        error = str(reply.query_one(".reply-error").render())
        assert "no API key: set GROQ_API_KEY" in error
        assert screen.prompt.text == "hello?"
        # demo mode from the first-run panel
        await pilot.click("#start-demo")
        await settle(pilot)
        assert app.runtime.settings.demo and app.demo_mode
        assert not screen.query(KeysHelp)
        screen.prompt.clear()
        await send(pilot, "now with the demo")
        assert screen.view.replies[-1].state == "done"
    app.runtime.close()
