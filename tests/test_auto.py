"""The model id `auto`: ranking by evidence from a real store, exploration, template scope,
and the explanation, through the real Router against the fake upstream."""

from __future__ import annotations

import math
import os
import random
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import fake_settings

from llmrouter_tui.core.auto import Evidence, Option, Recent, choose, rank
from llmrouter_tui.core.config import AutoSettings
from llmrouter_tui.core.errors import InputError
from llmrouter_tui.core.leaderboard import RatingCount
from llmrouter_tui.core.logsinks import read_csv, read_jsonl
from llmrouter_tui.core.pricing import PriceTable
from llmrouter_tui.core.runtime import Runtime
from llmrouter_tui.core.store import Store
from llmrouter_tui.core.types import (
    Attempt,
    ChatRequest,
    ImagePart,
    Message,
    Result,
    TextPart,
    Usage,
)
from llmrouter_tui.testing.fake_upstream import FakeUpstream, Fault

GROQ = "openai/gpt-oss-20b"
GROQ_BIG = "openai/gpt-oss-120b"
GEMINI = "gemini-3.5-flash"
TRIO = (GROQ, GROQ_BIG, GEMINI)
PIXEL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8/5+hHgAH"
    "ggJ/PchI7wAAAABJRU5ErkJggg=="
)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def seed(
    store: Store,
    model: str,
    *,
    latency: float = 500.0,
    ttft: float = 100.0,
    failed_attempts: int = 0,
    template: str | None = None,
    rating: int | None = None,
) -> str:
    """Record one answered request (after `failed_attempts` failed tries) and rate it."""
    prompt_id = "seed-" + os.urandom(8).hex()
    provider = "gemini" if model.startswith("gemini") else "groq"
    attempts = [
        Attempt(model, provider, "error", status=500, error="server_error")
        for _ in range(failed_attempts)
    ]
    attempts.append(Attempt(model, provider, "ok", ms=latency))
    result = Result(
        prompt_id=prompt_id,
        requested_model=model,
        model_used=model,
        provider=provider,
        prompt="seeded",
        response_text="seeded reply",
        status="ok",
        latency_ms=latency,
        ttft_ms=ttft,
        usage=Usage(600, 400, 1000),
        from_cache=False,
        fallback_used=False,
        attempts=attempts,
        created_at=now_iso(),
        template_id=template,
    )
    assert store.record(result) == []
    if rating is not None:
        store.rate(prompt_id, rating)
    return prompt_id


def seed_evidence(store: Store) -> None:
    """GEMINI: rated best, preferred in compares, fairly fast, one failure in 13.
    GROQ: fastest, cheapest, never fails, rated poorly. GROQ_BIG: slow, fails half the time."""
    for i in range(20):
        seed(store, GROQ, latency=300, ttft=100, rating=2 if i < 8 else None)
    for i in range(10):
        seed(
            store, GROQ_BIG, latency=3000, ttft=1500, failed_attempts=1, rating=4 if i < 6 else None
        )
    gemini = [
        seed(store, GEMINI, latency=900, ttft=300, failed_attempts=1 if i == 0 else 0, rating=r)
        for i, r in enumerate([5, 5, 5, 4, 5, 5, 4, 5, 5, 5, None, None])
    ]
    groq = [seed(store, GROQ, latency=300, ttft=100) for _ in range(6)]
    big = [seed(store, GROQ_BIG, latency=3000, ttft=1500) for _ in range(5)]
    for i in range(6):
        store.prefer(gemini[i], groq[i], "a")
    for i in range(4):
        store.prefer(big[i], gemini[i + 6], "b")
    store.prefer(big[4], gemini[10], "tie")


@pytest.fixture
def build(upstream: FakeUpstream, tmp_path: Path) -> Iterator[Callable[..., Runtime]]:
    made: list[Runtime] = []

    def make(data_dir: Path | None = None, without: tuple[str, ...] = (), **auto: Any) -> Runtime:
        settings = fake_settings(upstream.base_url, data_dir or tmp_path / "data")
        options = {"candidates": TRIO, "explore": 0.0, "refresh_s": 0.0, "seed": 7, **auto}
        providers = dict(settings.providers)
        for name in without:
            providers[name] = replace(providers[name], api_key=None)
        runtime = Runtime(replace(settings, auto=AutoSettings(**options), providers=providers))
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        runtime.close()


def auto_request(prompt: str = "which model?", **kw: Any) -> ChatRequest:
    return ChatRequest(model="auto", prompt=prompt, **kw)


# ---- ranking by evidence ----------------------------------------------------------------------


async def test_auto_picks_what_the_evidence_favours(build, upstream):
    runtime = build()
    seed_evidence(runtime.store)
    result = await runtime.router.complete(auto_request())
    assert result.status == "ok"
    assert result.requested_model == "auto" and result.model_used == GEMINI
    assert not result.fallback_used
    assert [a.model for a in result.attempts] == [GEMINI]
    reason = result.auto_reason
    assert reason is not None and reason.startswith(f"auto → {GEMINI}: rated 4.8 (n=10)")
    assert "p50 0.9 s" in reason and "92% ok" in reason and "$0.0015" in reason
    assert "won 10 of 11 compares" in reason  # 6 + 4 wins and a tie

    choice = runtime.router.selection.preview()
    assert choice is not None
    assert [s.model for s in choice.ranking] == [GEMINI, GROQ, GROQ_BIG]
    # The fallback chain after the pick is the rest of the ranking.
    upstream.add_fault(Fault(kind="status", status=500, model=GEMINI))
    fallback = await runtime.router.complete(auto_request("again"))
    assert fallback.model_used == GROQ and fallback.fallback_used
    assert [a.model for a in fallback.attempts] == [GEMINI, GEMINI, GEMINI, GROQ]
    assert fallback.auto_reason is not None and fallback.auto_reason.startswith(f"auto → {GEMINI}")


@pytest.mark.parametrize(
    ("weights", "winner"),
    [
        ({"quality": 1, "reliability": 0, "speed": 0, "cost": 0}, GEMINI),
        ({"quality": 0, "reliability": 1, "speed": 0, "cost": 0}, GROQ),
        ({"quality": 0, "reliability": 0, "speed": 1, "cost": 0}, GROQ),
        ({"quality": 0, "reliability": 0, "speed": 0, "cost": 1}, GROQ),
        ({"quality": 0, "reliability": 1, "speed": 0, "cost": 0, "_drop": GROQ}, GEMINI),
        ({"quality": 0, "reliability": 0, "speed": 1, "cost": 0, "_drop": GROQ}, GEMINI),
        ({"quality": 0, "reliability": 0, "speed": 0, "cost": 1, "_drop": GROQ}, GROQ_BIG),
    ],
)
async def test_each_part_of_the_score_counts(build, weights, winner):
    drop = weights.pop("_drop", None)
    runtime = build(weights=weights, candidates=tuple(m for m in TRIO if m != drop))
    seed_evidence(runtime.store)
    result = await runtime.router.complete(auto_request())
    assert result.model_used == winner, result.auto_reason


async def test_evidence_comes_from_the_summary_tables(build):
    runtime = build()
    seed_evidence(runtime.store)
    raw = sqlite3.connect(runtime.store.path)
    raw.execute("DELETE FROM attempts")
    raw.execute("DELETE FROM ratings")
    raw.execute("DELETE FROM requests")
    raw.commit()
    raw.close()
    result = await runtime.router.complete(auto_request())
    assert result.model_used == GEMINI and "rated 4.8 (n=10)" in (result.auto_reason or "")


async def test_one_rating_does_not_decide(build):
    runtime = build(weights={"quality": 1, "reliability": 0, "speed": 0, "cost": 0})
    store = runtime.store
    seed(store, GROQ_BIG, rating=5)  # one perfect rating …
    for _ in range(30):
        seed(store, GEMINI, rating=4)  # … against many good ones
    result = await runtime.router.complete(auto_request())
    assert result.model_used == GEMINI


async def test_auto_reason_is_recorded_everywhere(build):
    runtime = build()
    seed_evidence(runtime.store)
    result = await runtime.router.complete(auto_request())
    reason = result.auto_reason
    assert reason and result.as_dict()["auto_reason"] == reason
    assert runtime.store.get_request(result.prompt_id)["auto_reason"] == reason
    jsonl, _ = read_jsonl(runtime.store.logs_dir / "prompts.jsonl")
    assert jsonl[-1]["prompt_id"] == result.prompt_id and jsonl[-1]["auto_reason"] == reason
    csv_rows, _ = read_csv(runtime.store.logs_dir / "prompts.csv")
    assert csv_rows[-1]["auto_reason"] == reason
    # Requests naming a model have none.
    named = await runtime.router.complete(ChatRequest(model=GROQ, prompt="named"))
    assert named.auto_reason is None
    assert runtime.store.get_request(named.prompt_id)["auto_reason"] is None


# ---- which models are candidates --------------------------------------------------------------


async def test_candidates_must_honour_the_request(build):
    runtime = build(candidates=())  # default: every available model with a key
    request = ChatRequest(
        model="auto",
        messages=[Message("user", (TextPart("what is this?"), ImagePart(PIXEL)))],
    )
    result = await runtime.router.complete(request)
    assert result.status == "ok"
    assert runtime.catalog.capabilities(result.model_used).images
    for attempt in result.attempts:
        assert runtime.catalog.capabilities(attempt.model).images


async def test_default_candidates_skip_missing_keys_retired_and_classifiers(build):
    runtime = build(candidates=(), without=("groq",))
    choice = runtime.router.selection.preview()
    assert choice is not None
    models = {s.model for s in choice.ranking}
    assert GEMINI in models and "llama3.2" in models
    assert not any(m.startswith(("openai/", "qwen/", "groq/", "meta-llama/")) for m in models)
    assert (
        "gemini-2.0-flash" not in models and "gemini-2.5-pro" not in models
    )  # retired, deprecated
    nobody = build(candidates=(GROQ,), without=("groq",), data_dir=Path(runtime.store.data_dir))
    with pytest.raises(InputError, match="'auto' has no candidate"):
        await nobody.router.complete(auto_request())


async def test_open_circuits_are_not_candidates(build, upstream):
    runtime = build()
    seed_evidence(runtime.store)
    upstream.add_fault(Fault(kind="status", status=500, model=GEMINI))
    first = await runtime.router.complete(auto_request("trips the breaker"))
    assert first.model_used == GROQ
    assert runtime.router.breaker.state(f"gemini:{GEMINI}") == "open"
    second = await runtime.router.complete(auto_request("after"))
    assert second.model_used == GROQ and GEMINI not in [a.model for a in second.attempts]


def test_auto_is_listed_with_the_models(build):
    runtime = build()
    rows = runtime.model_rows()
    auto = next(r for r in rows if r["id"] == "auto")
    assert auto["status"] == "available" and auto["kind"] == "chat"
    assert auto["capabilities"]["images"] is True  # gemini can
    assert set(auto) == set(rows[-1])  # the same keys as a catalog model's row


# ---- template scope ---------------------------------------------------------------------------


def seed_template_evidence(store: Store) -> None:
    """Globally GEMINI is far better; for commit_message GROQ is (15 template votes)."""
    for _ in range(30):
        seed(store, GEMINI, rating=5)
    for _ in range(20):
        seed(store, GROQ, rating=1)
    for _ in range(12):
        seed(store, GROQ, rating=5, template="commit_message")
    for _ in range(3):
        seed(store, GEMINI, rating=1, template="commit_message")


COMMIT = {"template_id": "commit_message", "template_vars": {"diff": "- a\n+ b"}}
QUALITY_ONLY = {"quality": 1.0, "reliability": 0.0, "speed": 0.0, "cost": 0.0}


async def test_template_evidence_wins_when_it_has_enough_votes(build):
    runtime = build(candidates=(GROQ, GEMINI), weights=QUALITY_ONLY)
    seed_template_evidence(runtime.store)
    commit = await runtime.router.complete(ChatRequest(model="auto", **COMMIT))
    assert commit.model_used == GROQ
    assert commit.auto_reason and "rated 5.0 for commit_message (n=12)" in commit.auto_reason
    plain = await runtime.router.complete(auto_request())
    assert plain.model_used == GEMINI
    other = await runtime.router.complete(
        ChatRequest(model="auto", template_id="summarize", template_vars={"text": "x"})
    )
    assert other.model_used == GEMINI  # no votes for that template: global evidence


async def test_template_evidence_waits_for_enough_votes(build):
    runtime = build(candidates=(GROQ, GEMINI), weights=QUALITY_ONLY, min_template_votes=16)
    seed_template_evidence(runtime.store)
    commit = await runtime.router.complete(ChatRequest(model="auto", **COMMIT))
    assert commit.model_used == GEMINI
    assert commit.auto_reason and "for commit_message" not in commit.auto_reason


# ---- exploration ------------------------------------------------------------------------------


def trio_evidence() -> tuple[list[Option], Evidence]:
    prices = PriceTable()
    options = [Option(m, "x", prices.price(m)) for m in (*TRIO, "gemini-3.8-flash")]
    evidence = Evidence(
        recent={
            GROQ: Recent(requests=50, ok=50, attempts_ok=50, p50_latency_ms=400),
            GROQ_BIG: Recent(requests=50, ok=50, attempts_ok=40, attempts_failed=10),
            GEMINI: Recent(requests=50, ok=50, attempts_ok=50, p50_latency_ms=900),
        },
        ratings={
            GROQ: RatingCount(40, 40 * 3.0, 40 * 9.0),
            GROQ_BIG: RatingCount(40, 40 * 2.0, 40 * 4.0),
            GEMINI: RatingCount(40, 40 * 4.5, 40 * 20.5),
        },
    )  # "gemini-3.8-flash" has no evidence at all
    return options, evidence


@pytest.mark.parametrize("rate", [0.0, 0.05, 0.2])
def test_exploration_stays_within_its_rate(rate: float):
    options, evidence = trio_evidence()
    settings = AutoSettings(explore=rate)
    best = rank(options, evidence, settings)[0].model
    assert best == GEMINI
    n = 4000
    rng = random.Random(1234)
    picks = [choose(options, evidence, settings, rng) for _ in range(n)]
    explored = [c for c in picks if c.explored]
    assert all(c.pick.model != best for c in explored)
    assert all(c.pick.model == best for c in picks if not c.explored)
    sigma = math.sqrt(rate * (1 - rate) / n)
    assert abs(len(explored) / n - rate) <= 4 * sigma + 1e-9
    if rate:
        tried = Counter(c.pick.model for c in explored)
        # Little evidence wins Thompson draws more often than a model known to be worse.
        assert tried["gemini-3.8-flash"] > tried[GROQ_BIG]
        assert all(c.reason.startswith(f"auto → {c.pick.model} (exploring") for c in explored)
        # The explored pick leads; the rest of the ranking follows as the fallback chain.
        assert {s.model for s in explored[0].ranking} == {o.model for o in options}


def test_exploration_is_reproducible_with_a_seed():
    options, evidence = trio_evidence()
    settings = AutoSettings(explore=0.3)
    a, b = random.Random(5), random.Random(5)
    first = [choose(options, evidence, settings, a).pick.model for _ in range(200)]
    assert first == [choose(options, evidence, settings, b).pick.model for _ in range(200)]
    assert len(set(first)) > 1  # it did explore


@pytest.mark.slow
async def test_exploration_through_the_router(build):
    runtime = build(explore=0.25, seed=11)
    seed_evidence(runtime.store)
    results = [await runtime.router.complete(auto_request(f"q{i}")) for i in range(80)]
    explored = [r for r in results if "(exploring" in (r.auto_reason or "")]
    assert all(r.model_used != GEMINI for r in explored)
    assert all(r.model_used == GEMINI for r in results if r not in explored)
    assert 5 <= len(explored) <= 35  # 80 x 0.25 = 20 expected (seeded: the same every run)
