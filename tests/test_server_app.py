"""The ASGI app in-process (httpx ASGITransport) against the fake upstream through the SDKs.

Every JSON response and SSE event is validated against /openapi.json.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from conftest import GEMINI_KEY, GROQ_KEY
from server_helpers import check_response, leaks, validate
from waiting import until

from llmrouter_tui.core.redact import Redactor
from llmrouter_tui.core.runtime import Runtime
from llmrouter_tui.server import openapi
from llmrouter_tui.server.app import create_app
from llmrouter_tui.server.routes import ROUTES
from llmrouter_tui.testing.fake_upstream import FakeUpstream, Fault

GROQ = "openai/gpt-oss-20b"
GROQ_BIG = "openai/gpt-oss-120b"
GEMINI = "gemini-3.5-flash"
ORIGINAL_FIELDS = ["prompt_id", "model_used", "response_text", "latency_ms", "token_count",
                   "from_cache"]  # fmt: skip
NEW_FIELDS = ["requested_model", "fallback_used", "ttft_ms", "tokens", "attempts", "notice"]


@dataclass
class Api:
    client: httpx.AsyncClient
    runtime: Runtime
    upstream: FakeUpstream
    seen: list[httpx.Response]

    async def post(self, url: str, body: Any = None, **kw: Any) -> httpx.Response:
        if body is not None:
            kw["json"] = body
        elif "content" not in kw:  # no body (e.g. /rate?prompt_id=&score=): still says JSON
            kw.setdefault("headers", {"content-type": "application/json"})
        response = await self.client.post(url, **kw)
        self.seen.append(response)
        return response

    async def get(self, url: str, **kw: Any) -> httpx.Response:
        response = await self.client.get(url, **kw)
        self.seen.append(response)
        return response


@pytest.fixture
async def make_api(
    make_runtime: Callable[..., Runtime], upstream: FakeUpstream
) -> AsyncIterator[Callable[..., Any]]:
    clients: list[httpx.AsyncClient] = []

    def build(
        *, token: str = "", without: tuple[str, ...] = (), max_body_bytes: int = 1 << 20, **routing
    ) -> Api:
        runtime = make_runtime(without=without, **routing)
        app = create_app(runtime, token=token, max_body_bytes=max_body_bytes)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test", timeout=20
        )
        clients.append(client)
        return Api(client, runtime, upstream, [])

    yield build
    for client in clients:
        await client.aclose()


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    return make_api()


def fault_all(upstream: FakeUpstream, kind: str, **kw: Any) -> None:
    upstream.add_fault(Fault(kind=kind, times=None, **kw))


# ---- /chat ------------------------------------------------------------------------------------


async def test_chat_keeps_the_original_fields_and_adds_the_new_ones(api: Api) -> None:
    response = await api.post(f"/chat?model={GROQ}", {"prompt": "What is the capital of France?"})
    assert response.status_code == 200
    data = check_response(response)
    assert list(data)[:6] == ORIGINAL_FIELDS
    assert set(NEW_FIELDS) <= set(data)
    assert data["model_used"] == GROQ and data["requested_model"] == GROQ
    assert "received: What is the capital of France?" in data["response_text"]
    assert data["from_cache"] is False and data["fallback_used"] is False
    assert data["token_count"] == data["tokens"]["total"] > 0
    assert [a["outcome"] for a in data["attempts"]] == ["ok"]

    again = check_response(
        await api.post(f"/chat?model={GROQ}", {"prompt": "What is the capital of France?"})
    )
    assert again["from_cache"] is True and again["response_text"] == data["response_text"]
    fresh = check_response(
        await api.post(
            f"/chat?model={GROQ}&ignore_cache=true", {"prompt": "What is the capital of France?"}
        )
    )
    assert fresh["from_cache"] is False
    assert api.runtime.store.get_request(data["prompt_id"])["source"] == "serve"


async def test_chat_with_a_retired_model_carries_a_notice(api: Api) -> None:
    data = check_response(await api.post("/chat?model=llama-3.1-8b-instant", {"prompt": "hi"}))
    assert data["requested_model"] == "llama-3.1-8b-instant"
    assert data["model_used"] != "llama-3.1-8b-instant"
    assert "retired" in data["notice"]


async def test_chat_templates_including_the_legacy_form(api: Api) -> None:
    body = {"template_id": "friendly", "template_vars": {"audience": "kids", "topic": "gravity"}}
    data = check_response(await api.post(f"/chat?model={GEMINI}", body))
    assert "Explain the following in a friendly way for kids: gravity" in data["response_text"]
    assert data["template_id"] == "friendly"

    legacy = check_response(
        await api.post(f"/chat?model={GEMINI}", {"prompt": "gravity", "template": "explain_like_5"})
    )
    assert "Explain this like I'm 5 years old: gravity" in legacy["response_text"]
    # The prompt fills the first variable without a default (text, not num_sentences).
    summary = check_response(
        await api.post(f"/chat?model={GEMINI}", {"prompt": "Long text.", "template": "summarize"})
    )
    assert "Summarize the following text in 3 sentences: Long text." in summary["response_text"]
    full = await api.post(
        "/chat",
        {"prompt": "x", "template": "friendly", "template_vars": {"audience": "a", "topic": "b"}},
    )
    assert full.status_code == 400 and "no variable left for prompt" in full.json()["detail"]


async def test_chat_accepts_messages_system_sampling_and_model_in_the_body(api: Api) -> None:
    body = {
        "model": GROQ,
        "messages": [
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": "second question"},
        ],
        "system": "be brief",
        "temperature": 0.3,
        "max_tokens": 50,
        "conversation_id": "conv-1",
        "ignore_cache": True,
    }
    data = check_response(await api.post("/chat", body))
    assert data["conversation_id"] == "conv-1"
    sent = api.upstream.requests_for(GROQ)[-1].body
    assert sent["temperature"] == 0.3
    assert sent["max_completion_tokens"] == 50
    assert sent["messages"][0] == {"role": "system", "content": "be brief"}
    assert [m["content"] for m in sent["messages"][1:]] == [
        "first question", "first answer", "second question",
    ]  # fmt: skip


BAD_CHAT = [
    ("", b"{x", "application/json", 400, "malformed JSON"),
    ("", b"[1, 2]", "application/json", 400, "request body must be"),
    ("", b"", "application/json", 400, "request body must be"),
    ("", b"\xff\xfe", "application/json", 400, "malformed JSON"),
    ("", b"[" * 100000, "application/json", 400, "malformed JSON"),
    ("", b'{"prompt": 5}', "application/json", 400, "prompt must be a string"),
    ("", b'{"prompt": "   "}', "application/json", 400, "prompt is empty"),
    ("", b'{"template_id": "friendly", "template_vars": [1]}', "application/json", 400,
     "template_vars must be"),
    ("", b'{"template_id": "friendly", "template_vars": {"audience": {}}}', "application/json",
     400, "template_vars.audience"),
    ("", b'{"template_id": "friendly", "template_vars": {"audience": "kids"}}',
     "application/json", 400, "topic"),
    ("", b'{"template_id": "no-such-template"}', "application/json", 400, "no-such-template"),
    ("", b'{"prompt": "a", "template_id": "friendly"}', "application/json", 400, "only one of"),
    ("", b'{"prompt": "a", "temperature": "hot"}', "application/json", 400, "temperature"),
    ("", b'{"prompt": "a", "temperature": 5}', "application/json", 400, "temperature"),
    ("", b'{"prompt": "a", "max_tokens": "10"}', "application/json", 400, "max_tokens"),
    ("", b'{"prompt": "a", "max_tokens": 0}', "application/json", 400, "max_tokens"),
    ("", b'{"prompt": "a", "ignore_cache": "yes"}', "application/json", 400, "ignore_cache"),
    ("", b'{"prompt": "a", "stream": 1}', "application/json", 400, "stream"),
    ("", b'{"prompt": "a", "conversation_id": 5}', "application/json", 400, "conversation_id"),
    ("", b'{"prompt": "a", "system": ["x"]}', "application/json", 400, "system"),
    ("", b'{"prompt": "a", "model": 7}', "application/json", 400, "model"),
    ("", b'{"messages": {"role": "user"}}', "application/json", 400, "messages must be"),
    ("", b'{"messages": [{"role": "robot", "content": "x"}]}', "application/json", 400,
     "messages[0].role"),
    ("", b'{"messages": [{"role": "user", "content": 3}]}', "application/json", 400,
     "messages[0].content"),
    ("?ignore_cache=maybe", b'{"prompt": "a"}', "application/json", 400, "ignore_cache"),
    ("?stream=perhaps", b'{"prompt": "a"}', "application/json", 400, "stream"),
    ("?model=a&model=b", b'{"prompt": "a"}', "application/json", 400, "more than once"),
    (f"?model={GROQ}", b'{"prompt": "a", "model": "other"}', "application/json", 400,
     "model is given in both"),
    ("?model=no-such-model", b'{"prompt": "a"}', "application/json", 400, "unknown model"),
    ("", b'{"prompt": "a"}', "text/plain", 415, "must be JSON"),
    ("", b"prompt=a", "application/x-www-form-urlencoded", 415, "must be JSON"),
]  # fmt: skip


@pytest.mark.parametrize(("query", "raw", "ctype", "status", "needle"), BAD_CHAT)
async def test_chat_rejects_bad_input_naming_the_field(
    api: Api, query: str, raw: bytes, ctype: str, status: int, needle: str
) -> None:
    response = await api.post("/chat" + query, content=raw, headers={"content-type": ctype})
    assert response.status_code == status, response.text
    detail = check_response(response)["detail"]
    assert needle in detail
    assert "Traceback" not in response.text
    assert api.upstream.requests == []


async def test_chat_without_content_type_is_refused(api: Api) -> None:
    # A web page can send a body without a content type and no CORS preflight (issue 10).
    response = await api.post(f"/chat?model={GROQ}", content=b'{"prompt": "plain"}')
    assert response.status_code == 415
    assert "'Content-Type: application/json'" in check_response(response)["detail"]
    assert api.upstream.requests == []


async def test_body_limit_from_content_length_and_from_a_streamed_body(
    make_api: Callable[..., Api],
) -> None:
    small = make_api(max_body_bytes=1000)
    big = json.dumps({"prompt": "x" * 2000}).encode()
    response = await small.post("/chat", content=big, headers={"content-type": "application/json"})
    assert (
        response.status_code == 413 and "limit is 1000 bytes" in check_response(response)["detail"]
    )

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the app counts
        for _ in range(5):
            yield b" " * 400

    response = await small.post(
        "/chat", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


# ---- failures ---------------------------------------------------------------------------------


async def test_every_candidate_failing_is_502_listing_each_attempt(api: Api) -> None:
    fault_all(api.upstream, "status", status=500)
    response = await api.post(f"/chat?model={GROQ}", {"prompt": "doomed"})
    assert response.status_code == 502
    data = check_response(response)
    models = {a["model"] for a in data["attempts"]}
    assert {GROQ, GROQ_BIG} <= models
    for model in models:
        assert model in data["detail"], data["detail"]
    assert data["error_kind"] == "all_failed"
    record = api.runtime.store.get_request(data["prompt_id"])
    assert record["status"] == "error"


async def test_total_deadline_is_504(make_api: Callable[..., Api]) -> None:
    api = make_api(total_timeout_s=0.3, first_token_timeout_s=2)
    fault_all(api.upstream, "slow_first_token", delay_s=1.0)
    response = await api.post(f"/chat?model={GROQ}", {"prompt": "slow"})
    assert response.status_code == 504
    assert "total_timeout_s" in check_response(response)["detail"]


async def test_content_filter_is_422_with_the_providers_reason(api: Api) -> None:
    fault_all(api.upstream, "content_filter")
    response = await api.post(f"/chat?model={GEMINI}", {"prompt": "naughty"})
    assert response.status_code == 422
    data = check_response(response)
    assert data["error_kind"] == "content_filter"
    assert "Gemini" in data["detail"]


async def test_a_request_the_provider_rejects_is_400(api: Api) -> None:
    fault_all(api.upstream, "status", status=400, message="temperature is out of range")
    response = await api.post(f"/chat?model={GROQ}", {"prompt": "x"})
    assert response.status_code == 400
    assert check_response(response)["error_kind"] == "bad_request"


# ---- streaming --------------------------------------------------------------------------------


async def test_chat_stream_sends_deltas_then_the_full_record(api: Api) -> None:
    response = await api.post(f"/chat?model={GROQ}&stream=true", {"prompt": "stream me"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = check_response(response)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert set(kinds[1:-1]) == {"delta"} and len(kinds) > 3
    result = events[-1]["result"]
    assert "".join(e["text"] for e in events[1:-1]) == result["response_text"]
    assert events[0]["prompt_id"] == result["prompt_id"]
    assert list(result)[:6] == ORIGINAL_FIELDS
    body_flag = check_response(
        await api.post(f"/chat?model={GROQ}", {"prompt": "b", "stream": True})
    )
    assert body_flag[-1]["type"] == "done"


async def test_chat_stream_broken_after_the_first_delta_ends_in_an_error_event(api: Api) -> None:
    fault_all(api.upstream, "cut", after_chunks=2)
    response = await api.post(f"/chat?model={GROQ}&stream=true", {"prompt": "cut me"})
    assert response.status_code == 200
    events = check_response(response)
    assert events[0]["type"] == "start" and events[1]["type"] == "delta"
    assert events[-1]["type"] == "error" and "error" in events[-1]
    assert events[-1]["error"]["kind"] == "stream_failed"
    assert events[-1]["error"]["status"] == 502
    assert not any(e["type"] == "done" for e in events)
    record = api.runtime.store.get_request(events[0]["prompt_id"])
    assert record["status"] == "error"


async def test_chat_stream_failing_before_any_text_gets_an_http_status(api: Api) -> None:
    fault_all(api.upstream, "status", status=503)
    response = await api.post(f"/chat?model={GROQ}&stream=true", {"prompt": "x"})
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/json"
    assert GROQ in check_response(response)["detail"]


# ---- /rate --------------------------------------------------------------------------------------


async def test_rate_json_form_and_query_form(api: Api) -> None:
    chat = check_response(await api.post(f"/chat?model={GROQ}", {"prompt": "rate me"}))
    pid = chat["prompt_id"]
    body = {"prompt_id": pid, "model": GROQ, "rating": 5, "feedback": "Great answer!"}
    rated = check_response(await api.post("/rate", body))
    assert rated["rating"] == 5 and rated["feedback"] == "Great answer!"
    again = check_response(await api.post(f"/rate?prompt_id={pid}&score=3", {"feedback": "meh"}))
    assert again["rating"] == 3 and again["feedback"] == "meh"
    bare = check_response(await api.post(f"/rate?prompt_id={pid}&score=4"))
    assert bare["rating"] == 4 and bare["model"] == GROQ
    assert api.runtime.store.get_rating(pid)["rating"] == 4
    stats = check_response(await api.get("/stats"))
    assert stats["avg_rating"] == 4


@pytest.mark.parametrize(
    ("url", "body", "status", "needle"),
    [
        ("/rate", {"prompt_id": "nope", "rating": 5}, 404, "nope"),
        ("/rate?prompt_id=nope&score=5", None, 404, "nope"),
        ("/rate", {"prompt_id": "PID", "rating": 6}, 400, "rating"),
        ("/rate", {"prompt_id": "PID", "rating": 0}, 400, "rating"),
        ("/rate", {"prompt_id": "PID", "rating": "5"}, 400, "rating"),
        ("/rate", {"prompt_id": "PID", "rating": 4.5}, 400, "rating"),
        ("/rate", {"prompt_id": "PID", "rating": True}, 400, "rating"),
        ("/rate", {"prompt_id": "PID"}, 400, "rating is required"),
        ("/rate", {"rating": 3}, 400, "prompt_id is required"),
        ("/rate", {"prompt_id": 12, "rating": 3}, 400, "prompt_id must be"),
        ("/rate", {"prompt_id": "PID", "rating": 3, "feedback": 7}, 400, "feedback"),
        ("/rate?prompt_id=PID&score=abc", None, 400, "score"),
        ("/rate?prompt_id=PID&score=9", None, 400, "rating"),
        ("/rate?prompt_id=PID", None, 400, "score is required"),
        ("/rate?prompt_id=PID&score=3", [1], 400, "request body must be"),
        ("/rate", None, 400, "request body must be"),
    ],
)
async def test_rate_rejects_bad_input(
    api: Api, url: str, body: Any, status: int, needle: str
) -> None:
    chat = check_response(await api.post(f"/chat?model={GROQ}", {"prompt": "to rate"}))
    pid = chat["prompt_id"]
    if isinstance(body, dict) and body.get("prompt_id") == "PID":
        body = {**body, "prompt_id": pid}
    response = await api.post(url.replace("PID", pid), body)
    assert response.status_code == status, response.text
    assert needle in check_response(response)["detail"]


# ---- reads ------------------------------------------------------------------------------------


async def test_stats_has_the_original_keys_and_the_new_ones(api: Api) -> None:
    await api.post(f"/chat?model={GROQ}", {"prompt": "one"})
    await api.post(f"/chat?model={GEMINI}", {"prompt": "two"})
    data = check_response(await api.get("/stats"))
    for key in ("model_usage", "avg_latency", "avg_rating", "total_fallbacks", "total_prompts"):
        assert key in data
    assert data["total_prompts"] == 2
    assert data["model_usage"] == {GROQ: 1, GEMINI: 1}
    assert {"per_model", "cache_hits", "tokens"} <= set(data)


async def test_models_lists_statuses(make_api: Callable[..., Api]) -> None:
    api = make_api(without=("gemini",))
    data = check_response(await api.get("/models"))
    assert GROQ in data["available_models"] and data["note"]
    assert "llama-3.1-8b-instant" not in data["available_models"]
    rows = {row["id"]: row for row in data["models"]}
    assert rows[GROQ]["status"] == "available"
    assert rows[GEMINI]["status"] == "no key"
    assert rows["llama-3.1-8b-instant"]["status"].startswith("retired →")
    assert all("live" not in row for row in data["models"])


async def test_models_live_merges_listings_and_reports_failures(
    make_api: Callable[..., Api],
) -> None:
    api = make_api()
    api.upstream.models["groq"] = [GROQ, "brand-new-model"]
    pool = api.runtime.router.providers
    pool.settings["gemini"] = replace(pool.settings["gemini"], base_url=FakeUpstream.refused_url())
    data = check_response(await api.get("/models?live=true"))
    assert data["live"]["groq"] == {"ok": True, "count": 2}
    assert data["live"]["gemini"]["ok"] is False and data["live"]["gemini"]["error"]
    rows = {row["id"]: row for row in data["models"]}
    assert rows[GROQ]["live"] is True
    assert rows[GROQ_BIG]["live"] is False
    assert rows[GEMINI]["live"] is None
    assert rows["groq:brand-new-model"]["status"] == "not in catalog (live listing)"
    assert leaks(json.dumps(data), [GROQ_KEY, GEMINI_KEY]) == []
    bad = await api.get("/models?live=sure")
    assert bad.status_code == 400


async def test_templates_lists_every_template_with_its_variables(api: Api) -> None:
    data = check_response(await api.get("/templates"))
    by_id = {t["id"]: t for t in data["templates"]}
    assert data["count"] == len(by_id) >= 5
    assert by_id["friendly"]["variables"] == ["audience", "topic"]
    assert by_id["summarize"]["defaults"] == {"num_sentences": "3"}
    assert data["warning"] is None


async def test_health_says_which_providers_have_keys_and_never_a_key(
    make_api: Callable[..., Api],
) -> None:
    api = make_api(without=("gemini",))
    response = await api.get("/health")
    data = check_response(response)
    assert data["status"] == "ok"
    assert data["providers"]["groq"] == {"kind": "groq", "has_key": True}
    assert data["providers"]["gemini"]["has_key"] is False
    assert leaks(response.text, [GROQ_KEY, GEMINI_KEY]) == []


async def test_openapi_documents_every_route_and_every_ref_resolves(api: Api) -> None:
    doc = check_response(await api.get("/openapi.json"))
    assert doc["openapi"].startswith("3.1")
    for path, methods in ROUTES.items():
        for method in methods:
            assert method.lower() in doc["paths"][path], (path, method)
    text = json.dumps(doc)
    for ref in set(re.findall(r'"\$ref": "#/components/schemas/(\w+)"', text)):
        assert ref in doc["components"]["schemas"]
    validate({"detail": "x"}, {"$ref": "#/components/schemas/Error"}, openapi.document())


async def test_unknown_paths_and_wrong_methods(api: Api) -> None:
    missing = await api.get("/nope")
    assert missing.status_code == 404 and "/nope" in missing.json()["detail"]
    wrong = await api.get("/chat")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST"
    validate(wrong.json(), {"$ref": "#/components/schemas/Error"}, openapi.document())
    assert "GET" in wrong.json()["detail"]
    v1 = await api.post("/v1/models")
    assert v1.status_code == 405
    assert v1.json()["error"]["type"] == "invalid_request_error"


# ---- OpenAI-compatible ------------------------------------------------------------------------


async def test_v1_whole_reply_has_openai_shape_and_the_answering_model(
    make_api: Callable[..., Api],
) -> None:
    api = make_api(without=("groq",))
    body = {"model": GROQ, "messages": [{"role": "user", "content": "hello v1"}]}
    data = check_response(await api.post("/v1/chat/completions", body))
    assert data["object"] == "chat.completion"
    assert data["model"] == GEMINI  # groq has no key: the fallback answered
    assert data["x_llmrouter"]["fallback_used"] is True
    assert data["x_llmrouter"]["requested_model"] == GROQ
    assert "received: hello v1" in data["choices"][0]["message"]["content"]
    assert data["choices"][0]["finish_reason"] == "stop"
    usage = data["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    assert api.runtime.store.get_request(data["x_llmrouter"]["prompt_id"])["source"] == "v1"


async def test_v1_stream_chunks_then_done(api: Api) -> None:
    body = {
        "model": GROQ,
        "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    events = check_response(await api.post("/v1/chat/completions", body))
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    finals = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert len(finals) == 1 and "response_text" not in finals[0]["x_llmrouter"]
    assert finals[0]["x_llmrouter"]["model_used"] == GROQ
    assert finals[0]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0
    assert "received: hi" in text
    assert {c["model"] for c in chunks} == {GROQ}
    assert len({c["id"] for c in chunks}) == 1


async def test_v1_stream_broken_mid_way_ends_with_an_error_and_no_done(api: Api) -> None:
    fault_all(api.upstream, "cut", after_chunks=2)
    body = {"model": GROQ, "messages": [{"role": "user", "content": "cut"}], "stream": True}
    response = await api.post("/v1/chat/completions", body)
    assert response.status_code == 200
    events = check_response(response)
    assert "[DONE]" not in events
    assert events[-1]["error"]["code"] == "stream_failed"
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"model": GROQ}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "image_url"),
        ({"messages": [{"role": "user", "content": "x"}], "n": 2}, "n=2 is not supported"),
        (
            {"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]},
            "tools",
        ),
        ({"messages": [{"role": "user", "content": "x"}], "temperature": "warm"}, "temperature"),
        ({"messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "stream"),
    ],
)
async def test_v1_rejects_bad_requests_in_both_error_shapes(
    api: Api, body: dict[str, Any], needle: str
) -> None:
    response = await api.post("/v1/chat/completions", body)
    assert response.status_code == 400
    data = check_response(response)
    assert needle in data["detail"] and needle in data["error"]["message"]
    assert data["error"]["type"] == "invalid_request_error"


async def test_v1_failure_is_502_with_an_openai_error(api: Api) -> None:
    fault_all(api.upstream, "status", status=500)
    body = {"model": GROQ, "messages": [{"role": "user", "content": "x"}], "stream": True}
    response = await api.post("/v1/chat/completions", body)
    assert response.status_code == 502
    assert check_response(response)["error"]["code"] == "all_failed"


async def test_v1_models(api: Api) -> None:
    data = check_response(await api.get("/v1/models"))
    ids = [m["id"] for m in data["data"]]
    assert GROQ in ids and "llama-3.1-8b-instant" not in ids
    assert all(m["object"] == "model" for m in data["data"])


async def test_v1_text_parts_and_developer_role_are_accepted(api: Api) -> None:
    body = {
        "model": GROQ,
        "messages": [
            {"role": "developer", "content": "dev note"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "part one "}, {"type": "text", "text": "two"}],
            },
        ],
        "max_completion_tokens": 20,
    }
    data = check_response(await api.post("/v1/chat/completions", body))
    assert data["choices"][0]["message"]["content"]
    sent = api.upstream.requests_for(GROQ)[-1].body
    assert sent["messages"][0] == {"role": "system", "content": "dev note"}
    assert sent["messages"][1]["content"] == body["messages"][1]["content"]  # parts kept


# ---- auth ---------------------------------------------------------------------------------------

TOKEN = "tok_ABCDEF0123456789"


async def test_token_is_required_everywhere_but_health(
    make_api: Callable[..., Api], monkeypatch: pytest.MonkeyPatch
) -> None:
    api = make_api(token=TOKEN)
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    guarded = [("GET", "/stats"), ("POST", "/chat"), ("GET", "/models"), ("GET", "/templates"),
               ("GET", "/openapi.json"), ("GET", "/v1/models"), ("POST", "/v1/chat/completions"),
               ("POST", "/rate"), ("GET", "/nope")]  # fmt: skip
    for method, path in guarded:
        response = await api.client.request(method, path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "Bearer" in response.json()["detail"]
    wrong = await api.get("/stats", headers={"authorization": f"Bearer {TOKEN}x"})
    assert wrong.status_code == 401
    basic = await api.get("/stats", headers={"authorization": f"Basic {TOKEN}"})
    assert basic.status_code == 401
    assert (await api.get("/health")).status_code == 200
    good = await api.get("/stats", headers={"authorization": f"Bearer {TOKEN}"})
    assert good.status_code == 200
    lower = await api.get("/stats", headers={"authorization": f"bearer {TOKEN}"})
    assert lower.status_code == 200
    assert calls and all(b == TOKEN.encode() for _, b in calls)
    assert (f"{TOKEN}x".encode(), TOKEN.encode()) in calls


async def test_token_comes_from_the_environment_by_default(
    make_runtime: Callable[..., Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMROUTER_SERVER_TOKEN", TOKEN)
    app = create_app(make_runtime())
    assert app.auth_required
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/stats")).status_code == 401
        headers = {"authorization": f"Bearer {TOKEN}"}
        assert (await client.get("/stats", headers=headers)).status_code == 200


# ---- robustness and secrecy -------------------------------------------------------------------


async def test_an_unexpected_error_is_a_bare_500_and_one_clean_log_line(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def boom() -> dict[str, Any]:
        raise RuntimeError(f"exploded with {GROQ_KEY} inside\nsecond line")

    monkeypatch.setattr(api.runtime.store, "stats", boom)
    response = await api.get("/stats")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error"}
    err = caplog.text  # the server's log (stderr under --serve)
    lines = [line for line in err.splitlines() if "internal error" in line]
    assert len(lines) == 1 and "GET /stats: RuntimeError: exploded with" in lines[0]
    assert leaks(err, [GROQ_KEY]) == []


def test_the_redactor_masks_keys_and_fragments() -> None:
    redactor = Redactor(["gsk_SECRETSECRET1234", "demo-key-not-secret", ""])
    assert redactor.text("key gsk_SECRETSECRET1234 here") == "key [redacted] here"
    assert "RETSEC" not in redactor.text("partial ...RETSECRET12... seen")
    assert redactor.text("demo-key-not-secret stays") == "demo-key-not-secret stays"
    assert Redactor([]).text("anything") == "anything"


async def test_no_response_ever_carries_a_key(api: Api) -> None:
    api.upstream.valid_keys = {"groq": "a-different-key"}  # groq answers 401: fallback path
    try:
        await api.post(f"/chat?model={GROQ}", {"prompt": "auth fails first"})
        await api.post(f"/chat?model={GROQ}&stream=true", {"prompt": "stream auth"})
        await api.post(
            "/v1/chat/completions", {"model": GROQ, "messages": [{"role": "user", "content": "x"}]}
        )
        fault_all(api.upstream, "status", status=500)
        await api.post(f"/chat?model={GEMINI}", {"prompt": "all fail"})
        api.upstream.clear()
        for path in ("/stats", "/models", "/models?live=true", "/templates", "/health",
                     "/openapi.json", "/v1/models", "/nope"):  # fmt: skip
            await api.get(path)
        await api.post("/chat", content=b"{bad", headers={"content-type": "application/json"})
    finally:
        api.upstream.valid_keys = None
    assert any(r.status_code == 502 for r in api.seen)
    fell_back = api.seen[0].json()
    assert fell_back["fallback_used"] is True and fell_back["attempts"][0]["status"] == 401
    for response in api.seen:
        found = leaks(response.text + str(response.headers), [GROQ_KEY, GEMINI_KEY])
        assert found == [], (response.request.url, found)


# ---- lifespan / factory -----------------------------------------------------------------------


async def _lifespan(app: Any, *messages: str) -> list[dict[str, Any]]:
    inbox = [{"type": m} for m in messages]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return inbox.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    return sent


async def test_factory_opens_the_runtime_from_the_environment_and_closes_it(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, upstream: FakeUpstream
) -> None:
    monkeypatch.setenv("LLMROUTER_DATA_DIR", str(tmp_path / "envdata"))
    monkeypatch.setenv("GROQ_API_KEY", GROQ_KEY)
    monkeypatch.setenv("GROQ_BASE_URL", upstream.base_url)
    app = create_app()
    inbox: list[dict[str, Any]] = [{"type": "lifespan.startup"}]
    sent: list[dict[str, Any]] = []
    more = asyncio.Event()

    async def receive() -> dict[str, Any]:
        while not inbox:
            await more.wait()
            more.clear()
        return inbox.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.create_task(app(scope, receive, send))
    await until(lambda: sent, "the lifespan startup answer")
    assert sent == [{"type": "lifespan.startup.complete"}]
    runtime = app.runtime
    assert runtime is not None and runtime.settings.data_dir == tmp_path / "envdata"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post(f"/chat?model={GROQ}", json={"prompt": "from env"})
        assert response.status_code == 200
    inbox.append({"type": "lifespan.shutdown"})
    more.set()
    await asyncio.wait_for(task, 5)
    assert sent[-1] == {"type": "lifespan.shutdown.complete"}
    assert app.runtime is None
    with pytest.raises(Exception, match="closed"):
        runtime.store.stats()


async def test_factory_reports_a_bad_config_at_startup(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMROUTER_CONFIG", str(tmp_path / "missing.toml"))
    sent = await _lifespan(create_app(), "lifespan.startup")
    assert sent[0]["type"] == "lifespan.startup.failed"
    assert "missing.toml" in sent[0]["message"]
