"""Issue 11, core half: parameters, capabilities, tools, JSON mode, images and message shapes.

Everything goes through the real Router and the real groq / google-genai SDKs (httpx for kind
openai) against the fake upstream; assertions are on what the fake received and on what the
router returned and recorded.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import fake_settings
from v1_fixtures import PNG, PNG_URL, TIME, WEATHER, WEATHER_ARGS

from llmrouter_tui.core.cache import cache_key
from llmrouter_tui.core.capabilities import (
    Capabilities,
    UnsupportedParameterError,
    required_capabilities,
    unmet_need,
)
from llmrouter_tui.core.catalog import Catalog, parse_catalog
from llmrouter_tui.core.config import load_settings
from llmrouter_tui.core.errors import ConfigError, InputError
from llmrouter_tui.core.logsinks import read_csv, read_jsonl
from llmrouter_tui.core.params import GenerationParams, params_from_openai
from llmrouter_tui.core.runtime import Runtime
from llmrouter_tui.core.types import (
    ChatRequest,
    Delta,
    Done,
    ImagePart,
    Message,
    Restart,
    TextPart,
    ToolCall,
    ToolCallDelta,
)
from llmrouter_tui.testing.fake_features import field_of
from llmrouter_tui.testing.fake_upstream import FakeUpstream, Fault

GROQ = "openai/gpt-oss-20b"
GROQ_BIG = "openai/gpt-oss-120b"
GROQ_VISION = "qwen/qwen3.6-27b"
GEMINI = "gemini-3.5-flash"
GEMINI_BUDGET = "gemini-2.5-flash-lite"  # thinking configured by budget (catalog table)
LOCAL = "llama3.2"
EVERY_KIND = [GROQ, GEMINI, LOCAL]


def chat_bodies(fake: FakeUpstream, model: str) -> list[Any]:
    return [r.body for r in fake.requests_for(model) if r.method == "POST"]


def params(**body: Any) -> GenerationParams:
    return params_from_openai(body)


async def events_of(runtime: Runtime, request: ChatRequest) -> list[Any]:
    return [event async for event in runtime.router.stream(request)]


@pytest.fixture
async def runtime_with(
    upstream: FakeUpstream, tmp_path: Path
) -> AsyncIterator[Callable[..., Runtime]]:
    """Runtimes against the fake with extra `[models."ID"]` tables and routing settings."""
    made: list[Runtime] = []

    def build(models: dict[str, Any] | None = None, **routing: Any) -> Runtime:
        settings = fake_settings(upstream.base_url, tmp_path / f"data{len(made)}", **routing)
        merged = {model: dict(table) for model, table in settings.models.items()}
        for model, table in (models or {}).items():
            merged.setdefault(model, {}).update(table)
        runtime = Runtime(replace(settings, models=merged))
        made.append(runtime)
        return runtime

    yield build
    for runtime in made:
        await runtime.aclose()


# ---- parameters reach each provider in its own shape ------------------------------------------


async def test_groq_receives_every_parameter_in_openai_shape(make_runtime, upstream):
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    asked = params(
        stop=["END", "STOP"],
        seed=7,
        top_p=0.5,
        reasoning_effort="high",
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
        user="user-42",
    )
    result = await make_runtime().router.complete(
        ChatRequest(model=GROQ, prompt="hi", params=asked, max_tokens=30)
    )
    assert result.status == "ok", result.error
    body = chat_bodies(upstream, GROQ)[0]
    assert body["stop"] == ["END", "STOP"]
    assert body["seed"] == 7 and body["top_p"] == 0.5
    assert body["reasoning_effort"] == "high"
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "a", "schema": schema},
    }
    assert body["user"] == "user-42"
    assert body["max_completion_tokens"] == 30
    assert json.loads(result.response_text) == {"answer": "value"}  # JSON mode answered


async def test_openai_kind_receives_penalties_and_json_mode(make_runtime, upstream):
    asked = params(
        stop="\n\n",
        seed=1,
        top_p=0.9,
        frequency_penalty=0.5,
        presence_penalty=-0.25,
        response_format={"type": "json_object"},
        user="u",
    )
    result = await make_runtime().router.complete(
        ChatRequest(model=LOCAL, prompt="hi", params=asked)
    )
    assert result.status == "ok", result.error
    body = chat_bodies(upstream, LOCAL)[0]
    assert body["stop"] == ["\n\n"] and body["seed"] == 1 and body["top_p"] == 0.9
    assert body["frequency_penalty"] == 0.5 and body["presence_penalty"] == -0.25
    assert body["response_format"] == {"type": "json_object"} and body["user"] == "u"
    assert isinstance(json.loads(result.response_text), dict)


async def test_gemini_maps_parameters_into_generation_config(make_runtime, upstream):
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    asked = params(
        stop=["END"],
        seed=11,
        top_p=0.25,
        reasoning_effort="low",
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
        user="not-for-gemini",
    )
    result = await make_runtime().router.complete(
        ChatRequest(model=GEMINI, prompt="hi", params=asked)
    )
    assert result.status == "ok", result.error
    body = chat_bodies(upstream, GEMINI)[0]
    config = field_of(body, "generationConfig")
    assert field_of(config, "stopSequences") == ["END"]
    assert config["seed"] == 11 and field_of(config, "topP") == 0.25
    assert field_of(config, "responseMimeType") == "application/json"
    assert field_of(config, "responseJsonSchema") == schema
    assert field_of(field_of(config, "thinkingConfig"), "thinkingLevel") == "LOW"
    assert "not-for-gemini" not in json.dumps(body)  # Gemini has no `user` field
    assert json.loads(result.response_text) == {"n": 1}


@pytest.mark.parametrize(("effort", "budget"), [("none", 0), ("low", 1024), ("high", 24576)])
async def test_gemini_budget_models_get_a_thinking_budget(make_runtime, upstream, effort, budget):
    result = await make_runtime().router.complete(
        ChatRequest(model=GEMINI_BUDGET, prompt="hi", params=params(reasoning_effort=effort))
    )
    assert result.status == "ok", result.error
    config = field_of(chat_bodies(upstream, GEMINI_BUDGET)[0], "generationConfig")
    thinking = field_of(config, "thinkingConfig")
    assert field_of(thinking, "thinkingBudget") == budget
    assert field_of(thinking, "thinkingLevel") is None


async def test_gemini_penalties_are_mapped_when_the_catalog_allows_them(runtime_with, upstream):
    runtime = runtime_with(
        {GEMINI: {"capabilities": {"presence_penalty": True, "frequency_penalty": True}}}
    )
    asked = params(presence_penalty=0.5, frequency_penalty=1.5)
    result = await runtime.router.complete(ChatRequest(model=GEMINI, prompt="x", params=asked))
    assert result.status == "ok", result.error
    config = field_of(chat_bodies(upstream, GEMINI)[0], "generationConfig")
    assert field_of(config, "presencePenalty") == 0.5
    assert field_of(config, "frequencyPenalty") == 1.5


# ---- refused by name, or skipped -------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "body", "parameter"),
    [
        (GROQ, {"frequency_penalty": 0.5}, "frequency_penalty"),  # Groq: "not yet supported"
        (GEMINI, {"presence_penalty": 1.0}, "presence_penalty"),  # Gemini 2.5+: 400
        (GEMINI, {"tools": [WEATHER], "parallel_tool_calls": False}, "parallel_tool_calls"),
        (GROQ, {"reasoning_effort": "none"}, "reasoning_effort"),
        ("groq/compound", {"tools": [WEATHER]}, "tools"),
        ("groq/compound", {"response_format": {"type": "json_object"}}, "response_format"),
        (GROQ, {"logprobs": True}, "logprobs"),
        (GEMINI, {"top_logprobs": 3}, "top_logprobs"),
        (LOCAL, {"n": 2}, "n"),
    ],
)
async def test_requested_model_that_cannot_honour_a_parameter_is_refused_by_name(
    make_runtime, upstream, model, body, parameter
):
    router = make_runtime().router
    with pytest.raises(UnsupportedParameterError) as caught:
        router.prepare(ChatRequest(model=model, prompt="x", params=params_from_openai(body)))
    error = caught.value
    assert error.parameter == parameter and error.model == model
    assert error.http_status == 400
    assert parameter.split("[")[0] in str(error) and model in str(error)
    assert upstream.requests == []  # nothing was sent anywhere instead


async def test_a_prefill_needs_a_model_that_continues_assistant_text(make_runtime, upstream):
    router = make_runtime().router
    prefill = [Message("user", "Write a haiku"), Message("assistant", "Autumn")]
    with pytest.raises(UnsupportedParameterError, match=r"messages\[1\].*prefill"):
        router.prepare(ChatRequest(model=LOCAL, messages=prefill))  # kind openai: no prefill
    result = await router.complete(ChatRequest(model=GROQ, messages=prefill))
    assert result.status == "ok", result.error
    sent = chat_bodies(upstream, GROQ)[0]["messages"]
    assert sent[-1] == {"role": "assistant", "content": "Autumn"}


async def test_fallback_that_cannot_honour_is_skipped_and_recorded(runtime_with, upstream):
    # gemini-3.5-flash -> gemini-3.5-flash-lite (no json_schema here) -> gpt-oss-120b
    runtime = runtime_with({"gemini-3.5-flash-lite": {"capabilities": {"json_schema": False}}})
    upstream.add_fault(Fault(kind="status", status=503, model=GEMINI))
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    asked = params(
        response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}
    )
    events = await events_of(runtime, ChatRequest(model=GEMINI, prompt="x", params=asked))
    result = events[-1].result
    assert isinstance(events[-1], Done) and result.model_used == GROQ_BIG
    outcomes = [(a.model, a.outcome) for a in result.attempts]
    assert ("gemini-3.5-flash-lite", "skipped_unsupported") in outcomes
    skipped = next(a for a in result.attempts if a.outcome == "skipped_unsupported")
    assert "response_format" in skipped.message and "gemini-3.5-flash-lite" in skipped.message
    assert chat_bodies(upstream, "gemini-3.5-flash-lite") == []  # never sent anything else
    assert chat_bodies(upstream, GROQ_BIG)[0]["response_format"]["type"] == "json_schema"
    assert json.loads(result.response_text) == {"ok": True}
    rows = runtime.store.request_attempts(result.prompt_id)
    assert [r["outcome"] for r in rows].count("skipped_unsupported") == 1


async def test_tool_requests_fall_back_only_across_tool_capable_models(runtime_with, upstream):
    runtime = runtime_with({LOCAL: {"fallbacks": ["groq/compound", GEMINI]}})
    upstream.add_fault(Fault(kind="status", status=503, model=LOCAL))
    result = await runtime.router.complete(
        ChatRequest(model=LOCAL, prompt="please call tool", params=params(tools=[WEATHER]))
    )
    assert result.status == "ok" and result.model_used == GEMINI, result.error
    assert [a.outcome for a in result.attempts][-2:] == ["skipped_unsupported", "ok"]
    assert result.attempts[-2].model == "groq/compound"
    assert [c.name for c in result.tool_calls] == ["get_weather"]
    assert chat_bodies(upstream, "groq/compound") == []


# ---- tools, whole and streamed ---------------------------------------------------------------


@pytest.mark.parametrize("model", EVERY_KIND)
async def test_tool_round_trip_whole(make_runtime, upstream, model):
    runtime = make_runtime()
    tools = params(tools=[WEATHER])
    asked = await runtime.router.complete(
        ChatRequest(model=model, prompt="Weather in Oslo? call tool please", params=tools)
    )
    assert asked.status == "ok", asked.error
    assert asked.finish_reason == "tool_calls"
    (call,) = asked.tool_calls
    assert call.name == "get_weather" and json.loads(call.arguments) == WEATHER_ARGS
    assert call.id
    first = chat_bodies(upstream, model if model != GEMINI else GEMINI)[0]
    if model == GEMINI:
        (declaration,) = field_of(first["tools"][0], "functionDeclarations")
        assert declaration["name"] == "get_weather"
        assert field_of(declaration, "parametersJsonSchema") == WEATHER["function"]["parameters"]
    else:
        assert first["tools"] == [WEATHER]

    history = [
        Message("user", "Weather in Oslo? call tool please"),
        Message("assistant", "", tool_calls=tuple(asked.tool_calls)),
        Message("tool", '{"temp_c": 21}', tool_call_id=call.id),
    ]
    answer = await runtime.router.complete(ChatRequest(model=model, messages=history, params=tools))
    assert answer.status == "ok", answer.error
    assert answer.finish_reason == "stop" and answer.tool_calls == []
    assert '{"temp_c": 21}' in answer.response_text
    second = chat_bodies(upstream, model)[1]
    if model == GEMINI:
        turns = second["contents"]
        assert [t["role"] for t in turns] == ["user", "model", "user"]
        sent_call = turns[1]["parts"][0]
        assert field_of(sent_call, "functionCall")["args"] == WEATHER_ARGS
        # Gemini's thought signature goes back with the call it came with.
        assert field_of(sent_call, "thoughtSignature") == call.signature is not None
        response = field_of(turns[2]["parts"][0], "functionResponse")
        assert response == {"name": "get_weather", "response": {"temp_c": 21}}
    else:
        sent = second["messages"]
        assert sent[1] == {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": call.arguments},
                }
            ],
        }
        assert sent[2] == {"role": "tool", "content": '{"temp_c": 21}', "tool_call_id": call.id}


@pytest.mark.parametrize("model", EVERY_KIND)
async def test_tool_calls_stream_as_openai_shaped_deltas(make_runtime, upstream, model):
    runtime = make_runtime()
    request = ChatRequest(
        model=model, prompt="call all tools now", params=params(tools=[WEATHER, TIME])
    )
    events = await events_of(runtime, request)
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    result = events[-1].result
    assert isinstance(events[-1], Done) and result.finish_reason == "tool_calls"
    assert [c.name for c in result.tool_calls] == ["get_weather", "get_time"]
    assert not any(isinstance(e, Delta) and e.text for e in events)
    # Reassembling the deltas the OpenAI way gives exactly the recorded calls.
    rebuilt: dict[int, dict[str, str]] = {}
    for delta in deltas:
        entry = rebuilt.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
        entry["id"] = entry["id"] or (delta.id or "")
        entry["name"] = entry["name"] or (delta.name or "")
        entry["arguments"] += delta.arguments
        assert delta.as_openai()["index"] == delta.index
    assert [
        ToolCall(v["id"], v["name"], v["arguments"], result.tool_calls[i].signature)
        for i, v in sorted(rebuilt.items())
    ] == result.tool_calls
    if model == LOCAL:  # OpenAI-style servers split the arguments over several chunks
        assert len(deltas) > len(result.tool_calls)
    first = deltas[0].as_openai()
    assert first["type"] == "function" and first["function"]["name"] == "get_weather"


async def test_tool_choice_and_parallel_tool_calls_are_honoured(make_runtime, upstream):
    runtime = make_runtime()
    forced = params(
        tools=[WEATHER, TIME], tool_choice={"type": "function", "function": {"name": "get_time"}}
    )
    groq_forced = await runtime.router.complete(
        ChatRequest(model=GROQ, prompt="no trigger words here", params=forced)
    )
    assert [c.name for c in groq_forced.tool_calls] == ["get_time"]
    assert chat_bodies(upstream, GROQ)[0]["tool_choice"] == {
        "type": "function",
        "function": {"name": "get_time"},
    }
    gemini_forced = await runtime.router.complete(
        ChatRequest(model=GEMINI, prompt="no trigger words here", params=forced)
    )
    assert [c.name for c in gemini_forced.tool_calls] == ["get_time"]
    calling = field_of(
        field_of(chat_bodies(upstream, GEMINI)[0], "toolConfig"), "functionCallingConfig"
    )
    assert calling["mode"] == "ANY" and field_of(calling, "allowedFunctionNames") == ["get_time"]

    never = params(tools=[WEATHER], tool_choice="none")
    text = await runtime.router.complete(
        ChatRequest(model=GEMINI, prompt="call tool", params=never)
    )
    assert text.tool_calls == [] and text.finish_reason == "stop"
    calling = field_of(
        field_of(chat_bodies(upstream, GEMINI)[1], "toolConfig"), "functionCallingConfig"
    )
    assert calling["mode"] == "NONE"

    one = params(tools=[WEATHER, TIME], parallel_tool_calls=False)
    single = await runtime.router.complete(
        ChatRequest(model=GROQ, prompt="call all tools", params=one)
    )
    assert len(single.tool_calls) == 1
    assert chat_bodies(upstream, GROQ)[1]["parallel_tool_calls"] is False


async def test_tool_call_replies_are_cached_and_recorded_with_their_calls(make_runtime, upstream):
    runtime = make_runtime()
    request = ChatRequest(model=GROQ, prompt="call tool", params=params(tools=[WEATHER]))
    first = await runtime.router.complete(request)
    events = await events_of(runtime, request)
    hit = events[-1].result
    assert hit.from_cache and hit.tool_calls == first.tool_calls
    assert hit.finish_reason == "tool_calls"
    assert [e.name for e in events if isinstance(e, ToolCallDelta)] == ["get_weather"]
    assert len(chat_bodies(upstream, GROQ)) == 1
    expected = [call.as_dict() for call in first.tool_calls]
    row = runtime.store.get_request(first.prompt_id)
    assert json.loads(row["tool_calls"]) == expected
    assert runtime.store.get_request(hit.prompt_id)["tool_calls"] == row["tool_calls"]
    plain = await runtime.router.complete(ChatRequest(model=GROQ, prompt="no tools"))
    assert runtime.store.get_request(plain.prompt_id)["tool_calls"] is None
    lines, _ = read_jsonl(runtime.store.logs_dir / "prompts.jsonl")
    by_id = {line["prompt_id"]: line for line in lines}
    assert by_id[first.prompt_id]["tool_calls"] == expected
    assert by_id[plain.prompt_id]["tool_calls"] == []
    cells, warnings = read_csv(runtime.store.logs_dir / "prompts.csv")
    assert warnings == []
    csv_row = next(c for c in cells if c["prompt_id"] == first.prompt_id)
    assert json.loads(csv_row["tool_calls"]) == expected
    assert first.as_dict()["tool_calls"] == expected


async def test_a_stream_cut_during_tool_calls_restarts_on_the_next_tool_capable_model(
    make_runtime, upstream
):
    upstream.add_fault(Fault(kind="cut", model=LOCAL, after_chunks=2))
    events = await events_of(
        make_runtime(), ChatRequest(model=LOCAL, prompt="call tool", params=params(tools=[WEATHER]))
    )
    assert any(isinstance(e, Restart) for e in events)
    result = events[-1].result
    assert isinstance(events[-1], Done) and result.model_used == GEMINI
    assert result.attempts[0].error == "stream_cut"
    assert [c.name for c in result.tool_calls] == ["get_weather"]


async def test_tool_results_must_answer_an_earlier_call(make_runtime, upstream):
    router = make_runtime().router
    orphan = [Message("user", "hi"), Message("tool", "42", tool_call_id="call_x")]
    with pytest.raises(InputError, match="call_x"):
        router.prepare(ChatRequest(model=GROQ, messages=orphan))
    dangling = [
        Message("user", "hi"),
        Message("assistant", "", tool_calls=(ToolCall("c1", "get_weather", "{}"),)),
    ]
    with pytest.raises(InputError, match="tool results"):
        router.prepare(ChatRequest(model=GROQ, messages=dangling))
    assert upstream.requests == []


# ---- JSON mode -------------------------------------------------------------------------------


@pytest.mark.parametrize("model", EVERY_KIND)
async def test_json_object_mode_answers_json_for_every_kind(make_runtime, upstream, model):
    asked = params(response_format={"type": "json_object"})
    whole = await make_runtime().router.complete(
        ChatRequest(model=model, prompt="give me json", params=asked)
    )
    assert whole.status == "ok", whole.error
    assert isinstance(json.loads(whole.response_text), dict)


# ---- images -----------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [GEMINI, GROQ_VISION])
async def test_an_image_reaches_an_image_capable_model(make_runtime, upstream, model):
    image = Message("user", (TextPart("What is this?"), ImagePart(PNG_URL, "low")))
    result = await make_runtime().router.complete(ChatRequest(model=model, messages=[image]))
    assert result.status == "ok", result.error
    assert "[image image/png 67 bytes]" in result.response_text
    body = chat_bodies(upstream, model)[0]
    if model == GEMINI:
        parts = body["contents"][0]["parts"]
        blob = field_of(parts[1], "inlineData")
        assert field_of(blob, "mimeType") == "image/png"
        assert base64.b64decode(blob["data"]) == PNG
    else:
        assert body["messages"][0]["content"] == [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": PNG_URL, "detail": "low"}},
        ]


async def test_an_image_for_a_text_only_model_is_a_clear_error(make_runtime, upstream):
    router = make_runtime().router
    image = {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": PNG_URL}},
        ],
    }
    with pytest.raises(UnsupportedParameterError) as caught:
        router.prepare(ChatRequest(model=GROQ, messages=[image]))  # type: ignore[list-item]
    assert caught.value.parameter == "messages[0].content[1]"
    assert GROQ in str(caught.value) and "image" in str(caught.value)
    assert upstream.requests == []


async def test_http_image_urls_are_refused_unless_enabled_then_fetched(runtime_with, upstream):
    upstream.files["/img/cat.png"] = ("image/png", PNG)
    url = upstream.base_url + "/img/cat.png"
    message = Message("user", (TextPart("What is this?"), ImagePart(url)))
    with pytest.raises(InputError, match="fetch_image_urls") as caught:
        runtime_with().router.prepare(ChatRequest(model=GEMINI, messages=[message]))
    assert "messages[0].content[1]" in str(caught.value)
    runtime = runtime_with(fetch_image_urls=True)
    gemini = await runtime.router.complete(ChatRequest(model=GEMINI, messages=[message]))
    assert gemini.status == "ok", gemini.error
    blob = field_of(chat_bodies(upstream, GEMINI)[0]["contents"][0]["parts"][1], "inlineData")
    assert base64.b64decode(blob["data"]) == PNG  # fetched here, sent inline
    groq = await runtime.router.complete(ChatRequest(model=GROQ_VISION, messages=[message]))
    assert groq.status == "ok", groq.error
    part = chat_bodies(upstream, GROQ_VISION)[0]["messages"][0]["content"][1]
    assert part == {"type": "image_url", "image_url": {"url": url}}  # Groq fetches it


# ---- messages keep their shape ---------------------------------------------------------------


@pytest.mark.parametrize("model", EVERY_KIND)
async def test_text_parts_are_never_glued_together(make_runtime, upstream, model):
    raw = {
        "role": "user",
        "content": [{"type": "text", "text": "part one"}, {"type": "text", "text": "part two"}],
    }
    result = await make_runtime().router.complete(
        ChatRequest(model=model, messages=[raw])  # type: ignore[list-item]
    )
    assert result.status == "ok", result.error
    assert result.prompt == "part one\n\npart two"
    assert "part onepart two" not in json.dumps(chat_bodies(upstream, model)[0])
    body = chat_bodies(upstream, model)[0]
    if model == GEMINI:
        assert body["contents"][0]["parts"] == [{"text": "part one"}, {"text": "part two"}]
    else:
        assert body["messages"][0]["content"] == raw["content"]


async def test_system_messages_keep_their_positions_for_openai_kinds(make_runtime, upstream):
    conversation = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "developer", "content": "Now answer in French."},
        {"role": "user", "content": "How are you?"},
    ]
    runtime = make_runtime()
    for model in (LOCAL, GROQ, GEMINI):
        result = await runtime.router.complete(
            ChatRequest(model=model, messages=conversation)  # type: ignore[arg-type]
        )
        assert result.status == "ok", result.error
    for model in (LOCAL, GROQ):
        sent = chat_bodies(upstream, model)[0]["messages"]
        assert [m["role"] for m in sent] == ["system", "user", "assistant", "system", "user"]
        assert sent[3] == {"role": "system", "content": "Now answer in French."}
    gemini = chat_bodies(upstream, GEMINI)[0]
    instruction = field_of(gemini, "systemInstruction")["parts"]
    assert instruction == [{"text": "You are terse.\n\nNow answer in French."}]
    assert [c["role"] for c in gemini["contents"]] == ["user", "model", "user"]


# ---- cache key --------------------------------------------------------------------------------


def test_cache_key_is_unchanged_without_parameters_and_separates_them():
    messages = [Message("user", "Hello, wörld")]
    pinned = "de3710227192d9321297828bbdb49bd7fb98c9af672bc96c041b10a5c1076936"
    args = ("groq:openai/gpt-oss-20b", messages, "Be brief.", 0.7, 256)
    assert cache_key(*args) == pinned
    assert cache_key(*args, params=GenerationParams()) == pinned
    # Values that mean "the default" (sent by many clients on every request) change nothing.
    defaults = params(
        n=1,
        frequency_penalty=0,
        presence_penalty=0,
        parallel_tool_calls=True,
        logprobs=False,
        response_format={"type": "text"},
        user="someone",
    )
    assert defaults.cache_fields() == {}
    assert cache_key(*args, params=defaults) == pinned
    variants = [
        params(seed=1),
        params(seed=2),
        params(stop="x"),
        params(top_p=0.5),
        params(reasoning_effort="low"),
        params(response_format={"type": "json_object"}),
        params(tools=[WEATHER]),
        params(tools=[WEATHER], tool_choice="required"),
        params(tools=[WEATHER, TIME]),
        params(frequency_penalty=0.5),
        params(presence_penalty=0.5),
    ]
    keys = {cache_key(*args, params=p) for p in variants}
    assert len(keys) == len(variants) and pinned not in keys
    # `user` never changes the answer: same key.
    assert cache_key(*args, params=params(seed=1, user="a")) == cache_key(
        *args, params=params(seed=1, user="b")
    )
    # The payload stays the canonical JSON of everything, params included.
    text = json.dumps(
        {
            "max_tokens": 256,
            "messages": [{"content": "Hello, wörld", "role": "user"}],
            "model": "groq:openai/gpt-oss-20b",
            "params": {"seed": 1},
            "system": "Be brief.",
            "temperature": 0.7,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    import hashlib

    assert cache_key(*args, params=params(seed=1)) == hashlib.sha256(text.encode()).hexdigest()


def test_cache_key_separates_content_parts_tool_calls_and_results():
    base = ("m", None, None, None)
    plain = cache_key(base[0], [Message("user", "a\n\nb")], *base[1:])
    parts = cache_key(base[0], [Message("user", (TextPart("a"), TextPart("b")))], *base[1:])
    image = cache_key(base[0], [Message("user", (TextPart("a"), ImagePart(PNG_URL)))], *base[1:])
    call = ToolCall("c1", "f", "{}")
    history = [Message("user", "x"), Message("assistant", "", (call,))]
    answered = [*history, Message("tool", "1", tool_call_id="c1")]
    other = [*history, Message("tool", "2", tool_call_id="c1")]
    keys = [
        plain,
        parts,
        image,
        cache_key("m", answered, None, None, None),
        cache_key("m", other, None, None, None),
    ]
    assert len(set(keys)) == len(keys)


async def test_cache_hits_only_for_the_same_parameters(make_runtime, upstream):
    router = make_runtime().router
    first = await router.complete(ChatRequest(model=GROQ, prompt="same", params=params(seed=1)))
    other = await router.complete(ChatRequest(model=GROQ, prompt="same", params=params(seed=2)))
    again = await router.complete(ChatRequest(model=GROQ, prompt="same", params=params(seed=1)))
    plain = await router.complete(ChatRequest(model=GROQ, prompt="same"))
    assert not first.from_cache and not other.from_cache and not plain.from_cache
    assert again.from_cache
    assert len(chat_bodies(upstream, GROQ)) == 3


# ---- parameter values and capability data ------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"top_p": 3}, "top_p"),
        ({"seed": "7"}, "seed"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"stop": 5}, "stop"),
        ({"frequency_penalty": -3}, "frequency_penalty"),
        ({"response_format": {"type": "yaml"}}, "response_format"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
        ({"tools": [{"type": "function", "function": {}}]}, "tools[0].function.name"),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "x"}}},
            "tool_choice",
        ),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"parallel_tool_calls": "yes"}, "parallel_tool_calls"),
        ({"n": 0}, "n"),
        ({"user": 5}, "user"),
        ({"reasoning_effort": ""}, "reasoning_effort"),
    ],
)
def test_bad_parameter_values_are_refused_by_name(body, named):
    with pytest.raises(InputError, match=named.replace("[", r"\[").replace("]", r"\]")):
        params_from_openai(body)


def test_capabilities_come_from_the_catalog_the_config_and_kind_defaults():
    providers = {"groq": None, "gemini": None, "local": type("P", (), {"kind": "openai"})()}
    catalog = Catalog(
        {
            GEMINI: {"capabilities": {"presence_penalty": True}},
            "my-local": {"provider": "local", "capabilities": {"images": True}},
        },
        providers,
    )
    gemini = catalog.capabilities(GEMINI)
    assert gemini.presence_penalty and gemini.tools and not gemini.frequency_penalty
    assert gemini.reasoning_effort == ("low", "medium", "high")
    local = catalog.capabilities("my-local")
    assert local.images and local.frequency_penalty  # kind "openai" defaults, plus images
    assert not catalog.capabilities(GROQ).images
    assert catalog.capabilities("groq:brand-new", "groq").tools  # kind default
    assert catalog.capabilities("groq:" + GROQ, "groq") == catalog.capabilities(GROQ)
    assert catalog.capabilities("meta-llama/llama-prompt-guard-2-22m") == Capabilities()
    budget = catalog.capabilities(GEMINI_BUDGET)
    assert budget.thinking_budget("medium") == 8192
    shown = catalog.capabilities(GROQ).as_dict()
    assert shown["reasoning_effort"] == ["low", "medium", "high"] and shown["tools"] is True
    needs = required_capabilities([Message("user", "x")], params(tools=[WEATHER], seed=1))
    assert unmet_need(catalog.capabilities(GROQ), needs) is None
    assert unmet_need(catalog.capabilities("groq/compound"), needs).parameter == "tools"


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ("{ tool = true }", "unknown capability 'tool'"),
        ('{ images = "yes" }', "images must be true or false"),
        ('{ reasoning_effort = "high" }', "reasoning_effort must be"),
        ("{ reasoning_effort = { low = -1 } }", "reasoning_effort must be"),
    ],
)
def test_bad_capabilities_name_the_file_and_line(tmp_path, monkeypatch, table, problem):
    catalog_text = '[models."m"]\nprovider = "groq"\nlabel = "M"\n' + f"capabilities = {table}\n"
    with pytest.raises(ConfigError, match=problem) as caught:
        parse_catalog(catalog_text, "catalog.toml")
    assert caught.value.path == "catalog.toml" and caught.value.line == 4
    kinds_text = f"[provider_kinds.groq]\ncapabilities = {table}\n"
    with pytest.raises(ConfigError, match=problem) as caught:
        parse_catalog(kinds_text, "catalog.toml")
    assert caught.value.line == 2
    config = tmp_path / "llmrouter.toml"
    config.write_text(
        'default_model = "openai/gpt-oss-20b"\n\n[models."x"]\nprovider = "groq"\n'
        f"capabilities = {table}\n"
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=problem) as caught:
        load_settings(config=config, load_dotenv_file=False)
    assert caught.value.path == str(config) and caught.value.line == 5
    assert "llmrouter.toml, line 5" in str(caught.value)


def test_bad_capabilities_passed_straight_to_the_catalog_are_refused():
    with pytest.raises(ConfigError, match="unknown capability"):
        Catalog({GEMINI: {"capabilities": {"vision": True}}})


def test_the_shipped_catalog_declares_valid_capabilities_for_every_usable_model():
    catalog = Catalog()
    for model_id in catalog.usable_ids():
        info = catalog.get(model_id)
        assert info is not None and info.capabilities is not None, model_id


# ---- storage: schema migration and logs an older version started ------------------------------


def test_a_version_1_database_gains_the_tool_calls_columns(tmp_path):
    import sqlite3

    from llmrouter_tui.core.db import MIGRATIONS, SCHEMA_VERSION, migrate
    from llmrouter_tui.core.store import Store

    path = tmp_path / "llmrouter.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, path, MIGRATIONS[:1]) == 1  # as the previous release left it
    conn.close()
    with Store(tmp_path) as store:
        conn = sqlite3.connect(store.path)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 2
        for table in ("requests", "cache_entries"):
            columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
            assert "tool_calls" in columns, table
        conn.close()


async def test_a_csv_log_started_by_an_older_version_keeps_its_columns(make_runtime, tmp_path):
    from llmrouter_tui.core.logsinks import PROMPT_FIELDS, format_csv

    data = tmp_path / "old-data"
    (data / "logs").mkdir(parents=True)
    old_fields = [f for f in PROMPT_FIELDS if f != "tool_calls"]
    csv_path = data / "logs" / "prompts.csv"
    csv_path.write_bytes(format_csv(old_fields))
    runtime = make_runtime(data_dir=data)
    result = await runtime.router.complete(
        ChatRequest(model=GROQ, prompt="call tool", params=params(tools=[WEATHER]))
    )
    rows, warnings = read_csv(csv_path)
    assert warnings == []  # no record is garbled by a column the header lacks
    assert [r["prompt_id"] for r in rows] == [result.prompt_id]
    assert list(rows[0]) == old_fields
    lines, _ = read_jsonl(data / "logs" / "prompts.jsonl")
    assert lines[0]["tool_calls"] == [c.as_dict() for c in result.tool_calls]


# ---- the fake's non-streaming replies, read by the SDKs themselves -----------------------------


async def test_fake_whole_replies_carry_tool_calls_the_sdks_parse(upstream):
    import groq
    from google import genai
    from google.genai import types

    client = groq.AsyncGroq(api_key="gsk_test", base_url=upstream.base_url, max_retries=0)
    try:
        reply = await client.chat.completions.create(
            model=GROQ,
            messages=[{"role": "user", "content": "call tool"}],
            tools=[WEATHER],  # type: ignore[list-item]
        )
        choice = reply.choices[0]
        assert choice.finish_reason == "tool_calls" and choice.message.content is None
        (call,) = choice.message.tool_calls or []
        assert call.function.name == "get_weather"
        assert json.loads(call.function.arguments) == WEATHER_ARGS
        with pytest.raises(groq.BadRequestError, match="at most 1"):
            await client.chat.completions.create(
                model=GROQ, messages=[{"role": "user", "content": "x"}], n=2
            )
    finally:
        await client.close()
    options = types.HttpOptions(base_url=upstream.base_url, api_version="v1beta", timeout=2000)
    gem = genai.Client(api_key="AIza-test", http_options=options)
    try:
        declaration = types.FunctionDeclaration(
            name="get_weather", parameters_json_schema=WEATHER["function"]["parameters"]
        )
        config = types.GenerateContentConfig(
            tools=[types.Tool(function_declarations=[declaration])],
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )
        answer = await gem.aio.models.generate_content(
            model=GEMINI, contents="call tool", config=config
        )
        (function_call,) = answer.function_calls or []
        assert function_call.name == "get_weather" and function_call.args == WEATHER_ARGS
        assert answer.candidates[0].content.parts[0].thought_signature
    finally:
        await gem.aio.aclose()
        gem.close()


def test_config_file_sets_capabilities_and_the_image_url_switch(tmp_path, monkeypatch):
    config = tmp_path / "llmrouter.toml"
    config.write_text(
        "[routing]\nfetch_image_urls = true\n\n"
        '[models."gemini-3.5-flash"]\ncapabilities = { presence_penalty = true }\n'
    )
    monkeypatch.chdir(tmp_path)
    settings = load_settings(config=config, load_dotenv_file=False)
    assert settings.routing.fetch_image_urls is True
    catalog = Catalog(settings.models, settings.providers)
    assert catalog.capabilities(GEMINI).presence_penalty
    assert catalog.capabilities(GEMINI).images  # the catalog's other keys stay
    monkeypatch.chdir(tmp_path.parent)  # no config file: the switch is off by default
    assert load_settings(load_dotenv_file=False).routing.fetch_image_urls is False


def test_openai_message_dicts_round_trip_with_tool_calls_and_signatures():
    from llmrouter_tui.core.messages import message_from_openai

    call = ToolCall("call_1", "get_weather", '{"city":"Oslo"}', signature="c2ln")
    raw = {"role": "assistant", "content": None, "tool_calls": [call.as_dict()]}
    assert raw["tool_calls"][0]["extra_content"] == {"google": {"thought_signature": "c2ln"}}
    message = message_from_openai(raw, 0)
    assert message == Message("assistant", "", (call,))
    tool = message_from_openai({"role": "tool", "content": "21", "tool_call_id": "call_1"}, 1)
    assert tool == Message("tool", "21", tool_call_id="call_1")


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ({"role": "wizard", "content": "x"}, r"messages\[0\]\.role"),
        ({"role": "user", "content": 5}, r"messages\[0\]\.content"),
        ({"role": "user", "content": [{"type": "audio"}]}, r"messages\[0\]\.content\[0\]\.type"),
        (
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]},
            r"messages\[0\]\.content\[0\]\.image_url\.url",
        ),
        (
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,x"}}]},
            r"messages\[0\]\.content\[0\]\.image_url\.url",
        ),
        ({"role": "tool", "content": "1"}, r"messages\[0\]\.tool_call_id"),
        (
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c", "function": {}}]},
            r"messages\[0\]\.tool_calls\[0\]\.function\.name",
        ),
        (
            {"role": "system", "content": [{"type": "image_url", "image_url": {"url": PNG_URL}}]},
            "only allowed in user messages",
        ),
    ],
)
def test_bad_message_fields_are_refused_by_path(raw, named):
    from llmrouter_tui.core.messages import message_from_openai

    with pytest.raises(InputError, match=named):
        message_from_openai(raw, 0)
