"""Target 4: N concurrent streamed replies through --serve (a separate client process).

Opens N keep-alive connections to 127.0.0.1, sends `POST /v1/chat/completions` with
`stream: true` and a unique prompt on each, and reads every stream to `data: [DONE]`. Prints
one JSON object: completed, failed, peak number of streams open at once, seconds.

    python -m bench.streams --url http://127.0.0.1:8000 -n 1000 --timeout 120
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from typing import Any

from bench.common import HOST


async def run(url: str, n: int, timeout_s: float, expect_chunks: int) -> dict[str, Any]:
    host, port = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    if host != HOST:
        raise SystemExit("benchmarks target 127.0.0.1 only")
    nonce = uuid.uuid4().hex[:12]
    open_now = peak = completed = 0
    failures: list[str] = []
    first_bytes: list[float] = []
    t0 = time.perf_counter()

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        try:
            return await asyncio.open_connection(HOST, int(port))
        except OSError as exc:
            failures.append(f"connect: {exc}")
            return None

    async def one(i: int, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        nonlocal open_now, peak, completed
        reader, writer = conn
        try:
            body = json.dumps(
                {"messages": [{"role": "user", "content": f"stream {nonce} {i}"}], "stream": True}
            ).encode()
            writer.write(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body
            )
            sent = time.perf_counter()
            head = await reader.readuntil(b"\r\n\r\n")
            status = head.split(b"\r\n", 1)[0]
            if b" 200 " not in status:
                body = await asyncio.wait_for(reader.read(300), 5)
                failures.append(f"{status.decode('latin-1')}: {body.decode('utf-8', 'replace')}")
                return
            open_now += 1
            peak = max(peak, open_now)
            first_bytes.append(time.perf_counter() - sent)
            try:
                chunks, failure = await _read_to_done(reader)
            finally:
                open_now -= 1
            if failure is not None:
                failures.append(failure)
                return
            if chunks < expect_chunks:
                failures.append(f"only {chunks} content chunks")
                return
            completed += 1
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            failures.append(type(exc).__name__)
        finally:
            writer.close()

    tasks: list[asyncio.Task[None]] = []
    try:
        async with asyncio.timeout(timeout_s):
            # Every connection is open before any request is sent, so all N overlap.
            conns = await asyncio.gather(*(connect() for _ in range(n)))
            tasks = [asyncio.create_task(one(i, c)) for i, c in enumerate(conns) if c is not None]
            await asyncio.gather(*tasks)
    except TimeoutError:
        left = sum(not t.done() for t in tasks)
        for t in tasks:
            t.cancel()
        failures.append(f"{left} streams still open at the {timeout_s:g}s timeout")
    first_bytes.sort()
    return {
        "requested": n,
        "completed": completed,
        "failed": len(failures),
        "failures": sorted(set(failures))[:5],
        "peak_open": peak,
        "seconds": time.perf_counter() - t0,
        "first_byte_p50_ms": first_bytes[len(first_bytes) // 2] * 1000 if first_bytes else None,
    }


async def _read_to_done(reader: asyncio.StreamReader) -> tuple[int, str | None]:
    """Read a stream to `data: [DONE]`: (content chunks seen, why it failed or None)."""
    chunks = 0
    tail = b""
    while b"data: [DONE]" not in tail:
        data = await reader.read(65536)
        if not data:
            return chunks, "connection closed before [DONE]"
        chunks += data.count(b'"content":"')
        if b'data: {"error"' in data:
            return chunks, "error event"
        tail = tail[-16:] + data
    return chunks, None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.streams")
    parser.add_argument("--url", required=True)
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--expect-chunks", type=int, default=1)
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.url, args.n, args.timeout, args.expect_chunks))
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
