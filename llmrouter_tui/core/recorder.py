"""Recording finished Results: one SQLite transaction, then one write per log file, for a
whole batch of requests at once."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import cache, stats
from .cache import CachedReply
from .logsinks import AppendLog
from .policy import NOT_HEALTH
from .types import Result

_INSERT_REQUEST = (
    "INSERT OR IGNORE INTO requests (prompt_id, created_at, conversation_id, requested_model, "
    "model_used, provider, template_id, prompt, response, latency_ms, ttft_ms, prompt_tokens, "
    "completion_tokens, total_tokens, tokens_estimated, from_cache, fallback_used, status, "
    "error, error_kind, finish_reason, truncated, notice, source, demo, tool_calls, cost_usd, "
    "cost_estimated, saved_usd, auto_reason, compare_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
    "?, ?, ?)"
)
_INSERT_ATTEMPT = (
    "INSERT INTO attempts (prompt_id, idx, model, provider, outcome, status, error, message, "
    "ms, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _text(value: str | None) -> str | None:
    """`value`, with lone surrogates (undecodable provider bytes) replaced so SQLite takes it."""
    if value is None:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace").decode("utf-8")
    return value


@dataclass(frozen=True, slots=True)
class CacheWrite:
    """A reply to store in the cache in the same transaction as its request row."""

    key: str
    reply: CachedReply
    ttl_s: float


def _request_row(result: Result) -> tuple[Any, ...]:
    usage = result.usage
    return (
        result.prompt_id,
        result.created_at,
        result.conversation_id,
        result.requested_model,
        result.model_used,
        result.provider,
        result.template_id,
        _text(result.prompt),
        _text(result.response_text),
        float(result.latency_ms),
        None if result.ttft_ms is None else float(result.ttft_ms),
        usage.prompt,
        usage.completion,
        usage.total,
        int(usage.estimated),
        int(result.from_cache),
        int(result.fallback_used),
        result.status,
        _text(result.error),
        result.error_kind,
        result.finish_reason,
        int(result.truncated),
        _text(result.notice),
        result.source,
        int(result.demo),
        _text(cache.tool_calls_json(result.tool_calls)),
        result.cost_usd,
        int(result.cost_estimated),
        result.saved_usd,
        _text(result.auto_reason),
        result.compare_id,
    )


def _summary(result: Result) -> tuple[tuple[Any, ...], list[tuple[str, str, int, int]]]:
    usage = result.usage
    return stats.summary_rows(
        status=result.status,
        model=stats.stats_model(result.status, result.model_used, result.requested_model),
        latency_ms=float(result.latency_ms),
        ttft_ms=None if result.ttft_ms is None else float(result.ttft_ms),
        from_cache=result.from_cache,
        fallback_used=result.fallback_used,
        prompt_tokens=usage.prompt,
        completion_tokens=usage.completion,
        total_tokens=usage.total,
        tokens_estimated=usage.estimated,
        cost_usd=result.cost_usd,
        saved_usd=result.saved_usd,
        cost_estimated=result.cost_estimated,
    )


# Attempt outcomes that count for a model's recent reliability (skips say nothing about it).
_ANSWERED = frozenset({"ok", "continued"})
_FAILED = frozenset({"error", "timeout"})


def _tries(result: Result) -> list[tuple[str, bool]]:
    """(model, answered) for each attempt that reached a provider; failures that are not the
    model's (the caller's bad request, a content filter, a context too long) do not count."""
    return [
        (a.model, a.outcome in _ANSWERED)
        for a in result.attempts
        if a.outcome in _ANSWERED or (a.outcome in _FAILED and a.error not in NOT_HEALTH)
    ]


def write_db(
    conn: sqlite3.Connection,
    results: Sequence[Result],
    cache_writes: Sequence[CacheWrite] = (),
    *,
    purge_cache: bool = False,
) -> list[bool]:
    """Insert requests, their attempts, their summary deltas and cache entries in one
    transaction (all or nothing).

    Returns, per result, False when its prompt_id was already recorded (that one changes
    nothing). One transaction for a whole batch is what makes recording cheap under load: a
    commit costs several times an insert.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        fresh: list[bool] = []
        deltas = stats.SummaryDeltas()
        attempts: list[tuple[Any, ...]] = []
        for result in results:
            if conn.execute(_INSERT_REQUEST, _request_row(result)).rowcount == 0:
                fresh.append(False)
                continue
            fresh.append(True)
            attempts.extend(
                (
                    result.prompt_id,
                    idx,
                    a.model,
                    a.provider,
                    a.outcome,
                    a.status,
                    a.error,
                    _text(a.message),
                    float(a.ms),
                    float(a.started_at),
                )
                for idx, a in enumerate(result.attempts)
            )
            deltas.add(*_summary(result), result.created_at[:10], _tries(result))
        if attempts:
            conn.executemany(_INSERT_ATTEMPT, attempts)
        deltas.write(conn)
        for write in cache_writes:
            cache.put(conn, write.key, write.reply, write.ttl_s)
        if purge_cache:
            cache.purge_expired(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return fresh


def log_row(result: Result) -> dict[str, Any]:
    """The prompts.jsonl / prompts.csv record of a result (keys as in PROMPT_FIELDS)."""
    usage = result.usage
    return {
        "timestamp": result.created_at,
        "prompt_id": result.prompt_id,
        "conversation_id": result.conversation_id,
        "requested_model": result.requested_model,
        "model_used": result.model_used,
        "provider": result.provider,
        "template_id": result.template_id,
        "prompt": result.prompt,
        "response": result.response_text,
        "latency_ms": round(float(result.latency_ms), 3),
        "ttft_ms": None if result.ttft_ms is None else round(float(result.ttft_ms), 3),
        "prompt_tokens": usage.prompt,
        "completion_tokens": usage.completion,
        "total_tokens": usage.total,
        "tokens_estimated": usage.estimated,
        "from_cache": result.from_cache,
        "fallback_used": result.fallback_used,
        "attempts": [a.as_dict() for a in result.attempts],
        "status": result.status,
        "error": result.error,
        "finish_reason": result.finish_reason,
        "truncated": result.truncated,
        "notice": result.notice,
        "source": result.source,
        "tool_calls": [call.as_dict() for call in result.tool_calls],
        "cost_usd": result.cost_usd,
        "cost_estimated": result.cost_estimated,
        "saved_usd": result.saved_usd,
        "auto_reason": result.auto_reason,
        "compare_id": result.compare_id,
    }


def write_logs(
    sinks: Sequence[AppendLog], rows: Sequence[dict[str, Any]], kept: str
) -> tuple[list[str], dict[int, list[str]]]:
    """Append `rows` to every sink (one write per sink).

    Returns the warnings of the sinks that failed (they concern every row) and, by row
    position, the warnings of rows that could not be formatted (they concern that row only:
    the other rows are written without it).
    """
    warnings: list[str] = []
    row_warnings: dict[int, list[str]] = {}
    if not rows:
        return warnings, row_warnings
    for sink in sinks:
        chunks: list[bytes] = []
        for position, row in enumerate(rows):
            try:
                chunks.append(sink.format(row))
            except Exception as exc:
                row_warnings.setdefault(position, []).append(
                    f"could not write the record to {sink.path}: {exc}; {kept}"
                )
        warning = sink.append_formatted(b"".join(chunks), kept) if chunks else None
        if warning is not None:
            warnings.append(warning)
    return warnings, row_warnings
