"""`llmrouter-tui --serve` as a real process: the original README's curl commands, the
fallback test, SIGTERM during a request, exit codes, key secrecy, and the app under uvicorn."""

from __future__ import annotations

import json
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from server_helpers import (
    FAST_ROUTING_TOML,
    ServerProcess,
    access_lines,
    clean_env,
    leaks,
    refuses_connections,
    write_config,
)
from waiting import wait_until

from llmrouter_tui.server.main import is_loopback
from llmrouter_tui.testing.fake_upstream import FakeUpstream, Fault

ORIGINAL = "http://127.0.0.1:8000"

# The Bash commands of the original README, verbatim (sections 1-7).
README_CHAT_LLAMA = (
    "curl -X POST 'http://127.0.0.1:8000/chat?model=llama-3.1-8b-instant' "
    "-H 'Content-Type: application/json' -d '{\"prompt\": \"What is the capital of France?\"}'"
)
README_CHAT_GEMINI = (
    "curl -X POST 'http://127.0.0.1:8000/chat?model=gemini-2.5-flash' "
    "-H 'Content-Type: application/json' -d '{\"prompt\": \"Tell me a joke.\"}'"
)
README_TEMPLATE_LLAMA = (
    "curl -X POST 'http://127.0.0.1:8000/chat?model=llama-3.1-8b-instant' "
    '-H \'Content-Type: application/json\' -d \'{"template_id": "friendly", '
    '"template_vars": {"audience": "kids", "topic": "gravity"}}\''
)
README_TEMPLATE_GEMINI = (
    "curl -X POST 'http://127.0.0.1:8000/chat?model=gemini-2.5-flash' "
    '-H \'Content-Type: application/json\' -d \'{"template_id": "friendly", '
    '"template_vars": {"audience": "kids", "topic": "gravity"}}\''
)
README_IGNORE_CACHE = (
    "curl -X POST 'http://127.0.0.1:8000/chat?model=llama-3.1-8b-instant&ignore_cache=true' "
    "-H 'Content-Type: application/json' -d '{\"prompt\": \"What is the capital of France?\"}'"
)
README_RATE = (
    "curl -X POST 'http://127.0.0.1:8000/rate' -H 'Content-Type: application/json' "
    '-d \'{"prompt_id": "YOUR_PROMPT_ID", "model": "llama-3.1-8b-instant", '
    '"rating": 5, "feedback": "Great answer!"}\''
)
README_FALLBACK = (
    "curl -X POST 'http://127.0.0.1:8000/chat?model=llama-3.1-8b-instant' "
    "-H 'Content-Type: application/json' -d '{\"prompt\": \"Fallback test.\"}'"
)

ORIGINAL_FIELDS = ["prompt_id", "model_used", "response_text", "latency_ms", "token_count",
                   "from_cache"]  # fmt: skip


def run_command(command: str, url: str) -> tuple[int, Any]:
    """Run a README command against `url`: with curl when installed, else byte-identical
    requests through httpx. Returns (HTTP status, JSON body)."""
    argv = shlex.split(command.replace(ORIGINAL, url))
    if shutil.which("curl"):
        argv = [argv[0], "-s", "-w", "\n%{http_code}", *argv[1:]]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True)
        body, _, status = done.stdout.rpartition("\n")
        return int(status), json.loads(body)
    method = argv[argv.index("-X") + 1]
    target = next(a for a in argv[1:] if a.startswith("http"))
    headers = dict(
        argv[i + 1].split(": ", 1) for i, a in enumerate(argv) if a == "-H"
    )  # pragma: no cover - curl is normally installed
    data = argv[argv.index("-d") + 1] if "-d" in argv else None
    response = httpx.request(method, target, headers=headers, content=data, timeout=30)
    return response.status_code, response.json()


def fake_env(upstream: FakeUpstream, tmp_path: Path, **extra: str) -> dict[str, str]:
    config = write_config(tmp_path / "llmrouter.toml", **FAST_ROUTING_TOML)
    return clean_env(
        GROQ_BASE_URL=upstream.base_url,
        GEMINI_BASE_URL=upstream.base_url,
        LLMROUTER_CONFIG=str(config),
        **extra,
    )


# ---- the original README --------------------------------------------------------------------


@pytest.mark.slow
def test_the_original_readme_commands_work_against_serve_demo(tmp_path: Path) -> None:
    server = ServerProcess(
        ["--serve", "--demo", "--port", "0", "--data-dir", str(tmp_path / "data")],
        clean_env(),
        cwd=tmp_path,
    )
    try:
        url = server.wait_for_url()
        assert "demo mode" in server.stderr
        commands = [README_CHAT_LLAMA, README_CHAT_GEMINI, README_TEMPLATE_LLAMA,
                    README_TEMPLATE_GEMINI, README_IGNORE_CACHE]  # fmt: skip
        with ThreadPoolExecutor(len(commands)) as pool:
            results = list(pool.map(lambda c: run_command(c, url), commands))
        for status, body in results:
            assert status == 200, body
            assert list(body)[:6] == ORIGINAL_FIELDS
            assert body["demo"] is True
        llama, gemini, tpl_llama, tpl_gemini, fresh = (body for _, body in results)
        assert "What is the capital of France?" in llama["response_text"]
        assert llama["requested_model"] == "llama-3.1-8b-instant"
        assert "retired" in llama["notice"]  # still works: its replacement answered
        assert "Tell me a joke." in gemini["response_text"]
        for body in (tpl_llama, tpl_gemini):
            assert (
                "Explain the following in a friendly way for kids: gravity" in body["response_text"]
            )
        assert fresh["from_cache"] is False
        status, cached = run_command(README_CHAT_LLAMA, url)
        assert status == 200 and cached["from_cache"] is True

        status, rated = run_command(README_RATE.replace("YOUR_PROMPT_ID", llama["prompt_id"]), url)
        assert status == 200 and rated["rating"] == 5 and rated["feedback"] == "Great answer!"
        status, unknown = run_command(README_RATE, url)
        assert status == 404 and "YOUR_PROMPT_ID" in unknown["detail"]

        status, models = run_command(f"curl '{ORIGINAL}/models'", url)
        assert status == 200 and "gemini-2.5-flash" in {m["id"] for m in models["models"]}
        status, stats = run_command(f"curl '{ORIGINAL}/stats'", url)
        assert status == 200 and stats["total_prompts"] == 6 and stats["avg_rating"] == 5
    finally:
        code = server.stop()
    assert code == 0, server.stderr
    logged = [m["path"] for m in access_lines(server.stderr)]
    assert logged.count("/chat") == 6 and "/rate" in logged


@pytest.mark.slow
def test_the_original_fallback_test_reaches_gemini_without_a_groq_key(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    env = fake_env(upstream, tmp_path, GEMINI_API_KEY="AIza-only-gemini-key")
    server = ServerProcess(
        ["--serve", "--quiet", "--port", "0", "--data-dir", str(tmp_path / "data")], env, tmp_path
    )
    try:
        status, body = run_command(README_FALLBACK, server.wait_for_url())
    finally:
        code = server.stop()
    assert status == 200, body
    assert body["fallback_used"] is True
    assert body["model_used"].startswith("gemini-")
    assert "received: Fallback test." in body["response_text"]
    skipped = [a for a in body["attempts"] if a["outcome"] == "skipped_no_key"]
    assert skipped and all(a["provider"] == "groq" for a in skipped)
    assert "GROQ_API_KEY" in skipped[0]["message"]
    assert {r.provider for r in upstream.requests} == {"gemini"}
    assert code == 0
    assert access_lines(server.stderr) == []  # --quiet


# ---- lifecycle ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_sigterm_lets_the_in_flight_request_finish_and_exits_0(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    env = fake_env(upstream, tmp_path, GROQ_API_KEY="gsk_for_sigterm_test_00")
    upstream.add_fault(Fault(kind="slow_first_token", delay_s=1.0, times=1))
    data = tmp_path / "data"
    server = ServerProcess(["--serve", "--port", "0", "--data-dir", str(data)], env, tmp_path)
    url = server.wait_for_url()
    result: dict[str, Any] = {}

    def call() -> None:
        response = httpx.post(
            f"{url}/chat?model=openai/gpt-oss-20b", json={"prompt": "slow one"}, timeout=20
        )
        result["status"] = response.status_code
        result["body"] = response.json()

    worker = threading.Thread(target=call)
    worker.start()
    wait_until(lambda: upstream.requests, "the request to reach the upstream")
    server.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: refuses_connections(url), "the server to stop accepting")
    worker.join(15)
    code = server.stop()
    assert result["status"] == 200 and result["body"]["from_cache"] is False
    assert code == 0, server.stderr
    assert server.stderr.rstrip().endswith("stopped")
    assert [m["status"] for m in access_lines(server.stderr)] == ["200"]
    prompt_id = result["body"]["prompt_id"]
    with sqlite3.connect(data / "llmrouter.db") as db:
        rows = db.execute(
            "SELECT status FROM requests WHERE prompt_id = ?", (prompt_id,)
        ).fetchall()
    assert rows == [("ok",)]
    jsonl = (data / "logs" / "prompts.jsonl").read_text().splitlines()
    assert [json.loads(line)["prompt_id"] for line in jsonl] == [prompt_id]


def test_refuses_a_public_address_without_a_token(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "llmrouter_tui", "--serve", "--host", "0.0.0.0", "--port", "0",
         "--data-dir", str(tmp_path / "d")],
        env=clean_env(), capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 2
    assert "refusing to listen on 0.0.0.0" in done.stderr
    assert "--token" in done.stderr and "--insecure-no-auth" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("host", "expected"),
    [("127.0.0.1", True), ("127.3.4.5", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("0.0.0.0", False), ("::", False), ("", False),
     ("192.168.1.10", False), ("example.com", False)],
)  # fmt: skip
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


@pytest.mark.slow
def test_bad_config_exits_2_and_unusable_storage_exits_1(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "llmrouter_tui", "--serve", "--port", "0"]
    missing = subprocess.run(
        [*base, "--config", str(tmp_path / "nope.toml"), "--data-dir", str(tmp_path / "d")],
        env=clean_env(), capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert missing.returncode == 2 and "nope.toml" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    storage = subprocess.run(
        [*base, "--data-dir", str(blocker / "data")],
        env=clean_env(), capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert storage.returncode == 1 and "storage error" in storage.stderr
    assert "Traceback" not in missing.stderr + storage.stderr


def test_a_busy_port_exits_1_with_a_clear_message(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "llmrouter_tui", "--serve", "--port", str(port),
             "--data-dir", str(tmp_path / "d")],
            env=clean_env(), capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    assert done.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


# ---- secrecy ------------------------------------------------------------------------------------

SECRET_GROQ = "gsk_SECRETSECRET1234"
SECRET_GEMINI = "AIzaSECRETgem5678wxyz"
SECRET_TOKEN = "tok_HUSHHUSH9876"


@pytest.mark.slow
def test_keys_never_reach_a_response_the_log_or_the_files(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    env = fake_env(
        upstream, tmp_path, GROQ_API_KEY=SECRET_GROQ, GEMINI_API_KEY=SECRET_GEMINI,
        LLMROUTER_SERVER_TOKEN=SECRET_TOKEN,
    )  # fmt: skip
    data = tmp_path / "data"
    server = ServerProcess(["--serve", "--port", "0", "--data-dir", str(data)], env, tmp_path)
    texts: list[str] = []
    upstream.valid_keys = {"groq": "some-other-key"}  # groq answers 401: the fallback path
    try:
        url = server.wait_for_url()
        auth = {"authorization": f"Bearer {SECRET_TOKEN}"}
        with httpx.Client(base_url=url, headers=auth, timeout=20) as client:
            calls = [
                ("POST", "/chat?model=openai/gpt-oss-20b", {"prompt": "secret test"}),
                ("POST", "/chat?model=openai/gpt-oss-20b&stream=true", {"prompt": "s2"}),
                ("POST", "/v1/chat/completions",
                 {"model": "openai/gpt-oss-20b", "messages": [{"role": "user", "content": "v"}]}),
                ("GET", "/models?live=true", None), ("GET", "/stats", None),
                ("GET", "/health", None), ("GET", "/templates", None),
                ("GET", "/openapi.json", None), ("GET", "/v1/models", None),
                ("POST", "/chat", "not json"), ("GET", "/nope", None),
            ]  # fmt: skip
            for method, path, body in calls:
                kw = {"json": body} if isinstance(body, dict) else {"content": body}
                if isinstance(body, str):  # malformed JSON that says it is JSON
                    kw["headers"] = {"content-type": "application/json"}
                response = client.request(method, path, **kw)
                texts.append(response.text + str(response.headers))
            first = json.loads(texts[0].split("Headers(")[0])
            assert first["fallback_used"] is True and first["attempts"][0]["status"] == 401
            rate = client.post(
                f"/rate?prompt_id={first['prompt_id']}&score=2",
                headers={"content-type": "application/json"},
            )
            texts.append(rate.text)
            upstream.add_fault(Fault(kind="status", status=500, times=None))
            failed = client.post("/chat?model=gemini-3.5-flash", json={"prompt": "all fail"})
            assert failed.status_code == 502
            texts.append(failed.text)
            for header in ({}, {"authorization": f"Bearer {SECRET_TOKEN[:-1]}"}):
                denied = httpx.get(f"{url}/stats", headers=header, timeout=5)
                assert denied.status_code == 401
                texts.append(denied.text + str(denied.headers))
    finally:
        upstream.valid_keys = None
        code = server.stop()
    assert code == 0
    assert len(access_lines(server.stderr)) >= 14
    texts.append(server.stderr)
    for path in sorted(data.rglob("*")):
        if path.is_file():
            texts.append(path.read_bytes().decode("latin-1"))
    assert any("all fail" in t for t in texts[-5:])  # the files were really read
    for text in texts:
        assert leaks(text, [SECRET_GROQ, SECRET_GEMINI, SECRET_TOKEN]) == [], text[:300]


# ---- other ASGI servers -----------------------------------------------------------------------


@pytest.mark.slow
def test_the_app_runs_under_uvicorn(upstream: FakeUpstream, tmp_path: Path) -> None:
    token = "uvicorn-token-123"
    env = fake_env(
        upstream, tmp_path, GROQ_API_KEY="gsk_uvicorn_key_000", LLMROUTER_SERVER_TOKEN=token,
        LLMROUTER_DATA_DIR=str(tmp_path / "uvdata"),
    )  # fmt: skip
    server = ServerProcess(
        [sys.executable, "-m", "uvicorn", "--factory", "llmrouter_tui.server.app:create_app",
         "--host", "127.0.0.1", "--port", "0", "--no-access-log"],
        env, tmp_path, module=False,
    )  # fmt: skip
    try:
        url = server.wait_for_url()
        headers = {"authorization": f"Bearer {token}"}
        assert httpx.get(f"{url}/health").json()["providers"]["groq"]["has_key"] is True
        assert httpx.get(f"{url}/stats").status_code == 401
        chat = httpx.post(
            f"{url}/chat?model=openai/gpt-oss-20b", json={"prompt": "under uvicorn"},
            headers=headers, timeout=20,
        )  # fmt: skip
        assert chat.status_code == 200 and "under uvicorn" in chat.json()["response_text"]
        streamed = httpx.post(
            f"{url}/chat?model=openai/gpt-oss-20b&stream=true", json={"prompt": "sse"},
            headers=headers, timeout=20,
        )  # fmt: skip
        assert '"type":"done"' in streamed.text
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=token, max_retries=0)
        reply = client.chat.completions.create(
            model="openai/gpt-oss-20b", messages=[{"role": "user", "content": "via openai"}]
        )
        assert "via openai" in reply.choices[0].message.content
        client.close()
    finally:
        code = server.stop()
    # uvicorn re-raises the signal once it has shut down cleanly.
    assert code in (0, -signal.SIGTERM), server.stderr
    assert "Application shutdown complete" in server.stderr
    lines = (tmp_path / "uvdata" / "logs" / "prompts.jsonl").read_text().splitlines()
    assert len(lines) == 3
