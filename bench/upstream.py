"""Run the fake upstream in its own process: `python -m bench.upstream [--fast] [...]`.

Prints `PORT <n>` on stdout once listening, then serves until stdin closes, SIGTERM, or
`--max-seconds` pass (so it never outlives the suite).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading

from llmrouter_tui.testing.fake_upstream import FakeUpstream


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.upstream")
    parser.add_argument("--fast", action="store_true", help="answer 'ok' at once from cache")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between chunks")
    parser.add_argument("--words", type=int, default=0, help="reply length in words (not fast)")
    parser.add_argument("--max-seconds", type=float, default=900.0)
    args = parser.parse_args(argv)
    fake = FakeUpstream(fast=args.fast, chunk_delay_s=args.chunk_delay)
    if args.words:
        text = " ".join(f"w{i}" for i in range(args.words))
        fake.reply_fn = lambda provider, model, messages: text
    fake.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def watch_stdin() -> None:
        sys.stdin.read()  # returns at EOF: the parent went away
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    print(f"PORT {fake.port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait(args.max_seconds)
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
