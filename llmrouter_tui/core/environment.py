"""Environment variables and `./.env`, read with their origin and never written back.

`./.env` used to be loaded into `os.environ`. That let a file in whatever directory you ran
from set variables for the whole process: `HTTPS_PROXY` and `SSL_CERT_FILE` for every HTTP
client, `GROQ_BASE_URL` for the Groq SDK's own lookup, and so on. Now its values are only
looked up here, for the variables the settings loader asks for, and each value says where it
came from (`Origin`), so core/trust.py can refuse what a working-directory file may not do.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError
from .provenance import Origin, from_env

ENV_FILE_NAME = ".env"


@dataclass(frozen=True, slots=True)
class Found:
    """A variable's value and where it was read."""

    name: str
    value: str
    origin: Origin


@dataclass(frozen=True)
class Environment:
    """The process environment plus the values of `./.env` (the environment always wins)."""

    process: Mapping[str, str]
    dotenv: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    env_file: Path | None = None
    #: Lines of `.env` that could not be parsed (reported, then ignored).
    problems: tuple[str, ...] = ()

    @classmethod
    def read(cls, cwd: Path | None = None, *, use_dotenv: bool = True) -> Environment:
        """`os.environ` (copied) and, unless `use_dotenv` is False, `<cwd>/.env`."""
        process = dict(os.environ)
        if not use_dotenv:
            return cls(process)
        path = (cwd or Path.cwd()) / ENV_FILE_NAME
        if not path.is_file():
            return cls(process)
        values, problems = read_env_file(path)
        return cls(process, values, path.absolute(), problems)

    def _raw(self, name: str) -> Found | None:
        if name in self.process:
            return Found(name, self.process[name].strip(), from_env(name))
        if name in self.dotenv:
            value, line = self.dotenv[name]
            origin = Origin("dotenv", path=self.env_file, line=line, name=name, trusted=False)
            return Found(name, value.strip(), origin)
        return None

    def lookup(self, *names: str) -> Found | None:
        """The first non-empty value among `names`: every name in the environment first,
        then in `.env` (a variable set in the environment, even empty, hides `.env`'s)."""
        for name in names:
            if name in self.process and self.process[name].strip():
                return self._raw(name)
        for name in names:
            if name not in self.process:
                found = self._raw(name)
                if found is not None and found.value:
                    return found
        return None

    def value(self, *names: str) -> str | None:
        found = self.lookup(*names)
        return found.value if found else None


def read_env_file(path: Path) -> tuple[dict[str, tuple[str, int]], tuple[str, ...]]:
    """`NAME=value` pairs of a `.env` file with their line numbers, taken literally.

    `${VAR}` is not expanded: a `.env` in the working directory must not be able to copy one
    of your environment variables (an API key) into a variable it then sends elsewhere.
    Later lines win over earlier ones, as with python-dotenv.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(
            f"cannot read .env: {reason}; fix or remove the file", path=str(path)
        ) from None
    from dotenv.parser import parse_stream  # python-dotenv's own parser, for its exact syntax

    values: dict[str, tuple[str, int]] = {}
    problems: list[str] = []
    for binding in parse_stream(io.StringIO(text)):
        line = binding.original.line
        if binding.error:
            problems.append(
                f"{path}, line {line}: not a NAME=value line, ignored; fix or remove it"
            )
        elif binding.key is not None and binding.value is not None:
            values[binding.key] = (binding.value, line)
    return values, tuple(problems)
