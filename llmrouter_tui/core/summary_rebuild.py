"""Rebuilding the evidence summaries from the recorded rows, in SQL.

Schema migration 4 created `daily_stats`, `daily_hist` and `preference_stats` empty, so a
database upgraded from version 3 showed no recent evidence and no spend for its history.
`rebuild` recomputes those tables and `rating_stats` from `requests`, `attempts`, `ratings`
and `preferences` with the same rules live recording applies (core.recorder, core.stats,
core.ratings, core.preferences), replacing what they held: running it twice, or on a database
whose summaries were filled live, gives the numbers recording would have given.

Each table is one INSERT … SELECT … GROUP BY (no Python loop over rows), inside the caller's
transaction; see BENCHMARKS.md ("Rebuilding the daily summaries") for its time at 1,000,000
requests.
"""

from __future__ import annotations

import math
import sqlite3

from .policy import NOT_HEALTH
from .stats import BUCKET_RATIO, bucket_of

LOG_RATIO = math.log(BUCKET_RATIO)

_BUCKET_FUNCTION = "llmrouter_bucket"

# stats.stats_model: the model that answered for ok requests, else the one asked for.
_STATS_MODEL = (
    "CASE WHEN status = 'ok' AND model_used <> '' THEN model_used ELSE requested_model END"
)
_DAY = "substr(created_at, 1, 10)"  # the UTC day of an ISO-8601 created_at, as recorder uses
# stats.summary_rows: a reply is priced when it has a cost, is ok and was not a cache hit.
_PRICED = "(cost_usd IS NOT NULL AND status = 'ok' AND from_cache = 0)"

_DAILY_FROM_REQUESTS = (
    "INSERT INTO daily_stats (day, model, requests, ok, errors, cancelled, cache_hits, "
    "prompt_tokens, completion_tokens, cost_usd, saved_usd, priced_requests, "
    "cost_estimated_requests, attempts_ok, attempts_failed) "
    f"SELECT {_DAY}, {_STATS_MODEL}, count(*), sum(status = 'ok'), sum(status = 'error'), "
    "sum(status = 'cancelled'), sum(from_cache <> 0), sum(prompt_tokens), "
    "sum(completion_tokens), total(cost_usd), total(saved_usd), "
    f"sum({_PRICED}), sum({_PRICED} AND cost_estimated <> 0), 0, 0 "
    "FROM requests GROUP BY 1, 2"
)


def _daily_from_attempts() -> str:
    """recorder._tries: per attempt model, tries that answered and tries that failed through
    the model's fault (not the caller's bad request, a content filter, a context too long)."""
    not_health = ", ".join(f"'{kind}'" for kind in sorted(NOT_HEALTH))
    return (
        "INSERT INTO daily_stats (day, model, attempts_ok, attempts_failed) "
        "SELECT substr(q.created_at, 1, 10), a.model, sum(a.outcome IN ('ok', 'continued')), "
        "sum(a.outcome IN ('error', 'timeout')) "
        "FROM attempts a JOIN requests q ON q.prompt_id = a.prompt_id "
        "WHERE a.outcome IN ('ok', 'continued') OR (a.outcome IN ('error', 'timeout') "
        f"AND (a.error IS NULL OR a.error NOT IN ({not_health}))) "
        "GROUP BY 1, 2 "
        "ON CONFLICT (day, model) DO UPDATE SET "
        "attempts_ok = attempts_ok + excluded.attempts_ok, "
        "attempts_failed = attempts_failed + excluded.attempts_failed"
    )


# SummaryDeltas.add: recent speed counts ok replies a provider made (no cache hits). Both
# kinds come from one pass over requests (CROSS JOIN keeps requests the outer loop).
_DAILY_HIST = (
    "INSERT INTO daily_hist (day, model, kind, bucket, n) "
    "SELECT day, model, kind, {bucket}, count(*) FROM ("
    f"SELECT {_DAY} AS day, {_STATS_MODEL} AS model, k.kind AS kind, "
    "CASE k.kind WHEN 'latency' THEN latency_ms ELSE ttft_ms END AS ms "
    "FROM requests CROSS JOIN (SELECT 'latency' AS kind UNION ALL SELECT 'ttft') k "
    "WHERE status = 'ok' AND from_cache = 0 AND (k.kind = 'latency' OR ttft_ms IS NOT NULL)"
    ") GROUP BY 1, 2, 3, 4"
)
# stats.bucket_of in SQL: the same libm log() and the same double (passed as a parameter,
# not parsed from text), truncated as int() does.
NATIVE_BUCKET = "CASE WHEN ms >= 1.0 THEN 1 + CAST(ln(ms) / ? AS INTEGER) ELSE 0 END"


def bucket_sql(conn: sqlite3.Connection) -> tuple[str, tuple[float, ...]]:
    """The SQL of stats.bucket_of(ms) and its parameters: SQLite's ln() where it is compiled
    in (no Python call per row), else bucket_of itself as an SQL function."""
    try:
        conn.execute("SELECT ln(2.0)")
    except sqlite3.OperationalError:
        conn.create_function(_BUCKET_FUNCTION, 1, bucket_of, deterministic=True)
        return f"{_BUCKET_FUNCTION}(ms)", ()
    return NATIVE_BUCKET, (LOG_RATIO,)


# ratings.rate: the latest rating per prompt, by the rated model and the request's template.
_RATING_STATS = (
    "INSERT INTO rating_stats (template_id, model, n, total, sumsq) "
    "SELECT coalesce(q.template_id, ''), r.model, count(*), sum(r.rating), "
    "sum(r.rating * r.rating) FROM ratings r LEFT JOIN requests q ON q.prompt_id = r.prompt_id "
    "GROUP BY 1, 2"
)
# preferences._count: the latest vote per pair, models in order (the outcome swapped with
# them); a model against itself is not counted.
_PREFERENCE_STATS = (
    "INSERT INTO preference_stats (template_id, model_a, model_b, a_wins, b_wins, ties, "
    "both_bad) SELECT coalesce(template_id, ''), min(model_a, model_b), max(model_a, model_b), "
    "sum(CASE WHEN model_a < model_b THEN outcome = 'a' ELSE outcome = 'b' END), "
    "sum(CASE WHEN model_a < model_b THEN outcome = 'b' ELSE outcome = 'a' END), "
    "sum(outcome = 'tie'), sum(outcome = 'both_bad') "
    "FROM preferences WHERE model_a <> model_b GROUP BY 1, 2, 3"
)

_TABLES = ("daily_stats", "daily_hist", "rating_stats", "preference_stats")


def rebuild(conn: sqlite3.Connection) -> None:
    """Replace the daily, rating and preference summaries with what the recorded rows give
    (inside the caller's transaction)."""
    for table in _TABLES:
        conn.execute(f"DELETE FROM {table}")
    conn.execute(_DAILY_FROM_REQUESTS)
    conn.execute(_daily_from_attempts())
    bucket, params = bucket_sql(conn)
    conn.execute(_DAILY_HIST.format(bucket=bucket), params)
    conn.execute(_RATING_STATS)
    conn.execute(_PREFERENCE_STATS)
