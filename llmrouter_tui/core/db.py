"""The SQLite database under `<data_dir>/llmrouter.db`: opening it safely and migrating its schema.

The file is meant to be queried by people too (`sqlite3 llmrouter.db`, Datasette, …).
Schema version 6 (`PRAGMA user_version`; version 2 added the two `tool_calls` columns,
version 3 conversation branches, version 4 costs, daily summaries and preferences, version 5
circuit-breaker state shared by the processes on one data directory, version 6 the daily,
rating and preference summaries rebuilt from the recorded rows):

requests — one row per routed request, successful or not
    prompt_id TEXT PRIMARY KEY, created_at TEXT (UTC ISO-8601), conversation_id,
    requested_model, model_used, provider, template_id, prompt, response,
    latency_ms REAL, ttft_ms REAL, prompt_tokens, completion_tokens, total_tokens INTEGER,
    tokens_estimated, from_cache, fallback_used INTEGER (0/1),
    status TEXT ('ok'|'error'|'cancelled'), error, error_kind, finish_reason,
    truncated INTEGER (0/1), notice, source, demo INTEGER (0/1),
    tool_calls TEXT (JSON array of OpenAI-shaped tool calls the model asked for; NULL if none)
    indexes: created_at, conversation_id (non-NULL only)
attempts — every try at one model, in order
    prompt_id, idx (0-based), model, provider, outcome, status (HTTP), error, message,
    ms REAL, started_at REAL (epoch s); PRIMARY KEY (prompt_id, idx)
ratings — the latest rating per prompt (what stats use)
    prompt_id PRIMARY KEY, model, rating (1..5), feedback, created_at
rating_events — every rating ever given (history)
    id, prompt_id, model, rating, feedback, created_at
cache_entries — replies reusable for identical requests
    key PRIMARY KEY (see cache.cache_key), text, finish_reason, prompt_tokens,
    completion_tokens, total_tokens, tokens_estimated, model, provider,
    created_at REAL, expires_at REAL (NULL = never), tool_calls TEXT (as in requests)
conversations — TUI chats
    id PRIMARY KEY, title, model, system, temperature, max_tokens, created_at, updated_at,
    head_id INTEGER (version 3: the last message of the branch shown; NULL = none yet)
messages — the turns of a conversation
    id INTEGER PRIMARY KEY (order), conversation_id, role, content, prompt_id, created_at,
    parent_id INTEGER (version 3: the message this one follows; NULL = first; an edited
    prompt or a regenerated reply is a sibling, so older branches stay),
    status TEXT (version 3: 'ok'|'error'|'cancelled'; only 'ok' turns are sent as history)
    index (version 3): conversation_id, parent_id
model_stats — running totals per stats model (model_used for ok requests, requested_model
    otherwise), updated in the same transaction as each request row
    model PRIMARY KEY, requests, ok, errors, cancelled, cache_hits, fallbacks,
    latency_ms_sum, latency_n, ttft_ms_sum, ttft_n (ok requests only),
    prompt_tokens, completion_tokens, total_tokens, estimated_requests
latency_hist — log-spaced (5 %) histograms of ok requests per model
    model, kind ('latency'|'ttft'), bucket, n; PRIMARY KEY (model, kind, bucket)
    (bucket 0 = under 1 ms; bucket b >= 1 = [1.05**(b-1), 1.05**b) ms)

Version 4 (issue 14: auto, compare, leaderboard, cost):
requests gains cost_usd REAL (NULL = no price known, or not ok), cost_estimated (0/1: from
    estimated tokens), saved_usd REAL (cache hits: what the reply would have cost),
    auto_reason TEXT (why `auto` chose the model), compare_id TEXT (the two replies of one
    compare share it; indexed)
model_stats gains cost_usd, saved_usd, priced_requests (ok non-cached replies with a cost),
    cost_estimated_requests
daily_stats — the same running totals per UTC day and stats model, for recent evidence and
    spend per day: day (YYYY-MM-DD), model, requests, ok, errors, cancelled, cache_hits,
    prompt_tokens, completion_tokens, cost_usd, saved_usd, priced_requests,
    cost_estimated_requests, attempts_ok, attempts_failed (per attempt model: tries that
    answered / failed); PRIMARY KEY (day, model)
daily_hist — latency_hist per UTC day, for ok replies not served from the cache
    day, model, kind, bucket, n; PRIMARY KEY (day, model, kind, bucket)
rating_stats — sums of the latest ratings per template ('' = none) and model
    template_id, model, n, total, sumsq; PRIMARY KEY (template_id, model)
preferences — the latest preference per pair of replies (a compare)
    id, pair_key UNIQUE (the two prompt_ids, sorted, joined by '|'), compare_id, prompt_a,
    prompt_b, model_a, model_b, template_id (when both replies share it), outcome
    ('a'|'b'|'tie'|'both_bad'), feedback, created_at
preference_events — every preference ever given (history; same columns without pair_key)
preference_stats — preference counts per template ('' = none) and model pair (model_a <
    model_b; same-model pairs are not counted): a_wins, b_wins, ties, both_bad

Version 5 (issue 15: several workers on one data directory):
breaker_state — models a process found failing, so every process skips them until the
    cooldown ends: model PRIMARY KEY (provider:model), open_until REAL (epoch s; after it one
    probe per process is let through), opened_at REAL (epoch s), pid INTEGER (the process
    that opened it). A probe that succeeds deletes the row.

Version 6 (issue 15): no schema change. Version 4 created daily_stats, daily_hist and
    preference_stats empty, so an upgraded database showed no recent evidence or spend for
    its history: they and rating_stats are recomputed from requests, attempts, ratings and
    preferences as recording would have filled them (core.summary_rebuild; replaced, not
    added to, so a database whose summaries were filled live keeps its numbers).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from .errors import StorageError

DB_FILENAME = "llmrouter.db"
BUSY_TIMEOUT_S = 5.0
#: How long opening waits for another process that is migrating the same file.
MIGRATION_WAIT_S = 120.0

Migration = Sequence[str] | Callable[[sqlite3.Connection], None]

_V1: tuple[str, ...] = (
    """CREATE TABLE requests (
        prompt_id TEXT PRIMARY KEY,
        created_at TEXT NOT NULL,
        conversation_id TEXT,
        requested_model TEXT NOT NULL,
        model_used TEXT,
        provider TEXT,
        template_id TEXT,
        prompt TEXT NOT NULL,
        response TEXT NOT NULL,
        latency_ms REAL NOT NULL,
        ttft_ms REAL,
        prompt_tokens INTEGER NOT NULL DEFAULT 0,
        completion_tokens INTEGER NOT NULL DEFAULT 0,
        total_tokens INTEGER NOT NULL DEFAULT 0,
        tokens_estimated INTEGER NOT NULL DEFAULT 0,
        from_cache INTEGER NOT NULL DEFAULT 0,
        fallback_used INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL CHECK (status IN ('ok', 'error', 'cancelled')),
        error TEXT,
        error_kind TEXT,
        finish_reason TEXT,
        truncated INTEGER NOT NULL DEFAULT 0,
        notice TEXT,
        source TEXT,
        demo INTEGER NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX requests_created_at ON requests (created_at)",
    "CREATE INDEX requests_conversation ON requests (conversation_id) "
    "WHERE conversation_id IS NOT NULL",
    """CREATE TABLE attempts (
        prompt_id TEXT NOT NULL REFERENCES requests (prompt_id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        model TEXT NOT NULL,
        provider TEXT,
        outcome TEXT NOT NULL,
        status INTEGER,
        error TEXT,
        message TEXT,
        ms REAL NOT NULL DEFAULT 0,
        started_at REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (prompt_id, idx)
    ) WITHOUT ROWID""",
    """CREATE TABLE ratings (
        prompt_id TEXT PRIMARY KEY REFERENCES requests (prompt_id) ON DELETE CASCADE,
        model TEXT NOT NULL,
        rating INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
        feedback TEXT,
        created_at TEXT NOT NULL
    )""",
    "CREATE INDEX ratings_model_rating ON ratings (model, rating)",
    """CREATE TABLE rating_events (
        id INTEGER PRIMARY KEY,
        prompt_id TEXT NOT NULL,
        model TEXT NOT NULL,
        rating INTEGER NOT NULL,
        feedback TEXT,
        created_at TEXT NOT NULL
    )""",
    "CREATE INDEX rating_events_prompt ON rating_events (prompt_id)",
    """CREATE TABLE cache_entries (
        key TEXT PRIMARY KEY,
        text TEXT NOT NULL,
        finish_reason TEXT,
        prompt_tokens INTEGER NOT NULL DEFAULT 0,
        completion_tokens INTEGER NOT NULL DEFAULT 0,
        total_tokens INTEGER NOT NULL DEFAULT 0,
        tokens_estimated INTEGER NOT NULL DEFAULT 0,
        model TEXT NOT NULL,
        provider TEXT,
        created_at REAL NOT NULL,
        expires_at REAL
    )""",
    "CREATE INDEX cache_entries_expires ON cache_entries (expires_at)",
    """CREATE TABLE conversations (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        model TEXT,
        system TEXT,
        temperature REAL,
        max_tokens INTEGER,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
    "CREATE INDEX conversations_updated ON conversations (updated_at)",
    """CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        role TEXT NOT NULL,
        content TEXT NOT NULL,
        prompt_id TEXT,
        created_at TEXT NOT NULL
    )""",
    "CREATE INDEX messages_conversation ON messages (conversation_id, id)",
    """CREATE TABLE model_stats (
        model TEXT PRIMARY KEY,
        requests INTEGER NOT NULL DEFAULT 0,
        ok INTEGER NOT NULL DEFAULT 0,
        errors INTEGER NOT NULL DEFAULT 0,
        cancelled INTEGER NOT NULL DEFAULT 0,
        cache_hits INTEGER NOT NULL DEFAULT 0,
        fallbacks INTEGER NOT NULL DEFAULT 0,
        latency_ms_sum REAL NOT NULL DEFAULT 0,
        latency_n INTEGER NOT NULL DEFAULT 0,
        ttft_ms_sum REAL NOT NULL DEFAULT 0,
        ttft_n INTEGER NOT NULL DEFAULT 0,
        prompt_tokens INTEGER NOT NULL DEFAULT 0,
        completion_tokens INTEGER NOT NULL DEFAULT 0,
        total_tokens INTEGER NOT NULL DEFAULT 0,
        estimated_requests INTEGER NOT NULL DEFAULT 0
    )""",
    """CREATE TABLE latency_hist (
        model TEXT NOT NULL,
        kind TEXT NOT NULL,
        bucket INTEGER NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (model, kind, bucket)
    ) WITHOUT ROWID""",
)

# Tool calls (issue 11): what the model asked for, recorded and cached with the reply.
_V2: tuple[str, ...] = (
    "ALTER TABLE requests ADD COLUMN tool_calls TEXT",
    "ALTER TABLE cache_entries ADD COLUMN tool_calls TEXT",
)


def _v3_conversation_branches(conn: sqlite3.Connection) -> None:
    """Conversations become trees (issue 13): edit-and-resend and regenerate add siblings.

    Existing rows are linked as they were shown: each message follows the previous one,
    except that a reply right after another reply (a regeneration) is its sibling.
    """
    conn.execute("ALTER TABLE messages ADD COLUMN parent_id INTEGER")
    conn.execute("ALTER TABLE messages ADD COLUMN status TEXT NOT NULL DEFAULT 'ok'")
    conn.execute("ALTER TABLE conversations ADD COLUMN head_id INTEGER")
    conn.execute("CREATE INDEX messages_parent ON messages (conversation_id, parent_id)")
    rows = conn.execute(
        "SELECT id, conversation_id, role FROM messages ORDER BY conversation_id, id"
    ).fetchall()
    links: list[tuple[int | None, int]] = []
    heads: dict[str, int] = {}
    tail: int | None = None
    last_user: int | None = None
    previous_role = ""
    current: str | None = None
    for message_id, conversation_id, role in rows:
        if conversation_id != current:
            current, tail, last_user, previous_role = conversation_id, None, None, ""
        regenerated = role == "assistant" and previous_role == "assistant"
        parent = last_user if regenerated else tail
        links.append((parent, message_id))
        if role == "user":
            last_user = message_id
        tail, previous_role = message_id, role
        heads[conversation_id] = message_id
    conn.executemany("UPDATE messages SET parent_id = ? WHERE id = ?", links)
    conn.executemany(
        "UPDATE conversations SET head_id = ? WHERE id = ?",
        [(head, conversation_id) for conversation_id, head in heads.items()],
    )


# Choosing models from evidence (issue 14): cost per reply, daily summaries for recent
# speed, reliability and spend, rating and preference summaries, pairwise preferences.
_V4: tuple[str, ...] = (
    "ALTER TABLE requests ADD COLUMN cost_usd REAL",
    "ALTER TABLE requests ADD COLUMN cost_estimated INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE requests ADD COLUMN saved_usd REAL",
    "ALTER TABLE requests ADD COLUMN auto_reason TEXT",
    "ALTER TABLE requests ADD COLUMN compare_id TEXT",
    "CREATE INDEX requests_compare ON requests (compare_id) WHERE compare_id IS NOT NULL",
    "ALTER TABLE model_stats ADD COLUMN cost_usd REAL NOT NULL DEFAULT 0",
    "ALTER TABLE model_stats ADD COLUMN saved_usd REAL NOT NULL DEFAULT 0",
    "ALTER TABLE model_stats ADD COLUMN priced_requests INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE model_stats ADD COLUMN cost_estimated_requests INTEGER NOT NULL DEFAULT 0",
    """CREATE TABLE daily_stats (
        day TEXT NOT NULL,
        model TEXT NOT NULL,
        requests INTEGER NOT NULL DEFAULT 0,
        ok INTEGER NOT NULL DEFAULT 0,
        errors INTEGER NOT NULL DEFAULT 0,
        cancelled INTEGER NOT NULL DEFAULT 0,
        cache_hits INTEGER NOT NULL DEFAULT 0,
        prompt_tokens INTEGER NOT NULL DEFAULT 0,
        completion_tokens INTEGER NOT NULL DEFAULT 0,
        cost_usd REAL NOT NULL DEFAULT 0,
        saved_usd REAL NOT NULL DEFAULT 0,
        priced_requests INTEGER NOT NULL DEFAULT 0,
        cost_estimated_requests INTEGER NOT NULL DEFAULT 0,
        attempts_ok INTEGER NOT NULL DEFAULT 0,
        attempts_failed INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (day, model)
    ) WITHOUT ROWID""",
    """CREATE TABLE daily_hist (
        day TEXT NOT NULL,
        model TEXT NOT NULL,
        kind TEXT NOT NULL,
        bucket INTEGER NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (day, model, kind, bucket)
    ) WITHOUT ROWID""",
    """CREATE TABLE rating_stats (
        template_id TEXT NOT NULL,
        model TEXT NOT NULL,
        n INTEGER NOT NULL DEFAULT 0,
        total REAL NOT NULL DEFAULT 0,
        sumsq REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (template_id, model)
    ) WITHOUT ROWID""",
    "INSERT INTO rating_stats (template_id, model, n, total, sumsq) "
    "SELECT coalesce(q.template_id, ''), r.model, count(*), sum(r.rating), "
    "sum(r.rating * r.rating) FROM ratings r LEFT JOIN requests q ON q.prompt_id = r.prompt_id "
    "GROUP BY 1, 2",
    """CREATE TABLE preferences (
        id INTEGER PRIMARY KEY,
        pair_key TEXT NOT NULL UNIQUE,
        compare_id TEXT,
        prompt_a TEXT NOT NULL,
        prompt_b TEXT NOT NULL,
        model_a TEXT NOT NULL,
        model_b TEXT NOT NULL,
        template_id TEXT,
        outcome TEXT NOT NULL CHECK (outcome IN ('a', 'b', 'tie', 'both_bad')),
        feedback TEXT,
        created_at TEXT NOT NULL
    )""",
    """CREATE TABLE preference_events (
        id INTEGER PRIMARY KEY,
        compare_id TEXT,
        prompt_a TEXT NOT NULL,
        prompt_b TEXT NOT NULL,
        model_a TEXT NOT NULL,
        model_b TEXT NOT NULL,
        template_id TEXT,
        outcome TEXT NOT NULL,
        feedback TEXT,
        created_at TEXT NOT NULL
    )""",
    "CREATE INDEX preference_events_pair ON preference_events (prompt_a, prompt_b)",
    """CREATE TABLE preference_stats (
        template_id TEXT NOT NULL,
        model_a TEXT NOT NULL,
        model_b TEXT NOT NULL,
        a_wins INTEGER NOT NULL DEFAULT 0,
        b_wins INTEGER NOT NULL DEFAULT 0,
        ties INTEGER NOT NULL DEFAULT 0,
        both_bad INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (template_id, model_a, model_b)
    ) WITHOUT ROWID""",
)

# Several workers on one data directory (issue 15): one process's open circuit is everyone's.
_V5: tuple[str, ...] = (
    """CREATE TABLE breaker_state (
        model TEXT PRIMARY KEY,
        open_until REAL NOT NULL,
        opened_at REAL NOT NULL,
        pid INTEGER
    ) WITHOUT ROWID""",
)


def _v6_rebuild_summaries(conn: sqlite3.Connection) -> None:
    """Fill the summaries version 4 left empty for the history it found (issue 15)."""
    # Imported here: it needs the recording rules (core.policy pulls in the config), and
    # opening an up-to-date database should not.
    from .summary_rebuild import rebuild

    rebuild(conn)


#: Migration i brings the schema from version i to i + 1. Append only; never edit a shipped one.
MIGRATIONS: list[Migration] = [
    _V1,
    _V2,
    _v3_conversation_branches,
    _V4,
    _V5,
    _v6_rebuild_summaries,
]
SCHEMA_VERSION = len(MIGRATIONS)


def utc_now_iso() -> str:
    """The current UTC time as ISO-8601 with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _corrupt_message(path: Path, exc: BaseException) -> str:
    return (
        f"{path} cannot be read as an llmrouter database ({exc}). "
        f"Move it aside (for example rename it to {path.name}.broken) and restart; "
        "a new empty database will be created. Nothing was deleted."
    )


def storage_error(path: Path, exc: sqlite3.Error, doing: str) -> StorageError:
    """A StorageError for a SQLite failure that says which file and what to do."""
    name = getattr(exc, "sqlite_errorname", "")
    if name in ("SQLITE_NOTADB", "SQLITE_CORRUPT") or type(exc) is sqlite3.DatabaseError:
        return StorageError(_corrupt_message(path, exc))
    if name.startswith("SQLITE_BUSY") or "locked" in str(exc):
        return StorageError(
            f"could not {doing} {path}: {exc} (another process kept it busy for more than "
            f"{BUSY_TIMEOUT_S:g} s). Try again; if it persists, stop other llmrouter-tui processes."
        )
    return StorageError(
        f"could not {doing} {path}: {exc}. Check that the disk has space and that the "
        "file and its directory are writable."
    )


def open_database(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) and migrate the database at `path`.

    Raises StorageError naming the file when it is unreadable, corrupt, locked for too long,
    or from a newer llmrouter-tui. The file is never deleted or overwritten.
    """
    if not path.exists():
        # Chat logs are private: create the file 0600 before SQLite creates it with umask bits.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            pass
        except OSError as exc:
            raise StorageError(
                f"cannot create {path}: {exc.strerror or exc}. "
                "Choose a writable data directory or fix its permissions."
            ) from exc
        else:
            try:
                os.fchmod(fd, 0o600)
            finally:
                os.close(fd)
    try:
        conn = sqlite3.connect(
            path,
            timeout=BUSY_TIMEOUT_S,
            isolation_level=None,  # autocommit; transactions are explicit BEGIN IMMEDIATE
            check_same_thread=False,  # the Store serialises use with its own lock
            cached_statements=256,
        )
    except sqlite3.Error as exc:
        raise storage_error(path, exc, "open") from exc
    try:
        # Reading page 1 first proves the file is a database before anything writes to it.
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        _use_wal(conn)
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        migrate(conn, path)
    except sqlite3.Error as exc:
        conn.close()
        raise storage_error(path, exc, "open") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL. While another process is creating the file or switching it, SQLite
    answers "database is locked" at once (its busy handler does not run here): retry."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL").fetchone()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def _newer_error(path: Path, version: int) -> StorageError:
    return StorageError(
        f"{path} was written by a newer llmrouter-tui (schema version {version}; this version "
        f"understands up to {SCHEMA_VERSION}). Upgrade llmrouter-tui, or use a different "
        "data directory. Nothing was changed."
    )


def _begin_migration(conn: sqlite3.Connection) -> None:
    """Take the write lock, waiting up to MIGRATION_WAIT_S: another process may be applying
    the same migrations, and rebuilding the summaries of a long history takes seconds
    (BENCHMARKS.md), more than an ordinary write is allowed to wait."""
    previous: int = conn.execute("PRAGMA busy_timeout").fetchone()[0]
    conn.execute(f"PRAGMA busy_timeout = {int(MIGRATION_WAIT_S * 1000)}")
    try:
        conn.execute("BEGIN IMMEDIATE")
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(previous)}")


def migrate(
    conn: sqlite3.Connection, path: Path, migrations: Sequence[Migration] | None = None
) -> int:
    """Apply the migrations above the file's `user_version` in one transaction; return it."""
    steps = MIGRATIONS if migrations is None else migrations
    target = len(steps)
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > target:
        raise _newer_error(path, version)
    if version == target:
        return version
    _begin_migration(conn)
    try:
        # Re-read under the write lock: another process may have migrated meanwhile.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > target:
            raise _newer_error(path, version)
        for step in steps[version:]:
            if callable(step):
                step(conn)
            else:
                for statement in step:
                    conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {int(target)}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return target
