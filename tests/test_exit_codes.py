"""Exit codes are declared once (llmrouter_tui/exit_codes.py) and README lists exactly them."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import llmrouter_tui
from llmrouter_tui.exit_codes import ExitCode

PACKAGE_DIR = Path(llmrouter_tui.__file__).parent
README = PACKAGE_DIR.parent / "README.md"


def _assigned_names(tree: ast.AST) -> list[tuple[str, int]]:
    names: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        names += [(t.id, node.lineno) for t in targets if isinstance(t, ast.Name)]
    return names


def test_no_module_declares_exit_codes_of_its_own() -> None:
    found = [
        f"{path.relative_to(PACKAGE_DIR.parent)}:{line}: {name}"
        for path in sorted(PACKAGE_DIR.rglob("*.py"))
        if path.name != "exit_codes.py"
        for name, line in _assigned_names(ast.parse(path.read_text(encoding="utf-8")))
        if name.startswith("EXIT_")
    ]
    assert found == [], "use llmrouter_tui.exit_codes.ExitCode:\n" + "\n".join(found)


def test_readme_lists_exactly_the_declared_codes() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Exit codes\n", 1)[1].split("\n## ", 1)[0]
    listed = [int(code) for code in re.findall(r"^\| \*\*(\d+)\*\* \|", section, flags=re.M)]
    assert listed == sorted(code.value for code in ExitCode)
