"""The last step of routing: a request's Result, and how results read in logs and errors."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from .catalog import Resolution
from .route_state import RouteRun
from .selection import Selection
from .types import Attempt, Result, ToolCall, Usage

_second_text: tuple[int, str] = (-1, "")


def now_iso() -> str:
    """UTC now as 2026-01-02T03:04:05.678Z (the text of a second is reused within it)."""
    global _second_text
    now = time.time()
    second = int(now)
    if _second_text[0] != second:
        _second_text = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{_second_text[1]}.{int((now - second) * 1000):03d}Z"


def build_result(
    run: RouteRun,
    selection: Selection,
    *,
    latency: float,
    demo: bool,
    status: Any,
    candidate: Resolution | None = None,
    text: str = "",
    usage: Usage | None = None,
    finish_reason: str | None = None,
    from_cache: bool = False,
    ttft: float | None = None,
    error: str | None = None,
    error_kind: str | None = None,
    tool_calls: list[ToolCall] | None = None,
) -> Result:
    """The Result of `run` (latency in ms); marks the run recorded."""
    prepared = run.prepared
    if status == "cancelled" and not text:
        text = "".join(run.partial)
    first = prepared.candidates[0]
    notice = prepared.notice
    truncated = finish_reason == "length"
    if truncated:
        cut = "the reply was cut at max_tokens (finish reason: length)"
        notice = f"{notice} {cut}" if notice else cut.capitalize()
    usage = usage or Usage()
    cost, cost_estimated, saved = selection.cost(
        candidate, usage, ok=status == "ok", from_cache=from_cache
    )
    result = Result(
        prompt_id=prepared.prompt_id,
        requested_model=prepared.requested_model,
        model_used=candidate.model if candidate else None,
        provider=candidate.provider if candidate else None,
        prompt=prepared.prompt,
        response_text=text,
        status=status,
        latency_ms=latency,
        ttft_ms=latency if from_cache else ttft,
        usage=usage,
        from_cache=from_cache,
        fallback_used=candidate is not None and candidate.key != first.key,
        attempts=list(run.attempts),
        created_at=now_iso(),
        finish_reason=finish_reason,
        truncated=truncated,
        template_id=prepared.template_id,
        conversation_id=prepared.conversation_id,
        notice=notice,
        error=error,
        error_kind=error_kind if status != "cancelled" else "cancelled",
        demo=demo,
        source=prepared.source,
        tool_calls=tool_calls or [],
        cost_usd=cost,
        cost_estimated=cost_estimated,
        saved_usd=saved,
        auto_reason=prepared.auto_reason,
        compare_id=prepared.compare_id,
    )
    run.recorded = True  # from here on, a cancel must not record a second result
    return result


def error_summary(run: RouteRun, reason: str) -> str:
    """`reason`, then what each attempt did (a failed request's error text)."""
    tried = "; ".join(
        f"{a.model}: {a.error or a.outcome}" + (f" ({a.message})" if a.message else "")
        for a in run.attempts
    )
    return f"{reason}. Attempts: {tried}" if tried else reason


def log_result(log: logging.Logger, result: Result) -> None:
    """One debug line per recorded request: what was routed where, never the text."""
    log.debug(
        "request %s: %s from %s (requested %s) in %.1f ms, %d attempt(s)%s%s",
        result.prompt_id,
        result.status,
        result.model_used or "no model",
        result.requested_model,
        result.latency_ms,
        len(result.attempts),
        ", from cache" if result.from_cache else "",
        f", {result.error_kind}" if result.error_kind else "",
        extra={
            "prompt_id": result.prompt_id,
            "status": result.status,
            "requested_model": result.requested_model,
            "model": result.model_used,
            "latency_ms": round(result.latency_ms, 1),
            "ttft_ms": None if result.ttft_ms is None else round(result.ttft_ms, 1),
            "attempts": len(result.attempts),
            "from_cache": result.from_cache,
            "fallback_used": result.fallback_used,
            "error_kind": result.error_kind,
            "source": result.source,
        },
    )


def attempts_text(attempts: Sequence[Attempt]) -> str:
    """One line per attempt, for terminals and error details."""
    lines = []
    for a in attempts:
        status = f" HTTP {a.status}" if a.status else ""
        reason = f": {a.message}" if a.message else ""
        lines.append(f"  {a.model} [{a.provider}] {a.outcome}{status} {a.ms:.0f} ms{reason}")
    return "\n".join(lines)
