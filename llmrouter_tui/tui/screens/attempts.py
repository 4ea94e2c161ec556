"""`d` on a reply: the request behind it and every attempt the router made."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ...core.types import Attempt
from ..format import attempt_lines, duration, tokens


def request_summary(row: Mapping[str, Any]) -> list[str]:
    """The recorded request as `label: value` lines."""
    used = row.get("model_used") or "–"
    lines = [
        f"Requested: {row.get('requested_model') or '–'}",
        f"Answered by: {used}" + (" (fallback)" if row.get("fallback_used") else ""),
        f"Status: {row.get('status')}"
        + (f" · {row.get('error_kind')}" if row.get("error_kind") else ""),
        f"Latency: {duration(row.get('latency_ms'))}"
        + (f" · first token {duration(row.get('ttft_ms'))}" if row.get("ttft_ms") else ""),
        f"Tokens: {tokens(int(row.get('total_tokens') or 0), bool(row.get('tokens_estimated')))}"
        + (" · from the cache" if row.get("from_cache") else ""),
        f"Request id: {row.get('prompt_id')} · {row.get('created_at')}",
    ]
    if row.get("finish_reason"):
        lines.append(f"Finish reason: {row['finish_reason']}")
    if row.get("notice"):
        lines.append(f"Notice: {row['notice']}")
    if row.get("error"):
        lines.append(f"Error: {row['error']}")
    return lines


class AttemptsModal(ModalScreen[None]):
    """Read-only details; Esc (or d, q) closes."""

    CSS_PATH = "attempts.tcss"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,d,q", "close", "Close", id="attempts.close")
    ]

    def __init__(
        self, row: Mapping[str, Any], attempts: list[Attempt], problems: list[str]
    ) -> None:
        super().__init__()
        self.row = row
        self.attempts = attempts
        self.problems = problems

    def compose(self) -> ComposeResult:
        with Vertical(id="attempts-box") as box:
            box.border_title = "Request details"
            box.border_subtitle = "Esc close"
            with VerticalScroll(id="attempts-scroll"):
                yield Static(
                    "\n".join(request_summary(self.row)), id="attempts-summary", markup=False
                )
                if self.problems:
                    yield Static(
                        "\n".join(f"⚠ {p}" for p in self.problems),
                        id="attempts-problems",
                        markup=False,
                    )
                count = len(self.attempts)
                yield Static(
                    f"{count} attempt" + ("" if count == 1 else "s"),
                    classes="attempts-heading",
                    markup=False,
                )
                yield Static(
                    "\n".join(attempt_lines(self.attempts)) or "(none recorded)",
                    id="attempts-list",
                    markup=False,
                )

    def action_close(self) -> None:
        self.dismiss(None)
