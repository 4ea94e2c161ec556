"""Render BENCHMARKS.md again from the raw results it embeds, without measuring anything.

For when only the report's wording (bench/report.py) changed: `python -m bench --rerender`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bench.load import LoadResult
from bench.run import Measured, Results

_RAW = re.compile(r"<!-- raw results\n(.*?)\n-->", re.S)
_HEADER = re.compile(r"Measured on (.+?) by `(.+?)` \((\w+) run, ([\d.]+) min\)")


def _measured(d: dict[str, Any]) -> Measured:
    runs = [
        LoadResult(requests=rps, seconds=1.0, p50_ms=p50, p99_ms=p99, errors=0)  # type: ignore[arg-type]
        for p50, p99, rps in zip(d["p50_ms"], d["p99_ms"], d["rps"], strict=True)
    ]
    if runs and d.get("errors"):
        first = runs[0]
        runs[0] = LoadResult(first.requests, first.seconds, first.p50_ms, first.p99_ms, d["errors"])
    return Measured(runs, list(d.get("cpu_ms_per_request") or []))


def _meta_from_header(text: str) -> dict[str, Any]:
    """For reports written before the raw results carried their own header facts."""
    m = _HEADER.search(text)
    rows = dict(re.findall(r"^\| (cores|memory|Python|OS|load generator) \| (.+?) \|$", text, re.M))
    cores, _, cpu = rows.get("cores", "? (?)").partition(" (")
    return {
        "started": m[1] if m else "?",
        "command": m[2] if m else "python -m bench",
        "plan": m[3] if m else "full",
        "seconds": float(m[4]) * 60 if m else 0.0,
        "loadgen": rows.get("load generator", "?").removesuffix(", a separate process"),
        "machine": {
            "cores": cores,
            "cpu": cpu.rstrip(")"),
            "memory": rows.get("memory", "?"),
            "python": rows.get("Python", "?"),
            "os": rows.get("OS", "?"),
        },
        "notes": re.findall(r"^- (section .+|profile skipped.+)$", text, re.M),
    }


def load(path: Path) -> tuple[Results, set[str], str]:
    """The Results, sections and command of the report at `path`."""
    text = path.read_text()
    found = _RAW.search(text)
    if found is None:
        raise SystemExit(f"{path} has no raw results to render from; run `python -m bench`")
    raw = json.loads(found[1].replace("- -", "--"))
    meta = raw.get("meta") or _meta_from_header(text)
    res = Results(
        started=meta["started"],
        plan=meta["plan"],
        loadgen=meta["loadgen"],
        machine=meta["machine"],
        http={k: _measured(v) for k, v in raw.get("http", {}).items()},
        history={
            k: _measured(v) if isinstance(v, dict) and "p50_ms" in v else v
            for k, v in raw.get("history", {}).items()
        },
        streams=raw.get("streams") or {},
        tui=raw.get("tui") or {},
        inproc=raw.get("inproc") or {},
        profile=raw.get("profile") or {},
        notes=list(meta.get("notes") or []),
        seconds=float(meta.get("seconds") or 0.0),
        origins=dict(meta.get("origins") or {}),
    )
    return res, set(raw.get("sections") or []), meta["command"]
