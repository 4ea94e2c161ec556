"""Run the benchmark suite and write BENCHMARKS.md: `python -m bench [--quick]`.

Sections (each can be picked with --only):
  http      --serve cache miss and cache hit on /v1/chat/completions and /chat at
            concurrency 1 and 32, next to the fast fake upstream measured directly (targets 1, 2)
  history   the same with 1,000,000 recorded requests in the database, and GET /stats (target 3)
  streams   1,000 concurrent streamed replies through --serve; server RSS (target 4)
  tui       first frame, streaming at 2,000 tokens/s, keypress echo; a 50-turn conversation
            of long Markdown replies: start, open, key echo while one streams (target 5)
  inproc    Router.complete against the direct SDK call, in-process (target 6)
  profile   py-spy of --serve under cache-miss and cache-hit load, by layer (needs py-spy)

Every loop is bounded in count and time, everything runs on 127.0.0.1, and every process the
suite starts is stopped by it (and gets SIGTERM if the suite itself dies).
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import load, report
from bench.common import (
    PYTHON,
    ROOT,
    Server,
    Spread,
    child_env,
    machine,
    rss_mb,
    serve,
    shown_command,
    upstream,
)
from bench.load import LoadResult, have_wrk, run_load

SECTIONS = ("http", "history", "streams", "tui", "inproc", "profile")


@dataclass(frozen=True)
class Plan:
    """How long and how often to measure."""

    warmup_s: float
    run_s: float
    runs: int
    history_n: int
    streams: int
    stream_words: int
    stream_delay_s: float
    inproc_requests: int
    inproc_rounds: int
    profile_s: float


FULL = Plan(
    warmup_s=2,
    run_s=4,
    runs=5,
    history_n=1_000_000,
    streams=1000,
    stream_words=20,
    stream_delay_s=0.3,
    inproc_requests=400,
    inproc_rounds=5,
    profile_s=8,
)
QUICK = Plan(
    warmup_s=1,
    run_s=2,
    runs=2,
    history_n=100_000,
    streams=1000,
    stream_words=10,
    stream_delay_s=0.3,
    inproc_requests=200,
    inproc_rounds=3,
    profile_s=4,
)


@dataclass
class Measured:
    """Several timed runs of one load configuration."""

    runs: list[LoadResult]
    cpu_ms: list[float] = field(default_factory=list)  # server CPU per request, per run

    @property
    def p50(self) -> Spread:
        return Spread.of([r.p50_ms for r in self.runs])

    @property
    def p99(self) -> Spread:
        return Spread.of([r.p99_ms for r in self.runs])

    @property
    def rps(self) -> Spread:
        return Spread.of([r.rps for r in self.runs])

    @property
    def cpu(self) -> Spread | None:
        return Spread.of(self.cpu_ms) if self.cpu_ms else None

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.runs)

    def as_dict(self) -> dict[str, Any]:
        return {
            "p50_ms": [r.p50_ms for r in self.runs],
            "p99_ms": [r.p99_ms for r in self.runs],
            "rps": [r.rps for r in self.runs],
            "cpu_ms_per_request": self.cpu_ms,
            "errors": self.errors,
        }


@dataclass
class Results:
    """Everything measured in one suite run (also saved as JSON next to BENCHMARKS.md)."""

    started: str
    plan: str
    loadgen: str
    machine: dict[str, str]
    http: dict[str, Measured] = field(default_factory=dict)
    history: dict[str, Any] = field(default_factory=dict)
    streams: dict[str, Any] = field(default_factory=dict)
    tui: dict[str, Any] = field(default_factory=dict)
    inproc: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: Sections kept from an earlier report (`--only`): when they were measured.
    origins: dict[str, str] = field(default_factory=dict)


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def timed_run(
    plan: Plan,
    target: Server,
    kind: str,
    unique: bool,
    concurrency: int,
    m: Measured,
    path: str | None = None,
    nonce: str | None = None,
) -> None:
    """One timed run, adding the target process's CPU per request to `m`."""
    cpu0 = target.cpu_s()
    r = run_load(target.url, kind, unique, concurrency, plan.run_s, path, nonce=nonce)
    if r.requests:
        m.cpu_ms.append((target.cpu_s() - cpu0) * 1000 / r.requests)
    m.runs.append(r)


def measure(
    plan: Plan,
    target: Server,
    kind: str,
    unique: bool,
    concurrency: int,
    path: str | None = None,
) -> Measured:
    """Warm-up (discarded), then `plan.runs` timed runs. Hits share one prompt throughout;
    misses get a fresh nonce per run, so no run repeats another's prompts."""
    nonce = uuid.uuid4().hex[:12]
    run_load(target.url, kind, unique, concurrency, plan.warmup_s, path, nonce=nonce)
    m = Measured([])
    for _ in range(plan.runs):
        run_nonce = uuid.uuid4().hex[:12] if unique else nonce
        timed_run(plan, target, kind, unique, concurrency, m, path, run_nonce)
    cpu = m.cpu.fmt(3) if m.cpu else "?"
    say(
        f"  {kind:8} {'miss' if unique else 'hit ':4} c={concurrency:<3} p50 {m.p50.fmt(3)} ms  "
        f"{m.rps.fmt(0)} req/s  cpu {cpu} ms/req  errors {m.errors}"
    )
    return m


# ---- sections --------------------------------------------------------------------------------


def section_http(plan: Plan, res: Results, up: Server, scratch: Path) -> None:
    say("http: fast fake upstream measured directly")
    for c in (1, 32):
        res.http[f"direct c{c}"] = measure(plan, up, "upstream", True, c)
    with serve(up.url, scratch / "http") as server:
        say(f"http: --serve at {server.url} (pid {server.pid})")
        for kind in ("v1", "chat"):
            for c in (1, 32):
                res.http[f"{kind} miss c{c}"] = measure(plan, server, kind, True, c)
        for kind in ("v1", "chat"):
            for c in (1, 32):
                res.http[f"{kind} hit c{c}"] = measure(plan, server, kind, False, c)


def _generate_history(data_dir: Path, n: int) -> float:
    code = (
        "import sys, time\n"
        "from llmrouter_tui.core.store import Store\n"
        "from llmrouter_tui.testing.history import generate_history\n"
        "t = time.perf_counter()\n"
        "with Store(sys.argv[1]) as s:\n"
        "    generate_history(s, int(sys.argv[2]))\n"
        "print(time.perf_counter() - t)\n"
    )
    out = subprocess.run(
        [PYTHON, "-c", code, str(data_dir), str(n)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env=child_env(),
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def section_history(plan: Plan, res: Results, up: Server, scratch: Path) -> None:
    n = plan.history_n
    big = scratch / "history"
    say(f"history: generating {n:,} recorded requests")
    res.history["n"] = n
    res.history["generate_s"] = _generate_history(big, n)
    say(f"history: generated in {res.history['generate_s']:.1f} s")
    with serve(up.url, scratch / "empty") as empty, serve(up.url, big) as full:
        say(f"history: empty DB at {empty.url}, {n:,} rows at {full.url}")
        for c in (1, 32):
            # Interleaved (empty, full, empty, full…) so drift in machine load hits both alike.
            for server in (empty, full):
                run_load(server.url, "v1", True, c, plan.warmup_s)
            pair = {"empty": Measured([]), "full": Measured([])}
            for _ in range(plan.runs):
                for name, server in (("empty", empty), ("full", full)):
                    timed_run(plan, server, "v1", True, c, pair[name])
            for name, m in pair.items():
                res.history[f"{name} c{c}"] = m
                say(f"  v1 miss c={c} {name}: p50 {m.p50.fmt(3)} ms {m.rps.fmt(0)} req/s")
        for name, server in (("empty", empty), ("full", full)):
            res.history[f"stats {name}"] = measure(plan, server, "get", False, 1, path="/stats")


def section_streams(plan: Plan, res: Results, scratch: Path) -> None:
    n = plan.streams
    say(
        f"streams: {n} concurrent streamed replies ({plan.stream_words} chunks, "
        f"{plan.stream_delay_s:g} s apart)"
    )
    with (
        upstream(fast=False, chunk_delay=plan.stream_delay_s, words=plan.stream_words) as up,
        serve(up.url, scratch / "streams") as server,
    ):
        _one_request(server.url, timeout=30 + plan.stream_words * plan.stream_delay_s)
        time.sleep(1.0)
        idle, _ = rss_mb(server.pid)
        samples: list[float] = []
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.1):
                try:
                    samples.append(rss_mb(server.pid)[0])
                except OSError:
                    return

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        timeout = 60 + plan.stream_words * plan.stream_delay_s * 4
        out = subprocess.run(
            [
                PYTHON,
                "-m",
                "bench.streams",
                "--url",
                server.url,
                "-n",
                str(n),
                "--timeout",
                str(timeout),
                "--expect-chunks",
                str(plan.stream_words),
            ],
            capture_output=True,
            text=True,
            timeout=timeout + 30,
            cwd=ROOT,
            env=child_env(),
        )
        done.set()
        sampler.join(5)
        client = json.loads(out.stdout.strip().splitlines()[-1])
        time.sleep(2.0)
        after, peak_hwm = rss_mb(server.pid)
    res.streams = {
        **client,
        "idle_rss_mb": idle,
        "peak_rss_mb": max([*samples, idle]),
        "vm_hwm_mb": peak_hwm,
        "rss_after_mb": after,
        "chunks": plan.stream_words,
        "chunk_delay_s": plan.stream_delay_s,
    }
    say(
        f"  completed {client['completed']}/{n}, peak open {client['peak_open']}, "
        f"RSS idle {idle:.0f} MB peak {res.streams['peak_rss_mb']:.0f} MB"
    )


def _one_request(url: str, timeout: float) -> None:
    """One whole cache-miss request (warms imports, connections and SQLite), read to the end."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        body = json.dumps({"messages": [{"role": "user", "content": f"warm {uuid.uuid4()}"}]})
        conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        conn.getresponse().read()
    finally:
        conn.close()


def section_inproc(plan: Plan, res: Results, up: Server) -> None:
    say("inproc: Router.complete vs the direct SDK call")
    out = subprocess.run(
        [
            PYTHON,
            "-m",
            "bench.inproc",
            "--upstream",
            up.url,
            "--requests",
            str(plan.inproc_requests),
            "--rounds",
            str(plan.inproc_rounds),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env=child_env(),
        check=True,
    )
    res.inproc = json.loads(out.stdout.strip().splitlines()[-1])
    direct = res.inproc["direct_sdk"]["p50_ms"]
    for name in ("router", "router_store", "router_cache_hit"):
        ms = res.inproc[name]["p50_ms"]
        say(
            f"  {name}: p50 {statistics.median(ms):.3f} ms (direct {statistics.median(direct):.3f})"
        )


def section_tui(plan: Plan, res: Results, scratch: Path) -> None:
    from bench import tui

    say("tui: first frame, 2,000 tokens/s, keypress echo (under a pty)")
    res.tui = tui.run_all(scratch / "tui", quick=plan is QUICK)
    say(f"  {res.tui}")


def section_profile(plan: Plan, res: Results, up: Server, scratch: Path) -> None:
    from bench import profile

    if shutil.which("py-spy") is None and not (Path(PYTHON).parent / "py-spy").exists():
        res.notes.append("profile skipped: py-spy is not installed (pip install py-spy)")
        say("profile: skipped (py-spy not installed)")
        return
    for kind, unique in (("miss", True), ("hit", False)):
        say(f"profile: py-spy on --serve under cache-{kind} load, c=32")
        nonce = None if unique else uuid.uuid4().hex[:12]  # hits repeat the warm-up's prompt
        with serve(up.url, scratch / f"profile-{kind}") as server:
            run_load(server.url, "v1", unique, 32, plan.warmup_s, nonce=nonce)
            res.profile[kind] = profile.profile_server(server, plan.profile_s, unique, nonce)


# ---- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs, 100k history")
    parser.add_argument("--only", help=f"comma-separated sections: {','.join(SECTIONS)}")
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument(
        "--loadgen",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="load generator: wrk when installed (auto), or the bench.load Python client",
    )
    parser.add_argument(
        "--note",
        action="append",
        default=[],
        help="add a line to the report's notes (e.g. what else ran on the machine meanwhile)",
    )
    parser.add_argument(
        "--replace",
        action="store_true",
        help="with --only: write only the sections measured now (default: sections not "
        "measured again are kept from the existing report, and marked as such)",
    )
    parser.add_argument(
        "--rerender",
        action="store_true",
        help="rewrite --output from the raw results it embeds (after editing bench/report.py)",
    )
    args = parser.parse_args(argv)
    if args.rerender:
        from bench import rerender

        out = Path(args.output)
        old, sections, command = rerender.load(out)
        out.write_text(report.with_kept_sections(report.render(old, sections, command), _text(out)))
        say(f"rewrote {out} from its raw results")
        return 0
    load.TOOL = args.loadgen
    plan = QUICK if args.quick else FULL
    only = set(args.only.split(",")) if args.only else set(SECTIONS)
    unknown = only - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}")
    res = Results(
        started=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        plan="quick" if args.quick else "full",
        loadgen=_loadgen(),
        machine=machine(),
    )
    t0 = time.perf_counter()
    steps: list[tuple[str, Callable[[], None]]] = []
    with tempfile.TemporaryDirectory(prefix="llmrouter-bench-") as tmp, upstream(fast=True) as up:
        scratch = Path(tmp)
        say(f"fast fake upstream at {up.url}; scratch {scratch}; load from {res.loadgen}")
        steps = [
            ("http", lambda: section_http(plan, res, up, scratch)),
            ("history", lambda: section_history(plan, res, up, scratch)),
            ("inproc", lambda: section_inproc(plan, res, up)),
            ("streams", lambda: section_streams(plan, res, scratch)),
            ("profile", lambda: section_profile(plan, res, up, scratch)),
            ("tui", lambda: section_tui(plan, res, scratch)),
        ]
        for name, step in steps:
            if name in only:
                try:
                    step()
                except Exception as exc:  # report what was measured; say what failed
                    res.notes.append(f"section {name} failed: {type(exc).__name__}: {exc}")
                    say(f"{name} FAILED: {type(exc).__name__}: {exc}")
    res.seconds = time.perf_counter() - t0
    res.notes += args.note
    out = Path(args.output)
    if args.only and not args.replace and out.exists():
        only |= _keep_earlier(res, out, only)
    out.write_text(
        report.with_kept_sections(
            report.render(res, only, shown_command("python -m bench", argv or sys.argv[1:])),
            _text(out),
        )
    )
    say(f"wrote {out} in {res.seconds:.0f} s")
    return 0


def _keep_earlier(res: Results, report_path: Path, measured: set[str]) -> set[str]:
    """Copy into `res` the sections of the existing report that were not measured now."""
    from bench import rerender

    try:
        old, old_sections, _ = rerender.load(report_path)
    except SystemExit:  # no raw results in it
        return set()
    kept = sorted((old_sections & set(SECTIONS)) - measured)
    by_run: dict[str, list[str]] = {}
    for section in kept:
        setattr(res, section, getattr(old, section))
        res.origins[section] = old.origins.get(section, old.started)
        by_run.setdefault(res.origins[section], []).append(section)
    for started, sections in sorted(by_run.items()):
        res.notes.append(
            f"Sections {', '.join(sections)} are from the run of {started}, not measured again."
        )
    return set(kept)


def _loadgen() -> str:
    if have_wrk():
        version = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
        return (version.split("[")[0].strip() or "wrk") + " (1 thread, keep-alive)"
    return "bench.load Python client (asyncio, raw HTTP/1.1, keep-alive)"


if __name__ == "__main__":
    sys.exit(main())


def _text(path: Path) -> str:
    """The report being replaced ("" when there is none yet)."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
