"""Long replies in the chat, against the fake upstream: streaming without a final re-render,
long code lines, wide tables, copying one code block, copy messages that tell the truth,
long conversations mounted lazily, export from the app, and snapshots of a long reply."""

# Fixtures are imported from test_tui_support; tests take them as same-named arguments.
# ruff: noqa: F811

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml  # PyYAML (installed with schemathesis): reads the export's front matter back
from test_tui_support import (  # noqa: F401 - fixtures
    MODEL,
    SIZE,
    app,
    chat,
    data_dir,
    fake,
    isolated_env,
    quick_config,
    runtime,
    send,
    settle,
)
from waiting import until

from llmrouter_tui.core.runtime import Runtime
from llmrouter_tui.core.store import Store
from llmrouter_tui.testing.fake_upstream import FakeUpstream
from llmrouter_tui.testing.replies import long_conversation, long_reply
from llmrouter_tui.tui import clipboard
from llmrouter_tui.tui.app import LLMRouterApp
from llmrouter_tui.tui.markdown_render import code_lines, parse_blocks
from llmrouter_tui.tui.screens.text_prompt import TextPromptModal
from llmrouter_tui.tui.screenshots import seeded_runtime
from llmrouter_tui.tui.widgets.code_block import CodeBlock
from llmrouter_tui.tui.widgets.reply import ReplyView
from llmrouter_tui.tui.widgets.table_block import TableBlock

WIDE_LINE = (
    "result = compute_statistics(requests, window_s=60, percentiles=(50, 95, 99), "
    "group_by=('model', 'provider'), include_cache_hits=False)  # one long line"
)
NUMBERS = ["1,234,567.89", "13,456,789.01", "987,654.32", "42,000,000.00", "7,777,777.77"]
WIDE_TABLE = "\n".join(
    [
        "| model | p50 ms | p95 ms | p99 ms | req/s | tokens/s | errors | cost $ |",
        "|---|---|---|---|---|---|---|---|",
        "| openai/gpt-oss-20b | " + " | ".join(NUMBERS[:5]) + " | 3 | 12.50 |",
        "| gemini-3.5-flash | " + " | ".join(reversed(NUMBERS)) + " | 0 | 4.75 |",
    ]
)
#: A reply ending with a wide table and a code block with a line wider than any terminal.
WIDE_REPLY = (
    "Here is what the last hour looked like, per model:\n\n"
    f"{WIDE_TABLE}\n\n"
    "And the code that computed it:\n\n"
    f"```python\nimport statistics\n\n{WIDE_LINE}\nprint(result)\n```\n"
)
TWO_BLOCKS = (
    "First run this:\n\n```bash\npip install -e .\n```\n\n"
    "then this:\n\n```python\nprint('second block')\n```\n"
)


def fixed_reply(text: str) -> Callable[[str, str, list[dict[str, str]]], str]:
    return lambda provider, model, messages: text


def notifications(app: LLMRouterApp) -> list[str]:
    return [n.message for n in app._notifications]


async def select_latest(pilot: Any) -> ReplyView:
    screen = chat(pilot)
    screen.action_select_latest()
    await pilot.pause()
    assert screen.view.has_focus
    reply = screen.view.selected_reply
    assert reply is not None
    return reply


# ---- streaming ---------------------------------------------------------------------------------


@pytest.mark.slow
async def test_long_reply_streams_without_a_final_rerender(
    data_dir: Path, quick_config: Path
) -> None:
    # A string over several lines, which a line on its own does not show as a string: in
    # the middle (completed when the next block starts) and at the very end (by the reply's end).
    multiline = '```python\nquery = """\nSELECT model, count(*)\nFROM requests\n"""\n```\n'
    text = f"{long_reply(3, 1500)}\n{multiline}\nBetween.\n\n{multiline}"
    with FakeUpstream(chunk_delay_s=0.002) as slow:
        slow.reply_fn = fixed_reply(text)
        app = LLMRouterApp(Runtime.open(data_dir=data_dir, demo_upstream=slow.base_url))
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await send(pilot, "a long answer please", wait=False)
            screen = chat(pilot)

            def first_block() -> object:
                replies = screen.view.replies
                if screen.streaming and replies and len(replies[0].body.blocks) >= 3:
                    return replies[0].body.blocks[0]
                return None

            first = await until(first_block, "three blocks on screen while the reply streams")
            await settle(pilot)
            (reply,) = screen.view.replies
            assert reply.state == "done" and reply.text == text
            body = reply.body
            assert body.source == text
            assert body.blocks[0] is first, "the finished reply was not rendered again"
            # what streamed in is what a fresh render of the whole text shows
            expected = parse_blocks(text)
            shown = [view.block for view in body.blocks]
            assert [(b.kind, b.start, b.end, b.number) for b in shown] == [
                (b.kind, b.start, b.end, b.number) for b in expected
            ]
            assert [b.code for b in shown] == [b.code for b in expected]
            assert [[line.body.plain for line in b.lines] for b in shown] == [
                [line.body.plain for line in b.lines] for b in expected
            ]
            # code blocks highlighted line by line while streaming were coloured whole once
            # complete (multi-line strings and all)
            for code in body.query(CodeBlock):
                exact = code_lines(code.code, code.language)
                assert len(code._lines) == len(exact)
                assert all(a.body.is_same(b.body) for a, b in zip(code._lines, exact, strict=True))
        app.runtime.close()


# ---- long code lines and wide tables -----------------------------------------------------------


@pytest.mark.slow
async def test_long_code_lines_fold_and_wide_tables_scroll(
    data_dir: Path, quick_config: Path, fake: FakeUpstream
) -> None:
    fake.reply_fn = fixed_reply(WIDE_REPLY)
    app = LLMRouterApp(Runtime.open(data_dir=data_dir, demo_upstream=fake.base_url))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await send(pilot, "numbers please")
        (reply,) = chat(pilot).view.replies
        body = reply.body
        (code,) = body.query(CodeBlock)
        rows = [row.plain for row in code.rows(code.content_size.width)]
        assert rows[0].lstrip().startswith("python") and rows[0].rstrip().endswith("y 1")
        start = next(i for i, row in enumerate(rows) if "result = compute" in row)
        folded = [rows[start]]
        folded += [row for row in rows[start + 1 :] if row.startswith("↪")][:3]
        assert len(folded) > 1, "the long line is folded, each continuation marked ↪"
        assert "".join(row[2:] for row in folded).rstrip() == WIDE_LINE, "nothing is cut off"
        assert "…" not in body.plain_text

        (table,) = body.query(TableBlock)
        assert table.overflows
        shown = table.rows(table.content_size.width)
        assert shown[-1].plain.startswith("columns 1–"), "the hint says more columns exist"
        full = table._table
        assert all(number in full[2].plain + full[3].plain for number in NUMBERS)

        await select_latest(pilot)
        await pilot.press("right")
        assert table.scroll_column > 0
        width = table.content_size.width
        visible = table.rows(width)[0].plain
        assert visible == full[0].plain[table.scroll_column : table.scroll_column + width]
        for _ in range(40):
            await pilot.press("right")
        last = table.rows(width)[2].plain
        assert last.rstrip().endswith("12.50"), "the last column can be reached"
        await pilot.press("left")
        assert table.scroll_column == table.natural_width - width - 8
    app.runtime.close()


# ---- copying -----------------------------------------------------------------------------------


@pytest.mark.slow
async def test_copy_one_code_block_by_number(
    data_dir: Path, quick_config: Path, fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clipboard, "clipboard_tool", lambda *a, **k: None)
    fake.reply_fn = fixed_reply(TWO_BLOCKS)
    app = LLMRouterApp(Runtime.open(data_dir=data_dir, demo_upstream=fake.base_url))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "two commands")
        reply = await select_latest(pilot)
        labels = [block.rows(60)[0].plain for block in reply.body.query(CodeBlock)]
        assert "bash" in labels[0] and labels[0].rstrip().endswith("y 1")
        assert "python" in labels[1] and labels[1].rstrip().endswith("y 2")
        await pilot.press("y", "2")
        await settle(pilot)
        assert app.clipboard == "print('second block')"
        assert reply.rating is None, "the digit chose a block, it did not rate the reply"
        message = notifications(app)[-1]
        assert message.startswith("Python code block 2 (21 characters)")
        assert "sent to the terminal clipboard (OSC 52)" in message
        assert "set -g set-clipboard on" in message
        await pilot.press("y", "1")
        await settle(pilot)
        assert app.clipboard == "pip install -e ."
        await pilot.press("y", "4")  # there is no block 4 (and 4 is not a rating here)
        await settle(pilot)
        assert "No code block 4; this reply has 2." in notifications(app)[-1]
        assert app.clipboard == "pip install -e ." and reply.rating is None
    app.runtime.close()


@pytest.mark.slow
async def test_copy_goes_through_a_system_clipboard_tool(
    app: LLMRouterApp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pasted = tmp_path / "clipboard.txt"
    # A real process standing in for xclip: it stores what it reads.
    tool = [
        sys.executable,
        "-c",
        "import pathlib, sys; pathlib.Path(sys.argv[1]).write_bytes(sys.stdin.buffer.read())",
        str(pasted),
    ]
    monkeypatch.setattr(clipboard, "clipboard_tool", lambda *a, **k: tool)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "copy this")
        reply = await select_latest(pilot)
        await pilot.press("c")
        await settle(pilot)
        assert pasted.read_text(encoding="utf-8") == reply.text
        assert app.clipboard == reply.text  # OSC 52 as well, for remote sessions
        message = notifications(app)[-1]
        assert "copied to the system clipboard (python" in message
        assert "OSC 52" not in message


def test_clipboard_tool_choice() -> None:
    def which(name: str) -> str | None:
        return f"/usr/bin/{name}" if name in ("wl-copy", "xsel", "pbcopy") else None

    wayland = {"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"}
    assert clipboard.clipboard_tool(wayland, which, "linux") == ["/usr/bin/wl-copy"]
    x11 = {"DISPLAY": ":0"}  # no xclip here: xsel is next
    assert clipboard.clipboard_tool(x11, which, "linux") == [
        "/usr/bin/xsel",
        "--clipboard",
        "--input",
    ]
    assert clipboard.clipboard_tool({}, which, "linux") is None  # over SSH: OSC 52 only
    assert clipboard.clipboard_tool({}, which, "darwin") == ["/usr/bin/pbcopy"]


# ---- long conversations ------------------------------------------------------------------------


def seed_long_conversation(store: Store, turns: int) -> str:
    conversation = store.conversations.create("long one", MODEL)
    for prompt, reply in long_conversation(turns, seed=5):
        store.conversations.add_message(conversation, "user", prompt)
        store.conversations.add_message(conversation, "assistant", reply)
    return conversation


@pytest.mark.slow
async def test_long_conversation_mounts_lazily_and_keeps_its_history(
    app: LLMRouterApp, fake: FakeUpstream
) -> None:
    turns = 30
    seed_long_conversation(app.runtime.store, turns)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        view = chat(pilot).view
        assert len(view.replies) == turns
        mounted = [w for w in view.children if isinstance(w, ReplyView)]
        assert 1 <= len(mounted) <= 4, "only the newest turns are mounted at first"
        assert mounted[-1] is view.replies[-1]
        assert view.older_count == 2 * (turns - len(mounted))

        # the request carries every turn, mounted or not
        await send(pilot, "one more question")
        body = fake.requests_for(MODEL)[-1].body
        assert len(body["messages"]) == 2 * turns + 1
        assert body["messages"][0]["content"].startswith("Question 1:")

        # selecting the first reply mounts everything down to it, in order
        view.focus()
        view.selected = 0
        await settle(pilot)
        await until(lambda: view.replies[0].is_mounted, "the first reply to be mounted")
        assert view.older_count == 0
        await settle(pilot)
        assert view.replies[0].region.intersection(view.region).area, "and it is on screen"
        texts = [w.text for w in view.children if hasattr(w, "text")][:4]
        assert texts[0].startswith("Question 1:") and texts[2].startswith("Question 2:")


@pytest.mark.slow
async def test_scrolling_up_mounts_older_turns(app: LLMRouterApp) -> None:
    seed_long_conversation(app.runtime.store, 12)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        view = chat(pilot).view
        waiting = view.older_count
        assert waiting > 0
        # what is on screen stays where it is while older turns are mounted above it
        top = view.children[0]
        view.release_anchor()  # as scrolling by hand does
        view.scroll_to(y=0, animate=False, immediate=True)
        await pilot.pause()
        on_screen = top.region.y
        await settle(pilot)
        assert 0 < view.older_count < waiting
        assert top.region.y == on_screen and view.scroll_y > 0
        for _ in range(30):  # bounded: each scroll to the top mounts a few more screens
            view.scroll_home(animate=False)
            await settle(pilot)
            if view.older_count == 0:
                break
        assert view.older_count == 0
        assert len([w for w in view.children if isinstance(w, ReplyView)]) == 12


# ---- export from the app -----------------------------------------------------------------------


@pytest.mark.slow
async def test_export_key_writes_markdown_and_never_overwrites(
    app: LLMRouterApp, isolated_env: Path
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "export me")
        screen = chat(pilot)
        await select_latest(pilot)
        await pilot.press("e")
        await pilot.pause()
        modal = app.screen
        assert isinstance(modal, TextPromptModal)
        name = modal.value
        assert name.startswith("export-me-") and name.endswith(".md")
        await pilot.press("enter")
        await settle(pilot)
        path = isolated_env / name
        text = path.read_text(encoding="utf-8")
        head = yaml.safe_load(text[4:].partition("\n---\n")[0])
        assert head["conversation_id"] == screen.conversation_id
        assert head["turns"][0]["model_used"] == MODEL
        assert "export me" in text
        assert any("Conversation exported" in (n.title or "") for n in app._notifications)

        # the same name again: refused, the file is kept
        path.write_text("keep me", encoding="utf-8")
        await select_latest(pilot)
        await pilot.press("e")
        await pilot.pause()
        await pilot.press("enter")
        await settle(pilot)
        assert path.read_text(encoding="utf-8") == "keep me"
        assert "already exists" in notifications(app)[-1]


# ---- snapshots ---------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("size", [(80, 24), (100, 30)], ids=["80x24", "100x30"])
def test_long_reply_snapshot(
    size: tuple[int, int], snap_compare: Any, tmp_path: Path, isolated_env: Path
) -> None:
    """The end of a long reply: a wide table (scrollable, its hint) and a folded code line."""
    with seeded_runtime(tmp_path / "data") as runtime:
        store = runtime.store
        conversation = store.conversations.create("Latency by model", MODEL)
        store.conversations.add_message(conversation, "user", "How fast was each model?")
        store.conversations.add_message(conversation, "assistant", WIDE_REPLY)
        assert snap_compare(LLMRouterApp(runtime), terminal_size=size, run_before=settle)
