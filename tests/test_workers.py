"""`llmrouter-tui --serve --workers N` as real processes over real sockets: connections are
spread across the workers, every request is recorded exactly once in the shared data
directory, SIGTERM stops everything gracefully (exit 0, no process left), a killed worker is
replaced, and a killed supervisor takes its workers with it."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from server_helpers import (
    FAST_ROUTING_TOML,
    ServerProcess,
    access_lines,
    clean_env,
    refuses_connections,
    write_config,
)
from waiting import wait_until

from llmrouter_tui.server import workers
from llmrouter_tui.testing.fake_upstream import FakeUpstream, Fault

pytestmark = pytest.mark.skipif(
    workers.spreads_connections() is not None, reason="--workers needs Linux's SO_REUSEPORT"
)

WORKER_HEADER = "x-llmrouter-worker"
_PIDS = re.compile(r"with (\d+) workers \(pids ([\d, ]+)\)")


def start(tmp_path: Path, *extra: str, env: dict[str, str] | None = None) -> ServerProcess:
    data = tmp_path / "data"
    args = ["--serve", "--port", "0", "--data-dir", str(data), *extra]
    server = ServerProcess(args, env or clean_env(), tmp_path)
    server.wait_for_url()
    return server


def banner_pids(server: ServerProcess) -> list[int]:
    match = _PIDS.search(server.stderr)
    assert match, server.stderr
    pids = [int(p) for p in match.group(2).split(", ")]
    assert len(pids) == int(match.group(1))
    return pids


def gone(pid: int) -> bool:
    """The process no longer runs (it may linger as a zombie of a reaper that is not ours)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in {"Z", "X"}


def fake_env(upstream: FakeUpstream, tmp_path: Path) -> dict[str, str]:
    """Providers pointed at the tests' fake upstream (no chunk delay: quicker than --demo)."""
    config = write_config(tmp_path / "llmrouter.toml", **FAST_ROUTING_TOML)
    return clean_env(
        GROQ_BASE_URL=upstream.base_url,
        GROQ_API_KEY="gsk_QX7RZ2KV9M4T8B",
        LLMROUTER_CONFIG=str(config),
    )


def on_a_new_connection(url: str, path: str, prompt: str | None = None) -> httpx.Response:
    # A client per request: a new TCP connection each time, as the kernel spreads connections.
    with httpx.Client(timeout=30) as client:
        if prompt is None:
            return client.get(f"{url}{path}")
        return client.post(f"{url}{path}", json={"prompt": prompt})


# ---- spreading and recording ----------------------------------------------------------------


@pytest.mark.slow
def test_two_workers_share_the_connections_and_record_every_request_once(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    server = start(tmp_path, "--workers", "2", env=fake_env(upstream, tmp_path))
    try:
        pids = banner_pids(server)
        assert len(set(pids)) == 2 and os.getpid() not in pids
        prompts = [f"spread {i}" for i in range(60)]
        chat = "/chat?model=openai/gpt-oss-20b"
        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(lambda p: on_a_new_connection(server.url, chat, p), prompts))
        assert [r.status_code for r in responses] == [200] * len(prompts)
        served = Counter(int(r.headers[WORKER_HEADER]) for r in responses)
        # 60 connections hashed to 2 sockets: each worker gets some (all on one: p = 2^-59).
        assert set(served) == set(pids), served
        prompt_ids = [r.json()["prompt_id"] for r in responses]
        assert len(set(prompt_ids)) == len(prompts)
        code = server.stop()
    finally:
        server.kill()
    assert code == 0, server.stderr
    assert server.stderr.rstrip().endswith("stopped")
    assert "Traceback" not in server.stderr
    assert all(gone(pid) for pid in pids)
    # Both workers wrote access lines to the one stderr; none was torn or lost.
    chats = [m for m in access_lines(server.stderr) if m["path"] == "/chat"]
    assert [m["status"] for m in chats] == ["200"] * len(prompts)
    data = tmp_path / "data"
    with sqlite3.connect(data / "llmrouter.db") as db:
        rows = db.execute("SELECT prompt_id, prompt, status FROM requests").fetchall()
    assert sorted(rows) == sorted(
        (pid, prompt, "ok") for pid, prompt in zip(prompt_ids, prompts, strict=True)
    )
    lines = (data / "logs" / "prompts.jsonl").read_text(encoding="utf-8").splitlines()
    assert sorted(json.loads(line)["prompt_id"] for line in lines) == sorted(prompt_ids)
    with (data / "logs" / "prompts.csv").open(encoding="utf-8", newline="") as file:
        header, *records = list(csv.reader(file))
    assert header[:2] == ["timestamp", "prompt_id"]  # written once, by whichever came first
    assert sorted(row[1] for row in records) == sorted(prompt_ids)


def test_one_worker_is_the_plain_server(tmp_path: Path) -> None:
    server = start(tmp_path, "--demo", "--workers", "1")
    try:
        response = httpx.get(f"{server.url}/health", timeout=10)
        assert response.status_code == 200
        assert WORKER_HEADER not in response.headers
        assert "workers" not in server.stderr
        code = server.stop()
    finally:
        server.kill()
    assert code == 0, server.stderr


# ---- stopping ---------------------------------------------------------------------------------


# Runs the command line in a process group of its own, so the test can signal the group.
_OWN_GROUP = (
    "import os, sys; os.setpgid(0, 0); from llmrouter_tui.cli import main; "
    "sys.exit(main(sys.argv[1:]))"
)


@pytest.mark.parametrize(
    "how",
    [
        "SIGTERM to the supervisor",  # docker stop, kill PID
        "SIGINT to the process group",  # Ctrl-C: each worker gets it too, and must stop once
        "SIGTERM to every process",  # systemd's default KillMode=control-group
    ],
)
@pytest.mark.slow
def test_stopping_lets_every_worker_finish_its_requests_and_exits_0(
    how: str, upstream: FakeUpstream, tmp_path: Path
) -> None:
    upstream.add_fault(Fault(kind="slow_first_token", delay_s=1.0, times=16))
    args = ["--serve", "--port", "0", "--data-dir", str(tmp_path / "data"), "--workers", "2"]
    command = [sys.executable, "-c", _OWN_GROUP, *args]
    server = ServerProcess(command, fake_env(upstream, tmp_path), tmp_path, module=False)
    results: list[httpx.Response] = []

    def call(i: int) -> None:
        with httpx.Client(timeout=20) as client:
            chat = f"{server.url}/chat?model=openai/gpt-oss-20b"
            results.append(client.post(chat, json={"prompt": f"s{i}"}))

    callers = [threading.Thread(target=call, args=(i,)) for i in range(16)]
    try:
        server.wait_for_url()
        pids = banner_pids(server)
        for caller in callers:
            caller.start()
        wait_until(lambda: len(upstream.requests) >= 16, "all 16 requests to reach the upstream")
        if how == "SIGTERM to the supervisor":
            server.proc.send_signal(signal.SIGTERM)
        elif how == "SIGINT to the process group":
            os.killpg(server.proc.pid, signal.SIGINT)
        else:
            for pid in [server.proc.pid, *pids]:
                os.kill(pid, signal.SIGTERM)
        for caller in callers:
            caller.join(20)
        code = server.proc.wait(20)
    finally:
        server.kill()
    assert code == 0, server.stderr
    # The grace period was not cut short (a second signal would): every request finished.
    # 16 connections: each worker had some in flight (all on one: p = 2^-15).
    assert [r.status_code for r in results] == [200] * 16
    assert {int(r.headers[WORKER_HEADER]) for r in results} == set(pids)
    assert all(gone(pid) for pid in pids)
    assert server.stderr.rstrip().endswith("stopped")


@pytest.mark.slow
def test_a_second_signal_ends_the_grace_period(upstream: FakeUpstream, tmp_path: Path) -> None:
    # The replies take 4 s, within the 5 s grace period: only a forced stop leaves them unsent.
    upstream.add_fault(Fault(kind="slow_first_token", delay_s=4.0, times=16))
    server = start(tmp_path, "--workers", "2", env=fake_env(upstream, tmp_path))
    statuses: list[int | str] = []

    def call(i: int) -> None:
        try:
            statuses.append(on_a_new_connection(server.url, "/chat?model=openai/gpt-oss-20b",
                                                f"forced {i}").status_code)  # fmt: skip
        except httpx.HTTPError as exc:
            statuses.append(type(exc).__name__)

    callers = [threading.Thread(target=call, args=(i,)) for i in range(4)]
    try:
        pids = banner_pids(server)
        for caller in callers:
            caller.start()
        wait_until(lambda: len(upstream.requests) >= 4, "the requests to reach the upstream")
        server.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: refuses_connections(server.url), "the workers to stop accepting")
        server.proc.send_signal(signal.SIGTERM)
        code = server.proc.wait(20)
        for caller in callers:
            caller.join(20)
    finally:
        server.kill()
    assert code == 0, server.stderr
    assert 200 not in statuses and len(statuses) == 4, statuses
    assert all(gone(pid) for pid in pids)


@pytest.mark.slow
def test_a_killed_worker_is_reported_and_replaced(tmp_path: Path) -> None:
    server = start(tmp_path, "--demo", "--workers", "2")
    try:
        victim, survivor = banner_pids(server)
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: "ready (replaces" in server.stderr, "the replacement worker")
        assert f"worker {victim} stopped while serving (killed by SIGKILL)" in server.stderr
        replacement = int(
            re.findall(rf"worker (\d+) ready \(replaces {victim}\)", server.stderr)[0]
        )
        with ThreadPoolExecutor(8) as pool:
            responses = list(
                pool.map(lambda _: on_a_new_connection(server.url, "/health"), range(40))
            )
        assert [r.status_code for r in responses] == [200] * 40
        assert {int(r.headers[WORKER_HEADER]) for r in responses} == {survivor, replacement}
        code = server.stop()
    finally:
        server.kill()
    assert code == 0, server.stderr
    assert gone(survivor) and gone(replacement)


def test_workers_stop_on_their_own_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    server = start(tmp_path, "--demo", "--workers", "2")
    try:
        pids = banner_pids(server)
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(10)
        wait_until(lambda: all(gone(pid) for pid in pids), "the orphaned workers to stop")
    finally:
        for pid in banner_pids(server):
            if not gone(pid):  # pragma: no cover - only when the test has failed
                os.kill(pid, signal.SIGKILL)
        server.kill()


# ---- refusals -------------------------------------------------------------------------------


def run_serve(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmrouter_tui", "--serve", "--data-dir", str(tmp_path / "d"),
         *extra],
        env=clean_env(), capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip


def test_bad_input_stops_before_any_worker_starts(tmp_path: Path) -> None:
    zero = run_serve(tmp_path, "--port", "0", "--workers", "0")
    assert zero.returncode == 2 and "--workers must be 1 or more, got 0" in zero.stderr
    config = run_serve(tmp_path, "--port", "0", "--workers", "2", "--config", "nope.toml")
    assert config.returncode == 2 and "nope.toml" in config.stderr
    assert config.stderr.count("configuration error") == 1  # said once, not once per worker
    host = run_serve(tmp_path, "--port", "0", "--workers", "2", "--allow-host", "bad host")
    assert host.returncode == 2 and "configuration error" in host.stderr
    for done in (zero, config, host):
        assert "Traceback" not in done.stderr and "serving on" not in done.stderr


def test_workers_without_serve_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    from llmrouter_tui.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["--workers", "2"])
    assert exited.value.code == 2
    assert "--workers runs several server processes: use it with --serve" in capsys.readouterr().err


def test_a_port_another_program_listens_on_is_refused(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # even one that shares
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_serve(tmp_path, "--port", str(port), "--workers", "2")
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "choose another --port" in done.stderr
    assert "Traceback" not in done.stderr


def test_without_so_reuseport_load_balancing_workers_are_refused(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from llmrouter_tui.cli import main_parser

    monkeypatch.setattr(sys, "platform", "darwin")
    args = main_parser().parse_args(["--serve", "--workers", "2", "--port", "0"])
    assert workers.run_workers(args, host="127.0.0.1", token=None, count=2) == 2
    message = caplog.text
    assert "--workers 2 is not available" in message and "darwin" in message
    assert "uvicorn or gunicorn" in message


def test_reserve_port_picks_one_port_every_worker_can_listen_on() -> None:
    reserved, port = workers.reserve_port("127.0.0.1", 0)
    listeners: list[socket.socket] = []
    try:
        assert port > 0 and [s.getsockname()[1] for s in reserved] == [port]
        for _ in range(2):  # what each worker's asyncio.start_server(reuse_port=True) does
            sock = socket.socket()
            listeners.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen()
        with pytest.raises(OSError):  # and now the port is taken for anyone else
            workers.reserve_port("127.0.0.1", port)
    finally:
        for sock in [*reserved, *listeners]:
            sock.close()


@pytest.mark.parametrize(
    ("status", "words"),
    [(0, "exit code 0"), (1 << 8, "exit code 1"), (signal.SIGKILL, "killed by SIGKILL")],
)
def test_how_a_worker_ended_in_words(status: int, words: str) -> None:
    assert workers.how_it_ended(status) == words
