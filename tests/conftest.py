"""Shared fixtures: one fake upstream per session and runtimes pointed at it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from llmrouter_tui.core.config import ProviderSettings, RoutingSettings, Secret, Settings
from llmrouter_tui.core.runtime import Runtime
from llmrouter_tui.testing.fake_upstream import FakeUpstream

# Recognisable fake keys: tests grep outputs for them to prove keys never leak.
GROQ_KEY = "gsk_TESTKEY_groq_5f3a9c1d7e"
GEMINI_KEY = "AIzaTESTKEY_gemini_8b2e4f6a"

# Short limits keep fault tests fast while still exercising every rule.
FAST_ROUTING = RoutingSettings(
    max_retries=2,
    backoff_initial_s=0.01,
    backoff_max_s=0.05,
    retry_after_max_s=5,
    connect_timeout_s=1,
    first_token_timeout_s=0.6,
    stream_idle_timeout_s=0.5,
    attempt_timeout_s=3,
    total_timeout_s=10,
    cooldown_failures=3,
    cooldown_s=30,
)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's keys, config or data directory."""
    for name in list(os.environ):
        if name.startswith(("GROQ_", "GEMINI_", "GOOGLE_", "LLMROUTER_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LLMROUTER_DATA_DIR", str(tmp_path / "default-data"))


@pytest.fixture(scope="session")
def fake() -> Iterator[FakeUpstream]:
    upstream = FakeUpstream().start()
    yield upstream
    upstream.stop()


@pytest.fixture
def upstream(fake: FakeUpstream) -> Iterator[FakeUpstream]:
    """The session's fake upstream, with no faults or recorded requests left over."""
    fake.clear()
    fake.chunk_delay_s = 0.0
    yield fake
    fake.clear()
    fake.chunk_delay_s = 0.0


def fake_settings(base_url: str, data_dir: Path, **routing: float | int | bool) -> Settings:
    providers = {
        "groq": ProviderSettings(
            "groq", "groq", base_url=base_url, api_key_env="GROQ_API_KEY", api_key=Secret(GROQ_KEY)
        ),
        "gemini": ProviderSettings(
            "gemini",
            "gemini",
            base_url=base_url,
            api_key_env="GEMINI_API_KEY",
            api_key=Secret(GEMINI_KEY),
        ),
        "local": ProviderSettings(
            "local", "openai", base_url=base_url + "/v1", api_key_env=None, key_required=False
        ),
    }
    models = {
        "llama3.2": {
            "provider": "local",
            "context_window": 131072,
            "fallbacks": ["gemini-3.5-flash"],
        }
    }
    return Settings(
        routing=replace(FAST_ROUTING, **routing),
        providers=providers,
        models=models,
        data_dir=data_dir,
    )


@pytest.fixture
async def make_runtime(
    upstream: FakeUpstream, tmp_path: Path
) -> AsyncIterator[Callable[..., Runtime]]:
    """Build Runtimes against the fake upstream; `without` drops providers' keys."""
    made: list[Runtime] = []

    def build(*, without: tuple[str, ...] = (), data_dir: Path | None = None, **routing) -> Runtime:
        settings = fake_settings(upstream.base_url, data_dir or tmp_path / "data", **routing)
        providers = dict(settings.providers)
        for name in without:
            providers[name] = replace(providers[name], api_key=None)
        runtime = Runtime(replace(settings, providers=providers))
        made.append(runtime)
        return runtime

    yield build
    for runtime in made:
        await runtime.aclose()
