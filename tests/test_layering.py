"""The core never imports textual, the TUI or the server; SDKs load lazily."""

from __future__ import annotations

import json
import subprocess
import sys

CHECK = """
import json, sys
import llmrouter_tui.core.runtime, llmrouter_tui.core.router, llmrouter_tui.core.store
import llmrouter_tui.core.providers, llmrouter_tui.core.templates, llmrouter_tui.core.tokens
print(json.dumps(sorted(sys.modules)))
"""


def test_core_imports_no_ui_server_or_sdk():
    out = subprocess.run(
        [sys.executable, "-c", CHECK], check=True, capture_output=True, text=True
    ).stdout
    modules = json.loads(out)
    forbidden = [
        m
        for m in modules
        if m.split(".")[0] in {"textual", "groq", "tiktoken", "h11"}
        or m.startswith(("llmrouter_tui.tui", "llmrouter_tui.server", "google.genai"))
    ]
    assert forbidden == []
