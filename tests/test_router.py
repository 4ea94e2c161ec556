"""The router against the fake upstream, through the real groq, google-genai and httpx clients."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest
from conftest import GEMINI_KEY, GROQ_KEY
from waiting import HANG_S, until

from llmrouter_tui.core.config import ProviderSettings
from llmrouter_tui.core.errors import InputError, MissingVariablesError, UnknownModelError
from llmrouter_tui.core.logsinks import read_csv, read_jsonl
from llmrouter_tui.core.runtime import Runtime
from llmrouter_tui.core.types import (
    AttemptFailed,
    ChatRequest,
    Delta,
    Done,
    Failed,
    Message,
    Restart,
    Started,
)
from llmrouter_tui.testing.fake_payloads import default_reply
from llmrouter_tui.testing.fake_upstream import FakeUpstream, Fault

GROQ = "openai/gpt-oss-20b"
GROQ_BIG = "openai/gpt-oss-120b"
GEMINI = "gemini-3.5-flash"
LOCAL = "llama3.2"


def chat_requests(fake: FakeUpstream, model: str) -> list:
    return [r for r in fake.requests_for(model) if r.method == "POST"]


async def collect(runtime: Runtime, request: ChatRequest, **kw) -> list:
    return [event async for event in runtime.router.stream(request, **kw)]


# ---- each provider, whole and streamed ---------------------------------------------------


@pytest.mark.parametrize(
    ("model", "provider", "api_model"),
    [(GROQ, "groq", GROQ), (GEMINI, "gemini", GEMINI), (LOCAL, "openai", LOCAL)],
)
async def test_each_provider_answers_whole(make_runtime, upstream, model, provider, api_model):
    runtime = make_runtime()
    result = await runtime.router.complete(ChatRequest(model=model, prompt="What is 2+2?"))
    expected = default_reply(provider, api_model, [{"role": "user", "content": "What is 2+2?"}])
    assert result.status == "ok", result.error
    assert result.response_text == expected
    assert result.model_used == model
    assert not result.fallback_used and not result.from_cache
    assert result.usage.total > 0 and not result.usage.estimated
    assert result.finish_reason == "stop"
    assert [a.outcome for a in result.attempts] == ["ok"]
    assert len(chat_requests(upstream, api_model)) == 1
    assert chat_requests(upstream, api_model)[0].stream  # we always stream from providers


@pytest.mark.parametrize("model", [GROQ, GEMINI, LOCAL])
async def test_each_provider_streams_deltas(make_runtime, upstream, model):
    runtime = make_runtime()
    events = await collect(runtime, ChatRequest(model=model, prompt="stream please"))
    assert isinstance(events[0], Started)
    deltas = [e.text for e in events if isinstance(e, Delta)]
    assert len(deltas) > 5
    assert isinstance(events[-1], Done)
    assert "".join(deltas) == events[-1].result.response_text
    assert events[-1].result.ttft_ms is not None
    assert events[-1].result.ttft_ms <= events[-1].result.latency_ms


async def test_provider_receives_keys_system_and_parameters(make_runtime, upstream):
    runtime = make_runtime()
    await runtime.router.complete(
        ChatRequest(model=GROQ, prompt="hi", system="be brief", temperature=0.2, max_tokens=50)
    )
    await runtime.router.complete(
        ChatRequest(model=GEMINI, prompt="hi", system="be brief", temperature=0.2, max_tokens=50)
    )
    groq_req = chat_requests(upstream, GROQ)[0]
    assert groq_req.api_key == GROQ_KEY
    assert groq_req.body["messages"][0] == {"role": "system", "content": "be brief"}
    assert groq_req.body["temperature"] == 0.2
    assert groq_req.body["max_completion_tokens"] == 50
    gem_req = chat_requests(upstream, GEMINI)[0]
    assert gem_req.api_key == GEMINI_KEY
    assert "/v1beta/" in gem_req.path
    assert gem_req.body["systemInstruction"]["parts"][0]["text"] == "be brief"
    assert gem_req.body["generationConfig"]["maxOutputTokens"] == 50


async def test_multi_turn_messages_reach_provider(make_runtime, upstream):
    runtime = make_runtime()
    history = [
        Message("user", "My name is Ada."),
        Message("assistant", "Hello Ada."),
        Message("user", "What is my name?"),
    ]
    result = await runtime.router.complete(ChatRequest(model=GEMINI, messages=history))
    assert result.status == "ok"
    body = chat_requests(upstream, GEMINI)[0].body
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert result.prompt == "What is my name?"


# ---- retries --------------------------------------------------------------------------------


async def test_500_once_then_healthy_retries_same_model(make_runtime, upstream):
    upstream.add_fault(Fault(kind="status", status=500, model=GROQ, times=1))
    result = await make_runtime().router.complete(ChatRequest(model=GROQ, prompt="x"))
    assert result.status == "ok" and result.model_used == GROQ
    assert not result.fallback_used
    assert [(a.outcome, a.status) for a in result.attempts] == [("error", 500), ("ok", None)]
    assert len(chat_requests(upstream, GROQ)) == 2


async def test_503_persistent_bounded_retries_then_fallback(make_runtime, upstream):
    upstream.add_fault(Fault(kind="status", status=503, model=GROQ))
    result = await make_runtime().router.complete(ChatRequest(model=GROQ, prompt="x"))
    assert result.status == "ok"
    assert result.model_used == GROQ_BIG and result.fallback_used
    assert len(chat_requests(upstream, GROQ)) == 3  # 1 + max_retries
    assert [a.model for a in result.attempts] == [GROQ, GROQ, GROQ, GROQ_BIG]


async def test_503_with_nowhere_to_go_surfaces_original_error(make_runtime, upstream):
    upstream.add_fault(Fault(kind="status", status=503, message="The model is overloaded."))
    result = await make_runtime().router.complete(ChatRequest(model=GROQ, prompt="x"))
    assert result.status == "error" and result.error_kind == "all_failed"
    assert "503" in result.error and "overloaded" in result.error
    assert len(result.attempts) == 9  # three candidates, three attempts each


async def test_429_retry_after_is_honoured(make_runtime, upstream):
    upstream.add_fault(Fault(kind="status", status=429, model=GROQ, times=1, retry_after_s=0.4))
    result = await make_runtime().router.complete(ChatRequest(model=GROQ, prompt="x"))
    assert result.status == "ok" and result.model_used == GROQ
    first, second = chat_requests(upstream, GROQ)
    assert second.t - first.t >= 0.4


async def test_429_retry_after_ms_header(make_runtime, upstream):
    upstream.add_fault(Fault(kind="status", status=429, model=GROQ, times=1, retry_after_ms=300))
    await make_runtime().router.complete(ChatRequest(model=GROQ, prompt="x"))
    first, second = chat_requests(upstream, GROQ)
    assert second.t - first.t >= 0.3


async def test_gemini_retry_info_is_honoured(make_runtime, upstream):
    upstream.add_fault(Fault(kind="status", status=429, model=GEMINI, times=1, retry_after_s=0.3))
    result = await make_runtime().router.complete(ChatRequest(model=GEMINI, prompt="x"))
    assert result.status == "ok" and result.model_used == GEMINI
    first, second = chat_requests(upstream, GEMINI)
    assert second.t - first.t >= 0.3


async def test_retry_after_beyond_limit_falls_back_immediately(make_runtime, upstream):
    upstream.add_fault(Fault(kind="status", status=429, model=GROQ, retry_after_s=60))
    # Waiting out the 60 s Retry-After would not fit in the hang bound.
    complete = make_runtime().router.complete(ChatRequest(model=GROQ, prompt="x"))
    result = await asyncio.wait_for(complete, HANG_S)
    assert result.model_used == GROQ_BIG
    assert len(chat_requests(upstream, GROQ)) == 1


async def test_429_without_retry_after_backs_off_with_growing_gaps(make_runtime, upstream):
    upstream.add_fault(Fault(kind="status", status=429, model=GROQ))
    runtime = make_runtime(backoff_initial_s=0.1, backoff_max_s=1.0)
    result = await runtime.router.complete(ChatRequest(model=GROQ, prompt="x"))
    assert result.model_used == GROQ_BIG
    times = [r.t for r in chat_requests(upstream, GROQ)]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.05  # 0.1 s step, jitter keeps at least half
    assert times[2] - times[1] >= 0.1  # 0.2 s step


async def test_connection_reset_before_any_byte_is_retried(make_runtime, upstream):
    upstream.add_fault(Fault(kind="reset", model=GROQ, times=1))
    result = await make_runtime().router.complete(ChatRequest(model=GROQ, prompt="x"))
    assert result.status == "ok" and result.model_used == GROQ
    assert result.attempts[0].error == "connect_error"


@pytest.mark.parametrize("kind", ["groq", "gemini", "openai"])
async def test_connection_refused_retries_then_falls_back(make_runtime, upstream, kind):
    runtime = make_runtime()
    refused = FakeUpstream.refused_url()
    name = {"groq": "groq", "gemini": "gemini", "openai": "local"}[kind]
    settings = runtime.settings
    broken = replace(
        settings.providers[name], base_url=refused + ("/v1" if kind == "openai" else "")
    )
    runtime = make_runtime()
    runtime.router.providers.settings[name] = broken
    model = {"groq": GROQ, "gemini": GEMINI, "openai": LOCAL}[kind]
    result = await runtime.router.complete(ChatRequest(model=model, prompt="x"))
    assert result.status == "ok" and result.fallback_used
    assert [a.error for a in result.attempts[:3]] == ["connect_error"] * 3


# ---- no same-model retry: fall over ---------------------------------------------------------


async def test_silent_upstream_falls_over_without_waiting_again(make_runtime, upstream):
    upstream.add_fault(Fault(kind="silent", model=GROQ))
    started = time.monotonic()
    result = await make_runtime().router.complete(ChatRequest(model=GROQ, prompt="x"))
    elapsed = time.monotonic() - started
    assert result.status == "ok" and result.model_used == GROQ_BIG
    assert len(chat_requests(upstream, GROQ)) == 1
    assert result.attempts[0].error == "first_token_timeout"
    assert elapsed > 0.5  # the first-token deadline (0.6 s) was waited out once, no more


async def test_slow_first_token_falls_over(make_runtime, upstream):
    upstream.add_fault(Fault(kind="slow_first_token", model=GEMINI, delay_s=2))
    result = await make_runtime().router.complete(ChatRequest(model=GEMINI, prompt="x"))
    assert result.status == "ok" and result.fallback_used
    assert result.attempts[0].error == "first_token_timeout"


@pytest.mark.parametrize("model", [GROQ, GEMINI, LOCAL])
async def test_stream_cut_mid_answer_restarts_on_fallback(make_runtime, upstream, model):
    """With continuation off (tests/test_continuation.py has it on): restart, as before."""
    upstream.add_fault(Fault(kind="cut", model=model, after_chunks=3))
    runtime = make_runtime(continue_broken_streams=False)
    events = await collect(runtime, ChatRequest(model=model, prompt="x"))
    restarts = [e for e in events if isinstance(e, Restart)]
    assert len(restarts) == 1
    result = events[-1].result
    assert isinstance(events[-1], Done) and result.fallback_used
    assert result.attempts[0].error == "stream_cut"
    after_restart = events[events.index(restarts[0]) + 1 :]
    assert "".join(e.text for e in after_restart if isinstance(e, Delta)) == result.response_text
    assert len(chat_requests(upstream, model)) == 1  # never retried on the same model


async def test_stream_cut_for_streaming_caller_is_an_explicit_failure(make_runtime, upstream):
    upstream.add_fault(Fault(kind="cut", model=GROQ, after_chunks=3))
    runtime = make_runtime(continue_broken_streams=False)  # nothing can be continued
    events = await collect(runtime, ChatRequest(model=GROQ, prompt="x"), allow_restart=False)
    assert isinstance(events[-1], Failed)
    result = events[-1].result
    assert result.status == "error" and result.error_kind == "stream_failed"
    assert result.response_text  # the partial text is kept, but never as success
    assert not any(isinstance(e, Restart) for e in events)


async def test_fallback_before_first_token_is_transparent_for_streaming_caller(
    make_runtime, upstream
):
    upstream.add_fault(Fault(kind="status", status=404, model=GROQ))
    events = await collect(make_runtime(), ChatRequest(model=GROQ, prompt="x"), allow_restart=False)
    assert isinstance(events[-1], Done) and events[-1].result.model_used == GROQ_BIG


@pytest.mark.slow
async def test_stream_stall_falls_over(make_runtime, upstream):
    upstream.add_fault(Fault(kind="stall", model=LOCAL, after_chunks=2, delay_s=3))
    result = await make_runtime().router.complete(ChatRequest(model=LOCAL, prompt="x"))
    assert result.status == "ok" and result.model_used == GEMINI
    assert result.attempts[0].error == "stream_stalled"


@pytest.mark.parametrize("model", [GROQ, GEMINI, LOCAL])
async def test_malformed_chunk_never_crashes(make_runtime, upstream, model):
    upstream.add_fault(Fault(kind="malformed_chunk", model=model, after_chunks=1))
    result = await make_runtime().router.complete(ChatRequest(model=model, prompt="x"))
    assert result.status == "ok" and result.fallback_used
    assert result.attempts[0].outcome == "error"


@pytest.mark.parametrize("model", [GROQ, LOCAL])
async def test_stream_without_done_finishes_with_usage(make_runtime, upstream, model):
    upstream.add_fault(Fault(kind="no_done", model=model))
    result = await make_runtime().router.complete(ChatRequest(model=model, prompt="x"))
    # One attempt: the end of the body ended it, not an idle timeout and a retry.
    assert [a.outcome for a in result.attempts] == ["ok"]
    assert result.status == "ok" and result.model_used == model
    assert result.usage.total > 0 and not result.usage.estimated


async def test_context_length_exceeded_goes_to_a_model_with_a_larger_window(make_runtime, upstream):
    # GROQ and GROQ_BIG both take 131,072 tokens: only GEMINI's 1M window may take it.
    upstream.add_fault(Fault(kind="context_length", model=GROQ))
    result = await make_runtime().router.complete(ChatRequest(model=GROQ, prompt="x"))
    assert result.status == "ok" and result.model_used == GEMINI
    assert result.attempts[0].error == "context_length"
    assert [a.outcome for a in result.attempts[1:]] == ["skipped_context", "ok"]
    assert len(chat_requests(upstream, GROQ)) == 1 and chat_requests(upstream, GROQ_BIG) == []


async def test_context_length_exceeded_with_no_larger_window_is_the_callers_error(
    make_runtime, upstream
):
    # GEMINI's fallbacks take 1M (the same) and 131,072 tokens: neither is asked.
    upstream.add_fault(Fault(kind="context_length", model=GEMINI))
    result = await make_runtime().router.complete(ChatRequest(model=GEMINI, prompt="x"))
    assert result.status == "error" and result.error_kind == "context_length"
    assert [a.outcome for a in result.attempts] == ["error", "skipped_context", "skipped_context"]
    assert "too long for every candidate" in result.error
    assert [len(chat_requests(upstream, m)) for m in (GEMINI, "gemini-3.5-flash-lite")] == [1, 0]
    assert chat_requests(upstream, GROQ_BIG) == []


@pytest.mark.parametrize("model", [GROQ, GEMINI])
async def test_content_filter_is_one_attempt_and_a_clean_error(make_runtime, upstream, model):
    upstream.add_fault(Fault(kind="content_filter", model=model))
    result = await make_runtime().router.complete(ChatRequest(model=model, prompt="x"))
    assert result.status == "error" and result.error_kind == "content_filter"
    assert len(result.attempts) == 1
    assert "filter" in result.error.lower() or "block" in result.error.lower()


async def test_content_filter_falls_back_when_configured(make_runtime, upstream):
    upstream.add_fault(Fault(kind="content_filter", model=GROQ))
    runtime = make_runtime(fallback_on_content_filter=True)
    result = await runtime.router.complete(ChatRequest(model=GROQ, prompt="x"))
    assert result.status == "ok" and result.model_used == GROQ_BIG


async def test_invalid_groq_key_falls_back_without_retry(make_runtime, upstream):
    upstream.valid_keys = {"groq": "gsk_the_real_one"}
    try:
        result = await make_runtime().router.complete(ChatRequest(model=GROQ, prompt="x"))
    finally:
        upstream.valid_keys = None
    assert result.attempts[0].status == 401 and result.attempts[0].error == "auth"
    assert result.status == "ok" and result.provider == "gemini"
    assert len(chat_requests(upstream, GROQ)) == 1
    assert GROQ_KEY not in repr(result.as_dict())


async def test_invalid_gemini_key_400_is_auth_not_caller_error(make_runtime, upstream):
    upstream.valid_keys = {"gemini": "AIza_the_real_one"}
    try:
        result = await make_runtime().router.complete(ChatRequest(model=GEMINI, prompt="x"))
    finally:
        upstream.valid_keys = None
    assert result.attempts[0].status == 400 and result.attempts[0].error == "auth"
    assert result.status == "ok" and result.fallback_used


async def test_404_model_falls_back_once(make_runtime, upstream):
    upstream.add_fault(Fault(kind="status", status=404, model=GEMINI))
    result = await make_runtime().router.complete(ChatRequest(model=GEMINI, prompt="x"))
    assert result.attempts[0].error == "not_found"
    assert len(chat_requests(upstream, GEMINI)) == 1
    assert result.status == "ok"


async def test_other_400_is_the_callers_error(make_runtime, upstream):
    upstream.add_fault(Fault(kind="status", status=400, model=GROQ, code="invalid_request"))
    result = await make_runtime().router.complete(ChatRequest(model=GROQ, prompt="x"))
    assert result.status == "error" and result.error_kind == "bad_request"
    assert len(result.attempts) == 1


async def test_missing_key_is_skipped_and_recorded(make_runtime, upstream):
    runtime = make_runtime(without=("groq",))
    result = await runtime.router.complete(ChatRequest(model=GROQ, prompt="Fallback test."))
    assert result.status == "ok" and result.provider == "gemini"
    assert [a.outcome for a in result.attempts[:2]] == ["skipped_no_key", "skipped_no_key"]
    assert "GROQ_API_KEY" in result.attempts[0].message
    assert chat_requests(upstream, GROQ) == []


# ---- circuit breaker ------------------------------------------------------------------------


async def test_circuit_opens_skips_then_probe_closes(make_runtime, upstream):
    runtime = make_runtime(max_retries=0, cooldown_failures=2, cooldown_s=0.4)
    upstream.add_fault(Fault(kind="status", status=503, model=GROQ, times=2))
    for _ in range(2):
        result = await runtime.router.complete(ChatRequest(model=GROQ, prompt="x"))
        assert result.model_used == GROQ_BIG
    assert runtime.router.model_state(f"groq:{GROQ}") == "open"
    skipped = await runtime.router.complete(ChatRequest(model=GROQ, prompt="y"))
    assert skipped.attempts[0].outcome == "skipped_circuit_open"
    assert len(chat_requests(upstream, GROQ)) == 2
    rows = {r["id"]: r["status"] for r in runtime.model_rows()}
    assert rows[GROQ] == "cooling down"
    await asyncio.sleep(0.45)  # the cooldown (0.4 s) passing is what is under test
    probe = await runtime.router.complete(ChatRequest(model=GROQ, prompt="z"))
    assert probe.model_used == GROQ and probe.status == "ok"
    assert runtime.router.model_state(f"groq:{GROQ}") == "closed"


async def test_failed_probe_reopens(make_runtime, upstream):
    runtime = make_runtime(max_retries=0, cooldown_failures=1, cooldown_s=0.3)
    upstream.add_fault(Fault(kind="status", status=503, model=GROQ))
    await runtime.router.complete(ChatRequest(model=GROQ, prompt="a"))
    await asyncio.sleep(0.35)  # the cooldown (0.3 s) passing is what is under test
    probe = await runtime.router.complete(ChatRequest(model=GROQ, prompt="b"))
    assert probe.attempts[0].status == 503  # the probe went through and failed
    assert runtime.router.model_state(f"groq:{GROQ}") == "open"


async def test_last_candidate_is_tried_even_when_open(make_runtime, upstream):
    runtime = make_runtime(max_retries=0, cooldown_failures=1, cooldown_s=30)
    upstream.add_fault(Fault(kind="status", status=503, model=LOCAL, times=1))
    upstream.add_fault(Fault(kind="status", status=503, model=GEMINI, times=1))
    first = await runtime.router.complete(ChatRequest(model=LOCAL, prompt="a"))
    assert first.status == "error"
    second = await runtime.router.complete(ChatRequest(model=LOCAL, prompt="b"))
    assert second.attempts[0].outcome == "skipped_circuit_open"
    assert second.model_used == GEMINI and second.status == "ok"


# ---- deadlines ------------------------------------------------------------------------------


@pytest.mark.slow
async def test_total_deadline_bounds_the_request(make_runtime, upstream):
    upstream.add_fault(Fault(kind="silent"))
    # Every other deadline is longer than the hang bound: only the total one can end it.
    runtime = make_runtime(
        total_timeout_s=1.0, first_token_timeout_s=3 * HANG_S, attempt_timeout_s=3 * HANG_S
    )
    complete = runtime.router.complete(ChatRequest(model=GROQ, prompt="x"))
    result = await asyncio.wait_for(complete, HANG_S)
    assert result.status == "error" and result.error_kind == "deadline"
    assert "total_timeout_s" in result.error


@pytest.mark.slow
async def test_attempt_timeout_cuts_a_slow_stream(make_runtime, upstream):
    upstream.chunk_delay_s = 0.1
    runtime = make_runtime(attempt_timeout_s=0.5, stream_idle_timeout_s=0.4)
    result = await runtime.router.complete(ChatRequest(model=LOCAL, prompt="x"))
    assert result.attempts[0].outcome == "timeout"
    assert result.status == "error"  # every candidate streams too slowly
    assert result.response_text == ""  # never a truncated answer as success


# ---- cache ----------------------------------------------------------------------------------


async def test_cache_hit_bypass_and_write(make_runtime, upstream):
    runtime = make_runtime()
    first = await runtime.router.complete(ChatRequest(model=GROQ, prompt="cache me"))
    second = await runtime.router.complete(ChatRequest(model=GROQ, prompt="cache me"))
    assert not first.from_cache and second.from_cache
    assert second.response_text == first.response_text
    assert second.prompt_id != first.prompt_id
    assert second.latency_ms > 0 and second.attempts[0].outcome == "cache_hit"
    assert len(chat_requests(upstream, GROQ)) == 1
    bypass = await runtime.router.complete(
        ChatRequest(model=GROQ, prompt="cache me", ignore_cache=True)
    )
    assert not bypass.from_cache
    assert len(chat_requests(upstream, GROQ)) == 2
    different = await runtime.router.complete(
        ChatRequest(model=GROQ, prompt="cache me", temperature=0.5)
    )
    assert not different.from_cache


async def test_cache_survives_restart_and_fallback_reply_is_cached_per_model(
    make_runtime, upstream, tmp_path
):
    runtime = make_runtime(data_dir=tmp_path / "shared")
    await runtime.router.complete(ChatRequest(model=GEMINI, prompt="persist"))
    again = make_runtime(data_dir=tmp_path / "shared")
    hit = await again.router.complete(ChatRequest(model=GEMINI, prompt="persist"))
    assert hit.from_cache


async def test_failed_and_cut_replies_are_not_cached(make_runtime, upstream):
    runtime = make_runtime(max_retries=0, continue_broken_streams=False)
    upstream.add_fault(Fault(kind="cut", model=LOCAL, times=1))
    upstream.add_fault(Fault(kind="cut", model=GEMINI, times=1))
    failed = await runtime.router.complete(ChatRequest(model=LOCAL, prompt="cut"))
    assert failed.status == "error"
    retry = await runtime.router.complete(ChatRequest(model=LOCAL, prompt="cut"))
    assert retry.status == "ok" and not retry.from_cache


# ---- recording ------------------------------------------------------------------------------


async def test_success_and_failure_are_recorded_once_in_every_sink(make_runtime, upstream):
    runtime = make_runtime(max_retries=0)
    ok = await runtime.router.complete(ChatRequest(model=GROQ, prompt="=SUM(A1:A2)"))
    upstream.add_fault(Fault(kind="status", status=503))
    bad = await runtime.router.complete(ChatRequest(model=GROQ, prompt="doomed"))
    store = runtime.store
    assert store.get_request(ok.prompt_id)["status"] == "ok"
    assert store.get_request(bad.prompt_id)["status"] == "error"
    attempts = store.request_attempts(bad.prompt_id)
    assert [a["outcome"] for a in attempts] == ["error", "error", "error"]
    rows, warnings = read_jsonl(store.logs_dir / "prompts.jsonl")
    assert warnings == []
    assert [r["prompt_id"] for r in rows] == [ok.prompt_id, bad.prompt_id]
    assert rows[1]["status"] == "error" and len(rows[1]["attempts"]) == 3
    csv_rows, csv_warnings = read_csv(store.logs_dir / "prompts.csv")
    assert csv_warnings == []
    assert [r["prompt_id"] for r in csv_rows] == [ok.prompt_id, bad.prompt_id]
    assert csv_rows[0]["prompt"].startswith("'=")  # formula injection neutralised
    stats = store.stats()
    assert stats["total_prompts"] == 2 and stats["errors"] == 1


async def test_fallback_attempts_are_attempts_not_completions(make_runtime, upstream):
    upstream.add_fault(Fault(kind="status", status=503, model=GROQ))
    runtime = make_runtime(max_retries=0)
    result = await runtime.router.complete(ChatRequest(model=GROQ, prompt="x"))
    stats = runtime.store.stats()
    assert stats["total_prompts"] == 1 and stats["total_fallbacks"] == 1
    assert stats["model_usage"] == {GROQ_BIG: 1}
    assert len(runtime.store.request_attempts(result.prompt_id)) == 2


async def test_cancelled_request_is_recorded_as_cancelled(make_runtime, upstream):
    upstream.chunk_delay_s = 0.05
    runtime = make_runtime()
    seen: list[str] = []
    prompt_ids: list[str] = []

    async def consume() -> None:
        async for event in runtime.router.stream(ChatRequest(model=GROQ, prompt="long")):
            if isinstance(event, Started):
                prompt_ids.append(event.prompt_id)
            if isinstance(event, Delta):
                seen.append(event.text)

    task = asyncio.create_task(consume())
    await until(lambda: len(seen) >= 3, "three streamed deltas")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await runtime.store.writer.drained()  # written on the writer thread, off the loop
    row = runtime.store.get_request(prompt_ids[0])
    assert row["status"] == "cancelled"
    assert row["response"].startswith("".join(seen[:3]))


async def test_listeners_hear_every_recorded_request(make_runtime, upstream):
    runtime = make_runtime()
    heard = []
    runtime.on_request(heard.append)
    result = await runtime.router.complete(ChatRequest(model=GROQ, prompt="x"))
    assert [r.prompt_id for r in heard] == [result.prompt_id]


# ---- models, templates, input ---------------------------------------------------------------


async def test_retired_model_is_remapped_and_says_so(make_runtime, upstream):
    runtime = make_runtime()
    result = await runtime.router.complete(
        ChatRequest(model="llama-3.1-8b-instant", prompt="What is the capital of France?")
    )
    assert result.requested_model == "llama-3.1-8b-instant"
    assert result.model_used == GROQ and not result.fallback_used
    assert "retired" in result.notice and GROQ in result.notice
    assert chat_requests(upstream, "llama-3.1-8b-instant") == []


async def test_truncated_reply_is_never_reported_as_complete(make_runtime, upstream):
    upstream.add_fault(Fault(kind="truncated_length", model=GEMINI))
    result = await make_runtime().router.complete(
        ChatRequest(model=GEMINI, prompt="x", max_tokens=5)
    )
    assert result.status == "ok" and result.truncated
    assert result.finish_reason == "length"
    assert "max_tokens" in result.notice


async def test_template_renders_before_sending(make_runtime, upstream):
    runtime = make_runtime()
    result = await runtime.router.complete(
        ChatRequest(
            model=GROQ,
            template_id="friendly",
            template_vars={"audience": "kids", "topic": "gravity"},
        )
    )
    sent = chat_requests(upstream, GROQ)[0].body["messages"][-1]["content"]
    assert sent == "Explain the following in a friendly way for kids: gravity"
    assert result.template_id == "friendly"
    assert runtime.store.get_request(result.prompt_id)["template_id"] == "friendly"


async def test_bad_input_is_refused_before_any_request(make_runtime, upstream):
    router = make_runtime().router
    with pytest.raises(MissingVariablesError, match="topic"):
        router.prepare(ChatRequest(template_id="friendly", template_vars={"audience": "x"}))
    with pytest.raises(UnknownModelError):
        router.prepare(ChatRequest(model="gpt-17", prompt="x"))
    for bad in (
        ChatRequest(prompt="   "),
        ChatRequest(prompt=42),  # type: ignore[arg-type]
        ChatRequest(),
        ChatRequest(prompt="x", temperature=9),
        ChatRequest(prompt="x", max_tokens=0),
        ChatRequest(messages=[{"role": "wizard", "content": "x"}]),  # type: ignore[list-item]
        ChatRequest(messages=[Message("assistant", "x")]),
    ):
        with pytest.raises(InputError):
            router.prepare(bad)
    assert upstream.requests == []


async def test_openai_kind_without_key_needs_none(make_runtime, upstream):
    runtime = make_runtime()
    assert isinstance(runtime.settings.providers["local"], ProviderSettings)
    result = await runtime.router.complete(ChatRequest(model="local:some-model", prompt="x"))
    assert result.status == "ok" and result.model_used == "local:some-model"
    assert chat_requests(upstream, "some-model")[0].api_key in (None, "")


async def test_events_report_each_failed_attempt(make_runtime, upstream):
    upstream.add_fault(Fault(kind="status", status=503, model=GROQ, times=1))
    events = await collect(make_runtime(), ChatRequest(model=GROQ, prompt="x"))
    failed = [e for e in events if isinstance(e, AttemptFailed)]
    assert len(failed) == 1 and failed[0].will_retry_in_s is not None


async def test_requests_finishing_together_share_one_record_batch(make_runtime, upstream):
    runtime = make_runtime()
    await runtime.router.complete(ChatRequest(model=GROQ, prompt="batched"))
    store = runtime.store
    batches: list[int] = []
    record_many = store.record_many

    def counting(results, cache_writes=()):  # observes the real store, changes nothing
        batches.append(len(results))
        return record_many(results, cache_writes)

    store.record_many = counting  # type: ignore[method-assign]
    results = await asyncio.gather(
        *(runtime.router.complete(ChatRequest(model=GROQ, prompt="batched")) for _ in range(20))
    )
    assert all(r.from_cache and r.warnings == [] for r in results)
    assert sum(batches) == 20 and len(batches) < 20
    ids = {r.prompt_id for r in results}
    jsonl = {r["prompt_id"] for r in read_jsonl(store.logs_dir / "prompts.jsonl")[0]}
    csv_ids = [r["prompt_id"] for r in read_csv(store.logs_dir / "prompts.csv")[0]]
    assert ids <= jsonl and ids <= set(csv_ids) and len(csv_ids) == len(set(csv_ids)) == 21
    assert all(store.get_request(i)["from_cache"] for i in ids)
    assert store.stats()["cache_hits"] == 20


async def test_a_caller_cancelled_while_its_record_waits_is_still_recorded_once(
    make_runtime, upstream
):
    from llmrouter_tui.core.record_batch import RecordBatcher

    runtime = make_runtime()
    done = await runtime.router.complete(ChatRequest(model=GROQ, prompt="once"))
    twin = replace(done, prompt_id="cancelled-caller", warnings=[])
    heard: list[tuple[str, list[str]]] = []
    batcher = RecordBatcher(runtime.store, on_recorded=lambda r, w: heard.append((r.prompt_id, w)))
    task = asyncio.create_task(batcher.record(twin))
    await asyncio.sleep(0)  # the record is queued; its batch is written on the next turn
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await batcher.drained()  # written on the writer thread, then delivered on the loop
    assert runtime.store.get_request("cancelled-caller") is not None
    assert heard == [("cancelled-caller", [])]  # listeners still hear of it
    assert batcher.pending == 0  # nothing left over, nothing written twice
    csv_ids = [r["prompt_id"] for r in read_csv(runtime.store.logs_dir / "prompts.csv")[0]]
    assert csv_ids.count("cancelled-caller") == 1


async def test_records_finishing_during_a_write_share_the_next_batch(make_runtime, upstream):
    """One batch on the writer at a time: what finishes meanwhile goes in one transaction
    (a free loop would otherwise hand the writer a batch per record)."""
    import threading

    from llmrouter_tui.core.record_batch import RecordBatcher

    runtime = make_runtime()
    done = await runtime.router.complete(ChatRequest(model=GROQ, prompt="batch"))
    release = threading.Event()
    batches: list[list[str]] = []

    class SlowFirstWrite:
        writer = runtime.store.writer

        def record_many(self, results, cache_writes=()):
            batches.append([r.prompt_id for r in results])
            if len(batches) == 1:
                release.wait(HANG_S)  # the first write waits, as behind another's lock
            return runtime.store.record_many(results, cache_writes)

    batcher = RecordBatcher(SlowFirstWrite())
    first = asyncio.create_task(batcher.record(replace(done, prompt_id="first")))
    await until(lambda: batches, "the first batch to reach the writer")
    later = []
    for i in range(3):  # each in a loop turn of its own
        later.append(asyncio.create_task(batcher.record(replace(done, prompt_id=f"later-{i}"))))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, *later)
    assert batches == [["first"], ["later-0", "later-1", "later-2"]]
    for prompt_id in ["first", "later-0", "later-1", "later-2"]:
        assert runtime.store.get_request(prompt_id) is not None


@pytest.mark.slow
async def test_light_use_keeps_one_client_and_load_spreads_over_more(make_runtime, upstream):
    from llmrouter_tui.core.providers.base import POOL_SHARDS, SHARD_BUSY

    runtime = make_runtime()
    for i in range(5):  # one at a time: one client, one warm connection
        result = await runtime.router.complete(ChatRequest(model=GROQ, prompt=f"s{i}"))
        assert result.status == "ok"
    groq = runtime.router.providers.get("groq")
    assert len(groq._clients) == 1

    upstream.chunk_delay_s = 0.02  # keep streams open so they overlap
    try:
        n = SHARD_BUSY * POOL_SHARDS + 3
        results = await asyncio.gather(
            *(runtime.router.complete(ChatRequest(model=GROQ, prompt=f"c{i}")) for i in range(n))
        )
    finally:
        upstream.chunk_delay_s = 0.0
    assert all(r.status == "ok" and not r.from_cache for r in results)
    assert len(groq._clients) == POOL_SHARDS  # grown to the cap, never beyond
    assert groq._in_flight == [0] * POOL_SHARDS  # every lease was returned
    await groq.aclose()
    assert groq._clients == []
