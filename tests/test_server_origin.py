"""Issue 10: a web page the user visits must not be able to drive the loopback server.

Every vector a page has, sent over a real socket to the real app on the embedded server (and
once each under uvicorn and in-process): bodies a page may send without a CORS preflight
(no Content-Type, text/plain, forms, multipart, sendBeacon), DNS rebinding (a foreign Host),
a foreign Origin; and the deliberate ways to relax each rule (--allow-host, --cors-origin,
[server] in llmrouter.toml, the environment under uvicorn).
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import fake_settings
from server_helpers import ServerProcess, check_response, clean_env, serving

from llmrouter_tui.core.config import ServerSettings, load_settings
from llmrouter_tui.core.errors import ConfigError
from llmrouter_tui.core.runtime import Runtime
from llmrouter_tui.server.app import create_app
from llmrouter_tui.server.http import HttpServer
from llmrouter_tui.testing.fake_upstream import FakeUpstream

GROQ = "openai/gpt-oss-20b"
EVIL = "http://evil.example"
PAGE = "http://localhost:5173"  # a local web app the user deliberately lets in
JSON_TYPE = {"content-type": "application/json"}
CHAT_BODY = b'{"prompt": "from a web page"}'


@dataclass
class Served:
    server: HttpServer
    client: httpx.AsyncClient
    runtime: Runtime
    upstream: FakeUpstream

    @property
    def host(self) -> str:
        """The Host a browser sends for this server's own URL."""
        return f"127.0.0.1:{self.server.port}"

    async def chat(self, **headers: str) -> httpx.Response:
        return await self.client.post(
            f"/chat?model={GROQ}", content=CHAT_BODY, headers=_headers(headers)
        )

    async def prompt_id(self) -> str:
        """A recorded reply to rate (sent the way the README does)."""
        response = await self.client.post(
            f"/chat?model={GROQ}", json={"prompt": "to rate"}, headers={"host": self.host}
        )
        assert response.status_code == 200, response.text
        self.upstream.clear()
        return str(response.json()["prompt_id"])


def _headers(given: dict[str, str]) -> dict[str, str]:
    """Keyword arguments as HTTP headers (content_type -> content-type)."""
    return {name.replace("_", "-"): value for name, value in given.items()}


Start = Callable[..., Awaitable[Served]]


@pytest.fixture
async def start(upstream: FakeUpstream, tmp_path: Path) -> AsyncIterator[Start]:
    """Serve the router app on 127.0.0.1:<port>; keyword arguments go to create_app (and
    `server` to the config's [server] table)."""
    async with AsyncExitStack() as stack:
        count = 0

        async def run(server: ServerSettings | None = None, **app_kw: Any) -> Served:
            nonlocal count
            count += 1
            settings = fake_settings(upstream.base_url, tmp_path / f"data{count}")
            runtime = Runtime(replace(settings, server=server or ServerSettings()))
            app = create_app(runtime, token=app_kw.pop("token", ""), owns_runtime=True, **app_kw)
            http = await stack.enter_async_context(serving(app))
            client = httpx.AsyncClient(base_url=http.url, timeout=20)
            await stack.enter_async_context(client)
            return Served(http, client, runtime, upstream)

        yield run


def assert_refused(response: httpx.Response, status: int, *needles: str) -> str:
    """The refusal: `status`, a documented error body naming each needle, no CORS headers."""
    assert response.status_code == status, response.text
    # /openapi.json documents no OPTIONS (CORS preflights are not part of the API).
    preflight = response.request.method == "OPTIONS"
    detail = response.json()["detail"] if preflight else check_response(response)["detail"]
    for needle in needles:
        assert needle in detail, detail
    assert "Traceback" not in response.text
    assert not [h for h in response.headers if h.startswith("access-control-")]
    return str(detail)


# ---- bodies a page may send without a preflight -------------------------------------------------

# (extra headers, what the 415 detail must quote). Each is a "simple" request in the Fetch
# standard: a page sends it cross-site without asking the server first.
SIMPLE_BODIES = [
    ({}, "no Content-Type"),  # fetch(url, {method: "POST", body: blob_without_type})
    ({"content-type": "text/plain"}, "'text/plain'"),
    ({"content-type": "text/plain;charset=UTF-8"}, "'text/plain;charset=UTF-8'"),  # sendBeacon
    ({"content-type": "application/x-www-form-urlencoded"}, "x-www-form-urlencoded"),  # <form>
    ({"content-type": "multipart/form-data; boundary=x"}, "multipart/form-data"),  # FormData
]
SIMPLE_IDS = ["none", "text", "beacon", "form", "multipart"]


@pytest.mark.parametrize(("headers", "quoted"), SIMPLE_BODIES, ids=SIMPLE_IDS)
@pytest.mark.parametrize("path", [f"/chat?model={GROQ}", "/v1/chat/completions"])
async def test_a_json_body_without_the_json_content_type_is_415(
    start: Start, path: str, headers: dict[str, str], quoted: str
) -> None:
    served = await start()
    body = (
        CHAT_BODY if path.startswith("/chat") else b'{"messages":[{"role":"user","content":"x"}]}'
    )
    response = await served.client.post(path, content=body, headers=headers)
    detail = assert_refused(response, 415, quoted, "'Content-Type: application/json'")
    assert "must be JSON" in detail or "no Content-Type" in detail
    assert served.upstream.requests == []  # no provider was called with the user's key


@pytest.mark.parametrize(("headers", "quoted"), SIMPLE_BODIES, ids=SIMPLE_IDS)
async def test_rate_by_query_with_an_empty_simple_body_is_415(
    start: Start, headers: dict[str, str], quoted: str
) -> None:
    # <form method=post action="http://127.0.0.1:8000/rate?prompt_id=…&score=1"> with no
    # fields: the old server recorded the rating.
    served = await start()
    prompt_id = await served.prompt_id()
    response = await served.client.post(f"/rate?prompt_id={prompt_id}&score=1", headers=headers)
    assert_refused(response, 415, quoted, "'Content-Type: application/json'")
    assert served.runtime.store.get_rating(prompt_id) is None


@pytest.mark.parametrize(
    "ctype", ["application/json; charset=latin-1", "application/json;charset=utf-16"]
)
async def test_json_in_another_charset_is_415(start: Start, ctype: str) -> None:
    served = await start()
    response = await served.chat(content_type=ctype)
    assert_refused(response, 415, repr(ctype), "UTF-8")
    assert served.upstream.requests == []


@pytest.mark.parametrize(
    "ctype",
    ["application/json", "application/json; charset=utf-8", 'Application/JSON;Charset="UTF-8"'],
)
async def test_json_content_types_are_accepted(start: Start, ctype: str) -> None:
    served = await start()
    response = await served.chat(content_type=ctype)
    assert response.status_code == 200, response.text
    assert not [h for h in response.headers if h.startswith("access-control-")]  # no CORS


async def test_query_form_rating_with_the_json_content_type_still_works(start: Start) -> None:
    served = await start()
    prompt_id = await served.prompt_id()
    response = await served.client.post(f"/rate?prompt_id={prompt_id}&score=4", headers=JSON_TYPE)
    assert check_response(response)["rating"] == 4


async def test_wrong_method_and_unknown_path_keep_their_own_answers(start: Start) -> None:
    # The content type is checked once a POST endpoint is found, so 405/404 still say what
    # is wrong (schemathesis sends these without a body).
    served = await start()
    wrong = await served.client.post("/stats", content=b"x", headers={"content-type": "text/plain"})
    assert wrong.status_code == 405 and "GET" in wrong.headers["allow"]
    assert (await served.client.post("/nope")).status_code == 404
    assert (await served.client.options("/chat")).status_code == 405  # not a CORS preflight


# ---- Host: DNS rebinding ------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "localhost.evil.example"])
async def test_a_foreign_host_is_421_on_every_endpoint(start: Start, host: str) -> None:
    # evil.example first resolves to the attacker, then (rebound) to 127.0.0.1: the page is
    # then "same-origin" with us, but its requests carry its own name in Host.
    served = await start()
    host = host.format(port=served.server.port)
    name = host.split(":")[0]
    calls = [
        served.client.get("/stats", headers={"host": host}),
        served.client.get("/health", headers={"host": host}),
        served.client.get("/v1/models", headers={"host": host}),
        served.client.post(f"/chat?model={GROQ}", json={"prompt": "x"}, headers={"host": host}),
        served.client.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "x"}]},
            headers={"host": host},
        ),
    ]
    for response in await asyncio.gather(*calls):
        assert_refused(response, 421, repr(name), f"--allow-host {name}", "DNS rebinding")
    assert served.upstream.requests == []


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.0.0.1:{port}", "localhost", "localhost:{port}", "LocalHost.:{port}",
     "[::1]", "[::1]:{port}", "[0:0:0:0:0:0:0:1]:{port}", "127.0.0.2:{port}",
     "localhost:9000"],  # e.g. ssh -L 9000:localhost:8000: the port is not checked
)  # fmt: skip
async def test_this_machines_names_are_accepted_with_or_without_a_port(
    start: Start, host: str
) -> None:
    served = await start()
    response = await served.client.get(
        "/stats", headers={"host": host.format(port=served.server.port)}
    )
    assert response.status_code == 200, response.text


async def test_allow_host_admits_names_and_subdomains(start: Start) -> None:
    served = await start(allow_hosts=["llm.example.com", ".corp.example", "10.1.2.3"])
    for host in ("llm.example.com", "LLM.example.com:8443", "corp.example", "a.b.corp.example",
                 "10.1.2.3:8000"):  # fmt: skip
        response = await served.client.get("/stats", headers={"host": host})
        assert response.status_code == 200, (host, response.text)
    for host in ("example.com", "llm.example.com.evil.example", "xcorp.example", "10.1.2.4"):
        assert (await served.client.get("/stats", headers={"host": host})).status_code == 421


async def test_allow_host_star_admits_any_name(start: Start) -> None:
    served = await start(allow_hosts=["*"])
    response = await served.client.get("/stats", headers={"host": "anything.example"})
    assert response.status_code == 200


async def test_the_host_rule_holds_with_a_token_too(start: Start) -> None:
    # A token already keeps pages out of the API, but not out of /health; one rule for all.
    served = await start(token="tok-123")
    auth = {"authorization": "Bearer tok-123"}
    refused = await served.client.get("/stats", headers={**auth, "host": "evil.example"})
    assert_refused(refused, 421, "--allow-host")
    assert (await served.client.get("/health", headers={"host": "evil.example"})).status_code == 421
    assert (await served.client.get("/stats", headers=auth)).status_code == 200


@pytest.mark.parametrize("host", [b"exa mple", b"[::1", b"a:b:c", b"localhost:99999"])
async def test_a_malformed_host_is_400(start: Start, host: bytes) -> None:
    served = await start()
    raw = await _raw(served.server.port, b"GET /stats HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 400 ")
    assert b"malformed Host header" in raw and b"127.0.0.1:8000" in raw


async def test_a_request_without_host_is_not_a_browser_and_passes(start: Start) -> None:
    served = await start()
    raw = await _raw(served.server.port, b"GET /health HTTP/1.0\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200 ")


async def _raw(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        return head + await asyncio.wait_for(reader.readexactly(length), 10)
    finally:
        writer.close()


# ---- Origin and CORS ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin", [EVIL, "https://evil.example", "null", "http://localhost:5173", "http://127.0.0.1"]
)
async def test_a_page_of_another_origin_is_403(start: Start, origin: str) -> None:
    # The right Host (the page talks to 127.0.0.1:PORT directly), a foreign Origin.
    served = await start()
    host = {"host": served.host, "origin": origin}
    calls = [
        served.client.get("/stats", headers=host),
        served.client.get("/health", headers=host),
        served.client.post(f"/chat?model={GROQ}", json={"prompt": "x"}, headers=host),
        served.chat(**host, content_type="text/plain;charset=UTF-8"),  # sendBeacon
    ]
    for response in await asyncio.gather(*calls):
        detail = assert_refused(response, 403, repr(origin), "--cors-origin")
        assert "Origin header" in detail
    assert served.upstream.requests == []


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
async def test_a_request_a_page_of_another_site_makes_without_origin_is_403(
    start: Start, site: str
) -> None:
    """<img src>, <script src> and links send no Origin but are marked by the browser: they
    must not make provider calls with the keys (/models?live=true) or read anything."""
    served = await start()
    marked = {"host": served.host, "sec-fetch-site": site, "sec-fetch-mode": "no-cors"}
    for path in ("/models?live=true", "/stats"):
        response = await served.client.get(path, headers=marked)
        assert_refused(response, 403, f"Sec-Fetch-Site: {site}", "--cors-origin")
    assert served.upstream.requests == []
    typed = {"host": served.host, "sec-fetch-site": "none"}  # the user typed the URL
    assert (await served.client.get("/stats", headers=typed)).status_code == 200


async def test_a_cross_site_form_rating_is_403(start: Start) -> None:
    served = await start()
    prompt_id = await served.prompt_id()
    form = {"host": served.host, "origin": EVIL,
            "content-type": "application/x-www-form-urlencoded"}  # fmt: skip
    response = await served.client.post(f"/rate?prompt_id={prompt_id}&score=1", headers=form)
    assert_refused(response, 403, repr(EVIL))
    assert served.runtime.store.get_rating(prompt_id) is None


@pytest.mark.parametrize(
    ("host", "origin"),
    [("127.0.0.1:{port}", "http://127.0.0.1:{port}"),
     ("localhost:{port}", "http://localhost:{port}"),
     ("[::1]:{port}", "http://[::1]:{port}"),
     ("llm.example.com", "https://llm.example.com")],
)  # fmt: skip
async def test_the_servers_own_origin_is_accepted_without_cors_headers(
    start: Start, host: str, origin: str
) -> None:
    served = await start(allow_hosts=["llm.example.com"])
    port = served.server.port
    headers = {"host": host.format(port=port), "origin": origin.format(port=port)}
    response = await served.client.post(
        f"/chat?model={GROQ}", json={"prompt": "same"}, headers=headers
    )
    assert response.status_code == 200, response.text
    assert not [h for h in response.headers if h.startswith("access-control-")]
    assert "vary" not in response.headers


async def test_a_listed_origin_gets_a_preflight_and_cors_headers(start: Start) -> None:
    served = await start(cors_origins=[PAGE + "/"])  # a trailing slash as users paste it
    page = {"host": served.host, "origin": PAGE}
    preflight = await served.client.options(
        "/v1/chat/completions",
        headers={
            **page,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization,content-type,x-stainless-os",
            "access-control-request-private-network": "true",
        },
    )
    assert preflight.status_code == 204 and preflight.content == b""
    assert preflight.headers["access-control-allow-origin"] == PAGE
    assert "POST" in preflight.headers["access-control-allow-methods"]
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert {"authorization", "content-type", "x-stainless-os"} <= set(allowed.split(", "))
    assert preflight.headers["access-control-allow-private-network"] == "true"
    assert "Origin" in preflight.headers["vary"]

    chat = await served.client.post(f"/chat?model={GROQ}", json={"prompt": "cors"}, headers=page)
    assert chat.status_code == 200
    assert chat.headers["access-control-allow-origin"] == PAGE and chat.headers["vary"] == "Origin"
    streamed = await served.client.post(
        f"/chat?model={GROQ}&stream=true", json={"prompt": "cors sse"}, headers=page
    )
    assert streamed.headers["access-control-allow-origin"] == PAGE
    assert '"type":"done"' in streamed.text
    # Its errors are readable by the page too.
    wrong = await served.chat(**page, content_type="text/plain")
    assert wrong.status_code == 415 and wrong.headers["access-control-allow-origin"] == PAGE

    # Other origins stay out, and answers without an Origin tell caches they depend on it.
    assert_refused(await served.client.get("/stats", headers={**page, "origin": EVIL}), 403)
    plain = await served.client.get("/stats")
    assert "access-control-allow-origin" not in plain.headers and plain.headers["vary"] == "Origin"


async def test_a_preflight_needs_no_token_but_the_request_does(start: Start) -> None:
    served = await start(token="tok-123", cors_origins=[PAGE])
    page = {"host": served.host, "origin": PAGE}
    ask = {**page, "access-control-request-method": "POST"}
    assert (await served.client.options("/chat", headers=ask)).status_code == 204
    denied = await served.client.post("/chat", json={"prompt": "x"}, headers=page)
    assert denied.status_code == 401 and denied.headers["access-control-allow-origin"] == PAGE
    evil = await served.client.options("/chat", headers={**ask, "origin": EVIL})
    assert_refused(evil, 403, "--cors-origin")


# ---- where the rules are relaxed ----------------------------------------------------------------


async def test_the_config_server_table_relaxes_both_rules(start: Start) -> None:
    served = await start(server=ServerSettings(allow_hosts=("cfg.example",), cors_origins=(PAGE,)))
    assert (await served.client.get("/stats", headers={"host": "cfg.example"})).status_code == 200
    page = await served.client.get("/stats", headers={"origin": PAGE})
    assert page.headers["access-control-allow-origin"] == PAGE


async def test_the_environment_relaxes_both_rules_in_process(
    make_runtime: Callable[..., Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The way uvicorn deployments configure it; the ASGI scope's `server` is the bind address.
    monkeypatch.setenv("LLMROUTER_ALLOW_HOSTS", " env.example , .env2.example,")
    monkeypatch.setenv("LLMROUTER_CORS_ORIGINS", PAGE)
    app = create_app(make_runtime(), token="")
    transport = httpx.ASGITransport(app=app)  # scope["server"] = ("test", None)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/stats")).status_code == 200  # Host: test, the "bind" name
        for host in ("env.example", "a.env2.example:81"):
            assert (await client.get("/stats", headers={"host": host})).status_code == 200
        assert (await client.get("/stats", headers={"host": "evil.example"})).status_code == 421
        cors = await client.get("/stats", headers={"origin": PAGE})
        assert cors.headers["access-control-allow-origin"] == PAGE
        assert (await client.get("/stats", headers={"origin": EVIL})).status_code == 403


@pytest.mark.parametrize(
    ("kw", "needles"),
    [
        ({"allow_hosts": ["llm.example.com:443"]}, ["--allow-host", "has a port"]),
        ({"allow_hosts": ["*.example.com"]}, ["--allow-host", "'.example.com'"]),
        ({"cors_origins": ["localhost:5173"]}, ["--cors-origin", "scheme://host[:port]"]),
        ({"cors_origins": ["http://localhost:5173/app"]}, ["--cors-origin", "not a web origin"]),
    ],
)
def test_a_malformed_name_or_origin_is_a_config_error(
    tmp_path: Path, kw: dict[str, list[str]], needles: list[str]
) -> None:
    runtime = Runtime(fake_settings("http://127.0.0.1:9", tmp_path))
    try:
        with pytest.raises(ConfigError) as raised:
            create_app(runtime, token="", **kw)
    finally:
        runtime.close()
    value = next(iter(kw.values()))[0]
    for needle in [repr(value), *needles]:
        assert needle in str(raised.value)


async def test_a_malformed_environment_value_fails_the_lifespan_startup(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Under uvicorn the message is printed and start-up stops: no traceback.
    monkeypatch.setenv("LLMROUTER_DATA_DIR", str(tmp_path / "envdata"))
    monkeypatch.setenv("LLMROUTER_CORS_ORIGINS", "http://ok.example, *")
    inbox = [{"type": "lifespan.startup"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return inbox.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    app = create_app()
    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    assert sent[0]["type"] == "lifespan.startup.failed"
    assert "$LLMROUTER_CORS_ORIGINS: '*' is not a web origin" in sent[0]["message"]
    assert app.runtime is None


def test_the_server_table_in_llmrouter_toml(tmp_path: Path) -> None:
    config = tmp_path / "llmrouter.toml"
    config.write_text('[server]\nallow_hosts = ["a.example"]\ncors_origins = ["http://b:1"]\n')
    settings = load_settings(config=config, data_dir=tmp_path, load_dotenv_file=False)
    assert settings.server == ServerSettings(("a.example",), ("http://b:1",))
    for text, needle in [
        ("[server]\nallow_host = []\n", "unknown setting 'allow_host' in [server]"),
        ('[server]\ncors_origins = "http://b"\n', "must be a list of non-empty strings"),
        ("server = 3\n", "[server] must be a table"),
    ]:
        config.write_text(text)
        with pytest.raises(ConfigError) as raised:
            load_settings(config=config, data_dir=tmp_path, load_dotenv_file=False)
        assert needle in str(raised.value) and str(config) in str(raised.value)


# ---- as real processes -------------------------------------------------------------------------


@pytest.mark.slow
def test_serve_options_and_a_bad_one(tmp_path: Path) -> None:
    bad = subprocess.run(
        [sys.executable, "-m", "llmrouter_tui", "--serve", "--demo", "--port", "0",
         "--data-dir", str(tmp_path / "d0"), "--allow-host", "bad host"],
        env=clean_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2, bad.stderr
    assert "--allow-host: 'bad host' is not a host name or address" in bad.stderr
    assert "Traceback" not in bad.stderr

    server = ServerProcess(
        ["--serve", "--demo", "--port", "0", "--quiet", "--data-dir", str(tmp_path / "d1"),
         "--allow-host", "llm.example.com", "--cors-origin", PAGE],
        clean_env(), tmp_path,
    )  # fmt: skip
    try:
        url = server.wait_for_url()
        with httpx.Client(base_url=url, timeout=20) as client:
            assert client.get("/stats", headers={"host": "llm.example.com"}).status_code == 200
            assert client.get("/stats", headers={"host": "evil.example"}).status_code == 421
            preflight = client.options(
                "/chat", headers={"origin": PAGE, "access-control-request-method": "POST"}
            )
            assert preflight.status_code == 204
            assert client.get("/stats", headers={"origin": EVIL}).status_code == 403
    finally:
        assert server.stop() == 0


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_serve_on_ipv6_loopback(tmp_path: Path) -> None:
    server = ServerProcess(
        ["--serve", "--demo", "--host", "::1", "--port", "0", "--quiet",
         "--data-dir", str(tmp_path / "d")],
        clean_env(), tmp_path,
    )  # fmt: skip
    try:
        url = server.wait_for_url()
        port = url.rsplit(":", 1)[1]
        with httpx.Client(base_url=url, timeout=20) as client:  # sends Host: [::1]:PORT
            assert client.get("/stats").status_code == 200
            same = client.get("/stats", headers={"origin": f"http://[::1]:{port}"})
            assert same.status_code == 200
            assert client.get("/stats", headers={"host": "evil.example"}).status_code == 421
    finally:
        assert server.stop() == 0


@pytest.mark.slow
def test_uvicorn_reads_the_rules_from_the_environment(tmp_path: Path) -> None:
    env = clean_env(
        LLMROUTER_DEMO="1",
        LLMROUTER_DATA_DIR=str(tmp_path / "uv"),
        LLMROUTER_ALLOW_HOSTS="llm.example.com",
        LLMROUTER_CORS_ORIGINS=PAGE,
    )
    server = ServerProcess(
        [sys.executable, "-m", "uvicorn", "--factory", "llmrouter_tui.server.app:create_app",
         "--host", "127.0.0.1", "--port", "0", "--no-access-log"],
        env, tmp_path, module=False,
    )  # fmt: skip
    try:
        url = server.wait_for_url()
        with httpx.Client(base_url=url, timeout=20) as client:
            assert client.get("/stats").status_code == 200  # Host 127.0.0.1:PORT
            assert client.get("/stats", headers={"host": "llm.example.com"}).status_code == 200
            refused = client.get("/stats", headers={"host": "evil.example"})
            assert refused.status_code == 421 and "--allow-host" in refused.json()["detail"]
            sent = client.post("/chat", content=CHAT_BODY, headers={"content-type": "text/plain"})
            assert sent.status_code == 415
            page = client.post("/chat", json={"prompt": "hi"}, headers={"origin": PAGE})
            assert page.status_code == 200 and page.headers["access-control-allow-origin"] == PAGE
            assert client.get("/stats", headers={"origin": EVIL}).status_code == 403
    finally:
        server.stop()
