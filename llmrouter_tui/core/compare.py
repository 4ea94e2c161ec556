"""Side-by-side compare: one request routed to two models at once, sharing a compare id.

Both sides are ordinary requests (`Router.stream`): each is recorded on its own, with the
same `compare_id`, and can be rated. The user's verdict is recorded with
`Store.prefer(prompt_a, prompt_b, outcome)` (or `Runtime.prefer`), which feeds the
leaderboard and `auto`.

    async for item in compare_stream(router, ChatRequest(prompt="…"), ("a-model", "b-model")):
        item.side, item.model, item.event    # 0 or 1, the model asked for, a router Event
    result = await compare(router, request, ("a-model", "b-model"))
    result.prompt_ids                        # (prompt_a, prompt_b) for Store.prefer
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .errors import InputError
from .types import ChatRequest, Done, Event, Failed, Result

if TYPE_CHECKING:
    from .router import Router


@dataclass(frozen=True, slots=True)
class CompareEvent:
    """One event of one side of a compare."""

    side: int  # 0 (reply "a") or 1 (reply "b")
    model: str  # the model asked for on that side
    event: Event


@dataclass(frozen=True, slots=True)
class CompareResult:
    """Both finished requests of a compare (each Done or Failed)."""

    compare_id: str
    results: tuple[Result, Result]

    @property
    def prompt_ids(self) -> tuple[str, str]:
        return self.results[0].prompt_id, self.results[1].prompt_id


def new_compare_id() -> str:
    return "cmp_" + os.urandom(8).hex()


_END = object()


async def compare_stream(
    router: Router,
    request: ChatRequest,
    models: Sequence[str],
    *,
    compare_id: str | None = None,
    allow_restart: bool = True,
) -> AsyncGenerator[CompareEvent, None]:
    """Route `request` to both `models` concurrently; yield their events as they come.

    Both requests are prepared (validated, budget checked) before either starts, so an
    InputError or BudgetExceeded is raised before any event. Closing the generator early
    cancels both sides (each is recorded as cancelled, like any stream).
    """
    if len(models) != 2:
        raise InputError(f"a compare needs exactly two models, got {len(models)}")
    cid = compare_id or new_compare_id()
    prepared = [router.prepare(replace(request, model=model, compare_id=cid)) for model in models]
    queue: asyncio.Queue[object] = asyncio.Queue()

    async def pump(side: int) -> None:
        try:
            stream = router.stream(prepared[side], allow_restart=allow_restart)
            async with aclosing(stream) as events:
                async for event in events:
                    queue.put_nowait(CompareEvent(side, models[side], event))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # pragma: no cover - the router reports failures as events
            queue.put_nowait(exc)
        finally:
            queue.put_nowait(_END)

    tasks = [asyncio.create_task(pump(side)) for side in (0, 1)]
    try:
        finished = 0
        while finished < 2:
            item = await queue.get()
            if item is _END:
                finished += 1
            elif isinstance(item, BaseException):  # pragma: no cover - see pump
                raise item
            else:
                assert isinstance(item, CompareEvent)
                yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def compare(
    router: Router,
    request: ChatRequest,
    models: Sequence[str],
    *,
    compare_id: str | None = None,
) -> CompareResult:
    """Route `request` to both `models` concurrently and return both results."""
    cid = compare_id or new_compare_id()
    results: list[Result | None] = [None, None]
    async with aclosing(compare_stream(router, request, models, compare_id=cid)) as items:
        async for item in items:
            if isinstance(item.event, Done | Failed):
                results[item.side] = item.event.result
    first, second = results
    if first is None or second is None:  # pragma: no cover - every stream ends with a result
        raise RuntimeError("a compare side ended without a result")
    return CompareResult(cid, (first, second))


def suggested_models(router: Router, template_id: str | None = None) -> tuple[str, str] | None:
    """The two models auto ranks highest now (for a compare's default), or None."""
    choice = router.selection.preview(template_id)
    if choice is None or len(choice.ranking) < 2:
        return None
    return choice.ranking[0].model, choice.ranking[1].model
