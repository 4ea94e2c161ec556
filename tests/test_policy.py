"""Retry/fallback decisions and the circuit breaker, as pure functions with a fake clock."""

from __future__ import annotations

import pytest

from llmrouter_tui.core.config import RoutingSettings
from llmrouter_tui.core.policy import CircuitBreaker, backoff_delay, decide

SETTINGS = RoutingSettings(max_retries=2, backoff_initial_s=0.5, backoff_max_s=8.0)


def _decide(kind, **kw):
    params = {
        "retries_done": 0,
        "retry_after_s": None,
        "got_output": False,
        "time_left_s": 100.0,
        "settings": SETTINGS,
        "rng": lambda: 1.0,
    }
    params.update(kw)
    return decide(kind, **params)


@pytest.mark.parametrize("kind", ["rate_limited", "server_error", "connect_error"])
def test_transient_failures_retry_then_fall_back(kind):
    assert _decide(kind).action == "retry"
    assert _decide(kind, retries_done=1).action == "retry"
    assert _decide(kind, retries_done=2).action == "fallback"


@pytest.mark.parametrize(
    "kind",
    [
        "auth",
        "forbidden",
        "not_found",
        "too_large",
        "context_length",
        "timeout",
        "first_token_timeout",
        "stream_cut",
        "stream_stalled",
        "malformed",
        "unknown",
    ],
)
def test_non_transient_failures_fall_back_at_once(kind):
    assert _decide(kind).action == "fallback"


def test_caller_errors_stop():
    assert _decide("bad_request").action == "stop"


def test_content_filter_stops_unless_configured():
    assert _decide("content_filter").action == "stop"
    on = RoutingSettings(fallback_on_content_filter=True)
    assert _decide("content_filter", settings=on).action == "fallback"


def test_output_already_sent_never_retries_same_model():
    assert _decide("server_error", got_output=True).action == "fallback"


def test_retry_after_is_honoured_never_sooner():
    decision = _decide("rate_limited", retry_after_s=1.5, rng=lambda: 0.0)
    assert decision.action == "retry"
    assert decision.delay_s == pytest.approx(1.5)
    assert _decide("rate_limited", retry_after_s=1.5).delay_s >= 1.5


def test_retry_after_beyond_limit_falls_back_now():
    assert _decide("rate_limited", retry_after_s=31).action == "fallback"


def test_wait_past_deadline_falls_back():
    assert _decide("server_error", time_left_s=0.1).action == "fallback"


def test_backoff_grows_with_jitter_and_cap():
    lows = [backoff_delay(n, SETTINGS, rng=lambda: 0.0) for n in range(6)]
    highs = [backoff_delay(n, SETTINGS, rng=lambda: 1.0) for n in range(6)]
    assert highs == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert lows == [h / 2 for h in highs]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_probes_and_closes():
    clock = FakeClock()
    breaker = CircuitBreaker(3, 30, clock)
    key = "groq:m"
    for _ in range(2):
        breaker.record_failure(key, "server_error")
    assert breaker.allow(key)
    breaker.record_failure(key, "server_error")
    assert breaker.state(key) == "open"
    assert not breaker.allow(key)
    clock.now += 30
    assert breaker.state(key) == "half_open"
    assert breaker.allow(key)  # the one probe
    assert not breaker.allow(key)  # nobody else while probing
    breaker.record_success(key)
    assert breaker.state(key) == "closed"
    assert breaker.allow(key)


def test_failed_probe_reopens_for_a_full_cooldown():
    clock = FakeClock()
    breaker = CircuitBreaker(1, 10, clock)
    breaker.record_failure("k", "timeout")
    clock.now += 10
    assert breaker.allow("k")
    breaker.record_failure("k", "timeout")
    assert breaker.state("k") == "open"
    assert breaker.remaining_s("k") == pytest.approx(10)


def test_caller_faults_do_not_trip_the_breaker():
    breaker = CircuitBreaker(1, 10, FakeClock())
    breaker.record_failure("k", "bad_request")
    breaker.record_failure("k", "content_filter")
    assert breaker.state("k") == "closed"


# ---- a breaker shared by the processes on one data directory ---------------------------------


class SharedTable:
    """`SharedCircuits` in memory: what core.breaker_board keeps in SQLite, without the I/O."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.rows: dict[str, float] = {}

    def remaining_s(self, key: str) -> float | None:
        until = self.rows.get(key)
        return None if until is None else max(0.0, until - self.clock())

    def keys(self) -> list[str]:
        return list(self.rows)

    def opened(self, key: str, cooldown_s: float) -> None:
        self.rows[key] = self.clock() + cooldown_s

    def closed(self, key: str) -> None:
        self.rows.pop(key, None)


def shared_pair(
    failures: int = 2, cooldown: float = 30
) -> tuple[FakeClock, CircuitBreaker, CircuitBreaker]:
    clock = FakeClock()
    table = SharedTable(clock)
    first, second = (
        CircuitBreaker(failures, cooldown, clock),
        CircuitBreaker(failures, cooldown, clock),
    )
    first.share(table)
    second.share(table)
    return clock, first, second


def test_a_circuit_one_process_opens_is_open_in_the_other():
    clock, first, second = shared_pair()
    assert second.state("k") == "closed"
    first.record_failure("k", "server_error")
    assert second.state("k") == "closed"  # one failure is not enough anywhere
    first.record_failure("k", "server_error")
    assert second.state("k") == "open" and not second.allow("k")
    assert second.remaining_s("k") == pytest.approx(30)
    assert second.snapshot() == {"k": {"state": "open", "remaining_s": 30.0}}
    clock.now += 31
    assert second.allow("k")  # each process probes once after the cooldown
    assert not second.allow("k")


def test_a_probe_that_succeeds_elsewhere_closes_the_circuit_everywhere():
    clock, first, second = shared_pair(failures=1)
    first.record_failure("k", "timeout")
    assert second.state("k") == "open"
    clock.now += 31
    assert second.allow("k")
    second.record_success("k")
    assert second.state("k") == "closed"
    assert first.state("k") == "closed"  # the opener hears the model is back


def test_a_failed_probe_elsewhere_reopens_for_the_full_cooldown():
    clock, first, second = shared_pair(failures=1)
    first.record_failure("k", "timeout")
    clock.now += 31
    assert second.allow("k")
    second.record_failure("k", "timeout")  # the probe failed: reopened and shared
    assert first.state("k") == "open"
    assert first.remaining_s("k") == pytest.approx(30)


def test_caller_faults_in_one_process_open_nothing_anywhere():
    _, first, second = shared_pair(failures=1)
    first.record_failure("k", "bad_request")
    assert second.state("k") == "closed" and second.snapshot() == {}


def test_a_circuit_that_closed_long_ago_is_not_reopened_by_its_old_row():
    clock, first, second = shared_pair(failures=1)
    first.record_failure("k", "timeout")
    assert second.state("k") == "open"
    clock.now += 3600  # nobody asked for the model meanwhile; its row remains
    assert second.state("k") == "half_open"  # it saw the circuit open: it probes first
    third = CircuitBreaker(1, 30, clock)
    third.share(second._shared)  # type: ignore[arg-type]
    assert third.state("k") == "closed"  # never saw it open: the old row says nothing
