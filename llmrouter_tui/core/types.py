"""Plain data the router takes in and gives out: requests, attempts, results and stream events."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

from .params import GenerationParams

Role = Literal["system", "user", "assistant", "tool"]

#: What joins text parts wherever one string is needed (records, token estimates): parts are
#: never glued together ("part one" + "part two" must not read "part onepart two").
PART_SEPARATOR = "\n\n"


@dataclass(frozen=True, slots=True)
class TextPart:
    """A text content part."""

    text: str


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image content part: a `data:image/...;base64,...` URL, or an http(s) URL when the
    config allows fetching them (`[routing] fetch_image_urls`)."""

    url: str
    detail: str | None = None  # OpenAI's "auto" | "low" | "high"; forwarded where accepted

    @property
    def is_data_url(self) -> bool:
        return self.url.startswith("data:")


ContentPart = TextPart | ImagePart


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function call the model asked for (OpenAI `tool_calls[i]`)."""

    id: str
    name: str
    arguments: str  # JSON text exactly as the model wrote it
    # Opaque provider state that must come back with the call in the next turn (Gemini's
    # thought signature, base64); None for providers without one.
    signature: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """OpenAI's shape; the signature rides where Google's own OpenAI endpoint puts it."""
        out: dict[str, Any] = {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }
        if self.signature is not None:
            out["extra_content"] = {"google": {"thought_signature": self.signature}}
        return out


@dataclass(frozen=True, slots=True)
class Message:
    """One chat turn.

    `content` is a string, or content parts (kept as parts: providers that take arrays get
    arrays). An assistant turn may carry `tool_calls` (its content may then be ""); a `tool`
    turn answers the call `tool_call_id` with its content. `name` is OpenAI's participant
    name (sent to OpenAI-style APIs; Gemini has no such field).
    """

    role: Role
    content: str | tuple[ContentPart, ...] = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None

    @property
    def text(self) -> str:
        """The text of the turn as one string (text parts joined by PART_SEPARATOR)."""
        if isinstance(self.content, str):
            return self.content
        return PART_SEPARATOR.join(p.text for p in self.content if isinstance(p, TextPart))

    @property
    def images(self) -> tuple[ImagePart, ...]:
        if isinstance(self.content, str):
            return ()
        return tuple(p for p in self.content if isinstance(p, ImagePart))


@dataclass(slots=True)
class ChatRequest:
    """What a front-end asks the router for.

    Exactly one of `prompt`, `template_id` or `messages` carries the input.
    """

    model: str | None = None
    prompt: str | None = None
    template_id: str | None = None
    template_vars: dict[str, str] = field(default_factory=dict)
    messages: list[Message] | None = None
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    ignore_cache: bool = False
    conversation_id: str | None = None
    # Front-end label for logs ("tui", "serve", "ask", "v1"); never changes routing.
    source: str = "core"
    # Everything else a model may be asked for (stop, seed, tools, JSON mode, …); see
    # core.params. A model that cannot honour a set parameter is refused or skipped, by name.
    params: GenerationParams | None = None
    # The two requests of one side-by-side compare share this id (core.compare).
    compare_id: str | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts for one reply; `estimated` is True when we counted them ourselves."""

    prompt: int = 0
    completion: int = 0
    total: int = 0
    estimated: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "completion": self.completion,
            "total": self.total,
            "estimated": self.estimated,
        }


AttemptOutcome = Literal[
    "ok",
    "cache_hit",
    "error",
    "timeout",
    "skipped_no_key",
    "skipped_circuit_open",
    "skipped_unsupported",  # the model cannot honour a parameter of the request
    "continued",  # finished an answer a broken stream had begun (prefill or regenerate)
    "skipped_budget",  # a paid model while a [budget] limit is reached
    "skipped_context",  # the request is too long for the model's context window
    "skipped_no_provider",  # the model's provider is not configured
    "cancelled",
]


@dataclass(slots=True)
class Attempt:
    """One try at one model; a request has one or more."""

    model: str
    provider: str
    outcome: AttemptOutcome
    status: int | None = None
    error: str | None = None  # error class or kind, e.g. "rate_limited", "stream_cut"
    message: str | None = None  # short human reason, never containing a key
    ms: float = 0.0
    started_at: float = 0.0  # wall-clock epoch seconds

    def as_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it deep-copies field by field and is several times slower,
        # and this runs twice per request (log line and reply). Every field is a scalar.
        return {name: getattr(self, name) for name in _ATTEMPT_FIELDS}


_ATTEMPT_FIELDS = tuple(f.name for f in fields(Attempt))

RequestStatus = Literal["ok", "error", "cancelled"]


@dataclass(slots=True)
class Result:
    """The full record of one routed request: what was asked, what answered, how."""

    prompt_id: str
    requested_model: str
    model_used: str | None
    provider: str | None
    prompt: str  # the last user message after template rendering
    response_text: str
    status: RequestStatus
    latency_ms: float
    ttft_ms: float | None
    usage: Usage
    from_cache: bool
    fallback_used: bool
    attempts: list[Attempt]
    created_at: str  # UTC ISO-8601
    finish_reason: str | None = None  # "stop", "length", "content_filter", …
    truncated: bool = False  # the provider stopped at max_tokens: complete as sent, not as wanted
    template_id: str | None = None
    conversation_id: str | None = None
    notice: str | None = None
    error: str | None = None
    error_kind: str | None = None
    demo: bool = False
    source: str = "core"
    # Sinks (log files, database) that failed to record this request; the reply is still valid.
    warnings: list[str] = field(default_factory=list)
    # Function calls the model asked for (finish_reason "tool_calls"), in order.
    tool_calls: list[ToolCall] = field(default_factory=list)
    # USD this reply cost (core.pricing): None when the model has no price or the request
    # failed; estimated when the token counts were. Cache hits cost 0 and record saved_usd.
    cost_usd: float | None = None
    cost_estimated: bool = False
    saved_usd: float | None = None
    # Why `auto` chose model_used's candidate ("auto → X: rated 4.4 (n=23), …"); else None.
    auto_reason: str | None = None
    compare_id: str | None = None

    @property
    def token_count(self) -> int:
        return self.usage.total

    def as_dict(self) -> dict[str, Any]:
        """The record every front-end returns (original system's fields first)."""
        return {
            "prompt_id": self.prompt_id,
            "model_used": self.model_used,
            "response_text": self.response_text,
            "latency_ms": round(self.latency_ms, 3),
            "token_count": self.usage.total,
            "from_cache": self.from_cache,
            "requested_model": self.requested_model,
            "provider": self.provider,
            "fallback_used": self.fallback_used,
            "ttft_ms": None if self.ttft_ms is None else round(self.ttft_ms, 3),
            "tokens": self.usage.as_dict(),
            "attempts": [a.as_dict() for a in self.attempts],
            "notice": self.notice,
            "status": self.status,
            "finish_reason": self.finish_reason,
            "truncated": self.truncated,
            "tool_calls": [call.as_dict() for call in self.tool_calls],
            "template_id": self.template_id,
            "conversation_id": self.conversation_id,
            "error": self.error,
            "error_kind": self.error_kind,
            "demo": self.demo,
            "created_at": self.created_at,
            "warnings": list(self.warnings),
            "cost_usd": self.cost_usd,
            "cost_estimated": self.cost_estimated,
            "saved_usd": self.saved_usd,
            "auto_reason": self.auto_reason,
            "compare_id": self.compare_id,
        }


# ---- stream events ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Started:
    """The router resolved the request and is about to try `model` (first event of a stream)."""

    prompt_id: str
    requested_model: str
    model: str
    notice: str | None = None


@dataclass(frozen=True, slots=True)
class Delta:
    """A piece of reply text from the current candidate."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a tool call from the current candidate, in OpenAI's streamed shape.

    The first delta of a call (per `index`) carries its `id` and `name`; later ones add
    `arguments` text. A Restart voids tool-call deltas along with the text.
    """

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    signature: str | None = None  # see ToolCall.signature

    def as_openai(self) -> dict[str, Any]:
        """One entry of a chunk's `delta.tool_calls`."""
        function: dict[str, Any] = {"arguments": self.arguments}
        if self.name is not None:
            function["name"] = self.name
        out: dict[str, Any] = {"index": self.index, "function": function}
        if self.id is not None:
            out["id"] = self.id
            out["type"] = "function"
        if self.signature is not None:
            out["extra_content"] = {"google": {"thought_signature": self.signature}}
        return out


@dataclass(frozen=True, slots=True)
class AttemptFailed:
    """One attempt failed; the router may retry or fall back next."""

    attempt: Attempt
    will_retry_in_s: float | None = None
    next_model: str | None = None


@dataclass(frozen=True, slots=True)
class Restart:
    """Text streamed so far is void (a candidate broke mid-answer and another one takes over)."""

    reason: str
    next_model: str


@dataclass(frozen=True, slots=True)
class Done:
    """The request succeeded; `result` is the complete record."""

    result: Result


@dataclass(frozen=True, slots=True)
class Failed:
    """The request failed for good; `result` holds every attempt and the reason."""

    result: Result


Event = Started | Delta | ToolCallDelta | AttemptFailed | Restart | Done | Failed
