"""Does a request fit a candidate's context window? Asked of each candidate before it is tried.

Two things can say no. A model that refused the request as too long (failure kind
`context_length`) tells us its window is too small, so a later candidate whose known window
is no larger would refuse it too. And before any attempt, our own count of the prompt
(core/tokens.py: an estimate, since no provider's exact count is known here), plus
`max_tokens` where the window holds the reply too, can exceed a candidate's window. Being
an estimate, it skips a candidate only when it exceeds the window by more than
ESTIMATE_MARGIN: a request the model could have taken is never refused. A model whose window
is unknown (not in the catalog, no `context_window` in the config) is always tried.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .tokens import (
    MESSAGE_OVERHEAD_TOKENS,
    REPLY_PRIMING_TOKENS,
    encoding_name_for_model,
    estimate_usage,
)
from .types import Message

#: How far our estimate must exceed a window before the model is skipped unasked.
ESTIMATE_MARGIN = 1.10

# Gemini's window counts input only (its output limit is separate); OpenAI-style servers count
# the prompt and max_tokens against one window.
_INPUT_ONLY_KINDS = frozenset({"gemini"})


@dataclass(slots=True)
class ContextFit:
    """One request's context checks: what it holds, counted at most once per encoding, and
    the largest window that refused it."""

    messages: tuple[Message, ...]
    system: str | None
    max_tokens: int | None
    refused_window: int | None = None
    _bound: int | None = None
    _counts: dict[str, int] = field(default_factory=dict)

    def refused_by(self, window: int | None) -> None:
        """A model with `window` (None: unknown) answered that the request is too long."""
        if window is not None and (self.refused_window is None or window > self.refused_window):
            self.refused_window = window

    def skip_reason(self, api_model: str, window: int | None, kind: str | None) -> str | None:
        """Why a candidate with `window` cannot take this request, or None to try it."""
        if window is None:
            return None
        if self.refused_window is not None and window <= self.refused_window:
            return (
                f"too long for its {window:,}-token context window: a model with a "
                f"{self.refused_window:,}-token window already refused this request as too long"
            )
        reply = 0 if kind in _INPUT_ONLY_KINDS else (self.max_tokens or 0)
        limit = window * ESTIMATE_MARGIN
        if self._upper_bound() + reply <= limit:
            return None  # cannot be too long: no need to count
        prompt = self._count(api_model)
        if prompt + reply <= limit:
            return None
        asked = f"about {prompt:,} tokens (estimated)"
        if reply:
            asked += f" + max_tokens {reply:,}"
        return (
            f"too long for its {window:,}-token context window: the request is {asked}; "
            "shorten it, or use a model with a larger window"
        )

    def _upper_bound(self) -> int:
        """At least any count core/tokens.py can give for the prompt: a token is at least one
        UTF-8 byte (and the estimate without a tokenizer stays below that too)."""
        if self._bound is None:
            texts = [m.text for m in self.messages]
            if self.system:
                texts.append(self.system)
            total = REPLY_PRIMING_TOKENS
            for text in texts:
                size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
                total += MESSAGE_OVERHEAD_TOKENS + max(1, size)
            self._bound = total
        return self._bound

    def _count(self, api_model: str) -> int:
        encoding = encoding_name_for_model(api_model)
        count = self._counts.get(encoding)
        if count is None:
            count = estimate_usage(self.messages, self.system, "", api_model).prompt
            self._counts[encoding] = count
        return count
