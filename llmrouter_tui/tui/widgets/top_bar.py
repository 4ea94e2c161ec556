"""The bar at the top of every main screen: tabs, current model, demo badge."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from .._css import sibling_tcss
from ..messages import NavigateTo

TABS: tuple[tuple[str, str, str], ...] = (
    ("chat", "F2", "Chat"),
    ("templates", "F3", "Templates"),
    ("analytics", "F4", "Analytics"),
)


class NavTab(Static):
    """One clickable tab; clicking asks the app to switch to its screen."""

    def __init__(self, mode: str, key: str, label: str, *, active: bool) -> None:
        super().__init__(f" {key} {label} ", markup=False, classes="-active" if active else "")
        self.mode = mode

    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.post_message(NavigateTo(self.mode))


class TopBar(Horizontal):
    """Tabs on the left; the model in use and a DEMO badge on the right."""

    DEFAULT_CSS = sibling_tcss(__file__)

    def __init__(self, active: str) -> None:
        super().__init__()
        self.active = active

    def compose(self) -> ComposeResult:
        for mode, key, label in TABS:
            yield NavTab(mode, key, label, active=mode == self.active)
        yield Static("", id="top-spacer")
        yield Static("", id="top-model", markup=False)
        yield Static(" DEMO ", id="top-demo", markup=False)

    def on_mount(self) -> None:
        self.watch(self.app, "current_model", self._show_model)
        self.watch(self.app, "demo_mode", self._show_demo)

    def _show_model(self, model: str) -> None:
        self.query_one("#top-model", Static).update(f"model: {model} ")

    def _show_demo(self, demo: bool) -> None:
        self.query_one("#top-demo", Static).display = demo
