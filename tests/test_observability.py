"""Observability: logging (text and JSON, levels, the app's log file), listener failures
that are logged rather than swallowed, and GET /metrics in Prometheus' text format.

Servers run for real: `--serve --demo` subprocesses for what reaches stderr, the embedded
server on a socket in the test's loop (against the session's fake upstream) for /metrics.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import re
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from reliability_helpers import GROQ, GROQ_BIG
from server_helpers import ACCESS_LINE, ServerProcess, access_lines, clean_env, serving

from llmrouter_tui import logconfig
from llmrouter_tui.core.metrics import Metrics
from llmrouter_tui.core.redact import Redactor
from llmrouter_tui.core.runtime import Runtime
from llmrouter_tui.core.types import ChatRequest, Result
from llmrouter_tui.server import openapi
from llmrouter_tui.server.app import create_app
from llmrouter_tui.server.http import ACCESS_LOGGER
from llmrouter_tui.server.metrics import CONTENT_TYPE, render
from llmrouter_tui.testing.fake_upstream import FakeUpstream, Fault

PROMPT = "a prompt that must never be logged"
TOKEN = "metrics-token-7f3c9e21"


def full_disk_data_dir(tmp_path: Path) -> Path:
    """A data directory whose prompts.jsonl is on a full disk (/dev/full: every write fails
    with ENOSPC, also for root), so each request gives a storage warning."""
    data = tmp_path / "data"
    (data / "logs").mkdir(parents=True)
    (data / "logs" / "prompts.jsonl").symlink_to("/dev/full")
    return data


def serve_demo(tmp_path: Path, *options: str) -> ServerProcess:
    data = full_disk_data_dir(tmp_path)
    args = ["--serve", "--demo", "--port", "0", "--data-dir", str(data), *options]
    server = ServerProcess(args, clean_env(), cwd=tmp_path)
    server.wait_for_url()
    return server


def chat(url: str) -> dict:
    response = httpx.post(f"{url}/chat", json={"prompt": PROMPT}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


# ---- logging from a real --serve process ----------------------------------------------------


@pytest.mark.slow
def test_json_log_lines_from_serve(tmp_path: Path) -> None:
    server = serve_demo(tmp_path, "--log-level", "debug", "--log-format", "json")
    try:
        reply = chat(server.url)
        assert httpx.get(f"{server.url}/nope", timeout=10).status_code == 404
    finally:
        assert server.stop() == 0
    assert reply["warnings"] and "prompts.jsonl" in reply["warnings"][0]
    records = [json.loads(line) for line in server.lines]  # every line is one JSON object
    for record in records:
        assert {"ts", "level", "logger", "message"} <= set(record), record
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["ts"])
    assert records[0]["message"].startswith("serving on http://127.0.0.1:")
    assert records[-1]["message"] == "stopped"

    access = [r for r in records if r["logger"] == ACCESS_LOGGER]
    assert [(r["method"], r["path"], r["status"]) for r in access] == [
        ("POST", "/chat", 200),
        ("GET", "/nope", 404),
    ]
    for record in access:
        assert record["level"] == "info" and ACCESS_LINE.match(record["message"])
        assert isinstance(record["duration_ms"], float) and record["client"].startswith("127.")

    (warning,) = [r for r in records if r["level"] == "warning"]
    assert warning["logger"] == "llmrouter_tui.core.store"
    assert warning["event"] == "storage_warning"
    assert "prompts.jsonl" in warning["message"] and "No space left" in warning["message"]

    (routed,) = [r for r in records if r["level"] == "debug"]
    assert routed["logger"] == "llmrouter_tui.core.router"
    assert routed["prompt_id"] == reply["prompt_id"] and routed["status"] == "ok"
    assert routed["model"] == reply["model_used"] and routed["attempts"] == 1
    assert PROMPT not in server.stderr and reply["response_text"] not in server.stderr


@pytest.mark.slow
def test_default_text_log_is_unchanged_and_quiet_drops_only_access(tmp_path: Path) -> None:
    server = serve_demo(tmp_path / "loud")
    try:
        chat(server.url)
        chat(server.url)
    finally:
        assert server.stop() == 0
    lines = server.lines
    assert [m["path"] for m in access_lines(server.stderr)] == ["/chat", "/chat"]
    for line in lines:  # an access line as it always was, or "llmrouter-tui: ..."
        assert ACCESS_LINE.match(line) or line.startswith("llmrouter-tui: "), line
    assert lines[0].startswith("llmrouter-tui: serving on http://127.0.0.1:")
    assert lines[-1] == "llmrouter-tui: stopped"
    warnings = [line for line in lines if "storage warning" in line]
    assert len(warnings) == 2  # one per request, nothing at debug level
    assert warnings[0].startswith("llmrouter-tui: storage warning: could not write ")

    quiet = serve_demo(tmp_path / "quiet", "--quiet")
    try:
        chat(quiet.url)
    finally:
        assert quiet.stop() == 0
    assert access_lines(quiet.stderr) == []
    assert [line for line in quiet.lines if "storage warning" in line]


def test_levels_and_formats_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    router = logging.getLogger("llmrouter_tui.core.router")
    library = logging.getLogger("some.library")
    try:
        logconfig.configure("warning", "text")
        router.info("not shown")
        router.warning("shown, key %s", "sk-0123456789")
        library.warning("a library's warning")
        library.info("a library's chatter")
        logconfig.redact_with(Redactor(["sk-0123456789"]).text)
        router.error("scrubbed: sk-0123456789")
        logconfig.configure("info", "json")
        router.info("as json", extra={"count": 3, "item": "x"})
        logconfig.configure()  # from the environment, or info and text
        router.debug("not shown either")
    finally:
        logconfig.reset()
        logconfig.redact_with(None)
    lines = capsys.readouterr().err.splitlines()
    assert lines[:3] == [
        "llmrouter-tui: shown, key sk-0123456789",  # no redactor installed yet
        "llmrouter-tui: some.library: a library's warning",
        "llmrouter-tui: scrubbed: [redacted]",
    ]
    record = json.loads(lines[3])
    assert record["level"] == "info" and record["logger"] == "llmrouter_tui.core.router"
    assert record["message"] == "as json" and record["count"] == 3 and record["item"] == "x"
    assert len(lines) == 4


def test_lines_logged_in_one_loop_turn_are_written_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    writes: list[str] = []

    class Stderr:
        def write(self, text: str) -> None:
            writes.append(text)

        def flush(self) -> None:
            pass

    monkeypatch.setattr(sys, "stderr", Stderr())
    log = logging.getLogger("llmrouter_tui.server.access")

    async def one_turn() -> None:
        log.info("first")
        log.info("second")
        assert writes == []  # not on the requests' own path
        await asyncio.sleep(0)  # exactly one loop turn: the flush per turn is under test
        assert writes == ["first\nsecond\n"]  # one write for the turn

    try:
        logconfig.configure("info", "text")
        asyncio.run(one_turn())
        log.info("outside a loop")
        assert writes[-1] == "outside a loop\n"
    finally:
        logconfig.reset()


def test_an_unknown_level_in_the_environment_is_named_not_fatal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(logconfig.LEVEL_ENV, "loud")
    try:
        logconfig.configure()
        logging.getLogger("llmrouter_tui.x").info("at info")
    finally:
        logconfig.reset()
    err = capsys.readouterr().err
    assert "LLMROUTER_LOG_LEVEL='loud' is not one of debug, info, warning, error" in err
    assert "llmrouter-tui: at info" in err


@pytest.mark.slow
def test_ask_logs_on_stderr_only_when_asked(tmp_path: Path) -> None:
    def ask(*options: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "llmrouter_tui", "ask", "--demo", *options, PROMPT],
            capture_output=True,
            text=True,
            env=clean_env(LLMROUTER_DATA_DIR=str(tmp_path / "data")),
            cwd=tmp_path,
            timeout=60,
        )

    quiet = ask()
    assert quiet.returncode == 0 and "llmrouter-tui:" not in quiet.stderr
    verbose = ask("--log-level", "debug")
    assert verbose.returncode == 0
    (line,) = [line for line in verbose.stderr.splitlines() if line.startswith("llmrouter-tui: ")]
    assert re.match(r"llmrouter-tui: request [0-9a-f]{32}: ok from openai/gpt-oss-20b", line)
    assert PROMPT not in verbose.stderr


async def test_the_apps_log_goes_to_a_file_not_the_terminal(
    make_runtime: Callable[..., Runtime], capsys: pytest.CaptureFixture[str]
) -> None:
    runtime = make_runtime()
    path = runtime.store.logs_dir / logconfig.APP_LOG
    with logconfig.app_log(runtime, argparse.Namespace(log_level="debug")):
        logging.getLogger("llmrouter_tui.core.router").debug("routed %s", "somewhere")
        logging.getLogger("some.library").warning("a library's warning")
        logging.getLogger("some.library").info("a library's chatter")
    logging.getLogger("llmrouter_tui.core.router").error("after the app: not in its file")
    text = path.read_text(encoding="utf-8")
    assert " DEBUG llmrouter_tui.core.router: routed somewhere\n" in text
    assert " WARNING some.library: a library's warning\n" in text
    assert "chatter" not in text and "after the app" not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "routed somewhere" not in capsys.readouterr().err


def test_under_uvicorn_logging_follows_the_environment_unless_set_up(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    monkeypatch.setenv(logconfig.FORMAT_ENV, "json")
    logconfig.ensure_configured()  # pytest's handlers are there: someone set logging up
    assert not [h for h in root.handlers if getattr(h, "_llmrouter", False)]
    monkeypatch.setattr(root, "handlers", [])  # a bare process, as under uvicorn
    try:
        logconfig.ensure_configured()
        logging.getLogger("llmrouter_tui.core.store").warning("storage warning: %s", "full")
    finally:
        logconfig.reset()
    record = json.loads(capsys.readouterr().err)
    assert record["level"] == "warning" and record["message"] == "storage warning: full"


def test_the_access_logger_name_is_the_one_the_text_format_knows() -> None:
    assert ACCESS_LOGGER == logconfig.ACCESS_LOGGER


# ---- failing callbacks are logged, never swallowed --------------------------------------------


async def test_a_raising_listener_is_logged_once_and_the_reply_still_arrives(
    make_runtime: Callable[..., Runtime], upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="llmrouter_tui")
    runtime = make_runtime()
    heard: list[str] = []

    def broken(result: Result) -> None:
        raise ValueError(f"details of {result.prompt_id} that stay out of the log")

    runtime.on_request(broken)
    runtime.on_request(lambda result: heard.append(result.prompt_id))
    async with (
        serving(create_app(runtime, token="")) as server,
        httpx.AsyncClient(base_url=server.url, timeout=20) as client,
    ):
        response = await client.post("/chat", json={"prompt": PROMPT})
    assert response.status_code == 200 and "received:" in response.json()["response_text"]
    assert heard == [response.json()["prompt_id"]]  # the next listener still heard of it
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) == 1
    (error,) = errors
    assert error.name == "llmrouter_tui.core.router" and error.levelno == logging.ERROR
    message = error.getMessage()
    assert message.startswith("a request listener raised ValueError at ")
    assert "test_observability.py" in message and "the reply was delivered" in message
    assert "stay out of the log" not in message and PROMPT not in caplog.text
    assert error.exc_type == "ValueError"


async def test_a_raising_storage_warning_hook_is_logged_and_the_record_kept(
    make_runtime: Callable[..., Runtime], upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="llmrouter_tui")
    runtime = make_runtime()
    store = runtime.store
    (store.logs_dir / "prompts.jsonl").symlink_to("/dev/full")

    def broken(warning: str) -> None:
        raise OSError("the hook's own trouble")

    store.on_warning = broken
    result = await runtime.router.complete(ChatRequest(model=GROQ, prompt=PROMPT))
    assert result.status == "ok" and len(result.warnings) == 1
    assert store.get_request(result.prompt_id) is not None  # recorded all the same
    warning, error = caplog.records  # the warning, then the hook's failure: once each
    assert warning.levelname == "WARNING"
    assert warning.getMessage() == f"storage warning: {result.warnings[0]}"
    assert error.levelname == "ERROR"
    message = error.getMessage()
    assert message.startswith("the storage warning hook raised OSError at ")
    assert "the record was kept" in message and "own trouble" not in message


# ---- /metrics ------------------------------------------------------------------------------


@dataclass
class Exposition:
    """A parsed Prometheus text exposition (the subset of 0.0.4 that matters here)."""

    types: dict[str, str] = field(default_factory=dict)
    helps: dict[str, str] = field(default_factory=dict)
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    def value(self, name: str, **labels: str) -> float:
        found = [v for n, found_labels, v in self.samples if n == name and found_labels == labels]
        assert len(found) == 1, (name, labels, found)
        return found[0]

    def series(self, name: str) -> dict[tuple[tuple[str, str], ...], float]:
        return {tuple(sorted(ls.items())): v for n, ls, v in self.samples if n == name}


_SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def parse_exposition(text: str) -> Exposition:
    """Parse `text` strictly: any line that does not follow the format fails the test."""
    assert text.endswith("\n")
    out = Exposition()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_text = line[len("# HELP ") :].partition(" ")
            assert name not in out.helps and help_text, line
            out.helps[name] = help_text
            continue
        if line.startswith("# TYPE "):
            name, _, kind = line[len("# TYPE ") :].partition(" ")
            assert kind in {"counter", "gauge", "histogram"} and name not in out.types, line
            assert name in out.helps, f"TYPE before HELP: {line}"
            out.types[name] = kind
            continue
        match = _SAMPLE.fullmatch(line)
        assert match, f"not a sample line: {line!r}"
        name, raw_labels, raw_value = match.groups()
        labels: dict[str, str] = {}
        at = 0
        while raw_labels and at < len(raw_labels):
            label = _LABEL.match(raw_labels, at)
            assert label, f"malformed labels at {raw_labels[at:]!r} in {line!r}"
            labels[label[1]] = re.sub(r'\\[\\"n]', lambda m: _UNESCAPE[m[0]], label[2])
            at = label.end()
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        kind = out.types.get(name) or out.types.get(family)
        assert kind is not None, f"sample before its TYPE: {line}"
        if kind != "histogram":
            assert family == name or name in out.types, line
        value = math.inf if raw_value == "+Inf" else float(raw_value)
        out.samples.append((name, labels, value))
    return out


def check_histogram(exposition: Exposition, name: str) -> tuple[float, float]:
    """Buckets ascending, counts cumulative, +Inf equal to _count; returns (count, sum)."""
    assert exposition.types[name] == "histogram"
    buckets = [(ls["le"], v) for n, ls, v in exposition.samples if n == f"{name}_bucket"]
    bounds = [math.inf if le == "+Inf" else float(le) for le, _ in buckets]
    assert bounds == sorted(bounds) and bounds[-1] == math.inf and len(set(bounds)) == len(bounds)
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), f"{name} buckets are not cumulative: {counts}"
    count = exposition.value(f"{name}_count")
    total = exposition.value(f"{name}_sum")
    assert counts[-1] == count and total >= 0
    return count, total


async def test_metrics_count_what_happened(
    make_runtime: Callable[..., Runtime], upstream: FakeUpstream
) -> None:
    runtime = make_runtime()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        serving(create_app(runtime, token=TOKEN)) as server,
        httpx.AsyncClient(base_url=server.url, timeout=30) as client,
    ):
        assert (await client.get("/metrics")).status_code == 401  # like every endpoint
        first = (
            await client.post(f"/chat?model={GROQ}", json={"prompt": "one"}, headers=auth)
        ).json()
        again = (
            await client.post(f"/chat?model={GROQ}", json={"prompt": "one"}, headers=auth)
        ).json()
        upstream.add_fault(Fault(kind="status", status=503, model=GROQ))
        fallback = (
            await client.post(f"/chat?model={GROQ}", json={"prompt": "two"}, headers=auth)
        ).json()
        assert (await client.get("/nope", headers=auth)).status_code == 404
        response = await client.get("/metrics", headers=auth)
        head = await client.head("/metrics", headers=auth)
    assert first["model_used"] == GROQ and not first["from_cache"]
    assert again["from_cache"] is True
    assert fallback["fallback_used"] and fallback["model_used"] == GROQ_BIG
    failed = [a for a in fallback["attempts"] if a["outcome"] == "error"]
    assert len(failed) == 3 and {a["error"] for a in failed} == {"server_error"}

    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE.decode()
    assert head.status_code == 200 and head.content == b""
    metrics = parse_exposition(response.text)

    assert metrics.series("llmrouter_http_requests_total") == {
        (("endpoint", "/metrics"), ("status", "401")): 1,
        (("endpoint", "/chat"), ("status", "200")): 3,
        (("endpoint", "other"), ("status", "404")): 1,
    }
    assert metrics.value("llmrouter_http_requests_in_flight") == 1  # this scrape
    assert metrics.series("llmrouter_results_total") == {
        (("model", GROQ), ("status", "ok")): 2,
        (("model", GROQ_BIG), ("status", "ok")): 1,
    }
    assert metrics.series("llmrouter_attempts_total") == {
        (("error_kind", "none"), ("outcome", "ok")): 2,
        (("error_kind", "none"), ("outcome", "cache_hit")): 1,
        (("error_kind", "server_error"), ("outcome", "error")): 3,
    }
    assert metrics.value("llmrouter_cache_hits_total") == 1
    assert metrics.value("llmrouter_cache_misses_total") == 3  # one; two (GROQ, GROQ_BIG)
    count, total = check_histogram(metrics, "llmrouter_request_latency_seconds")
    latencies = [first["latency_ms"], again["latency_ms"], fallback["latency_ms"]]
    assert count == 3 and total == pytest.approx(sum(latencies) / 1000, abs=1e-5)
    count, total = check_histogram(metrics, "llmrouter_ttft_seconds")  # not the cache hit
    assert count == 2 and total == pytest.approx(
        (first["ttft_ms"] + fallback["ttft_ms"]) / 1000, abs=1e-5
    )
    assert check_histogram(metrics, "llmrouter_recording_lag_seconds")[0] == 3
    # Three consecutive failures opened GROQ's circuit (cooldown_failures = 3).
    assert metrics.value("llmrouter_circuit_state", provider="groq", model=GROQ) == 2
    assert metrics.value("llmrouter_circuit_state", provider="groq", model=GROQ_BIG) == 0
    assert metrics.value("llmrouter_storage_warnings_total") == 0
    assert set(metrics.types) == set(metrics.helps)


async def test_metrics_count_storage_warnings(
    make_runtime: Callable[..., Runtime], upstream: FakeUpstream
) -> None:
    runtime = make_runtime()
    (runtime.store.logs_dir / "prompts.csv").symlink_to("/dev/full")
    async with (
        serving(create_app(runtime, token="")) as server,
        httpx.AsyncClient(base_url=server.url, timeout=30) as client,
    ):
        assert (await client.post("/chat", json={"prompt": "full"})).status_code == 200
        metrics = parse_exposition((await client.get("/metrics")).text)
    assert metrics.value("llmrouter_storage_warnings_total") == 1


def test_label_values_are_escaped_and_scrubbed() -> None:
    odd = 'a "quoted" back\\slash\nnew line'
    secret = "sk-live-0123456789abcdef"
    metrics = Metrics()
    metrics.results[("ok", odd)] = 2
    metrics.results[("ok", f"leak {secret}")] = 1
    metrics.latency.observe(0.2)
    metrics.latency.observe(500)  # above every bound: only +Inf
    text = render(metrics, [("p", odd, 1)], Redactor([secret]).text).decode()
    parsed = parse_exposition(text)
    assert parsed.value("llmrouter_results_total", status="ok", model=odd) == 2
    assert parsed.value("llmrouter_circuit_state", provider="p", model=odd) == 1
    assert parsed.value("llmrouter_results_total", status="ok", model="leak [redacted]") == 1
    assert "0123456789" not in text
    buckets = parsed.series("llmrouter_request_latency_seconds_bucket")
    assert buckets[(("le", "120.0"),)] == 1 and buckets[(("le", "+Inf"),)] == 2
    assert check_histogram(parsed, "llmrouter_request_latency_seconds") == (2, 500.2)


def test_metrics_are_documented_in_openapi() -> None:
    operation = openapi.document()["paths"]["/metrics"]["get"]
    assert list(operation["responses"]["200"]["content"]) == ["text/plain; version=0.0.4"]
    assert "security" not in operation  # the token is required, as for the rest
    assert "401" in operation["responses"]


def test_every_metric_family_is_documented_in_openapi_and_the_readme() -> None:
    """A series added to /metrics without a word in either is one nobody finds."""
    families = parse_exposition(render(Metrics(), [], lambda text: text).decode()).types
    assert {"llmrouter_event_loop_lag_seconds", "llmrouter_event_loop_lag_max_seconds"} <= set(
        families
    )
    described = openapi.document()["paths"]["/metrics"]["get"]["description"]
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    observability = readme.split("\n## Observability\n", 1)[1].split("\n## ", 1)[0]
    for name in families:
        assert re.search(rf"\b{name}\b", described), f"{name} is not in /openapi.json"
        assert f"`{name}`" in observability, f"{name} is not in README's Observability table"
