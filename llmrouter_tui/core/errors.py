"""Exceptions the core raises to front-ends. Every message names what is wrong and what to do."""

from __future__ import annotations


class RouterError(Exception):
    """Base class of every error the core reports to a caller."""

    #: Suggested HTTP status for the server; the CLI maps these to exit codes.
    http_status: int = 500


class InputError(RouterError):
    """The caller's input is wrong (unknown model, missing variable, bad rating…)."""

    http_status = 400


class UnknownModelError(InputError):
    """A model id that is neither in the catalog nor `PROVIDER:MODEL` for a configured provider."""


class UnknownTemplateError(InputError):
    """A template id that no templates file defines."""


class MissingVariablesError(InputError):
    """A template was used without values for some of its variables."""

    def __init__(self, template_id: str, missing: list[str]) -> None:
        self.template_id = template_id
        self.missing = missing
        names = ", ".join(missing)
        super().__init__(
            f"template {template_id!r} needs values for: {names}. "
            f"Pass them as template_vars (or --var NAME=VALUE)."
        )


class UnknownPromptError(InputError):
    """A rating for a prompt_id that was never recorded."""

    http_status = 404


class ConfigError(RouterError):
    """A config, templates or catalog file cannot be read or is invalid."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        self.path = path
        self.line = line
        where = ""
        if path:
            where = f"{path}"
            if line:
                where += f", line {line}"
            where += ": "
        super().__init__(where + message)


class StorageError(RouterError):
    """The database or the log directory cannot be used."""


class DeadlineExceeded(RouterError):
    """The whole request outlived `total_timeout_s`."""

    http_status = 504


class AllCandidatesFailed(RouterError):
    """Every candidate model failed; `result` lists each attempt."""

    http_status = 502

    def __init__(self, message: str, result: object) -> None:
        self.result = result
        super().__init__(message)


class BudgetExceeded(RouterError):
    """A `[budget]` limit is reached: paid models are refused until it resets (HTTP 429).

    `budget` is "daily_usd" or "monthly_usd"; `resets_at` is an ISO-8601 UTC time and
    `retry_after_s` the seconds until then (for a Retry-After header).
    """

    http_status = 429

    def __init__(
        self,
        message: str,
        *,
        budget: str,
        limit_usd: float,
        spent_usd: float,
        resets_at: str,
        retry_after_s: float,
    ) -> None:
        self.budget = budget
        self.limit_usd = limit_usd
        self.spent_usd = spent_usd
        self.resets_at = resets_at
        self.retry_after_s = retry_after_s
        super().__init__(message)
