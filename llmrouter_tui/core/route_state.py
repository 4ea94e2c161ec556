"""The state the router's steps pass between them: one request, one candidate, one attempt.

Plain data with the few operations that keep it consistent; the steps live in core/router.py
and core/attempts.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .capabilities import Capabilities
from .catalog import Resolution
from .context_fit import ContextFit
from .continuation import ContinueMode, Resync
from .prepare import Prepared
from .providers.base import ProviderCall, ProviderFailure, StreamEnd
from .types import Attempt, AttemptFailed, Delta, Message, ToolCall, ToolCallDelta, Usage

NO_CAPABILITIES = Capabilities()


class ToolCallParts:
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
class RouteRun:
    """Mutable state of one routed request."""

    prepared: Prepared
    t0: float
    deadline: float
    use_cache: bool = False
    attempts: list[Attempt] = field(default_factory=list)
    # Set when the request's Result is built: Done or Failed follows, and a cancel from here
    # on must not record a second result.
    recorded: bool = False
    # Text the caller has been given since the last Restart (across continued attempts).
    delivered: list[str] = field(default_factory=list)
    probe_key: str | None = None
    ttft: float | None = None
    # Token counts of broken attempts whose text was delivered (a continued reply sums them).
    spent: Usage | None = None
    continuations: int = 0
    tool_calls_sent: bool = False
    # The last attempt's failure: what a request that runs out of candidates reports.
    last_failure: ProviderFailure | None = None
    # Which candidates' context windows the request fits (core/context_fit.py).
    context: ContextFit = field(init=False)

    def __post_init__(self) -> None:
        prepared = self.prepared
        self.context = ContextFit(prepared.messages, prepared.system, prepared.max_tokens)

    @property
    def partial(self) -> list[str]:
        return self.delivered

    def restart(self) -> None:
        """The caller voided what it was given (a Restart event)."""
        self.delivered = []
        self.spent = None
        self.tool_calls_sent = False

    def deliver(self, text: str, clock: Callable[[], float]) -> Delta:
        """`text` as given to the caller (kept for a continuation or a partial record)."""
        if self.ttft is None:
            self.ttft = (clock() - self.t0) * 1000
        self.delivered.append(text)
        return Delta(text)


@dataclass(slots=True)
class Slot:
    """One candidate in its place in the request's fallback chain."""

    candidate: Resolution
    next_model: str | None
    is_last: bool
    # Looked up only when the request needs something of a model (sent with each call).
    capabilities: Capabilities = NO_CAPABILITIES
    cache_key: str = ""


def slots(candidates: Sequence[Resolution]) -> Iterator[Slot]:
    """The candidates in order, each knowing the model that follows it."""
    last = len(candidates) - 1
    for index, candidate in enumerate(candidates):
        is_last = index == last
        yield Slot(candidate, None if is_last else candidates[index + 1].model, is_last)


@dataclass(slots=True)
class Tries:
    """What the attempts on one candidate have done so far."""

    retries: int = 0
    # A continuation already went to this candidate (a second break moves it on).
    continued_here: bool = False
    # The last attempt's aftermath asks for another attempt on this candidate.
    again: bool = False


@dataclass(slots=True)
class AttemptRun:
    """One call to one candidate: what was sent and what came back."""

    call: ProviderCall
    messages: tuple[Message, ...]
    mode: ContinueMode | None
    started: float  # router clock
    wall_start: float  # epoch seconds, for the attempt record
    delivered_before: int  # characters the caller had when this attempt began
    # Regenerate mode: follows the new answer through the delivered text.
    resync: Resync | None = None
    # A regenerated answer differed and replaced the old one (after a Restart).
    restarted: bool = False
    # A regenerated answer diverged and the caller cannot take a Restart: stop reading.
    abandoned: bool = False
    parts: list[str] = field(default_factory=list)  # this attempt's text (for its usage)
    tool_calls: ToolCallParts = field(default_factory=ToolCallParts)
    end: StreamEnd | None = None
    failure: ProviderFailure | None = None
    ms: float = 0.0

    @property
    def unsynced(self) -> bool:
        """A regenerated answer ended (without failing) before reproducing the delivered text."""
        return self.resync is not None and self.failure is None and not self.resync.synced


@dataclass(frozen=True, slots=True)
class NextStep:
    """What follows a failed attempt (decided by the router, then taken in this order)."""

    # again: another attempt on this candidate; next: the next candidate; fail / deadline:
    # the request ends with Failed.
    kind: Literal["again", "next", "fail", "deadline"]
    notice: AttemptFailed | None = None  # yielded first
    restart_to: str | None = None  # then a Restart toward this model voids the delivered text
    delay_s: float | None = None  # then a wait before the next attempt
