"""Command palette (ctrl+p): every action of the app, plus one entry per model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

from .router_app import router_app


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """A palette entry: runs `action` on the app, or on the base screen of a mode
    ("chat", "templates", "analytics") after switching to it."""

    title: str
    help: str
    action: str
    mode: str | None = None


PALETTE: tuple[CommandSpec, ...] = (
    CommandSpec("Go to chat", "Switch to the chat screen (F2)", "switch_mode('chat')"),
    CommandSpec(
        "Go to templates", "Switch to the templates screen (F3)", "switch_mode('templates')"
    ),
    CommandSpec(
        "Go to analytics", "Switch to the analytics screen (F4)", "switch_mode('analytics')"
    ),
    CommandSpec("Help: key bindings", "Every key binding (F1)", "help"),
    CommandSpec(
        "New conversation", "Start an empty conversation (ctrl+n)", "new_conversation", "chat"
    ),
    CommandSpec(
        "Toggle conversation list", "Show or hide the sidebar (ctrl+b)", "toggle_sidebar", "chat"
    ),
    CommandSpec(
        "Search conversations",
        "Search titles and messages (ctrl+f)",
        "search_conversations",
        "chat",
    ),
    CommandSpec(
        "Rename conversation", "Rename the open conversation", "rename_conversation", "chat"
    ),
    CommandSpec(
        "Delete conversation", "Delete the open conversation", "delete_conversation", "chat"
    ),
    CommandSpec("Choose model", "Filterable model list with status (ctrl+o)", "pick_model", "chat"),
    CommandSpec(
        "Compare two models",
        "Send the prompt to the current model and a second one, side by side; vote (ctrl+k)",
        "compare",
        "chat",
    ),
    CommandSpec(
        "Toggle blind compare",
        "Compares shuffle the sides and hide the models' names until you vote (remembered)",
        "toggle_blind_compare",
    ),
    CommandSpec(
        "Conversation settings",
        "System prompt, temperature, max tokens (ctrl+s)",
        "conversation_settings",
        "chat",
    ),
    CommandSpec(
        "Toggle ignore cache", "Bypass the reply cache (ctrl+r)", "toggle_ignore_cache", "chat"
    ),
    CommandSpec(
        "Cancel streaming reply",
        "Stop the reply being streamed; its text so far is kept (ctrl+c, or Esc twice)",
        "cancel_reply",
        "chat",
    ),
    CommandSpec(
        "Select latest reply", "Leave the prompt to rate, copy… (Esc)", "select_latest", "chat"
    ),
    CommandSpec("Focus prompt", "Back to the prompt box (i)", "focus_prompt", "chat"),
    *(
        CommandSpec(
            f"Rate reply {n}", f"Rate the selected reply {n}/5 (key {n})", f"rate({n})", "chat"
        )
        for n in range(1, 6)
    ),
    CommandSpec(
        "Feedback on reply", "Rate and comment on the selected reply (f)", "feedback", "chat"
    ),
    CommandSpec("Copy reply", "Copy the selected reply to the clipboard (c)", "copy_reply", "chat"),
    CommandSpec(
        "Regenerate reply",
        "Ask again with the model selected now, bypassing the cache (r)",
        "regenerate",
        "chat",
    ),
    CommandSpec(
        "Edit and resend prompt",
        "Change the selected turn's prompt and send it again; the old branch is kept (E)",
        "edit_turn",
        "chat",
    ),
    CommandSpec(
        "Request details",
        "Every attempt behind the selected reply: model, outcome, reason, time (d)",
        "attempt_details",
        "chat",
    ),
    CommandSpec(
        "Older version of reply",
        "Show the previous version of the selected turn ([)",
        "alternative(-1)",
        "chat",
    ),
    CommandSpec(
        "Newer version of reply",
        "Show the next version of the selected turn (])",
        "alternative(1)",
        "chat",
    ),
    CommandSpec(
        "Copy code block",
        "Copy one code block of the selected reply (y, then its number)",
        "copy_code",
        "chat",
    ),
    CommandSpec(
        "Scroll tables right",
        "Show more columns of the reply's wide tables (→)",
        "scroll_tables(1)",
        "chat",
    ),
    CommandSpec(
        "Scroll tables left",
        "Back to the first columns of the reply's tables (←)",
        "scroll_tables(-1)",
        "chat",
    ),
    CommandSpec(
        "Export conversation",
        "Write the open conversation to a Markdown file (e)",
        "export_conversation",
        "chat",
    ),
    CommandSpec("Start demo mode", "Use a built-in fake provider (no keys needed)", "start_demo"),
    CommandSpec(
        "Use template", "Send the selected template to the chat (ctrl+s)", "use", "templates"
    ),
    CommandSpec(
        "Filter templates", "Focus the template filter (ctrl+f)", "focus_filter", "templates"
    ),
    CommandSpec(
        "Reload templates", "Re-read prompt_templates.toml files (ctrl+r)", "reload", "templates"
    ),
    CommandSpec("Refresh analytics", "Re-read the stats (ctrl+r)", "refresh", "analytics"),
    CommandSpec(
        "Show leaderboard",
        "Models ranked by your compares and ratings, overall or per template (l)",
        "focus_leaderboard",
        "analytics",
    ),
)


class LLMRouterCommands(Provider):
    """Offers PALETTE plus "Use model: …" for every chat model in the catalog."""

    def _entries(self) -> list[tuple[str, str, Callable[[], Any]]]:
        app = router_app(self.app)
        entries: list[tuple[str, str, Callable[[], Any]]] = [
            (spec.title, spec.help, partial(app.run_palette_command, spec)) for spec in PALETTE
        ]
        for row in app.runtime.model_rows():
            # retired ids are in the model picker, which offers their replacement
            if row.get("kind", "chat") != "chat" or row.get("catalog_status") == "retired":
                continue
            entries.append(
                (
                    f"Use model: {row['id']}",
                    f"{row['provider']} · {row['status']}",
                    partial(app.choose_model, row["id"]),
                )
            )
        return entries

    async def discover(self) -> Hits:
        for title, help_text, command in self._entries():
            yield DiscoveryHit(title, command, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, command in self._entries():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), command, help=help_text)
