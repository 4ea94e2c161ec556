"""A reply in the chat: ReplyView plus what the chat screen adds to it.

The screen adds a note at the end of the metadata line (which model a regeneration used,
"version 2/3" when the turn has other versions), replaces the notices (a retirement notice
once per conversation, a rejected API key), and shows the error of a failed turn read back
from the database.
"""

from __future__ import annotations

from typing import Any

from .reply import ReplyView


class ChatReply(ReplyView):
    """A ReplyView with a note on its metadata line and settable notices."""

    def __init__(
        self, *args: Any, note: str | None = None, stored_error: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.note = note
        #: The warning line under the reply (None: whatever the reply itself shows).
        self.notices: list[str] | None = None
        self._stored_error = stored_error

    def _meta_text(self) -> str:
        text = super()._meta_text()
        if self.note:
            return f"{text} · {self.note}" if text else self.note
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
