"""Pairwise preferences, side-by-side compares and the leaderboard: Bradley–Terry checked
against independent reference computations, preferences recorded exactly once everywhere."""

from __future__ import annotations

import io
import json
import math
import os
import sqlite3
import stat
import statistics
from collections.abc import Iterator
from contextlib import aclosing, closing
from dataclasses import replace
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from conftest import fake_settings
from waiting import until

from llmrouter_tui.core.compare import compare, compare_stream
from llmrouter_tui.core.errors import InputError, UnknownPromptError
from llmrouter_tui.core.leaderboard import (
    ELO_BASE,
    ELO_SCALE,
    Z95,
    PairCount,
    RatingCount,
    bradley_terry,
    rows,
)
from llmrouter_tui.core.logsinks import PREFERENCE_FIELDS, read_csv, read_jsonl
from llmrouter_tui.core.runtime import Runtime
from llmrouter_tui.core.store import Store
from llmrouter_tui.core.types import ChatRequest, Delta, Done, Result, Usage
from llmrouter_tui.leaderboard_cmd import run_leaderboard
from llmrouter_tui.testing.fake_upstream import FakeUpstream

GROQ = "openai/gpt-oss-20b"
GEMINI = "gemini-3.5-flash"

# Fixed data: (a, b, a wins, b wins, ties, both bad). Connected, nobody unbeaten.
DATA = [
    PairCount("A", "B", 7, 3, 2, 0),
    PairCount("B", "C", 6, 4, 0, 1),
    PairCount("A", "C", 8, 2, 1, 1),
    PairCount("C", "D", 5, 5, 2, 0),
    PairCount("B", "D", 4, 1, 0, 0),
    PairCount("D", "A", 1, 3, 0, 2),
]


def reference_mm(data: list[PairCount], iterations: int = 20_000) -> dict[str, float]:
    """Hunter's (2004) MM algorithm for Bradley–Terry, written out independently: ties and
    both-bad count half a win each; strengths normalised to sum to the number of models."""
    models = sorted({m for p in data for m in (p.a, p.b)})
    wins = dict.fromkeys(models, 0.0)
    games: dict[tuple[str, str], float] = {}
    for p in data:
        half = (p.ties + p.both_bad) / 2
        wins[p.a] += p.a_wins + half
        wins[p.b] += p.b_wins + half
        n = p.a_wins + p.b_wins + p.ties + p.both_bad
        games[(p.a, p.b)] = games.get((p.a, p.b), 0) + n
        games[(p.b, p.a)] = games.get((p.b, p.a), 0) + n
    p_ = dict.fromkeys(models, 1.0)
    for _ in range(iterations):
        new = {}
        for i in models:
            denominator = sum(n / (p_[i] + p_[j]) for (a, j), n in games.items() if a == i)
            new[i] = wins[i] / denominator
        total = sum(new.values())
        p_ = {m: v * len(models) / total for m, v in new.items()}
    return p_


def log_likelihood(theta: dict[str, float], data: list[PairCount], prior: float) -> float:
    """BT log-likelihood in θ = ln s, with `prior` half-won games against a fixed θ = 0."""

    def log_sigmoid(x: float) -> float:
        return -math.log1p(math.exp(-x)) if x > -30 else x

    total = 0.0
    for p in data:
        d = theta[p.a] - theta[p.b]
        half = (p.ties + p.both_bad) / 2
        total += (p.a_wins + half) * log_sigmoid(d) + (p.b_wins + half) * log_sigmoid(-d)
    for t in theta.values():
        total += prior / 2 * (log_sigmoid(t) + log_sigmoid(-t))
    return total


def reference_gradient_ascent(data: list[PairCount], prior: float) -> dict[str, float]:
    """The same maximum found by plain gradient ascent on θ (another method entirely)."""
    models = sorted({m for p in data for m in (p.a, p.b)})
    theta = dict.fromkeys(models, 0.0)
    for _ in range(40_000):
        grad = dict.fromkeys(models, 0.0)
        for p in data:
            pa = 1 / (1 + math.exp(theta[p.b] - theta[p.a]))
            half = (p.ties + p.both_bad) / 2
            n = p.a_wins + p.b_wins + p.ties + p.both_bad
            grad[p.a] += p.a_wins + half - n * pa
            grad[p.b] += p.b_wins + half - n * (1 - pa)
        for m in models:
            grad[m] += prior / 2 - prior / (1 + math.exp(-theta[m]))
        theta = {m: theta[m] + 0.02 * grad[m] for m in models}
    return theta


def numeric_standard_errors(
    theta: dict[str, float], data: list[PairCount], prior: float
) -> dict[str, float]:
    """Standard errors from the inverse of a finite-difference Hessian of the likelihood."""
    models = sorted(theta)
    h = 1e-4
    n = len(models)
    hessian = [[0.0] * n for _ in range(n)]
    for i, mi in enumerate(models):
        for j, mj in enumerate(models):

            def f(di: float, dj: float, mi: str = mi, mj: str = mj) -> float:
                moved = dict(theta)
                moved[mi] += di
                moved[mj] += dj
                return log_likelihood(moved, data, prior)

            hessian[i][j] = (f(h, h) - f(h, -h) - f(-h, h) + f(-h, -h)) / (4 * h * h)
    info = [[-v for v in row] for row in hessian]
    # Invert by Gauss–Jordan (independent of the module's own helper).
    aug = [row + [float(i == k) for k in range(n)] for i, row in enumerate(info)]
    for c in range(n):
        pivot = max(range(c, n), key=lambda r: abs(aug[r][c]))
        aug[c], aug[pivot] = aug[pivot], aug[c]
        lead = aug[c][c]
        aug[c] = [v / lead for v in aug[c]]
        for r in range(n):
            if r != c:
                factor = aug[r][c]
                aug[r] = [a - factor * b for a, b in zip(aug[r], aug[c], strict=True)]
    return {m: math.sqrt(aug[i][n + i]) for i, m in enumerate(models)}


# ---- Bradley–Terry ----------------------------------------------------------------------------


def test_bradley_terry_matches_the_classic_mm_algorithm():
    ours = bradley_terry(DATA, prior=0.0)
    reference = reference_mm(DATA)
    for a in ours:
        for b in ours:
            assert ours[a] / ours[b] == pytest.approx(reference[a] / reference[b], rel=1e-6)
    assert max(ours, key=ours.__getitem__) == "A"


def test_bradley_terry_with_its_prior_matches_gradient_ascent():
    for prior in (0.5, 1.0, 4.0):
        ours = bradley_terry(DATA, prior=prior)
        theta = reference_gradient_ascent(DATA, prior)
        for model, strength in ours.items():
            assert math.log(strength) == pytest.approx(theta[model], abs=1e-6)


def test_the_prior_makes_sparse_data_converge():
    unbeaten = [PairCount("X", "Y", 3, 0, 0, 0)]
    strengths = bradley_terry(unbeaten)  # prior 1: finite, X ahead, mirrored around 1
    assert math.isfinite(strengths["X"]) and strengths["X"] > 1 > strengths["Y"] > 0
    assert strengths["X"] * strengths["Y"] == pytest.approx(1.0)
    assert bradley_terry([]) == {}


def test_leaderboard_rows_scores_intervals_and_counts():
    ratings = {"A": RatingCount(3, 4 + 5 + 3, 16 + 25 + 9), "E": RatingCount(1, 2, 4)}
    table = rows(DATA, ratings)
    by_model = {r["model"]: r for r in table}
    assert [r["model"] for r in table][:1] == ["A"] and [r["rank"] for r in table] == [
        1,
        2,
        3,
        4,
        5,
    ]
    assert table[-1]["model"] == "E" and table[-1]["bt_score"] is None  # ratings only
    theta = reference_gradient_ascent(DATA, 1.0)
    errors = numeric_standard_errors(theta, DATA, 1.0)
    for model in "ABCD":
        row = by_model[model]
        assert row["bt_score"] == pytest.approx(ELO_BASE + ELO_SCALE * theta[model], abs=0.06)
        half = Z95 * errors[model] * ELO_SCALE
        assert row["bt_low"] == pytest.approx(row["bt_score"] - half, abs=0.2)
        assert row["bt_high"] == pytest.approx(row["bt_score"] + half, abs=0.2)
    a = by_model["A"]
    # A: vs B 7-3 (2 ties), vs C 8-2 (1 tie, 1 both bad), vs D 3-1 (2 both bad).
    assert (a["wins"], a["losses"], a["ties"], a["both_bad"]) == (18, 6, 3, 3)
    assert a["compares"] == 30 and a["win_rate"] == pytest.approx((18 + 3) / 30)
    assert a["mean_rating"] == pytest.approx(4.0) and a["ratings"] == 3
    half = Z95 * statistics.stdev([4, 5, 3]) / math.sqrt(3)
    assert a["rating_low"] == pytest.approx(max(1.0, 4 - half), abs=1e-3)
    assert a["rating_high"] == pytest.approx(min(5.0, 4 + half), abs=1e-3)
    assert by_model["E"]["rating_low"] is None  # one rating: no interval


# ---- preferences in the store ------------------------------------------------------------------


def record(store: Store, model: str, template: str | None = None, compare_id: str | None = None):
    prompt_id = "p-" + os.urandom(6).hex()
    result = Result(
        prompt_id=prompt_id,
        requested_model=model,
        model_used=model,
        provider="groq",
        prompt="q",
        response_text="r",
        status="ok",
        latency_ms=10.0,
        ttft_ms=5.0,
        usage=Usage(1, 1, 2),
        from_cache=False,
        fallback_used=False,
        attempts=[],
        created_at=datetime.now(UTC).isoformat(),
        template_id=template,
        compare_id=compare_id,
    )
    assert store.record(result) == []
    return prompt_id


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "data") as s:
        yield s


def test_preferences_are_recorded_exactly_once_everywhere(store: Store):
    a = record(store, GROQ, compare_id="cmp_1")
    b = record(store, GEMINI, compare_id="cmp_1")
    first = store.prefer(a, b, "a", feedback='=HYPERLINK("http://evil")')
    assert first["winner"] == GROQ and first["compare_id"] == "cmp_1"
    assert first["model_a"] == GROQ and first["model_b"] == GEMINI and first["warnings"] == []
    again = store.prefer(b, a, "tie")  # voting again on the pair (either order) replaces
    assert again["winner"] is None

    conn = sqlite3.connect(store.path)
    assert conn.execute("SELECT count(*) FROM preferences").fetchone()[0] == 1
    assert conn.execute("SELECT outcome FROM preferences").fetchone()[0] == "tie"
    assert conn.execute("SELECT count(*) FROM preference_events").fetchone()[0] == 2
    stats = conn.execute(
        "SELECT model_a, model_b, a_wins, b_wins, ties, both_bad FROM preference_stats"
    ).fetchall()
    conn.close()
    assert stats == [(GEMINI, GROQ, 0, 0, 1, 0)]  # the replaced vote was taken out
    assert store.get_preference(a, b)["outcome"] == "tie"

    jsonl, warnings = read_jsonl(store.logs_dir / "preferences.jsonl")
    assert warnings == [] and len(jsonl) == 2
    assert list(jsonl[0]) == list(PREFERENCE_FIELDS)
    assert [r["outcome"] for r in jsonl] == ["a", "tie"]
    assert jsonl[0]["feedback"] == '=HYPERLINK("http://evil")'  # JSONL keeps text as is
    csv_rows, warnings = read_csv(store.logs_dir / "preferences.csv")
    assert warnings == [] and len(csv_rows) == 2
    assert csv_rows[0]["feedback"] == '\'=HYPERLINK("http://evil")'  # neutralised
    assert csv_rows[0]["winner"] == GROQ and csv_rows[1]["prompt_a"] == b
    for name in ("preferences.jsonl", "preferences.csv"):
        assert stat.S_IMODE((store.logs_dir / name).stat().st_mode) == 0o600


def test_preference_input_is_checked(store: Store):
    a = record(store, GROQ)
    b = record(store, GEMINI)
    with pytest.raises(InputError, match="outcome must be one of a, b, tie, both_bad"):
        store.prefer(a, b, "left")
    with pytest.raises(InputError, match="two different replies"):
        store.prefer(a, a, "a")
    with pytest.raises(UnknownPromptError):
        store.prefer(a, "nope", "b")
    assert not (store.logs_dir / "preferences.jsonl").exists()


def test_store_leaderboard_overall_and_per_template(store: Store):
    for _ in range(3):
        store.prefer(record(store, GROQ, "t1"), record(store, GEMINI, "t1"), "b")
    store.prefer(record(store, GROQ, "t2"), record(store, GEMINI, "t2"), "a")
    store.prefer(record(store, GROQ, "t1"), record(store, GEMINI, "t2"), "both_bad")  # no template
    store.prefer(record(store, GROQ), record(store, GROQ), "a")  # same model: not counted
    store.rate(record(store, GEMINI, "t1"), 5)
    store.rate(record(store, GEMINI, "t2"), 3)

    overall = store.leaderboard()
    assert [r["model"] for r in overall] == [GEMINI, GROQ]
    gemini = overall[0]
    assert (gemini["wins"], gemini["losses"], gemini["both_bad"]) == (3, 1, 1)
    assert gemini["compares"] == 5 and gemini["ratings"] == 2 and gemini["mean_rating"] == 4.0
    assert rows([PairCount(GROQ, GEMINI, 1, 3, 0, 1)], {GEMINI: RatingCount(2, 8, 34)}) == overall

    t2 = store.leaderboard("t2")
    assert [r["model"] for r in t2] == [GROQ, GEMINI]
    assert t2[0]["wins"] == 1 and t2[1]["mean_rating"] == 3.0
    assert store.leaderboard("nothing") == []
    assert store.stats()["leaderboard"] == overall


def test_leaderboard_command(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    out = io.StringIO()
    assert run_leaderboard(["--data-dir", str(data)], out) == 0
    assert "No votes yet" in out.getvalue()
    assert not (data / "llmrouter.db").exists()  # looking does not create a database
    with Store(data) as s:
        for _ in range(2):
            s.prefer(record(s, GROQ, "t1"), record(s, GEMINI, "t1"), "a")
        s.rate(record(s, GEMINI), 4)
    out = io.StringIO()
    assert run_leaderboard(["--data-dir", str(data)], out) == 0
    text = out.getvalue()
    assert "2 compares, 1 ratings" in text
    lines = text.splitlines()
    assert lines[2].split()[:2] == ["1", GROQ] and "2-0-0" in lines[2]
    assert lines[3].split()[:2] == ["2", GEMINI] and "4.00" in lines[3]
    out = io.StringIO()
    assert run_leaderboard(["--data-dir", str(data), "--json", "--template", "t1"], out) == 0
    payload = json.loads(out.getvalue())
    assert payload["template_id"] == "t1"
    assert [(r["model"], r["wins"], r["ratings"]) for r in payload["rows"]] == [
        (GROQ, 2, 0),
        (GEMINI, 0, 0),
    ]
    bad = tmp_path / "bad.toml"
    bad.write_text("[budget]\nnope = 1\n")
    assert run_leaderboard(["--config", str(bad), "--data-dir", str(data)], io.StringIO()) == 2


def test_cli_dispatches_leaderboard(tmp_path: Path, capsys):
    from llmrouter_tui.cli import main

    assert main(["leaderboard", "--data-dir", str(tmp_path / "d"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"template_id": None, "rows": []}


# ---- compares through the router --------------------------------------------------------------


@pytest.fixture
def runtime(upstream: FakeUpstream, tmp_path: Path) -> Iterator[Runtime]:
    settings = fake_settings(upstream.base_url, tmp_path / "rt")
    rt = Runtime(replace(settings))
    yield rt
    rt.close()


async def test_compare_routes_one_request_to_two_models(runtime: Runtime, upstream):
    upstream.chunk_delay_s = 0.005
    seen: list[int] = []
    texts: dict[int, list[str]] = {0: [], 1: []}
    results: dict[int, Result] = {}
    request = ChatRequest(prompt="compare us", source="tui")
    async with aclosing(compare_stream(runtime.router, request, (GROQ, GEMINI))) as items:
        async for item in items:
            seen.append(item.side)
            if isinstance(item.event, Delta):
                texts[item.side].append(item.event.text)
            if isinstance(item.event, Done):
                results[item.side] = item.event.result
    assert results[0].model_used == GROQ and results[1].model_used == GEMINI
    assert "".join(texts[0]) == results[0].response_text
    assert "".join(texts[1]) == results[1].response_text
    switches = sum(1 for x, y in pairwise(seen) if x != y)
    assert switches >= 3  # the two streams interleave: they ran concurrently
    compare_id = results[0].compare_id
    assert compare_id and compare_id == results[1].compare_id
    for side in (0, 1):
        row = runtime.store.get_request(results[side].prompt_id)
        assert row["compare_id"] == compare_id and row["source"] == "tui"

    received: list[dict[str, Any]] = []
    runtime.on_preference(received.append)
    verdict = runtime.prefer(results[0].prompt_id, results[1].prompt_id, "b")
    assert verdict["compare_id"] == compare_id and verdict["winner"] == GEMINI
    assert received == [verdict]
    board = runtime.store.leaderboard()
    assert board[0]["model"] == GEMINI and board[0]["wins"] == 1


async def test_compare_collects_both_results_and_cancels_cleanly(runtime: Runtime, upstream):
    both = await compare(runtime.router, ChatRequest(prompt="whole"), (GEMINI, "llama3.2"))
    assert [r.status for r in both.results] == ["ok", "ok"]
    assert both.prompt_ids == (both.results[0].prompt_id, both.results[1].prompt_id)
    assert {r.compare_id for r in both.results} == {both.compare_id}

    upstream.chunk_delay_s = 0.05
    request = ChatRequest(prompt="stop early please")
    async with aclosing(compare_stream(runtime.router, request, (GROQ, GEMINI))) as items:
        async for item in items:
            if isinstance(item.event, Delta):
                break  # the caller goes away mid-answer

    def statuses() -> list[str]:
        with closing(sqlite3.connect(runtime.store.path)) as conn:
            query = "SELECT status FROM requests WHERE prompt = 'stop early please'"
            return sorted(r[0] for r in conn.execute(query))

    await until(lambda: len(statuses()) == 2, "both sides' records")
    assert statuses() == ["cancelled", "cancelled"]
    with pytest.raises(InputError, match="exactly two models"):
        await compare(runtime.router, request, (GROQ,))


def test_upgrading_a_version_3_database_keeps_its_ratings(tmp_path: Path):
    from llmrouter_tui.core.db import MIGRATIONS, SCHEMA_VERSION, migrate

    path = tmp_path / "llmrouter.db"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, path, MIGRATIONS[:3]) == 3
    conn.execute(
        "INSERT INTO requests (prompt_id, created_at, requested_model, model_used, prompt, "
        "response, latency_ms, status, template_id) VALUES "
        "('old1', '2025-01-01T00:00:00Z', ?, ?, 'q', 'r', 10, 'ok', 'commit_message'), "
        "('old2', '2025-01-01T00:00:01Z', ?, ?, 'q', 'r', 10, 'ok', NULL)",
        (GROQ, GROQ, GEMINI, GEMINI),
    )
    conn.execute(
        "INSERT INTO ratings (prompt_id, model, rating, created_at) VALUES "
        "('old1', ?, 5, 'x'), ('old2', ?, 2, 'x')",
        (GROQ, GEMINI),
    )
    conn.close()
    with Store(tmp_path) as s:
        assert s._conn is not None
        assert s._conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 5
        board = {r["model"]: r for r in s.leaderboard()}
        assert board[GROQ]["mean_rating"] == 5.0 and board[GEMINI]["mean_rating"] == 2.0
        assert [r["model"] for r in s.leaderboard("commit_message")] == [GROQ]
        evidence = s.auto_evidence()
        assert evidence.template_ratings["commit_message"][GROQ] == RatingCount(1, 5, 25)
        s.rate("old1", 3)  # re-rating an upgraded reply moves its vote, not adds one
        assert s.leaderboard("commit_message")[0]["mean_rating"] == 3.0
        assert s.leaderboard()[0]["ratings"] == 1
