"""`llmrouter-tui` with no subcommand: open the runtime, run the app, close everything."""

from __future__ import annotations

import argparse
import sys

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_CONFIG = 2


def run_app(args: argparse.Namespace) -> int:
    """Run the Textual app; returns the process exit code (never raises for bad setup)."""
    from ..core.errors import ConfigError, StorageError
    from ..core.runtime import Runtime
    from ..demo import demo_upstream

    try:
        with demo_upstream(bool(getattr(args, "demo", False))) as upstream:
            try:
                runtime = Runtime.open(
                    config=getattr(args, "config", None),
                    data_dir=getattr(args, "data_dir", None),
                    demo_upstream=upstream,
                )
            except ConfigError as exc:
                print(f"llmrouter-tui: {exc}", file=sys.stderr)
                return EXIT_BAD_CONFIG
            except StorageError as exc:
                print(f"llmrouter-tui: {exc}", file=sys.stderr)
                return EXIT_FAILURE
            from .app import LLMRouterApp

            app = LLMRouterApp(runtime)
            try:
                app.run()
            finally:
                app.runtime.close()
                runtime.close()
    except OSError as exc:  # the demo upstream could not listen
        print(f"llmrouter-tui: cannot start demo mode: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return app.return_code or EXIT_OK
