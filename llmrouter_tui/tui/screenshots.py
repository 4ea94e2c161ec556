"""Fixed demo data and SVG screenshots of each screen, made by the app itself.

`python -m llmrouter_tui.tui.screenshots [OUT_DIR]` writes chat.svg, templates.svg and
analytics.svg (default OUT_DIR: docs/screenshots). The snapshot tests use the same data.
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from textual.pilot import Pilot
from textual.worker import WorkerCancelled

from ..core.config import Settings, builtin_providers
from ..core.runtime import Runtime
from ..core.store import Store
from ..core.types import Attempt, Result, Usage
from .screens.templates import TemplatesScreen

SIZE = (100, 30)
SCREENS = ("chat", "templates", "analytics")
HISTORY_ROWS = 180
HISTORY_SEED = 7
TEMPLATE_SHOWN = "summarize"

_TURNS: tuple[tuple[str, str, dict[str, object]], ...] = (
    (
        "A regex for ISO dates like 2024-05-31?",
        "Use anchors and ranges for month and day:\n\n"
        "```python\nimport re\n\n"
        'ISO_DATE = re.compile(r"^\\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01])$")\n```\n\n'
        "It checks the shape, not the calendar: `2024-02-31` still matches.",
        {"latency_ms": 812.0, "ttft_ms": 143.0, "completion": 61, "rating": 5},
    ),
    (
        "And one that also accepts a time?",
        "Add an optional `T` part: `(T\\d{2}:\\d{2}(:\\d{2})?)?` before the `$`.",
        {
            "latency_ms": 1930.0,
            "ttft_ms": 1204.0,
            "completion": 24,
            "fallback": True,
            "estimated": True,
        },
    ),
)


def fixed_settings(data_dir: Path) -> Settings:
    """Settings that ignore any user config file (keys come from the demo upstream)."""
    return Settings(providers=builtin_providers(), data_dir=data_dir)


def _history_results(count: int, seed: int) -> list[Result]:
    """`count` finished requests spread over a few models, the same for the same seed."""
    rng = random.Random(seed)
    models = (
        ("openai/gpt-oss-20b", "groq", 420.0),
        ("openai/gpt-oss-120b", "groq", 760.0),
        ("groq/compound-mini", "groq", 610.0),
        ("gemini-3.5-flash", "gemini", 1350.0),
        ("gemini-3.5-flash-lite", "gemini", 900.0),
    )
    weights = (9, 5, 3, 6, 2)
    results = []
    for index in range(count):
        model, provider, median = rng.choices(models, weights)[0]
        roll = rng.random()
        status = "ok" if roll < 0.9 else ("error" if roll < 0.97 else "cancelled")
        cached = status == "ok" and rng.random() < 0.12
        fallback = status == "ok" and not cached and rng.random() < 0.06
        latency = 1.0 if cached else round(median * rng.lognormvariate(0, 0.45), 1)
        ttft = None if status != "ok" else (latency if cached else round(latency * 0.3, 1))
        completion = rng.randint(20, 700) if status == "ok" else 0
        results.append(
            Result(
                prompt_id=f"history-{index:04d}",
                requested_model="openai/gpt-oss-20b" if fallback else model,
                model_used=model if status == "ok" else None,
                provider=provider,
                prompt="seeded prompt",
                response_text="seeded reply" if status == "ok" else "",
                status=status,  # type: ignore[arg-type]
                latency_ms=latency,
                ttft_ms=ttft,
                usage=Usage(40, completion, 40 + completion, rng.random() < 0.2),
                from_cache=cached,
                fallback_used=fallback,
                attempts=[Attempt(model, provider, "cache_hit" if cached else "ok")],
                created_at=f"2025-02-{1 + index // 24:02d}T{index % 24:02d}:00:00.000Z",
                error=None if status == "ok" else status,
                error_kind=None if status == "ok" else "all_failed",
                demo=True,
                source="tui",
            )
        )
    return results


def seed_store(store: Store) -> str:
    """Fill a fresh store with fixed data: request history plus one rated conversation.

    Returns the conversation id. Nothing shown depends on the clock.
    """
    history = _history_results(HISTORY_ROWS, HISTORY_SEED)
    for result in history:
        store.record(result)
    rng = random.Random(HISTORY_SEED)
    for result in history[::7]:
        if result.status == "ok":
            store.rate(result.prompt_id, rng.choice((3, 4, 4, 5, 5)))
    conversation = store.conversations.create("ISO date regex", "openai/gpt-oss-20b")
    for index, (prompt, reply, facts) in enumerate(_TURNS):
        fallback = bool(facts.get("fallback"))
        requested = "openai/gpt-oss-20b"
        used = "openai/gpt-oss-120b" if fallback else requested
        attempts = [Attempt(used, "groq", "ok", ms=float(facts["latency_ms"]))]  # type: ignore[arg-type]
        if fallback:
            attempts.insert(
                0,
                Attempt(
                    requested, "groq", "error", status=503, error="server_error", message="HTTP 503"
                ),
            )
        completion = int(facts["completion"])  # type: ignore[call-overload]
        result = Result(
            prompt_id=f"screenshot-{index}",
            requested_model=requested,
            model_used=used,
            provider="groq",
            prompt=prompt,
            response_text=reply,
            status="ok",
            latency_ms=float(facts["latency_ms"]),  # type: ignore[arg-type]
            ttft_ms=float(facts["ttft_ms"]),  # type: ignore[arg-type]
            usage=Usage(20, completion, 20 + completion, bool(facts.get("estimated"))),
            from_cache=False,
            fallback_used=fallback,
            attempts=attempts,
            created_at=f"2025-03-01T00:00:0{index}.000Z",
            conversation_id=conversation,
            demo=True,
            source="tui",
        )
        store.record(result)
        store.conversations.add_message(conversation, "user", prompt)
        store.conversations.add_message(conversation, "assistant", reply, result.prompt_id)
        if facts.get("rating"):
            store.rate(result.prompt_id, int(facts["rating"]), "exactly right")  # type: ignore[call-overload]
    return conversation


@contextmanager
def seeded_runtime(data_dir: Path, upstream_url: str = "http://127.0.0.1:9") -> Iterator[Runtime]:
    """A demo-mode Runtime over a freshly seeded store in `data_dir`."""
    runtime = Runtime.open(settings=fixed_settings(data_dir), demo_upstream=upstream_url)
    try:
        seed_store(runtime.store)
        yield runtime
    finally:
        runtime.close()


async def settle(pilot: Pilot[None], rounds: int = 3) -> None:
    """Wait until workers are done (a replaced, cancelled one included) and messages drained."""
    for _ in range(rounds):
        for worker in list(pilot.app.workers):
            with suppress(WorkerCancelled):
                await worker.wait()
        await pilot.pause()


async def show_screen(pilot: Pilot[None], screen: str) -> None:
    """Bring the app to a stable view of `screen` (loaded data, no pending work)."""
    app = pilot.app
    await settle(pilot)
    if screen == "templates":
        await app.switch_mode("templates")
        await pilot.pause()
        templates = app.screen
        assert isinstance(templates, TemplatesScreen)
        templates.select_template(TEMPLATE_SHOWN)
        await pilot.pause()
    elif screen == "analytics":
        await app.switch_mode("analytics")
    await settle(pilot)


async def save_screenshots(out_dir: Path) -> list[Path]:
    """Write one SVG per screen into `out_dir`; returns the paths."""
    from .app import LLMRouterApp

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for screen in SCREENS:
        with tempfile.TemporaryDirectory() as tmp, seeded_runtime(Path(tmp)) as runtime:
            app = LLMRouterApp(runtime)
            async with app.run_test(size=SIZE) as pilot:
                await show_screen(pilot, screen)
                path = app.save_screenshot(f"{screen}.svg", str(out_dir))
                written.append(Path(path))
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out_dir = Path(args[0]) if args else Path("docs/screenshots")
    for path in asyncio.run(save_screenshots(out_dir)):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
