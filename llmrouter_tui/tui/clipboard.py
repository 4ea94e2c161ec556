"""Copying text, and saying truthfully where it went.

Textual copies with OSC 52: an escape sequence asking the *terminal* to set the clipboard.
Many setups drop it without a word (tmux unless `set -g set-clipboard on`, GNOME Terminal and
other VTE terminals, some SSH clients), so the app cannot claim "Copied" from that alone.
When a system clipboard tool is available (wl-copy on Wayland, xclip or xsel on X11, pbcopy
on macOS, clip.exe on Windows and WSL) the text goes through it as well, and the message
names it; otherwise the message says the text was *sent to the terminal clipboard*.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from typing import Protocol

#: Longest wait for a clipboard tool (they normally return at once).
TOOL_TIMEOUT_S = 2.0

OSC52_MESSAGE = (
    "sent to the terminal clipboard (OSC 52); if it did not arrive, your terminal ignores "
    "OSC 52 (in tmux: set -g set-clipboard on)"
)


class _CanCopy(Protocol):
    def copy_to_clipboard(self, text: str) -> None: ...


def clipboard_tool(
    env: Mapping[str, str] | None = None,
    which: Callable[[str], str | None] = shutil.which,
    platform: str = sys.platform,
) -> list[str] | None:
    """The command that puts its standard input on the system clipboard, if any."""
    env = os.environ if env is None else env
    candidates: list[list[str]] = []
    if platform == "darwin":
        candidates.append(["pbcopy"])
    elif platform == "win32":
        candidates.append(["clip"])
    else:
        if env.get("WAYLAND_DISPLAY"):
            candidates.append(["wl-copy"])
        if env.get("DISPLAY"):
            candidates += [["xclip", "-selection", "clipboard"], ["xsel", "--clipboard", "--input"]]
        if env.get("WSL_DISTRO_NAME"):
            candidates.append(["clip.exe"])
    for command in candidates:
        path = which(command[0])
        if path:
            return [path, *command[1:]]
    return None


def run_tool(command: list[str], text: str) -> bool:
    """Pipe `text` into `command`; True if it succeeded (blocking: call it in a thread)."""
    try:
        done = subprocess.run(
            command,
            input=text.encode("utf-8"),
            stdout=subprocess.DEVNULL,  # xclip and wl-copy leave a child serving the
            stderr=subprocess.DEVNULL,  # selection: it must not hold our pipes open
            timeout=TOOL_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


async def copy_text(app: _CanCopy, text: str) -> str:
    """Copy `text` by every means available; return what to tell the user (lower case)."""
    app.copy_to_clipboard(text)  # OSC 52: works over SSH when the terminal allows it
    tool = clipboard_tool()
    if tool is not None and await asyncio.to_thread(run_tool, tool, text):
        return f"copied to the system clipboard ({os.path.basename(tool[0])})"
    return OSC52_MESSAGE
