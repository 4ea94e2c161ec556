"""The model catalog: which models exist, who serves them, and which were retired."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from .errors import ConfigError, UnknownModelError

_MEMO_LIMIT = 1024  # requested ids whose candidates are remembered (PROVIDER:MODEL is open-ended)

MODEL_STATUSES = ("available", "preview", "deprecated", "retired")


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


def _load_builtin() -> dict[str, Any]:
    import tomllib

    text = resources.files("llmrouter_tui").joinpath("data", "catalog.toml").read_text("utf-8")
    return tomllib.loads(text).get("models", {})


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
        self._providers = set(providers) if providers is not None else {"groq", "gemini"}
        merged: dict[str, dict[str, Any]] = {k: dict(v) for k, v in _load_builtin().items()}
        for model_id, table in (overrides or {}).items():
            merged.setdefault(model_id, {}).update(table)
        self._memo: dict[tuple[str, dt.date], list[Resolution]] = {}
        self.models: dict[str, ModelInfo] = {
            mid: _entry(mid, table, override_source if mid in (overrides or {}) else "catalog.toml")
            for mid, table in merged.items()
        }

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
