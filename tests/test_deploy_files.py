"""Dockerfile, .dockerignore and compose.yaml keep their promises (README, "Deploy").

No container engine or registry is needed: the files are parsed and checked for what they
promise (multi-stage build, unprivileged user, health check, data volume, the port, a token
required and never baked in, nothing secret in the build context), and the health-check
command itself is run against a real `--serve` and against a port nothing listens on.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from server_helpers import REPO_ROOT, ServerProcess, clean_env

DOCKERFILE = REPO_ROOT / "Dockerfile"
PORT = 8000


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) for each instruction, continuation lines joined."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    """The build stages, each its instructions from FROM on."""
    found: list[list[tuple[str, str]]] = []
    for instruction in instructions():
        if instruction[0] == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def last(stage: list[tuple[str, str]], word: str) -> str:
    values = [rest for name, rest in stage if name == word]
    assert values, f"the final stage has no {word}"
    return values[-1]


def healthcheck_command() -> list[str]:
    rest = last(stages()[-1], "HEALTHCHECK")
    command = json.loads(rest[rest.index("CMD") + 3 :].strip())
    assert isinstance(command, list)
    return command


def test_the_image_is_built_in_stages_and_runs_unprivileged() -> None:
    built = stages()
    assert len(built) >= 2, "the wheel is built in a stage of its own"
    build_name = built[0][0][1].split()[-1]
    final = built[-1]
    assert any(name == "COPY" and f"--from={build_name}" in rest for name, rest in final)
    assert not any(name == "COPY" and "/src" in rest for name, rest in final), "no sources"
    user = last(final, "USER").split(":")[0]
    assert user.isdigit() and int(user) > 0, "a numeric uid other than root"
    assert json.loads(last(final, "VOLUME")) == ["/data"]
    assert last(final, "EXPOSE") == str(PORT)


def test_the_entrypoint_serves_on_all_addresses_with_a_token_required() -> None:
    final = stages()[-1]
    entrypoint = json.loads(last(final, "ENTRYPOINT"))
    assert entrypoint[:2] == ["llmrouter-tui", "--serve"]
    options = dict(zip(entrypoint[2::2], entrypoint[3::2], strict=False))
    assert options["--host"] == "0.0.0.0" and options["--port"] == str(PORT)
    assert options["--data-dir"] == "/data"
    assert "--insecure-no-auth" not in entrypoint and "--token" not in entrypoint
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert not re.search(r"^\s*(ENV|ARG)\b.*(TOKEN|API_KEY)", text, re.MULTILINE | re.IGNORECASE)


def test_the_healthcheck_uses_python_not_curl() -> None:
    command = healthcheck_command()
    assert command[:2] == ["python", "-c"]
    assert f"http://127.0.0.1:{PORT}/health" in command[2]


def run_healthcheck(port: int) -> int:
    code = healthcheck_command()[2].replace(f":{PORT}/", f":{port}/")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30)
    return done.returncode


def test_the_healthcheck_passes_on_a_serving_server_and_fails_without_one(
    tmp_path: Path,
) -> None:
    server = ServerProcess(
        ["--serve", "--demo", "--port", "0", "--data-dir", str(tmp_path / "data")],
        clean_env(LLMROUTER_SERVER_TOKEN="a-token-the-health-check-does-not-need"),
        tmp_path,
    )
    try:
        port = int(server.wait_for_url().rsplit(":", 1)[1])
        assert run_healthcheck(port) == 0, server.stderr
    finally:
        server.stop()
    with socket.socket() as probe:  # a port with nothing listening on it
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    assert run_healthcheck(free) != 0


def dockerignore_excludes(path: str) -> bool:
    """Whether the build context leaves `path` out (last matching pattern wins)."""
    excluded = False
    for raw in (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.removeprefix("!").rstrip("/").removeprefix("**/")
        parts = Path(path).parts
        candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))] + list(parts)
        if any(fnmatch.fnmatchcase(c, pattern) for c in candidates):
            excluded = not negate
    return excluded


@pytest.mark.parametrize(
    "secret", [".env", "data/llmrouter.db", ".venv/bin/python", "llmrouter.toml", ".git/config"]
)
def test_the_build_context_leaves_secrets_and_local_state_out(secret: str) -> None:
    assert dockerignore_excludes(secret)


def test_the_build_context_holds_what_the_dockerfile_copies() -> None:
    copied = []
    for name, rest in stages()[0]:
        if name == "COPY" and "--from" not in rest:
            copied += shlex.split(rest)[:-1]
    assert copied
    for source in copied:
        assert not dockerignore_excludes(source), source
        assert (REPO_ROOT / source).exists(), source
    assert not dockerignore_excludes("llmrouter_tui/data/catalog.toml")
    assert dockerignore_excludes("llmrouter_tui/__pycache__/cli.cpython-311.pyc")


def compose_service() -> dict[str, Any]:
    document = yaml.safe_load((REPO_ROOT / "compose.yaml").read_text(encoding="utf-8"))
    [service] = document["services"].values()
    assert "llmrouter-data" in document["volumes"]
    return service


def test_compose_keeps_data_keys_token_and_host_names_straight() -> None:
    service = compose_service()
    assert "llmrouter-data:/data" in [v.split()[0] for v in service["volumes"]]
    assert service["env_file"], "keys come from an env file, not the image"
    environment = service["environment"]
    # Compose refuses to start (naming the variable) when the token is unset.
    assert re.fullmatch(r"\$\{LLMROUTER_SERVER_TOKEN:\?.+\}", environment["LLMROUTER_SERVER_TOKEN"])
    assert "LLMROUTER_ALLOW_HOSTS" in environment
    assert any(str(p).endswith(f":{PORT}") for p in service["ports"])
    assert service["healthcheck"]["test"] == ["CMD", *healthcheck_command()]
    grace = int(str(service["stop_grace_period"]).rstrip("s"))
    assert grace > 5, "longer than the server's 5 s for in-flight requests"
