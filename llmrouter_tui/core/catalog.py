"""The model catalog: which models exist, who serves them, and which were retired."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import resources
from typing import Annotated, Any, NotRequired, TypedDict

from .capabilities import Capabilities, CapabilityError
from .config import line_of
from .errors import ConfigError, UnknownModelError
from .model_ids import check_api_model
from .wire_meta import Field, ref

_MEMO_LIMIT = 1024  # requested ids whose candidates are remembered (PROVIDER:MODEL is open-ended)

MODEL_STATUSES = ("available", "preview", "deprecated", "retired")


def not_configured(provider: str) -> str:
    """Why a model of `provider` cannot be sent anything, and what to do about it."""
    return (
        f"provider {provider!r} is not configured: add a [providers.{provider}] table to "
        "llmrouter.toml (if one in the working directory was left out, the warning printed at "
        "start says why and how to allow it)"
    )


class ModelRow(TypedDict):
    """One model as listed (GET /models, the model picker): `auto`, a catalog model, or with
    the providers' own listings merged in (?live=true) one only a provider lists."""

    id: str
    provider: str
    label: str
    context_window: int | None
    status: Annotated[
        str,
        Field(
            "available, preview, deprecated, no key, no provider, cooling down, 'retired → "
            "REPLACEMENT', or for ?live=true 'not in catalog (live listing)'."
        ),
    ]
    catalog_status: Annotated[str | None, Field("The catalog's status; null: not in it.")]
    replacement: str | None
    shutdown: str | None
    kind: str | None
    # Absent only on a model a provider's live listing names and the catalog does not.
    capabilities: NotRequired[Annotated[dict[str, Any], Field(schema=ref("Capabilities"))]]
    live: NotRequired[
        Annotated[
            bool | None,
            Field(
                "Only with ?live=true: listed by the provider now (null when its listing failed)."
            ),
        ]
    ]


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One catalog entry."""

    id: str
    provider: str
    label: str
    context_window: int | None
    status: str
    shutdown: str | None = None
    replacement: str | None = None
    fallbacks: tuple[str, ...] = ()
    kind: str = "chat"
    # None: the model declares none, so its provider kind's defaults apply (Catalog.capabilities).
    capabilities: Capabilities | None = None

    def status_on(self, today: dt.date) -> str:
        """Status with shutdown dates applied: a deprecated model is retired from its shutdown."""
        if self.status == "deprecated" and self.shutdown:
            try:
                if today >= dt.date.fromisoformat(self.shutdown):
                    return "retired"
            except ValueError:
                pass
        return self.status


@dataclass(frozen=True, slots=True)
class Resolution:
    """A requested id turned into something a provider can serve."""

    requested: str
    model: str  # catalog id (or `provider:model` for ids outside the catalog)
    provider: str
    api_model: str  # the id sent to the provider's API
    notice: str | None = None

    @property
    def key(self) -> str:
        """Qualified id used for the cache key and the circuit breaker."""
        return f"{self.provider}:{self.api_model}"


def _capabilities_line(text: str, header: str) -> int | None:
    """Line of the `capabilities` key in the table whose header line contains `header`."""
    start = line_of(text, header)
    if start is None:
        return None
    for number, line in enumerate(text.splitlines()[start - 1 :], start=start):
        if line.lstrip().startswith("capabilities"):
            return number
    return start


def checked_capabilities(
    base: Capabilities, table: Any, where: str, source: str, line: int | None
) -> Capabilities:
    """`base` updated by a `capabilities` table; a ConfigError naming file and line if invalid."""
    try:
        if not isinstance(table, dict):
            raise CapabilityError(f"capabilities must be a table, got {table!r}")
        return base.updated(table)
    except CapabilityError as exc:
        raise ConfigError(f"{where}: {exc}", path=source, line=line) from None


def parse_catalog(text: str, source: str) -> tuple[dict[str, Any], dict[str, Capabilities]]:
    """A catalog file's model tables, and the capabilities of each `[provider_kinds.KIND]`.

    Capability tables are checked here (unknown names and bad values are ConfigErrors
    naming the file and the line).
    """
    import tomllib

    data = tomllib.loads(text)
    models: dict[str, Any] = data.get("models", {})
    for model_id, table in models.items():
        if "capabilities" in table:
            line = _capabilities_line(text, f'"{model_id}"')
            where = f'[models."{model_id}"]'
            checked_capabilities(Capabilities(), table["capabilities"], where, source, line)
    kinds: dict[str, Capabilities] = {}
    for kind, table in data.get("provider_kinds", {}).items():
        line = _capabilities_line(text, f"provider_kinds.{kind}")
        raw = table.get("capabilities", {}) if isinstance(table, dict) else table
        where = f"[provider_kinds.{kind}]"
        kinds[kind] = checked_capabilities(Capabilities(), raw, where, source, line)
    return models, kinds


@functools.cache
def _load_builtin() -> tuple[dict[str, Any], dict[str, Capabilities]]:
    # Read once per process; callers copy the tables they change.
    text = resources.files("llmrouter_tui").joinpath("data", "catalog.toml").read_text("utf-8")
    return parse_catalog(text, "catalog.toml")


def _entry(model_id: str, table: Mapping[str, Any], source: str) -> ModelInfo:
    status = table.get("status", "available")
    if status not in MODEL_STATUSES:
        raise ConfigError(
            f"model {model_id!r}: status must be one of {list(MODEL_STATUSES)}, got {status!r}",
            path=source,
        )
    if "provider" not in table:
        raise ConfigError(f"model {model_id!r} needs a provider", path=source)
    return ModelInfo(
        id=model_id,
        provider=table["provider"],
        label=table.get("label", model_id),
        context_window=table.get("context_window"),
        status=status,
        shutdown=str(table["shutdown"]) if table.get("shutdown") else None,
        replacement=table.get("replacement"),
        fallbacks=tuple(table.get("fallbacks", ())),
        kind=table.get("kind", "chat"),
    )


class Catalog:
    """Known models, resolution of requested ids, and fallback chains."""

    def __init__(
        self,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
        providers: Mapping[str, object] | None = None,
        *,
        today: dt.date | None = None,
        override_source: str = "llmrouter.toml",
    ) -> None:
        self._today = today
        # provider name -> kind (which decides the characters a PROVIDER:MODEL id may use)
        self._providers: dict[str, str] = (
            {name: str(getattr(conf, "kind", name)) for name, conf in providers.items()}
            if providers is not None
            else {"groq": "groq", "gemini": "gemini"}
        )
        builtin, self._kind_capabilities = _load_builtin()
        merged: dict[str, dict[str, Any]] = {k: dict(v) for k, v in builtin.items()}
        for model_id, table in (overrides or {}).items():
            merged.setdefault(model_id, {}).update(table)
        self._memo: dict[tuple[str, dt.date], list[Resolution]] = {}
        self.models: dict[str, ModelInfo] = {
            mid: _entry(mid, table, override_source if mid in (overrides or {}) else "catalog.toml")
            for mid, table in merged.items()
        }
        for mid, info in self.models.items():
            own = builtin.get(mid, {}).get("capabilities")
            users = (overrides or {}).get(mid, {}).get("capabilities")
            if own is None and users is None:
                continue
            # A catalog table is complete; the user's changes only the keys it names.
            base = Capabilities().updated(own) if own is not None else self._kind_default(info)
            if users is not None:
                where = f'[models."{mid}"]'
                base = checked_capabilities(base, users, where, override_source, None)
            self.models[mid] = replace(info, capabilities=base)
        for model_id in overrides or {}:
            self._check_configured_id(self.models[model_id], override_source)

    def _check_configured_id(self, info: ModelInfo, source: str) -> None:
        """A configured model id is sent to its provider as it is: same rules as user ids."""
        kind = self._providers.get(info.provider)
        if kind is None:
            return  # unknown providers are reported when the model is used
        try:
            check_api_model(kind, info.id, info.id)
        except UnknownModelError as exc:
            raise ConfigError(f'[models."{info.id}"]: {exc}', path=source) from None

    def _kind_default(self, info: ModelInfo) -> Capabilities:
        kind = self._providers.get(info.provider, info.provider)
        return self._kind_capabilities.get(kind, Capabilities())

    def _listed(self, model: str, provider: str | None) -> ModelInfo | None:
        """The catalog entry of `model` (a catalog id, or `provider:model` with `provider`)."""
        info = self.models.get(model)
        if info is None and provider is not None:
            # `groq:openai/gpt-oss-20b` is the catalog model under another name.
            listed = self.models.get(model.partition(":")[2])
            info = listed if listed is not None and listed.provider == provider else None
        return info

    def context_window(self, model: str, provider: str | None = None) -> int | None:
        """The tokens `model` takes (as the catalog or the user's config says); None: unknown."""
        info = self._listed(model, provider)
        window = info.context_window if info is not None else None
        # Only a positive integer is a window (a mistyped value is no reason to skip a model).
        if isinstance(window, int) and not isinstance(window, bool) and window > 0:
            return window
        return None

    def kind_of(self, provider: str) -> str | None:
        """The kind (groq, gemini, openai) of a configured provider; None if not configured."""
        return self._providers.get(provider)

    def capabilities(self, model: str, provider: str | None = None) -> Capabilities:
        """What `model` (a catalog id, or `provider:model` with `provider`) accepts: its
        catalog capabilities, else the defaults of its provider's kind."""
        info = self._listed(model, provider)
        if info is not None and info.capabilities is not None:
            return info.capabilities
        if info is None:
            name = provider or model.partition(":")[0]
            kind = self._providers.get(name, name)
            return self._kind_capabilities.get(kind, Capabilities())
        return self._kind_default(info)

    @property
    def today(self) -> dt.date:
        return self._today or dt.datetime.now(dt.UTC).date()

    def get(self, model_id: str) -> ModelInfo | None:
        return self.models.get(model_id)

    def status(self, model_id: str) -> str:
        info = self.models.get(model_id)
        return info.status_on(self.today) if info else "unknown"

    def usable_ids(self) -> list[str]:
        """Catalog ids that are not retired, in catalog order."""
        return [m.id for m in self.models.values() if m.status_on(self.today) != "retired"]

    def resolve(self, requested: str) -> Resolution:
        """Turn a requested id into a servable model; retired ids follow their replacement."""
        model_id = requested.strip()
        if not model_id:
            raise UnknownModelError("model id is empty; " + self._known_hint())
        seen: list[str] = []
        current = model_id
        while True:
            info = self.models.get(current)
            if info is None:
                break
            status = info.status_on(self.today)
            if status != "retired":
                notice = self._notice(model_id, seen, info, status)
                return Resolution(model_id, info.id, info.provider, info.id, notice)
            if not info.replacement or current in seen:
                raise UnknownModelError(
                    f"model {model_id!r} was retired{self._on(info)} and has no replacement; "
                    + self._known_hint()
                )
            seen.append(current)
            current = info.replacement
        if seen:  # a replacement that is not itself in the catalog
            raise UnknownModelError(
                f"replacement {current!r} for {model_id!r} is not in the catalog"
            )
        provider, sep, api_model = model_id.partition(":")
        if sep and api_model and provider in self._providers:
            check_api_model(self._providers[provider], model_id, api_model)
            return Resolution(model_id, model_id, provider, api_model, None)
        if sep and provider not in self._providers:
            raise UnknownModelError(
                f"unknown provider {provider!r} in {model_id!r}; configured providers: "
                f"{', '.join(sorted(self._providers))}"
            )
        raise UnknownModelError(
            f"unknown model {model_id!r}. "
            + self._known_hint()
            + " For a model not in the catalog use PROVIDER:MODEL, e.g. groq:some-new-model."
        )

    def candidates(self, requested: str) -> list[Resolution]:
        """The resolved model, then its fallbacks (resolved, deduplicated, no classifiers)."""
        # Every request asks this; the answer changes only with the date (retirements).
        memo_key = (requested, self.today)
        chain = self._memo.get(memo_key)
        if chain is None:
            chain = self._candidates(requested)
            if len(self._memo) >= _MEMO_LIMIT:
                self._memo.clear()
            self._memo[memo_key] = chain
        return list(chain)

    def _candidates(self, requested: str) -> list[Resolution]:
        first = self.resolve(requested)
        chain = [first]
        info = self.models.get(first.model)
        for fallback_id in info.fallbacks if info else ():
            try:
                resolved = self.resolve(fallback_id)
            except UnknownModelError:
                continue
            fb_info = self.models.get(resolved.model)
            if fb_info and fb_info.kind != "chat":
                continue
            if all(c.key != resolved.key for c in chain):
                chain.append(resolved)
        return chain

    def _notice(self, requested: str, seen: list[str], info: ModelInfo, status: str) -> str | None:
        if seen:
            retired = self.models[seen[0]]
            return (
                f"{requested} was retired{self._on(retired)}; served by {info.id} instead. "
                f"Update your scripts to use {info.id}."
            )
        if status == "deprecated":
            tail = f" Switch to {info.replacement}." if info.replacement else ""
            when = f" and shuts down on {info.shutdown}" if info.shutdown else ""
            return f"{info.id} is deprecated{when}.{tail}"
        return None

    @staticmethod
    def _on(info: ModelInfo) -> str:
        return f" on {info.shutdown}" if info.shutdown else ""

    def _known_hint(self) -> str:
        return "Known models: " + ", ".join(self.usable_ids()) + "."
