"""Plain-text formatting shared by the screens: reply metadata, attempts, numbers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..core.types import Attempt, Result

STARS = "★★★★★"
EMPTY_STARS = "☆☆☆☆☆"


@dataclass(frozen=True, slots=True)
class ReplyMeta:
    """What the metadata line under a reply shows, from a live Result or a stored row."""

    model_used: str | None
    requested_model: str
    fallback_used: bool
    notice: str | None
    latency_ms: float | None
    ttft_ms: float | None
    total_tokens: int
    estimated: bool
    from_cache: bool
    attempts: int
    status: str
    demo: bool = False

    @classmethod
    def from_result(cls, result: Result) -> ReplyMeta:
        return cls(
            model_used=result.model_used,
            requested_model=result.requested_model,
            fallback_used=result.fallback_used,
            notice=result.notice,
            latency_ms=result.latency_ms,
            ttft_ms=result.ttft_ms,
            total_tokens=result.usage.total,
            estimated=result.usage.estimated,
            from_cache=result.from_cache,
            attempts=len(result.attempts),
            status=result.status,
            demo=result.demo,
        )

    @classmethod
    def from_row(cls, row: Mapping[str, Any], attempts: int) -> ReplyMeta:
        """From `Store.get_request()` plus the number of `Store.request_attempts()`."""
        return cls(
            model_used=row.get("model_used"),
            requested_model=row.get("requested_model") or "",
            fallback_used=bool(row.get("fallback_used")),
            notice=row.get("notice"),
            latency_ms=row.get("latency_ms"),
            ttft_ms=row.get("ttft_ms"),
            total_tokens=int(row.get("total_tokens") or 0),
            estimated=bool(row.get("tokens_estimated")),
            from_cache=bool(row.get("from_cache")),
            attempts=attempts,
            status=row.get("status") or "ok",
            demo=bool(row.get("demo")),
        )


def duration(ms: float | None) -> str:
    """`812 ms` below a second, `1.21 s` above; `–` when unknown."""
    if ms is None:
        return "–"
    if ms < 1000:
        return f"{ms:.0f} ms"
    return f"{ms / 1000:.2f} s"


def tokens(total: int, estimated: bool) -> str:
    """Token count, marked `~… (est.)` when the router counted them itself."""
    return f"~{total:,} tok (est.)" if estimated else f"{total:,} tok"


def stars(rating: int | None) -> str:
    """`★★★★☆ 4/5`, or an empty string when unrated."""
    if not rating:
        return ""
    return f"{STARS[:rating]}{EMPTY_STARS[rating:]} {rating}/5"


def meta_line(meta: ReplyMeta, rating: int | None = None) -> str:
    """The one-line summary under a reply."""
    parts: list[str] = []
    model = meta.model_used or meta.requested_model
    if meta.fallback_used and meta.requested_model and meta.requested_model != model:
        parts.append(f"{model} ↪ fallback from {meta.requested_model}")
    else:
        parts.append(model)
    parts.append(duration(meta.latency_ms))
    if meta.ttft_ms is not None:
        parts.append(f"TTFT {duration(meta.ttft_ms)}")
    parts.append(tokens(meta.total_tokens, meta.estimated))
    if meta.from_cache:
        parts.append("⚡ cached")
    parts.append(f"{meta.attempts} attempt" + ("" if meta.attempts == 1 else "s"))
    if meta.demo:
        parts.append("demo")
    if rating:
        parts.append(stars(rating))
    return " · ".join(parts)


def attempt_lines(attempts: Iterable[Attempt]) -> list[str]:
    """One line per attempt: model, provider, outcome, HTTP status and reason."""
    lines = []
    for a in attempts:
        repeated = a.status and (a.message or "").startswith(f"HTTP {a.status}")
        status = f" HTTP {a.status}" if a.status and not repeated else ""
        reason = f" — {a.message}" if a.message else (f" — {a.error}" if a.error else "")
        took = f" ({a.ms:.0f} ms)" if a.ms else ""
        lines.append(f"• {a.model} [{a.provider}] {a.outcome}{status}{reason}{took}")
    return lines


def error_headline(result: Result) -> str:
    """A short statement of why a request failed (the attempts are listed separately)."""
    reason = result.error or "the request failed"
    reason = reason.split(". Attempts:", 1)[0]
    return f"Request failed: {reason}"


def count(value: int | float | None) -> str:
    """Thousands-separated whole number; `–` when unknown."""
    if value is None:
        return "–"
    return f"{round(value):,}"


def percent(fraction: float | None) -> str:
    """`12.5%` from 0.125."""
    if fraction is None:
        return "–"
    return f"{fraction * 100:.1f}%"


def rating_value(avg: float | None) -> str:
    """Average rating with two decimals, `–` when nothing is rated."""
    return "–" if avg is None else f"{avg:.2f}"


def ms_value(ms: float | None) -> str:
    """Milliseconds as a whole number for tables; `–` when unknown."""
    return "–" if ms is None else f"{ms:,.0f}"
