"""The footer: the keys that apply where the focus is, the essential ones always visible.

Textual's Footer lists every binding and lets the row run off the right edge, so at 80
columns Help and Quit were cut (with stray characters). This footer drops whole entries
that do not fit, least important first: what is never dropped is in ESSENTIAL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey  # Footer's own entry widget (not exported)

if TYPE_CHECKING:
    from textual.binding import Binding

#: Binding ids always shown (they are how one moves on).
ESSENTIAL = frozenset(
    {
        "prompt.send",
        "prompt.replies",
        "reply.prompt",
        "reply.rate1",
        "chat.cancel",
        "app.quit",
        "app.help",
        "picker.close",
        "templates.use",
    }
)
#: Binding ids dropped only after every other non-essential entry.
IMPORTANT = frozenset(
    {
        "reply.copy",
        "reply.regenerate",
        "reply.details",
        "reply.edit",
        "chat.new",
        "chat.model",
        "templates.filter",
        "analytics.refresh",
    }
)


def rank(binding: Binding) -> int:
    """2 essential, 1 important, 0 the rest (dropped first)."""
    if binding.id in ESSENTIAL:
        return 2
    return 1 if binding.id in IMPORTANT else 0


class KeyFooter(Footer):
    """A compact footer that fits its width by dropping the least important keys."""

    def __init__(self) -> None:
        super().__init__(compact=True, show_command_palette=False)

    def entries(self) -> list[tuple[Binding, bool, str, str]]:
        """(binding, enabled, tooltip, key shown) of every key that fits, in order."""
        items: list[tuple[Binding, bool, str, str]] = []
        seen: set[str] = set()
        for _node, binding, enabled, tooltip in self.screen.active_bindings.values():
            if not binding.show or binding.action in seen:
                continue
            seen.add(binding.action)
            items.append((binding, enabled, tooltip, self.app.get_key_display(binding)))
        palette = self.app.COMMAND_PALETTE_BINDING
        if self.app.ENABLE_COMMAND_PALETTE and palette in self.screen.active_bindings:
            _node, binding, enabled, tooltip = self.screen.active_bindings[palette]
            if binding.action not in seen:
                items.append((binding, enabled, tooltip, self.app.get_key_display(binding)))
        width = self.size.width or self.app.size.width

        def used(entries: list[tuple[Binding, bool, str, str]]) -> int:
            return sum(cell_len(shown) + 2 + cell_len(b.description) for b, _, _, shown in entries)

        for level in (0, 1):
            while used(items) > width:
                victims = [i for i, (b, *_rest) in enumerate(items) if rank(b) == level]
                if not victims:
                    break
                del items[victims[-1]]
        return items

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        for binding, enabled, tooltip, shown in self.entries():
            yield FooterKey(
                binding.key,
                shown,
                binding.description,
                binding.action,
                disabled=not enabled,
                tooltip=tooltip,
            ).data_bind(compact=Footer.compact)

    def on_resize(self) -> None:
        if self._bindings_ready:
            self.call_after_refresh(self.recompose)
