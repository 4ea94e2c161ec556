"""The chat screen: conversation view, prompt, sidebar, model and settings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterable
from contextlib import aclosing, suppress
from dataclasses import dataclass, field, replace
from time import perf_counter
from typing import Any, ClassVar, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Checkbox, Footer, Static
from textual.worker import Worker, WorkerCancelled, WorkerError, WorkerFailed, WorkerState

from ...core.errors import RouterError
from ...core.runtime import Runtime
from ...core.store import Store
from ...core.types import (
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
from ..format import ReplyMeta
from ..widgets.conversation_view import ConversationView
from ..widgets.prompt_input import PromptInput
from ..widgets.reply import ReplyView
from ..widgets.sidebar import ConversationSidebar
from ..widgets.top_bar import TopBar
from ..widgets.user_message import UserMessage
from .conversation_settings import ChatSettings, ConversationSettingsModal

# The other modals are imported when first opened: the first frame does not need them.

SIDEBAR_MIN_WIDTH = 100  # the sidebar starts open on terminals at least this wide
TITLE_LENGTH = 48
#: Tokens that arrived together are handled without returning to the event loop; after this
#: long the stream yields, so a key typed meanwhile is not kept waiting behind the backlog.
STREAM_SLICE_S = 0.003


@dataclass(slots=True)
class StoredTurn:
    """One user message and the reply that counts for it (the latest, after regenerations)."""

    user_text: str
    reply_text: str | None = None
    prompt_id: str | None = None
    meta: ReplyMeta | None = None
    rating: int | None = None
    feedback: str | None = None


@dataclass(slots=True)
class StoredConversation:
    """A conversation as read back from the store."""

    info: dict[str, Any]
    turns: list[StoredTurn] = field(default_factory=list)


def load_conversation(store: Store, conversation_id: str) -> StoredConversation:
    """Read a conversation with each reply's recorded metadata and rating (blocking)."""
    info = store.conversations.get(conversation_id)
    turns: list[StoredTurn] = []
    messages: Iterable[dict[str, Any]] = store.conversations.messages(conversation_id)
    for message in messages:
        if message["role"] == "user":
            turns.append(StoredTurn(message["content"]))
        elif message["role"] == "assistant" and turns:
            turn = turns[-1]  # a regenerated reply replaces the earlier one
            turn.reply_text = message["content"]
            turn.prompt_id = message["prompt_id"]
            turn.meta = turn.rating = turn.feedback = None
            if turn.prompt_id:
                row = store.get_request(turn.prompt_id)
                if row is not None:
                    attempts = len(store.request_attempts(turn.prompt_id))
                    turn.meta = ReplyMeta.from_row(row, attempts)
                rating = store.get_rating(turn.prompt_id)
                if rating is not None:
                    turn.rating, turn.feedback = rating["rating"], rating["feedback"]
    return StoredConversation(info, turns)


def title_from(text: str) -> str:
    """A conversation title from the first prompt."""
    line = " ".join(text.split())
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1] + "…"


class ChatScreen(Screen[None]):
    """Send prompts, stream replies, rate them, and manage saved conversations."""

    CSS_PATH = "chat.tcss"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "leave_prompt", "Replies", key_display="esc", id="chat.escape"),
        Binding("ctrl+n", "new_conversation", "New", id="chat.new"),
        Binding("ctrl+b", "toggle_sidebar", "Sidebar", id="chat.sidebar"),
        Binding("ctrl+f", "search_conversations", "Search chats", show=False, id="chat.search"),
        Binding("ctrl+o", "pick_model", "Model", id="chat.model"),
        Binding("ctrl+s", "conversation_settings", "Settings", id="chat.settings"),
        Binding("ctrl+r", "toggle_ignore_cache", "No cache", id="chat.ignore_cache"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.conversation_id: str | None = None
        self.conversation_title: str | None = None
        self.settings = ChatSettings()
        self.model = ""
        self._stream_worker: Worker[None] | None = None

    # ---- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield TopBar("chat")
        with Horizontal(id="chat-body"):
            yield ConversationSidebar(id="sidebar")
            with Vertical(id="chat-main"):
                yield ConversationView(id="conversation")
                with Horizontal(id="chat-status"):
                    yield Static("", id="chat-title", markup=False)
                    yield Checkbox("Ignore cache ^r", id="ignore-cache", compact=True)
                yield PromptInput(id="prompt")
        yield Footer(compact=True)

    @property
    def runtime(self) -> Runtime:
        return self.app.runtime  # type: ignore[attr-defined,no-any-return]

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

    def on_mount(self) -> None:
        self.set_model(self.runtime.settings.default_model)
        self.sidebar.display = self.app.size.width >= SIDEBAR_MIN_WIDTH
        self._show_intro()
        self._show_title()
        self.prompt.focus()
        self.app.runtime_changed.subscribe(self, self._runtime_changed)  # type: ignore[attr-defined]
        self.sidebar.reload()
        self._open_last()

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
                "system prompt, F3 opens templates, F1 lists every key.",
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
        self.query_one("#chat-title", Static).update(" · ".join(parts))

    def set_model(self, model: str) -> None:
        """Use `model` for the next requests and show it in the top bar."""
        self.model = model
        self.app.current_model = model  # type: ignore[attr-defined]

    def _runtime_changed(self, runtime: Runtime) -> None:
        self._show_intro()
        self.sidebar.reload()

    # ---- conversations -----------------------------------------------------------------------

    @work(exclusive=True, group="chat-last")
    async def _open_last(self) -> None:
        store = self.runtime.store
        last = await asyncio.to_thread(store.conversations.last_conversation_id)
        if last is not None and self.conversation_id is None and not self.view.replies:
            self.open_conversation(last)

    @work(exclusive=True, group="chat-load")
    async def open_conversation(self, conversation_id: str) -> None:
        """Show a saved conversation and continue it."""
        if self.streaming:
            self.notify("A reply is streaming; press Esc to cancel it first.", severity="warning")
            return
        try:
            stored = await asyncio.to_thread(load_conversation, self.runtime.store, conversation_id)
        except RouterError as exc:
            self.notify(str(exc), title="Cannot open conversation", severity="error")
            self.sidebar.reload()
            return
        await self._show_conversation(stored)

    async def _show_conversation(self, stored: StoredConversation) -> None:
        view = self.view
        view.unfollow()
        await view.remove_children()
        info = stored.info
        self.conversation_id = info["id"]
        self.conversation_title = info["title"]
        self.settings = ChatSettings(info["system"], info["temperature"], info["max_tokens"])
        self.set_model(info["model"] or self.runtime.settings.default_model)
        widgets: list[UserMessage | ReplyView] = []
        for turn in stored.turns:
            widgets.append(UserMessage(turn.user_text))
            if turn.reply_text is not None:
                reply = ReplyView(
                    turn.user_text,
                    text=turn.reply_text,
                    meta=turn.meta,
                    prompt_id=turn.prompt_id,
                    rating=turn.rating,
                    feedback=turn.feedback,
                    state="done",
                )
                reply.persisted = True
                widgets.append(reply)
        if widgets:
            await view.mount_all(widgets)
        self._show_intro()
        self._show_title()
        self.sidebar.set_current(self.conversation_id)
        view.follow()

    async def _reset_conversation(self) -> None:
        if self.streaming and self._stream_worker is not None:
            self._stream_worker.cancel()
            with suppress(WorkerCancelled, WorkerError, WorkerFailed):
                await self._stream_worker.wait()
        self.view.unfollow()
        await self.view.remove_children()
        self.conversation_id = None
        self.conversation_title = None
        self.settings = ChatSettings()
        self._show_intro()
        self._show_title()
        self.sidebar.set_current(None)

    async def action_new_conversation(self) -> None:
        """Start an empty conversation (kept in the list once something is sent)."""
        await self._reset_conversation()
        self.prompt.focus()

    def _ensure_conversation(self, title: str) -> str | None:
        if self.conversation_id is not None:
            return self.conversation_id
        s = self.settings
        try:
            self.conversation_id = self.runtime.store.conversations.create(
                title_from(title), self.model, s.system, s.temperature, s.max_tokens
            )
        except RouterError as exc:
            self.notify(f"Not saved: {exc}", title="Conversation", severity="warning")
            return None
        self.conversation_title = title_from(title)
        self._show_title()
        self.sidebar.set_current(self.conversation_id)
        return self.conversation_id

    def _forget_if_empty(self) -> None:
        """Drop a just-created conversation whose only turn failed or was cancelled."""
        if self.conversation_id is None:
            return
        if any(r.persisted for r in self.view.replies):
            return
        with suppress(RouterError):
            self.runtime.store.conversations.delete(self.conversation_id)
        self.conversation_id = None
        self.conversation_title = None
        self._show_title()
        self.sidebar.set_current(None)

    def action_toggle_sidebar(self) -> None:
        sidebar = self.sidebar
        sidebar.display = not sidebar.display
        if sidebar.display:
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
            if new_title is None:
                return
            try:
                self.runtime.store.conversations.rename(conversation_id, new_title)
            except RouterError as exc:
                self.notify(str(exc), severity="error")
                return
            if conversation_id == self.conversation_id:
                self.conversation_title = new_title.strip() or "Untitled"
                self._show_title()
            self.sidebar.reload()

        from .text_prompt import TextPromptModal

        self.app.push_screen(TextPromptModal("Rename conversation", "Title", title), done)

    def _ask_delete(self, conversation_id: str, title: str) -> None:
        async def done(confirmed: bool | None) -> None:
            if not confirmed:
                return
            try:
                self.runtime.store.conversations.delete(conversation_id)
            except RouterError as exc:
                self.notify(str(exc), severity="error")
                return
            if conversation_id == self.conversation_id:
                await self._reset_conversation()
            self.sidebar.reload()
            self.notify(f"Deleted “{title}”.")

        from .confirm import ConfirmModal

        self.app.push_screen(ConfirmModal(f"Delete the conversation “{title}”?"), done)

    # ---- model, settings, cache --------------------------------------------------------------

    def action_pick_model(self) -> None:
        def chosen(model: str | None) -> None:
            if model:
                self.action_use_model(model)

        from .model_picker import ModelPicker

        self.app.push_screen(ModelPicker(self.runtime.model_rows(), self.model), chosen)

    def action_use_model(self, model: str) -> None:
        """Send to `model` from now on (saved with the open conversation)."""
        self.set_model(model)
        if self.conversation_id is not None:
            try:
                self.runtime.store.conversations.update_settings(self.conversation_id, model=model)
            except RouterError as exc:
                self.notify(str(exc), severity="error")

    def action_conversation_settings(self) -> None:
        def saved(settings: ChatSettings | None) -> None:
            if settings is None:
                return
            self.settings = settings
            self._show_title()
            if self.conversation_id is not None:
                try:
                    self.runtime.store.conversations.update_settings(
                        self.conversation_id,
                        system=settings.system,
                        temperature=settings.temperature,
                        max_tokens=settings.max_tokens,
                    )
                except RouterError as exc:
                    self.notify(str(exc), severity="error")

        self.app.push_screen(ConversationSettingsModal(self.settings), saved)

    def action_toggle_ignore_cache(self) -> None:
        self.query_one("#ignore-cache", Checkbox).toggle()

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
    async def _prompt_submitted(self, event: PromptInput.Submitted) -> None:
        event.stop()
        await self.send(event.text)

    async def send(self, text: str) -> bool:
        """Send `text` as the next turn of the open conversation; False if not sent."""
        if not text.strip():
            self.app.bell()
            return False
        if self.streaming:
            self.notify("A reply is streaming; press Esc to cancel it first.", severity="warning")
            return False
        conversation_id = self._ensure_conversation(text)
        s = self.settings
        request = ChatRequest(
            model=self.model,
            messages=[*self._history(), Message("user", text)],
            system=s.system,
            temperature=s.temperature,
            max_tokens=s.max_tokens,
            ignore_cache=self.ignore_cache,
            conversation_id=conversation_id,
            source="tui",
        )
        self.prompt.clear()
        await self._start_turn(text, request, restore=text)
        return True

    async def send_template(self, template_id: str, values: dict[str, str]) -> bool:
        """Start a new conversation with a template (sent as template id + variables)."""
        if self.streaming:
            self.notify("A reply is streaming; press Esc to cancel it first.", severity="warning")
            return False
        try:
            template = self.runtime.templates.require(template_id)
            rendered = template.render(values)
        except RouterError as exc:
            self.notify(str(exc), title="Template", severity="error")
            return False
        await self._reset_conversation()
        s = self.settings = ChatSettings(rendered.system, None, None)
        conversation_id = self._ensure_conversation(template.title)
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
        await self._start_turn(rendered.prompt, request, restore=None)
        self.prompt.focus()
        return True

    async def _start_turn(self, user_text: str, request: ChatRequest, restore: str | None) -> None:
        view = self.view
        for hint in view.query(".chat-hint"):
            await hint.remove()
        reply = ReplyView(user_text, request)
        await view.mount_all([UserMessage(user_text), reply])
        view.follow()
        self._stream_worker = self._stream_reply(reply, request, restore, persist_user=True)

    @work(exclusive=True, group="chat-stream")
    async def _stream_reply(
        self, reply: ReplyView, request: ChatRequest, restore: str | None, persist_user: bool
    ) -> None:
        """Route `request` and render its events into `reply`; Esc cancels this worker."""
        router = self.runtime.router
        try:
            prepared = router.prepare(request)
        except RouterError as exc:
            await reply.input_error(str(exc))
            self._restore_prompt(restore)
            self._forget_if_empty()
            return
        try:
            events = cast(AsyncGenerator[Event, None], router.stream(prepared))
            slice_start = perf_counter()
            async with aclosing(events):
                async for event in events:
                    if isinstance(event, Delta):
                        await reply.add(event.text)  # the reply tells the view when it grew
                        if perf_counter() - slice_start > STREAM_SLICE_S:
                            await asyncio.sleep(0)
                            slice_start = perf_counter()
                    elif isinstance(event, Started):
                        await reply.begin(event.model, event.prompt_id, event.notice)
                    elif isinstance(event, AttemptFailed):
                        reply.attempt_failed(event)
                    elif isinstance(event, Restart):
                        await reply.restart(event.reason, event.next_model)
                    elif isinstance(event, Done):
                        await reply.finish(event.result)
                        if request.template_id is not None:
                            reply.user_text = event.result.prompt
                        self._persist(reply, persist_user)
                    elif isinstance(event, Failed):
                        await reply.fail(event.result)
                        self._restore_prompt(restore)
                        self._forget_if_empty()
        except asyncio.CancelledError:
            await reply.cancel()
            self._forget_if_empty()
            raise
        except Exception as exc:  # never let one request take the app down
            await reply.input_error(f"unexpected error: {exc!r}")
            self._restore_prompt(restore)

    def _persist(self, reply: ReplyView, persist_user: bool) -> None:
        conversation_id = self.conversation_id
        if conversation_id is None:
            return
        conversations = self.runtime.store.conversations
        try:
            if persist_user and not reply.persisted:
                conversations.add_message(conversation_id, "user", reply.user_text)
            conversations.add_message(
                conversation_id, "assistant", reply.text, prompt_id=reply.prompt_id
            )
        except RouterError as exc:
            self.notify(f"Reply not saved in the conversation: {exc}", severity="warning")
            return
        reply.persisted = True
        self.sidebar.reload()

    def _restore_prompt(self, text: str | None) -> None:
        if text is None:
            return
        prompt = self.prompt
        if not prompt.text.strip():
            prompt.set_text(text)
        prompt.focus()

    # ---- reply selection and actions ---------------------------------------------------------

    def action_leave_prompt(self) -> None:
        """Esc: cancel a streaming reply, else toggle between the prompt and the replies."""
        if self.streaming:
            self.action_cancel_reply()
            return
        if self.view.has_focus:
            self.prompt.focus()
            return
        self.action_select_latest()

    def action_select_latest(self) -> None:
        """Focus the conversation with the newest reply selected."""
        view = self.view
        if not view.replies:
            self.notify("No replies yet.")
            return
        view.focus()
        view.select_latest()

    def action_cancel_reply(self) -> None:
        if self._stream_worker is not None and self.streaming:
            self._stream_worker.cancel()
        else:
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
        assert reply.prompt_id is not None
        try:
            record = self.runtime.rate(reply.prompt_id, rating, feedback or None)
        except RouterError as exc:
            self.notify(str(exc), title="Rating not saved", severity="error")
            return
        reply.set_rating(record["rating"], record["feedback"])

    def action_feedback(self) -> None:
        reply = self._selected_reply("give feedback on")
        if reply is None or not self._ratable(reply):
            return

        def saved(value: tuple[int, str] | None) -> None:
            if value is not None:
                self._save_rating(reply, value[0], value[1])

        from .feedback import FeedbackModal

        self.app.push_screen(FeedbackModal(reply.rating, reply.feedback), saved)

    def action_copy_reply(self) -> None:
        reply = self._selected_reply("copy")
        if reply is None:
            return
        self.app.copy_to_clipboard(reply.text)
        self.notify(f"Copied {len(reply.text):,} characters.")

    def action_regenerate(self) -> None:
        reply = self._selected_reply("regenerate")
        if reply is None:
            return
        if self.streaming:
            self.notify("A reply is streaming; press Esc to cancel it first.", severity="warning")
            return
        if reply is not self.view.replies[-1]:
            self.notify("Only the latest reply can be regenerated.", severity="warning")
            return
        if reply.request is not None:
            request = replace(reply.request, ignore_cache=True)
        else:
            s = self.settings
            request = ChatRequest(
                model=self.model,
                messages=[*self._history(before=reply), Message("user", reply.user_text)],
                system=s.system,
                temperature=s.temperature,
                max_tokens=s.max_tokens,
                ignore_cache=True,
                conversation_id=self.conversation_id,
                source="tui",
            )
        reply.request = request
        self.view.follow()
        self._stream_worker = self._stream_reply(reply, request, None, persist_user=True)
