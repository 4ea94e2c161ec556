"""The app through a day of real use (issue 13): quitting mid-stream, failing workers, a
readable model picker, keys in bursts, conversations that keep everything written, and the
small things seen at 80×24. Every test drives the real app against the fake upstream."""

# Fixtures are imported from test_tui_support; tests take them as same-named arguments.
# ruff: noqa: F811

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import sqlite3
import struct
import subprocess
import sys
import termios
import textwrap
import time
from pathlib import Path

import pytest
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
from textual import events
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, TextArea, Tree
from waiting import until

from llmrouter_tui.cli import main_parser
from llmrouter_tui.core.db import MIGRATIONS, migrate
from llmrouter_tui.core.errors import InputError
from llmrouter_tui.core.runtime import Runtime
from llmrouter_tui.core.store import Store
from llmrouter_tui.demo import demo_upstream, flaky_upstream
from llmrouter_tui.testing.fake_upstream import FakeUpstream, Fault
from llmrouter_tui.tui import main as tui_main
from llmrouter_tui.tui.app import LLMRouterApp
from llmrouter_tui.tui.screens.attempts import AttemptsModal
from llmrouter_tui.tui.screens.help import HelpScreen
from llmrouter_tui.tui.screens.model_picker import ModelPicker
from llmrouter_tui.tui.screens.retired_model import RetiredModelModal
from llmrouter_tui.tui.screens.template_review import TemplateReviewModal
from llmrouter_tui.tui.screens.templates import TemplatesScreen
from llmrouter_tui.tui.widgets.sidebar import ConversationSidebar

SMALL = (80, 24)
LONG_REPLY = " ".join(f"word{i}" for i in range(400))
RETIRED = "llama-3.1-8b-instant"  # served by openai/gpt-oss-20b


# ---- helpers ---------------------------------------------------------------------------------


def screen_lines(app: LLMRouterApp) -> list[str]:
    """The text of the screen as drawn (the top screen: a dialog with what shows around it)."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def screen_text(app: LLMRouterApp) -> str:
    return "\n".join(screen_lines(app))


def key_event(key: str) -> events.Key:
    """A key as the terminal parser makes it (`alt+shift+o` carries the character O)."""
    characters = {
        "enter": "\r",
        "tab": "\t",
        "escape": "\x1b",
        "backspace": "\x7f",
        "ctrl+j": "\n",
        "space": " ",
    }
    if len(key) == 1:
        return events.Key(key, key)
    if key.startswith("alt+shift+"):
        return events.Key(key, key[-1].upper())
    return events.Key(key, characters.get(key))


async def burst(pilot: Pilot[None], *keys: str) -> None:
    """Deliver `keys` the way a terminal does in a burst (a paste without bracketed paste, a
    macro, tmux send-keys): all queued at once, none waiting for the previous one."""
    app = pilot.app
    for key in keys:
        app._driver.send_message(key_event(key))  # type: ignore[union-attr]
    await until(
        lambda: not getattr(app, "keys_waiting", 0) and getattr(app, "_key_fence", None) is None,
        "the app to take every key of the burst",
    )
    await pilot.pause()
    await pilot.pause()


def notified(app: LLMRouterApp, text: str) -> bool:
    """Whether a notification (title or message) contains `text`."""
    return any(text in f"{n.title} {n.message}" for n in app._notifications)


def typed(text: str) -> list[str]:
    return ["space" if c == " " else c for c in text]


async def stream_slowly(pilot: Pilot[None], fake: FakeUpstream, prompt: str) -> None:
    """Send `prompt` with a long, slow reply and wait until its first words are on screen."""
    fake.chunk_delay_s = 0.05
    fake.reply_fn = lambda provider, model, messages: LONG_REPLY
    await send(pilot, prompt, wait=False)
    screen = chat(pilot)
    await until(lambda: "streaming ·" in screen.activity_text(), "the reply to start streaming")


def meta_of(reply) -> str:  # type: ignore[no-untyped-def]
    return str(reply.query_one(".reply-meta").render())


def notice_of(reply) -> str:  # type: ignore[no-untyped-def]
    notice = reply.query_one(".reply-notice")
    return str(notice.render()) if notice.display else ""


# ---- crashes and unreadable screens ----------------------------------------------------------


@pytest.mark.slow
async def test_ctrl_q_while_streaming_saves_the_partial_reply_and_exits_cleanly(
    app: LLMRouterApp, fake: FakeUpstream
) -> None:
    store = app.runtime.store
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await stream_slowly(pilot, fake, "tell me everything")
        await pilot.press("ctrl+q")
        await settle(pilot)
    assert app.return_code == 0
    (conversation,) = store.conversations.list()
    user, reply = store.conversations.messages(conversation["id"])
    assert (user["role"], user["content"]) == ("user", "tell me everything")
    assert reply["status"] == "cancelled"
    assert reply["content"] and LONG_REPLY.startswith(reply["content"].strip())
    row = store.get_request(reply["prompt_id"])
    assert row is not None and row["status"] == "cancelled"


LAUNCHER = textwrap.dedent(
    """
    import sys
    from llmrouter_tui.core.runtime import Runtime
    from llmrouter_tui.testing.fake_upstream import FakeUpstream
    from llmrouter_tui.tui.app import LLMRouterApp

    with FakeUpstream(chunk_delay_s=0.1) as fake:
        fake.reply_fn = lambda provider, model, messages: " ".join(
            f"word{i}" for i in range(400)
        )
        runtime = Runtime.open(data_dir=sys.argv[1], demo_upstream=fake.base_url)
        app = LLMRouterApp(runtime)
        try:
            app.run()
        finally:
            runtime.close()
    sys.exit(app.return_code or 0)
    """
)


@pytest.mark.slow
def test_ctrl_q_while_streaming_in_a_real_terminal(tmp_path: Path, isolated_env: Path) -> None:
    """The real driver under a pseudo-terminal: exit 0, nothing printed, reply saved."""
    data = tmp_path / "data"
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "TEXTUAL_FPS": "60"}
    process = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(data)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    output = bytearray()

    def read_until(needle: bytes, limit_s: float = 30.0) -> bool:
        deadline = time.monotonic() + limit_s
        while needle not in output and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    output.extend(os.read(master, 65536))
                except OSError:
                    return needle in output
        return needle in output

    try:
        assert read_until(b"Type a prompt"), "the app did not start"
        os.write(master, b"tell me everything\r")
        assert read_until(b"word5"), "the reply did not start streaming"
        output.clear()
        os.write(master, b"\x11")  # ctrl+q
        code = process.wait(timeout=30)
        read_until(b"\x00", limit_s=0.5)  # whatever is left to read
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    after = output.decode("utf-8", "replace")
    assert code == 0, after[-2000:]
    assert "Traceback" not in after and "NoMatches" not in after
    with sqlite3.connect(data / "llmrouter.db") as db:
        statuses = db.execute("SELECT role, status FROM messages ORDER BY id").fetchall()
        requests = db.execute("SELECT status FROM requests").fetchall()
    assert statuses == [("user", "ok"), ("assistant", "cancelled")]
    assert requests == [("cancelled",)]


@pytest.mark.slow
async def test_failing_workers_become_notices_and_the_app_goes_on(app: LLMRouterApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "before the disk trouble")
        # Another process breaks the database under the app (a real StorageError, no mock).
        with sqlite3.connect(app.runtime.store.path) as other:
            other.execute("DROP TABLE conversations")
            other.execute("DROP TABLE model_stats")
        chat(pilot).sidebar.reload()  # the sidebar's worker
        await settle(pilot)
        assert app.is_running
        assert notified(app, "Could not list the conversations")
        await pilot.press("f4")  # the analytics worker (a plain Textual worker)
        await settle(pilot)
        assert app.is_running and app.current_mode == "analytics"
        assert notified(app, "Could not finish a background task")
        await pilot.press("f2")
        await send(pilot, "the chat still answers")
        replies = chat(pilot).view.replies
        assert replies[-1].state == "done"
    assert not app.return_code  # the app was never ended by an error


async def test_an_unexpected_error_ends_the_app_with_one_line_not_a_traceback(
    app: LLMRouterApp, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ZeroDivisionError):
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            app.call_later(lambda: 1 / 0)  # a bug in a message handler
            await pilot.pause()
    err = capsys.readouterr().err
    assert "llmrouter-tui stopped after an internal error (ZeroDivisionError" in err
    assert "Traceback" not in err and "locals" not in err
    crash_log = app.runtime.store.logs_dir / "crash.log"
    assert "ZeroDivisionError" in crash_log.read_text(encoding="utf-8")


@pytest.mark.slow
async def test_model_picker_is_readable_at_80x24(app: LLMRouterApp) -> None:
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        rows = [r for r in app.runtime.model_rows() if r["kind"] == "chat"]
        await pilot.press("ctrl+o")
        await settle(pilot)
        assert isinstance(app.screen, ModelPicker)
        seen = set(screen_lines(app))
        for _ in rows:
            await pilot.press("down")
            seen.update(screen_lines(app))
        text = "\n".join(seen)
        for row in rows:
            assert row["id"] in text, f"{row['id']} is not shown in full"
            assert row["status"] in text, f"status {row['status']!r} of {row['id']} is cut"
        assert "groq" in text and "gemini" in text and "128k ctx" in text
        assert "retired → openai/gpt-oss-120b" in text


# ---- keys are never lost or reordered --------------------------------------------------------


@pytest.mark.slow
async def test_key_bursts_keep_their_order(app: LLMRouterApp, fake: FakeUpstream) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = chat(pilot)
        await burst(pilot, *"alpha", "ctrl+j", *"beta", "ctrl+j", *"gamma", "backspace", "x")
        assert screen.prompt.text == "alpha\nbeta\ngammx"
        # Tab leaves the prompt before the letters typed after it arrive
        screen.prompt.clear()
        await burst(pilot, *"abc", "tab", *"def")
        assert screen.prompt.text == "abc"
        assert not screen.prompt.has_focus
        assert fake.requests == []


@pytest.mark.slow
async def test_enter_in_a_burst_is_a_newline_not_a_send(
    app: LLMRouterApp, fake: FakeUpstream
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = chat(pilot)
        # a two-line paste without bracketed paste: nothing is sent, nothing lost
        await burst(pilot, *typed("first line"), "enter", *typed("second line"))
        assert screen.prompt.text == "first line\nsecond line"
        assert fake.requests == [] and screen.view.replies == []
        await pilot.press("enter")  # a real Enter sends both lines
        await settle(pilot)
        assert screen.view.replies[0].user_text == "first line\nsecond line"
        # the same while a reply streams
        screen.prompt.clear()
        await stream_slowly(pilot, fake, "long one")
        screen.prompt.focus()
        await burst(pilot, *typed("more"), "enter", *typed("text"))
        assert screen.prompt.text == "more\ntext"
        assert len(screen.view.replies) == 2 and screen.streaming


@pytest.mark.slow
async def test_escape_and_function_keys_type_nothing(app: LLMRouterApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = chat(pilot)
        await burst(pilot, *"draft")
        await burst(pilot, "escape", "f3", "f2")
        assert app.current_mode == "chat"
        screen.prompt.focus()
        await settle(pilot)
        # F3 / F2 whose `ESC O` and final byte were read separately (a slow terminal or ssh)
        await burst(pilot, "alt+shift+o", "R", "alt+shift+o", "Q", "escape", "alt+shift+o", "P")
        screen.prompt.focus()
        await settle(pilot)
        assert screen.prompt.text == "draft"


# ---- conversations keep everything you wrote -------------------------------------------------


@pytest.mark.slow
async def test_cancel_keeps_the_turn_and_puts_the_prompt_back_selected(
    app: LLMRouterApp, fake: FakeUpstream
) -> None:
    store = app.runtime.store
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = chat(pilot)
        await stream_slowly(pilot, fake, "keep this question")
        await pilot.press("ctrl+c")  # from the prompt box, nothing selected: cancel
        await settle(pilot)
        (reply,) = screen.view.replies
        assert reply.state == "cancelled" and not screen.streaming
        assert screen.prompt.text == "keep this question"
        assert screen.prompt.selected_text == "keep this question"
        assert "typing replaces it" in str(screen.query_one("#prompt-banner").render())
        (conversation,) = store.conversations.list()
        messages = store.conversations.messages(conversation["id"])
        assert [(m["role"], m["status"]) for m in messages] == [
            ("user", "ok"),
            ("assistant", "cancelled"),
        ]
        await pilot.press("x")  # typing replaces the restored prompt, never appends to it
        assert screen.prompt.text == "x"
        assert not screen.query_one("#prompt-banner").display


@pytest.mark.slow
async def test_a_failed_first_turn_is_kept_and_can_be_retried_after_a_restart(
    data_dir: Path, fake: FakeUpstream, quick_config: Path
) -> None:
    fake.add_fault(Fault(kind="status", status=503))  # every model fails
    runtime = Runtime.open(data_dir=data_dir, demo_upstream=fake.base_url)
    app = LLMRouterApp(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "this fails today")
        (reply,) = chat(pilot).view.replies
        assert reply.state == "error"
        conversation_id = chat(pilot).conversation_id
        assert conversation_id is not None
    app.runtime.close()
    fake.clear()

    runtime = Runtime.open(data_dir=data_dir, demo_upstream=fake.base_url)
    app = LLMRouterApp(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = chat(pilot)
        assert screen.conversation_id == conversation_id
        (reply,) = screen.view.replies
        assert reply.state == "error" and reply.user_text == "this fails today"
        error = str(reply.query_one(".reply-error").render())
        assert error.startswith("✗ Request failed") and "HTTP 503" in error
        await pilot.press("escape", "r")  # retry
        await settle(pilot)
        (reply,) = screen.view.replies
        assert reply.state == "done" and "received: this fails today" in reply.text
        messages = app.runtime.store.conversations.messages(conversation_id)
        assert [(m["role"], m["status"]) for m in messages] == [
            ("user", "ok"),
            ("assistant", "error"),
            ("assistant", "ok"),
        ]
        assert messages[1]["parent_id"] == messages[2]["parent_id"] == messages[0]["id"]
    app.runtime.close()


@pytest.mark.slow
async def test_up_and_down_walk_through_earlier_prompts(app: LLMRouterApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = chat(pilot)
        await send(pilot, "one")
        await send(pilot, "two")
        await pilot.press("ctrl+n")
        await settle(pilot)
        await send(pilot, "three")
        prompt = screen.prompt
        assert prompt.text == ""
        walked = []
        for _ in range(3):
            await pilot.press("up")
            walked.append(prompt.text)
        assert walked == ["three", "two", "one"]  # this conversation first, then the others
        await pilot.press("down")
        assert prompt.text == "two"
        await pilot.press("down", "down")
        assert prompt.text == ""
        # with text of its own, ↑ moves the cursor and never replaces what was typed
        await pilot.press(*"mine", "up")
        assert prompt.text == "mine"


@pytest.mark.slow
async def test_edit_and_resend_keeps_the_old_branch(app: LLMRouterApp, fake: FakeUpstream) -> None:
    store = app.runtime.store
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = chat(pilot)
        await send(pilot, "first question")
        await send(pilot, "second question")
        await pilot.press("escape", "up", "E")  # select the first reply, edit its prompt
        assert screen.editing and screen.prompt.text == "first question"
        assert "Editing an earlier prompt" in str(screen.query_one("#prompt-banner").render())
        await pilot.press("end", *typed(" again"), "enter")
        await settle(pilot)
        replies = screen.view.replies
        assert [r.user_text for r in replies] == ["first question again"]
        sent = fake.requests[-1].body["messages"]
        assert [m["content"] for m in sent if m["role"] == "user"] == ["first question again"]
        assert "version 2/2" in meta_of(replies[0])
        conversation_id = screen.conversation_id
        assert conversation_id is not None
        everything = store.conversations.messages(conversation_id)
        assert [m["content"] for m in everything if m["role"] == "user"] == [
            "first question",
            "second question",
            "first question again",
        ]
        # the old branch can be shown again
        await pilot.press("escape", "left_square_bracket")
        await settle(pilot)
        assert [r.user_text for r in screen.view.replies] == [
            "first question",
            "second question",
        ]
        assert "version 1/2" in meta_of(screen.view.replies[0])
        # and it is the branch that continues
        await send(pilot, "third question")
        history = [m["content"] for m in fake.requests[-1].body["messages"] if m["role"] == "user"]
        assert history == ["first question", "second question", "third question"]


@pytest.mark.slow
async def test_ctrl_n_during_a_stream_says_the_reply_was_cancelled(
    app: LLMRouterApp, fake: FakeUpstream
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await stream_slowly(pilot, fake, "a long answer")
        await pilot.press("ctrl+n")
        await settle(pilot)
        screen = chat(pilot)
        assert screen.view.replies == [] and not screen.streaming
        assert notified(app, "Reply cancelled")
        (conversation,) = app.runtime.store.conversations.list()
        statuses = [
            m["status"] for m in app.runtime.store.conversations.messages(conversation["id"])
        ]
        assert statuses == ["ok", "cancelled"]


@pytest.mark.slow
async def test_regenerate_uses_the_model_selected_now_and_keeps_the_old_reply(
    app: LLMRouterApp, fake: FakeUpstream
) -> None:
    other = "gemini-3.5-flash"
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = chat(pilot)
        await send(pilot, "which model answers?")
        first_text = screen.view.replies[0].text
        await app.choose_model(other)
        await pilot.press("escape", "r")
        await settle(pilot)
        (reply,) = screen.view.replies
        assert fake.requests_for(other), "the regeneration went to the model selected now"
        assert f"**{other}**" in reply.text
        meta = meta_of(reply)
        assert f"↻ regenerated with {other} (was {MODEL})" in meta
        assert "version 2/2" in meta
        await pilot.press("left_square_bracket")
        await settle(pilot)
        (reply,) = screen.view.replies
        assert reply.text == first_text and "version 1/2" in meta_of(reply)
        await pilot.press("right_square_bracket")
        await settle(pilot)
        assert f"**{other}**" in screen.view.replies[0].text


def test_conversation_branches_in_the_store(tmp_path: Path) -> None:
    """The core of edit-and-resend and regenerate: siblings, the branch shown, switching."""
    store = Store(tmp_path / "data")
    conversations = store.conversations
    cid = conversations.create("branches")
    u1 = conversations.add_message(cid, "user", "q1")
    a1 = conversations.add_message(cid, "assistant", "a1", status="ok")
    u2 = conversations.add_message(cid, "user", "q2")
    a2 = conversations.add_message(cid, "assistant", "a2")
    a2b = conversations.add_message(cid, "assistant", "a2 again", parent_id=u2)  # regenerated
    u1b = conversations.add_message(cid, "user", "q1 edited", parent_id=None)  # edit and resend
    a1b = conversations.add_message(cid, "assistant", "a1 edited", parent_id=u1b, status="error")
    thread = conversations.thread(cid)
    assert [m["id"] for m in thread] == [u1b, a1b]
    assert thread[0]["alternatives"] == [u1, u1b] and thread[1]["alternatives"] == [a1, a1b]
    assert thread[1]["status"] == "error"
    assert conversations.set_head(cid, a1) == a2b  # the newest leaf of that branch
    assert [m["id"] for m in conversations.thread(cid)] == [u1, a1, u2, a2b]
    assert conversations.thread(cid)[3]["alternatives"] == [a2, a2b]
    assert len(conversations.messages(cid)) == 7  # nothing is ever dropped
    other = conversations.create("other")
    conversations.add_message(other, "user", "elsewhere")
    assert conversations.prompt_history(cid) == ["q1 edited", "q2", "q1", "elsewhere"]
    assert conversations.prompt_history(None)[0] == "elsewhere"
    with pytest.raises(InputError, match="not part of conversation"):
        conversations.add_message(other, "user", "x", parent_id=u1)
    with pytest.raises(InputError, match="status"):
        conversations.add_message(cid, "assistant", "x", status="maybe")
    store.close()


def test_schema_3_links_existing_conversations_as_they_were_shown(tmp_path: Path) -> None:
    path = tmp_path / "llmrouter.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, path, MIGRATIONS[:2])  # a version 2 database
    conn.execute(
        "INSERT INTO conversations (id, title, created_at, updated_at) VALUES ('c', 't', '', '')"
    )
    rows = [("user", "q1"), ("assistant", "a1"), ("assistant", "a1 regenerated"), ("user", "q2")]
    rows += [("assistant", "a2")]
    conn.executemany(
        "INSERT INTO messages (conversation_id, role, content, created_at) VALUES ('c', ?, ?, '')",
        rows,
    )
    conn.close()
    store = Store(tmp_path)
    thread = store.conversations.thread("c")
    assert [m["content"] for m in thread] == ["q1", "a1 regenerated", "q2", "a2"]
    assert len(thread[1]["alternatives"]) == 2 and all(m["status"] == "ok" for m in thread)
    store.close()


# ---- small but visible -----------------------------------------------------------------------


@pytest.mark.slow
async def test_footer_and_status_line_fit_80x24(app: LLMRouterApp) -> None:
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await send(pilot, "a title long enough to reach the ignore-cache switch on the right side")
        lines = screen_lines(app)
        footer, status = lines[-1], lines[-5]
        for entry in ("⏎ Send", "esc Replies", "^q Quit", "f1 Help"):
            assert entry in footer, footer
        assert "No cache ^r" in status and "…" in status
        await pilot.press("escape")
        await settle(pilot)
        footer = screen_lines(app)[-1]
        for entry in ("1-5 Rate", "c Copy", "i Prompt", "^q Quit", "f1 Help"):
            assert entry in footer, footer
        assert footer.count("Rate") == 1
        assert footer.rstrip().endswith("Help") or footer.rstrip().endswith("palette")


@pytest.mark.slow
async def test_spinner_and_elapsed_time_until_the_first_token(
    app: LLMRouterApp, fake: FakeUpstream
) -> None:
    fake.add_fault(Fault(kind="silent"))  # the provider never answers
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "hello?", wait=False)
        await pilot.pause()
        screen = chat(pilot)
        text = screen.activity_text()
        assert re.fullmatch(rf"[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] waiting for {re.escape(MODEL)} · \d+\.\d s ", text)
        assert "waiting for" in screen_text(app)
        await pilot.press("ctrl+c")
        await settle(pilot)
        assert screen.activity_text() == "" and not screen.query_one("#chat-activity").display


@pytest.mark.slow
async def test_one_escape_never_cancels_a_stream(app: LLMRouterApp, fake: FakeUpstream) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = chat(pilot)
        await stream_slowly(pilot, fake, "a long answer")
        await pilot.press("escape")
        assert screen.view.has_focus and screen.streaming
        assert screen.view.selected_reply is screen.view.replies[0]
        await pilot.press("i")  # back to the prompt: still streaming
        assert screen.prompt.has_focus and screen.streaming
        await pilot.press("escape", "escape")  # Esc twice cancels, deliberately
        await settle(pilot)
        assert screen.view.replies[0].state == "cancelled"


@pytest.mark.slow
async def test_picking_a_retired_model_offers_its_replacement_and_warns_once(
    app: LLMRouterApp,
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = chat(pilot)
        await pilot.press("ctrl+o", *RETIRED, "enter")
        await settle(pilot)
        assert isinstance(app.screen, RetiredModelModal)
        assert MODEL in screen_text(app)
        await pilot.press("u")
        await settle(pilot)
        assert screen.model == MODEL
        await pilot.press("ctrl+o", *RETIRED, "enter")
        await settle(pilot)
        await pilot.press("k")  # keep the retired id (old scripts)
        await settle(pilot)
        assert screen.model == RETIRED
        await send(pilot, "first")
        await send(pilot, "second")
        first, second = screen.view.replies
        assert notice_of(first).startswith(f"⚠ {RETIRED} was retired")
        assert notice_of(second) == "", "the retirement notice is shown once per conversation"


@pytest.mark.slow
async def test_templates_focus_enter_and_review(app: LLMRouterApp, fake: FakeUpstream) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f3")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, TemplatesScreen)
        chain = screen.focus_chain
        assert all(isinstance(w, Input | Tree) or w.id == "tpl-use" for w in chain), chain
        # Enter in the filter goes to the first variable without a value
        screen.query_one("#tpl-filter", Input).focus()
        await pilot.press(*"summar", "enter")
        await settle(pilot)
        assert app.focused is screen.query_one("#tplvar-text", Input)  # num_sentences has "3"
        await pilot.press(*typed("Textual is great."), "ctrl+s")
        await settle(pilot)
        review = app.screen
        assert isinstance(review, TemplateReviewModal)
        assert "in 3 sentences: Textual is great." in screen_text(app)
        assert fake.requests == []
        await pilot.press("e")  # edit it in the prompt box first
        await settle(pilot)
        assert app.current_mode == "chat"
        prompt = chat(pilot).prompt
        assert prompt.text.endswith("in 3 sentences: Textual is great.") and prompt.has_focus
        assert fake.requests == []


@pytest.mark.slow
async def test_a_rejected_key_is_shown_even_when_a_fallback_answered(
    data_dir: Path, quick_config: Path
) -> None:
    with FakeUpstream(valid_keys={"groq": "the-real-groq-key"}) as strict:
        runtime = Runtime.open(data_dir=data_dir, demo_upstream=strict.base_url)
        app = LLMRouterApp(runtime)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await send(pilot, "who answers?")
            (reply,) = chat(pilot).view.replies
            assert reply.state == "done" and "gemini" in meta_of(reply)
            assert "Groq rejected GROQ_API_KEY (401) — check it." in notice_of(reply)
            await pilot.press("escape", "d")  # details of any reply, from its meta line
            await settle(pilot)
            details = app.screen
            assert isinstance(details, AttemptsModal)
            text = screen_text(app)
            assert "3 attempts" in text and "401" in text and "gemini-3.5-flash [gemini] ok" in text
            await pilot.press("escape")
        app.runtime.close()


@pytest.mark.slow
async def test_theme_and_sidebar_persist_and_the_sidebar_follows_resizes(
    data_dir: Path, fake: FakeUpstream, quick_config: Path
) -> None:
    runtime = Runtime.open(data_dir=data_dir, demo_upstream=fake.base_url)
    app = LLMRouterApp(runtime)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        sidebar = chat(pilot).sidebar
        assert sidebar.display  # wide enough, never chosen
        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        assert not sidebar.display
        await pilot.resize_terminal(120, 30)
        await settle(pilot)
        assert sidebar.display
        app.theme = "nord"
        await pilot.press("ctrl+b")  # the user's choice: hidden
        await settle(pilot)
        assert not sidebar.display
        await pilot.resize_terminal(130, 30)
        await settle(pilot)
        assert not sidebar.display, "a choice is kept across resizes"
    app.runtime.close()

    runtime = Runtime.open(data_dir=data_dir, demo_upstream=fake.base_url)
    app = LLMRouterApp(runtime)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        assert app.theme == "nord"
        assert not chat(pilot).sidebar.display
    app.runtime.close()


async def test_sidebar_titles_are_cut_with_an_ellipsis(app: LLMRouterApp) -> None:
    title = "A very long conversation title that certainly does not fit in the sidebar"
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.runtime.store.conversations.create(title, MODEL)
        sidebar = chat(pilot).sidebar
        sidebar.reload()
        await settle(pilot)
        lines = screen_lines(app)
        width = sidebar.region.width
        shown = [line[:width] for line in lines if "A very long" in line]
        assert len(shown) == 1 and "…" in shown[0]
        assert not any(line.startswith("title that") for line in lines), "no wrap to column 0"
        assert isinstance(sidebar, ConversationSidebar)


@pytest.mark.slow
async def test_every_input_shows_a_placeholder(app: LLMRouterApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await send(pilot, "something to rate")
        checked = 0
        for keys in (("ctrl+s",), ("escape", "f"), ("ctrl+o",)):
            await pilot.press(*keys)
            await settle(pilot)
            for field in app.screen.query("Input, TextArea"):
                assert isinstance(field, Input | TextArea)
                assert field.placeholder or field.styles.border_top[0], field
                checked += 1
            await pilot.press("escape")
            await settle(pilot)
        await pilot.press("f3")
        await settle(pilot)
        for field in app.screen.query(Input):
            assert field.placeholder, field
            checked += 1
        assert checked >= 6


@pytest.mark.slow
async def test_help_lists_the_scrolling_keys(app: LLMRouterApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f1")
        await settle(pilot)
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        table = help_screen.query_one(DataTable)
        actions = {str(table.get_row_at(i)[-1]) for i in range(table.row_count)}
        assert "Scroll a page (also from the prompt box)" in actions
        assert "Replies: to the top / the end" in actions
        assert "Earlier prompt" in actions


@pytest.mark.slow
async def test_demo_flaky_shows_retries_and_fallback(
    data_dir: Path, quick_config: Path, tmp_path: Path, isolated_env: Path
) -> None:
    with demo_upstream("flaky") as url:
        assert url is not None and url.startswith("http://127.0.0.1:")
    fake = flaky_upstream(seed=4, chunk_delay_s=0.0).start()
    try:
        runtime = Runtime.open(data_dir=data_dir, demo_upstream=fake.base_url)
        app = LLMRouterApp(runtime)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            for n in range(30):
                await send(pilot, f"question {n}")
                if fake.misbehaved:  # type: ignore[attr-defined]
                    break
            assert fake.misbehaved, "flaky mode misbehaves now and then"  # type: ignore[attr-defined]
            reply = chat(pilot).view.replies[-1]
            meta = meta_of(reply)
            assert "attempts" in meta or reply.state == "error", meta
        app.runtime.close()
    finally:
        fake.stop()


def test_command_line_accepts_demo_flaky(
    tmp_path: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, object] = {}

    def fake_run(self: LLMRouterApp) -> None:
        seen["demo"] = self.runtime.settings.demo

    monkeypatch.setattr(LLMRouterApp, "run", fake_run)
    args = main_parser().parse_args(["--demo", "flaky", "--data-dir", str(tmp_path)])
    assert args.demo == "flaky"
    assert main_parser().parse_args(["--demo"]).demo == "on"
    assert main_parser().parse_args([]).demo is None
    assert tui_main.run_app(args) == 0 and seen["demo"] is True


def test_no_worker_bypasses_the_failure_notice() -> None:
    """Every worker of the app's own screens reports failures instead of ending the app."""
    tui = Path(tui_main.__file__).parent
    owned = [
        tui / "screens" / "chat.py",
        tui / "widgets" / "sidebar.py",
        tui / "widgets" / "prompt_input.py",
    ]
    for path in owned:
        assert "@work(" not in path.read_text(encoding="utf-8"), path.name
