"""Shared fixtures and helpers for the TUI tests (no tests here)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.command import CommandList, CommandPalette
from textual.pilot import Pilot
from waiting import until

from llmrouter_tui.core.runtime import Runtime
from llmrouter_tui.testing.fake_upstream import FakeUpstream
from llmrouter_tui.tui.app import LLMRouterApp
from llmrouter_tui.tui.main import MAX_FPS
from llmrouter_tui.tui.screens.chat import ChatScreen
from llmrouter_tui.tui.screenshots import settle

__all__ = ["settle"]

SIZE = (100, 30)
MODEL = "openai/gpt-oss-20b"  # the default model; its fallbacks: gpt-oss-120b, gemini-3.5-flash
KEY_VARS = ("GROQ_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "LLMROUTER_CONFIG")

QUICK_CONFIG = """
[routing]
max_retries = 0
backoff_initial_s = 0.01
first_token_timeout_s = 1
stream_idle_timeout_s = 2
cooldown_failures = 50
"""


@pytest.fixture
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No API keys, no .env and no llmrouter.toml from the developer's machine."""
    for name in KEY_VARS:
        monkeypatch.delenv(name, raising=False)
    # run_app sets Textual's frame rate for its process; here it is undone after the test.
    monkeypatch.setenv("TEXTUAL_FPS", MAX_FPS)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture
def quick_config(tmp_path: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "llmrouter.toml"
    path.write_text(QUICK_CONFIG, encoding="utf-8")
    monkeypatch.setenv("LLMROUTER_CONFIG", str(path))
    return path


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def runtime(data_dir: Path, fake: FakeUpstream, quick_config: Path) -> Iterator[Runtime]:
    rt = Runtime.open(data_dir=data_dir, demo_upstream=fake.base_url)
    yield rt
    rt.close()


@pytest.fixture
def app(runtime: Runtime) -> Iterator[LLMRouterApp]:
    application = LLMRouterApp(runtime)
    yield application
    application.runtime.close()


def chat(pilot: Pilot[None]) -> ChatScreen:
    screen = pilot.app.chat_screen  # type: ignore[attr-defined]
    assert isinstance(screen, ChatScreen)
    return screen


async def palette_hit(pilot: Pilot[None], text: str) -> None:
    """Wait until the open command palette highlights a command containing `text`.

    Its search runs in a worker, so Enter pressed before a hit is up would do nothing.
    """

    def highlighted() -> str:
        palette = pilot.app.screen
        if not isinstance(palette, CommandPalette):
            return ""
        commands = palette.query_one(CommandList)
        if commands.highlighted is None:
            return ""
        return str(commands.get_option_at_index(commands.highlighted).prompt)

    await until(lambda: text.lower() in highlighted().lower(), f"a palette hit for {text!r}")


async def send(pilot: Pilot[None], text: str, *, wait: bool = True) -> None:
    """Put `text` in the prompt and press Enter (and wait for the reply)."""
    screen = chat(pilot)
    screen.prompt.focus()
    screen.prompt.set_text(text)
    await pilot.press("enter")
    if wait:
        await settle(pilot)
