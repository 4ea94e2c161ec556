"""An assistant reply: streamed Markdown, inline error, metadata line and rating."""

from __future__ import annotations

from time import perf_counter

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Static

from ...core.types import AttemptFailed, ChatRequest, Result
from .._css import sibling_tcss
from ..format import ReplyMeta, attempt_lines, error_headline, meta_line, stars
from ..markdown_render import CodeSnippet, code_snippets
from .markdown_body import MarkdownBody

ReplyState = str  # "pending" | "streaming" | "done" | "cancelled" | "error"

#: Streamed text is rendered in batches at most this often: a relayout per token would make
#: input lag at a thousand tokens per second. After a batch is on screen the next also waits
#: at least PACE times as long as that one took to show, so batches never keep the event
#: loop (and the keys typed meanwhile) busy more than about a third of the time; on a busy
#: machine they stretch out instead.
FLUSH_EVERY_S = 1 / 15
PACE = 2.0
#: A key typed in the prompt gets a frame of its own: the next batch waits until its echo
#: is on screen (or this long after it, if that notice is late) ...
INPUT_QUIET_S = 0.05
#: ... but while someone keeps typing, the reply is still shown at least this often.
INPUT_MAX_HOLD_S = 0.3
#: The shortest wait before a batch: gathers the tokens of one network read (and a Textual
#: timer needs a positive interval).
FLUSH_MIN_WAIT_S = 0.01
#: A batch whose repaint is never reported (the screen it was queued on went away) stops
#: holding up the next one after this long.
PAINT_TIMEOUT_S = 1.0


class ReplyView(Vertical):
    """One assistant reply: streamed Markdown, an inline error if any, and metadata."""

    DEFAULT_CSS = sibling_tcss(__file__)

    class Grew(Message):
        """More streamed text is on screen (sent after the repaint, when sizes are known)."""

    def __init__(
        self,
        user_text: str,
        request: ChatRequest | None = None,
        *,
        text: str = "",
        meta: ReplyMeta | None = None,
        prompt_id: str | None = None,
        rating: int | None = None,
        feedback: str | None = None,
        state: ReplyState = "pending",
    ) -> None:
        super().__init__(classes=f"-{state}")
        self.user_text = user_text
        self.request = request
        self.text = text
        self.meta = meta
        self.prompt_id = prompt_id
        self.rating = rating
        self.feedback = feedback
        self.state: ReplyState = state
        self.result: Result | None = None
        #: The reply (and its prompt) are saved in the conversation.
        self.persisted = False
        self._parts: list[str] = []
        self._unshown: list[str] = []
        self._flush_timer: Timer | None = None
        #: When the batch that is not on screen yet was appended (None: none is pending).
        self._painting_since: float | None = None
        #: When the next batch may be shown (perf_counter seconds).
        self._next_flush_at = 0.0
        #: When the last batch started (perf_counter seconds).
        self._last_flush_at = 0.0
        #: Bumped whenever the body is replaced, so a stale paint notice is ignored.
        self._generation = 0

    def compose(self) -> ComposeResult:
        yield MarkdownBody(self.text, classes="reply-body")
        yield Static("", classes="reply-error", markup=False)
        yield Static(self._meta_text(), classes="reply-meta", markup=False)
        yield Static(
            self.meta.notice if self.meta and self.meta.notice else "",
            classes="reply-notice",
            markup=False,
        )

    # ---- parts -----------------------------------------------------------------------------

    @property
    def body(self) -> MarkdownBody:
        return self.query_one(".reply-body", MarkdownBody)

    @property
    def code_blocks(self) -> list[CodeSnippet]:
        """The reply's code blocks (nested ones too), numbered as their labels show."""
        return code_snippets(self.text or "".join(self._parts))

    def _set_state(self, state: ReplyState) -> None:
        self.remove_class(f"-{self.state}")
        self.state = state
        self.add_class(f"-{state}")

    def _meta_text(self) -> str:
        if self.state == "cancelled":
            head = "✗ cancelled — partial reply kept"
            tail = f" · {stars(self.rating)}" if self.rating else ""
            return head + tail
        if self.meta is None:
            return ""
        return meta_line(self.meta, self.rating)

    def _set_meta(self, text: str | None = None) -> None:
        self.query_one(".reply-meta", Static).update(self._meta_text() if text is None else text)

    def _set_notice(self, text: str | None) -> None:
        notice = self.query_one(".reply-notice", Static)
        notice.update(f"⚠ {text}" if text else "")
        notice.display = bool(text)

    def _set_error(self, text: str | None) -> None:
        error = self.query_one(".reply-error", Static)
        error.update(text or "")
        error.display = bool(text)

    def on_mount(self) -> None:
        self._set_error(None)
        self._set_notice(self.meta.notice if self.meta else None)

    # ---- streaming -------------------------------------------------------------------------

    async def begin(self, model: str, prompt_id: str, notice: str | None) -> None:
        """A request started on `model`: reset the reply for streaming."""
        await self._close_stream()
        self.prompt_id = prompt_id
        self.rating = None
        self.feedback = None
        self.meta = None
        self._parts = []
        self.text = ""
        await self.body.update("")
        self._set_error(None)
        self._set_notice(notice)
        self._set_state("streaming")
        self._set_meta(f"{model} · streaming…")

    async def add(self, text: str) -> None:
        """Append streamed text (shown at most FLUSH_EVERY_S later, or later on long replies)."""
        self._parts.append(text)
        self._unshown.append(text)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._flush_timer is not None or not self._unshown:
            return
        now = perf_counter()
        painting = self._painting_since
        if painting is not None and now - painting < PAINT_TIMEOUT_S:
            return  # _painted schedules the next batch
        due = max(self._next_flush_at, self._input_quiet_at(now))
        delay = max(FLUSH_MIN_WAIT_S, due - now)
        self._flush_timer = self.set_timer(delay, self._flush, name="reply-flush")

    def _input_quiet_at(self, now: float) -> float:
        """Until when a key typed in the prompt holds the next batch (0: it does not)."""
        view = self.parent
        if getattr(view, "input_drawn", True):
            return 0.0
        quiet_at = getattr(view, "last_input_at", 0.0) + INPUT_QUIET_S
        return min(quiet_at, self._last_flush_at + INPUT_MAX_HOLD_S) if quiet_at > now else 0.0

    def input_drawn(self) -> None:
        """The key that held the next batch is on screen: the batch may run now."""
        if self._flush_timer is not None:
            self._flush_timer.stop()
            self._flush_timer = None
        self._schedule_flush()

    async def _flush(self) -> None:
        """Append the text gathered since the last batch to the Markdown body."""
        self._flush_timer = None
        if not self._unshown:
            return
        now = perf_counter()
        if self._input_quiet_at(now) > now + 0.001:  # a key came meanwhile: it goes first
            self._schedule_flush()
            return
        self._last_flush_at = now
        text = "".join(self._unshown)
        self._unshown.clear()
        started = self._painting_since = perf_counter()
        # MarkdownBody.append re-parses only the last block, and we wait for it: one batch in
        # flight at a time, so batches coalesce while a render is slow.
        await self.body.append(text)
        self.call_after_refresh(self._painted, started, self._generation)

    def _painted(self, started: float, generation: int) -> None:
        """The last batch is on screen: pace the next one by what this one cost."""
        if generation != self._generation:
            return
        self._painting_since = None
        now = perf_counter()
        self._next_flush_at = now + max(FLUSH_EVERY_S, PACE * (now - started))
        self.post_message(self.Grew())
        self._schedule_flush()

    async def restart(self, reason: str, next_model: str) -> None:
        """The text so far is void: clear it and keep streaming from `next_model`."""
        await self._close_stream()
        self._parts = []
        await self.body.update("")
        self._set_meta(f"↻ {reason} — restarting on {next_model}…")

    def attempt_failed(self, event: AttemptFailed) -> None:
        """Say what is happening while the router retries or falls back."""
        a = event.attempt
        why = a.message or a.error or a.outcome
        if event.will_retry_in_s is not None:
            then = f"retrying in {event.will_retry_in_s:.1f} s"
        elif event.next_model:
            then = f"trying {event.next_model}"
        else:
            then = "giving up"
        self._set_meta(f"{a.model}: {why} — {then}…")

    async def _show_result(self, result: Result) -> None:
        """End any live stream and render the final text and metadata of `result`."""
        await self._close_stream()
        self.result = result
        self.prompt_id = result.prompt_id
        self.text = result.response_text
        self.meta = ReplyMeta.from_result(result)
        await self._show_text(self.text)

    async def _show_text(self, text: str) -> None:
        """Make the body show `text`.

        At the end of a stream the body already holds all or most of the text: only what is
        missing is appended (the last block is drawn again, nothing else). The body is
        redrawn whole only when it shows something else (a fallback restarted the reply).
        """
        body = self.body
        shown = body.source
        if text != shown and shown and text.startswith(shown):
            await body.append(text[len(shown) :])
        elif text != shown:
            await body.update(text)
        body.finalize()

    async def finish(self, result: Result) -> None:
        """The request succeeded: show the rest of the reply and its metadata."""
        await self._show_result(result)
        self._set_state("done")
        self._set_meta()
        notices = [result.notice] if result.notice else []
        notices += result.warnings
        self._set_notice(" ".join(notices) if notices else None)

    async def fail(self, result: Result) -> None:
        """Every candidate failed: keep any partial text and list each attempt."""
        await self._show_result(result)
        self.body.display = bool(self.text)
        self._set_state("error")
        lines = [f"✗ {error_headline(result)}", *attempt_lines(result.attempts)]
        lines.append("Your prompt is back in the input box.")
        self._set_error("\n".join(lines))
        self._set_meta(f"failed after {len(result.attempts)} attempt(s) · {result.error_kind}")

    async def cancel(self) -> None:
        """Streaming was cancelled: keep the partial text, marked as cancelled."""
        await self._close_stream()
        self.text = "".join(self._parts)
        await self._show_text(self.text)
        self._set_state("cancelled")
        self._set_meta()

    async def input_error(self, message: str) -> None:
        """The request could not be sent at all (bad input)."""
        await self._close_stream()
        self.body.display = False
        self._set_state("error")
        self._set_error(f"✗ {message}\nYour prompt is back in the input box.")
        self._set_meta("not sent")

    def set_rating(self, rating: int, feedback: str | None) -> None:
        """Show a rating that the core recorded."""
        self.rating = rating
        self.feedback = feedback
        self._set_meta()

    async def _close_stream(self) -> None:
        """Stop showing batches; the caller shows the final text (or clears it)."""
        if self._flush_timer is not None:
            self._flush_timer.stop()
            self._flush_timer = None
        self._unshown.clear()
        self._painting_since = None
        self._next_flush_at = 0.0
        self._generation += 1
