"""Retry, fallback and circuit-breaker rules. Pure logic: no I/O, an injectable clock.

A CircuitBreaker may be given a `SharedCircuits` (core.breaker_board: a table in the data
directory's database) so that the processes serving one data directory skip a model as soon
as any of them opened its circuit.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

from .config import RoutingSettings
from .providers.base import FailureKind

Action = Literal["retry", "fallback", "stop"]

# Transient trouble on the provider's side: the same model may well answer next time.
RETRYABLE: frozenset[FailureKind] = frozenset({"rate_limited", "server_error", "connect_error"})
# The caller's own request is at fault: another model would refuse it too.
CALLER_FAULT: frozenset[FailureKind] = frozenset({"bad_request"})
# Failures that say nothing about the model's health, so they never trip the breaker.
NOT_HEALTH: frozenset[FailureKind] = frozenset(
    {"bad_request", "content_filter", "context_length", "too_large"}
)


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    delay_s: float = 0.0
    reason: str = ""


def backoff_delay(
    retries_done: int, settings: RoutingSettings, rng: Callable[[], float] = random.random
) -> float:
    """Exponential backoff with jitter in [50%, 100%] of the capped exponential step."""
    step = min(settings.backoff_max_s, settings.backoff_initial_s * (2**retries_done))
    return float(step * (0.5 + 0.5 * rng()))


def decide(
    kind: FailureKind,
    *,
    retries_done: int,
    retry_after_s: float | None,
    got_output: bool,
    time_left_s: float,
    settings: RoutingSettings,
    rng: Callable[[], float] = random.random,
) -> Decision:
    """What to do after one failed attempt."""
    if kind == "content_filter":
        if settings.fallback_on_content_filter:
            return Decision("fallback", reason="content filtered; fallback_on_content_filter is on")
        return Decision("stop", reason="the provider's content filter refused the request")
    if kind in CALLER_FAULT:
        return Decision("stop", reason="the request itself was rejected")
    if got_output:
        return Decision("fallback", reason="the reply broke mid-answer")
    if kind not in RETRYABLE:
        return Decision("fallback", reason=f"{kind} is not retried on the same model")
    if retries_done >= settings.max_retries:
        return Decision("fallback", reason=f"gave up after {retries_done + 1} attempts")
    if retry_after_s is not None:
        if retry_after_s > settings.retry_after_max_s:
            return Decision(
                "fallback",
                reason=f"Retry-After {retry_after_s:g}s exceeds retry_after_max_s",
            )
        # Never sooner than the provider asked; a little jitter spreads synchronized clients.
        delay = retry_after_s * (1.0 + 0.1 * rng())
    else:
        delay = backoff_delay(retries_done, settings, rng)
    if delay >= time_left_s:
        return Decision("fallback", reason="waiting would pass the total deadline")
    return Decision("retry", delay_s=delay)


CircuitState = Literal["closed", "open", "half_open"]


@dataclass(slots=True)
class _Circuit:
    failures: int = 0
    open_until: float = 0.0
    probing: bool = False
    opened: bool = False


class SharedCircuits(Protocol):
    """Circuit state shared by the processes on one data directory (core.breaker_board)."""

    def remaining_s(self, key: str) -> float | None:
        """Seconds until `key`'s shared circuit may be probed (0.0: now); None: not open."""
        ...

    def keys(self) -> Iterable[str]:
        """Every key with a shared open circuit (expired or not)."""
        ...

    def opened(self, key: str, cooldown_s: float) -> None:
        """This process opened `key`'s circuit for `cooldown_s`: tell the others."""
        ...

    def closed(self, key: str) -> None:
        """A probe of `key` succeeded here: tell the others."""
        ...


# A shared open_until later than ours by more than this is another process's (re)opening;
# less is our own publication coming back (wall and monotonic clocks differ a little).
_SKEW_S = 0.5


class CircuitBreaker:
    """Skips a model after `failures_to_open` consecutive failures, for `cooldown_s`.

    After the cooldown one probe is let through; its outcome closes or reopens the circuit.
    """

    def __init__(
        self,
        failures_to_open: int,
        cooldown_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures_to_open = failures_to_open
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._circuits: dict[str, _Circuit] = {}
        self._shared: SharedCircuits | None = None

    def share(self, shared: SharedCircuits) -> None:
        """Skip what other processes opened too, and tell them what this one opens/closes."""
        self._shared = shared

    def _sync(self, key: str) -> _Circuit | None:
        """`key`'s circuit with what other processes know folded in."""
        circuit = self._circuits.get(key)
        shared = self._shared
        if shared is None:
            return circuit
        left = shared.remaining_s(key)
        if left is None:
            if circuit is not None and circuit.opened and not circuit.probing:
                del self._circuits[key]  # a probe elsewhere found the model working again
                return None
            return circuit
        if circuit is None and left <= 0:
            return None  # long over, and this process never saw it open
        until = self._clock() + left
        if circuit is None:
            circuit = self._circuits[key] = _Circuit()
        if not circuit.opened or until > circuit.open_until + _SKEW_S:
            circuit.opened = True
            circuit.open_until = until
        return circuit

    def state(self, key: str) -> CircuitState:
        circuit = self._sync(key)
        if circuit is None or not circuit.opened:
            return "closed"
        if self._clock() < circuit.open_until:
            return "open"
        return "half_open"

    def remaining_s(self, key: str) -> float:
        circuit = self._sync(key)
        if circuit is None or not circuit.opened:
            return 0.0
        return max(0.0, circuit.open_until - self._clock())

    def allow(self, key: str) -> bool:
        """May a request go to `key` now? Claims the single probe slot when half-open."""
        state = self.state(key)
        if state == "closed":
            return True
        if state == "open":
            return False
        circuit = self._circuits[key]
        if circuit.probing:
            return False
        circuit.probing = True
        return True

    def release_probe(self, key: str) -> None:
        """A claimed probe ended without a verdict (cancelled, or a caller fault)."""
        circuit = self._circuits.get(key)
        if circuit is not None:
            circuit.probing = False

    def record_success(self, key: str) -> None:
        circuit = self._circuits.pop(key, None)
        if circuit is not None and circuit.opened and self._shared is not None:
            self._shared.closed(key)

    def record_failure(self, key: str, kind: FailureKind) -> None:
        if kind in NOT_HEALTH:
            self.release_probe(key)
            return
        circuit = self._circuits.setdefault(key, _Circuit())
        circuit.failures += 1
        if circuit.probing or circuit.failures >= self.failures_to_open:
            circuit.opened = True
            circuit.probing = False
            circuit.open_until = self._clock() + self.cooldown_s
            if self._shared is not None:
                self._shared.opened(key, self.cooldown_s)

    def snapshot(self) -> dict[str, dict[str, object]]:
        """Every non-closed circuit, for UIs and `/models`."""
        keys = set(self._circuits)
        if self._shared is not None:
            keys.update(self._shared.keys())
        return {
            key: {"state": self.state(key), "remaining_s": round(self.remaining_s(key), 1)}
            for key in sorted(keys)
            if self.state(key) != "closed"
        }
