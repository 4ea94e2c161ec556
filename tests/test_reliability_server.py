"""The fault matrix through the HTTP server, slow clients, oversized requests, full disks.

Each fault × provider kind × surface (/chat, /chat?stream=true, /v1/chat/completions whole
and streamed) over a real socket to the embedded server: the status and shape the client
gets (validated against /openapi.json), the answering model, usage, what the fake saw and
when, the total time, and that the next healthy request through the same server succeeds.
"""

from __future__ import annotations

import asyncio
import itertools
import resource
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from reliability_helpers import (
    CASES,
    CHAINS,
    FAKE_PROVIDER,
    GEMINI,
    GROQ,
    HANG_BOUND_S,
    LOCAL,
    MATRIX,
    Case,
    answerer,
    assert_continued,
    assert_no_key,
    chat_posts,
    expected_reply,
    hits,
)
from server_helpers import ServerProcess, check_response, clean_env, serving
from waiting import HANG_S, wait_until

from llmrouter_tui.server.app import create_app
from llmrouter_tui.testing.fake_upstream import FakeUpstream

SERVER_CASES = [
    c
    for c in CASES
    if c.id
    in {
        "429_retry_after",
        "503_persistent",
        "503_nowhere_to_go",
        "non_json_502",
        "silent",
        "cut_mid_answer",
        "no_done",
        "content_filter",
        "invalid_key",
    }
]
SURFACES = ["chat", "chat_stream", "v1", "v1_stream"]
ERROR_STATUS = {"all_failed": 502, "content_filter": 422, "stream_failed": 502}


@dataclass
class Outcome:
    http_status: int
    ok: bool
    model: str | None = None
    text: str = ""
    usage_total: int = 0
    estimated: bool | None = None
    attempts: list[dict[str, Any]] | None = None
    error_kind: str | None = None
    detail: str | None = None
    mid_stream_error: bool = False


def _error(response: httpx.Response, data: dict[str, Any]) -> Outcome:
    assert isinstance(data["detail"], str) and "Traceback" not in data["detail"]
    return Outcome(
        response.status_code,
        False,
        attempts=data.get("attempts"),
        error_kind=data.get("error_kind"),
        detail=data["detail"],
    )


async def call(client: httpx.AsyncClient, surface: str, model: str, prompt: str) -> Outcome:
    """One request on `surface`, its response checked against the schema and normalised."""
    if surface.startswith("chat"):
        url = "/chat?stream=true" if surface == "chat_stream" else "/chat"
        response = await client.post(url, json={"model": model, "prompt": prompt})
    else:
        body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": prompt}]}
        if surface == "v1_stream":
            body |= {"stream": True, "stream_options": {"include_usage": True}}
        response = await client.post("/v1/chat/completions", json=body)
    assert_no_key(response.text, f"the {surface} response")
    data = check_response(response)
    if response.status_code != 200:
        assert 400 <= response.status_code < 600
        return _error(response, data)
    if surface == "chat":
        return Outcome(
            200,
            True,
            data["model_used"],
            data["response_text"],
            data["tokens"]["total"],
            data["tokens"]["estimated"],
            data["attempts"],
        )
    if surface == "v1":
        extra = data["x_llmrouter"]
        return Outcome(
            200,
            True,
            data["model"],
            data["choices"][0]["message"]["content"],
            data["usage"]["total_tokens"],
            extra["tokens"]["estimated"],
            extra["attempts"],
        )
    events = data
    if surface == "chat_stream":
        assert events[0]["type"] == "start"
        text = "".join(e["text"] for e in events if e["type"] == "delta")
        last = events[-1]
        assert [e["type"] for e in events].count(last["type"]) == 1
        if last["type"] == "done":
            result = last["result"]
            assert text == result["response_text"]
            return Outcome(
                200,
                True,
                result["model_used"],
                text,
                result["tokens"]["total"],
                result["tokens"]["estimated"],
                result["attempts"],
            )
        assert last["type"] == "error"
        return Outcome(
            200,
            False,
            text=text,
            attempts=last["result"]["attempts"],
            error_kind=last["error"]["kind"],
            detail=last["error"]["message"],
            mid_stream_error=True,
        )
    # v1_stream
    chunks = [e for e in events if e != "[DONE]"]
    text = "".join(
        c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices")
    )
    if events[-1] == "[DONE]":
        final = next(c for c in chunks if "x_llmrouter" in c)
        usage = next(c["usage"] for c in chunks if c.get("usage"))
        assert final["choices"][0]["finish_reason"] in ("stop", "length")
        return Outcome(
            200,
            True,
            final["model"],
            text,
            usage["total_tokens"],
            final["x_llmrouter"]["tokens"]["estimated"],
            final["x_llmrouter"]["attempts"],
        )
    assert "[DONE]" not in events and "error" in chunks[-1]
    return Outcome(
        200,
        False,
        text=text,
        attempts=chunks[-1]["x_llmrouter"]["attempts"],
        error_kind=chunks[-1]["error"]["code"],
        detail=chunks[-1]["error"]["message"],
        mid_stream_error=True,
    )


@pytest.mark.slow  # a server per case (the in-process matrix covers the same faults quickly)
@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize("primary", [GROQ, GEMINI, LOCAL], ids=["groq", "gemini", "openai"])
@pytest.mark.parametrize("case", SERVER_CASES, ids=[c.id for c in SERVER_CASES])
async def test_fault_matrix_through_the_server(
    make_runtime, upstream: FakeUpstream, case: Case, primary: str, surface: str
):
    runtime = make_runtime(**MATRIX)
    app = create_app(runtime, token="")
    streamed = surface.endswith("stream")
    outcome = case.streamed if (streamed and case.streamed) else case.outcome
    who = answerer(replace(case, outcome=outcome), primary)
    fake_provider = FAKE_PROVIDER[primary]
    if case.valid_keys:
        upstream.valid_keys = {fake_provider: "the-real-key-is-something-else"}
    for fault in case.make(primary):
        upstream.add_fault(fault)
    prompt = f"server matrix {case.id} {surface}"
    async with (
        serving(app) as server,
        httpx.AsyncClient(base_url=server.url, timeout=2 * HANG_BOUND_S) as client,
    ):
        t0 = time.monotonic()
        try:
            got = await call(client, surface, primary, prompt)
        finally:
            upstream.valid_keys = None
        elapsed = time.monotonic() - t0
        assert case.min_s <= elapsed <= case.max_s, f"took {elapsed:.2f}s"  # see MATRIX

        if outcome == "error":
            assert not got.ok
            if got.mid_stream_error:
                assert case.streamed == "error" and streamed  # only after text was sent
                assert got.text and got.error_kind == "stream_failed"
            else:
                assert got.http_status == ERROR_STATUS[case.error_kind]
                assert got.error_kind == case.error_kind
                assert got.text == ""
            if case.error_has:
                words = case.error_has.split("|")
                assert any(w in got.detail.lower() for w in words), got.detail
        else:
            assert got.ok and got.http_status == 200, got.detail
            assert got.model == who
            if outcome == "continued":  # one answer, finished by `who` from where it broke
                assert_continued(got.text, primary, who, prompt)
                assert [a["outcome"] for a in got.attempts or ()][-1] == "continued"
            else:
                assert got.text == expected_reply(who, prompt)  # complete, never truncated
            # The provider's own usage (a broken attempt's share is our estimate).
            assert got.usage_total > 0 and got.estimated is (outcome == "continued")

        # attempts the fake saw, per model and when
        for model in CHAINS[primary]:
            posts = chat_posts(upstream, model)
            assert all(t0 <= r.t <= t0 + elapsed for r in posts)
            gaps = [b.t - a.t for a, b in itertools.pairwise(posts)]
            assert all(g >= case.min_gap_s for g in gaps), gaps
            reported = [a for a in got.attempts or () if a["model"] == model]
            assert len(reported) == len(posts)
            if hits(case, primary, model) and (
                who is None or CHAINS[primary].index(model) < CHAINS[primary].index(who)
            ):
                assert len(posts) == case.attempts, (model, got.attempts)

        # the next healthy request through the same server succeeds, on the primary
        upstream.clear()
        follow = f"healthy after {case.id}"
        after = await call(client, surface, primary, follow)
        assert after.ok and after.model == primary
        assert after.text == expected_reply(primary, follow)
    assert "Traceback" not in server.log_text()
    await runtime.aclose()


# ---- slow clients and oversized requests against the real `--serve` -----------------------------


@pytest.fixture
def serve(tmp_path: Path):
    """`llmrouter-tui --serve --demo` in a subprocess, with its default limits."""
    data = tmp_path / "data"
    proc = ServerProcess(
        ["--serve", "--demo", "--port", "0", "--data-dir", str(data), "--quiet"],
        clean_env(),
        cwd=tmp_path,
    )
    proc.wait_for_url()
    yield proc
    proc.stop()


async def _nothing_to_read(reader: asyncio.StreamReader) -> bool:
    """True if the server has neither answered nor closed this connection yet."""
    try:
        await asyncio.wait_for(reader.read(1), 0.001)  # returns at once if anything is there
    except TimeoutError:
        return True
    return False


async def _normal_chat(url: str) -> int:
    async with httpx.AsyncClient(base_url=url, timeout=HANG_S) as client:
        response = await client.post(f"/chat?model={GROQ}", json={"prompt": "still there?"})
    return response.status_code


@pytest.mark.slow
async def test_hundreds_of_idle_and_trickling_clients_do_not_block_a_request(serve):
    port = int(serve.url.rsplit(":", 1)[1])
    assert await _normal_chat(serve.url) == 200

    idle: list[asyncio.StreamWriter] = []
    trickling: list[asyncio.StreamWriter] = []
    trickling_readers: list[asyncio.StreamReader] = []
    # Bounded by this machine's open-file limit (both processes hold one fd per socket).
    soft_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    idle_count = max(50, min(300, soft_limit // 2 - 150))
    for _ in range(idle_count):  # connected, never send a byte
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        idle.append(writer)
    for _ in range(100):  # a request head that never ends, one byte at a time
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /chat HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        trickling.append(writer)
        trickling_readers.append(reader)

    async def trickle() -> None:
        while True:  # the slow clients under test: a byte each every 0.1 s until cancelled
            for writer in trickling:
                if not writer.is_closing():
                    writer.write(b"a")
            await asyncio.sleep(0.1)

    dripping = asyncio.create_task(trickle())
    try:
        results = await asyncio.gather(*(_normal_chat(serve.url) for _ in range(5)))
        # Answered while every slow head was still pending: the server did not get to these
        # chats only once its 10 s head deadline had cut the trickling clients off.
        pending = [await _nothing_to_read(reader) for reader in trickling_readers]
    finally:
        dripping.cancel()
        for writer in idle + trickling:
            writer.close()
    assert results == [200] * 5
    assert all(pending), f"{pending.count(False)} trickling clients were cut off first"
    assert serve.proc.poll() is None


async def test_oversized_bodies_and_headers_are_refused_early(serve):
    port = int(serve.url.rsplit(":", 1)[1])
    # A 50 MB body announced in the head: refused before any of it is sent.
    # No byte of it is ever sent, so any answer but a 408 (the head-to-body deadline) shows
    # the refusal came first.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 52428800\r\n\r\n"
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HANG_S)
    writer.close()
    assert head.split()[1] == b"413"
    # The same without Content-Length (chunked): cut off once past the limit.
    async with httpx.AsyncClient(base_url=serve.url, timeout=10) as client:

        async def body():
            for _ in range(64):
                yield b"x" * 65536

        try:
            response = await client.post(
                "/chat", content=body(), headers={"content-type": "application/json"}
            )
        except httpx.TransportError:
            pass  # refused and closed while we were still sending: a reset, not a 413 (reported)
        else:
            assert response.status_code == 413 and isinstance(response.json()["detail"], str)
        huge_header = {"X-Huge": "h" * 70000}
        response = await client.get("/health", headers=huge_header)
        assert response.status_code == 431
        assert (await client.get("/health")).status_code == 200  # still serving
    assert serve.proc.poll() is None


# ---- a full disk through the server -------------------------------------------------------------


@pytest.fixture(scope="module")
def full_disk_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One `--serve --demo` whose prompts.jsonl hits a full disk (/dev/full) and recovers."""
    root = tmp_path_factory.mktemp("full")
    data = root / "data"
    server = ServerProcess(
        ["--serve", "--demo", "--port", "0", "--data-dir", str(data)], clean_env(), cwd=root
    )
    server.wait_for_url()
    jsonl = data / "logs" / "prompts.jsonl"
    try:
        with httpx.Client(base_url=server.url, timeout=20) as client:
            before = client.post(f"/chat?model={GROQ}", json={"prompt": "before"})
            saved = jsonl.read_bytes()
            jsonl.unlink()
            jsonl.symlink_to("/dev/full")
            during = client.post(f"/chat?model={GROQ}", json={"prompt": "while full"})
            stderr_while_full = wait_until(
                lambda: "No space left on device" in server.stderr and server.stderr,
                "the server's stderr to report the full disk",
            )
            jsonl.unlink()
            jsonl.write_bytes(saved)
            after = client.post(f"/chat?model={GROQ}", json={"prompt": "after"})
    finally:
        code = server.stop()
    return {
        "jsonl": jsonl,
        "responses": (before, during, after),
        "stderr": stderr_while_full,
        "exit": code,
    }


@pytest.mark.slow
def test_full_disk_replies_still_come_back_with_a_warning(full_disk_run: dict[str, Any]):
    before, during, after = full_disk_run["responses"]
    jsonl: Path = full_disk_run["jsonl"]
    assert before.status_code == 200 and before.json()["warnings"] == []
    assert during.status_code == 200
    record = check_response(during)
    assert record["response_text"] == expected_reply(GROQ, "while full")
    (warning,) = record["warnings"]
    assert str(jsonl) in warning and "No space left on device" in warning
    assert after.json()["warnings"] == []  # recording resumed
    rows = [line for line in jsonl.read_text().splitlines() if line]
    assert len(rows) == 2
    assert full_disk_run["exit"] == 0


@pytest.mark.slow
def test_full_disk_is_reported_on_the_server_stderr(full_disk_run: dict[str, Any]):
    assert "No space left on device" in full_disk_run["stderr"]
