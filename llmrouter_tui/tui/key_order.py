"""Keys take effect in the order they arrived, also in bursts.

Textual hands each key to the focused widget's own queue. A character is handled there at
once, but a key that is a binding (Backspace, Tab, ctrl+j, Esc…) bubbles up through every
parent's queue to the app before its action runs: in a burst (a paste without bracketed
paste, a macro, `tmux send-keys`, auto-repeat while the app is busy) the characters typed
after it were already inserted. `alpha ctrl+j beta` became `alphabeta` plus a newline.

The app therefore lets one key at a time through: after forwarding a key it sends a
`KeyFence` along the same path; the fence reaches the app only after the key was handled
(by the widget or by a binding), and only then the next waiting key is forwarded, to the
widget that has the focus by then. A lost fence (its widget went away) releases the queue
after `FENCE_TIMEOUT_S`.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from textual import events
from textual.message import Message

if TYPE_CHECKING:
    from textual.app import App
    from textual.timer import Timer

#: A fence that never comes back (its widget was removed meanwhile) stops holding keys after
#: this long.
FENCE_TIMEOUT_S = 0.5


class KeyFence(Message):
    """Sent after a forwarded key, along the same path; back at the app, the key is done."""


class OrderedKeys:
    """App mixin: forwards keys one at a time (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._key_fence: KeyFence | None = None
        self._waiting_keys: deque[events.Key] = deque()
        self._fence_timer: Timer | None = None

    @property
    def keys_waiting(self) -> int:
        """Keys that arrived and wait for the one in progress (a burst is being typed)."""
        return len(self._waiting_keys)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded:
            if self._key_fence is not None:
                self._waiting_keys.append(event)
                self._arm_fence_timer()
                return
            await self._dispatch_key(event)
            return
        await super().on_event(event)  # type: ignore[misc]

    async def _dispatch_key(self, event: events.Key) -> None:
        app: App[Any] = self  # type: ignore[assignment]
        fence = self._key_fence = KeyFence()
        await super().on_event(event)  # type: ignore[misc]
        if not event.is_forwarded:  # handled by a priority binding, or dropped
            self._release(fence)
            return
        target = app.focused or app.screen
        if not target.post_message(fence):
            self._release(fence)

    def on_key_fence(self, message: KeyFence) -> None:
        message.stop()
        # After the callbacks the key queued (a focus change), not before them.
        app: App[Any] = self  # type: ignore[assignment]
        app.call_later(self._release, message)

    def _release(self, fence: KeyFence | None) -> None:
        if fence is not self._key_fence:
            return
        self._key_fence = None
        if self._fence_timer is not None:
            self._fence_timer.stop()
            self._fence_timer = None
        if self._waiting_keys:
            app: App[Any] = self  # type: ignore[assignment]
            app.call_later(self._next_key)

    async def _next_key(self) -> None:
        if self._key_fence is None and self._waiting_keys:
            await self._dispatch_key(self._waiting_keys.popleft())

    def _arm_fence_timer(self) -> None:
        if self._fence_timer is None:
            app: App[Any] = self  # type: ignore[assignment]
            self._fence_timer = app.set_timer(FENCE_TIMEOUT_S, self._fence_lost)

    def _fence_lost(self) -> None:
        self._fence_timer = None
        self._release(self._key_fence)
