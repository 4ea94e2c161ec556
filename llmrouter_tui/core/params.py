"""Generation parameters beyond temperature and max_tokens, as typed data.

`GenerationParams` carries every OpenAI chat-completions parameter the router knows. Each one
is either passed to the provider (mapped for Gemini) or refused by name when the model cannot
honour it (see `capabilities`); none is dropped silently. `params_from_openai` turns the
fields of an OpenAI request body into a `GenerationParams`, refusing bad values by name.

`temperature` and `max_tokens` (`max_completion_tokens`) stay on ChatRequest, as before.

For a front-end speaking OpenAI (the /v1 server), one request is:
    ChatRequest(model=..., messages=<the body's message dicts, as they are>,
                temperature=..., max_tokens=<max_completion_tokens or max_tokens>,
                params=params_from_openai(body))
`Router.prepare` then raises InputError naming a bad message field (`messages[1].content[0]
.image_url.url`), and capabilities.UnsupportedParameterError (HTTP 400; `.parameter` for
OpenAI's error `param`, `.model`) when the requested model cannot honour a parameter. While
streaming, `types.ToolCallDelta.as_openai()` is one `delta.tool_calls` entry; the Result has
`tool_calls` (`ToolCall.as_dict()` is OpenAI's shape) and finish_reason "tool_calls".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

from .errors import InputError

ToolChoiceMode = Literal["auto", "none", "required", "function"]
ResponseFormatType = Literal["text", "json_object", "json_schema"]

#: OpenAI chat-completions fields read by `params_from_openai`.
OPENAI_PARAM_NAMES: frozenset[str] = frozenset(
    {
        "stop",
        "seed",
        "top_p",
        "frequency_penalty",
        "presence_penalty",
        "reasoning_effort",
        "response_format",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "logprobs",
        "top_logprobs",
        "n",
        "user",
    }
)
MAX_STOP_SEQUENCES = 4  # OpenAI's and Groq's limit (Gemini takes 5)


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One function the model may call (OpenAI `tools[i].function`)."""

    name: str
    description: str | None = None
    parameters: Mapping[str, Any] | None = None  # JSON Schema of the arguments object
    strict: bool | None = None

    def as_openai(self) -> dict[str, Any]:
        function: dict[str, Any] = {"name": self.name}
        if self.description is not None:
            function["description"] = self.description
        if self.parameters is not None:
            function["parameters"] = dict(self.parameters)
        if self.strict is not None:
            function["strict"] = self.strict
        return {"type": "function", "function": function}


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """OpenAI `tool_choice`: a mode, or one named function (`mode="function"`)."""

    mode: ToolChoiceMode
    name: str | None = None

    def as_openai(self) -> str | dict[str, Any]:
        if self.mode == "function":
            return {"type": "function", "function": {"name": self.name}}
        return self.mode


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """OpenAI `response_format`: plain text, any JSON object, or JSON matching `schema`."""

    type: ResponseFormatType
    name: str | None = None
    schema: Mapping[str, Any] | None = None
    strict: bool | None = None
    description: str | None = None

    def as_openai(self) -> dict[str, Any]:
        if self.type != "json_schema":
            return {"type": self.type}
        spec: dict[str, Any] = {"name": self.name or "response"}
        if self.description is not None:
            spec["description"] = self.description
        if self.schema is not None:
            spec["schema"] = dict(self.schema)
        if self.strict is not None:
            spec["strict"] = self.strict
        return {"type": "json_schema", "json_schema": spec}


@dataclass(frozen=True, slots=True)
class GenerationParams:
    """Optional parameters of one request; None / () means "not set" (provider default).

    `user` is forwarded where the API has it (Groq, OpenAI-compatible) and never changes the
    answer, so it is not part of the cache key; Gemini has no such field. `logprobs`,
    `top_logprobs` and `n` > 1 are refused by name: replies are streamed, cached and recorded
    as one text, so there is nowhere to return them.
    """

    stop: tuple[str, ...] = ()
    seed: int | None = None
    top_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    reasoning_effort: str | None = None
    response_format: ResponseFormat | None = None
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    n: int | None = None
    user: str | None = None

    def is_empty(self) -> bool:
        return self == _EMPTY

    def cache_fields(self) -> dict[str, Any]:
        """The set parameters that change the answer, as JSON-ready values (for cache keys).

        Empty for a request that sets none of them, so its cache key is what it always was.
        """
        out: dict[str, Any] = {}
        for spec in fields(self):
            name = spec.name
            if name in _NOT_IN_KEY:
                continue
            value = getattr(self, name)
            if value is None or value == ():
                continue
            if name == "tools":
                value = [tool.as_openai() for tool in value]
            elif name in ("tool_choice", "response_format"):
                value = value.as_openai()
            elif name == "stop":
                value = list(value)
            out[name] = value
        return out


_EMPTY = GenerationParams()
# Fields that never change the answer (`user`) or are always refused (the rest).
_NOT_IN_KEY = frozenset({"user", "logprobs", "top_logprobs", "n"})


# ---- parsing OpenAI request fields ------------------------------------------------------------


def _bad(name: str, expected: str, value: Any) -> InputError:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return InputError(f"{name} must be {expected}, got {shown}")


def _number(body: Mapping[str, Any], name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise _bad(name, f"a number from {low:g} to {high:g}", value)
    return float(value)


def _integer(body: Mapping[str, Any], name: str, low: int, high: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _bad(name, f"an integer from {low} to {high}", value)
    return value


def _flag(body: Mapping[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise _bad(name, "true or false", value)
    return value


def _string(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise _bad(name, "a non-empty string", value)
    return value


def _stop(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(s, str) and s for s in items):
        raise _bad("stop", "a non-empty string or an array of them", value)
    if len(items) > MAX_STOP_SEQUENCES:
        raise InputError(f"stop takes at most {MAX_STOP_SEQUENCES} sequences, got {len(items)}")
    return tuple(items)


def _schema(value: Any, name: str) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _bad(name, "a JSON Schema object", value)
    return value


def _tools(value: Any) -> tuple[ToolSpec, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _bad("tools", "an array of function tools", value)
    tools: list[ToolSpec] = []
    for index, item in enumerate(value):
        where = f"tools[{index}]"
        if not isinstance(item, dict) or item.get("type") != "function":
            raise InputError(f'{where} must be {{"type": "function", "function": {{...}}}}')
        function = item.get("function")
        if not isinstance(function, dict):
            raise _bad(f"{where}.function", "an object with a name", function)
        name = _string(function.get("name"), f"{where}.function.name")
        description = function.get("description")
        if description is not None and not isinstance(description, str):
            raise _bad(f"{where}.function.description", "a string", description)
        strict = _flag(function, "strict")
        tools.append(
            ToolSpec(
                name,
                description,
                _schema(function.get("parameters"), f"{where}.function.parameters"),
                strict,
            )
        )
    names = [t.name for t in tools]
    if len(set(names)) != len(names):
        raise InputError("tools: two tools have the same function name")
    return tuple(tools)


def _tool_choice(value: Any, tools: tuple[ToolSpec, ...]) -> ToolChoice | None:
    if value is None:
        return None
    if value in ("auto", "none", "required"):
        choice = ToolChoice(value)
    elif (
        isinstance(value, dict)
        and value.get("type") == "function"
        and isinstance(value.get("function"), dict)
    ):
        choice = ToolChoice("function", _string(value["function"].get("name"), "tool_choice"))
        if choice.name not in {t.name for t in tools}:
            raise InputError(f"tool_choice names {choice.name!r}, which is not in tools")
    else:
        raise _bad("tool_choice", '"auto", "none", "required" or {"type": "function", ...}', value)
    if choice.mode in ("required", "function") and not tools:
        raise InputError(f"tool_choice {value!r} needs tools")
    return choice


def _response_format(value: Any) -> ResponseFormat | None:
    if value is None:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    if kind in ("text", "json_object"):
        return ResponseFormat(kind)
    if kind != "json_schema":
        raise _bad(
            "response_format", '{"type": "text" | "json_object" | "json_schema", ...}', value
        )
    spec = value.get("json_schema")
    if not isinstance(spec, dict):
        raise _bad("response_format.json_schema", "an object with name and schema", spec)
    description = spec.get("description")
    if description is not None and not isinstance(description, str):
        raise _bad("response_format.json_schema.description", "a string", description)
    return ResponseFormat(
        "json_schema",
        name=_string(spec.get("name"), "response_format.json_schema.name"),
        schema=_schema(spec.get("schema"), "response_format.json_schema.schema"),
        strict=_flag(spec, "strict"),
        description=description,
    )


def params_from_openai(body: Mapping[str, Any]) -> GenerationParams:
    """The OPENAI_PARAM_NAMES fields of a chat-completions body; InputError names a bad one.

    Values are checked for shape and range only; whether a model accepts them is decided by
    `capabilities.required_capabilities` / `unmet_need` (the router does both). Fields not in
    OPENAI_PARAM_NAMES are not looked at: the caller decides about them.
    """
    reasoning = body.get("reasoning_effort")
    if reasoning is not None:
        reasoning = _string(reasoning, "reasoning_effort")
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise _bad("user", "a string", user)
    tools = _tools(body.get("tools"))
    choice = _tool_choice(body.get("tool_choice"), tools)
    response_format = _response_format(body.get("response_format"))
    # Values that mean "the default" are stored as not set: many clients send them on every
    # request, and they must neither need a capability nor change the cache key.
    return GenerationParams(
        stop=_stop(body.get("stop")),
        seed=_integer(body, "seed", -(2**63), 2**63 - 1),
        top_p=_number(body, "top_p", 0.0, 1.0),
        frequency_penalty=_number(body, "frequency_penalty", -2.0, 2.0) or None,
        presence_penalty=_number(body, "presence_penalty", -2.0, 2.0) or None,
        reasoning_effort=reasoning,
        response_format=None
        if response_format is not None and response_format.type == "text"
        else response_format,
        tools=tools,
        tool_choice=choice if tools else None,
        parallel_tool_calls=None if _flag(body, "parallel_tool_calls") is not False else False,
        logprobs=_flag(body, "logprobs") or None,
        top_logprobs=_integer(body, "top_logprobs", 0, 20) or None,
        n=None if _integer(body, "n", 1, 128) in (None, 1) else body["n"],
        user=user,
    )
