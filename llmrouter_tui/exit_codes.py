"""The process exit codes of every command (the TUI, `--serve`, `ask`, `config`, `export`,
`leaderboard`, `templates`): declared once here, documented in README, Exit codes."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What a script can rely on; each command uses the subset that applies to it."""

    #: Done: the reply printed, the file written, the server stopped cleanly.
    OK = 0
    #: The environment, not the input: an unusable data directory or database, a busy port,
    #: a server or worker that could not start or did not stop cleanly.
    FAILURE = 1
    #: The input: a bad argument or config, an unknown model, template or conversation, a
    #: refused bind, a file that exists without --force.
    BAD_INPUT = 2
    #: `ask` only: every candidate model failed, or a [budget] limit refused the paid model.
    ALL_FAILED = 3
    #: `ask` interrupted by Ctrl-C: 128 + SIGINT, as shells report it.
    INTERRUPTED = 130
