"""What the app remembers between runs: theme, sidebar choice and blind compares
(`<data dir>/tui.json`).

(Not `core.preferences`, which records which of two replies a user preferred.)
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

UI_STATE_FILE = "tui.json"


@dataclass(frozen=True, slots=True)
class UIState:
    """`sidebar` None: shown when the terminal is wide enough; True/False: the user's choice.
    `blind_compare`: compares hide the models' names until the vote."""

    theme: str | None = None
    sidebar: bool | None = None
    blind_compare: bool = False

    def updated(self, **changes: Any) -> UIState:
        return replace(self, **changes)


def load_ui_state(data_dir: Path) -> UIState:
    """The saved state; defaults for a missing, unreadable or foreign file."""
    try:
        raw = json.loads((data_dir / UI_STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return UIState()
    if not isinstance(raw, dict):
        return UIState()
    theme = raw.get("theme")
    sidebar = raw.get("sidebar")
    blind = raw.get("blind_compare")
    return UIState(
        theme=theme if isinstance(theme, str) else None,
        sidebar=sidebar if isinstance(sidebar, bool) else None,
        blind_compare=blind if isinstance(blind, bool) else False,
    )


def save_ui_state(data_dir: Path, state: UIState) -> None:
    """Write atomically (a crash never leaves half a file). Raises OSError."""
    data = asdict(state)
    fd, tmp = tempfile.mkstemp(prefix=".tui-", suffix=".json", dir=data_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
        os.replace(tmp, data_dir / UI_STATE_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
