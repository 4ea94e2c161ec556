"""The Textual application: three screens (modes) over one in-process Runtime."""

from __future__ import annotations

from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import App
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.signal import Signal
from textual.widgets import Button
from textual.worker import WorkerFailed

from ..core.errors import RouterError
from ..core.runtime import Runtime
from ..core.types import Result
from .commands import CommandSpec, LLMRouterCommands
from .key_order import OrderedKeys
from .messages import (
    NavigateTo,
    PreferenceRecorded,
    RatingRecorded,
    RequestRecorded,
    TemplateChosen,
    TemplateEdit,
)
from .offloop import queue_write, report_failure_of
from .screens.chat import ChatScreen
from .ui_state import load_ui_state, save_ui_state
from .workers import BackgroundFailed

if TYPE_CHECKING:
    from textual.notifications import SeverityLevel
    from textual.screen import Screen


def _templates_screen() -> Screen[None]:
    from .screens.templates import TemplatesScreen

    return TemplatesScreen()


def _analytics_screen() -> Screen[None]:
    from .screens.analytics import AnalyticsScreen

    return AnalyticsScreen()


#: ctrl+q while a reply streams: the stream is cancelled (and its partial reply saved)
#: first; if that takes longer than this, the app quits anyway.
QUIT_GRACE_S = 2.0


class LLMRouterApp(OrderedKeys, App[None]):
    """Chat, templates and analytics over `runtime` (which the caller closes)."""

    CSS_PATH = "app.tcss"
    TITLE = "llmrouter-tui"
    DEFAULT_MODE = "chat"
    COMMANDS = App.COMMANDS | {LLMRouterCommands}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "help", "Help", id="app.help"),
        Binding("f2", "switch_mode('chat')", "Chat", show=False, id="app.chat"),
        Binding("f3", "switch_mode('templates')", "Templates", show=False, id="app.templates"),
        Binding("f4", "switch_mode('analytics')", "Analytics", show=False, id="app.analytics"),
        Binding("ctrl+q", "quit", "Quit", priority=True, id="app.quit"),
    ]

    #: The model the chat sends to (shown in every screen's top bar).
    current_model: reactive[str] = reactive("")
    #: True while the runtime talks to the built-in fake upstream.
    demo_mode: reactive[bool] = reactive(False)

    def __init__(self, runtime: Runtime) -> None:
        super().__init__()
        self.runtime = runtime
        self.stats_changed: Signal[Result | dict[str, Any] | None] = Signal(self, "stats-changed")
        self.runtime_changed: Signal[Runtime] = Signal(self, "runtime-changed")
        self._exit_stack = ExitStack()
        self._chat_screen: ChatScreen | None = None
        self.add_mode("chat", self._make_chat_screen)
        # The other modes are imported when first opened: the first frame needs only chat.
        self.add_mode("templates", _templates_screen)
        self.add_mode("analytics", _analytics_screen)
        self._listen(runtime)
        self.set_reactive(LLMRouterApp.current_model, runtime.settings.default_model)
        self.set_reactive(LLMRouterApp.demo_mode, runtime.settings.demo)
        self._quitting = False
        self.ui_state = load_ui_state(runtime.settings.data_dir)
        if self.ui_state.theme in self.available_themes:
            self.theme = self.ui_state.theme

    def _listen(self, runtime: Runtime) -> None:
        """Turn the core's callbacks into messages (they may come from any thread)."""

        def request_recorded(result: Result) -> None:
            self.post_message(RequestRecorded(result))

        def rating_recorded(record: dict[str, Any]) -> None:
            self.post_message(RatingRecorded(record))

        def preference_recorded(record: dict[str, Any]) -> None:
            self.post_message(PreferenceRecorded(record))

        runtime.on_request(request_recorded)
        runtime.on_rating(rating_recorded)
        runtime.on_preference(preference_recorded)

    def on_mount(self) -> None:
        # The core's start-up notices (refused working-directory settings, replaced
        # templates), shown once; long enough to read.
        for notice in self.runtime.notices:
            severity: SeverityLevel = "warning" if notice.level == "warning" else "information"
            self.notify(
                notice.text, title="Configuration", severity=severity, timeout=30, markup=False
            )

    async def on_unmount(self) -> None:
        try:
            await self.runtime.router.aclose()
        finally:
            self._exit_stack.close()

    # ---- failures, remembered choices and quitting ------------------------------------------

    @on(BackgroundFailed)
    def _background_failed(self, event: BackgroundFailed) -> None:
        """Any worker's failure: a notice, never the end of the app."""
        error = event.error
        text = str(error) if isinstance(error, RouterError) else f"{type(error).__name__}: {error}"
        self.notify(text, title=f"Could not {event.doing}", severity="error", markup=False)

    def _handle_exception(self, error: Exception) -> None:
        # Textual ends the app when a worker fails (and prints a traceback with its locals,
        # prompt text included). Our workers report their own failures (workers.background);
        # this catches any other worker's: a notice, and the app goes on.
        if isinstance(error, WorkerFailed) and self.is_running:
            cause = error.error if isinstance(error.error, Exception) else error
            self.post_message(BackgroundFailed("finish a background task", cause))
            return
        super()._handle_exception(error)

    def _fatal_error(self) -> None:
        # Any other unhandled error still ends the app (its state is unknown), but with one
        # line on the terminal; the traceback goes to <data dir>/logs/crash.log.
        import sys
        import traceback

        error = sys.exc_info()[1] or self._exception
        where = self.runtime.store.logs_dir / "crash.log"
        try:
            with where.open("a", encoding="utf-8") as log:
                log.write("".join(traceback.format_exception(error)) if error else "unknown\n")
            detail = f" Details: {where}"
        except OSError:
            detail = ""
        name = type(error).__name__ if error else "error"
        self.bell()
        self._exit_renderables.append(
            f"llmrouter-tui stopped after an internal error ({name}: {error}).{detail}"
        )
        self._close_messages_no_wait()

    def remember(self, **changes: Any) -> None:
        """Remember changed choices (theme, sidebar) for the next start."""
        fresh = self.ui_state.updated(**changes)
        if fresh == self.ui_state:
            return
        self.ui_state = fresh
        # on the store's writer thread: in order, and never a file wait on the loop
        pending = queue_write(
            self.runtime.store, save_ui_state, self.runtime.settings.data_dir, fresh
        )
        report_failure_of(self, pending, "Preferences not saved")

    def watch_theme(self, theme: str) -> None:
        if self.is_running:
            self.remember(theme=theme)

    async def action_quit(self) -> None:
        """ctrl+q: a streaming reply is cancelled and saved first, then the app exits."""
        chat = self.chat_screen
        if chat is not None and chat.streaming and not self._quitting:
            self._quitting = True
            chat.cancel_reply(then=self.exit)
            self.set_timer(QUIT_GRACE_S, self.exit, name="quit-grace")
            return
        self.exit()

    # ---- routing between screens -------------------------------------------------------------

    def _make_chat_screen(self) -> ChatScreen:
        self._chat_screen = ChatScreen()
        return self._chat_screen

    @property
    def chat_screen(self) -> ChatScreen | None:
        """The chat screen, once it exists."""
        return self._chat_screen

    async def _chat(self) -> ChatScreen:
        await self.switch_mode("chat")
        chat = self.chat_screen
        assert chat is not None
        return chat

    @on(NavigateTo)
    async def _navigate(self, event: NavigateTo) -> None:
        await self.switch_mode(event.mode)

    @on(TemplateChosen)
    async def _use_template(self, event: TemplateChosen) -> None:
        chat = await self._chat()
        chat.start_template(event.template_id, event.values)

    @on(TemplateEdit)
    async def _edit_template(self, event: TemplateEdit) -> None:
        chat = await self._chat()
        await chat.edit_in_prompt(event.prompt, event.system)

    @on(Button.Pressed, "#start-demo")
    async def _demo_button(self) -> None:
        await self.action_start_demo()

    @on(RequestRecorded)
    def _request_recorded(self, event: RequestRecorded) -> None:
        self.stats_changed.publish(event.result)

    @on(RatingRecorded)
    def _rating_recorded(self, event: RatingRecorded) -> None:
        self.stats_changed.publish(event.record)

    @on(PreferenceRecorded)
    def _preference_recorded(self, event: PreferenceRecorded) -> None:
        self.stats_changed.publish(event.record)

    # ---- actions (also offered by the command palette) ---------------------------------------

    async def run_palette_command(self, spec: CommandSpec) -> None:
        """Run a palette entry on the app, or on its mode's screen after switching there."""
        if spec.mode is None:
            await self.run_action(spec.action)
            return
        await self.switch_mode(spec.mode)
        await self.run_action(spec.action, self.screen_stack[0])

    async def choose_model(self, model: str) -> None:
        """Use `model` in the chat from now on."""
        chat = await self._chat()
        chat.action_use_model(model)

    def action_toggle_blind_compare(self) -> None:
        """Compares hide (or show) the models' names until the vote; remembered."""
        blind = not self.ui_state.blind_compare
        self.remember(blind_compare=blind)
        self.notify(
            "Blind compare on: the sides are shuffled and the models' names shown after your vote."
            if blind
            else "Blind compare off: compares show the models' names.",
            title="Compare",
        )

    def action_help(self) -> None:
        from .screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    async def action_start_demo(self) -> None:
        """Switch to a runtime that talks to an in-process fake upstream."""
        if self.runtime.settings.demo:
            self.notify("Already in demo mode.")
            return
        from ..demo import demo_upstream

        try:
            url = self._exit_stack.enter_context(demo_upstream(True))
            fresh = Runtime.open(settings=self.runtime.settings, demo_upstream=url)
        except (OSError, RouterError) as exc:
            self.notify(f"Could not start demo mode: {exc}", severity="error")
            return
        await self.replace_runtime(fresh)
        self.notify(
            "Replies now come from a built-in fake provider; nothing leaves this machine.",
            title="Demo mode",
        )

    async def replace_runtime(self, runtime: Runtime) -> None:
        """Use `runtime` from now on and close the previous one."""
        chat = self.chat_screen
        if chat is not None and chat.streaming:
            chat.cancel_reply()
        old, self.runtime = self.runtime, runtime
        self._listen(runtime)
        self.demo_mode = runtime.settings.demo
        self.runtime_changed.publish(runtime)
        self.stats_changed.publish(None)
        await old.router.aclose()
        old.close()
