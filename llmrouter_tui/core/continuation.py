"""Continuing an answer whose stream broke after some of it was delivered. Pure: no I/O.

Two ways, chosen per attempt by the router:

- prefill: the conversation plus the delivered text as a trailing assistant message; the
  model writes the rest, which is delivered as it comes.
- regenerate: the same request again; `Resync` follows the new answer through the part
  already delivered (ignoring whitespace) and lets only what comes after it through. A new
  answer that differs from what was delivered is never spliced onto it.
"""

from __future__ import annotations

from typing import Literal

from .types import Usage

ContinueMode = Literal["prefill", "regenerate"]


class Resync:
    """Follows a regenerated answer through the text already delivered.

    Only non-whitespace characters are compared: models (and their tokenisers) differ in
    spaces and line breaks between runs more often than in words.
    """

    __slots__ = ("_pos", "_skip_space", "_target", "diverged", "received")

    def __init__(self, delivered: str) -> None:
        self._target = "".join(delivered.split())
        self._pos = 0
        # The caller already has the delivered text's trailing whitespace.
        self._skip_space = delivered[-1:].isspace()
        self.diverged = False
        self.received: list[str] = []  # the whole regenerated text so far

    @property
    def synced(self) -> bool:
        """The new answer has reproduced everything that was delivered."""
        return not self.diverged and self._pos == len(self._target)

    @property
    def matched_chars(self) -> int:
        return self._pos

    def feed(self, text: str) -> str:
        """The part of `text` that comes after the delivered text ("" while still inside
        it, or once the new answer has diverged)."""
        self.received.append(text)
        if self.diverged:
            return ""
        if not self.synced:
            target = self._target
            for index, char in enumerate(text):
                if char.isspace():
                    continue
                if char != target[self._pos]:
                    self.diverged = True
                    return ""
                self._pos += 1
                if self._pos == len(target):
                    text = text[index + 1 :]
                    break
            else:
                return ""
        if self._skip_space:
            text = text.lstrip()
            if text:
                self._skip_space = False
        return text


def continued_note(chars: int, mode: ContinueMode) -> str:
    """The attempt record's message for an attempt that continued an answer."""
    if mode == "prefill":
        return f"continued with prefill after {chars} delivered characters"
    return f"regenerated; skipped the {chars} characters already delivered"


def add_usage(spent: Usage | None, more: Usage) -> Usage:
    """Token counts of several attempts that each contributed text, summed."""
    if spent is None:
        return more
    return Usage(
        spent.prompt + more.prompt,
        spent.completion + more.completion,
        spent.total + more.total,
        spent.estimated or more.estimated,
    )
