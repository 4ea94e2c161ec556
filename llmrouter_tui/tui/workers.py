"""Background work that can fail without ending the app.

Every worker of the app is declared with `background(...)` instead of Textual's `@work`:
the same exclusive, grouped worker, but an exception it raises (a StorageError from a full
disk, a bug) becomes a `BackgroundFailed` message that the app turns into a notice. Textual
would otherwise end the app and print a traceback (with the locals, so with prompt text).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from textual import work
from textual.dom import DOMNode
from textual.message import Message
from textual.worker import Worker

P = ParamSpec("P")
R = TypeVar("R")


class BackgroundFailed(Message):
    """Background work failed; `doing` says what it was (for the notice)."""

    def __init__(self, doing: str, error: Exception) -> None:
        super().__init__()
        self.doing = doing
        self.error = error


def report_failure(node: DOMNode, doing: str, error: Exception) -> None:
    """Tell the app that `doing` failed with `error` (the app shows a notice)."""
    app = node.app
    app.log.error(f"{doing} failed", error)
    app.post_message(BackgroundFailed(doing, error))


def background(
    doing: str, *, group: str, exclusive: bool = True
) -> Callable[
    [Callable[..., Coroutine[Any, Any, R]]],
    Callable[..., Worker[R | None]],
]:
    """`@work(exclusive=..., group=...)` whose failure is reported instead of fatal."""

    def decorator(
        method: Callable[..., Coroutine[Any, Any, R]],
    ) -> Callable[..., Worker[R | None]]:
        @functools.wraps(method)
        async def guarded(self: DOMNode, *args: Any, **kwargs: Any) -> R | None:
            try:
                return await method(self, *args, **kwargs)
            except Exception as error:  # every failure becomes a notice, never a crash
                report_failure(self, doing, error)
                return None

        return work(guarded, exclusive=exclusive, group=group, exit_on_error=False)

    return decorator
