"""One side of a compare: a ReplyView that can keep its model secret until the vote.

Hidden (blind compare), the metadata line says only how the reply is doing, and the notice
and error lines (which name models: a fallback, a retirement, every failed attempt) wait
for `reveal()`. The reply text itself is shown as it streams.
"""

from __future__ import annotations

from typing import Any

from .._css import sibling_tcss
from ..evidence import ReplyCost, cost_text
from .reply import ReplyView

HIDDEN_META = {
    "pending": "waiting…",
    "streaming": "streaming…",
    "done": "done · the model is shown after your vote",
    "error": "failed · why (and which model) is shown after your vote",
    "cancelled": "cancelled",
}
HIDDEN_ERROR = "✗ This reply failed; the details name the model, so they come after your vote."
PROMPT_BACK = "Your prompt is back in the input box."


class CompareReply(ReplyView):
    """A reply of a compare; `hidden` keeps the model's name off screen."""

    DEFAULT_CSS = sibling_tcss(__file__)

    def __init__(self, *args: Any, hidden: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hidden = hidden
        # What the reply would show if it were not hidden (None: the default).
        self._meta_given: str | None = None
        self._notice_given: str | None = None
        self._error_given: str | None = None

    @property
    def ended(self) -> bool:
        """The request is over (answered, failed or cancelled)."""
        return self.state in ("done", "error", "cancelled")

    def _meta_text(self) -> str:
        if self.hidden:
            return HIDDEN_META.get(self.state, "")
        text = super()._meta_text()
        if self.state == "done" and self.result is not None:
            spent = cost_text(ReplyCost.from_result(self.result))
            if spent:
                text = f"{text} · {spent}"
            if self.result.auto_reason:
                text = f"{text}\n{self.result.auto_reason}"
        return text

    def _set_meta(self, text: str | None = None) -> None:
        self._meta_given = text
        super()._set_meta(None if self.hidden else text)

    def _set_notice(self, text: str | None) -> None:
        self._notice_given = text
        super()._set_notice(None if self.hidden else text)

    def _set_error(self, text: str | None) -> None:
        if text:
            # The prompt stays in the compare until it is over (the chat puts it back).
            text = "\n".join(line for line in text.splitlines() if line != PROMPT_BACK)
        self._error_given = text
        super()._set_error(HIDDEN_ERROR if self.hidden and text else text)

    def reveal(self) -> None:
        """Show the model: the metadata, notice and error lines as they really are."""
        if not self.hidden:
            return
        self.hidden = False
        if self.is_mounted:
            super()._set_meta(self._meta_given)
            super()._set_notice(self._notice_given)
            super()._set_error(self._error_given)
