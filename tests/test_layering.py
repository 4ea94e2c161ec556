"""Import contracts for every layer, checked statically over the whole package, plus the
runtime check that the core loads no UI, server or provider SDK when imported.

The contracts (README, Layout):
- core imports only core; never textual/rich/h11/uvicorn, and provider SDKs (groq,
  google.genai, tiktoken) only inside the function that needs them;
- the front-ends (server/, tui/, ask/) import core and the shared helpers (exit_codes,
  logconfig, demo), never each other nor the commands above them; the shared helpers
  import only core and each other;
- nothing but `--demo` (demo.py) and testing/ itself reaches testing/.

Every import counts wherever it is written (module level, in a function, under
TYPE_CHECKING) and so does `importlib.import_module("...")` with a literal name.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import llmrouter_tui

PACKAGE = "llmrouter_tui"
PACKAGE_DIR = Path(llmrouter_tui.__file__).parent

LAYERS = ("core", "server", "tui", "ask", "testing")
FRONT_ENDS = ("server", "tui", "ask")
#: Top-level modules every front-end may use; they import only core and each other.
SHARED = ("exit_codes", "logconfig", "demo")
#: The only module outside testing/ that may import it: `--demo` runs the fake upstream.
DEMO = "demo"
#: Never imported by core, at any depth: the core has no UI and no HTTP server.
NO_UI_OR_HTTP = ("textual", "rich", "h11", "uvicorn")
#: Imported by core only inside the function that needs them (so start-up stays fast).
LAZY_SDKS = ("groq", "google.genai", "tiktoken")


@dataclass(frozen=True)
class Found:
    target: str  # absolute dotted name
    line: int
    at_import_time: bool  # runs when the module is imported (not in a function/TYPE_CHECKING)


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    target: str
    rule: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: imports {self.target}: {self.rule}"


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _is_import_module(func: ast.expr) -> bool:
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return name in ("import_module", "__import__")


class _Imports(ast.NodeVisitor):
    """Every import in one module, with its line and whether it runs at import time."""

    def __init__(self, package: str) -> None:
        self.package = package  # the package relative imports start from
        self.found: list[Found] = []
        self.bad_relative: list[int] = []
        self._deferred = 0  # inside functions or `if TYPE_CHECKING:`

    def _add(self, target: str, node: ast.AST) -> None:
        self.found.append(Found(target, node.lineno, self._deferred == 0))

    def _resolve(self, level: int, module: str | None, node: ast.AST, base: str) -> str | None:
        if level == 0:
            return module
        parts = base.split(".")
        if level - 1 >= len(parts):
            self.bad_relative.append(node.lineno)
            return None
        parts = parts[: len(parts) - (level - 1)]
        return ".".join(parts + ([module] if module else []))

    def _deferred_body(self, node: ast.AST) -> None:
        self._deferred += 1
        self.generic_visit(node)
        self._deferred -= 1

    visit_FunctionDef = _deferred_body
    visit_AsyncFunctionDef = _deferred_body
    visit_Lambda = _deferred_body

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            self.generic_visit(node)
            return
        self._deferred += 1
        for child in node.body:
            self.visit(child)
        self._deferred -= 1
        for child in node.orelse:
            self.visit(child)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = self._resolve(node.level, node.module, node, self.package)
        if base is None:
            return
        for alias in node.names:
            self._add(base if alias.name == "*" else f"{base}.{alias.name}", node)

    def visit_Call(self, node: ast.Call) -> None:
        self.generic_visit(node)
        if not (_is_import_module(node.func) and node.args):
            return
        first = node.args[0]
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            return  # a computed name: the runtime check below covers core's SDK loading
        name = first.value
        package = self.package
        for keyword in node.keywords:
            value = keyword.value
            if keyword.arg == "package" and isinstance(value, ast.Constant):
                package = str(value.value)
        level = len(name) - len(name.lstrip("."))
        target = self._resolve(level, name.lstrip(".") or None, node, package)
        if target is not None:
            self._add(target, node)


def _module_name(path: Path, root: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _unit(name: str, units: set[str]) -> str | None:
    """The layer or top-level module `name` belongs to ('' for the package itself), or None
    outside the package."""
    if name != PACKAGE and not name.startswith(PACKAGE + "."):
        return None
    rest = name.split(".")
    return rest[1] if len(rest) > 1 and rest[1] in units else ""


def _allowed(unit: str) -> set[str] | None:
    """The units `unit` may import (None: any but testing/)."""
    if unit == "core":
        return {"", "core"}
    if unit == "testing":
        return {"", "core", "testing"}
    if unit in FRONT_ENDS:
        return {"", "core", unit, *SHARED}
    if unit in SHARED:
        return {"", "core", *SHARED} | ({"testing"} if unit == DEMO else set())
    return None


def _matches(target: str, names: tuple[str, ...]) -> str | None:
    return next((n for n in names if target == n or target.startswith(n + ".")), None)


def check_package(root: Path) -> list[Violation]:
    """Every import in the package at `root` that breaks a contract above."""
    files = sorted(root.rglob("*.py"))
    units = {p.stem for p in root.glob("*.py")} | {p.name for p in root.iterdir() if p.is_dir()}
    violations: list[Violation] = []
    for path in files:
        module, is_package = _module_name(path, root)
        unit = _unit(module, units) or ""
        shown = str(path.relative_to(root.parent))
        visitor = _Imports(module if is_package else module.rpartition(".")[0])
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), filename=shown))
        for line in visitor.bad_relative:
            violations.append(Violation(shown, line, "?", "relative import beyond the package"))
        for found in visitor.found:
            rule = _broken_rule(unit, found, units)
            if rule:
                violations.append(Violation(shown, found.line, found.target, rule))
    return violations


def _broken_rule(unit: str, found: Found, units: set[str]) -> str | None:
    target_unit = _unit(found.target, units)
    if target_unit is None:  # third-party or stdlib
        if unit != "core":
            return None
        if lib := _matches(found.target, NO_UI_OR_HTTP):
            return f"core has no UI or HTTP server ({lib})"
        if found.at_import_time and (lib := _matches(found.target, LAZY_SDKS)):
            return f"core imports the {lib} SDK only inside the function that needs it"
        return None
    if target_unit == "testing" and unit not in ("testing", DEMO):
        return "only --demo (demo.py) and testing/ itself may import testing/"
    allowed = _allowed(unit)
    if allowed is None or target_unit in allowed:
        return None
    what = "llmrouter_tui" if target_unit == "" else target_unit
    may = ", ".join(sorted(u for u in allowed if u)) or "nothing"
    return f"{unit} must not import {what} ({unit} may import only: {may})"


def test_every_import_in_the_package_keeps_the_layer_contracts() -> None:
    violations = check_package(PACKAGE_DIR)
    assert violations == [], "\n".join(map(str, violations))


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


BAD_TREE = {
    "__init__.py": "",
    "core/__init__.py": "",
    "core/bad.py": (
        "import importlib\n"  # 1
        "from typing import TYPE_CHECKING\n"  # 2
        "import textual.app\n"  # 3: UI in core
        "import groq\n"  # 4: SDK at import time
        "if TYPE_CHECKING:\n"  # 5
        "    import google.genai\n"  # 6: fine, type-only
        "    from ..tui.app import X\n"  # 7: core -> tui, even type-only
        "def later():\n"  # 8
        "    import groq\n"  # 9: fine, lazy
        "    from .. import server\n"  # 10: core -> server, function-local
        "    importlib.import_module('llmrouter_tui.testing.fake')\n"  # 11: core -> testing
        "    return [h11 for h11 in ()]\n"  # 12: a name, not an import
    ),
    "core/good.py": "from . import bad\nfrom .. import __version__\nimport sqlite3\n",
    "server/__init__.py": "",
    "server/x.py": (
        "from importlib import import_module\n"  # 1
        "from ..exit_codes import ExitCode\n"  # 2: fine
        "def f():\n"  # 3
        "    return import_module('..tui.app', package=__package__)\n"  # 4: server -> tui
        "from ..ask import run_ask\n"  # 5: server -> ask
        "from ..cli import main\n"  # 6: front-end -> the command above it
    ),
    "tui/__init__.py": "",
    "tui/y.py": (
        "from ..demo import demo_upstream\n"  # 1: fine
        "from llmrouter_tui.server import app\n"  # 2: tui -> server (absolute)
        "import llmrouter_tui.core.errors\n"  # 3: fine
    ),
    "ask/__init__.py": "from ..testing import FakeUpstream\n",  # 1: ask -> testing
    "testing/__init__.py": "from ..core import good\n",
    "demo.py": "from .testing import FakeUpstream\n",  # fine: --demo
    "exit_codes.py": "from .tui import y\n",  # 1: a shared helper -> a front-end
    "cli.py": "from .tui.y import run\nfrom .testing import FakeUpstream\n",  # 2: cli -> testing
    "tools.py": "from ... import elsewhere\n",  # 1: beyond the package
}


def test_the_checker_reports_each_broken_contract_with_file_and_line(tmp_path: Path) -> None:
    root = tmp_path / PACKAGE
    _write(root, BAD_TREE)
    found = {(v.path, v.line, v.target) for v in check_package(root)}
    assert found == {
        ("llmrouter_tui/core/bad.py", 3, "textual.app"),
        ("llmrouter_tui/core/bad.py", 4, "groq"),
        ("llmrouter_tui/core/bad.py", 7, "llmrouter_tui.tui.app.X"),
        ("llmrouter_tui/core/bad.py", 10, "llmrouter_tui.server"),
        ("llmrouter_tui/core/bad.py", 11, "llmrouter_tui.testing.fake"),
        ("llmrouter_tui/server/x.py", 4, "llmrouter_tui.tui.app"),
        ("llmrouter_tui/server/x.py", 5, "llmrouter_tui.ask.run_ask"),
        ("llmrouter_tui/server/x.py", 6, "llmrouter_tui.cli.main"),
        ("llmrouter_tui/tui/y.py", 2, "llmrouter_tui.server.app"),
        ("llmrouter_tui/ask/__init__.py", 1, "llmrouter_tui.testing.FakeUpstream"),
        ("llmrouter_tui/exit_codes.py", 1, "llmrouter_tui.tui.y"),
        ("llmrouter_tui/cli.py", 2, "llmrouter_tui.testing.FakeUpstream"),
        ("llmrouter_tui/tools.py", 1, "?"),
    }
    messages = "\n".join(map(str, check_package(root)))
    assert "llmrouter_tui/core/bad.py:4: imports groq: core imports the groq SDK only" in messages
    assert (
        "llmrouter_tui/tui/y.py:2: imports llmrouter_tui.server.app: tui must not import server"
        in (messages)
    )
    assert "only --demo (demo.py) and testing/ itself may import testing/" in messages


CHECK = """
import json, sys
import llmrouter_tui.core.runtime, llmrouter_tui.core.router, llmrouter_tui.core.store
import llmrouter_tui.core.providers, llmrouter_tui.core.templates, llmrouter_tui.core.tokens
print(json.dumps(sorted(sys.modules)))
"""


def test_core_imports_no_ui_server_or_sdk():
    out = subprocess.run(
        [sys.executable, "-c", CHECK], check=True, capture_output=True, text=True
    ).stdout
    modules = json.loads(out)
    forbidden = [
        m
        for m in modules
        if m.split(".")[0] in {"textual", "groq", "tiktoken", "h11"}
        or m.startswith(("llmrouter_tui.tui", "llmrouter_tui.server", "google.genai"))
    ]
    assert forbidden == []
