"""The user's side of a chat turn."""

from __future__ import annotations

from textual.widgets import Static

from .._css import sibling_tcss


class UserMessage(Static):
    """The user's prompt, shown as plain text."""

    DEFAULT_CSS = sibling_tcss(__file__)

    def __init__(self, text: str) -> None:
        super().__init__(text, markup=False)
        self.text = text
