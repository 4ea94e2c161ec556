"""`llmrouter-tui ask`: output, JSON record and exit codes, as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import GEMINI_KEY, GROQ_KEY

from llmrouter_tui.testing.fake_upstream import FakeUpstream, Fault

pytestmark = pytest.mark.slow  # every test starts `llmrouter-tui` processes

ORIGINAL_FIELDS = {"prompt_id", "model_used", "response_text", "latency_ms", "token_count"}


def run_ask(args: list[str], env: dict[str, str], stdin: str | None = None):
    return subprocess.run(
        [sys.executable, "-m", "llmrouter_tui", "ask", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.fixture
def env(upstream: FakeUpstream, tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "fast.toml"
    config.write_text(
        "[routing]\nmax_retries = 1\nbackoff_initial_s = 0.01\nbackoff_max_s = 0.02\n"
        "first_token_timeout_s = 1\ntotal_timeout_s = 5\n",
        encoding="utf-8",
    )
    values = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GROQ_", "GEMINI_", "GOOGLE_", "LLMROUTER_"))
    }
    values.update(
        GROQ_API_KEY=GROQ_KEY,
        GEMINI_API_KEY=GEMINI_KEY,
        GROQ_BASE_URL=upstream.base_url,
        GEMINI_BASE_URL=upstream.base_url,
        LLMROUTER_DATA_DIR=str(tmp_path / "data"),
        LLMROUTER_CONFIG=str(config),
    )
    return values


def test_ask_prints_the_reply_and_exits_0(env, upstream):
    done = run_ask(["-m", "openai/gpt-oss-20b", "What is the capital of France?"], env)
    assert done.returncode == 0, done.stderr
    assert "received: What is the capital of France?" in done.stdout
    assert GROQ_KEY not in done.stdout + done.stderr


def test_ask_json_carries_the_full_record(env, upstream):
    done = run_ask(["--json", "-m", "llama-3.1-8b-instant", "hi"], env)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert ORIGINAL_FIELDS | {"from_cache", "requested_model", "fallback_used", "attempts"} <= set(
        record
    )
    assert record["requested_model"] == "llama-3.1-8b-instant"
    assert record["model_used"] == "openai/gpt-oss-20b"
    assert "retired" in record["notice"]
    again = json.loads(run_ask(["--json", "-m", "llama-3.1-8b-instant", "hi"], env).stdout)
    assert again["from_cache"] is True


def test_ask_reads_stdin_and_templates(env, upstream):
    done = run_ask(["-m", "gemini-3.5-flash", "-"], env, stdin="from stdin\n")
    assert done.returncode == 0 and "from stdin" in done.stdout
    templ = run_ask(
        ["--template", "friendly", "--var", "audience=kids", "--var", "topic=gravity"], env
    )
    assert templ.returncode == 0, templ.stderr
    assert "friendly way for kids: gravity" in templ.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["-m", "gpt-17", "hi"], "unknown model 'gpt-17'"),
        (["--template", "nope"], "nope"),
        (["--template", "friendly", "--var", "audience=kids"], "topic"),
        (["   "], "prompt is empty"),
        ([], "no prompt"),
    ],
)
def test_ask_bad_input_exits_2_with_a_clear_message(env, args, needle):
    done = run_ask(args, env)
    assert done.returncode == 2
    assert needle in done.stderr
    assert "Traceback" not in done.stderr


def test_ask_all_candidates_failed_exits_3_and_lists_attempts(env, upstream):
    upstream.add_fault(Fault(kind="status", status=503))
    done = run_ask(["-m", "openai/gpt-oss-20b", "doomed"], env)
    assert done.returncode == 3
    assert "openai/gpt-oss-120b" in done.stderr and "503" in done.stderr
    assert done.stdout == ""


def test_ask_reports_fallback_on_stderr(env, upstream):
    env = {k: v for k, v in env.items() if k != "GROQ_API_KEY"}
    done = run_ask(["-m", "openai/gpt-oss-20b", "Fallback test."], env)
    assert done.returncode == 0, done.stderr
    assert "fallback from openai/gpt-oss-20b" in done.stderr
    assert "gemini-3.5-flash" in done.stdout


def test_ask_demo_needs_no_keys(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GROQ_", "GEMINI_", "GOOGLE_", "LLMROUTER_"))
    }
    env["LLMROUTER_DATA_DIR"] = str(tmp_path / "demo-data")
    done = run_ask(["--demo", "hello demo"], env)
    assert done.returncode == 0, done.stderr
    assert "hello demo" in done.stdout
    assert "[demo]" in done.stderr


def test_broken_config_is_one_clear_line(env, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[routing]\nmax_retries = = 1\n", encoding="utf-8")
    done = run_ask(["--config", str(bad), "hi"], env)
    assert done.returncode == 2
    assert str(bad) in done.stderr and "line 2" in done.stderr
    assert "Traceback" not in done.stderr
