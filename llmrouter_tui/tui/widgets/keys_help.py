"""First-run explanation shown while no provider has an API key."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Button, Markdown

from ...core.config import Settings
from .._css import sibling_tcss


def keys_help_markdown(settings: Settings, cwd: Path | None = None) -> str:
    """What to set, and where the `.env` file is read from, as Markdown."""
    names: list[str] = []
    for provider in settings.providers.values():
        if provider.key_required and provider.api_key_env and not provider.has_key:
            names.append(f"`{provider.api_key_env}` ({provider.name})")
    where = (
        f"`{settings.env_file}`"
        if settings.env_file
        else f"`{(cwd or Path.cwd()) / '.env'}` (not found; create it)"
    )
    lines = [
        "### No API keys found",
        "",
        "Models are shown as *no key* until you set one of:",
        "",
        *[f"- {name}" for name in names],
        "",
        f"in your shell, or in the `.env` file read at start-up from {where}. "
        "Then restart llmrouter-tui.",
        "",
        "Free keys: console.groq.com/keys and aistudio.google.com/apikey.",
        "",
        "Or try **demo mode**: a built-in fake provider that streams answers without "
        "any network (also `llmrouter-tui --demo`).",
    ]
    return "\n".join(lines)


class KeysHelp(Vertical):
    """Explains which variables to set and offers demo mode."""

    DEFAULT_CSS = sibling_tcss(__file__)

    def __init__(self, settings: Settings) -> None:
        super().__init__(id="keys-help")
        self._settings = settings

    def compose(self) -> ComposeResult:
        yield Markdown(keys_help_markdown(self._settings))
        yield Button("Try demo mode", id="start-demo", variant="primary", compact=True)
