"""Two real `--serve` processes on one data directory share circuit-breaker state: a model one
of them found failing is skipped by the other, which never sends it a request, and a probe
that succeeds in one closes the circuit for both."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from server_helpers import FAST_ROUTING_TOML, ServerProcess, clean_env, write_config
from waiting import wait_until

from llmrouter_tui.testing.fake_upstream import FakeUpstream, Fault

pytestmark = pytest.mark.slow  # two `--serve` processes per test

GROQ = "openai/gpt-oss-20b"
GROQ_KEY = "gsk_QX7RZ2KV9M4T8B"


def serve(tmp_path: Path, name: str, upstream: FakeUpstream, cooldown_s: float) -> ServerProcess:
    """One server process on the shared data directory (its own working directory)."""
    workdir = tmp_path / name
    workdir.mkdir()
    routing = {**FAST_ROUTING_TOML, "max_retries": 0, "cooldown_failures": 1}
    config = write_config(workdir / "llmrouter.toml", **routing, cooldown_s=cooldown_s)
    env = clean_env(
        GROQ_BASE_URL=upstream.base_url, GROQ_API_KEY=GROQ_KEY, LLMROUTER_CONFIG=str(config)
    )
    args = ["--serve", "--quiet", "--port", "0", "--data-dir", str(tmp_path / "data")]
    server = ServerProcess(args, env, workdir)
    server.wait_for_url()
    return server


def chat(url: str, prompt: str) -> dict[str, object]:
    response = httpx.post(f"{url}/chat?model={GROQ}", json={"prompt": prompt}, timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def model_status(url: str) -> str:
    rows = httpx.get(f"{url}/models", timeout=10).json()["models"]
    return next(str(row["status"]) for row in rows if row["id"] == GROQ)


def test_a_model_one_server_tripped_is_skipped_by_the_other(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    first = serve(tmp_path, "first", upstream, cooldown_s=60)
    second = serve(tmp_path, "second", upstream, cooldown_s=60)
    try:
        assert model_status(second.url) != "cooling down"
        upstream.add_fault(Fault(kind="status", status=503, model=GROQ))
        tripped = chat(first.url, "first finds it failing")
        assert tripped["fallback_used"] is True
        assert len(upstream.requests_for(GROQ)) == 1
        # The other process reads the shared state at most REFRESH_S late.
        wait_until(lambda: model_status(second.url) == "cooling down", "second sees it open")
        skipped = chat(second.url, "second skips it")
        attempts = skipped["attempts"]
        assert isinstance(attempts, list)
        assert attempts[0]["model"] == GROQ
        assert attempts[0]["outcome"] == "skipped_circuit_open"
        assert len(upstream.requests_for(GROQ)) == 1  # the second never asked the dead model
        assert first.stop() == 0 and second.stop() == 0
    finally:
        first.kill()
        second.kill()
    assert "Traceback" not in first.stderr + second.stderr


def test_a_probe_that_succeeds_in_one_server_closes_the_circuit_in_the_other(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    first = serve(tmp_path, "first", upstream, cooldown_s=1)
    second = serve(tmp_path, "second", upstream, cooldown_s=1)
    try:
        upstream.add_fault(Fault(kind="status", status=503, model=GROQ, times=1))
        chat(first.url, "trip it")
        wait_until(lambda: model_status(second.url) == "cooling down", "second sees it open")
        # After the cooldown the second server's probe finds the model answering again...
        wait_until(lambda: chat(second.url, "probe")["model_used"] == GROQ, "the probe is answered")
        # ...and the first, which opened the circuit, hears of it without a probe of its own.
        wait_until(lambda: model_status(first.url) != "cooling down", "first sees it closed")
        answered = chat(first.url, "back to normal")
        assert answered["model_used"] == GROQ and answered["fallback_used"] is False
    finally:
        first.kill()
        second.kill()
