"""Typed messages the screens and the app exchange."""

from __future__ import annotations

from typing import Any

from textual.message import Message

from ..core.types import Result


class TemplateChosen(Message):
    """The user pressed "Use" on a template with these variable values."""

    def __init__(self, template_id: str, values: dict[str, str]) -> None:
        super().__init__()
        self.template_id = template_id
        self.values = values


class TemplateEdit(Message):
    """The user chose to edit a template's expanded prompt in the chat before sending it."""

    def __init__(self, prompt: str, system: str | None) -> None:
        super().__init__()
        self.prompt = prompt
        self.system = system


class RequestRecorded(Message):
    """The core recorded a request (from any screen); analytics should refresh."""

    def __init__(self, result: Result) -> None:
        super().__init__()
        self.result = result


class RatingRecorded(Message):
    """The core recorded a rating; analytics should refresh."""

    def __init__(self, record: dict[str, Any]) -> None:
        super().__init__()
        self.record = record


class PreferenceRecorded(Message):
    """The core recorded which of two compared replies was better; analytics should refresh."""

    def __init__(self, record: dict[str, Any]) -> None:
        super().__init__()
        self.record = record


class NavigateTo(Message):
    """A tab in the top bar was clicked."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode
