"""`--demo`: run the built-in fake upstream in-process for as long as a front-end runs.

`--demo flaky` makes it misbehave now and then the way real providers do (server errors,
rate limits with Retry-After, streams cut or stalled, a slow first token, a model down for
a few requests in a row), so retries, fallback and the circuit breaker can be seen at work.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .testing.fake_upstream import FakeUpstream, Fault

DEMO_MODES = ("on", "flaky")
#: Chance per request of each misbehaviour in `--demo flaky` (the rest are answered well).
FLAKY_ODDS: tuple[tuple[float, str], ...] = (
    (0.10, "server_error"),
    (0.06, "rate_limited"),
    (0.08, "cut"),
    (0.06, "slow_first_token"),
    (0.05, "stall"),
    (0.04, "outage"),
)
#: A model "down" in flaky mode fails this many requests in a row (the breaker opens at 3).
OUTAGE_REQUESTS = 4


def flaky_fault(kind: str, model: str | None) -> Fault:
    """The fault `--demo flaky` uses for one misbehaviour."""
    from .testing.fake_upstream import Fault

    if kind == "server_error" or kind == "outage":
        return Fault(kind="status", status=503, model=model, message="demo: model overloaded")
    if kind == "rate_limited":
        return Fault(kind="status", status=429, retry_after_s=1.0, model=model)
    if kind == "cut":
        return Fault(kind="cut", after_chunks=6, model=model)
    if kind == "slow_first_token":
        return Fault(kind="slow_first_token", delay_s=2.5, model=model)
    return Fault(kind="stall", delay_s=3.0, after_chunks=8, model=model)


def flaky_upstream(seed: int | None = None, chunk_delay_s: float = 0.02) -> FakeUpstream:
    """A FakeUpstream (not started) that misbehaves at random (reproducibly for a `seed`)."""
    from .testing.fake_upstream import FakeUpstream

    class FlakyUpstream(FakeUpstream):
        def __init__(self) -> None:
            super().__init__(chunk_delay_s=chunk_delay_s)
            self.rng = random.Random(seed)
            self.down: dict[str, int] = {}  # model -> requests it still fails
            self.misbehaved: list[tuple[str, str]] = []  # (model, kind), for tests and curiosity

        def _take_fault(self, provider: str, model: str | None) -> Fault | None:
            planned = super()._take_fault(provider, model)
            if planned is not None:
                return planned
            key = model or provider
            if self.down.get(key, 0) > 0:
                self.down[key] -= 1
                self.misbehaved.append((key, "outage"))
                return flaky_fault("outage", model)
            roll = self.rng.random()
            for odds, kind in FLAKY_ODDS:
                if roll < odds:
                    if kind == "outage":
                        self.down[key] = OUTAGE_REQUESTS - 1
                    self.misbehaved.append((key, kind))
                    return flaky_fault(kind, model)
                roll -= odds
            return None

    return FlakyUpstream()


@contextmanager
def demo_upstream(mode: bool | str | None) -> Iterator[str | None]:
    """Yield the fake upstream's base URL while it runs, or None when demo mode is off.

    `mode`: falsy (off), True or "on" (well-behaved), "flaky" (misbehaves now and then).
    """
    if not mode:
        yield None
        return
    from .testing.fake_upstream import FakeUpstream

    fake = flaky_upstream() if mode == "flaky" else FakeUpstream(chunk_delay_s=0.02)
    fake.start()
    try:
        yield fake.base_url
    finally:
        fake.stop()
