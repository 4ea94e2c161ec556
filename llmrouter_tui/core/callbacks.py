"""Calling other code's callbacks (UI listeners, warning hooks) without letting them break
the caller: a callback that raises is logged, never swallowed and never propagated."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def failure_place(exc: BaseException) -> str:
    """Where `exc` was raised, as "file:line in function" ("" when unknown)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    return f"{last.filename}:{last.lineno} in {last.name}"


def call_safely(
    callback: Callable[[T], object], arg: T, what: str, logger: logging.Logger, kept: str
) -> None:
    """`callback(arg)`; an exception is logged with its type and place (not its message
    or the frames' variables, which may hold a prompt) and goes no further.

    `what` names the callback ("a request listener"), `kept` what still happened ("the
    reply was delivered").
    """
    try:
        callback(arg)
    except Exception as exc:
        place = failure_place(exc)
        logger.error(
            "%s raised %s%s; ignored, %s",
            what,
            type(exc).__name__,
            f" at {place}" if place else "",
            kept,
            extra={"callback": what, "exc_type": type(exc).__name__, "at": place},
        )
