"""Recording a finished Result: one SQLite transaction, then one line per log file."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from . import stats
from .logsinks import AppendLog
from .types import Result

_INSERT_REQUEST = (
    "INSERT OR IGNORE INTO requests (prompt_id, created_at, conversation_id, requested_model, "
    "model_used, provider, template_id, prompt, response, latency_ms, ttft_ms, prompt_tokens, "
    "completion_tokens, total_tokens, tokens_estimated, from_cache, fallback_used, status, "
    "error, error_kind, finish_reason, truncated, notice, source, demo) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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


def write_db(conn: sqlite3.Connection, result: Result) -> bool:
    """Insert the request, its attempts and its summary deltas in one transaction.

    Returns False (and changes nothing) when this prompt_id was already recorded.
    """
    usage = result.usage
    conn.execute("BEGIN IMMEDIATE")
    try:
        cur = conn.execute(
            _INSERT_REQUEST,
            (
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
            ),
        )
        if cur.rowcount == 0:
            conn.execute("ROLLBACK")
            return False
        if result.attempts:
            conn.executemany(
                _INSERT_ATTEMPT,
                [
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
                ],
            )
        summary, hist = stats.summary_rows(
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
        )
        conn.execute(stats.MODEL_STATS_UPSERT, summary)
        if hist:
            conn.executemany(stats.HIST_UPSERT, hist)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return True


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
    }


def write_logs(sinks: Sequence[AppendLog], row: dict[str, Any], kept: str) -> list[str]:
    """Append `row` to every sink; the warnings of those that failed."""
    warnings: list[str] = []
    for sink in sinks:
        warning = sink.append(row, kept)
        if warning is not None:
            warnings.append(warning)
    return warnings
