"""HTTP framing and connections of the embedded server (issue 10), over real sockets.

Ambiguous request framing is refused, refused uploads still reach their status in every
common client, errors under /v1 have OpenAI's shape (also the ones the HTTP layer answers
itself), idle connections outlive client pools, a client leaving a whole-reply request
cancels it, and protocol errors read as plain words.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from server_helpers import ServerProcess, clean_env, serving
from waiting import HANG_S, until

from llmrouter_tui.cli import main_parser
from llmrouter_tui.core.runtime import Runtime
from llmrouter_tui.server.app import create_app
from llmrouter_tui.server.http import HttpServer, ServerConfig
from llmrouter_tui.server.types import Receive, Scope, Send
from llmrouter_tui.testing.fake_upstream import FakeUpstream, Fault

GROQ = "openai/gpt-oss-20b"
HOST = b"Host: 127.0.0.1\r\n"
JSON_TYPE = b"Content-Type: application/json\r\n"
MIB = 1 << 20
SAFETY_TIMEOUT_S = 20.0  # only ever reached when the server misbehaves


# ---- raw HTTP helpers ------------------------------------------------------------------------


async def send_until_close(port: int, data: bytes) -> bytes:
    """Send `data` on a fresh connection and return everything the server sends until it
    closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(SAFETY_TIMEOUT_S):
            return await reader.read(-1)
    finally:
        writer.close()


def split_responses(raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """(status, headers, body) of each response in `raw` (bodies framed by Content-Length)."""
    found: list[tuple[int, dict[str, str], bytes]] = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        found.append((int(lines[0].split(" ")[1]), headers, rest[:length]))
        raw = rest[length:]
    return found


def only_response(raw: bytes) -> tuple[int, dict[str, str], Any]:
    """The single response in `raw`, its body decoded as JSON."""
    responses = split_responses(raw)
    assert len(responses) == 1, responses
    status, headers, body = responses[0]
    return status, headers, json.loads(body)


def assert_openai_error(body: Any, error_type: str) -> None:
    """OpenAI's error shape carrying the same message as `detail`."""
    error = body["error"]
    assert error["message"] == body["detail"] and error["message"]
    assert error["type"] == error_type
    assert "code" in error and (error["code"] is None or isinstance(error["code"], str))


class PathsApp:
    """Answers 200 with the body length; remembers every path it was asked for.
    `/v1/boom` raises (a bug in the app)."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        self.paths.append(scope["path"])
        if scope["path"] == "/v1/boom":
            raise RuntimeError("a bug")
        size = 0
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"%d" % size})


@pytest.fixture
async def router_server(make_runtime: Callable[..., Runtime]) -> AsyncIterator[HttpServer]:
    """The router app on the embedded server, no token."""
    async with serving(create_app(make_runtime(), token="")) as server:
        yield server


# ---- 1. Content-Length together with Transfer-Encoding ---------------------------------------


async def test_both_content_length_and_transfer_encoding_get_400_and_a_close() -> None:
    app = PathsApp()
    async with serving(app) as server:
        smuggling = (
            b"POST /upload HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        )
        pipelined = b"GET /second HTTP/1.1\r\n" + HOST + b"\r\n"
        raw = await send_until_close(server.port, smuggling + pipelined)
        log = server.log_text()
    status, headers, body = only_response(raw)  # one 400, then EOF: the second is not served
    assert status == 400 and headers["connection"] == "close"
    assert "Content-Length" in body["detail"] and "Transfer-Encoding" in body["detail"]
    assert app.paths == []
    assert '"POST /upload" 400' in log  # refused before the app, but h11 had parsed it


# ---- 2. oversized bodies: every client reads the 413 -----------------------------------------


def _urllib_post(url: str, size: int) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=b"x" * size, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=SAFETY_TIMEOUT_S) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize("size", [2 * MIB, 8 * MIB])
async def test_urllib_reads_the_413_of_an_oversized_body(router_server, size: int) -> None:
    status, body = await asyncio.to_thread(_urllib_post, f"{router_server.url}/chat", size)
    assert status == 413
    assert f"{size} bytes" in body["detail"] and "limit is 1048576" in body["detail"]


async def _chunks(total: int, piece: int = 64 * 1024) -> AsyncIterator[bytes]:
    for _ in range(total // piece):
        yield b"x" * piece


async def test_httpx_reads_the_413_of_oversized_bodies_with_and_without_length(
    router_server,
) -> None:
    async with httpx.AsyncClient(base_url=router_server.url, timeout=SAFETY_TIMEOUT_S) as client:
        announced = await client.post(
            "/chat", content=b"x" * (8 * MIB), headers={"Content-Type": "application/json"}
        )
        chunked = await client.post(
            "/chat", content=_chunks(16 * MIB), headers={"Content-Type": "application/json"}
        )
        assert (await client.get("/health")).status_code == 200  # still serving
    assert announced.status_code == 413 and "8388608 bytes" in announced.json()["detail"]
    assert chunked.status_code == 413 and "limit is 1048576" in chunked.json()["detail"]


async def test_an_answer_given_before_a_big_body_is_read_still_reaches_the_client(
    make_runtime: Callable[..., Runtime],
) -> None:
    """The app refuses (401) without reading a chunked body over the limit: the server drops
    the rest of the upload instead of resetting the connection under the client."""
    async with (
        serving(create_app(make_runtime(), token="right-token")) as server,
        httpx.AsyncClient(base_url=server.url, timeout=SAFETY_TIMEOUT_S) as client,
    ):
        response = await client.post(
            "/chat",
            content=_chunks(8 * MIB),
            headers={"Authorization": "Bearer wrong", "Content-Type": "application/json"},
        )
    assert response.status_code == 401


# ---- 3. OpenAI's error shape for every error under /v1 ---------------------------------------


async def test_the_openai_client_shows_the_server_message_for_413_404_and_401(
    make_runtime: Callable[..., Runtime],
) -> None:
    token = "tok-framing-openai"
    async with serving(create_app(make_runtime(), token=token)) as server:
        client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key=token, max_retries=0)
        wrong = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0)
        try:
            with pytest.raises(openai.APIStatusError) as too_large:
                await client.chat.completions.create(
                    model=GROQ, messages=[{"role": "user", "content": "x" * (2 * MIB)}]
                )
            with pytest.raises(openai.NotFoundError) as not_found:
                await client.models.retrieve("no-such-model")
            with pytest.raises(openai.AuthenticationError) as unauthorized:
                await wrong.models.list()
        finally:
            await client.close()
            await wrong.close()
    for caught, status, needle in (
        (too_large, 413, "request body too large"),
        (not_found, 404, "model 'no-such-model' does not exist"),
        (unauthorized, 401, "token"),
    ):
        exc = caught.value
        assert exc.status_code == status
        assert isinstance(exc.body, dict) and needle in exc.body["message"], exc.body
        assert needle in exc.message
    assert too_large.value.type == "invalid_request_error"
    assert unauthorized.value.type == "authentication_error"


HTTP_LAYER_ERRORS = {
    "400_malformed_head": (
        b"GET /v1/models HTTP/1.1\r\n" + HOST + b"Bad Header: x\r\n\r\n",
        400,
        "invalid_request_error",
    ),
    "400_both_lengths": (
        b"POST /v1/chat/completions HTTP/1.1\r\n" + HOST + JSON_TYPE + b"Content-Length: 2\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        "invalid_request_error",
    ),
    "400_malformed_chunk": (
        b"POST /v1/chat/completions HTTP/1.1\r\n" + HOST + JSON_TYPE
        + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
        400,
        "invalid_request_error",
    ),
    "413_announced": (
        b"POST /v1/chat/completions HTTP/1.1\r\n" + HOST + JSON_TYPE
        + b"Content-Length: 5000000\r\n\r\n",
        413,
        "invalid_request_error",
    ),
    "413_chunked": (
        b"POST /v1/chat/completions HTTP/1.1\r\n" + HOST + JSON_TYPE
        + b"Transfer-Encoding: chunked\r\n\r\n"
        + b"".join(b"10000\r\n" + b"x" * 0x10000 + b"\r\n" for _ in range(20)),
        413,
        "invalid_request_error",
    ),
    "431_whole_head": (
        b"GET /v1/models HTTP/1.1\r\n" + HOST + b"X-Big: " + b"a" * 20000 + b"\r\n\r\n",
        431,
        "invalid_request_error",
    ),
    "431_endless_head": (
        b"GET /v1/models HTTP/1.1\r\n" + HOST + b"X-Big: " + b"a" * 100000,
        431,
        "invalid_request_error",
    ),
    "500_app_bug": (b"GET /v1/boom HTTP/1.1\r\n" + HOST + b"\r\n", 500, "server_error"),
}  # fmt: skip


@pytest.mark.parametrize("case", HTTP_LAYER_ERRORS, ids=list(HTTP_LAYER_ERRORS))
async def test_errors_the_http_layer_answers_under_v1_have_openai_shape(case: str) -> None:
    request, want_status, want_type = HTTP_LAYER_ERRORS[case]
    async with serving(PathsApp()) as server:
        raw = await send_until_close(server.port, request)
    status, headers, body = only_response(raw)
    assert status == want_status and headers["connection"] == "close"
    assert_openai_error(body, want_type)
    assert "bytearray" not in body["detail"] and "b'" not in body["detail"]


@pytest.mark.parametrize(
    ("method", "content", "content_type", "status"),
    [
        ("POST", b"{not json", "application/json", 400),
        ("POST", b"{}", "text/plain", 415),
        ("GET", b"", None, 405),
    ],
)
async def test_app_errors_under_v1_have_openai_shape(
    router_server, method: str, content: bytes, content_type: str | None, status: int
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    async with httpx.AsyncClient(base_url=router_server.url, timeout=SAFETY_TIMEOUT_S) as client:
        response = await client.request(
            method, "/v1/chat/completions", content=content, headers=headers
        )
    assert response.status_code == status
    assert_openai_error(response.json(), "invalid_request_error")


async def test_errors_outside_v1_keep_the_plain_shape() -> None:
    async with serving(PathsApp()) as server:
        raw = await send_until_close(
            server.port, b"POST /upload HTTP/1.1\r\n" + HOST + b"Content-Length: 5000000\r\n\r\n"
        )
    status, _, body = only_response(raw)
    assert status == 413 and set(body) == {"detail"}


async def test_a_slow_head_and_a_full_server_under_v1_have_openai_shape() -> None:
    async with serving(PathsApp(), request_timeout_s=0.2) as server:
        slow = await send_until_close(server.port, b"GET /v1/models HTTP/1.1\r\n" + HOST)
    # A server of its own, whose head deadline cannot cut the held connection off while
    # the test, on a loaded machine, gets to its next one.
    async with serving(PathsApp(), request_timeout_s=HANG_S, max_connections=1) as server:
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            # Held before its first request: an idle keep-alive connection would be closed to
            # make room instead.
            await until(lambda: server.open_connections == 1, "the held connection's place")
            full = await send_until_close(
                server.port, b"GET /v1/models HTTP/1.1\r\n" + HOST + b"\r\n"
            )
        finally:
            writer.close()
    status, _, body = only_response(slow)
    assert status == 408
    assert_openai_error(body, "timeout")
    status, _, body = only_response(full)
    assert status == 503
    assert_openai_error(body, "service_unavailable")


# ---- 4. keep-alive ---------------------------------------------------------------------------


def test_idle_connections_outlive_common_client_pools() -> None:
    """A client must drop a pooled connection before the server does; otherwise a request
    sent on it just as the server closes it is lost (httpx keeps them 5 s, as the server
    used to: the two raced)."""
    client_expiry = httpx.Limits().keepalive_expiry or 0.0
    assert ServerConfig().keepalive_timeout_s > client_expiry
    assert main_parser().parse_args(["--serve"]).keep_alive == ServerConfig().keepalive_timeout_s


@pytest.mark.slow
async def test_keep_alive_option_sets_the_idle_timeout(tmp_path: Path) -> None:
    server = ServerProcess(
        [
            *("--serve", "--demo", "--port", "0", "--quiet"),
            *("--data-dir", str(tmp_path / "data"), "--keep-alive", "0.3"),
        ],
        clean_env(),
        cwd=tmp_path,
    )
    try:
        port = int(server.wait_for_url().rsplit(":", 1)[1])
        raw = await send_until_close(port, b"GET /health HTTP/1.1\r\n" + HOST + b"\r\n")
    finally:
        code = server.stop()
    # Answered, then closed by the server once idle (send_until_close reads to EOF).
    ((status, headers, _),) = split_responses(raw)
    assert status == 200 and "close" not in headers.get("connection", "")
    assert code == 0


@pytest.mark.parametrize("value", ["0", "nan"])
def test_keep_alive_must_be_a_positive_number_of_seconds(tmp_path: Path, value: str) -> None:
    server = ServerProcess(
        ["--serve", "--demo", "--port", "0", "--data-dir", str(tmp_path), f"--keep-alive={value}"],
        clean_env(),
        cwd=tmp_path,
    )
    code = server.proc.wait(SAFETY_TIMEOUT_S)
    server.kill()
    assert code == 2
    assert "--keep-alive must be a number of seconds above 0" in server.stderr
    assert "Traceback" not in server.stderr


# ---- 5. a client leaving a whole-reply request cancels it ------------------------------------


def _recorded_statuses(db: Path) -> list[str]:
    if not db.exists():
        return []
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return [row[0] for row in conn.execute("SELECT status FROM requests")]


async def _poll(check: Callable[[], Any], what: str) -> Any:
    """Wait for `check()` to return something truthy (no fixed sleep as synchronisation)."""
    return await until(check, what, timeout=SAFETY_TIMEOUT_S)


SURFACES = {
    "chat": (b"/chat", {"model": GROQ, "prompt": "leaving before the reply"}),
    "v1": (
        b"/v1/chat/completions",
        {"model": GROQ, "messages": [{"role": "user", "content": "leaving before the reply"}]},
    ),
}


@pytest.mark.parametrize("surface", SURFACES)
async def test_a_client_leaving_a_whole_reply_request_cancels_it(
    make_runtime: Callable[..., Runtime], upstream: FakeUpstream, tmp_path: Path, surface: str
) -> None:
    data = tmp_path / "cancel"
    # Generous router limits: only the client leaving can end this request early.
    runtime = make_runtime(
        data_dir=data, first_token_timeout_s=60, attempt_timeout_s=60, total_timeout_s=60
    )
    upstream.add_fault(Fault(kind="silent", times=1))  # the provider never answers
    path, payload = SURFACES[surface]
    body = json.dumps(payload).encode()
    request = b"POST %s HTTP/1.1\r\n%s%sContent-Length: %d\r\n\r\n%s" % (
        path,
        HOST,
        JSON_TYPE,
        len(body),
        body,
    )
    async with serving(create_app(runtime, token="")) as server:
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(request)
        await writer.drain()
        await _poll(lambda: upstream.requests_for(GROQ), "the upstream call to start")
        writer.close()
        statuses = await _poll(lambda: _recorded_statuses(data / "llmrouter.db"), "a record")
        line = f'"POST {path.decode()}" -'
        await _poll(lambda: line in server.log_text(), "the access-log line")
        log = server.log_text()
    assert statuses == ["cancelled"]
    assert len(upstream.requests_for(GROQ)) == 1  # cancelled, not retried or fallen back
    assert "error" not in log  # the app ending without an answer is not a server error


# ---- 6. protocol errors in plain words; Allow lists HEAD -------------------------------------


async def test_protocol_errors_name_the_problem_without_echoing_the_request() -> None:
    async with serving(PathsApp()) as server:
        header = await send_until_close(
            server.port, b"GET /x HTTP/1.1\r\n" + HOST + b"Authorization : Bearer sk-SECRET\r\n\r\n"
        )
        chunk = await send_until_close(
            server.port,
            b"POST /x HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\nzz-SECRET\r\n",
        )
    status, _, body = only_response(header)
    assert status == 400
    assert body["detail"].startswith("malformed HTTP request: a header line is not 'Name: value'")
    status, _, body = only_response(chunk)
    assert status == 400
    assert body["detail"].startswith("malformed request body: a chunk-size line")
    for raw in (header, chunk):
        assert b"bytearray" not in raw and b"SECRET" not in raw


PROTOCOL_ERRORS = {
    "no_host": (b"GET /x HTTP/1.1\r\n\r\n", 400, "the Host header is missing"),
    "bad_length": (
        b"POST /x HTTP/1.1\r\n" + HOST + b"Content-Length: 1x\r\n\r\n",
        400,
        "Content-Length is not a whole number",
    ),
    "gzip_coding": (
        b"POST /x HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: gzip\r\n\r\n",
        501,
        "only Transfer-Encoding: chunked is supported",
    ),
    "bad_request_line": (
        b"GET /a b c HTTP/1.1\r\n" + HOST + b"\r\n",
        400,
        "the request line is not 'METHOD /path HTTP/1.1'",
    ),
}


@pytest.mark.parametrize("case", PROTOCOL_ERRORS, ids=list(PROTOCOL_ERRORS))
async def test_each_protocol_error_is_named(case: str) -> None:
    head, status, problem = PROTOCOL_ERRORS[case]
    async with serving(PathsApp()) as server:
        raw = await send_until_close(server.port, head)
    got, _, body = only_response(raw)
    assert got == status and body["detail"].startswith("malformed HTTP request: ")
    assert problem in body["detail"] and "RFC 9112" not in body["detail"]


async def test_allow_lists_head_wherever_get_is_allowed(router_server) -> None:
    async with httpx.AsyncClient(base_url=router_server.url, timeout=SAFETY_TIMEOUT_S) as client:
        health = await client.post("/health", json={})
        chat = await client.get("/chat")
        head = await client.head("/health")
    assert health.status_code == 405 and health.headers["allow"] == "GET, HEAD"
    assert "use GET, HEAD" in health.json()["detail"]
    assert chat.status_code == 405 and chat.headers["allow"] == "POST"
    assert head.status_code == 200
