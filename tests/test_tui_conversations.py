"""Conversation sidebar: new, open, search, rename, delete, and reopening the last one."""

# Fixtures are imported from test_tui_support; tests take them as same-named arguments.
# ruff: noqa: F811

from __future__ import annotations

from pathlib import Path

import pytest
from test_tui_support import (  # noqa: F401 - fixtures
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
from textual.widgets import OptionList

from llmrouter_tui.core.runtime import Runtime
from llmrouter_tui.testing.fake_upstream import FakeUpstream
from llmrouter_tui.tui.app import LLMRouterApp
from llmrouter_tui.tui.screens.confirm import ConfirmModal
from llmrouter_tui.tui.screens.text_prompt import TextPromptModal

pytestmark = pytest.mark.slow  # every test runs the Textual app (seconds each)


def user_texts(pilot) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.user_text for r in chat(pilot).view.replies]


async def test_new_open_search_rename_delete(app: LLMRouterApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = chat(pilot)
        assert screen.sidebar.display, "the sidebar starts open at 100 columns"
        await send(pilot, "first topic alpha")
        first_id = screen.conversation_id
        await pilot.press("ctrl+n")
        await settle(pilot)
        assert screen.conversation_id is None and screen.view.replies == []
        await send(pilot, "second topic beta")
        second_id = screen.conversation_id
        assert first_id and second_id and first_id != second_id
        await settle(pilot)
        assert [r["id"] for r in screen.sidebar.rows] == [second_id, first_id]

        # search by message text
        await pilot.press("ctrl+f")
        await pilot.press(*"alpha")
        await settle(pilot)
        assert [r["id"] for r in screen.sidebar.rows] == [first_id]

        # open it from the list
        await pilot.press("enter")  # search box → list
        option_list = screen.sidebar.query_one("#conv-list", OptionList)
        assert option_list.has_focus
        await pilot.press("enter")
        await settle(pilot)
        assert screen.conversation_id == first_id
        assert user_texts(pilot) == ["first topic alpha"]
        assert screen.view.replies[0].meta is not None  # metadata comes back from SQLite

        # rename from the list
        option_list.focus()
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, TextPromptModal)
        app.screen.query_one("#text-prompt-input").value = "Alpha notes"
        await pilot.press("enter")
        await settle(pilot)
        assert app.runtime.store.conversations.get(first_id)["title"] == "Alpha notes"

        # delete the open conversation (after confirming)
        option_list.focus()
        await pilot.press("delete")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("y")
        await settle(pilot)
        remaining = app.runtime.store.conversations.list()
        assert [c["id"] for c in remaining] == [second_id]
        assert screen.conversation_id is None and screen.view.replies == []

        # clearing the search lists the rest
        search = screen.sidebar.query_one("#conv-search")
        search.value = ""
        await settle(pilot)
        assert [r["id"] for r in screen.sidebar.rows] == [second_id]


async def test_app_reopens_last_conversation(
    data_dir: Path, fake: FakeUpstream, quick_config: Path
) -> None:
    runtime = Runtime.open(data_dir=data_dir, demo_upstream=fake.base_url)
    app = LLMRouterApp(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "remember me")
        await pilot.press("escape", "5")
        conversation_id = chat(pilot).conversation_id
    app.runtime.close()

    runtime = Runtime.open(data_dir=data_dir, demo_upstream=fake.base_url)
    app = LLMRouterApp(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = chat(pilot)
        assert screen.conversation_id == conversation_id
        (reply,) = screen.view.replies
        assert reply.user_text == "remember me" and reply.rating == 5
        assert "★★★★★ 5/5" in str(reply.query_one(".reply-meta").render())
        # and continues it with the history
        await send(pilot, "and then?")
        body = fake.requests[-1].body
        assert body["messages"][0]["content"] == "remember me"
    app.runtime.close()
