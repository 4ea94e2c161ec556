"""Settings: environment (and `.env`), `llmrouter.toml`, and the data directory."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError

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


@dataclass(frozen=True, slots=True)
class CacheSettings:
    enabled: bool = True
    ttl_s: float = 0.0


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
    providers: Mapping[str, ProviderSettings] = field(default_factory=dict)
    # Raw [models."ID"] tables from llmrouter.toml, merged over the catalog.
    models: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    data_dir: Path = Path(".")
    config_path: Path | None = None
    env_file: Path | None = None
    demo: bool = False


# ---- data directory -----------------------------------------------------------------------


def resolve_data_dir(cli_value: str | os.PathLike[str] | None = None) -> Path:
    """`--data-dir`, else `$LLMROUTER_DATA_DIR`, else the platform's user data directory."""
    if cli_value:
        return Path(cli_value).expanduser()
    env_value = os.environ.get("LLMROUTER_DATA_DIR")
    if env_value:
        return Path(env_value).expanduser()
    from platformdirs import user_data_dir  # textual already depends on platformdirs

    return Path(user_data_dir("llmrouter-tui", appauthor=False))


# ---- environment ----------------------------------------------------------------------------


def load_env_file(cwd: Path | None = None) -> Path | None:
    """Load `./.env` into os.environ without overriding variables already set."""
    path = (cwd or Path.cwd()) / ".env"
    if not path.is_file():
        return None
    from dotenv import load_dotenv

    load_dotenv(path, override=False)
    return path


def _env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value.strip()
    return None


def builtin_providers() -> dict[str, ProviderSettings]:
    """Groq and Gemini as configured by the environment."""
    groq_key = _env("GROQ_API_KEY")
    gemini_key = _env("GEMINI_API_KEY", "GOOGLE_API_KEY")
    return {
        "groq": ProviderSettings(
            name="groq",
            kind="groq",
            base_url=_env("GROQ_BASE_URL"),
            api_key_env="GROQ_API_KEY",
            api_key=Secret(groq_key) if groq_key else None,
        ),
        "gemini": ProviderSettings(
            name="gemini",
            kind="gemini",
            base_url=_env("GEMINI_BASE_URL", "GOOGLE_GEMINI_BASE_URL"),
            api_key_env="GEMINI_API_KEY",
            api_key=Secret(gemini_key) if gemini_key else None,
        ),
    }


# ---- llmrouter.toml -------------------------------------------------------------------------


def find_config(cli_value: str | os.PathLike[str] | None, data_dir: Path) -> Path | None:
    """`--config`, `$LLMROUTER_CONFIG`, `./llmrouter.toml`, `<data dir>/llmrouter.toml`."""
    explicit = cli_value or os.environ.get("LLMROUTER_CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            source = "--config" if cli_value else "$LLMROUTER_CONFIG"
            raise ConfigError(
                f"config file not found (given by {source}); fix the path or remove the setting",
                path=str(path),
            )
        return path
    for candidate in (Path.cwd() / CONFIG_NAME, data_dir / CONFIG_NAME):
        if candidate.is_file():
            return candidate
    return None


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
    return cls(**values)


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
}
_TOP_KEYS = {"default_model", "routing", "cache", "providers", "models"}


def _provider_from_table(
    name: str, table: Any, base: ProviderSettings | None, path: Path, text: str
) -> ProviderSettings:
    where = {"path": str(path), "line": line_of(text, f"providers.{name}")}
    if not isinstance(table, dict):
        raise ConfigError(f"[providers.{name}] must be a table", **where)
    unknown = set(table) - _PROVIDER_KEYS
    if unknown:
        raise ConfigError(
            f"unknown key(s) {sorted(unknown)} in [providers.{name}]; "
            f"allowed: {sorted(_PROVIDER_KEYS)}",
            **where,
        )
    kind = table.get("kind", base.kind if base else None)
    if kind not in BUILTIN_PROVIDER_KINDS:
        raise ConfigError(
            f"[providers.{name}] kind must be one of {list(BUILTIN_PROVIDER_KINDS)}, got {kind!r}",
            **where,
        )
    base_url = table.get("base_url", base.base_url if base else None)
    if base_url is not None and not (
        isinstance(base_url, str) and base_url.startswith(("http://", "https://"))
    ):
        raise ConfigError(
            f"[providers.{name}] base_url must be an http(s) URL, got {base_url!r}", **where
        )
    if kind == "openai" and not base_url:
        raise ConfigError(f"[providers.{name}] needs base_url for kind 'openai'", **where)
    key_env = table.get("api_key_env", base.api_key_env if base else None)
    if key_env is not None and not isinstance(key_env, str):
        raise ConfigError(f"[providers.{name}] api_key_env must be a string", **where)
    key = _env(key_env) if key_env else None
    return ProviderSettings(
        name=name,
        kind=kind,
        base_url=base_url,
        api_key_env=key_env,
        api_key=Secret(key) if key else None,
        key_required=kind != "openai",
    )


def _check_model_table(model_id: str, table: Any, path: Path, text: str) -> dict[str, Any]:
    where = {"path": str(path), "line": line_of(text, model_id)}
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
    return dict(table)


def load_settings(
    *,
    config: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    load_dotenv_file: bool = True,
) -> Settings:
    """Build Settings from `.env`, the environment and the first llmrouter.toml found."""
    env_file = load_env_file() if load_dotenv_file else None
    resolved_dir = resolve_data_dir(data_dir)
    providers = builtin_providers()
    path = find_config(config, resolved_dir)
    settings = Settings(providers=providers, data_dir=resolved_dir, env_file=env_file)
    if path is None:
        return settings
    raw, text = read_toml(path)
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
    provider_tables = raw.get("providers", {})
    if not isinstance(provider_tables, dict):
        raise ConfigError("[providers] must be a table", path=str(path))
    for name, table in provider_tables.items():
        providers[name] = _provider_from_table(name, table, providers.get(name), path, text)
    model_tables = raw.get("models", {})
    if not isinstance(model_tables, dict):
        raise ConfigError("[models] must be a table", path=str(path))
    models = {mid: _check_model_table(mid, t, path, text) for mid, t in model_tables.items()}
    for model_id, table in models.items():
        provider = table.get("provider")
        if provider is not None and provider not in providers:
            raise ConfigError(
                f'[models."{model_id}"] provider {provider!r} is not configured; '
                f"known providers: {sorted(providers)}",
                path=str(path),
                line=line_of(text, model_id),
            )
    return replace(
        settings,
        default_model=default_model.strip(),
        routing=routing,  # type: ignore[arg-type]
        cache=cache,  # type: ignore[arg-type]
        providers=providers,
        models=models,
        config_path=path,
    )
