"""Export a saved conversation as Markdown: the core function and `llmrouter-tui export`."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml  # PyYAML: a real YAML parser reads the front matter back (schemathesis needs it)

from llmrouter_tui.core.conversations import UnknownConversationError
from llmrouter_tui.core.export import export_markdown, write_export, yaml_string
from llmrouter_tui.core.store import Store
from llmrouter_tui.core.types import Attempt, Result, Usage

ROOT = Path(__file__).resolve().parent.parent
MODEL = "openai/gpt-oss-20b"
#: Text a model or a user might produce that breaks naive YAML: quotes, colons, a document
#: marker, comments, line and paragraph separators, control characters, emoji.
NASTY = 'He said: "no"\n--- # not a comment\u2028next\x85line\x07bell\t😀 \\ end'


def _result(prompt_id: str, conversation: str, reply: str, *, fallback: bool = False) -> Result:
    attempts = [Attempt("openai/gpt-oss-120b" if fallback else MODEL, "groq", "ok", ms=640.0)]
    if fallback:
        attempts.insert(
            0,
            Attempt(MODEL, "groq", "error", status=503, error="server_error", message=NASTY),
        )
    return Result(
        prompt_id=prompt_id,
        requested_model=MODEL,
        model_used="openai/gpt-oss-120b" if fallback else MODEL,
        provider="groq",
        prompt="p",
        response_text=reply,
        status="ok",
        latency_ms=812.5,
        ttft_ms=143.0,
        usage=Usage(20, 61, 81, False),
        from_cache=False,
        fallback_used=fallback,
        attempts=attempts,
        created_at="2026-03-01T00:00:00.000Z",
        conversation_id=conversation,
        source="tui",
    )


def seed(store: Store) -> str:
    """A conversation: two turns, the second regenerated (with a fallback), rated with nasty
    feedback; a title and system prompt that need escaping."""
    conv = store.conversations.create(f"Title {NASTY}", MODEL, system=f"Be terse. {NASTY}")
    store.conversations.update_settings(conv, temperature=0.3)
    turns = [
        ("What is a regex?", "A *pattern*.\n\n```python\nimport re\n```", "e-1", False),
        ("And ISO dates?", "First answer (replaced).", "e-2", False),
    ]
    for prompt, reply, prompt_id, fallback in turns:
        store.record(_result(prompt_id, conv, reply, fallback=fallback))
        store.conversations.add_message(conv, "user", prompt)
        store.conversations.add_message(conv, "assistant", reply, prompt_id)
    regenerated = "Use `\\d{4}-\\d{2}-\\d{2}`.\n\n---\n\nDone."
    store.record(_result("e-3", conv, regenerated, fallback=True))
    store.conversations.add_message(conv, "assistant", regenerated, "e-3")
    store.rate("e-1", 5)
    store.rate("e-3", 2, NASTY)
    return conv


def front_matter(text: str) -> tuple[dict, str]:
    assert text.startswith("---\n")
    head, _, body = text[4:].partition("\n---\n")
    return yaml.safe_load(head), body


def test_export_markdown_front_matter_and_body(tmp_path: Path) -> None:
    with Store(tmp_path / "data") as store:
        conv = seed(store)
        when = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
        text = export_markdown(store, conv, now=when)
    meta, body = front_matter(text)
    assert meta["title"] == f"Title {NASTY}"
    assert meta["system"] == f"Be terse. {NASTY}"
    assert meta["conversation_id"] == conv and meta["model"] == MODEL
    assert meta["temperature"] == 0.3 and meta["max_tokens"] is None
    assert meta["exported_at"] == "2026-03-02T12:00:00Z"
    first, second = meta["turns"]
    assert first["prompt_id"] == "e-1" and first["rating"] == 5 and first["feedback"] is None
    assert first["model_used"] == MODEL and first["fallback_used"] is False
    assert first["tokens"] == {"prompt": 20, "completion": 61, "total": 81, "estimated": False}
    assert [a["outcome"] for a in first["attempts"]] == ["ok"]
    # the regenerated reply is the one that counts, with its fallback and both attempts
    assert second["prompt_id"] == "e-3" and second["rating"] == 2
    assert second["feedback"] == NASTY
    assert second["requested_model"] == MODEL and second["model_used"] == "openai/gpt-oss-120b"
    assert second["fallback_used"] is True and second["latency_ms"] == 812.5
    assert [(a["model"], a["status"], a["message"]) for a in second["attempts"]] == [
        (MODEL, 503, NASTY),
        ("openai/gpt-oss-120b", None, None),
    ]
    # the body: prompts and replies in order, replies as Markdown; the replaced one is gone
    order = [
        body.index("What is a regex?"),
        body.index("```python\nimport re\n```"),
        body.index("And ISO dates?"),
        body.index("Use `\\d{4}-\\d{2}-\\d{2}`."),
    ]
    assert order == sorted(order)
    assert "First answer (replaced)." not in body
    assert "## 2. Reply (openai/gpt-oss-120b)" in body


@pytest.mark.parametrize(
    "value", ["", "plain", NASTY, "\ud800 lone surrogate", "\x00\x1f\x7f\x9f\ufeff", "null", "0x1"]
)
def test_yaml_string_round_trips(value: str) -> None:
    assert yaml.safe_load(f"v: {yaml_string(value)}")["v"] == value


def test_unknown_conversation_names_the_id(tmp_path: Path) -> None:
    with Store(tmp_path / "data") as store, pytest.raises(UnknownConversationError) as caught:
        export_markdown(store, "no-such-id")
    assert "no-such-id" in str(caught.value)


def test_write_export_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "out.md"
    write_export(path, "first")
    with pytest.raises(FileExistsError):
        write_export(path, "second")
    assert path.read_text() == "first"
    write_export(path, "third", force=True)
    assert path.read_text() == "third"
    assert [p.name for p in tmp_path.iterdir()] == ["out.md"], "no temporary file is left"


# ---- the command, in a subprocess ----------------------------------------------------------


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMROUTER_", "GROQ_"))}
    return subprocess.run(
        [sys.executable, "-m", "llmrouter_tui", "export", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
    )


@pytest.mark.slow
def test_export_command(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Store(data) as store:
        conv = seed(store)
    out = tmp_path / "chat.md"
    done = run_cli(conv, "-o", str(out), "--data-dir", str(data), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    meta, body = front_matter(out.read_text(encoding="utf-8"))
    assert meta["conversation_id"] == conv and meta["turns"][1]["feedback"] == NASTY
    assert "What is a regex?" in body

    # an existing file is kept unless --force
    out.write_text("keep me")
    refused = run_cli(conv, "-o", str(out), "--data-dir", str(data), cwd=tmp_path)
    assert refused.returncode == 2
    assert str(out) in refused.stderr and "--force" in refused.stderr
    assert out.read_text() == "keep me"
    forced = run_cli(conv, "-o", str(out), "--force", "--data-dir", str(data), cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert out.read_text(encoding="utf-8").startswith("---\n")

    # stdout, and a unique prefix of the id
    printed = run_cli(conv[:8], "--data-dir", str(data), cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    assert front_matter(printed.stdout)[0]["conversation_id"] == conv

    # --list shows the id
    listed = run_cli("--list", "--data-dir", str(data), cwd=tmp_path)
    assert listed.returncode == 0 and conv in listed.stdout


def test_export_command_unknown_id(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Store(data) as store:
        seed(store)
    done = run_cli("0123456789abcdef", "--data-dir", str(data), cwd=tmp_path)
    assert done.returncode == 2
    assert "0123456789abcdef" in done.stderr and done.stdout == ""
    # no database at all: same answer, and none is created
    empty = tmp_path / "empty"
    missing = run_cli("abcdef123456", "--data-dir", str(empty), cwd=tmp_path)
    assert missing.returncode == 2 and "abcdef123456" in missing.stderr
    assert not (empty / "llmrouter.db").exists()
