"""Spending limits: `[budget] daily_usd` / `monthly_usd`. Pure: no I/O (the spend so far is
read by the caller's loader).

Days and months are UTC. When a limit is reached, requests for paid models are refused
(`BudgetExceeded`, HTTP 429) until the limit resets (next UTC midnight, or the first of the
next month); free models (price 0, e.g. local ones) are still served. The request that
crosses a limit completes: a limit refuses what comes after it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .errors import BudgetExceeded
from .pricing import format_usd

_NAMES = {"daily_usd": "daily", "monthly_usd": "monthly"}


@dataclass(frozen=True, slots=True)
class Spend:
    """USD spent (on recorded replies) on one UTC day and in its month."""

    day: str  # YYYY-MM-DD
    today_usd: float = 0.0
    month_usd: float = 0.0


def day_of(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%d")


def resets_at(budget: str, now: datetime) -> datetime:
    """When a budget's period ends: the next UTC midnight, or the next month's first day."""
    now = now.astimezone(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if budget == "daily_usd":
        return midnight + timedelta(days=1)
    first = midnight.replace(day=1)
    return (
        first.replace(year=first.year + 1, month=1)
        if first.month == 12
        else first.replace(month=first.month + 1)
    )


def _duration(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


@dataclass(frozen=True, slots=True)
class BudgetBlock:
    """A reached limit."""

    budget: str  # "daily_usd" | "monthly_usd"
    limit_usd: float
    spent_usd: float
    resets_at: datetime

    @property
    def resets_iso(self) -> str:
        return self.resets_at.strftime("%Y-%m-%dT%H:%M:%SZ")

    def short(self) -> str:
        """One clause, for attempt messages and auto's reason."""
        name = _NAMES.get(self.budget, self.budget)
        return (
            f"{name} budget reached ({format_usd(self.spent_usd)} of "
            f"{format_usd(self.limit_usd)}; resets {self.resets_iso})"
        )

    def error(self, model: str, now: datetime) -> BudgetExceeded:
        """The refusal of a request for the paid model `model`."""
        name = _NAMES.get(self.budget, self.budget)
        wait = max(0.0, (self.resets_at - now.astimezone(UTC)).total_seconds())
        period = "today (UTC)" if self.budget == "daily_usd" else "this month (UTC)"
        what = (
            "every model auto may choose for this request is paid, so it is"
            if model == "auto"
            else f"{model} is a paid model, so it is"
        )
        message = (
            f"{name} budget reached: {format_usd(self.spent_usd)} spent {period}, "
            f"[budget] {self.budget} = {self.limit_usd:g}. {what} "
            f"refused until the budget resets at {self.resets_iso} (in {_duration(wait)}). "
            "Free models (price 0, such as local ones) still work; raise the budget in "
            "llmrouter.toml to continue now."
        )
        return BudgetExceeded(
            message,
            budget=self.budget,
            limit_usd=self.limit_usd,
            spent_usd=self.spent_usd,
            resets_at=self.resets_iso,
            retry_after_s=wait,
        )


def check(
    daily_usd: float | None, monthly_usd: float | None, spend: Spend, now: datetime
) -> BudgetBlock | None:
    """The reached limit that lasts longest, or None while both have room."""
    reached: list[BudgetBlock] = []
    if monthly_usd is not None and spend.month_usd >= monthly_usd:
        reached.append(
            BudgetBlock("monthly_usd", monthly_usd, spend.month_usd, resets_at("monthly_usd", now))
        )
    if daily_usd is not None and spend.today_usd >= daily_usd:
        reached.append(
            BudgetBlock("daily_usd", daily_usd, spend.today_usd, resets_at("daily_usd", now))
        )
    return reached[0] if reached else None


def remaining(daily_usd: float | None, monthly_usd: float | None, spend: Spend) -> float | None:
    """USD left before a limit is reached (None: no limit)."""
    left = [
        limit - spent
        for limit, spent in ((daily_usd, spend.today_usd), (monthly_usd, spend.month_usd))
        if limit is not None
    ]
    return max(0.0, min(left)) if left else None


class SpendTracker:
    """Spend today and this month: a snapshot from the store (refreshed every `refresh_s`,
    and at each new UTC day) plus what this process recorded since it was read."""

    def __init__(
        self,
        load: Callable[[str], tuple[float, float]] | None,
        refresh_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._refresh_s = refresh_s
        self._clock = clock
        self._snapshot: Spend | None = None
        self._loaded_at = 0.0
        self._local_day: dict[str, float] = {}
        self._local_month: dict[str, float] = {}

    def current(self, now: datetime) -> Spend:
        today = day_of(now)
        snapshot = self._snapshot
        stale = self._clock() - self._loaded_at >= self._refresh_s
        if snapshot is None or snapshot.day != today or (stale and self._load is not None):
            if self._load is not None:
                spent_today, spent_month = self._load(today)
                # The store has everything recorded so far: only later records add to it.
                self._local_day.clear()
                self._local_month.clear()
            else:
                spent_today, spent_month = 0.0, 0.0
            snapshot = self._snapshot = Spend(today, spent_today, spent_month)
            self._loaded_at = self._clock()
        return Spend(
            today,
            snapshot.today_usd + self._local_day.get(today, 0.0),
            snapshot.month_usd + self._local_month.get(today[:7], 0.0),
        )

    def add(self, cost_usd: float | None, day: str) -> None:
        """A recorded reply cost `cost_usd` on `day` (YYYY-MM-DD, UTC)."""
        if not cost_usd:
            return
        self._local_day[day] = self._local_day.get(day, 0.0) + cost_usd
        self._local_month[day[:7]] = self._local_month.get(day[:7], 0.0) + cost_usd
