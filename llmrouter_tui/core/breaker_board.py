"""Circuit-breaker state shared through the data directory's database (`breaker_state`).

With several worker processes on one data directory, a model one of them found dead is
skipped by all of them, instead of each rediscovering it with its own failed requests.

Reads are on the routing hot path, so the table is read at most every `refresh_s` on a
connection of its own (a WAL read never waits for writers) and served from memory between
reads. Writes go through the store's writer thread, never the event loop.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from pathlib import Path

#: How stale another process's news may be. A refresh costs one small query.
REFRESH_S = 0.25
_READ_TIMEOUT_S = 0.05  # a read that would wait longer keeps the last snapshot instead
_SELECT = "SELECT model, open_until FROM breaker_state"

#: Writes an open circuit (until: epoch s) or, with None, deletes it; runs on the writer.
Publish = Callable[[str, float | None], "Future[object]"]


class BreakerBoard:
    """`policy.SharedCircuits` on SQLite; built by `Store.breaker_board`."""

    def __init__(
        self,
        path: Path,
        publish: Publish,
        *,
        refresh_s: float = REFRESH_S,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._publish = publish
        self._refresh_s = refresh_s
        self._wall = wall
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            path, timeout=_READ_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        self._rows: dict[str, float] = {}  # model -> open_until (epoch s), as last read
        # Our own publications until the writer has committed them: a refresh in between
        # must not undo them (a closed circuit read back as open would reopen it here).
        self._unsettled: dict[str, float | None] = {}
        self._read_at = float("-inf")

    def remaining_s(self, key: str) -> float | None:
        until = self._current().get(key)
        return None if until is None else max(0.0, until - self._wall())

    def keys(self) -> Iterable[str]:
        return list(self._current())

    def opened(self, key: str, cooldown_s: float) -> None:
        self._settle(key, self._wall() + cooldown_s)

    def closed(self, key: str) -> None:
        self._settle(key, None)

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    # ---- internals ------------------------------------------------------------------------

    def _settle(self, key: str, until: float | None) -> None:
        with self._lock:
            self._unsettled[key] = until
            if until is None:
                self._rows.pop(key, None)
            else:
                self._rows[key] = until
        try:
            future = self._publish(key, until)
        except Exception:  # a closed store: this process still knows
            return

        def settled(done: Future[object]) -> None:
            if done.cancelled() or done.exception() is not None or done.result() is False:
                return  # not in the table: this process keeps its own view of `key`
            with self._lock:
                if self._unsettled.get(key, 0.0) == until:
                    del self._unsettled[key]
                self._read_at = float("-inf")  # read the committed table next time

        future.add_done_callback(settled)

    def _current(self) -> dict[str, float]:
        with self._lock:
            now = self._monotonic()
            if now - self._read_at < self._refresh_s or self._conn is None:
                return self._rows
            self._read_at = now
            # Sharing is best effort: an unreadable table keeps the last snapshot.
            with contextlib.suppress(sqlite3.Error):
                rows = {str(m): float(u) for m, u in self._conn.execute(_SELECT).fetchall()}
                for key, until in self._unsettled.items():
                    if until is None:
                        rows.pop(key, None)
                    else:
                        rows[key] = until
                self._rows = rows
            return self._rows
