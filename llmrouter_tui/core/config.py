"""Settings: environment (and `.env`), `llmrouter.toml`, and the data directory.

Every value keeps its origin (`Settings.sources`), and provider settings from files in the
working directory go through the rule in core/trust.py before they are used.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypedDict

from .environment import Environment
from .errors import ConfigError
from .provenance import DEFAULT, Notice, Origin, from_file, toml_key_line
from .trust import ProviderDraft, Refusal, Traced, settle

CONFIG_NAME = "llmrouter.toml"
BUILTIN_PROVIDER_KINDS = ("groq", "gemini", "openai")


class Secret:
    """An API key. Its repr and str never show the value, so it cannot leak into logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret(<hidden>)"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class RoutingSettings:
    max_retries: int = 2
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 8.0
    retry_after_max_s: float = 30.0
    connect_timeout_s: float = 5.0
    first_token_timeout_s: float = 20.0
    stream_idle_timeout_s: float = 30.0
    attempt_timeout_s: float = 60.0
    total_timeout_s: float = 120.0
    cooldown_failures: int = 3
    cooldown_s: float = 30.0
    fallback_on_content_filter: bool = False
    # http(s) image URLs in messages: refused by name unless on (the router would fetch them,
    # or have a provider fetch them, on the caller's behalf). data: URLs always work.
    fetch_image_urls: bool = False
    # A stream that breaks after text was delivered is continued (the same answer, never a
    # spliced one) while time is left, at most `max_continuations` times per request.
    continue_broken_streams: bool = True
    max_continuations: int = 2


@dataclass(frozen=True, slots=True)
class CacheSettings:
    enabled: bool = True
    ttl_s: float = 0.0


#: Default weights of `auto`'s score (README, "Choosing a model: auto").
DEFAULT_AUTO_WEIGHTS: Mapping[str, float] = {
    "quality": 0.5,
    "reliability": 0.25,
    "speed": 0.15,
    "cost": 0.1,
}


@dataclass(frozen=True, slots=True)
class AutoSettings:
    """[auto]: how the model id `auto` chooses (see core/auto.py)."""

    # Model ids auto may choose; empty: every available or preview chat model with a key.
    candidates: tuple[str, ...] = ()
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_AUTO_WEIGHTS))
    # Share of requests that try another candidate than the best (Thompson sampling).
    explore: float = 0.1
    # Votes (ratings + compares) a template needs before its own evidence counts first.
    min_template_votes: int = 10
    # Strength of the prior that smooths quality: this many neutral votes.
    prior_votes: float = 5.0
    # Recent = the last this many UTC days (reliability, speed, cost per reply).
    window_days: int = 7
    # Evidence is read from the summary tables at most this often (and after each rating).
    refresh_s: float = 5.0
    # Seed of exploration's random numbers (None: a fresh seed per process).
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class BudgetSettings:
    """[budget]: USD limits (UTC days and months); None = no limit."""

    daily_usd: float | None = None
    monthly_usd: float | None = None


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """[server]: extra Host names and web origins the HTTP server accepts (see README)."""

    allow_hosts: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """One configured provider. `api_key` is resolved from `api_key_env` at load time."""

    name: str
    kind: str
    base_url: str | None = None
    api_key_env: str | None = None
    api_key: Secret | None = None
    # Kind "openai" servers (Ollama, vLLM…) often need no key at all.
    key_required: bool = True

    @property
    def has_key(self) -> bool:
        return bool(self.api_key) or not self.key_required


@dataclass(frozen=True, slots=True)
class Settings:
    default_model: str = "openai/gpt-oss-20b"
    routing: RoutingSettings = field(default_factory=RoutingSettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    auto: AutoSettings = field(default_factory=AutoSettings)
    budget: BudgetSettings = field(default_factory=BudgetSettings)
    providers: Mapping[str, ProviderSettings] = field(default_factory=dict)
    # Raw [models."ID"] tables from llmrouter.toml, merged over the catalog.
    models: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    data_dir: Path = Path(".")
    config_path: Path | None = None
    env_file: Path | None = None
    demo: bool = False
    #: Where each setting came from, by dotted name ("routing.max_retries",
    #: "providers.groq.base_url", "providers.groq.api_key", "data_dir", "config"…).
    sources: Mapping[str, Origin] = field(default_factory=dict)
    #: Working-directory settings that were not used (see core/trust.py).
    refusals: tuple[Refusal, ...] = ()
    #: What a front-end shows once at start (refusals, unreadable `.env` lines).
    notices: tuple[Notice, ...] = ()


# ---- data directory -----------------------------------------------------------------------


def resolve_data_dir(cli_value: str | os.PathLike[str] | None = None) -> Path:
    """`--data-dir`, else `$LLMROUTER_DATA_DIR`, else the platform's user data directory."""
    return locate_data_dir(cli_value, Environment.read(use_dotenv=False))[0]


def locate_data_dir(
    cli_value: str | os.PathLike[str] | None, env: Environment
) -> tuple[Path, Origin]:
    """The data directory and where it was chosen (`$LLMROUTER_DATA_DIR` may be in `.env`)."""
    if cli_value:
        return Path(cli_value).expanduser(), Origin("cli", name="--data-dir")
    found = env.lookup("LLMROUTER_DATA_DIR")
    if found is not None:
        return Path(found.value).expanduser(), found.origin
    from platformdirs import user_data_dir  # textual already depends on platformdirs

    return Path(user_data_dir("llmrouter-tui", appauthor=False)), DEFAULT


# ---- environment ----------------------------------------------------------------------------


def _url_from_env(env: Environment, *names: str) -> Traced[str | None]:
    found = env.lookup(*names)
    start: Traced[str | None] = Traced.of(None)
    return start.over(found.value, found.origin) if found else start


def _builtin_drafts(env: Environment) -> dict[str, ProviderDraft]:
    """Groq and Gemini as the environment (and `.env`) describe them."""
    return {
        "groq": ProviderDraft(
            "groq",
            Traced.of("groq"),
            _url_from_env(env, "GROQ_BASE_URL"),
            Traced.of(("GROQ_API_KEY",)),
        ),
        "gemini": ProviderDraft(
            "gemini",
            Traced.of("gemini"),
            _url_from_env(env, "GEMINI_BASE_URL", "GOOGLE_GEMINI_BASE_URL"),
            Traced.of(("GEMINI_API_KEY", "GOOGLE_API_KEY")),
        ),
    }


def builtin_providers() -> dict[str, ProviderSettings]:
    """Groq and Gemini as configured by the process environment (no `.env`)."""
    env = Environment.read(use_dotenv=False)
    providers, _, _ = _settle_providers(_builtin_drafts(env), env)
    return providers


def _settle_providers(
    drafts: Mapping[str, ProviderDraft], env: Environment
) -> tuple[dict[str, ProviderSettings], tuple[Refusal, ...], dict[str, Origin]]:
    """Apply the working-directory rule and resolve each provider's key."""
    providers: dict[str, ProviderSettings] = {}
    refusals: list[Refusal] = []
    sources: dict[str, Origin] = {}
    for name, draft in drafts.items():
        settled = settle(draft, env)
        refusals.extend(settled.refusals)
        kind, base_url = settled.kind.value, settled.base_url.value
        if kind is None:  # cannot happen: every [providers.X] table is checked for a kind
            raise ConfigError(f"provider {name!r} has no kind; set kind in [providers.{name}]")
        if kind == "openai" and not base_url:
            # Only reachable when the base_url of an "openai" provider was refused.
            reason = " ".join(r.message for r in settled.refusals)
            raise ConfigError(f"provider {name!r} (kind 'openai') has no usable base_url: {reason}")
        key = settled.key
        providers[name] = ProviderSettings(
            name=name,
            kind=kind,
            base_url=base_url,
            api_key_env=settled.key_names.value[0] if settled.key_names.value else None,
            api_key=Secret(key.value) if key else None,
            key_required=kind != "openai",
        )
        prefix = f"providers.{name}."
        sources[prefix + "kind"] = settled.kind.origin
        sources[prefix + "base_url"] = settled.base_url.origin
        sources[prefix + "api_key_env"] = settled.key_names.origin
        sources[prefix + "api_key"] = key.origin if key else DEFAULT
    return providers, tuple(refusals), sources


# ---- llmrouter.toml -------------------------------------------------------------------------


def find_config(cli_value: str | os.PathLike[str] | None, data_dir: Path) -> Path | None:
    """`--config`, `$LLMROUTER_CONFIG`, `./llmrouter.toml`, `<data dir>/llmrouter.toml`."""
    env = Environment.read(use_dotenv=False)
    return locate_config(cli_value, data_dir, DEFAULT, env)[0]


def locate_config(
    cli_value: str | os.PathLike[str] | None,
    data_dir: Path,
    data_dir_origin: Origin,
    env: Environment,
) -> tuple[Path | None, Origin]:
    """The llmrouter.toml to read and why: its Origin says whether the file is trusted.

    `--config` and `$LLMROUTER_CONFIG` from the environment are the user's explicit choice;
    `<data dir>/llmrouter.toml` is the user's own (unless `.env` chose the data directory);
    `./llmrouter.toml`, or a path `.env` gives, merely sits in the working directory.
    """
    path: Path | None
    if cli_value:
        path, origin = Path(cli_value).expanduser(), Origin("cli", name="--config")
    else:
        found = env.lookup("LLMROUTER_CONFIG")
        path, origin = (Path(found.value).expanduser(), found.origin) if found else (None, DEFAULT)
    if path is not None:
        if not path.is_file():
            source = "--config" if cli_value else f"$LLMROUTER_CONFIG ({origin.describe()})"
            raise ConfigError(
                f"config file not found (given by {source}); fix the path or remove the setting",
                path=str(path),
            )
        return path, Origin(origin.kind, path=path, name=origin.name, trusted=origin.trusted)
    in_data_dir = data_dir / CONFIG_NAME
    in_cwd = Path.cwd() / CONFIG_NAME
    if in_cwd.is_file():
        own = in_data_dir.is_file() and _same_file(in_cwd, in_data_dir)
        trusted = own and data_dir_origin.trusted
        return in_cwd, Origin("file", path=in_cwd, name="working directory", trusted=trusted)
    if in_data_dir.is_file():
        return in_data_dir, Origin(
            "file", path=in_data_dir, name="data directory", trusted=data_dir_origin.trusted
        )
    return None, DEFAULT


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


class _Where(TypedDict):
    """The keyword arguments `ConfigError` takes to point at a place in a file."""

    path: str
    line: int | None


def line_of(text: str, needle: str) -> int | None:
    """1-based line of the first line containing `needle` (for error messages)."""
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    return None


def read_toml(path: Path) -> tuple[dict[str, Any], str]:
    """Parse a TOML file; errors name the file and the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read file: {exc}", path=str(path)) from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise ConfigError(
            f"invalid TOML: {exc}", path=str(path), line=int(match.group(1)) if match else None
        ) from None


def _coerce_section(
    cls: type, table: Any, section: str, path: Path, text: str
) -> RoutingSettings | CacheSettings:
    if not isinstance(table, dict):
        raise ConfigError(
            f"[{section}] must be a table", path=str(path), line=line_of(text, section)
        )
    known = {f.name: f for f in fields(cls)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            allowed = ", ".join(sorted(known))
            raise ConfigError(
                f"unknown setting {key!r} in [{section}]; allowed: {allowed}",
                path=str(path),
                line=line_of(text, key),
            )
        default = getattr(cls(), key)
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        else:
            ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
            value = float(value) if ok else value
        if not ok:
            expected = type(default).__name__ if not isinstance(default, float) else "number"
            raise ConfigError(
                f"[{section}] {key} must be a non-negative {expected}, got {value!r}",
                path=str(path),
                line=line_of(text, key),
            )
        values[key] = value
    settings: RoutingSettings | CacheSettings = cls(**values)
    return settings


_PROVIDER_KEYS = {"kind", "base_url", "api_key_env"}
_MODEL_KEYS = {
    "provider",
    "label",
    "context_window",
    "status",
    "shutdown",
    "replacement",
    "fallbacks",
    "kind",
    "capabilities",
    "price_in",  # USD per 1M input tokens (overrides data/prices.toml)
    "price_out",  # USD per 1M output tokens
}
_TOP_KEYS = {
    "default_model",
    "routing",
    "cache",
    "server",
    "auto",
    "budget",
    "providers",
    "models",
}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


def _auto_section(table: Any, path: Path, text: str) -> AutoSettings:
    """[auto]: candidates (model ids), weights (a table), explore 0..1, and the rest."""
    if not isinstance(table, dict):
        raise ConfigError("[auto] must be a table", path=str(path), line=line_of(text, "auto"))
    known = {f.name for f in fields(AutoSettings)}
    values: dict[str, Any] = {}
    for key, value in table.items():
        where: _Where = {"path": str(path), "line": line_of(text, key)}
        if key not in known:
            raise ConfigError(
                f"unknown setting {key!r} in [auto]; allowed: {', '.join(sorted(known))}", **where
            )
        if key == "candidates":
            if not (isinstance(value, list) and all(isinstance(v, str) and v for v in value)):
                raise ConfigError(
                    f"[auto] candidates must be a list of model ids, got {value!r}", **where
                )
            value = tuple(value)
        elif key == "weights":
            if not isinstance(value, dict):
                raise ConfigError(f"[auto] weights must be a table, got {value!r}", **where)
            for name, weight in value.items():
                if name not in DEFAULT_AUTO_WEIGHTS:
                    raise ConfigError(
                        f"unknown weight {name!r} in [auto] weights; allowed: "
                        f"{', '.join(DEFAULT_AUTO_WEIGHTS)}",
                        **where,
                    )
                if not _is_number(weight) or weight < 0:
                    raise ConfigError(
                        f"[auto] weights.{name} must be a non-negative number, got {weight!r}",
                        **where,
                    )
            value = {**DEFAULT_AUTO_WEIGHTS, **{k: float(v) for k, v in value.items()}}
            if not any(value.values()):
                raise ConfigError("[auto] weights must not all be 0", **where)
        elif key == "seed":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"[auto] seed must be an integer, got {value!r}", **where)
        elif key in ("min_template_votes", "window_days"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"[auto] {key} must be a positive integer, got {value!r}", **where
                )
        else:  # explore, prior_votes, refresh_s
            limit = 1.0 if key == "explore" else float("inf")
            if not _is_number(value) or not 0 <= value <= limit:
                allowed = "a number from 0 to 1" if key == "explore" else "a non-negative number"
                raise ConfigError(f"[auto] {key} must be {allowed}, got {value!r}", **where)
            value = float(value)
        values[key] = value
    return AutoSettings(**values)


def _budget_section(table: Any, path: Path, text: str) -> BudgetSettings:
    """[budget]: daily_usd / monthly_usd, positive numbers of US dollars."""
    if not isinstance(table, dict):
        raise ConfigError("[budget] must be a table", path=str(path), line=line_of(text, "budget"))
    known = {f.name for f in fields(BudgetSettings)}
    values: dict[str, float] = {}
    for key, value in table.items():
        where: _Where = {"path": str(path), "line": line_of(text, key)}
        if key not in known:
            raise ConfigError(
                f"unknown setting {key!r} in [budget]; allowed: {', '.join(sorted(known))}",
                **where,
            )
        if not _is_number(value) or value < 0 or value == float("inf"):
            raise ConfigError(
                f"[budget] {key} must be a non-negative number of US dollars, got {value!r}",
                **where,
            )
        values[key] = float(value)
    return BudgetSettings(**values)


def _server_section(table: Any, path: Path, text: str) -> ServerSettings:
    """[server]: each key a list of strings (their form is checked when the server starts)."""
    if not isinstance(table, dict):
        raise ConfigError("[server] must be a table", path=str(path), line=line_of(text, "server"))
    known = {f.name for f in fields(ServerSettings)}
    values: dict[str, tuple[str, ...]] = {}
    for key, value in table.items():
        where: _Where = {"path": str(path), "line": line_of(text, key)}
        if key not in known:
            raise ConfigError(
                f"unknown setting {key!r} in [server]; allowed: {', '.join(sorted(known))}",
                **where,
            )
        if not (isinstance(value, list) and all(isinstance(v, str) and v for v in value)):
            raise ConfigError(
                f"[server] {key} must be a list of non-empty strings, got {value!r}", **where
            )
        values[key] = tuple(value)
    return ServerSettings(**values)


def _provider_from_table(
    name: str, table: Any, base: ProviderDraft | None, path: Path, text: str, trusted: bool
) -> ProviderDraft:
    """The provider `[providers.NAME]` describes, over `base` (the same name from before)."""
    where: _Where = {"path": str(path), "line": line_of(text, f"providers.{name}")}
    if not isinstance(table, dict):
        raise ConfigError(f"[providers.{name}] must be a table", **where)
    unknown = set(table) - _PROVIDER_KEYS
    if unknown:
        raise ConfigError(
            f"unknown key(s) {sorted(unknown)} in [providers.{name}]; "
            f"allowed: {sorted(_PROVIDER_KEYS)}",
            **where,
        )
    kind = table.get("kind", base.kind.value if base else None)
    if kind not in BUILTIN_PROVIDER_KINDS:
        raise ConfigError(
            f"[providers.{name}] kind must be one of {list(BUILTIN_PROVIDER_KINDS)}, got {kind!r}",
            **where,
        )
    base_url = table.get("base_url", base.base_url.value if base else None)
    if base_url is not None and not (
        isinstance(base_url, str) and base_url.startswith(("http://", "https://"))
    ):
        raise ConfigError(
            f"[providers.{name}] base_url must be an http(s) URL, got {base_url!r}", **where
        )
    if kind == "openai" and not base_url:
        raise ConfigError(f"[providers.{name}] needs base_url for kind 'openai'", **where)
    key_env = table.get("api_key_env")
    if key_env is not None and not isinstance(key_env, str):
        raise ConfigError(f"[providers.{name}] api_key_env must be a string", **where)

    def origin(key: str) -> Origin:
        return from_file(path, toml_key_line(text, ("providers", name), key), trusted=trusted)

    def layer(traced: Traced[Any], key: str) -> Traced[Any]:
        return traced.over(table[key], origin(key)) if key in table else traced

    start = base or ProviderDraft(name, Traced.of(None), Traced.of(None), Traced.of(()))
    key_names = start.key_names
    if "api_key_env" in table:
        key_names = key_names.over((key_env,) if key_env else (), origin("api_key_env"))
    return ProviderDraft(
        name, layer(start.kind, "kind"), layer(start.base_url, "base_url"), key_names
    )


def _check_model_table(model_id: str, table: Any, path: Path, text: str) -> dict[str, Any]:
    where: _Where = {"path": str(path), "line": line_of(text, model_id)}
    if not isinstance(table, dict):
        raise ConfigError(f'[models."{model_id}"] must be a table', **where)
    unknown = set(table) - _MODEL_KEYS
    if unknown:
        raise ConfigError(
            f'unknown key(s) {sorted(unknown)} in [models."{model_id}"]; '
            f"allowed: {sorted(_MODEL_KEYS)}",
            **where,
        )
    fallbacks = table.get("fallbacks", [])
    if not (isinstance(fallbacks, list) and all(isinstance(f, str) for f in fallbacks)):
        raise ConfigError(f'[models."{model_id}"] fallbacks must be a list of model ids', **where)
    window = table.get("context_window")
    if window is not None and not (isinstance(window, int) and window > 0):
        raise ConfigError(
            f'[models."{model_id}"] context_window must be a positive integer', **where
        )
    for key in ("price_in", "price_out"):
        price = table.get(key)
        if price is not None and not (_is_number(price) and 0 <= price < float("inf")):
            raise ConfigError(
                f'[models."{model_id}"] {key} must be a non-negative number (USD per 1M '
                f"tokens), got {price!r}",
                path=str(path),
                line=line_of(text, key) or where["line"],
            )
    if "capabilities" in table:
        from .capabilities import CapabilityError, check_table

        try:
            check_table(table["capabilities"])
        except CapabilityError as exc:
            start = where["line"] or 1  # the table's header; the key's own line if found
            rows = text.splitlines()[start - 1 :]
            offset = next(
                (i for i, row in enumerate(rows) if row.lstrip().startswith("capabilities")), 0
            )
            raise ConfigError(
                f'[models."{model_id}"] {exc}', path=str(path), line=start + offset
            ) from None
    return dict(table)


def load_settings(
    *,
    config: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    load_dotenv_file: bool = True,
) -> Settings:
    """Build Settings from `.env`, the environment and the first llmrouter.toml found.

    `./.env` is read, never loaded into `os.environ`; working-directory provider settings
    that would send a key they did not provide are refused (`Settings.refusals`).
    """
    env = Environment.read(use_dotenv=load_dotenv_file)
    resolved_dir, dir_origin = locate_data_dir(data_dir, env)
    drafts = _builtin_drafts(env)
    path, config_origin = locate_config(config, resolved_dir, dir_origin, env)
    sources: dict[str, Origin] = {"data_dir": dir_origin, "config": config_origin}
    settings = Settings(data_dir=resolved_dir, env_file=env.env_file)
    if path is None:
        return _finish(settings, drafts, env, sources)
    raw, text = read_toml(path)
    trusted = config_origin.trusted
    sources.update(_file_sources(raw, text, path, trusted))
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(
            f"unknown setting {key!r}; allowed top-level keys: {sorted(_TOP_KEYS)}",
            path=str(path),
            line=line_of(text, key),
        )
    default_model = raw.get("default_model", settings.default_model)
    if not isinstance(default_model, str) or not default_model.strip():
        raise ConfigError(
            "default_model must be a non-empty string",
            path=str(path),
            line=line_of(text, "default_model"),
        )
    routing = _coerce_section(RoutingSettings, raw.get("routing", {}), "routing", path, text)
    cache = _coerce_section(CacheSettings, raw.get("cache", {}), "cache", path, text)
    server = _server_section(raw.get("server", {}), path, text)
    auto = _auto_section(raw.get("auto", {}), path, text)
    budget = _budget_section(raw.get("budget", {}), path, text)
    workdir_notices: list[Notice] = []
    if not trusted and server != ServerSettings():
        # Extra hosts or origins would let web pages use the server (and the user's keys).
        line = line_of(text, "server")
        workdir_notices.append(
            Notice(
                "warning",
                f"{path}, line {line}: [server] allow_hosts / cors_origins in a "
                "working-directory file are not used: they would let web pages of its choosing "
                f"use this server and your API keys. To use them, pass --config {path} "
                "(or give --allow-host / --cors-origin yourself).",
            )
        )
        server = ServerSettings()
    provider_tables = raw.get("providers", {})
    if not isinstance(provider_tables, dict):
        raise ConfigError("[providers] must be a table", path=str(path))
    for name, table in provider_tables.items():
        drafts[name] = _provider_from_table(name, table, drafts.get(name), path, text, trusted)
    model_tables = raw.get("models", {})
    if not isinstance(model_tables, dict):
        raise ConfigError("[models] must be a table", path=str(path))
    models = {mid: _check_model_table(mid, t, path, text) for mid, t in model_tables.items()}
    for model_id, table in models.items():
        provider = table.get("provider")
        if provider is not None and provider not in drafts:
            raise ConfigError(
                f'[models."{model_id}"] provider {provider!r} is not configured; '
                f"known providers: {sorted(drafts)}",
                path=str(path),
                line=line_of(text, model_id),
            )
    settings = replace(
        settings,
        default_model=default_model.strip(),
        routing=routing,  # type: ignore[arg-type]
        cache=cache,  # type: ignore[arg-type]
        server=server,
        auto=auto,
        budget=budget,
        models=models,
        config_path=path,
    )
    return _finish(settings, drafts, env, sources, workdir_notices)


def _file_sources(raw: dict[str, Any], text: str, path: Path, trusted: bool) -> dict[str, Origin]:
    """The origin (file and line) of every plain setting a config file gives."""
    sources: dict[str, Origin] = {}

    def at(*keys: str) -> Origin:
        return from_file(path, toml_key_line(text, keys[:-1], keys[-1]), trusted=trusted)

    for key, value in raw.items():
        if key == "providers":
            continue  # providers are traced field by field (core/trust.py)
        if key == "models" and isinstance(value, dict):
            for model_id in value:
                sources[f"models.{model_id}"] = at("models", model_id)
        elif isinstance(value, dict):
            for sub in value:
                sources[f"{key}.{sub}"] = at(key, sub)
        else:
            sources[key] = at(key)
    return sources


def _finish(
    settings: Settings,
    drafts: Mapping[str, ProviderDraft],
    env: Environment,
    sources: dict[str, Origin],
    workdir_notices: Sequence[Notice] = (),
) -> Settings:
    """Settle the providers (the working-directory rule) and attach origins and notices."""
    providers, refusals, provider_sources = _settle_providers(drafts, env)
    if env.env_file is not None:
        sources["env_file"] = Origin("file", path=env.env_file, trusted=False)
    notices = [Notice("warning", r.message) for r in refusals] + list(workdir_notices)
    notices += [Notice("warning", problem) for problem in env.problems]
    return replace(
        settings,
        providers=providers,
        sources={**sources, **provider_sources},
        refusals=refusals,
        notices=tuple(notices),
    )
