"""Broken streams are continued (issue 12): the caller gets one complete answer, never a
spliced or a truncated one; what cannot be continued ends as before (an explicit failure
for streaming callers, a restart for whole-reply callers)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import fake_settings
from hypothesis import given
from hypothesis import strategies as st
from server_helpers import serving, sse_events

from llmrouter_tui.core.continuation import Resync
from llmrouter_tui.core.runtime import Runtime
from llmrouter_tui.core.types import ChatRequest, Delta, Done, Failed, Restart, ToolCallDelta
from llmrouter_tui.server.app import create_app
from llmrouter_tui.testing.fake_payloads import default_reply
from llmrouter_tui.testing.fake_upstream import FakeUpstream, Fault

GROQ = "openai/gpt-oss-20b"  # prefill (Groq)
GEMINI = "gemini-3.5-flash"  # prefill (a trailing model turn)
LOCAL = "llama3.2"  # kind openai: no prefill, so a broken answer is regenerated and matched
FAKE_PROVIDER = {GROQ: "groq", GEMINI: "gemini", LOCAL: "openai"}
KINDS = [GROQ, GEMINI, LOCAL]
BREAKS = {
    "cut": Fault(kind="cut", after_chunks=4, times=1),
    "stall": Fault(kind="stall", after_chunks=4, delay_s=3, times=1),
    "malformed": Fault(kind="malformed_chunk", after_chunks=4, times=1),
}


def full_reply(model: str, prompt: str) -> str:
    return default_reply(FAKE_PROVIDER[model], model, [{"role": "user", "content": prompt}])


def posts(fake: FakeUpstream, model: str) -> list[Any]:
    return [r for r in fake.requests_for(model) if r.method == "POST"]


def last_turn(body: Any) -> tuple[str, str]:
    """(role, text) of the last message a provider was sent, in OpenAI roles."""
    if "contents" in body:  # Gemini
        turn = body["contents"][-1]
        role = "assistant" if turn.get("role") == "model" else "user"
        return role, "".join(p.get("text", "") for p in turn["parts"])
    message = body["messages"][-1]
    return message["role"], message["content"]


def break_at(kind: str, model: str) -> Fault:
    fault = BREAKS[kind]
    return Fault(
        kind=fault.kind,
        model=model,
        after_chunks=fault.after_chunks,
        delay_s=fault.delay_s,
        times=1,
    )


@pytest.fixture
def replies(upstream: FakeUpstream) -> Iterator[Callable[[Callable[..., str]], None]]:
    """Set the fake's reply function for one test."""
    original = upstream.reply_fn

    def use(fn: Callable[..., str]) -> None:
        upstream.reply_fn = fn

    yield use
    upstream.reply_fn = original


async def events_of(runtime: Runtime, request: ChatRequest, allow_restart: bool) -> list[Any]:
    return [e async for e in runtime.router.stream(request, allow_restart=allow_restart)]


def delivered(events: list[Any]) -> str:
    """What a caller that honours Restart ends up showing."""
    text = ""
    for event in events:
        if isinstance(event, Restart):
            text = ""
        elif isinstance(event, Delta):
            text += event.text
    return text


# ---- Resync: the matcher for regenerated answers ------------------------------------------------


def test_resync_lets_through_only_what_follows_the_delivered_text():
    resync = Resync("Hello wor")
    out = [resync.feed(chunk) for chunk in ["Hel", "lo ", "world", "!"]]
    assert out == ["", "", "ld", "!"] and resync.synced and not resync.diverged


def test_resync_ignores_whitespace_differences_and_never_doubles_a_space():
    resync = Resync("Paris is\nthe ")
    out = "".join(resync.feed(c) for c in ["Paris  is the", "   capital", " of France."])
    assert out == "capital of France."


def test_resync_stops_at_the_first_different_character():
    resync = Resync("The answer is 4")
    assert resync.feed("The answer is 5, surely") == ""
    assert resync.diverged and not resync.synced
    assert resync.feed(" more") == ""  # nothing after a divergence is ever let through


def test_resync_of_a_shorter_answer_is_not_synced():
    resync = Resync("one two three")
    resync.feed("one two")
    assert not resync.synced and not resync.diverged


@given(
    text=st.text(alphabet=st.sampled_from("ab c\n.é🦀"), min_size=1, max_size=60),
    data=st.data(),
)
def test_resync_property_delivered_plus_rest_is_the_answer(text: str, data: st.DataObject):
    cut = data.draw(st.integers(0, len(text)), label="cut")
    bounds = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=6), label="chunks"))
    chunks = [text[a:b] for a, b in itertools.pairwise([0, *bounds, len(text)])]
    resync = Resync(text[:cut])
    rest = "".join(resync.feed(chunk) for chunk in chunks)
    head = text[:cut]
    assert resync.synced and not resync.diverged
    # Nothing visible is lost or repeated; whitespace at the seam is not doubled.
    assert "".join((head + rest).split()) == "".join(text.split())
    if head[-1:] and not head[-1].isspace():
        assert head + rest == text  # the rest starts right after the delivered text


# ---- through the core, each provider kind, each kind of break ------------------------------------


@pytest.mark.parametrize("allow_restart", [False, True], ids=["streamed", "whole"])
@pytest.mark.parametrize("kind", list(BREAKS))
@pytest.mark.parametrize("model", KINDS)
async def test_a_broken_stream_is_continued_into_one_complete_answer(
    make_runtime, upstream: FakeUpstream, model: str, kind: str, allow_restart: bool
):
    upstream.add_fault(break_at(kind, model))
    runtime = make_runtime()
    prompt = f"continue me after a {kind}"
    events = await events_of(runtime, ChatRequest(model=model, prompt=prompt), allow_restart)
    assert isinstance(events[-1], Done), events[-1]
    result = events[-1].result
    expected = full_reply(model, prompt)
    assert not any(isinstance(e, Restart) for e in events)
    assert "".join(e.text for e in events if isinstance(e, Delta)) == expected
    assert result.response_text == expected and result.finish_reason == "stop"
    assert result.model_used == model and not result.fallback_used
    first, last = result.attempts
    assert first.outcome in ("error", "timeout") and first.error in (
        "stream_cut",
        "stream_stalled",
        "malformed",
    )
    assert last.outcome == "continued"
    how = "prefill" if model != LOCAL else "regenerated"
    assert how in (last.message or ""), last.message
    # The continuation asked for the rest: a prefill ends with the delivered text.
    again = posts(upstream, model)[1].body
    role, text = last_turn(again)
    if model != LOCAL:
        assert role == "assistant" and expected.startswith(text) and 0 < len(text) < len(expected)
    else:
        assert role == "user"
    # Recorded as delivered, complete; usage sums both attempts and is marked estimated.
    row = runtime.store.get_request(result.prompt_id)
    assert row["response"] == expected and row["status"] == "ok"
    outcomes = [a["outcome"] for a in runtime.store.request_attempts(result.prompt_id)]
    assert outcomes[-1] == "continued"
    assert result.usage.estimated and result.usage.completion > 0
    # The complete answer is cached and served whole.
    hit = await runtime.router.complete(ChatRequest(model=model, prompt=prompt))
    assert hit.from_cache and hit.response_text == expected


async def test_a_refused_prefill_is_remembered_and_the_answer_regenerated(
    make_runtime, upstream: FakeUpstream
):
    upstream.refuse_prefill.add(GROQ)
    upstream.add_fault(break_at("cut", GROQ))
    runtime = make_runtime()
    result = await runtime.router.complete(ChatRequest(model=GROQ, prompt="refuse my prefill"))
    assert result.status == "ok" and result.response_text == full_reply(GROQ, "refuse my prefill")
    assert [a.outcome for a in result.attempts] == ["error", "error", "continued"]
    assert (result.attempts[1].message or "").startswith("prefill refused")
    assert "regenerated" in (result.attempts[2].message or "")
    # Remembered for the process: the next continuation on this model goes straight to
    # regenerating (no trailing assistant message is sent again).
    upstream.clear()
    upstream.refuse_prefill.add(GROQ)
    upstream.add_fault(break_at("cut", GROQ))
    again = await runtime.router.complete(ChatRequest(model=GROQ, prompt="second one"))
    assert [a.outcome for a in again.attempts] == ["error", "continued"]
    assert all(last_turn(r.body)[0] == "user" for r in posts(upstream, GROQ))


@pytest.fixture
def changing(replies) -> Iterator[None]:
    """Each call of the fake answers differently (a model that does not repeat itself)."""
    calls = itertools.count()

    def reply(provider: str, model: str, messages: list[dict[str, str]]) -> str:
        return f"Answer number {next(calls)}: " + " ".join(["words"] * 30)

    replies(reply)
    yield


async def test_a_different_regenerated_answer_is_never_spliced_for_a_streaming_caller(
    make_runtime, upstream: FakeUpstream, changing: None
):
    upstream.add_fault(break_at("cut", LOCAL))
    runtime = make_runtime()
    events = await events_of(runtime, ChatRequest(model=LOCAL, prompt="x"), allow_restart=False)
    assert isinstance(events[-1], Failed)
    result = events[-1].result
    sent = "".join(e.text for e in events if isinstance(e, Delta))
    assert sent.startswith("Answer number 0") and "Answer number 1" not in sent
    assert result.status == "error" and result.error_kind == "stream_failed"
    assert result.response_text == sent  # the record holds exactly what was delivered
    assert result.attempts[-1].error == "diverged"
    assert "never spliced" in (result.error or "")


async def test_a_different_regenerated_answer_replaces_the_old_one_for_a_whole_caller(
    make_runtime, upstream: FakeUpstream, changing: None
):
    upstream.add_fault(break_at("cut", LOCAL))
    runtime = make_runtime()
    events = await events_of(runtime, ChatRequest(model=LOCAL, prompt="x"), allow_restart=True)
    assert isinstance(events[-1], Done)
    result = events[-1].result
    assert sum(isinstance(e, Restart) for e in events) == 1
    assert delivered(events) == result.response_text
    assert result.response_text.startswith("Answer number 1") and "number 0" not in (
        result.response_text
    )
    assert "replaced" in (result.attempts[-1].message or "")


async def test_continuations_are_capped_then_the_stream_fails_with_what_was_delivered(
    make_runtime, upstream: FakeUpstream
):
    for model in (GROQ, "openai/gpt-oss-120b", GEMINI):
        upstream.add_fault(Fault(kind="cut", model=model, after_chunks=2))
    runtime = make_runtime(max_continuations=1)
    events = await events_of(runtime, ChatRequest(model=GROQ, prompt="x"), allow_restart=False)
    assert isinstance(events[-1], Failed)
    result = events[-1].result
    sent = "".join(e.text for e in events if isinstance(e, Delta))
    assert result.response_text == sent and sent
    assert len(posts(upstream, GROQ)) == 2  # the first break, then one continuation
    assert posts(upstream, "openai/gpt-oss-120b") == []
    assert result.status == "error" and result.error_kind == "stream_failed"


async def test_a_half_sent_tool_call_is_not_continued(make_runtime, upstream: FakeUpstream):
    from llmrouter_tui.core.params import params_from_openai

    tools = params_from_openai(
        {
            "tools": [
                {"type": "function", "function": {"name": "lookup", "parameters": {}}},
            ]
        }
    )
    upstream.add_fault(Fault(kind="cut", model=LOCAL, after_chunks=2, times=1))
    runtime = make_runtime()
    request = ChatRequest(model=LOCAL, prompt="call tool lookup please", params=tools)
    events = await events_of(runtime, request, allow_restart=False)
    assert any(isinstance(e, ToolCallDelta) for e in events[:-1])  # the call had begun
    assert isinstance(events[-1], Failed)
    assert [a.error for a in events[-1].result.attempts] == ["stream_cut"]  # not continued
    assert len(posts(upstream, LOCAL)) == 1


# ---- through the server: /v1 and /chat, streamed and whole ---------------------------------------


@pytest.fixture
async def client(upstream: FakeUpstream, tmp_path: Path):
    runtime = Runtime(fake_settings(upstream.base_url, tmp_path / "data"))
    app = create_app(runtime, token="", owns_runtime=True)
    async with serving(app) as server, httpx.AsyncClient(base_url=server.url, timeout=30) as c:
        yield c


def _v1_text(response: httpx.Response, stream: bool) -> tuple[str, list[Any]]:
    if not stream:
        body = response.json()
        return body["choices"][0]["message"]["content"], [body]
    chunks = sse_events(response.text)
    assert chunks[-1] == "[DONE]", chunks[-3:]
    data = [c for c in chunks if c != "[DONE]"]
    text = "".join(
        choice["delta"].get("content") or ""
        for chunk in data
        for choice in chunk.get("choices", [])
    )
    return text, data


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
@pytest.mark.parametrize("model", KINDS)
async def test_v1_caller_gets_the_whole_answer(
    client: httpx.AsyncClient, upstream: FakeUpstream, model: str, stream: bool
):
    upstream.add_fault(break_at("cut", model))
    prompt = "over the wire"
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "stream": stream}
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    text, data = _v1_text(response, stream)
    assert text == full_reply(model, prompt)
    router = next(chunk["x_llmrouter"] for chunk in data if "x_llmrouter" in chunk)
    assert [a["outcome"] for a in router["attempts"]] == ["error", "continued"]


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
async def test_chat_caller_gets_the_whole_answer(
    client: httpx.AsyncClient, upstream: FakeUpstream, stream: bool
):
    upstream.add_fault(break_at("stall", GEMINI))
    prompt = "original endpoint"
    response = await client.post(
        f"/chat?model={GEMINI}&stream={str(stream).lower()}", json={"prompt": prompt}
    )
    assert response.status_code == 200, response.text
    expected = full_reply(GEMINI, prompt)
    if stream:
        events = sse_events(response.text)
        text = "".join(e["text"] for e in events if e["type"] == "delta")
        assert events[-1]["type"] == "done", events[-1]
        assert text == expected and events[-1]["result"]["response_text"] == expected
    else:
        record = response.json()
        assert record["response_text"] == expected
        assert [a["outcome"] for a in record["attempts"]] == ["error", "continued"]
        assert json.dumps(record).count("stream_stalled") == 1


# ---- streams always end with their usage ------------------------------------------------------


@pytest.mark.parametrize("include_usage", [False, True], ids=["alongside-finish", "usage-chunk"])
async def test_v1_stream_reports_usage_summed_over_the_attempts_that_produced_text(
    client: httpx.AsyncClient, upstream: FakeUpstream, include_usage: bool
):
    body: dict[str, Any] = {
        "model": GROQ,
        "messages": [{"role": "user", "content": "count me"}],
        "stream": True,
    }
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    plain = await client.post("/v1/chat/completions", json=body)
    _, chunks = _v1_text(plain, stream=True)
    usage_chunks = [c for c in chunks if c.get("usage")]
    assert len(usage_chunks) == 1
    [final] = usage_chunks
    if include_usage:
        assert final["choices"] == []  # OpenAI's separate usage chunk
    else:
        assert final["choices"][0]["finish_reason"] == "stop"
    whole_usage = final["usage"]
    assert whole_usage["estimated"] is False and whole_usage["completion_tokens"] > 0

    upstream.add_fault(break_at("cut", GROQ))
    body["messages"] = [{"role": "user", "content": "count us"}]
    broken = await client.post("/v1/chat/completions", json=body)
    _, chunks = _v1_text(broken, stream=True)
    [final] = [c for c in chunks if c.get("usage")]
    usage = final["usage"]
    assert usage["estimated"] is True  # the broken attempt's share is our own count
    # Both attempts are counted: more prompt tokens than one attempt alone would use.
    assert usage["prompt_tokens"] > whole_usage["prompt_tokens"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
