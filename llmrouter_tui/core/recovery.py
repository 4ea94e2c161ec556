"""What follows a failed attempt: the retry policy (core/policy.py) applied to one routed
request, with the continuation of a broken stream and the models that refuse a prefill."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from .catalog import Catalog, Resolution
from .config import Settings
from .continuation import ContinueMode, add_usage
from .policy import CircuitBreaker, Decision, decide
from .providers.base import ProviderFailure
from .route_state import AttemptRun, NextStep, RouteRun, Slot, Tries
from .tokens import estimate_usage
from .types import Attempt, AttemptFailed

# Failures that break a stream mid-answer: a continuation tries the same model again first.
_BREAKS = frozenset({"stream_cut", "stream_stalled", "malformed", "timeout", "server_error"})


class Recovery:
    """Decides, for one router, how a request goes on after an attempt fails."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        breaker: CircuitBreaker,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.breaker = breaker
        self._clock = clock
        self._rng = rng
        # provider:model keys that refused an assistant prefill (remembered for the process).
        self._no_prefill: set[str] = set()

    def record_failure(
        self, run: RouteRun, slot: Slot, attempt: AttemptRun
    ) -> tuple[ProviderFailure, Attempt]:
        """The attempt's failure, recorded among the request's attempts."""
        failure = attempt.failure
        if failure is None:  # pragma: no cover - providers always end with StreamEnd
            failure = ProviderFailure("stream_cut", "stream ended without an end marker")
        run.last_failure = failure
        if failure.kind == "context_length":
            # Candidates with no larger a window would refuse it too: they are skipped.
            candidate = slot.candidate
            run.context.refused_by(self.catalog.context_window(candidate.model, candidate.provider))
        record = Attempt(
            slot.candidate.model,
            slot.candidate.provider,
            "timeout" if "timeout" in failure.kind else "error",
            status=failure.status,
            error=failure.kind,
            message=failure.message,
            ms=attempt.ms,
            started_at=attempt.wall_start,
        )
        run.attempts.append(record)
        return failure, record

    def next_step(
        self,
        run: RouteRun,
        slot: Slot,
        attempt: AttemptRun,
        tries: Tries,
        failure: ProviderFailure,
        record: Attempt,
        allow_restart: bool,
    ) -> NextStep:
        """What follows a failed attempt: the retry policy's decision, shaped by prefill
        refusals, stream continuation and whether the caller can take a Restart."""
        if attempt.mode == "prefill" and failure.kind == "bad_request":
            # The model refused the trailing assistant message: remember that for this
            # process, and regenerate instead.
            self._no_prefill.add(slot.candidate.key)
            record.message = f"prefill refused: {failure.message}"
            return NextStep("again", AttemptFailed(record, will_retry_in_s=0.0))
        self._count_failure(run, slot, attempt, failure)
        got_output = bool(run.delivered) or bool(attempt.tool_calls)
        can_continue = self._can_continue(run)
        decision = decide(
            failure.kind,
            retries_done=tries.retries,
            retry_after_s=failure.retry_after_s,
            got_output=got_output and not can_continue,
            time_left_s=run.deadline - self._clock(),
            settings=self.settings.routing,
            rng=self._rng,
        )
        if self._clock() >= run.deadline:
            return NextStep("deadline")
        if can_continue and decision.action != "stop":
            return self._continuation_step(run, slot, tries, failure, record, decision)
        if decision.action == "stop" or (got_output and not allow_restart):
            return NextStep("fail")
        if decision.action == "retry":
            tries.retries += 1
            notice = AttemptFailed(record, will_retry_in_s=decision.delay_s)
            restart_to = slot.candidate.model if got_output else None
            return NextStep("again", notice, restart_to, decision.delay_s)
        notice = AttemptFailed(record, next_model=slot.next_model)
        return NextStep("next", notice, slot.next_model if got_output else None)

    @staticmethod
    def _continuation_step(
        run: RouteRun,
        slot: Slot,
        tries: Tries,
        failure: ProviderFailure,
        record: Attempt,
        decision: Decision,
    ) -> NextStep:
        """A broken stream's delivered text is continued: by the same model once (it was
        answering, the break may be passing), else by the next candidate."""
        run.continuations += 1
        same_model = decision.action == "retry" or (
            failure.kind in _BREAKS and not tries.continued_here
        )
        if not same_model:
            return NextStep("next", AttemptFailed(record, next_model=slot.next_model))
        # A second break there moves the continuation to the next candidate.
        tries.continued_here = True
        tries.retries += 1
        notice = AttemptFailed(record, will_retry_in_s=decision.delay_s)
        return NextStep("again", notice, delay_s=decision.delay_s or None)

    def _count_failure(
        self, run: RouteRun, slot: Slot, attempt: AttemptRun, failure: ProviderFailure
    ) -> None:
        """The failure counts toward the candidate's circuit, and the text it delivered
        toward the request's usage."""
        key = slot.candidate.key
        self.breaker.record_failure(key, failure.kind)
        if run.probe_key == key and self.breaker.state(key) != "closed":
            run.probe_key = None  # the probe reopened the circuit
        if attempt.parts:
            used = estimate_usage(
                attempt.messages,
                run.prepared.system,
                "".join(attempt.parts),
                slot.candidate.api_model,
            )
            run.spent = add_usage(run.spent, used)

    def continue_mode(self, run: RouteRun, candidate: Resolution) -> ContinueMode | None:
        """How the next attempt continues the delivered text; None for a fresh answer."""
        if not run.delivered:
            return None
        capabilities = self.catalog.capabilities(candidate.model, candidate.provider)
        if capabilities.prefill and candidate.key not in self._no_prefill:
            return "prefill"
        return "regenerate"

    def _can_continue(self, run: RouteRun) -> bool:
        """May a broken stream's delivered text be continued by another attempt?"""
        routing = self.settings.routing
        return (
            routing.continue_broken_streams
            and bool(run.delivered)
            and not run.tool_calls_sent  # a half-sent tool call cannot be continued
            and run.continuations < routing.max_continuations
            and self._clock() < run.deadline
        )
