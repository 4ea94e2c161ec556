"""Widget stylesheets live next to their widget as `<module>.tcss`."""

from __future__ import annotations

from pathlib import Path


def sibling_tcss(module_file: str) -> str:
    """The text of the `.tcss` file that sits beside `module_file`."""
    return Path(module_file).with_suffix(".tcss").read_text(encoding="utf-8")
