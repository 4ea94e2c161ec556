"""The app's writes wait for locks off its event loop.

Another connection holds the database's write lock (as a `--serve` worker or a second app on
the same data directory would while writing). A rating key or a compare vote pressed then is
queued on the store's writer thread: the app keeps handling keys and timers, shows the rating
only once it is written, and after the lock is released the rating (or preference) is in
SQLite, the JSONL log and the CSV log exactly once. A lock held past the busy timeout gives a
notice, not a silent loss.
"""

# Fixtures are imported from test_tui_support; tests take them as same-named arguments.
# ruff: noqa: F811

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_tui_support import (  # noqa: F401 - fixtures
    SIZE,
    chat,
    data_dir,
    fake,
    isolated_env,
    quick_config,
    send,
    settle,
)
from textual.pilot import Pilot
from waiting import until

from llmrouter_tui.core import db
from llmrouter_tui.core.logsinks import read_csv, read_jsonl
from llmrouter_tui.core.runtime import Runtime
from llmrouter_tui.testing.fake_upstream import FakeUpstream
from llmrouter_tui.tui.app import LLMRouterApp
from llmrouter_tui.tui.screens.compare import CompareScreen
from llmrouter_tui.tui.screens.model_picker import ModelPicker

pytestmark = pytest.mark.slow  # every test runs the Textual app


@contextmanager
def write_locked(path: Path) -> Iterator[None]:
    """Hold the database's write lock from a connection of its own until the block ends."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.execute("COMMIT")
        conn.close()


def open_app(data_dir: Path, fake: FakeUpstream) -> LLMRouterApp:
    return LLMRouterApp(Runtime.open(data_dir=data_dir, demo_upstream=fake.base_url))


class Ticks:
    """Counts the turns an app timer gets: an event loop stalled by a lock wait gets none."""

    def __init__(self, app: LLMRouterApp) -> None:
        self.count = 0
        app.set_interval(0.01, self._tick, name="test-ticks")

    def _tick(self) -> None:
        self.count += 1

    async def more(self, ticks: int, what: str) -> None:
        goal = self.count + ticks
        await until(lambda: self.count >= goal, what)


def ratings_of(app: LLMRouterApp, prompt_id: str) -> dict[str, list[int]]:
    """The rating of `prompt_id` as each place holds it: SQLite rows, JSONL and CSV lines."""
    store = app.runtime.store
    conn = sqlite3.connect(store.path)  # WAL: reads while another connection writes
    try:
        rows = conn.execute(
            "SELECT rating FROM rating_events WHERE prompt_id = ? ORDER BY id", (prompt_id,)
        ).fetchall()
    finally:
        conn.close()
    logs = store.logs_dir
    jsonl = read_jsonl(logs / "ratings.jsonl")[0] if (logs / "ratings.jsonl").exists() else []
    csv = read_csv(logs / "ratings.csv")[0] if (logs / "ratings.csv").exists() else []
    return {
        "sqlite": [int(r[0]) for r in rows],
        "jsonl": [int(r["rating"]) for r in jsonl if r["prompt_id"] == prompt_id],
        "csv": [int(r["rating"]) for r in csv if r["prompt_id"] == prompt_id],
    }


def meta_of(widget: object) -> str:
    return str(widget.query_one(".reply-meta").render())  # type: ignore[attr-defined]


async def test_a_rating_waits_for_the_lock_while_the_app_goes_on(
    data_dir: Path, fake: FakeUpstream, quick_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Long enough that the lock is released before SQLite gives up, however slow the machine.
    monkeypatch.setattr(db, "BUSY_TIMEOUT_S", 60.0)
    app = open_app(data_dir, fake)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await send(pilot, "rate me while another process writes")
            screen = chat(pilot)
            (reply,) = screen.view.replies
            assert reply.prompt_id is not None
            await pilot.press("escape")  # to the replies: digits rate the selected one
            assert screen.view.has_focus
            ticks = Ticks(app)
            with write_locked(app.runtime.store.path):
                await pilot.press("4")
                # The loop goes on while the rating waits: timers tick, keys are handled.
                await ticks.more(5, "timer ticks while the rating waits for the lock")
                await pilot.press("escape", *"next")  # back to the prompt, and type there
                await until(lambda: screen.prompt.text == "next", "the keys typed meanwhile")
                assert app.runtime.store.writer.pending >= 1, "the rating is still waiting"
                assert ratings_of(app, reply.prompt_id)["sqlite"] == []
                assert "4/5" not in meta_of(reply), "no confirmation before it is written"
            await settle(pilot)
            assert ratings_of(app, reply.prompt_id) == {"sqlite": [4], "jsonl": [4], "csv": [4]}
            assert "★★★★☆ 4/5" in meta_of(reply)
            assert not [n for n in app._notifications if "not saved" in (n.title or "")]
    finally:
        app.runtime.close()


async def test_a_rating_that_cannot_be_written_says_so(
    data_dir: Path, fake: FakeUpstream, quick_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "BUSY_TIMEOUT_S", 0.05)  # SQLite gives up at once: the failure path
    app = open_app(data_dir, fake)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await send(pilot, "rate me later")
            screen = chat(pilot)
            (reply,) = screen.view.replies
            assert reply.prompt_id is not None
            await pilot.press("escape")
            with write_locked(app.runtime.store.path):
                await pilot.press("2")
                notice = await until(
                    lambda: next(
                        (n for n in app._notifications if n.title == "Rating not saved"), None
                    ),
                    "the notice that the rating was not saved",
                )
            assert "busy" in notice.message and "Try again" in notice.message
            assert "2/5" not in meta_of(reply)
            assert ratings_of(app, reply.prompt_id) == {"sqlite": [], "jsonl": [], "csv": []}
            await pilot.press("3")  # the lock is gone: the next rating goes through
            await settle(pilot)
            assert ratings_of(app, reply.prompt_id) == {"sqlite": [3], "jsonl": [3], "csv": [3]}
            assert "★★★☆☆ 3/5" in meta_of(reply)
    finally:
        app.runtime.close()


async def open_compare(pilot: Pilot[None], text: str) -> CompareScreen:
    screen = chat(pilot)
    screen.prompt.focus()
    screen.prompt.set_text(text)
    await pilot.press("ctrl+k")
    await settle(pilot)
    assert isinstance(pilot.app.screen, ModelPicker)
    await pilot.press("enter")
    await settle(pilot)
    compare = pilot.app.screen
    assert isinstance(compare, CompareScreen)
    await until(lambda: compare.ready, "both replies of the compare")
    return compare


async def test_a_vote_waits_for_the_lock_and_the_compare_closes_once_it_is_written(
    data_dir: Path, fake: FakeUpstream, quick_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "BUSY_TIMEOUT_S", 60.0)
    app = open_app(data_dir, fake)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            compare = await open_compare(pilot, "which one, while locked?")
            first, second = (side.prompt_id for side in compare.shown)
            ticks = Ticks(app)
            with write_locked(app.runtime.store.path):
                await pilot.press("1")
                await ticks.more(5, "timer ticks while the vote waits for the lock")
                await pilot.press("escape")  # would close with "no vote": refused meanwhile
                await until(
                    lambda: any(n.message == "Saving your vote…" for n in app._notifications),
                    "the notice that the vote is being saved",
                )
                assert app.screen is compare, "the compare stays until its vote is written"
            await settle(pilot)
            assert app.screen is not compare
            logs = app.runtime.store.logs_dir
            conn = sqlite3.connect(app.runtime.store.path)
            try:
                (rows,) = conn.execute(
                    "SELECT count(*) FROM preferences WHERE compare_id = ?", (compare.compare_id,)
                ).fetchone()
            finally:
                conn.close()
            assert rows == 1
            for lines in (
                read_jsonl(logs / "preferences.jsonl")[0],
                read_csv(logs / "preferences.csv")[0],
            ):
                assert Counter(r["compare_id"] for r in lines) == {compare.compare_id: 1}
                (line,) = lines
                assert (line["prompt_a"], line["prompt_b"], line["outcome"]) == (
                    first,
                    second,
                    "a",
                )
            turn = chat(pilot).view.replies[-1]
            assert turn.prompt_id == first, "the preferred reply continues the conversation"
    finally:
        app.runtime.close()


async def test_a_new_conversation_waits_for_the_lock_while_the_app_goes_on(
    data_dir: Path, fake: FakeUpstream, quick_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "BUSY_TIMEOUT_S", 60.0)
    app = open_app(data_dir, fake)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            screen = chat(pilot)
            ticks = Ticks(app)
            with write_locked(app.runtime.store.path):
                await send(pilot, "saved once the lock is gone", wait=False)
                await ticks.more(5, "timer ticks while the conversation waits for the lock")
                await pilot.press(*"typed")  # the prompt keeps the text until it is sent
                await until(lambda: screen.prompt.text.endswith("typed"), "the keys typed")
                assert screen.conversation_id is None, "not created while the lock is held"
                await pilot.press("enter")  # a second Enter meanwhile does not send twice
            await settle(pilot)
            (reply,) = screen.view.replies
            assert reply.state == "done"
            store = app.runtime.store
            (conversation,) = store.conversations.list()
            assert conversation["id"] == screen.conversation_id
            messages = store.conversations.messages(conversation["id"])
            assert [(m["role"], m["prompt_id"]) for m in messages] == [
                ("user", None),
                ("assistant", reply.prompt_id),
            ]
            row = store.get_request(reply.prompt_id)
            assert row is not None and row["conversation_id"] == conversation["id"]
    finally:
        app.runtime.close()
