"""The reply cache: a stable key for a request to one model, and get/put on `cache_entries`."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .errors import InputError
from .params import GenerationParams
from .types import Message, TextPart, ToolCall, Usage

# json's own string encoder (the one `ensure_ascii=False` uses), so keys stay identical.
_encode_string = json.encoder.encode_basestring


@dataclass(frozen=True, slots=True)
class CachedReply:
    """A complete reply that may be served again for an identical request."""

    text: str
    finish_reason: str | None
    usage: Usage
    model: str
    provider: str | None
    tool_calls: tuple[ToolCall, ...] = ()


def cache_key(
    model: str,
    messages: Sequence[Message | Mapping[str, str]],
    system: str | None,
    temperature: float | None,
    max_tokens: int | None,
    *,
    params: GenerationParams | None = None,
) -> str:
    """SHA-256 hex of the canonical JSON of everything that shapes a reply.

    `model` is the fully qualified candidate (e.g. "groq:openai/gpt-oss-20b"). The key is the
    same in every process and run; 1 and 1.0 as temperature give the same key. The canonical
    text is `json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`
    of {"max_tokens", "messages": [{"content", "role"}], "model", "system", "temperature"},
    written out directly (this runs on every request; keys are already in sorted order).

    Only when set, the payload also holds "params" (GenerationParams.cache_fields: every set
    parameter that changes the answer; not `user`), and a turn holds content parts as
    OpenAI-shaped dicts, "tool_calls", "tool_call_id" and "name": a request that uses none of
    them keeps the key it always had.
    """
    turns = ",".join([_turn(m) for m in messages])
    extra = params.cache_fields() if params is not None else None
    canonical = (
        '{"max_tokens":'
        + ("null" if max_tokens is None else repr(int(max_tokens)))
        + ',"messages":['
        + turns
        + '],"model":'
        + _encode_string(model)
        + (',"params":' + _json(extra) if extra else "")
        + ',"system":'
        + ("null" if system is None else _encode_string(system))
        + ',"temperature":'
        + ("null" if temperature is None else _float(float(temperature)))
        + "}"
    )
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def _turn(message: Message | Mapping[str, str]) -> str:
    if isinstance(message, Mapping):
        role, content = message["role"], message["content"]
    else:
        if (
            not isinstance(message.content, str)
            or message.tool_calls
            or message.tool_call_id
            or message.name is not None
        ):
            return _json(_structured_turn(message))
        role, content = message.role, message.content
    return '{"content":' + _encode_string(content) + ',"role":' + _encode_string(role) + "}"


def _structured_turn(message: Message) -> dict[str, object]:
    content: object = message.content
    if not isinstance(message.content, str):
        content = [
            {"type": "text", "text": p.text}
            if isinstance(p, TextPart)
            else {"type": "image_url", "url": p.url, "detail": p.detail}
            for p in message.content
        ]
    turn: dict[str, object] = {"content": content, "role": message.role}
    if message.tool_calls:
        turn["tool_calls"] = [_call_dict(call) for call in message.tool_calls]
    if message.tool_call_id is not None:
        turn["tool_call_id"] = message.tool_call_id
    if message.name is not None:
        turn["name"] = message.name
    return turn


def _call_dict(call: ToolCall) -> dict[str, object]:
    return {
        "id": call.id,
        "name": call.name,
        "arguments": call.arguments,
        "signature": call.signature,
    }


def _json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _float(value: float) -> str:
    return json.dumps(value)  # repr, or NaN/Infinity exactly as json writes them


_GET = (
    "SELECT text, finish_reason, prompt_tokens, completion_tokens, total_tokens, "
    "tokens_estimated, model, provider, expires_at, tool_calls FROM cache_entries WHERE key = ?"
)
_PUT = (
    "INSERT INTO cache_entries (key, text, finish_reason, prompt_tokens, completion_tokens, "
    "total_tokens, tokens_estimated, model, provider, created_at, expires_at, tool_calls) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (key) DO UPDATE SET text = excluded.text, "
    "finish_reason = excluded.finish_reason, prompt_tokens = excluded.prompt_tokens, "
    "completion_tokens = excluded.completion_tokens, total_tokens = excluded.total_tokens, "
    "tokens_estimated = excluded.tokens_estimated, model = excluded.model, "
    "provider = excluded.provider, created_at = excluded.created_at, "
    "expires_at = excluded.expires_at, tool_calls = excluded.tool_calls"
)
_PURGE = "DELETE FROM cache_entries WHERE expires_at IS NOT NULL AND expires_at <= ?"


def get(conn: sqlite3.Connection, key: str, now: float | None = None) -> CachedReply | None:
    """The unexpired reply stored under `key`, if any."""
    row = conn.execute(_GET, (key,)).fetchone()
    if row is None:
        return None
    expires_at = row[8]
    if expires_at is not None and expires_at <= (time.time() if now is None else now):
        return None
    return CachedReply(
        text=row[0],
        finish_reason=row[1],
        usage=Usage(prompt=row[2], completion=row[3], total=row[4], estimated=bool(row[5])),
        model=row[6],
        provider=row[7],
        tool_calls=tool_calls_from_json(row[9]),
    )


def tool_calls_json(calls: Sequence[ToolCall]) -> str | None:
    """Tool calls as the JSON text stored in SQLite (OpenAI's shape); None when there are none."""
    if not calls:
        return None
    return json.dumps([call.as_dict() for call in calls], ensure_ascii=False)


def tool_calls_from_json(text: str | None) -> tuple[ToolCall, ...]:
    """The inverse of tool_calls_json (unreadable text reads as no calls)."""
    if not text:
        return ()
    try:
        raw = json.loads(text)
    except ValueError:
        return ()
    calls = []
    for item in raw if isinstance(raw, list) else ():
        function = item.get("function") or {}
        google = (item.get("extra_content") or {}).get("google") or {}
        calls.append(
            ToolCall(
                str(item.get("id", "")),
                str(function.get("name", "")),
                str(function.get("arguments", "")),
                google.get("thought_signature"),
            )
        )
    return tuple(calls)


def put(
    conn: sqlite3.Connection,
    key: str,
    reply: CachedReply,
    ttl_s: float,
    now: float | None = None,
) -> None:
    """Store (or replace) `reply` under `key`; `ttl_s` 0 means it never expires."""
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int | float) or ttl_s < 0:
        raise InputError(
            f"cache ttl must be a number of seconds >= 0 (0 = never expires); got {ttl_s!r}"
        )
    at = time.time() if now is None else now
    usage = reply.usage
    conn.execute(
        _PUT,
        (
            key,
            reply.text,
            reply.finish_reason,
            usage.prompt,
            usage.completion,
            usage.total,
            int(usage.estimated),
            reply.model,
            reply.provider,
            at,
            at + ttl_s if ttl_s > 0 else None,
            tool_calls_json(reply.tool_calls),
        ),
    )


def purge_expired(conn: sqlite3.Connection, now: float | None = None) -> int:
    """Delete expired entries; return how many."""
    cur = conn.execute(_PURGE, (time.time() if now is None else now,))
    return cur.rowcount
