"""The embedded h11 server over a real socket: protocol handling, limits, timeouts, access
log, streaming, concurrency, graceful shutdown, and the stock `openai` client on /v1."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from server_helpers import ACCESS_LINE, check_response, serving, sse_events
from waiting import HANG_S, until

from llmrouter_tui.core.errors import StorageError
from llmrouter_tui.core.runtime import Runtime
from llmrouter_tui.server.app import create_app
from llmrouter_tui.server.types import Receive, Scope, Send
from llmrouter_tui.testing.fake_upstream import FakeUpstream, Fault

GROQ = "openai/gpt-oss-20b"


# ---- raw socket helpers -----------------------------------------------------------------------


async def raw_exchange(
    port: int, data: bytes, *, read_timeout: float = HANG_S, until_close: bool = False
) -> bytes:
    """Send bytes, return what comes back (one response, or everything until close)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await read_response(reader, read_timeout, until_close)
    finally:
        writer.close()


async def read_response(
    reader: asyncio.StreamReader, timeout: float = HANG_S, until_close: bool = False
) -> bytes:
    async with asyncio.timeout(timeout):
        if until_close:
            return await reader.read(-1)
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        return head + await reader.readexactly(length)


def refused(url: str) -> Callable[[], Awaitable[bool]]:
    """A probe for `until`: is a new connection to `url` refused?"""

    async def probe() -> bool:
        try:
            async with httpx.AsyncClient(base_url=url) as client:
                await client.get("/new")
        except httpx.ConnectError:
            return True
        return False

    return probe


def status_of(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


def body_of(raw: bytes) -> Any:
    return json.loads(raw.split(b"\r\n\r\n", 1)[1])


# ---- toy ASGI apps (the server hosts any ASGI app) --------------------------------------------


class EchoApp:
    """Echoes the body; records lifespan events; /boom raises; /silent returns nothing."""

    def __init__(self) -> None:
        self.lifespan: list[str] = []
        self.scopes: list[Scope] = []
        self.release = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                self.lifespan.append(message["type"])
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        self.scopes.append(scope)
        path = scope["path"]
        if path == "/boom":
            raise ValueError("secret-ish detail that must not be logged")
        if path == "/silent":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if path == "/wait":
            await self.release.wait()
        if path == "/stream":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for part in (b"one ", b"two ", b"three"):
                await send({"type": "http.response.body", "body": part, "more_body": True})
                await asyncio.sleep(0.05)  # the spacing is what the streaming test looks for
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-echo", b"1")]})
        await send({"type": "http.response.body", "body": body or b"empty"})


class NoLifespanApp:
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise RuntimeError("lifespan not supported")
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


# ---- protocol -----------------------------------------------------------------------------------


async def test_any_asgi_app_with_lifespan_keep_alive_and_scope() -> None:
    app = EchoApp()
    async with serving(app) as server:
        assert app.lifespan == ["lifespan.startup"]
        async with httpx.AsyncClient(base_url=server.url) as client:
            for i in range(5):
                response = await client.post(f"/echo%20x?q={i}", content=f"body {i}".encode())
                assert response.text == f"body {i}"
                assert response.headers["x-echo"] == "1"
                assert response.headers["content-length"] == str(len(response.content))
        assert server.accepted == 1  # one connection for five requests
        scope = app.scopes[-1]
        assert scope["path"] == "/echo x" and scope["raw_path"] == b"/echo%20x"
        assert scope["query_string"] == b"q=4"
        assert scope["client"][0] == "127.0.0.1"
        assert scope["http_version"] == "1.1"
    assert app.lifespan == ["lifespan.startup", "lifespan.shutdown"]


async def test_apps_without_lifespan_are_served() -> None:
    async with serving(NoLifespanApp()) as server:
        raw = await raw_exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_of(raw) == 204


async def test_pipelined_requests_are_answered_in_order() -> None:
    async with serving(EchoApp()) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        one = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\none"
        two = b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\ntwo"
        writer.write(one + two)
        first = await read_response(reader)
        second = await read_response(reader)
        writer.close()
        assert first.endswith(b"one") and second.endswith(b"two")


async def test_expect_100_continue() -> None:
    async with serving(EchoApp()) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert interim.startswith(b"HTTP/1.1 100")
        writer.write(b"hello")
        final = await read_response(reader)
        writer.close()
        assert status_of(final) == 200 and final.endswith(b"hello")


async def test_malformed_requests_get_400_and_oversized_headers_431() -> None:
    async with serving(EchoApp(), max_header_bytes=4096) as server:
        raw = await raw_exchange(server.port, b"NOT HTTP AT ALL\r\n\r\n")
        assert status_of(raw) == 400 and "malformed" in body_of(raw)["detail"]
        huge = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8000 + b"\r\n\r\n"
        raw = await raw_exchange(server.port, huge)
        assert status_of(raw) == 431 and "too large" in body_of(raw)["detail"]
        log = server.log_text()
    # The request line of the 400 is not HTTP ("- -"); the 431's was (method and path).
    assert '"- -" 400' in log and '"GET /" 431' in log


async def test_body_limit_answers_413_before_reading_and_while_reading() -> None:
    app = EchoApp()
    async with serving(app, max_body_bytes=1000) as server:
        # Announced too large: 413 at once, without waiting for (or reading) the body. The
        # body is never sent, so an answer at all (not a 408 or a read timeout) proves it.
        head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n"
        raw = await raw_exchange(server.port, head, until_close=True)
        assert status_of(raw) == 413
        assert b"connection: close" in raw.lower()
        assert "5000000 bytes" in body_of(raw)["detail"]
        # Chunked, no length: 413 once the limit is crossed.
        chunked = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        chunked += b"".join(b"200\r\n" + b"x" * 512 + b"\r\n" for _ in range(4)) + b"0\r\n\r\n"
        raw = await raw_exchange(server.port, chunked, until_close=True)
        assert status_of(raw) == 413
        # Within the limit, chunked or not: fine.
        small = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        small += b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        raw = await raw_exchange(server.port, small)
        assert status_of(raw) == 200 and raw.endswith(b"abcde")
        raw = await raw_exchange(
            server.port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nfine"
        )
        assert raw.endswith(b"fine")


async def test_slow_and_idle_clients_are_cut_off() -> None:
    async with serving(EchoApp(), request_timeout_s=0.3, keepalive_timeout_s=0.3) as server:
        # The head never ends: without the server's cut-off, raw_exchange's own (hang) bound
        # would raise instead of a 408 arriving.
        raw = await raw_exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n", until_close=True)
        assert status_of(raw) == 408
        slow_body = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"
        raw = await raw_exchange(server.port, slow_body, until_close=True)
        assert status_of(raw) == 408
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        assert await asyncio.wait_for(reader.read(), HANG_S) == b""  # idle: closed, no answer
        writer.close()


async def test_a_body_trickling_in_is_cut_off_at_the_body_deadline() -> None:
    async with serving(EchoApp(), request_timeout_s=5, body_timeout_s=0.4) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        raw = b""
        # One byte every 0.05 s (the slow client under test): each read is quick, the whole
        # is not. 40 of the 100 bytes at most, so only the body deadline can answer.
        for _ in range(40):
            writer.write(b"x")
            try:
                raw = await asyncio.wait_for(reader.read(4096), 0.05)
                break  # the server answered
            except TimeoutError:
                continue
        writer.close()
        assert raw, "the server cut the trickling body off before it was complete"
        assert status_of(raw) == 408


async def test_connections_over_the_cap_get_503() -> None:
    async with serving(EchoApp(), max_connections=2, keepalive_timeout_s=5) as server:
        held = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(2)]
        await until(lambda: server.accepted == 2, "the server to accept both held connections")
        raw = await raw_exchange(
            server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", until_close=True
        )
        assert status_of(raw) == 503 and "too many" in body_of(raw)["detail"]
        for _, writer in held:
            writer.close()

        async def served() -> bool:
            get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
            return status_of(await raw_exchange(server.port, get)) == 200

        await until(served, "a 200 once the held connections are closed")


async def test_app_errors_become_500_without_details() -> None:
    async with serving(EchoApp()) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            boom = await client.get("/boom")
            silent = await client.get("/silent")
        assert boom.status_code == 500 and boom.json() == {"detail": "internal error"}
        assert silent.status_code == 500
        log = server.log_text()
    assert "unhandled ValueError" in log and "secret-ish" not in log
    assert '"GET /boom" 500' in log


async def test_responses_stream_chunk_by_chunk() -> None:
    async with serving(EchoApp()) as server, httpx.AsyncClient(base_url=server.url) as client:
        arrivals = []
        async with client.stream("GET", "/stream") as response:
            async for chunk in response.aiter_raw():
                arrivals.append((time.monotonic(), chunk))
        assert b"".join(c for _, c in arrivals) == b"one two three"
        assert len(arrivals) >= 3
        assert arrivals[-1][0] - arrivals[0][0] > 0.08  # spread out, not buffered


async def test_access_log_lines_and_quiet() -> None:
    async with serving(EchoApp()) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            await client.post("/echo?token=SHOULD_NOT_APPEAR", content=b"BODY_SHOULD_NOT_APPEAR")
            await client.get("/silent")
        log = server.log_text()
    lines = log.splitlines()
    parsed = [ACCESS_LINE.match(line) for line in lines if '"' in line]
    assert len(parsed) == 2 and all(parsed)
    assert (parsed[0]["method"], parsed[0]["path"], parsed[0]["status"]) == ("POST", "/echo", "200")
    assert "SHOULD_NOT_APPEAR" not in log
    async with serving(EchoApp(), access_log=False) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            await client.get("/x")
        assert server.log_text() == ""


async def test_graceful_stop_lets_in_flight_requests_finish() -> None:
    app = EchoApp()
    async with serving(app, shutdown_grace_s=5) as server:
        client = httpx.AsyncClient(base_url=server.url)
        idle = httpx.AsyncClient(base_url=server.url)
        await idle.get("/warm")  # an idle keep-alive connection: closed at once on stop
        pending = asyncio.create_task(client.post("/wait", content=b"in flight"))
        await until(lambda: any(s["path"] == "/wait" for s in app.scopes), "the /wait request")
        stopping = asyncio.create_task(server.shutdown())
        # The listener closes first: once a new connection is refused, stop has begun and
        # is still waiting on the request in flight.
        await until(refused(server.url), "the listener to close")
        assert not stopping.done()
        app.release.set()
        response = await pending
        await stopping
        assert response.text == "in flight"
        assert response.headers["connection"] == "close"
        assert app.lifespan[-1] == "lifespan.shutdown"
        await client.aclose()
        await idle.aclose()


async def test_stop_gives_up_on_requests_that_outlive_the_grace_period() -> None:
    app = EchoApp()
    async with serving(app, shutdown_grace_s=0.2) as server:
        client = httpx.AsyncClient(base_url=server.url)
        pending = asyncio.create_task(client.post("/wait", content=b"stuck"))
        await until(lambda: any(s["path"] == "/wait" for s in app.scopes), "the /wait request")
        # The request never ends (nothing releases it): returning at all is the grace at work.
        await asyncio.wait_for(server.shutdown(), HANG_S)
        with pytest.raises(httpx.HTTPError):
            await pending
        await client.aclose()


# ---- the router app over the socket -------------------------------------------------------------


@pytest.fixture
async def router_server(make_runtime: Callable[..., Runtime]):
    runtime = make_runtime()
    app = create_app(runtime, token="", owns_runtime=True)
    async with serving(app) as server:
        yield server, runtime


async def test_every_endpoint_over_the_socket(router_server, upstream: FakeUpstream) -> None:
    server, _runtime = router_server
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
        chat = check_response(await client.post(f"/chat?model={GROQ}", json={"prompt": "socket"}))
        rated = await client.post(
            f"/rate?prompt_id={chat['prompt_id']}&score=5",
            headers={"content-type": "application/json"},
        )
        check_response(rated)
        for path in ("/stats", "/models", "/templates", "/health", "/openapi.json", "/v1/models"):
            check_response(await client.get(path))
        v1 = await client.post(
            "/v1/chat/completions",
            json={"model": GROQ, "messages": [{"role": "user", "content": "x"}]},
        )
        check_response(v1)
        streamed = await client.post(f"/chat?model={GROQ}&stream=true", json={"prompt": "sse"})
        events = check_response(streamed)
        assert events[-1]["type"] == "done"
        assert (await client.get("/nope")).status_code == 404
    assert server.accepted == 1
    log_paths = [m["path"] for m in map(ACCESS_LINE.match, server.log_text().splitlines()) if m]
    assert log_paths[:3] == ["/chat", "/rate", "/stats"]


async def test_head_is_answered_like_get_without_a_body(router_server) -> None:
    server, _ = router_server
    # /openapi.json: a body that is the same every time (/health's uptime is not).
    pipelined = (
        b"HEAD /openapi.json HTTP/1.1\r\nHost: localhost\r\n\r\n"
        b"GET /openapi.json HTTP/1.1\r\nHost: localhost\r\n\r\n"
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(pipelined)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    get = await read_response(reader)
    writer.close()
    assert status_of(head) == 200 and status_of(get) == 200
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    assert length == len(get.split(b"\r\n\r\n", 1)[1])  # same headers, no body sent


async def test_sse_events_are_flushed_as_they_happen(router_server, upstream: FakeUpstream) -> None:
    server, _ = router_server
    upstream.chunk_delay_s = 0.02
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=20) as client,
        client.stream(
            "POST", f"/chat?model={GROQ}&stream=true", json={"prompt": "slowly"}
        ) as response,
    ):
        started = time.monotonic()
        times: list[float] = []
        text = ""
        async for chunk in response.aiter_text():
            times.append(time.monotonic() - started)
            text += chunk
    events = sse_events(text)
    assert events[-1]["type"] == "done"
    assert len(times) > 10  # many separate arrivals, not one buffered body
    assert times[-1] - times[0] > 0.3


async def test_client_leaving_mid_stream_cancels_and_is_recorded(
    router_server, upstream: FakeUpstream
) -> None:
    server, runtime = router_server
    upstream.chunk_delay_s = 0.05
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=20) as client,
        client.stream(
            "POST", f"/chat?model={GROQ}&stream=true", json={"prompt": "leave early"}
        ) as response,
    ):
        first = await response.aiter_text().__anext__()
    prompt_id = sse_events(first)[0]["prompt_id"]
    record = await until(lambda: runtime.store.get_request(prompt_id), "the request's record")
    assert record["status"] == "cancelled"


@pytest.mark.slow
async def test_a_hundred_simultaneous_chats_are_each_recorded_once(
    make_runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    runtime = make_runtime(data_dir=tmp_path / "many")
    app = create_app(runtime, token="")
    async with serving(app) as server:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as client:
            responses = await asyncio.gather(
                *(
                    client.post(f"/chat?model={GROQ}", json={"prompt": f"question {i}"})
                    for i in range(100)
                )
            )
    assert [r.status_code for r in responses] == [200] * 100
    ids = {r.json()["prompt_id"] for r in responses}
    assert len(ids) == 100
    rows = runtime.store.recent_requests(500)
    assert sorted(r["prompt_id"] for r in rows) == sorted(ids)
    lines = (tmp_path / "many" / "logs" / "prompts.jsonl").read_text().splitlines()
    logged = [json.loads(line)["prompt_id"] for line in lines]
    assert sorted(logged) == sorted(ids)
    assert server.accepted >= 50  # really concurrent connections
    await runtime.aclose()


async def test_shutdown_runs_lifespan_and_closes_the_store(
    make_runtime: Callable[..., Runtime], upstream: FakeUpstream
) -> None:
    runtime = make_runtime()
    app = create_app(runtime, token="", owns_runtime=True)
    upstream.add_fault(Fault(kind="slow_first_token", delay_s=0.5, times=1))
    async with serving(app) as server:
        client = httpx.AsyncClient(base_url=server.url, timeout=20)
        pending = asyncio.create_task(client.post(f"/chat?model={GROQ}", json={"prompt": "slow"}))
        await until(lambda: upstream.requests, "the chat to reach the upstream")
        await server.shutdown()
        response = await pending
        await client.aclose()
    assert response.status_code == 200
    with pytest.raises(StorageError):
        runtime.store.stats()


# ---- the stock openai client ----------------------------------------------------------------


async def test_openai_client_whole_and_streamed(make_runtime: Callable[..., Runtime]) -> None:
    token = "tok-for-openai-client"
    app = create_app(make_runtime(), token=token)
    async with serving(app) as server:
        client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key=token, max_retries=0)
        try:
            listed = await client.models.list()
            assert GROQ in [m.id for m in listed.data]
            whole = await client.chat.completions.create(
                model=GROQ, messages=[{"role": "user", "content": "whole please"}]
            )
            assert "received: whole please" in whole.choices[0].message.content
            assert whole.model == GROQ and whole.usage.total_tokens > 0
            assert whole.model_extra["x_llmrouter"]["requested_model"] == GROQ
            stream = await client.chat.completions.create(
                model=GROQ,
                messages=[{"role": "user", "content": "stream please"}],
                stream=True,
                stream_options={"include_usage": True},
            )
            parts, finish, usage = [], None, None
            async for chunk in stream:
                if chunk.choices:
                    parts.append(chunk.choices[0].delta.content or "")
                    finish = chunk.choices[0].finish_reason or finish
                usage = chunk.usage or usage
            assert "received: stream please" in "".join(parts)
            assert finish == "stop" and usage.total_tokens > 0
            bad = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0)
            with pytest.raises(openai.AuthenticationError):
                await bad.models.list()
            await bad.close()
        finally:
            await client.close()


async def test_openai_client_sees_a_mid_stream_failure_as_an_error(
    make_runtime: Callable[..., Runtime], upstream: FakeUpstream
) -> None:
    app = create_app(make_runtime(), token="")
    upstream.add_fault(Fault(kind="cut", after_chunks=2, times=None))
    async with serving(app) as server:
        client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0)
        try:
            stream = await client.chat.completions.create(
                model=GROQ, messages=[{"role": "user", "content": "cut"}], stream=True
            )
            got = []
            with pytest.raises(openai.APIError):
                async for chunk in stream:
                    got.append(chunk)
            assert got  # some text arrived before the failure
        finally:
            await client.close()
