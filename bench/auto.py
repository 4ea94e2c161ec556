"""What choosing with `auto` adds to a request, with 1,000,000 recorded requests (target: 0.2 ms).

A store gets `--history` synthetic requests (`testing.history.generate_history`, spread over
30 days: they fill the daily summaries auto reads) plus ratings and compares for three catalog
models that make openai/gpt-oss-20b the pick. Then, in-process against the fast fake
upstream (another process), it measures:

- prepare: `Router.prepare` for model "auto" against the same model named directly (ranking,
  exploration draw and explanation; the evidence snapshot is warm), median per call;
- request: `Router.complete` end to end, "auto" and the named model interleaved request by
  request (both reach the same upstream model), median wall time per round;
- refresh: reading the evidence snapshot from the summary tables (`Store.auto_evidence`),
  done at most every `[auto] refresh_s` (5 s) or after a rating, at this history size;
  `spend` likewise when a budget is set.

    python -m bench.auto [--history 1000000] [--requests 300] [--rounds 5]   (prints JSON)
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import BENCH_KEY, upstream

MODEL = "openai/gpt-oss-20b"
OTHERS = ("openai/gpt-oss-120b", "gemini-3.5-flash")


def _settings(base_url: str, data_dir: Path) -> Any:
    from llmrouter_tui.core.config import AutoSettings, Secret, Settings, builtin_providers

    providers = {
        name: dataclasses.replace(p, base_url=base_url, api_key=Secret(BENCH_KEY))
        for name, p in builtin_providers().items()
        if p.kind in ("groq", "gemini")
    }
    # Exploration off: every "auto" request must reach the same model as the named one.
    auto = AutoSettings(candidates=(MODEL, *OTHERS), explore=0.0)
    return Settings(providers=providers, data_dir=data_dir, auto=auto)


def _seed_votes(store: Any) -> None:
    """Ratings and compares that make MODEL the best of the three."""
    from llmrouter_tui.core.types import Result, Usage

    def record(model: str) -> str:
        prompt_id = uuid.uuid4().hex
        store.record(
            Result(
                prompt_id=prompt_id,
                requested_model=model,
                model_used=model,
                provider="gemini" if model.startswith("gemini") else "groq",
                prompt="bench",
                response_text="bench",
                status="ok",
                latency_ms=50.0,
                ttft_ms=10.0,
                usage=Usage(10, 10, 20),
                from_cache=False,
                fallback_used=False,
                attempts=[],
                created_at=time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            )
        )
        return prompt_id

    for _ in range(40):
        store.rate(record(MODEL), 5)
        for other in OTHERS:
            store.rate(record(other), 3)
    for other in OTHERS:
        for _ in range(10):
            store.prefer(record(MODEL), record(other), "a")


def _median_us(fn: Any, n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e6)
    return statistics.median(times)


async def run(base_url: str, history: int, requests: int, rounds: int) -> dict[str, Any]:
    from llmrouter_tui.core.router import Router
    from llmrouter_tui.core.store import Store
    from llmrouter_tui.core.types import ChatRequest
    from llmrouter_tui.testing.history import generate_history

    tmp = tempfile.TemporaryDirectory(prefix="llmrouter-bench-auto-")
    data = Path(tmp.name)
    store = Store(data)
    t0 = time.perf_counter()
    generate_history(store, history)
    generate_s = time.perf_counter() - t0
    _seed_votes(store)
    router = Router(_settings(base_url, data), store=store)
    out: dict[str, Any] = {"history": history, "generate_s": round(generate_s, 1)}

    # The evidence read, cold, at this history size (what a refresh costs).
    refresh_ms = []
    for _ in range(20):
        t0 = time.perf_counter()
        store.auto_evidence(7)
        refresh_ms.append((time.perf_counter() - t0) * 1000)
    spend_ms = []
    today = time.strftime("%Y-%m-%d", time.gmtime())
    for _ in range(20):
        t0 = time.perf_counter()
        store.spend(today)
        spend_ms.append((time.perf_counter() - t0) * 1000)
    out["refresh_ms"] = round(statistics.median(refresh_ms), 3)
    out["spend_ms"] = round(statistics.median(spend_ms), 3)

    # prepare() alone: the added work per request with a warm snapshot.
    auto_request = ChatRequest(model="auto", prompt="which model?")
    named_request = ChatRequest(model=MODEL, prompt="which model?")
    first = router.prepare(auto_request)
    assert first.candidates[0].model == MODEL, first.auto_reason
    out["auto_reason"] = first.auto_reason
    gc.collect()
    prepare: dict[str, list[float]] = {"auto": [], "named": []}
    for _ in range(rounds):
        prepare["named"].append(_median_us(lambda: router.prepare(named_request), 3000))
        prepare["auto"].append(_median_us(lambda: router.prepare(auto_request), 3000))
    out["prepare_us"] = {k: [round(v, 2) for v in vs] for k, vs in prepare.items()}

    # Whole requests, interleaved, against the fast fake upstream.
    async def one(model: str, prompt: str) -> float:
        t0 = time.perf_counter()
        result = await router.complete(ChatRequest(model=model, prompt=prompt))
        if result.status != "ok" or result.model_used != MODEL:
            raise RuntimeError(f"unexpected result: {result.status} {result.model_used}")
        return (time.perf_counter() - t0) * 1000

    nonce = uuid.uuid4().hex[:8]
    for i in range(100):  # warm-up: imports, connections
        await one(MODEL, f"warm {nonce} {i}")
        await one("auto", f"warm auto {nonce} {i}")
    walls: dict[str, list[float]] = {"auto": [], "named": []}
    for r in range(rounds):
        samples: dict[str, list[float]] = {"auto": [], "named": []}
        gc.collect()
        for i in range(requests):
            # Alternate which goes first, so neither always follows the other.
            order = ("named", "auto") if i % 2 else ("auto", "named")
            for name in order:
                model = MODEL if name == "named" else "auto"
                samples[name].append(await one(model, f"{nonce} {r} {name} {i}"))
        for name, values in samples.items():
            walls[name].append(round(statistics.median(values), 4))
    out["request_p50_ms"] = walls
    out["added_prepare_ms"] = round(
        (statistics.median(prepare["auto"]) - statistics.median(prepare["named"])) / 1000, 4
    )
    out["added_request_ms"] = round(
        statistics.median(walls["auto"]) - statistics.median(walls["named"]), 4
    )
    await router.aclose()
    store.close()
    tmp.cleanup()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.auto")
    parser.add_argument("--upstream", help="base URL of a running fake upstream")
    parser.add_argument("--history", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    if args.upstream:
        result = asyncio.run(run(args.upstream, args.history, args.requests, args.rounds))
    else:
        with upstream(fast=True) as server:
            result = asyncio.run(run(server.url, args.history, args.requests, args.rounds))
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
