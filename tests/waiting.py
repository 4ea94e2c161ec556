"""Waiting in tests: poll for a condition with a bound, never sleep a guessed time.

A fixed sleep either wastes time or, on a loaded machine, is too short and the test
fails for no reason. These helpers return as soon as the condition holds and fail
with a message naming what was awaited.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

T = TypeVar("T")

# Only catches hangs: generous enough that a slow, shared machine never trips it.
HANG_S = 30.0
_EVERY_S = 0.01


class Timeout(AssertionError):
    """What was awaited never happened within the bound."""


def _give_up(what: str, timeout: float, last: object) -> Timeout:
    return Timeout(f"gave up after {timeout:g} s waiting for {what} (last seen: {last!r})")


async def until(
    predicate: Callable[[], T | Awaitable[T]],
    what: str,
    *,
    timeout: float = HANG_S,
    every: float = _EVERY_S,
) -> T:
    """Poll `predicate` (plain or async) on the running loop until it is truthy.

    Returns the truthy value, so a test can wait for a record and use it.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return cast(T, value)
        if time.monotonic() >= deadline:
            raise _give_up(what, timeout, value)
        await asyncio.sleep(every)


def wait_until(
    predicate: Callable[[], T], what: str, *, timeout: float = HANG_S, every: float = _EVERY_S
) -> T:
    """Blocking twin of `until`, for tests without an event loop (threads, processes)."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() >= deadline:
            raise _give_up(what, timeout, value)
        time.sleep(every)
    return value
