"""Analytics from SQLite summary tables, kept current in the same transaction as each request.

`stats()` never scans `requests`: it reads `model_stats` (a row per model), `latency_hist`
(log-spaced histograms), the small `ratings` table, `daily_stats` (a row per model and UTC
day; spend per day reads the last 31 days) and the rating and preference summaries behind
the leaderboard, so it stays fast at millions of rows.
Percentiles are approximate: each bucket is 5 % wide and reported at its geometric middle.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from typing import Annotated, Any, TypedDict

from .leaderboard import LeaderboardRow
from .wire_meta import Field

# ---- summary maintenance --------------------------------------------------------------------

BUCKET_RATIO = 1.05
_LOG_RATIO = math.log(BUCKET_RATIO)
_HALF_STEP = math.sqrt(BUCKET_RATIO)

MODEL_STATS_UPSERT = (
    "INSERT INTO model_stats (model, requests, ok, errors, cancelled, cache_hits, fallbacks, "
    "latency_ms_sum, latency_n, ttft_ms_sum, ttft_n, prompt_tokens, completion_tokens, "
    "total_tokens, estimated_requests, cost_usd, saved_usd, priced_requests, "
    "cost_estimated_requests) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (model) DO UPDATE SET requests = requests + excluded.requests, "
    "ok = ok + excluded.ok, errors = errors + excluded.errors, "
    "cancelled = cancelled + excluded.cancelled, cache_hits = cache_hits + excluded.cache_hits, "
    "fallbacks = fallbacks + excluded.fallbacks, "
    "latency_ms_sum = latency_ms_sum + excluded.latency_ms_sum, "
    "latency_n = latency_n + excluded.latency_n, "
    "ttft_ms_sum = ttft_ms_sum + excluded.ttft_ms_sum, ttft_n = ttft_n + excluded.ttft_n, "
    "prompt_tokens = prompt_tokens + excluded.prompt_tokens, "
    "completion_tokens = completion_tokens + excluded.completion_tokens, "
    "total_tokens = total_tokens + excluded.total_tokens, "
    "estimated_requests = estimated_requests + excluded.estimated_requests, "
    "cost_usd = cost_usd + excluded.cost_usd, saved_usd = saved_usd + excluded.saved_usd, "
    "priced_requests = priced_requests + excluded.priced_requests, "
    "cost_estimated_requests = cost_estimated_requests + excluded.cost_estimated_requests"
)
HIST_UPSERT = (
    "INSERT INTO latency_hist (model, kind, bucket, n) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (model, kind, bucket) DO UPDATE SET n = n + excluded.n"
)
_DAILY_COLUMNS = (
    "requests",
    "ok",
    "errors",
    "cancelled",
    "cache_hits",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "saved_usd",
    "priced_requests",
    "cost_estimated_requests",
    "attempts_ok",
    "attempts_failed",
)
DAILY_UPSERT = (
    f"INSERT INTO daily_stats (day, model, {', '.join(_DAILY_COLUMNS)}) "
    f"VALUES (?, ?, {', '.join('?' * len(_DAILY_COLUMNS))}) ON CONFLICT (day, model) DO UPDATE "
    "SET " + ", ".join(f"{c} = {c} + excluded.{c}" for c in _DAILY_COLUMNS)
)
DAILY_HIST_UPSERT = (
    "INSERT INTO daily_hist (day, model, kind, bucket, n) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (day, model, kind, bucket) DO UPDATE SET n = n + excluded.n"
)

# Column order of the numeric part of a MODEL_STATS_UPSERT row (after `model`).
_SUMS = 18
# Positions in a summary row (model first) copied into a daily row, in _DAILY_COLUMNS order
# (attempts come from the request's attempts instead).
_DAILY_FROM_SUMMARY = (1, 2, 3, 4, 5, 11, 12, 15, 16, 17, 18)
_CACHE_HIT = 5
# Days of spend the stats return (per_day), newest last.
SPEND_DAYS = 31


def bucket_of(ms: float) -> int:
    """Histogram bucket of a duration: 0 below 1 ms, else b with 1.05**(b-1) <= ms < 1.05**b."""
    if not ms >= 1.0:  # also catches NaN
        return 0
    return 1 + int(math.log(ms) / _LOG_RATIO)


def bucket_value(bucket: int) -> float:
    """The value reported for a bucket: its geometric middle (0.5 ms for bucket 0)."""
    if bucket <= 0:
        return 0.5
    return BUCKET_RATIO ** (bucket - 1) * _HALF_STEP


def stats_model(status: str, model_used: str | None, requested_model: str) -> str:
    """Which model a request counts for: the one that answered, else the one asked for."""
    if status == "ok" and model_used:
        return model_used
    return requested_model


class SummaryDeltas:
    """Summary-table deltas of many requests, merged per model and per histogram bucket, so a
    batch costs one upsert per model and per bucket instead of one per request."""

    __slots__ = ("daily", "daily_hist", "hist", "sums")

    def __init__(self) -> None:
        self.sums: dict[str, list[Any]] = {}
        self.hist: dict[tuple[str, str, int], int] = {}
        self.daily: dict[tuple[str, str], list[Any]] = {}
        self.daily_hist: dict[tuple[str, str, str, int], int] = {}

    def add(
        self,
        summary: tuple[Any, ...],
        hist_rows: Sequence[tuple[str, str, int, int]],
        day: str | None = None,
        attempts: Sequence[tuple[str, bool]] = (),
    ) -> None:
        """Add one request's `summary_rows()` output; with `day` (UTC, YYYY-MM-DD) also its
        daily rows, and `attempts` as (model, answered) per try that reached a provider."""
        acc = self.sums.get(summary[0])
        if acc is None:
            self.sums[summary[0]] = list(summary[1:])
        else:
            for j in range(_SUMS):
                acc[j] += summary[j + 1]
        hist = self.hist
        for model, kind, bucket, n in hist_rows:
            slot = (model, kind, bucket)
            hist[slot] = hist.get(slot, 0) + n
        if day is None:
            return
        row = self._daily_row(day, summary[0])
        for j, position in enumerate(_DAILY_FROM_SUMMARY):
            row[j] += summary[position]
        for model, answered in attempts:
            self._daily_row(day, model)[11 if answered else 12] += 1
        if not summary[_CACHE_HIT]:  # recent speed: replies the provider made
            daily_hist = self.daily_hist
            for model, kind, bucket, n in hist_rows:
                day_slot = (day, model, kind, bucket)
                daily_hist[day_slot] = daily_hist.get(day_slot, 0) + n

    def _daily_row(self, day: str, model: str) -> list[Any]:
        row = self.daily.get((day, model))
        if row is None:
            row = self.daily[(day, model)] = [0, 0, 0, 0, 0, 0, 0, 0.0, 0.0, 0, 0, 0, 0]
        return row

    def write(self, conn: sqlite3.Connection) -> None:
        """Apply the deltas (inside the caller's transaction)."""
        if self.sums:
            conn.executemany(MODEL_STATS_UPSERT, [(m, *v) for m, v in self.sums.items()])
        if self.hist:
            conn.executemany(HIST_UPSERT, [(m, k, b, c) for (m, k, b), c in self.hist.items()])
        if self.daily:
            conn.executemany(DAILY_UPSERT, [(d, m, *v) for (d, m), v in self.daily.items()])
        if self.daily_hist:
            conn.executemany(
                DAILY_HIST_UPSERT,
                [(d, m, k, b, c) for (d, m, k, b), c in self.daily_hist.items()],
            )


def summary_rows(
    *,
    status: str,
    model: str,
    latency_ms: float,
    ttft_ms: float | None,
    from_cache: bool,
    fallback_used: bool,
    prompt_tokens: int,
    completion_tokens: int,
    total_tokens: int,
    tokens_estimated: bool,
    cost_usd: float | None = None,
    saved_usd: float | None = None,
    cost_estimated: bool = False,
) -> tuple[tuple[Any, ...], list[tuple[str, str, int, int]]]:
    """The MODEL_STATS_UPSERT row and HIST_UPSERT rows one request contributes."""
    ok = status == "ok"
    has_ttft = ok and ttft_ms is not None
    priced = cost_usd is not None and ok and not from_cache
    row = (
        model,
        1,
        int(ok),
        int(status == "error"),
        int(status == "cancelled"),
        int(from_cache),
        int(fallback_used),
        latency_ms if ok else 0.0,
        int(ok),
        ttft_ms if has_ttft else 0.0,
        int(has_ttft),
        prompt_tokens,
        completion_tokens,
        total_tokens,
        int(tokens_estimated),
        cost_usd or 0.0,
        saved_usd or 0.0,
        int(priced),
        int(priced and cost_estimated),
    )
    hist: list[tuple[str, str, int, int]] = []
    if ok:
        hist.append((model, "latency", bucket_of(latency_ms), 1))
        if has_ttft:
            hist.append((model, "ttft", bucket_of(ttft_ms or 0.0), 1))
    return row, hist


# ---- reading ----------------------------------------------------------------------------------

_P = "Approximate (the histogram bucket's middle); null without ok requests."


class PerModelStats(TypedDict):
    """One model's requests (counted for model_used when ok, else requested_model)."""

    requests: int
    ok: int
    errors: int
    cache_hits: int
    fallbacks: int
    p50_latency_ms: Annotated[float | None, Field(_P)]
    p95_latency_ms: float | None
    p50_ttft_ms: float | None
    p95_ttft_ms: float | None
    avg_rating: float | None
    ratings: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: Annotated[float, Field("Spent on this model's replies.")]
    saved_usd: Annotated[float, Field("Saved by its cache hits.")]


class CostDay(TypedDict):
    day: Annotated[str, Field("YYYY-MM-DD (UTC).")]
    requests: int
    cost_usd: float
    saved_usd: float
    by_model: Annotated[dict[str, float], Field("USD spent per model that day.")]


class Cost(TypedDict):
    """Spend per model (per_model.*.cost_usd) and per day, and cache savings."""

    total_usd: Annotated[float, Field("Spent on every priced reply.")]
    saved_usd: Annotated[float, Field("What cache hits would have cost.")]
    priced_requests: int
    estimated_requests: Annotated[
        int, Field("Priced replies whose cost came from estimated token counts.")
    ]
    per_day: Annotated[list[CostDay], Field("The last 31 UTC days with requests, oldest first.")]


class TokenTotals(TypedDict):
    prompt: int
    completion: int
    total: int
    estimated_requests: Annotated[int, Field("Requests whose token counts were estimated.")]


class RatingCounts(TypedDict):
    count: int
    by_score: Annotated[dict[str, int], Field('Ratings per score, "1" to "5".')]


class StatsSummary(TypedDict):
    """Analytics from the summary tables (Store.stats). A request counts for model_used when
    ok, else for requested_model."""

    model_usage: Annotated[dict[str, int], Field("Per model: the ok requests it answered.")]
    avg_latency: Annotated[float | None, Field("Seconds (ok requests).")]
    avg_rating: float | None
    total_fallbacks: int
    total_prompts: Annotated[int, Field("Every request, whatever its status.")]
    ok: int
    errors: int
    cancelled: int
    cache_hits: int
    cache_hit_rate: Annotated[float, Field("Of all requests.")]
    tokens: TokenTotals
    ratings: RatingCounts
    per_model: dict[str, PerModelStats]
    percentiles_approximate: bool
    cost: Cost
    leaderboard: Annotated[
        list[LeaderboardRow],
        Field(
            "Best first: from every vote, or (GET /stats?template=ID) from the votes given to "
            "that template's replies."
        ),
    ]


class RecentRequest(TypedDict):
    """One request, for a latency-over-time chart."""

    prompt_id: str
    created_at: str
    model_used: str | None
    requested_model: str
    latency_ms: float
    ttft_ms: float | None
    status: str


def _percentile(buckets: list[tuple[int, int]], total: int, p: float) -> float | None:
    """Nearest-rank percentile from (bucket, count) pairs sorted by bucket."""
    if total <= 0:
        return None
    rank = max(1, math.ceil(p * total))
    seen = 0
    for bucket, n in buckets:
        seen += n
        if seen >= rank:
            return round(bucket_value(bucket), 1)
    return round(bucket_value(buckets[-1][0]), 1)


def compute(conn: sqlite3.Connection) -> StatsSummary:
    """The analytics dict (see Store.stats)."""
    models = conn.execute(
        "SELECT model, requests, ok, errors, cancelled, cache_hits, fallbacks, latency_ms_sum, "
        "latency_n, ttft_ms_sum, ttft_n, prompt_tokens, completion_tokens, total_tokens, "
        "estimated_requests, cost_usd, saved_usd, priced_requests, cost_estimated_requests "
        "FROM model_stats ORDER BY model"
    ).fetchall()
    hists: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for model, kind, bucket, n in conn.execute(
        "SELECT model, kind, bucket, n FROM latency_hist ORDER BY model, kind, bucket"
    ):
        hists.setdefault((model, kind), []).append((bucket, n))
    rating_rows = conn.execute(
        "SELECT model, rating, count(*) FROM ratings GROUP BY model, rating"
    ).fetchall()

    per_model: dict[str, PerModelStats] = {}
    totals = [0] * _SUMS
    for row in models:
        model = row[0]
        for i, value in enumerate(row[1:]):
            totals[i] += value
        (requests, ok, errors, _cancelled, cache_hits, fallbacks) = row[1:7]
        lat = hists.get((model, "latency"), [])
        ttft = hists.get((model, "ttft"), [])
        per_model[model] = {
            "requests": requests,
            "ok": ok,
            "errors": errors,
            "cache_hits": cache_hits,
            "fallbacks": fallbacks,
            "p50_latency_ms": _percentile(lat, row[8], 0.50),
            "p95_latency_ms": _percentile(lat, row[8], 0.95),
            "p50_ttft_ms": _percentile(ttft, row[10], 0.50),
            "p95_ttft_ms": _percentile(ttft, row[10], 0.95),
            "avg_rating": None,
            "ratings": 0,
            "prompt_tokens": row[11],
            "completion_tokens": row[12],
            "total_tokens": row[13],
            "cost_usd": row[15],
            "saved_usd": row[16],
        }

    by_score = {str(score): 0 for score in range(1, 6)}
    rating_sums: dict[str, list[int]] = {}
    for model, rating, n in rating_rows:
        by_score[str(rating)] = by_score.get(str(rating), 0) + n
        acc = rating_sums.setdefault(model, [0, 0])
        acc[0] += rating * n
        acc[1] += n
    for model, (score_sum, n) in rating_sums.items():
        entry = per_model.setdefault(model, _empty_model())
        entry["ratings"] = n
        entry["avg_rating"] = score_sum / n
    rating_count = sum(by_score.values())
    rating_total = sum(int(score) * n for score, n in by_score.items())

    (
        total,
        ok_total,
        errors,
        cancelled,
        cache_hits,
        fallbacks,
        latency_sum,
        latency_n,
        _ttft_sum,
        _ttft_n,
        prompt_tokens,
        completion_tokens,
        total_tokens,
        estimated,
        cost_total,
        saved_total,
        priced,
        cost_estimated,
    ) = totals
    return {
        "model_usage": {m: e["ok"] for m, e in per_model.items() if e["ok"]},
        "avg_latency": (latency_sum / latency_n / 1000.0) if latency_n else 0.0,
        "avg_rating": (rating_total / rating_count) if rating_count else None,
        "total_fallbacks": fallbacks,
        "total_prompts": total,
        "ok": ok_total,
        "errors": errors,
        "cancelled": cancelled,
        "cache_hits": cache_hits,
        "cache_hit_rate": (cache_hits / total) if total else 0.0,
        "tokens": {
            "prompt": prompt_tokens,
            "completion": completion_tokens,
            "total": total_tokens,
            "estimated_requests": estimated,
        },
        "ratings": {"count": rating_count, "by_score": by_score},
        "per_model": per_model,
        "percentiles_approximate": True,
        "cost": {
            "total_usd": cost_total,
            "saved_usd": saved_total,
            "priced_requests": priced,
            "estimated_requests": cost_estimated,
            "per_day": _spend_per_day(conn),
        },
        "leaderboard": leaderboard_rows(conn),
    }


def _spend_per_day(conn: sqlite3.Connection, days: int = SPEND_DAYS) -> list[CostDay]:
    """Spend and cache savings per UTC day (the last `days` days with requests, oldest
    first), each with its spend per model. Reads at most days x models summary rows."""
    first = conn.execute(
        "SELECT day FROM (SELECT DISTINCT day FROM daily_stats ORDER BY day DESC LIMIT ?) "
        "ORDER BY day LIMIT 1",
        (days,),
    ).fetchone()
    if first is None:
        return []
    out: dict[str, CostDay] = {}
    for day, model, requests, cost, saved in conn.execute(
        "SELECT day, model, requests, cost_usd, saved_usd FROM daily_stats WHERE day >= ? "
        "ORDER BY day, model",
        (first[0],),
    ):
        entry = out.setdefault(
            day, {"day": day, "requests": 0, "cost_usd": 0.0, "saved_usd": 0.0, "by_model": {}}
        )
        entry["requests"] += requests
        entry["cost_usd"] += cost
        entry["saved_usd"] += saved
        if cost:
            entry["by_model"][model] = cost
    return list(out.values())


def leaderboard_rows(
    conn: sqlite3.Connection, template_id: str | None = None
) -> list[LeaderboardRow]:
    """The leaderboard (core.leaderboard.rows) from the rating and preference summaries:
    overall, or from one template's votes only."""
    from .leaderboard import PairCount, RatingCount, rows

    where, args = ("", ()) if template_id is None else (" WHERE template_id = ?", (template_id,))
    pairs = [
        PairCount(*row)
        for row in conn.execute(
            "SELECT model_a, model_b, sum(a_wins), sum(b_wins), sum(ties), sum(both_bad) "
            f"FROM preference_stats{where} GROUP BY model_a, model_b",
            args,
        )
    ]
    ratings = {
        model: RatingCount(n, total, sumsq)
        for model, n, total, sumsq in conn.execute(
            f"SELECT model, sum(n), sum(total), sum(sumsq) FROM rating_stats{where} GROUP BY model",
            args,
        )
        if n
    }
    return rows(pairs, ratings)


def _empty_model() -> PerModelStats:
    return {
        "requests": 0,
        "ok": 0,
        "errors": 0,
        "cache_hits": 0,
        "fallbacks": 0,
        "p50_latency_ms": None,
        "p95_latency_ms": None,
        "p50_ttft_ms": None,
        "p95_ttft_ms": None,
        "avg_rating": None,
        "ratings": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
        "cost_usd": 0.0,
        "saved_usd": 0.0,
    }


def recent_requests(conn: sqlite3.Connection, limit: int = 200) -> list[RecentRequest]:
    """The newest `limit` requests, oldest first (for a latency-over-time chart)."""
    rows = conn.execute(
        "SELECT prompt_id, created_at, model_used, requested_model, latency_ms, ttft_ms, status "
        "FROM requests ORDER BY created_at DESC LIMIT ?",
        (max(0, int(limit)),),
    ).fetchall()
    return [
        {
            "prompt_id": prompt_id,
            "created_at": created_at,
            "model_used": model_used,
            "requested_model": requested_model,
            "latency_ms": latency_ms,
            "ttft_ms": ttft_ms,
            "status": status,
        }
        for prompt_id, created_at, model_used, requested_model, latency_ms, ttft_ms, status in (
            reversed(rows)
        )
    ]
