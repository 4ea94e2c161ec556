"""Shared pieces of the reliability suite (tests/test_reliability_*.py).

Also runnable as a worker process for the durability tests:

    python tests/reliability_helpers.py worker DATA_DIR COUNT

runs a core Runtime against its own fake upstream and records requests and ratings in a
loop (printing one line per completed request), so a test can SIGKILL it mid-flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from llmrouter_tui.core.record_batch import MAX_BATCH
from llmrouter_tui.testing.fake_upstream import Fault

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent

# Mirrors conftest's recognisable fake keys (conftest is not importable from a subprocess).
GROQ_KEY = "gsk_TESTKEY_groq_5f3a9c1d7e"
GEMINI_KEY = "AIzaTESTKEY_gemini_8b2e4f6a"
FRAGMENT = 6

GROQ = "openai/gpt-oss-20b"
GROQ_BIG = "openai/gpt-oss-120b"
GEMINI = "gemini-3.5-flash"
GEMINI_LITE = "gemini-3.5-flash-lite"
LOCAL = "llama3.2"

# Which fake-upstream provider serves each model in the test settings (conftest.fake_settings).
FAKE_PROVIDER = {
    GROQ: "groq",
    GROQ_BIG: "groq",
    GEMINI: "gemini",
    GEMINI_LITE: "gemini",
    "gemini-3.8-flash": "gemini",
    LOCAL: "openai",
}
# Context windows (catalog.toml, and conftest's llama3.2 entry).
WINDOW = {
    GROQ: 131_072,
    GROQ_BIG: 131_072,
    GEMINI: 1_048_576,
    GEMINI_LITE: 1_048_576,
    "gemini-3.8-flash": 1_048_576,
    LOCAL: 131_072,
}
# Candidate chains (catalog fallbacks, plus conftest's llama3.2 entry).
CHAINS = {
    GROQ: [GROQ, GROQ_BIG, GEMINI],
    GEMINI: [GEMINI, GEMINI_LITE, GROQ_BIG],
    LOCAL: [LOCAL, GEMINI],
}


# ---- the fault matrix --------------------------------------------------------------------------

# Matrix routing: short backoff we can measure, breaker out of the way (flapping tests it).
# The attempt and total deadlines are long on purpose: a case that forgot its own, shorter
# deadline (first token, stream idle) would wait them out and cross HANG_BOUND_S, while a
# slow shared machine cannot (what each case should take is timed in bench/, not here).
MATRIX = {
    "backoff_initial_s": 0.05,
    "backoff_max_s": 0.1,
    "cooldown_failures": 1000,
    "attempt_timeout_s": 40,
    "total_timeout_s": 80,
}
HANG_BOUND_S = 20.0
# Cases that wait out a deadline or a Retry-After (about a second each): outside the quick
# loop, `pytest -m "not slow"`; CI runs them.
SLOW = (pytest.mark.slow,)
FAULT_FOREVER_S = 120.0  # a stall or slow first token no router deadline lets through
RUNTIME_PROVIDER = {"groq": "groq", "gemini": "gemini", "openai": "local"}


@dataclass(frozen=True)
class Case:
    """One fault and what every caller must see because of it.

    scope: the fault hits the primary "model", its whole "provider", or "all" models.
    outcome: "same" (answered by the primary), "fallback" (by the first candidate the fault
    does not hit), "continued" (a broken answer finished by that candidate) or "error".
    `streamed` overrides the outcome for a streaming caller.
    """

    id: str
    make: Callable[[str], list[Fault]]
    outcome: str
    attempts: int  # attempts the fake sees on each model the fault hits
    errors: tuple[str, ...] = ()  # acceptable attempts[0].error values
    scope: str = "model"
    streamed: str | None = None
    error_kind: str | None = None
    error_has: str | None = None
    min_gap_s: float = 0.0  # between the fake's posts: sleeps are never shorter
    max_wait_s: float | None = None  # the router's own planned wait before a retry
    min_s: float = 0.0
    max_s: float = HANG_BOUND_S  # only catches a missing deadline; see MATRIX
    status: int | None = None
    valid_keys: bool = False
    refused: bool = False
    truncated: bool = False
    marks: tuple = field(default=())  # pytest marks for this case's tests, e.g. SLOW

    def param(self) -> Any:
        """This case as a pytest parameter, with its id and marks."""
        return pytest.param(self, marks=self.marks, id=self.id)


def _f(kind: str, **kw) -> Callable[[str], list[Fault]]:
    return lambda model: [Fault(kind=kind, model=model, **kw)]


def _everywhere(kind: str, **kw) -> Callable[[str], list[Fault]]:
    return lambda model: [Fault(kind=kind, **kw)]


CASES = [
    Case("429_retry_after", _f("status", status=429, retry_after_s=0.3, times=1), "same", 2,
         ("rate_limited",), min_gap_s=0.3, max_wait_s=0.3 * 1.1, min_s=0.3, status=429,
         marks=SLOW),
    Case("429_persistent_no_hint", _f("status", status=429), "fallback", 3, ("rate_limited",),
         min_gap_s=0.025, max_wait_s=0.1, status=429),
    Case("500_once", _f("status", status=500, times=1), "same", 2, ("server_error",),
         status=500),
    Case("503_persistent", _f("status", status=503), "fallback", 3, ("server_error",),
         status=503),
    Case("503_nowhere_to_go", _everywhere("status", status=503,
         message="The model is overloaded."), "error", 3, ("server_error",), scope="all",
         error_kind="all_failed", error_has="503", status=503),
    Case("non_json_502", _f("non_json"), "fallback", 3, ("server_error",), status=502),
    Case("reset_before_any_byte", _f("reset", times=1), "same", 2, ("connect_error",)),
    Case("refused", lambda m: [], "fallback", 3, ("connect_error",), scope="provider",
         refused=True, marks=SLOW),
    Case("silent", _f("silent"), "fallback", 1, ("first_token_timeout",), min_s=0.6,
         marks=SLOW),
    Case("slow_first_token", _f("slow_first_token", delay_s=FAULT_FOREVER_S), "fallback", 1,
         ("first_token_timeout",), min_s=0.6, marks=SLOW),
    # Mid-answer breaks are continued: once more on the primary (broken again), then by the
    # fallback from where the text stopped (prefill); one answer, never restarted.
    Case("cut_mid_answer", _f("cut", after_chunks=3), "continued", 2, ("stream_cut",)),
    Case("stall_mid_answer", _f("stall", after_chunks=2, delay_s=FAULT_FOREVER_S), "continued",
         2, ("stream_stalled",), min_s=1.0, marks=SLOW),
    Case("malformed_mid_answer", _f("malformed_chunk", after_chunks=1), "continued", 2,
         ("malformed", "stream_cut")),
    Case("malformed_first_chunk", _f("malformed_chunk", after_chunks=0), "fallback", 1,
         ("malformed", "stream_cut")),
    Case("no_done", _f("no_done"), "same", 1),
    Case("context_length", _f("context_length"), "fallback", 1, ("context_length",),
         status=400, error_kind="context_length"),  # an error where no window is larger
    Case("content_filter", _f("content_filter"), "error", 1, ("content_filter",),
         error_kind="content_filter", error_has="filter|block"),
    Case("invalid_key", lambda m: [], "fallback", 1, ("auth",), scope="provider",
         valid_keys=True),
    Case("404_retired", _f("status", status=404), "fallback", 1, ("not_found",), status=404),
    Case("truncated_length", _f("truncated_length"), "same", 1, truncated=True),
]  # fmt: skip


def hits(case: Case, primary: str, model: str) -> bool:
    """Does the case's fault apply to `model` (in `primary`'s chain)?"""
    if case.scope == "all":
        return True
    if case.scope == "provider":
        return FAKE_PROVIDER[model] == FAKE_PROVIDER[primary]
    return model == primary


def answerer(case: Case, primary: str) -> str | None:
    outcome = case.outcome
    if outcome == "same":
        return primary
    if outcome == "error":
        return None
    # "fallback" and "continued": the first candidate the fault does not hit (and, after a
    # context-length refusal, with a larger window; None if there is none)
    return next(
        (m for m in CHAINS[primary] if not hits(case, primary, m) and fits(case, primary, m)),
        None,
    )


def fits(case: Case, primary: str, model: str) -> bool:
    """May `model` take the request after the primary failed? A context-length refusal
    skips every candidate whose window is no larger (core/context_fit.py)."""
    return case.id != "context_length" or WINDOW[model] > WINDOW[primary]


# ---- key secrecy ------------------------------------------------------------------------------


# Public words that happen to be inside the fake keys ("gemini"): not a leak on their own.
_PUBLIC_TEXT = " ".join(
    [*FAKE_PROVIDER, "groq gemini openai local", "demo-key-not-secret", "_gemini_", "_groq_"]
)


def key_fragments(keys: Iterable[str] = (GROQ_KEY, GEMINI_KEY), size: int = FRAGMENT) -> set[str]:
    """Every `size`-character piece of every key (a leak of any of them is a leak).

    Pieces that are public words (model and provider names) are left out.
    """
    pieces: set[str] = set()
    for key in keys:
        for start in range(len(key) - size + 1):
            piece = key[start : start + size]
            if piece not in _PUBLIC_TEXT:
                pieces.add(piece)
    return pieces


_FRAGMENTS = key_fragments()


def leaked_fragments(text: str | bytes) -> list[str]:
    """The key fragments found in `text` (empty when nothing leaked)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return sorted(f for f in _FRAGMENTS if f in text)


def assert_no_key(text: str | bytes, where: str = "output") -> None:
    found = leaked_fragments(text)
    assert not found, f"API key fragments {found} leaked into {where}"


# ---- fake upstream ----------------------------------------------------------------------------


def chat_posts(fake: Any, model: str) -> list[Any]:
    """Chat requests the fake saw for `model` (model listings excluded)."""
    return [r for r in fake.requests_for(model) if r.method == "POST"]


def expected_reply(model: str, prompt: str) -> str:
    """The fake's complete deterministic reply for a one-turn prompt to `model`."""
    from llmrouter_tui.testing.fake_payloads import default_reply

    return default_reply(FAKE_PROVIDER[model], model, [{"role": "user", "content": prompt}])


def assert_continued(text: str, primary: str, who: str, prompt: str) -> None:
    """`text` is the primary's beginning, then `who`'s answer from that point on (the fake
    continues a prefill from the same place in its own answer): one answer, nothing lost."""
    begun, full = expected_reply(primary, prompt), expected_reply(who, prompt)
    split = next(i for i in range(len(text), 0, -1) if begun.startswith(text[:i]))
    assert 0 < split < len(full) and text[split:] == full[split:], text


# ---- data directory checks ---------------------------------------------------------------------


def integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def db_rows(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every regular file under `root` with its bytes (to prove nothing was changed)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


# ---- processes ---------------------------------------------------------------------------------


# ---- sink audit -------------------------------------------------------------------------------


@dataclass
class Audit:
    """What each sink of a data directory holds (ids in file / commit order)."""

    requests: list[str]  # SQLite, by rowid (commit order)
    jsonl: list[str]
    csv: list[str]
    ratings_db: list[tuple[str, int, str | None]]  # rating_events, by id
    ratings_jsonl: list[tuple[str, int, str | None]]
    ratings_csv: list[tuple[str, int, str | None]]
    warnings: dict[str, list[str]]  # reader warnings per log file name


def audit(data_dir: Path) -> Audit:
    """Read every sink; the database must pass `PRAGMA integrity_check`."""
    from llmrouter_tui.core.logsinks import read_csv, read_jsonl

    db = data_dir / "llmrouter.db"
    assert integrity(db) == "ok"
    logs = data_dir / "logs"
    warnings: dict[str, list[str]] = {}

    def read(name: str) -> list[dict[str, Any]]:
        path = logs / name
        if not path.exists():
            warnings[name] = []
            return []
        rows, found = (read_jsonl if name.endswith(".jsonl") else read_csv)(path)
        warnings[name] = found
        return rows

    def rating(row: dict[str, Any]) -> tuple[str, int, str | None]:
        return (row["prompt_id"], int(row["rating"]), row["feedback"] or None)

    return Audit(
        requests=[r[0] for r in db_rows(db, "SELECT prompt_id FROM requests ORDER BY rowid")],
        jsonl=[r["prompt_id"] for r in read("prompts.jsonl")],
        csv=[r["prompt_id"] for r in read("prompts.csv")],
        ratings_db=[
            (r[0], r[1], r[2])
            for r in db_rows(
                db, "SELECT prompt_id, rating, feedback FROM rating_events ORDER BY id"
            )
        ],
        ratings_jsonl=[rating(r) for r in read("ratings.jsonl")],
        ratings_csv=[rating(r) for r in read("ratings.csv")],
        warnings=warnings,
    )


def assert_recorded_once(a: Audit, *, in_flight: int = 0) -> None:
    """Every sink holds each record at most once; SQLite ⊇ JSONL ⊇ CSV.

    The store writes SQLite (committed), then the JSONL lines, then the CSV lines, one batch
    at a time per process under its lock (requests that finish together share a batch of at
    most MAX_BATCH; a rating is a batch of one). So a process killed mid-record leaves at
    most one batch in SQLite but missing from the CSV, and possibly from the JSONL:
    `in_flight` is how many processes may have been killed that way.
    """
    for name, ids in (("requests", a.requests), ("jsonl", a.jsonl), ("csv", a.csv)):
        dupes = [i for i, n in Counter(ids).items() if n > 1]
        assert not dupes, f"{name} holds {dupes} more than once"
    assert set(a.csv) <= set(a.jsonl) <= set(a.requests)
    db_r, js_r, csv_r = Counter(a.ratings_db), Counter(a.ratings_jsonl), Counter(a.ratings_csv)
    assert not csv_r - js_r and not js_r - db_r, "a rating is in a log but not in SQLite"
    missing_requests = len(set(a.requests) - set(a.csv))
    missing_ratings = (db_r - csv_r).total()
    assert missing_requests <= in_flight * MAX_BATCH and missing_ratings <= in_flight, (
        f"{missing_requests} requests and {missing_ratings} ratings are in SQLite but not in "
        f"every log (at most {in_flight} batches may be)"
    )
    assert not (missing_requests and missing_ratings) or in_flight > 1, (
        "a killed process left both a request batch and a rating unlogged"
    )
    for name, found in a.warnings.items():
        assert len(found) <= in_flight, f"{name}: {found}"
        assert all("torn" in w or "unreadable" in w or "garbled" in w for w in found), found


def assert_cache_complete(db: Path, expected: dict[str, tuple[str, str]]) -> int:
    """Every cache entry is one we can account for, holding the complete reply.

    `expected` maps a cache key to (model, full reply text). Returns the number of entries.
    """
    rows = db_rows(db, "SELECT key, text, model FROM cache_entries")
    for key, text, model in rows:
        assert key in expected, f"a cache entry for {model} matches no request that was sent"
        want_model, want_text = expected[key]
        assert model == want_model
        assert text == want_text, f"cache entry for {model} holds an incomplete reply"
    return len(rows)


def cache_keys_for(models: Iterable[str], prompts: Iterable[str]) -> dict[str, tuple[str, str]]:
    """Cache key -> (model, complete fake reply) for one-turn prompts, default parameters."""
    from llmrouter_tui.core.cache import cache_key
    from llmrouter_tui.core.types import Message

    out: dict[str, tuple[str, str]] = {}
    for model in models:
        provider = "local" if FAKE_PROVIDER[model] == "openai" else FAKE_PROVIDER[model]
        for prompt in prompts:
            key = cache_key(f"{provider}:{model}", [Message("user", prompt)], None, None, None)
            out[key] = (model, expected_reply(model, prompt))
    return out


def assert_ok_rows_complete(db: Path) -> int:
    """Every request recorded as ok holds the complete reply of the model that answered."""
    rows = db_rows(
        db, "SELECT model_used, prompt, response, truncated FROM requests WHERE status = 'ok'"
    )
    for model, prompt, response, truncated in rows:
        assert not truncated
        assert response == expected_reply(model, prompt), f"incomplete reply from {model}"
    return len(rows)


# ---- durability worker -------------------------------------------------------------------------

WORKER_MODELS = (GROQ, GEMINI, "gemini-3.8-flash")
WORKER_CUT_MODEL = GROQ_BIG  # every reply from it is cut mid-stream: must never be cached
PROMPTS = tuple(f"durability prompt {i}" for i in range(40))


def worker_prompt(i: int) -> str:
    # Mostly repeated prompts (cache hits and puts), every fourth one unique.
    turn = i // len(WORKER_MODELS)
    return PROMPTS[turn % len(PROMPTS)] if turn % 4 else f"unique durability prompt {i}"


async def _worker(data_dir: Path, count: int) -> None:
    from llmrouter_tui.core.config import load_settings
    from llmrouter_tui.core.runtime import Runtime
    from llmrouter_tui.core.types import ChatRequest
    from llmrouter_tui.testing.fake_upstream import FakeUpstream, Fault

    fake = FakeUpstream(chunk_delay_s=0.001).start()
    # About every second GROQ request breaks mid-answer and falls over to GROQ_BIG, which is
    # always cut too: partial replies happen all the time and must never reach the cache.
    fake.add_fault(Fault(kind="cut", model=WORKER_CUT_MODEL, after_chunks=3))
    settings = load_settings(data_dir=data_dir)
    settings = replace(settings, routing=replace(settings.routing, cooldown_failures=10**6))
    runtime = Runtime.open(settings=settings, demo_upstream=fake.base_url)
    sem = asyncio.Semaphore(64)
    done: list[str] = []
    out = sys.stdout

    async def one(i: int) -> None:
        async with sem:
            model = WORKER_MODELS[i % len(WORKER_MODELS)]
            if model == GROQ and i % 2:
                fake.add_fault(Fault(kind="cut", model=GROQ, times=1, after_chunks=3))
            result = await runtime.router.complete(
                ChatRequest(model=model, prompt=worker_prompt(i), source="worker")
            )
            out.write(f"done {result.prompt_id} {result.status}\n")
            out.flush()
            done.append(result.prompt_id)
            if i % 2 == 0:
                target = done[(i * 7) % len(done)]
                with contextlib.suppress(Exception):
                    runtime.rate(target, 1 + i % 5, f"feedback {i}")
                    out.write(f"rated {target} {1 + i % 5} feedback {i}\n")
                    out.flush()

    out.write("ready\n")
    out.flush()
    await asyncio.gather(*(one(i) for i in range(count)))
    await runtime.aclose()
    fake.stop()
    out.write("finished\n")
    out.flush()


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "worker":
        asyncio.run(_worker(Path(argv[1]), int(argv[2])))
        return 0
    sys.stderr.write(__doc__ or "")
    return 2


if __name__ == "__main__":
    sys.path.insert(0, str(REPO_ROOT))
    sys.exit(main(sys.argv[1:]))
