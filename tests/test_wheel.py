"""The wheel as users get it: built from this tree (offline), installed into a fresh virtual
environment that cannot see the source tree, and run from another directory: `--version`,
`ask --demo`, `--serve --demo` (/health, /chat, /templates), every shipped data file, the TUI's
stylesheets and exact token counts from the installed packages alone.

Nothing is downloaded: the wheel is built with the hatchling of this environment
(`--no-build-isolation --no-index`) and installed with `--no-deps --no-index`; its
dependencies are this environment's, which the fresh environment reads through a `.pth` line
(a directory named there is searched but its own `.pth` files are not run, so this
environment's editable install of the source tree stays out of the way).
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import httpx
import pytest
from server_helpers import REPO_ROOT, ServerProcess, clean_env

pytestmark = pytest.mark.slow

PACKAGE = REPO_ROOT / "llmrouter_tui"
#: Files the program reads at run time that are not Python modules, named as promised.
SHIPPED_DATA = (
    "llmrouter_tui/data/catalog.toml",
    "llmrouter_tui/data/prices.toml",
    "llmrouter_tui/data/prompt_templates.toml",  # from the repository root (force-include)
    "llmrouter_tui/tui/app.tcss",
)


def project_version() -> str:
    return str(
        tomllib.loads((REPO_ROOT / "pyproject.toml").read_text("utf-8"))["project"]["version"]
    )


def run(command: list[str], cwd: Path, env: dict[str, str], timeout: float = 120) -> str:
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, (
        f"{command} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    )
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        import hatchling  # noqa: F401  # the build backend, needed to build without downloading
    except ImportError:
        pytest.fail(
            "hatchling is not installed in this environment, so the wheel cannot be built "
            "offline: install the dev extras (pip install -e '.[dev]')"
        )
    out = tmp_path_factory.mktemp("dist")
    command = [sys.executable, "-m", "pip", "wheel", str(REPO_ROOT), "--no-deps",
               "--no-build-isolation", "--no-index", "--quiet", "-w", str(out)]  # fmt: skip
    run(command, out, {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    [built] = out.glob("llmrouter_tui-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel installed; returns its bin directory."""
    root = tmp_path_factory.mktemp("installed")
    venv = root / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], root, dict(os.environ))
    python = venv / "bin" / "python"
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                    root, dict(os.environ)).strip())  # fmt: skip
    ours = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (site / "_dependencies_from_the_test_environment.pth").write_text("\n".join(ours) + "\n")
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "--quiet", str(wheel)], root, {**os.environ,
         "PIP_DISABLE_PIP_VERSION_CHECK": "1"})  # fmt: skip
    return venv / "bin"


@pytest.fixture
def elsewhere(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A working directory outside the source tree and an environment without PYTHONPATH."""
    env = clean_env(LLMROUTER_DATA_DIR=str(tmp_path / "data"))
    env.pop("PYTHONPATH", None)
    return tmp_path, env


def test_the_wheel_holds_every_module_and_data_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    in_tree = {
        path.relative_to(REPO_ROOT).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    assert sorted(in_tree - names) == []
    assert sorted(set(SHIPPED_DATA) - names) == []
    stylesheets = {n for n in in_tree if n.endswith(".tcss")}
    assert len(stylesheets) > 10 and stylesheets <= names
    info = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    entry_points = zipfile.ZipFile(wheel).read(info).decode()
    assert "llmrouter-tui = llmrouter_tui.cli:main" in entry_points


def test_the_installed_package_runs_from_its_own_files(
    installed: Path, elsewhere: tuple[Path, dict[str, str]]
) -> None:
    cwd, env = elsewhere
    version = run([str(installed / "llmrouter-tui"), "--version"], cwd, env)
    assert version.strip() == f"llmrouter-tui {project_version()}"
    probe = (
        "import importlib, pkgutil, llmrouter_tui\n"
        "from llmrouter_tui.core import tokens\n"
        "from llmrouter_tui.core.templates import default_templates_path\n"
        "for m in pkgutil.walk_packages(llmrouter_tui.__path__, 'llmrouter_tui.'):\n"
        "    if not m.name.endswith('__main__'):\n"
        "        importlib.import_module(m.name)  # widgets read their .tcss on import\n"
        "print(llmrouter_tui.__file__)\n"
        "print(default_templates_path())\n"
        "print(tokens.count_tokens('hello world', 'gpt-4o'),"
        " tokens.count_tokens('hello world', 'llama-3.1-8b-instant'))\n"
        "print(tokens.encoding_status())\n"
    )
    package_file, templates, counts, status = run(
        [str(installed / "python"), "-c", probe], cwd, env
    ).splitlines()
    site = installed.parent / "lib"
    assert Path(package_file).is_relative_to(site), package_file  # not the source tree
    assert Path(templates).is_relative_to(site), templates
    assert counts == "2 2"  # exact BPE counts (o200k_base, cl100k_base), not estimates
    assert "bundled ranks" in status and "heuristic" not in status, status


def test_the_installed_ask_answers_in_demo_mode(
    installed: Path, elsewhere: tuple[Path, dict[str, str]]
) -> None:
    cwd, env = elsewhere
    reply = run([str(installed / "llmrouter-tui"), "ask", "--demo", "hi"], cwd, env)
    assert "fake" in reply and "received: hi" in reply


def test_the_installed_server_answers_health_and_chat(
    installed: Path, elsewhere: tuple[Path, dict[str, str]]
) -> None:
    cwd, env = elsewhere
    command = [str(installed / "llmrouter-tui"), "--serve", "--demo", "--port", "0"]
    server = ServerProcess(command, env, cwd, module=False)
    try:
        url = server.wait_for_url()
        with httpx.Client(base_url=url, timeout=30) as client:
            health = client.get("/health")
            chat = client.post("/chat", json={"prompt": "hi"})
            templates = client.get("/templates")
        assert health.status_code == 200, health.text
        assert chat.status_code == 200, chat.text
        assert "received: hi" in chat.json()["response_text"]
        assert templates.status_code == 200
        assert "friendly" in templates.text  # from the shipped prompt_templates.toml
        code = server.stop()
    finally:
        server.kill()
    assert code == 0, server.stderr
    assert (cwd / "data" / "llmrouter.db").is_file()
