"""The streamed cache miss: server CPU per request and throughput at c=32, against LiteLLM.

Starts the fast fake upstream (its own process) and `--serve` from each code tree given (the
working tree by default; `--baseline REF` adds `git archive REF` unpacked in a scratch
directory, so a change can be measured against the last commit in the same session; with
`--changed PATH`, the "after" side is that same archive with only PATH taken from the working
tree, so one change is measured apart from others in progress), plus,
when a Python with `litellm` installed is given (`--litellm`, default
/tmp/litellm-venv/bin/python; skipped cleanly when absent), a minimal ASGI app under uvicorn
that answers each request with `litellm.acompletion(stream=True)` against the same upstream.

Every target gets `POST /v1/chat/completions` with a unique prompt per request (a cache miss:
the router streams the upstream's reply, then answers with the whole completion; the LiteLLM
app does the same) from one load generator at c=32. After a warm-up, the targets take turns
run by run (the machine is shared, so interleaving spreads other processes' load evenly over
them). CPU per request is the target process's user+system CPU over the run divided by the
requests it answered: unlike wall-clock throughput it hardly depends on what else the machine
is doing.

    python -m bench.miss [--baseline HEAD [--changed PATH]...] [--runs 5] [--seconds 5]
                         [--litellm PY] [--write]
    python -m bench.miss --rerender      (the section again from its raw results)

Prints the results as JSON; `--write` puts them into BENCHMARKS.md between the `bench.miss`
markers (added before "## Method" the first time). Everything talks to 127.0.0.1 only;
nothing is downloaded (LiteLLM's model-cost map is read from its package).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import load
from bench.common import (
    BENCH_KEY,
    HOST,
    ROOT,
    Server,
    child_env,
    machine,
    popen,
    serve,
    shown_command,
    stop,
    upstream,
    write_marked_section,
)

CONCURRENCY = 32
TARGET_CPU_MS = 2.5
TARGET_LITELLM_RATIO = 8.0
BEGIN = "<!-- bench.miss: begin -->"
END = "<!-- bench.miss: end -->"
DEFAULT_LITELLM = "/tmp/litellm-venv/bin/python"
LITELLM = "LiteLLM"

# The LiteLLM side: one ASGI callable, no framework, run by uvicorn from LiteLLM's own venv.
# It streams from the upstream like the router does and answers with the whole completion.
_LITELLM_APP = r"""
import json, os, sys
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # never fetch the cost map
import litellm

litellm.telemetry = False
litellm.suppress_debug_info = True
BASE = os.environ["MISS_UPSTREAM"] + "/openai/v1"
KEY = os.environ["MISS_KEY"]


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    request = json.loads(body)
    stream = await litellm.acompletion(
        model="groq/openai/gpt-oss-20b",
        messages=request["messages"],
        stream=True,
        api_base=BASE,
        api_key=KEY,
    )
    parts = []
    async for chunk in stream:
        parts.append(chunk.choices[0].delta.content or "")
    out = json.dumps(
        {"object": "chat.completion", "choices": [{"index": 0, "finish_reason": "stop",
         "message": {"role": "assistant", "content": "".join(parts)}}]}
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(out))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": out})
"""


def say(message: str) -> None:
    print(f"[bench.miss {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def has_litellm(python: str) -> bool:
    if not Path(python).exists():
        return False
    probe = subprocess.run(
        [python, "-c", "import litellm, uvicorn"],
        capture_output=True,
        timeout=120,
        env=child_env(LITELLM_LOCAL_MODEL_COST_MAP="True"),
    )
    return probe.returncode == 0


@contextlib.contextmanager
def litellm_app(python: str, upstream_url: str, scratch: Path) -> Iterator[Server]:
    """The LiteLLM app under uvicorn (one process, its access log off as deployed)."""
    app_dir = scratch / "litellm-app"
    app_dir.mkdir(exist_ok=True)
    (app_dir / "miss_litellm_app.py").write_text(_LITELLM_APP)
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    env = child_env(MISS_UPSTREAM=upstream_url, MISS_KEY=BENCH_KEY)
    env["PYTHONPATH"] = str(app_dir)
    args = [python, "-m", "uvicorn", "miss_litellm_app:app", "--host", HOST, "--port", str(port)]
    args += ["--no-access-log", "--log-level", "warning"]
    proc = popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.5):
                break
            time.sleep(0.2)
        else:
            raise RuntimeError("the LiteLLM app did not start")
        yield Server(f"http://{HOST}:{port}", proc)
    finally:
        stop(proc)


def baseline_tree(ref: str, scratch: Path) -> Path:
    """`git archive ref` unpacked into scratch (git state is only read)."""
    tree = scratch / f"tree-{ref.replace('/', '_')}"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=True, timeout=120
    )
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True, timeout=120)
    return tree


def overlay_tree(base: Path, paths: list[str], scratch: Path) -> Path:
    """A copy of `base` with `paths` (files or directories) taken from the working tree."""
    tree = scratch / "tree-after"
    shutil.copytree(base, tree)
    for rel in paths:
        source, target = ROOT / rel, tree / rel
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    return tree


def timed_run(target: Server, seconds: float, nonce: str) -> dict[str, float]:
    cpu0 = target.cpu_s()
    loadavg = load_average()
    result = load.run_load(target.url, "v1", True, CONCURRENCY, seconds, nonce=nonce)
    cpu_s = target.cpu_s() - cpu0
    return {
        "rps": result.rps,
        "cpu_ms": cpu_s * 1000 / result.requests if result.requests else 0.0,
        "p50_ms": result.p50_ms,
        "errors": result.errors,
        "load": loadavg,
    }


def measure(targets: dict[str, Server], runs: int, seconds: float, warmup: float) -> dict[str, Any]:
    """A warm-up each, then `runs` rounds in which every target takes one timed run."""
    for name, target in targets.items():
        say(f"warm-up: {name}")
        load.run_load(target.url, "v1", True, CONCURRENCY, warmup, nonce=uuid.uuid4().hex[:12])
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
    for index in range(runs):
        for name, target in targets.items():
            run = timed_run(target, seconds, uuid.uuid4().hex[:12])
            rows[name].append(run)
            say(
                f"run {index + 1}/{runs} {name:10} {run['rps']:6.0f} req/s  "
                f"{run['cpu_ms']:.3f} ms CPU/req  errors {run['errors']:.0f}  load {run['load']}"
            )
    return rows


def _median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def _span(runs: list[dict[str, float]], key: str, digits: int) -> str:
    values = [run[key] for run in runs]
    mid = statistics.median(values)
    return f"{mid:.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def _ratios(rows: dict[str, Any], name: str) -> list[float]:
    """Throughput of `name` over LiteLLM's, round by round (runs taken side by side)."""
    theirs = rows.get(LITELLM) or []
    pairs = zip(rows[name], theirs, strict=False)  # LiteLLM absent: no pairs
    return [ours["rps"] / lite["rps"] for ours, lite in pairs if lite["rps"]]


def section(results: dict[str, Any]) -> str:
    rows: dict[str, list[dict[str, float]]] = results["rows"]
    meta = results["meta"]
    lines = [
        BEGIN,
        "## The streamed cache miss (miss path)",
        "",
        f"Measured on {meta['started']} by `{meta['command']}` ({meta['minutes']:.1f} min): "
        f"`POST /v1/chat/completions` with a unique prompt per request (a cache miss: the "
        f"reply is streamed from the fast fake upstream, then sent whole) at c={CONCURRENCY} "
        f"from one load generator ({meta['loadgen']}); {meta['runs']} runs of "
        f"{meta['seconds']:.0f} s per target after a warm-up, the targets taking turns run by "
        "run; medians with the min–max across runs. CPU per request is the target process's "
        "CPU time over the run divided by the requests it answered; the machine's 2 cores are "
        "shared with the load generator, the upstream and other work, so req/s is noisier "
        "than CPU per request. Load is the 1-minute load average at the start of each run.",
        "",
        "| target | server CPU ms / request | req/s at c=32 | × LiteLLM req/s | load |",
        "|---|---|---|---|---|",
    ]
    for name, runs in rows.items():
        ratios = _ratios(rows, name) if name != LITELLM else []
        ratio = (
            f"{statistics.median(ratios):.1f}× ({min(ratios):.1f}–{max(ratios):.1f})"
            if ratios
            else "—"
        )
        lines.append(
            f"| {meta['labels'].get(name, name)} | {_span(runs, 'cpu_ms', 2)} | "
            f"{_span(runs, 'rps', 0)} | {ratio} | {_span(runs, 'load', 1)} |"
        )
    lines.append("")
    current = meta.get("current")
    if current in rows:
        cpu = _median(rows[current], "cpu_ms")
        verdict = "met" if cpu <= TARGET_CPU_MS else "**missed**"
        lines.append(f"- **CPU per miss** (target ≤ {TARGET_CPU_MS} ms): {cpu:.2f} ms, {verdict}.")
        ratios = _ratios(rows, current)
        if ratios:
            ratio = statistics.median(ratios)
            verdict = "met" if ratio >= TARGET_LITELLM_RATIO else "**missed**"
            lines.append(
                f"- **Throughput against LiteLLM** (target ≥ {TARGET_LITELLM_RATIO:.0f}×): "
                f"{ratio:.1f}×, {verdict}."
            )
        else:
            lines.append("- LiteLLM was not installed for this run: no ratio.")
        baseline = meta.get("baseline")
        if baseline in rows:
            before = _median(rows[baseline], "cpu_ms")
            lines.append(
                f"- **Before → after**: {before:.2f} → {cpu:.2f} ms CPU per miss "
                f"({(cpu - before) / before:+.0%}); "
                f"{_median(rows[baseline], 'rps'):.0f} → {_median(rows[current], 'rps'):.0f} "
                "req/s."
            )
    lines += [f"- {note}" for note in meta["notes"]]
    raw = json.dumps(results).replace("--", "-\\u002d")  # no "--" inside an HTML comment
    lines += ["", "<!-- bench.miss raw results", raw, "-->", END]
    return "\n".join(lines)


def rerender(path: Path) -> None:
    block = path.read_text(encoding="utf-8").partition(BEGIN)[2].partition(END)[0]
    raw = block.partition("<!-- bench.miss raw results\n")[2].partition("\n-->")[0]
    if not raw:
        raise SystemExit(f"{path} has no bench.miss raw results to re-render; run it first")
    write_marked_section(path, section(json.loads(raw)), BEGIN, END)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.miss")
    parser.add_argument("--baseline", help="also measure this git ref (e.g. HEAD)")
    parser.add_argument(
        "--changed", action="append", default=[], help="with --baseline: only this path changed"
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--litellm", default=DEFAULT_LITELLM, help="a Python with litellm")
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md's section")
    parser.add_argument("--note", action="append", default=[], help="a line for the report")
    parser.add_argument("--rerender", action="store_true")
    args = parser.parse_args(argv)
    if args.rerender:
        rerender(ROOT / "BENCHMARKS.md")
        return 0
    started = time.monotonic()
    loadgen = "wrk, one thread" if load.have_wrk() else "bench.load Python client"
    current = "after" if args.baseline else "this tree"
    labels = {current: "llmrouter-tui, this tree"}
    if args.baseline:
        labels["before"] = f"llmrouter-tui at `{args.baseline}` (before)"
        labels["after"] = "llmrouter-tui, this tree (after)"
        if args.changed:
            shown = ", ".join(f"`{path}`" for path in args.changed)
            labels["after"] = f"`{args.baseline}` with this tree's {shown} (after)"
    labels[LITELLM] = "LiteLLM (`acompletion(stream=True)` under uvicorn)"
    with (
        tempfile.TemporaryDirectory(prefix="llmrouter-bench-miss-") as tmp,
        upstream() as up,
        contextlib.ExitStack() as stack,
    ):
        scratch = Path(tmp)
        targets: dict[str, Server] = {}
        if args.baseline:
            tree = baseline_tree(args.baseline, scratch)
            targets["before"] = stack.enter_context(
                serve(up.url, scratch / "data-before", PYTHONPATH=str(tree))
            )
            if args.changed:
                after = overlay_tree(tree, args.changed, scratch)
                targets[current] = stack.enter_context(
                    serve(up.url, scratch / "data-current", PYTHONPATH=str(after))
                )
        if current not in targets:
            targets[current] = stack.enter_context(serve(up.url, scratch / "data-current"))
        if has_litellm(args.litellm):
            targets[LITELLM] = stack.enter_context(litellm_app(args.litellm, up.url, scratch))
            say(f"LiteLLM from {args.litellm}")
        else:
            say(f"no litellm at {args.litellm}: measuring without it")
        rows = measure(targets, args.runs, args.seconds, args.warmup)
    results = {
        "rows": rows,
        "meta": {
            "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": shown_command(
                "python -m bench.miss", argv if argv is not None else sys.argv[1:]
            ),
            "minutes": (time.monotonic() - started) / 60,
            "loadgen": loadgen,
            "runs": args.runs,
            "seconds": args.seconds,
            "labels": labels,
            "current": current,
            "baseline": "before" if args.baseline else None,
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
