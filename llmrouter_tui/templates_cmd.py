"""`llmrouter-tui templates import FILE.json`: convert the original's JSON list to TOML."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from .core.errors import ConfigError
from .core.template_toml import NotRepresentable, dump_templates
from .core.templates import Template, load_templates_file
from .exit_codes import ExitCode


def templates_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmrouter-tui templates",
        description="Work with prompt template files.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    imp = commands.add_parser(
        "import",
        help="convert a prompt_templates.json (the original llm-router's list) to TOML",
        description="Convert a JSON templates list (the original llm-router's "
        "prompt_templates.json) to this app's TOML format. Exit codes: 0 written, 2 bad "
        "input or the output exists, 1 the output could not be written.",
    )
    imp.add_argument("file", metavar="FILE.json", help="the JSON templates file to read")
    imp.add_argument(
        "-o",
        "--output",
        metavar="FILE.toml",
        help="where to write (default: FILE with the .toml suffix, next to it)",
    )
    imp.add_argument("--force", action="store_true", help="overwrite the output if it exists")
    return parser


def _comparable(templates: dict[str, Template]) -> list[Template]:
    return [replace(t, source="") for t in templates.values()]


def _write_checked(output: Path, text: str, expected: dict[str, Template]) -> None:
    """Write `text` next to `output`, check it reads back as `expected`, then move it in place."""
    fd, temp_name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".toml", dir=output.parent)
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        if _comparable(load_templates_file(temp)) != _comparable(expected):
            raise ConfigError(  # a bug in the writer, never the user's fault
                "the converted file does not read back as the same templates; nothing was "
                "written. Please report this with the input file",
                path=str(output),
            )
        os.replace(temp, output)
    finally:
        temp.unlink(missing_ok=True)


def run_import(args: argparse.Namespace) -> int:
    source = Path(args.file)
    output = Path(args.output) if args.output else source.with_suffix(".toml")
    if output.exists() and not args.force:
        sys.stderr.write(
            f"error: {output} already exists; pass --force to overwrite it, or choose "
            "another file with -o FILE.toml\n"
        )
        return ExitCode.BAD_INPUT
    try:
        templates = load_templates_file(source, json_list=True)
        text = dump_templates(templates.values(), converted_from=source.name)
    except ConfigError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return ExitCode.BAD_INPUT
    except NotRepresentable as exc:
        sys.stderr.write(f"error: {source}: a template holds text TOML cannot store ({exc})\n")
        return ExitCode.BAD_INPUT
    try:
        _write_checked(output, text, templates)
    except ConfigError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return ExitCode.FAILURE
    except OSError as exc:
        sys.stderr.write(f"error: cannot write {output}: {exc.strerror or exc}\n")
        return ExitCode.FAILURE
    sys.stderr.write(
        f"wrote {len(templates)} template(s) to {output}. Put it in the directory you run "
        "from or in the data directory as prompt_templates.toml, and remove the JSON file.\n"
    )
    return ExitCode.OK


def run_templates(argv: list[str]) -> int:
    """Entry point for `llmrouter-tui templates`; returns the process exit code."""
    args = templates_parser().parse_args(argv)
    if args.command == "import":
        return run_import(args)
    return ExitCode.BAD_INPUT  # pragma: no cover - argparse requires a known command
