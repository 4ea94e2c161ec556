"""SVG snapshots of the three screens at 100×30 over fixed seeded data.

Update after an intended UI change: pytest tests/test_tui_snapshots.py --snapshot-update
(then regenerate docs/screenshots with `python -m llmrouter_tui.tui.screenshots`).
"""

# Fixtures are imported from test_tui_support; tests take them as same-named arguments.
# ruff: noqa: F811

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_tui_support import isolated_env  # noqa: F401 - fixture

from llmrouter_tui.tui.app import LLMRouterApp
from llmrouter_tui.tui.screenshots import SCREENS, SIZE, seeded_runtime, show_screen

pytestmark = pytest.mark.slow  # every test renders the Textual app (seconds each)


@pytest.mark.parametrize("screen", SCREENS)
def test_screen_snapshot(
    screen: str, snap_compare: Any, tmp_path: Path, isolated_env: Path
) -> None:
    with seeded_runtime(tmp_path / "data") as runtime:
        app = LLMRouterApp(runtime)
        assert snap_compare(
            app, terminal_size=SIZE, run_before=lambda pilot: show_screen(pilot, screen)
        )
