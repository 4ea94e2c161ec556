"""Plain text for choosing models from evidence: a reply's cost and auto's reason, leaderboard
cells, spend, and the notice of a reached budget (no widgets here)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..core.errors import BudgetExceeded
from ..core.pricing import format_usd
from ..core.types import Result

if TYPE_CHECKING:
    from ..core.router import Router

#: Budget names as people say them.
BUDGET_NAMES = {"daily_usd": "daily", "monthly_usd": "monthly"}


@dataclass(frozen=True, slots=True)
class ReplyCost:
    """What a reply cost and why `auto` chose its model, from a Result or a stored row."""

    cost_usd: float | None = None
    estimated: bool = False
    saved_usd: float | None = None
    auto_reason: str | None = None
    compare_id: str | None = None

    @classmethod
    def from_result(cls, result: Result) -> ReplyCost:
        return cls(
            result.cost_usd,
            result.cost_estimated,
            result.saved_usd,
            result.auto_reason,
            result.compare_id,
        )

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ReplyCost:
        """From `Store.get_request()`."""
        return cls(
            row.get("cost_usd"),
            bool(row.get("cost_estimated")),
            row.get("saved_usd"),
            row.get("auto_reason"),
            row.get("compare_id"),
        )


def cost_text(cost: ReplyCost) -> str | None:
    """`$0.0004`, `~$0.0004` (estimated tokens), `saved $0.0004` (a cache hit), `free`;
    None when the price is unknown or the request did not succeed."""
    if cost.saved_usd:
        return f"saved {format_usd(cost.saved_usd)}"
    if cost.cost_usd is None:
        return None
    text = format_usd(cost.cost_usd)
    return f"~{text}" if cost.estimated and cost.cost_usd else text


def auto_pick_text(reason: str | None) -> str:
    """The model picker's line for `auto`: what it would choose now, and why."""
    if reason is None:
        return "no model to choose from now (set an API key, or list [auto] candidates)"
    head = "auto "
    return "now " + (reason[len(head) :] if reason.startswith(head) else reason)


def current_auto_pick(router: Router, template_id: str | None = None) -> str:
    """What auto would pick now and why, for the model picker (blocking: reads evidence)."""
    choice = router.selection.preview(template_id)
    return auto_pick_text(choice.reason if choice is not None else None)


# ---- leaderboard ---------------------------------------------------------------------------

LEADERBOARD_COLUMNS: tuple[tuple[str, str], ...] = (
    ("rank", "#"),
    ("model", "Model"),
    ("score", "BT ±95%"),
    ("won", "Won"),
    ("rating", "Rating (95%)"),
    ("votes", "Votes"),
)


def score_text(row: Mapping[str, Any]) -> str:
    """`1043 ±92` (the interval is symmetric on the Elo scale); `–` without compares."""
    score = row.get("bt_score")
    if score is None:
        return "–"
    low, high = row.get("bt_low"), row.get("bt_high")
    if low is None or high is None:
        return f"{score:.0f}"
    return f"{score:.0f} ±{(high - low) / 2:.0f}"


def rating_text(row: Mapping[str, Any]) -> str:
    """`4.25 (3.9–4.6)`; the mean alone below two ratings; `–` without ratings."""
    mean = row.get("mean_rating")
    if mean is None:
        return "–"
    low, high = row.get("rating_low"), row.get("rating_high")
    if low is None or high is None:
        return f"{mean:.2f}"
    return f"{mean:.2f} ({low:.1f}–{high:.1f})"


def won_text(row: Mapping[str, Any]) -> str:
    """`62% of 24`: the compares won (ties and "both bad" count half) of those taken part
    in; `–` without compares."""
    rate, compares = row.get("win_rate"), int(row.get("compares") or 0)
    if rate is None or not compares:
        return "–"
    return f"{rate * 100:.0f}% of {compares:,}"


def leaderboard_cells(row: Mapping[str, Any]) -> tuple[str, ...]:
    """One leaderboard row as shown, in LEADERBOARD_COLUMNS order."""
    return (
        str(row["rank"]),
        str(row["model"]),
        score_text(row),
        won_text(row),
        rating_text(row),
        f"{row['ratings']:,}",
    )


# ---- spend ---------------------------------------------------------------------------------


def spend_summary(cost: Mapping[str, Any]) -> str:
    """One line from `Store.stats()["cost"]`: spend, how much is estimated, cache savings."""
    total = float(cost.get("total_usd") or 0.0)
    saved = float(cost.get("saved_usd") or 0.0)
    priced = int(cost.get("priced_requests") or 0)
    estimated = int(cost.get("estimated_requests") or 0)
    parts = [f"spent {usd(total)} on {priced:,} priced repl{'y' if priced == 1 else 'ies'}"]
    if estimated:
        parts.append(f"{estimated:,} from estimated tokens")
    parts.append(f"the cache saved {usd(saved)}")
    return " · ".join(parts)


def usd(value: float | None) -> str:
    """Dollars for totals: `$0` rather than `free`, `–` when unknown."""
    if value is None:
        return "–"
    return "$0" if value == 0 else format_usd(value)


# ---- budgets -------------------------------------------------------------------------------


def _wait(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def reset_time(resets_at: str) -> str:
    """`2026-06-02 00:00 UTC` from the ISO time of BudgetExceeded."""
    try:
        when = datetime.strptime(resets_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return resets_at
    return when.strftime("%Y-%m-%d %H:%M UTC")


def budget_notice(error: BudgetExceeded) -> tuple[str, str]:
    """(title, text) of the notice shown when a `[budget]` limit refuses a request."""
    name = BUDGET_NAMES.get(error.budget, error.budget)
    title = f"{name.capitalize()} budget reached"
    text = (
        f"{usd(error.spent_usd)} spent of the {name} budget of {usd(error.limit_usd)} "
        f"([budget] {error.budget}). Paid models are refused until it resets at "
        f"{reset_time(error.resets_at)} (in {_wait(error.retry_after_s)}); free models still "
        "answer. Your prompt is back in the box."
    )
    return title, text
