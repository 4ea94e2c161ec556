"""A reply in the chat: ReplyView plus what the chat screen adds to it.

The screen adds a note at the end of the metadata line (which model a regeneration used,
"version 2/3" when the turn has other versions), replaces the notices (a retirement notice
once per conversation, a rejected API key), and shows the error of a failed turn read back
from the database. The metadata line also shows what the reply cost (`$0.0004`, `~` when
the tokens were estimated, `saved $…` for a cache hit) and, under it, why `auto` chose the
model.
"""

from __future__ import annotations

from typing import Any

from ..evidence import ReplyCost, cost_text
from .reply import ReplyView


class ChatReply(ReplyView):
    """A ReplyView with a note on its metadata line and settable notices."""

    def __init__(
        self,
        *args: Any,
        note: str | None = None,
        stored_error: str | None = None,
        cost: ReplyCost | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.note = note
        #: Cost and auto's reason of a reply read back from the database (a live reply's
        #: come from its Result).
        self.cost = cost
        #: The warning line under the reply (None: whatever the reply itself shows).
        self.notices: list[str] | None = None
        self._stored_error = stored_error

    @property
    def reply_cost(self) -> ReplyCost | None:
        """What the reply shown cost (None: unknown)."""
        if self.result is not None:
            return ReplyCost.from_result(self.result)
        return self.cost

    def _meta_text(self) -> str:
        text = super()._meta_text()
        cost = self.reply_cost if self.state == "done" else None
        spent = cost_text(cost) if cost is not None else None
        if spent:
            text = f"{text} · {spent}" if text else spent
        note = self.note
        if cost is not None and cost.compare_id and "⚖" not in (note or ""):
            note = " · ".join(n for n in ("⚖ from a compare", note) if n)
        if note:
            text = f"{text} · {note}" if text else note
        if cost is not None and cost.auto_reason:
            text = f"{text}\n{cost.auto_reason}" if text else cost.auto_reason
        return text

    def on_mount(self) -> None:
        # Textual runs ReplyView.on_mount after this one (it resets the notice and error):
        # what the chat set is shown once that has run.
        self.call_later(self._show_extras)

    def _show_extras(self) -> None:
        if self.notices is not None:
            self._set_notice(" ".join(self.notices) or None)
        if self._stored_error:
            self.show_error(self._stored_error)

    def set_note(self, note: str | None) -> None:
        """Show `note` at the end of the metadata line (None removes it)."""
        self.note = note
        if self.is_mounted and self.state not in ("pending", "streaming"):
            self._set_meta()

    def set_notices(self, notices: list[str]) -> None:
        """Replace the warning line under the reply (empty: hidden)."""
        self.notices = list(notices)
        if self.is_mounted:
            self._set_notice(" ".join(self.notices) or None)

    def show_error(self, text: str) -> None:
        """Show why this turn failed (the text kept, if any, stays above it)."""
        self._set_error(text)
        self.body.display = bool(self.text)
