"""Helpers shared by the benchmarks: child processes, timing statistics, machine facts."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import select
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
HOST = "127.0.0.1"  # every benchmark talks to this machine only
BENCH_KEY = "bench-key-not-secret"


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the suite dies, so no process outlives it (Linux)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def popen(args: Sequence[str], **kwargs: object) -> subprocess.Popen[str]:
    """Start a child that is stopped when the suite exits, however it exits."""
    return subprocess.Popen(args, preexec_fn=_die_with_parent, **kwargs)  # type: ignore[call-overload]


def child_env(**extra: str) -> dict[str, str]:
    """A clean environment for child processes: no keys or settings from the caller."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LLMROUTER_", "GROQ_", "GEMINI_", "GOOGLE_", "OPENAI_"))
    }
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def read_line(proc: subprocess.Popen[str], pattern: str, timeout_s: float) -> re.Match[str]:
    """Wait (bounded) for a line of the child's stdout matching `pattern`."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    seen: list[str] = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match
    stop(proc)
    raise RuntimeError(f"child did not print {pattern!r} in {timeout_s}s; got {seen[-5:]!r}")


def stop(proc: subprocess.Popen[str] | None, timeout_s: float = 10.0) -> None:
    """SIGTERM the child we started, then SIGKILL it if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(5)


@dataclass
class Server:
    """A running child process that serves HTTP on 127.0.0.1."""

    url: str
    proc: subprocess.Popen[str]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu_s(self) -> float:
        """User + system CPU seconds the process has used so far."""
        return cpu_seconds(self.pid)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def upstream(
    *, fast: bool = True, chunk_delay: float = 0.0, words: int = 0, max_seconds: float = 900
) -> Iterator[Server]:
    """The fake upstream in its own process (its `url` is the base URL for the SDKs)."""
    args = [PYTHON, "-m", "bench.upstream", "--max-seconds", str(max_seconds)]
    if fast:
        args.append("--fast")
    if chunk_delay:
        args += ["--chunk-delay", str(chunk_delay)]
    if words:
        args += ["--words", str(words)]
    proc = popen(
        args,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=child_env(),
    )
    try:
        port = read_line(proc, r"PORT (\d+)", 30)[1]
        yield Server(f"http://{HOST}:{port}", proc)
    finally:
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        stop(proc)


def rss_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of a process in MiB, from /proc."""
    current = peak = 0.0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                current = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    return current, peak


@dataclass(frozen=True)
class Spread:
    """The median of several runs with their min and max."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(statistics.median(values), min(values), max(values))

    def fmt(self, digits: int = 2, unit: str = "") -> str:
        if self.low == self.high:
            return f"{self.median:.{digits}f}{unit}"
        return f"{self.median:.{digits}f}{unit} ({self.low:.{digits}f}–{self.high:.{digits}f})"


def machine() -> dict[str, str]:
    """Cores, memory, CPU model, Python and OS, for the report header."""
    mem = "?"
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cores": str(len(os.sched_getaffinity(0))),
        "memory": mem,
        "cpu": cpu,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
    }


@contextlib.contextmanager
def serve(upstream_url: str, data_dir: Path, **extra_env: str) -> Iterator[Server]:
    """`python -m llmrouter_tui --serve --port 0` on 127.0.0.1 with Groq and Gemini pointed at
    `upstream_url`, its own data dir and a scratch working directory (no stray config).
    The access log stays on (the default) and goes to a file next to the data dir."""
    data_dir.mkdir(parents=True, exist_ok=True)
    workdir = data_dir.parent / f"{data_dir.name}-cwd"
    workdir.mkdir(exist_ok=True)
    log_path = data_dir.parent / f"{data_dir.name}-server.log"
    env = child_env(
        GROQ_API_KEY=BENCH_KEY,
        GROQ_BASE_URL=upstream_url,
        GEMINI_API_KEY=BENCH_KEY,
        GEMINI_BASE_URL=upstream_url,
        **extra_env,
    )
    args = [PYTHON, "-m", "llmrouter_tui", "--serve", "--host", HOST, "--port", "0"]
    args += ["--data-dir", str(data_dir)]
    with open(log_path, "w") as log:
        proc = popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
            cwd=workdir,
            env=env,
        )
    try:
        deadline = time.monotonic() + 60
        url = None
        while time.monotonic() < deadline and proc.poll() is None:
            match = re.search(r"serving on (http://\S+)", log_path.read_text())
            if match:
                url = match[1]
                break
            time.sleep(0.05)
        if url is None:
            raise RuntimeError(f"--serve did not start: {log_path.read_text()[-2000:]}")
        yield Server(url, proc)
    finally:
        stop(proc)


def write_marked_section(path: Path, text: str, begin: str, end: str) -> None:
    """Replace the section of `path` between the `begin` and `end` markers (`text` includes
    them), or add it before "## Method" (else at the end): a bench tool's own section of
    BENCHMARKS.md, which a full `python -m bench` keeps."""
    report = path.read_text(encoding="utf-8")
    if begin in report and end in report:
        before, _, rest = report.partition(begin)
        _, _, after = rest.partition(end)
        report = before + text + after
    elif "\n## Method" in report:
        before, _, after = report.partition("\n## Method")
        report = before + "\n" + text + "\n\n## Method" + after
    else:
        report = report.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(report, encoding="utf-8")


def shown_command(prog: str, argv: list[str]) -> str:
    """The command line as a report shows it: `--note` values left out (listed below it)."""
    shown: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--note":
            skip = True
        elif not arg.startswith("--note="):
            shown.append(arg)
    return " ".join([prog, *shown])
