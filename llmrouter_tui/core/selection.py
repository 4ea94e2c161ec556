"""What the router asks before and after routing: which models `auto` may choose and in
which order, whether a `[budget]` limit refuses a paid model, and what a reply cost.

One `Selection` per router. It reads the store only through the two methods it is given
(`auto_evidence`, `spend`), and only from summary tables, at most every `[auto] refresh_s`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from . import budget as _budget
from .auto import AUTO_MODEL, AutoChooser, Choice, Option, merge_capabilities
from .auto import choose as auto_choose
from .capabilities import Capabilities, Need, unmet_need
from .catalog import Catalog, ModelRow, Resolution
from .config import Settings
from .errors import InputError, UnknownModelError
from .policy import CircuitBreaker
from .pricing import PriceTable
from .providers import ProviderPool
from .types import Result, Usage

#: Catalog statuses auto chooses from by default (deprecated and retired models are not).
AUTO_STATUSES = frozenset({"available", "preview"})


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Selection:
    """Auto's candidates, budget checks and costs for one router."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        providers: ProviderPool,
        breaker: CircuitBreaker,
        store: object | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.providers = providers
        self.breaker = breaker
        source = str(settings.config_path) if settings.config_path else "llmrouter.toml"
        self.prices = PriceTable.for_settings(settings.models, settings.providers, source)
        load = getattr(store, "auto_evidence", None)
        version = (lambda: store.evidence_version) if hasattr(store, "evidence_version") else None
        self.auto = AutoChooser(settings.auto, load, version, clock=clock)
        self.spend = _budget.SpendTracker(
            getattr(store, "spend", None), settings.auto.refresh_s, clock
        )
        self._now = now
        self._default_ids: tuple[Any, tuple[str, ...]] | None = None
        # Candidate id -> (resolution or None if unknown, is a chat model), per catalog date.
        self._resolved: dict[tuple[str, Any], tuple[Resolution | None, bool]] = {}

    # ---- budget ------------------------------------------------------------------------------

    @property
    def budget_on(self) -> bool:
        limits = self.settings.budget
        return limits.daily_usd is not None or limits.monthly_usd is not None

    def budget_block(self) -> _budget.BudgetBlock | None:
        """The reached limit, if any (None at once when no limit is set)."""
        if not self.budget_on:
            return None
        now = self._now()
        limits = self.settings.budget
        return _budget.check(limits.daily_usd, limits.monthly_usd, self.spend.current(now), now)

    def paid(self, candidate: Resolution) -> bool:
        """May this model cost money? (Unpriced models may: only known-free ones are free.)"""
        return not self.prices.is_free(candidate.model, candidate.provider)

    def check_budget(self, candidates: Sequence[Resolution]) -> _budget.BudgetBlock | None:
        """Raise BudgetExceeded when a limit is reached and the requested model is paid;
        else return the reached limit (paid fallbacks are then skipped), if any."""
        block = self.budget_block()
        if block is not None and self.paid(candidates[0]):
            raise block.error(candidates[0].requested, self._now())
        return block

    # ---- auto ---------------------------------------------------------------------------------

    def _auto_ids(self) -> tuple[str, ...]:
        if self.settings.auto.candidates:
            return self.settings.auto.candidates
        today = self.catalog.today
        if self._default_ids is None or self._default_ids[0] != today:
            ids = tuple(
                info.id
                for info in self.catalog.models.values()
                if info.kind == "chat" and info.status_on(today) in AUTO_STATUSES
            )
            self._default_ids = (today, ids)
        return self._default_ids[1]

    def _resolve(self, model_id: str) -> tuple[Resolution | None, bool]:
        """The candidate id resolved (None if unknown) and whether it is a chat model."""
        memo_key = (model_id, self.catalog.today)
        found = self._resolved.get(memo_key)
        if found is None:
            try:
                resolution: Resolution | None = self.catalog.resolve(model_id)
            except UnknownModelError:
                resolution = None
            info = self.catalog.get(resolution.model) if resolution is not None else None
            found = (resolution, info is None or info.kind == "chat")
            if len(self._resolved) > 1024:
                self._resolved.clear()
            self._resolved[memo_key] = found
        return found

    def options(
        self, needs: Sequence[Need], block: _budget.BudgetBlock | None = None
    ) -> tuple[list[tuple[Option, Resolution]], list[tuple[Option, Resolution]], dict[str, int]]:
        """Candidates auto may choose: (usable, with an open circuit, skipped by reason)."""
        usable: list[tuple[Option, Resolution]] = []
        cooling: list[tuple[Option, Resolution]] = []
        skipped: dict[str, int] = {}
        seen: set[str] = set()
        for model_id in self._auto_ids():
            resolution, chat = self._resolve(model_id)
            if resolution is None:
                skipped["unknown"] = skipped.get("unknown", 0) + 1
                continue
            if not chat or resolution.key in seen:
                continue
            seen.add(resolution.key)
            reason = None
            if resolution.provider not in self.providers.settings:
                reason = "no provider"
            elif not self.providers.has_key(resolution.provider):
                reason = "no API key"
            elif needs and unmet_need(
                self.catalog.capabilities(resolution.model, resolution.provider), needs
            ):
                reason = "cannot honour the request's parameters"
            elif block is not None and self.paid(resolution):
                reason = "paid, over budget"
            if reason is not None:
                skipped[reason] = skipped.get(reason, 0) + 1
                continue
            option = Option(
                resolution.model,
                resolution.provider,
                self.prices.price(resolution.model, resolution.provider),
            )
            if self.breaker.state(resolution.key) == "open":
                cooling.append((option, resolution))
            else:
                usable.append((option, resolution))
        return usable, cooling, skipped

    def choose(
        self, needs: Sequence[Need], template_id: str | None
    ) -> tuple[list[Resolution], str, _budget.BudgetBlock | None, Choice]:
        """Auto's candidates (the pick first, then the rest of the ranking), the reason,
        and the reached budget limit if any. Raises InputError (or BudgetExceeded) when no
        model can be chosen."""
        block = self.budget_block()
        usable, cooling, skipped = self.options(needs, block)
        # Open circuits are left out, unless nothing else is left (then one probe decides).
        pool = usable or cooling
        if not pool:
            if block is not None and skipped.get("paid, over budget"):
                raise block.error(AUTO_MODEL, self._now())
            why = ", ".join(f"{n} {reason}" for reason, n in skipped.items()) or "none listed"
            raise InputError(
                f"model 'auto' has no candidate to choose from ({why}); set an API key, or "
                "list models in [auto] candidates"
            )
        left = None
        if self.budget_on:
            limits = self.settings.budget
            spent = self.spend.current(self._now())
            left = _budget.remaining(limits.daily_usd, limits.monthly_usd, spent)
        choice = self.auto.choose([option for option, _ in pool], template_id, left)
        by_model = {option.model: resolution for option, resolution in pool}
        reason = choice.reason
        if block is not None:
            reason += f"; paid models skipped: {block.short()}"
        return [by_model[s.model] for s in choice.ranking], reason, block, choice

    def preview(self, template_id: str | None = None, needs: Sequence[Need] = ()) -> Choice | None:
        """How auto ranks the candidates now, without exploring (for UIs); None if none."""
        usable, cooling, _ = self.options(needs, self.budget_block())
        pool = usable or cooling
        if not pool:
            return None
        calm = replace(self.settings.auto, explore=0.0)
        options = [option for option, _ in pool]
        return auto_choose(options, self.auto.evidence(), calm, self.auto.rng, template_id)

    # ---- cost ---------------------------------------------------------------------------------

    def cost(
        self, candidate: Resolution | None, usage: Usage, *, ok: bool, from_cache: bool
    ) -> tuple[float | None, bool, float | None]:
        """(cost_usd, cost_estimated, saved_usd) of a reply: None when the model has no price
        or the request did not succeed; a cache hit costs 0 and saves what it would cost."""
        if candidate is None or not ok:
            return None, False, None
        value = self.prices.cost(
            candidate.model, candidate.provider, usage.prompt, usage.completion
        )
        if value is None:
            return None, False, None
        if from_cache:
            return 0.0, False, value
        return value, usage.estimated, None

    def recorded(self, result: Result) -> None:
        """Count a finished request's cost toward today's and this month's spend."""
        if result.cost_usd:
            self.spend.add(result.cost_usd, result.created_at[:10])


def auto_row(selection: Selection) -> ModelRow:
    """The model list's row for `auto` (same keys as the catalog models' rows)."""
    usable, cooling, _ = selection.options(())
    pool = usable or cooling
    # Every capability listed even without a candidate (all false then), as for any model.
    tables = [Capabilities().as_dict()] + [
        selection.catalog.capabilities(option.model, option.provider).as_dict()
        for option, _ in pool
    ]
    return {
        "id": AUTO_MODEL,
        "provider": AUTO_MODEL,
        "label": "Auto: the best model by your ratings, speed, reliability and cost",
        "context_window": None,
        "status": "available" if pool else "no key",
        "catalog_status": "available",
        "replacement": None,
        "shutdown": None,
        "kind": "chat",
        "capabilities": merge_capabilities(tables),
    }
