"""Command line: the Textual app (default), `--serve`, `ask` for one-shot scripting, `config`
(where each setting comes from) and `templates import` (the original's JSON to TOML)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .logconfig import FORMATS, LEVELS


def _common_options(parser: argparse.ArgumentParser, demo_modes: bool = False) -> None:
    parser.add_argument("--config", metavar="PATH", help="llmrouter.toml to use")
    parser.add_argument("--data-dir", metavar="DIR", help="where the database and logs/ live")
    if demo_modes:  # not for `ask`, whose optional prompt would be taken for the mode
        parser.add_argument(
            "--demo",
            nargs="?",
            const="on",
            default=None,
            choices=("on", "flaky"),
            metavar="flaky",
            help="use the built-in fake upstream instead of real providers (no keys needed); "
            "--demo flaky also makes it fail, stall and cut now and then, to see retries, "
            "fallback and the circuit breaker at work",
        )
        return
    parser.add_argument(
        "--demo",
        action="store_true",
        help="use the built-in fake upstream instead of real providers (no keys needed)",
    )


def version() -> str:
    """The installed distribution's version (the package's own when run from a source tree
    that was never installed)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        return installed_version("llmrouter-tui")
    except PackageNotFoundError:
        from . import __version__

        return __version__


def main_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmrouter-tui",
        description="Route chat prompts to Groq, Gemini and OpenAI-compatible models. "
        "With no arguments, opens the terminal app. "
        "See also: llmrouter-tui ask --help, llmrouter-tui config --help "
        "(where each setting comes from), llmrouter-tui templates import --help, "
        "llmrouter-tui export --help (a conversation as Markdown), "
        "llmrouter-tui leaderboard --help (your models, ranked by your votes)",
    )
    parser.add_argument("--version", action="version", version=f"llmrouter-tui {version()}")
    _common_options(parser, demo_modes=True)
    parser.add_argument("--serve", action="store_true", help="run the HTTP server, no TUI")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to bind (default 8000)")
    parser.add_argument(
        "--token", help="require 'Authorization: Bearer TOKEN' (or set LLMROUTER_SERVER_TOKEN)"
    )
    parser.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="allow binding a non-loopback address without a token",
    )
    parser.add_argument(
        "--allow-host",
        metavar="NAME",
        action="append",
        default=[],
        help="also answer requests made to this host name (repeatable; '.example.com' adds "
        "its subdomains, '*' any name); see README, Security defaults",
    )
    parser.add_argument(
        "--cors-origin",
        metavar="ORIGIN",
        action="append",
        default=[],
        help="let web pages from this origin use the server, e.g. http://localhost:5173 "
        "(repeatable)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="with --serve: N server processes sharing the port and the data directory, the "
        "kernel spreading connections across them (Linux; default 1)",
    )
    parser.add_argument("--quiet", action="store_true", help="no access log on stderr")
    parser.add_argument(
        "--log-level",
        choices=LEVELS,
        help="what to log (default info, or $LLMROUTER_LOG_LEVEL): --serve on stderr, the app "
        "in <data dir>/logs/app.log",
    )
    parser.add_argument(
        "--log-format",
        choices=FORMATS,
        help="text (default, or $LLMROUTER_LOG_FORMAT) or json: one JSON object per line",
    )
    parser.add_argument(
        "--keep-alive",
        type=float,
        default=75.0,
        metavar="SECONDS",
        help="close a client's connection after this long idle between requests (default 75)",
    )
    return parser


def ask_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmrouter-tui ask",
        description="Send one prompt and stream the reply to stdout. "
        "Exit codes: 0 success, 1 unusable data directory, 2 bad input, 3 every candidate "
        "model failed (or a [budget] limit refuses the paid model), 130 Ctrl-C. "
        "Model 'auto' chooses the best model from your "
        "ratings, compares, speed, reliability and cost.",
    )
    _common_options(parser)
    parser.add_argument("-m", "--model", help="model id (default: default_model from config)")
    parser.add_argument("--template", metavar="ID", help="use a prompt template")
    parser.add_argument(
        "--var",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="template variable (repeatable)",
    )
    parser.add_argument("--system", metavar="TEXT", help="system prompt")
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--max-tokens", type=int)
    parser.add_argument("--ignore-cache", action="store_true", help="do not read the cache")
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    parser.add_argument(
        "--log-level",
        choices=LEVELS,
        default="error",
        help="also log on stderr from this level (default error: the messages above already "
        "say what happened)",
    )
    parser.add_argument("prompt", nargs="?", help="the prompt, or - to read it from stdin")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] == "ask":
        from .ask import run_ask

        return run_ask(ask_parser().parse_args(args_list[1:]))
    if args_list and args_list[0] == "config":
        from .config_cmd import run_config

        return run_config(args_list[1:])
    if args_list and args_list[0] == "templates":
        from .templates_cmd import run_templates

        return run_templates(args_list[1:])
    if args_list and args_list[0] == "export":
        from .export_cmd import run_export

        return run_export(args_list[1:])
    if args_list and args_list[0] == "leaderboard":
        from .leaderboard_cmd import run_leaderboard

        return run_leaderboard(args_list[1:])
    parser = main_parser()
    args = parser.parse_args(args_list)
    if args.workers != 1 and not args.serve:
        parser.error("--workers runs several server processes: use it with --serve")
    if args.serve:
        from .server.main import run_server

        return run_server(args)
    from .tui.main import run_app

    return run_app(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
