"""A paced token streamer for the TUI benchmark: `python -m bench.tokens --rate 2000 -n 4000`.

Answers any POST on 127.0.0.1 with an OpenAI/Groq chat.completion.chunk SSE stream of `n`
one-token chunks ("w1 ", "w2 ", …) sent at `rate` tokens per second (in 5 ms batches). Every
`mark_every` tokens the token is a marker word `qqmk<K>qq`; the wall-clock time each marker was
sent is printed as `MARK <K> <epoch seconds>`, then `END <epoch seconds>`. Prints `PORT <n>`
once listening; exits after `--max-seconds` or when stdin closes.

With `--markdown SEED` the reply is instead `long_reply(SEED, n)` (realistic Markdown with
code blocks and wide tables, `llmrouter_tui.testing.replies`) cut into word chunks, one chunk
per token, sent at `rate` chunks per second; `START` and `END` lines give when the first and
the last chunk were sent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import threading
import time

_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)


def marker(k: int) -> str:
    return f"qqmk{k}qq"


def _event(payload: dict[str, object]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def markdown_chunks(seed: int, tokens: int) -> list[str]:
    """The realistic Markdown reply of the benchmark, cut into word chunks."""
    from llmrouter_tui.testing.fake_payloads import split_chunks
    from llmrouter_tui.testing.replies import long_reply

    return split_chunks(long_reply(seed, tokens))


async def _stream(
    writer: asyncio.StreamWriter,
    n: int,
    rate: float,
    mark_every: int,
    chunks: list[str] | None = None,
) -> None:
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0}
    base["model"] = "openai/gpt-oss-20b"
    if chunks is not None:
        n = len(chunks)

    def token_event(i: int) -> tuple[bytes, int | None]:
        if chunks is not None:
            text, k = chunks[i - 1], None
        else:
            k = i // mark_every if mark_every and i % mark_every == 0 and i else None
            text = (marker(k) if k is not None else f"w{i}") + " "
        delta = {"index": 0, "delta": {"content": text}, "finish_reason": None}
        return _event({**base, "choices": [delta]}), k

    role = {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
    writer.write(_HEAD + _chunk(_event({**base, "choices": [role]})))
    await writer.drain()
    start = time.perf_counter()
    i = 1
    while i <= n:
        due = min(n, int((time.perf_counter() - start) * rate) + 1)
        batch: list[bytes] = []
        marks: list[int] = []
        while i <= due:
            event, k = token_event(i)
            batch.append(event)
            if k is not None:
                marks.append(k)
            i += 1
        if batch:
            writer.write(_chunk(b"".join(batch)))
            await writer.drain()
            now = time.time()
            if i - len(batch) == 1:
                print(f"START {now:.6f}", flush=True)
            for k in marks:
                print(f"MARK {k} {now:.6f}", flush=True)
        await asyncio.sleep(0.005)
    usage = {"prompt_tokens": 1, "completion_tokens": n, "total_tokens": n + 1}
    finish = {"index": 0, "delta": {}, "finish_reason": "stop"}
    tail = _event({**base, "choices": [finish], "usage": usage}) + b"data: [DONE]\n\n"
    writer.write(_chunk(tail) + b"0\r\n\r\n")
    await writer.drain()
    print(f"END {time.time():.6f}", flush=True)


async def _serve(args: argparse.Namespace) -> None:
    chunks = markdown_chunks(args.markdown, args.n) if args.markdown is not None else None

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                await _stream(writer, args.n, args.rate, args.mark_every, chunks)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def watch_stdin() -> None:
        sys.stdin.read()  # returns at EOF: the parent went away
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), args.max_seconds)
    server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tokens")
    parser.add_argument("--rate", type=float, default=2000.0, help="tokens per second")
    parser.add_argument("-n", type=int, default=4000, help="tokens per reply")
    parser.add_argument("--mark-every", type=int, default=400)
    parser.add_argument("--max-seconds", type=float, default=300.0)
    parser.add_argument(
        "--markdown", type=int, metavar="SEED", help="stream long_reply(SEED, n) instead"
    )
    asyncio.run(_serve(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
