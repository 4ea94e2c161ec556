"""The working-directory rule: a file where you run may not send your keys to a host it chose.

`./llmrouter.toml` and `./.env` are read from the directory you start in, which may be a
repository anyone wrote (`git diff | llmrouter-tui ask --template commit_message`). Such a
file may still configure a provider, but a provider setting it gives (`kind`, `base_url`,
`api_key_env`) is used only if the key that provider would send came from that same file, or
if no key is sent at all. Otherwise the setting is dropped for the one a trusted source gave
(the environment, `--config`, `$LLMROUTER_CONFIG`, the data directory's llmrouter.toml, or the
built-in default) and a warning names the file, the line, and how to allow it.

A provider that sends no key at all (kind "openai") still receives every prompt routed to it,
so its base_url from such a file is used only when it points at this machine (loopback):
otherwise `git diff` text could go to a host the user never chose.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

from .environment import Environment, Found
from .provenance import DEFAULT, Origin, display_url

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Traced(Generic[T]):
    """A value with its origin, and the last value a trusted source gave (the fallback)."""

    value: T
    origin: Origin
    trusted_value: T
    trusted_origin: Origin

    @classmethod
    def of(cls, value: T, origin: Origin = DEFAULT) -> Traced[T]:
        """A value from a trusted source (a default, the environment, a trusted file)."""
        return cls(value, origin, value, origin)

    def over(self, value: T, origin: Origin) -> Traced[T]:
        """This value replaced by `value` from `origin`."""
        if origin.trusted:
            return Traced(value, origin, value, origin)
        return Traced(value, origin, self.trusted_value, self.trusted_origin)

    @property
    def overridden_by_workdir(self) -> bool:
        return not self.origin.trusted and self.value != self.trusted_value

    def reverted(self) -> Traced[T]:
        return Traced(
            self.trusted_value, self.trusted_origin, self.trusted_value, self.trusted_origin
        )


@dataclass(frozen=True, slots=True)
class ProviderDraft:
    """A provider as the sources describe it, before the rule is applied."""

    name: str
    #: None only before a table set it (a provider new in a config file is always given one).
    kind: Traced[str | None]
    base_url: Traced[str | None]
    #: Variables the key is read from; the first set one wins (Gemini has two names).
    key_names: Traced[tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Refusal:
    """A working-directory setting that was not used, and why."""

    setting: str
    origin: Origin
    message: str


@dataclass(frozen=True, slots=True)
class Settled:
    """A provider after the rule: the values in effect, their origins, the key found."""

    name: str
    kind: Traced[str | None]
    base_url: Traced[str | None]
    key_names: Traced[tuple[str, ...]]
    key: Found | None
    refusals: tuple[Refusal, ...]


def _allow_hint(origin: Origin) -> str:
    if origin.kind == "dotenv":
        return (
            f"If you trust it, set {origin.name} in your environment yourself, or put the "
            "key in that same .env file"
        )
    return (
        f"If you trust this file, name it explicitly: --config {origin.path} "
        "(or $LLMROUTER_CONFIG), or move the setting to the llmrouter.toml in your data "
        "directory"
    )


def _key_text(key: Found) -> str:
    source = "the environment" if key.origin.kind == "env" else key.origin.describe()
    return f"your {key.name} (from {source})"


def _sends_foreign_key(setting: Traced[Any], key: Found | None) -> bool:
    """A working-directory setting that would apply to a key from somewhere else."""
    return (
        setting.overridden_by_workdir
        and key is not None
        and not setting.origin.same_file(key.origin)
    )


def is_loopback_url(url: str | None) -> bool:
    """The URL's host is this machine: `localhost` or a loopback address."""
    try:
        host = urlsplit(url or "").hostname
    except ValueError:
        return False
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _sends_prompts_away(kind: Traced[str | None], base_url: Traced[str | None]) -> bool:
    """A keyless provider whose remote host a working-directory file chose."""
    return (
        kind.value == "openai"
        and base_url.overridden_by_workdir
        and not is_loopback_url(base_url.value)
    )


def settle(draft: ProviderDraft, env: Environment) -> Settled:
    """Apply the working-directory rule to one provider."""
    refusals: list[Refusal] = []
    key_names = draft.key_names
    key = env.lookup(*key_names.value)
    label = f"provider {draft.name!r}"
    if _sends_foreign_key(key_names, key):
        assert key is not None
        origin = key_names.origin
        refusals.append(
            Refusal(
                f"providers.{draft.name}.api_key_env",
                origin,
                f"{origin.describe()}: api_key_env = {key_names.value[0]!r} for {label} was "
                f"not used: it would send {_key_text(key)} to a provider that a file in the "
                f"working directory configures. {_allow_hint(origin)}.",
            )
        )
        key_names = key_names.reverted()
        key = env.lookup(*key_names.value)

    kind, base_url = draft.kind, draft.base_url
    if _sends_foreign_key(kind, key):
        assert key is not None
        refusals.append(
            Refusal(
                f"providers.{draft.name}.kind",
                kind.origin,
                f"{kind.origin.describe()}: kind = {kind.value!r} for {label} was not used: "
                f"it would change where {_key_text(key)} is sent, and the file did not "
                f"provide that key. {_allow_hint(kind.origin)}.",
            )
        )
        kind = kind.reverted()
    if _sends_foreign_key(base_url, key):
        assert key is not None
        origin = base_url.origin
        setting = origin.name if origin.kind == "dotenv" else "base_url"
        instead = base_url.trusted_value
        fallback = display_url(instead) if instead else "the provider's default endpoint"
        refusals.append(
            Refusal(
                f"providers.{draft.name}.base_url",
                origin,
                f"{origin.describe()}: {setting} = {display_url(base_url.value)!r} for {label} "
                f"was not used: it would send {_key_text(key)} to a host chosen by a file in "
                f"the working directory; using {fallback} instead. "
                f"{_allow_hint(origin)}.",
            )
        )
        base_url = base_url.reverted()
    if key is None and _sends_prompts_away(kind, base_url):
        origin, refused = base_url.origin, base_url.value
        base_url = base_url.reverted()
        if kind.overridden_by_workdir:  # e.g. groq made kind "openai": groq it stays
            kind = kind.reverted()
        if kind.value is None or (kind.value == "openai" and not base_url.value):
            outcome = "so the provider and its models are left out"
        else:
            outcome = f"using {display_url(base_url.value)} instead"
        refusals.append(
            Refusal(
                f"providers.{draft.name}.base_url",
                origin,
                f"{origin.describe()}: base_url = {display_url(refused)!r} for {label} "
                "was not used: every prompt routed to it would go to a host other than this "
                f"machine, chosen by a file in the working directory; {outcome}. "
                f"{_allow_hint(origin)}.",
            )
        )
    return Settled(draft.name, kind, base_url, key_names, key, tuple(refusals))
