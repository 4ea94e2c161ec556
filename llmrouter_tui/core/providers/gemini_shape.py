"""A ProviderCall as google-genai `generate_content` arguments (Gemini's request shape).

Mapping from OpenAI terms:
- system: `call.system` and every system message, in order, joined with a blank line into the
  one `systemInstruction` Gemini has (their positions cannot be kept there);
- roles: user -> "user", assistant -> "model"; consecutive tool results -> one "user" turn of
  `functionResponse` parts (named after the call they answer; a JSON-object result is sent as
  it is, anything else as {"output": text});
- content parts -> parts (text stays separate parts); data: images -> `inlineData`;
- assistant tool calls -> `functionCall` parts (arguments parsed from JSON, the thought
  signature sent back);
- stop -> stopSequences, seed, top_p -> topP, penalties -> presence/frequencyPenalty;
- response_format json_object -> responseMimeType "application/json", json_schema -> also
  responseJsonSchema (JSON Schema as given; no lossy conversion to the OpenAPI subset);
- reasoning_effort -> thinkingConfig: thinkingBudget when the catalog gives budgets (Gemini
  2.5), else thinkingLevel;
- tools -> functionDeclarations (parametersJsonSchema); tool_choice auto / none / required /
  a function -> functionCallingConfig AUTO / NONE / ANY / ANY with allowedFunctionNames.
Not sent, having no Gemini field: a tool's `strict`, an image's `detail`, `user`.
google-genai 3.6.1 writes some of these fields in snake_case (parameters_json_schema,
thinking_level, mime_type); the API's JSON parsing takes both spellings.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from ..messages import data_url_parts
from ..types import ImagePart, Message, TextPart
from .base import ProviderCall, ProviderFailure

SYSTEM_SEPARATOR = "\n\n"
_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY", "function": "ANY"}


def _bad(message: str) -> ProviderFailure:
    return ProviderFailure("bad_request", message)


def _image(part: ImagePart, fetched: Mapping[str, tuple[str, bytes]]) -> Any:
    from google.genai import types

    parsed = data_url_parts(part.url)
    if parsed is not None:
        mime, text = parsed
        try:
            data = base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            raise _bad("an image data: URL is not valid base64") from None
    elif part.url in fetched:
        mime, data = fetched[part.url]
    else:  # pragma: no cover - the provider fetches every http(s) image first
        raise _bad(f"image {part.url[:80]!r} was not fetched")
    return types.Part(inline_data=types.Blob(mime_type=mime, data=data))


def _parts(message: Message, fetched: Mapping[str, tuple[str, bytes]]) -> list[Any]:
    from google.genai import types

    if isinstance(message.content, str):
        if not message.content and message.tool_calls:
            return []  # a turn of tool calls only
        return [types.Part(text=message.content)]
    parts = []
    for part in message.content:
        if isinstance(part, TextPart):
            parts.append(types.Part(text=part.text))
        else:
            parts.append(_image(part, fetched))
    return parts


def _arguments(text: str, name: str) -> dict[str, Any]:
    try:
        value = json.loads(text) if text.strip() else {}
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise _bad(f"the arguments of tool call {name!r} are not a JSON object; Gemini needs one")
    return value


def _response(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {"output": text}
    return value if isinstance(value, dict) else {"output": value}


def _contents(call: ProviderCall, fetched: Mapping[str, tuple[str, bytes]]) -> list[Any]:
    from google.genai import types

    contents: list[Any] = []
    names: dict[str, str] = {}  # tool call id -> function name
    pending: list[Any] = []  # functionResponse parts of consecutive tool messages

    def flush() -> None:
        if pending:
            contents.append(types.Content(role="user", parts=list(pending)))
            pending.clear()

    for message in call.messages:
        if message.role == "system":
            continue
        if message.role == "tool":
            name = names.get(message.tool_call_id or "")
            if name is None:
                raise _bad(f"tool result {message.tool_call_id!r} answers no earlier tool call")
            response = types.FunctionResponse(name=name, response=_response(message.text))
            pending.append(types.Part(function_response=response))
            continue
        flush()
        parts = _parts(message, fetched)
        for tool_call in message.tool_calls:
            names[tool_call.id] = tool_call.name
            function = types.FunctionCall(
                name=tool_call.name, args=_arguments(tool_call.arguments, tool_call.name)
            )
            signature = None
            if tool_call.signature:
                try:
                    signature = base64.b64decode(tool_call.signature)
                except (binascii.Error, ValueError):
                    signature = None  # not ours: Gemini then answers as without one
            parts.append(types.Part(function_call=function, thought_signature=signature))
        role = "model" if message.role == "assistant" else "user"
        contents.append(types.Content(role=role, parts=parts))
    flush()
    return contents


def _system(call: ProviderCall) -> str | None:
    texts = [call.system] if call.system else []
    texts.extend(m.text for m in call.messages if m.role == "system")
    return SYSTEM_SEPARATOR.join(texts) if texts else None


def _tools(call: ProviderCall) -> dict[str, Any]:
    from google.genai import types

    params = call.params
    if not params.tools:
        return {}
    declarations = [
        types.FunctionDeclaration(
            name=tool.name,
            description=tool.description,
            parameters_json_schema=dict(tool.parameters) if tool.parameters is not None else None,
        )
        for tool in params.tools
    ]
    out: dict[str, Any] = {
        "tools": [types.Tool(function_declarations=declarations)],
        # Declarations only: google-genai never runs functions itself here.
        "automatic_function_calling": types.AutomaticFunctionCallingConfig(disable=True),
    }
    choice = params.tool_choice
    if choice is not None:
        config = types.FunctionCallingConfig(
            mode=_MODES[choice.mode],  # type: ignore[arg-type]
            allowed_function_names=[choice.name] if choice.name else None,
        )
        out["tool_config"] = types.ToolConfig(function_calling_config=config)
    return out


def _generation(call: ProviderCall) -> dict[str, Any]:
    from google.genai import types

    params = call.params
    out: dict[str, Any] = {}
    if params.stop:
        out["stop_sequences"] = list(params.stop)
    for ours, theirs in (
        ("seed", "seed"),
        ("top_p", "top_p"),
        ("presence_penalty", "presence_penalty"),
        ("frequency_penalty", "frequency_penalty"),
    ):
        value = getattr(params, ours)
        if value is not None:
            out[theirs] = value
    response_format = params.response_format
    if response_format is not None and response_format.type != "text":
        out["response_mime_type"] = "application/json"
        if response_format.type == "json_schema" and response_format.schema is not None:
            out["response_json_schema"] = dict(response_format.schema)
    effort = params.reasoning_effort
    if effort is not None:
        budget = call.capabilities.thinking_budget(effort)
        if budget is not None:
            out["thinking_config"] = types.ThinkingConfig(thinking_budget=budget)
        else:
            out["thinking_config"] = types.ThinkingConfig(thinking_level=effort.upper())  # type: ignore[arg-type]
    return out


def gemini_request(
    call: ProviderCall, fetched: Mapping[str, tuple[str, bytes]] | None = None
) -> dict[str, Any]:
    """`generate_content_stream` keyword arguments for `call`; `fetched` maps each http(s)
    image URL to its (mime type, bytes). Raises ProviderFailure("bad_request") for input
    Gemini cannot take (tool-call arguments that are not a JSON object)."""
    from google.genai import types

    config = types.GenerateContentConfig(
        system_instruction=_system(call),
        temperature=call.temperature,
        max_output_tokens=call.max_tokens,
        **_generation(call),
        **_tools(call),
    )
    return {"model": call.model, "contents": _contents(call, fetched or {}), "config": config}
