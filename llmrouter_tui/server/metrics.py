"""GET /metrics: the core's counters (core/metrics.py) in Prometheus' text exposition
format, version 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/).

Written by hand: a few HELP/TYPE comments and `name{label="value"} number` lines. Label
values are escaped (backslash, double quote, newline); those that come from configuration
(model and provider names) are scrubbed of keys too. Everything else is this module's own
text or the router's fixed vocabulary (endpoints, statuses, outcomes, error kinds).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..core.catalog import Catalog
from ..core.metrics import Histogram, Metrics
from ..core.policy import CircuitBreaker

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
#: The circuit-breaker gauge's values.
CIRCUIT_VALUES = {"closed": 0, "half_open": 1, "open": 2}
_SCRUBBED_LABELS = frozenset({"model", "provider"})


def circuit_states(breaker: CircuitBreaker, catalog: Catalog) -> list[tuple[str, str, int]]:
    """(provider, model, 0 closed / 1 half-open / 2 open) for every model that may be
    called (the catalog's, retired ones aside) and any other with a circuit not closed."""
    keys: dict[str, tuple[str, str]] = {}
    for info in catalog.models.values():
        if info.status_on(catalog.today) != "retired":
            keys[f"{info.provider}:{info.id}"] = (info.provider, info.id)
    for key in breaker.snapshot():
        if key not in keys:
            provider, _, model = key.partition(":")
            keys[key] = (provider, model)
    return [
        (provider, model, CIRCUIT_VALUES[breaker.state(key)])
        for key, (provider, model) in keys.items()
    ]


def escape_label(value: str) -> str:
    """A label value as the text format writes it between double quotes."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


class _Writer:
    """Collects the exposition's lines."""

    def __init__(self, redact: Callable[[str], str]) -> None:
        self.lines: list[str] = []
        self._redact = redact

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        if labels:
            inner = ",".join(
                f'{key}="{escape_label(self._redact(text) if key in _SCRUBBED_LABELS else text)}"'
                for key, text in labels.items()
            )
            name = f"{name}{{{inner}}}"
        self.lines.append(f"{name} {_number(value)}")

    def counter(
        self,
        name: str,
        help_text: str,
        values: Mapping[Any, int],  # keys: tuples of label values, one per label name
        label_names: tuple[str, ...],
    ) -> None:
        self.family(name, "counter", help_text)
        for key in sorted(values):
            self.sample(name, values[key], dict(zip(label_names, key, strict=True)))

    def histogram(self, name: str, help_text: str, histogram: Histogram) -> None:
        self.family(name, "histogram", help_text)
        buckets = histogram.cumulative()
        for bound, count in buckets:
            self.sample(f"{name}_bucket", count, {"le": _number(bound)})
        self.sample(f"{name}_sum", histogram.sum)
        self.sample(f"{name}_count", buckets[-1][1])


def render(
    metrics: Metrics,
    circuits: Iterable[tuple[str, str, int]],
    redact: Callable[[str], str] = str,
) -> bytes:
    """The whole exposition, UTF-8."""
    out = _Writer(redact)
    out.counter(
        "llmrouter_http_requests_total",
        "HTTP requests answered, by endpoint (other: no such endpoint) and status "
        "(none: the client left before an answer).",
        metrics.requests,
        ("endpoint", "status"),
    )
    out.family(
        "llmrouter_http_requests_in_flight",
        "gauge",
        "HTTP requests being answered now (this scrape included).",
    )
    out.sample("llmrouter_http_requests_in_flight", metrics.in_flight)
    out.counter(
        "llmrouter_results_total",
        "Routed requests, recorded, by status (ok, error, cancelled) and the model that "
        "answered (none: no model did).",
        metrics.results,
        ("status", "model"),
    )
    out.counter(
        "llmrouter_attempts_total",
        "Attempts at a model, by outcome and error kind (none: no error).",
        metrics.attempts,
        ("outcome", "error_kind"),
    )
    out.histogram(
        "llmrouter_request_latency_seconds",
        "Time from a routed request's start to its result, every status.",
        metrics.latency,
    )
    out.histogram(
        "llmrouter_event_loop_lag_seconds",
        "How late this process's event loop woke a 20 ms timer: time it was stalled "
        "(probed from the first HTTP request on).",
        metrics.loop_lag.histogram,
    )
    out.family(
        "llmrouter_event_loop_lag_max_seconds", "gauge", "The longest such stall since start."
    )
    out.sample("llmrouter_event_loop_lag_max_seconds", metrics.loop_lag.max_s)
    out.histogram(
        "llmrouter_ttft_seconds",
        "Time to the first token of replies that came from a model (not the cache).",
        metrics.ttft,
    )
    out.family("llmrouter_cache_hits_total", "counter", "Cache lookups that found a reply.")
    out.sample("llmrouter_cache_hits_total", metrics.cache_hits)
    out.family("llmrouter_cache_misses_total", "counter", "Cache lookups that found none.")
    out.sample("llmrouter_cache_misses_total", metrics.cache_misses)
    out.family(
        "llmrouter_circuit_state",
        "gauge",
        "Circuit breaker per model: 0 closed, 1 half-open (one probe allowed), 2 open "
        "(skipped while cooling down).",
    )
    for provider, model, state in sorted(circuits):
        out.sample("llmrouter_circuit_state", state, {"provider": provider, "model": model})
    out.histogram(
        "llmrouter_recording_lag_seconds",
        "Time from a result being handed to the recorder to it being in SQLite and the logs.",
        metrics.recording_lag,
    )
    out.family(
        "llmrouter_storage_warnings_total",
        "counter",
        "Storage failures that cost no reply (full disk, read-only logs...).",
    )
    out.sample("llmrouter_storage_warnings_total", metrics.storage_warnings)
    return ("\n".join(out.lines) + "\n").encode()
