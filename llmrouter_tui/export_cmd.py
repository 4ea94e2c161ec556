"""`llmrouter-tui export`: a saved conversation as Markdown (stdout, or a file with -o)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from .core.config import load_settings
from .core.db import DB_FILENAME
from .core.errors import ConfigError, InputError, StorageError
from .core.export import export_markdown, write_export
from .core.store import Store
from .exit_codes import ExitCode

#: A conversation id may be shortened to a unique prefix of at least this many characters.
MIN_PREFIX = 6


def _resolve(store: Store, wanted: str) -> str:
    """The full id of the conversation `wanted` names (its id or a unique prefix of it)."""
    rows = store.conversations.list(limit=1_000_000)
    ids = [row["id"] for row in rows]
    if wanted in ids:
        return wanted
    matches = [i for i in ids if len(wanted) >= MIN_PREFIX and i.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise InputError(f"conversation id {wanted!r} is ambiguous: it starts {len(matches)} ids")
    raise InputError(f"no conversation with id {wanted!r} (see `llmrouter-tui export --list`)")


def _list(store: Store, out: TextIO) -> None:
    for row in store.conversations.list(limit=1_000_000):
        title = " ".join(str(row["title"]).split())
        out.write(f"{row['id']}  {row['updated_at']}  {row['message_count']:>4}  {title}\n")


def export_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmrouter-tui export",
        description="Write a saved conversation as Markdown with YAML front matter (model, "
        "attempts, tokens and rating of every reply). Exit codes: 0 written, 2 unknown "
        "conversation or the output exists, 1 the database or the output file is unusable.",
    )
    parser.add_argument(
        "conversation_id",
        nargs="?",
        metavar="CONVERSATION_ID",
        help=f"the conversation's id, or a unique prefix of it (at least {MIN_PREFIX} "
        "characters); --list shows them",
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    parser.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    parser.add_argument(
        "--list", action="store_true", help="list saved conversations: id, updated, messages"
    )
    parser.add_argument("--config", metavar="PATH", help="llmrouter.toml to use")
    parser.add_argument("--data-dir", metavar="DIR", help="where the database and logs/ live")
    return parser


def run_export(argv: list[str], out: TextIO | None = None) -> int:
    """Run `llmrouter-tui export ARGV…`; returns the exit code."""
    args = export_parser().parse_args(argv)
    out = sys.stdout if out is None else out
    err = sys.stderr
    if not args.list and not args.conversation_id:
        print("llmrouter-tui export: give a CONVERSATION_ID (or --list)", file=err)
        return ExitCode.BAD_INPUT
    try:
        settings = load_settings(config=args.config, data_dir=args.data_dir)
    except ConfigError as exc:
        print(f"llmrouter-tui export: {exc}", file=err)
        return ExitCode.BAD_INPUT
    database = settings.data_dir / DB_FILENAME
    if not database.exists():  # do not create an empty database just to say "not found"
        if args.list:
            return ExitCode.OK
        print(
            f"llmrouter-tui export: no conversation with id {args.conversation_id!r} "
            f"(there is no database at {database})",
            file=err,
        )
        return ExitCode.BAD_INPUT
    try:
        with Store(settings.data_dir) as store:
            if args.list:
                _list(store, out)
                return ExitCode.OK
            text = export_markdown(store, _resolve(store, args.conversation_id))
    except InputError as exc:
        print(f"llmrouter-tui export: {exc}", file=err)
        return ExitCode.BAD_INPUT
    except StorageError as exc:
        print(f"llmrouter-tui export: {exc}", file=err)
        return ExitCode.FAILURE
    if args.output is None or args.output == "-":
        out.write(text)
        out.flush()
        return ExitCode.OK
    path = Path(args.output).expanduser()
    try:
        write_export(path, text, force=args.force)
    except FileExistsError:
        print(
            f"llmrouter-tui export: {path} already exists; pass --force to overwrite it",
            file=err,
        )
        return ExitCode.BAD_INPUT
    except OSError as exc:
        print(f"llmrouter-tui export: cannot write {path}: {exc.strerror or exc}", file=err)
        return ExitCode.FAILURE
    print(f"wrote {path}", file=err)
    return ExitCode.OK
