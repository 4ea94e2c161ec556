"""The router: one streaming path for every request, with cache, retries, fallback and limits.

Every front-end calls `Router.stream()` (or `complete()`, which collects it). Events:
Started, Delta* / ToolCallDelta*, AttemptFailed*, Restart*, then exactly one Done or Failed.
The request is recorded once, here, whatever happens (also when the caller cancels).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Protocol

from .auto import is_auto
from .budget import BudgetBlock
from .cache import CachedReply, cache_key
from .callbacks import call_safely
from .capabilities import (
    Capabilities,
    Need,
    UnsupportedParameterError,
    required_capabilities,
    unmet_need,
    unmet_reason,
)
from .catalog import Catalog, Resolution
from .config import Settings
from .continuation import ContinueMode, Resync, add_usage, continued_note
from .errors import InputError
from .messages import check_conversation, message_from_openai, prompt_text
from .metrics import Metrics
from .params import GenerationParams
from .policy import CircuitBreaker, decide
from .providers import ProviderPool
from .providers.base import (
    Provider,
    ProviderCall,
    ProviderFailure,
    StreamEnd,
    StreamItem,
    TextChunk,
    Timeouts,
)
from .record_batch import BatchSink, RecordBatcher
from .recorder import CacheWrite
from .redact import Redactor
from .selection import Selection
from .templates import TemplateSet
from .textcheck import require_valid_text
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
    ImagePart,
    Message,
    Restart,
    Result,
    Started,
    ToolCall,
    ToolCallDelta,
    Usage,
)

# Finish reasons of a reply that ended normally and may be cached.
_COMPLETE_FINISHES = frozenset({"stop", "length", "end_turn", "eos", "tool_calls"})
# Failures that break a stream mid-answer: a continuation tries the same model again first.
_BREAKS = frozenset({"stream_cut", "stream_stalled", "malformed", "timeout", "server_error"})
_NO_PARAMS = GenerationParams()
_NO_CAPABILITIES = Capabilities()
_log = logging.getLogger(__name__)


class RecordSink(BatchSink, Protocol):
    """What the router needs from the store (see core.store.Store)."""

    def cache_get(self, key: str) -> CachedReply | None: ...


@dataclass(slots=True)
class Prepared:
    """A validated request with its messages resolved and its candidates chosen."""

    prompt_id: str
    requested_model: str
    candidates: list[Resolution]
    messages: tuple[Message, ...]
    system: str | None
    temperature: float | None
    max_tokens: int | None
    ignore_cache: bool
    prompt: str
    template_id: str | None = None
    conversation_id: str | None = None
    notice: str | None = None
    source: str = "core"
    params: GenerationParams = _NO_PARAMS
    # What the request asks of a model (capabilities.required_capabilities); candidates that
    # cannot honour it are skipped.
    needs: tuple[Need, ...] = ()
    # `auto` only: why the first candidate was chosen (the rest of its ranking follows).
    auto_reason: str | None = None
    # A reached [budget] limit: paid fallbacks are skipped (the first candidate is free).
    budget: BudgetBlock | None = None
    compare_id: str | None = None


class _ToolCalls:
    """Tool calls assembled from their streamed deltas (by index, in arrival order)."""

    __slots__ = ("_calls",)

    def __init__(self) -> None:
        self._calls: dict[int, list[Any]] = {}  # index -> [id, name, argument pieces, signature]

    def __bool__(self) -> bool:
        return bool(self._calls)

    def add(self, delta: ToolCallDelta) -> None:
        call = self._calls.setdefault(delta.index, [None, None, [], None])
        call[0] = call[0] or delta.id
        call[1] = call[1] or delta.name
        call[2].append(delta.arguments)
        call[3] = call[3] or delta.signature

    def calls(self) -> list[ToolCall]:
        return [
            ToolCall(call_id or f"call_{index}", name or "", "".join(pieces), signature)
            for index, (call_id, name, pieces, signature) in sorted(self._calls.items())
        ]


@dataclass(slots=True)
class _Run:
    """Mutable state of one routed request."""

    prepared: Prepared
    t0: float
    deadline: float
    attempts: list[Attempt] = field(default_factory=list)
    recorded: bool = False
    # Text the caller has been given since the last Restart (across continued attempts).
    delivered: list[str] = field(default_factory=list)
    probe_key: str | None = None
    ttft: float | None = None
    # Token counts of broken attempts whose text was delivered (a continued reply sums them).
    spent: Usage | None = None
    continuations: int = 0
    tool_calls_sent: bool = False

    @property
    def partial(self) -> list[str]:
        return self.delivered

    def restart(self) -> None:
        """The caller voided what it was given (a Restart event)."""
        self.delivered = []
        self.spent = None
        self.tool_calls_sent = False


_second_text: tuple[int, str] = (-1, "")


def _now_iso() -> str:
    """UTC now as 2026-01-02T03:04:05.678Z (the text of a second is reused within it)."""
    global _second_text
    now = time.time()
    second = int(now)
    if _second_text[0] != second:
        _second_text = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{_second_text[1]}.{int((now - second) * 1000):03d}Z"


def new_prompt_id() -> str:
    """32 hex digits: the time in milliseconds, then 80 random bits.

    Ids that grow with time insert at the end of the prompt_id indexes instead of at random
    places in them, so the requests recorded together touch one index page instead of one
    each (a commit costs per page written); they also sort by time.
    """
    return f"{int(time.time() * 1000):012x}{os.urandom(10).hex()}"


def _check_text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"{name} must be a string, got {type(value).__name__}")
    return value


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
        self._rng = rng
        self._listeners: list[Callable[[Result], None]] = []
        # provider:model keys that refused an assistant prefill (remembered for the process).
        self._no_prefill: set[str] = set()
        # Some upstreams echo the key they rejected: never store, log or show it.
        self._redactor = Redactor.for_settings(settings, public=self.catalog.models)
        # `auto`, [budget] and prices (core/selection.py).
        self.selection = Selection(settings, self.catalog, self.providers, self.breaker, store)
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
        # Text no provider, database or log can take is the caller's fault: refused here,
        # before any attempt, so it never counts against a model's health.
        require_valid_text(request, "")
        model = request.model if request.model is not None else self.settings.default_model
        model = _check_text(model, "model")
        system = None if request.system is None else _check_text(request.system, "system")
        template_id = None
        sources = [
            request.prompt is not None,
            request.template_id is not None,
            request.messages is not None,
        ]
        if sum(sources) == 0:
            raise InputError("nothing to send: give a prompt, a template_id or messages")
        if sum(sources) > 1:
            raise InputError("give only one of prompt, template_id or messages")
        messages: list[Message]
        if request.prompt is not None:
            prompt = _check_text(request.prompt, "prompt")
            if not prompt.strip():
                raise InputError("prompt is empty; type something to send")
            messages = [Message("user", prompt)]
        elif request.template_id is not None:
            template_id = _check_text(request.template_id, "template_id")
            if self.templates is None:
                raise InputError("templates are not loaded; cannot use template_id")
            rendered = self.templates.render(template_id, request.template_vars or {})
            messages = [Message("user", rendered.prompt)]
            if system is None:
                system = rendered.system
        else:
            messages, system = self._check_messages(request.messages, system)
        temperature = request.temperature
        if temperature is not None and (
            isinstance(temperature, bool)
            or not isinstance(temperature, int | float)
            or not 0 <= temperature <= 2
        ):
            raise InputError(f"temperature must be a number from 0 to 2, got {temperature!r}")
        max_tokens = request.max_tokens
        if max_tokens is not None and (
            isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
        ):
            raise InputError(f"max_tokens must be a positive integer, got {max_tokens!r}")
        params = request.params or _NO_PARAMS
        compare_id = request.compare_id
        if compare_id is not None:
            compare_id = _check_text(compare_id, "compare_id")
        auto_reason = None
        if is_auto(model):
            needs = self._check_needs(messages, params, None)
            candidates, auto_reason, budget, _ = self.selection.choose(needs, template_id)
        else:
            candidates = self.catalog.candidates(model)
            needs = self._check_needs(messages, params, candidates[0])
            budget = self.selection.check_budget(candidates)
        return Prepared(
            prompt_id=new_prompt_id(),
            requested_model=model,
            candidates=candidates,
            messages=tuple(messages),
            system=system,
            temperature=None if temperature is None else float(temperature),
            max_tokens=max_tokens,
            ignore_cache=bool(request.ignore_cache),
            prompt=prompt_text(messages),
            template_id=template_id,
            conversation_id=request.conversation_id,
            notice=candidates[0].notice,
            source=request.source,
            params=params,
            needs=needs,
            auto_reason=auto_reason,
            budget=budget,
            compare_id=compare_id,
        )

    def _check_needs(
        self, messages: Sequence[Message], params: GenerationParams, first: Resolution | None
    ) -> tuple[Need, ...]:
        """What the request asks of a model; refused here when the requested model cannot
        honour it (never silently sent elsewhere)."""
        if not self.settings.routing.fetch_image_urls:
            for index, message in enumerate(messages):
                if not message.images:
                    continue
                for at, part in enumerate(message.content):
                    if isinstance(part, ImagePart) and not part.is_data_url:
                        raise InputError(
                            f"messages[{index}].content[{at}]: http(s) image URLs are not "
                            "fetched unless [routing] fetch_image_urls = true; send the image "
                            "as a data:image/...;base64 URL"
                        )
        needs = required_capabilities(messages, params)
        if needs and first is not None:
            capabilities = self.catalog.capabilities(first.model, first.provider)
            need = unmet_need(capabilities, needs)
            if need is not None:
                raise UnsupportedParameterError(
                    need.parameter, first.model, unmet_reason(need, first.model, capabilities)
                )
        return needs

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
        run = _Run(prepared, start, start + self.settings.routing.total_timeout_s)
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

    # ---- internals ----------------------------------------------------------------------------

    @staticmethod
    def _check_messages(raw: object, system: str | None) -> tuple[list[Message], str | None]:
        """Messages (Message objects or OpenAI-shaped dicts) checked, in order.

        System messages keep their positions. A leading one becomes `system` when there is
        none: it is sent first either way, and requests that always did this keep their
        cache keys.
        """
        if not isinstance(raw, list | tuple) or not raw:
            raise InputError("messages must be a non-empty list of {role, content} objects")
        messages = [message_from_openai(item, index) for index, item in enumerate(raw)]
        first = messages[0]
        if system is None and first.role == "system" and isinstance(first.content, str):
            messages.pop(0)
            system = first.content
        check_conversation(messages)
        return messages, system

    async def _route(self, run: _Run, allow_restart: bool) -> AsyncGenerator[Event, None]:
        prepared = run.prepared
        candidates = prepared.candidates
        yield Started(
            prepared.prompt_id, prepared.requested_model, candidates[0].model, prepared.notice
        )
        cache = self.settings.cache
        use_cache = self.store is not None and cache.enabled
        last_failure: ProviderFailure | None = None
        for index, candidate in enumerate(candidates):
            is_last = index == len(candidates) - 1
            next_model = candidates[index + 1].model if not is_last else None
            capabilities = _NO_CAPABILITIES
            if prepared.needs:
                capabilities = self.catalog.capabilities(candidate.model, candidate.provider)
                need = unmet_need(capabilities, prepared.needs)
                if need is not None:  # never send a model something it would not honour
                    attempt = self._attempt_record(
                        candidate,
                        "skipped_unsupported",
                        message=unmet_reason(need, candidate.model, capabilities),
                    )
                    run.attempts.append(attempt)
                    yield AttemptFailed(attempt, next_model=next_model)
                    continue
            if prepared.budget is not None and self.selection.paid(candidate):
                attempt = self._attempt_record(
                    candidate, "skipped_budget", message=prepared.budget.short()
                )
                run.attempts.append(attempt)
                yield AttemptFailed(attempt, next_model=next_model)
                continue
            if not self.providers.has_key(candidate.provider):
                env = self.providers.settings[candidate.provider].api_key_env or "its API key"
                attempt = self._attempt_record(
                    candidate, "skipped_no_key", message=f"no API key: set {env}"
                )
                run.attempts.append(attempt)
                yield AttemptFailed(attempt, next_model=next_model)
                continue
            if is_last:
                pass  # the last candidate is always tried, even with an open circuit
            elif not self.breaker.allow(candidate.key):
                remaining = self.breaker.remaining_s(candidate.key)
                attempt = self._attempt_record(
                    candidate,
                    "skipped_circuit_open",
                    message=f"cooling down for {remaining:.0f}s after repeated failures",
                )
                run.attempts.append(attempt)
                yield AttemptFailed(attempt, next_model=next_model)
                continue
            elif self.breaker.state(candidate.key) == "half_open":
                run.probe_key = candidate.key
            key = cache_key(
                candidate.key,
                prepared.messages,
                prepared.system,
                prepared.temperature,
                prepared.max_tokens,
                params=prepared.params,
            )
            if use_cache and not prepared.ignore_cache and not run.delivered:
                assert self.store is not None
                hit = self.store.cache_get(key)
                if hit is None:
                    self.metrics.cache_misses += 1
                else:
                    self.metrics.cache_hits += 1
                    self._release_probe(run)
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
                    run.attempts.append(self._attempt_record(candidate, "cache_hit"))
                    result = await self._finish(
                        run,
                        status="ok",
                        candidate=candidate,
                        text=hit.text,
                        usage=hit.usage,
                        finish_reason=hit.finish_reason,
                        from_cache=True,
                        ttft=None,
                        tool_calls=list(hit.tool_calls),
                    )
                    yield Done(result)
                    return
            provider = self.providers.get(candidate.provider)
            retries = 0
            continued_here = False  # a continuation already went to this candidate
            while True:
                if self._clock() >= run.deadline:
                    yield await self._deadline_failed(run)
                    return
                mode = self._continue_mode(run, candidate)
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
                    capabilities,
                )
                attempt_start = self._clock()
                wall_start = time.time()
                delivered_before = sum(map(len, run.delivered))
                resync = Resync("".join(run.delivered)) if mode == "regenerate" else None
                restarted = False  # a regenerated answer differed and replaced the old one
                parts: list[str] = []  # what this attempt produced (for its usage)
                tool_calls = _ToolCalls()
                end: StreamEnd | None = None
                failure: ProviderFailure | None = None
                try:
                    async with aclosing(self._timed(provider, call, run.deadline)) as items:
                        async for item in items:
                            if isinstance(item, StreamEnd):
                                end = item
                                continue
                            if resync is not None:
                                if isinstance(item, TextChunk):
                                    parts.append(item.text)
                                    text = resync.feed(item.text)
                                else:
                                    text = ""
                                    resync.diverged = resync.diverged or not resync.synced
                                if resync.diverged:
                                    if not allow_restart:
                                        break
                                    # Whole-reply callers take the new answer instead.
                                    reason = _diverged_message(resync)
                                    yield Restart(reason, candidate.model)
                                    run.restart()
                                    text = "".join(resync.received)
                                    resync, restarted = None, True
                                if text:
                                    yield self._deliver(run, text)
                                if isinstance(item, TextChunk):
                                    continue
                            if isinstance(item, TextChunk):
                                parts.append(item.text)
                                yield self._deliver(run, item.text)
                            else:
                                if run.ttft is None:
                                    run.ttft = (self._clock() - run.t0) * 1000
                                run.tool_calls_sent = True
                                tool_calls.add(item)
                                yield item
                except ProviderFailure as exc:
                    failure = exc
                    failure.message = self._redactor.text(failure.message)
                elapsed_ms = (self._clock() - attempt_start) * 1000
                if resync is not None and failure is None and not resync.synced:
                    # A different (or shorter) answer: never splice it onto the delivered one.
                    reason = _diverged_message(resync)
                    if not allow_restart:
                        run.attempts.append(
                            Attempt(
                                candidate.model,
                                candidate.provider,
                                "error",
                                error="diverged",
                                message=reason,
                                ms=elapsed_ms,
                                started_at=wall_start,
                            )
                        )
                        self._release_probe(run)
                        failure = ProviderFailure("stream_cut", reason)
                        yield await self._failed(run, failure, partial="".join(run.delivered))
                        return
                    yield Restart(reason, candidate.model)
                    run.restart()
                    if "".join(resync.received):
                        yield self._deliver(run, "".join(resync.received))
                    restarted = True
                if failure is None and end is not None:
                    self.breaker.record_success(candidate.key)
                    run.probe_key = None
                    text = "".join(run.delivered)
                    usage = end.usage or estimate_usage(
                        messages, prepared.system, "".join(parts), candidate.api_model
                    )
                    if run.spent is not None:
                        usage = add_usage(run.spent, usage)
                    outcome: AttemptOutcome
                    if restarted:
                        outcome, note = "ok", "regenerated answer differed; it replaced the old one"
                    elif mode is not None:
                        outcome, note = "continued", continued_note(delivered_before, mode)
                    else:
                        outcome, note = "ok", None
                    run.attempts.append(
                        Attempt(
                            candidate.model,
                            candidate.provider,
                            outcome,
                            message=note,
                            ms=elapsed_ms,
                            started_at=wall_start,
                        )
                    )
                    calls = tool_calls.calls()
                    cache_write = None
                    if use_cache and end.finish_reason in _COMPLETE_FINISHES:
                        reply = CachedReply(
                            text,
                            end.finish_reason,
                            usage,
                            candidate.model,
                            candidate.provider,
                            tuple(calls),
                        )
                        cache_write = CacheWrite(key, reply, cache.ttl_s)
                    result = await self._finish(
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
                    yield Done(result)
                    return
                if failure is None:  # pragma: no cover - providers always end with StreamEnd
                    failure = ProviderFailure("stream_cut", "stream ended without an end marker")
                last_failure = failure
                attempt = Attempt(
                    candidate.model,
                    candidate.provider,
                    "timeout" if "timeout" in failure.kind else "error",
                    status=failure.status,
                    error=failure.kind,
                    message=failure.message,
                    ms=elapsed_ms,
                    started_at=wall_start,
                )
                run.attempts.append(attempt)
                if mode == "prefill" and failure.kind == "bad_request":
                    # The model refused the trailing assistant message: remember that for
                    # this process, and regenerate instead.
                    self._no_prefill.add(candidate.key)
                    attempt.message = f"prefill refused: {failure.message}"
                    yield AttemptFailed(attempt, will_retry_in_s=0.0)
                    continue
                self.breaker.record_failure(candidate.key, failure.kind)
                if run.probe_key == candidate.key and self.breaker.state(candidate.key) != "closed":
                    run.probe_key = None  # the probe reopened the circuit
                if parts:
                    used = estimate_usage(
                        messages, prepared.system, "".join(parts), candidate.api_model
                    )
                    run.spent = add_usage(run.spent, used)
                got_output = bool(run.delivered) or bool(tool_calls)
                can_continue = self._can_continue(run)
                decision = decide(
                    failure.kind,
                    retries_done=retries,
                    retry_after_s=failure.retry_after_s,
                    got_output=got_output and not can_continue,
                    time_left_s=run.deadline - self._clock(),
                    settings=self.settings.routing,
                    rng=self._rng,
                )
                if self._clock() >= run.deadline:
                    yield await self._deadline_failed(run)
                    return
                if can_continue and decision.action != "stop":
                    run.continuations += 1
                    same_model = decision.action == "retry" or (
                        failure.kind in _BREAKS and not continued_here
                    )
                    if same_model:
                        # The same model once: it was answering, the break may be passing;
                        # a second break there moves the continuation to the next candidate.
                        continued_here = True
                        yield AttemptFailed(attempt, will_retry_in_s=decision.delay_s)
                        if decision.delay_s:
                            await self._sleep(decision.delay_s)
                        retries += 1
                        continue
                    yield AttemptFailed(attempt, next_model=next_model)
                    break
                if decision.action == "stop" or (got_output and not allow_restart):
                    yield await self._failed(run, failure, partial="".join(run.delivered))
                    return
                if decision.action == "retry":
                    yield AttemptFailed(attempt, will_retry_in_s=decision.delay_s)
                    if got_output:
                        yield Restart(failure.message, candidate.model)
                        run.restart()
                    await self._sleep(decision.delay_s)
                    retries += 1
                    continue
                yield AttemptFailed(attempt, next_model=next_model)
                if got_output and next_model is not None:
                    yield Restart(failure.message, next_model)
                    run.restart()
                break
        # A whole-reply caller never gets a partial answer; a streaming one has it already.
        partial = "" if allow_restart else "".join(run.delivered)
        yield await self._failed(run, last_failure, partial=partial)

    async def _timed(
        self, provider: Provider, call: ProviderCall, deadline: float
    ) -> AsyncGenerator[StreamItem, None]:
        """The provider's stream with first-token, idle, attempt and total limits applied."""
        limits = call.timeouts
        attempt_deadline = min(self._clock() + limits.attempt_s, deadline)
        got_text = False
        async with aclosing(provider.stream(call)) as items:
            iterator = aiter(items)
            while True:
                budget = attempt_deadline - self._clock()
                phase = limits.stream_idle_s if got_text else limits.first_token_s
                wait = min(phase, budget)
                if wait <= 0:
                    raise ProviderFailure(
                        "timeout", "attempt timeout: no complete reply in time", got_output=got_text
                    )
                try:
                    async with asyncio.timeout(wait):
                        item = await anext(iterator)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    if wait >= budget:
                        raise ProviderFailure(
                            "timeout",
                            f"no complete reply within {min(limits.attempt_s, wait):g}s",
                            got_output=got_text,
                        ) from None
                    if got_text:
                        raise ProviderFailure(
                            "stream_stalled",
                            f"stream stalled: no data for {limits.stream_idle_s:g}s",
                            got_output=True,
                        ) from None
                    raise ProviderFailure(
                        "first_token_timeout", f"no first token within {limits.first_token_s:g}s"
                    ) from None
                if not isinstance(item, StreamEnd):
                    got_text = True  # text or a tool call: the reply has begun
                yield item

    def _deliver(self, run: _Run, text: str) -> Delta:
        """`text` as given to the caller (kept for a continuation or a partial record)."""
        if run.ttft is None:
            run.ttft = (self._clock() - run.t0) * 1000
        run.delivered.append(text)
        return Delta(text)

    def _continue_mode(self, run: _Run, candidate: Resolution) -> ContinueMode | None:
        """How the next attempt continues the delivered text; None for a fresh answer."""
        if not run.delivered:
            return None
        capabilities = self.catalog.capabilities(candidate.model, candidate.provider)
        if capabilities.prefill and candidate.key not in self._no_prefill:
            return "prefill"
        return "regenerate"

    def _can_continue(self, run: _Run) -> bool:
        """May a broken stream's delivered text be continued by another attempt?"""
        routing = self.settings.routing
        return (
            routing.continue_broken_streams
            and bool(run.delivered)
            and not run.tool_calls_sent  # a half-sent tool call cannot be continued
            and run.continuations < routing.max_continuations
            and self._clock() < run.deadline
        )

    def _release_probe(self, run: _Run) -> None:
        if run.probe_key is not None:
            self.breaker.release_probe(run.probe_key)
            run.probe_key = None

    @staticmethod
    def _attempt_record(candidate: Resolution, outcome: Any, message: str | None = None) -> Attempt:
        return Attempt(
            candidate.model, candidate.provider, outcome, message=message, started_at=time.time()
        )

    async def _deadline_failed(self, run: _Run) -> Failed:
        limit = self.settings.routing.total_timeout_s
        failure = ProviderFailure("timeout", f"total_timeout_s ({limit:g}s) exceeded")
        result = await self._finish(
            run,
            status="error",
            error=self._error_summary(run, failure.message),
            error_kind="deadline",
            text="".join(run.partial),
        )
        return Failed(result)

    async def _failed(self, run: _Run, failure: ProviderFailure | None, partial: str) -> Failed:
        if failure is None:
            reason = "no candidate could be tried"
            kind = "no_candidates"
        else:
            reason, kind = failure.message, failure.kind
        status_kind = kind if kind in ("content_filter", "bad_request") else "all_failed"
        if partial:
            status_kind = "stream_failed"
        result = await self._finish(
            run,
            status="error",
            error=self._error_summary(run, reason),
            error_kind=status_kind,
            text=partial,
        )
        return Failed(result)

    @staticmethod
    def _error_summary(run: _Run, reason: str) -> str:
        tried = "; ".join(
            f"{a.model}: {a.error or a.outcome}" + (f" ({a.message})" if a.message else "")
            for a in run.attempts
        )
        return f"{reason}. Attempts: {tried}" if tried else reason

    async def _finish(
        self, run: _Run, *, cache_write: CacheWrite | None = None, **outcome: Any
    ) -> Result:
        """The Result of `run`, recorded (with `cache_write`) before it is returned."""
        result = self._result(run, **outcome)
        if self._batcher is not None:
            await self._batcher.record(result, cache_write)  # calls _recorded
        else:
            self._notify(result)
        return result

    def _recorded(self, result: Result, warnings: list[str]) -> None:
        """A result is in the store (listeners hear of it even if its caller was cancelled)."""
        result.warnings.extend(warnings)
        self._notify(result)

    def _notify(self, result: Result) -> None:
        self.selection.recorded(result)  # spend toward [budget]
        self.metrics.result(result)
        if _log.isEnabledFor(logging.DEBUG):
            _log_result(result)
        for listener in self._listeners:
            # A broken UI callback must not lose the reply: it is logged and goes no further.
            call_safely(listener, result, "a request listener", _log, "the reply was delivered")

    def _result(
        self,
        run: _Run,
        *,
        status: Any,
        candidate: Resolution | None = None,
        text: str = "",
        usage: Usage | None = None,
        finish_reason: str | None = None,
        from_cache: bool = False,
        ttft: float | None = None,
        error: str | None = None,
        error_kind: str | None = None,
        tool_calls: list[ToolCall] | None = None,
    ) -> Result:
        prepared = run.prepared
        latency = (self._clock() - run.t0) * 1000
        if status == "cancelled" and not text:
            text = "".join(run.partial)
        first = prepared.candidates[0]
        notice = prepared.notice
        truncated = finish_reason == "length"
        if truncated:
            cut = "the reply was cut at max_tokens (finish reason: length)"
            notice = f"{notice} {cut}" if notice else cut.capitalize()
        usage = usage or Usage()
        cost, cost_estimated, saved = self.selection.cost(
            candidate, usage, ok=status == "ok", from_cache=from_cache
        )
        result = Result(
            prompt_id=prepared.prompt_id,
            requested_model=prepared.requested_model,
            model_used=candidate.model if candidate else None,
            provider=candidate.provider if candidate else None,
            prompt=prepared.prompt,
            response_text=text,
            status=status,
            latency_ms=latency,
            ttft_ms=latency if from_cache else ttft,
            usage=usage,
            from_cache=from_cache,
            fallback_used=candidate is not None and candidate.key != first.key,
            attempts=list(run.attempts),
            created_at=_now_iso(),
            finish_reason=finish_reason,
            truncated=truncated,
            template_id=prepared.template_id,
            conversation_id=prepared.conversation_id,
            notice=notice,
            error=error,
            error_kind=error_kind if status != "cancelled" else "cancelled",
            demo=self.settings.demo,
            source=prepared.source,
            tool_calls=tool_calls or [],
            cost_usd=cost,
            cost_estimated=cost_estimated,
            saved_usd=saved,
            auto_reason=prepared.auto_reason,
            compare_id=prepared.compare_id,
        )
        run.recorded = True  # from here on, a cancel must not record a second result
        return result


def _log_result(result: Result) -> None:
    """One debug line per recorded request: what was routed where, never the text."""
    _log.debug(
        "request %s: %s from %s (requested %s) in %.1f ms, %d attempt(s)%s%s",
        result.prompt_id,
        result.status,
        result.model_used or "no model",
        result.requested_model,
        result.latency_ms,
        len(result.attempts),
        ", from cache" if result.from_cache else "",
        f", {result.error_kind}" if result.error_kind else "",
        extra={
            "prompt_id": result.prompt_id,
            "status": result.status,
            "requested_model": result.requested_model,
            "model": result.model_used,
            "latency_ms": round(result.latency_ms, 1),
            "ttft_ms": None if result.ttft_ms is None else round(result.ttft_ms, 1),
            "attempts": len(result.attempts),
            "from_cache": result.from_cache,
            "fallback_used": result.fallback_used,
            "error_kind": result.error_kind,
            "source": result.source,
        },
    )


def _diverged_message(resync: Resync) -> str:
    return (
        "the regenerated answer differs from the text already delivered (it matched "
        f"{resync.matched_chars} of its non-space characters); answers are never spliced"
    )


def attempts_text(attempts: Sequence[Attempt]) -> str:
    """One line per attempt, for terminals and error details."""
    lines = []
    for a in attempts:
        status = f" HTTP {a.status}" if a.status else ""
        reason = f": {a.message}" if a.message else ""
        lines.append(f"  {a.model} [{a.provider}] {a.outcome}{status} {a.ms:.0f} ms{reason}")
    return "\n".join(lines)
