"""`llmrouter-tui ask`: a front-end beside `tui/` and `server/` (it imports the core only).

One prompt in; the reply on stdout, what happened on the way on stderr, and an exit code a
script can act on (README, Exit codes). `cli.py` parses the arguments; `main.run_ask` runs.
"""

from __future__ import annotations

from .main import run_ask

__all__ = ["run_ask"]
