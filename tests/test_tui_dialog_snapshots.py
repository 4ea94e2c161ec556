"""SVG snapshots of every dialog (and the templates and analytics screens) at 80×24 and
100×30, over the fixed seeded data of the screenshots. At 80×24 nothing may be cut.

Update after an intended UI change: pytest tests/test_tui_dialog_snapshots.py --snapshot-update
"""

# Fixtures are imported from test_tui_support; tests take them as same-named arguments.
# ruff: noqa: F811

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from test_tui_support import isolated_env  # noqa: F401 - fixture
from textual.pilot import Pilot

from llmrouter_tui.core.catalog import Catalog
from llmrouter_tui.tui.app import LLMRouterApp
from llmrouter_tui.tui.screens.templates import TemplatesScreen
from llmrouter_tui.tui.screenshots import seeded_runtime, settle, show_screen

pytestmark = pytest.mark.slow  # every test renders the Textual app (seconds each)

#: Statuses that depend on the date (deprecations, shutdowns) are shown as on this day.
SNAPSHOT_DAY = dt.date(2026, 6, 1)
SIZES = {"80x24": (80, 24), "100x30": (100, 30)}


async def _chat_keys(pilot: Pilot[None], *keys: str) -> None:
    await settle(pilot)
    await pilot.press(*keys)
    await settle(pilot)


async def _confirm(pilot: Pilot[None]) -> None:
    await settle(pilot)
    pilot.app.chat_screen.action_delete_conversation()  # type: ignore[attr-defined]
    await settle(pilot)


async def _rename(pilot: Pilot[None]) -> None:
    await settle(pilot)
    pilot.app.chat_screen.action_rename_conversation()  # type: ignore[attr-defined]
    await settle(pilot)


async def _template_review(pilot: Pilot[None]) -> None:
    await show_screen(pilot, "templates")
    screen = pilot.app.screen
    assert isinstance(screen, TemplatesScreen)
    screen.query_one("#tplvar-text").value = "Textual is a TUI framework for Python."  # type: ignore[attr-defined]
    await pilot.press("ctrl+s")
    await settle(pilot)


async def _screen(name: str, pilot: Pilot[None]) -> None:
    await show_screen(pilot, name)


# Dialogs that need no reply open over a new, empty conversation: their snapshots do not
# change with the way replies are drawn.
DIALOGS: dict[str, Callable[[Pilot[None]], Awaitable[None]]] = {
    "model_picker": lambda pilot: _chat_keys(pilot, "ctrl+n", "ctrl+o"),
    "retired_model": lambda pilot: _chat_keys(pilot, "ctrl+n", "ctrl+o", *"llama-3.1-8b", "enter"),
    "settings": lambda pilot: _chat_keys(pilot, "ctrl+n", "ctrl+s"),
    "help": lambda pilot: _chat_keys(pilot, "ctrl+n", "f1"),
    "feedback": lambda pilot: _chat_keys(pilot, "escape", "f"),
    "attempts": lambda pilot: _chat_keys(pilot, "escape", "d"),
    "confirm": _confirm,
    "rename": _rename,
    "template_review": _template_review,
    "templates": lambda pilot: _screen("templates", pilot),
    "analytics": lambda pilot: _screen("analytics", pilot),
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dialog", DIALOGS)
def test_dialog_snapshot(
    dialog: str, size: str, snap_compare: Any, tmp_path: Path, isolated_env: Path
) -> None:
    with seeded_runtime(tmp_path / "data") as runtime:
        settings = runtime.settings
        runtime.catalog = Catalog(settings.models, settings.providers, today=SNAPSHOT_DAY)
        app = LLMRouterApp(runtime)
        assert snap_compare(app, terminal_size=SIZES[size], run_before=DIALOGS[dialog])
