"""What the fake upstream does with tools, JSON mode, images and parameters.

Scripted, deterministic behaviour (the same for the three wire protocols):
- Tools: with tools in the request, a last user message containing "call tool" makes the model
  call the first tool; "call all tools" calls every tool at once (one only when the request
  says `parallel_tool_calls: false`). `tool_choice` / Gemini `functionCallingConfig` are
  honoured: none never calls, required / ANY always calls, a named function calls that one.
  Arguments are example values built from the tool's JSON Schema.
- Tool results: when the last turn holds tool results the model answers in text, quoting them:
  "Tool results: <name or id> -> <result>; …".
- JSON mode (`response_format` json_object / json_schema, Gemini `responseMimeType`
  "application/json"): the reply is a JSON value (an example of the schema if one is given).
- Images arrive as "[image <mime> <n> bytes]" in the flattened text (see fake_payloads).
- Refusals as the real APIs document them: Groq answers 400 to `n` > 1 (SDK docs: "only n=1
  is supported"), to `reasoning_effort: "none"` on openai/gpt-oss-120b (third-party report)
  and to image parts for models without image input.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from typing import Any

# Groq models that take image input (provider-facts: qwen/qwen3.6-27b has text and image input).
GROQ_VISION_MODELS = frozenset({"qwen/qwen3.6-27b"})
_MAX_DEPTH = 6


@dataclass(slots=True)
class FakeToolCall:
    id: str
    name: str
    arguments: dict[str, Any]

    @property
    def arguments_text(self) -> str:
        return json.dumps(self.arguments, separators=(",", ":"), ensure_ascii=False)


@dataclass(slots=True)
class Plan:
    """What to answer: tool calls, a text override (JSON or tool follow-up), or the default."""

    tool_calls: list[FakeToolCall] = field(default_factory=list)
    text: str | None = None


# --------------------------------------------------------------------------- example values


def example_value(schema: Any, depth: int = 0) -> Any:
    """A deterministic value matching a (simple) JSON Schema."""
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return "value"
    if "enum" in schema and isinstance(schema["enum"], list) and schema["enum"]:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return example_value(options[0], depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if isinstance(kind, str):
        kind = kind.lower()  # Gemini's OpenAPI schemas spell types in capitals
    if kind == "object" or (kind is None and "properties" in schema):
        props = schema.get("properties")
        if not isinstance(props, dict):
            return {}
        return {name: example_value(sub, depth + 1) for name, sub in props.items()}
    if kind == "array":
        return [example_value(schema.get("items"), depth + 1)]
    return {"integer": 1, "number": 1.5, "boolean": True, "null": None}.get(str(kind), "value")


# --------------------------------------------------------------------------- request reading


@dataclass(slots=True)
class _Tools:
    specs: list[tuple[str, Any]]  # (name, parameters schema)
    mode: str  # "auto" | "none" | "required"
    only: list[str] | None  # allowed/forced function names
    parallel: bool


def _openai_tools(body: dict[str, Any]) -> _Tools:
    specs = []
    for tool in body.get("tools") or ():
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            specs.append((function["name"], function.get("parameters")))
    choice = body.get("tool_choice")
    mode, only = "auto", None
    if choice in ("none", "required", "auto"):
        mode = choice
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        mode, only = "required", [choice["function"].get("name")]
    return _Tools(specs, mode, only, body.get("parallel_tool_calls") is not False)


def field_of(node: Any, camel: str) -> Any:
    """`node[camel]`, or its snake_case spelling: the Gemini API (proto JSON) takes both, and
    google-genai sends some fields (parameters_json_schema, thinking_level) in snake_case."""
    if not isinstance(node, dict):
        return None
    if camel in node:
        return node[camel]
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)
    return node.get(snake)


def _gemini_tools(body: dict[str, Any]) -> _Tools:
    specs = []
    for tool in body.get("tools") or ():
        for decl in field_of(tool, "functionDeclarations") or ():
            if isinstance(decl, dict) and isinstance(decl.get("name"), str):
                schema = field_of(decl, "parametersJsonSchema") or decl.get("parameters")
                specs.append((decl["name"], schema))
    config = field_of(field_of(body, "toolConfig"), "functionCallingConfig") or {}
    mode = {"NONE": "none", "ANY": "required"}.get(str(config.get("mode", "AUTO")), "auto")
    only = field_of(config, "allowedFunctionNames") or None
    return _Tools(specs, mode, only, True)


def _last_turn(provider: str, body: dict[str, Any]) -> tuple[str, list[str]]:
    """("tool", results) when the last turn holds tool results, else ("user", [text])."""
    if provider == "gemini":
        contents = body.get("contents") or []
        last = contents[-1] if contents and isinstance(contents[-1], dict) else {}
        parts = [p for p in last.get("parts") or () if isinstance(p, dict)]
        answers = [field_of(p, "functionResponse") for p in parts]
        results = [
            f"{a.get('name')} -> " + json.dumps(a.get("response"), ensure_ascii=False)
            for a in answers
            if isinstance(a, dict)
        ]
        if results:
            return "tool", results
        return "user", [" ".join(str(p.get("text", "")) for p in parts)]
    messages = [m for m in body.get("messages") or () if isinstance(m, dict)]
    results = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        results.insert(0, f"{message.get('tool_call_id')} -> {_content_text(message)}")
    if results:
        return "tool", results
    last = messages[-1] if messages else {}
    return "user", [_content_text(last)]


def _content_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def _json_schema(provider: str, body: dict[str, Any]) -> tuple[bool, Any]:
    """(JSON mode on, schema or None)."""
    if provider == "gemini":
        config = field_of(body, "generationConfig") or {}
        if field_of(config, "responseMimeType") != "application/json":
            return False, None
        return True, field_of(config, "responseJsonSchema") or field_of(config, "responseSchema")
    fmt = body.get("response_format")
    if not isinstance(fmt, dict) or fmt.get("type") not in ("json_object", "json_schema"):
        return False, None
    spec = fmt.get("json_schema")
    return True, spec.get("schema") if isinstance(spec, dict) else None


def _call_id(provider: str, model: str, name: str, index: int, text: str) -> str:
    seed = zlib.crc32(f"{provider}|{model}|{name}|{index}|{text}".encode())
    return f"call_{seed:08x}{index}"


# --------------------------------------------------------------------------- decisions


def refusal(provider: str, model: str, body: Any) -> tuple[int, str, str] | None:
    """(status, message, code) for a request the real API would refuse, else None."""
    if provider != "groq" or not isinstance(body, dict):
        return None
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        return 400, "'n' : number must be at most 1", "invalid_request_error"
    if model == "openai/gpt-oss-120b" and body.get("reasoning_effort") == "none":
        return (
            400,
            "`reasoning_effort` must be one of `low`, `medium`, or `high`",
            "invalid_request_error",
        )
    if model not in GROQ_VISION_MODELS:
        for message in body.get("messages") or ():
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, list) and any(
                isinstance(p, dict) and p.get("type") == "image_url" for p in content
            ):
                return 400, f"model `{model}` does not support image input", "invalid_request_error"
    return None


def plan(provider: str, model: str, body: Any) -> Plan:
    """The scripted answer to a chat request (see the module docstring)."""
    if not isinstance(body, dict):
        return Plan()
    turn, texts = _last_turn(provider, body)
    if turn == "tool":
        return Plan(text="Tool results: " + "; ".join(texts))
    tools = _gemini_tools(body) if provider == "gemini" else _openai_tools(body)
    said = texts[0].lower() if texts else ""
    if tools.specs and tools.mode != "none":
        chosen = [(n, s) for n, s in tools.specs if tools.only is None or n in tools.only]
        wanted = tools.mode == "required" or "call tool" in said or "call all tools" in said
        if chosen and wanted:
            if "call all tools" not in said or not tools.parallel:
                chosen = chosen[:1]
            return Plan(
                tool_calls=[
                    FakeToolCall(
                        _call_id(provider, model, name, index, said),
                        name,
                        example_value(schema) if schema is not None else {},
                    )
                    for index, (name, schema) in enumerate(chosen)
                ]
            )
    json_mode, schema = _json_schema(provider, body)
    if json_mode:
        value = example_value(schema) if schema is not None else {"reply": "ok", "model": model}
        return Plan(text=json.dumps(value, ensure_ascii=False))
    return Plan()
