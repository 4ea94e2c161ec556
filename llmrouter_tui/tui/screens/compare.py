"""Compare: one prompt streamed by two models side by side, then one key says which was better.

Opened from the chat (ctrl+k). Both requests go through `core.compare.compare_stream` (same
compare id, each recorded on its own). Once both have ended, ← / 1 (left reply better), → / 2
(right), `=` (tie) or `x` (both bad) records the preference (`Runtime.prefer`) and closes the
screen; the chat continues the conversation with the preferred reply. Esc or ctrl+c cancels
both streams (the router records both as cancelled); after both have ended Esc closes without
a vote. In blind mode the sides are shuffled and the models' names stay hidden until the vote.
Side by side from WIDE_FROM columns, one above the other below that.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping, Sequence
from contextlib import aclosing, suppress
from dataclasses import dataclass
from time import perf_counter
from typing import TYPE_CHECKING, Any, ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, VerticalScroll
from textual.screen import Screen
from textual.widgets import Static
from textual.worker import Worker, WorkerCancelled, WorkerError, WorkerFailed, WorkerState

from ...core.auto import is_auto
from ...core.compare import CompareEvent, compare_stream, new_compare_id, suggested_models
from ...core.errors import RouterError
from ...core.types import AttemptFailed, ChatRequest, Delta, Done, Failed, Restart, Result, Started
from ..offloop import queue_write
from ..router_app import router_app
from ..widgets.compare_reply import CompareReply
from ..widgets.key_footer import KeyFooter
from ..workers import background

if TYPE_CHECKING:
    from ...core.router import Router
    from ...core.runtime import Runtime

#: From this width the two replies stand side by side; below it, one above the other.
WIDE_FROM = 120
#: Events that arrived together are handled without returning to the event loop; after this
#: long the loop gets a turn, so keys typed meanwhile are not kept waiting.
STREAM_SLICE_S = 0.003
SIDE_NAMES = ("A", "B")
USABLE = ("available", "preview")
STREAMING_HINT = "Streaming both replies… · Esc cancels both"
VOTE_HINT = "Which is better? ← or 1: A · → or 2: B · = tie · x both bad · Esc: no vote"
OUTCOME_WORDS = {"a": "A is better", "b": "B is better", "tie": "a tie", "both_bad": "both bad"}


def suggest_second(router: Router, current: str, rows: Sequence[Mapping[str, Any]]) -> str | None:
    """The model to compare `current` with: of the two auto ranks highest now, the one that
    is not `current` (nor auto's own pick, when `current` is auto); else the first usable
    model. Blocking (reads the evidence): run it in a thread."""
    usable = [
        str(r["id"])
        for r in rows
        if r["id"] != current
        and not is_auto(r["id"])
        and r.get("kind", "chat") == "chat"
        and r.get("status") in USABLE
    ]
    pair = suggested_models(router)
    if pair is not None:
        top, runner_up = pair
        proposed = runner_up if is_auto(current) or current == top else top
        if proposed in usable:
            return proposed
    return usable[0] if usable else None


@dataclass(slots=True)
class CompareSide:
    """One side of the compare: the model asked for and what came back."""

    index: int  # 0: the chat's current model, 1: the second model
    model: str
    reply: CompareReply
    prompt_id: str | None = None
    model_used: str | None = None
    result: Result | None = None


@dataclass(frozen=True, slots=True)
class CompareOutcome:
    """How a compare ended (what the screen is dismissed with).

    `results` are in the order of `models` (the chat's model first), whichever side each was
    shown on. `outcome` is None without a vote (cancelled, closed, or not sent: `error`);
    `preferred` is the index of the reply that continues the conversation.
    """

    request: ChatRequest
    models: tuple[str, str]
    compare_id: str
    results: tuple[Result | None, Result | None] = (None, None)
    outcome: str | None = None
    preferred: int | None = None
    record: dict[str, Any] | None = None
    cancelled: bool = False
    error: RouterError | None = None
    blind: bool = False
    #: Which model was shown as A and as B (indexes into `models`).
    shown: tuple[int, int] = (0, 1)

    def model_of(self, index: int) -> str:
        """The model that answered side `index` (the one asked for, if none did)."""
        result = self.results[index]
        if result is None:
            return self.models[index]
        return result.model_used or result.requested_model

    def summary(self) -> str:
        """`A was X, B was Y: B is better.` (the reveal, after a blind vote too)."""
        names = [
            f"{letter} was {self.model_of(index)}"
            for letter, index in zip(SIDE_NAMES, self.shown, strict=True)
        ]
        said = OUTCOME_WORDS.get(self.outcome or "", "no vote")
        return f"{', '.join(names)}: {said}. [ ] on the reply shows the other one."

    def verdict_note(self) -> str | None:
        """The note under the reply that continues the conversation."""
        if self.outcome is None or self.preferred is None:
            return None
        other = self.model_of(1 - self.preferred)
        if self.outcome == "tie":
            return f"⚖ a tie with {other}"
        if self.outcome == "both_bad":
            return f"⚖ both bad (also asked {other})"
        return f"⚖ preferred over {other}"


class ComparePane(VerticalScroll, can_focus=False):
    """A reply's scrolling area (not focusable: the arrow keys vote)."""


class CompareScreen(Screen[CompareOutcome]):
    """Two replies to one prompt, side by side; one key records which was better."""

    CSS_PATH = "compare.tcss"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left,1", "vote('a')", "A better", key_display="←/1", id="compare.a"),
        Binding("right,2", "vote('b')", "B better", key_display="→/2", id="compare.b"),
        Binding("equals_sign", "vote('tie')", "Tie", key_display="=", id="compare.tie"),
        Binding("x", "vote('both_bad')", "Both bad", id="compare.both_bad"),
        Binding(
            "escape,ctrl+c",
            "cancel",
            "Cancel / no vote",
            key_display="esc",
            id="compare.cancel",
        ),
        Binding("pageup", "scroll_replies(-1)", "Scroll up", show=False, id="compare.page_up"),
        Binding("pagedown", "scroll_replies(1)", "Scroll down", show=False, id="compare.page_down"),
    ]

    def __init__(
        self,
        request: ChatRequest,
        models: tuple[str, str],
        *,
        blind: bool = False,
        swap: bool = False,
    ) -> None:
        """`models`: the chat's model first; `swap` shows the second model as A (blind)."""
        super().__init__()
        self.request = request
        self.models = models
        self.blind = blind
        self.compare_id = new_compare_id()
        user_text = _prompt_text(request)
        self.sides = [
            CompareSide(index, model, CompareReply(user_text, request, hidden=blind))
            for index, model in enumerate(models)
        ]
        #: The sides in the order shown: A (left or top), then B.
        self.shown = [self.sides[1], self.sides[0]] if swap else list(self.sides)
        self._worker: Worker[None] | None = None
        self._finished = False
        #: A vote is being written: no second vote, and Esc does not close without it.
        self._voting = False

    @property
    def runtime(self) -> Runtime:
        return router_app(self).runtime

    # ---- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        title = "⚖ Compare (blind: names shown after your vote)" if self.blind else "⚖ Compare"
        first_line = " ".join(_prompt_text(self.request).split())
        yield Static(f"{title} · {first_line}", id="cmp-header", markup=False)
        with Container(id="cmp-panes"):
            for name, side in zip(SIDE_NAMES, self.shown, strict=True):
                pane = ComparePane(side.reply, classes="cmp-side", id=f"cmp-side-{name.lower()}")
                pane.border_title = self._label(name, side)
                yield pane
        yield Static(STREAMING_HINT, id="cmp-status", markup=False)
        yield KeyFooter()

    def on_mount(self) -> None:
        # The panes do not follow the streamed text: both are read from the top while they
        # grow (PageUp / PageDown scroll both).
        self._apply_width(self.app.size.width)
        self._worker = self._stream()

    def on_resize(self, event: events.Resize) -> None:
        self._apply_width(event.size.width)

    def _apply_width(self, width: int) -> None:
        self.set_class(width < WIDE_FROM, "-stacked")

    @property
    def stacked(self) -> bool:
        """The replies are one above the other (the terminal is narrower than WIDE_FROM)."""
        return self.has_class("-stacked")

    def _label(self, name: str, side: CompareSide) -> str:
        if side.reply.hidden:
            return f"{name} · model hidden until you vote"
        model = side.model
        if side.model_used and side.model_used != model:
            model = f"{model} → {side.model_used}"
        return f"{name} · {model}"

    def _show_labels(self) -> None:
        for name, side, pane in zip(
            SIDE_NAMES, self.shown, self.query(ComparePane).results(), strict=True
        ):
            pane.border_title = self._label(name, side)

    @property
    def labels(self) -> list[str]:
        """The two labels as shown (A, then B)."""
        return [str(pane.border_title) for pane in self.query(ComparePane)]

    # ---- streaming ---------------------------------------------------------------------------

    @property
    def streaming(self) -> bool:
        worker = self._worker
        return worker is not None and worker.state in (WorkerState.PENDING, WorkerState.RUNNING)

    @property
    def ready(self) -> bool:
        """Both requests have ended: a vote may be given."""
        return all(side.reply.ended and side.prompt_id for side in self.sides)

    @background("compare the replies", group="compare")
    async def _stream(self) -> None:
        items = compare_stream(
            self.runtime.router, self.request, self.models, compare_id=self.compare_id
        )
        slice_start = perf_counter()
        try:
            async with aclosing(items):
                async for item in items:
                    await self._handle(item)
                    if perf_counter() - slice_start > STREAM_SLICE_S:
                        await asyncio.sleep(0)
                        slice_start = perf_counter()
        except asyncio.CancelledError:
            for side in self.sides:
                if not side.reply.ended:
                    with suppress(Exception):  # the screen may be going away
                        await side.reply.cancel()
            raise
        except RouterError as exc:  # refused before anything was sent (input, budget)
            self._close(self._outcome(error=exc))
            return
        self._show_status()

    async def _handle(self, item: CompareEvent) -> None:
        side = self.sides[item.side]
        reply = side.reply
        event = item.event
        if isinstance(event, Delta):
            await reply.add(event.text)
        elif isinstance(event, Started):
            side.prompt_id = event.prompt_id
            side.model_used = event.model
            await reply.begin(event.model, event.prompt_id, event.notice)
            self._show_labels()
        elif isinstance(event, AttemptFailed):
            reply.attempt_failed(event)
        elif isinstance(event, Restart):
            side.model_used = event.next_model
            await reply.restart(event.reason, event.next_model)
            self._show_labels()
        elif isinstance(event, Done | Failed):
            side.result = event.result
            side.prompt_id = event.result.prompt_id
            side.model_used = event.result.model_used or side.model_used
            if isinstance(event, Done):
                await reply.finish(event.result)
            else:
                await reply.fail(event.result)
            self._show_labels()
            self._show_status()

    def _show_status(self) -> None:
        if self.ready:
            text = VOTE_HINT
        elif any(side.reply.ended for side in self.sides):
            text = "One reply is done; waiting for the other… · Esc cancels it"
        else:
            text = STREAMING_HINT
        self.query_one("#cmp-status", Static).update(text)
        self.refresh_bindings()

    # ---- the vote ----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "vote":
            return True if self.ready else None  # shown, disabled, until both have ended
        return True

    def action_vote(self, outcome: str) -> None:
        """Record which reply was better (a: A, b: B, tie, both_bad) and close."""
        if self._voting:
            self.notify("Saving your vote…")
            return
        if not self.ready or self._finished:
            self.notify("Wait until both replies have ended (Esc cancels them).")
            return
        first, second = self.shown
        assert first.prompt_id is not None and second.prompt_id is not None
        runtime = self.runtime
        self._voting = True
        pending = queue_write(
            runtime.store,
            runtime.prefer,
            first.prompt_id,
            second.prompt_id,
            outcome,
            compare_id=self.compare_id,
        )
        self._vote_written(outcome, pending)

    @background("save the preference", group="compare-vote", exclusive=False)
    async def _vote_written(self, outcome: str, pending: Awaitable[dict[str, Any]]) -> None:
        """Close once the vote is written (or say why it was not, and stay)."""
        try:
            record = await pending
        except RouterError as exc:
            self._voting = False
            self.notify(str(exc), title="Preference not saved", severity="error", markup=False)
            return
        first, second = self.shown
        preferred = {"a": first.index, "b": second.index}.get(outcome, 0)
        for side in self.sides:
            side.reply.reveal()
        self._show_labels()
        self._close(self._outcome(outcome=outcome, preferred=preferred, record=record))

    async def action_cancel(self) -> None:
        """Esc / ctrl+c: cancel both streams; once both have ended, close without a vote."""
        if self._finished:
            return
        if self._voting:  # closing now would tell the chat "no vote" about a recorded one
            self.notify("Saving your vote…")
            return
        worker = self._worker
        cancelled = False
        if worker is not None and self.streaming:
            cancelled = True
            worker.cancel()
            with suppress(WorkerCancelled, WorkerError, WorkerFailed):
                await worker.wait()
        self._close(self._outcome(cancelled=cancelled))

    def action_scroll_replies(self, direction: int) -> None:
        """PageUp / PageDown: scroll both replies."""
        for pane in self.query(ComparePane):
            if direction < 0:
                pane.scroll_page_up()
            else:
                pane.scroll_page_down()

    # ---- closing -----------------------------------------------------------------------------

    def _outcome(self, **changes: Any) -> CompareOutcome:
        first, second = self.sides
        return CompareOutcome(
            request=self.request,
            models=self.models,
            compare_id=self.compare_id,
            results=(first.result, second.result),
            blind=self.blind,
            shown=(self.shown[0].index, self.shown[1].index),
            **changes,
        )

    def _close(self, outcome: CompareOutcome) -> None:
        if self._finished:
            return
        self._finished = True
        self.dismiss(outcome)


def _prompt_text(request: ChatRequest) -> str:
    """The prompt of the turn being compared (the last user message)."""
    if request.prompt is not None:
        return request.prompt
    for message in reversed(request.messages or []):
        if message.role == "user" and isinstance(message.content, str):
            return message.content
    return ""
