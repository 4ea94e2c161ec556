"""Synthetic request history for tests and benchmarks: many rows with consistent summaries.

Not part of the app: `Store` and `core.stats` only read and record real requests. This writes
straight into a store's database (through its own connection, as another process would), so
a million-row analytics or `auto` benchmark needs no upstream.
"""

from __future__ import annotations

import math
import random
import sqlite3
import uuid
from datetime import UTC, datetime
from typing import Any

from ..core.db import open_database
from ..core.stats import SummaryDeltas, summary_rows
from ..core.store import Store

_MODELS: tuple[tuple[str, str, float], ...] = (
    # (model, provider, median latency ms)
    ("groq:llama-3.1-8b-instant", "groq", 350.0),
    ("groq:openai/gpt-oss-20b", "groq", 600.0),
    ("groq:llama-3.3-70b-versatile", "groq", 900.0),
    ("gemini:gemini-2.5-flash", "gemini", 1400.0),
    ("gemini:gemini-2.5-pro", "gemini", 4000.0),
    ("openai:gpt-4o-mini", "openai", 1100.0),
)

_INSERT_REQUEST = (
    "INSERT INTO requests (prompt_id, created_at, conversation_id, requested_model, model_used, "
    "provider, template_id, prompt, response, latency_ms, ttft_ms, prompt_tokens, "
    "completion_tokens, total_tokens, tokens_estimated, from_cache, fallback_used, status, "
    "error, error_kind, finish_reason, truncated, notice, source, demo) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def generate_history(store: Store, n: int, seed: int = 0, batch: int = 50_000) -> int:
    """Insert `n` synthetic requests (demo=1, source='synthetic') into `store`'s database,
    with the summary tables kept consistent; returns `n`.

    The data depend only on `seed` (ids are unique per call). Rows are spread over the last
    30 days; attempts rows are not generated.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a whole number >= 0; got {n!r}")
    conn = open_database(store.path)
    try:
        _insert(conn, n, seed, batch)
    finally:
        conn.close()
    return n


def _insert(conn: sqlite3.Connection, n: int, seed: int, batch: int) -> None:
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:12]  # ids must not collide with an earlier run of the same seed
    end = datetime.now(UTC).timestamp()
    step = 30 * 86400.0 / max(n, 1)
    done = 0
    while done < n:
        size = min(batch, n - done)
        deltas = SummaryDeltas()
        rows = _rows(rng, run, done, size, end - step * (n - done), step, deltas)
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(_INSERT_REQUEST, rows)
            deltas.write(conn)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        done += size


def _rows(
    rng: random.Random,
    run: str,
    first: int,
    size: int,
    start_ts: float,
    step: float,
    deltas: SummaryDeltas,
) -> list[tuple[Any, ...]]:
    """`size` request rows; their summary deltas are added to `deltas`."""
    # Hot loop for million-row benchmarks: locals only, one summary_rows() per row.
    rand = rng.random
    lognorm = rng.lognormvariate
    models = _MODELS
    k = len(models)
    log_medians = [math.log(m[2]) for m in models]
    from_ts = datetime.fromtimestamp
    rows: list[tuple[Any, ...]] = []
    append = rows.append
    for i in range(first, first + size):
        pick = int(rand() * k)
        model, provider, _median = models[pick]
        roll = rand()
        status = "ok" if roll < 0.92 else ("error" if roll < 0.98 else "cancelled")
        ok = status == "ok"
        from_cache = ok and rand() < 0.1
        fallback = not from_cache and rand() < 0.05
        requested = models[int(rand() * k)][0] if fallback else model
        if from_cache:
            latency = 0.4 + rand()
            ttft: float | None = latency
        else:
            latency = lognorm(log_medians[pick], 0.5)
            ttft = latency * (0.2 + 0.3 * rand()) if ok else None
        p_tok = 5 + int(rand() * 395)
        c_tok = 1 + int(rand() * 799) if ok else 0
        estimated = rand() < 0.2
        created = from_ts(start_ts + step * (i - first), UTC).isoformat(timespec="microseconds")
        key = model if ok else requested
        summary, hist_rows = summary_rows(
            status=status,
            model=key,
            latency_ms=latency,
            ttft_ms=ttft,
            from_cache=from_cache,
            fallback_used=fallback,
            prompt_tokens=p_tok,
            completion_tokens=c_tok,
            total_tokens=p_tok + c_tok,
            tokens_estimated=estimated,
        )
        tries = ((model, ok),) if status != "cancelled" and not from_cache else ()
        deltas.add(summary, hist_rows, created[:10], tries)
        append(
            (
                f"syn-{run}-{i:09d}",
                created,
                None,
                requested,
                model if ok else None,
                provider if ok else None,
                None,
                "synthetic prompt",
                "synthetic reply" if ok else "",
                latency,
                ttft,
                p_tok,
                c_tok,
                p_tok + c_tok,
                int(estimated),
                int(from_cache),
                int(fallback),
                status,
                None if ok else ("synthetic failure" if status == "error" else "cancelled"),
                None if ok else ("server_error" if status == "error" else "cancelled"),
                "stop" if ok else None,
                0,
                None,
                "synthetic",
                1,
            )
        )
    return rows
