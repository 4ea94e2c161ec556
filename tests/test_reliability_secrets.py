"""Key secrecy, including upstreams that echo the key they rejected.

No API key, nor any 6-character piece of one, may appear in a result, an exception, the
database, a log file, `ask` output, an HTTP response (/metrics too), the access log, the
server's log (text or JSON, every level), or the TUI's screen.
"""

from __future__ import annotations

import html
import json
import logging
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from reliability_helpers import (
    GEMINI,
    GEMINI_KEY,
    GROQ,
    GROQ_KEY,
    assert_no_key,
    leaked_fragments,
)
from server_helpers import ServerProcess, clean_env, serving

from llmrouter_tui.core.types import ChatRequest
from llmrouter_tui.server.app import create_app
from llmrouter_tui.testing.fake_upstream import FakeUpstream, Fault


def echo_keys(upstream: FakeUpstream) -> None:
    """Every provider fails with an error text that quotes (parts of) the caller's key."""
    upstream.add_fault(
        Fault(
            kind="status",
            status=401,
            provider="groq",
            message=f"Incorrect API key provided: {GROQ_KEY[:9]}...{GROQ_KEY[-9:]} ({GROQ_KEY})",
        )
    )
    upstream.add_fault(
        Fault(
            kind="status",
            status=500,
            provider="gemini",
            message=f"internal error while checking key={GEMINI_KEY}",
        )
    )


def assert_data_dir_clean(data_dir: Path) -> None:
    for path in sorted(data_dir.rglob("*")):
        if path.is_file():
            assert_no_key(path.read_bytes(), str(path))
    conn = sqlite3.connect(data_dir / "llmrouter.db")
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in conn.execute(f"SELECT * FROM {table}"):
                assert_no_key(repr(row), f"the {table} table")
    finally:
        conn.close()


async def test_core_never_keeps_an_echoed_key(make_runtime, upstream: FakeUpstream, tmp_path):
    runtime = make_runtime(max_retries=0, data_dir=tmp_path / "data")
    echo_keys(upstream)
    result = await runtime.router.complete(ChatRequest(model=GROQ, prompt="leak?"))
    assert result.status == "error" and "HTTP 401" in result.error
    assert "Incorrect API key provided" in result.error  # the provider's reason is kept…
    assert_no_key(repr(result.as_dict()), "the result")  # …without the key
    events = [e async for e in runtime.router.stream(ChatRequest(model=GEMINI, prompt="again"))]
    assert_no_key(repr(events), "the stream events")
    assert_no_key(repr(runtime.settings), "the settings repr")
    await runtime.aclose()
    assert_data_dir_clean(tmp_path / "data")


@pytest.mark.slow
def test_ask_never_prints_an_echoed_key(upstream: FakeUpstream, tmp_path: Path):
    env = clean_env(
        GROQ_API_KEY=GROQ_KEY,
        GEMINI_API_KEY=GEMINI_KEY,
        GROQ_BASE_URL=upstream.base_url,
        GEMINI_BASE_URL=upstream.base_url,
        LLMROUTER_DATA_DIR=str(tmp_path / "data"),
    )
    for args in (["-m", GROQ, "leak?"],):
        upstream.clear()
        echo_keys(upstream)
        done = subprocess.run(
            [sys.executable, "-m", "llmrouter_tui", "ask", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=60,
        )
        assert done.returncode == 3, done.stderr
        assert "HTTP 401" in done.stdout + done.stderr
        assert_no_key(done.stdout, "ask's stdout")
        assert_no_key(done.stderr, "ask's stderr")
    assert_data_dir_clean(tmp_path / "data")


async def test_server_never_sends_or_logs_an_echoed_key(
    make_runtime, upstream: FakeUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG, logger="llmrouter_tui")
    runtime = make_runtime(max_retries=0, data_dir=tmp_path / "data")
    async with serving(create_app(runtime, token="")) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
            bodies = []
            for url, body in (
                (f"/chat?model={GROQ}", {"prompt": "leak?"}),
                (f"/chat?model={GROQ}&stream=true", {"prompt": "leak?"}),
                ("/v1/chat/completions", {"model": GEMINI, "messages": [
                    {"role": "user", "content": "leak?"}]}),
                ("/v1/chat/completions", {"model": GEMINI, "stream": True, "messages": [
                    {"role": "user", "content": "leak?"}]}),
            ):  # fmt: skip
                upstream.clear()
                echo_keys(upstream)
                response = await client.post(url, json=body)
                assert response.status_code == 502
                bodies.append(response.text)
                assert_no_key(response.text, url)
                assert_no_key(str(response.headers), f"{url} headers")
            for path in ("/health", "/models", "/stats", "/v1/models", "/metrics"):
                assert_no_key((await client.get(path)).text, path)
        log = server.log_text()
    assert "HTTP 401" in bodies[0]
    assert_no_key(log, "the access log")
    assert "request " in caplog.text  # the router's debug lines were there to check
    assert_no_key(caplog.text, "the log records")
    await runtime.aclose()
    assert_data_dir_clean(tmp_path / "data")


@pytest.mark.slow
def test_serve_logs_and_metrics_never_show_an_echoed_key(upstream: FakeUpstream, tmp_path: Path):
    """A real --serve at debug level, JSON and text, whose upstream echoes the keys back."""
    token = "tok-5e8d1c0b9a7f"
    env = clean_env(
        GROQ_API_KEY=GROQ_KEY,
        GEMINI_API_KEY=GEMINI_KEY,
        GROQ_BASE_URL=upstream.base_url,
        GEMINI_BASE_URL=upstream.base_url,
        LLMROUTER_DATA_DIR=str(tmp_path / "data"),
        LLMROUTER_SERVER_TOKEN=token,
    )
    auth = {"Authorization": f"Bearer {token}"}
    for log_format in ("json", "text"):
        server = ServerProcess(
            ["--serve", "--port", "0", "--log-level", "debug", "--log-format", log_format],
            env,
            cwd=tmp_path,
        )
        try:
            url = server.wait_for_url()
            for model in (GROQ, GEMINI):
                upstream.clear()
                echo_keys(upstream)
                response = httpx.post(
                    f"{url}/chat?model={model}", json={"prompt": "leak?"}, headers=auth, timeout=30
                )
                assert response.status_code == 502
            metrics = httpx.get(f"{url}/metrics", headers=auth, timeout=10)
            assert metrics.status_code == 200 and "llmrouter_results_total" in metrics.text
            assert_no_key(metrics.text, "/metrics")
        finally:
            assert server.stop() == 0
        assert_no_key(server.stderr, f"the server's {log_format} log")
        assert token not in server.stderr
        if log_format == "json":
            records = [json.loads(line) for line in server.lines]
            assert [r["status"] for r in records if r.get("path") == "/chat"] == [502, 502]
            assert len([r for r in records if r["level"] == "debug"]) == 2
        else:
            assert server.stderr.count('"POST /chat" 502') == 2
    assert_data_dir_clean(tmp_path / "data")


# ---- the TUI ------------------------------------------------------------------------------------


def screen_text(app) -> str:  # type: ignore[no-untyped-def]
    """Everything the terminal shows, as plain text (from the SVG screenshot)."""
    svg = app.export_screenshot()
    texts = re.findall(r"<text[^>]*>(.*?)</text>", svg, flags=re.S)
    return html.unescape("".join(re.sub(r"<[^>]+>", "", t) for t in texts)).replace("\xa0", " ")


@pytest.mark.slow
async def test_tui_shows_the_failure_but_never_the_key(make_runtime, upstream: FakeUpstream):
    pytest.importorskip("textual")
    from test_tui_support import SIZE, chat, send, settle

    from llmrouter_tui.tui.app import LLMRouterApp

    runtime = make_runtime(max_retries=0)
    echo_keys(upstream)
    app = LLMRouterApp(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "leak?")
        (reply,) = chat(pilot).view.replies
        assert reply.state == "error"
        error = str(reply.query_one(".reply-error").render())
        assert "HTTP 401" in error and "Incorrect API key provided" in error
        assert_no_key(error, "the TUI's error text")
        shown = screen_text(app)
        assert "Request failed" in shown  # the screenshot text really is the screen
        assert not leaked_fragments(shown), shown
        for widget in app.screen.query("*"):
            assert_no_key(str(getattr(widget, "renderable", "") or ""), repr(widget))


@pytest.mark.slow
async def test_tui_shows_a_storage_warning_and_still_the_reply(
    make_runtime, upstream: FakeUpstream, tmp_path: Path
):
    """A full disk: the reply is shown, with the warning naming the file."""
    pytest.importorskip("textual")
    from test_tui_support import chat, send, settle

    from llmrouter_tui.tui.app import LLMRouterApp

    runtime = make_runtime(data_dir=tmp_path / "data")
    jsonl = runtime.store.logs_dir / "prompts.jsonl"
    jsonl.symlink_to("/dev/full")
    app = LLMRouterApp(runtime)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        await send(pilot, "disk full?")
        (reply,) = chat(pilot).view.replies
        assert reply.state == "done" and "received: disk full?" in reply.text
        shown = screen_text(app)
        assert "could not write" in shown and "[Errno 28] No space" in shown, shown
        assert "prompts.jsonl" in shown
