"""Every request and response body of the server, declared once. Made from these: the
/openapi.json components (wire_schema.py) and the request checks (wire_check.py); wire.py
says how a declaration is read.

A field's Python type is its JSON type; `NotRequired` marks a field that may be absent;
`Annotated[T, Field(...)]` adds the description, bounds and wording. Lists that the core owns
(attempt outcomes, preference outcomes) are the core's own Literal types. Shapes that are
another shape with a difference are `Derived` from it, not written twice. Bodies the core
returns (stats, leaderboard rows, model rows, template listings) are the core's own TypedDicts
(declared beside the code that builds them, with core/wire_meta.Field); a body that adds to
one is a TypedDict subclass of it.
"""

from typing import Annotated, Any, Literal, NotRequired, TypedDict

from ..core.catalog import ModelRow
from ..core.preferences import Outcome
from ..core.stats import StatsSummary
from ..core.templates import TemplateInfo
from ..core.types import AttemptOutcome, RequestStatus
from ..core.wire_meta import ref
from .wire import Derived, Field, Named, OneOf

SIDES = ("a", "b")  # a compare's replies, as /prefer's prompt_a / prompt_b and outcomes a / b

#: Record fields that name a reply's model or provider: a blind compare leaves them out.
BLIND_HIDDEN = (
    "model_used",
    "requested_model",
    "provider",
    "attempts",
    "notice",
    "auto_reason",
    "error",
)
#: The same for the `start` event of a streamed reply.
BLIND_HIDDEN_START = ("model", "requested_model", "notice")


# ---- /chat ----------------------------------------------------------------------------------


class Message(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


class ChatBody(TypedDict, total=False):
    """The fields /chat and /compare share."""

    prompt: Annotated[str, Field("The prompt (one of prompt, template_id, messages).")]
    template_id: str
    template_vars: Annotated[
        dict[str, str | float | None],
        Field("Values for the template's variables.", expect="an object of name: value"),
    ]
    template: Annotated[
        str,
        Field(
            "Legacy: a template id; `prompt` then fills its first variable that has no value "
            "and no default."
        ),
    ]
    messages: Annotated[
        list[Annotated[Message, Field(expect="an object with role and content")]],
        Field(min_items=1, expect="an array of {role, content} objects"),
    ]
    system: str
    temperature: Annotated[float, Field(minimum=0, maximum=2)]
    max_tokens: Annotated[int, Field(minimum=1)]
    conversation_id: str
    ignore_cache: bool
    stream: bool


class ChatRequest(ChatBody, total=False):
    """Unknown fields are ignored. OpenAI parameters /chat does not take (tools, n, logprobs,
    logit_bias…) are refused by name when set: send those to /v1/chat/completions."""

    model: Annotated[
        str,
        Field(
            "Same as the model query parameter (auto: the router picks by evidence, "
            "auto_reason says why)."
        ),
    ]


class Tokens(TypedDict):
    prompt: int
    completion: int
    total: int
    estimated: bool


class Attempt(TypedDict):
    model: str
    provider: str
    outcome: Annotated[
        AttemptOutcome,
        Field(
            "skipped_unsupported: the model cannot honour a parameter of the request "
            "(message says which); skipped_context: the request is too long for its context "
            "window; skipped_no_key / skipped_no_provider / skipped_circuit_open: not tried."
        ),
    ]
    status: NotRequired[int | None]
    error: NotRequired[str | None]
    message: NotRequired[str | None]
    ms: NotRequired[float]
    started_at: NotRequired[float]


class ToolFunction(TypedDict):
    name: str
    arguments: str


class ToolCall(TypedDict):
    id: str
    type: Literal["function"]
    function: ToolFunction
    extra_content: NotRequired[
        Annotated[
            dict[str, Any],
            Field(
                "Gemini's thought signature ({google: {thought_signature}}); send it back "
                "with the call."
            ),
        ]
    ]


class ToolFunctionPiece(TypedDict, total=False):
    name: str
    arguments: str


class ToolCallChunk(TypedDict):
    """A piece of a tool call: the first per index has id, type and the name; the arguments
    arrive in pieces."""

    index: int
    id: NotRequired[str]
    type: NotRequired[Literal["function"]]
    function: ToolFunctionPiece
    extra_content: NotRequired[dict[str, Any]]


class ChatResult(TypedDict):
    """The record of one routed request (the original's six fields first)."""

    prompt_id: str
    model_used: str | None
    response_text: str
    latency_ms: float
    token_count: int
    from_cache: bool
    requested_model: str
    provider: NotRequired[str | None]
    fallback_used: bool
    ttft_ms: float | None
    tokens: Tokens
    attempts: list[Attempt]
    notice: str | None
    status: RequestStatus
    finish_reason: NotRequired[str | None]
    truncated: NotRequired[bool]
    tool_calls: NotRequired[list[ToolCall]]
    template_id: NotRequired[str | None]
    conversation_id: NotRequired[str | None]
    error: NotRequired[str | None]
    error_kind: NotRequired[str | None]
    demo: NotRequired[bool]
    created_at: NotRequired[str]
    warnings: NotRequired[list[str]]
    cost_usd: Annotated[
        float | None,
        Field(
            "USD this reply cost (input and output tokens at the model's price); 0 for a "
            "cache hit or a free model; null when the request failed or the model has no "
            "price.",
            minimum=0,
        ),
    ]
    cost_estimated: Annotated[bool, Field("The cost comes from estimated token counts.")]
    saved_usd: Annotated[
        float | None,
        Field("A cache hit: what the reply would have cost; else null.", minimum=0),
    ]
    auto_reason: Annotated[
        str | None,
        Field(
            "Model auto: why it chose the first candidate ('auto → MODEL: rated 4.4 (n=23), "
            "…'); null for any other model."
        ),
    ]
    compare_id: Annotated[
        str | None, Field("Shared by the two replies of a compare (POST /compare).")
    ]


ROUTER_DETAILS = Derived(
    "RouterDetails",
    ChatResult,
    "Router details of a /v1 reply (x_llmrouter): the /chat record without response_text.",
    drop=("response_text",),
)
COMPARE_REPLY = Derived(
    "CompareReply",
    ChatResult,
    "One reply of a compare: the /chat record. In a blind compare, without "
    + ", ".join(BLIND_HIDDEN)
    + " (they name the model) until the vote.",
    optional=BLIND_HIDDEN,
)


class StartEvent(TypedDict):
    type: Literal["start"]
    prompt_id: str | None
    requested_model: NotRequired[str | None]
    model: str
    notice: NotRequired[str | None]


class DeltaEvent(TypedDict):
    type: Literal["delta"]
    text: str


class ToolCallEvent(TypedDict):
    type: Literal["tool_call"]
    tool_call: ToolCallChunk


class DoneEvent(TypedDict):
    type: Literal["done"]
    result: ChatResult


class StreamFailure(TypedDict):
    status: int
    kind: NotRequired[str | None]
    message: str


class ErrorEvent(TypedDict):
    type: Literal["error"]
    error: StreamFailure
    result: NotRequired[ChatResult]


ChatStreamEvent = Annotated[
    StartEvent | DeltaEvent | ToolCallEvent | DoneEvent | ErrorEvent,
    Named("ChatStreamEvent", "One `data:` event of POST /chat?stream=true."),
]
CHAT_EVENTS: tuple[type, ...] = (StartEvent, DeltaEvent, ToolCallEvent, DoneEvent, ErrorEvent)


# ---- /compare and /prefer -------------------------------------------------------------------


class CompareRequest(ChatBody, total=False):
    """The /chat body without model, plus models and blind. Unknown fields are ignored;
    OpenAI parameters /chat does not take are refused by name."""

    models: Annotated[
        list[Annotated[str, Field(expect="a model id (GET /models lists them)", min_length=1)]],
        Field(
            "The two models, a then b (auto too). Left out: the two auto ranks highest now "
            "(for the request's template, if any).",
            min_items=2,
            max_items=2,
            expect="an array of two model ids ([a, b]), or left out for auto's two best",
        ),
    ]
    blind: Annotated[
        bool,
        Field(
            "Put the two models in random order and leave out every field that names a "
            "reply's model until the vote (POST /prefer answers with both names)."
        ),
    ]


_MODELS_ASKED = Field("The models asked for, a then b (not in a blind compare).")


class Compare(TypedDict):
    """Both replies (each with its prompt_id for POST /prefer). A side that failed has status
    error (with error_kind); when both fail the answer is an error status."""

    compare_id: Annotated[str, Field("Give it to POST /prefer.")]
    blind: bool
    models: NotRequired[Annotated[list[str], _MODELS_ASKED]]
    a: Annotated[dict[str, Any], Field(schema=ref("CompareReply"))]
    b: Annotated[dict[str, Any], Field(schema=ref("CompareReply"))]


class CompareOpening(TypedDict):
    type: Literal["compare"]
    compare_id: str
    blind: bool
    models: NotRequired[Annotated[list[str], _MODELS_ASKED]]


class CompareEnd(TypedDict):
    type: Literal["end"]
    compare_id: str


class Side(TypedDict):
    type: Any  # each event's own `type` comes first, as on the wire
    side: Annotated[Literal["a", "b"], Field("Which reply: a or b.")]


def _side_event(event: type) -> Derived:
    """A /chat stream event as one side of a compare: tagged `side`, its record a
    CompareReply, and in a blind compare without the fields that name the model."""
    return Derived(
        f"CompareSide{event.__name__}",
        event,
        add=Side,
        optional=BLIND_HIDDEN_START,
        refs={"ChatResult": "CompareReply"},
    )


COMPARE_STREAM_EVENT = OneOf(
    "CompareStreamEvent",
    "One `data:` event of POST /compare with stream=true: `compare` first, then both "
    "replies' /chat events as they come (each tagged by side), then `end` once both finished "
    "(no `end`: the stream broke).",
    (CompareOpening, *(_side_event(event) for event in CHAT_EVENTS), CompareEnd),
)


class PreferRequest(TypedDict):
    """Voting again on the same two replies (in either order) replaces the vote."""

    prompt_a: Annotated[str, Field("The prompt_id of the first reply (a).")]
    prompt_b: Annotated[str, Field("The prompt_id of the second reply (b).")]
    outcome: Annotated[
        Outcome,
        Field('Which reply was better: "a", "b", "tie" or "both_bad".'),
    ]
    feedback: NotRequired[str | None]
    compare_id: NotRequired[
        Annotated[str | None, Field("Default: the compare_id the two replies share.")]
    ]


class Preference(TypedDict):
    status: Literal["ok"]
    message: NotRequired[str]
    compare_id: str | None
    prompt_a: str
    prompt_b: str
    model_a: str
    model_b: str
    template_id: NotRequired[
        Annotated[str | None, Field("The template both replies came from, if they share one.")]
    ]
    outcome: Outcome
    winner: Annotated[str | None, Field("The preferred model; null for tie or both_bad.")]
    feedback: NotRequired[str | None]
    created_at: str
    warnings: NotRequired[
        Annotated[list[str], Field("Log files that could not be written; the preference was kept.")]
    ]


# ---- /rate ----------------------------------------------------------------------------------


class RateRequest(TypedDict):
    prompt_id: Annotated[str, Field("The prompt_id of the reply to rate.")]
    model: NotRequired[str | None]
    rating: Annotated[int, Field("A whole number from 1 to 5.", minimum=1, maximum=5)]
    feedback: NotRequired[str | None]


class RateFeedback(TypedDict, total=False):
    """Optional body of the query form ?prompt_id=&score=."""

    feedback: str | None
    model: str | None


class Rating(TypedDict):
    status: Literal["ok"]
    message: NotRequired[str]
    prompt_id: str
    model: str | None
    rating: Annotated[int, Field(minimum=1, maximum=5)]
    feedback: str | None
    created_at: str
    warnings: NotRequired[
        Annotated[list[str], Field("Log files that could not be written; the rating was kept.")]
    ]


# ---- /stats ---------------------------------------------------------------------------------


class Stats(StatsSummary):
    """The core's analytics (a request counts for model_used when ok, else for
    requested_model) and which leaderboard they carry."""

    leaderboard_template: Annotated[
        str | None,
        Field("The ?template the leaderboard is for (its votes only); null: every template's."),
    ]


# ---- /models, /templates, /health -----------------------------------------------------------

_CAPABILITIES = Field(schema=ref("Capabilities"))


class LiveListing(TypedDict):
    ok: bool
    count: NotRequired[int]
    error: NotRequired[str]


class Models(TypedDict):
    available_models: list[str]
    note: str
    default_model: NotRequired[str]
    models: list[ModelRow]
    live: NotRequired[
        Annotated[
            dict[str, LiveListing],
            Field("Only with ?live=true: per provider {ok, count} or {ok, error}."),
        ]
    ]


class Templates(TypedDict):
    templates: list[TemplateInfo]
    count: int
    warning: NotRequired[str | None]


class ProviderKey(TypedDict):
    kind: str
    has_key: bool


class Health(TypedDict):
    status: Literal["ok"]
    version: NotRequired[str]
    demo: NotRequired[bool]
    default_model: NotRequired[str]
    providers: dict[str, ProviderKey]
    uptime_s: NotRequired[float]


# ---- errors ---------------------------------------------------------------------------------


class OpenAIErrorObject(TypedDict):
    message: str
    type: str
    code: NotRequired[str | None]
    param: NotRequired[str | None]


class Error(TypedDict):
    """Every error. Under /v1 it also carries OpenAI's `error` object."""

    detail: str
    prompt_id: NotRequired[str]
    error_kind: NotRequired[str | None]
    param: NotRequired[
        Annotated[
            str,
            Field(
                "The request field at fault (`top_p`, `messages[1].content[0]`), when there is one."
            ),
        ]
    ]
    attempts: NotRequired[list[Attempt]]
    error: NotRequired[OpenAIErrorObject]
    budget: NotRequired[
        Annotated[
            Literal["daily_usd", "monthly_usd"], Field("429: the [budget] limit that is reached.")
        ]
    ]
    limit_usd: NotRequired[Annotated[float, Field("429: the limit.")]]
    spent_usd: NotRequired[Annotated[float, Field("429: spent in its period so far.")]]
    resets_at: NotRequired[Annotated[str, Field("429: when the budget resets (ISO 8601, UTC).")]]
    retry_after_s: NotRequired[Annotated[int, Field("429: seconds until then (as Retry-After).")]]
    compare_id: NotRequired[Annotated[str, Field("/compare: the failed compare.")]]
    prompt_ids: NotRequired[
        Annotated[list[str], Field("/compare: the prompt_ids of both failed replies (a, b).")]
    ]


# ---- /v1 ------------------------------------------------------------------------------------


class TextPart(TypedDict):
    type: Literal["text"]
    text: str


class ImageURL(TypedDict):
    url: Annotated[
        str,
        Field("A data:image/...;base64 URL, or http(s) when [routing] fetch_image_urls = true."),
    ]
    detail: NotRequired[Literal["auto", "low", "high"]]


class ImagePart(TypedDict):
    type: Literal["image_url"]
    image_url: ImageURL


ContentPart = Annotated[TextPart | ImagePart, Named("ContentPart")]


class V1Message(TypedDict):
    """Images only in user messages, tool_calls only on assistant messages."""

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: NotRequired[
        Annotated[
            str | list[ContentPart] | None,
            Field("null only on an assistant message with tool_calls."),
        ]
    ]
    tool_calls: NotRequired[list[ToolCall]]
    tool_call_id: NotRequired[Annotated[str, Field("On a tool message: the call it answers.")]]
    name: NotRequired[
        Annotated[str, Field("The participant's name (not on tool messages; Gemini: not sent).")]
    ]


class Usage(TypedDict):
    """Summed over every attempt that produced text of this reply."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    estimated: Annotated[
        bool,
        Field(
            "Counted by the router (tiktoken), not reported by the provider, for at least "
            "part of the reply (e.g. an attempt whose stream broke)."
        ),
    ]


_ROUTER_DETAILS = Field(schema=ref("RouterDetails"))
FinishReason = Literal["stop", "length", "content_filter", "tool_calls"]


class AssistantMessage(TypedDict):
    role: Literal["assistant"]
    content: Annotated[str | None, Field("null when the model only called tools.")]
    tool_calls: NotRequired[list[ToolCall]]


class Choice(TypedDict):
    index: int
    message: AssistantMessage
    finish_reason: FinishReason
    logprobs: NotRequired[None]


class ChatCompletion(TypedDict):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: Annotated[str, Field("The model that answered.")]
    choices: list[Choice]
    usage: Usage
    system_fingerprint: NotRequired[None]
    x_llmrouter: Annotated[dict[str, Any], _ROUTER_DETAILS]


class ChunkDelta(TypedDict, total=False):
    role: str
    content: str | None
    tool_calls: list[ToolCallChunk]


class ChunkChoice(TypedDict):
    index: int
    delta: ChunkDelta
    finish_reason: FinishReason | None
    logprobs: NotRequired[None]


class ChatCompletionChunkBody(TypedDict):
    """A chat.completion.chunk."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: NotRequired[Usage]
    x_llmrouter: NotRequired[Annotated[dict[str, Any], _ROUTER_DETAILS]]


class StreamError(TypedDict):
    """A failure after the first chunk."""

    error: OpenAIErrorObject
    x_llmrouter: NotRequired[Annotated[dict[str, Any], _ROUTER_DETAILS]]


ChatCompletionChunk = Annotated[
    ChatCompletionChunkBody | StreamError,
    Named(
        "ChatCompletionChunk",
        "One `data:` event of a streamed completion; `data: [DONE]` ends a successful "
        "stream, a failure after the first chunk is an error event and no [DONE].",
    ),
]


class ModelDetails(TypedDict):
    label: NotRequired[str]
    context_window: NotRequired[int | None]
    status: str
    replacement: NotRequired[str | None]
    capabilities: Annotated[dict[str, Any], _CAPABILITIES]


class Model(TypedDict):
    id: str
    object: Literal["model"]
    created: int
    owned_by: Annotated[str, Field("The provider.")]
    x_llmrouter: NotRequired[ModelDetails]


class ModelList(TypedDict):
    object: Literal["list"]
    data: list[Model]


#: The components /openapi.json describes (every shape these refer to comes along).
COMPONENTS: tuple[Any, ...] = (
    ChatRequest,
    ChatResult,
    ROUTER_DETAILS,
    ChatStreamEvent,
    CompareRequest,
    Compare,
    COMPARE_REPLY,
    COMPARE_STREAM_EVENT,
    PreferRequest,
    Preference,
    RateRequest,
    RateFeedback,
    Rating,
    Stats,
    Models,
    Templates,
    Health,
    Error,
    V1Message,
    ChatCompletion,
    ChatCompletionChunk,
    ModelList,
)
