"""Issue 12: streams never end without a verdict.

Errors in every shape OpenAI-compatible servers send them (at an HTTP error status, inside a
200 stream, as a whole 200 body), whole JSON replies to stream requests, and streams that
finish without `[DONE]`. Everything goes through the real Router, the real httpx provider
(kind openai) and the real groq SDK (kind groq) against the fake upstream; assertions are on
the attempt records (kind, status, the provider's own message), on what the fake received
(retries, fallbacks) and on the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import groq
import httpx
import pytest
from conftest import GROQ_KEY
from reliability_helpers import assert_no_key

from llmrouter_tui.core.params import params_from_openai
from llmrouter_tui.core.providers.classify import (
    kind_for_inband,
    read_error,
    retry_after_from_text,
)
from llmrouter_tui.core.runtime import Runtime
from llmrouter_tui.core.types import AttemptFailed, ChatRequest, Delta, Done, Failed, Result
from llmrouter_tui.testing.fake_payloads import default_reply, split_chunks
from llmrouter_tui.testing.fake_upstream import FakeUpstream, Fault

LOCAL = "llama3.2"  # kind openai (httpx); falls back to GEMINI
GROQ = "openai/gpt-oss-20b"  # kind groq (SDK); falls back to GROQ_BIG
GROQ_BIG = "openai/gpt-oss-120b"
GEMINI = "gemini-3.5-flash"
NEXT = {LOCAL: GEMINI, GROQ: GROQ_BIG}
FAKE_PROVIDER = {LOCAL: "openai", GROQ: "groq"}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def posts(fake: FakeUpstream, model: str) -> list[Any]:
    return [r for r in fake.requests_for(model) if r.method == "POST"]


async def ask(runtime: Runtime, request: ChatRequest, mode: str) -> tuple[Result, list[Any]]:
    """The result and the events (none for a whole-reply caller)."""
    if mode == "whole":
        return await runtime.router.complete(request), []
    events = [e async for e in runtime.router.stream(request, allow_restart=False)]
    assert isinstance(events[-1], Done | Failed)
    return events[-1].result, events


# ---- errors before any text: classified, message kept, the right decision ------------------


@dataclass(frozen=True)
class Case:
    """One upstream error and what the router must make of it.

    outcome: "same" (retried, then answered by the primary), "fallback" (answered by the next
    candidate after `posts` attempts on the primary) or "stop" (a clean error, no fallback).
    """

    id: str
    fault: dict[str, Any]
    kind: str
    outcome: str
    posts: int
    says: str  # part of the provider's own message, kept in the attempt record
    status: int | None = None  # HTTP status in the attempt record (None: sent inside a 200)
    retry_s: float | None = None  # a delay the provider named, honoured by the retry
    kinds: tuple[str, ...] = ("openai", "groq")


def _once(kind: str, **kw: Any) -> dict[str, Any]:
    return {"kind": kind, "times": 1, "after_chunks": 0, **kw}


def _always(kind: str, **kw: Any) -> dict[str, Any]:
    return {"kind": kind, "after_chunks": 0, **kw}


OLLAMA_MISSING = "model 'qwen9' not found, try pulling it first"
LLAMACPP_CONTEXT = (
    "the request exceeds the available context size. try increasing the context size or "
    "enable context shift"
)
VLLM_CONTEXT = (
    "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens "
    "(4000 in the messages, 1000 in the completion). Please reduce the length of the messages."
)

CASES = [
    # {"error": "text"} inside a 200 stream (Ollama, LM Studio, TGI)
    Case("string_rate_limit", _once("error_string", message="Rate limit exceeded, please try "
         "again in 0.2s"), "rate_limited", "same", 2, "Rate limit exceeded", retry_s=0.2),
    Case("string_overloaded", _once("error_string", message="model is overloaded, please try "
         "again later"), "server_error", "same", 2, "model is overloaded"),
    Case("string_unknown", _once("error_string", message="llama runner process has "
         "terminated: signal: killed"), "server_error", "same", 2, "llama runner process"),
    Case("string_not_found", _always("error_string", message=OLLAMA_MISSING), "not_found",
         "fallback", 1, OLLAMA_MISSING),
    Case("string_context", _always("error_string", message=LLAMACPP_CONTEXT), "context_length",
         "fallback", 1, "available context size"),
    Case("string_filter", _always("error_string", message="Your prompt was flagged by the "
         "content filter"), "content_filter", "stop", 1, "flagged by the content filter"),
    Case("string_bad_request", _always("error_string", message="Bad Request: 'temperature' "
         "must be between 0 and 2"), "bad_request", "stop", 1, "must be between 0 and 2"),
    # {"error": {…}} inside a 200 stream: OpenRouter's numeric code, LiteLLM's string code,
    # an object with a type and a code only
    Case("object_code_502", _once("error_object_midstream", message="Provider returned error",
         code=502), "server_error", "same", 2, "Provider returned error"),
    Case("object_code_429_string", _once("error_object_midstream", message="litellm."
         "RateLimitError: RateLimitError: OpenAIException - Rate limit reached", code="429",
         error_type="None"), "rate_limited", "same", 2, "litellm.RateLimitError"),
    Case("object_type_code_only", _once("error_object_midstream", message="",
         error_type="overloaded_error", code="overloaded"), "server_error", "same", 2,
         "overloaded_error"),
    Case("object_vllm_context", _always("error_object_midstream", message=VLLM_CONTEXT,
         error_type="BadRequestError", code=400), "context_length", "fallback", 1,
         "maximum context length is 4096"),
    # event: error, with JSON or plain-text data
    Case("event_json", _once("error_event", message="The model is overloaded",
         error_type="server_error"), "server_error", "same", 2, "The model is overloaded"),
    Case("event_text", _once("error_event", error_shape="text", message="Model overloaded: "
         "try again later"), "server_error", "same", 2, "Model overloaded"),
    Case("event_flat_context", _always("error_event", error_shape="flat", message=VLLM_CONTEXT,
         error_type="BadRequestError", code=400), "context_length", "fallback", 1,
         "maximum context length is 4096"),
    # llama.cpp's non-standard `error:` field (the groq SDK drops unknown fields: kind openai)
    Case("llamacpp_error_field", _always("error_field", message=LLAMACPP_CONTEXT, code=400,
         error_type="exceed_context_size_error"), "context_length", "fallback", 1,
         "available context size", kinds=("openai",)),
    # OpenRouter: error chunk with finish_reason "error"
    Case("openrouter_finish_error", _once("error_finish", message="Provider disconnected "
         "unexpectedly", code="server_error"), "server_error", "same", 2,
         "Provider disconnected unexpectedly"),
    Case("openrouter_finish_429", _once("error_finish", message="Rate limit exceeded: "
         "free-models-per-min.", code=429), "rate_limited", "same", 2, "free-models-per-min"),
    # the same shapes at HTTP error statuses
    Case("status_404_string", _always("status", status=404, error_shape="string",
         message=OLLAMA_MISSING), "not_found", "fallback", 1, OLLAMA_MISSING, status=404),
    Case("status_429_string", _once("status", status=429, error_shape="string",
         message="Too many requests", retry_after_s=0.2), "rate_limited", "same", 2,
         "Too many requests", status=429, retry_s=0.2),
    Case("status_503_flat", _always("status", status=503, error_shape="flat",
         message="The engine is overloaded", error_type="ServiceUnavailableError", code=503),
         "server_error", "fallback", 3, "The engine is overloaded", status=503),
    Case("status_400_flat_context", _always("status", status=400, error_shape="flat",
         message=VLLM_CONTEXT, error_type="BadRequestError", code=400), "context_length",
         "fallback", 1, "maximum context length is 4096", status=400),
    Case("status_502_text", _always("status", status=502, error_shape="text",
         message="upstream connect error or disconnect/reset before headers"), "server_error",
         "fallback", 3, "upstream connect error", status=502),
    # a whole JSON error body at HTTP 200 in answer to a stream request (LM Studio)
    Case("json_200_string", _always("json_instead_of_stream", error_shape="string",
         message="Unexpected endpoint or method. (POST /v1/chat/completions)"), "not_found",
         "fallback", 1, "Unexpected endpoint or method"),
    Case("json_200_object_429", _once("json_instead_of_stream", error_shape="object",
         message="Rate limit reached, retry in 200ms", code=429), "rate_limited", "same", 2,
         "Rate limit reached", retry_s=0.2),
]  # fmt: skip

PARAMS = [
    pytest.param(case, model, id=f"{case.id}-{FAKE_PROVIDER[model]}")
    for case in CASES
    for model in (LOCAL, GROQ)
    if FAKE_PROVIDER[model] in case.kinds
]


@pytest.mark.parametrize("mode", ["whole", "streamed"])
@pytest.mark.parametrize(("case", "primary"), PARAMS)
async def test_error_before_any_text(make_runtime, upstream, case: Case, primary, mode):
    upstream.add_fault(Fault(model=primary, **case.fault))
    prompt = f"{case.id} {mode}: what is 2+2?"
    result, events = await ask(make_runtime(), ChatRequest(model=primary, prompt=prompt), mode)

    first = result.attempts[0]
    assert first.model == primary and first.error == case.kind, result.attempts
    assert case.says in (first.message or ""), first.message  # the provider's own words
    assert first.status == case.status
    assert "AttributeError" not in repr(result.attempts)
    assert len(posts(upstream, primary)) == case.posts
    if case.outcome == "stop":
        assert result.status == "error" and result.error_kind == case.kind
        assert len(result.attempts) == 1 and case.says in (result.error or "")
        return
    assert result.status == "ok", result.error
    answerer = primary if case.outcome == "same" else NEXT[primary]
    if case.kind == "context_length":  # GROQ_BIG's window is no larger than GROQ's: skipped
        answerer = GEMINI
    assert result.model_used == answerer
    failed = case.posts - (answerer == primary)  # the last post on the primary answered
    tried = [a for a in result.attempts[:-1] if a.outcome != "skipped_context"]
    assert [a.error for a in tried] == [case.kind] * failed
    assert result.attempts[-1].outcome == "ok"
    if case.retry_s is not None and events:
        (failed,) = [e for e in events if isinstance(e, AttemptFailed)]
        assert failed.will_retry_in_s is not None and failed.will_retry_in_s >= case.retry_s


# ---- errors after some text: still classified, message kept ---------------------------------


MID_ANSWER = [
    ("error_string", {"message": "model is overloaded"}, "server_error", "model is overloaded"),
    (
        "error_object_midstream",
        {"message": "Rate limit reached for requests", "code": "429"},
        "rate_limited",
        "Rate limit reached",
    ),
    ("error_event", {"error_shape": "text", "message": "engine overloaded"}, "server_error",
     "engine overloaded"),
    ("error_finish", {"message": "Provider disconnected", "code": 502}, "server_error",
     "Provider disconnected"),
    ("error_field", {"message": LLAMACPP_CONTEXT, "code": 400}, "context_length",
     "available context size"),
]  # fmt: skip


MID_PARAMS = [
    pytest.param(primary, *case, id=f"{case[0]}-{FAKE_PROVIDER[primary]}")
    for case in MID_ANSWER
    for primary in (LOCAL, GROQ)
    if not (case[0] == "error_field" and primary == GROQ)  # the groq SDK drops unknown fields
]


@pytest.mark.parametrize(("primary", "kind", "extra", "failure", "says"), MID_PARAMS)
async def test_error_after_some_text(make_runtime, upstream, primary, kind, extra, failure, says):
    upstream.add_fault(Fault(kind=kind, model=primary, after_chunks=3, **extra))
    result = await make_runtime().router.complete(ChatRequest(model=primary, prompt="mid"))
    first = result.attempts[0]
    assert first.error == failure and says in (first.message or ""), result.attempts
    assert first.status is None
    assert result.status == "ok", result.error  # the reply was finished elsewhere
    assert result.response_text  # never an empty answer reported as success


@pytest.mark.parametrize(
    ("message", "kind", "state"),
    [
        (LLAMACPP_CONTEXT, "context_length", "closed"),  # the request's fault, not the model's
        ("model is overloaded", "server_error", "open"),
    ],
    ids=["context_length", "server_error"],
)
@pytest.mark.parametrize("primary", [LOCAL, GROQ], ids=["openai", "groq"])
async def test_in_band_errors_count_for_the_breaker_by_kind(
    make_runtime, upstream, primary, message, kind, state
):
    runtime = make_runtime(max_retries=0, cooldown_failures=1)
    upstream.add_fault(Fault(kind="error_string", model=primary, after_chunks=0, message=message))
    result = await runtime.router.complete(ChatRequest(model=primary, prompt="x"))
    assert result.attempts[0].error == kind
    provider = "local" if primary == LOCAL else "groq"
    assert runtime.router.model_state(f"{provider}:{primary}") == state


async def test_in_band_error_messages_are_redacted(make_runtime, upstream):
    upstream.add_fault(
        Fault(
            kind="error_string", model=GROQ, after_chunks=0, message=f"Invalid API Key {GROQ_KEY}"
        )
    )
    result = await make_runtime().router.complete(ChatRequest(model=GROQ, prompt="x"))
    assert result.attempts[0].error == "auth"
    assert "Invalid API Key" in (result.attempts[0].message or "")
    assert_no_key(repr(result.as_dict()), "the result")


# ---- a whole JSON reply to a stream request -------------------------------------------------


@pytest.mark.parametrize("mode", ["whole", "streamed"])
@pytest.mark.parametrize("primary", [LOCAL, GROQ], ids=["openai", "groq"])
async def test_json_instead_of_stream_is_one_chunk(make_runtime, upstream, primary, mode):
    upstream.add_fault(Fault(kind="json_instead_of_stream", model=primary))
    prompt = "please answer in one piece"
    result, events = await ask(make_runtime(), ChatRequest(model=primary, prompt=prompt), mode)
    full = default_reply(FAKE_PROVIDER[primary], primary, [{"role": "user", "content": prompt}])
    assert result.status == "ok", result.error
    assert result.model_used == primary and not result.fallback_used
    assert [a.outcome for a in result.attempts] == ["ok"]
    assert result.response_text == full and result.finish_reason == "stop"
    assert not result.usage.estimated  # the reply's own usage
    assert result.usage.prompt == len(prompt.split())
    assert result.usage.completion == len(split_chunks(full))
    (sent,) = posts(upstream, primary)
    assert sent.stream  # we asked for a stream and accepted the whole reply
    if events:
        assert [e.text for e in events if isinstance(e, Delta)] == [full]


@pytest.mark.parametrize("primary", [LOCAL, GROQ], ids=["openai", "groq"])
async def test_json_instead_of_stream_with_tool_calls(make_runtime, upstream, primary):
    upstream.add_fault(Fault(kind="json_instead_of_stream", model=primary))
    tools = params_from_openai({"tools": [WEATHER]})
    result = await make_runtime().router.complete(
        ChatRequest(model=primary, prompt="Weather in Oslo? call tool please", params=tools)
    )
    assert result.status == "ok", result.error
    assert result.model_used == primary and result.finish_reason == "tool_calls"
    (call,) = result.tool_calls
    assert call.name == "get_weather" and call.id
    assert call.arguments == '{"city":"value"}'
    assert not result.usage.estimated


# ---- streams that finish without [DONE] -----------------------------------------------------


@pytest.mark.parametrize("hold_s", [0.0, 5.0], ids=["closed", "held_open"])
@pytest.mark.parametrize("primary", [LOCAL, GROQ], ids=["openai", "groq"])
async def test_finish_reason_without_done_completes(make_runtime, upstream, primary, hold_s):
    """The finish reason ends the reply: whether the server then closes the stream or holds
    it open (hold_s, ten times the stream idle timeout), the first attempt succeeds; a wait
    for [DONE] would end in a stream_stalled attempt and a fallback."""
    upstream.add_fault(Fault(kind="no_done", model=primary, delay_s=hold_s))
    result = await make_runtime().router.complete(ChatRequest(model=primary, prompt="x"))
    assert result.status == "ok", result.error
    assert result.model_used == primary and not result.fallback_used
    assert [(a.outcome, a.error) for a in result.attempts] == [("ok", None)]
    assert len(posts(upstream, primary)) == 1
    assert result.finish_reason == "stop"
    assert not result.usage.estimated  # the usage after the finish reason was still read


# ---- the groq SDK itself, and the fake's wire formats ---------------------------------------


async def test_groq_sdk_keeps_a_string_error_as_the_body(upstream):
    """What GroqProvider relies on: for `data: {"error": "text"}` the SDK raises a plain
    APIError with a generic message and the string as its body."""
    upstream.add_fault(Fault(kind="error_string", model=GROQ, after_chunks=1, message="boom"))
    client = groq.AsyncGroq(api_key="gsk_x", base_url=upstream.base_url, max_retries=0)
    try:
        stream = await client.chat.completions.create(
            model=GROQ, messages=[{"role": "user", "content": "x"}], stream=True
        )
        with pytest.raises(groq.APIError) as caught:
            async for _ in stream:
                pass
    finally:
        await client.close()
    assert not isinstance(caught.value, groq.APIStatusError | groq.APIConnectionError)
    assert caught.value.body == "boom"
    assert caught.value.message == "An error occurred during streaming"


WIRE = [
    ("error_string", {}, b'data: {"error":"boom"}\n\n'),
    ("error_object_midstream", {"code": 502}, b'data: {"error":{"message":"boom","code":502}}'),
    ("error_event", {"error_shape": "text"}, b"event: error\ndata: boom\n\n"),
    ("error_field", {"code": 400}, b'error: {"message":"boom","code":400}\n\n'),
    ("error_finish", {"code": 502}, b'"finish_reason":"error"'),
]


@pytest.mark.parametrize(("kind", "extra", "wire"), WIRE, ids=[w[0] for w in WIRE])
async def test_fake_sends_errors_as_documented(upstream, kind, extra, wire):
    upstream.add_fault(Fault(kind=kind, after_chunks=1, message="boom", **extra))
    async with httpx.AsyncClient(base_url=upstream.openai_base_url) as client:
        body = {"model": LOCAL, "messages": [{"role": "user", "content": "x"}], "stream": True}
        streamed = await client.post("/chat/completions", json=body)
        whole = await client.post("/chat/completions", json={**body, "stream": False})
    assert streamed.status_code == 200 and streamed.headers["content-type"] == "text/event-stream"
    raw = streamed.content
    assert raw.count(b'"finish_reason":null') == 2  # the role chunk, one content chunk, error
    assert wire in raw and raw.endswith(b"data: [DONE]\n\n")
    assert whole.status_code == 200 and b"boom" in whole.content  # the whole answer


async def test_fake_answers_a_stream_request_with_json(upstream):
    upstream.add_fault(Fault(kind="json_instead_of_stream"))
    async with httpx.AsyncClient(base_url=upstream.openai_base_url) as client:
        body = {"model": LOCAL, "messages": [{"role": "user", "content": "x"}], "stream": True}
        response = await client.post("/chat/completions", json=body)
    assert response.headers["content-type"] == "application/json"
    assert response.json()["object"] == "chat.completion"


# ---- shapes the fake does not send, read directly -------------------------------------------


@pytest.mark.parametrize(
    ("body", "kind", "says"),
    [
        ({"error": "Input validation error: `temperature` must be > 0", "error_type": "validation"},
         "bad_request", "Input validation error"),  # Hugging Face TGI
        ({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
         "server_error", "Overloaded"),  # Anthropic-style
        ({"error": {"code": 502, "message": "Provider returned error",
                    "metadata": {"raw": "upstream says: quota exceeded", "provider_name": "X"}}},
         "server_error", "upstream says: quota exceeded"),  # OpenRouter's provider detail
        ({"error": {"code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED"}},
         "rate_limited", "Resource exhausted"),  # Google-shaped, via a proxy
        ({"object": "error", "message": "Invalid API key provided", "type": "invalid_request"},
         "auth", "Invalid API key"),  # Mistral
    ],
)  # fmt: skip
def test_other_error_shapes(body, kind, says):
    error = read_error(body)
    assert error is not None and says in error.message
    assert kind_for_inband(error) == kind


def test_normal_chunks_are_not_errors():
    assert read_error({"error": None, "choices": [{"delta": {"content": "hi"}}]}) is None
    assert read_error({"object": "chat.completion.chunk", "choices": []}) is None
    assert read_error("just text") is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("Please try again in 5.289s.", 5.289),
        ("Please try again in 2m59.56s.", 179.56),
        ("try again in 240ms", 0.24),
        ("Please retry in 41.2s.", 41.2),
        ("retry after 20 seconds", 20.0),
        ("Service unavailable, try again later", None),
    ],
)
def test_retry_hints_in_messages(text, seconds):
    got = retry_after_from_text(text)
    assert got is None if seconds is None else got == pytest.approx(seconds)
