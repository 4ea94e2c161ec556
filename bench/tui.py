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
- Long conversations (realistic replies: `llmrouter_tui.testing.replies`, 1,000-3,000 tokens
  of Markdown with code blocks, lines wider than the terminal, wide tables of numbers):
  * start: the data directory holds a 50-turn conversation of such replies, the most recent
    one, which the app reopens; first frame as above, then "visible" when the end marker of
    its last reply is on screen (both from process start);
  * open: the app starts on a short conversation; the long one is searched for in the
    sidebar (ctrl+f, its title, Enter, ↓), then the clock runs from the last Enter until
    its last reply's end marker is on screen;
  * key echo: in a new conversation (ctrl+n) a 3,000-token Markdown reply streams from
    `bench.tokens --markdown` at 1,000 word chunks/s; "§" is typed one key after another
    (the next 100 ms after the previous one was echoed, a fast typist; ctrl+u clears the
    line every 12) from 0.2 s after the first chunk until 1 s after the last, so the
    reply's completion is covered; every key's echo time counts, the ones typed within
    0.1 s before to 0.6 s after the last chunk are also shown apart.

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

    def drain(self, seconds: float) -> None:
        """Keep reading the output for `seconds` (the app works meanwhile)."""
        deadline = time.perf_counter() + seconds
        while not self.exited and (left := deadline - time.perf_counter()) > 0:
            self.pump(min(left, 0.05))

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
                _note_marks(window, n_marks, seen, now)
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


def _note_marks(window: bytes, n_marks: int, seen: dict[int, float], now: float) -> None:
    """Record when each stream marker first shows on screen."""
    for k in range(1, n_marks + 1):
        if k not in seen and f"qqmk{k}qq".encode() in window:
            seen[k] = now


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
    try:
        out.update(run_long(scratch / "long", quick))
    except Exception as exc:  # report what was measured; say what failed
        out["long_note"] = f"The long-conversation scenarios failed: {type(exc).__name__}: {exc}"
    return out


# ---- long conversations (issue 13) -------------------------------------------------------------
#
# Realistic replies: `llmrouter_tui.testing.replies.long_reply`, 1,000-3,000 tokens of Markdown
# with code blocks (some lines far wider than the terminal), wide tables of numbers, lists and
# quotes, the same every run. Each reply ends with a marker paragraph `zqend<N>zq`, so "the
# conversation is visible" means the last reply's end is on screen.

LONG_TURNS = 50
LONG_SEED = 13
LONG_TITLE = "Benchmark long conversation"
SHORT_TITLE = "Benchmark short conversation"
STREAM_TOKENS = 3000
STREAM_RATE = 1000.0  # chunks (about tokens) per second: a fast provider
STREAM_SEED = 7
KEY_EVERY_S = 0.1  # a key this long after the previous one was echoed: a fast typist
KEYS_PER_LINE = 12  # then ctrl+u clears the prompt (so the typed run never wraps)
AFTER_END_S = 1.0  # keep typing this long after the last chunk was sent


def end_marker(turn: int) -> str:
    return f"zqend{turn}zq"


def seed_conversations(data_dir: Path, *, long_last: bool) -> str:
    """A 50-turn conversation of long replies and a 2-turn one in a fresh data directory;
    `long_last` makes the long one the most recent (the app reopens it at start). Returns the
    marker that ends the long conversation's last reply."""
    from llmrouter_tui.core.store import Store
    from llmrouter_tui.core.types import Attempt, Result, Usage
    from llmrouter_tui.testing.replies import long_conversation

    def add(store: Store, title: str, turns: list[tuple[str, str]], tag: str) -> None:
        conversation = store.conversations.create(title, "openai/gpt-oss-20b")
        for index, (prompt, reply) in enumerate(turns, 1):
            reply = f"{reply}\n{end_marker(index) if tag == 'long' else tag + str(index)}\n"
            result = Result(
                prompt_id=f"bench-{tag}-{index:03d}",
                requested_model="openai/gpt-oss-20b",
                model_used="openai/gpt-oss-20b",
                provider="groq",
                prompt=prompt,
                response_text=reply,
                status="ok",
                latency_ms=1800.0 + index,
                ttft_ms=210.0,
                usage=Usage(400, len(reply) // 4, 400 + len(reply) // 4, False),
                from_cache=False,
                fallback_used=False,
                attempts=[Attempt("openai/gpt-oss-20b", "groq", "ok", ms=1800.0)],
                created_at=f"2026-01-01T00:{index // 60:02d}:{index % 60:02d}.000Z",
                conversation_id=conversation,
                source="tui",
            )
            store.record(result)
            store.conversations.add_message(conversation, "user", prompt)
            store.conversations.add_message(conversation, "assistant", reply, result.prompt_id)

    long_turns = long_conversation(LONG_TURNS, LONG_SEED)
    short_turns = [("hello", "Hi! What can I do for you?"), ("thanks", "You are welcome.")]
    with Store(data_dir) as store:
        if long_last:
            add(store, SHORT_TITLE, short_turns, "zqshort")
            add(store, LONG_TITLE, long_turns, "long")
        else:
            add(store, LONG_TITLE, long_turns, "long")
            add(store, SHORT_TITLE, short_turns, "zqshort")
    return end_marker(LONG_TURNS)


def _streamer(rate: float, tokens: int, seed: int) -> subprocess.Popen[str]:
    return popen(
        [
            PYTHON,
            "-m",
            "bench.tokens",
            "--rate",
            str(rate),
            "-n",
            str(tokens),
            "--markdown",
            str(seed),
            "--max-seconds",
            "300",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=child_env(),
    )


def long_session(scratch: Path, run: int) -> dict[str, Any]:
    """Start the app on a 50-turn conversation of long replies (first frame, conversation
    visible), then stream a 3,000-token Markdown reply in a new conversation while typing."""
    data = scratch / f"long-data{run}"
    marker = seed_conversations(data, long_last=True).encode()
    cwd = scratch / f"long{run}"
    cwd.mkdir(parents=True, exist_ok=True)
    streamer = _streamer(STREAM_RATE, STREAM_TOKENS, STREAM_SEED)
    term: Terminal | None = None
    lines: list[str] = []
    out: dict[str, Any] = {}
    try:
        port = read_line(streamer, r"PORT (\d+)", 20)[1]
        threading.Thread(target=_collect, args=(streamer, lines), daemon=True).start()
        env = _env(data, GROQ_API_KEY=BENCH_KEY, GROQ_BASE_URL=f"http://127.0.0.1:{port}")
        term = Terminal([PYTHON, "-m", "llmrouter_tui"], env, cwd)
        out["first_frame_s"] = term.wait_for(INTRO, 20)
        out["visible_s"] = term.wait_for(marker, 20)
        if out["first_frame_s"] is None or out["visible_s"] is None:
            raise RuntimeError(f"the long conversation did not show: {term.text[-400:]!r}")
        term.drain(1.0)  # let the start settle (the sidebar, the older turns' data)
        term.send(b"\x0e")  # ctrl+n: a new conversation
        term.drain(0.5)
        for ch in b"go":
            term.send(bytes([ch]))
            term.drain(0.05)
        term.send(b"\r")
        out.update(_type_during_stream(term, lines))
    finally:
        if term is not None:
            term.close()
        if streamer.stdin is not None:
            with contextlib.suppress(OSError):
                streamer.stdin.close()
        stop(streamer)
    return out


def _type_during_stream(term: Terminal, lines: list[str]) -> dict[str, Any]:
    """Type keys one after another while the reply streams and just after it ends; the
    echo of each is the time until the prompt shows it."""
    deadline = time.perf_counter() + 60
    while time.perf_counter() < deadline and not any(x.startswith("START") for x in lines):
        term.pump(0.01)
    started = next((float(x.split()[1]) for x in lines if x.startswith("START")), None)
    if started is None:
        raise RuntimeError("the reply never started streaming")
    term.drain(0.2)
    echoes: list[tuple[float, float]] = []  # (epoch seconds typed, echo ms)
    count = 0
    end_at: float | None = None
    while time.perf_counter() < deadline and not term.exited:
        if end_at is None:
            end_at = next((float(x.split()[1]) for x in lines if x.startswith("END")), None)
        if end_at is not None and time.time() > end_at + AFTER_END_S:
            break
        if count == KEYS_PER_LINE:
            term.send(b"\x15")  # ctrl+u: clear the line (not timed)
            term.drain(0.05)
            count = 0
        count += 1
        typed_at = time.time()
        echoes.append((typed_at, _key_echo_ms(term, count)))
        pause_until = time.perf_counter() + KEY_EVERY_S
        while time.perf_counter() < pause_until:
            term.pump(0.005)
    if end_at is None:
        raise RuntimeError("the reply never finished streaming")
    ms = [e for _, e in echoes]
    near_end = [e for t, e in echoes if end_at - 0.1 <= t <= end_at + 0.6]
    return {
        "stream_started": started,
        "stream_s": end_at - started,
        "key_echo_ms": ms,
        "key_echo_near_end_ms": near_end,
    }


def _key_echo_ms(term: Terminal, count: int) -> float:
    """Type one key; the time until the prompt shows it (`count` keys), NaN after 5 s."""
    window = b""
    sent = time.perf_counter()
    term.send(KEY.encode())
    needle = (KEY * count).encode()
    while time.perf_counter() - sent < 5:
        clean = term.pump(0.002)
        if clean:
            window = (window + clean)[-8192:]
            if needle in window:
                return (time.perf_counter() - sent) * 1000
    return float("nan")


def open_session(scratch: Path, run: int) -> dict[str, Any]:
    """Start on a short conversation, then open the 50-turn one from the sidebar (search
    its title, Enter, ↓, Enter); time from the last Enter to its last reply on screen."""
    data = scratch / f"open-data{run}"
    marker = seed_conversations(data, long_last=False).encode()
    cwd = scratch / f"open{run}"
    cwd.mkdir(parents=True, exist_ok=True)
    term = Terminal([PYTHON, "-m", "llmrouter_tui", "--demo"], _env(data), cwd)
    try:
        if term.wait_for(b"zqshort2", 20) is None:
            raise RuntimeError(f"the short conversation did not show: {term.text[-400:]!r}")
        term.drain(1.0)
        term.send(b"\x06")  # ctrl+f: search conversations
        term.drain(0.5)
        term.send(b"Benchmark long")
        term.drain(1.0)
        term.send(b"\r")  # to the list
        term.drain(0.5)
        term.send(b"\x1b[B")  # down: highlight the match
        term.drain(0.5)
        term.text = b""
        t0 = time.perf_counter()
        term.send(b"\r")
        deadline = t0 + 20
        while time.perf_counter() < deadline and not term.exited:
            if marker in term.text[-(1 << 16) :]:
                return {"open_s": time.perf_counter() - t0}
            term.pump(0.002)
        raise RuntimeError(f"the long conversation did not open: {term.text[-400:]!r}")
    finally:
        term.close()


def run_long(scratch: Path, quick: bool) -> dict[str, Any]:
    """The long-conversation scenarios, several launches each (figures per launch)."""
    scratch.mkdir(parents=True, exist_ok=True)
    runs = 2 if quick else 4
    # One untimed launch compiles the bytecode, as installing the package would.
    first_frame(scratch, 0)
    sessions = [long_session(scratch, i) for i in range(runs)]
    opens = [open_session(scratch, i)["open_s"] for i in range(runs)]
    echo: list[float] = []
    near_end: list[float] = []
    for s in sessions:
        echo += s["key_echo_ms"]
        near_end += s["key_echo_near_end_ms"]
    return {
        "long_turns": LONG_TURNS,
        "long_first_frame_runs": [s["first_frame_s"] for s in sessions],
        "long_visible_runs": [s["visible_s"] for s in sessions],
        "long_open_runs": opens,
        "md_stream_tokens": STREAM_TOKENS,
        "md_stream_rate": STREAM_RATE,
        "md_stream_s": [s["stream_s"] for s in sessions],
        "md_key_echo_ms": echo,
        "md_key_echo_near_end_ms": near_end,
        "md_key_echo_p95_runs": [_p95(s["key_echo_ms"]) for s in sessions],
        "md_key_echo_max_runs": [_max(s["key_echo_ms"]) for s in sessions],
    }


def _p95(values: list[float]) -> float:
    ordered = sorted(float("inf") if v != v else v for v in values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _max(values: list[float]) -> float:
    return max(float("inf") if v != v else v for v in values)
