"""Target 6: the router's own overhead, in-process, against the fast fake upstream.

`Router.complete` (Groq provider, real `groq` SDK) is timed against the same SDK call made
directly (`AsyncGroq.chat.completions.create(stream=True)` and reading every chunk). The fake
upstream runs in another process. Variants run interleaved request by request, so machine
noise hits them alike; each round reports per variant the median wall time and the mean CPU
time per request.

    python -m bench.inproc [--requests 300] [--rounds 5]     (prints one JSON object)
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
from collections.abc import Awaitable, Callable
from typing import Any

from bench.common import BENCH_KEY, upstream

MODEL = "openai/gpt-oss-20b"


def _settings(base_url: str, data_dir: str) -> Any:
    from llmrouter_tui.core.config import Secret, Settings, builtin_providers

    providers = {
        name: dataclasses.replace(p, base_url=base_url, api_key=Secret(BENCH_KEY))
        for name, p in builtin_providers().items()
        if p.kind in ("groq", "gemini")
    }
    return Settings(providers=providers, data_dir=__import__("pathlib").Path(data_dir))


async def _round(
    variants: dict[str, Callable[[str], Awaitable[str]]], n: int, prefix: str
) -> dict[str, tuple[float, float, float]]:
    """n requests per variant, interleaved request by request (A B C D A B C D …) so that
    drift in machine load hits every variant alike. Per variant: (median wall ms, p99 wall
    ms, mean CPU ms per request)."""
    walls: dict[str, list[float]] = {name: [] for name in variants}
    cpus: dict[str, float] = dict.fromkeys(variants, 0.0)
    gc.collect()
    for i in range(n):
        for name, call in variants.items():
            c0 = time.process_time()
            t0 = time.perf_counter()
            text = await call(f"{prefix} {name} {i}")
            walls[name].append((time.perf_counter() - t0) * 1000)
            cpus[name] += time.process_time() - c0
            if text != "ok":
                raise RuntimeError(f"unexpected reply {text!r}")
    out = {}
    for name, values in walls.items():
        values.sort()
        p99 = values[min(n - 1, int(n * 0.99))]
        out[name] = (statistics.median(values), p99, cpus[name] * 1000 / n)
    return out


async def run(base_url: str, requests: int, rounds: int, warmup: int) -> dict[str, Any]:
    import groq
    import httpx

    from llmrouter_tui.core.router import Router
    from llmrouter_tui.core.store import Store
    from llmrouter_tui.core.types import ChatRequest

    tmp = tempfile.TemporaryDirectory(prefix="llmrouter-bench-")
    settings = _settings(base_url, tmp.name)
    from llmrouter_tui.core.providers.groq import GroqProvider

    def sdk(http: httpx.AsyncClient | None) -> groq.AsyncGroq:
        return groq.AsyncGroq(
            api_key=BENCH_KEY,
            base_url=base_url,
            max_retries=0,
            timeout=httpx.Timeout(None, connect=5.0),
            http_client=http,
        )

    # The SDK call exactly as the Groq provider makes it (its own client, same limits), and
    # with the SDK's own default httpx client for reference.
    client = GroqProvider(settings.providers["groq"], 5.0)._get_client()
    default_client = sdk(None)
    bare = Router(settings)  # no store: routing only
    store = Store(tmp.name)
    full = Router(settings, store=store)  # what `ask`, the TUI and --serve run

    async def direct_with(sdk_client: groq.AsyncGroq, prompt: str) -> str:
        stream = await sdk_client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": prompt}], stream=True
        )
        parts = []
        async for chunk in stream:
            for choice in chunk.choices:
                if choice.delta and choice.delta.content:
                    parts.append(choice.delta.content)
        return "".join(parts)

    async def routed(router: Router, prompt: str) -> str:
        result = await router.complete(ChatRequest(model=MODEL, prompt=prompt))
        if result.status != "ok":
            raise RuntimeError(result.error)
        return result.response_text

    hit_prompt = "bench cache hit"
    await routed(full, hit_prompt)
    variants: dict[str, Callable[[str], Awaitable[str]]] = {
        "direct_sdk": lambda p: direct_with(client, p),
        "direct_sdk_default_httpx": lambda p: direct_with(default_client, p),
        "router": lambda p: routed(bare, p),
        "router_store": lambda p: routed(full, p),
        "router_cache_hit": lambda p: routed(full, hit_prompt),
    }
    nonce = uuid.uuid4().hex[:8]
    await _round(variants, warmup, f"warm {nonce}")  # imports, connections, caches
    samples: dict[str, list[tuple[float, float, float]]] = {k: [] for k in variants}
    for r in range(rounds):
        for name, row in (await _round(variants, requests, f"{nonce} {r}")).items():
            samples[name].append(row)
    await client.close()
    await default_client.close()
    await bare.aclose()
    await full.aclose()
    store.close()
    tmp.cleanup()
    out: dict[str, Any] = {"requests_per_round": requests, "rounds": rounds}
    for name, rows in samples.items():
        out[name] = {
            "p50_ms": [row[0] for row in rows],
            "p99_ms": [row[1] for row in rows],
            "cpu_ms": [row[2] for row in rows],
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.inproc")
    parser.add_argument("--upstream", help="base URL of a running fake upstream")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=100)
    args = parser.parse_args(argv)
    if args.upstream:
        result = asyncio.run(run(args.upstream, args.requests, args.rounds, args.warmup))
    else:
        with upstream(fast=True) as server:
            result = asyncio.run(run(server.url, args.requests, args.rounds, args.warmup))
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
