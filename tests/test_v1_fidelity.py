"""Issue 11, server half: every OpenAI parameter honoured or refused by name; tools, JSON mode,
images and model retrieval, through the stock `openai` client.

The real server runs on a real socket (the embedded h11 server) against the fake upstream; the
client is `openai.AsyncOpenAI`. Assertions are on what the client got and on what the fake
upstream received. Every response the client receives is also held to /openapi.json (the
recording transport below, checked when each test ends).
"""

from __future__ import annotations

import base64
import json
import re
import typing
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from conftest import fake_settings
from server_helpers import REPO_ROOT, check_response, serving
from v1_fixtures import PNG, PNG_URL, TIME, WEATHER, WEATHER_ARGS, RecordingTransport

from llmrouter_tui.core.config import RoutingSettings
from llmrouter_tui.core.params import OPENAI_PARAM_NAMES
from llmrouter_tui.core.runtime import Runtime
from llmrouter_tui.server.app import create_app
from llmrouter_tui.server.parameters import (
    BY_NAME,
    CHAT_PARAMETERS,
    KINDS,
    PARAMETERS,
    Param,
    Row,
    honouring_models,
    honours,
    markdown_table,
)
from llmrouter_tui.testing.fake_features import field_of
from llmrouter_tui.testing.fake_upstream import FakeUpstream, Fault

GROQ = "openai/gpt-oss-20b"
GROQ_BIG = "openai/gpt-oss-120b"
GROQ_VISION = "qwen/qwen3.6-27b"
COMPOUND = "groq/compound"
GEMINI = "gemini-3.5-flash"
GEMINI_LITE = "gemini-3.5-flash-lite"
LOCAL = "llama3.2"  # kind "openai" (conftest's `local` provider)
PRIMARY = {"groq": GROQ, "gemini": GEMINI, "openai": LOCAL}
EVERY_KIND = [GROQ, GEMINI, LOCAL]
TOKEN = "tok-v1-fidelity"


# ---- the server, the stock client, and every response held to /openapi.json ------------------


def documented_path(response: httpx.Response) -> str:
    path = response.request.url.path
    return "/v1/models/{model}" if path.startswith("/v1/models/") else path


@dataclass
class V1:
    client: openai.AsyncOpenAI
    http: httpx.AsyncClient  # the same server without the SDK (for /chat and raw checks)
    runtime: Runtime
    upstream: FakeUpstream
    transport: RecordingTransport
    raw: list[httpx.Response] = field(default_factory=list)

    async def post(self, url: str, body: Any) -> httpx.Response:
        response = await self.http.post(url, json=body)
        self.raw.append(response)
        return response

    def bodies(self, model: str) -> list[Any]:
        return [r.body for r in self.upstream.requests_for(model) if r.method == "POST"]


@pytest.fixture
async def make_v1(upstream: FakeUpstream, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Servers with extra `[models."ID"]` tables and [routing] settings; the stock client."""
    stack = AsyncExitStack()
    made: list[V1] = []

    async def build(models: dict[str, Any] | None = None, **routing: Any) -> V1:
        settings = fake_settings(upstream.base_url, tmp_path / f"data{len(made)}", **routing)
        merged = {model: dict(table) for model, table in settings.models.items()}
        for model, table in (models or {}).items():
            merged.setdefault(model, {}).update(table)
        runtime = Runtime(replace(settings, models=merged))
        stack.push_async_callback(runtime.aclose)
        server = await stack.enter_async_context(serving(create_app(runtime, token=TOKEN)))
        transport = RecordingTransport()
        client = openai.AsyncOpenAI(
            base_url=server.url + "/v1",
            api_key=TOKEN,
            max_retries=0,
            http_client=httpx.AsyncClient(transport=transport, timeout=20),
        )
        stack.push_async_callback(client.close)
        http = httpx.AsyncClient(
            base_url=server.url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=20
        )
        stack.push_async_callback(http.aclose)
        made.append(V1(client, http, runtime, upstream, transport))
        return made[-1]

    yield build
    await stack.aclose()
    for v1 in made:  # every response of the test, as the client got it, matches the document
        for response in [*v1.transport.seen, *v1.raw]:
            check_response(response, documented_path(response))


@pytest.fixture
async def v1(make_v1: Callable[..., Any]) -> V1:
    return await make_v1()


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


async def streamed(stream: Any) -> tuple[str, list[Any], str | None, list[Any]]:
    """(text, tool-call deltas, finish_reason, chunks) of an SDK stream."""
    text, deltas, finish, chunks = "", [], None, []
    async for chunk in stream:
        chunks.append(chunk)
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        text += choice.delta.content or ""
        deltas += choice.delta.tool_calls or []
        finish = choice.finish_reason or finish
    return text, deltas, finish, chunks


def assembled(deltas: list[Any]) -> list[dict[str, Any]]:
    """Tool calls rebuilt from streamed deltas the way OpenAI clients do (by index)."""
    calls: dict[int, dict[str, Any]] = {}
    for delta in deltas:
        call = calls.setdefault(delta.index, {"id": None, "name": None, "arguments": ""})
        call["id"] = call["id"] or delta.id
        if delta.function is not None:
            call["name"] = call["name"] or delta.function.name
            call["arguments"] += delta.function.arguments or ""
    return [calls[i] for i in sorted(calls)]


def at_path(body: Any, path: str) -> Any:
    """`a.b[2].c` in an upstream request body (Gemini fields in camel or snake case)."""
    node = body
    for key, index in re.findall(r"([A-Za-z_]\w*)|\[(\d+)\]", path):
        if key:
            node = field_of(node, key)
        else:
            node = node[int(index)] if isinstance(node, list) and int(index) < len(node) else None
        if node is None:
            return None
    return node


def not_sent_values(param: Param, row: Row, sample: dict[str, Any]) -> list[Any]:
    """The values a kind that is not sent the row's parameter must not receive: the sample's
    value when it is plain, else what the kinds that are sent it find at their wire paths
    (`messages[0].name` of a messages sample)."""
    value = sample[param.name]
    if isinstance(value, str | bool | int):
        return [value]
    found = [at_path(sample, wire) for wire in row.wire.values() if wire is not None]
    return [v for v in found if isinstance(v, str | bool | int)]


# ---- one table: the SDK's fields, the core's names, the OpenAPI document, the README -----------


def test_the_table_names_every_field_the_openai_sdk_can_send():
    from openai.types.chat import completion_create_params

    sdk = set(typing.get_type_hints(completion_create_params.CompletionCreateParamsBase))
    sdk |= set(typing.get_type_hints(completion_create_params.CompletionCreateParamsStreaming))
    assert sdk - set(BY_NAME) == set()  # nothing an OpenAI client sends is unknown here
    ours = {p.name for p in PARAMETERS if p.extension}
    assert set(BY_NAME) - sdk == ours == {"ignore_cache", "conversation_id"}
    # The parameters the core reads are exactly the table's "passed" ones beyond the basics.
    basics = {"messages", "temperature", "max_tokens", "max_completion_tokens"}
    passed = {p.name for p in PARAMETERS if p.handling == "passed"}
    assert passed - basics == OPENAI_PARAM_NAMES
    for param in PARAMETERS:
        assert param.note or param.handling == "passed", param.name
        assert (param.handling == "passed") == bool(param.rows), param.name
        assert not param.neutral or param.handling == "refused", param.name
        for row in param.rows:
            assert set(row.wire) == set(KINDS) and set(row.shown) <= set(KINDS), row.label
            if None in row.wire.values():  # "not sent" is checked by looking for the value
                assert all(not_sent_values(param, row, s) for s in row.samples), row.label


def test_the_readme_table_is_the_code_table():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(
        r"<!-- parameters table: generated -->\n(.*?)<!-- end of parameters table -->",
        readme,
        re.S,
    )
    assert match, "README.md lost its parameters table markers"
    assert match.group(1) == markdown_table(), (
        "README's OpenAI parameters table differs from the code; paste the output of "
        "`python -c 'from llmrouter_tui.server.parameters import markdown_table as t; "
        'print(t(), end="")\'`'
    )


def test_the_readme_documents_capabilities_the_new_outcome_and_fetch_image_urls():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    routed = readme.split("## How a request is routed")[1].split("\n## ")[0]
    assert "`skipped_unsupported`" in routed
    models = readme.split("## Models")[1].split("\n## ")[0]
    assert "`capabilities`" in models
    example = readme.split("```toml\ndefault_model")[1].split("```")[0]
    routing = example.split("[routing]")[1].split("\n[")[0]
    default = RoutingSettings().fetch_image_urls
    assert f"\nfetch_image_urls = {str(default).lower()} " in routing


async def test_openapi_request_schemas_come_from_the_table(v1: V1):
    doc = check_response(await v1.http.get("/openapi.json"))
    request = doc["components"]["schemas"]["OpenAIChatRequest"]
    assert set(request["properties"]) == set(BY_NAME)
    assert request["additionalProperties"] is False
    chat = doc["components"]["schemas"]["ChatRequest"]["properties"]
    assert {p.name for p in CHAT_PARAMETERS} <= set(chat)
    assert "tools" not in chat and "logit_bias" not in chat
    outcomes = doc["components"]["schemas"]["Attempt"]["properties"]["outcome"]["enum"]
    assert "skipped_unsupported" in outcomes
    assert "/v1/models/{model}" in doc["paths"]
    assert "refused" in request["properties"]["logit_bias"]["description"].lower()


# ---- every parameter: passed where the table says, in the shape it says ------------------------

PASSED_ROWS = [(p, row) for p in PARAMETERS if p.handling == "passed" for row in p.rows]


def _model_for(v1: V1, row: Row, kind: str) -> tuple[str | None, dict[str, Any] | None]:
    """A model of `kind` that is sent the row's parameter, and the sample it takes."""
    catalog = v1.runtime.catalog
    if kind == "openai":
        candidates = [LOCAL]
    else:
        honoured, _ = honouring_models(row, catalog, kind)
        candidates = sorted(honoured, key=lambda m: m != PRIMARY[kind])
    for model in candidates:
        for sample in row.samples:
            if honours(catalog.capabilities(model), sample):
                return model, dict(sample)
    return None, None


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize(
    ("param", "row"),
    PASSED_ROWS,
    ids=[re.sub(r"\W+", "-", r.label).strip("-") for _, r in PASSED_ROWS],
)
async def test_each_parameter_reaches_each_provider_kind_as_the_table_says(
    v1: V1, param: Param, row: Row, kind: str, stream: bool
):
    model, sample = _model_for(v1, row, kind)
    if model is None:  # the table says "refused" for this kind: a 400 naming it and the model
        model = PRIMARY[kind]
        sample = dict(row.samples[0])
        messages = sample.pop("messages", user("x"))
        with pytest.raises(openai.BadRequestError) as caught:
            await v1.client.chat.completions.create(
                model=model, messages=messages, stream=stream, **sample
            )
        error = caught.value.body
        assert error["param"].split("[")[0].split(".")[0] == param.name, error
        assert error["code"] == "unsupported_parameter"
        assert model in error["message"] and param.name in error["message"]
        assert v1.upstream.requests == []  # nothing was sent anywhere instead
        return
    assert sample is not None
    messages = sample.pop("messages", user("please answer"))
    if stream:
        text, deltas, finish, _ = await streamed(
            await v1.client.chat.completions.create(
                model=model, messages=messages, stream=True, **sample
            )
        )
        assert finish in ("stop", "tool_calls", "length") and (text or deltas)
    else:
        reply = await v1.client.chat.completions.create(model=model, messages=messages, **sample)
        assert reply.model == model and reply.choices[0].finish_reason in ("stop", "tool_calls")
    (body,) = v1.bodies(model)
    wire = row.wire[kind]
    if wire is None:  # accepted, not sent: the value appears nowhere in the request
        values = not_sent_values(param, row, {**sample, "messages": messages})
        assert values, row.label  # a check that looks for nothing cannot fail
        for value in values:
            assert json.dumps(value) not in json.dumps(body), (row.label, value)
        return
    value = at_path(body, wire)
    assert value is not None, f"{kind} did not receive {wire}: {json.dumps(body)[:400]}"
    expected = {**sample, "messages": messages}.get(param.name)
    same_shape = kind != "gemini" or isinstance(expected, int | float | str)
    if type(value) is type(expected) and same_shape:
        assert value == expected, (wire, value, expected)


# ---- refused, accepted, unknown ---------------------------------------------------------------

REFUSED_VALUES: dict[str, Any] = {
    "store": True,
    "service_tier": "flex",
    "verbosity": "high",
    "logit_bias": {"50256": -100},
    "modalities": ["text", "audio"],
    "audio": {"voice": "alloy", "format": "wav"},
    "functions": [{"name": "get_weather", "parameters": {"type": "object"}}],
    "function_call": "auto",
    "web_search_options": {},
    "moderation": {"policy": {"input": {"mode": "block"}}},
}


def test_every_refused_parameter_has_a_test_value():
    assert set(REFUSED_VALUES) == {p.name for p in PARAMETERS if p.handling == "refused"}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize(("name", "value"), sorted(REFUSED_VALUES.items()))
async def test_refused_parameters_are_a_400_naming_the_parameter_and_the_model(
    v1: V1, name: str, value: Any, stream: bool
):
    with pytest.raises(openai.BadRequestError) as caught:
        await v1.client.chat.completions.create(
            model=GEMINI, messages=user("hi"), stream=stream, **{name: value}
        )
    error = caught.value.body
    assert error["param"] == name and error["code"] == "unsupported_parameter"
    assert error["type"] == "invalid_request_error"
    assert name in error["message"] and repr(GEMINI) in error["message"]
    assert BY_NAME[name].note in error["message"]  # what to do instead
    assert v1.upstream.requests == []


NEUTRAL = [(p.name, value) for p in PARAMETERS for value in p.neutral]


@pytest.mark.parametrize(("name", "value"), NEUTRAL, ids=[f"{n}={v!r}" for n, v in NEUTRAL])
async def test_values_that_mean_the_default_are_accepted(v1: V1, name: str, value: Any):
    reply = await v1.client.chat.completions.create(
        model=GROQ, messages=user("defaults"), **{name: value}
    )
    assert reply.choices[0].message.content
    assert name not in v1.bodies(GROQ)[0]


ACCEPTED_VALUES: dict[str, Any] = {
    "metadata": {"team": "search"},
    "safety_identifier": "hashed-user-1",
    "prompt_cache_key": "k-1",
    "prompt_cache_retention": "24h",
    "prompt_cache_options": {"mode": "implicit"},
    "prediction": {"type": "content", "content": "Paris"},
}


def test_every_accepted_parameter_has_a_test_value():
    assert set(ACCEPTED_VALUES) == {p.name for p in PARAMETERS if p.handling == "accepted"}


@pytest.mark.parametrize("model", EVERY_KIND)
async def test_accepted_parameters_are_not_sent_and_do_not_change_the_cache_key(v1: V1, model: str):
    first = await v1.client.chat.completions.create(
        model=model, messages=user("accepted"), **ACCEPTED_VALUES
    )
    again = await v1.client.chat.completions.create(model=model, messages=user("accepted"))
    assert first.model_extra["x_llmrouter"]["from_cache"] is False
    assert again.model_extra["x_llmrouter"]["from_cache"] is True
    (body,) = v1.bodies(model)
    for name in ACCEPTED_VALUES:
        assert name not in json.dumps(body)


@pytest.mark.parametrize(
    ("extra", "param", "code"),
    [
        ({"top_k": 40}, "top_k", "unknown_parameter"),
        ({"metadata": "not-an-object"}, "metadata", "invalid_type"),
        ({"top_p": 3}, "top_p", None),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop", None),
        ({"tools": [{"type": "function", "function": {}}]}, "tools[0].function.name", None),
        ({"tool_choice": "required"}, "tool_choice", None),
        ({"reasoning_effort": "turbo"}, "reasoning_effort", "unsupported_parameter"),
        ({"frequency_penalty": 0.5}, "frequency_penalty", "unsupported_parameter"),
    ],
)
async def test_bad_fields_are_refused_by_name_before_any_call(
    v1: V1, extra: dict[str, Any], param: str, code: str | None
):
    with pytest.raises(openai.BadRequestError) as caught:
        await v1.client.chat.completions.create(model=GROQ, messages=user("x"), extra_body=extra)
    error = caught.value.body
    assert error["param"] == param and error["code"] == code, error
    assert param.split("[")[0] in error["message"]
    assert v1.upstream.requests == []


@pytest.mark.parametrize(
    ("message", "param"),
    [
        ({"role": "wizard", "content": "x"}, "messages[0].role"),
        ({"role": "tool", "content": "1"}, "messages[0].tool_call_id"),
        (
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]},
            "messages[0].content[0].image_url.url",
        ),
        ({"role": "user", "content": [{"type": "audio"}]}, "messages[0].content[0].type"),
        ({"role": "user", "content": "x", "name": 7}, "messages[0].name"),
        ({"role": "user", "content": "x", "name": " "}, "messages[0].name"),
        ({"role": "tool", "tool_call_id": "c", "content": "1", "name": "f"}, "messages[0].name"),
    ],
)
async def test_bad_messages_are_refused_by_path(v1: V1, message: dict[str, Any], param: str):
    with pytest.raises(openai.BadRequestError) as caught:
        await v1.client.chat.completions.create(model=GROQ, messages=[message])
    assert caught.value.body["param"] == param
    assert param in caught.value.body["message"]


# ---- messages are not reshaped ----------------------------------------------------------------


@pytest.mark.parametrize("model", EVERY_KIND)
async def test_text_parts_are_sent_as_parts_never_glued(v1: V1, model: str):
    parts = [{"type": "text", "text": "part one"}, {"type": "text", "text": "part two"}]
    reply = await v1.client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": parts}]
    )
    assert reply.model_extra["x_llmrouter"]["status"] == "ok"
    body = v1.bodies(model)[0]
    assert "part onepart two" not in json.dumps(body)
    if model == GEMINI:
        assert body["contents"][0]["parts"] == [{"text": "part one"}, {"text": "part two"}]
    else:
        assert body["messages"][0]["content"] == parts


async def test_several_system_messages_keep_their_places(v1: V1):
    conversation = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "developer", "content": "Now answer in French."},
        {"role": "user", "content": "How are you?"},
    ]
    for model in (GROQ, LOCAL):
        await v1.client.chat.completions.create(model=model, messages=conversation)
        sent = v1.bodies(model)[0]["messages"]
        assert [m["role"] for m in sent] == ["system", "user", "assistant", "system", "user"]
        assert sent[3] == {"role": "system", "content": "Now answer in French."}


# ---- tools, whole and streamed ----------------------------------------------------------------


@pytest.mark.parametrize("model", EVERY_KIND)
async def test_tool_round_trip_whole(v1: V1, model: str):
    question = user("Weather in Oslo? call tool please")
    asked = await v1.client.chat.completions.create(model=model, messages=question, tools=[WEATHER])
    choice = asked.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None  # only a tool call: no text, as OpenAI
    (call,) = choice.message.tool_calls or []
    assert call.type == "function" and call.id
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == WEATHER_ARGS
    assert asked.model_extra["x_llmrouter"]["tool_calls"][0]["id"] == call.id

    history = [
        *question,
        choice.message.model_dump(exclude_none=True),  # as clients send it back
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'},
    ]
    answer = await v1.client.chat.completions.create(model=model, messages=history, tools=[WEATHER])
    assert answer.choices[0].finish_reason == "stop"
    assert answer.choices[0].message.tool_calls is None
    assert '{"temp_c": 21}' in answer.choices[0].message.content  # the fake quotes results

    second = v1.bodies(model)[1]
    if model == GEMINI:
        turns = second["contents"]
        sent_call = turns[1]["parts"][0]
        assert field_of(sent_call, "functionCall")["args"] == WEATHER_ARGS
        signature = call.model_extra["extra_content"]["google"]["thought_signature"]
        assert field_of(sent_call, "thoughtSignature") == signature  # went back with the call
        response = field_of(turns[2]["parts"][0], "functionResponse")
        assert response == {"name": "get_weather", "response": {"temp_c": 21}}
    else:
        assert second["tools"] == [WEATHER]
        assert second["messages"][1]["tool_calls"][0]["id"] == call.id
        assert second["messages"][2] == {
            "role": "tool",
            "content": '{"temp_c": 21}',
            "tool_call_id": call.id,
        }


@pytest.mark.parametrize("model", EVERY_KIND)
async def test_tool_round_trip_streamed(v1: V1, model: str):
    question = user("call all tools now")
    text, deltas, finish, chunks = await streamed(
        await v1.client.chat.completions.create(
            model=model, messages=question, tools=[WEATHER, TIME], stream=True
        )
    )
    assert finish == "tool_calls" and text == ""
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].choices[0].delta.content is None  # the reply opens with a tool call
    calls = assembled(deltas)
    assert [c["name"] for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[0]["arguments"]) == WEATHER_ARGS
    firsts = [d for d in deltas if d.id is not None]
    assert [d.index for d in firsts] == [0, 1] and all(d.type == "function" for d in firsts)
    recorded = chunks[-1].model_extra["x_llmrouter"]["tool_calls"]
    assert [(c["id"], c["function"]["arguments"]) for c in recorded] == [
        (c["id"], c["arguments"]) for c in calls
    ]
    if model == LOCAL:  # OpenAI-style servers send arguments in pieces: so does the relay
        assert len(deltas) > len(calls)

    history = [
        *question,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": c["id"],
                    "type": "function",
                    "function": {"name": c["name"], "arguments": c["arguments"]},
                    **({"extra_content": r["extra_content"]} if "extra_content" in r else {}),
                }
                for c, r in zip(calls, recorded, strict=True)
            ],
        },
        {"role": "tool", "tool_call_id": calls[0]["id"], "content": "sunny"},
        {"role": "tool", "tool_call_id": calls[1]["id"], "content": "12:00"},
    ]
    text, deltas, finish, _ = await streamed(
        await v1.client.chat.completions.create(
            model=model, messages=history, tools=[WEATHER, TIME], stream=True
        )
    )
    assert finish == "stop" and deltas == []
    assert "sunny" in text and "12:00" in text


async def test_tool_choice_and_parallel_tool_calls(v1: V1):
    forced = await v1.client.chat.completions.create(
        model=GEMINI,
        messages=user("no trigger words"),
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    assert [c.function.name for c in forced.choices[0].message.tool_calls] == ["get_time"]
    one = await v1.client.chat.completions.create(
        model=GROQ,
        messages=user("call all tools"),
        tools=[WEATHER, TIME],
        parallel_tool_calls=False,
    )
    assert len(one.choices[0].message.tool_calls) == 1
    assert v1.bodies(GROQ)[0]["parallel_tool_calls"] is False


async def test_tool_requests_fall_back_only_to_tool_capable_models(make_v1: Callable[..., Any]):
    v1 = await make_v1({LOCAL: {"fallbacks": [COMPOUND, GEMINI]}})
    v1.upstream.add_fault(Fault(kind="status", status=503, model=LOCAL, times=None))
    _, deltas, finish, chunks = await streamed(
        await v1.client.chat.completions.create(
            model=LOCAL, messages=user("please call tool"), tools=[WEATHER], stream=True
        )
    )
    assert finish == "tool_calls" and assembled(deltas)[0]["name"] == "get_weather"
    details = chunks[-1].model_extra["x_llmrouter"]
    assert details["model_used"] == GEMINI and details["fallback_used"] is True
    skipped = [a for a in details["attempts"] if a["outcome"] == "skipped_unsupported"]
    assert [a["model"] for a in skipped] == [COMPOUND]
    assert "tools" in skipped[0]["message"] and COMPOUND in skipped[0]["message"]
    assert v1.bodies(COMPOUND) == []


async def test_a_model_that_cannot_take_tools_is_refused_by_name(v1: V1):
    with pytest.raises(openai.BadRequestError) as caught:
        await v1.client.chat.completions.create(
            model=COMPOUND, messages=user("call tool"), tools=[WEATHER]
        )
    assert caught.value.body["param"] == "tools"
    assert COMPOUND in caught.value.body["message"]
    assert v1.upstream.requests == []


# ---- JSON mode --------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("model", EVERY_KIND)
async def test_json_mode(v1: V1, model: str, stream: bool):
    asked = {"type": "json_object"}
    if stream:
        text, _, _, _ = await streamed(
            await v1.client.chat.completions.create(
                model=model, messages=user("give me json"), response_format=asked, stream=True
            )
        )
    else:
        reply = await v1.client.chat.completions.create(
            model=model, messages=user("give me json"), response_format=asked
        )
        text = reply.choices[0].message.content
    assert isinstance(json.loads(text), dict)
    body = v1.bodies(model)[0]
    if model == GEMINI:
        config = field_of(body, "generationConfig")
        assert field_of(config, "responseMimeType") == "application/json"
    else:
        assert body["response_format"] == asked


@pytest.mark.parametrize("model", [GROQ, GEMINI, LOCAL])
async def test_structured_output_follows_the_schema(v1: V1, model: str):
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    reply = await v1.client.chat.completions.create(
        model=model,
        messages=user("structured"),
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
    )
    assert json.loads(reply.choices[0].message.content) == {"answer": "value"}


# ---- images -----------------------------------------------------------------------------------

IMAGE_MESSAGE = {
    "role": "user",
    "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": PNG_URL, "detail": "low"}},
    ],
}


@pytest.mark.parametrize("model", [GEMINI, GROQ_VISION])
async def test_an_image_reaches_a_model_that_takes_images(v1: V1, model: str):
    reply = await v1.client.chat.completions.create(model=model, messages=[IMAGE_MESSAGE])
    assert "[image image/png 67 bytes]" in reply.choices[0].message.content
    body = v1.bodies(model)[0]
    if model == GEMINI:
        blob = field_of(body["contents"][0]["parts"][1], "inlineData")
        assert base64.b64decode(blob["data"]) == PNG
    else:
        assert body["messages"][0]["content"] == IMAGE_MESSAGE["content"]


async def test_an_image_for_a_text_only_model_is_a_400_naming_the_model(v1: V1):
    with pytest.raises(openai.BadRequestError) as caught:
        await v1.client.chat.completions.create(model=GROQ, messages=[IMAGE_MESSAGE])
    error = caught.value.body
    assert error["param"] == "messages[0].content[1]"
    assert GROQ in error["message"] and "image" in error["message"]
    assert v1.upstream.requests == []


async def test_http_image_urls_only_with_fetch_image_urls(make_v1: Callable[..., Any]):
    closed = await make_v1()
    closed.upstream.files["/img/cat.png"] = ("image/png", PNG)
    url = closed.upstream.base_url + "/img/cat.png"
    message = {
        "role": "user",
        "content": [{"type": "text", "text": "What?"}, {"type": "image_url", "image_url": url}],
    }
    with pytest.raises(openai.BadRequestError) as caught:
        await closed.client.chat.completions.create(model=GEMINI, messages=[message])
    assert "fetch_image_urls" in caught.value.body["message"]
    assert caught.value.body["param"] == "messages[0].content[1]"
    opened = await make_v1(fetch_image_urls=True)
    opened.upstream.files["/img/cat.png"] = ("image/png", PNG)
    reply = await opened.client.chat.completions.create(model=GEMINI, messages=[message])
    assert "[image image/png 67 bytes]" in reply.choices[0].message.content
    blob = field_of(opened.bodies(GEMINI)[0]["contents"][0]["parts"][1], "inlineData")
    assert base64.b64decode(blob["data"]) == PNG


# ---- models -----------------------------------------------------------------------------------


async def test_models_retrieve_with_ids_that_contain_a_slash(v1: V1):
    model = await v1.client.models.retrieve(GROQ)
    assert model.id == GROQ and model.object == "model" and model.owned_by == "groq"
    details = model.model_extra["x_llmrouter"]
    assert details["capabilities"] == v1.runtime.catalog.capabilities(GROQ).as_dict()
    assert details["capabilities"]["tools"] is True and details["status"] == "available"
    assert b"%2F" in v1.transport.seen[-1].request.url.raw_path  # the SDK encodes the slash
    plain = await v1.http.get(f"/v1/models/{GROQ}")  # and the slash sent as it is works too
    v1.raw.append(plain)
    assert plain.json()["id"] == GROQ
    gemini = await v1.client.models.retrieve(GEMINI)
    assert gemini.model_extra["x_llmrouter"]["capabilities"]["images"] is True
    retired = await v1.client.models.retrieve("llama-3.1-8b-instant")
    assert retired.model_extra["x_llmrouter"]["status"] == f"retired → {GROQ}"
    with pytest.raises(openai.NotFoundError) as caught:
        await v1.client.models.retrieve("openai/no-such-model")
    error = caught.value.body
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert "openai/no-such-model" in error["message"]


async def test_models_retrieve_takes_every_id_a_chat_request_takes(v1: V1):
    """A PROVIDER:MODEL id that /v1/chat/completions accepts is a model here too."""
    fresh = await v1.client.models.retrieve("groq:brand-new-model")
    assert (fresh.id, fresh.owned_by) == ("groq:brand-new-model", "groq")
    details = fresh.model_extra["x_llmrouter"]
    kind_defaults = v1.runtime.catalog.capabilities("groq:any-uncatalogued-id", "groq")
    assert details["capabilities"] == kind_defaults.as_dict()
    assert details["context_window"] is None and details["status"] == "not in the catalog"
    # The catalog model under its qualified name: its own capabilities and window.
    qualified = await v1.client.models.retrieve(f"groq:{GROQ}")
    details = qualified.model_extra["x_llmrouter"]
    assert details["capabilities"] == v1.runtime.catalog.capabilities(GROQ).as_dict()
    assert details["context_window"] == 131072
    local = await v1.client.models.retrieve("local:qwen3:8b")  # kind openai: ':' is allowed
    assert local.owned_by == "local"
    reply = await v1.client.chat.completions.create(
        model="groq:brand-new-model", messages=user("x")
    )
    assert reply.model == "groq:brand-new-model"
    for bad in ("nowhere:some-model", "gemini:a..b", "gemini:models/x", "groq:", ":x"):
        with pytest.raises(openai.NotFoundError) as caught:
            await v1.client.models.retrieve(bad)
        error = caught.value.body
        assert error["code"] == "model_not_found" and error["param"] == "model", (bad, error)
        with pytest.raises(openai.BadRequestError):  # chat agrees: not a model here
            await v1.client.chat.completions.create(model=bad, messages=user("x"))


async def test_capabilities_are_listed_with_every_model(v1: V1):
    listed = await v1.client.models.list()
    catalog = v1.runtime.catalog
    for model in listed.data:
        if model.id == "auto":
            continue  # what any of its candidates accepts: tests/test_server_evidence.py
        shown = model.model_extra["x_llmrouter"]["capabilities"]
        assert shown == catalog.capabilities(model.id).as_dict(), model.id
    compound = next(m for m in listed.data if m.id == COMPOUND)
    assert compound.model_extra["x_llmrouter"]["capabilities"]["tools"] is False
    response = await v1.http.get("/models")
    v1.raw.append(response)
    rows = {row["id"]: row for row in response.json()["models"]}
    assert rows[GROQ_VISION]["capabilities"]["images"] is True
    assert rows[GROQ]["capabilities"]["reasoning_effort"] == ["low", "medium", "high"]


# ---- cache and fallback -----------------------------------------------------------------------


async def test_the_cache_key_separates_parameters(v1: V1):
    async def ask(**extra: Any) -> bool:
        reply = await v1.client.chat.completions.create(
            model=GROQ, messages=user("same prompt"), **extra
        )
        return reply.model_extra["x_llmrouter"]["from_cache"]

    assert await ask(seed=1) is False
    assert await ask(seed=2) is False  # another seed: another upstream call
    assert await ask(seed=1) is True  # the same parameters: a cache hit
    assert await ask(seed=1, user="someone-else") is True  # `user` never changes the answer
    assert await ask(seed=1, stop=["END"]) is False
    assert await ask() is False
    assert [b.get("seed") for b in v1.bodies(GROQ)] == [1, 2, 1, None]


async def test_a_message_name_is_sent_and_separates_the_cache(v1: V1):
    async def ask(model: str, name: str | None) -> bool:
        message: dict[str, Any] = {"role": "user", "content": "who am I?"}
        if name is not None:
            message["name"] = name
        reply = await v1.client.chat.completions.create(model=model, messages=[message])
        return reply.model_extra["x_llmrouter"]["from_cache"]

    for model in (GROQ, LOCAL):
        assert await ask(model, "ada") is False
        assert await ask(model, "grace") is False  # another speaker: another answer
        assert await ask(model, None) is False  # unnamed: a third key
        assert await ask(model, "ada") is True
        assert [b["messages"][0].get("name") for b in v1.bodies(model)] == ["ada", "grace", None]
    # A leading system message with a name stays a message, with its name.
    await v1.client.chat.completions.create(
        model=GROQ,
        messages=[{"role": "system", "content": "Be brief.", "name": "house_rules"}, *user("x")],
    )
    assert v1.bodies(GROQ)[-1]["messages"][0] == {
        "role": "system",
        "content": "Be brief.",
        "name": "house_rules",
    }


async def test_too_long_for_every_candidate_is_a_400_with_the_reason(
    make_v1: Callable[..., Any],
):
    small = {"context_window": 100}
    v1 = await make_v1({GROQ: small, GROQ_BIG: small, GEMINI: small})
    with pytest.raises(openai.BadRequestError) as caught:
        await v1.client.chat.completions.create(model=GROQ, messages=user("word " * 400))
    error = caught.value.body
    assert error["code"] == "context_length", error
    assert "too long for every candidate's context window" in error["message"]
    assert "100-token context window" in error["message"] and "(estimated)" in error["message"]
    assert v1.upstream.requests == []


async def test_a_model_whose_provider_is_not_configured_is_a_400_naming_it(
    make_v1: Callable[..., Any],
):
    v1 = await make_v1({"helper-model": {"provider": "helper"}})
    with pytest.raises(openai.BadRequestError) as caught:
        await v1.client.chat.completions.create(model="helper-model", messages=user("x"))
    error = caught.value.body
    assert error["code"] == "model_not_found" and error["param"] == "model", error
    assert "helper-model" in error["message"] and "[providers.helper]" in error["message"]
    assert v1.upstream.requests == []


async def test_a_fallback_that_cannot_honour_is_skipped_and_shown_in_attempts(
    make_v1: Callable[..., Any],
):
    # gemini-3.5-flash -> gemini-3.5-flash-lite (here without json_schema) -> gpt-oss-120b
    v1 = await make_v1({GEMINI_LITE: {"capabilities": {"json_schema": False}}})
    v1.upstream.add_fault(Fault(kind="status", status=503, model=GEMINI, times=None))
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    reply = await v1.client.chat.completions.create(
        model=GEMINI,
        messages=user("x"),
        response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": schema}},
    )
    assert reply.model == GROQ_BIG and json.loads(reply.choices[0].message.content) == {"ok": True}
    attempts = reply.model_extra["x_llmrouter"]["attempts"]
    skipped = [a for a in attempts if a["outcome"] == "skipped_unsupported"]
    assert [a["model"] for a in skipped] == [GEMINI_LITE]
    assert "response_format" in skipped[0]["message"]
    assert v1.bodies(GEMINI_LITE) == []


# ---- /chat takes the parameters that make sense there -------------------------------------------


async def test_chat_passes_its_openai_parameters(v1: V1):
    body = {
        "model": GROQ,
        "prompt": "give me json",
        "stop": ["END"],
        "seed": 5,
        "top_p": 0.5,
        "reasoning_effort": "low",
        "response_format": {"type": "json_object"},
        "user": "u-1",
        "max_completion_tokens": 60,
        "n": 1,  # means the default: fine
    }
    response = await v1.post("/chat", body)
    assert response.status_code == 200, response.text
    assert isinstance(json.loads(response.json()["response_text"]), dict)
    sent = v1.bodies(GROQ)[0]
    for name in ("stop", "seed", "top_p", "reasoning_effort", "response_format", "user"):
        assert sent[name] == body[name], name
    assert sent["max_completion_tokens"] == 60
    gemini = await v1.post("/chat?model=" + GEMINI, {"prompt": "x", "stop": "END", "seed": 9})
    assert gemini.status_code == 200
    config = field_of(v1.bodies(GEMINI)[0], "generationConfig")
    assert field_of(config, "stopSequences") == ["END"] and config["seed"] == 9
    again = await v1.post("/chat?stream=true", {"model": GROQ, "prompt": "s", "seed": 3})
    assert again.status_code == 200 and '"type":"done"' in again.text
    assert v1.bodies(GROQ)[-1]["seed"] == 3


@pytest.mark.parametrize(
    ("extra", "param", "needle"),
    [
        ({"tools": [WEATHER]}, "tools", "/v1/chat/completions"),
        ({"n": 2}, "n", "/v1/chat/completions"),
        ({"logit_bias": {"1": 1}}, "logit_bias", "token ids"),
        ({"top_p": 2}, "top_p", "top_p must be"),
        ({"frequency_penalty": 0.5}, "frequency_penalty", GROQ),
    ],
)
async def test_chat_refuses_what_it_cannot_honour_by_name(
    v1: V1, extra: dict[str, Any], param: str, needle: str
):
    response = await v1.post("/chat", {"model": GROQ, "prompt": "x", **extra})
    assert response.status_code == 400
    data = response.json()
    assert data["param"] == param and needle in data["detail"]
    assert v1.upstream.requests == []
