"""Reading auto's evidence and the spend so far from the summary tables (never `requests`).

Every read here touches a number of rows bounded by models x days (x histogram buckets), not
by the number of recorded requests, so choosing with `auto` costs the same at a million rows.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta

from .auto import Evidence, Recent
from .leaderboard import PairCount, RatingCount, merge_pairs
from .stats import bucket_value


def _p50(buckets: list[tuple[int, int]]) -> float | None:
    total = sum(n for _, n in buckets)
    if not total:
        return None
    rank = (total + 1) // 2
    seen = 0
    for bucket, n in buckets:
        seen += n
        if seen >= rank:
            return round(bucket_value(bucket), 1)
    return round(bucket_value(buckets[-1][0]), 1)


def load_evidence(
    conn: sqlite3.Connection, window_days: int, today: date | None = None
) -> Evidence:
    """Auto's evidence: the last `window_days` UTC days of daily summaries, and every rating
    and preference summary."""
    today = today or datetime.now(UTC).date()
    first = (today - timedelta(days=max(1, window_days) - 1)).isoformat()
    hists: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for model, kind, bucket, n in conn.execute(
        "SELECT model, kind, bucket, sum(n) FROM daily_hist WHERE day >= ? "
        "GROUP BY model, kind, bucket ORDER BY model, kind, bucket",
        (first,),
    ):
        hists.setdefault((model, kind), []).append((bucket, n))
    recent: dict[str, Recent] = {}
    for model, requests, ok, good, bad, prompt, completion in conn.execute(
        "SELECT model, sum(requests), sum(ok), sum(attempts_ok), sum(attempts_failed), "
        "sum(prompt_tokens), sum(completion_tokens) FROM daily_stats WHERE day >= ? "
        "GROUP BY model",
        (first,),
    ):
        recent[model] = Recent(
            requests=requests,
            ok=ok,
            attempts_ok=good,
            attempts_failed=bad,
            p50_ttft_ms=_p50(hists.get((model, "ttft"), [])),
            p50_latency_ms=_p50(hists.get((model, "latency"), [])),
            prompt_tokens=prompt,
            completion_tokens=completion,
        )
    evidence = Evidence(recent=recent)
    for template_id, model, n, total, sumsq in conn.execute(
        "SELECT template_id, model, n, total, sumsq FROM rating_stats WHERE n > 0"
    ):
        count = RatingCount(n, total, sumsq)
        evidence.ratings[model] = evidence.ratings.get(model, RatingCount()) + count
        if template_id:
            evidence.template_ratings.setdefault(template_id, {})[model] = count
    everywhere: list[PairCount] = []
    for template_id, *counts in conn.execute(
        "SELECT template_id, model_a, model_b, a_wins, b_wins, ties, both_bad FROM preference_stats"
    ):
        pair = PairCount(*counts)
        if not pair.games:
            continue
        everywhere.append(pair)
        if template_id:
            evidence.template_pairs.setdefault(template_id, []).append(pair)
    evidence.pairs = merge_pairs(everywhere)
    return evidence


def spend(conn: sqlite3.Connection, day: str) -> tuple[float, float]:
    """USD spent on `day` (YYYY-MM-DD, UTC) and in its month up to that day."""
    today = conn.execute(
        "SELECT coalesce(sum(cost_usd), 0) FROM daily_stats WHERE day = ?", (day,)
    ).fetchone()[0]
    month = conn.execute(
        "SELECT coalesce(sum(cost_usd), 0) FROM daily_stats WHERE day >= ? AND day <= ?",
        (day[:7] + "-01", day),
    ).fetchone()[0]
    return float(today), float(month)
