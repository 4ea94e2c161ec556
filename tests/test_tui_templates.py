"""Templates screen: grouping, filter, form validation, Use → chat, and file reloading."""

# Fixtures are imported from test_tui_support; tests take them as same-named arguments.
# ruff: noqa: F811

from __future__ import annotations

import json
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
    settle,
)
from textual.widgets import Input, Tree

from llmrouter_tui.testing.fake_upstream import FakeUpstream
from llmrouter_tui.tui.app import LLMRouterApp
from llmrouter_tui.tui.screens.template_review import TemplateReviewModal
from llmrouter_tui.tui.screens.templates import TemplatesScreen

pytestmark = pytest.mark.slow  # every test runs the Textual app (seconds each)


async def open_templates(pilot) -> TemplatesScreen:  # type: ignore[no-untyped-def]
    await pilot.press("f3")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, TemplatesScreen)
    return screen


def tree_labels(screen: TemplatesScreen) -> dict[str, list[str]]:
    tree = screen.query_one("#tpl-tree", Tree)
    return {
        str(node.label).rsplit(" (", 1)[0]: [str(leaf.data) for leaf in node.children]
        for node in tree.root.children
    }


async def test_grouped_filtered_and_prefilled(app: LLMRouterApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_templates(pilot)
        groups = tree_labels(screen)
        expected = {c: [t.id for t in ts] for c, ts in app.runtime.templates.by_category().items()}
        assert groups == expected
        screen.query_one("#tpl-filter", Input).value = "summar"
        await settle(pilot)
        assert tree_labels(screen) == {"productivity": ["summarize"]}
        assert screen.selected_id == "summarize"
        await settle(pilot)
        assert screen.form_values() == {"num_sentences": "3", "text": ""}
        preview = str(screen.query_one("#tpl-preview-text").render())
        assert "{{num_sentences}}" in preview


async def test_form_refuses_empty_variables_then_use_sends_template(
    app: LLMRouterApp, fake: FakeUpstream
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_templates(pilot)
        assert screen.select_template("summarize")
        await settle(pilot)
        screen.query_one("#tplvar-num_sentences", Input).value = "  "
        await pilot.press("ctrl+s")
        await settle(pilot)
        error = str(screen.query_one("#tpl-form-error").render())
        assert error == "✗ Fill in: num_sentences, text"
        assert pilot.app.screen is screen and fake.requests == []

        screen.query_one("#tplvar-num_sentences", Input).value = "2"
        screen.query_one("#tplvar-text", Input).value = "Textual is a TUI framework."
        await pilot.press("ctrl+s")
        await settle(pilot)
        review = app.screen
        assert isinstance(review, TemplateReviewModal), "the expanded prompt is shown first"
        assert fake.requests == []
        await pilot.press("enter")  # Send
        await settle(pilot)
        chat_screen = chat(pilot)
        assert app.screen is chat_screen and app.current_mode == "chat"
        (reply,) = chat_screen.view.replies
        assert reply.state == "done"
        assert reply.user_text == (
            "Summarize the following text in 2 sentences: Textual is a TUI framework."
        )
        row = app.runtime.store.get_request(reply.prompt_id)
        assert row["template_id"] == "summarize"
        last_log = (app.runtime.store.logs_dir / "prompts.jsonl").read_text().splitlines()[-1]
        assert json.loads(last_log)["template_id"] == "summarize"
        info = app.runtime.store.conversations.get(chat_screen.conversation_id)
        assert info["title"] == "Summarizer"


async def test_template_files_are_reloaded_and_broken_file_keeps_last_good_set(
    app: LLMRouterApp, data_dir: Path
) -> None:
    user_file = data_dir / "prompt_templates.toml"
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_templates(pilot)
        user_file.write_text(
            '[haiku]\ncategory = "poetry"\nprompt = "A haiku about {{thing}}"\n', encoding="utf-8"
        )
        screen._check_files()
        await settle(pilot)
        assert tree_labels(screen)["poetry"] == ["haiku"]
        banner = screen.query_one("#tpl-error")
        assert not banner.display

        user_file.write_text("[haiku\nprompt = ", encoding="utf-8")
        screen._check_files()
        await settle(pilot)
        assert banner.display
        text = str(banner.render())
        assert "prompt_templates.toml" in text and "last good set" in text
        assert tree_labels(screen)["poetry"] == ["haiku"]
        assert "haiku" in app.runtime.templates
