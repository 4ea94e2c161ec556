"""Every field of an OpenAI chat-completions request, and what this router does with it.

PARAMETERS is the one declaration. From it come: the /v1 checks (`check_v1_fields`: unknown
fields and refused values are a 400 naming the field), the extra fields /chat takes
(`CHAT_PARAMETERS`), the request schemas of /openapi.json, and the README table "OpenAI
parameters" (`markdown_table()`). tests/test_v1_fidelity.py checks that the table names every
field of the installed openai SDK's `CompletionCreateParams`, that the README holds exactly
`markdown_table()`, that the "passed" names are the core's OPENAI_PARAM_NAMES, and that each
`wire` entry is where the fake upstream really receives the value.

Handling:
- "router": used by this server or the router itself (model, stream, ignore_cache…).
- "passed": sent to the provider (mapped for Gemini) when the model's capabilities allow it;
  otherwise refused by name for the requested model, or skipped for a fallback (core).
- "accepted": accepted and not sent, because it never changes the answer.
- "refused": a 400 naming the field and the model, unless it is null or a value in `neutral`
  (the value that means "the default", which clients often send on every request).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..core.capabilities import Capabilities, required_capabilities, unmet_need
from ..core.catalog import Catalog
from ..core.errors import InputError
from ..core.messages import message_from_openai
from ..core.params import params_from_openai

Handling = Literal["router", "passed", "accepted", "refused"]

#: Provider kinds, in the README's column order, with their column titles.
KINDS: dict[str, str] = {"groq": "Groq", "gemini": "Gemini", "openai": "OpenAI-compatible"}


@dataclass(frozen=True, slots=True)
class Row:
    """One README row of a "passed" parameter: sample requests that use it, and where each
    provider kind receives it (a dotted path in the upstream request; None: not sent)."""

    label: str
    samples: tuple[Mapping[str, Any], ...]
    wire: Mapping[str, str | None]
    note: str = ""
    shown: Mapping[str, str] = field(default_factory=dict)  # kind -> cell text, if not derived


@dataclass(frozen=True, slots=True)
class Param:
    """One request field."""

    name: str
    handling: Handling
    schema: Mapping[str, Any]
    note: str
    chat: bool = False  # POST /chat takes it too
    neutral: tuple[Any, ...] = ()  # values that mean "not set" (accepted even when refused)
    rows: tuple[Row, ...] = ()
    extension: bool = False  # not OpenAI's: this router's own

    def is_neutral(self, value: Any) -> bool:
        """None, or a value that means the default (same JSON type: `0` is not `false`)."""
        return value is None or any(type(value) is type(n) and value == n for n in self.neutral)


def _nullable(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"anyOf": [dict(schema), {"type": "null"}]}


def _same(name: str, gemini: str | None) -> dict[str, str | None]:
    return {"groq": name, "gemini": gemini, "openai": name}


def _row(name: str, gemini: str | None, *samples: Mapping[str, Any]) -> Row:
    """A row sent under the same name to Groq and OpenAI-compatible servers."""
    return Row(f"`{name}`", samples, _same(name, gemini))


_TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
_PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAA"
    "BQABpfZFQAAAAABJRU5ErkJggg=="
)
_CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}

_SCHEMA_OBJECT = {"type": "object", "description": "A JSON Schema."}
_TOOL_SCHEMA = {
    "type": "object",
    "required": ["type", "function"],
    "properties": {
        "type": {"const": "function"},
        "function": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "description": {"type": "string"},
                "parameters": _SCHEMA_OBJECT,
                "strict": {"type": "boolean"},
            },
        },
    },
}
_RESPONSE_FORMAT = {
    "oneOf": [
        {
            "type": "object",
            "required": ["type"],
            "properties": {"type": {"enum": ["text", "json_object"]}},
        },
        {
            "type": "object",
            "required": ["type", "json_schema"],
            "properties": {
                "type": {"const": "json_schema"},
                "json_schema": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string"},
                        "description": {"type": "string"},
                        "schema": _SCHEMA_OBJECT,
                        "strict": {"type": "boolean"},
                    },
                },
            },
        },
        {"type": "null"},
    ]
}
_TOOL_CHOICE = {
    "anyOf": [
        {"enum": ["auto", "none", "required"]},
        {
            "type": "object",
            "required": ["type", "function"],
            "properties": {
                "type": {"const": "function"},
                "function": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}},
                },
            },
        },
        {"type": "null"},
    ]
}
_TEXT_PARTS = {
    "messages": [
        {
            "role": "user",
            "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
        }
    ]
}
_IMAGE = {
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": _PNG}},
            ],
        }
    ]
}
_TOOL_TURNS = {
    "tools": [_TOOL],
    "messages": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": None, "tool_calls": [_CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 21}'},
    ],
}
_PREFILL = {
    "messages": [
        {"role": "user", "content": "Write a haiku"},
        {"role": "assistant", "content": "Autumn"},
    ]
}
_NAMED = {
    "messages": [
        {"role": "user", "name": "ada_lovelace", "content": "Hello"},
    ]
}
_MESSAGES_WIRE = {"groq": "messages", "gemini": "contents", "openai": "messages"}
_MAX_TOKENS_WIRE = {
    "groq": "max_completion_tokens",
    "gemini": "generationConfig.maxOutputTokens",
    "openai": "max_tokens",
}
_EFFORTS = ("low", "medium", "high", "none", "default", "minimal")

PARAMETERS: tuple[Param, ...] = (
    Param(
        "model",
        "router",
        {"type": "string"},
        "The requested model (default: `default_model`), or `auto` (the router picks by "
        "evidence, `x_llmrouter.auto_reason` says why); the reply's `model` is the one that "
        "answered.",
    ),
    Param(
        "messages",
        "passed",
        {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/V1Message"}},
        "Sent in order and in shape: text parts stay separate parts, system messages keep "
        "their places (Gemini has one `systemInstruction`: they are joined there).",
        rows=(
            Row(
                "`messages`",
                (_TEXT_PARTS,),
                _MESSAGES_WIRE,
                shown={"gemini": "mapped to `contents` and `systemInstruction`"},
            ),
            Row(
                "`messages`: image_url parts",
                (_IMAGE,),
                {
                    "groq": "messages",
                    "gemini": "contents[0].parts[1].inlineData",
                    "openai": "messages",
                },
                "data: URLs; http(s) URLs only with `[routing] fetch_image_urls = true`. "
                "Gemini has no `detail`.",
                shown={"gemini": "mapped to `inlineData` parts"},
            ),
            Row(
                "`messages`: tool calls and results",
                (_TOOL_TURNS,),
                {
                    "groq": "messages[2].tool_call_id",
                    "gemini": "contents[2].parts[0].functionResponse",
                    "openai": "messages[2].tool_call_id",
                },
                "Assistant `tool_calls` and `tool` messages; Gemini's thought signature goes "
                "back with its call.",
                shown={
                    "groq": "passed",
                    "gemini": "mapped to `functionCall` / `functionResponse` parts",
                    "openai": "passed",
                },
            ),
            Row(
                "`messages`: assistant message last (prefill)",
                (_PREFILL,),
                {
                    "groq": "messages[1].content",
                    "gemini": "contents[1].parts[0].text",
                    "openai": "messages[1].content",
                },
                "The model continues the assistant's text.",
                shown={
                    "groq": "passed",
                    "gemini": "mapped to a last `model` turn",
                    "openai": "passed",
                },
            ),
            Row(
                "`messages`: `name`",
                (_NAMED,),
                {"groq": "messages[0].name", "gemini": None, "openai": "messages[0].name"},
                "The participant's name, on system, user and assistant messages (refused on "
                "tool messages); Gemini has no such field.",
                shown={"groq": "passed", "openai": "passed"},
            ),
        ),
    ),
    Param(
        "temperature",
        "passed",
        {"type": ["number", "null"], "minimum": 0, "maximum": 2},
        "",
        rows=(_row("temperature", "generationConfig.temperature", {"temperature": 0.5}),),
    ),
    Param(
        "max_completion_tokens",
        "passed",
        {"type": ["integer", "null"], "minimum": 1},
        "Wins over `max_tokens` when both are given.",
        chat=True,
        rows=(Row("`max_completion_tokens`", ({"max_completion_tokens": 40},), _MAX_TOKENS_WIRE),),
    ),
    Param(
        "max_tokens",
        "passed",
        {"type": ["integer", "null"], "minimum": 1},
        "OpenAI's older name for `max_completion_tokens`.",
        rows=(Row("`max_tokens`", ({"max_tokens": 40},), _MAX_TOKENS_WIRE),),
    ),
    Param("stream", "router", {"type": ["boolean", "null"]}, "Server-sent events."),
    Param(
        "stream_options",
        "router",
        {
            "anyOf": [
                {
                    "type": "object",
                    "properties": {
                        "include_usage": {"type": "boolean"},
                        "include_obfuscation": {"type": "boolean"},
                    },
                },
                {"type": "null"},
            ]
        },
        "`include_usage` adds the usage chunk; `include_obfuscation` is accepted (no "
        "obfuscation field is sent).",
    ),
    Param(
        "stop",
        "passed",
        _nullable({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
        "At most 4 sequences.",
        chat=True,
        rows=(_row("stop", "generationConfig.stopSequences", {"stop": ["END"]}),),
    ),
    Param(
        "seed",
        "passed",
        {"type": ["integer", "null"]},
        "",
        chat=True,
        rows=(_row("seed", "generationConfig.seed", {"seed": 7}),),
    ),
    Param(
        "top_p",
        "passed",
        {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "",
        chat=True,
        rows=(_row("top_p", "generationConfig.topP", {"top_p": 0.5}),),
    ),
    Param(
        "frequency_penalty",
        "passed",
        {"type": ["number", "null"], "minimum": -2, "maximum": 2},
        "0 means not set.",
        chat=True,
        rows=(
            _row(
                "frequency_penalty", "generationConfig.frequencyPenalty", {"frequency_penalty": 0.5}
            ),
        ),
    ),
    Param(
        "presence_penalty",
        "passed",
        {"type": ["number", "null"], "minimum": -2, "maximum": 2},
        "0 means not set.",
        chat=True,
        rows=(
            _row("presence_penalty", "generationConfig.presencePenalty", {"presence_penalty": 0.5}),
        ),
    ),
    Param(
        "reasoning_effort",
        "passed",
        {"type": ["string", "null"]},
        "The values each model takes are its `capabilities.reasoning_effort` (GET /models); "
        "Gemini: `thinkingLevel`, or `thinkingBudget` for 2.5 models.",
        chat=True,
        rows=(
            _row(
                "reasoning_effort",
                "generationConfig.thinkingConfig",
                *({"reasoning_effort": effort} for effort in _EFFORTS),
            ),
        ),
    ),
    Param(
        "response_format",
        "passed",
        _RESPONSE_FORMAT,
        '`{"type": "text"}` means not set.',
        chat=True,
        rows=(
            Row(
                "`response_format`: json_object",
                ({"response_format": {"type": "json_object"}},),
                _same("response_format", "generationConfig.responseMimeType"),
            ),
            Row(
                "`response_format`: json_schema",
                (
                    {
                        "response_format": {
                            "type": "json_schema",
                            "json_schema": {"name": "answer", "schema": {"type": "object"}},
                        }
                    },
                ),
                _same("response_format", "generationConfig.responseJsonSchema"),
            ),
        ),
    ),
    Param(
        "tools",
        "passed",
        _nullable({"type": "array", "items": _TOOL_SCHEMA}),
        "Function tools; fallbacks are only models that take tools. Gemini has no `strict`.",
        rows=(_row("tools", "tools[0].functionDeclarations", {"tools": [_TOOL]}),),
    ),
    Param(
        "tool_choice",
        "passed",
        _TOOL_CHOICE,
        "auto, none, required or one function.",
        rows=(
            _row(
                "tool_choice",
                "toolConfig.functionCallingConfig",
                {"tools": [_TOOL], "tool_choice": "required"},
            ),
        ),
    ),
    Param(
        "parallel_tool_calls",
        "passed",
        {"type": ["boolean", "null"]},
        "`true` (the default) means not set; `false` needs a model that honours it.",
        rows=(
            _row(
                "parallel_tool_calls",
                None,
                {"tools": [_TOOL], "parallel_tool_calls": False},
            ),
        ),
    ),
    Param(
        "n",
        "passed",
        {"type": ["integer", "null"], "minimum": 1, "maximum": 128},
        "1 is accepted; more is refused: one reply is streamed, cached and recorded.",
        rows=(_row("n", None, {"n": 2}),),
    ),
    Param(
        "logprobs",
        "passed",
        {"type": ["boolean", "null"]},
        "`false` is accepted; `true` is refused: no provider here returns log probabilities.",
        rows=(_row("logprobs", None, {"logprobs": True}),),
    ),
    Param(
        "top_logprobs",
        "passed",
        {"type": ["integer", "null"], "minimum": 0, "maximum": 20},
        "0 is accepted; more is refused, as for `logprobs`.",
        rows=(_row("top_logprobs", None, {"top_logprobs": 2}),),
    ),
    Param(
        "user",
        "passed",
        {"type": ["string", "null"]},
        "An end-user id for abuse monitoring; never changes the answer (not in the cache key).",
        chat=True,
        rows=(_row("user", None, {"user": "user-1"}),),
    ),
    Param(
        "metadata",
        "accepted",
        {"type": ["object", "null"], "additionalProperties": {"type": "string"}},
        "Tags for OpenAI's stored completions; never changes the answer.",
    ),
    Param(
        "store",
        "refused",
        {"type": ["boolean", "null"]},
        "this router keeps no completions for OpenAI's stored-completions API (each request "
        "is recorded in its own database and logs); leave store out or false",
        neutral=(False,),
    ),
    Param(
        "safety_identifier",
        "accepted",
        {"type": ["string", "null"]},
        "An end-user id for OpenAI's abuse monitoring; never changes the answer.",
    ),
    Param(
        "prompt_cache_key",
        "accepted",
        {"type": ["string", "null"]},
        "A hint for OpenAI's prompt cache (cost and speed only).",
    ),
    Param(
        "prompt_cache_retention",
        "accepted",
        {"type": ["string", "null"]},
        "A hint for OpenAI's prompt cache (cost and speed only).",
    ),
    Param(
        "prompt_cache_options",
        "accepted",
        {"type": ["object", "null"]},
        "A hint for OpenAI's prompt cache (cost and speed only).",
    ),
    Param(
        "prediction",
        "accepted",
        {"type": ["object", "null"]},
        "Predicted output: a latency hint; the answer is the model's either way.",
    ),
    Param(
        "service_tier",
        "refused",
        {"type": ["string", "null"]},
        "this router picks the provider and its processing tier itself; leave service_tier "
        'out, or "auto"',
        neutral=("auto", "default"),
    ),
    Param(
        "verbosity",
        "refused",
        {"type": ["string", "null"]},
        "no provider here has a verbosity control; ask for a length in the prompt instead",
        neutral=("medium",),
    ),
    Param(
        "logit_bias",
        "refused",
        {"type": ["object", "null"], "additionalProperties": {"type": "number"}},
        "token ids differ between models and providers, so a bias cannot follow a fallback; "
        "leave logit_bias out",
        neutral=({},),
    ),
    Param(
        "modalities",
        "refused",
        {"type": ["array", "null"], "items": {"type": "string"}},
        'replies are text only; leave modalities out or ["text"]',
        neutral=(["text"],),
    ),
    Param(
        "audio",
        "refused",
        {"type": ["object", "null"]},
        "replies are text only (no audio output); leave audio out",
    ),
    Param(
        "functions",
        "refused",
        {"type": ["array", "null"]},
        "OpenAI's deprecated form of tools; send tools (and tool_choice) instead",
    ),
    Param(
        "function_call",
        "refused",
        {"anyOf": [{"type": "string"}, {"type": "object"}, {"type": "null"}]},
        "OpenAI's deprecated form of tool_choice; send tools and tool_choice instead",
    ),
    Param(
        "web_search_options",
        "refused",
        {"type": ["object", "null"]},
        "no model behind this router searches the web through this option; leave it out",
    ),
    Param(
        "moderation",
        "refused",
        {"type": ["object", "null"]},
        "this router runs no moderation of its own; leave moderation out",
    ),
    Param(
        "ignore_cache",
        "router",
        {"type": ["boolean", "null"]},
        "Skip the cache read (the reply is still cached).",
        extension=True,
    ),
    Param(
        "conversation_id",
        "router",
        {"type": ["string", "null"]},
        "Recorded with the request.",
        extension=True,
    ),
)

BY_NAME: dict[str, Param] = {p.name: p for p in PARAMETERS}
#: The fields /chat takes from this table (besides its own prompt, template and messages).
CHAT_PARAMETERS: tuple[Param, ...] = tuple(p for p in PARAMETERS if p.chat)


class FieldRefused(InputError):
    """A request field the server refuses itself: unknown, refused for every model, not taken
    by this endpoint, or of the wrong type. `code` says which (OpenAI's error `code`)."""

    def __init__(self, field: str, code: str, message: str) -> None:
        self.field = field
        self.code = code
        super().__init__(message)


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "integer": (int,),
    "number": (int, float),
}


def _type_ok(value: Any, schema: Mapping[str, Any]) -> bool:
    names = schema.get("type")
    if names is None:
        return True
    for name in [names] if isinstance(names, str) else names:
        if name == "null" and value is None:
            return True
        kinds = _JSON_TYPES.get(name, ())
        if isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds):
            return True
    return False


def refusal_message(param: Param, model: str) -> str:
    return f"{param.name} is not supported for model {model!r}: {param.note}"


def check_v1_fields(body: Mapping[str, Any], model: str) -> None:
    """Refuse, by name, a field that is unknown, refused, or of the wrong type when accepted."""
    for name, value in body.items():
        param = BY_NAME.get(name)
        if param is None:
            raise FieldRefused(
                name,
                "unknown_parameter",
                f"unknown parameter {name!r}: this router does not know what it does, so it "
                "cannot honour it; remove it (GET /openapi.json lists the parameters it takes)",
            )
        if param.handling == "refused" and not param.is_neutral(value):
            raise FieldRefused(name, "unsupported_parameter", refusal_message(param, model))
        if param.handling == "accepted" and not _type_ok(value, param.schema):
            kinds = param.schema["type"]
            expected = " or ".join([kinds] if isinstance(kinds, str) else kinds)
            raise FieldRefused(
                name, "invalid_type", f"{name} must be {expected}; got {json.dumps(value)[:60]}"
            )


# ---- the README table -------------------------------------------------------------------------


def _kind_models(catalog: Catalog, kind: str) -> list[tuple[str, Capabilities]]:
    """(id, capabilities) of the usable chat models of a kind; the kind's defaults when the
    catalog has none (OpenAI-compatible servers)."""
    models = [
        (info.id, catalog.capabilities(info.id))
        for info in catalog.models.values()
        if info.provider == kind
        and info.kind == "chat"
        and info.status != "retired"  # as the catalog says (no date: the table is stable)
    ]
    return models or [(f"{kind}:any", catalog.capabilities(f"{kind}:any", kind))]


def honours(capabilities: Capabilities, sample: Mapping[str, Any]) -> bool:
    """Would a model with `capabilities` be sent this sample request (rather than refuse it)?"""
    raw = sample.get("messages") or [{"role": "user", "content": "x"}]
    messages = [message_from_openai(item, index) for index, item in enumerate(raw)]
    needs = required_capabilities(messages, params_from_openai(sample))
    return unmet_need(capabilities, needs) is None


def honouring_models(row: Row, catalog: Catalog, kind: str) -> tuple[list[str], list[str]]:
    """(models of `kind` that are sent the row's parameter, models that refuse it)."""
    yes: list[str] = []
    no: list[str] = []
    for model_id, caps in _kind_models(catalog, kind):
        (yes if any(honours(caps, s) for s in row.samples) else no).append(model_id)
    return yes, no


def _names(ids: Sequence[str]) -> str:
    return ", ".join(f"`{i}`" for i in ids)


def _passed_cell(param: Param, row: Row, catalog: Catalog, kind: str) -> str:
    yes, no = honouring_models(row, catalog, kind)
    if not yes:
        return "refused"
    wire = row.wire.get(kind)
    if kind in row.shown:
        base = row.shown[kind]
    elif wire is None:
        base = "accepted, not sent"
    elif wire == param.name:
        base = "passed"
    else:
        base = f"mapped to `{wire}`"
    if not no:
        return base
    if len(no) <= len(yes):
        return f"{base}; refused for {_names(no)}"
    return f"{base} for {_names(yes)}; refused for the others"


def _fixed_cell(param: Param) -> str:
    if param.handling == "router":
        return "used by the router"
    if param.handling == "accepted":
        return "accepted, not sent"
    if param.neutral:
        shown = [f"`{json.dumps(n)}`" for n in param.neutral]
        return "refused unless null or " + " or ".join(shown)
    return "refused"


def _note(param: Param, row: Row | None) -> str:
    text = (row.note if row is not None and row.note else "") or (
        param.note if row is None or row is param.rows[0] else ""
    )
    if param.handling == "refused":
        text = text[0].upper() + text[1:] + "."
    if param.extension:
        text = f"Extension. {text}"
    return text.replace("|", "\\|")


def markdown_table(catalog: Catalog | None = None) -> str:
    """The README's "OpenAI parameter → provider" table, from PARAMETERS and the shipped
    catalog's capabilities."""
    catalog = catalog or Catalog()
    lines = [
        "| parameter | " + " | ".join(KINDS.values()) + " | notes |",
        "|---" * (len(KINDS) + 2) + "|",
    ]
    for param in PARAMETERS:
        if param.handling == "passed":
            for row in param.rows:
                cells = [_passed_cell(param, row, catalog, kind) for kind in KINDS]
                lines.append(f"| {row.label} | " + " | ".join(cells) + f" | {_note(param, row)} |")
        else:
            cells = [_fixed_cell(param)] * len(KINDS)
            lines.append(f"| `{param.name}` | " + " | ".join(cells) + f" | {_note(param, None)} |")
    return "\n".join(lines) + "\n"
