"""Ratings of recorded replies: the latest per prompt (used by stats) plus the full history."""

from __future__ import annotations

import sqlite3
from typing import Any

from .db import utc_now_iso
from .errors import InputError, UnknownPromptError
from .textcheck import require_valid_text

_REQUEST_MODEL = "SELECT model_used, requested_model, template_id FROM requests WHERE prompt_id = ?"
_PREVIOUS = "SELECT model, rating FROM ratings WHERE prompt_id = ?"
# rating_stats: sums of the latest ratings per template ('' = none) and model (auto, leaderboard).
_STATS_ADD = (
    "INSERT INTO rating_stats (template_id, model, n, total, sumsq) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (template_id, model) DO UPDATE SET n = n + excluded.n, "
    "total = total + excluded.total, sumsq = sumsq + excluded.sumsq"
)
_UPSERT = (
    "INSERT INTO ratings (prompt_id, model, rating, feedback, created_at) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (prompt_id) DO UPDATE SET model = excluded.model, "
    "rating = excluded.rating, feedback = excluded.feedback, created_at = excluded.created_at"
)
_HISTORY = (
    "INSERT INTO rating_events (prompt_id, model, rating, feedback, created_at) "
    "VALUES (?, ?, ?, ?, ?)"
)
_GET = "SELECT prompt_id, model, rating, feedback, created_at FROM ratings WHERE prompt_id = ?"
_KEYS = ("prompt_id", "model", "rating", "feedback", "created_at")


def validate(rating: object, feedback: object, model: object) -> int:
    """The rating as an int 1..5, or InputError saying what was given and what is allowed."""
    # bool is an int subclass, and "5" is text: both are refused so clients send real numbers.
    if type(rating) is not int or not 1 <= rating <= 5:
        raise InputError(
            f"rating must be a whole number from 1 to 5; got {rating!r} ({type(rating).__name__})"
        )
    if feedback is not None and not isinstance(feedback, str):
        raise InputError(f"feedback must be text or omitted; got {type(feedback).__name__}")
    if model is not None and (not isinstance(model, str) or not model):
        raise InputError(f"model must be a non-empty model id or omitted; got {model!r}")
    require_valid_text({"feedback": feedback, "model": model}, "")
    return rating


def rate(
    conn: sqlite3.Connection,
    prompt_id: str,
    rating: object,
    feedback: str | None = None,
    model: str | None = None,
) -> dict[str, Any]:
    """Store `rating` as the latest for `prompt_id` and append it to the history."""
    score = validate(rating, feedback, model)
    require_valid_text(prompt_id, "prompt_id")
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute(_REQUEST_MODEL, (prompt_id,)).fetchone()
        if row is None:
            raise UnknownPromptError(
                f"no recorded request has prompt_id {prompt_id!r}; rate a prompt_id returned "
                "with a reply"
            )
        record = {
            "prompt_id": prompt_id,
            "model": model or row[0] or row[1],
            "rating": score,
            "feedback": feedback,
            "created_at": utc_now_iso(),
        }
        values = tuple(record[k] for k in _KEYS)
        template = row[2] or ""
        previous = conn.execute(_PREVIOUS, (prompt_id,)).fetchone()
        if previous is not None:  # re-rating replaces the latest: take the old one out
            old_model, old = previous
            conn.execute(_STATS_ADD, (template, old_model, -1, -old, -old * old))
        conn.execute(_STATS_ADD, (template, record["model"], 1, score, score * score))
        conn.execute(_UPSERT, values)
        conn.execute(_HISTORY, values)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return record


def get(conn: sqlite3.Connection, prompt_id: str) -> dict[str, Any] | None:
    """The latest rating of `prompt_id`, if any."""
    row = conn.execute(_GET, (prompt_id,)).fetchone()
    return None if row is None else dict(zip(_KEYS, row, strict=True))


def history(conn: sqlite3.Connection, prompt_id: str) -> list[dict[str, Any]]:
    """Every rating `prompt_id` was given, oldest first."""
    rows = conn.execute(
        "SELECT prompt_id, model, rating, feedback, created_at FROM rating_events "
        "WHERE prompt_id = ? ORDER BY id",
        (prompt_id,),
    ).fetchall()
    return [dict(zip(_KEYS, row, strict=True)) for row in rows]


def log_row(record: dict[str, Any]) -> dict[str, Any]:
    """The ratings.jsonl / ratings.csv record (keys as in RATING_FIELDS)."""
    return {
        "timestamp": record["created_at"],
        "prompt_id": record["prompt_id"],
        "model": record["model"],
        "rating": record["rating"],
        "feedback": record["feedback"],
    }
