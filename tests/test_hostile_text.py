"""Input the core cannot store or send is refused at the edge, naming the field, and one bad
record never costs another request its record (issue 10, "Data loss" and "Input errors are
not provider failures")."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import fake_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_helpers import audit
from server_helpers import clean_env, serving
from test_store import make_result

from llmrouter_tui.core.errors import InputError, UnknownModelError
from llmrouter_tui.core.record_batch import RecordBatcher
from llmrouter_tui.core.runtime import Runtime
from llmrouter_tui.core.store import Store
from llmrouter_tui.core.types import ChatRequest
from llmrouter_tui.server.app import create_app
from llmrouter_tui.testing.fake_upstream import FakeUpstream

GROQ = "openai/gpt-oss-20b"
LONE = "\udc80"


def _body(obj: Any) -> bytes:
    """JSON as a client that escapes everything would send it (lone surrogates as \\udc80)."""
    return json.dumps(obj, allow_nan=True).encode("ascii")


def _posts(fake: FakeUpstream) -> int:
    return sum(1 for r in fake.requests if r.method == "POST")


# ---- the batch writer isolates a record it cannot store ----------------------------------------


async def test_a_poisoned_record_costs_no_other_record_its_sinks(tmp_path: Path):
    """Written in one batch with 29 ordinary records, a record SQLite cannot take fails
    alone: every other one is in SQLite, JSONL and CSV exactly once, without a warning."""
    data = tmp_path / "data"
    with Store(data) as store:
        batcher = RecordBatcher(store)
        good = [make_result(f"good{i:02d}", conversation_id=f"c{i}") for i in range(29)]
        poisoned = make_result("poisoned", conversation_id=LONE)
        batch = [*good[:15], poisoned, *good[15:]]
        warnings = await asyncio.gather(*(batcher.record(r) for r in batch))
    by_id = {r.prompt_id: w for r, w in zip(batch, warnings, strict=True)}
    assert by_id["poisoned"], "the record that could not be stored must say so"
    assert all(not by_id[r.prompt_id] for r in good), by_id
    sinks = audit(data)
    expected = {r.prompt_id for r in good}
    for name, ids in (("sqlite", sinks.requests), ("jsonl", sinks.jsonl), ("csv", sinks.csv)):
        counts = Counter(ids)
        assert {i for i in expected if counts[i] != 1} == set(), name


async def test_a_record_that_cannot_be_formatted_is_skipped_alone(tmp_path: Path):
    """A log line that cannot be written concerns its own record only."""
    data = tmp_path / "data"
    with Store(data) as store:
        good = make_result("good")
        odd = make_result("odd", template_id="t")
        odd.attempts.append(object())  # type: ignore[arg-type]  # not an Attempt: no log row
        out = store.record_many([good, odd])
    assert out[0] == [] and out[1]
    sinks = audit(data)
    assert sinks.jsonl == ["good"] and sinks.csv == ["good"]


# ---- the core refuses invalid text before any attempt ------------------------------------------


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"prompt": f"hi {LONE}"}, "prompt"),
        ({"prompt": "hi", "conversation_id": LONE}, "conversation_id"),
        ({"prompt": "hi", "system": LONE}, "system"),
        ({"template_id": "summarize", "template_vars": {"text": LONE}}, "template_vars.text"),
        ({"messages": [{"role": "user", "content": LONE}]}, "messages[0].content"),
    ],
)
async def test_core_refuses_invalid_text_before_any_attempt(
    make_runtime, upstream: FakeUpstream, request_fields: dict[str, Any], field: str
):
    runtime = make_runtime()
    for _ in range(5):  # more than cooldown_failures: no breaker may open
        with pytest.raises(InputError) as info:
            await runtime.router.complete(ChatRequest(model=GROQ, **request_fields))
        assert str(info.value).startswith(field), str(info.value)
        assert "send UTF-8 text" in str(info.value)
    assert _posts(upstream) == 0
    assert runtime.router.breaker.snapshot() == {}
    ok = await runtime.router.complete(ChatRequest(model=GROQ, prompt="still fine"))
    assert ok.status == "ok" and not ok.fallback_used


@pytest.mark.parametrize("model", ["gemini:a/b/c", "gemini:x#frag", "gemini:x?alt=1", "groq:a b"])
async def test_provider_model_ids_with_unsafe_characters_are_refused(
    make_runtime, upstream: FakeUpstream, model: str
):
    runtime = make_runtime()
    with pytest.raises(UnknownModelError) as info:
        await runtime.router.complete(ChatRequest(model=model, prompt="hi"))
    assert repr(model) in str(info.value)
    assert _posts(upstream) == 0


async def test_a_provider_model_id_with_safe_characters_is_sent(make_runtime, upstream):
    runtime = make_runtime()
    result = await runtime.router.complete(ChatRequest(model="gemini:gemini-3.5-flash", prompt="x"))
    assert result.status == "ok"
    assert any("/models/gemini-3.5-flash:" in r.path for r in upstream.requests)


def test_a_configured_model_id_with_unsafe_characters_is_a_config_error(
    upstream: FakeUpstream, tmp_path: Path
):
    from llmrouter_tui.core.errors import ConfigError

    settings = fake_settings(upstream.base_url, tmp_path / "data")
    bad = replace(settings, models={"../evil": {"provider": "gemini"}})
    with pytest.raises(ConfigError, match=r"\.\./evil"):
        Runtime(bad)


# ---- the server: 400 naming the field, nothing recorded, nobody else affected ------------------


@pytest.fixture
async def server(upstream: FakeUpstream, tmp_path: Path):
    runtime = Runtime(fake_settings(upstream.base_url, tmp_path / "data"))
    app = create_app(runtime, token="", owns_runtime=True)
    async with serving(app) as srv, httpx.AsyncClient(base_url=srv.url, timeout=30) as client:
        yield client
    # the app closes the runtime at shutdown


def _post(client: httpx.AsyncClient, path: str, obj: Any, **kw: Any):
    headers = {"content-type": "application/json"}
    return client.post(path, content=_body(obj), headers=headers, **kw)


async def test_burst_with_one_poisoned_request_loses_nothing(server, tmp_path: Path):
    bodies = [
        {"model": GROQ, "prompt": f"burst {i}", "conversation_id": f"c{i}"} for i in range(29)
    ]
    poisoned = {"model": GROQ, "prompt": "x", "conversation_id": LONE}
    responses = await asyncio.gather(
        *(_post(server, "/chat", b) for b in [*bodies[:10], poisoned, *bodies[10:]])
    )
    bad = responses[10]
    assert bad.status_code == 400
    assert bad.json()["detail"].startswith("conversation_id is not valid Unicode")
    good = [r for i, r in enumerate(responses) if i != 10]
    assert all(r.status_code == 200 for r in good), [r.text for r in good]
    assert all(not r.json().get("warnings") for r in good)
    ids = {r.json()["prompt_id"] for r in good}
    sinks = audit(tmp_path / "data")
    for name, recorded in (("sqlite", sinks.requests), ("jsonl", sinks.jsonl), ("csv", sinks.csv)):
        counts = Counter(recorded)
        assert all(counts[i] == 1 for i in ids), name
        assert len(recorded) == len(ids), name


@pytest.mark.parametrize(
    ("path", "obj", "field"),
    [
        ("/chat", {"prompt": "hi", "model": GROQ, "system": LONE}, "system"),
        ("/chat", {"prompt": "hi", "model": GROQ, "template_vars": {LONE: "x"}}, "a key of"),
        ("/chat", {"model": GROQ, "messages": [{"role": "user", "content": LONE}]}, "messages[0]"),
        ("/v1/chat/completions", {"model": GROQ, "messages": [{"role": "user", "content": LONE}]},
         "messages[0].content"),
        ("/v1/chat/completions", {"model": LONE, "messages": [{"role": "user", "content": "x"}]},
         "model"),
    ],
)  # fmt: skip
async def test_invalid_text_anywhere_is_a_400_naming_the_field(
    server, upstream: FakeUpstream, path: str, obj: Any, field: str
):
    for _ in range(4):
        response = await _post(server, path, obj)
        assert response.status_code == 400, response.text
        assert field in response.text and "not valid Unicode" in response.text
    assert _posts(upstream) == 0
    fine = await _post(server, "/chat", {"model": GROQ, "prompt": "after"})
    assert fine.status_code == 200 and not fine.json()["fallback_used"]


async def test_rate_with_invalid_feedback_is_a_400(server):
    reply = (await _post(server, "/chat", {"model": GROQ, "prompt": "rate me"})).json()
    body = {"prompt_id": reply["prompt_id"], "rating": 4, "feedback": f"ok {LONE}"}
    response = await _post(server, "/rate", body)
    assert response.status_code == 400, response.text
    assert "feedback is not valid Unicode" in response.json()["detail"]
    body = {"prompt_id": LONE, "rating": 4}
    response = await _post(server, "/rate", body)
    assert response.status_code == 400 and "prompt_id" in response.json()["detail"]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"prompt": "hi", "max_tokens": ' + b"9" * 5000 + b"}", "max_tokens"),
        (b'{"prompt": "hi", "extra": [1, {"deep": -' + b"1" * 4301 + b"}]}", "extra[1].deep"),
    ],
    ids=["top-level", "nested"],
)
async def test_an_integer_too_long_to_convert_is_a_400_naming_the_field(server, raw, field):
    response = await server.post("/chat", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["detail"].startswith(f"{field} is an integer of")


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
async def test_nan_and_infinity_are_refused(server, constant: bytes):
    raw = b'{"prompt": "hi", "temperature": ' + constant + b"}"
    response = await server.post("/chat", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert constant.decode() in response.json()["detail"]


async def test_gemini_model_id_cannot_change_the_upstream_path(server, upstream: FakeUpstream):
    for model in ("gemini:a/b/c", "gemini:x#frag", "gemini:..%2f"):
        response = await _post(server, "/chat", {"model": model, "prompt": "hi"})
        assert response.status_code == 400, response.text
        assert "cannot have" in response.json()["detail"]
    assert _posts(upstream) == 0


# ---- property: any text in any string field is refused by name or recorded once ----------------

TEXT = st.one_of(
    st.text(max_size=20),
    st.text(alphabet=st.characters(blacklist_categories=()), max_size=8),  # surrogates too
    st.sampled_from([LONE, "\ud800x", "\x00", "\x1b[31m", "\r\n", "=cmd|' /C calc'!A0", "\u202e"]),
)
STRING_FIELDS = ["prompt", "system", "conversation_id", "template_vars.text", "model", "extra"]


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in text)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@pytest.mark.slow
@given(data=st.data())
def test_any_string_in_any_field_is_refused_by_name_or_recorded_once(
    upstream: FakeUpstream, tmp_path_factory, data: st.DataObject
):
    data_dir = tmp_path_factory.mktemp("prop") / "data"
    field = data.draw(st.sampled_from(STRING_FIELDS), label="field")
    text = data.draw(TEXT, label="text")
    body: dict[str, Any] = {"model": GROQ, "prompt": "fine", "conversation_id": "c"}
    if field == "template_vars.text":
        body = {"model": GROQ, "template_id": "summarize", "template_vars": {"text": text}}
    elif field == "model":
        body["model"] = "groq:" + text
    else:
        body[field] = text

    async def go() -> httpx.Response:
        runtime = Runtime(fake_settings(upstream.base_url, data_dir))
        app = create_app(runtime, token="", owns_runtime=True)
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return await _post(client, "/chat", body)
        finally:
            await runtime.aclose()

    response = asyncio.run(go())
    assert response.status_code < 500, response.text
    if _has_surrogate(text):
        assert response.status_code == 400
        name = "template_vars.text" if field == "template_vars.text" else field
        assert name in response.json()["detail"] or "cannot have" in response.json()["detail"]
        return
    if response.status_code == 400:
        return  # e.g. an empty prompt or an unknown model: named by the other checks
    assert response.status_code == 200, response.text
    assert not response.json().get("warnings"), response.json()
    sinks = audit(data_dir)
    prompt_id = response.json()["prompt_id"]
    assert sinks.requests == sinks.jsonl == sinks.csv == [prompt_id]


# ---- ask: invalid UTF-8 on stdin or in arguments is exit 2 naming it ----------------------------


def _ask(args: list[bytes], stdin: bytes, tmp_path: Path) -> subprocess.CompletedProcess[bytes]:
    env = clean_env(LLMROUTER_DATA_DIR=str(tmp_path / "data"))
    return subprocess.run(
        [sys.executable.encode(), b"-m", b"llmrouter_tui", b"ask", b"--demo", *args],
        input=stdin,
        capture_output=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )


def test_ask_refuses_stdin_that_is_not_utf8(tmp_path: Path):
    done = _ask([b"-"], b"caf\xe9 au lait\n", tmp_path)
    assert done.returncode == 2, done.stderr
    assert b"stdin is not UTF-8" in done.stderr and b"0xe9" in done.stderr
    assert b"Traceback" not in done.stderr


def test_ask_refuses_a_var_that_is_not_utf8(tmp_path: Path):
    done = _ask([b"--template", b"summarize", b"--var", b"text=caf\xe9"], b"", tmp_path)
    assert done.returncode == 2, done.stderr
    assert b"--var text is not valid UTF-8" in done.stderr
    assert b"Traceback" not in done.stderr
