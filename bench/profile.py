"""Where --serve spends its CPU on a cache miss and on a cache hit: py-spy samples by layer.

Each sample is charged to the innermost frame that belongs to a known layer; standard-library
frames (asyncio, json, typing…) are charged to the code that called them, except the socket
system calls of asyncio's transports (send and recv, where the kernel does the loopback TCP
work), which get a layer of their own. py-spy does not see inside C extensions, so SQLite's
own work shows as the Python function that called it (`write_db`, `cache.get`). Samples of an
idle thread (the event loop waiting in epoll, an idle executor thread) are left out.
"""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

from bench.common import PYTHON, Server
from bench.load import LoadResult, run_load

LAYERS: tuple[tuple[str, str], ...] = (
    ("h11/", "h11 (HTTP/1.1 parsing and framing, our server's side)"),
    ("llmrouter_tui/core/providers/", "ours: providers (Groq adapter, stream reading)"),
    ("llmrouter_tui/core/store.py", "ours: recording (SQLite, log files)"),
    ("llmrouter_tui/core/recorder.py", "ours: recording (SQLite, log files)"),
    ("llmrouter_tui/core/cache.py", "ours: recording (SQLite, log files)"),
    ("llmrouter_tui/core/stats.py", "ours: recording (SQLite, log files)"),
    ("llmrouter_tui/core/logsinks.py", "ours: recording (SQLite, log files)"),
    ("llmrouter_tui/core/", "ours: router"),
    ("llmrouter_tui/server/", "ours: HTTP server and app"),
    ("llmrouter_tui/", "ours: other"),
    ("groq/", "groq SDK (builds and sends the request)"),
    ("pydantic", "pydantic (called by the groq SDK)"),
    ("httpx/", "httpx + httpcore + anyio (HTTP client under the SDK)"),
    ("httpcore/", "httpx + httpcore + anyio (HTTP client under the SDK)"),
    ("anyio/", "httpx + httpcore + anyio (HTTP client under the SDK)"),
    ("sniffio/", "httpx + httpcore + anyio (HTTP client under the SDK)"),
)
# Innermost frames that are asyncio's socket system calls (self time = time in the kernel).
_SOCKET_CALLS = (
    "_SelectorSocketTransport.write (",
    "_SelectorSocketTransport._read_ready__data_received (",
)
SOCKET_LAYER = "socket send/recv system calls (kernel, loopback TCP)"
_HTTP_CLIENT = "httpx + httpcore + anyio (HTTP client under the SDK)"
_IDLE = ("EpollSelector.select", "select (selectors.py", "_worker (concurrent/futures/thread.py")
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


_ENTRY = ("llmrouter_tui/server/main.py", "llmrouter_tui/cli.py", "llmrouter_tui/__main__.py")


def _layer(file: str) -> str | None:
    if file.endswith(_ENTRY):
        return None  # entry points sit under every sample, including the event loop's own
    for prefix, name in LAYERS:
        if file.startswith(prefix) or f"/{prefix}" in file:
            return name
    return None


def summarise(raw: str, top: int = 15) -> dict[str, Any]:
    """Layer shares and the hottest functions (self time) from py-spy's raw output."""
    layers: collections.Counter[str] = collections.Counter()
    funcs: collections.Counter[str] = collections.Counter()
    total = idle = 0
    for line in raw.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        if any(frames[-1].startswith(idle_name) for idle_name in _IDLE):
            idle += n
            continue
        total += n
        layer = SOCKET_LAYER if frames[-1].startswith(_SOCKET_CALLS) else None
        for frame in reversed(frames if layer is None else ()):
            m = _FRAME.match(frame)
            if m and (layer := _layer(m["file"])):
                break
        if layer is not None and layer.startswith("h11") and any("httpcore/" in f for f in frames):
            layer = _HTTP_CLIENT  # httpcore parses upstream replies with h11 too
        layers[layer or "asyncio event loop, other stdlib"] += n
        m = _FRAME.match(frames[-1])
        funcs[f"{m['func']} ({m['file']})" if m else frames[-1]] += n
    return {
        "samples": total,
        "idle_samples": idle,
        "layers": [(name, n / total) for name, n in layers.most_common()] if total else [],
        "top": [(name, n / total) for name, n in funcs.most_common(top)] if total else [],
    }


def _py_spy() -> str | None:
    local = Path(PYTHON).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def profile_server(
    server: Server, seconds: float, unique: bool = True, nonce: str | None = None
) -> dict[str, Any]:
    """py-spy the server while a separate process puts load on it (c=32): cache misses with
    `unique` prompts, else cache hits (of the prompt a warm-up with `nonce` stored)."""
    spy = _py_spy()
    if spy is None:
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "profile.txt"
        load: list[LoadResult] = []
        t = threading.Thread(
            target=lambda: load.append(
                run_load(server.url, "v1", unique, 32, seconds + 1, nonce=nonce)
            ),
            daemon=True,
        )
        t.start()
        subprocess.run(
            [
                spy,
                "record",
                "-p",
                str(server.pid),
                "-d",
                str(int(seconds)),
                "-r",
                "200",
                "-f",
                "raw",
                "-o",
                str(out),
            ],
            capture_output=True,
            timeout=seconds + 60,
        )
        t.join(seconds + 60)
        raw = out.read_text() if out.exists() else ""
    summary = summarise(raw)
    summary["rps_while_sampled"] = load[0].rps if load else None
    return summary
