"""`llmrouter-tui` with no subcommand: open the runtime, run the app, close everything."""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from ..exit_codes import ExitCode

#: Textual repaints at most this often (its TEXTUAL_FPS, default 60, read when Textual is
#: imported). A typed key waits for the next repaint slot: at 60 that wait was the largest
#: part of the key echo while a reply streams (median 20 ms; 8 ms at 120, same CPU).
MAX_FPS = "120"


@contextmanager
def _quiet_gc() -> Iterator[None]:
    """Fewer and shorter garbage-collector pauses while the app runs.

    Without this a reply streamed at 2,000 tokens/s saw a 50-70 ms full collection every
    ~0.6 s, each one a stall for keys. What exists before the app runs (modules, classes,
    the runtime) lives as long as the process: frozen, collections no longer scan it. Textual
    makes many short-lived containers per frame: a higher gen-0 threshold collects less often.
    """
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def run_app(args: argparse.Namespace) -> int:
    """Run the Textual app; returns the process exit code (never raises for bad setup)."""
    os.environ.setdefault("TEXTUAL_FPS", MAX_FPS)  # a user's own setting wins
    from ..core.errors import ConfigError, StorageError
    from ..core.runtime import Runtime
    from ..demo import demo_upstream
    from ..logconfig import app_log  # logs go to <data dir>/logs/app.log, never the terminal

    try:
        with demo_upstream(getattr(args, "demo", None)) as upstream:
            try:
                runtime = Runtime.open(
                    config=getattr(args, "config", None),
                    data_dir=getattr(args, "data_dir", None),
                    demo_upstream=upstream,
                )
            except ConfigError as exc:
                print(f"llmrouter-tui: {exc}", file=sys.stderr)
                return ExitCode.BAD_INPUT
            except StorageError as exc:
                print(f"llmrouter-tui: {exc}", file=sys.stderr)
                return ExitCode.FAILURE
            from .app import LLMRouterApp

            app = LLMRouterApp(runtime)
            try:
                with _quiet_gc(), app_log(runtime, args):
                    app.run()
            finally:
                app.runtime.close()
                runtime.close()
    except OSError as exc:  # the demo upstream could not listen
        print(f"llmrouter-tui: cannot start demo mode: {exc}", file=sys.stderr)
        return ExitCode.FAILURE
    return app.return_code or ExitCode.OK
