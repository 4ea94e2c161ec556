"""Render one suite run as BENCHMARKS.md (plus the raw figures as JSON in an HTML comment)."""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bench.common import Spread

if TYPE_CHECKING:
    from bench.run import Measured, Results


def _ok(passed: bool | None) -> str:
    return "n/a" if passed is None else ("**met**" if passed else "**missed**")


def _by(value: float, limit: float, lower_is_better: bool) -> str:
    """How far a missed target is off, e.g. "1.6× the limit"."""
    if lower_is_better:
        return f"{value / limit:.1f}× the limit" if value > limit else ""
    return f"{value / limit:.0%} of the target" if value < limit else ""


class _Targets:
    def __init__(self) -> None:
        self.rows: list[str] = []

    def add(
        self,
        number: str,
        what: str,
        limit: float | None,
        value: float | None,
        shown: str,
        *,
        lower_is_better: bool = True,
        passed: bool | None = None,
    ) -> None:
        if passed is None and value is not None and limit is not None:
            passed = value <= limit if lower_is_better else value >= limit
        miss = ""
        if passed is False and value is not None and limit is not None:
            miss = _by(value, limit, lower_is_better)
        status = _ok(passed) + (f" ({miss})" if miss else "")
        self.rows.append(f"| {number} | {what} | {shown} | {status} |")


def _ratio(a: Spread, b: Spread) -> str:
    return f"{a.median / b.median:.1f}×" if b.median else "?"


def _http_targets(t: _Targets, res: Results) -> None:
    http = res.http
    names = {"v1": "`/v1/chat/completions`", "chat": "`/chat`"}
    for kind in ("v1", "chat"):
        m = http.get(f"{kind} miss c1")
        if m:
            t.add(
                "1",
                f"cache miss {names[kind]}, p50 at c=1 ≤ 2 ms",
                2,
                m.p50.median,
                f"{m.p50.fmt(2)} ms",
            )
        m = http.get(f"{kind} miss c32")
        if m:
            t.add(
                "1",
                f"cache miss {names[kind]}, ≥ 500 req/s at c=32",
                500,
                m.rps.median,
                f"{m.rps.fmt(0)} req/s",
                lower_is_better=False,
            )
    for kind in ("v1", "chat"):
        m = http.get(f"{kind} hit c1")
        if m:
            t.add(
                "2",
                f"cache hit {names[kind]}, p50 at c=1 ≤ 0.5 ms",
                0.5,
                m.p50.median,
                f"{m.p50.fmt(3)} ms",
            )
        m = http.get(f"{kind} hit c32")
        if m:
            t.add(
                "2",
                f"cache hit {names[kind]}, ≥ 3,000 req/s at c=32",
                3000,
                m.rps.median,
                f"{m.rps.fmt(0)} req/s",
                lower_is_better=False,
            )


def _history_targets(t: _Targets, res: Results) -> None:
    h = res.history
    n = h.get("n", 0)
    for c in (1, 32):
        empty, full = h.get(f"empty c{c}"), h.get(f"full c{c}")
        if empty and full:
            ratio = full.p50.median / empty.p50.median
            t.add(
                "3",
                f"{n:,} rows: cache-miss p50 at c={c} within 1.2× of an empty DB",
                1.2,
                ratio,
                f"{ratio:.2f}× ({full.p50.fmt(2)} vs {empty.p50.fmt(2)} ms)",
            )
    stats = h.get("stats full")
    if stats:
        t.add(
            "3",
            f"{n:,} rows: `GET /stats` ≤ 100 ms",
            100,
            stats.p99.median,
            f"p50 {stats.p50.fmt(2)} ms, p99 {stats.p99.fmt(2)} ms",
        )


def _stream_targets(t: _Targets, res: Results) -> None:
    s = res.streams
    if not s:
        return
    t.add(
        "4",
        f"{s['requested']:,} concurrent streamed replies all complete",
        None,
        None,
        f"{s['completed']:,} completed, {s['failed']} failed, {s['peak_open']:,} open at once",
        passed=s["completed"] == s["requested"],
    )
    t.add(
        "4",
        "server RSS while streaming ≤ 250 MB",
        250,
        s["peak_rss_mb"],
        f"{s['peak_rss_mb']:.0f} MB",
    )
    t.add("4", "server RSS idle ≤ 80 MB", 80, s["idle_rss_mb"], f"{s['idle_rss_mb']:.0f} MB")


def _tui_targets(t: _Targets, res: Results) -> None:
    u = res.tui
    if not u:
        return
    if u.get("first_frame_s") is not None:
        t.add(
            "5",
            "TUI first frame ≤ 0.5 s after launch (from process start)",
            0.5,
            u["first_frame_s"],
            f"{Spread.of(u['first_frame_runs']).fmt(3)} s",
        )
    if "stream_tokens" in u:
        lag = u.get("stream_lag_s")
        shown = (
            f"last marker on screen {lag * 1000:.0f} ms after it was sent"
            if lag is not None
            else f"{u['markers_seen']} of {u['markers_sent']} markers reached the screen"
        )
        t.add(
            "5",
            f"reply streamed at {u['stream_rate']:,.0f} tokens/s renders without falling behind "
            "(last marker word on screen ≤ 0.25 s after the upstream sent it)",
            0.25,
            lag,
            shown,
            passed=None if lag is not None else False,
        )
    if u.get("key_echo_ms") is not None:
        echo = u["key_echo_ms"]
        t.add(
            "5",
            "keypress during streaming reaches the screen ≤ 50 ms (median of the keys)",
            50,
            statistics.median(echo),
            f"{Spread.of(echo).fmt(1)} ms",
        )


def _long_targets(t: _Targets, res: Results) -> None:
    u = res.tui
    if not u or "long_first_frame_runs" not in u:
        return
    turns = u["long_turns"]
    first = Spread.of(u["long_first_frame_runs"])
    t.add(
        "5",
        f"TUI first frame ≤ 0.5 s, reopening a {turns}-turn conversation of long replies",
        0.5,
        first.median,
        f"{first.fmt(3)} s",
    )
    visible = Spread.of(u["long_visible_runs"])
    t.add(
        "5",
        "… and that conversation visible (its last reply's end on screen) ≤ 0.8 s",
        0.8,
        visible.median,
        f"{visible.fmt(3)} s",
    )
    opened = Spread.of(u["long_open_runs"])
    t.add(
        "5",
        f"opening a {turns}-turn conversation of long replies from the sidebar ≤ 0.3 s",
        0.3,
        opened.median,
        f"{opened.fmt(3)} s",
    )
    echo = u["md_key_echo_ms"]
    what = (
        f"key echo while a {u['md_stream_tokens']:,}-token Markdown reply streams, its end included"
    )
    p95 = _percentile(echo, 0.95)
    t.add("5", f"{what}: p95 ≤ 50 ms", 50, p95, f"p95 {p95:.1f} ms over {len(echo)} keys")
    top = _percentile(echo, 1.0)
    t.add("5", f"{what}: max ≤ 150 ms", 150, top, f"max {top:.1f} ms")


def _percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; a key never echoed counts as infinitely late."""
    ordered = sorted(float("inf") if v != v else v for v in values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _inproc_targets(t: _Targets, res: Results) -> None:
    p = res.inproc
    if not p:
        return
    for name, label in (("router", "routing only"), ("router_store", "routing + recording")):
        over = _overhead(p, name)
        t.add(
            "6",
            f"router overhead in-process ({label}) ≤ 0.3 ms",
            0.3,
            over.median,
            f"{over.fmt(3)} ms",
        )


def _overhead(p: dict[str, Any], name: str) -> Spread:
    """Per round: the variant's median minus the direct SDK call's median."""
    return Spread.of(
        [a - b for a, b in zip(p[name]["p50_ms"], p["direct_sdk"]["p50_ms"], strict=True)]
    )


def _cpu_overhead(p: dict[str, Any], name: str) -> Spread:
    return Spread.of(
        [a - b for a, b in zip(p[name]["cpu_ms"], p["direct_sdk"]["cpu_ms"], strict=True)]
    )


def _http_table(res: Results) -> list[str]:
    http = res.http
    if not http:
        return []
    lines = [
        "| scenario | c | p50 ms | p99 ms | req/s | CPU ms/request¹ | p50 vs direct | "
        "req/s vs direct |",
        "|---|---|---|---|---|---|---|---|",
    ]
    labels = {
        "direct": "fast fake upstream, direct (`POST /openai/v1/chat/completions`, stream)",
        "v1 miss": "`--serve` `/v1/chat/completions`, cache miss",
        "chat miss": "`--serve` `/chat`, cache miss",
        "v1 hit": "`--serve` `/v1/chat/completions`, cache hit",
        "chat hit": "`--serve` `/chat`, cache hit",
    }
    for key, m in http.items():
        base, _, conc = key.rpartition(" ")
        c = conc[1:]
        direct = http.get(f"direct c{c}")
        vs_p50 = vs_rps = "—"
        if direct is not None and not key.startswith("direct"):
            vs_p50 = _ratio(m.p50, direct.p50)
            vs_rps = f"{m.rps.median / direct.rps.median:.2f}×"
        cpu = m.cpu.fmt(3) if m.cpu else "?"
        errors = f" ({m.errors} errors)" if m.errors else ""
        lines.append(
            f"| {labels.get(base, base)} | {c} | {m.p50.fmt(3)} | {m.p99.fmt(2)} | "
            f"{m.rps.fmt(0)}{errors} | {cpu} | {vs_p50} | {vs_rps} |"
        )
    lines += [
        "",
        "¹ CPU time the serving process (the upstream for the direct rows) used per request, "
        "from `/proc/<pid>/stat`: steadier than wall-clock figures on a shared machine.",
    ]
    return lines


def _history_table(res: Results) -> list[str]:
    h = res.history
    if not h:
        return []
    n = h["n"]
    lines = [
        f"{n:,} synthetic requests generated with `generate_history(store, {n})` "
        f"(llmrouter_tui.testing.history) in "
        f"{h['generate_s']:.1f} s. Both servers ran side by side; runs alternated between them.",
        "",
        "| database | request | c | p50 ms | p99 ms | req/s | CPU ms/request |",
        "|---|---|---|---|---|---|---|",
    ]
    for key in ("empty c1", "full c1", "empty c32", "full c32", "stats empty", "stats full"):
        m: Measured | None = h.get(key)
        if m is None:
            continue
        db = "empty" if "empty" in key else f"{n:,} rows"
        what = "`GET /stats`" if key.startswith("stats") else "`/v1/chat/completions` miss"
        c = "1" if key.startswith("stats") else key.rpartition("c")[2]
        cpu = m.cpu.fmt(3) if m.cpu else "?"
        lines.append(
            f"| {db} | {what} | {c} | {m.p50.fmt(3)} | {m.p99.fmt(2)} | {m.rps.fmt(0)} | {cpu} |"
        )
    return lines


def _streams_table(res: Results) -> list[str]:
    s = res.streams
    if not s:
        return []
    fb = s.get("first_byte_p50_ms")
    return [
        f"{s['requested']:,} clients (one process, one connection each) open their connections "
        f"first, then each sends `POST /v1/chat/completions` with `stream: true` and a unique "
        f"prompt. The upstream (fake, normal mode, own process) streams {s['chunks']} chunks "
        f"{s['chunk_delay_s']:g} s apart, so every reply stays open for several seconds.",
        "",
        "| completed | failed | open at once (peak) | wall time | first byte p50 | "
        "RSS idle | RSS peak (sampled) | VmHWM | RSS after |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {s['completed']:,} | {s['failed']} | {s['peak_open']:,} | {s['seconds']:.1f} s | "
        f"{fb:.0f} ms | {s['idle_rss_mb']:.0f} MB | {s['peak_rss_mb']:.0f} MB | "
        f"{s['vm_hwm_mb']:.0f} MB | {s['rss_after_mb']:.0f} MB |"
        if fb is not None
        else f"| {s['completed']} | {s['failed']} | {s['peak_open']} | {s['seconds']:.1f} s | — "
        f"| {s['idle_rss_mb']:.0f} MB | {s['peak_rss_mb']:.0f} MB | {s['vm_hwm_mb']:.0f} MB | "
        f"{s['rss_after_mb']:.0f} MB |",
        *([f"\nFailures: {', '.join(s['failures'])}"] if s["failures"] else []),
    ]


def _inproc_table(res: Results) -> list[str]:
    p = res.inproc
    if not p:
        return []
    labels = {
        "direct_sdk": "`AsyncGroq.chat.completions.create(stream=True)` direct, client as the "
        "provider builds it",
        "direct_sdk_default_httpx": "the same SDK call with the SDK's default httpx client",
        "router": "`Router.complete`, no store (routing only)",
        "router_store": "`Router.complete` with a `Store` (routing + SQLite + logs)",
        "router_cache_hit": "`Router.complete`, cache hit",
    }
    lines = [
        f"{p['rounds']} rounds × {p['requests_per_round']} sequential requests per variant, "
        "variants interleaved; unique prompts except for the cache hit.",
        "",
        "| variant | p50 ms | p99 ms | CPU ms/request | p50 − direct | CPU − direct |",
        "|---|---|---|---|---|---|",
    ]
    for name, label in labels.items():
        v = p[name]
        over = cpu_over = "—"
        if name != "direct_sdk":
            over = _overhead(p, name).fmt(3)
            cpu_over = _cpu_overhead(p, name).fmt(3)
        lines.append(
            f"| {label} | {Spread.of(v['p50_ms']).fmt(3)} | {Spread.of(v['p99_ms']).fmt(2)} | "
            f"{Spread.of(v['cpu_ms']).fmt(3)} | {over} | {cpu_over} |"
        )
    return lines


def _profile_table(res: Results, kind: str) -> list[str]:
    p = res.profile.get(kind) if res.profile else None
    if not p or not p.get("samples"):
        return []
    rps = p.get("rps_while_sampled")
    unprofiled_key = f"v1 {kind} c32"
    lines = [
        f"py-spy, 200 Hz, {p['samples']:,} busy samples of the `--serve` process under "
        f"cache-{kind} load at c=32 (`/v1/chat/completions`"
        + (f", {rps:.0f} req/s while sampled" if rps else "")
        + "). Standard-library frames are charged to their caller (so each layer includes the "
        "JSON work it asks for), except asyncio's socket system calls, which have their own "
        "row; SQLite's C code shows under the recording code that calls it. The last column "
        f"spreads the server CPU per request measured without the profiler (`/v1/chat/"
        f"completions` {kind} at c=32 above) over the layers.",
        "",
        "| layer | share of server CPU | ≈ ms per request |",
        "|---|---|---|",
    ]
    unprofiled = res.http.get(unprofiled_key)
    per_request = unprofiled.cpu.median if unprofiled and unprofiled.cpu else None
    for name, share in p["layers"]:
        ms = f"{share * per_request:.3f}" if per_request else "?"
        lines.append(f"| {name} | {share:.0%} | {ms} |")
    lines += ["", "Hottest functions (self time):", "", "| function | share |", "|---|---|"]
    lines += [f"| `{name}` | {share:.1%} |" for name, share in p["top"][:12]]
    return lines


def _tui_table(res: Results) -> list[str]:
    u = res.tui
    if not u:
        return []
    lines = [
        "Measured from outside under a 120×40 pseudo-terminal (`bench/tui.py`).",
        "",
        "| measure | value |",
        "|---|---|",
        "| first frame (chat screen painted), `--demo`, from process start; bytecode "
        "compiled by one untimed launch first, as installing would | "
        f"{Spread.of(u['first_frame_runs']).fmt(3)} s over {len(u['first_frame_runs'])} "
        "launches |",
    ]
    if "stream_tokens" in u:
        lags = ", ".join(f"{x * 1000:.0f}" for x in u["marker_lags_s"]) or "—"
        first = u.get("first_token_s")
        lines += [
            f"| reply streamed at {u['stream_rate']:,.0f} tokens/s ({u['stream_tokens']:,} "
            f"tokens): marker words seen on screen | {u['markers_seen']} of "
            f"{u['markers_sent']} |",
            f"| lag of each marker (on screen − sent), ms, in stream order | {lags} |",
            f"| Enter → first token on screen | "
            f"{'—' if first is None else f'{first * 1000:.0f} ms'} |",
        ]
        echo = u.get("key_echo_ms")
        lines.append(
            f"| keypress typed during the stream → on screen ({u['keys_typed']} keys) | "
            + (f"{Spread.of(echo).fmt(1)} ms" if echo else "not echoed")
            + " |"
        )
    lines += _long_table(u)
    lines += [f"\n{u[k]}" for k in u if k.endswith("_note")]
    return lines


def _long_table(u: dict[str, Any]) -> list[str]:
    if "long_first_frame_runs" not in u:
        return []
    runs = len(u["long_first_frame_runs"])
    echo = u["md_key_echo_ms"]
    near = u["md_key_echo_near_end_ms"]

    def ms(values: list[float]) -> str:
        return ", ".join("lost" if v != v else f"{v:.0f}" for v in values)

    def seconds(values: list[float]) -> str:
        return ", ".join(f"{v:.3f}" for v in values)

    return [
        "",
        f"Long conversations: {u['long_turns']} turns of realistic replies (1,000–3,000 tokens "
        "of Markdown with code blocks, lines wider than the terminal and wide tables; "
        "`llmrouter_tui.testing.replies`), under the same 120×40 pseudo-terminal, "
        f"{runs} launches each; figures per launch.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| first frame, the long conversation reopened at start (s) | "
        f"{seconds(u['long_first_frame_runs'])} |",
        f"| its last reply's end on screen, from process start (s) | "
        f"{seconds(u['long_visible_runs'])} |",
        f"| opened from the sidebar: last Enter → its last reply's end on screen (s) | "
        f"{seconds(u['long_open_runs'])} |",
        f"| a {u['md_stream_tokens']:,}-token Markdown reply streamed at "
        f"{u['md_stream_rate']:,.0f} word chunks/s: stream length (s) | "
        f"{seconds(u['md_stream_s'])} |",
        f"| key echo while it streams and just after, {len(echo)} keys (ms): median, p95, max"
        f" | {_percentile(echo, 0.5):.1f}, {_percentile(echo, 0.95):.1f}, "
        f"{_percentile(echo, 1.0):.1f} |",
        "| … p95 and max per launch (ms) | "
        + "; ".join(
            f"{p:.0f}, {m:.0f}"
            for p, m in zip(u["md_key_echo_p95_runs"], u["md_key_echo_max_runs"], strict=True)
        )
        + " |",
        f"| … keys typed from 0.1 s before to 0.6 s after the last chunk (ms) | "
        f"{ms(near) or '—'} |",
    ]


def render(res: Results, only: set[str], command: str) -> str:
    m = res.machine
    t = _Targets()
    for fn in (
        _http_targets,
        _history_targets,
        _stream_targets,
        _tui_targets,
        _long_targets,
        _inproc_targets,
    ):
        fn(t, res)
    parts: list[str] = [
        "# Benchmarks",
        "",
        "<!-- Generated by `python -m bench` (bench/run.py); edit bench/report.py, not this "
        "file. -->",
        "",
        f"Measured on {res.started} by `{command}` ({res.plan} run, {res.seconds / 60:.1f} min). "
        "Reproduce with `.venv/bin/python -m bench` (about 10 minutes; `--quick` takes about 3; "
        "`--only http,inproc` picks sections).",
        "",
        "| machine | |",
        "|---|---|",
        f"| cores | {m['cores']} ({m['cpu']}) |",
        f"| memory | {m['memory']} |",
        f"| Python | {m['python']} |",
        f"| OS | {m['os']} |",
        f"| load generator | {res.loadgen}, a separate process |",
        "",
        "The machine is shared and noisy: figures are medians of several runs with the min–max "
        "across runs in parentheses, and server CPU per request is shown next to wall-clock "
        "figures because it varies much less.",
        "",
        "## Targets",
        "",
        "| # | target | measured | |",
        "|---|---|---|---|",
        *t.rows,
    ]
    sections: list[tuple[str, Callable[[Results], list[str]]]] = [
        ("HTTP load: `--serve` against the fast fake upstream (targets 1, 2)", _http_table),
        ("History size (target 3)", _history_table),
        ("Concurrent streams (target 4)", _streams_table),
        ("TUI (target 5)", _tui_table),
        ("Router overhead in-process (target 6)", _inproc_table),
        ("Where a cache miss spends the server's CPU", lambda r: _profile_table(r, "miss")),
        ("Where a cache hit spends the server's CPU", lambda r: _profile_table(r, "hit")),
    ]
    for title, fn in sections:
        body = fn(res)
        if body:
            parts += ["", f"## {title}", "", *body]
    parts += ["", *FINDINGS, "", *METHOD]
    if res.notes:
        parts += ["", "## Notes from this run", "", *[f"- {n}" for n in res.notes]]
    raw = {
        "http": {k: v.as_dict() for k, v in res.http.items()},
        "history": {
            k: (v.as_dict() if hasattr(v, "as_dict") else v) for k, v in res.history.items()
        },
        "streams": res.streams,
        "tui": res.tui,
        "inproc": res.inproc,
        "profile": res.profile,
        "sections": sorted(only),
        "meta": {
            "started": res.started,
            "command": command,
            "plan": res.plan,
            "seconds": res.seconds,
            "loadgen": res.loadgen,
            "machine": res.machine,
            "notes": res.notes,
            "origins": res.origins,
        },
    }
    parts += ["", "<!-- raw results", json.dumps(raw, indent=None).replace("--", "- -"), "-->", ""]
    return "\n".join(parts)


_KEPT_BLOCK = re.compile(r"<!-- ([\w.]+): begin -->\n.*?<!-- \1: end -->\n?", re.DOTALL)


def with_kept_sections(new: str, old: str) -> str:
    """`new` plus the sections other bench tools keep between `<!-- NAME: begin/end -->`
    markers in `old` (bench.workers, bench.auto), placed before "## Method" as they were."""
    kept = [m.group(0) for m in _KEPT_BLOCK.finditer(old) if m.group(0) not in new]
    if not kept:
        return new
    head, sep, tail = new.partition("## Method")
    blocks = "".join(block if block.endswith("\n") else block + "\n" for block in kept)
    return head + blocks + "\n" + sep + tail if sep else new + "\n" + blocks


FINDINGS = [
    "## What was optimised",
    "",
    "Figures in this list are server CPU per request, before → after, from runs of this suite "
    "while the change was made; the tables above are the current run.",
    "",
    "- **The groq stream without the SDK's per-chunk models** (`core/providers/groq.py`, "
    "`openai_stream.py`): the request still goes through the SDK's documented generic "
    "`post(..., cast_to=httpx.Response, stream=True)`; the event stream is split here and "
    "each chunk parsed with orjson. Cache miss at c=32: 3.4 → 2.6 ms (`bench.miss`).",
    "- **Group commit on the writer thread** (`core/record_batch.py`): one batch on the "
    "writer at a time, and what finishes meanwhile goes in the next; handing the writer a "
    "batch per loop turn had made batches of one or two records (+1 ms CPU per miss).",
    "- **Group commit for recording** (`core/record_batch.py`, `core/recorder.py`, "
    "`core/store.py`): the requests that finish in the same turn of the event loop are "
    "recorded together: one SQLite transaction for their rows, attempts, summary deltas "
    "(merged per model and histogram bucket) and cache entries, then one `write()` per log "
    "file for all their lines. Before, every request paid two transactions (the cache entry, "
    "then the record) and two locked appends. Every request is still recorded before its "
    "reply is sent. Cache hit at c=32: 0.77 → 0.35 ms (1,200 → about 2,600 req/s). A crash "
    "can now leave at most one batch (≤ 64 requests) in SQLite without its log lines, where "
    "it was one record; acknowledged requests are in every sink either way (tested).",
    "- **Time-ordered prompt ids** (`core/router.py`): 32 hex digits as before, now the time "
    "in milliseconds followed by 80 random bits. Random ids were inserted at random places "
    "in the `prompt_id` indexes (requests and attempts), so a batch of 8 touched 8 index "
    "pages where it now touches one, and a commit costs per page written. Recording a batch "
    "of 8 cache hits: 75 → 57 µs per request (micro-benchmark); cache hit at c=32: 0.35 → "
    "0.32 ms.",
    "- **orjson for replies and log lines** (`core/jsonbytes.py`): about ten times faster "
    "than `json.dumps`, with the standard library for what orjson refuses (lone surrogates, "
    "integers beyond 64 bits). Cache hit at c=32: 0.34 → 0.28 ms. Request bodies are still "
    "parsed by the standard library (its error messages name line and column).",
    "- **Several small connection pools per provider** (`core/providers/base.py`): httpcore "
    "scans every pooled connection on each request (a `getpeername` and a `poll` per idle "
    "one), so one pool sized for 1,000 streams made each request pay for all of them. A "
    "provider now lends each call the least busy of up to 8 clients, building another only "
    "when every client has 4 calls in flight (light use keeps one client and one warm "
    "connection); one TLS context is shared. Cache miss at c=32: 4.9 → 2.3 ms, 200 → about "
    "420 req/s. Gemini clients also got the 1,000-connection limit they lacked.",
    "- **Cache keys** (`core/cache.py`): the canonical JSON is written out directly instead "
    "of `json.dumps(sort_keys=True)` of a nested dict: the same bytes (property-tested), so "
    "existing cache entries still match.",
    "- **CSV records** (`core/logsinks.py`): quoted by hand instead of a `csv.writer` per "
    "record, byte-for-byte what `csv.writer` writes (property-tested against it); about 2× "
    "faster. The torn-tail check reuses the append descriptor.",
    "- **Router** (`core/router.py`, `core/catalog.py`): candidate chains are memoised per "
    "model and day; the router closes its own generators (one left to the garbage collector "
    "cost a self-pipe write and an extra loop wake-up per request); timestamps are formatted "
    "once per second.",
    "- **HTTP server** (`server/http.py`): access-log lines are written once per loop turn; "
    "request headers are listed once; an empty parser buffer is not parsed.",
    "- **TUI** (`tui/`): screens, dialogs and the Markdown widget are imported when first "
    "used; streamed text is rendered in batches with one render in flight and the next paced "
    "by what the last one cost; the stream hands the loop back every 3 ms; the garbage "
    "collector ignores objects created before launch; Textual may repaint 120 times a second "
    "(`TEXTUAL_FPS`, a user's own setting wins), since a typed key waits for the next "
    "repaint slot. First frame 0.69 → 0.36 s (part of that is the benchmark now timing "
    "compiled bytecode, as an installed package has); key echo 57 → 8–46 ms (median of runs).",
    "- **Long replies and long conversations** (`tui/markdown_render.py`, "
    "`tui/widgets/markdown_body.py` and its block widgets, `tui/widgets/conversation_view.py`, "
    "`tui/widgets/reply.py`): Textual's Markdown widget made a widget per paragraph, list "
    "item and table cell, about 330 for a 3,000-token reply; a reply is now a few block "
    "widgets (runs of prose, code blocks, tables; 19 for that reply) drawn from lines "
    "computed once per width, each row turned into a strip only when it is on screen. "
    "Mounting such replies in-process at 120×40 until painted: one 0.62 → 0.26 s (the first "
    "pays for importing the parser), five 3.06 → 0.37 s. A saved conversation "
    "mounts only its newest turns (about two screens); older ones are mounted when "
    "scrolled or selected up to, keeping what is on screen in place. Streaming re-parses "
    "only the last block; a code block still growing is highlighted line by line and whole "
    "once complete; a language's lexer loads in a thread after the first paint (shown plain "
    "until then); the end of a stream appends what is left instead of rendering the reply "
    "again; batches wait twice what the last one cost, and a key typed in the prompt holds "
    "the next batch until its echo is drawn. Measured at the last commit before this work "
    "with the same long-conversation scenarios (one launch each, a busy machine): first "
    "frame 13.2 s, the conversation visible after 20.2 s, opening it 14.2 s, key echo "
    "while a 3,000-token reply streams p95 114 ms and max 313 ms (the final re-render).",
    "- Earlier: provider connection limits raised to 1,000 (with the SDK default of 100, "
    "queued streams burned the first-token timeout: 1 of 1,000 completed), and "
    "`Attempt.as_dict` as a plain dict. A hand-written h11 client transport for plain-http "
    "upstreams was measured and not kept: real providers are https.",
    "",
    "Measured and not kept (no gain beyond noise): uvloop (0.10 vs 0.11 ms per request for "
    "this server with an empty app); SQLite `page_size` 1024 (a commit costs per page "
    "written, not per byte), `mmap_size`, `cache_size` and `wal_autocheckpoint`; garbage "
    "collector thresholds for the server; keeping log-file descriptors open between records.",
    "",
    "## What remains, and what bounds it",
    "",
    "- **Cache miss (target 1)**: httpx and httpcore under the groq SDK are now the largest "
    "part of a miss (about 40% of the server's CPU, profile above), then recording (about "
    "20%, on the writer thread) and the router (about 12%); the SDK's request transform and "
    "its pydantic model per chunk are gone from the stream path (`bench.miss` section: 3.4 "
    "→ 2.6 ms CPU per miss in one A/B run). 500 req/s on one core would need about 2 ms "
    "per miss: less of httpx (sending the request without the SDK is ruled out, its client "
    "keeps auth, base URL and errors) or less recording per request.",
    "- **Cache hit (target 2)**: missed since recording moved onto a writer thread (so a "
    "write waiting for another process's lock never stalls the loop: the `bench.workers` "
    "lock scenario). Each hop to that thread and back costs about 0.13 ms of CPU on this "
    "machine (two threads' wake-ups, measured with a no-op write), paid once per batch: "
    "at c=1 once per request. In one same-session A/B run the code before the writer "
    "thread (c327493) served hits at 0.78 ms p50 (c=1) and 1,884 req/s (c=32) against "
    "1.10 ms and 1,487 req/s now. The figures of earlier reports (0.45 ms, 3,700 req/s) "
    "were measured on 2026-11-27 with the Python load generator on a faster run of this "
    "machine: compare only rows of the same run. A way back: write on the loop when the "
    "database and log locks are free at once (non-blocking attempts) and hand only a "
    "write that would wait to the thread; not done.",
    "- **Router overhead in-process (target 6)**: routing alone is well under the target. "
    "With a store, the sequential benchmark records one request per transaction (nothing to "
    "batch with): a SQLite commit that writes about ten pages to the WAL plus two log "
    "appends, and the hop to the writer thread and back, is most of what the router adds to "
    "a miss. Recording before returning is a design choice (the result carries storage "
    "warnings and can be rated at once; an acknowledged request is never lost).",
    "- **History size**: flat: `/stats` reads only the summary tables, and an insert touches "
    "the right-hand edge of the time and `prompt_id` indexes.",
    "- **TUI**: the first frame is mostly imports (Textual ≈ 0.1 s, the core ≈ 0.09 s) and "
    "Textual's start-up; key echo is mostly the wait for Textual's next repaint, plus the "
    "re-render of the growing last paragraph on a busy machine (this figure varies most "
    "between runs). While a long reply streams at 1,000 chunks/s the event loop is busy "
    "most of the time: about a third went to the groq SDK building a pydantic object per "
    "chunk (core; gone since the provider change, not measured again here), a third to "
    "Textual laying out and repainting the conversation, which "
    "scrolls with every batch (every visible row changes), and the rest to parsing and "
    "drawing the last block; a key that lands behind a repaint waits for it. A long "
    "conversation's figures are dominated by start-up itself (the first frame without any "
    "conversation is within about 0.05 s of it) and by the first reply's lexers, which load "
    "in a thread but share the interpreter lock. In the 2,000 tokens/s scenario the first "
    "of its six keys is typed 0.4 s after the session's very first Enter and waits for the "
    "provider SDK, imported on first use on the event loop (0.4–1 s on this machine, also "
    "before this work); with six keys that one key moves the median.",
]

METHOD = [
    "## Method",
    "",
    "- **Upstream**: `llmrouter_tui.testing.fake_upstream.FakeUpstream(fast=True)` in its own "
    "process: it answers every chat request at once with a fixed one-word reply from cached "
    "bytes. It is measured directly in the same run (the `direct` rows) with the request the "
    "router itself makes (`stream: true`), so the tables show it is not the bottleneck; every "
    "`--serve` figure has its ratio to the direct figure next to it.",
    "- **Server**: `python -m llmrouter_tui --serve --port 0` as shipped (access log on, written "
    "to a file), Groq and Gemini pointed at the fake with `GROQ_BASE_URL`/`GEMINI_BASE_URL`, "
    "a fresh data directory and a scratch working directory.",
    "- **Load**: wrk (or, without wrk, `bench/load.py`, an asyncio client on raw sockets) in "
    "a separate process over keep-alive connections: a warm-up run that is thrown away, then "
    "several timed runs. Cache misses send a unique prompt per request; cache hits repeat one "
    "prompt (the warm-up stores it).",
    "- **In-process**: `bench/inproc.py` times `Router.complete` and the same `groq` SDK call "
    "made directly against the same fake, interleaved request by request.",
    "- **Nothing timed is in `tests/`**: the suite lives in `bench/`, bounds every loop in "
    "count and time, talks to 127.0.0.1 only, and stops every process it started.",
]
