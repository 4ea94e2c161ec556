"""Counters for `/metrics`: plain ints, dicts and fixed-bucket histograms.

One `Metrics` per Router. Everything is updated on the event loop that routes requests
(a dict increment or a bisect per event), so nothing here takes a lock; only the loop-lag
probe reads a clock, once per wake-up. The server renders them in Prometheus' text format
(server/metrics.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from bisect import bisect_left
from collections.abc import Sequence

from .types import Result

#: Upper bounds (seconds) of the histogram buckets; fixed, so scrapes from any process add up.
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
TTFT_BUCKETS_S = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30)
RECORDING_LAG_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5)
LOOP_LAG_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
#: How often the loop-lag probe wakes up: ~50 wake-ups a second cost well under 1 % of a core.
LOOP_LAG_INTERVAL_S = 0.02

#: Distinct model labels kept; more (PROVIDER:MODEL ids are open-ended) count as "other".
MAX_MODEL_LABELS = 200
NONE = "none"  # the label value for "no model answered" / "no error kind"


class Histogram:
    """Observations counted per bucket (`counts[i]`: bounds[i-1] < value <= bounds[i]; the
    last count is above every bound), plus their sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(float(b) for b in bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, observations at or below it) per bucket, ending with +inf."""
        out: list[tuple[float, int]] = []
        running = 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += n
            out.append((bound, running))
        return out


class LoopLag:
    """How late the event loop wakes a periodic timer: the time it was stalled by blocking
    work (a lock wait on the loop would show here), observed once per wake-up."""

    def __init__(self, interval_s: float = LOOP_LAG_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.histogram = Histogram(LOOP_LAG_BUCKETS_S)
        self.max_s = 0.0
        self._task: asyncio.Task[None] | None = None

    def watch(self) -> None:
        """Start probing the running loop (again, if it was a different loop); idempotent."""
        task = self._task
        if task is not None and not task.done():
            return
        self._task = asyncio.get_running_loop().create_task(self._probe())

    def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()

    async def _probe(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.interval_s
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                due = loop.time() + interval
                await asyncio.sleep(interval)
                lag = max(0.0, loop.time() - due)
                self.histogram.observe(lag)
                if lag > self.max_s:
                    self.max_s = lag


class Metrics:
    """What happened in this process since it started (see the module docstring)."""

    def __init__(self) -> None:
        # HTTP (updated by the server app): answered requests and those being answered.
        self.requests: dict[tuple[str, str], int] = {}  # (endpoint, status) -> count
        self.in_flight = 0
        # Routing (updated by the router as each request is recorded).
        self.results: dict[tuple[str, str], int] = {}  # (status, model) -> count
        self.attempts: dict[tuple[str, str], int] = {}  # (outcome, error kind) -> count
        self.latency = Histogram(LATENCY_BUCKETS_S)
        self.ttft = Histogram(TTFT_BUCKETS_S)
        self.cache_hits = 0
        self.cache_misses = 0
        # Recording: time from a result being handed to the batcher to it being written.
        self.recording_lag = Histogram(RECORDING_LAG_BUCKETS_S)
        self.storage_warnings = 0
        # Event-loop stalls, once a front-end starts the probe (`loop_lag.watch()`).
        self.loop_lag = LoopLag()
        self._models: set[str] = set()

    def model_label(self, model: str | None) -> str:
        if model is None:
            return NONE
        if model in self._models:
            return model
        if len(self._models) >= MAX_MODEL_LABELS:
            return "other"
        self._models.add(model)
        return model

    def request(self, endpoint: str, status: int | None) -> None:
        """One HTTP request answered (`status` None: the client left before any answer)."""
        key = (endpoint, NONE if status is None else str(status))
        self.requests[key] = self.requests.get(key, 0) + 1

    def result(self, result: Result) -> None:
        """One routed request, recorded: its status, model, attempts and timings."""
        key = (result.status, self.model_label(result.model_used))
        self.results[key] = self.results.get(key, 0) + 1
        attempts = self.attempts
        for attempt in result.attempts:
            kind = (attempt.outcome, attempt.error or NONE)
            attempts[kind] = attempts.get(kind, 0) + 1
        self.latency.observe(result.latency_ms / 1000)
        if result.ttft_ms is not None and not result.from_cache:
            self.ttft.observe(result.ttft_ms / 1000)
