"""Turn `ask`'s arguments (and stdin) into a ChatRequest, refusing what cannot be sent."""

from __future__ import annotations

import argparse
from typing import TextIO

from ..core.errors import InputError
from ..core.textcheck import surrogate_at
from ..core.types import ChatRequest


def parse_vars(pairs: list[str]) -> dict[str, str]:
    """`--var KEY=VALUE` pairs as a dict; InputError naming the malformed one."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--var expects KEY=VALUE, got {pair!r}")
        values[key.strip()] = value
    return values


def read_stdin(stdin: TextIO) -> str:
    """All of stdin as text; InputError when it is not UTF-8 (nothing is guessed)."""
    raw = stdin.buffer.read() if hasattr(stdin, "buffer") else stdin.read().encode()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"stdin is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "convert it first, e.g. with iconv -f LATIN1 -t UTF-8"
        ) from None


def check_arguments(args: argparse.Namespace) -> None:
    """Arguments that were not valid UTF-8 reach Python as lone surrogates: refuse them."""
    named = {"PROMPT": args.prompt, "--system": args.system, "--model": args.model}
    named.update({f"--var {pair.partition('=')[0]}": pair for pair in args.var})
    for name, value in named.items():
        if isinstance(value, str) and surrogate_at(value) is not None:
            raise InputError(
                f"{name} is not valid UTF-8 text (check the terminal's or the script's encoding)"
            )


def build_request(args: argparse.Namespace, stdin: TextIO) -> ChatRequest:
    """The request `ask` sends: a prompt (PROMPT, or stdin for -) or a template with vars."""
    check_arguments(args)
    prompt = args.prompt
    if prompt == "-":
        prompt = read_stdin(stdin)
    if args.template:
        if prompt is not None:
            raise InputError("give either a PROMPT or --template, not both")
        return ChatRequest(
            model=args.model,
            template_id=args.template,
            template_vars=parse_vars(args.var),
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
