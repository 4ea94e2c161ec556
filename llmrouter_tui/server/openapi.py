"""The OpenAPI 3.1 description of the server's API, as data.

Nothing about a body is written here. components/schemas come from the wire shapes
(wire_shapes.py, through wire_schema.schemas), the request fields of /v1/chat/completions
and the OpenAI parameters /chat takes from parameters.PARAMETERS, model capabilities from the
core's list. What is here is the table of paths: operations, query parameters, statuses and
headers.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from .. import __version__
from ..core.capabilities import CAPABILITY_HELP
from . import wire_shapes
from .errors import BUDGET_CODE
from .parameters import CHAT_PARAMETERS, PARAMETERS, Param
from .wire_schema import schemas

JSON = "application/json"
SSE = "text/event-stream"
PROMETHEUS = "text/plain; version=0.0.4"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


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


def _capabilities() -> dict[str, Any]:
    """Capabilities, from the core's own list (a request needing more is refused)."""
    return _obj(
        {
            name: {"type": "array", "items": {"type": "string"}, "description": help_text}
            if name == "reasoning_effort"
            else {"type": "boolean", "description": help_text}
            for name, help_text in CAPABILITY_HELP.items()
        },
        list(CAPABILITY_HELP),
        description="What the model accepts beyond plain chat; a request needing more is "
        "refused (or, for a fallback, skipped).",
    )


def _openai_request() -> dict[str, Any]:
    """/v1/chat/completions' body, from the OpenAI parameter table."""
    return _obj(
        {p.name: _described(p) for p in PARAMETERS},
        ["messages"],
        additionalProperties=False,
        description="Every OpenAI chat-completions parameter is passed to the provider (mapped "
        "for Gemini) or refused with a 400 naming it and the model; unknown fields are refused "
        'too. The README\'s "OpenAI parameters" table says which, per provider.',
    )


def components() -> dict[str, Any]:
    """components/schemas: the wire shapes (wire_shapes.py), the OpenAI request from the
    parameter table, and Capabilities from the core's list."""
    chat_params = {p.name: _described(p) for p in CHAT_PARAMETERS}
    out = schemas(
        wire_shapes.COMPONENTS,
        extra={"ChatRequest": chat_params, "CompareRequest": chat_params},
    )
    out["OpenAIChatRequest"] = _openai_request()
    out["Capabilities"] = _capabilities()
    return out


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
            "circuit breakers, recording lag, event-loop lag",
            "description": "Prometheus text exposition format 0.0.4, for this process since it "
            "started (each worker answers with its own). Metric families: "
            "llmrouter_http_requests_total{endpoint,status}, "
            "llmrouter_http_requests_in_flight, llmrouter_results_total{status,model}, "
            "llmrouter_attempts_total{outcome,error_kind}, "
            "llmrouter_request_latency_seconds and llmrouter_ttft_seconds (histograms), "
            "llmrouter_cache_hits_total, llmrouter_cache_misses_total, "
            "llmrouter_circuit_state{provider,model} (0 closed, 1 half-open, 2 open), "
            "llmrouter_recording_lag_seconds (histogram), llmrouter_storage_warnings_total, "
            "llmrouter_event_loop_lag_seconds (histogram) and "
            "llmrouter_event_loop_lag_max_seconds (how long the event loop was stalled).",
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


WORKER_HEADER = "x-llmrouter-worker"
_WORKER = {
    "description": "The process id of the worker that served the response (set with --serve "
    "--workers N, where each worker is a process of its own).",
    "required": False,
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
}


def _with_worker_header(paths: dict[str, Any]) -> dict[str, Any]:
    """`paths` with x-llmrouter-worker listed on every response (it is on every one the
    embedded server sends with --workers)."""
    header = {"$ref": f"#/components/headers/{WORKER_HEADER}"}
    out: dict[str, Any] = {}
    for path, operations in paths.items():
        out[path] = {}
        for method, operation in operations.items():
            responses = {
                status: {
                    **response,
                    "headers": {**response.get("headers", {}), WORKER_HEADER: header},
                }
                for status, response in operation["responses"].items()
            }
            out[path][method] = {**operation, "responses": responses}
    return out


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
        "paths": _with_worker_header(PATHS),
        "components": {
            "schemas": components(),
            "headers": {WORKER_HEADER: _WORKER},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


@cache
def document_bytes() -> bytes:
    """The document as compact JSON."""
    return json.dumps(document(), ensure_ascii=False, separators=(",", ":")).encode()
