"""Fault matrix through the core: each fault × groq / gemini / openai-compatible × whole / stream.

Per case: what the caller got (the complete answer, or a bounded clean error, never a
truncated answer as success), how many attempts the fake saw on each model and when,
the total time, the reported model, usage, the record in SQLite, and that the next healthy
request through the same runtime succeeds on the primary again. test_router.py holds the
single-provider versions of these rules; this file checks them across the whole matrix.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import replace

import pytest
from reliability_helpers import (
    CASES,
    CHAINS,
    FAKE_PROVIDER,
    GEMINI,
    GROQ,
    GROQ_BIG,
    LOCAL,
    MATRIX,
    RUNTIME_PROVIDER,
    Case,
    answerer,
    assert_continued,
    assert_no_key,
    chat_posts,
    expected_reply,
    hits,
)

from llmrouter_tui.core.logsinks import read_csv, read_jsonl
from llmrouter_tui.core.types import (
    AttemptFailed,
    ChatRequest,
    Delta,
    Done,
    Failed,
    Restart,
    Started,
)
from llmrouter_tui.testing.fake_upstream import FakeUpstream, Fault


async def _call(runtime, request: ChatRequest, mode: str):
    if mode == "whole":
        return await runtime.router.complete(request), None
    events = [e async for e in runtime.router.stream(request, allow_restart=False)]
    assert isinstance(events[0], Started)
    terminal = [e for e in events if isinstance(e, Done | Failed)]
    assert len(terminal) == 1 and terminal[0] is events[-1]
    return terminal[0].result, events


@pytest.mark.parametrize("mode", ["whole", "streamed"])
@pytest.mark.parametrize("primary", [GROQ, GEMINI, LOCAL], ids=["groq", "gemini", "openai"])
@pytest.mark.parametrize("case", [c.param() for c in CASES])
async def test_fault_matrix(make_runtime, upstream: FakeUpstream, case: Case, primary, mode):
    runtime = make_runtime(**MATRIX)
    fake_provider = FAKE_PROVIDER[primary]
    if case.refused:
        name = RUNTIME_PROVIDER[fake_provider]
        broken = FakeUpstream.refused_url() + ("/v1" if fake_provider == "openai" else "")
        pool = runtime.router.providers
        pool.settings[name] = replace(pool.settings[name], base_url=broken)
    if case.valid_keys:
        upstream.valid_keys = {fake_provider: "the-real-key-is-something-else"}
    for fault in case.make(primary):
        upstream.add_fault(fault)
    outcome = case.streamed if (mode == "streamed" and case.streamed) else case.outcome
    who = answerer(replace(case, outcome=outcome), primary)
    if who is None:  # no candidate can take it (too long for every larger window)
        outcome = "error"
    prompt = f"matrix {case.id} {mode}: what is 2+2?"

    t0 = time.monotonic()
    try:
        result, events = await _call(runtime, ChatRequest(model=primary, prompt=prompt), mode)
    finally:
        upstream.valid_keys = None
    elapsed = time.monotonic() - t0

    # -- what the caller got
    assert case.min_s <= elapsed <= case.max_s, f"took {elapsed:.2f}s"  # see MATRIX
    assert result.latency_ms / 1000 <= elapsed + 0.05
    assert_no_key(repr(result.as_dict()), "the result")
    if outcome == "error":
        assert result.status == "error"
        assert result.model_used is None
        assert result.error_kind == case.error_kind
        assert result.error and "Traceback" not in result.error and len(result.error) < 6000
        if case.error_has:
            assert any(w in result.error.lower() for w in case.error_has.split("|")), result.error
        if mode == "whole":
            assert result.response_text == ""  # never a partial answer handed out
        else:
            # The streaming caller saw some text, then an explicit failure: never Done.
            assert not any(isinstance(e, Done) for e in events)
    else:
        assert result.status == "ok", result.error
        assert result.model_used == who
        assert result.provider == RUNTIME_PROVIDER[FAKE_PROVIDER[who]]
        assert result.fallback_used == (who != primary)
        full = expected_reply(who, prompt)
        if outcome == "continued":
            # The primary's beginning, then the answerer's text from that point on (the fake
            # continues a prefill from the same place in its own answer).
            assert_continued(result.response_text, primary, who, prompt)
            assert result.attempts[-1].outcome == "continued", result.attempts
            assert "prefill" in (result.attempts[-1].message or "")
            full = result.response_text
        if case.truncated:
            assert result.truncated and result.finish_reason == "length"
            assert full.startswith(result.response_text) and result.response_text != full
            assert "max_tokens" in (result.notice or "")
        else:
            assert result.response_text == full  # complete, never truncated
            assert result.finish_reason == "stop" and not result.truncated
        assert result.usage.total > 0 and result.usage.completion > 0
        # The provider's own usage was read (a broken attempt's share is our estimate).
        assert result.usage.estimated == (outcome == "continued")
        if events is not None:
            assert not any(isinstance(e, Restart) for e in events)
            deltas = "".join(e.text for e in events if isinstance(e, Delta))
            assert deltas == result.response_text

    # -- attempts: what the fake saw, per model, and when
    seen_models = {r.model for r in upstream.requests if r.method == "POST"}
    for model in CHAINS[primary]:
        posts = chat_posts(upstream, model)
        if case.refused and hits(case, primary, model):
            posts = [a for a in result.attempts if a.model == model]  # never reached the fake
        else:
            assert all(t0 <= r.t <= t0 + elapsed for r in posts)
            times = [r.t for r in posts]
            gaps = [b - a for a, b in itertools.pairwise(times)]
            assert all(g >= case.min_gap_s for g in gaps), gaps
    if case.max_wait_s is not None and events is not None:
        # The wait the router planned, not the wall-clock gap (which a loaded machine stretches).
        waits = [e.will_retry_in_s for e in events if isinstance(e, AttemptFailed)]
        planned = [w for w in waits if w]
        assert planned and all(w <= case.max_wait_s for w in planned), waits
        tried = [a for a in result.attempts if a.model == model and a.outcome != "cache_hit"]
        assert len(tried) == len(posts), (model, result.attempts)
        if hits(case, primary, model) and (
            who is None or CHAINS[primary].index(model) < CHAINS[primary].index(who)
        ):
            assert len(posts) == case.attempts, (model, len(posts))
        elif model == who:
            assert len(posts) >= 1
        elif who is not None and CHAINS[primary].index(model) > CHAINS[primary].index(who):
            assert posts == [], f"{model} was tried after {who} answered"
    assert seen_models <= set(CHAINS[primary])
    first = result.attempts[0]
    if case.errors and not (mode == "streamed" and outcome == "error" and not case.streamed):
        assert first.error in case.errors, result.attempts
        assert first.outcome in ("error", "timeout")
    if case.status is not None:
        assert first.status == case.status
    if case.valid_keys:  # Groq/OpenAI answer 401; Gemini 400 with reason API_KEY_INVALID
        assert first.status == (400 if fake_provider == "gemini" else 401)
    ok_attempts = [a for a in result.attempts if a.outcome in ("ok", "continued")]
    assert len(ok_attempts) == (0 if outcome == "error" else 1)

    # -- recorded once, as what happened
    row = runtime.store.get_request(result.prompt_id)
    assert row["status"] == result.status and row["model_used"] == result.model_used
    assert len(runtime.store.request_attempts(result.prompt_id)) == len(result.attempts)

    # -- the next healthy request through the same runtime succeeds (on the primary again)
    upstream.clear()
    follow = f"healthy follow-up after {case.id}"
    after, _ = await _call(runtime, ChatRequest(model=primary, prompt=follow), mode)
    assert after.status == "ok", after.error
    expected_model = (
        answerer(replace(case, outcome="fallback"), primary) if case.refused else (primary)
    )
    assert after.model_used == expected_model
    assert after.response_text == expected_reply(expected_model, follow)
    assert after.usage.total > 0 and not after.usage.estimated


# ---- primary flapping under a steady trickle ----------------------------------------------------


@pytest.mark.slow
async def test_primary_flapping_under_a_trickle(make_runtime, upstream: FakeUpstream):
    """Down for a while, then healthy; one request every 50 ms for about 2 s.

    While down: every request is answered (by the fallback) and the primary sees few
    attempts, because its circuit opens. After it recovers it is used again within one
    cooldown period.
    """
    cooldown = 0.5
    runtime = make_runtime(max_retries=0, cooldown_failures=2, cooldown_s=cooldown)
    upstream.add_fault(Fault(kind="status", status=503, model=GROQ))
    results: list[tuple[float, object]] = []
    t0 = time.monotonic()
    recovered_at: float | None = None
    primary_while_down: list = []

    async def one(i: int) -> None:
        result = await runtime.router.complete(ChatRequest(model=GROQ, prompt=f"trickle {i}"))
        results.append((time.monotonic(), result))

    tasks = []
    for i in range(40):
        if recovered_at is None and time.monotonic() - t0 >= 0.9:
            primary_while_down = chat_posts(upstream, GROQ)
            upstream.clear()  # the primary is healthy again
            recovered_at = time.monotonic()
        tasks.append(asyncio.create_task(one(i)))
        await asyncio.sleep(0.05)  # the trickle under test: one request every 50 ms
    await asyncio.gather(*tasks)
    assert recovered_at is not None
    # None waited out its deadline (10 s) behind the open circuit: each went to the fallback.
    routing = runtime.settings.routing
    assert all(r.latency_ms < routing.total_timeout_s * 1000 for _, r in results)

    assert len(results) == 40
    assert all(r.status == "ok" for _, r in results)  # never an error for the caller
    down = [r for t, r in results if t < recovered_at]
    assert down and all(r.model_used == GROQ_BIG for r in down)
    # The circuit kept the primary quiet: 2 failures open it, then at most one probe per
    # cooldown period while it is down (about 0.9 s down, 0.5 s cooldown; measured, since a
    # loaded machine stretches it). A little slack for requests in flight when it opened.
    down_s = recovered_at - t0
    assert 2 <= len(primary_while_down) <= 2 + int(down_s / cooldown) + 2
    failed_on_primary = [
        a for _, r in results for a in r.attempts if a.model == GROQ and a.outcome == "error"
    ]
    assert len(failed_on_primary) == len(primary_while_down)
    skipped = [
        a
        for _, r in results
        for a in r.attempts
        if a.model == GROQ and a.outcome == "skipped_circuit_open"
    ]
    assert len(skipped) >= 10
    # Back on the primary within one cooldown period of its recovery, and it stays there.
    back = [t for t, r in results if r.model_used == GROQ]
    assert back, "the primary was never used again"
    assert min(back) - recovered_at <= cooldown + 0.3
    last_quarter = [r for t, r in results if t > recovered_at + cooldown + 0.3]
    assert last_quarter and all(r.model_used == GROQ for r in last_quarter)
    assert runtime.router.model_state(f"groq:{GROQ}") == "closed"


# ---- fallback accounting -------------------------------------------------------------------------


async def test_fallback_accounting_in_sqlite_jsonl_and_csv(make_runtime, upstream: FakeUpstream):
    """Failed attempts are attempts, not completions, in every sink; replies name their model."""
    runtime = make_runtime(**MATRIX)
    upstream.add_fault(Fault(kind="status", status=503, model=GROQ))
    fell = [
        await runtime.router.complete(ChatRequest(model=GROQ, prompt=f"acc {i}")) for i in range(3)
    ]
    upstream.clear()
    upstream.add_fault(Fault(kind="status", status=503))
    failed = await runtime.router.complete(ChatRequest(model=GROQ, prompt="acc doomed"))
    upstream.clear()
    ok = await runtime.router.complete(ChatRequest(model=GROQ, prompt="acc healthy"))

    assert all(r.model_used == GROQ_BIG and r.fallback_used for r in fell)
    assert failed.status == "error" and ok.model_used == GROQ and not ok.fallback_used
    ids = [r.prompt_id for r in [*fell, failed, ok]]
    store = runtime.store
    logs = store.logs_dir

    # SQLite: one request row each; every try is an attempt row.
    for r in [*fell, failed, ok]:
        row = store.get_request(r.prompt_id)
        assert row["model_used"] == r.model_used and row["status"] == r.status
        assert row["fallback_used"] == r.fallback_used
        outcomes = [a["outcome"] for a in store.request_attempts(r.prompt_id)]
        assert outcomes == [a.outcome for a in r.attempts]
    assert [a["outcome"] for a in store.request_attempts(fell[0].prompt_id)] == [
        "error", "error", "error", "ok"
    ]  # fmt: skip
    stats = store.stats()
    assert stats["total_prompts"] == 5
    assert stats["ok"] == 4 and stats["errors"] == 1
    assert stats["total_fallbacks"] == 3
    assert stats["model_usage"] == {GROQ_BIG: 3, GROQ: 1}  # completions by the model that answered

    # JSONL and CSV: one line per request (not per attempt), the answering model named.
    rows, problems = read_jsonl(logs / "prompts.jsonl")
    assert problems == []
    assert [r["prompt_id"] for r in rows] == ids
    assert [r["model_used"] for r in rows] == [GROQ_BIG] * 3 + [None, GROQ]
    assert [len(r["attempts"]) for r in rows] == [4, 4, 4, 9, 1]
    assert [r["status"] for r in rows] == ["ok", "ok", "ok", "error", "ok"]
    assert rows[0]["attempts"][0]["status"] == 503 and rows[0]["attempts"][3]["outcome"] == "ok"
    csv_rows, csv_problems = read_csv(logs / "prompts.csv")
    assert csv_problems == []
    assert [r["prompt_id"] for r in csv_rows] == ids
    assert [r["fallback_used"] for r in csv_rows] == ["true"] * 3 + ["false", "false"]
    assert [r["model_used"] for r in csv_rows] == [GROQ_BIG] * 3 + ["", GROQ]
    assert [len(json.loads(r["attempts"])) for r in csv_rows] == [4, 4, 4, 9, 1]


# ---- cold start: the SDK import is not an upstream timeout ---------------------------------------

_COLD_START = r"""
import asyncio, json, sys, tempfile
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from conftest import fake_settings
from llmrouter_tui.core.runtime import Runtime
from llmrouter_tui.core.types import ChatRequest
from llmrouter_tui.testing.fake_upstream import FakeUpstream

assert "google.genai" not in sys.modules and "groq" not in sys.modules

async def main():
    fake = FakeUpstream().start()
    settings = fake_settings(fake.base_url, Path(tempfile.mkdtemp()), first_token_timeout_s=0.3)
    runtime = Runtime(settings)
    out = []
    for model in ("gemini-3.5-flash", "openai/gpt-oss-20b"):
        r = await runtime.router.complete(ChatRequest(model=model, prompt="cold start"))
        out.append([r.model_used, [a.error for a in r.attempts]])
    await runtime.aclose()
    fake.stop()
    print(json.dumps({"results": out}))

asyncio.run(main())
"""


@pytest.mark.slow
def test_first_request_of_a_process_is_not_charged_for_the_sdk_import(tmp_path):
    """Importing google-genai / groq (up to ~0.5 s) must not count as the provider's
    first-token timeout (a fallback, and a failure against a model never contacted)."""
    import subprocess
    import sys

    from reliability_helpers import TESTS_DIR
    from server_helpers import clean_env

    done = subprocess.run(
        [sys.executable, "-c", _COLD_START, str(TESTS_DIR)],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["results"] == [[GEMINI, [None]], [GROQ, [None]]]
