"""One attempt's stream: the provider's items read under the time limits and turned into
the caller's events (text delivered, a regenerated answer resynced, tool calls passed on).

The attempt's end or failure is left on its AttemptRun for the router to act on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import aclosing

from .continuation import Resync
from .providers.base import (
    Provider,
    ProviderCall,
    ProviderFailure,
    StreamEnd,
    StreamItem,
    TextChunk,
    Timeouts,
)
from .redact import Redactor
from .route_state import AttemptRun, RouteRun
from .types import Event, Restart, ToolCallDelta


async def stream_attempt(
    provider: Provider,
    run: RouteRun,
    attempt: AttemptRun,
    *,
    model: str,
    allow_restart: bool,
    clock: Callable[[], float],
    redactor: Redactor,
) -> AsyncGenerator[Event, None]:
    """The attempt's reply as events; its StreamEnd or (redacted) failure kept on `attempt`."""
    try:
        async with aclosing(timed_stream(provider, attempt.call, run.deadline, clock)) as items:
            async for item in items:
                if isinstance(item, StreamEnd):
                    attempt.end = item
                    continue
                if attempt.resync is not None:
                    for event in resynced(run, attempt, item, model, allow_restart, clock):
                        yield event
                    if attempt.abandoned:
                        break
                    if isinstance(item, TextChunk):
                        continue
                if isinstance(item, TextChunk):
                    attempt.parts.append(item.text)
                    yield run.deliver(item.text, clock)
                else:
                    if run.ttft is None:
                        run.ttft = (clock() - run.t0) * 1000
                    run.tool_calls_sent = True
                    attempt.tool_calls.add(item)
                    yield item
    except ProviderFailure as exc:
        exc.message = redactor.text(exc.message)
        attempt.failure = exc


def resynced(
    run: RouteRun,
    attempt: AttemptRun,
    item: TextChunk | ToolCallDelta,
    model: str,
    allow_restart: bool,
    clock: Callable[[], float],
) -> Iterator[Event]:
    """Events for one item of a regenerated answer: nothing while it repeats the delivered
    text, what comes after it once it has; on divergence, a Restart and the new answer
    (whole-reply callers) or `attempt.abandoned` (streaming callers)."""
    resync = attempt.resync
    assert resync is not None
    if isinstance(item, TextChunk):
        attempt.parts.append(item.text)
        text = resync.feed(item.text)
    else:
        text = ""
        resync.diverged = resync.diverged or not resync.synced
    if resync.diverged:
        if not allow_restart:
            attempt.abandoned = True
            return
        # Whole-reply callers take the new answer instead.
        yield Restart(diverged_message(resync), model)
        run.restart()
        text = "".join(resync.received)
        attempt.resync, attempt.restarted = None, True
    if text:
        yield run.deliver(text, clock)


async def timed_stream(
    provider: Provider, call: ProviderCall, deadline: float, clock: Callable[[], float]
) -> AsyncGenerator[StreamItem, None]:
    """The provider's stream with first-token, idle, attempt and total limits applied."""
    limits = call.timeouts
    attempt_deadline = min(clock() + limits.attempt_s, deadline)
    got_text = False
    async with aclosing(provider.stream(call)) as items:
        iterator = aiter(items)
        while True:
            budget = attempt_deadline - clock()
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
                raise _timed_out(limits, wait, budget, got_text) from None
            if not isinstance(item, StreamEnd):
                got_text = True  # text or a tool call: the reply has begun
            yield item


def _timed_out(limits: Timeouts, wait: float, budget: float, got_text: bool) -> ProviderFailure:
    """The failure for a wait that ran out: which limit it was decides its kind."""
    if wait >= budget:
        return ProviderFailure(
            "timeout",
            f"no complete reply within {min(limits.attempt_s, wait):g}s",
            got_output=got_text,
        )
    if got_text:
        return ProviderFailure(
            "stream_stalled",
            f"stream stalled: no data for {limits.stream_idle_s:g}s",
            got_output=True,
        )
    return ProviderFailure(
        "first_token_timeout", f"no first token within {limits.first_token_s:g}s"
    )


def diverged_message(resync: Resync) -> str:
    return (
        "the regenerated answer differs from the text already delivered (it matched "
        f"{resync.matched_chars} of its non-space characters); answers are never spliced"
    )
