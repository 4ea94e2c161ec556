"""The chat screen's reply stream across a restart: when a regenerated continuation diverges
from the text shown, the reply starts over, and only the new answer is shown and saved (also
when it is cancelled midway). Runs the real router against the fake upstream."""

# Fixtures are imported from test_tui_support; tests take them as same-named arguments.
# ruff: noqa: F811

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import fake_settings
from test_tui_support import SIZE, chat, isolated_env, send, settle  # noqa: F401 - fixtures
from waiting import until

from llmrouter_tui.core.runtime import Runtime
from llmrouter_tui.testing.fake_upstream import FakeUpstream, Fault
from llmrouter_tui.tui.app import LLMRouterApp

pytestmark = pytest.mark.slow  # every test runs the Textual app (seconds each)

#: An OpenAI-compatible model with no prefill: a broken answer is regenerated and matched
#: against the text shown, so a model that answers differently each time diverges.
LOCAL = "llama3.2"
WORDS = 400


def changing(upstream: FakeUpstream) -> None:
    """Each call of the fake answers differently (a model that does not repeat itself)."""
    calls = itertools.count()

    def reply(provider: str, model: str, messages: list[dict[str, str]]) -> str:
        return f"Answer number {next(calls)}: " + " ".join(["words"] * WORDS)

    upstream.reply_fn = reply


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream(chunk_delay_s=0.01) as fake:
        changing(fake)
        # the first answer breaks after a few chunks; its regeneration diverges at once
        fake.add_fault(Fault(kind="cut", model=LOCAL, after_chunks=4, times=1))
        yield fake


@pytest.fixture
def app(upstream: FakeUpstream, tmp_path: Path, isolated_env: Path) -> Iterator[LLMRouterApp]:
    # timeouts a busy test machine does not reach: the stream is paced by the fake on purpose
    settings = fake_settings(
        upstream.base_url,
        tmp_path / "data",
        first_token_timeout_s=10,
        stream_idle_timeout_s=10,
        attempt_timeout_s=60,
        total_timeout_s=60,
    )
    runtime = Runtime(settings)
    application = LLMRouterApp(runtime)
    yield application
    runtime.close()


def saved_replies(app: LLMRouterApp, conversation_id: str | None) -> list[tuple[str, str]]:
    assert conversation_id is not None
    messages = app.runtime.store.conversations.messages(conversation_id)
    return [(m["status"], m["content"]) for m in messages if m["role"] == "assistant"]


async def test_a_diverged_continuation_restarts_the_reply_and_only_the_new_answer_is_saved(
    app: LLMRouterApp,
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = chat(pilot)
        screen.set_model(LOCAL)
        await send(pilot, "answer me", wait=False)
        await until(lambda: bool(screen.view.replies), "the reply to appear")
        (reply,) = screen.view.replies
        await until(lambda: reply.state == "done", "the restarted reply to end")
        assert reply.text.startswith("Answer number 1: ") and "number 0" not in reply.text
        assert reply.text.count("words") == WORDS
        await until(lambda: reply.persisted, "the reply to be saved")
        assert saved_replies(app, screen.conversation_id) == [("ok", reply.text)]


async def test_a_reply_cancelled_after_a_restart_saves_only_the_new_answers_text(
    app: LLMRouterApp,
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = chat(pilot)
        screen.set_model(LOCAL)
        await send(pilot, "answer me", wait=False)
        await until(lambda: bool(screen.view.replies), "the reply to appear")
        (reply,) = screen.view.replies

        def restarted_and_streaming() -> bool:
            shown = "".join(reply._parts)
            return shown.startswith("Answer number 1: ") and shown.count("words") >= 5

        await until(restarted_and_streaming, "the new answer to stream")
        assert screen.streaming
        await pilot.press("ctrl+c")
        await until(lambda: reply.state == "cancelled", "the reply to show as cancelled")
        await until(lambda: reply.persisted, "the partial reply to be saved")
        ((status, saved),) = saved_replies(app, screen.conversation_id)
        assert status == "cancelled"
        assert saved.startswith("Answer number 1: ") and "number 0" not in saved
        assert saved.count("words") < WORDS  # cancelled midway: a part of the answer
