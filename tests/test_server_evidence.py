"""Issue 14 over HTTP: `auto` and its explanation, cost, budgets, /compare, /prefer and the
leaderboard in /stats.

A real server on a real socket (`serving()`), the fake upstream behind it, the stock openai
client for /v1; every response the tests see is checked against /openapi.json at the end.
"""

from __future__ import annotations

import json
import math
import sqlite3
import tomllib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from conftest import fake_settings
from hypothesis import event, given, settings
from hypothesis import strategies as st
from server_helpers import check_response, serving
from test_reliability_hostile import BOUNDED, CHAT_FIELDS, QUERY_VALUE, _mutate, assert_clean
from test_reliability_hostile import Api as HostileApi
from v1_fixtures import RecordingTransport
from waiting import until

from llmrouter_tui.core.compare import suggested_models
from llmrouter_tui.core.config import AutoSettings, BudgetSettings
from llmrouter_tui.core.logsinks import read_csv, read_jsonl
from llmrouter_tui.core.runtime import Runtime
from llmrouter_tui.server.app import create_app
from llmrouter_tui.server.compare import BLIND_HIDDEN
from llmrouter_tui.testing.fake_upstream import FakeUpstream, Fault

GROQ = "openai/gpt-oss-20b"
GEMINI = "gemini-3.5-flash"
LOCAL = "llama3.2"  # kind "openai" provider without a price: free
TOKEN = "tok_evidence_5e1f0c"
PAIR = (GROQ, GEMINI)
HOSTILE_BOUNDS = settings(BOUNDED, max_examples=40)


def shipped_prices() -> dict[str, dict[str, Any]]:
    """The price table read straight from the data file (not through core.pricing)."""
    text = resources.files("llmrouter_tui").joinpath("data", "prices.toml").read_text("utf-8")
    return tomllib.loads(text)["prices"]


def expected_cost(model: str, tokens: dict[str, int]) -> float:
    price = shipped_prices()[model]
    return (tokens["prompt"] * price["input"] + tokens["completion"] * price["output"]) / 1e6


@dataclass
class Served:
    runtime: Runtime
    upstream: FakeUpstream
    url: str
    http: httpx.AsyncClient
    client: openai.AsyncOpenAI
    transport: RecordingTransport
    raw: list[httpx.Response] = field(default_factory=list)

    async def post(self, url: str, body: Any = None, **kw: Any) -> httpx.Response:
        if body is not None:
            kw["json"] = body
        response = await self.http.post(url, **kw)
        self.raw.append(response)
        return response

    async def get(self, url: str, **kw: Any) -> httpx.Response:
        response = await self.http.get(url, **kw)
        self.raw.append(response)
        return response

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.runtime.store.path)

    def openai_client(self, **kw: Any) -> openai.AsyncOpenAI:
        return stock_client(self.url, self.transport, **kw)


def stock_client(url: str, transport: RecordingTransport, **kw: Any) -> openai.AsyncOpenAI:
    """The openai SDK pointed at the server, through the recording transport."""
    return openai.AsyncOpenAI(
        base_url=url + "/v1",
        api_key=TOKEN,
        http_client=httpx.AsyncClient(transport=transport, timeout=20),
        **kw,
    )


@pytest.fixture
async def make_served(upstream: FakeUpstream, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Servers with [auto] (no exploration unless asked) and [budget] settings."""
    stack = AsyncExitStack()
    made: list[Served] = []

    async def build(
        *,
        auto: AutoSettings | None = None,
        budget: BudgetSettings | None = None,
        without: tuple[str, ...] = (),
    ) -> Served:
        settings = fake_settings(upstream.base_url, tmp_path / f"data{len(made)}")
        providers = dict(settings.providers)
        for name in without:
            providers[name] = replace(providers[name], api_key=None)
        settings = replace(
            settings,
            providers=providers,
            auto=auto or AutoSettings(candidates=PAIR, explore=0.0, seed=7),
            budget=budget or BudgetSettings(),
        )
        runtime = Runtime(settings)
        stack.push_async_callback(runtime.aclose)
        server = await stack.enter_async_context(serving(create_app(runtime, token=TOKEN)))
        transport = RecordingTransport()
        http = httpx.AsyncClient(
            base_url=server.url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=20
        )
        stack.push_async_callback(http.aclose)
        client = stock_client(server.url, transport, max_retries=0)
        stack.push_async_callback(client.close)
        served = Served(runtime, upstream, server.url, http, client, transport)
        made.append(served)
        return served

    yield build
    await stack.aclose()
    for served in made:  # every response of the test matches the document
        for response in [*served.transport.seen, *served.raw]:
            path = response.request.url.path
            check_response(response, "/v1/models/{model}" if "/v1/models/" in path else path)


@pytest.fixture
async def served(make_served: Callable[..., Any]) -> Served:
    return await make_served()


async def rate_model(served: Served, model: str, score: int, times: int) -> None:
    for n in range(times):
        reply = check_response(await served.post(f"/chat?model={model}", {"prompt": f"q{n}"}))
        rated = await served.post("/rate", {"prompt_id": reply["prompt_id"], "rating": score})
        assert rated.status_code == 200


async def prefer_gemini(served: Served) -> None:
    """Evidence: Gemini rated 5, Groq rated 1 (three times each)."""
    await rate_model(served, GEMINI, 5, 3)
    await rate_model(served, GROQ, 1, 3)


def stored(served: Served, prompt_id: str) -> dict[str, Any]:
    row = served.runtime.store.get_request(prompt_id)
    assert row is not None, prompt_id
    return row


# ---- auto -----------------------------------------------------------------------------------


async def test_auto_over_chat_is_chosen_by_evidence_and_explained(served: Served) -> None:
    await prefer_gemini(served)
    best = served.runtime.router.selection.preview()
    assert best is not None and best.pick.model == GEMINI  # the core's own ranking

    by_query = check_response(await served.post("/chat?model=auto", {"prompt": "pick one"}))
    by_body = check_response(await served.post("/chat", {"model": "auto", "prompt": "again"}))
    for data in (by_query, by_body):
        assert data["requested_model"] == "auto" and data["model_used"] == GEMINI
        assert data["auto_reason"].startswith(f"auto → {GEMINI}: rated 5.0 (n=3)")
        assert stored(served, data["prompt_id"])["auto_reason"] == data["auto_reason"]

    streamed = await served.post("/chat?model=auto&stream=true", {"prompt": "stream a pick"})
    events = check_response(streamed)
    assert events[0]["type"] == "start" and events[0]["requested_model"] == "auto"
    assert events[0]["model"] == GEMINI
    done = events[-1]
    assert done["type"] == "done" and done["result"]["model_used"] == GEMINI
    assert done["result"]["auto_reason"].startswith(f"auto → {GEMINI}: ")
    assert (
        stored(served, done["result"]["prompt_id"])["auto_reason"] == done["result"]["auto_reason"]
    )
    # A model that is not auto has no reason to give.
    plain = check_response(await served.post(f"/chat?model={GROQ}", {"prompt": "plain"}))
    assert plain["auto_reason"] is None


async def test_auto_over_v1_whole_and_streamed_with_the_stock_client(served: Served) -> None:
    await prefer_gemini(served)
    messages = [{"role": "user", "content": "auto over v1"}]
    reply = await served.client.chat.completions.create(model="auto", messages=messages)
    assert reply.model == GEMINI
    details = reply.model_extra["x_llmrouter"]
    assert details["requested_model"] == "auto"
    assert details["auto_reason"].startswith(f"auto → {GEMINI}: rated 5.0 (n=3)")
    assert stored(served, details["prompt_id"])["auto_reason"] == details["auto_reason"]

    stream = await served.client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "auto streamed"}], stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert {chunk.model for chunk in chunks} == {GEMINI}
    last = chunks[-1].model_extra["x_llmrouter"]
    assert last["requested_model"] == "auto" and last["model_used"] == GEMINI
    assert last["auto_reason"].startswith(f"auto → {GEMINI}: ")


async def test_auto_is_listed_everywhere_and_retrieved_by_the_stock_client(
    served: Served,
) -> None:
    listed = await served.client.models.list()
    ids = [model.id for model in listed.data]
    assert ids[0] == "auto" and GROQ in ids and "llama-3.1-8b-instant" not in ids
    auto = await served.client.models.retrieve("auto")
    assert auto.id == "auto" and auto.object == "model"
    details = auto.model_extra["x_llmrouter"]
    assert details["status"] == "available"
    # auto accepts what any of its candidates accepts.
    catalog = served.runtime.catalog
    tables = [catalog.capabilities(model).as_dict() for model in PAIR]
    for name, value in details["capabilities"].items():
        if isinstance(value, list):
            assert set(value) == {v for t in tables for v in t[name]}, name
        else:
            assert value == any(t[name] for t in tables), name

    models = check_response(await served.get("/models"))
    assert models["available_models"][0] == "auto"
    assert "llama-3.1-8b-instant" not in models["available_models"]
    row = next(row for row in models["models"] if row["id"] == "auto")
    assert row["status"] == "available" and row["capabilities"] == details["capabilities"]


async def test_auto_without_a_candidate_says_what_to_do(make_served: Callable[..., Any]) -> None:
    served = await make_served(
        auto=AutoSettings(candidates=(GROQ,), explore=0.0), without=("groq",)
    )
    auto = await served.client.models.retrieve("auto")
    details = auto.model_extra["x_llmrouter"]
    assert details["status"] == "no key"
    assert not any(details["capabilities"].values())  # every capability listed, none held
    refused = await served.post("/chat?model=auto", {"prompt": "nobody to ask"})
    assert refused.status_code == 400
    assert "no candidate" in refused.json()["detail"] and "API key" in refused.json()["detail"]
    with pytest.raises(openai.BadRequestError) as caught:
        await served.client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "x"}]
        )
    assert "[auto] candidates" in caught.value.body["message"]


# ---- cost -----------------------------------------------------------------------------------


async def test_every_reply_carries_its_cost_as_the_core_computed_it(served: Served) -> None:
    first = check_response(await served.post(f"/chat?model={GROQ}", {"prompt": "price me"}))
    cost = expected_cost(GROQ, first["tokens"])
    assert cost > 0 and first["tokens"]["estimated"] is False
    assert first["cost_usd"] == pytest.approx(cost, rel=1e-12)
    assert first["cost_estimated"] is False and first["saved_usd"] is None
    row = stored(served, first["prompt_id"])
    assert row["cost_usd"] == first["cost_usd"] and row["cost_estimated"] is False

    hit = check_response(await served.post(f"/chat?model={GROQ}", {"prompt": "price me"}))
    assert hit["from_cache"] is True and hit["cost_usd"] == 0.0
    assert hit["saved_usd"] == pytest.approx(cost, rel=1e-12)
    assert stored(served, hit["prompt_id"])["saved_usd"] == hit["saved_usd"]

    free = check_response(await served.post(f"/chat?model={LOCAL}", {"prompt": "free"}))
    assert free["cost_usd"] == 0.0 and free["saved_usd"] is None

    messages = [{"role": "user", "content": "price v1"}]
    reply = await served.client.chat.completions.create(model=GEMINI, messages=messages)
    details = reply.model_extra["x_llmrouter"]
    tokens = {"prompt": reply.usage.prompt_tokens, "completion": reply.usage.completion_tokens}
    assert details["cost_usd"] == pytest.approx(expected_cost(GEMINI, tokens), rel=1e-12)
    assert details["cost_estimated"] is False and details["saved_usd"] is None
    assert stored(served, details["prompt_id"])["cost_usd"] == details["cost_usd"]

    stream = await served.client.chat.completions.create(
        model=GEMINI, messages=messages, stream=True
    )
    last = [chunk async for chunk in stream][-1]
    streamed = last.model_extra["x_llmrouter"]
    assert streamed["from_cache"] is True and streamed["cost_usd"] == 0.0
    assert streamed["saved_usd"] == details["cost_usd"]


async def test_stats_show_spend_per_model_and_day_savings_and_the_leaderboard(
    served: Served,
) -> None:
    empty = check_response(await served.get("/stats"))
    assert empty["cost"]["total_usd"] == 0 and empty["cost"]["per_day"] == []
    assert empty["leaderboard"] == [] and empty["leaderboard_template"] is None

    groq = check_response(await served.post(f"/chat?model={GROQ}", {"prompt": "spend"}))
    gemini = check_response(await served.post(f"/chat?model={GEMINI}", {"prompt": "spend"}))
    hit = check_response(await served.post(f"/chat?model={GROQ}", {"prompt": "spend"}))
    data = check_response(await served.get("/stats"))
    cost = data["cost"]
    assert cost["total_usd"] == pytest.approx(groq["cost_usd"] + gemini["cost_usd"])
    assert cost["saved_usd"] == pytest.approx(hit["saved_usd"])
    assert cost["priced_requests"] == 2 and cost["estimated_requests"] == 0
    assert data["per_model"][GROQ]["cost_usd"] == pytest.approx(groq["cost_usd"])
    assert data["per_model"][GROQ]["saved_usd"] == pytest.approx(hit["saved_usd"])
    (day,) = cost["per_day"]
    assert day["day"] == datetime.now(UTC).strftime("%Y-%m-%d") and day["requests"] == 3
    assert day["by_model"] == {
        GROQ: pytest.approx(groq["cost_usd"]),
        GEMINI: pytest.approx(gemini["cost_usd"]),
    }
    assert day["saved_usd"] == pytest.approx(hit["saved_usd"])
    assert data == {**served.runtime.store.stats(), "leaderboard_template": None}

    blank = await served.get("/stats?template=")
    assert blank.status_code == 400 and blank.json()["param"] == "template"
    assert "template" in blank.json()["detail"]


# ---- budget ---------------------------------------------------------------------------------


def seconds_to_midnight() -> float:
    now = datetime.now(UTC)
    tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (tomorrow - now).total_seconds()


def assert_budget_refusal(response: httpx.Response, model: str) -> dict[str, Any]:
    assert response.status_code == 429, response.text
    data = response.json()
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT00:00:00Z")
    detail = data["detail"]
    assert "daily_usd" in detail and tomorrow in detail and model in detail
    assert "raise the budget" in detail  # and what to do about it
    assert data["error_kind"] == "budget_exceeded" and data["budget"] == "daily_usd"
    assert data["resets_at"] == tomorrow and data["limit_usd"] == 1e-9
    assert data["spent_usd"] > 1e-9
    retry_after = int(response.headers["retry-after"])
    assert abs(retry_after - seconds_to_midnight()) <= 5
    assert data["retry_after_s"] == retry_after
    assert response.headers["x-should-retry"] == "false"
    return data


async def test_a_reached_budget_refuses_paid_requests_with_429_and_retry_after(
    make_served: Callable[..., Any],
) -> None:
    served = await make_served(budget=BudgetSettings(daily_usd=1e-9))
    first = check_response(await served.post(f"/chat?model={GROQ}", {"prompt": "one"}))
    assert first["cost_usd"] > 1e-9  # the request that crosses the limit completes
    calls = len(served.upstream.requests_for(GROQ))

    for stream in ("false", "true"):
        refused = await served.post(f"/chat?model={GROQ}&stream={stream}", {"prompt": "two"})
        data = assert_budget_refusal(refused, GROQ)
        assert "error" not in data  # OpenAI's error object is only under /v1
    body = {"model": GEMINI, "messages": [{"role": "user", "content": "v1"}]}
    for stream in (False, True):
        refused = await served.post("/v1/chat/completions", {**body, "stream": stream})
        error = assert_budget_refusal(refused, GEMINI)["error"]
        assert error["type"] == "insufficient_quota" and error["code"] == "budget_exceeded"
        assert error["message"] == refused.json()["detail"]
    for stream in ("false", "true"):
        compared = await served.post(
            f"/compare?stream={stream}", {"prompt": "two", "models": [LOCAL, GROQ]}
        )
        assert_budget_refusal(compared, GROQ)
    assert len(served.upstream.requests_for(GROQ)) == calls  # no provider was called
    assert served.upstream.requests_for(LOCAL) == []  # nor the free side of the compare

    # The stock client shows the message and does not spend its retries on it.
    retrying = served.openai_client(max_retries=2)
    before = len(served.transport.seen)
    with pytest.raises(openai.RateLimitError) as caught:
        await retrying.chat.completions.create(**body)
    await retrying.close()
    assert len(served.transport.seen) == before + 1
    assert caught.value.code == "budget_exceeded" and caught.value.type == "insufficient_quota"
    assert "daily budget reached" in caught.value.message

    # Free models still answer; auto picks among them only, and says why.
    free = check_response(await served.post(f"/chat?model={LOCAL}", {"prompt": "free"}))
    assert free["model_used"] == LOCAL and free["cost_usd"] == 0.0
    auto = await make_served(
        auto=AutoSettings(candidates=(GROQ, LOCAL), explore=0.0),
        budget=BudgetSettings(daily_usd=1e-9),
    )
    check_response(await auto.post(f"/chat?model={GROQ}", {"prompt": "spend it"}))
    picked = check_response(await auto.post("/chat?model=auto", {"prompt": "cheap please"}))
    assert picked["model_used"] == LOCAL
    assert "paid models skipped: daily budget reached" in picked["auto_reason"]


# ---- compare ----------------------------------------------------------------------------------


async def test_compare_returns_both_replies_recorded_under_one_compare_id(
    served: Served,
) -> None:
    response = await served.post("/compare", {"prompt": "compare us", "models": list(PAIR)})
    data = check_response(response)
    a, b = data["a"], data["b"]
    assert data["models"] == list(PAIR) and data["blind"] is False
    assert a["model_used"] == GROQ and b["model_used"] == GEMINI
    assert "received: compare us" in a["response_text"]
    assert a["prompt_id"] != b["prompt_id"]
    assert a["compare_id"] == b["compare_id"] == data["compare_id"]
    assert data["compare_id"].startswith("cmp_")
    for reply in (a, b):
        row = stored(served, reply["prompt_id"])
        assert row["compare_id"] == data["compare_id"] and row["source"] == "serve"
        assert row["status"] == "ok" and row["cost_usd"] == reply["cost_usd"]
    with served.db() as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM requests WHERE compare_id = ?", (data["compare_id"],)
        ).fetchone()
    assert count == 2

    # The /chat body as it is: a template, system text, parameters /chat takes.
    templated = check_response(
        await served.post(
            "/compare?ignore_cache=true",
            {
                "template_id": "commit_message",
                "template_vars": {"diff": "+ one line"},
                "models": [GEMINI, LOCAL],
                "temperature": 0.2,
                "seed": 3,
            },
        )
    )
    assert {templated["a"]["template_id"], templated["b"]["template_id"]} == {"commit_message"}
    assert served.upstream.requests_for(LOCAL)[-1].body["seed"] == 3


async def test_compare_streams_both_replies_tagged_by_side(served: Served) -> None:
    served.upstream.chunk_delay_s = 0.005
    response = await served.post(
        "/compare?stream=true", {"prompt": "stream us side by side", "models": list(PAIR)}
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    events = check_response(response)
    opening, closing = events[0], events[-1]
    assert opening["type"] == "compare" and opening["models"] == list(PAIR)
    assert closing == {"type": "end", "compare_id": opening["compare_id"]}
    texts: dict[str, str] = {"a": "", "b": ""}
    done: dict[str, dict[str, Any]] = {}
    sides = []
    for item in events[1:-1]:
        sides.append(item["side"])
        if item["type"] == "start":
            assert item["model"] == dict(zip("ab", PAIR, strict=True))[item["side"]]
        elif item["type"] == "delta":
            texts[item["side"]] += item["text"]
        elif item["type"] == "done":
            done[item["side"]] = item["result"]
    assert set(done) == {"a", "b"}
    for side in "ab":
        assert texts[side] == done[side]["response_text"]
        assert done[side]["compare_id"] == opening["compare_id"]
        assert stored(served, done[side]["prompt_id"])["status"] == "ok"
    assert done["a"]["prompt_id"] != done["b"]["prompt_id"]
    assert sum(1 for x, y in pairwise(sides) if x != y) >= 3  # the two ran concurrently


async def test_a_client_that_leaves_a_streamed_compare_cancels_both(served: Served) -> None:
    served.upstream.chunk_delay_s = 0.05
    body = {"prompt": "leave early " + "word " * 30, "models": list(PAIR)}
    async with served.http.stream("POST", "/compare?stream=true", json=body) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if '"type":"delta"' in line:
                break

    def statuses() -> list[str]:
        with served.db() as conn:
            query = "SELECT status FROM requests WHERE prompt LIKE 'leave early%'"
            return sorted(row[0] for row in conn.execute(query))

    await until(lambda: len(statuses()) == 2, "both sides' records")
    assert statuses() == ["cancelled", "cancelled"]


async def test_compare_without_models_asks_auto_for_its_two_best(served: Served) -> None:
    await prefer_gemini(served)
    expected = suggested_models(served.runtime.router)
    assert expected == (GEMINI, GROQ)
    data = check_response(await served.post("/compare", {"prompt": "you choose"}))
    assert data["models"] == list(expected)
    assert [data["a"]["model_used"], data["b"]["model_used"]] == list(expected)


async def test_compare_without_two_candidates_names_models(
    make_served: Callable[..., Any],
) -> None:
    served = await make_served(auto=AutoSettings(candidates=(GROQ,), explore=0.0))
    response = await served.post("/compare", {"prompt": "only one to ask"})
    assert response.status_code == 400
    data = response.json()
    assert data["param"] == "models" and "models: [a, b]" in data["detail"]


@pytest.mark.slow
async def test_a_blind_compare_hides_the_models_until_the_vote(served: Served) -> None:
    orders = set()
    for n in range(24):  # both orders show up (all alike: a 1 in 8 million chance)
        data = check_response(
            await served.post(
                "/compare", {"prompt": f"blind {n}", "models": list(PAIR), "blind": True}
            )
        )
        assert data["blind"] is True and "models" not in data
        for side in "ab":
            assert not set(BLIND_HIDDEN) & set(data[side]), data[side]
            assert data[side]["response_text"] and data[side]["status"] == "ok"
        models = tuple(stored(served, data[side]["prompt_id"])["model_used"] for side in "ab")
        orders.add(models)
    assert orders == {PAIR, PAIR[::-1]}  # random order: the position tells nothing

    vote = check_response(
        await served.post(
            "/prefer",
            {
                "prompt_a": data["a"]["prompt_id"],
                "prompt_b": data["b"]["prompt_id"],
                "outcome": "a",
            },
        )
    )
    assert (vote["model_a"], vote["model_b"]) == models  # the vote reveals them
    assert vote["winner"] == models[0] and vote["compare_id"] == data["compare_id"]

    streamed = check_response(
        await served.post(
            "/compare?stream=true", {"prompt": "blind stream", "models": list(PAIR), "blind": True}
        )
    )
    assert "models" not in streamed[0] and streamed[0]["blind"] is True
    # (the fake upstream's reply text names its model: only the router's fields count here)
    fields = [
        {k: v for k, v in e.items() if k != "text"}
        | ({"result": {**e["result"], "response_text": ""}} if "result" in e else {})
        for e in streamed
    ]
    text = json.dumps(fields)
    for model in PAIR:
        assert model not in text
    starts = [e for e in streamed if e["type"] == "start"]
    assert len(starts) == 2 and all("model" not in e and e["prompt_id"] for e in starts)


async def test_compare_bad_input_is_named(served: Served) -> None:
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"prompt": "x", "models": [GROQ]}, "models", "got 1 items"),
        ({"prompt": "x", "models": GROQ}, "models", "got string"),
        ({"prompt": "x", "models": [GROQ, 7]}, "models[1]", "got number"),
        ({"prompt": "x", "models": ["", GROQ]}, "models[0]", "empty"),
        ({"prompt": "x", "models": [GROQ, f" {GROQ}"]}, "models[1]", "two different"),
        ({"prompt": "x", "models": [GROQ, "no-such-model"]}, "models[1]", "no-such-model"),
        ({"prompt": "x", "model": GROQ}, "model", "models: [a, b]"),
        ({"prompt": "x", "models": list(PAIR), "blind": "yes"}, "blind", "true or false"),
        ({"prompt": "x", "models": list(PAIR), "n": 2}, "n", "n is not accepted by POST /compare"),
        ({"prompt": "x", "models": list(PAIR), "logit_bias": {"1": 2}}, "logit_bias", "leave"),
        ({"models": list(PAIR)}, "", "nothing to send"),
    ]
    for body, param, words in cases:
        response = await served.post("/compare", body)
        assert response.status_code == 400, (body, response.text)
        data = response.json()
        assert words in data["detail"], (body, data)
        assert data.get("param", "") == param, (body, data)
    query = await served.post(f"/compare?model={GROQ}", {"prompt": "x"})
    assert query.status_code == 400 and query.json()["param"] == "model"
    for stream in (False, True):
        unsupported = await served.post(
            "/compare",
            {"prompt": "x", "models": [LOCAL, GEMINI], "presence_penalty": 0.5, "stream": stream},
        )
        assert unsupported.status_code == 400, unsupported.text
        assert unsupported.json()["param"] == "presence_penalty"
        assert GEMINI in unsupported.json()["detail"]
    with served.db() as conn:
        assert conn.execute("SELECT count(*) FROM requests").fetchone()[0] == 0


async def test_a_failed_side_is_shown_and_both_failing_is_an_error(served: Served) -> None:
    served.upstream.add_fault(Fault(kind="status", status=400, model=GEMINI))
    data = check_response(
        await served.post("/compare", {"prompt": "one fails", "models": list(PAIR)})
    )
    assert data["a"]["status"] == "ok"
    assert data["b"]["status"] == "error" and data["b"]["error_kind"] == "bad_request"
    assert data["b"]["cost_usd"] is None and data["b"]["error"]

    streamed = check_response(
        await served.post(
            "/compare?stream=true", {"prompt": "one fails streamed", "models": list(PAIR)}
        )
    )
    errors = [e for e in streamed if e["type"] == "error"]
    assert [e["side"] for e in errors] == ["b"] and errors[0]["error"]["status"] == 400
    assert streamed[-1]["type"] == "end"

    served.upstream.clear()
    served.upstream.add_fault(Fault(kind="status", status=400))
    for stream in (False, True):
        response = await served.post(
            f"/compare?stream={str(stream).lower()}",
            {"prompt": f"both fail {stream}", "models": list(PAIR)},
        )
        assert response.status_code == 400
        failed = response.json()
        assert failed["detail"].startswith("both replies of the compare failed. a (")
        assert failed["compare_id"].startswith("cmp_") and len(failed["prompt_ids"]) == 2
        for prompt_id in failed["prompt_ids"]:
            assert stored(served, prompt_id)["compare_id"] == failed["compare_id"]


# ---- prefer and the leaderboard -------------------------------------------------------------


async def test_prefer_is_recorded_exactly_once_and_moves_the_leaderboard(
    served: Served,
) -> None:
    data = check_response(await served.post("/compare", {"prompt": "judge", "models": list(PAIR)}))
    ids = {"prompt_a": data["a"]["prompt_id"], "prompt_b": data["b"]["prompt_id"]}
    vote = check_response(
        await served.post("/prefer", {**ids, "outcome": "b", "feedback": "=1+1 clearer"})
    )
    assert vote["status"] == "ok" and vote["winner"] == GEMINI and vote["outcome"] == "b"
    assert (vote["model_a"], vote["model_b"]) == PAIR
    assert vote["compare_id"] == data["compare_id"] and vote["warnings"] == []

    with served.db() as conn:
        assert conn.execute("SELECT count(*) FROM preferences").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM preference_events").fetchone()[0] == 1
        row = conn.execute(
            "SELECT prompt_a, prompt_b, outcome, compare_id, feedback FROM preferences"
        ).fetchone()
    assert row == (ids["prompt_a"], ids["prompt_b"], "b", data["compare_id"], "=1+1 clearer")
    logs = served.runtime.store.logs_dir
    jsonl, warnings = read_jsonl(logs / "preferences.jsonl")
    assert warnings == [] and len(jsonl) == 1
    assert jsonl[0]["winner"] == GEMINI and jsonl[0]["compare_id"] == data["compare_id"]
    csv_rows, warnings = read_csv(logs / "preferences.csv")
    assert warnings == [] and len(csv_rows) == 1 and csv_rows[0]["outcome"] == "b"
    assert csv_rows[0]["feedback"] == "'=1+1 clearer"  # neutralised for spreadsheets

    board = check_response(await served.get("/stats"))["leaderboard"]
    assert [r["model"] for r in board] == [GEMINI, GROQ]
    assert (board[0]["wins"], board[0]["compares"]) == (1, 1) and board[1]["losses"] == 1
    assert board == served.runtime.store.leaderboard()

    # Voting again on the pair (in either order) replaces the vote.
    swapped = {"prompt_a": ids["prompt_b"], "prompt_b": ids["prompt_a"]}
    again = check_response(await served.post("/prefer", {**swapped, "outcome": "tie"}))
    assert again["winner"] is None
    with served.db() as conn:
        assert conn.execute("SELECT count(*) FROM preferences").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM preference_events").fetchone()[0] == 2
    board = check_response(await served.get("/stats"))["leaderboard"]
    assert {(r["model"], r["wins"], r["ties"]) for r in board} == {(GEMINI, 0, 1), (GROQ, 0, 1)}


async def test_the_leaderboard_per_template(served: Served) -> None:
    for template, winner in (("commit_message", "a"), ("commit_message", "a"), (None, "b")):
        body: dict[str, Any] = {"models": list(PAIR)}
        if template:
            body |= {"template_id": template, "template_vars": {"diff": f"+ {winner} {id(body)}"}}
        else:
            body["prompt"] = f"free text {id(body)}"
        data = check_response(await served.post("/compare", body))
        ids = {"prompt_a": data["a"]["prompt_id"], "prompt_b": data["b"]["prompt_id"]}
        check_response(await served.post("/prefer", {**ids, "outcome": winner}))

    scoped = check_response(await served.get("/stats?template=commit_message"))
    assert scoped["leaderboard_template"] == "commit_message"
    assert [(r["model"], r["wins"]) for r in scoped["leaderboard"]] == [(GROQ, 2), (GEMINI, 0)]
    assert scoped["leaderboard"] == served.runtime.store.leaderboard("commit_message")
    overall = check_response(await served.get("/stats"))["leaderboard"]
    assert {(r["model"], r["wins"], r["losses"]) for r in overall} == {
        (GROQ, 2, 1),
        (GEMINI, 1, 2),
    }
    nothing = check_response(await served.get("/stats?template=no_votes_here"))
    assert nothing["leaderboard"] == [] and nothing["leaderboard_template"] == "no_votes_here"


async def test_prefer_bad_input_is_named_and_records_nothing(served: Served) -> None:
    data = check_response(await served.post("/compare", {"prompt": "vote", "models": list(PAIR)}))
    a, b = data["a"]["prompt_id"], data["b"]["prompt_id"]
    cases: list[tuple[Any, int, str | None, str]] = [
        ({"prompt_b": b, "outcome": "a"}, 400, "prompt_a", "prompt_a is required"),
        ({"prompt_a": a, "outcome": "a"}, 400, "prompt_b", "prompt_b is required"),
        ({"prompt_a": a, "prompt_b": b}, 400, "outcome", '"a", "b", "tie" or "both_bad"'),
        ({"prompt_a": a, "prompt_b": b, "outcome": "left"}, 400, "outcome", "one of a, b, tie"),
        ({"prompt_a": a, "prompt_b": b, "outcome": 1}, 400, "outcome", "got number"),
        ({"prompt_a": 5, "prompt_b": b, "outcome": "a"}, 400, "prompt_a", "got number"),
        ({"prompt_a": a, "prompt_b": a, "outcome": "a"}, 400, "prompt_b", "two different"),
        ({"prompt_a": a, "prompt_b": b, "outcome": "a", "feedback": 3}, 400, "feedback", "got"),
        ({"prompt_a": a, "prompt_b": b, "outcome": "a", "compare_id": []}, 400, "compare_id", ""),
        ({"prompt_a": "nope", "prompt_b": b, "outcome": "a"}, 404, "prompt_a", "'nope'"),
        ({"prompt_a": a, "prompt_b": "nope", "outcome": "a"}, 404, "prompt_b", "'nope'"),
        (["prompt_a"], 400, None, "a JSON object"),
        (None, 400, None, "a JSON object"),
    ]
    for body, status, param, words in cases:
        if body is None:
            response = await served.post(
                "/prefer", content=b"", headers={"content-type": "application/json"}
            )
        else:
            response = await served.post("/prefer", body)
        assert response.status_code == status, (body, response.text)
        error = response.json()
        assert words in error["detail"], (body, error)
        assert error.get("param") == param, (body, error)
    logs = served.runtime.store.logs_dir
    assert not (logs / "preferences.jsonl").exists()
    with served.db() as conn:
        assert conn.execute("SELECT count(*) FROM preference_events").fetchone()[0] == 0


def test_retry_after_rounds_up(tmp_path: Path) -> None:
    """Retry-After is whole seconds, never sooner than the reset (nor 0)."""
    from llmrouter_tui.core.errors import BudgetExceeded
    from llmrouter_tui.server.errors import budget_error

    def header(seconds: float) -> int:
        exc = BudgetExceeded(
            "x",
            budget="monthly_usd",
            limit_usd=1.0,
            spent_usd=1.5,
            resets_at="2027-01-01T00:00:00Z",
            retry_after_s=seconds,
        )
        return int(dict(budget_error(exc, "x").headers)[b"retry-after"])

    assert header(0.0) == 1 and header(0.2) == 1 and header(59.01) == 60
    assert header(86400.0) == 86400 and math.isclose(header(3600.5), 3601)


# ---- hostile input: any field, any value ------------------------------------------------------


class Hostile(HostileApi):
    """The app in-process on its own loop (hypothesis drives it), with one judged pair."""

    pair_ids: tuple[str, str] | None = None

    def pair(self) -> tuple[str, str]:
        if self.pair_ids is None:
            both = self.post("/compare", {"prompt": "to judge", "models": list(PAIR)}).json()
            self.pair_ids = (both["a"]["prompt_id"], both["b"]["prompt_id"])
        return self.pair_ids


@pytest.fixture
def hostile(upstream: FakeUpstream, tmp_path: Path) -> Iterator[Hostile]:
    client = Hostile(upstream, tmp_path / "data")
    yield client
    client.close()


COMPARE_FIELDS = [*CHAT_FIELDS, "models", "blind"]
PREFER_FIELDS = ["prompt_a", "prompt_b", "outcome", "feedback", "compare_id", "extra"]


@pytest.mark.slow
@HOSTILE_BOUNDS
@given(data=st.data())
def test_compare_any_field_any_value(hostile: Hostile, data: st.DataObject) -> None:
    body = _mutate({"prompt": "hostile pair", "models": list(PAIR)}, COMPARE_FIELDS, data)
    params = data.draw(
        st.dictionaries(st.sampled_from(["model", "stream", "ignore_cache"]), QUERY_VALUE),
        label="query",
    )
    response = hostile.post("/compare", body, params)
    event(f"HTTP {response.status_code}")
    assert_clean(response)


@HOSTILE_BOUNDS
@given(data=st.data())
def test_prefer_any_field_any_value(hostile: Hostile, data: st.DataObject) -> None:
    ids = hostile.pair()
    base = {"prompt_a": ids[0], "prompt_b": ids[1], "outcome": "a", "feedback": "fine"}
    response = hostile.post("/prefer", _mutate(base, PREFER_FIELDS, data))
    event(f"HTTP {response.status_code}")
    assert_clean(response)
