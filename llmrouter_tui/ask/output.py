"""What `ask` writes: the reply on stdout (streamed to a terminal, whole when piped), and
notices, fallbacks, failed attempts and warnings on stderr, never silently dropped."""

from __future__ import annotations

import json
from contextlib import aclosing
from typing import TextIO

from ..core.router import attempts_text
from ..core.runtime import Runtime
from ..core.types import AttemptFailed, ChatRequest, Delta, Done, Failed, Restart, Result
from ..exit_codes import ExitCode


def announce(runtime: Runtime, err: TextIO) -> None:
    """The runtime's start-up notices (refused working-directory settings…), once."""
    for notice in runtime.notices:
        err.write(f"{notice.label}: {notice.text}\n")
    err.flush()


def describe(result: Result, err: TextIO) -> None:
    """Fallbacks, notices, truncation and sink warnings go to stderr: never silent."""
    if result.demo:
        err.write("[demo] reply from the built-in fake upstream\n")
    if result.notice:
        err.write(f"notice: {result.notice}\n")
    if result.fallback_used:
        err.write(f"↪ answered by {result.model_used} (fallback from {result.attempts[0].model})\n")
    for warning in result.warnings:
        err.write(f"warning: {warning}\n")


async def print_reply(
    runtime: Runtime, request: ChatRequest, *, as_json: bool, out: TextIO, err: TextIO
) -> ExitCode:
    """Route `request` and print its reply (or the full record with `as_json`)."""
    prepared = runtime.router.prepare(request)
    # Stream to a terminal; when piped, print only a complete reply so scripts never see a
    # truncated answer followed by a retry.
    live = out.isatty() and not as_json
    result: Result | None = None
    async with aclosing(runtime.router.stream(prepared, allow_restart=True)) as events:
        async for event in events:
            if isinstance(event, Delta) and live:
                out.write(event.text)
                out.flush()
            elif isinstance(event, Restart) and live:
                err.write(f"\n[stream broke: {event.reason}; restarting on {event.next_model}]\n")
            elif isinstance(event, AttemptFailed) and not as_json:
                a = event.attempt
                err.write(f"attempt failed: {a.model}: {a.error or a.outcome} {a.message or ''}\n")
            elif isinstance(event, Done | Failed):
                result = event.result
    assert result is not None
    if as_json:
        out.write(json.dumps(result.as_dict(), ensure_ascii=False) + "\n")
    elif result.status == "ok":
        if not live:
            out.write(result.response_text)
        out.write("\n")
    if result.status != "ok":
        err.write(f"error: {result.error}\n{attempts_text(result.attempts)}\n")
        return ExitCode.ALL_FAILED
    if not as_json:
        describe(result, err)
    return ExitCode.OK
