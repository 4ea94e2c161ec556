"""Chat messages from OpenAI-shaped input, and the checks every conversation must pass.

Accepted per message: `role` system | developer (= system) | user | assistant | tool;
`content` a string or an array of `{"type": "text", "text"}` / `{"type": "image_url",
"image_url": {"url", "detail"?}}` parts; assistant `tool_calls`; tool `tool_call_id`;
`name`, the participant's name (OpenAI-style APIs take it; Gemini has no such field).
Errors are InputError naming the field (`messages[2].content[0].image_url.url`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import InputError
from .types import ContentPart, ImagePart, Message, TextPart, ToolCall

_ROLES = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
}
_DATA_URL = re.compile(r"data:(image/[A-Za-z0-9.+-]+);base64,([A-Za-z0-9+/=\s]+)\Z", re.S)


def data_url_parts(url: str) -> tuple[str, str] | None:
    """(mime type, base64 text) of a `data:image/...;base64,...` URL, else None."""
    match = _DATA_URL.match(url)
    return (match.group(1), match.group(2)) if match else None


def _image(part: Mapping[str, Any], where: str) -> ImagePart:
    spec = part.get("image_url")
    if isinstance(spec, str):  # some clients send the URL directly
        spec = {"url": spec}
    if not isinstance(spec, dict) or not isinstance(spec.get("url"), str):
        raise InputError(f"{where}.image_url must be an object with a url")
    url = spec["url"].strip()
    detail = spec.get("detail")
    if detail is not None and detail not in ("auto", "low", "high"):
        raise InputError(f"{where}.image_url.detail must be auto, low or high, got {detail!r}")
    if url.startswith("data:"):
        if data_url_parts(url) is None:
            raise InputError(f"{where}.image_url.url must be a data:image/<type>;base64,<data> URL")
    elif not url.lower().startswith(("http://", "https://")):
        raise InputError(f"{where}.image_url.url must be a data: URL or an http(s) URL")
    return ImagePart(url, detail)


def _parts(value: list[Any], where: str) -> tuple[ContentPart, ...]:
    parts: list[ContentPart] = []
    for index, part in enumerate(value):
        here = f"{where}[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise InputError(f"{here}.text must be a string")
            parts.append(TextPart(text))
        elif kind == "image_url":
            parts.append(_image(part, here))
        else:
            raise InputError(f"{here}.type must be text or image_url, got {kind!r}")
    return tuple(parts)


def _tool_calls(value: Any, where: str) -> tuple[ToolCall, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InputError(f"{where} must be an array of tool calls")
    calls: list[ToolCall] = []
    for index, item in enumerate(value):
        here = f"{where}[{index}]"
        function = item.get("function") if isinstance(item, dict) else None
        if not isinstance(function, dict):
            raise InputError(f"{here} must be {{id, type: function, function: {{name, ...}}}}")
        call_id, name = item.get("id"), function.get("name")
        arguments = function.get("arguments", "")
        if not isinstance(call_id, str) or not call_id:
            raise InputError(f"{here}.id must be a non-empty string")
        if not isinstance(name, str) or not name:
            raise InputError(f"{here}.function.name must be a non-empty string")
        if not isinstance(arguments, str):
            raise InputError(f"{here}.function.arguments must be a string (JSON text)")
        extra = item.get("extra_content")
        google = extra.get("google") if isinstance(extra, dict) else None
        signature = google.get("thought_signature") if isinstance(google, dict) else None
        calls.append(
            ToolCall(call_id, name, arguments, signature if isinstance(signature, str) else None)
        )
    return tuple(calls)


def message_from_openai(item: Any, index: int) -> Message:
    """One OpenAI-shaped message dict (or a Message, returned as is) as a Message."""
    if isinstance(item, Message):
        return item
    where = f"messages[{index}]"
    if not isinstance(item, dict):
        raise InputError(f"{where} must be an object with role and content")
    raw_role = item.get("role")
    role = _ROLES.get(raw_role) if isinstance(raw_role, str) else None
    if role is None:
        raise InputError(
            f"{where}.role must be system, developer, user, assistant or tool, "
            f"got {item.get('role')!r}"
        )
    raw = item.get("content")
    tool_calls = _tool_calls(item.get("tool_calls"), f"{where}.tool_calls")
    content = _content(raw, bool(tool_calls), where)
    if tool_calls and role != "assistant":
        raise InputError(f"{where}.tool_calls is only allowed on assistant messages")
    if role != "user" and any(isinstance(p, ImagePart) for p in content):
        raise InputError(f"{where}.content: images are only allowed in user messages")
    tool_call_id = item.get("tool_call_id")
    if role == "tool":
        if not isinstance(tool_call_id, str) or not tool_call_id:
            raise InputError(f"{where}.tool_call_id must name the tool call this answers")
    else:
        tool_call_id = None
    name = _name(item.get("name"), role, where)
    return Message(role, content, tool_calls, tool_call_id, name)  # type: ignore[arg-type]


def _content(raw: Any, has_tool_calls: bool, where: str) -> str | tuple[ContentPart, ...]:
    """A message's content: text or parts (empty text when it only carries tool calls)."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, list):
        return _parts(raw, f"{where}.content")
    if raw is None and has_tool_calls:
        return ""
    raise InputError(f"{where}.content must be a string or an array of content parts")


def _name(name: Any, role: str, where: str) -> Any:
    """A message's participant name (None when absent), checked."""
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise InputError(f"{where}.name must be a non-empty string (the participant's name)")
    if name is not None and role == "tool":
        raise InputError(f"{where}.name is not taken on tool messages; remove it")
    return name


def check_conversation(messages: Sequence[Message]) -> None:
    """Structure rules: tool results answer earlier calls, the turn ends where a model can go on.

    The last message must be a user message (not empty), a tool result, or an assistant
    message without tool calls (a prefill, which only some models accept; see capabilities).
    """
    if not any(m.role == "user" for m in messages):
        raise InputError("messages must hold at least one user message")
    called: set[str] = set()
    for index, message in enumerate(messages):
        called.update(call.id for call in message.tool_calls)
        if message.role == "tool" and message.tool_call_id not in called:
            raise InputError(
                f"messages[{index}].tool_call_id {message.tool_call_id!r} does not answer any "
                "earlier assistant tool call"
            )
    last = messages[-1]
    if last.role == "system":
        raise InputError("the last message must be a user message, not a system message")
    if last.role == "assistant" and last.tool_calls:
        raise InputError(
            "the last message is an assistant tool call: add the tool results "
            "(role 'tool') before asking for the next reply"
        )
    if last.role == "user" and not last.text.strip() and not last.images:
        raise InputError("the last user message is empty; type something to send")


def prompt_text(messages: Sequence[Message]) -> str:
    """The text recorded as the request's prompt: the last user message (else the last one)."""
    for message in reversed(messages):
        if message.role == "user":
            return message.text
    return messages[-1].text if messages else ""
