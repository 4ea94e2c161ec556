"""The router's steps as units (core/route_state.py, core/recovery.py): what follows a
failed attempt, decided without a network. The routed behaviour itself is the contract of
test_router.py, test_continuation.py and test_reliability_faults.py."""

from __future__ import annotations

from collections.abc import Callable

from llmrouter_tui.core.catalog import Catalog
from llmrouter_tui.core.config import Settings
from llmrouter_tui.core.policy import CircuitBreaker
from llmrouter_tui.core.prepare import Prepared
from llmrouter_tui.core.providers.base import ProviderCall, ProviderFailure, Timeouts
from llmrouter_tui.core.recovery import Recovery
from llmrouter_tui.core.route_state import AttemptRun, RouteRun, Slot, Tries, slots
from llmrouter_tui.core.types import Attempt, Message

GROQ = "openai/gpt-oss-20b"  # a prefill model; its chain goes on to gpt-oss-120b, Gemini


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def setup() -> tuple[Recovery, RouteRun, list[Slot], Clock]:
    settings = Settings()
    catalog = Catalog(settings.models, settings.providers)
    clock = Clock()
    breaker = CircuitBreaker(3, 30.0, clock)
    recovery = Recovery(settings, catalog, breaker, clock, rng=lambda: 0.5)
    candidates = catalog.candidates(GROQ)
    message = Message("user", "hi")
    prepared = Prepared("id", GROQ, candidates, (message,), None, None, None, False, "hi")
    run = RouteRun(prepared, clock.now, clock.now + 120.0)
    return recovery, run, list(slots(candidates)), clock


def failed(
    recovery: Recovery, run: RouteRun, slot: Slot, failure: ProviderFailure
) -> tuple[AttemptRun, Attempt]:
    """An attempt on `slot` that ended in `failure`, recorded."""
    mode = recovery.continue_mode(run, slot.candidate)
    call = ProviderCall(
        slot.candidate.api_model, run.prepared.messages, None, None, None, Timeouts(1, 1, 1, 1)
    )
    attempt = AttemptRun(call, run.prepared.messages, mode, 0.0, 0.0, 0)
    attempt.failure = failure
    _, record = recovery.record_failure(run, slot, attempt)
    return attempt, record


def deliver(run: RouteRun, clock: Callable[[], float], text: str) -> None:
    run.deliver(text, clock)


def test_slots_know_the_next_model_and_the_last() -> None:
    _, _, chain, _ = setup()
    assert [(s.candidate.model, s.next_model, s.is_last) for s in chain] == [
        (GROQ, "openai/gpt-oss-120b", False),
        ("openai/gpt-oss-120b", "gemini-3.5-flash", False),
        ("gemini-3.5-flash", None, True),
    ]


def test_a_failure_is_recorded_as_the_last_one() -> None:
    recovery, run, chain, _ = setup()
    failure = ProviderFailure("first_token_timeout", "no first token within 1s")
    _, record = failed(recovery, run, chain[0], failure)
    assert run.attempts == [record] and run.last_failure is failure
    assert (record.outcome, record.error) == ("timeout", "first_token_timeout")


def test_a_server_error_is_retried_with_backoff_then_moves_on() -> None:
    recovery, run, chain, _ = setup()
    tries = Tries()
    steps = []
    for _ in range(3):
        attempt, record = failed(recovery, run, chain[0], ProviderFailure("server_error", "500"))
        steps.append(
            recovery.next_step(run, chain[0], attempt, tries, run.last_failure, record, True)
        )
    assert [s.kind for s in steps] == ["again", "again", "next"]
    assert [s.delay_s for s in steps] == [0.375, 0.75, None]  # 0.5 s doubling, jitter 0.75
    assert steps[2].notice is not None and steps[2].notice.next_model == "openai/gpt-oss-120b"
    assert all(s.restart_to is None for s in steps)  # nothing was delivered


def test_a_broken_stream_is_continued_on_the_same_model_once_then_the_next() -> None:
    recovery, run, chain, clock = setup()
    tries = Tries()
    deliver(run, clock, "The answer begins")
    kinds = []
    for _ in range(2):
        attempt, record = failed(recovery, run, chain[0], ProviderFailure("stream_cut", "cut"))
        step = recovery.next_step(run, chain[0], attempt, tries, run.last_failure, record, False)
        kinds.append((step.kind, step.restart_to, step.delay_s))
    # Continued, not restarted: the delivered text stays the caller's.
    assert kinds == [("again", None, None), ("next", None, None)]
    assert run.continuations == 2 and run.delivered == ["The answer begins"]


def test_a_streaming_caller_with_delivered_text_fails_when_it_cannot_be_continued() -> None:
    recovery, run, chain, clock = setup()
    run.continuations = recovery.settings.routing.max_continuations
    deliver(run, clock, "half an answer")
    attempt, record = failed(recovery, run, chain[0], ProviderFailure("stream_cut", "cut"))
    step = recovery.next_step(run, chain[0], attempt, Tries(), run.last_failure, record, False)
    assert step.kind == "fail"
    # A whole-reply caller is moved to the next model instead, its text voided there.
    step = recovery.next_step(run, chain[0], attempt, Tries(), run.last_failure, record, True)
    assert (step.kind, step.restart_to) == ("next", "openai/gpt-oss-120b")


def test_a_refused_prefill_is_remembered_and_the_answer_regenerated() -> None:
    recovery, run, chain, clock = setup()
    deliver(run, clock, "partial")
    assert recovery.continue_mode(run, chain[0].candidate) == "prefill"
    failure = ProviderFailure("bad_request", "assistant prefill is not supported")
    attempt, record = failed(recovery, run, chain[0], failure)
    step = recovery.next_step(run, chain[0], attempt, Tries(), failure, record, False)
    assert step.kind == "again" and step.notice is not None
    assert step.notice.will_retry_in_s == 0.0
    assert record.message == "prefill refused: assistant prefill is not supported"
    assert recovery.continue_mode(run, chain[0].candidate) == "regenerate"


def test_the_deadline_ends_the_request() -> None:
    recovery, run, chain, clock = setup()
    clock.now = run.deadline
    attempt, record = failed(recovery, run, chain[0], ProviderFailure("server_error", "500"))
    step = recovery.next_step(run, chain[0], attempt, Tries(), run.last_failure, record, True)
    assert step.kind == "deadline"


def test_a_restart_voids_what_was_delivered_and_its_cost() -> None:
    _, run, _, clock = setup()
    deliver(run, clock, "a")
    clock.now += 0.25
    deliver(run, clock, "b")
    assert run.delivered == ["a", "b"] and run.ttft == 0.0  # the first delivery sets it
    run.tool_calls_sent = True
    run.restart()
    assert run.delivered == [] and run.spent is None and not run.tool_calls_sent
