"""The typed way from a screen or widget to the app (and so to the runtime).

Textual types `self.app` as `App[object]`; this narrows it once, here, so screens and widgets
use `router_app(self).runtime` without a `type: ignore` each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.dom import DOMNode

if TYPE_CHECKING:
    from .app import LLMRouterApp


def router_app(node: DOMNode) -> LLMRouterApp:
    """`node.app` as the LLMRouterApp it runs in (TypeError in any other app)."""
    from .app import LLMRouterApp  # app.py imports the screens: import it when first used

    app = node.app
    if not isinstance(app, LLMRouterApp):
        raise TypeError(f"{type(node).__name__} runs only inside LLMRouterApp, not {app!r}")
    return app
