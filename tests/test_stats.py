"""Analytics from the summary tables: exact on a known dataset, consistent with brute force."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from llmrouter_tui.core.stats import bucket_of, bucket_value
from llmrouter_tui.core.store import Store
from llmrouter_tui.core.types import Result, Usage
from llmrouter_tui.testing.history import generate_history

MODEL = "groq:llama-3.1-8b-instant"
OTHER = "gemini:gemini-2.5-flash"


def make_result(prompt_id: str, **overrides: Any) -> Result:
    fields: dict[str, Any] = {
        "prompt_id": prompt_id,
        "requested_model": MODEL,
        "model_used": MODEL,
        "provider": "groq",
        "prompt": "hi",
        "response_text": "hello",
        "status": "ok",
        "latency_ms": 100.0,
        "ttft_ms": 20.0,
        "usage": Usage(),
        "from_cache": False,
        "fallback_used": False,
        "attempts": [],
        "created_at": f"2025-01-01T00:00:{int(prompt_id[1:]):02d}+00:00",
    }
    fields.update(overrides)
    return Result(**fields)


def approx_bucket(value: float) -> float:
    return round(bucket_value(bucket_of(value)), 1)


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path) as s:
        yield s


def test_empty_stats(store: Store):
    stats = store.stats()
    assert stats["total_prompts"] == 0 and stats["model_usage"] == {}
    assert stats["avg_latency"] == 0.0 and stats["avg_rating"] is None
    assert stats["cache_hit_rate"] == 0.0 and stats["per_model"] == {}
    assert stats["ratings"] == {"count": 0, "by_score": {str(i): 0 for i in range(1, 6)}}
    assert stats["percentiles_approximate"] is True
    assert store.recent_requests() == []


def test_stats_on_a_known_dataset(store: Store):
    results = [
        make_result("r1", latency_ms=100, ttft_ms=20, usage=Usage(10, 20, 30)),
        make_result(
            "r2",
            requested_model=OTHER,
            fallback_used=True,
            latency_ms=300,
            ttft_ms=60,
            usage=Usage(5, 5, 10, estimated=True),
        ),
        make_result("r3", from_cache=True, latency_ms=0.5, ttft_ms=0.5, usage=Usage(10, 20, 30)),
        make_result(
            "r4", model_used=OTHER, provider="gemini", latency_ms=1000, ttft_ms=400,
            usage=Usage(1, 2, 3),
        ),
        make_result(
            "r5", requested_model=OTHER, model_used=None, provider=None, status="error",
            latency_ms=50, ttft_ms=None, error="boom",
        ),
        make_result("r6", status="cancelled", latency_ms=80, usage=Usage(4, 0, 4, estimated=True)),
    ]  # fmt: skip
    for r in results:
        assert store.record(r) == []
    store.rate("r1", 5)
    store.rate("r4", 2)
    store.rate("r2", 4)
    store.rate("r2", 3)  # re-rating: only the latest counts

    stats = store.stats()
    assert stats["total_prompts"] == 6
    assert stats["ok"] == 4 and stats["errors"] == 1 and stats["cancelled"] == 1
    assert stats["model_usage"] == {MODEL: 3, OTHER: 1}
    assert stats["avg_latency"] == pytest.approx((100 + 300 + 0.5 + 1000) / 4 / 1000)
    assert stats["total_fallbacks"] == 1
    assert stats["cache_hits"] == 1 and stats["cache_hit_rate"] == pytest.approx(1 / 6)
    assert stats["tokens"] == {"prompt": 30, "completion": 47, "total": 77, "estimated_requests": 2}
    assert stats["avg_rating"] == pytest.approx(10 / 3)
    assert stats["ratings"] == {
        "count": 3,
        "by_score": {"1": 0, "2": 1, "3": 1, "4": 0, "5": 1},
    }

    groq = stats["per_model"][MODEL]
    assert {k: groq[k] for k in ("requests", "ok", "errors", "cache_hits", "fallbacks")} == {
        "requests": 4,  # r1, r2, r3 answered; r6 cancelled while asking for it
        "ok": 3,
        "errors": 0,
        "cache_hits": 1,
        "fallbacks": 1,
    }
    assert groq["p50_latency_ms"] == approx_bucket(100)  # nearest rank of [0.5, 100, 300]
    assert groq["p95_latency_ms"] == approx_bucket(300)
    assert groq["p50_ttft_ms"] == approx_bucket(20)
    assert groq["p95_ttft_ms"] == approx_bucket(60)
    assert abs(groq["p50_latency_ms"] - 100) <= 5
    assert (groq["prompt_tokens"], groq["completion_tokens"], groq["total_tokens"]) == (29, 45, 74)
    assert groq["avg_rating"] == 4.0 and groq["ratings"] == 2

    gemini = stats["per_model"][OTHER]
    assert gemini["requests"] == 2 and gemini["ok"] == 1 and gemini["errors"] == 1
    assert gemini["p50_latency_ms"] == gemini["p95_latency_ms"] == approx_bucket(1000)
    assert gemini["avg_rating"] == 2.0 and gemini["ratings"] == 1

    recent = store.recent_requests(limit=2)
    assert [r["prompt_id"] for r in recent] == ["r5", "r6"]  # newest two, oldest first
    assert set(recent[0]) >= {"created_at", "model_used", "latency_ms", "status"}
    assert recent[0]["status"] == "error"


def test_stats_read_summaries_not_requests(store: Store):
    for i in range(1, 4):
        store.record(make_result(f"r{i}"))
    raw = sqlite3.connect(store.path)
    raw.execute("DELETE FROM requests")
    raw.commit()
    raw.close()
    assert store.stats()["total_prompts"] == 3


def test_bucket_edges():
    assert bucket_of(0) == 0 and bucket_of(0.99) == 0 and bucket_of(float("nan")) == 0
    assert bucket_of(1.0) == 1 and bucket_of(1.0499) == 1 and bucket_of(1.051) == 2
    for value in (3.0, 47.0, 999.0, 123456.0):
        assert abs(bucket_value(bucket_of(value)) / value - 1) < 0.05


def _nearest_rank(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p * len(ordered))) - 1]


def test_generated_history_matches_brute_force(store: Store):
    assert generate_history(store, 5000, seed=7) == 5000
    store.record(make_result("r1", latency_ms=42.0, usage=Usage(1, 1, 2)))
    store.record(make_result("r2", status="error", model_used=None, requested_model="x:y"))
    stats = store.stats()

    raw = sqlite3.connect(store.path)
    key = (
        "CASE WHEN status = 'ok' AND model_used IS NOT NULL THEN model_used "
        "ELSE requested_model END"
    )
    brute = {
        row[0]: row[1:]
        for row in raw.execute(
            f"SELECT {key} AS m, count(*), sum(status = 'ok'), sum(status = 'error'), "
            "sum(from_cache), sum(fallback_used), sum(prompt_tokens), sum(completion_tokens), "
            "sum(total_tokens) FROM requests GROUP BY m"
        )
    }
    assert set(stats["per_model"]) == set(brute)
    for model, (n, ok, errors, hits, fallbacks, p_tok, c_tok, t_tok) in brute.items():
        entry = stats["per_model"][model]
        assert (entry["requests"], entry["ok"], entry["errors"]) == (n, ok, errors)
        assert (entry["cache_hits"], entry["fallbacks"]) == (hits, fallbacks)
        assert (entry["prompt_tokens"], entry["completion_tokens"]) == (p_tok, c_tok)
        assert entry["total_tokens"] == t_tok
        for kind, column in (("latency", "latency_ms"), ("ttft", "ttft_ms")):
            values = [
                r[0]
                for r in raw.execute(
                    f"SELECT {column} FROM requests WHERE {key} = ? AND status = 'ok' "
                    f"AND {column} IS NOT NULL",
                    (model,),
                )
            ]
            for p, name in ((0.5, f"p50_{kind}_ms"), (0.95, f"p95_{kind}_ms")):
                if not values:
                    assert entry[name] is None
                    continue
                truth = _nearest_rank(values, p)
                assert abs(bucket_of(entry[name]) - bucket_of(truth)) <= 1, (model, name)

    totals = raw.execute(
        "SELECT count(*), sum(status = 'error'), sum(status = 'cancelled'), sum(from_cache), "
        "sum(fallback_used), sum(tokens_estimated), "
        "avg(CASE WHEN status = 'ok' THEN latency_ms END) FROM requests"
    ).fetchone()
    raw.close()
    assert stats["total_prompts"] == totals[0] == 5002
    assert (stats["errors"], stats["cancelled"]) == (totals[1], totals[2])
    assert (stats["cache_hits"], stats["total_fallbacks"]) == (totals[3], totals[4])
    assert stats["tokens"]["estimated_requests"] == totals[5]
    assert stats["avg_latency"] == pytest.approx(totals[6] / 1000)
    assert sum(stats["model_usage"].values()) == stats["ok"]


def test_generated_history_is_reproducible(tmp_path: Path):
    outcomes = []
    for name in ("a", "b"):
        with Store(tmp_path / name) as s:
            generate_history(s, 2000, seed=3)
            generate_history(s, 10, seed=3)  # same seed again: fresh ids, no collision
            outcomes.append(s.stats())
    assert outcomes[0]["per_model"] == outcomes[1]["per_model"]
    assert outcomes[0]["total_prompts"] == 2010


# How long stats() and recent_requests() take over 50,000 requests is measured, not asserted:
# `python -m bench.timing` (BENCHMARKS.md, section bench.timing).
