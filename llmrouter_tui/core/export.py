"""A saved conversation as a Markdown document with YAML front matter.

The front matter carries what the text alone does not: the conversation's settings and, for
every reply, the model asked for and the one that answered, whether it fell back or came from
the cache, latency, tokens, each attempt, and the rating with its feedback. Every string in it
is written as a double-quoted YAML scalar with anything that is not printable (control
characters, line and paragraph separators, lone surrogates) escaped, so any YAML parser reads
back exactly the text that was stored, whatever a model or a user typed. The body has the
prompts and replies in order, replies as the Markdown they are.

A turn is a prompt and the reply that counts for it: after a regeneration, the latest one (as
the app shows it).
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .store import Store

#: Characters YAML does not allow raw in a double-quoted scalar, or would fold as a line break.
_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\0": "\\0",
    "\x85": "\\N",
    "\u2028": "\\L",
    "\u2029": "\\P",
}


def yaml_string(text: str) -> str:
    """`text` as a YAML double-quoted scalar that parses back to exactly `text`."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif 0x20 <= code <= 0x7E:
            out.append(ch)
        elif (
            code < 0x20
            or 0x7F <= code <= 0x9F
            or 0xD800 <= code <= 0xDFFF
            or code
            in (
                0xFEFF,
                0xFFFE,
                0xFFFF,
            )
        ):
            out.append(f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")
        else:
            out.append(ch)  # printable Unicode stays readable
    out.append('"')
    return "".join(out)


def yaml_value(value: object) -> str:
    """A scalar (string, number, bool, None) in YAML."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return "null"
        return repr(value)
    return yaml_string(str(value))


def _yaml_map(items: Mapping[str, object], indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    for key, value in items.items():
        if isinstance(value, Mapping):
            lines.append(f"{pad}{key}:")
            lines += _yaml_map(value, indent + 2)
        elif isinstance(value, list):
            if not value:
                lines.append(f"{pad}{key}: []")
                continue
            lines.append(f"{pad}{key}:")
            for element in value:
                inner = _yaml_map(element, indent + 4)
                lines.append(f"{pad}  - {inner[0].lstrip()}")
                lines += inner[1:]
        else:
            lines.append(f"{pad}{key}: {yaml_value(value)}")
    return lines


@dataclass(slots=True)
class ExportTurn:
    prompt: str
    reply: str | None = None
    prompt_id: str | None = None
    request: dict[str, Any] | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    rating: dict[str, Any] | None = None


def _turns(store: Store, messages: Iterable[Mapping[str, Any]]) -> list[ExportTurn]:
    turns: list[ExportTurn] = []
    for message in messages:
        if message["role"] == "user":
            turns.append(ExportTurn(message["content"]))
        elif message["role"] == "assistant" and turns:
            turn = turns[-1]  # a regenerated reply replaces the earlier one
            turn.reply = message["content"]
            turn.prompt_id = message.get("prompt_id")
            turn.request = turn.rating = None
            turn.attempts = []
            if turn.prompt_id:
                turn.request = store.get_request(turn.prompt_id)
                turn.attempts = store.request_attempts(turn.prompt_id)
                turn.rating = store.get_rating(turn.prompt_id)
    return turns


def _turn_facts(turn: ExportTurn) -> dict[str, object]:
    row = turn.request or {}
    facts: dict[str, object] = {"prompt_id": turn.prompt_id}
    if row:
        facts.update(
            requested_model=row.get("requested_model"),
            model_used=row.get("model_used"),
            provider=row.get("provider"),
            fallback_used=bool(row.get("fallback_used")),
            from_cache=bool(row.get("from_cache")),
            status=row.get("status"),
            finish_reason=row.get("finish_reason"),
            latency_ms=row.get("latency_ms"),
            ttft_ms=row.get("ttft_ms"),
            tokens={
                "prompt": row.get("prompt_tokens"),
                "completion": row.get("completion_tokens"),
                "total": row.get("total_tokens"),
                "estimated": bool(row.get("tokens_estimated")),
            },
            notice=row.get("notice"),
            created_at=row.get("created_at"),
        )
    facts["attempts"] = [
        {k: a.get(k) for k in ("model", "provider", "outcome", "status", "error", "message", "ms")}
        for a in turn.attempts
    ]
    rating = turn.rating or {}
    facts["rating"] = rating.get("rating")
    facts["feedback"] = rating.get("feedback")
    return facts


def export_markdown(store: Store, conversation_id: str, *, now: datetime | None = None) -> str:
    """The conversation `conversation_id` as Markdown with YAML front matter.

    UnknownConversationError (an InputError naming the id) when there is no such conversation.
    """
    info = store.conversations.get(conversation_id)
    turns = _turns(store, store.conversations.messages(conversation_id))
    exported = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    front: dict[str, object] = {
        "title": info["title"],
        "conversation_id": info["id"],
        "model": info["model"],
        "system": info["system"],
        "temperature": info["temperature"],
        "max_tokens": info["max_tokens"],
        "created_at": info["created_at"],
        "updated_at": info["updated_at"],
        "exported_at": exported,
        "exported_by": "llmrouter-tui",
        "turns": [_turn_facts(turn) for turn in turns],
    }
    lines = ["---", *_yaml_map(front, 0), "---", "", f"# {_one_line(info['title'])}", ""]
    if info["system"]:
        lines += ["**System prompt:**", "", _quote(info["system"]), ""]
    for number, turn in enumerate(turns, 1):
        lines += [f"## {number}. Prompt", "", turn.prompt.rstrip("\n"), ""]
        if turn.reply is None:
            lines += ["*(no reply)*", ""]
            continue
        model = (turn.request or {}).get("model_used") or "reply"
        lines += [f"## {number}. Reply ({_one_line(model)})", "", turn.reply.rstrip("\n"), ""]
    return "\n".join(lines)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines())


def write_export(path: Path, text: str, *, force: bool = False) -> None:
    """Write `text` to `path`; FileExistsError if it exists and not `force`.

    Without `force` the file is created exclusively (nothing that appears meanwhile is
    overwritten); with it, the new content replaces the old in one rename.
    """
    data = text.encode("utf-8")
    if not force:
        with open(path, "xb") as handle:
            handle.write(data)
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
