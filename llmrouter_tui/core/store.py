"""`Store`: the one storage object the router, the server and the TUI share.

It owns `<data_dir>/llmrouter.db` (schema in `core.db`) and the append-only logs under
`<data_dir>/logs/` (prompts, ratings and preferences, each .jsonl and .csv). Several
processes may use the same data dir at once; within a process one Store may be used from an
asyncio loop and worker threads at the same time.

Two connections: writes (records, ratings, preferences, cache entries, breaker state) go
through `_write_conn`, normally on the Store's writer thread (`core.writer`), so a write
waiting for another process's lock never holds up reads; reads use `_conn`, which in WAL mode
never waits for a writer.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from . import cache as _cache
from . import evidence as _evidence
from . import preferences as _preferences
from . import ratings as _ratings
from . import recorder
from . import stats as _stats
from .auto import Evidence
from .breaker_board import REFRESH_S, BreakerBoard
from .cache import CachedReply
from .callbacks import call_safely
from .conversations import Conversations, register_functions
from .db import DB_FILENAME, open_database, storage_error
from .errors import StorageError
from .leaderboard import LeaderboardRow
from .logsinks import PREFERENCE_FIELDS, PROMPT_FIELDS, RATING_FIELDS, AppendLog
from .recorder import CacheWrite
from .types import Result
from .writer import Writer

_BOOL_COLUMNS = frozenset(
    {"tokens_estimated", "from_cache", "fallback_used", "truncated", "demo", "cost_estimated"}
)
_PURGE_EVERY = 500  # cache puts between sweeps of expired entries
_MAX_WARNINGS = 100
_log = logging.getLogger(__name__)


class Store:
    """SQLite database + log files under one data directory."""

    def __init__(self, data_dir: Path | str) -> None:
        self._data_dir = Path(data_dir).expanduser()
        self._logs_dir = self._data_dir / "logs"
        self._path = self._data_dir / DB_FILENAME
        try:
            self._data_dir.mkdir(parents=True, exist_ok=True)
            self._logs_dir.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"cannot use data directory {self._data_dir}: {exc.strerror or exc}. "
                "Choose a writable data directory or fix its permissions."
            ) from exc
        if not os.access(self._data_dir, os.W_OK | os.X_OK):
            raise StorageError(
                f"data directory {self._data_dir} is not writable. "
                "Choose a writable data directory or fix its permissions."
            )
        self._lock = threading.Lock()  # guards _conn (reads)
        self._write_lock = threading.Lock()  # guards _write_conn and the log files
        self._warn_lock = threading.Lock()
        self._conn: sqlite3.Connection | None = open_database(self._path)
        register_functions(self._conn)
        try:
            self._write_conn: sqlite3.Connection | None = open_database(self._path)
        except BaseException:
            self._conn.close()
            raise
        register_functions(self._write_conn)
        #: The thread that runs writes for async callers (RecordBatcher, arate, aprefer).
        self.writer = Writer()
        self._boards: list[BreakerBoard] = []
        self._prompt_logs = (
            AppendLog(self._logs_dir / "prompts.jsonl", PROMPT_FIELDS, "jsonl"),
            AppendLog(self._logs_dir / "prompts.csv", PROMPT_FIELDS, "csv"),
        )
        self._rating_logs = (
            AppendLog(self._logs_dir / "ratings.jsonl", RATING_FIELDS, "jsonl"),
            AppendLog(self._logs_dir / "ratings.csv", RATING_FIELDS, "csv"),
        )
        self._preference_logs = (
            AppendLog(self._logs_dir / "preferences.jsonl", PREFERENCE_FIELDS, "jsonl"),
            AppendLog(self._logs_dir / "preferences.csv", PREFERENCE_FIELDS, "csv"),
        )
        # Bumped by each rating and preference this Store records: auto re-reads its evidence.
        self._evidence_version = 0
        self._warnings: deque[str] = deque(maxlen=_MAX_WARNINGS)
        # Called with each storage warning as it happens (each is also logged).
        self.on_warning: Callable[[str], None] | None = None
        self._puts = 0
        self.conversations = Conversations(self._use, self._writing)

    # ---- lifecycle ----------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    @property
    def data_dir(self) -> Path:
        return self._data_dir

    @property
    def logs_dir(self) -> Path:
        return self._logs_dir

    @property
    def sink_warnings(self) -> list[str]:
        """Recent warnings about storage that failed without losing a reply (newest last)."""
        with self._warn_lock:
            return list(self._warnings)

    def close(self) -> None:
        """Finish queued writes and close the database; calling it again does nothing."""
        self.writer.close()
        for board in self._boards:
            board.close()
        with self._write_lock:
            write_conn, self._write_conn = self._write_conn, None
        with self._lock:
            conn, self._conn = self._conn, None
        for each in (write_conn, conn):
            if each is not None:
                each.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self._data_dir)!r})"

    def _require(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is None:
            raise StorageError(f"the store for {self._path} is closed; open a new Store")
        return conn

    def _require_writer(self) -> sqlite3.Connection:
        conn = self._write_conn
        if conn is None:
            raise StorageError(f"the store for {self._path} is closed; open a new Store")
        return conn

    @contextmanager
    def _use(self, doing: str) -> Iterator[sqlite3.Connection]:
        """Hold the lock, yield the connection, report SQLite failures as StorageError."""
        with self._lock:
            conn = self._require()
            try:
                yield conn
            except sqlite3.Error as exc:
                raise storage_error(self._path, exc, doing) from exc

    @contextmanager
    def _writing(self, doing: str) -> Iterator[sqlite3.Connection]:
        """`_use` for the write connection."""
        with self._write_lock:
            conn = self._require_writer()
            try:
                yield conn
            except sqlite3.Error as exc:
                raise storage_error(self._path, exc, doing) from exc

    # ---- recording ----------------------------------------------------------------------------

    def record(self, result: Result, cache_write: CacheWrite | None = None) -> list[str]:
        """Record a finished request once: SQLite, then prompts.jsonl and prompts.csv.

        Never raises for storage failures: returns a warning per place that could not be
        written (failed log files are retried on the next record). Recording a prompt_id that
        is already in the database does nothing and returns []. `cache_write` is stored in
        the same transaction (a failure there only warns).
        """
        return self.record_many([result], [cache_write] if cache_write else [])[0]

    def record_many(
        self, results: Sequence[Result], cache_writes: Sequence[CacheWrite] = ()
    ) -> list[list[str]]:
        """`record` for several requests at once: one SQLite transaction and one write per
        log file for all of them. Returns the warnings of each result, in order.

        If the batch transaction fails, each request is retried on its own so that a
        failure is reported for the requests it concerns. Runs on the calling thread (the
        RecordBatcher calls it on the writer thread).
        """
        with self._write_lock:
            conn = self._require_writer()
            self._puts += len(cache_writes)
            purge = self._puts >= _PURGE_EVERY
            try:
                fresh = recorder.write_db(conn, results, cache_writes, purge_cache=purge)
                db_warnings: list[list[str]] = [[] for _ in results]
            except Exception:  # one bad record must not cost the others theirs
                fresh, db_warnings = self._record_one_by_one(conn, results, cache_writes)
            if purge:
                self._puts = 0
            out = [list(warnings) for warnings in db_warnings]
            logged: list[int] = []
            rows: list[dict[str, Any]] = []
            for index, new in enumerate(fresh):
                if not new:
                    continue
                try:
                    rows.append(recorder.log_row(results[index]))
                    logged.append(index)
                except Exception as exc:  # only this record misses the logs
                    out[index].append(f"could not write the record to the logs: {exc}")
            log_warnings, row_warnings = recorder.write_logs(
                self._prompt_logs, rows, "the reply was kept"
            )
            for position, index in enumerate(logged):
                out[index] += log_warnings + row_warnings.get(position, [])
            self._warn(*(w for warnings in out for w in warnings if w not in log_warnings))
            self._warn(*log_warnings)
        return out

    def _record_one_by_one(
        self,
        conn: sqlite3.Connection,
        results: Sequence[Result],
        cache_writes: Sequence[CacheWrite],
    ) -> tuple[list[bool], list[list[str]]]:
        fresh: list[bool] = []
        db_warnings: list[list[str]] = []
        for result in results:
            try:
                fresh += recorder.write_db(conn, [result])
                db_warnings.append([])
            except Exception as exc:
                fresh.append(True)  # still put the reply in the logs
                db_warnings.append(
                    [
                        f"could not record to {self._path}: {exc}; the reply was kept "
                        "(it is missing from stats and cannot be rated)"
                    ]
                )
        for write in cache_writes:
            try:
                recorder.write_db(conn, [], [write])
            except Exception as exc:
                self._warn(f"could not write the cache in {self._path}: {exc}")
        return fresh, db_warnings

    def _warn(self, *warnings: str) -> None:
        """Keep storage warnings for UIs, log them and tell the on_warning hook, if any
        (on the thread that wrote: usually the writer thread)."""
        with self._warn_lock:
            self._warnings.extend(warnings)
        hook = self.on_warning
        for warning in warnings:
            _log.warning("storage warning: %s", warning, extra={"event": "storage_warning"})
            if hook is not None:  # a broken hook must not lose a record: it is logged
                call_safely(hook, warning, "the storage warning hook", _log, "the record was kept")

    def get_request(self, prompt_id: str) -> dict[str, Any] | None:
        """The recorded request row (booleans as bool), if any."""
        with self._use("read") as conn:
            cur = conn.execute("SELECT * FROM requests WHERE prompt_id = ?", (prompt_id,))
            row = cur.fetchone()
            if row is None:
                return None
            names = [d[0] for d in cur.description]
        return {
            name: bool(value) if name in _BOOL_COLUMNS else value
            for name, value in zip(names, row, strict=True)
        }

    def request_attempts(self, prompt_id: str) -> list[dict[str, Any]]:
        """The attempts of a recorded request in order (empty if unknown)."""
        keys = ("model", "provider", "outcome", "status", "error", "message", "ms", "started_at")
        with self._use("read") as conn:
            rows = conn.execute(
                f"SELECT {', '.join(keys)} FROM attempts WHERE prompt_id = ? ORDER BY idx",
                (prompt_id,),
            ).fetchall()
        return [dict(zip(keys, row, strict=True)) for row in rows]

    # ---- cache --------------------------------------------------------------------------------

    def cache_get(self, key: str, now: float | None = None) -> CachedReply | None:
        """The unexpired cached reply for `key`; None also when the cache cannot be read."""
        with self._lock:
            conn = self._require()
            try:
                return _cache.get(conn, key, now)
            except sqlite3.Error as exc:
                # The cache only saves time: a broken read must not fail the request.
                self._warn(f"could not read the cache in {self._path}: {exc}")
                return None

    def cache_put(
        self, key: str, reply: CachedReply, ttl_s: float, now: float | None = None
    ) -> None:
        """Store a complete reply under `key` for `ttl_s` seconds (0 = forever).

        A write failure is kept in `sink_warnings` instead of raised.
        """
        with self._write_lock:
            conn = self._require_writer()
            try:
                _cache.put(conn, key, reply, ttl_s, now)
                self._puts += 1
                if self._puts >= _PURGE_EVERY:
                    self._puts = 0
                    _cache.purge_expired(conn, now)
            except sqlite3.Error as exc:
                self._warn(f"could not write the cache in {self._path}: {exc}")

    def cache_purge(self, now: float | None = None) -> int:
        """Delete expired cache entries; return how many."""
        with self._writing("clean the cache in") as conn:
            return _cache.purge_expired(conn, now)

    # ---- circuit breakers shared by the processes on this data directory ----------------------

    def breaker_board(self, refresh_s: float = REFRESH_S) -> BreakerBoard:
        """Shared circuit state for `CircuitBreaker.share` (closed with the store)."""
        board = BreakerBoard(
            self._path,
            lambda key, until: self.writer.submit(self._put_breaker, key, until),
            refresh_s=refresh_s,
        )
        self._boards.append(board)
        return board

    def _put_breaker(self, key: str, until: float | None) -> bool:
        """Open (until: epoch s) or close `key`'s shared circuit; False (and a warning) if it
        could not be written."""
        try:
            with self._writing("share circuit state in") as conn:
                if until is None:
                    conn.execute("DELETE FROM breaker_state WHERE model = ?", (key,))
                else:
                    conn.execute(
                        "INSERT INTO breaker_state (model, open_until, opened_at, pid) "
                        "VALUES (?, ?, ?, ?) ON CONFLICT (model) DO UPDATE SET "
                        "open_until = excluded.open_until, opened_at = excluded.opened_at, "
                        "pid = excluded.pid",
                        (key, until, time.time(), os.getpid()),
                    )
        except StorageError as exc:  # the breaker still works in this process
            self._warn(str(exc))
            return False
        return True

    # ---- ratings ------------------------------------------------------------------------------

    def rate(
        self,
        prompt_id: str,
        rating: object,
        feedback: str | None = None,
        model: str | None = None,
    ) -> dict[str, Any]:
        """Rate a recorded reply 1..5 (re-rating replaces the latest); return the record.

        InputError for a bad rating, UnknownPromptError for an unknown prompt_id. Log files
        that cannot be written are named in the record's `warnings` (and `sink_warnings`).
        """
        with self._writing("record a rating in") as conn:
            record = _ratings.rate(conn, prompt_id, rating, feedback, model)
            warnings = self._log_vote(
                self._rating_logs, _ratings.log_row(record), "the rating was kept"
            )
        return {**record, "warnings": warnings}

    def _log_vote(self, logs: Sequence[AppendLog], row: dict[str, Any], kept: str) -> list[str]:
        """Append a rating or preference row to its logs (under the write lock); `auto`
        re-reads its evidence after it. Its warnings, also kept in `sink_warnings`."""
        shared, own = recorder.write_logs(logs, [row], kept)
        warnings = shared + own.get(0, [])
        self._warn(*warnings)
        self._evidence_version += 1
        return warnings

    async def arate(
        self,
        prompt_id: str,
        rating: object,
        feedback: str | None = None,
        model: str | None = None,
    ) -> dict[str, Any]:
        """`rate` on the writer thread: the event loop keeps running while it waits for locks."""
        return await self.writer.run(self.rate, prompt_id, rating, feedback, model)

    def get_rating(self, prompt_id: str) -> dict[str, Any] | None:
        """The latest rating of `prompt_id`, if any."""
        with self._use("read") as conn:
            return _ratings.get(conn, prompt_id)

    def rating_history(self, prompt_id: str) -> list[dict[str, Any]]:
        """Every rating `prompt_id` was given, oldest first."""
        with self._use("read") as conn:
            return _ratings.history(conn, prompt_id)

    # ---- preferences (compares) --------------------------------------------------------------

    def prefer(
        self,
        prompt_a: str,
        prompt_b: str,
        outcome: str,
        feedback: str | None = None,
        compare_id: str | None = None,
    ) -> dict[str, Any]:
        """Record which of two recorded replies was better: outcome "a", "b", "tie" or
        "both_bad" (voting again on the same pair replaces the vote); return the record.

        The record: compare_id, prompt_a, prompt_b, model_a, model_b, template_id (when both
        replies share one), outcome, winner (model or None), feedback, created_at, warnings.
        InputError for a bad outcome, UnknownPromptError for an unknown prompt_id. Written to
        SQLite, then once to logs/preferences.jsonl and .csv.
        """
        with self._writing("record a preference in") as conn:
            record = _preferences.prefer(conn, prompt_a, prompt_b, outcome, feedback, compare_id)
            warnings = self._log_vote(
                self._preference_logs, _preferences.log_row(record), "the preference was kept"
            )
        return {**record, "warnings": warnings}

    async def aprefer(
        self,
        prompt_a: str,
        prompt_b: str,
        outcome: str,
        feedback: str | None = None,
        compare_id: str | None = None,
    ) -> dict[str, Any]:
        """`prefer` on the writer thread (see `arate`)."""
        return await self.writer.run(self.prefer, prompt_a, prompt_b, outcome, feedback, compare_id)

    def get_preference(self, prompt_a: str, prompt_b: str) -> dict[str, Any] | None:
        """The latest preference between two replies (in either order), if any."""
        with self._use("read") as conn:
            return _preferences.get(conn, prompt_a, prompt_b)

    def leaderboard(self, template_id: str | None = None) -> list[LeaderboardRow]:
        """Leaderboard rows (core.leaderboard.rows): overall, or one template's votes only."""
        with self._use("read the leaderboard from") as conn:
            conn.execute("BEGIN")
            try:
                return _stats.leaderboard_rows(conn, template_id)
            finally:
                conn.execute("COMMIT")

    # ---- evidence for auto and budgets --------------------------------------------------------

    @property
    def evidence_version(self) -> int:
        """Changes whenever this Store records a rating or a preference."""
        return self._evidence_version

    def auto_evidence(self, window_days: int = 7) -> Evidence:
        """What `auto` ranks by, from the summary tables only (see core.evidence)."""
        with self._use("read evidence from") as conn:
            conn.execute("BEGIN")
            try:
                return _evidence.load_evidence(conn, window_days)
            finally:
                conn.execute("COMMIT")

    def spend(self, day: str) -> tuple[float, float]:
        """USD spent on `day` (YYYY-MM-DD, UTC) and in its month so far."""
        with self._use("read spend from") as conn:
            return _evidence.spend(conn, day)

    # ---- analytics ----------------------------------------------------------------------------

    def stats(self) -> _stats.StatsSummary:
        """Analytics from the summary tables (fast at any size); core.stats.StatsSummary
        declares the keys."""
        with self._use("read stats from") as conn:
            conn.execute("BEGIN")  # one snapshot across the three reads
            try:
                return _stats.compute(conn)
            finally:
                conn.execute("COMMIT")

    def recent_requests(self, limit: int = 200) -> list[_stats.RecentRequest]:
        """The newest `limit` requests, oldest first (core.stats.RecentRequest)."""
        with self._use("read") as conn:
            return _stats.recent_requests(conn, limit)
