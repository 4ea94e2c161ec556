"""The OpenAPI 3.1 description of the server's API, as data.

Request fields of /v1/chat/completions (and the OpenAI parameters /chat takes) come from
parameters.PARAMETERS; attempt outcomes, model capabilities and preference outcomes from the
core's own lists. Shapes that are another shape with a difference are derived from it, not
written twice: /v1's x_llmrouter (RouterDetails) and a compare's reply (CompareReply) from
the /chat record, /compare's request from /chat's, its stream events from /chat's events.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from typing import Any, get_args

from .. import __version__
from ..core.capabilities import CAPABILITY_HELP
from ..core.preferences import OUTCOMES
from ..core.types import AttemptOutcome
from .compare import BLIND_HIDDEN, BLIND_HIDDEN_START, SIDES
from .errors import BUDGET_CODE
from .parameters import CHAT_PARAMETERS, PARAMETERS, Param

JSON = "application/json"
SSE = "text/event-stream"
PROMETHEUS = "text/plain; version=0.0.4"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema_type: str) -> dict[str, Any]:
    return {"type": [schema_type, "null"]}


def _obj(
    properties: dict[str, Any], required: list[str] | None = None, **more: Any
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    schema.update(more)
    return schema


def _sse(event: str) -> dict[str, Any]:
    """A text/event-stream of `event` objects: OpenAPI 3.1 has no itemSchema, so `schema`
    describes one parsed event (as schemathesis reads it); `data` holds the JSON (or [DONE])."""
    return {
        "schema": _obj(
            {
                "event": {"type": "string"},
                "id": {"type": "string"},
                "retry": {"type": "integer"},
                "data": {
                    "type": "string",
                    "contentMediaType": JSON,
                    "contentSchema": _ref(event),
                },
            },
            ["data"],
        ),
        "x-event-schema": _ref(event),
    }


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _without(schema: dict[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """`schema` (an object schema) without `names` among its properties and required."""
    drop = set(names)
    out = dict(schema)
    out["properties"] = {k: v for k, v in schema["properties"].items() if k not in drop}
    if "required" in schema:
        out["required"] = [name for name in schema["required"] if name not in drop]
    return out


def _optional(schema: dict[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """`schema` with `names` no longer required (still described)."""
    drop = set(names)
    return {**schema, "required": [name for name in schema.get("required", ()) if name not in drop]}


_RETRY_HEADERS = {
    "Retry-After": {
        "description": "Whole seconds until the budget resets.",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    },
    "x-should-retry": {
        "description": "Always false: tells the openai SDKs not to retry before then.",
        "required": True,
        "schema": {"type": "string", "enum": ["false"]},
    },
}


def _errors(*statuses: int) -> dict[str, Any]:
    reasons = {
        400: "Malformed JSON, an invalid field (the detail names it) or a malformed Host header",
        401: "Missing or wrong bearer token",
        403: "Sent by a web page of another origin (Origin header) not listed with --cors-origin",
        404: "Unknown path, or an unknown prompt_id for /rate or /prefer",
        405: "Method not allowed on this path",
        413: "Request body larger than the limit (1 MiB by default)",
        415: "A POST without Content-Type: application/json (UTF-8), even with an empty body",
        421: "A Host name this server does not answer to (DNS rebinding); see --allow-host",
        422: "The provider's content filter refused the request (its reason in detail)",
        429: "A [budget] limit is reached and the model is paid: detail names the budget and "
        f"when it resets (resets_at); error_kind {BUDGET_CODE!r}; under /v1 OpenAI's error "
        'type "insufficient_quota". Free models still answer.',
        500: "Internal error (never a traceback)",
        502: "Every candidate model failed; detail lists each attempt",
        503: "Storage unavailable",
        504: "The total deadline (total_timeout_s) ran out",
    }
    out = {str(s): _json(_ref("Error"), reasons[s]) for s in statuses}
    if "429" in out:
        out["429"]["headers"] = _RETRY_HEADERS
    return out


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


_BOOL_QUERY = {"type": "string", "enum": ["true", "false", "1", "0", "yes", "no", "on", "off"]}


def _described(param: Param) -> dict[str, Any]:
    """A parameter's schema with what the router does with it."""
    what = {
        "router": "",
        "passed": "Passed to the provider when the model accepts it, else refused by name. ",
        "accepted": "Accepted, not sent. ",
        "refused": "Refused (400 naming it) unless null"
        + "".join(f" or {json.dumps(n)}" for n in param.neutral)
        + ": ",
    }[param.handling]
    extension = "Extension. " if param.extension else ""
    return {**param.schema, "description": f"{extension}{what}{param.note}".strip()}


_ATTEMPT = _obj(
    {
        "model": {"type": "string"},
        "provider": {"type": "string"},
        "outcome": {
            "type": "string",
            "enum": list(get_args(AttemptOutcome)),
            "description": "skipped_unsupported: the model cannot honour a parameter of the "
            "request (message says which); skipped_no_key / skipped_circuit_open: not tried.",
        },
        "status": _nullable("integer"),
        "error": _nullable("string"),
        "message": _nullable("string"),
        "ms": {"type": "number"},
        "started_at": {"type": "number"},
    },
    ["model", "provider", "outcome"],
)

_TOKENS = _obj(
    {
        "prompt": {"type": "integer"},
        "completion": {"type": "integer"},
        "total": {"type": "integer"},
        "estimated": {"type": "boolean"},
    },
    ["prompt", "completion", "total", "estimated"],
)

_CHAT_RESULT = _obj(
    {
        "prompt_id": {"type": "string"},
        "model_used": _nullable("string"),
        "response_text": {"type": "string"},
        "latency_ms": {"type": "number"},
        "token_count": {"type": "integer"},
        "from_cache": {"type": "boolean"},
        "requested_model": {"type": "string"},
        "provider": _nullable("string"),
        "fallback_used": {"type": "boolean"},
        "ttft_ms": _nullable("number"),
        "tokens": _ref("Tokens"),
        "attempts": {"type": "array", "items": _ref("Attempt")},
        "notice": _nullable("string"),
        "status": {"type": "string", "enum": ["ok", "error", "cancelled"]},
        "finish_reason": _nullable("string"),
        "truncated": {"type": "boolean"},
        "tool_calls": {"type": "array", "items": _ref("ToolCall")},
        "template_id": _nullable("string"),
        "conversation_id": _nullable("string"),
        "error": _nullable("string"),
        "error_kind": _nullable("string"),
        "demo": {"type": "boolean"},
        "created_at": {"type": "string"},
        "warnings": {"type": "array", "items": {"type": "string"}},
        "cost_usd": {
            "type": ["number", "null"],
            "minimum": 0,
            "description": "USD this reply cost (input and output tokens at the model's "
            "price); 0 for a cache hit or a free model; null when the request failed or the "
            "model has no price.",
        },
        "cost_estimated": {
            "type": "boolean",
            "description": "The cost comes from estimated token counts.",
        },
        "saved_usd": {
            "type": ["number", "null"],
            "minimum": 0,
            "description": "A cache hit: what the reply would have cost; else null.",
        },
        "auto_reason": {
            "type": ["string", "null"],
            "description": "Model auto: why it chose the first candidate ('auto → MODEL: "
            "rated 4.4 (n=23), …'); null for any other model.",
        },
        "compare_id": {
            "type": ["string", "null"],
            "description": "Shared by the two replies of a compare (POST /compare).",
        },
    },
    [
        "prompt_id",
        "model_used",
        "response_text",
        "latency_ms",
        "token_count",
        "from_cache",
        "requested_model",
        "fallback_used",
        "ttft_ms",
        "tokens",
        "attempts",
        "notice",
        "status",
        "cost_usd",
        "cost_estimated",
        "saved_usd",
        "auto_reason",
        "compare_id",
    ],
    description="The record of one routed request (the original's six fields first).",
)

_ROUTER_DETAILS = {
    **_without(_CHAT_RESULT, ["response_text"]),
    "description": "Router details of a /v1 reply (x_llmrouter): the /chat record without "
    "response_text.",
}

_COMPARE_REPLY = {
    **_optional(_CHAT_RESULT, BLIND_HIDDEN),
    "description": "One reply of a compare: the /chat record. In a blind compare, without "
    + ", ".join(BLIND_HIDDEN)
    + " (they name the model) until the vote.",
}

_MESSAGE = _obj(
    {
        "role": {"type": "string", "enum": ["system", "user", "assistant"]},
        "content": {"type": "string"},
    },
    ["role", "content"],
)

_CHAT_REQUEST = _obj(
    {
        "prompt": {
            "type": "string",
            "description": "The prompt (one of prompt, template_id, messages).",
        },
        "template_id": {"type": "string"},
        "template_vars": {"type": "object", "additionalProperties": {"type": ["string", "number"]}},
        "template": {
            "type": "string",
            "description": "Legacy: a template id; `prompt` then "
            "fills its first variable that has no value and no default.",
        },
        "messages": {"type": "array", "items": _ref("Message"), "minItems": 1},
        "system": {"type": "string"},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "max_tokens": {"type": "integer", "minimum": 1},
        "conversation_id": {"type": "string"},
        "model": {
            "type": "string",
            "description": "Same as the model query parameter (auto: the router picks by "
            "evidence, auto_reason says why).",
        },
        "ignore_cache": {"type": "boolean"},
        "stream": {"type": "boolean"},
        **{p.name: _described(p) for p in CHAT_PARAMETERS},
    },
    description="Unknown fields are ignored. OpenAI parameters /chat does not take (tools, "
    "n, logprobs, logit_bias…) are refused by name when set: send those to "
    "/v1/chat/completions.",
)

_CHAT_EVENT: dict[str, Any] = {
    "description": "One `data:` event of POST /chat?stream=true.",
    "oneOf": [
        _obj(
            {
                "type": {"const": "start"},
                "prompt_id": _nullable("string"),
                "requested_model": _nullable("string"),
                "model": {"type": "string"},
                "notice": _nullable("string"),
            },
            ["type", "prompt_id", "model"],
        ),
        _obj({"type": {"const": "delta"}, "text": {"type": "string"}}, ["type", "text"]),
        _obj(
            {"type": {"const": "tool_call"}, "tool_call": _ref("ToolCallChunk")},
            ["type", "tool_call"],
        ),
        _obj({"type": {"const": "done"}, "result": _ref("ChatResult")}, ["type", "result"]),
        _obj(
            {
                "type": {"const": "error"},
                "error": _obj(
                    {
                        "status": {"type": "integer"},
                        "kind": _nullable("string"),
                        "message": {"type": "string"},
                    },
                    ["status", "message"],
                ),
                "result": _ref("ChatResult"),
            },
            ["type", "error"],
        ),
    ],
}


def _side_event(event: dict[str, Any]) -> dict[str, Any]:
    """A /chat stream event as one side of a compare: tagged `side`, its record a
    CompareReply, and in a blind compare without the fields that name the model."""
    properties = {
        "type": event["properties"]["type"],
        "side": {"enum": list(SIDES), "description": "Which reply: a or b."},
        **event["properties"],
    }
    if "result" in properties:
        properties["result"] = _ref("CompareReply")
    required = [n for n in event["required"] if n not in BLIND_HIDDEN_START and n != "type"]
    return _obj(properties, ["type", "side", *required])


_COMPARE_EVENT = {
    "description": "One `data:` event of POST /compare with stream=true: `compare` first, "
    "then both replies' /chat events as they come (each tagged by side), then `end` once "
    "both finished (no `end`: the stream broke).",
    "oneOf": [
        _obj(
            {
                "type": {"const": "compare"},
                "compare_id": {"type": "string"},
                "blind": {"type": "boolean"},
                "models": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "The models asked for, a then b (not in a blind compare).",
                },
            },
            ["type", "compare_id", "blind"],
        ),
        *(_side_event(option) for option in _CHAT_EVENT["oneOf"]),
        _obj({"type": {"const": "end"}, "compare_id": {"type": "string"}}, ["type", "compare_id"]),
    ],
}

_COMPARE_REQUEST = {
    **_without(_CHAT_REQUEST, ["model"]),
    "description": "The /chat body without model, plus models and blind. Unknown fields are "
    "ignored; OpenAI parameters /chat does not take are refused by name.",
}
_COMPARE_REQUEST["properties"] = {
    **_COMPARE_REQUEST["properties"],
    "models": {
        "type": "array",
        "items": {"type": "string"},
        "minItems": 2,
        "maxItems": 2,
        "description": "The two models, a then b (auto too). Left out: the two auto ranks "
        "highest now (for the request's template, if any).",
    },
    "blind": {
        "type": "boolean",
        "description": "Put the two models in random order and leave out every field that "
        "names a reply's model until the vote (POST /prefer answers with both names).",
    },
}

_COMPARE = _obj(
    {
        "compare_id": {"type": "string", "description": "Give it to POST /prefer."},
        "blind": {"type": "boolean"},
        "models": {
            "type": "array",
            "items": {"type": "string"},
            "description": "The models asked for, a then b (not in a blind compare).",
        },
        "a": _ref("CompareReply"),
        "b": _ref("CompareReply"),
    },
    ["compare_id", "blind", "a", "b"],
    description="Both replies (each with its prompt_id for POST /prefer). A side that failed "
    "has status error (with error_kind); when both fail the answer is an error status.",
)

_PREFER_REQUEST = _obj(
    {
        "prompt_a": {"type": "string", "description": "prompt_id of the first reply (a)."},
        "prompt_b": {"type": "string", "description": "prompt_id of the second reply (b)."},
        "outcome": {
            "enum": list(OUTCOMES),
            "description": "a or b: that reply was better; tie; both_bad.",
        },
        "feedback": _nullable("string"),
        "compare_id": {
            "type": ["string", "null"],
            "description": "Default: the compare_id the two replies share.",
        },
    },
    ["prompt_a", "prompt_b", "outcome"],
    description="Voting again on the same two replies (in either order) replaces the vote.",
)

_PREFERENCE = _obj(
    {
        "status": {"const": "ok"},
        "message": {"type": "string"},
        "compare_id": _nullable("string"),
        "prompt_a": {"type": "string"},
        "prompt_b": {"type": "string"},
        "model_a": {"type": "string"},
        "model_b": {"type": "string"},
        "template_id": {
            "type": ["string", "null"],
            "description": "The template both replies came from, if they share one.",
        },
        "outcome": {"enum": list(OUTCOMES)},
        "winner": {
            "type": ["string", "null"],
            "description": "The preferred model; null for tie or both_bad.",
        },
        "feedback": _nullable("string"),
        "created_at": {"type": "string"},
        "warnings": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Log files that could not be written; the preference was kept.",
        },
    },
    [
        "status",
        "prompt_a",
        "prompt_b",
        "model_a",
        "model_b",
        "outcome",
        "winner",
        "compare_id",
        "created_at",
    ],
)

_ERROR = _obj(
    {
        "detail": {"type": "string"},
        "prompt_id": {"type": "string"},
        "error_kind": _nullable("string"),
        "param": {
            "type": "string",
            "description": "The request field at fault (`top_p`, `messages[1].content[0]`), "
            "when there is one.",
        },
        "attempts": {"type": "array", "items": _ref("Attempt")},
        "error": _ref("OpenAIErrorObject"),
        "budget": {
            "enum": ["daily_usd", "monthly_usd"],
            "description": "429: the [budget] limit that is reached.",
        },
        "limit_usd": {"type": "number", "description": "429: the limit."},
        "spent_usd": {"type": "number", "description": "429: spent in its period so far."},
        "resets_at": {
            "type": "string",
            "description": "429: when the budget resets (ISO 8601, UTC).",
        },
        "retry_after_s": {
            "type": "integer",
            "description": "429: seconds until then (as Retry-After).",
        },
        "compare_id": {"type": "string", "description": "/compare: the failed compare."},
        "prompt_ids": {
            "type": "array",
            "items": {"type": "string"},
            "description": "/compare: the prompt_ids of both failed replies (a, b).",
        },
    },
    ["detail"],
    description="Every error. Under /v1 it also carries OpenAI's `error` object.",
)

_OPENAI_ERROR_OBJECT = _obj(
    {
        "message": {"type": "string"},
        "type": {"type": "string"},
        "code": _nullable("string"),
        "param": _nullable("string"),
    },
    ["message", "type"],
)

_RATE_REQUEST = _obj(
    {
        "prompt_id": {"type": "string"},
        "model": {"type": ["string", "null"]},
        "rating": {"type": "integer", "minimum": 1, "maximum": 5},
        "feedback": _nullable("string"),
    },
    ["prompt_id", "rating"],
)

_RATE_FEEDBACK = _obj(
    {"feedback": _nullable("string"), "model": _nullable("string")},
    description="Optional body of the query form ?prompt_id=&score=.",
)

_RATING = _obj(
    {
        "status": {"const": "ok"},
        "message": {"type": "string"},
        "prompt_id": {"type": "string"},
        "model": _nullable("string"),
        "rating": {"type": "integer", "minimum": 1, "maximum": 5},
        "feedback": _nullable("string"),
        "created_at": {"type": "string"},
        "warnings": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Log files that could not be written; the rating was kept.",
        },
    },
    ["status", "prompt_id", "model", "rating", "feedback", "created_at"],
)

_PER_MODEL = _obj(
    {
        "requests": {"type": "integer"},
        "ok": {"type": "integer"},
        "errors": {"type": "integer"},
        "cache_hits": {"type": "integer"},
        "fallbacks": {"type": "integer"},
        "p50_latency_ms": _nullable("number"),
        "p95_latency_ms": _nullable("number"),
        "p50_ttft_ms": _nullable("number"),
        "p95_ttft_ms": _nullable("number"),
        "avg_rating": _nullable("number"),
        "ratings": {"type": "integer"},
        "prompt_tokens": {"type": "integer"},
        "completion_tokens": {"type": "integer"},
        "total_tokens": {"type": "integer"},
        "cost_usd": {"type": "number", "description": "Spent on this model's replies."},
        "saved_usd": {"type": "number", "description": "Saved by its cache hits."},
    },
    ["requests", "ok", "errors"],
)

_COST = _obj(
    {
        "total_usd": {"type": "number", "description": "Spent on every priced reply."},
        "saved_usd": {"type": "number", "description": "What cache hits would have cost."},
        "priced_requests": {"type": "integer"},
        "estimated_requests": {
            "type": "integer",
            "description": "Priced replies whose cost came from estimated token counts.",
        },
        "per_day": {
            "type": "array",
            "description": "The last 31 UTC days with requests, oldest first.",
            "items": _obj(
                {
                    "day": {"type": "string", "description": "YYYY-MM-DD (UTC)."},
                    "requests": {"type": "integer"},
                    "cost_usd": {"type": "number"},
                    "saved_usd": {"type": "number"},
                    "by_model": {
                        "type": "object",
                        "additionalProperties": {"type": "number"},
                        "description": "USD spent per model that day.",
                    },
                },
                ["day", "requests", "cost_usd", "saved_usd", "by_model"],
            ),
        },
    },
    ["total_usd", "saved_usd", "priced_requests", "estimated_requests", "per_day"],
    description="Spend per model (per_model.*.cost_usd) and per day, and cache savings.",
)

_LEADERBOARD_ROW = _obj(
    {
        "rank": {"type": "integer", "minimum": 1},
        "model": {"type": "string"},
        "bt_score": {
            "type": ["number", "null"],
            "description": "Bradley–Terry score from compares on the Elo scale (1000: an "
            "average model; +100 ≈ a 64 % chance of winning); null without compares.",
        },
        "bt_low": {"type": ["number", "null"], "description": "Its 95 % interval."},
        "bt_high": {"type": ["number", "null"]},
        "compares": {"type": "integer"},
        "wins": {"type": "integer"},
        "losses": {"type": "integer"},
        "ties": {"type": "integer"},
        "both_bad": {"type": "integer"},
        "win_rate": {
            "type": ["number", "null"],
            "description": "Observed, ties and both-bad as half.",
        },
        "mean_rating": {"type": ["number", "null"], "description": "Mean 1–5 rating."},
        "rating_low": {"type": ["number", "null"], "description": "Its 95 % interval."},
        "rating_high": {"type": ["number", "null"]},
        "ratings": {"type": "integer"},
    },
    ["rank", "model", "bt_score", "compares", "wins", "losses", "ties", "mean_rating", "ratings"],
)

_STATS = _obj(
    {
        "model_usage": {"type": "object", "additionalProperties": {"type": "integer"}},
        "avg_latency": {"type": ["number", "null"], "description": "Seconds (ok requests)."},
        "avg_rating": _nullable("number"),
        "total_fallbacks": {"type": "integer"},
        "total_prompts": {"type": "integer"},
        "ok": {"type": "integer"},
        "errors": {"type": "integer"},
        "cancelled": {"type": "integer"},
        "cache_hits": {"type": "integer"},
        "cache_hit_rate": {"type": "number"},
        "tokens": {"type": "object"},
        "ratings": {"type": "object"},
        "per_model": {"type": "object", "additionalProperties": _ref("PerModelStats")},
        "percentiles_approximate": {"type": "boolean"},
        "cost": _ref("Cost"),
        "leaderboard": {
            "type": "array",
            "items": _ref("LeaderboardRow"),
            "description": "Best first: from every vote, or with ?template=ID from the votes "
            "given to that template's replies.",
        },
        "leaderboard_template": {
            "type": ["string", "null"],
            "description": "The ?template the leaderboard is for; null: every template.",
        },
    },
    [
        "model_usage",
        "avg_latency",
        "avg_rating",
        "total_fallbacks",
        "total_prompts",
        "cost",
        "leaderboard",
        "leaderboard_template",
    ],
)

_MODEL_ROW = _obj(
    {
        "id": {"type": "string"},
        "provider": {"type": "string"},
        "label": {"type": "string"},
        "context_window": _nullable("integer"),
        "status": {
            "type": "string",
            "description": "available, preview, deprecated, no key, "
            "no provider, cooling down, 'retired → REPLACEMENT', or for ?live=true "
            "'not in catalog (live listing)'.",
        },
        "catalog_status": _nullable("string"),
        "replacement": _nullable("string"),
        "shutdown": _nullable("string"),
        "kind": _nullable("string"),
        "capabilities": _ref("Capabilities"),
        "live": {
            "type": ["boolean", "null"],
            "description": "Only with ?live=true: listed "
            "by the provider now (null when its listing failed).",
        },
    },
    ["id", "provider", "label", "context_window", "status"],
)

_MODELS = _obj(
    {
        "available_models": {"type": "array", "items": {"type": "string"}},
        "note": {"type": "string"},
        "default_model": {"type": "string"},
        "models": {"type": "array", "items": _ref("ModelRow")},
        "live": {
            "type": "object",
            "description": "Only with ?live=true: per provider {ok, count} or {ok, error}.",
            "additionalProperties": _obj(
                {
                    "ok": {"type": "boolean"},
                    "count": {"type": "integer"},
                    "error": {"type": "string"},
                },
                ["ok"],
            ),
        },
    },
    ["available_models", "note", "models"],
)

_TEMPLATE = _obj(
    {
        "id": {"type": "string"},
        "title": {"type": "string"},
        "category": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "variables": {"type": "array", "items": {"type": "string"}},
        "defaults": {"type": "object", "additionalProperties": {"type": "string"}},
        "system": _nullable("string"),
        "description": _nullable("string"),
        "prompt": {"type": "string"},
    },
    ["id", "title", "variables", "prompt"],
)

_TEMPLATES = _obj(
    {
        "templates": {"type": "array", "items": _ref("Template")},
        "count": {"type": "integer"},
        "warning": _nullable("string"),
    },
    ["templates", "count"],
)

_HEALTH = _obj(
    {
        "status": {"const": "ok"},
        "version": {"type": "string"},
        "demo": {"type": "boolean"},
        "default_model": {"type": "string"},
        "providers": {
            "type": "object",
            "additionalProperties": _obj(
                {"kind": {"type": "string"}, "has_key": {"type": "boolean"}},
                ["kind", "has_key"],
                additionalProperties=False,
            ),
        },
        "uptime_s": {"type": "number"},
    },
    ["status", "providers"],
)

_OPENAI_REQUEST = _obj(
    {p.name: _described(p) for p in PARAMETERS},
    ["messages"],
    additionalProperties=False,
    description="Every OpenAI chat-completions parameter is passed to the provider (mapped "
    "for Gemini) or refused with a 400 naming it and the model; unknown fields are refused "
    'too. The README\'s "OpenAI parameters" table says which, per provider.',
)

_CONTENT_PART = {
    "oneOf": [
        _obj({"type": {"const": "text"}, "text": {"type": "string"}}, ["type", "text"]),
        _obj(
            {
                "type": {"const": "image_url"},
                "image_url": _obj(
                    {
                        "url": {
                            "type": "string",
                            "description": "A data:image/...;base64 URL, or http(s) when "
                            "[routing] fetch_image_urls = true.",
                        },
                        "detail": {"enum": ["auto", "low", "high"]},
                    },
                    ["url"],
                ),
            },
            ["type", "image_url"],
        ),
    ]
}

_V1_MESSAGE = _obj(
    {
        "role": {"enum": ["system", "developer", "user", "assistant", "tool"]},
        "content": {
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": _ref("ContentPart")},
                {"type": "null"},
            ],
            "description": "null only on an assistant message with tool_calls.",
        },
        "tool_calls": {"type": "array", "items": _ref("ToolCall")},
        "tool_call_id": {
            "type": "string",
            "description": "On a tool message: the call it answers.",
        },
    },
    ["role"],
    description="Images only in user messages, tool_calls only on assistant messages.",
)

_TOOL_CALL = _obj(
    {
        "id": {"type": "string"},
        "type": {"const": "function"},
        "function": _obj(
            {"name": {"type": "string"}, "arguments": {"type": "string"}}, ["name", "arguments"]
        ),
        "extra_content": {
            "type": "object",
            "description": "Gemini's thought signature ({google: {thought_signature}}); send "
            "it back with the call.",
        },
    },
    ["id", "type", "function"],
)

_TOOL_CALL_CHUNK = _obj(
    {
        "index": {"type": "integer"},
        "id": {"type": "string"},
        "type": {"const": "function"},
        "function": _obj({"name": {"type": "string"}, "arguments": {"type": "string"}}),
        "extra_content": {"type": "object"},
    },
    ["index", "function"],
    description="A piece of a tool call: the first per index has id, type and the name; the "
    "arguments arrive in pieces.",
)

_CAPABILITIES = _obj(
    {
        name: {"type": "array", "items": {"type": "string"}, "description": help_text}
        if name == "reasoning_effort"
        else {"type": "boolean", "description": help_text}
        for name, help_text in CAPABILITY_HELP.items()
    },
    list(CAPABILITY_HELP),
    description="What the model accepts beyond plain chat; a request needing more is refused "
    "(or, for a fallback, skipped).",
)

_USAGE = _obj(
    {
        "prompt_tokens": {"type": "integer"},
        "completion_tokens": {"type": "integer"},
        "total_tokens": {"type": "integer"},
        "estimated": {
            "type": "boolean",
            "description": "Counted by the router (tiktoken), not reported by the provider, "
            "for at least part of the reply (e.g. an attempt whose stream broke).",
        },
    },
    ["prompt_tokens", "completion_tokens", "total_tokens", "estimated"],
    description="Summed over every attempt that produced text of this reply.",
)

_COMPLETION = _obj(
    {
        "id": {"type": "string"},
        "object": {"const": "chat.completion"},
        "created": {"type": "integer"},
        "model": {"type": "string", "description": "The model that answered."},
        "choices": {
            "type": "array",
            "items": _obj(
                {
                    "index": {"type": "integer"},
                    "message": _obj(
                        {
                            "role": {"const": "assistant"},
                            "content": {
                                "type": ["string", "null"],
                                "description": "null when the model only called tools.",
                            },
                            "tool_calls": {"type": "array", "items": _ref("ToolCall")},
                        },
                        ["role", "content"],
                    ),
                    "finish_reason": {
                        "enum": ["stop", "length", "content_filter", "tool_calls"],
                    },
                },
                ["index", "message", "finish_reason"],
            ),
        },
        "usage": _ref("Usage"),
        "x_llmrouter": _ref("RouterDetails"),
    },
    ["id", "object", "created", "model", "choices", "usage", "x_llmrouter"],
)

_CHUNK = {
    "description": "One `data:` event of a streamed completion; `data: [DONE]` ends a "
    "successful stream, a failure after the first chunk is an error event and no [DONE].",
    "oneOf": [
        _obj(
            {
                "id": {"type": "string"},
                "object": {"const": "chat.completion.chunk"},
                "created": {"type": "integer"},
                "model": {"type": "string"},
                "choices": {
                    "type": "array",
                    "items": _obj(
                        {
                            "index": {"type": "integer"},
                            "delta": _obj(
                                {
                                    "role": {"type": "string"},
                                    "content": {"type": ["string", "null"]},
                                    "tool_calls": {
                                        "type": "array",
                                        "items": _ref("ToolCallChunk"),
                                    },
                                }
                            ),
                            "finish_reason": _nullable("string"),
                        },
                        ["index", "delta", "finish_reason"],
                    ),
                },
                "usage": _ref("Usage"),
                "x_llmrouter": _ref("RouterDetails"),
            },
            ["id", "object", "created", "model", "choices"],
        ),
        _obj({"error": _ref("OpenAIErrorObject"), "x_llmrouter": _ref("RouterDetails")}, ["error"]),
    ],
}

_MODEL = _obj(
    {
        "id": {"type": "string"},
        "object": {"const": "model"},
        "created": {"type": "integer"},
        "owned_by": {"type": "string", "description": "The provider."},
        "x_llmrouter": _obj(
            {
                "label": {"type": "string"},
                "context_window": _nullable("integer"),
                "status": {"type": "string"},
                "replacement": _nullable("string"),
                "capabilities": _ref("Capabilities"),
            },
            ["status", "capabilities"],
        ),
    },
    ["id", "object", "created", "owned_by"],
)

_MODEL_LIST = _obj(
    {"object": {"const": "list"}, "data": {"type": "array", "items": _ref("Model")}},
    ["object", "data"],
)

SCHEMAS: dict[str, Any] = {
    "Attempt": _ATTEMPT,
    "Tokens": _TOKENS,
    "ChatResult": _CHAT_RESULT,
    "RouterDetails": _ROUTER_DETAILS,
    "CompareRequest": _COMPARE_REQUEST,
    "Compare": _COMPARE,
    "CompareReply": _COMPARE_REPLY,
    "CompareStreamEvent": _COMPARE_EVENT,
    "PreferRequest": _PREFER_REQUEST,
    "Preference": _PREFERENCE,
    "Cost": _COST,
    "LeaderboardRow": _LEADERBOARD_ROW,
    "Message": _MESSAGE,
    "ChatRequest": _CHAT_REQUEST,
    "ChatStreamEvent": _CHAT_EVENT,
    "Error": _ERROR,
    "OpenAIErrorObject": _OPENAI_ERROR_OBJECT,
    "RateRequest": _RATE_REQUEST,
    "RateFeedback": _RATE_FEEDBACK,
    "Rating": _RATING,
    "PerModelStats": _PER_MODEL,
    "Stats": _STATS,
    "ModelRow": _MODEL_ROW,
    "Models": _MODELS,
    "Template": _TEMPLATE,
    "Templates": _TEMPLATES,
    "Health": _HEALTH,
    "OpenAIChatRequest": _OPENAI_REQUEST,
    "Usage": _USAGE,
    "ChatCompletion": _COMPLETION,
    "ChatCompletionChunk": _CHUNK,
    "V1Message": _V1_MESSAGE,
    "ContentPart": _CONTENT_PART,
    "ToolCall": _TOOL_CALL,
    "ToolCallChunk": _TOOL_CALL_CHUNK,
    "Capabilities": _CAPABILITIES,
    "Model": _MODEL,
    "ModelList": _MODEL_LIST,
}

_COMMON = (400, 401, 403, 405, 421, 500)  # 400/403/421: the Host and Origin checks

PATHS: dict[str, Any] = {
    "/chat": {
        "post": {
            "summary": "Route a prompt (whole reply, or SSE with stream=true)",
            "parameters": [
                _query(
                    "model",
                    "Model id, or auto (also accepted in the body)",
                    {"type": "string"},
                ),
                _query("ignore_cache", "Skip the cache for this request", _BOOL_QUERY),
                _query("stream", "Answer text/event-stream", _BOOL_QUERY),
            ],
            "requestBody": {"required": True, "content": {JSON: {"schema": _ref("ChatRequest")}}},
            "responses": {
                "200": {
                    "description": "The record; with stream=true, SSE events (ChatStreamEvent)",
                    "content": {
                        JSON: {"schema": _ref("ChatResult")},
                        SSE: _sse("ChatStreamEvent"),
                    },
                },
                **_errors(400, 413, 415, 422, 429, 502, 504, *_COMMON),
            },
        }
    },
    "/compare": {
        "post": {
            "summary": "Send one request to two models at once (whole replies, or SSE with "
            "stream=true); vote with POST /prefer",
            "parameters": [
                _query("ignore_cache", "Skip the cache for this request", _BOOL_QUERY),
                _query("stream", "Answer text/event-stream", _BOOL_QUERY),
            ],
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": _ref("CompareRequest")}},
            },
            "responses": {
                "200": {
                    "description": "Both records; with stream=true, SSE events "
                    "(CompareStreamEvent)",
                    "content": {
                        JSON: {"schema": _ref("Compare")},
                        SSE: _sse("CompareStreamEvent"),
                    },
                },
                **_errors(400, 413, 415, 422, 429, 502, 504, *_COMMON),
            },
        }
    },
    "/prefer": {
        "post": {
            "summary": "Say which of two replies (a compare's) was better: a, b, tie or both_bad",
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": _ref("PreferRequest")}},
            },
            "responses": {
                "200": _json(_ref("Preference"), "The preference as stored"),
                **_errors(400, 404, 413, 415, 503, *_COMMON),
            },
        }
    },
    "/rate": {
        "post": {
            "summary": "Rate a reply 1-5 (JSON form, or ?prompt_id=&score=)",
            "parameters": [
                _query("prompt_id", "Query form: the prompt_id to rate", {"type": "string"}),
                _query("score", "Query form: 1 to 5", {"type": "string", "pattern": "^[1-5]$"}),
            ],
            "requestBody": {
                "required": False,
                "content": {
                    JSON: {"schema": {"oneOf": [_ref("RateRequest"), _ref("RateFeedback")]}}
                },
            },
            "responses": {
                "200": _json(_ref("Rating"), "The rating as stored"),
                **_errors(400, 404, 413, 415, 503, *_COMMON),
            },
        }
    },
    "/stats": {
        "get": {
            "summary": "Analytics: usage, latency, ratings, cost and the leaderboard",
            "parameters": [
                _query(
                    "template",
                    "The leaderboard from this template's votes only",
                    {"type": "string", "minLength": 1},
                )
            ],
            "responses": {"200": _json(_ref("Stats"), "Stats"), **_errors(503, *_COMMON)},
        }
    },
    "/models": {
        "get": {
            "summary": "Models: the original's list plus status per model",
            "parameters": [_query("live", "Merge the providers' live listings", _BOOL_QUERY)],
            "responses": {"200": _json(_ref("Models"), "Models"), **_errors(400, *_COMMON)},
        }
    },
    "/templates": {
        "get": {
            "summary": "Prompt templates with their variables",
            "responses": {"200": _json(_ref("Templates"), "Templates"), **_errors(*_COMMON)},
        }
    },
    "/health": {
        "get": {
            "summary": "Liveness and which providers have keys (no token needed)",
            "security": [],
            "responses": {
                "200": _json(_ref("Health"), "Healthy"),
                **_errors(400, 403, 405, 421, 500),
            },
        }
    },
    "/metrics": {
        "get": {
            "summary": "Counters for Prometheus: requests, results, attempts, latency, cache, "
            "circuit breakers, recording lag",
            "description": "Prometheus text exposition format 0.0.4, for this process since it "
            "started (each worker answers with its own). Metric families: "
            "llmrouter_http_requests_total{endpoint,status}, "
            "llmrouter_http_requests_in_flight, llmrouter_results_total{status,model}, "
            "llmrouter_attempts_total{outcome,error_kind}, "
            "llmrouter_request_latency_seconds and llmrouter_ttft_seconds (histograms), "
            "llmrouter_cache_hits_total, llmrouter_cache_misses_total, "
            "llmrouter_circuit_state{provider,model} (0 closed, 1 half-open, 2 open), "
            "llmrouter_recording_lag_seconds (histogram), llmrouter_storage_warnings_total.",
            "responses": {
                "200": {
                    "description": "The metrics",
                    "content": {PROMETHEUS: {"schema": {"type": "string"}}},
                },
                **_errors(*_COMMON),
            },
        }
    },
    "/v1/chat/completions": {
        "post": {
            "summary": "OpenAI-compatible chat completions (stream and non-stream)",
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": _ref("OpenAIChatRequest")}},
            },
            "responses": {
                "200": {
                    "description": "chat.completion, or SSE chunks with stream=true",
                    "content": {
                        JSON: {"schema": _ref("ChatCompletion")},
                        SSE: _sse("ChatCompletionChunk"),
                    },
                },
                **_errors(400, 413, 415, 422, 429, 502, 504, *_COMMON),
            },
        }
    },
    "/v1/models": {
        "get": {
            "summary": "OpenAI-compatible model list",
            "responses": {"200": _json(_ref("ModelList"), "Models"), **_errors(*_COMMON)},
        }
    },
    "/v1/models/{model}": {
        "get": {
            "summary": "One model (client.models.retrieve), with its capabilities",
            "parameters": [
                {
                    "name": "model",
                    "in": "path",
                    "required": True,
                    "description": "A catalog model id, or auto; its / may be sent as it is "
                    "or as %2F (the openai SDK encodes it). Retired ids answer too (they are "
                    "served by their replacement).",
                    "schema": {"type": "string"},
                }
            ],
            "responses": {
                "200": _json(_ref("Model"), "The model"),
                **_errors(404, *_COMMON),
            },
        }
    },
    "/openapi.json": {
        "get": {
            "summary": "This document",
            "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1"), **_errors(*_COMMON)},
        }
    },
}


@cache
def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (built once)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "llmrouter-tui server",
            "version": __version__,
            "description": "Routes chat prompts to Groq, Gemini and OpenAI-compatible models "
            "with retries, fallback, cache, logs, ratings and analytics. Errors are "
            '{"detail": "..."}. The bearer token is required only when the server has one.',
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


@cache
def document_bytes() -> bytes:
    """The document as compact JSON."""
    return json.dumps(document(), ensure_ascii=False, separators=(",", ":")).encode()
