"""Everything a front-end needs, wired together once: settings, store, templates, router."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from .catalog import Catalog, ModelRow
from .config import ProviderSettings, Secret, Settings, load_settings
from .provenance import Notice
from .redact import DEMO_KEY
from .router import Router
from .selection import auto_row
from .store import Store
from .templates import TemplateSet, TemplateWatcher, user_template_paths
from .types import Result


def demo_settings(settings: Settings, upstream_base_url: str) -> Settings:
    """Point every provider at the built-in fake upstream, with a placeholder key."""
    providers: dict[str, ProviderSettings] = {}
    for name, provider in settings.providers.items():
        base = upstream_base_url + "/v1" if provider.kind == "openai" else upstream_base_url
        providers[name] = replace(provider, base_url=base, api_key=Secret(DEMO_KEY))
    return replace(settings, providers=providers, demo=True)


def template_paths(data_dir: Path) -> list[Path]:
    """User template files that add to or override the shipped set, in override order."""
    return user_template_paths(Path.cwd(), data_dir)


def workdir_template_paths(settings: Settings) -> list[Path]:
    """The template files whose changes to built-in templates are announced: the working
    directory's, and the data directory's when `./.env` chose the data directory."""
    cwd = Path.cwd()
    paths = [p for p in template_paths(settings.data_dir) if p.parent == cwd]
    data_origin = settings.sources.get("data_dir")
    if data_origin is not None and not data_origin.trusted:
        paths += [p for p in template_paths(settings.data_dir) if p.parent == settings.data_dir]
    elif _same_dir(cwd, settings.data_dir):
        return []  # running from the data directory itself: these are the user's own files
    return paths


def _same_dir(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


class Runtime:
    """The core, opened for one process. Close it when done."""

    def __init__(self, settings: Settings, *, store: Store | None = None) -> None:
        self.settings = settings
        self.store = store if store is not None else Store(settings.data_dir)
        self.template_watcher = TemplateWatcher(
            template_paths(settings.data_dir), announce=workdir_template_paths(settings)
        )
        #: Shown once by each front-end at start: refused working-directory settings,
        #: template conflicts and working-directory template overrides.
        self.notices: tuple[Notice, ...] = (*settings.notices, *self.templates.notices)
        self.catalog = Catalog(settings.models, settings.providers)
        self.router = Router(
            settings, store=self.store, templates=self.templates, catalog=self.catalog
        )
        # Workers sharing this data directory skip a model as soon as one of them opens it.
        self.router.breaker.share(self.store.breaker_board())
        self._rating_listeners: list[Callable[[dict[str, Any]], None]] = []
        self._preference_listeners: list[Callable[[dict[str, Any]], None]] = []

    @classmethod
    def open(
        cls,
        *,
        config: str | os.PathLike[str] | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        demo_upstream: str | None = None,
        settings: Settings | None = None,
    ) -> Runtime:
        """Load settings (unless given), optionally in demo mode, and open the store."""
        if settings is None:
            settings = load_settings(config=config, data_dir=data_dir)
        if demo_upstream:
            settings = demo_settings(settings, demo_upstream)
        return cls(settings)

    @property
    def templates(self) -> TemplateSet:
        return self.template_watcher.current

    def reload_templates(self) -> TemplateSet | None:
        """Re-read template files if they changed; raises ConfigError and keeps the old set."""
        fresh = self.template_watcher.check()
        if fresh is not None:
            self.router.templates = fresh
        return fresh

    def rate(
        self, prompt_id: str, rating: object, feedback: str | None = None, model: str | None = None
    ) -> dict[str, Any]:
        record = self.store.rate(prompt_id, rating, feedback, model)
        for listener in self._rating_listeners:
            listener(record)
        return record

    async def arate(
        self, prompt_id: str, rating: object, feedback: str | None = None, model: str | None = None
    ) -> dict[str, Any]:
        """`rate`, written on the store's writer thread so the event loop keeps serving."""
        record = await self.store.arate(prompt_id, rating, feedback, model)
        for listener in self._rating_listeners:
            listener(record)
        return record

    async def aprefer(
        self,
        prompt_a: str,
        prompt_b: str,
        outcome: str,
        feedback: str | None = None,
        compare_id: str | None = None,
    ) -> dict[str, Any]:
        """`prefer`, written on the store's writer thread so the event loop keeps serving."""
        record = await self.store.aprefer(prompt_a, prompt_b, outcome, feedback, compare_id)
        for listener in self._preference_listeners:
            listener(record)
        return record

    def prefer(
        self,
        prompt_a: str,
        prompt_b: str,
        outcome: str,
        feedback: str | None = None,
        compare_id: str | None = None,
    ) -> dict[str, Any]:
        """Record the verdict of a compare (see Store.prefer) and tell the listeners."""
        record = self.store.prefer(prompt_a, prompt_b, outcome, feedback, compare_id)
        for listener in self._preference_listeners:
            listener(record)
        return record

    def on_preference(self, callback: Callable[[dict[str, Any]], None]) -> None:
        self._preference_listeners.append(callback)

    def on_request(self, callback: Callable[[Result], None]) -> None:
        self.router.add_listener(callback)

    def on_rating(self, callback: Callable[[dict[str, Any]], None]) -> None:
        self._rating_listeners.append(callback)

    def model_rows(self) -> list[ModelRow]:
        """Every catalog model with its status as a user should see it now (`auto` first)."""
        rows = [auto_row(self.router.selection)]
        for info in self.catalog.models.values():
            status = info.status_on(self.catalog.today)
            key = f"{info.provider}:{info.id}"
            shown = status
            if status == "retired":
                shown = f"retired → {info.replacement}" if info.replacement else "retired"
            elif info.provider not in self.settings.providers:
                shown = "no provider"
            elif not self.router.providers.has_key(info.provider):
                shown = "no key"
            elif self.router.breaker.state(key) != "closed":
                shown = "cooling down"
            rows.append(
                {
                    "id": info.id,
                    "provider": info.provider,
                    "label": info.label,
                    "context_window": info.context_window,
                    "status": shown,
                    "catalog_status": status,
                    "replacement": info.replacement,
                    "shutdown": info.shutdown,
                    "kind": info.kind,
                    # What it accepts beyond plain chat (tools, JSON mode, images…).
                    "capabilities": self.catalog.capabilities(info.id).as_dict(),
                }
            )
        return rows

    async def aclose(self) -> None:
        self.router.metrics.loop_lag.stop()
        await self.router.aclose()
        self.store.close()

    def close(self) -> None:
        self.store.close()
