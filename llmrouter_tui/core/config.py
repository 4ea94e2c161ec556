"""Settings: environment (and `.env`), `llmrouter.toml`, and the data directory.

Every value keeps its origin (`Settings.sources`), and provider settings from files in the
working directory go through the rule in core/trust.py before they are used. Each key of
llmrouter.toml is declared once, here (`setting(...)` fields, PROVIDER_KEYS, MODEL_KEYS,
SECTIONS); core/config_schema.py checks files against those declarations.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .config_schema import Key, Section, TomlFile, check_table, keys_of, setting, unknown_key
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
    """[routing]: retries, timeouts, circuit breakers, fallback (see core/policy.py)."""

    max_retries: int = setting(
        2, "extra attempts on the same model for retryable errors", "int", minimum=0
    )
    backoff_initial_s: float = setting(
        0.5, "wait before the first retry; doubles each retry", "number", minimum=0
    )
    backoff_max_s: float = setting(8.0, "longest wait between retries", "number", minimum=0)
    retry_after_max_s: float = setting(
        30.0,
        "honour Retry-After / Gemini RetryInfo up to this; longer means fall back now",
        "number",
        minimum=0,
    )
    connect_timeout_s: float = setting(5.0, "to connect to a provider", "number", minimum=0)
    first_token_timeout_s: float = setting(
        20.0, "from sending to the reply's first text", "number", minimum=0
    )
    stream_idle_timeout_s: float = setting(
        30.0, "longest silence inside a streamed reply", "number", minimum=0
    )
    attempt_timeout_s: float = setting(60.0, "one attempt at one model", "number", minimum=0)
    total_timeout_s: float = setting(
        120.0, "no request outlives this, all attempts together", "number", minimum=0
    )
    cooldown_failures: int = setting(
        3, "consecutive failed attempts that open a model's circuit", "int", minimum=0
    )
    cooldown_s: float = setting(
        30.0, "how long an open circuit skips the model", "number", minimum=0
    )
    fallback_on_content_filter: bool = setting(
        False, "a reply stopped by a content filter falls back to the next model", "bool"
    )
    # Off: the router would fetch them, or have a provider fetch them, on the caller's behalf.
    fetch_image_urls: bool = setting(
        False,
        "http(s) image URLs in messages: fetched only when true (data: URLs always work)",
        "bool",
    )
    # Continued means the same answer, never a spliced one, while time is left.
    continue_broken_streams: bool = setting(
        True, "finish an answer whose stream broke (see Reliability)", "bool"
    )
    max_continuations: int = setting(2, "continuation attempts per request", "int", minimum=0)


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """[cache]: replies kept in the data directory's database."""

    enabled: bool = setting(True, "answer repeated requests from the cache", "bool")
    ttl_s: float = setting(
        0.0, "seconds an entry lives; 0 = entries never expire", "number", minimum=0
    )


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

    candidates: tuple[str, ...] = setting(
        (), "model ids auto may pick; [] = every available/preview chat model with a key", "texts"
    )
    weights: Mapping[str, float] = setting(
        DEFAULT_AUTO_WEIGHTS, "how much each part of the score counts", "weights"
    )
    # Thompson sampling.
    explore: float = setting(
        0.1, "share of requests that try another candidate", "number", minimum=0, maximum=1
    )
    min_template_votes: int = setting(
        10, "votes a template needs before its own evidence counts first", "int", minimum=1
    )
    prior_votes: float = setting(
        5.0, "neutral votes that smooth quality (one rating does not decide)", "number", minimum=0
    )
    window_days: int = setting(
        7, '"recent" for reliability, speed and cost per reply (UTC days)', "int", minimum=1
    )
    refresh_s: float = setting(
        5.0, "evidence is re-read at most this often (and after each vote)", "number", minimum=0
    )
    seed: int | None = setting(
        None,
        "exploration's and blind compares' random numbers (default: fresh per process)",
        "int",
        example="1",
    )


@dataclass(frozen=True, slots=True)
class BudgetSettings:
    """[budget]: USD limits (UTC days and months); None = no limit."""

    daily_usd: float | None = setting(
        None,
        "US dollars a UTC day may cost (default: no limit)",
        "number",
        minimum=0,
        example="1.0",
    )
    monthly_usd: float | None = setting(
        None,
        "US dollars a UTC month may cost (default: no limit)",
        "number",
        minimum=0,
        example="20.0",
    )


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """[server]: extra Host names and web origins the HTTP server accepts (see README)."""

    # Their form is checked when the server starts (server/guard.py).
    allow_hosts: tuple[str, ...] = setting(
        (), 'extra Host names, e.g. ["llm.example.com", ".corp.example"]; "*" = any', "texts"
    )
    cors_origins: tuple[str, ...] = setting(
        (), 'web pages allowed in, e.g. ["http://localhost:5173"]', "texts"
    )


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
    default_model: str = setting(
        "openai/gpt-oss-20b", "the model used when a request names none", "text"
    )
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


# ---- the schema of llmrouter.toml (core/config_schema.py) ------------------------------------


def _model_statuses() -> Sequence[str]:
    from .catalog import MODEL_STATUSES  # the catalog imports this module

    return MODEL_STATUSES


def _capability_problem(table: Any) -> str | None:
    from .capabilities import CapabilityError
    from .capabilities import check_table as check_capabilities

    try:
        check_capabilities(table)
    except CapabilityError as exc:
        return f"is not valid: {exc}"
    return None


#: `[providers.NAME]`: the file's keys (ProviderSettings holds what they resolve to).
PROVIDER_KEYS: Mapping[str, Key] = {
    "kind": Key(
        "choice",
        "API family; any OpenAI-compatible server is openai. Needed by a new provider",
        choices=BUILTIN_PROVIDER_KINDS,
        example='"openai"',
    ),
    "base_url": Key(
        "url", "where its API is; needed by kind openai", example='"http://127.0.0.1:11434/v1"'
    ),
    "api_key_env": Key(
        "text",
        'variable holding its key ("" = none); optional for kind openai',
        allow_empty=True,
        example='"OLLAMA_API_KEY"',
    ),
}

#: `[models."ID"]`: merged over the catalog's entry for ID (core/catalog.py).
MODEL_KEYS: Mapping[str, Key] = {
    "provider": Key("text", "a built-in provider or a [providers.NAME] one", example='"ollama"'),
    "label": Key("text", "the name the app shows"),
    "context_window": Key("int", "tokens the model accepts", minimum=1, example="131072"),
    "status": Key("choice", "retired ids are served by their replacement", choices=_model_statuses),
    "shutdown": Key("date", "from this day a deprecated model counts as retired"),
    "replacement": Key("text", "the model that serves this id once it is retired"),
    "fallbacks": Key("texts", "models tried next, in order", example='["openai/gpt-oss-20b"]'),
    "kind": Key("text", 'chat (default); "classifier" models are never fallbacks'),
    "capabilities": Key("table", "what it supports (see Models)", check=_capability_problem),
    "price_in": Key(
        "number",
        "USD per 1M input tokens (overrides data/prices.toml)",
        minimum=0,
        example="0.0",
        example_commented=True,
    ),
    "price_out": Key(
        "number", "USD per 1M output tokens", minimum=0, example="0.0", example_commented=True
    ),
}

#: Every table of llmrouter.toml, in README's order ("" is the top level).
SECTIONS: tuple[Section, ...] = (
    Section("", "", keys_of(Settings)),
    Section("routing", "retries, timeouts, circuit breakers", keys_of(RoutingSettings)),
    Section("cache", "replies kept in the data directory", keys_of(CacheSettings)),
    Section("server", '--serve and uvicorn; see "Security defaults"', keys_of(ServerSettings)),
    Section("auto", 'the model id "auto"; see "Choosing a model"', keys_of(AutoSettings)),
    Section("budget", "no limits unless set (USD, UTC days and months)", keys_of(BudgetSettings)),
    Section(
        "providers",
        "groq and gemini exist built in; any [providers.X] may add or override",
        PROVIDER_KEYS,
        named=True,
        placeholder="NAME",
        example_name="ollama",
    ),
    Section(
        "models",
        "add a model or change a catalog entry",
        MODEL_KEYS,
        named=True,
        placeholder="ID",
        example_name="llama3.2",
    ),
)
_SECTION = {section.name: section for section in SECTIONS}
_TOP_KEYS = (*SECTIONS[0].keys, *(section.name for section in SECTIONS[1:]))


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
        if kind is None or (kind == "openai" and not base_url):
            # Only a working-directory provider whose base_url was refused: the refusal says
            # so, and it is left out (with its models) rather than the whole start-up failing.
            continue
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


def line_of(text: str, needle: str) -> int | None:
    """1-based line of the first line containing `needle` (the catalog's error messages)."""
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


def _top_level(raw: Mapping[str, Any], file: TomlFile) -> dict[str, Any]:
    """The top-level keys that are not tables; any unknown key is refused first."""
    for key in raw:
        if key not in _TOP_KEYS:
            raise file.error(unknown_key(key, "", _TOP_KEYS), key)
    top = SECTIONS[0]
    return check_table(top, {k: v for k, v in raw.items() if k in top.keys}, file, ())


def _section(name: str, raw: Mapping[str, Any], file: TomlFile) -> dict[str, Any]:
    return check_table(_SECTION[name], raw.get(name, {}), file, (name,))


def _provider_from_table(
    name: str, table: Any, base: ProviderDraft | None, file: TomlFile, trusted: bool
) -> ProviderDraft:
    """The provider `[providers.NAME]` describes, over `base` (the same name from before)."""
    where = ("providers", name)
    section = _SECTION["providers"]
    values = check_table(section, table, file, where, name)
    title = section.title(name)
    kind = values.get("kind", base.kind.value if base else None)
    if kind is None:
        choices = ", ".join(repr(k) for k in BUILTIN_PROVIDER_KINDS)
        raise file.error(
            f"{title} needs a kind (it is not a built-in provider): add kind = one of {choices}",
            *where,
        )
    base_url = values.get("base_url", base.base_url.value if base else None)
    if kind == "openai" and not base_url:
        raise file.error(f"{title} needs base_url for kind 'openai'", *where)

    def origin(key: str) -> Origin:
        return from_file(file.path, toml_key_line(file.text, where, key), trusted=trusted)

    def layer(traced: Traced[Any], key: str) -> Traced[Any]:
        return traced.over(values[key], origin(key)) if key in values else traced

    start = base or ProviderDraft(name, Traced.of(None), Traced.of(None), Traced.of(()))
    key_names = start.key_names
    if "api_key_env" in values:
        key_env = values["api_key_env"]
        key_names = key_names.over((key_env,) if key_env else (), origin("api_key_env"))
    return ProviderDraft(
        name, layer(start.kind, "kind"), layer(start.base_url, "base_url"), key_names
    )


def _named_tables(name: str, raw: Mapping[str, Any], file: TomlFile) -> dict[str, Any]:
    """`[providers]` / `[models]`: a table of tables."""
    tables = raw.get(name, {})
    if not isinstance(tables, dict):
        raise file.error(f"[{name}] must be a table of tables", name)
    return tables


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
    file = TomlFile(path, text)
    trusted = config_origin.trusted
    sources.update(_file_sources(raw, text, path, trusted))
    top = _top_level(raw, file)
    routing = RoutingSettings(**_section("routing", raw, file))
    cache = CacheSettings(**_section("cache", raw, file))
    server = ServerSettings(**_section("server", raw, file))
    auto = AutoSettings(**_section("auto", raw, file))
    budget = BudgetSettings(**_section("budget", raw, file))
    workdir_notices: list[Notice] = []
    if not trusted and server != ServerSettings():
        # Extra hosts or origins would let web pages use the server (and the user's keys).
        line = file.line("server")
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
    for name, table in _named_tables("providers", raw, file).items():
        drafts[name] = _provider_from_table(name, table, drafts.get(name), file, trusted)
    models = {
        model_id: check_table(_SECTION["models"], table, file, ("models", model_id), model_id)
        for model_id, table in _named_tables("models", raw, file).items()
    }
    for model_id, table in models.items():
        provider = table.get("provider")
        if provider is not None and provider not in drafts:
            raise file.error(
                f'[models."{model_id}"] provider {provider!r} is not configured; '
                f"known providers: {', '.join(sorted(drafts))}. Add a [providers.{provider}] "
                "table or use one of these",
                "models",
                model_id,
                "provider",
            )
    settings = replace(
        settings,
        default_model=top.get("default_model", settings.default_model),
        routing=routing,
        cache=cache,
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
    # A provider whose only base_url was refused is not there; neither are the models that
    # name it (an override of a catalog model keeps the catalog's entry).
    models = {
        model_id: table
        for model_id, table in settings.models.items()
        if table.get("provider") is None or table["provider"] in providers
    }
    return replace(
        settings,
        models=models,
        providers=providers,
        sources={**sources, **provider_sources},
        refusals=refusals,
        notices=tuple(notices),
    )
