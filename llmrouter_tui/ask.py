"""`llmrouter-tui ask`: one prompt, reply on stdout, details on stderr, meaningful exit code."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from contextlib import aclosing
from typing import TextIO

from .cli import EXIT_ALL_FAILED, EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_OK
from .core.errors import BudgetExceeded, ConfigError, InputError, StorageError
from .core.redact import Redactor
from .core.router import attempts_text
from .core.runtime import Runtime
from .core.textcheck import surrogate_at
from .core.types import AttemptFailed, ChatRequest, Delta, Done, Failed, Restart, Result
from .demo import demo_upstream
from .logconfig import logging_to_stderr, redact_with


def _parse_vars(pairs: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--var expects KEY=VALUE, got {pair!r}")
        values[key.strip()] = value
    return values


def _read_stdin(stdin: TextIO) -> str:
    """All of stdin as text; InputError when it is not UTF-8 (nothing is guessed)."""
    raw = stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read().encode()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"stdin is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "convert it first, e.g. with iconv -f LATIN1 -t UTF-8"
        ) from None


def _check_arguments(args: argparse.Namespace) -> None:
    """Arguments that were not valid UTF-8 reach Python as lone surrogates: refuse them."""
    named = {"PROMPT": args.prompt, "--system": args.system, "--model": args.model}
    named.update({f"--var {pair.partition('=')[0]}": pair for pair in args.var})
    for name, value in named.items():
        if isinstance(value, str) and surrogate_at(value) is not None:
            raise InputError(
                f"{name} is not valid UTF-8 text (check the terminal's or the script's encoding)"
            )


def _build_request(args: argparse.Namespace, stdin: TextIO) -> ChatRequest:
    _check_arguments(args)
    prompt = args.prompt
    if prompt == "-":
        prompt = _read_stdin(stdin)
    if args.template:
        if prompt is not None:
            raise InputError("give either a PROMPT or --template, not both")
        return ChatRequest(
            model=args.model,
            template_id=args.template,
            template_vars=_parse_vars(args.var),
            system=args.system,
            temperature=args.temperature,
            max_tokens=args.max_tokens,
            ignore_cache=args.ignore_cache,
            source="ask",
        )
    if args.var:
        raise InputError("--var only makes sense with --template")
    if prompt is None:
        raise InputError("no prompt: pass PROMPT, or - to read it from stdin")
    return ChatRequest(
        model=args.model,
        prompt=prompt,
        system=args.system,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        ignore_cache=args.ignore_cache,
        source="ask",
    )


def announce(runtime: Runtime, err: TextIO) -> None:
    """The runtime's start-up notices (refused working-directory settings…), once."""
    for notice in runtime.notices:
        err.write(f"{notice.label}: {notice.text}\n")
    err.flush()


def _describe(result: Result, err: TextIO) -> None:
    """Fallbacks, notices, truncation and sink warnings go to stderr: never silent."""
    if result.demo:
        err.write("[demo] reply from the built-in fake upstream\n")
    if result.notice:
        err.write(f"notice: {result.notice}\n")
    if result.fallback_used:
        err.write(f"↪ answered by {result.model_used} (fallback from {result.attempts[0].model})\n")
    for warning in result.warnings:
        err.write(f"warning: {warning}\n")


async def _ask(runtime: Runtime, request: ChatRequest, args: argparse.Namespace) -> int:
    out, err = sys.stdout, sys.stderr
    prepared = runtime.router.prepare(request)
    # Stream to a terminal; when piped, print only a complete reply so scripts never see a
    # truncated answer followed by a retry.
    live = out.isatty() and not args.json
    result: Result | None = None
    async with aclosing(runtime.router.stream(prepared, allow_restart=True)) as events:
        async for event in events:
            if isinstance(event, Delta) and live:
                out.write(event.text)
                out.flush()
            elif isinstance(event, Restart) and live:
                err.write(f"\n[stream broke: {event.reason}; restarting on {event.next_model}]\n")
            elif isinstance(event, AttemptFailed) and not args.json:
                a = event.attempt
                err.write(f"attempt failed: {a.model}: {a.error or a.outcome} {a.message or ''}\n")
            elif isinstance(event, Done | Failed):
                result = event.result
    assert result is not None
    if args.json:
        out.write(json.dumps(result.as_dict(), ensure_ascii=False) + "\n")
    elif result.status == "ok":
        if not live:
            out.write(result.response_text)
        out.write("\n")
    if result.status != "ok":
        err.write(f"error: {result.error}\n{attempts_text(result.attempts)}\n")
        return EXIT_ALL_FAILED
    if not args.json:
        _describe(result, err)
    return EXIT_OK


def run_ask(args: argparse.Namespace) -> int:
    """Entry point for `llmrouter-tui ask`; returns the process exit code."""
    try:
        request = _build_request(args, sys.stdin)
        level = getattr(args, "log_level", "error")
        with demo_upstream(args.demo) as upstream_url, logging_to_stderr(level, "text"):
            runtime = Runtime.open(
                config=args.config, data_dir=args.data_dir, demo_upstream=upstream_url
            )
            redact_with(Redactor.for_settings(runtime.settings, public=runtime.catalog.models).text)
            announce(runtime, sys.stderr)
            try:
                return asyncio.run(_ask(runtime, request, args))
            finally:
                runtime.close()
    except InputError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_BAD_INPUT
    except BudgetExceeded as exc:  # no model may answer now: like every candidate failing
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_ALL_FAILED
    except ConfigError as exc:
        sys.stderr.write(f"config error: {exc}\n")
        return EXIT_BAD_INPUT
    except StorageError as exc:
        sys.stderr.write(f"storage error: {exc}\n")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        sys.stderr.write("cancelled\n")
        return 130
