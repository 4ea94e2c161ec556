"""Scaling across cores: `--serve --workers N` against one load generator at c=32.

For N in 1, 2 and 4 it starts `python -m llmrouter_tui --serve --workers N` (access log on, as
shipped) against the fast fake upstream (its own process), and measures cache hits (one
prompt repeated) and cache misses (a unique prompt per request) on `POST /chat`: a warm-up
run thrown away, then `--runs` timed runs of `--seconds`. For each it reports throughput,
p50/p99, the CPU the server's processes used per request and how the load generator's 32
keep-alive connections were spread across the worker processes (read from `ss` half-way
through a run), and the event-loop lag of each worker: the longest stall of its loop
during the run, from the `llmrouter_event_loop_lag_seconds` histogram its /metrics exposes
(scraped before and after each run from every worker). The target is ≥ 1.7× the throughput
from 1 to 2 workers.

Then a lock-wait scenario: `--serve --workers 2` under the same cache-hit load while this
process holds the database's write lock for LOCK_HOLD_S of every LOCK_PERIOD_S (as a long
write by another process would). Records wait for the lock on each worker's writer thread,
so replies slow down; the loops must not stall (target ≤ 50 ms), which a `/health` probe on
fresh connections shows too.

Then uvicorn with `--workers 2` (`--no-access-log`, as the README deploys it) the same way:
its workers share one listening socket, and the spread shows what that does.

    python -m bench.workers [--workers 1,2,4] [--runs 3] [--seconds 5] [--no-uvicorn]
                            [--no-lock] [--write] [--note TEXT]...
    python -m bench.workers --rerender     (the section again from its raw results)

Prints the results as JSON; `--write` also puts them into BENCHMARKS.md as the section between
the `bench.workers` markers (added before "## Method" the first time), raw results included,
and leaves the rest of the file alone. Every process it starts talks to 127.0.0.1 only and is
stopped by it (and gets SIGTERM if this process dies).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import load
from bench.common import (
    BENCH_KEY,
    HOST,
    PYTHON,
    ROOT,
    Server,
    Spread,
    child_env,
    cpu_seconds,
    machine,
    popen,
    shown_command,
    stop,
    upstream,
    write_marked_section,
)

CONCURRENCY = 32
CORES = len(os.sched_getaffinity(0))
TARGET_SPEEDUP = 1.7
TARGET_STALL_MS = 50.0
LOCK_HOLD_S = 0.5
LOCK_PERIOD_S = 1.0
_LAG_BUCKET = re.compile(r'^llmrouter_event_loop_lag_seconds_bucket\{le="([^"]+)"\} (\S+)$', re.M)
_LAG_MAX = re.compile(r"^llmrouter_event_loop_lag_max_seconds (\S+)$", re.M)
BEGIN = "<!-- bench.workers: begin -->"
END = "<!-- bench.workers: end -->"
_BANNER = re.compile(r"serving on (http://\S+)(?: with \d+ workers \(pids ([\d, ]+)\))?")


def say(message: str) -> None:
    print(f"[bench.workers {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _env(upstream_url: str, data_dir: Path) -> dict[str, str]:
    return child_env(
        GROQ_API_KEY=BENCH_KEY,
        GROQ_BASE_URL=upstream_url,
        GEMINI_API_KEY=BENCH_KEY,
        GEMINI_BASE_URL=upstream_url,
        LLMROUTER_DATA_DIR=str(data_dir),
    )


def _children(pid: int) -> list[int]:
    with contextlib.suppress(OSError):
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        return [int(p) for p in text.split()]
    return []


class Target:
    """A server under test: its URL and the processes whose CPU it uses."""

    def __init__(self, name: str, url: str, proc: subprocess.Popen[str]) -> None:
        self.name = name
        self.url = url
        self.proc = proc

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def pids(self) -> list[int]:
        """The supervisor and its workers (their CPU is the server's)."""
        return [self.proc.pid, *_children(self.proc.pid)]

    def cpu_s(self) -> float:
        total = 0.0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                total += cpu_seconds(pid)
        return total


@contextlib.contextmanager
def serve_workers(
    upstream_url: str, scratch: Path, workers: int, tag: str = ""
) -> Iterator[Target]:
    suffix = f"{tag}-{workers}" if tag else str(workers)
    data_dir = scratch / f"data-{suffix}"
    workdir = scratch / f"cwd-{suffix}"
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = scratch / f"serve-{suffix}.log"
    args = [PYTHON, "-m", "llmrouter_tui", "--serve", "--host", HOST, "--port", "0"]
    args += ["--data-dir", str(data_dir), "--workers", str(workers)]
    with open(log_path, "w") as log:
        proc = popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
            cwd=workdir,
            env=_env(upstream_url, data_dir),
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            match = _BANNER.search(log_path.read_text())
            if match:
                break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"--serve did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.05)
        yield Target(f"--serve --workers {workers}", match[1], proc)
    finally:
        stop(proc, timeout_s=20)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve_uvicorn(upstream_url: str, scratch: Path, workers: int) -> Iterator[Target]:
    data_dir = scratch / f"uvicorn-data-{workers}"
    workdir = scratch / f"uvicorn-cwd-{workers}"
    workdir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    args = [PYTHON, "-m", "uvicorn", "--factory", "llmrouter_tui.server.app:create_app"]
    args += ["--host", HOST, "--port", str(port), "--workers", str(workers)]
    args += ["--no-access-log", "--log-level", "warning"]
    log = open(scratch / f"uvicorn-{workers}.log", "w")  # noqa: SIM115 - closed below
    proc = popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=workdir,
        env=_env(upstream_url, data_dir),
    )
    target = Target(f"uvicorn --workers {workers}", f"http://{HOST}:{port}", proc)
    try:
        deadline = time.monotonic() + 60
        while len(_children(proc.pid)) < workers or not _healthy(target.url):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("uvicorn did not start: see " + log.name)
            time.sleep(0.1)
        time.sleep(1.0)  # every worker past its lifespan start-up, not just the first
        yield target
    finally:
        stop(proc, timeout_s=20)
        log.close()


def _healthy(url: str) -> bool:
    import http.client

    conn = http.client.HTTPConnection(url.removeprefix("http://").split(":")[0],
                                      int(url.rsplit(":", 1)[1]), timeout=2)  # fmt: skip
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def connection_spread(port: int) -> list[int]:
    """Established connections to `port` per server process, largest first."""
    out = subprocess.run(
        ["ss", "-Htnp", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout
    owners = Counter(m[1] for m in re.finditer(r"pid=(\d+)", out))
    return sorted(owners.values(), reverse=True)


# ---- event-loop lag, per worker -------------------------------------------------------------


def _get(url: str, path: str) -> tuple[str, str]:
    """(worker pid or "?", body) of one GET on a new connection."""
    import http.client

    host, port = url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.getheader("x-llmrouter-worker") or "?", response.read().decode()
    finally:
        conn.close()


def lag_scrape(url: str, workers: int) -> dict[str, tuple[list[tuple[float, float]], float]]:
    """Each worker's loop-lag histogram (cumulative buckets) and its all-time max stall.

    New connections land on the workers the kernel picks: scrape until each has answered."""
    seen: dict[str, tuple[list[tuple[float, float]], float]] = {}
    for _ in range(40 * workers):
        with contextlib.suppress(OSError):
            worker, text = _get(url, "/metrics")
            buckets = [(float(le), float(n)) for le, n in _LAG_BUCKET.findall(text)]
            top = _LAG_MAX.search(text)
            seen[worker] = (buckets, float(top[1]) if top else 0.0)
        if len(seen) >= workers or "?" in seen:
            break
    return seen


def worst_stall_ms(
    before: dict[str, tuple[list[tuple[float, float]], float]],
    after: dict[str, tuple[list[tuple[float, float]], float]],
) -> float:
    """The longest loop stall any worker had between two scrapes, as the upper bound (ms) of
    the highest histogram bucket that gained a wake-up (inf: above the largest bound)."""
    worst = 0.0
    for worker, (buckets, _) in after.items():
        old = dict(before.get(worker, ([], 0.0))[0])
        previous = 0.0
        for bound, cumulative in buckets:
            gained = cumulative - old.get(bound, 0.0)
            if gained > previous:
                worst = max(worst, bound)
            previous = gained
    return worst * 1000


def _sample(into: list[int], port: int) -> None:
    into.extend(connection_spread(port))


def _machine_times() -> tuple[int, int]:
    """(idle, total) jiffies of the whole machine, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[3] + fields[4], sum(fields[:8])


def _children_cpu_s() -> float:
    """CPU seconds of this process's children that have ended (the load generator runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(
    target: Target,
    up: Server,
    unique: bool,
    runs: int,
    seconds: float,
    warmup: float,
    workers: int = 1,
    during: Callable[[], contextlib.AbstractContextManager[Any]] | None = None,
) -> dict[str, Any]:
    """Warm-up, then `runs` timed runs; per run the figures and where the cores went.

    `during()` is entered around each timed run (the lock-wait scenario's lock holder)."""
    nonce = uuid.uuid4().hex[:12]
    load.run_load(target.url, "chat", unique, CONCURRENCY, warmup, nonce=nonce)
    out: dict[str, list[Any]] = {"rps": [], "p50_ms": [], "p99_ms": [], "cpu_ms": [],
                                 "server_cores": [], "loadgen_cores": [], "idle": [],
                                 "upstream_cores": [], "other_cores": [],
                                 "errors": [], "spread": [], "stall_ms": [],
                                 "load_avg": []}  # fmt: skip
    for _ in range(runs):
        lag0 = lag_scrape(target.url, workers)
        run_nonce = uuid.uuid4().hex[:12] if unique else nonce
        spread: list[int] = []
        sampler = threading.Timer(seconds / 2, _sample, args=(spread, target.port))
        cpu0, loadgen0, (idle0, total0) = target.cpu_s(), _children_cpu_s(), _machine_times()
        upstream0 = up.cpu_s()
        t0 = time.monotonic()
        sampler.start()
        with during() if during is not None else contextlib.nullcontext():
            result = load.run_load(
                target.url, "chat", unique, CONCURRENCY, seconds, nonce=run_nonce
            )
        sampler.join()
        wall = time.monotonic() - t0
        out["stall_ms"].append(worst_stall_ms(lag0, lag_scrape(target.url, workers)))
        out["load_avg"].append(_load_avg())
        cpu = target.cpu_s() - cpu0
        idle1, total1 = _machine_times()
        idle = (idle1 - idle0) / max(1, total1 - total0)
        server, loadgen = cpu / wall, (_children_cpu_s() - loadgen0) / wall
        upstream_cores = (up.cpu_s() - upstream0) / wall
        busy = (1 - idle) * CORES
        out["server_cores"].append(server)
        out["loadgen_cores"].append(loadgen)
        out["upstream_cores"].append(upstream_cores)
        out["other_cores"].append(max(0.0, busy - server - loadgen - upstream_cores))
        out["idle"].append(idle)
        out["rps"].append(result.rps)
        out["p50_ms"].append(result.p50_ms)
        out["p99_ms"].append(result.p99_ms)
        out["cpu_ms"].append(cpu * 1000 / result.requests if result.requests else 0.0)
        out["errors"].append(result.errors)
        out["spread"].append(spread)
    rps = Spread.of(out["rps"])
    say(f"  {target.name:24} {'miss' if unique else 'hit '}  {rps.fmt(0)} req/s  "
        f"p99 {Spread.of(out['p99_ms']).fmt(1)} ms  cpu {Spread.of(out['cpu_ms']).fmt(3)} ms/req  "
        f"server {Spread.of(out['server_cores']).fmt(2)} cores  "
        f"loadgen {Spread.of(out['loadgen_cores']).fmt(2)} cores  "
        f"upstream {Spread.of(out['upstream_cores']).fmt(2)} cores  "
        f"others {Spread.of(out['other_cores']).fmt(2)} cores  "
        f"idle {Spread.of(out['idle']).fmt(2)}  connections {out['spread']}  "
        f"loop stall ≤ {out['stall_ms']} ms  load {out['load_avg']}")  # fmt: skip
    return out


def _load_avg() -> float:
    """The 1-minute load average now (the machine is shared: it says how much)."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")


# ---- the lock-wait scenario ---------------------------------------------------------------------


@contextlib.contextmanager
def lock_holder(db: Path, hold_s: float, period_s: float) -> Iterator[dict[str, Any]]:
    """Hold `db`'s write lock `hold_s` of every `period_s` from a thread, while `/health`
    latencies are probed; yields the probe's figures (filled in when the block ends)."""
    import sqlite3

    stop = threading.Event()
    figures: dict[str, Any] = {"held": 0}

    def hold() -> None:
        conn = sqlite3.connect(db, isolation_level=None, timeout=30)
        try:
            while not stop.is_set():
                conn.execute("BEGIN EXCLUSIVE")
                figures["held"] += 1
                stop.wait(hold_s)
                conn.execute("COMMIT")
                stop.wait(period_s - hold_s)
        finally:
            conn.close()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    try:
        yield figures
    finally:
        stop.set()
        thread.join(10)


def health_probe(url: str, stop: threading.Event, into: list[float]) -> None:
    """`GET /health` on a new connection every 50 ms; its latencies (ms)."""
    while not stop.is_set():
        t0 = time.perf_counter()
        with contextlib.suppress(OSError):
            _get(url, "/health")
            into.append((time.perf_counter() - t0) * 1000)
        stop.wait(0.05)


def lock_scenario(
    up: Server, scratch: Path, workers: int, runs: int, seconds: float, warmup: float
) -> dict[str, Any]:
    """`--serve --workers N`, cache hits, with the database's write lock held part time."""
    with serve_workers(up.url, scratch, workers, tag="lock") as target:
        say(f"{target.name} at {target.url}: lock held {LOCK_HOLD_S:g} s of every "
            f"{LOCK_PERIOD_S:g} s")  # fmt: skip
        db = scratch / f"data-lock-{workers}" / "llmrouter.db"
        health: list[float] = []

        @contextlib.contextmanager
        def during() -> Iterator[None]:
            stop = threading.Event()
            prober = threading.Thread(target=health_probe, args=(target.url, stop, health))
            with lock_holder(db, LOCK_HOLD_S, LOCK_PERIOD_S):
                prober.start()
                try:
                    yield
                finally:
                    stop.set()
                    prober.join(10)

        m = measure(target, up, False, runs, seconds, warmup, workers, during)
    health.sort()
    m["health_p99_ms"] = health[int(0.99 * (len(health) - 1))] if health else None
    m["health_max_ms"] = health[-1] if health else None
    say(f"  /health while the lock was held: p99 {m['health_p99_ms']} ms, "
        f"max {m['health_max_ms']} ms over {len(health)} probes")  # fmt: skip
    return m


# ---- the report ---------------------------------------------------------------------------------


def _ratio_note(speedup: float) -> str:
    verdict = "met" if speedup >= TARGET_SPEEDUP else "missed"
    return f"{speedup:.2f}× (**{verdict}**)"


def section(results: dict[str, Any]) -> str:
    meta = results["meta"]
    rows = results["rows"]
    lines = [
        BEGIN,
        "## Several workers: `--serve --workers N` on 2 cores",
        "",
        f"Measured on {meta['started']} by `{meta['command']}` ({meta['minutes']:.1f} min): "
        f"`POST /chat` at c={CONCURRENCY} from one load generator ({meta['loadgen']}), "
        f"{meta['runs']} runs of {meta['seconds']:g} s after a warm-up, medians with the "
        "min–max across runs. The fast fake upstream, the load generator and every worker "
        f"share the machine's {meta['machine']['cores']} cores.",
        "",
        "| server | cache | req/s | vs 1 worker | p50 ms | p99 ms | CPU ms/request¹ "
        "| cores: server¹ / load generator + upstream / other processes / idle "
        "| connections per worker² | loop stall ms³ | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    base: dict[str, float] = {}
    for row in rows:
        rps = Spread.of(row["rps"])
        cache = "miss" if row["unique"] else "hit"
        if row["workers"] == 1 and row["server"] == "serve":
            base[cache] = rps.median
        ratio = f"{rps.median / base[cache]:.2f}×" if cache in base else "—"
        spreads = " · ".join("/".join(map(str, s)) or "?" for s in row["spread"])
        name = {
            "serve": f"`--serve --workers {row['workers']}`",
            "serve-locked": f"`--serve --workers {row['workers']}`, DB write-locked "
            f"{LOCK_HOLD_S:g} s of every {LOCK_PERIOD_S:g} s",
        }.get(row["server"], f"uvicorn `--workers {row['workers']}`")
        if row["server"] == "serve-locked":
            ratio = "—"
        lines.append(
            f"| {name} | {cache} | {rps.fmt(0)} | {ratio} | {Spread.of(row['p50_ms']).fmt(2)} "
            f"| {Spread.of(row['p99_ms']).fmt(1)} | {Spread.of(row['cpu_ms']).fmt(3)} "
            f"| {_cores(row, int(meta['machine']['cores']))} | {spreads} "
            f"| {_stall(row)} | {_loads(row)} |"
        )
    lines += [
        "",
        "¹ CPU time of all the server's processes (supervisor and workers): per request, and "
        "per second of the run (cores busy); next to it the cores the load generator and "
        "the fake upstream used, what other processes on the machine used (other engineers' "
        "test runs) and what stayed idle (medians; from /proc). "
        "² The load generator's 32 connections by worker process, read with `ss` half-way "
        "through each run. "
        "³ The longest event-loop stall of any worker during a run (worst run), as the upper "
        "bound of the `llmrouter_event_loop_lag_seconds` bucket it fell in (a 20 ms timer "
        "woken that much late; scraped from every worker's /metrics before and after each "
        f"run); target ≤ {TARGET_STALL_MS:g} ms. Load avg: the machine's 1-minute load "
        "average after each run.",
        "",
    ]
    for cache in ("hit", "miss"):
        one = _row(rows, "serve", 1, cache)
        two = _row(rows, "serve", 2, cache)
        if one and two:
            rps1, rps2 = Spread.of(one["rps"]).median, Spread.of(two["rps"]).median
            cores1 = Spread.of(one["server_cores"]).median
            cores2 = Spread.of(two["server_cores"]).median
            lines.append(
                f"- **1 → 2 workers, cache {cache}** (target ≥ {TARGET_SPEEDUP}×): "
                f"{_ratio_note(rps2 / rps1)}; the server got {cores1:.2f} → {cores2:.2f} "
                f"cores, {rps1 / cores1:.0f} → {rps2 / cores2:.0f} req/s per core it used."
            )
    lines.append(
        "- **Reading**: each `--serve` worker is a whole server and the kernel spreads the "
        "connections evenly across them, so what bounds throughput is the cores the workers "
        "get (the cores column): the load generator and the fake upstream share the same two "
        "cores, and when other processes hold some of them a second worker gets only what "
        "is left, not a core of its own; four workers on two cores only add switching."
    )
    locked = _row(rows, "serve-locked", 2, "hit")
    if locked:
        worst = max(locked.get("stall_ms") or [float("nan")])
        verdict = "met" if worst <= TARGET_STALL_MS else "missed"
        free = _row(rows, "serve", 2, "hit")
        unlocked = max(free.get("stall_ms") or [float("nan")]) if free else float("nan")
        lines.append(
            f"- **Lock waits** (target: loop stalls ≤ {TARGET_STALL_MS:g} ms): with another "
            f"connection holding the database's write lock {LOCK_HOLD_S:g} s of every "
            f"{LOCK_PERIOD_S:g} s, the worst stall was ≤ {worst:g} ms (**{verdict}**), against "
            f"≤ {unlocked:g} ms for the same server and load without the lock; `/health` on new "
            f"connections meanwhile: p99 {_ms(locked.get('health_p99_ms'))}, max "
            f"{_ms(locked.get('health_max_ms'))}. Replies wait for their records (a reply is "
            "acknowledged only once recorded), which is what lowers throughput there; the "
            "records wait on each worker's writer thread, not on its event loop. A stall is "
            "any time the loop did not run, so on a machine with a load average above its "
            "core count (the load avg column) it also counts the time the worker was not "
            "scheduled: only the difference from the unlocked row is the lock's."
        )
    uvicorn = [s for row in rows if row["server"] == "uvicorn" for s in row["spread"] if s]
    if uvicorn:
        piled = sum(1 for s in uvicorn if max(s) >= CONCURRENCY - 1)
        lines.append(
            f"- **uvicorn `--workers`** (one shared listening socket): one process held at "
            f"least {CONCURRENCY - 1} of the {CONCURRENCY} connections in {piled} of "
            f"{len(uvicorn)} runs, leaving the other worker (nearly) idle."
        )
    lines += [f"- {note}" for note in meta["notes"]]
    lines += ["", "<!-- bench.workers raw results", json.dumps(results), "-->", END]
    return "\n".join(lines)


def _stall(row: dict[str, Any]) -> str:
    stalls = row.get("stall_ms")
    return f"≤ {max(stalls):g}" if stalls else "—"  # older raw results have none


def _loads(row: dict[str, Any]) -> str:
    loads = row.get("load_avg")
    return " · ".join(f"{v:.1f}" for v in loads) if loads else "—"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} ms"


def _cores(row: dict[str, Any], cores: int) -> str:
    server = Spread.of(row["server_cores"]).median
    ours = Spread.of(row["loadgen_cores"]).median + Spread.of(row["upstream_cores"]).median
    others = Spread.of(row["other_cores"]).median
    idle = Spread.of(row["idle"]).median * cores
    return f"{server:.2f} / {ours:.2f} / {others:.2f} / {idle:.2f}"


def _row(
    rows: list[dict[str, Any]], server: str, workers: int, cache: str
) -> dict[str, Any] | None:
    for row in rows:
        unique = cache == "miss"
        if row["server"] == server and row["workers"] == workers and row["unique"] == unique:
            return row
    return None


def rerender(path: Path) -> None:
    """Rewrite the section from the raw results it embeds (after editing only its wording)."""
    block = path.read_text(encoding="utf-8").partition(BEGIN)[2].partition(END)[0]
    raw = block.partition("<!-- bench.workers raw results\n")[2].partition("\n-->")[0]
    if not raw:
        raise SystemExit(f"{path} has no bench.workers raw results to re-render; run it first")
    write_marked_section(path, section(json.loads(raw)), BEGIN, END)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.workers")
    parser.add_argument("--workers", default="1,2,4", help="worker counts (default 1,2,4)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--no-uvicorn", action="store_true", help="skip uvicorn --workers 2")
    parser.add_argument("--no-lock", action="store_true", help="skip the lock-wait scenario")
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md's section")
    parser.add_argument("--note", action="append", default=[], help="a line for the report")
    parser.add_argument(
        "--rerender", action="store_true", help="rewrite the section from its raw results only"
    )
    args = parser.parse_args(argv)
    if args.rerender:
        rerender(ROOT / "BENCHMARKS.md")
        say("BENCHMARKS.md: section re-rendered")
        return 0
    counts = [int(n) for n in args.workers.split(",")]
    started = time.monotonic()
    loadgen = "wrk, one thread" if load.have_wrk() else "bench.load Python client"
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="llmrouter-bench-workers-") as tmp, upstream() as up:
        scratch = Path(tmp)
        say(f"fast fake upstream at {up.url}; load generator: {loadgen}")
        plans = [("serve", n) for n in counts] + ([] if args.no_uvicorn else [("uvicorn", 2)])
        for server, n in plans:
            starter = serve_workers if server == "serve" else serve_uvicorn
            with starter(up.url, scratch, n) as target:
                say(f"{target.name} at {target.url} (pids {target.pids()})")
                for unique in (False, True):
                    m = measure(target, up, unique, args.runs, args.seconds, args.warmup, n)
                    rows.append({"server": server, "workers": n, "unique": unique, **m})
        if not args.no_lock:
            m = lock_scenario(up, scratch, 2, args.runs, args.seconds, args.warmup)
            rows.append({"server": "serve-locked", "workers": 2, "unique": False, **m})
    with contextlib.suppress(OSError):
        load_avg = Path("/proc/loadavg").read_text().split()[0]
        args.note.insert(0, f"Load average {load_avg} at the end of the run.")
    results = {
        "rows": rows,
        "meta": {
            "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": shown_command(
                "python -m bench.workers", argv if argv is not None else sys.argv[1:]
            ),
            "minutes": (time.monotonic() - started) / 60,
            "loadgen": loadgen,
            "runs": args.runs,
            "seconds": args.seconds,
            "machine": machine(),
            "notes": args.note,
        },
    }
    print(json.dumps(results))
    if args.write:
        write_marked_section(ROOT / "BENCHMARKS.md", section(results), BEGIN, END)
        say("BENCHMARKS.md: section updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
