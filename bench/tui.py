"""Target 5: the TUI under a pseudo-terminal, timed from outside the process.

- First frame: `python -m llmrouter_tui --demo` is started under a 120×40 pty; the clock runs
  from just before the fork until the terminal output contains the chat screen's intro text
  (the first full paint). Several launches after one untimed launch that compiles the
  bytecode (into the scratch directory), as installing the package would; median with min–max.
- Streaming: the TUI talks to `bench.tokens` (its own process), which streams a reply at
  2,000 tokens/s with a marker word every 400 tokens and prints when it sent each one. The
  lag of a marker is when it first appears in the terminal output minus when it was sent; a
  renderer that falls behind shows a lag that grows along the reply.
- Keypress: while the reply streams, "§" is typed into the prompt every 0.3 s; the echo time
  is from the write to the pty until the output shows the prompt with one more "§".

Every wait is bounded; each TUI is quit with ctrl+q, then SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import select
import signal
import statistics
import struct
import subprocess
import termios
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import BENCH_KEY, PYTHON, ROOT, child_env, popen, read_line, stop

COLS, ROWS = 120, 40
INTRO = b"Type a prompt"  # on the chat screen's first paint
_ESCAPES = re.compile(
    rb"\x1b\[[0-9;?<>=$]*[ -/]*[@-~]"  # CSI
    rb"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC
    rb"|\x1b[()][0-9A-Za-z]|\x1b[=>78]"
)
KEY = "§"


class Terminal:
    """A child process on a pty, with its output read (and kept) as it comes."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.t0 = time.perf_counter()
        pid, fd = pty.fork()
        if pid == 0:  # child: become the app
            try:
                os.chdir(cwd)
                os.execve(args[0], args, env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        self.text = b""  # output with escape sequences removed
        self.raw_len = 0
        self.exited = False

    def pump(self, timeout: float) -> bytes:
        """Read what is available within `timeout`; return it (escapes removed)."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return b""
        try:
            data = os.read(self.fd, 1 << 16)
        except OSError:
            self.exited = True
            return b""
        if not data:
            self.exited = True
        self.raw_len += len(data)
        clean = _ESCAPES.sub(b"", data)
        self.text += clean
        return clean

    def wait_for(self, needle: bytes, timeout: float) -> float | None:
        """Seconds since launch when `needle` first shows in the output (None: timed out)."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline and not self.exited:
            if needle in self.text[-(1 << 16) :]:
                return time.perf_counter() - self.t0
            self.pump(0.02)
        return time.perf_counter() - self.t0 if needle in self.text else None

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.send(b"\x11")  # ctrl+q
        deadline = time.perf_counter() + 3
        while time.perf_counter() < deadline:
            with contextlib.suppress(OSError):
                self.pump(0.05)
            done, _ = os.waitpid(self.pid, os.WNOHANG)
            if done:
                break
        else:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, sig)
                time.sleep(0.5)
                with contextlib.suppress(ChildProcessError):
                    if os.waitpid(self.pid, os.WNOHANG)[0]:
                        break
        with contextlib.suppress(OSError):
            os.close(self.fd)


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = child_env(TERM="xterm-256color", COLUMNS=str(COLS), LINES=str(ROWS), **extra)
    env["LLMROUTER_DATA_DIR"] = str(data_dir)
    # An installed package has its bytecode compiled (pip does it); the repository may not.
    # Bytecode goes to the scratch directory, never into the source tree.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(data_dir.parent / "pycache")
    return env


def first_frame(scratch: Path, runs: int) -> list[float]:
    """Seconds from fork to the first full paint, per launch; one untimed launch first
    compiles the bytecode (as installing the package would)."""
    times: list[float] = []
    for i in range(-1, runs):
        cwd = scratch / f"ff{i}"
        cwd.mkdir(parents=True, exist_ok=True)
        term = Terminal(
            [PYTHON, "-m", "llmrouter_tui", "--demo"], _env(scratch / f"ff-data{i}"), cwd
        )
        try:
            t = term.wait_for(INTRO, 20)
        finally:
            term.close()
        if t is None:
            raise RuntimeError(f"no first frame in 20 s; output: {term.text[-400:]!r}")
        if i >= 0:
            times.append(t)
    return times


def streaming(scratch: Path, rate: float, tokens: int, mark_every: int) -> dict[str, Any]:
    cwd = scratch / "stream"
    cwd.mkdir(parents=True, exist_ok=True)
    streamer = popen(
        [
            PYTHON,
            "-m",
            "bench.tokens",
            "--rate",
            str(rate),
            "-n",
            str(tokens),
            "--mark-every",
            str(mark_every),
            "--max-seconds",
            "120",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=child_env(),
    )
    term: Terminal | None = None
    try:
        port = read_line(streamer, r"PORT (\d+)", 20)[1]
        url = f"http://127.0.0.1:{port}"
        lines: list[str] = []
        reader = threading.Thread(target=_collect, args=(streamer, lines), daemon=True)
        reader.start()
        env = _env(scratch / "stream-data", GROQ_API_KEY=BENCH_KEY, GROQ_BASE_URL=url)
        term = Terminal([PYTHON, "-m", "llmrouter_tui"], env, cwd)
        if term.wait_for(INTRO, 20) is None:
            raise RuntimeError(f"the TUI did not start: {term.text[-400:]!r}")
        time.sleep(0.5)
        for ch in b"go":
            term.send(bytes([ch]))
            term.pump(0.05)
        term.send(b"\r")
        sent_at = time.time()
        seen: dict[int, float] = {}
        echoes: list[float] = []
        typed = 0
        pending_key: float | None = None
        first_token: float | None = None
        n_marks = tokens // mark_every
        deadline = time.perf_counter() + tokens / rate + 20
        next_key = time.perf_counter() + 0.4
        window = b""
        while time.perf_counter() < deadline and len(seen) < n_marks and not term.exited:
            clean = term.pump(0.002)
            now = time.time()
            if clean:
                window = (window + clean)[-4096:]
                if first_token is None and b"w1 " in window:
                    first_token = now
                for k in range(1, n_marks + 1):
                    if k not in seen and f"qqmk{k}qq".encode() in window:
                        seen[k] = now
                if pending_key is not None and (KEY * typed).encode() in window:
                    echoes.append((time.perf_counter() - pending_key) * 1000)
                    pending_key = None
            if pending_key is None and time.perf_counter() >= next_key and typed < 6:
                typed += 1
                window = b""
                pending_key = time.perf_counter()
                term.send(KEY.encode())
                next_key = time.perf_counter() + 0.3
        end_deadline = time.perf_counter() + 5
        while time.perf_counter() < end_deadline and not any(x.startswith("END") for x in lines):
            time.sleep(0.05)
        marks = {int(x.split()[1]): float(x.split()[2]) for x in lines if x.startswith("MARK ")}
    finally:
        if term is not None:
            term.close()
        if streamer.stdin is not None:
            with contextlib.suppress(OSError):
                streamer.stdin.close()
        stop(streamer)
    lags = [seen[k] - marks[k] for k in sorted(seen) if k in marks]
    return {
        "stream_tokens": tokens,
        "stream_rate": rate,
        "markers_seen": len(seen),
        "markers_sent": len(marks),
        "marker_lags_s": [round(x, 4) for x in lags],
        "stream_lag_s": lags[-1] if lags and len(seen) == n_marks else None,
        "first_token_s": (first_token - sent_at) if first_token else None,
        "key_echo_ms": echoes or None,
        "keys_typed": typed,
    }


def _collect(proc: subprocess.Popen[str], lines: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:  # ends when the streamer exits
        lines.append(line.strip())


def run_all(scratch: Path, quick: bool) -> dict[str, Any]:
    scratch.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {}
    runs = first_frame(scratch, 3 if quick else 5)
    out["first_frame_runs"] = runs
    out["first_frame_s"] = statistics.median(runs)
    out.update(streaming(scratch, 2000.0, 4000, 400))
    if out.get("stream_lag_s") is None:
        out["stream_note"] = (
            f"Only {out['markers_seen']} of {4000 // 400} marker words reached the screen: "
            "the renderer fell behind (or the reply was not shown)."
        )
    if not out.get("key_echo_ms"):
        out["key_note"] = "No keypress typed during the stream was echoed on screen."
    return out
