"""Routing gaps (issue 15): a candidate whose provider is not configured, and candidates too
small for the request's context. Real SDKs against the fake upstream; nothing patched."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import fake_settings

from llmrouter_tui.core.errors import UnknownModelError
from llmrouter_tui.core.runtime import Runtime
from llmrouter_tui.core.types import ChatRequest, Result
from llmrouter_tui.testing.fake_upstream import FakeUpstream, Fault

GROQ = "openai/gpt-oss-20b"
GROQ_BIG = "openai/gpt-oss-120b"
GEMINI = "gemini-3.5-flash"
LOCAL = "llama3.2"
# 2,001 tokens in o200k_base (2,008 with the chat overhead), and 1,001 (1,008).
LONG = "word " * 2000
MEDIUM = "word " * 1000


@pytest.fixture
async def make(upstream: FakeUpstream, tmp_path: Path) -> AsyncIterator[Callable[..., Runtime]]:
    """Runtimes whose `[models."ID"]` tables are extended or changed by `models`."""
    made: list[Runtime] = []

    def build(models: dict[str, dict[str, Any]], **routing: Any) -> Runtime:
        settings = fake_settings(upstream.base_url, tmp_path / f"data{len(made)}", **routing)
        merged = {model: dict(table) for model, table in settings.models.items()}
        for model, table in models.items():
            merged.setdefault(model, {}).update(table)
        made.append(Runtime(replace(settings, models=merged)))
        return made[-1]

    yield build
    for runtime in made:
        await runtime.aclose()


def posts(upstream: FakeUpstream, model: str) -> int:
    return len([r for r in upstream.requests_for(model) if r.method == "POST"])


def outcomes(result: Result) -> list[tuple[str, str]]:
    return [(a.model, a.outcome) for a in result.attempts]


# ---- a provider that is not configured ------------------------------------------------------

# `helper` is named by a model but has no [providers.helper] (left out, say, by the
# working-directory rule): its model must be skipped as a fallback, and refused when asked for.
HELPER = {"helper-model": {"provider": "helper"}}


async def test_a_fallback_whose_provider_is_not_configured_is_skipped_with_the_reason(
    make, upstream
):
    runtime = make({**HELPER, LOCAL: {"fallbacks": ["helper-model", GEMINI]}}, max_retries=0)
    upstream.add_fault(Fault(kind="status", status=503, model=LOCAL))
    result = await runtime.router.complete(ChatRequest(model=LOCAL, prompt="hello"))
    assert result.status == "ok" and result.model_used == GEMINI
    assert outcomes(result) == [
        (LOCAL, "error"),
        ("helper-model", "skipped_no_provider"),
        (GEMINI, "ok"),
    ]
    message = result.attempts[1].message or ""
    assert "provider 'helper' is not configured" in message and "[providers.helper]" in message


async def test_the_last_candidate_with_no_provider_is_skipped_too(make, upstream):
    runtime = make({**HELPER, LOCAL: {"fallbacks": ["helper-model"]}}, max_retries=0)
    upstream.add_fault(Fault(kind="status", status=503, model=LOCAL))
    result = await runtime.router.complete(ChatRequest(model=LOCAL, prompt="hello"))
    assert result.status == "error" and result.error_kind == "all_failed"
    assert outcomes(result)[-1] == ("helper-model", "skipped_no_provider")
    assert "not configured" in (result.error or "")


async def test_requesting_a_model_whose_provider_is_not_configured_names_it(make, upstream):
    runtime = make(HELPER)
    with pytest.raises(UnknownModelError) as caught:
        runtime.router.prepare(ChatRequest(model="helper-model", prompt="hello"))
    text = str(caught.value)
    assert "'helper-model'" in text and "provider 'helper' is not configured" in text
    assert "[providers.helper]" in text
    assert upstream.requests == []


# ---- context windows --------------------------------------------------------------------------


async def test_a_context_length_refusal_skips_candidates_with_no_larger_window(make, upstream):
    """GROQ and GROQ_BIG take 131,072 tokens, GEMINI 1M: after GROQ says "too long", only
    GEMINI is asked."""
    runtime = make({})
    upstream.add_fault(Fault(kind="context_length", model=GROQ))
    result = await runtime.router.complete(ChatRequest(model=GROQ, prompt="a long one"))
    assert result.status == "ok" and result.model_used == GEMINI
    assert outcomes(result) == [(GROQ, "error"), (GROQ_BIG, "skipped_context"), (GEMINI, "ok")]
    skip = result.attempts[1].message or ""
    assert "131,072-token context window" in skip and "already refused" in skip
    assert posts(upstream, GROQ_BIG) == 0


async def test_a_model_with_an_unknown_window_stays_eligible(make, upstream):
    fallbacks = ["groq:brand-new-model", GROQ_BIG, GEMINI]
    runtime = make({GROQ: {"fallbacks": fallbacks}})
    upstream.add_fault(Fault(kind="context_length", model=GROQ))
    result = await runtime.router.complete(ChatRequest(model=GROQ, prompt="a long one"))
    assert result.status == "ok" and result.model_used == "groq:brand-new-model"
    assert posts(upstream, "brand-new-model") == 1


async def test_a_request_clearly_too_long_is_not_sent_to_a_small_model(make, upstream):
    runtime = make({GROQ: {"context_window": 1000}})
    result = await runtime.router.complete(ChatRequest(model=GROQ, prompt=LONG))
    assert result.status == "ok" and result.model_used == GROQ_BIG
    assert outcomes(result) == [(GROQ, "skipped_context"), (GROQ_BIG, "ok")]
    skip = result.attempts[0].message or ""
    assert "1,000-token context window" in skip and "2,008 tokens (estimated)" in skip
    assert posts(upstream, GROQ) == 0


async def test_an_estimate_within_the_margin_is_still_sent(make, upstream):
    """2,008 estimated tokens against a 1,900-token window: over, but within 10% (our count is
    an estimate), so the model decides."""
    runtime = make({GROQ: {"context_window": 1900}})
    result = await runtime.router.complete(ChatRequest(model=GROQ, prompt=LONG))
    assert result.status == "ok" and result.model_used == GROQ
    assert posts(upstream, GROQ) == 1


async def test_max_tokens_counts_where_the_window_holds_the_reply(make, upstream):
    """1,008 prompt tokens + max_tokens 1,200 exceed 1,900 by more than 10% for an OpenAI-style
    window; Gemini's window is input only, so there the same request fits."""
    runtime = make({GROQ: {"context_window": 1900}, GEMINI: {"context_window": 1900}})
    request = ChatRequest(model=GROQ, prompt=MEDIUM, max_tokens=1200)
    result = await runtime.router.complete(request)
    assert outcomes(result) == [(GROQ, "skipped_context"), (GROQ_BIG, "ok")]
    assert "+ max_tokens 1,200" in (result.attempts[0].message or "")
    gemini = await runtime.router.complete(replace(request, model=GEMINI))
    assert outcomes(gemini) == [(GEMINI, "ok")]


async def test_too_long_for_every_candidate_is_the_callers_error(make, upstream):
    small = {"context_window": 500}
    runtime = make({GROQ: small, GROQ_BIG: small, GEMINI: small})
    result = await runtime.router.complete(ChatRequest(model=GROQ, prompt=LONG))
    assert result.status == "error" and result.error_kind == "context_length"
    assert [a.outcome for a in result.attempts] == ["skipped_context"] * 3
    assert "too long for every candidate's context window" in (result.error or "")
    assert upstream.requests == []
