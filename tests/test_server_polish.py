"""Server polish over real sockets: the start banner names the host names and CORS origins
allowed on purpose, CORS answers let a page read Retry-After and the worker header, the
access log names method and path of requests the HTTP layer refuses itself, and idle
keep-alive connections make room at the connection cap before anyone is refused."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from conftest import fake_settings
from server_helpers import ServerProcess, access_lines, clean_env, serving
from test_server_http import EchoApp, body_of, raw_exchange, read_response, status_of
from waiting import HANG_S, until, wait_until

from llmrouter_tui.core.config import BudgetSettings
from llmrouter_tui.core.runtime import Runtime
from llmrouter_tui.server import workers
from llmrouter_tui.server.app import create_app
from llmrouter_tui.testing.fake_upstream import FakeUpstream

GROQ = "openai/gpt-oss-20b"
PAGE = "http://localhost:5173"
GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"

# ---- the start banner -------------------------------------------------------------------------


def banner(tmp_path: Path, *extra: str, env: dict[str, str] | None = None) -> list[str]:
    """The banner lines of `--serve --demo` with `extra` arguments (up to "press Ctrl-C")."""
    args = ["--serve", "--demo", "--port", "0", "--data-dir", str(tmp_path / "data"), *extra]
    tmp_path.mkdir(exist_ok=True)
    server = ServerProcess(args, env or clean_env(), tmp_path)
    try:
        server.wait_for_url()
        wait_until(lambda: "press Ctrl-C to stop" in server.stderr, "the end of the banner")
        code = server.stop()
    finally:
        server.kill()
    assert code == 0, server.stderr
    lines = server.stderr.splitlines()
    start = next(i for i, line in enumerate(lines) if "serving on" in line)
    end = next(i for i, line in enumerate(lines) if "press Ctrl-C to stop" in line)
    return lines[start : end + 1]


@pytest.mark.slow  # starts `--serve` processes
def test_the_banner_lists_allowed_hosts_and_origins_only_when_set(tmp_path: Path) -> None:
    plain = banner(tmp_path / "plain")
    assert not [line for line in plain if "host names" in line or "CORS" in line], plain

    config = tmp_path / "llmrouter.toml"
    config.write_text(
        '[server]\nallow_hosts = ["cfg.example"]\ncors_origins = ["https://app.example"]\n'
    )
    env = clean_env(LLMROUTER_ALLOW_HOSTS="env.example", LLMROUTER_CONFIG=str(config))
    lines = banner(
        tmp_path / "set",
        "--allow-host", ".lan.example", "--cors-origin", PAGE + "/",
        env=env,
    )  # fmt: skip
    hosts = [line for line in lines if "also answering to host names:" in line]
    origins = [line for line in lines if "CORS:" in line]
    assert len(hosts) == 1 and len(origins) == 1, lines
    for name in ("cfg.example", "env.example", ".lan.example"):
        assert name in hosts[0]
    assert "https://app.example" in origins[0] and PAGE in origins[0]
    assert PAGE + "/" not in origins[0]  # shown normalised, as it is compared


@pytest.mark.slow  # starts a supervisor and two workers
@pytest.mark.skipif(workers.spreads_connections() is not None, reason="needs SO_REUSEPORT")
def test_the_workers_banner_lists_them_too(tmp_path: Path) -> None:
    lines = banner(tmp_path, "--workers", "2", "--allow-host", "*", "--cors-origin", PAGE)
    assert "with 2 workers" in lines[0], lines
    assert [line for line in lines if "also answering to host names: * (any name)" in line]
    assert [line for line in lines if f"CORS: pages at {PAGE} may use" in line]


# ---- CORS: headers a page may read ------------------------------------------------------------


def exposed(response: httpx.Response) -> set[str]:
    raw = response.headers.get("access-control-expose-headers", "")
    return {name.strip().lower() for name in raw.split(",") if name.strip()}


async def test_a_listed_origin_may_read_retry_after_and_the_worker_header(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    settings = fake_settings(upstream.base_url, tmp_path / "data")
    runtime = Runtime(replace(settings, budget=BudgetSettings(daily_usd=1e-9)))
    app = create_app(runtime, token="", owns_runtime=True, cors_origins=[PAGE])
    page = {"origin": PAGE}
    chat = f"/chat?model={GROQ}"
    async with (
        serving(app, worker_header=True) as server,
        httpx.AsyncClient(base_url=server.url, timeout=20) as client,
    ):
        first = await client.post(chat, json={"prompt": "spends the budget"}, headers=page)
        refused = await client.post(chat, json={"prompt": "over budget"}, headers=page)
        plain = await client.get("/health")
    assert first.status_code == 200, first.text
    assert refused.status_code == 429 and "retry-after" in refused.headers, refused.text
    for response in (first, refused):
        assert response.headers["access-control-allow-origin"] == PAGE
        assert "x-llmrouter-worker" in response.headers
        assert {"retry-after", "x-should-retry", "x-llmrouter-worker"} <= exposed(response)
    assert "access-control-expose-headers" not in plain.headers  # no CORS without a page


# ---- the access log of refusals made before the app --------------------------------------------


def logged(server: object) -> list[tuple[str, str, str]]:
    lines = access_lines(server.log_text())  # type: ignore[attr-defined]
    return [(m["method"], m["path"], m["status"]) for m in lines]


REFUSED = [
    (  # both lengths (request smuggling): parsed by h11, refused by the server
        b"POST /echo?q=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n",
        ("POST", "/echo", "400"),
    ),
    (b"GET /bad HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", ("GET", "/bad", "400")),
    (  # the request line itself is garbage: nothing is known
        b"\x01\x02 what\r\nHost: x\r\n\r\n",
        ("-", "-", "400"),
    ),
    (  # headers over the limit, the head never completed
        b"GET /big HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 4096,
        ("GET", "/big", "431"),
    ),
    (  # headers over the limit, the head whole in one read
        b"GET /big2 HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 1500 + b"\r\n\r\n",
        ("GET", "/big2", "431"),
    ),
    (b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 99999\r\n\r\n", ("POST", "/up", "413")),
    (b"GET /slow HTTP/1.1\r\nHost: x\r\n", ("GET", "/slow", "408")),  # the head never ends
]


@pytest.mark.parametrize(("raw", "line"), REFUSED, ids=[line[2] for _, line in REFUSED])
async def test_refusals_before_the_app_log_method_and_path_when_known(
    raw: bytes, line: tuple[str, str, str]
) -> None:
    limits = {"max_header_bytes": 1024, "max_body_bytes": 1000, "request_timeout_s": 0.3}
    async with serving(EchoApp(), **limits) as server:
        answer = await raw_exchange(server.port, raw, until_close=True)
        assert status_of(answer) == int(line[2])
        server.flush_access_log()
        assert logged(server) == [line]


async def test_over_the_cap_the_503_is_logged_with_method_and_path() -> None:
    async with serving(EchoApp(), max_connections=1) as server:
        held = await asyncio.open_connection("127.0.0.1", server.port)  # no request yet
        wait = b"GET /full?x=1 HTTP/1.1\r\nHost: x\r\n\r\n"
        answer = await raw_exchange(server.port, wait, until_close=True)
        assert status_of(answer) == 503
        server.flush_access_log()
        assert logged(server) == [("GET", "/full", "503")]
        held[1].close()


async def test_guard_refusals_are_logged_with_method_and_path(
    make_runtime: Callable[..., Runtime],
) -> None:
    app = create_app(make_runtime(), token="", owns_runtime=True)
    async with serving(app) as server, httpx.AsyncClient(base_url=server.url) as client:
        assert (await client.get("/stats", headers={"host": "evil.example"})).status_code == 421
        assert (await client.post("/rate", content=b"x")).status_code == 415
        evil = {"origin": "http://evil.example"}
        assert (await client.get("/models", headers=evil)).status_code == 403
        server.flush_access_log()
        assert logged(server) == [
            ("GET", "/stats", "421"),
            ("POST", "/rate", "415"),
            ("GET", "/models", "403"),
        ]


# ---- idle keep-alive connections at the cap -----------------------------------------------------


async def answered_on(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], raw: bytes) -> int:
    reader, writer = conn
    writer.write(raw)
    await writer.drain()
    return status_of(await read_response(reader))


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    async with asyncio.timeout(HANG_S):
        return await reader.read() == b""


async def test_at_the_cap_the_longest_idle_keep_alive_connection_makes_room() -> None:
    app = EchoApp()
    async with serving(app, max_connections=3, keepalive_timeout_s=HANG_S) as server:
        oldest = await asyncio.open_connection("127.0.0.1", server.port)
        newer = await asyncio.open_connection("127.0.0.1", server.port)
        assert await answered_on(oldest, GET) == 200
        assert await answered_on(newer, GET) == 200  # both now idle between requests
        busy = await asyncio.open_connection("127.0.0.1", server.port)
        busy[1].write(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")  # in flight until released
        await busy[1].drain()
        await until(lambda: len(app.scopes) == 3, "the app to hold the /wait request")

        # A fourth client is admitted: the connection idle longest is closed for it.
        assert status_of(await raw_exchange(server.port, GET)) == 200
        assert await closed_by_server(oldest[0])
        assert server.evicted == 1
        assert await answered_on(newer, GET) == 200  # the other idle one still serves

        # Nothing idle (two in flight, one before its first request): 503, nobody closed.
        await until(lambda: server.open_connections == 2, "the fourth client's slot to free")
        newer[1].write(b"GET /wait HTTP/1.1\r\nHost: x\r\n\r\n")
        await newer[1].drain()
        await until(lambda: len(app.scopes) == 6, "the app to hold a second /wait request")
        fresh = await asyncio.open_connection("127.0.0.1", server.port)
        await until(lambda: server.open_connections == 3, "the server to accept `fresh`")
        refused = await raw_exchange(server.port, GET, until_close=True)
        assert status_of(refused) == 503 and "too many" in body_of(refused)["detail"]
        assert server.evicted == 1

        app.release.set()
        assert status_of(await read_response(busy[0])) == 200
        assert status_of(await read_response(newer[0])) == 200
        assert await answered_on(fresh, GET) == 200
        for _, writer in (oldest, newer, busy, fresh):
            writer.close()
