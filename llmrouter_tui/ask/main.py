"""`llmrouter-tui ask`'s run: open the runtime, print the reply, map failures to exit codes
with one line on stderr (never a traceback)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from ..core.errors import BudgetExceeded, ConfigError, InputError, StorageError
from ..core.redact import Redactor
from ..core.runtime import Runtime
from ..demo import demo_upstream
from ..exit_codes import ExitCode
from ..logconfig import logging_to_stderr, redact_with
from .output import announce, print_reply
from .request import build_request


def run_ask(args: argparse.Namespace) -> int:
    """Entry point for `llmrouter-tui ask`; returns the process exit code."""
    try:
        request = build_request(args, sys.stdin)
        level = getattr(args, "log_level", "error")
        with demo_upstream(args.demo) as upstream_url, logging_to_stderr(level, "text"):
            runtime = Runtime.open(
                config=args.config, data_dir=args.data_dir, demo_upstream=upstream_url
            )
            redact_with(Redactor.for_settings(runtime.settings, public=runtime.catalog.models).text)
            announce(runtime, sys.stderr)
            try:
                reply = print_reply(
                    runtime, request, as_json=args.json, out=sys.stdout, err=sys.stderr
                )
                return asyncio.run(reply)
            finally:
                runtime.close()
    except InputError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return ExitCode.BAD_INPUT
    except BudgetExceeded as exc:  # no model may answer now: like every candidate failing
        sys.stderr.write(f"error: {exc}\n")
        return ExitCode.ALL_FAILED
    except ConfigError as exc:
        sys.stderr.write(f"config error: {exc}\n")
        return ExitCode.BAD_INPUT
    except StorageError as exc:
        sys.stderr.write(f"storage error: {exc}\n")
        return ExitCode.FAILURE
    except KeyboardInterrupt:
        sys.stderr.write("cancelled\n")
        return ExitCode.INTERRUPTED
