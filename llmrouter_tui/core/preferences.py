"""Pairwise preferences between two recorded replies (the two sides of a compare).

A preference names two prompt_ids and an outcome: "a" (the first reply was better), "b",
"tie", or "both_bad". The latest preference per pair of replies counts (voting again on the
same pair replaces it, in either order); every vote is kept in `preference_events`. The
`preference_stats` summary (counts per template and model pair) is updated in the same
transaction: the leaderboard and `auto` read it, never the preferences themselves.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Literal

from .db import utc_now_iso
from .errors import InputError, UnknownPromptError
from .textcheck import require_valid_text

Outcome = Literal["a", "b", "tie", "both_bad"]
OUTCOMES: tuple[str, ...] = ("a", "b", "tie", "both_bad")

_REQUEST = (
    "SELECT model_used, requested_model, template_id, compare_id FROM requests WHERE prompt_id = ?"
)
_PREVIOUS = "SELECT model_a, model_b, template_id, outcome FROM preferences WHERE pair_key = ?"
_UPSERT = (
    "INSERT INTO preferences (pair_key, compare_id, prompt_a, prompt_b, model_a, model_b, "
    "template_id, outcome, feedback, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (pair_key) DO UPDATE SET compare_id = excluded.compare_id, "
    "prompt_a = excluded.prompt_a, prompt_b = excluded.prompt_b, model_a = excluded.model_a, "
    "model_b = excluded.model_b, template_id = excluded.template_id, "
    "outcome = excluded.outcome, feedback = excluded.feedback, created_at = excluded.created_at"
)
_HISTORY = (
    "INSERT INTO preference_events (compare_id, prompt_a, prompt_b, model_a, model_b, "
    "template_id, outcome, feedback, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_STATS_ADD = (
    "INSERT INTO preference_stats (template_id, model_a, model_b, a_wins, b_wins, ties, "
    "both_bad) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (template_id, model_a, model_b) DO "
    "UPDATE SET a_wins = a_wins + excluded.a_wins, b_wins = b_wins + excluded.b_wins, "
    "ties = ties + excluded.ties, both_bad = both_bad + excluded.both_bad"
)
_KEYS = (
    "compare_id",
    "prompt_a",
    "prompt_b",
    "model_a",
    "model_b",
    "template_id",
    "outcome",
    "feedback",
    "created_at",
)
_SWAPPED = {"a": "b", "b": "a", "tie": "tie", "both_bad": "both_bad"}
_COLUMN = {"a": 0, "b": 1, "tie": 2, "both_bad": 3}


def pair_key(prompt_a: str, prompt_b: str) -> str:
    """The same for (a, b) and (b, a)."""
    low, high = sorted((prompt_a, prompt_b))
    return f"{low}|{high}"


def validate(prompt_a: object, prompt_b: object, outcome: object, feedback: object) -> str:
    """The outcome, or InputError saying what was given and what is allowed."""
    for name, value in (("prompt_a", prompt_a), ("prompt_b", prompt_b)):
        if not isinstance(value, str) or not value:
            raise InputError(f"{name} must be the prompt_id of a recorded reply; got {value!r}")
    if prompt_a == prompt_b:
        raise InputError("a preference compares two different replies; both prompt_ids are equal")
    if not isinstance(outcome, str) or outcome not in OUTCOMES:
        raise InputError(
            f"outcome must be one of {', '.join(OUTCOMES)} (a: the first reply is better, b: "
            f"the second, tie, both_bad); got {outcome!r}"
        )
    if feedback is not None and not isinstance(feedback, str):
        raise InputError(f"feedback must be text or omitted; got {type(feedback).__name__}")
    require_valid_text({"prompt_a": prompt_a, "prompt_b": prompt_b, "feedback": feedback}, "")
    return outcome


def _count(
    conn: sqlite3.Connection,
    template_id: str | None,
    model_a: str,
    model_b: str,
    outcome: str,
    sign: int,
) -> None:
    """Add (sign 1) or take out (sign -1) one vote in preference_stats."""
    if model_a == model_b:
        return  # the same model on both sides says nothing about which model is better
    if model_a > model_b:
        model_a, model_b, outcome = model_b, model_a, _SWAPPED[outcome]
    deltas = [0, 0, 0, 0]
    deltas[_COLUMN[outcome]] = sign
    conn.execute(_STATS_ADD, (template_id or "", model_a, model_b, *deltas))


def prefer(
    conn: sqlite3.Connection,
    prompt_a: str,
    prompt_b: str,
    outcome: str,
    feedback: str | None = None,
    compare_id: str | None = None,
) -> dict[str, Any]:
    """Store the preference between two recorded replies; return its record."""
    outcome = validate(prompt_a, prompt_b, outcome, feedback)
    if compare_id is not None and not isinstance(compare_id, str):
        raise InputError(f"compare_id must be text or omitted; got {type(compare_id).__name__}")
    conn.execute("BEGIN IMMEDIATE")
    try:
        rows = []
        for prompt_id in (prompt_a, prompt_b):
            row = conn.execute(_REQUEST, (prompt_id,)).fetchone()
            if row is None:
                raise UnknownPromptError(
                    f"no recorded request has prompt_id {prompt_id!r}; compare two prompt_ids "
                    "returned with replies"
                )
            rows.append(row)
        (used_a, asked_a, template_a, compare_a), (used_b, asked_b, template_b, compare_b) = rows
        record = {
            "compare_id": compare_id or (compare_a if compare_a == compare_b else None),
            "prompt_a": prompt_a,
            "prompt_b": prompt_b,
            "model_a": used_a or asked_a,
            "model_b": used_b or asked_b,
            "template_id": template_a if template_a == template_b else None,
            "outcome": outcome,
            "feedback": feedback,
            "created_at": utc_now_iso(),
        }
        key = pair_key(prompt_a, prompt_b)
        previous = conn.execute(_PREVIOUS, (key,)).fetchone()
        if previous is not None:  # voting again on the same pair replaces the vote
            old_a, old_b, old_template, old_outcome = previous
            _count(conn, old_template, old_a, old_b, old_outcome, -1)
        values = tuple(record[k] for k in _KEYS)
        conn.execute(_UPSERT, (key, *values))
        conn.execute(_HISTORY, values)
        _count(conn, record["template_id"], record["model_a"], record["model_b"], outcome, 1)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return {**record, "winner": winner(record)}


def winner(record: dict[str, Any]) -> str | None:
    """The preferred model, or None for a tie or both bad."""
    return {"a": record["model_a"], "b": record["model_b"]}.get(record["outcome"])


def get(conn: sqlite3.Connection, prompt_a: str, prompt_b: str) -> dict[str, Any] | None:
    """The latest preference between two replies (in either order), if any."""
    row = conn.execute(
        f"SELECT {', '.join(_KEYS)} FROM preferences WHERE pair_key = ?",
        (pair_key(prompt_a, prompt_b),),
    ).fetchone()
    if row is None:
        return None
    record = dict(zip(_KEYS, row, strict=True))
    return {**record, "winner": winner(record)}


def log_row(record: dict[str, Any]) -> dict[str, Any]:
    """The preferences.jsonl / preferences.csv record (keys as in PREFERENCE_FIELDS)."""
    return {
        "timestamp": record["created_at"],
        "compare_id": record["compare_id"],
        "prompt_a": record["prompt_a"],
        "prompt_b": record["prompt_b"],
        "model_a": record["model_a"],
        "model_b": record["model_b"],
        "template_id": record["template_id"],
        "outcome": record["outcome"],
        "winner": record["winner"],
        "feedback": record["feedback"],
    }
