"""Export from the app: ask for a file name, write the conversation as Markdown there.

The same document as `llmrouter-tui export` (`core.export`); an existing file is never
overwritten from the app (choose another name, or use the command with --force).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from textual.screen import Screen

from ..core.errors import RouterError
from ..core.export import export_markdown, write_export
from .router_app import router_app


def default_name(title: str, conversation_id: str) -> str:
    """`iso-date-regex-1a2b3c4d.md` from the title and the id."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40].rstrip("-")
    return f"{slug or 'conversation'}-{conversation_id[:8]}.md"


def ask_and_export(screen: Screen[Any], conversation_id: str, title: str) -> None:
    """Ask where to write the conversation, then write it there (in a worker)."""
    from .screens.text_prompt import TextPromptModal

    def chosen(name: str | None) -> None:
        if name and name.strip():
            path = Path(name.strip()).expanduser()
            screen.run_worker(_export(screen, conversation_id, path), group="export")

    screen.app.push_screen(
        TextPromptModal(
            "Export conversation to Markdown",
            "File (relative to the directory the app was started in)",
            default_name(title, conversation_id),
        ),
        chosen,
    )


async def _export(screen: Screen[object], conversation_id: str, path: Path) -> None:
    store = router_app(screen).runtime.store
    try:
        text = await asyncio.to_thread(export_markdown, store, conversation_id)
        await asyncio.to_thread(write_export, path, text)
    except FileExistsError:
        screen.notify(
            f"{path} already exists: export again with another name.",
            title="Not exported",
            severity="warning",
        )
        return
    except (OSError, RouterError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        screen.notify(f"Cannot write {path}: {reason}", title="Not exported", severity="error")
        return
    screen.notify(f"Wrote {path.resolve()}", title="Conversation exported")
