"""Request, tool-call and usage shapes shared by OpenAI-style APIs (Groq, OpenAI-compatible)."""

from __future__ import annotations

from typing import Any

from ..types import ImagePart, Message, TextPart, ToolCallDelta, Usage
from .base import ProviderCall

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
    get = raw.get if isinstance(raw, dict) else lambda k: getattr(raw, k, None)
    prompt, completion, total = get("prompt_tokens"), get("completion_tokens"), get("total_tokens")
    if prompt is None and completion is None:
        return None
    prompt, completion = int(prompt or 0), int(completion or 0)
    return Usage(prompt, completion, int(total or prompt + completion), estimated=False)
