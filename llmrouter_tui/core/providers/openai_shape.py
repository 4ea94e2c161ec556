"""Request, tool-call and usage shapes shared by OpenAI-style APIs (Groq, OpenAI-compatible)."""

from __future__ import annotations

import json
from typing import Any

from ..types import ImagePart, Message, TextPart, ToolCallDelta, Usage
from .base import ProviderCall, ProviderFailure, TextChunk
from .classify import failure_from_inband, read_error

# GenerationParams fields sent under their own names, as they are.
_PLAIN_PARAMS = (
    "seed",
    "top_p",
    "frequency_penalty",
    "presence_penalty",
    "reasoning_effort",
    "parallel_tool_calls",
    "user",
)


def openai_message(message: Message) -> dict[str, Any]:
    """One message in OpenAI's shape: content parts stay an array, tool calls and results
    keep their ids. A plain text turn is exactly {"role", "content"}."""
    content: Any = message.content
    if not isinstance(content, str):
        content = [_part(p) for p in content]
    out: dict[str, Any] = {"role": message.role, "content": content}
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in message.tool_calls
        ]
        if content == "":
            out["content"] = None  # what OpenAI clients send with tool calls and no text
    if message.role == "tool":
        out["tool_call_id"] = message.tool_call_id
    if message.name is not None:
        out["name"] = message.name
    return out


def _part(part: TextPart | ImagePart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    image: dict[str, Any] = {"url": part.url}
    if part.detail is not None:
        image["detail"] = part.detail
    return {"type": "image_url", "image_url": image}


def openai_messages(call: ProviderCall) -> list[dict[str, Any]]:
    """Chat messages in OpenAI's shape, `call.system` first; system messages in
    `call.messages` stay where they are."""
    messages: list[dict[str, Any]] = (
        [{"role": "system", "content": call.system}] if call.system else []
    )
    messages.extend(openai_message(m) for m in call.messages)
    return messages


def openai_params(call: ProviderCall) -> dict[str, Any]:
    """Every set GenerationParams field as an OpenAI request field (temperature and
    max_tokens are sent by each provider under its own name)."""
    params = call.params
    out: dict[str, Any] = {}
    if params.stop:
        out["stop"] = list(params.stop)
    for name in _PLAIN_PARAMS:
        value = getattr(params, name)
        if value is not None:
            out[name] = value
    if params.response_format is not None:
        out["response_format"] = params.response_format.as_openai()
    if params.tools:
        out["tools"] = [tool.as_openai() for tool in params.tools]
    if params.tool_choice is not None:
        out["tool_choice"] = params.tool_choice.as_openai()
    return out


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)


def tool_call_deltas(raw: Any) -> list[ToolCallDelta]:
    """The `delta.tool_calls` entries of one streamed choice (SDK objects or dicts)."""
    deltas: list[ToolCallDelta] = []
    for position, item in enumerate(raw or ()):
        function = _get(item, "function")
        index = _get(item, "index")
        deltas.append(
            ToolCallDelta(
                index=index if isinstance(index, int) else position,
                id=_get(item, "id") or None,
                name=(_get(function, "name") or None) if function is not None else None,
                arguments=(_get(function, "arguments") or "") if function is not None else "",
            )
        )
    return deltas


def finish_reason(raw: str) -> str:
    """OpenAI's deprecated `function_call` finish is a tool call."""
    return "tool_calls" if raw == "function_call" else raw


def usage_from_openai(raw: Any) -> Usage | None:
    """Usage from an OpenAI-style usage object or dict, or None when absent."""
    if raw is None:
        return None

    def get(key: str) -> Any:
        return raw.get(key) if isinstance(raw, dict) else getattr(raw, key, None)

    prompt, completion, total = get("prompt_tokens"), get("completion_tokens"), get("total_tokens")
    if prompt is None and completion is None:
        return None
    prompt, completion = int(prompt or 0), int(completion or 0)
    return Usage(prompt, completion, int(total or prompt + completion), estimated=False)


def json_or_text(raw: bytes | str) -> Any:
    """A body or event data as JSON when it is JSON, else as text."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


def whole_reply(body: Any) -> tuple[list[TextChunk | ToolCallDelta], str, Usage | None]:
    """(text and tool calls, finish reason, usage) of a whole chat.completion body, for a
    server that answered a stream request with one JSON reply; raises the failure it
    reports instead (LM Studio answers `{"error": "…"}` with HTTP 200). A parsed JSON reply
    is complete by construction, so a missing finish reason means "stop" ("tool_calls" when
    the message calls tools)."""
    error = read_error(body)
    if error is not None:
        raise failure_from_inband(error, "error reply (HTTP 200)", got_output=False)
    if not isinstance(body, dict):
        raise ProviderFailure("malformed", "the reply is neither an event stream nor JSON")
    choices = body.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else None
    if not isinstance(choice, dict):
        raise ProviderFailure("malformed", "the JSON reply has no choices")
    message = choice.get("message")
    message = message if isinstance(message, dict) else {}
    items: list[TextChunk | ToolCallDelta] = []
    text = _content_text(message.get("content"))
    if text:
        items.append(TextChunk(text))
    calls = tool_call_deltas(message.get("tool_calls"))
    items.extend(calls)
    raw_finish = choice.get("finish_reason")
    finish = finish_reason(raw_finish) if raw_finish else ("tool_calls" if calls else "stop")
    x_groq = body.get("x_groq")
    usage = usage_from_openai(x_groq.get("usage") if isinstance(x_groq, dict) else None)
    return items, finish, usage or usage_from_openai(body.get("usage"))


def _content_text(content: Any) -> str:
    """A message's content as text: a string, or the text of its content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
    return ""


def is_json_reply(content_type: str | None) -> bool:
    """Does a response's content type say it is one JSON document (not an event stream)?"""
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    return mime == "application/json" or mime.endswith("+json")
