"""Saved chats for the TUI: conversations with their settings and ordered messages."""

from __future__ import annotations

import builtins
import sqlite3
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from .db import utc_now_iso
from .errors import InputError


class UnknownConversationError(InputError):
    """A conversation id that does not exist (or was deleted)."""

    http_status = 404


_ROLES = ("system", "user", "assistant")
MESSAGE_STATUSES = ("ok", "error", "cancelled")
_SETTINGS = ("title", "model", "system", "temperature", "max_tokens")
_COLUMNS = "id, title, model, system, temperature, max_tokens, created_at, updated_at"
_KEYS = tuple(c.strip() for c in _COLUMNS.split(","))
_MESSAGE_COLUMNS = "id, role, content, prompt_id, created_at, parent_id, status"
_MESSAGE_KEYS = tuple(c.strip() for c in _MESSAGE_COLUMNS.split(","))
PROMPT_HISTORY_LIMIT = 200


class _Head:
    """Default of `add_message(parent_id=…)`: follow the conversation's current branch."""


HEAD = _Head()


def _contains(haystack: str | None, needle: str) -> bool:
    # Python casefold: case-insensitive beyond ASCII, unlike SQLite's LIKE.
    return haystack is not None and needle in haystack.casefold()


def register_functions(conn: sqlite3.Connection) -> None:
    """Add the SQL functions conversation search needs to `conn`."""
    conn.create_function("llmr_contains", 2, _contains, deterministic=True)


UseConnection = Callable[[str], AbstractContextManager[sqlite3.Connection]]


class Conversations:
    """Conversation CRUD over the Store's connection.

    `use(doing)` and `write(doing)` are the Store's guards for its read and write
    connections: each holds that connection's lock, yields it and turns SQLite failures into
    StorageError. Writes go through the write connection, so a write waiting for another
    process's lock never holds up readers (the router's cache and evidence reads).
    """

    def __init__(self, use: UseConnection, write: UseConnection | None = None) -> None:
        self._use = use
        self._write = write or use

    def create(
        self,
        title: str,
        model: str | None = None,
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> str:
        """Start a conversation; return its id (uuid4 hex)."""
        fields = _check_settings(
            {
                "title": title,
                "model": model,
                "system": system,
                "temperature": temperature,
                "max_tokens": max_tokens,
            }
        )
        conv_id = uuid.uuid4().hex
        now = utc_now_iso()
        with self._write("update conversations in") as conn:
            conn.execute(
                f"INSERT INTO conversations ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (conv_id, *(fields[k] for k in _SETTINGS), now, now),
            )
        return conv_id

    def list(self, search: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """Conversations, most recently updated first, optionally filtered by `search`.

        `search` matches the title or any message text, case-insensitively. Each item also
        carries `message_count`.
        """
        sql = (
            f"SELECT {_COLUMNS}, (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id)"
            " FROM conversations c"
        )
        params: list[Any] = []
        if search:
            needle = search.casefold()
            sql += (
                " WHERE llmr_contains(c.title, ?) OR EXISTS (SELECT 1 FROM messages m"
                " WHERE m.conversation_id = c.id AND llmr_contains(m.content, ?))"
            )
            params += [needle, needle]
        sql += " ORDER BY c.updated_at DESC, c.rowid DESC LIMIT ?"
        params.append(max(0, int(limit)))
        with self._use("read conversations from") as conn:
            rows = conn.execute(sql, params).fetchall()
        return [
            {**dict(zip(_KEYS, row[:-1], strict=True)), "message_count": row[-1]} for row in rows
        ]

    def get(self, conversation_id: str) -> dict[str, Any]:
        """One conversation's fields (without messages)."""
        with self._use("read conversations from") as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM conversations WHERE id = ?", (conversation_id,)
            ).fetchone()
        if row is None:
            raise _unknown(conversation_id)
        return dict(zip(_KEYS, row, strict=True))

    def rename(self, conversation_id: str, title: str) -> None:
        """Change the title."""
        self.update_settings(conversation_id, title=title)

    def update_settings(self, conversation_id: str, **fields: Any) -> None:
        """Change any of title, model, system, temperature, max_tokens."""
        unknown = sorted(set(fields) - set(_SETTINGS))
        if unknown:
            raise InputError(
                f"unknown conversation setting(s): {', '.join(unknown)}; "
                f"allowed: {', '.join(_SETTINGS)}"
            )
        if not fields:
            self.get(conversation_id)
            return
        fields = _check_settings(fields)
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self._write("update conversations in") as conn:
            cur = conn.execute(
                f"UPDATE conversations SET {assignments} WHERE id = ?",
                (*fields.values(), conversation_id),
            )
        if cur.rowcount == 0:
            raise _unknown(conversation_id)

    def delete(self, conversation_id: str) -> None:
        """Remove a conversation and its messages (recorded requests stay)."""
        with self._write("update conversations in") as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("DELETE FROM messages WHERE conversation_id = ?", (conversation_id,))
                cur = conn.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
                if cur.rowcount == 0:
                    raise _unknown(conversation_id)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def add_message(
        self,
        conversation_id: str,
        role: str,
        content: str,
        prompt_id: str | None = None,
        *,
        parent_id: int | _Head | None = HEAD,
        status: str = "ok",
    ) -> int:
        """Append a message and make it the head of the conversation; return its id.

        By default the message follows the current head (the last message of the branch
        shown). `parent_id` starts a branch instead: an edited prompt is a sibling of the
        prompt it replaces, a regenerated reply a sibling of the reply (None: a first
        message). `status` marks a reply that failed or was cancelled ('error', 'cancelled').
        """
        if role not in _ROLES:
            raise InputError(f"message role must be one of {', '.join(_ROLES)}; got {role!r}")
        if not isinstance(content, str):
            raise InputError(f"message content must be text; got {type(content).__name__}")
        if status not in MESSAGE_STATUSES:
            raise InputError(
                f"message status must be one of {', '.join(MESSAGE_STATUSES)}; got {status!r}"
            )
        now = utc_now_iso()
        with self._write("update conversations in") as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    "SELECT head_id FROM conversations WHERE id = ?", (conversation_id,)
                ).fetchone()
                if row is None:
                    raise _unknown(conversation_id)
                parent = row[0] if isinstance(parent_id, _Head) else parent_id
                if parent is not None:
                    _check_member(conn, conversation_id, parent)
                cur = conn.execute(
                    "INSERT INTO messages (conversation_id, role, content, prompt_id, created_at,"
                    " parent_id, status) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (conversation_id, role, content, prompt_id, now, parent, status),
                )
                message_id = int(cur.lastrowid or 0)
                conn.execute(
                    "UPDATE conversations SET updated_at = ?, head_id = ? WHERE id = ?",
                    (now, message_id, conversation_id),
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return message_id

    def messages(self, conversation_id: str) -> builtins.list[dict[str, Any]]:
        """Every message of the conversation, in the order written (all branches).

        Each has id, role, content, prompt_id, created_at, parent_id and status.
        `thread()` gives only the branch shown.
        """
        with self._use("read conversations from") as conn:
            exists = conn.execute(
                "SELECT head_id FROM conversations WHERE id = ?", (conversation_id,)
            ).fetchone()
            rows = conn.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? ORDER BY id",
                (conversation_id,),
            ).fetchall()
        if exists is None:
            raise _unknown(conversation_id)
        return [dict(zip(_MESSAGE_KEYS, row, strict=True)) for row in rows]

    def thread(self, conversation_id: str) -> builtins.list[dict[str, Any]]:
        """The branch shown: the messages from the first one to the head, in order.

        Each message also carries `alternatives`: the ids of every version of it (itself
        included, oldest first). For a reply these are all the replies given to any version
        of the same prompt (regenerated, or after an edit and resend); for a prompt, all
        the prompts sent at that point of the conversation.
        """
        with self._use("read conversations from") as conn:
            row = conn.execute(
                "SELECT head_id FROM conversations WHERE id = ?", (conversation_id,)
            ).fetchone()
            if row is None:
                raise _unknown(conversation_id)
            rows = conn.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? ORDER BY id",
                (conversation_id,),
            ).fetchall()
        messages = {r[0]: dict(zip(_MESSAGE_KEYS, r, strict=True)) for r in rows}
        path: list[dict[str, Any]] = []
        seen: set[int] = set()
        current = row[0]
        while current is not None and current in messages and current not in seen:
            seen.add(current)
            path.append(messages[current])
            current = messages[current]["parent_id"]
        path.reverse()
        children: dict[int | None, list[int]] = {}
        for message in messages.values():
            children.setdefault(message["parent_id"], []).append(message["id"])
        for message in path:
            siblings = children.get(message["parent_id"], [])
            if message["role"] == "assistant":
                # replies to every version of this prompt
                prompt = messages.get(message["parent_id"] or -1)
                prompts = children.get(prompt["parent_id"], []) if prompt else []
                versions = [
                    child
                    for p in prompts
                    if messages[p]["role"] == "user"
                    for child in children.get(p, [])
                    if messages[child]["role"] == "assistant"
                ]
                message["alternatives"] = sorted(versions) or [message["id"]]
            else:
                same = [s for s in siblings if messages[s]["role"] == message["role"]]
                message["alternatives"] = same or [message["id"]]
        return path

    def set_head(self, conversation_id: str, message_id: int) -> int:
        """Show the branch through `message_id`: its newest descendant becomes the head.

        Returns the new head's id. Nothing is deleted: every branch stays.
        """
        with self._write("update conversations in") as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if (
                    conn.execute(
                        "SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)
                    ).fetchone()
                    is None
                ):
                    raise _unknown(conversation_id)
                _check_member(conn, conversation_id, message_id)
                head = message_id
                while True:
                    child = conn.execute(
                        "SELECT max(id) FROM messages WHERE conversation_id = ? AND parent_id = ?",
                        (conversation_id, head),
                    ).fetchone()[0]
                    if child is None:
                        break
                    head = int(child)
                conn.execute(
                    "UPDATE conversations SET head_id = ? WHERE id = ?", (head, conversation_id)
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return head

    def prompt_history(
        self, conversation_id: str | None = None, limit: int = PROMPT_HISTORY_LIMIT
    ) -> builtins.list[str]:
        """Prompts written earlier, newest first, each once: those of `conversation_id` first,
        then those of every other conversation."""
        with self._use("read conversations from") as conn:
            own = (
                conn.execute(
                    "SELECT content FROM messages WHERE conversation_id = ? AND role = 'user'"
                    " ORDER BY id DESC LIMIT ?",
                    (conversation_id, max(0, int(limit))),
                ).fetchall()
                if conversation_id
                else []
            )
            others = conn.execute(
                "SELECT content FROM messages WHERE role = 'user' AND conversation_id IS NOT ?"
                " ORDER BY id DESC LIMIT ?",
                (conversation_id, max(0, int(limit))),
            ).fetchall()
        out: list[str] = []
        seen: set[str] = set()
        for (text,) in [*own, *others]:
            if text.strip() and text not in seen:
                seen.add(text)
                out.append(text)
        return out[: max(0, int(limit))]

    def last_conversation_id(self) -> str | None:
        """The most recently updated conversation, if any."""
        with self._use("read conversations from") as conn:
            row = conn.execute(
                "SELECT id FROM conversations ORDER BY updated_at DESC, rowid DESC LIMIT 1"
            ).fetchone()
        return None if row is None else row[0]


def _check_member(conn: sqlite3.Connection, conversation_id: str, message_id: int) -> None:
    row = conn.execute(
        "SELECT 1 FROM messages WHERE id = ? AND conversation_id = ?", (message_id, conversation_id)
    ).fetchone()
    if row is None:
        raise InputError(f"message {message_id!r} is not part of conversation {conversation_id!r}")


def _unknown(conversation_id: str) -> UnknownConversationError:
    return UnknownConversationError(
        f"no conversation with id {conversation_id!r}; it may have been deleted"
    )


def _check_settings(fields: dict[str, Any]) -> dict[str, Any]:
    """Validated copies of conversation settings, or InputError naming the bad one."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if name == "title":
            if not isinstance(value, str):
                raise InputError(f"conversation title must be text; got {value!r}")
            value = value.strip() or "Untitled"
        elif name in ("model", "system"):
            if value is not None and not isinstance(value, str):
                raise InputError(f"conversation {name} must be text or None; got {value!r}")
        elif name == "temperature":
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise InputError(f"temperature must be a number or None; got {value!r}")
                value = float(value)
        elif (
            name == "max_tokens"
            and value is not None
            and (isinstance(value, bool) or not isinstance(value, int) or value <= 0)
        ):
            raise InputError(f"max_tokens must be a positive whole number; got {value!r}")
        out[name] = value
    return out
