"""App-wide behaviour: layering, start-up errors, palette and help coverage, small terminals,
and the formatting of reply metadata."""

# Fixtures are imported from test_tui_support; tests take them as same-named arguments.
# ruff: noqa: F811

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from test_tui_support import (  # noqa: F401 - fixtures
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
from textual.binding import Binding

import llmrouter_tui.tui as tui_package
from llmrouter_tui.core.types import Attempt
from llmrouter_tui.tui import main as tui_main
from llmrouter_tui.tui.app import LLMRouterApp
from llmrouter_tui.tui.commands import PALETTE
from llmrouter_tui.tui.format import ReplyMeta, attempt_lines, meta_line
from llmrouter_tui.tui.screens.analytics import AnalyticsScreen
from llmrouter_tui.tui.screens.chat import ChatScreen
from llmrouter_tui.tui.screens.help import SCROLLING, HelpScreen, binding_sections
from llmrouter_tui.tui.screens.templates import TemplatesScreen
from llmrouter_tui.tui.widgets.conversation_view import ConversationView

IMPORT_ALL = """
import json, pkgutil, importlib, sys
import llmrouter_tui.tui as pkg
for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
    importlib.import_module(info.name)
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.slow
def test_tui_modules_load_no_server_and_no_provider_sdk() -> None:
    # Which imports a tui module may write is tests/test_layering.py's static check; this is
    # what it cannot see: that loading every tui module (and the core it reaches) leaves the
    # provider SDKs to be imported lazily, when a request first needs one.
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL], check=True, capture_output=True, text=True
    ).stdout
    modules = json.loads(out)
    assert "llmrouter_tui.tui.app" in modules
    loaded = [
        m
        for m in modules
        if m.startswith("llmrouter_tui.server")
        or m.split(".")[0] in {"groq", "tiktoken", "openai"}
        or m.startswith("google.genai")
    ]
    assert loaded == [], "the app must start without the server or provider SDKs"


def _action_name(action: str) -> str:
    return re.sub(r"^(app|screen)\.", "", action).split("(")[0]


def test_palette_offers_every_screen_action() -> None:
    offered = {_action_name(spec.action) for spec in PALETTE}
    navigation_only = {"select_previous", "select_next", "leave_prompt", "quit"}
    for cls in (LLMRouterApp, ChatScreen, ConversationView, TemplatesScreen, AnalyticsScreen):
        for binding in cls.BINDINGS:
            name = _action_name(binding.action)  # type: ignore[union-attr]
            if name not in navigation_only:
                assert name in offered, f"{cls.__name__}: {binding.action} is not in the palette"


def _declared_descriptions() -> list[str]:
    """What the help should list: every binding declared on a class of the tui package (but
    the help's own), the help-only scrolling keys, and the command palette."""
    declared: list[str] = ["Command palette", *(b.description for b in SCROLLING)]
    for info in pkgutil.walk_packages(tui_package.__path__, tui_package.__name__ + "."):
        module = importlib.import_module(info.name)
        for cls in vars(module).values():
            if not (isinstance(cls, type) and cls.__module__ == module.__name__):
                continue
            if cls is HelpScreen or "BINDINGS" not in vars(cls):
                continue
            for item in vars(cls)["BINDINGS"]:
                if isinstance(item, Binding):
                    if not item.system:
                        declared.append(item.description or item.action)
                else:
                    declared.append(item[2] if len(item) > 2 else item[1])
    return declared


def test_every_binding_has_id_and_description() -> None:
    app = LLMRouterApp.__new__(LLMRouterApp)
    for section, bindings in binding_sections(app):
        for binding in bindings:
            if binding.action == "command_palette":
                continue
            assert binding.id and binding.description, (section, binding.key)


@pytest.mark.slow
async def test_help_lists_bindings_and_palette_runs_commands(app: LLMRouterApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f1")
        await pilot.pause()
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        rows = help_screen.binding_rows()
        # Against what the classes declare, found independently of binding_sections().
        assert Counter(action for _key, action in rows) == Counter(_declared_descriptions())
        keys = {action: key for key, action in rows}
        assert (keys["Help"], keys["Quit"], keys["Command palette"]) == ("f1", "^q", "^p")
        actions = {action for _key, action in rows}
        assert {"Send", "Newline", "Rate", "Copy", "Regenerate", "Model", "Edit"} <= actions
        assert any("ctrl+j" in key or "^j" in key for key, _action in rows)
        await pilot.press("escape")
        await pilot.pause()
        # the palette finds and runs an action
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"analytics")
        await palette_hit(pilot, "analytics")
        await pilot.press("enter")
        await settle(pilot)
        assert app.current_mode == "analytics"
        # and model entries
        await app.choose_model("gemini-3.5-flash")
        assert chat(pilot).model == app.current_model == "gemini-3.5-flash"


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["chat", "templates", "analytics"])
async def test_screens_fit_80x24(app: LLMRouterApp, mode: str) -> None:
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await app.switch_mode(mode)
        await settle(pilot)
        screen = app.screen
        assert screen.size == (80, 24)
        if mode == "chat":
            assert not chat(pilot).sidebar.display
            prompt = chat(pilot).prompt.region
            assert prompt.bottom <= 23 and prompt.height >= 3
        elif mode == "templates":
            assert screen.query_one("#tpl-use").region.bottom <= 23
        else:
            cards = screen.query("StatCard")
            assert all(card.region.width >= 11 for card in cards)


def test_run_app_reports_bad_config_without_traceback(
    tmp_path: Path, isolated_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[routing\n", encoding="utf-8")
    code = tui_main.run_app(argparse.Namespace(config=str(bad), data_dir=str(tmp_path), demo=False))
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("llmrouter-tui: ") and "bad.toml" in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_run_app_reports_unusable_data_dir(
    tmp_path: Path, isolated_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x", encoding="utf-8")
    code = tui_main.run_app(argparse.Namespace(config=None, data_dir=str(blocker), demo=False))
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("llmrouter-tui: ") and "Traceback" not in err


def test_run_app_demo_runs_and_closes(
    tmp_path: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, object] = {}

    def fake_run(self: LLMRouterApp) -> None:
        seen["demo"] = self.runtime.settings.demo
        seen["runtime"] = self.runtime

    monkeypatch.setattr(LLMRouterApp, "run", fake_run)
    code = tui_main.run_app(argparse.Namespace(config=None, data_dir=str(tmp_path), demo=True))
    assert code == 0 and seen["demo"] is True
    with pytest.raises(Exception, match="closed"):
        seen["runtime"].store.stats()  # type: ignore[attr-defined]


def test_meta_line_formats() -> None:
    meta = ReplyMeta(
        model_used="openai/gpt-oss-120b",
        requested_model="openai/gpt-oss-20b",
        fallback_used=True,
        notice=None,
        latency_ms=1234.0,
        ttft_ms=98.0,
        total_tokens=1500,
        estimated=True,
        from_cache=True,
        attempts=2,
        status="ok",
    )
    assert meta_line(meta, 4) == (
        "openai/gpt-oss-120b ↪ fallback from openai/gpt-oss-20b · 1.23 s · TTFT 98 ms · "
        "~1,500 tok (est.) · ⚡ cached · 2 attempts · ★★★★☆ 4/5"
    )
    plain = ReplyMeta("m", "m", False, None, 10.0, None, 7, False, False, 1, "ok", demo=True)
    assert meta_line(plain) == "m · 10 ms · 7 tok · 1 attempt · demo"
    lines = attempt_lines(
        [
            Attempt("a", "groq", "error", status=503, message="HTTP 503: busy", ms=12.0),
            Attempt("b", "gemini", "skipped_no_key", message="no API key: set GEMINI_API_KEY"),
        ]
    )
    assert lines == [
        "• a [groq] error — HTTP 503: busy (12 ms)",
        "• b [gemini] skipped_no_key — no API key: set GEMINI_API_KEY",
    ]
