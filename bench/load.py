"""HTTP load from a separate process: wrk when installed, else a Python keep-alive client.

Both run for a fixed time over `concurrency` keep-alive connections to 127.0.0.1 and report
requests, duration, p50 and p99 latency and errors as one JSON object. Request bodies:

  v1        POST /v1/chat/completions (OpenAI shape)
  chat      POST /chat ({"prompt": ...})
  upstream  POST /openai/v1/chat/completions with stream=true: the call the router makes
  get       GET of the path (e.g. /stats)

`unique` gives every request its own prompt (cache misses); otherwise one prompt repeats.

    python -m bench.load --url http://127.0.0.1:8000 --kind v1 --unique -c 32 -d 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from typing import Any

from bench.common import BENCH_KEY, HOST, PYTHON, ROOT, child_env

PATHS = {
    "v1": "/v1/chat/completions",
    "chat": "/chat",
    "upstream": "/openai/v1/chat/completions",
}
MODEL = "openai/gpt-oss-20b"

_LUA = r"""
local counter = 0
local tid = 0
function setup(thread)
  tid = tid + 1
  thread:set("tid", tid)
end
function init(args)
  nonce = args[1]
  kind = args[2]
  unique = args[3] == "1"
  route = args[4]
  headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer %KEY%"}
end
function request()
  if kind == "get" then
    return wrk.format("GET", route, headers, nil)
  end
  counter = counter + 1
  local p = "bench " .. nonce
  if unique then p = p .. " " .. tid .. " " .. counter end
  local body
  if kind == "chat" then
    body = '{"prompt":"' .. p .. '"}'
  elseif kind == "upstream" then
    body = '{"messages":[{"role":"user","content":"' .. p .. '"}],"model":"%MODEL%","stream":true}'
  else
    body = '{"messages":[{"role":"user","content":"' .. p .. '"}]}'
  end
  return wrk.format("POST", route, headers, body)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"errors":%d,"non2xx":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
""".replace("%KEY%", BENCH_KEY).replace("%MODEL%", MODEL)


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


#: "auto" (wrk when installed), "wrk" or "python"; `python -m bench --loadgen` sets it.
TOOL = "auto"


def have_wrk() -> bool:
    return shutil.which("wrk") is not None and TOOL != "python"


def _route(kind: str, path: str | None) -> str:
    return path or PATHS.get(kind, "/")


def run_wrk(
    url: str,
    kind: str,
    unique: bool,
    concurrency: int,
    seconds: float,
    path: str | None = None,
    nonce: str | None = None,
) -> LoadResult:
    """One wrk run (a separate process, one thread)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(_LUA)
        script = f.name
    try:
        cmd = [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            script,
            url,
            "--",
            nonce or uuid.uuid4().hex[:12],
            kind,
            "1" if unique else "0",
            _route(kind, path),
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    finally:
        os.unlink(script)
    for line in out.stdout.splitlines():
        if line.startswith("WRKJSON "):
            d = json.loads(line[8:])
            return LoadResult(
                d["requests"],
                d["duration_us"] / 1e6,
                d["p50_us"] / 1000,
                d["p99_us"] / 1000,
                d["errors"] + d["non2xx"],
            )
    raise RuntimeError(f"wrk gave no result: {out.stdout[-500:]} {out.stderr[-500:]}")


def run_python(
    url: str,
    kind: str,
    unique: bool,
    concurrency: int,
    seconds: float,
    path: str | None = None,
    nonce: str | None = None,
) -> LoadResult:
    """One run of the Python client below, in its own process."""
    cmd = [PYTHON, "-m", "bench.load", "--url", url, "--kind", kind, "-c", str(concurrency)]
    cmd += (
        ["-d", str(seconds)] + (["--unique"] if unique else []) + (["--path", path] if path else [])
    )
    cmd += ["--nonce", nonce] if nonce else []
    out = subprocess.run(
        cmd, capture_output=True, text=True, timeout=seconds + 60, cwd=ROOT, env=child_env()
    )
    d = json.loads(out.stdout.strip().splitlines()[-1])
    return LoadResult(d["requests"], d["seconds"], d["p50_ms"], d["p99_ms"], d["errors"])


def run_load(
    url: str,
    kind: str,
    unique: bool,
    concurrency: int,
    seconds: float,
    path: str | None = None,
    tool: str | None = None,
    nonce: str | None = None,
) -> LoadResult:
    """One timed run; `nonce` makes prompts differ from other runs' (same nonce: same prompt)."""
    tool = tool or TOOL
    if tool == "wrk" or (tool == "auto" and have_wrk()):
        return run_wrk(url, kind, unique, concurrency, seconds, path, nonce)
    return run_python(url, kind, unique, concurrency, seconds, path, nonce)


# ---- the Python client ----------------------------------------------------------------------


def _request_bytes(kind: str, route: str, prompt: str) -> bytes:
    if kind == "get":
        body = b""
        method = "GET"
    else:
        method = "POST"
        msgs = [{"role": "user", "content": prompt}]
        if kind == "chat":
            payload: dict[str, Any] = {"prompt": prompt}
        elif kind == "upstream":
            payload = {"messages": msgs, "model": MODEL, "stream": True}
        else:
            payload = {"messages": msgs}
        body = json.dumps(payload).encode()
    head = (
        f"{method} {route} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {BENCH_KEY}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    marker = b"content-length:"
    at = lower.find(marker)
    if at >= 0:
        end = lower.index(b"\r\n", at)
        await reader.readexactly(int(lower[at + len(marker) : end]))
    elif b"transfer-encoding: chunked" in lower:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


async def _client(
    url: str,
    kind: str,
    unique: bool,
    concurrency: int,
    seconds: float,
    path: str | None,
    nonce: str | None,
) -> dict[str, Any]:
    host, port = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    if host != HOST:
        raise SystemExit("benchmarks target 127.0.0.1 only")
    route = _route(kind, path)
    nonce = nonce or uuid.uuid4().hex[:12]
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def worker(wid: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(HOST, int(port))
        n = 0
        try:
            while time.perf_counter() < stop_at:
                n += 1
                prompt = f"bench {nonce} {wid} {n}" if unique else f"bench {nonce}"
                data = _request_bytes(kind, route, prompt)
                t0 = time.perf_counter()
                writer.write(data)
                status = await _read_response(reader)
                latencies.append(time.perf_counter() - t0)
                if status >= 400:
                    errors += 1
        finally:
            writer.close()

    t0 = time.perf_counter()
    async with asyncio.timeout(seconds + 30):
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - t0
    latencies.sort()
    n = len(latencies)
    return {
        "requests": n,
        "seconds": elapsed,
        "p50_ms": latencies[n // 2] * 1000 if n else 0.0,
        "p99_ms": latencies[min(n - 1, int(n * 0.99))] * 1000 if n else 0.0,
        "errors": errors,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load")
    parser.add_argument("--url", required=True)
    parser.add_argument("--kind", choices=[*PATHS, "get"], default="v1")
    parser.add_argument("--path")
    parser.add_argument("--unique", action="store_true")
    parser.add_argument("-c", "--concurrency", type=int, default=1)
    parser.add_argument("-d", "--seconds", type=float, default=5.0)
    parser.add_argument("--nonce")
    parser.add_argument("--tool", choices=["python", "wrk"], default="python")
    args = parser.parse_args(argv)
    if args.tool == "wrk":
        r = run_wrk(
            args.url, args.kind, args.unique, args.concurrency, args.seconds, args.path, args.nonce
        )
        out = {"requests": r.requests, "seconds": r.seconds, "p50_ms": r.p50_ms}
        out |= {"p99_ms": r.p99_ms, "errors": r.errors}
    else:
        out = asyncio.run(
            _client(
                args.url,
                args.kind,
                args.unique,
                args.concurrency,
                args.seconds,
                args.path,
                args.nonce,
            )
        )
    json.dump(out, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
