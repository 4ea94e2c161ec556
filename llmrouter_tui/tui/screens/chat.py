"""The chat screen: conversation view, prompt, sidebar, model and settings."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing, suppress
from dataclasses import dataclass, field, replace
from time import perf_counter
from typing import TYPE_CHECKING, Any, ClassVar, cast

from textual import events, on
from textual.app import ComposeResult
from textual.binding import ActiveBinding, Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Checkbox, Static
from textual.worker import Worker, WorkerCancelled, WorkerError, WorkerFailed, WorkerState

from ...core.errors import BudgetExceeded, RouterError
from ...core.runtime import Runtime
from ...core.store import Store
from ...core.types import (
    Attempt,
    AttemptFailed,
    ChatRequest,
    Delta,
    Done,
    Event,
    Failed,
    Message,
    Restart,
    Started,
)
from ..evidence import ReplyCost, budget_notice, current_auto_pick
from ..format import ReplyMeta, error_headline
from ..notices import key_problems, stored_error_text
from ..offloop import queue_write, report_failure_of
from ..router_app import router_app
from ..widgets.chat_reply import ChatReply
from ..widgets.conversation_view import ConversationView
from ..widgets.key_footer import KeyFooter
from ..widgets.prompt_input import PromptInput
from ..widgets.reply import ReplyView
from ..widgets.sidebar import ConversationSidebar
from ..widgets.top_bar import TopBar
from ..widgets.user_message import UserMessage
from ..workers import background, report_failure
from .conversation_settings import ChatSettings, ConversationSettingsModal

if TYPE_CHECKING:
    from .compare import CompareOutcome

# The other modals are imported when first opened: the first frame does not need them.

SIDEBAR_MIN_WIDTH = 100  # the sidebar opens by itself on terminals at least this wide
SIDEBAR_ROOM = 70  # below this width the sidebar hides, also when the user chose to show it
TITLE_LENGTH = 48
#: Tokens that arrived together are handled without returning to the event loop; after this
#: long the stream yields, so a key typed meanwhile is not kept waiting behind the backlog.
STREAM_SLICE_S = 0.003
#: The spinner and elapsed time while a reply is on its way are redrawn this often.
ACTIVITY_EVERY_S = 0.1
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
RESTORED_HINT = "↩ Your prompt is back, selected: typing replaces it, Enter sends it again."
EDITING_HINT = (
    "✎ Editing an earlier prompt: Enter resends it from there (the old branch is kept; "
    "[ ] on a reply switch versions) · Esc stops editing"
)


@dataclass(slots=True)
class StoredTurn:
    """One prompt and the reply shown for it, as read back from the store."""

    user_text: str
    user_id: int | None = None
    parent_id: int | None = None
    reply_id: int | None = None
    reply_text: str | None = None
    status: str = "ok"
    prompt_id: str | None = None
    meta: ReplyMeta | None = None
    rating: int | None = None
    feedback: str | None = None
    error: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    alternatives: list[int] = field(default_factory=list)
    cost: ReplyCost | None = None


@dataclass(slots=True)
class StoredConversation:
    """A conversation as read back from the store (the branch shown)."""

    info: dict[str, Any]
    turns: list[StoredTurn] = field(default_factory=list)
    head_id: int | None = None


@dataclass(slots=True)
class TurnIds:
    """Where a turn shown on screen lives in the conversation tree."""

    user_id: int | None
    parent_id: int | None
    reply_id: int | None = None
    alternatives: list[int] = field(default_factory=list)
    #: The prompt replaced an earlier one (edit and resend).
    edited: bool = False
    #: The prompt's message while it is being written (then `user_id`).
    user_saved: asyncio.Task[int | None] | None = None


def load_conversation(store: Store, conversation_id: str) -> StoredConversation:
    """Read the branch shown, with each reply's metadata, attempts and rating (blocking)."""
    info = store.conversations.get(conversation_id)
    thread = store.conversations.thread(conversation_id)
    turns: list[StoredTurn] = []
    for message in thread:
        if message["role"] == "user":
            turns.append(StoredTurn(message["content"], message["id"], message["parent_id"]))
        elif message["role"] == "assistant" and turns:
            turn = turns[-1]
            turn.reply_id = message["id"]
            turn.reply_text = message["content"]
            turn.status = message["status"]
            turn.prompt_id = message["prompt_id"]
            turn.alternatives = list(message["alternatives"])
            if turn.prompt_id:
                row = store.get_request(turn.prompt_id)
                turn.attempts = [Attempt(**a) for a in store.request_attempts(turn.prompt_id)]
                if row is not None:
                    turn.meta = ReplyMeta.from_row(row, len(turn.attempts))
                    turn.cost = ReplyCost.from_row(row)
                    if turn.status == "error":
                        turn.error = stored_error_text(row, turn.attempts)
                rating = store.get_rating(turn.prompt_id)
                if rating is not None:
                    turn.rating, turn.feedback = rating["rating"], rating["feedback"]
            if turn.status == "error" and turn.error is None:
                turn.error = "✗ The request was not sent (it was refused before it left)."
    head = thread[-1]["id"] if thread else None
    return StoredConversation(info, turns, head)


def title_from(text: str) -> str:
    """A conversation title from the first prompt."""
    line = " ".join(text.split())
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1] + "…"


def version_note(ids: TurnIds) -> str | None:
    """`version 2/3 ([ ])` when the turn has other versions."""
    if len(ids.alternatives) < 2 or ids.reply_id not in ids.alternatives:
        return None
    index = ids.alternatives.index(ids.reply_id) + 1
    return f"version {index}/{len(ids.alternatives)} ([ ])"


def _set_note(reply: ReplyView, note: str | None) -> None:
    if isinstance(reply, ChatReply):
        reply.set_note(note)


def _set_notices(reply: ReplyView, notices: list[str]) -> None:
    if isinstance(reply, ChatReply):
        reply.set_notices(notices)


@dataclass(slots=True)
class Activity:
    """What the status line says while a reply is on its way."""

    model: str
    started: float
    first_token: float | None = None
    frame: int = 0


class ChatScreen(Screen[None]):
    """Send prompts, stream replies, rate them, and manage saved conversations."""

    CSS_PATH = "chat.tcss"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "leave_prompt", "Replies", show=False, id="chat.escape"),
        Binding("ctrl+c", "cancel_reply", "Cancel reply", id="chat.cancel"),
        Binding("ctrl+n", "new_conversation", "New", id="chat.new"),
        Binding("ctrl+o", "pick_model", "Model", id="chat.model"),
        # priority: the prompt box (a TextArea) would take ctrl+k as "delete to end of line"
        Binding("ctrl+k", "compare", "Compare", priority=True, id="chat.compare"),
        Binding("ctrl+b", "toggle_sidebar", "Sidebar", show=False, id="chat.sidebar"),
        Binding("ctrl+f", "search_conversations", "Search chats", show=False, id="chat.search"),
        Binding("ctrl+s", "conversation_settings", "Settings", show=False, id="chat.settings"),
        Binding("ctrl+r", "toggle_ignore_cache", "No cache", show=False, id="chat.ignore_cache"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.conversation_id: str | None = None
        self.conversation_title: str | None = None
        self.settings = ChatSettings()
        self.model = ""
        self._stream_worker: Worker[None] | None = None
        #: A prompt is being saved and sent (its reply not streaming yet).
        self._starting = False
        self._after_stream: list[Callable[[], object]] = []
        self._turns: dict[ReplyView, TurnIds] = {}
        self._head_id: int | None = None
        self._editing: ReplyView | None = None
        self._notices_shown: set[str] = set()
        self._activity: Activity | None = None
        self._activity_timer: Timer | None = None
        #: Which side a blind compare shows each model on (seeded by `[auto] seed`, if set).
        self._compare_rng = random.Random()

    # ---- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield TopBar("chat")
        with Horizontal(id="chat-body"):
            yield ConversationSidebar(id="sidebar")
            with Vertical(id="chat-main"):
                yield ConversationView(id="conversation")
                with Horizontal(id="chat-status"):
                    yield Static("", id="chat-title", markup=False)
                    yield Static("", id="chat-activity", markup=False)
                    yield Checkbox("No cache ^r", id="ignore-cache", compact=True)
                yield Static("", id="prompt-banner", markup=False)
                yield PromptInput(id="prompt")
        yield KeyFooter()

    @property
    def runtime(self) -> Runtime:
        return router_app(self).runtime

    @property
    def view(self) -> ConversationView:
        return self.query_one("#conversation", ConversationView)

    @property
    def prompt(self) -> PromptInput:
        return self.query_one("#prompt", PromptInput)

    @property
    def sidebar(self) -> ConversationSidebar:
        return self.query_one("#sidebar", ConversationSidebar)

    @property
    def ignore_cache(self) -> bool:
        return self.query_one("#ignore-cache", Checkbox).value

    @property
    def streaming(self) -> bool:
        worker = self._stream_worker
        return worker is not None and worker.state in (WorkerState.PENDING, WorkerState.RUNNING)

    @property
    def editing(self) -> bool:
        """The prompt box holds an earlier prompt being edited (Enter resends it)."""
        return self._editing is not None

    def turn_ids(self, reply: ReplyView) -> TurnIds | None:
        """Where `reply`'s turn is stored (None: not saved)."""
        return self._turns.get(reply)

    def on_mount(self) -> None:
        self._compare_rng = random.Random(self.runtime.settings.auto.seed)
        self.set_model(self.runtime.settings.default_model)
        self._apply_sidebar(self.app.size.width)
        self._show_banner(None)
        self.query_one("#chat-activity", Static).display = False
        self._show_intro()
        self._show_title()
        self.prompt.focus()
        router_app(self).runtime_changed.subscribe(self, self._runtime_changed)
        self.sidebar.reload()
        self._load_history()
        self._open_last()

    def on_resize(self, event: events.Resize) -> None:
        self._apply_sidebar(event.size.width)

    def _apply_sidebar(self, width: int) -> None:
        """Show the sidebar as chosen (or by width when never chosen), if there is room."""
        chosen = router_app(self).ui_state.sidebar
        wanted = width >= SIDEBAR_MIN_WIDTH if chosen is None else chosen
        show = wanted and width >= SIDEBAR_ROOM
        sidebar = self.sidebar
        if sidebar.display != show:
            sidebar.display = show
            if show:
                sidebar.reload()
            elif sidebar.has_focus_within:
                self.prompt.focus()

    def _ui_alive(self) -> bool:
        """False while the app is shutting down (its screens' widgets may be gone)."""
        return self.app.is_running and self.is_attached

    def _show_intro(self) -> None:
        """Explain missing keys (until there are some), or the first steps of an empty chat."""
        view = self.view
        for old in view.query(".chat-intro"):
            old.remove()
        settings = self.runtime.settings
        if not settings.demo and not any(p.has_key for p in settings.providers.values()):
            from ..widgets.keys_help import KeysHelp  # Markdown: imported only when shown

            keys_help = KeysHelp(settings)
            keys_help.add_class("chat-intro")
            if view.children:
                view.mount(keys_help, before=0)
            else:
                view.mount(keys_help)
        elif not view.replies:
            hint = Static(
                "Type a prompt below and press Enter. ctrl+o picks a model, ctrl+s sets a "
                "system prompt, ↑ recalls earlier prompts, F3 opens templates, F1 lists every "
                "key, ctrl+p every action.",
                markup=False,
            )
            hint.add_class("chat-intro", "chat-hint")
            view.mount(hint)

    def _show_title(self) -> None:
        parts = [self.conversation_title or "New conversation"]
        s = self.settings
        if s.system:
            parts.append("system prompt")
        if s.temperature is not None:
            parts.append(f"temp {s.temperature:g}")
        if s.max_tokens is not None:
            parts.append(f"max {s.max_tokens} tok")
        with suppress(Exception):  # the screen may be closing
            self.query_one("#chat-title", Static).update(" · ".join(parts))

    def _show_banner(self, text: str | None) -> None:
        banner = self.query_one("#prompt-banner", Static)
        banner.update(text or "")
        banner.display = bool(text)

    def set_model(self, model: str) -> None:
        """Use `model` for the next requests and show it in the top bar."""
        self.model = model
        router_app(self).current_model = model

    def _runtime_changed(self, runtime: Runtime) -> None:
        self._show_intro()
        self.sidebar.reload()

    # ---- activity (spinner and elapsed time) -------------------------------------------------

    def _activity_start(self, model: str) -> None:
        self._activity = Activity(model, perf_counter())
        self.query_one("#chat-activity", Static).display = True
        self._show_activity()
        if self._activity_timer is None:
            self._activity_timer = self.set_interval(
                ACTIVITY_EVERY_S, self._show_activity, name="chat-activity"
            )

    def _activity_model(self, model: str) -> None:
        if self._activity is not None:
            self._activity.model = model

    def _activity_first_token(self) -> None:
        if self._activity is not None and self._activity.first_token is None:
            self._activity.first_token = perf_counter()

    def _activity_stop(self) -> None:
        self._activity = None
        if self._activity_timer is not None:
            self._activity_timer.stop()
            self._activity_timer = None
        with suppress(Exception):  # the screen may be closing
            self.query_one("#chat-activity", Static).display = False

    def activity_text(self) -> str:
        """The status line's spinner and elapsed time ('' when nothing is on its way)."""
        activity = self._activity
        if activity is None:
            return ""
        elapsed = perf_counter() - activity.started
        spin = SPINNER[activity.frame % len(SPINNER)]
        if activity.first_token is None:
            return f"{spin} waiting for {activity.model} · {elapsed:.1f} s "
        return f"{spin} streaming · {elapsed:.1f} s "

    def _show_activity(self) -> None:
        if self._activity is None:
            return
        self._activity.frame += 1
        self.query_one("#chat-activity", Static).update(self.activity_text())

    # ---- conversations -----------------------------------------------------------------------

    @background("open the last conversation", group="chat-last")
    async def _open_last(self) -> None:
        store = self.runtime.store
        last = await asyncio.to_thread(store.conversations.last_conversation_id)
        if last is not None and self.conversation_id is None and not self.view.replies:
            self.open_conversation(last)

    @background("read earlier prompts", group="chat-history")
    async def _load_history(self) -> None:
        conversations = self.runtime.store.conversations
        history = await asyncio.to_thread(conversations.prompt_history, self.conversation_id)
        self.prompt.prompt_history = history

    @background("open the conversation", group="chat-load")
    async def open_conversation(self, conversation_id: str) -> None:
        """Show a saved conversation and continue it."""
        if self.streaming:
            self.notify("A reply is streaming; ctrl+c cancels it first.", severity="warning")
            return
        try:
            stored = await asyncio.to_thread(load_conversation, self.runtime.store, conversation_id)
        except RouterError as exc:
            self.notify(str(exc), title="Cannot open conversation", severity="error")
            self.sidebar.reload()
            return
        await self._show_conversation(stored)

    async def _reload_conversation(self, select: int | None = None) -> None:
        """Show the open conversation again (after switching versions), selecting a reply."""
        if self.conversation_id is None:
            return
        stored = await asyncio.to_thread(
            load_conversation, self.runtime.store, self.conversation_id
        )
        await self._show_conversation(stored)
        if select is not None and self.view.replies:
            self.view.focus()
            self.view.selected = min(select, len(self.view.replies) - 1)

    async def _show_conversation(self, stored: StoredConversation) -> None:
        view = self.view
        view.unfollow()
        await view.remove_children()
        self._turns.clear()
        self._notices_shown.clear()
        self._stop_editing()
        info = stored.info
        self.conversation_id = info["id"]
        self.conversation_title = info["title"]
        self._head_id = stored.head_id
        self.settings = ChatSettings(info["system"], info["temperature"], info["max_tokens"])
        self.set_model(info["model"] or self.runtime.settings.default_model)
        widgets: list[UserMessage | ReplyView] = []
        for turn in stored.turns:
            widgets.append(UserMessage(turn.user_text))
            ids = TurnIds(turn.user_id, turn.parent_id, turn.reply_id, turn.alternatives)
            if turn.reply_id is None:  # a prompt whose reply was never written (a crash)
                reply = ChatReply(turn.user_text, state="cancelled", note="no reply was saved")
            else:
                failed = turn.status == "error"
                state = {"ok": "done", "error": "error", "cancelled": "cancelled"}[turn.status]
                reply = ChatReply(
                    turn.user_text,
                    text=turn.reply_text or "",
                    meta=None if failed else turn.meta,
                    prompt_id=turn.prompt_id,
                    rating=turn.rating,
                    feedback=turn.feedback,
                    state=state,
                    note=_failed_note(turn) if failed else version_note(ids),
                    stored_error=turn.error,
                    cost=turn.cost,
                )
                reply.persisted = True
            self._turns[reply] = ids
            reply.set_notices(self._notices_for(turn.meta, turn.attempts))
            widgets.append(reply)
        if widgets:
            await view.show_turns(widgets)  # the newest now, older ones when scrolled to
        self._show_intro()
        self._show_title()
        self.sidebar.set_current(self.conversation_id)
        self._load_history()
        view.follow()

    async def _cancel_stream(self) -> bool:
        """Cancel a streaming reply and wait until it is saved; True if one was cancelled."""
        worker = self._stream_worker
        if worker is None or not self.streaming:
            return False
        worker.cancel()
        with suppress(WorkerCancelled, WorkerError, WorkerFailed):
            await worker.wait()
        return True

    async def _reset_conversation(self) -> None:
        await self._cancel_stream()
        self.view.unfollow()
        await self.view.remove_children()
        self._turns.clear()
        self._notices_shown.clear()
        self._stop_editing()
        self.conversation_id = None
        self.conversation_title = None
        self._head_id = None
        self.settings = ChatSettings()
        self._show_intro()
        self._show_title()
        self.sidebar.set_current(None)
        self._load_history()

    async def action_new_conversation(self) -> None:
        """Start an empty conversation (kept in the list once something is sent)."""
        title = self.conversation_title
        cancelled = self.streaming
        await self._reset_conversation()
        self.prompt.clear()
        self._show_banner(None)
        if cancelled:
            self.notify(
                "The reply that was streaming was cancelled; its partial text is kept in "
                f"“{title or 'the previous conversation'}”.",
                title="Reply cancelled",
                severity="warning",
            )
        self.prompt.focus()

    async def _ensure_conversation(self, title: str) -> str | None:
        if self.conversation_id is not None:
            return self.conversation_id
        s = self.settings
        store = self.runtime.store
        try:
            self.conversation_id = await queue_write(
                store,
                store.conversations.create,
                title_from(title),
                self.model,
                s.system,
                s.temperature,
                s.max_tokens,
            )
        except RouterError as exc:
            self.notify(f"Not saved: {exc}", title="Conversation", severity="warning")
            return None
        self.conversation_title = title_from(title)
        self._head_id = None
        self._show_title()
        self.sidebar.set_current(self.conversation_id)
        return self.conversation_id

    def action_toggle_sidebar(self) -> None:
        sidebar = self.sidebar
        show = not sidebar.display
        router_app(self).remember(sidebar=show)
        sidebar.display = show
        if show:
            sidebar.reload()
        elif sidebar.has_focus_within:
            self.prompt.focus()

    def action_search_conversations(self) -> None:
        self.sidebar.display = True
        self.sidebar.focus_search()

    @on(ConversationSidebar.Opened)
    def _sidebar_opened(self, event: ConversationSidebar.Opened) -> None:
        self.open_conversation(event.conversation_id)
        self.prompt.focus()

    @on(ConversationSidebar.RenameRequested)
    def _sidebar_rename(self, event: ConversationSidebar.RenameRequested) -> None:
        self._ask_rename(event.conversation_id, event.title)

    @on(ConversationSidebar.DeleteRequested)
    def _sidebar_delete(self, event: ConversationSidebar.DeleteRequested) -> None:
        self._ask_delete(event.conversation_id, event.title)

    def action_rename_conversation(self) -> None:
        if self.conversation_id is None:
            self.notify("Send a prompt first: this conversation is not saved yet.")
            return
        self._ask_rename(self.conversation_id, self.conversation_title or "")

    def action_delete_conversation(self) -> None:
        if self.conversation_id is None:
            self.notify("This conversation is not saved yet.")
            return
        self._ask_delete(self.conversation_id, self.conversation_title or "")

    def _ask_rename(self, conversation_id: str, title: str) -> None:
        def done(new_title: str | None) -> None:
            if new_title is not None:
                store = self.runtime.store
                pending = queue_write(store, store.conversations.rename, conversation_id, new_title)
                self._renamed(conversation_id, new_title, pending)

        from .text_prompt import TextPromptModal

        self.app.push_screen(TextPromptModal("Rename conversation", "Title", title), done)

    @background("rename the conversation", group="chat-rename", exclusive=False)
    async def _renamed(
        self, conversation_id: str, new_title: str, pending: Awaitable[None]
    ) -> None:
        try:
            await pending
        except RouterError as exc:
            self.notify(str(exc), title="Not renamed", severity="error")
            return
        if conversation_id == self.conversation_id:
            self.conversation_title = new_title.strip() or "Untitled"
            self._show_title()
        self.sidebar.reload()

    def _ask_delete(self, conversation_id: str, title: str) -> None:
        def done(confirmed: bool | None) -> None:
            if confirmed:
                store = self.runtime.store
                pending = queue_write(store, store.conversations.delete, conversation_id)
                self._deleted(conversation_id, title, pending)

        from .confirm import ConfirmModal

        self.app.push_screen(ConfirmModal(f"Delete the conversation “{title}”?"), done)

    @background("delete the conversation", group="chat-delete", exclusive=False)
    async def _deleted(self, conversation_id: str, title: str, pending: Awaitable[None]) -> None:
        try:
            await pending
        except RouterError as exc:
            self.notify(str(exc), title="Not deleted", severity="error")
            return
        if conversation_id == self.conversation_id:
            await self._reset_conversation()
        self.sidebar.reload()
        self.notify(f"Deleted “{title}”.")

    # ---- model, settings, cache --------------------------------------------------------------

    async def action_pick_model(self) -> None:
        from .model_picker import ModelPicker, capability_labels

        rows = self.runtime.model_rows()
        catalog = self.runtime.catalog

        def chosen(model: str | None) -> None:
            if model:
                self._choose_model(model, rows)

        router = self.runtime.router
        picker = ModelPicker(
            rows,
            self.model,
            capabilities=lambda model: capability_labels(catalog, model),
            auto_pick=lambda: current_auto_pick(router),
        )
        await self.app.push_screen(picker, chosen)

    def _choose_model(self, model: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Use `model`; a retired one first asks whether to use its replacement."""
        row = next((r for r in rows if r["id"] == model), None)
        if row is None or row.get("catalog_status") != "retired":
            self.action_use_model(model)
            return
        from .retired_model import RetiredModelModal

        def decided(answer: str | None) -> None:
            if answer is not None:
                self.action_use_model(answer)

        self.app.push_screen(RetiredModelModal(model, row.get("replacement")), decided)

    def action_use_model(self, model: str) -> None:
        """Send to `model` from now on (saved with the open conversation)."""
        self.set_model(model)
        if self.conversation_id is not None:
            store = self.runtime.store
            pending = queue_write(
                store, store.conversations.update_settings, self.conversation_id, model=model
            )
            report_failure_of(self, pending, "Model not saved with the conversation")

    async def action_conversation_settings(self) -> None:
        def saved(settings: ChatSettings | None) -> None:
            if settings is None:
                return
            self.settings = settings
            self._show_title()
            if self.conversation_id is not None:
                store = self.runtime.store
                pending = queue_write(
                    store,
                    store.conversations.update_settings,
                    self.conversation_id,
                    system=settings.system,
                    temperature=settings.temperature,
                    max_tokens=settings.max_tokens,
                )
                report_failure_of(self, pending, "Settings not saved with the conversation")

        await self.app.push_screen(ConversationSettingsModal(self.settings), saved)

    def action_toggle_ignore_cache(self) -> None:
        self.query_one("#ignore-cache", Checkbox).toggle()

    # ---- compare -----------------------------------------------------------------------------

    def action_compare(self) -> None:
        """ctrl+k: send the prompt in the box to the current model and a second one, side by
        side; a vote then says which was better, and that reply continues the conversation."""
        text = self.prompt.text
        if not text.strip():
            self.app.bell()
            self.notify("Type a prompt first: ctrl+k sends it to two models side by side.")
            return
        if self.streaming:
            self.notify("A reply is streaming; ctrl+c cancels it first.", severity="warning")
            return
        if self.editing:
            self.notify("Finish editing first (Enter resends it, Esc stops editing).")
            return
        self._pick_second_model(text)

    @background("choose a model to compare with", group="chat-compare")
    async def _pick_second_model(self, text: str) -> None:
        from .compare import suggest_second
        from .model_picker import ModelPicker, capability_labels

        runtime = self.runtime
        rows = [r for r in runtime.model_rows() if r["id"] != self.model]
        suggestion = await asyncio.to_thread(suggest_second, runtime.router, self.model, rows)
        catalog = runtime.catalog
        router = runtime.router
        hint = f" · suggested: {suggestion}" if suggestion else ""

        def chosen(model: str | None) -> None:
            if model:
                self._start_compare(text, model)

        picker = ModelPicker(
            rows,
            self.model,
            capabilities=lambda model: capability_labels(catalog, model),
            auto_pick=lambda: current_auto_pick(router),
            title=f"Compare {self.model} with…",
            subtitle=f"Enter compare · Esc close{hint}",
            highlight=suggestion,
        )
        await self.app.push_screen(picker, chosen)

    def _chat_request(
        self,
        history: Sequence[Message],
        text: str,
        conversation_id: str | None,
        *,
        ignore_cache: bool | None = None,
    ) -> ChatRequest:
        """A request with this conversation's settings: `history`, then `text` as the user."""
        s = self.settings
        return ChatRequest(
            model=self.model,
            messages=[*history, Message("user", text)],
            system=s.system,
            temperature=s.temperature,
            max_tokens=s.max_tokens,
            ignore_cache=self.ignore_cache if ignore_cache is None else ignore_cache,
            conversation_id=conversation_id,
            source="tui",
        )

    @background("start the compare", group="chat-send", exclusive=False)
    async def _start_compare(self, text: str, second: str) -> None:
        """Open the compare screen: `text` goes to the current model and to `second`."""
        from .compare import CompareScreen

        if self.streaming or self._starting or self.prompt.text != text:
            self.notify("The prompt changed meanwhile; press ctrl+k again.", severity="warning")
            return
        new = self.conversation_id is None
        self._starting = True
        try:
            conversation_id = await self._ensure_conversation(text)
        finally:
            self._starting = False
        request = self._chat_request(self._history(), text, conversation_id)
        self.prompt.consume(text)
        self._show_banner(None)
        self.prompt.remember(text)
        blind = bool(router_app(self).ui_state.blind_compare)
        swap = blind and self._compare_rng.random() < 0.5

        def ended(outcome: CompareOutcome | None) -> None:
            self._compare_ended(text, new, outcome)

        screen = CompareScreen(request, (self.model, second), blind=blind, swap=swap)
        self.app.push_screen(screen, ended)

    @background("continue after the compare", group="chat-compare-end", exclusive=False)
    async def _compare_ended(self, text: str, new: bool, outcome: CompareOutcome | None) -> None:
        if not self._ui_alive():
            return
        if outcome is None or outcome.outcome is None or outcome.preferred is None:
            if new:
                await self._forget_conversation()
            if outcome is not None and outcome.error is not None:
                self._notify_refused(outcome.error, "Compare not sent")
            elif outcome is not None and outcome.cancelled:
                self.notify("Both replies were cancelled (and recorded as such).")
            else:
                self.notify(
                    "No vote: both replies are recorded; the conversation goes on without them."
                )
            self._restore_prompt(text)
            return
        await self._add_compare_turn(text, outcome)

    async def _forget_conversation(self) -> None:
        """Delete the conversation a compare started, when it ended without a turn."""
        conversation_id = self.conversation_id
        if conversation_id is None or self.view.replies:
            return
        store = self.runtime.store
        with suppress(RouterError):
            await queue_write(store, store.conversations.delete, conversation_id)
        self.conversation_id = None
        self.conversation_title = None
        self._head_id = None
        self._show_title()
        self.sidebar.set_current(None)
        self.sidebar.reload()

    async def _add_compare_turn(self, text: str, outcome: CompareOutcome) -> None:
        """The preferred reply continues the conversation; the other one is kept as another
        version of the turn ([ and ] switch)."""
        assert outcome.preferred is not None
        chosen = outcome.results[outcome.preferred]
        other = outcome.results[1 - outcome.preferred]
        if chosen is None or other is None:  # pragma: no cover - a vote needs both results
            return
        parent = self._head_id
        user_id = await self._save_message("user", text, parent)
        ids = TurnIds(user_id, parent)
        other_id = await self._save_message(
            "assistant",
            other.response_text,
            user_id,
            status=other.status,
            prompt_id=other.prompt_id,
        )
        chosen_id = await self._save_message(
            "assistant",
            chosen.response_text,
            user_id,
            status=chosen.status,
            prompt_id=chosen.prompt_id,
        )
        if user_id is not None and chosen_id is not None:
            ids.reply_id = chosen_id
            ids.alternatives = [i for i in (other_id, chosen_id) if i is not None]
        note = " · ".join(n for n in (outcome.verdict_note(), version_note(ids)) if n)
        ok = chosen.status == "ok"
        reply = ChatReply(
            text,
            outcome.request,
            text=chosen.response_text,
            meta=ReplyMeta.from_result(chosen),
            prompt_id=chosen.prompt_id,
            state="done" if ok else "error",
            note=note,
            stored_error=None if ok else f"✗ {error_headline(chosen)}",
        )
        reply.result = chosen
        reply.persisted = chosen_id is not None
        view = self.view
        for hint in view.query(".chat-hint"):
            await hint.remove()
        await view.mount_all([UserMessage(text), reply])
        self._turns[reply] = ids
        _set_notices(
            reply,
            self._notices_for(ReplyMeta.from_result(chosen), chosen.attempts, chosen.warnings),
        )
        view.follow()
        self.sidebar.reload()
        self.notify(outcome.summary(), title="Preference saved", markup=False)
        self.prompt.focus()

    def _notify_refused(self, error: RouterError, title: str) -> None:
        """A request refused before it left: a budget names itself and when it resets."""
        if isinstance(error, BudgetExceeded):
            heading, text = budget_notice(error)
            self.notify(text, title=heading, severity="error", timeout=15, markup=False)
        else:
            self.notify(str(error), title=title, severity="error", markup=False)

    # ---- sending -----------------------------------------------------------------------------

    def _history(self, before: ReplyView | None = None) -> list[Message]:
        """The completed turns so far (up to `before`), for a multi-turn request."""
        messages: list[Message] = []
        for reply in self.view.replies:
            if reply is before:
                break
            if reply.state == "done":
                messages += [Message("user", reply.user_text), Message("assistant", reply.text)]
        return messages

    @on(PromptInput.Submitted)
    def _prompt_submitted(self, event: PromptInput.Submitted) -> None:
        event.stop()
        self._send_in_background(event.text)

    @background("send the prompt", group="chat-send", exclusive=False)
    async def _send_in_background(self, text: str) -> None:
        # A worker, not the handler: saving a new conversation may wait for the database
        # lock, and the screen's messages and timers go on meanwhile.
        await self.send(text)

    @on(PromptInput.Interrupted)
    def _prompt_interrupted(self, event: PromptInput.Interrupted) -> None:
        event.stop()
        self.action_cancel_reply()

    @on(PromptInput.Changed, "#prompt")
    def _prompt_changed(self) -> None:
        self.view.note_input()  # a streaming reply lets the key's echo go first
        if not self.editing and not self.prompt.restored:
            self._show_banner(None)

    async def send(self, text: str) -> bool:
        """Send `text` as the next turn of the open conversation; False if not sent."""
        if not text.strip():
            self.app.bell()
            return False
        if self.streaming or self._starting:
            self.notify(
                "A reply is streaming; your prompt stays in the box (ctrl+c cancels the reply).",
                severity="warning",
            )
            return False
        if self._editing is not None:
            return await self._resend_edited(self._editing, text)
        self._starting = True  # until the reply streams: a second Enter does not send twice
        try:
            conversation_id = await self._ensure_conversation(text)
            request = self._chat_request(self._history(), text, conversation_id)
            self.prompt.consume(text)
            self._show_banner(None)
            await self._start_turn(text, request, restore=text, parent_id=self._head_id)
        finally:
            self._starting = False
        return True

    @background("send the template", group="chat-send", exclusive=False)
    async def start_template(self, template_id: str, values: dict[str, str]) -> None:
        """`send_template` in a worker (saving the conversation may wait for a lock)."""
        await self.send_template(template_id, values)

    async def send_template(self, template_id: str, values: dict[str, str]) -> bool:
        """Start a new conversation with a template (sent as template id + variables)."""
        if self.streaming or self._starting:
            self.notify("A reply is streaming; ctrl+c cancels it first.", severity="warning")
            return False
        try:
            template = self.runtime.templates.require(template_id)
            rendered = template.render(values)
        except RouterError as exc:
            self.notify(str(exc), title="Template", severity="error")
            return False
        await self._reset_conversation()
        s = self.settings = ChatSettings(rendered.system, None, None)
        self._starting = True
        try:
            conversation_id = await self._ensure_conversation(template.title)
            request = ChatRequest(
                model=self.model,
                template_id=template_id,
                template_vars=dict(values),
                temperature=s.temperature,
                max_tokens=s.max_tokens,
                ignore_cache=self.ignore_cache,
                conversation_id=conversation_id,
                source="tui",
            )
            await self._start_turn(rendered.prompt, request, restore=None, parent_id=None)
        finally:
            self._starting = False
        self.prompt.focus()
        return True

    async def edit_in_prompt(self, text: str, system: str | None) -> None:
        """Start a new conversation with `text` in the prompt box, to edit before sending."""
        if self.streaming:
            self.notify("A reply is streaming; ctrl+c cancels it first.", severity="warning")
            return
        await self._reset_conversation()
        self.settings = ChatSettings(system, None, None)
        self._show_title()
        self.prompt.set_text(text)
        self.prompt.focus()

    async def _start_turn(
        self,
        user_text: str,
        request: ChatRequest,
        restore: str | None,
        parent_id: int | None,
        edited: bool = False,
    ) -> None:
        view = self.view
        for hint in view.query(".chat-hint"):
            await hint.remove()
        reply = ChatReply(user_text, request)
        await view.mount_all([UserMessage(user_text), reply])
        view.follow()
        # Queued, not awaited: the request need not wait for it; the reply's save does.
        user_saved = self._save_message("user", user_text, parent_id)
        self._turns[reply] = TurnIds(None, parent_id, edited=edited, user_saved=user_saved)
        self.prompt.remember(user_text)
        self._stream_worker = self._stream_reply(reply, request, restore)

    def _save_message(
        self,
        role: str,
        content: str,
        parent_id: int | None,
        *,
        status: str = "ok",
        prompt_id: str | None = None,
    ) -> asyncio.Task[int | None]:
        """Append to the open conversation, queued now behind every earlier write; the task
        gives the message's id once written (None: not saved), which becomes the head."""
        conversation_id = self.conversation_id
        store = self.runtime.store
        pending = None
        if conversation_id is not None:
            pending = queue_write(
                store,
                store.conversations.add_message,
                conversation_id,
                role,
                content,
                prompt_id,
                parent_id=parent_id,
                status=status,
            )
        return asyncio.ensure_future(self._message_written(pending))

    async def _message_written(self, pending: Awaitable[int] | None) -> int | None:
        if pending is None:
            return None
        try:
            message_id = await pending
        except RouterError as exc:
            if self._ui_alive():
                self.notify(f"Not saved in the conversation: {exc}", severity="warning")
            return None
        self._head_id = message_id
        return message_id

    async def _user_id(self, ids: TurnIds) -> int | None:
        """The turn's prompt message id, once it is written."""
        if ids.user_saved is not None:
            # shielded: a cancelled stream still learns the id, to save its partial reply
            ids.user_id = await asyncio.shield(ids.user_saved)
            ids.user_saved = None
        return ids.user_id

    def cancel_reply(self, then: Callable[[], object] | None = None) -> bool:
        """Cancel the streaming reply (its partial text is kept and saved); `then` runs once
        it is saved. False if nothing was streaming (and `then` is not called)."""
        worker = self._stream_worker
        if worker is None or not self.streaming:
            return False
        if then is not None:
            self._after_stream.append(then)
        worker.cancel()
        return True

    @background("stream the reply", group="chat-stream")
    async def _stream_reply(
        self, reply: ReplyView, request: ChatRequest, restore: str | None, note: str | None = None
    ) -> None:
        """Route `request` and render its events into `reply`; ctrl+c cancels this worker."""
        await _ReplyStream(self, reply, request, restore, note).run()

    async def _queue_reply(
        self, reply: ReplyView, status: str, text: str, prompt_id: str | None = None
    ) -> tuple[str, asyncio.Task[int | None]] | None:
        """Queue the reply's message (a failed or cancelled one too: the turn stays, to be
        retried) once its prompt's is written; `_finish_turn` awaits it."""
        ids = self._turns.get(reply)
        if ids is None or self.conversation_id is None:
            return None
        user_id = await self._user_id(ids)
        saved = self._save_message(
            "assistant", text, user_id, status=status, prompt_id=prompt_id or reply.prompt_id
        )
        return status, saved

    async def _finish_turn(
        self,
        reply: ReplyView,
        saving: tuple[str, asyncio.Task[int | None]] | None,
        note: str | None = None,
    ) -> None:
        """Once the reply's message is written: its versions, its note, the sidebar."""
        ids = self._turns.get(reply)
        if saving is None or ids is None:
            return
        status, saved = saving
        reply_id = await asyncio.shield(saved)
        if reply_id is None:
            return
        ids.reply_id = reply_id
        ids.alternatives = [*ids.alternatives, reply_id]
        if ids.edited:  # the other versions are on the branch that was left
            ids.alternatives = await self._alternatives_of(reply_id) or ids.alternatives
        reply.persisted = True
        if status == "ok":
            _set_note(reply, " · ".join(n for n in (note, version_note(ids)) if n) or None)
        if self._ui_alive():
            self.sidebar.reload()

    async def _alternatives_of(self, reply_id: int) -> list[int]:
        conversation_id = self.conversation_id
        if conversation_id is None:
            return []
        try:
            thread = await asyncio.to_thread(
                self.runtime.store.conversations.thread, conversation_id
            )
        except RouterError:
            return []
        return next((list(m["alternatives"]) for m in thread if m["id"] == reply_id), [])

    def _notices_for(
        self, meta: ReplyMeta | None, attempts: list[Attempt], warnings: list[str] | None = None
    ) -> list[str]:
        """The reply's notices: the retirement notice once per conversation, rejected keys."""
        notices: list[str] = []
        if meta is not None and meta.notice and meta.notice not in self._notices_shown:
            self._notices_shown.add(meta.notice)
            notices.append(meta.notice)
        notices += warnings or []
        notices += key_problems(attempts, self.runtime.settings)
        return notices

    def _restore_prompt(self, text: str | None) -> None:
        """Put a prompt that got no reply back in the box, selected (typing replaces it)."""
        if text is None or not self._ui_alive():
            return
        prompt = self.prompt
        if prompt.text.strip():
            self.notify("Your prompt was not put back (the box is not empty); ↑ recalls it.")
            return
        prompt.restore(text)
        self._show_banner(RESTORED_HINT)
        prompt.focus()

    # ---- editing, regenerating and versions --------------------------------------------------

    def action_edit_turn(self) -> None:
        """Put the selected turn's prompt in the box; Enter resends it as a new branch."""
        reply = self._selected_reply("edit")
        if reply is None:
            return
        if self.streaming:
            self.notify("A reply is streaming; ctrl+c cancels it first.", severity="warning")
            return
        if reply.request is not None and reply.request.template_id is not None:
            self.notify("A template turn cannot be edited here; use the templates screen.")
            return
        self._editing = reply
        self.prompt.set_text(reply.user_text)
        self._show_banner(EDITING_HINT)
        self.prompt.focus()

    def _stop_editing(self) -> None:
        if self._editing is None:
            return
        self._editing = None
        with suppress(Exception):  # the screen may be closing
            self._show_banner(None)

    async def _resend_edited(self, reply: ReplyView, text: str) -> bool:
        """Send `text` in place of `reply`'s prompt: what followed stays in the old branch."""
        ids = self._turns.get(reply)
        history = self._history(before=reply)
        await self._drop_from(reply)
        self._stop_editing()
        request = self._chat_request(history, text, self.conversation_id)
        self.prompt.consume(text)
        parent = ids.parent_id if ids is not None else self._head_id
        await self._start_turn(text, request, restore=text, parent_id=parent, edited=True)
        return True

    async def _drop_from(self, reply: ReplyView) -> None:
        """Remove `reply`'s turn and every later one from the screen (not from the store)."""
        view = self.view
        replies = view.replies
        if reply not in replies:
            return
        later = replies[replies.index(reply) :]
        children = list(view.children)
        start = children.index(reply) if reply in children else len(children)
        if start > 0 and isinstance(children[start - 1], UserMessage):
            start -= 1
        for widget in children[start:]:
            await widget.remove()
        for each in later:
            self._turns.pop(each, None)
        view.selected = -1

    def action_regenerate(self) -> None:
        """Ask again with the model selected now (bypassing the cache); the replaced reply
        stays as another version of the turn ([ and ] switch)."""
        reply = self._selected_reply("regenerate")
        if reply is None:
            return
        if self.streaming:
            self.notify("A reply is streaming; ctrl+c cancels it first.", severity="warning")
            return
        if reply is not self.view.replies[-1]:
            self.notify("Only the latest reply can be regenerated.", severity="warning")
            return
        previous_model = reply.meta.model_used if reply.meta is not None else None
        if reply.request is not None and reply.request.template_id is not None:
            request = replace(reply.request, model=self.model, ignore_cache=True)
        else:
            request = self._chat_request(
                self._history(before=reply),
                reply.user_text,
                self.conversation_id,
                ignore_cache=True,
            )
        reply.request = request
        ids = self._turns.get(reply)
        if ids is None:  # not saved yet: save the prompt again so the reply has a parent
            ids = self._turns[reply] = TurnIds(None, self._head_id)
        if ids.user_id is None and ids.user_saved is None:
            ids.user_saved = self._save_message("user", reply.user_text, ids.parent_id)
        note = f"↻ regenerated with {self.model}"
        if previous_model and previous_model != self.model:
            note += f" (was {previous_model})"
        _set_note(reply, None)
        self.view.follow()
        self._stream_worker = self._stream_reply(reply, request, None, note)

    async def action_alternative(self, step: int) -> None:
        """Show the previous (-1) or next (+1) version of the selected turn's reply."""
        reply = self._selected_reply("switch versions of")
        if reply is None:
            return
        ids = self._turns.get(reply)
        if ids is None or len(ids.alternatives) < 2 or ids.reply_id not in ids.alternatives:
            self.notify("This reply has no other version.")
            return
        if self.streaming:
            self.notify("A reply is streaming; ctrl+c cancels it first.", severity="warning")
            return
        index = ids.alternatives.index(ids.reply_id) + step
        if not 0 <= index < len(ids.alternatives):
            self.notify("No older version." if step < 0 else "No newer version.")
            return
        assert self.conversation_id is not None
        position = self.view.replies.index(reply)
        store = self.runtime.store
        pending = queue_write(
            store, store.conversations.set_head, self.conversation_id, ids.alternatives[index]
        )
        self._switched(pending, position, f"Version {index + 1} of {len(ids.alternatives)}.")

    @background("switch versions", group="chat-versions")
    async def _switched(self, pending: Awaitable[int], position: int, done: str) -> None:
        try:
            await pending
            await self._reload_conversation(select=position)
        except RouterError as exc:
            self.notify(str(exc), severity="error")
            return
        self.notify(done)

    # ---- reply selection and actions ---------------------------------------------------------

    def action_leave_prompt(self) -> None:
        """Esc: stop editing; else go between the prompt and the replies. A second Esc on the
        replies while one streams cancels it (one habitual Esc never does)."""
        view = self.view
        if self.prompt.has_focus and self.editing:
            self._stop_editing()
            self.prompt.clear()
            return
        if view.has_focus:
            if self.streaming:
                self.action_cancel_reply()
                return
            self.prompt.focus()
            return
        self.action_select_latest()
        if self.streaming and view.replies:
            self.notify("The reply keeps streaming; Esc again (or ctrl+c) cancels it.", timeout=3)

    def action_select_latest(self) -> None:
        """Focus the conversation with the newest reply selected."""
        view = self.view
        if not view.replies:
            self.notify("No replies yet.")
            return
        view.focus()
        view.select_latest()

    @property
    def active_bindings(self) -> dict[str, ActiveBinding]:
        # The prompt box (a TextArea) binds ctrl+k itself, so the priority ctrl+k (compare)
        # would be listed first, before Send; the footer shows it after ctrl+o instead.
        bindings = super().active_bindings
        compare = bindings.pop("ctrl+k", None)
        if compare is None:
            return bindings
        ordered: dict[str, ActiveBinding] = {}
        for key, active in bindings.items():
            ordered[key] = active
            if key == "ctrl+o":
                ordered["ctrl+k"] = compare
        ordered.setdefault("ctrl+k", compare)
        return ordered

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_reply":
            return self.streaming  # otherwise ctrl+c keeps its usual meaning
        return True

    def action_cancel_reply(self) -> None:
        if not self.cancel_reply():
            self.notify("Nothing is streaming.")

    def action_focus_prompt(self) -> None:
        self.prompt.focus()

    def _selected_reply(self, doing: str) -> ReplyView | None:
        view = self.view
        reply = view.selected_reply
        if reply is None or not view.has_focus:
            reply = view.selected_reply or (view.replies[-1] if view.replies else None)
        if reply is None:
            self.notify(f"No reply to {doing}.")
        return reply

    def _ratable(self, reply: ReplyView) -> bool:
        if reply.prompt_id is None or reply.state in ("pending", "streaming"):
            self.notify("This reply cannot be rated yet.", severity="warning")
            return False
        return True

    def action_rate(self, rating: int) -> None:
        reply = self._selected_reply("rate")
        if reply is None or not self._ratable(reply):
            return
        self._save_rating(reply, rating, reply.feedback)

    def _save_rating(self, reply: ReplyView, rating: int, feedback: str | None) -> None:
        """Queue the rating now (after the turn's own writes, before any later rating); the
        stars show once it is written."""
        assert reply.prompt_id is not None
        runtime = self.runtime
        pending = queue_write(
            runtime.store, runtime.rate, reply.prompt_id, rating, feedback or None
        )
        self._rating_written(reply, pending)

    @background("save the rating", group="chat-rating", exclusive=False)
    async def _rating_written(self, reply: ReplyView, pending: Awaitable[dict[str, Any]]) -> None:
        try:
            record = await pending
        except RouterError as exc:
            self.notify(str(exc), title="Rating not saved", severity="error")
            return
        reply.set_rating(record["rating"], record["feedback"])

    async def action_feedback(self) -> None:
        reply = self._selected_reply("give feedback on")
        if reply is None or not self._ratable(reply):
            return

        def saved(value: tuple[int, str] | None) -> None:
            if value is not None:
                self._save_rating(reply, value[0], value[1])

        from .feedback import FeedbackModal

        await self.app.push_screen(FeedbackModal(reply.rating, reply.feedback), saved)

    async def action_attempt_details(self) -> None:
        """The request behind the selected reply and every attempt (model, outcome, reason)."""
        reply = self._selected_reply("show details of")
        if reply is None:
            return
        if reply.prompt_id is None:
            self.notify("This turn has no recorded request (it was never sent).")
            return
        from .attempts import AttemptsModal

        store = self.runtime.store
        try:
            row = store.get_request(reply.prompt_id)
            attempts = [Attempt(**a) for a in store.request_attempts(reply.prompt_id)]
        except RouterError as exc:
            self.notify(str(exc), severity="error")
            return
        if row is None:
            self.notify("The request is still running; its details come when it ends.")
            return
        problems = key_problems(attempts, self.runtime.settings)
        await self.app.push_screen(AttemptsModal(row, attempts, problems))

    def action_copy_reply(self) -> None:
        reply = self._selected_reply("copy")
        if reply is None:
            return
        self.view.copy(reply.text, "reply")  # says truthfully where the text went

    def action_copy_code(self) -> None:
        """`y`, then the number in a code block's label: copy that block of the reply."""
        self.view.action_copy_code()

    def action_scroll_tables(self, direction: int) -> None:
        """Scroll the wide tables of the selected reply sideways (←/→ in the replies)."""
        self.view.action_scroll_tables(direction)

    def action_export_conversation(self) -> None:
        """Write the open conversation to a Markdown file (asks where; never overwrites)."""
        if self.conversation_id is None:
            self.notify("Nothing to export: this conversation is not saved yet.")
            return
        from ..export_file import ask_and_export

        ask_and_export(self, self.conversation_id, self.conversation_title or "conversation")

    def action_scroll_conversation(self, direction: int) -> None:
        """PageUp / PageDown from the prompt: scroll the conversation."""
        if direction < 0:
            self.view.scroll_page_up()
        else:
            self.view.scroll_page_down()


@dataclass(slots=True)
class _ReplyStream:
    """One reply on its way into the chat screen, as named steps: begin, route, one handler
    per router event, and the endings (done, failed, refused, cancelled, broken)."""

    screen: ChatScreen
    reply: ReplyView
    request: ChatRequest
    #: The prompt to put back in the box if no reply comes (None: nothing to put back).
    restore: str | None
    #: Shown beside a finished reply (e.g. "regenerated with ...").
    note: str | None
    #: The text streamed so far, saved if the reply fails or is cancelled midway.
    parts: list[str] = field(default_factory=list)

    async def run(self) -> None:
        """Stream the reply to its end; whatever happens, the turn is saved and shown ended."""
        self._begin()
        try:
            await self._route()
        except asyncio.CancelledError:
            await self._cancelled()
            raise
        except RouterError as exc:
            await self._refused(exc)
        except Exception as exc:  # never let one request take the app down
            await self._broke(exc)
        finally:
            self._end()

    def _begin(self) -> None:
        """Start the status line's spinner; ctrl+c now means "cancel the reply"."""
        screen = self.screen
        screen._activity_start(self.request.model or screen.model)
        screen.refresh_bindings()

    async def _route(self) -> None:
        """Check the request (a refusal ends here), then render the router's events."""
        router = self.screen.runtime.router
        try:
            prepared = router.prepare(self.request)
        except RouterError as exc:
            await self._refused(exc)
            return
        await self._pump(cast(AsyncGenerator[Event, None], router.stream(prepared)))

    async def _pump(self, events: AsyncGenerator[Event, None]) -> None:
        """Render each event: text inline (the hot path), the rest through `_on_event`."""
        reply, parts = self.reply, self.parts
        first_token = self.screen._activity_first_token
        slice_start = perf_counter()
        async with aclosing(events):
            async for event in events:
                if isinstance(event, Delta):
                    parts.append(event.text)
                    first_token()
                    await reply.add(event.text)  # the reply tells the view when it grew
                    if perf_counter() - slice_start > STREAM_SLICE_S:
                        await asyncio.sleep(0)
                        slice_start = perf_counter()
                else:
                    await self._on_event(event)

    async def _on_event(self, event: Event) -> None:
        """Hand an event other than text to its step (ToolCallDelta: this screen sends no
        tools, so there is nothing to show)."""
        if isinstance(event, Started):
            await self._started(event)
        elif isinstance(event, AttemptFailed):
            self.reply.attempt_failed(event)
        elif isinstance(event, Restart):
            await self._restart(event)
        elif isinstance(event, Done):
            await self._done(event)
        elif isinstance(event, Failed):
            await self._failed(event)

    async def _started(self, event: Started) -> None:
        """An attempt began: show its model (in the reply and the status line)."""
        self.screen._activity_model(event.model)
        await self.reply.begin(event.model, event.prompt_id, event.notice)

    async def _restart(self, event: Restart) -> None:
        """A fallback's text diverged from what was shown: start the reply over."""
        self.parts.clear()  # cleared in place: `_pump` holds the same list
        await self.reply.restart(event.reason, event.next_model)

    async def _done(self, event: Done) -> None:
        """The reply is complete: save it, show it done, then its note and notices."""
        screen, reply, result = self.screen, self.reply, event.result
        # queued before the reply shows as done (ratable): written first
        saving = await screen._queue_reply(reply, "ok", result.response_text, result.prompt_id)
        await reply.finish(result)
        if self.request.template_id is not None:
            reply.user_text = result.prompt
        await screen._finish_turn(reply, saving, note=self.note)
        notices = screen._notices_for(
            ReplyMeta.from_result(result), result.attempts, result.warnings
        )
        _set_notices(reply, notices)

    async def _failed(self, event: Failed) -> None:
        """Every attempt failed: save the text so far as an error, give the prompt back."""
        screen, reply, failed = self.screen, self.reply, event.result
        saving = await screen._queue_reply(reply, "error", "".join(self.parts), failed.prompt_id)
        await reply.fail(failed)
        await screen._finish_turn(reply, saving)
        _set_notices(reply, screen._notices_for(None, failed.attempts))
        screen._restore_prompt(self.restore)

    async def _refused(self, exc: RouterError) -> None:
        """The router refused the request (bad input, budget): say why, give the prompt back."""
        screen, reply = self.screen, self.reply
        await reply.input_error(str(exc))
        await screen._finish_turn(
            reply, await screen._queue_reply(reply, "error", "".join(self.parts))
        )
        screen._restore_prompt(self.restore)
        if isinstance(exc, BudgetExceeded):
            screen._notify_refused(exc, "Not sent")

    async def _cancelled(self) -> None:
        """Cancelled (ctrl+c, Esc twice, quitting): save the partial reply as cancelled."""
        screen, reply = self.screen, self.reply
        saving = await screen._queue_reply(reply, "cancelled", "".join(self.parts))
        if screen._ui_alive():
            try:
                await reply.cancel()
                screen._restore_prompt(self.restore)
            except Exception as exc:  # the screen is going away: nothing left to show
                screen.app.log.error("cancelling the reply", exc)
        await screen._finish_turn(reply, saving)

    async def _broke(self, exc: Exception) -> None:
        """A bug or an unexpected failure: report it, end the reply as an error."""
        screen, reply = self.screen, self.reply
        report_failure(screen, "stream the reply", exc)
        with suppress(Exception):
            await reply.input_error(f"unexpected error: {type(exc).__name__}: {exc}")
        await screen._finish_turn(
            reply, await screen._queue_reply(reply, "error", "".join(self.parts))
        )
        screen._restore_prompt(self.restore)

    def _end(self) -> None:
        """Stop the spinner, give ctrl+c its other meaning back, run what waited for the end."""
        screen = self.screen
        screen._activity_stop()
        if screen._ui_alive():
            screen.call_later(screen.refresh_bindings)  # ctrl+c is not "cancel" any more
        callbacks, screen._after_stream = screen._after_stream, []
        for callback in callbacks:
            callback()


def _failed_note(turn: StoredTurn) -> str:
    if turn.meta is None:
        return "not sent"
    count = turn.meta.attempts
    return f"failed after {count} attempt" + ("" if count == 1 else "s")
