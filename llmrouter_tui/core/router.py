"""The router: one streaming path for every request, with cache, retries, fallback and limits.

Every front-end calls `Router.stream()` (or `complete()`, which collects it). Events:
Started, Delta* / ToolCallDelta*, AttemptFailed*, Restart*, then exactly one Done or Failed.
The request is recorded once, here, whatever happens (also when the caller cancels).

A request goes through named steps, and `_route` reads as their list: prepared
(core/prepare.py); then per candidate, skipped (capabilities, budget, key, circuit), answered
from the cache, or tried (`_try_candidate`): each attempt streamed (core/attempts.py), a
diverged regeneration settled, then the answer recorded, or the failure's next step decided
(core/recovery.py) and taken. The state passed between the steps is in core/route_state.py;
the Result is built in core/route_result.py.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import aclosing
from typing import Any, Protocol

from .attempts import diverged_message, stream_attempt
from .cache import CachedReply, cache_key
from .callbacks import call_safely
from .capabilities import unmet_need, unmet_reason
from .catalog import Catalog, Resolution, not_configured
from .config import Settings
from .continuation import Resync, add_usage, continued_note
from .metrics import Metrics
from .policy import CircuitBreaker
from .prepare import Prepared, Preparer, new_prompt_id
from .providers import ProviderPool
from .providers.base import ProviderCall, ProviderFailure, StreamEnd, Timeouts
from .record_batch import BatchSink, RecordBatcher
from .recorder import CacheWrite
from .recovery import Recovery
from .redact import Redactor
from .route_result import attempts_text, build_result, error_summary, log_result
from .route_state import AttemptRun, RouteRun, Slot, Tries, slots
from .selection import Selection
from .templates import TemplateSet
from .tokens import estimate_usage
from .types import (
    Attempt,
    AttemptFailed,
    AttemptOutcome,
    ChatRequest,
    Delta,
    Done,
    Event,
    Failed,
    Message,
    Restart,
    Result,
    Started,
    ToolCallDelta,
)

# Prepared, new_prompt_id and attempts_text are imported from here by the front-ends.
__all__ = ["Prepared", "RecordSink", "Router", "attempts_text", "new_prompt_id"]

# Finish reasons of a reply that ended normally and may be cached.
_COMPLETE_FINISHES = frozenset({"stop", "length", "end_turn", "eos", "tool_calls"})
_log = logging.getLogger(__name__)


class RecordSink(BatchSink, Protocol):
    """What the router needs from the store (see core.store.Store)."""

    def cache_get(self, key: str) -> CachedReply | None: ...


class Router:
    """Routes chat requests to providers; see the module docstring for the event contract."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: RecordSink | None = None,
        templates: TemplateSet | None = None,
        catalog: Catalog | None = None,
        providers: ProviderPool | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.store = store
        #: Counters for /metrics (core/metrics.py), updated as requests are routed.
        self.metrics = Metrics()
        self._batcher = (
            RecordBatcher(
                store, on_recorded=self._recorded, on_lag=self.metrics.recording_lag.observe
            )
            if store is not None
            else None
        )
        self.templates = templates
        self.catalog = catalog or Catalog(settings.models, settings.providers)
        self.providers = providers or ProviderPool(settings.providers, settings.routing)
        self.breaker = CircuitBreaker(
            settings.routing.cooldown_failures, settings.routing.cooldown_s, clock
        )
        self._clock = clock
        self._sleep = sleep
        self._listeners: list[Callable[[Result], None]] = []
        # Some upstreams echo the key they rejected: never store, log or show it.
        self._redactor = Redactor.for_settings(settings, public=self.catalog.models)
        # `auto`, [budget] and prices (core/selection.py).
        self.selection = Selection(settings, self.catalog, self.providers, self.breaker, store)
        self._preparer = Preparer(settings, self.catalog, self.selection)
        # Retries, fallback and continuation after a failed attempt (core/recovery.py).
        self._recovery = Recovery(settings, self.catalog, self.breaker, clock, rng)
        routing = settings.routing
        self._timeouts = Timeouts(
            connect_s=routing.connect_timeout_s,
            first_token_s=routing.first_token_timeout_s,
            stream_idle_s=routing.stream_idle_timeout_s,
            attempt_s=routing.attempt_timeout_s,
        )

    # ---- public API ---------------------------------------------------------------------------

    def add_listener(self, callback: Callable[[Result], None]) -> None:
        """Call `callback(result)` after each request is recorded (UIs refresh on it)."""
        self._listeners.append(callback)

    def prepare(self, request: ChatRequest) -> Prepared:
        """Validate a request and resolve its input and candidates; raises InputError."""
        return self._preparer.prepare(request, self.templates)

    async def stream(
        self, request: ChatRequest | Prepared, *, allow_restart: bool = True
    ) -> AsyncGenerator[Event, None]:
        """Route a request, yielding events as they happen.

        With `allow_restart` (whole-reply callers, the TUI) a candidate that breaks after
        some text is replaced by the next one and a Restart event voids the text so far.
        Without it (callers that already forwarded text) such a break ends in Failed.
        """
        prepared = request if isinstance(request, Prepared) else self.prepare(request)
        start = self._clock()
        use_cache = self.store is not None and self.settings.cache.enabled
        run = RouteRun(prepared, start, start + self.settings.routing.total_timeout_s, use_cache)
        try:
            # Closed explicitly: a route left to the garbage collector costs a loop wake-up.
            async with aclosing(self._route(run, allow_restart)) as events:
                async for event in events:
                    yield event
        except (asyncio.CancelledError, GeneratorExit):
            if not run.recorded:
                result = self._result(run, status="cancelled", error="cancelled by the caller")
                if self._batcher is not None:
                    self._batcher.record_now(result)  # calls _recorded
                else:
                    self._notify(result)
            raise
        finally:
            if run.probe_key is not None:
                self.breaker.release_probe(run.probe_key)

    async def complete(self, request: ChatRequest | Prepared) -> Result:
        """Route a request and return its whole Result (status "ok" or "error")."""
        result: Result | None = None
        # Read to the end rather than stop at Done: a generator that finishes by itself is
        # cheaper than one closed from outside, and nothing follows Done or Failed.
        async with aclosing(self.stream(request, allow_restart=True)) as events:
            async for event in events:
                if isinstance(event, Done | Failed):
                    result = event.result
        if result is None:  # pragma: no cover - the stream always ends with Done or Failed
            raise RuntimeError("router stream ended without a result")
        return result

    def model_state(self, resolution_key: str) -> str:
        """Circuit state for a `provider:model` key: closed, open or half_open."""
        return self.breaker.state(resolution_key)

    async def aclose(self) -> None:
        if self._batcher is not None:
            self._batcher.flush()
        await self.providers.aclose()

    # ---- the route, step by step --------------------------------------------------------------

    async def _route(self, run: RouteRun, allow_restart: bool) -> AsyncGenerator[Event, None]:
        """Started; then each candidate in turn is skipped, answered from the cache or tried,
        until one answers or the request ends; Done or Failed last."""
        prepared = run.prepared
        first = prepared.candidates[0].model
        yield Started(prepared.prompt_id, prepared.requested_model, first, prepared.notice)
        for slot in slots(prepared.candidates):
            skipped = self._skip(run, slot)
            if skipped is not None:
                yield skipped
                continue
            hit = self._cache_lookup(run, slot)
            if hit is not None:
                for replayed in _replay(hit):
                    yield replayed
                yield Done(await self._answer_from_cache(run, slot, hit))
                return
            async with aclosing(self._try_candidate(run, slot, allow_restart)) as events:
                async for event in events:
                    yield event
            if run.recorded:  # answered, or the request ended there
                return
        # A whole-reply caller never gets a partial answer; a streaming one has it already.
        partial = "" if allow_restart else "".join(run.delivered)
        yield await self._failed(run, run.last_failure, partial=partial)

    def _skip(self, run: RouteRun, slot: Slot) -> AttemptFailed | None:
        """The recorded skip of a candidate that is not to be tried; None to try it."""
        why = self._skip_reason(run, slot)
        if why is None:
            return None
        attempt = self._attempt_record(slot.candidate, why[0], message=why[1])
        run.attempts.append(attempt)
        return AttemptFailed(attempt, next_model=slot.next_model)

    def _skip_reason(self, run: RouteRun, slot: Slot) -> tuple[AttemptOutcome, str] | None:
        """Why a candidate is not tried (its outcome and message), or None."""
        prepared = run.prepared
        candidate = slot.candidate
        provider = self.providers.settings.get(candidate.provider)
        if provider is None:  # e.g. a working-directory provider left out by the trust rule
            return "skipped_no_provider", not_configured(candidate.provider)
        if prepared.needs:
            slot.capabilities = self.catalog.capabilities(candidate.model, candidate.provider)
            need = unmet_need(slot.capabilities, prepared.needs)
            if need is not None:  # never send a model something it would not honour
                return "skipped_unsupported", unmet_reason(need, candidate.model, slot.capabilities)
        too_long = run.context.skip_reason(
            candidate.api_model,
            self.catalog.context_window(candidate.model, candidate.provider),
            provider.kind,
        )
        if too_long is not None:  # it would refuse the request: not worth a call
            return "skipped_context", too_long
        if prepared.budget is not None and self.selection.paid(candidate):
            return "skipped_budget", prepared.budget.short()
        if not provider.has_key:
            return "skipped_no_key", f"no API key: set {provider.api_key_env or 'its API key'}"
        return self._circuit_skip(run, slot)

    def _circuit_skip(self, run: RouteRun, slot: Slot) -> tuple[AttemptOutcome, str] | None:
        """Skip a candidate whose circuit is open; claim the probe of a half-open one."""
        if slot.is_last:
            return None  # the last candidate is always tried, even with an open circuit
        key = slot.candidate.key
        if not self.breaker.allow(key):
            remaining = self.breaker.remaining_s(key)
            return "skipped_circuit_open", (
                f"cooling down for {remaining:.0f}s after repeated failures"
            )
        if self.breaker.state(key) == "half_open":
            run.probe_key = key
        return None

    def _cache_lookup(self, run: RouteRun, slot: Slot) -> CachedReply | None:
        """The cached reply of this candidate to this request, when the cache may answer."""
        prepared = run.prepared
        # Computed for every tried candidate: the reply is cached under it too.
        slot.cache_key = cache_key(
            slot.candidate.key,
            prepared.messages,
            prepared.system,
            prepared.temperature,
            prepared.max_tokens,
            params=prepared.params,
        )
        if not run.use_cache or prepared.ignore_cache or run.delivered:
            return None
        assert self.store is not None
        hit = self.store.cache_get(slot.cache_key)
        if hit is None:
            self.metrics.cache_misses += 1
            return None
        self.metrics.cache_hits += 1
        self._release_probe(run)
        return hit

    async def _answer_from_cache(self, run: RouteRun, slot: Slot, hit: CachedReply) -> Result:
        """The recorded Result of a cache hit (its text was replayed)."""
        run.attempts.append(self._attempt_record(slot.candidate, "cache_hit"))
        return await self._finish(
            run,
            status="ok",
            candidate=slot.candidate,
            text=hit.text,
            usage=hit.usage,
            finish_reason=hit.finish_reason,
            from_cache=True,
            ttft=None,
            tool_calls=list(hit.tool_calls),
        )

    async def _try_candidate(
        self, run: RouteRun, slot: Slot, allow_restart: bool
    ) -> AsyncGenerator[Event, None]:
        """Attempts on one candidate, retried or continued as the policy says, until it
        answers, the route moves on to the next candidate, or the request ends."""
        provider = self.providers.get(slot.candidate.provider)
        tries = Tries()
        while True:
            if self._clock() >= run.deadline:
                yield await self._deadline_failed(run)
                return
            attempt = self._new_attempt(run, slot)
            async with aclosing(
                stream_attempt(
                    provider,
                    run,
                    attempt,
                    model=slot.candidate.model,
                    allow_restart=allow_restart,
                    clock=self._clock,
                    redactor=self._redactor,
                )
            ) as events:
                async for event in events:
                    yield event
            attempt.ms = (self._clock() - attempt.started) * 1000
            if attempt.unsynced:
                async with aclosing(self._diverged(run, slot, attempt, allow_restart)) as events:
                    async for event in events:
                        yield event
                if run.recorded:
                    return
            if attempt.failure is None and attempt.end is not None:
                yield Done(await self._succeed(run, slot, attempt, attempt.end))
                return
            async with aclosing(
                self._after_failure(run, slot, attempt, tries, allow_restart)
            ) as events:
                async for event in events:
                    yield event
            if not tries.again:
                return

    def _new_attempt(self, run: RouteRun, slot: Slot) -> AttemptRun:
        """The next call to a candidate: a fresh answer, or a continuation of the delivered
        text (prefilled, or regenerated and resynced)."""
        prepared = run.prepared
        candidate = slot.candidate
        mode = self._recovery.continue_mode(run, candidate)
        messages = prepared.messages
        if mode == "prefill":
            messages = (*messages, Message("assistant", "".join(run.delivered)))
        call = ProviderCall(
            candidate.api_model,
            messages,
            prepared.system,
            prepared.temperature,
            prepared.max_tokens,
            self._timeouts,
            prepared.params,
            slot.capabilities,
        )
        started = self._clock()
        wall_start = time.time()
        delivered_before = sum(map(len, run.delivered))
        attempt = AttemptRun(call, messages, mode, started, wall_start, delivered_before)
        if mode == "regenerate":
            attempt.resync = Resync("".join(run.delivered))
        return attempt

    async def _diverged(
        self, run: RouteRun, slot: Slot, attempt: AttemptRun, allow_restart: bool
    ) -> AsyncGenerator[Event, None]:
        """A regenerated answer ended without reproducing the delivered text: it is never
        spliced on. A whole-reply caller is restarted onto it; a streaming caller's request
        fails."""
        resync = attempt.resync
        assert resync is not None
        reason = diverged_message(resync)
        candidate = slot.candidate
        if not allow_restart:
            run.attempts.append(
                Attempt(
                    candidate.model,
                    candidate.provider,
                    "error",
                    error="diverged",
                    message=reason,
                    ms=attempt.ms,
                    started_at=attempt.wall_start,
                )
            )
            self._release_probe(run)
            failure = ProviderFailure("stream_cut", reason)
            yield await self._failed(run, failure, partial="".join(run.delivered))
            return
        yield Restart(reason, candidate.model)
        run.restart()
        if "".join(resync.received):
            yield run.deliver("".join(resync.received), self._clock)
        attempt.restarted = True

    async def _succeed(
        self, run: RouteRun, slot: Slot, attempt: AttemptRun, end: StreamEnd
    ) -> Result:
        """The candidate answered: its circuit closes, and the reply is recorded (and cached
        when it ended normally)."""
        prepared = run.prepared
        candidate = slot.candidate
        self.breaker.record_success(candidate.key)
        run.probe_key = None
        text = "".join(run.delivered)
        usage = end.usage or estimate_usage(
            attempt.messages, prepared.system, "".join(attempt.parts), candidate.api_model
        )
        if run.spent is not None:
            usage = add_usage(run.spent, usage)
        outcome, note = _success_outcome(attempt)
        run.attempts.append(
            Attempt(
                candidate.model,
                candidate.provider,
                outcome,
                message=note,
                ms=attempt.ms,
                started_at=attempt.wall_start,
            )
        )
        calls = attempt.tool_calls.calls()
        cache_write = None
        if run.use_cache and end.finish_reason in _COMPLETE_FINISHES:
            reply = CachedReply(
                text, end.finish_reason, usage, candidate.model, candidate.provider, tuple(calls)
            )
            cache_write = CacheWrite(slot.cache_key, reply, self.settings.cache.ttl_s)
        return await self._finish(
            run,
            status="ok",
            candidate=candidate,
            text=text,
            usage=usage,
            finish_reason=end.finish_reason,
            from_cache=False,
            ttft=run.ttft,
            cache_write=cache_write,
            tool_calls=calls,
        )

    async def _after_failure(
        self, run: RouteRun, slot: Slot, attempt: AttemptRun, tries: Tries, allow_restart: bool
    ) -> AsyncGenerator[Event, None]:
        """The failed attempt recorded and its next step taken: another attempt on this
        candidate (`tries.again`), the next candidate, or the request's end."""
        failure, record = self._recovery.record_failure(run, slot, attempt)
        step = self._recovery.next_step(run, slot, attempt, tries, failure, record, allow_restart)
        tries.again = step.kind == "again"
        if step.kind == "deadline":
            yield await self._deadline_failed(run)
            return
        if step.kind == "fail":
            yield await self._failed(run, failure, partial="".join(run.delivered))
            return
        assert step.notice is not None
        yield step.notice
        if step.restart_to is not None:
            yield Restart(failure.message, step.restart_to)
            run.restart()
        if step.delay_s is not None:
            await self._sleep(step.delay_s)

    def _release_probe(self, run: RouteRun) -> None:
        if run.probe_key is not None:
            self.breaker.release_probe(run.probe_key)
            run.probe_key = None

    @staticmethod
    def _attempt_record(candidate: Resolution, outcome: Any, message: str | None = None) -> Attempt:
        return Attempt(
            candidate.model, candidate.provider, outcome, message=message, started_at=time.time()
        )

    # ---- the end: a Result, recorded ----------------------------------------------------------

    async def _deadline_failed(self, run: RouteRun) -> Failed:
        limit = self.settings.routing.total_timeout_s
        failure = ProviderFailure("timeout", f"total_timeout_s ({limit:g}s) exceeded")
        result = await self._finish(
            run,
            status="error",
            error=error_summary(run, failure.message),
            error_kind="deadline",
            text="".join(run.partial),
        )
        return Failed(result)

    async def _failed(self, run: RouteRun, failure: ProviderFailure | None, partial: str) -> Failed:
        if failure is None:
            reason = "no candidate could be tried"
            kind = "no_candidates"
        else:
            reason, kind = failure.message, failure.kind
        status_kind = kind if kind in ("content_filter", "bad_request") else "all_failed"
        if _too_long_everywhere(run.attempts):
            # The caller's request, not the models, is at fault: say so (HTTP 400, not 502).
            status_kind = "context_length"
            reason = (
                "the request is too long for every candidate's context window; shorten it, "
                "or use a model with a larger window"
            )
        if partial:
            status_kind = "stream_failed"
        result = await self._finish(
            run,
            status="error",
            error=error_summary(run, reason),
            error_kind=status_kind,
            text=partial,
        )
        return Failed(result)

    async def _finish(
        self, run: RouteRun, *, cache_write: CacheWrite | None = None, **outcome: Any
    ) -> Result:
        """The Result of `run`, recorded (with `cache_write`) before it is returned."""
        result = self._result(run, **outcome)
        if self._batcher is not None:
            await self._batcher.record(result, cache_write)  # calls _recorded
        else:
            self._notify(result)
        return result

    def _result(self, run: RouteRun, **outcome: Any) -> Result:
        latency = (self._clock() - run.t0) * 1000
        return build_result(
            run, self.selection, latency=latency, demo=self.settings.demo, **outcome
        )

    def _recorded(self, result: Result, warnings: list[str]) -> None:
        """A result is in the store (listeners hear of it even if its caller was cancelled)."""
        result.warnings.extend(warnings)
        self._notify(result)

    def _notify(self, result: Result) -> None:
        self.selection.recorded(result)  # spend toward [budget]
        self.metrics.result(result)
        if _log.isEnabledFor(logging.DEBUG):
            log_result(_log, result)
        for listener in self._listeners:
            # A broken UI callback must not lose the reply: it is logged and goes no further.
            call_safely(listener, result, "a request listener", _log, "the reply was delivered")


def _replay(hit: CachedReply) -> Iterator[Delta | ToolCallDelta]:
    """A cached reply's text and tool calls, as the events of a streamed one."""
    if hit.text or not hit.tool_calls:
        yield Delta(hit.text)
    for position, tool_call in enumerate(hit.tool_calls):
        yield ToolCallDelta(
            position,
            tool_call.id,
            tool_call.name,
            tool_call.arguments,
            tool_call.signature,
        )


def _too_long_everywhere(attempts: list[Attempt]) -> bool:
    """Was every candidate skipped or refused because the request is too long for it?"""
    return bool(attempts) and all(
        a.outcome == "skipped_context" or a.error == "context_length" for a in attempts
    )


def _success_outcome(attempt: AttemptRun) -> tuple[AttemptOutcome, str | None]:
    """The successful attempt's outcome and note (how it continued an answer, if it did)."""
    if attempt.restarted:
        return "ok", "regenerated answer differed; it replaced the old one"
    if attempt.mode is not None:
        return "continued", continued_note(attempt.delivered_before, attempt.mode)
    return "ok", None
