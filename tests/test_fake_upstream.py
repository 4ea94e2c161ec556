"""FakeUpstream against the real groq, google-genai and openai SDKs (and raw httpx)."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import groq
import httpx
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from waiting import HANG_S, wait_until

from llmrouter_tui.testing import FakeUpstream, Fault, default_reply
from llmrouter_tui.testing.fake_payloads import split_chunks

GROQ_MODEL = "openai/gpt-oss-20b"
GEM_MODEL = "gemini-3.5-flash"
OA_MODEL = "llama3.2"
MESSAGES = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "ping the fake please"},
]
PROMPT_WORDS = 6  # "be brief" + "ping the fake please"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as f:
        yield f


@pytest.fixture(autouse=True)
def _fresh(fake: FakeUpstream) -> Iterator[None]:
    fake.clear()
    yield
    errors = list(fake.errors)
    fake.clear()
    assert not errors  # the fake itself must never crash


_open_clients: list[Any] = []


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    # SDK clients closed by GC after the test's loop ends log "Event loop is closed".
    yield
    while _open_clients:
        c = _open_clients.pop()
        if isinstance(c, genai.Client):
            await c.aio.aclose()
            c.close()
        else:
            await c.close()


def gq(fake: FakeUpstream, timeout: float = 1.0, key: str = "gsk_test") -> groq.AsyncGroq:
    c = groq.AsyncGroq(api_key=key, base_url=fake.base_url, max_retries=0, timeout=timeout)
    _open_clients.append(c)
    return c


def gm(fake: FakeUpstream, timeout_ms: int = 1000, key: str = "AIza-test") -> genai.Client:
    opts = types.HttpOptions(base_url=fake.base_url, api_version="v1beta", timeout=timeout_ms)
    c = genai.Client(api_key=key, http_options=opts)
    _open_clients.append(c)
    return c


def oa_http(
    fake: FakeUpstream, key: str | None = "sk-test", timeout: float = 1.0
) -> httpx.AsyncClient:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(base_url=fake.openai_base_url, headers=headers, timeout=timeout)


def sse_events(raw: str) -> list[str]:
    """`data:` payloads of an SSE body, asserting no other SSE fields are used."""
    events = [e for e in raw.split("\n\n") if e]
    for e in events:
        assert e.startswith("data: "), e
    return [e[6:] for e in events]


async def groq_stream(
    client: groq.AsyncGroq, model: str = GROQ_MODEL
) -> tuple[str, list[Any], BaseException | None]:
    """Collect a Groq stream: (text, chunks, exception raised mid-stream if any)."""
    chunks: list[Any] = []
    try:
        stream = await client.chat.completions.create(model=model, messages=MESSAGES, stream=True)
        async for ch in stream:
            chunks.append(ch)
    except Exception as e:
        text = "".join((c.choices[0].delta.content or "") for c in chunks if c.choices)
        return text, chunks, e
    text = "".join((c.choices[0].delta.content or "") for c in chunks if c.choices)
    return text, chunks, None


async def gem_stream(client: genai.Client, model: str = GEM_MODEL) -> list[Any]:
    it: AsyncIterator[Any] = await client.aio.models.generate_content_stream(
        model=model, contents="ping the fake please"
    )
    return [ch async for ch in it]


def expected_reply(provider: str, model: str) -> str:
    return default_reply(provider, model, MESSAGES)


# --------------------------------------------------------------------------- healthy replies


async def test_groq_whole_reply_usage_and_recording(fake: FakeUpstream) -> None:
    r = await gq(fake).chat.completions.create(model=GROQ_MODEL, messages=MESSAGES)
    text = r.choices[0].message.content or ""
    assert text == expected_reply("groq", GROQ_MODEL)
    assert text.startswith(f"**{GROQ_MODEL}** (fake groq) received: ping the fake please")
    assert "```" in text and 40 <= len(text.split()) <= 80
    assert r.choices[0].finish_reason == "stop"
    assert r.usage is not None
    assert r.usage.prompt_tokens == PROMPT_WORDS
    assert r.usage.completion_tokens == len(split_chunks(text))
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens

    (seen,) = fake.requests
    assert (seen.provider, seen.method, seen.path) == (
        "groq",
        "POST",
        "/openai/v1/chat/completions",
    )
    assert seen.model == GROQ_MODEL and seen.stream is False
    assert seen.api_key == "gsk_test" and "gsk_test" not in repr(seen)
    assert seen.body["messages"] == MESSAGES
    assert fake.requests_for(GROQ_MODEL) == [seen]
    assert fake.requests_for("other") == []


async def test_groq_stream_matches_whole_reply(fake: FakeUpstream) -> None:
    text, chunks, err = await groq_stream(gq(fake))
    assert err is None
    assert text == expected_reply("groq", GROQ_MODEL)
    assert chunks[0].choices[0].delta.role == "assistant"
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert last.x_groq.usage.total_tokens == PROMPT_WORDS + len(split_chunks(text))
    assert last.usage.completion_tokens == len(split_chunks(text))
    assert fake.requests[-1].stream is True


async def test_groq_raw_stream_framing(fake: FakeUpstream) -> None:
    body = {"model": GROQ_MODEL, "messages": MESSAGES, "stream": True}
    async with httpx.AsyncClient(base_url=fake.base_url) as c:
        r = await c.post(
            "/openai/v1/chat/completions", json=body, headers={"authorization": "Bearer k"}
        )
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["x-ratelimit-remaining-requests"]
    events = sse_events(r.text)
    assert events[-1] == "[DONE]"
    final = json.loads(events[-2])
    assert final["choices"][0]["finish_reason"] == "stop"
    assert final["x_groq"]["usage"] == final["usage"]


def test_groq_sync_client(fake: FakeUpstream) -> None:
    with groq.Groq(api_key="k", base_url=fake.base_url, max_retries=0, timeout=1.0) as client:
        r = client.chat.completions.create(model="qwen/qwen3.6-27b", messages=MESSAGES)
    assert (r.choices[0].message.content or "").startswith("**qwen/qwen3.6-27b** (fake groq)")


async def test_gemini_whole_and_stream(fake: FakeUpstream) -> None:
    client = gm(fake)
    cfg = types.GenerateContentConfig(system_instruction="be brief")
    r = await client.aio.models.generate_content(
        model=GEM_MODEL, contents="ping the fake please", config=cfg
    )
    assert r.text == expected_reply("gemini", GEM_MODEL)
    assert r.candidates and r.candidates[0].finish_reason == types.FinishReason.STOP
    um = r.usage_metadata
    assert um is not None
    assert um.prompt_token_count == PROMPT_WORDS
    assert um.candidates_token_count == len(split_chunks(r.text or ""))

    chunks = await gem_stream(client)
    assert len(chunks) > 10
    assert "".join(c.text or "" for c in chunks) == expected_reply("gemini", GEM_MODEL)
    assert all(c.candidates[0].finish_reason is None for c in chunks[:-1])
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.total_token_count == 4 + len(chunks)

    whole, streamed = fake.requests
    assert whole.path == f"/v1beta/models/{GEM_MODEL}:generateContent" and not whole.stream
    assert streamed.stream and streamed.query == "alt=sse"
    assert whole.api_key == "AIza-test" and whole.provider == "gemini"


async def test_gemini_raw_stream_has_no_done_and_v1_prefix(fake: FakeUpstream) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    async with httpx.AsyncClient(base_url=fake.base_url) as c:
        r = await c.post(
            f"/v1/models/{GEM_MODEL}:streamGenerateContent?alt=sse",
            json=body,
            headers={"x-goog-api-key": "k"},
        )
        arr = await c.post(f"/v1beta/models/{GEM_MODEL}:streamGenerateContent?key=k", json=body)
    events = sse_events(r.text)
    assert "[DONE]" not in events
    parsed = [json.loads(e) for e in events]
    assert "finishReason" in parsed[-1]["candidates"][0]
    assert "candidatesTokenCount" in parsed[-1]["usageMetadata"]
    assert "CONTINUATION" not in r.text
    # Without alt=sse the API answers with a JSON array of the same chunks.
    assert arr.status_code == 200 and len(arr.json()) == len(parsed)
    assert fake.requests[-1].api_key == "k"


async def test_openai_compatible_raw_stream_usage(fake: FakeUpstream) -> None:
    body: dict[str, Any] = {"model": OA_MODEL, "messages": MESSAGES, "stream": True}
    async with oa_http(fake) as c:
        plain = await c.post("/chat/completions", json=body)
        body["stream_options"] = {"include_usage": True}
        with_usage = await c.post("/chat/completions", json=body)
        whole = await c.post("/chat/completions", json={"model": OA_MODEL, "messages": MESSAGES})
    ev_plain = sse_events(plain.text)
    assert ev_plain[-1] == "[DONE]"
    assert all("usage" not in json.loads(e) for e in ev_plain[:-1])
    ev = sse_events(with_usage.text)
    assert ev[-1] == "[DONE]"
    usage_chunk = json.loads(ev[-2])
    assert usage_chunk["choices"] == []
    text = "".join(json.loads(e)["choices"][0]["delta"].get("content", "") for e in ev[:-2])
    assert text == expected_reply("openai", OA_MODEL)
    assert usage_chunk["usage"]["completion_tokens"] == len(split_chunks(text))
    w = whole.json()
    assert w["choices"][0]["message"]["content"] == text
    assert w["usage"]["prompt_tokens"] == PROMPT_WORDS
    assert "x_groq" not in w
    assert fake.requests[0].provider == "openai"


async def test_openai_sdk_whole_and_stream(fake: FakeUpstream) -> None:
    client = openai.AsyncOpenAI(
        api_key="sk", base_url=fake.openai_base_url, max_retries=0, timeout=1.0
    )
    _open_clients.append(client)
    r = await client.chat.completions.create(model=OA_MODEL, messages=MESSAGES)  # type: ignore[arg-type]
    assert r.choices[0].message.content == expected_reply("openai", OA_MODEL)
    stream = await client.chat.completions.create(
        model=OA_MODEL,
        messages=MESSAGES,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [c async for c in stream]
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == PROMPT_WORDS
    assert chunks[-2].choices[0].finish_reason == "stop"


async def test_reply_fn_override(fake: FakeUpstream) -> None:
    seen: list[tuple[str, str, list[dict[str, str]]]] = []

    def reply(provider: str, model: str, messages: list[dict[str, str]]) -> str:
        seen.append((provider, model, messages))
        return "one two three"

    fake.reply_fn = reply
    try:
        text, chunks, _ = await groq_stream(gq(fake))
        cfg = types.GenerateContentConfig(system_instruction="sys")
        r = await gm(fake).aio.models.generate_content(model="g", contents="hey", config=cfg)
    finally:
        fake.reply_fn = default_reply
    assert text == "one two three" and len(chunks) == 3 + 2  # role + 3 words + finish
    assert r.text == "one two three"
    assert seen[0] == ("groq", GROQ_MODEL, MESSAGES)
    assert seen[1][2] == [{"role": "system", "content": "sys"}, {"role": "user", "content": "hey"}]


# --------------------------------------------------------------------------- model listing


async def test_model_listing_all_providers(fake: FakeUpstream) -> None:
    g = await gq(fake).models.list()
    assert [m.id for m in g.data][:2] == ["openai/gpt-oss-20b", "openai/gpt-oss-120b"]
    assert g.data[0].context_window == 131_072  # type: ignore[attr-defined]

    gem = [m async for m in await gm(fake).aio.models.list()]
    assert "models/gemini-3.8-flash" in [m.name for m in gem]
    assert gem[0].input_token_limit == 1_048_576

    async with oa_http(fake) as c:
        r = await c.get("/models")
    assert [m["id"] for m in r.json()["data"]] == ["llama3.2"]

    fake.models["openai"] = ["qwen2.5:7b", "llama3.2"]
    try:
        async with oa_http(fake) as c:
            r = await c.get("/models")
            one = await c.get("/models/qwen2.5:7b")
            missing = await c.get("/models/nope")
    finally:
        fake.models["openai"] = ["llama3.2"]
    assert [m["id"] for m in r.json()["data"]] == ["qwen2.5:7b", "llama3.2"]
    assert one.json()["id"] == "qwen2.5:7b"
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "model_not_found"


# --------------------------------------------------------------------------- auth


async def test_invalid_and_missing_keys(fake: FakeUpstream) -> None:
    fake.valid_keys = {"groq": "gsk_right", "gemini": "AIza-right"}
    try:
        with pytest.raises(groq.AuthenticationError) as ei:
            await gq(fake, key="gsk_wrong").chat.completions.create(
                model=GROQ_MODEL, messages=MESSAGES
            )
        ok = await gq(fake, key="gsk_right").chat.completions.create(
            model=GROQ_MODEL, messages=MESSAGES
        )
        with pytest.raises(genai_errors.ClientError) as gi:
            await gm(fake, key="AIza-wrong").aio.models.generate_content(
                model=GEM_MODEL, contents="x"
            )
        # No valid key configured for "openai": any key or none passes (like a local Ollama).
        async with oa_http(fake, key=None) as c:
            none = await c.post("/chat/completions", json={"model": OA_MODEL, "messages": []})
        async with oa_http(fake, key="anything") as c:
            anyk = await c.post("/chat/completions", json={"model": OA_MODEL, "messages": []})
    finally:
        fake.valid_keys = None
    assert ei.value.status_code == 401
    assert ei.value.body == {
        "error": {
            "message": "Invalid API Key",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
        }
    }
    assert ok.choices[0].message.content
    assert gi.value.code == 400 and gi.value.status == "INVALID_ARGUMENT"
    details = gi.value.details["error"]["details"]
    assert details[0]["reason"] == "API_KEY_INVALID"
    assert none.status_code == 200
    assert anyk.status_code == 200
    assert [r.api_key for r in fake.requests] == [
        "gsk_wrong",
        "gsk_right",
        "AIza-wrong",
        None,
        "anything",
    ]


# --------------------------------------------------------------------------- status faults


async def test_status_429_groq_retry_after_headers(fake: FakeUpstream) -> None:
    fake.add_fault(Fault("status", status=429, retry_after_s=0.3, retry_after_ms=300))
    with pytest.raises(groq.RateLimitError) as ei:
        await gq(fake).chat.completions.create(model=GROQ_MODEL, messages=MESSAGES)
    resp = ei.value.response
    assert resp.headers["retry-after"] == "0.3"
    assert resp.headers["retry-after-ms"] == "300"
    err = ei.value.body["error"]  # type: ignore[index]
    assert err["code"] == "rate_limit_exceeded"
    assert "Please try again in 0.3s" in err["message"]
    assert GROQ_MODEL in err["message"]


async def test_status_429_gemini_retry_info(fake: FakeUpstream) -> None:
    fake.add_fault(Fault("status", status=429, retry_after_s=0.3, provider="gemini"))
    with pytest.raises(genai_errors.ClientError) as ei:
        await gm(fake).aio.models.generate_content(model=GEM_MODEL, contents="x")
    assert (ei.value.code, ei.value.status) == (429, "RESOURCE_EXHAUSTED")
    details = ei.value.details["error"]["details"]
    retry = [d for d in details if d["@type"].endswith("RetryInfo")]
    assert retry == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.3s"}]


async def test_status_faults_by_kind_and_stream(fake: FakeUpstream) -> None:
    fake.add_fault(Fault("status", status=404, model="gone"))
    fake.add_fault(Fault("status", status=503, provider="gemini"))
    fake.add_fault(Fault("status", status=498, provider="groq", model=GROQ_MODEL))
    with pytest.raises(groq.NotFoundError) as nf:
        await gq(fake).chat.completions.create(model="gone", messages=MESSAGES)
    assert nf.value.body["error"]["code"] == "model_not_found"  # type: ignore[index]
    assert "The model `gone` does not exist" in nf.value.body["error"]["message"]  # type: ignore[index]
    _, _, err = await groq_stream(gq(fake))  # status is sent before any stream body
    assert isinstance(err, groq.APIStatusError) and err.status_code == 498
    assert err.body["error"]["code"] == "capacity_exceeded"  # type: ignore[index]
    with pytest.raises(genai_errors.ServerError) as se:
        await gem_stream(gm(fake))
    assert (se.value.code, se.value.status) == (503, "UNAVAILABLE")
    with pytest.raises(genai_errors.ClientError) as gone:
        await gm(fake).aio.models.generate_content(model="gone", contents="x")
    assert gone.value.status == "NOT_FOUND" and "models/gone is no longer" in gone.value.message


async def test_fault_times_and_filters(fake: FakeUpstream) -> None:
    fault = Fault("status", status=500, model=GROQ_MODEL, times=2)
    fake.add_fault(fault)
    client = gq(fake)
    for _ in range(2):
        with pytest.raises(groq.InternalServerError):
            await client.chat.completions.create(model=GROQ_MODEL, messages=MESSAGES)
    # A different model and a listing are never touched; the third call succeeds.
    other = await client.chat.completions.create(model="groq/compound", messages=MESSAGES)
    assert other.choices[0].finish_reason == "stop"
    await client.models.list()
    ok = await client.chat.completions.create(model=GROQ_MODEL, messages=MESSAGES)
    assert ok.choices[0].message.content
    assert fault.times == 0
    assert len(fake.requests_for(GROQ_MODEL)) == 3

    fake.add_fault(Fault("status", status=500, provider="openai"))
    r = await gq(fake).chat.completions.create(model=GROQ_MODEL, messages=MESSAGES)
    assert r.choices[0].message.content
    async with oa_http(fake) as c:
        bad = await c.post("/chat/completions", json={"model": OA_MODEL, "messages": []})
        again = await c.post("/chat/completions", json={"model": OA_MODEL, "messages": []})
    assert bad.status_code == again.status_code == 500  # times=None: forever
    assert bad.json()["error"]["code"] == "internal_server_error"


# --------------------------------------------------------------------------- network faults


async def test_silent_triggers_client_timeouts(fake: FakeUpstream) -> None:
    fake.add_fault(Fault("silent"))
    t0 = time.monotonic()
    with pytest.raises(groq.APITimeoutError):
        await gq(fake, timeout=0.3).chat.completions.create(model=GROQ_MODEL, messages=MESSAGES)
    assert time.monotonic() - t0 > 0.25  # the client's own timeout fired, not an early close
    with pytest.raises(Exception) as ei:
        await gm(fake, timeout_ms=300).aio.models.generate_content(model=GEM_MODEL, contents="x")
    assert type(ei.value).__name__ == "ReadTimeout"  # httpx2: google-genai does not wrap it


def test_stop_ends_silent_and_stalled_connections() -> None:
    up = FakeUpstream().start()
    up.add_fault(Fault("silent", times=1))
    up.add_fault(Fault("stall", delay_s=10 * HANG_S))  # far past the bound on stop below
    socks = []
    for _ in range(2):
        s = socket.create_connection(("127.0.0.1", up.port), timeout=2)
        s.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer k\r\n"
            b'content-length: 33\r\n\r\n{"model":"m","stream":true}      '
        )
        socks.append(s)
    wait_until(lambda: len(up.requests) >= 2, "both requests at the fake")
    # The stalled one has sent its first chunks; its handler now sleeps in the stall.
    wait_until(lambda: select.select([socks[1]], [], [], 0)[0], "the stalled reply's head")
    stopping = threading.Thread(target=up.stop)
    stopping.start()
    stopping.join(HANG_S)  # the stall lasts ten times longer: stop did not wait for it
    assert not stopping.is_alive(), "stop() waited for a stalled connection"
    assert socks[0].recv(100) == b""  # closed without a single byte
    stalled = b""
    while chunk := socks[1].recv(65536):
        stalled += chunk
    assert stalled.startswith(b"HTTP/1.1 200") and b"[DONE]" not in stalled
    for s in socks:
        s.close()


async def test_slow_first_token_sends_headers_first(fake: FakeUpstream) -> None:
    body = {"model": OA_MODEL, "messages": MESSAGES, "stream": True}
    # Headers and the role chunk do not wait for the delay: it is ten times the client's
    # (hang) timeout, so getting them at all shows they came first.
    fake.add_fault(Fault("slow_first_token", delay_s=10 * HANG_S, times=1))
    async with (
        oa_http(fake, timeout=HANG_S) as c,
        c.stream("POST", "/chat/completions", json=body) as r,
    ):
        first = await anext(r.aiter_lines())
    assert json.loads(first[6:])["choices"][0]["delta"]["role"] == "assistant"
    # The content does wait for it (a lower bound, which sleeping guarantees).
    fake.add_fault(Fault("slow_first_token", delay_s=0.3, times=1))
    async with oa_http(fake, timeout=HANG_S) as c:
        t0 = time.monotonic()
        async with c.stream("POST", "/chat/completions", json=body) as r:
            lines = r.aiter_lines()
            while not (line := await anext(lines)) or '"role"' in line:
                pass
            t_content = time.monotonic() - t0
    assert "content" in json.loads(line[6:])["choices"][0]["delta"]
    assert t_content >= 0.28


async def test_cut_stream_and_whole(fake: FakeUpstream) -> None:
    fake.add_fault(Fault("cut", after_chunks=3, times=2))
    text, chunks, err = await groq_stream(gq(fake))
    assert err is not None  # incomplete chunked body (raw httpx error, not wrapped)
    assert text == "".join(split_chunks(expected_reply("groq", GROQ_MODEL))[:3])
    assert all(c.choices[0].finish_reason is None for c in chunks)
    with pytest.raises(groq.APIConnectionError):
        await gq(fake).chat.completions.create(model=GROQ_MODEL, messages=MESSAGES)


async def test_reset_is_a_connection_error(fake: FakeUpstream) -> None:
    fake.add_fault(Fault("reset", times=2))
    with pytest.raises(groq.APIConnectionError):
        await gq(fake).chat.completions.create(model=GROQ_MODEL, messages=MESSAGES)
    async with oa_http(fake) as c:
        with pytest.raises(httpx.TransportError):
            await c.post("/chat/completions", json={"model": OA_MODEL, "messages": []})


async def test_refused_url() -> None:
    url = FakeUpstream.refused_url()
    async with httpx.AsyncClient(timeout=1.0) as c:
        with pytest.raises(httpx.ConnectError):
            await c.get(url + "/v1/models")


async def test_stall_then_continues(fake: FakeUpstream) -> None:
    fake.add_fault(Fault("stall", delay_s=0.3, after_chunks=2))
    t0 = time.monotonic()
    text, chunks, err = await groq_stream(gq(fake))
    assert err is None and time.monotonic() - t0 >= 0.28
    assert text == expected_reply("groq", GROQ_MODEL)
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_malformed_chunk_then_rest(fake: FakeUpstream) -> None:
    fake.add_fault(Fault("malformed_chunk", after_chunks=1, times=2))
    body = {"model": OA_MODEL, "messages": MESSAGES, "stream": True}
    async with oa_http(fake) as c:
        r = await c.post("/chat/completions", json=body)
        whole = await c.post("/chat/completions", json={"model": OA_MODEL, "messages": []})
    events = sse_events(r.text)
    assert events[2] == "{not json"  # role chunk, one content chunk, then garbage
    assert events[-1] == "[DONE]"
    good = [json.loads(e) for e in events[:-1] if e != "{not json"]
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in good)
    assert text == expected_reply("openai", OA_MODEL)
    assert whole.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(whole.content)


async def test_no_done_ends_cleanly_without_done(fake: FakeUpstream) -> None:
    fake.add_fault(Fault("no_done", provider="groq"))
    body = {"model": GROQ_MODEL, "messages": MESSAGES, "stream": True}
    async with httpx.AsyncClient(base_url=fake.base_url, timeout=1.0) as c:
        r = await c.post(
            "/openai/v1/chat/completions", json=body, headers={"authorization": "Bearer k"}
        )
    events = sse_events(r.text)
    assert "[DONE]" not in events
    assert json.loads(events[-1])["x_groq"]["usage"]["total_tokens"] > PROMPT_WORDS


async def test_non_json_bad_gateway(fake: FakeUpstream) -> None:
    fake.add_fault(Fault("non_json"))
    with pytest.raises(groq.InternalServerError) as ei:
        await gq(fake).chat.completions.create(model=GROQ_MODEL, messages=MESSAGES)
    assert ei.value.status_code == 502
    assert ei.value.response.headers["content-type"] == "text/html"
    assert ei.value.response.text == "<html>Bad gateway</html>"


# --------------------------------------------------------------------------- content faults


async def test_content_filter(fake: FakeUpstream) -> None:
    fake.add_fault(Fault("content_filter", message="violence"))
    with pytest.raises(groq.BadRequestError) as ei:
        await gq(fake).chat.completions.create(model=GROQ_MODEL, messages=MESSAGES)
    err = ei.value.body["error"]  # type: ignore[index]
    assert err["code"] == "content_filter"
    assert err["message"] == "This request was flagged by the content filter: violence."
    r = await gm(fake).aio.models.generate_content(model=GEM_MODEL, contents="x")
    assert not r.candidates
    assert r.prompt_feedback and r.prompt_feedback.block_reason == types.BlockedReason.SAFETY
    chunks = await gem_stream(gm(fake))
    assert len(chunks) == 1 and chunks[0].prompt_feedback.block_reason == "SAFETY"


async def test_context_length(fake: FakeUpstream) -> None:
    fake.add_fault(Fault("context_length"))
    with pytest.raises(groq.BadRequestError) as ei:
        await gq(fake).chat.completions.create(model=GROQ_MODEL, messages=MESSAGES)
    err = ei.value.body["error"]  # type: ignore[index]
    assert err["code"] == "context_length_exceeded" and "context length" in err["message"]
    with pytest.raises(genai_errors.ClientError) as gi:
        await gm(fake).aio.models.generate_content(model=GEM_MODEL, contents="x")
    assert gi.value.status == "INVALID_ARGUMENT"
    assert "exceeds the maximum number of tokens allowed (1048576)" in (gi.value.message or "")


async def test_truncated_length(fake: FakeUpstream) -> None:
    fake.add_fault(Fault("truncated_length"))
    r = await gq(fake).chat.completions.create(model=GROQ_MODEL, messages=MESSAGES)
    assert r.choices[0].finish_reason == "length"
    full = expected_reply("groq", GROQ_MODEL)
    assert full.startswith(r.choices[0].message.content or "x")
    assert len(r.choices[0].message.content or "") < len(full)
    chunks = await gem_stream(gm(fake))
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.MAX_TOKENS


# --------------------------------------------------------------------------- misc


async def test_unknown_route_and_keep_alive(fake: FakeUpstream) -> None:
    before = fake.connections_opened
    async with httpx.AsyncClient(base_url=fake.base_url, timeout=1.0) as c:
        for _ in range(4):
            r = await c.get("/nope", headers={"authorization": "Bearer k"})
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        r = await c.get("/openai/v1/models", headers={"authorization": "Bearer k"})
        assert r.status_code == 200
    assert fake.connections_opened - before == 1  # every request reused one connection


async def test_chunk_delay(fake: FakeUpstream) -> None:
    fake.reply_fn = lambda p, m, msgs: "a b c d e f"
    fake.chunk_delay_s = 0.05
    try:
        t0 = time.monotonic()
        text, _, err = await groq_stream(gq(fake))
        elapsed = time.monotonic() - t0
    finally:
        fake.chunk_delay_s = 0.0
        fake.reply_fn = default_reply
    assert err is None and text == "a b c d e f"
    assert elapsed >= 5 * 0.05 * 0.9  # a delay between each of the 6 chunks


async def test_fast_mode() -> None:
    with FakeUpstream(fast=True) as up:
        client = gq(up)
        for _ in range(2):  # second round hits the encoded-reply cache
            r = await client.chat.completions.create(model=GROQ_MODEL, messages=MESSAGES)
            assert r.choices[0].message.content == "ok"
            assert r.usage and (r.usage.prompt_tokens, r.usage.completion_tokens) == (6, 1)
            text, chunks, err = await groq_stream(client)
            assert (text, len(chunks), err) == ("ok", 3, None)
            g = await gem_stream(gm(up))
            assert [c.text for c in g] == ["ok"]
            assert g[0].candidates[0].finish_reason == types.FinishReason.STOP
        up.add_fault(Fault("status", status=503, times=1))
        with pytest.raises(groq.InternalServerError):
            await client.chat.completions.create(model=GROQ_MODEL, messages=MESSAGES)
        assert len(up.requests) == 7


def test_fault_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError):
        Fault("explode")
