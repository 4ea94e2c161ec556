"""What a model accepts, what a request needs, and whether one honours the other. Pure: no I/O.

Capabilities are data: `capabilities = { … }` on a model in `data/catalog.toml` or in
`[models."ID"]` of llmrouter.toml, over the defaults of its provider kind
(`[provider_kinds.KIND]` in the catalog). The router refuses a request whose requested model
cannot honour it (UnsupportedParameterError, HTTP 400, naming the parameter and the model)
and skips fallbacks that cannot (attempt outcome `skipped_unsupported`, with the reason).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from .errors import InputError
from .params import GenerationParams
from .types import ImagePart, Message

# Capability -> what it lets a request use (for messages and GET /models).
CAPABILITY_HELP: dict[str, str] = {
    "tools": "tools / function calling (tools, tool_choice, tool calls and results)",
    "parallel_tool_calls": "parallel_tool_calls = false (at most one tool call per turn)",
    "json_object": "response_format json_object (JSON mode)",
    "json_schema": "response_format json_schema (structured output)",
    "images": "image input (image_url content parts)",
    "prefill": "an assistant message as the last message (prefill)",
    "reasoning_effort": "reasoning_effort",
    "stop": "stop sequences",
    "seed": "seed",
    "top_p": "top_p",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
}
CAPABILITY_NAMES: tuple[str, ...] = tuple(CAPABILITY_HELP)


class CapabilityError(ValueError):
    """A capabilities table is invalid; the message names the key (callers add file/line)."""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What one model accepts beyond plain text chat with temperature and max_tokens."""

    tools: bool = False
    parallel_tool_calls: bool = False
    json_object: bool = False
    json_schema: bool = False
    images: bool = False
    prefill: bool = False
    stop: bool = False
    seed: bool = False
    top_p: bool = False
    frequency_penalty: bool = False
    presence_penalty: bool = False
    # Accepted reasoning_effort values; empty: the model takes none.
    reasoning_effort: tuple[str, ...] = ()
    # Effort -> thinking budget in tokens, for models configured by budget (Gemini 2.5);
    # empty: the effort is sent by name (Groq reasoning_effort, Gemini 3 thinkingLevel).
    thinking_budgets: tuple[tuple[str, int], ...] = ()

    def thinking_budget(self, effort: str) -> int | None:
        return dict(self.thinking_budgets).get(effort)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for GET /models, /v1/models and the model picker."""
        out: dict[str, Any] = {}
        for name in CAPABILITY_NAMES:
            value = getattr(self, name)
            out[name] = list(value) if isinstance(value, tuple) else value
        return out

    def updated(self, table: Mapping[str, Any]) -> Capabilities:
        """These capabilities with the keys of a `capabilities = {…}` table applied."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in table.items():
            if name not in CAPABILITY_HELP:
                raise CapabilityError(
                    f"unknown capability {name!r}; known: {', '.join(CAPABILITY_NAMES)}"
                )
            if name == "reasoning_effort":
                values["reasoning_effort"], values["thinking_budgets"] = _efforts(value)
            elif isinstance(value, bool):
                values[name] = value
            else:
                raise CapabilityError(f"capability {name} must be true or false, got {value!r}")
        return Capabilities(**values)


def _efforts(value: Any) -> tuple[tuple[str, ...], tuple[tuple[str, int], ...]]:
    if value is False:
        return (), ()
    if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
        return tuple(value), ()
    if isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
        for k, v in value.items()
    ):
        return tuple(value), tuple(value.items())
    raise CapabilityError(
        "capability reasoning_effort must be false, a list of accepted values "
        '(["low", "medium", "high"]) or a table of value = thinking budget in tokens '
        f"({{ low = 1024 }}), got {value!r}"
    )


def check_table(value: Any) -> None:
    """Raise CapabilityError unless `value` is a valid `capabilities` table."""
    if not isinstance(value, dict):
        raise CapabilityError(f"capabilities must be a table, got {value!r}")
    Capabilities().updated(value)


# ---- what a request needs ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Need:
    """Something a request asks of the model.

    `parameter` is what asked for it, in OpenAI's terms ("tools", "response_format",
    "messages[2].content[1]"); `capability` is None when nothing behind this router can
    honour it (logprobs, n > 1).
    """

    parameter: str
    capability: str | None
    value: str | None = None


def required_capabilities(
    messages: Sequence[Message], params: GenerationParams | None
) -> tuple[Need, ...]:
    """Everything the request asks of a model, in a stable order (parameters first)."""
    needs = _parameter_needs(params) if params is not None and not params.is_empty() else []
    needs += _message_needs(messages)
    return tuple(needs)


def _parameter_needs(p: GenerationParams) -> list[Need]:
    """What the generation parameters ask of the model."""
    needs: list[Need] = []
    if p.tools:
        needs.append(Need("tools", "tools"))
        if p.parallel_tool_calls is False:
            needs.append(Need("parallel_tool_calls", "parallel_tool_calls"))
    if p.response_format is not None and p.response_format.type != "text":
        needs.append(Need("response_format", p.response_format.type))
    if p.reasoning_effort is not None:
        needs.append(Need("reasoning_effort", "reasoning_effort", p.reasoning_effort))
    for name in ("stop", "seed", "top_p", "frequency_penalty", "presence_penalty"):
        if getattr(p, name) not in (None, ()):
            needs.append(Need(name, name))
    if p.logprobs or p.top_logprobs:
        needs.append(Need("logprobs" if p.logprobs else "top_logprobs", None))
    if p.n is not None and p.n > 1:
        needs.append(Need("n", None, str(p.n)))
    return needs


def _message_needs(messages: Sequence[Message]) -> list[Need]:
    """What the messages ask of the model: tool turns, images, an assistant prefill."""
    needs: list[Need] = []
    for index, message in enumerate(messages):
        if message.tool_calls or message.role == "tool":
            needs.append(Need(f"messages[{index}]", "tools"))
        if not isinstance(message.content, str):
            needs.extend(
                Need(f"messages[{index}].content[{at}]", "images")
                for at, part in enumerate(message.content)
                if isinstance(part, ImagePart)
            )
    if messages and messages[-1].role == "assistant":
        needs.append(Need(f"messages[{len(messages) - 1}]", "prefill"))
    return needs


def unmet_need(capabilities: Capabilities, needs: Sequence[Need]) -> Need | None:
    """The first need the model cannot honour, or None when it honours them all."""
    for need in needs:
        if need.capability is None:
            return need
        if need.capability == "reasoning_effort":
            if need.value not in capabilities.reasoning_effort:
                return need
        elif not getattr(capabilities, need.capability):
            return need
    return None


def unmet_reason(need: Need, model: str, capabilities: Capabilities | None = None) -> str:
    """One sentence naming the parameter and the model."""
    if need.capability is None:
        what = f"n={need.value}" if need.parameter == "n" else need.parameter
        return (
            f"{what} is not supported for model {model!r}: this router returns one "
            "streamed reply without log probabilities"
        )
    if need.capability == "reasoning_effort":
        accepted = capabilities.reasoning_effort if capabilities is not None else ()
        if not accepted:
            return f"model {model!r} does not accept reasoning_effort"
        return (
            f"model {model!r} does not accept reasoning_effort {need.value!r} "
            f"(it accepts: {', '.join(accepted)})"
        )
    return f"{need.parameter}: model {model!r} does not accept {CAPABILITY_HELP[need.capability]}"


class UnsupportedParameterError(InputError):
    """The requested model cannot honour a parameter of the request (HTTP 400).

    `parameter` is the OpenAI name (or message path) and `model` the requested model, for
    OpenAI's error `param`; no fallback is tried in its place.
    """

    def __init__(self, parameter: str, model: str, message: str) -> None:
        self.parameter = parameter
        self.model = model
        super().__init__(message)
