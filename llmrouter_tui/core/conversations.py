"""Saved chats for the TUI: conversations with their settings and ordered messages."""

from __future__ import annotations

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
_SETTINGS = ("title", "model", "system", "temperature", "max_tokens")
_COLUMNS = "id, title, model, system, temperature, max_tokens, created_at, updated_at"
_KEYS = tuple(c.strip() for c in _COLUMNS.split(","))
_MESSAGE_KEYS = ("id", "role", "content", "prompt_id", "created_at")


def _contains(haystack: str | None, needle: str) -> bool:
    # Python casefold: case-insensitive beyond ASCII, unlike SQLite's LIKE.
    return haystack is not None and needle in haystack.casefold()


def register_functions(conn: sqlite3.Connection) -> None:
    """Add the SQL functions conversation search needs to `conn`."""
    conn.create_function("llmr_contains", 2, _contains, deterministic=True)


UseConnection = Callable[[str], AbstractContextManager[sqlite3.Connection]]


class Conversations:
    """Conversation CRUD over the Store's connection.

    `use(doing)` is the Store's guard: it holds the Store's lock, yields the connection and
    turns SQLite failures into StorageError.
    """

    def __init__(self, use: UseConnection) -> None:
        self._use = use

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
        with self._use("update conversations in") as conn:
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
        with self._use("update conversations in") as conn:
            cur = conn.execute(
                f"UPDATE conversations SET {assignments} WHERE id = ?",
                (*fields.values(), conversation_id),
            )
        if cur.rowcount == 0:
            raise _unknown(conversation_id)

    def delete(self, conversation_id: str) -> None:
        """Remove a conversation and its messages (recorded requests stay)."""
        with self._use("update conversations in") as conn:
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
        self, conversation_id: str, role: str, content: str, prompt_id: str | None = None
    ) -> int:
        """Append a message (and mark the conversation updated); return the message id."""
        if role not in _ROLES:
            raise InputError(f"message role must be one of {', '.join(_ROLES)}; got {role!r}")
        if not isinstance(content, str):
            raise InputError(f"message content must be text; got {type(content).__name__}")
        now = utc_now_iso()
        with self._use("update conversations in") as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                cur = conn.execute(
                    "UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id)
                )
                if cur.rowcount == 0:
                    raise _unknown(conversation_id)
                cur = conn.execute(
                    "INSERT INTO messages (conversation_id, role, content, prompt_id, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (conversation_id, role, content, prompt_id, now),
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        return int(cur.lastrowid or 0)

    def messages(self, conversation_id: str) -> list[dict[str, Any]]:
        """The conversation's messages in order."""
        with self._use("read conversations from") as conn:
            exists = conn.execute(
                "SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)
            ).fetchone()
            rows = conn.execute(
                "SELECT id, role, content, prompt_id, created_at FROM messages "
                "WHERE conversation_id = ? ORDER BY id",
                (conversation_id,),
            ).fetchall()
        if exists is None:
            raise _unknown(conversation_id)
        return [dict(zip(_MESSAGE_KEYS, row, strict=True)) for row in rows]

    def last_conversation_id(self) -> str | None:
        """The most recently updated conversation, if any."""
        with self._use("read conversations from") as conn:
            row = conn.execute(
                "SELECT id FROM conversations ORDER BY updated_at DESC, rowid DESC LIMIT 1"
            ).fetchone()
        return None if row is None else row[0]


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
