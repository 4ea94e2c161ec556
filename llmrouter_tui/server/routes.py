"""The endpoints: the original system's /chat, /rate, /stats, /models, plus /templates,
/health, the OpenAI-compatible /v1 pair and /openapi.json."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from ..core.errors import ConfigError, InputError
from ..core.redact import Redactor
from ..core.router import Prepared
from ..core.runtime import Runtime
from ..core.types import Result
from . import openapi
from .asgi import HTTPError, Request, send_json
from .errors import send_http_error
from .live import live_models, merge_live
from .openai_api import OpenAIStreamShape, completion, model_list, model_object, parse_v1
from .results import ChatStreamShape, failure_error, record, unless_disconnected
from .sse import StreamShape, relay
from .types import Send
from .validation import field_error, input_error, parse_chat, parse_rate, query_bool

MODELS_NOTE = (
    "Model names are case-sensitive and must match those listed here. A retired model id "
    "still works: its replacement answers and the reply carries a notice."
)


@dataclass(slots=True)
class Context:
    """What every endpoint needs: the core and the server's settings."""

    runtime: Runtime
    redactor: Redactor
    live_timeout_s: float = 3.0
    started: float = field(default_factory=time.monotonic)


Handler = Callable[[Context, Request, Send], Awaitable[None]]


def _reload_templates(ctx: Context) -> str | None:
    """Pick up edited template files; a broken file keeps the old set and is reported."""
    try:
        ctx.runtime.reload_templates()
    except ConfigError as exc:
        return f"templates not reloaded: {exc}"
    return None


@contextmanager
def _named_fields(redactor: Redactor) -> Iterator[None]:
    """Parsing and checking a request: every InputError becomes a 400 naming its field."""
    try:
        yield
    except InputError as exc:
        raise input_error(exc, redactor) from None


async def _routed(
    ctx: Context,
    request: Request,
    send: Send,
    prepared: Prepared,
    stream: bool,
    shape: StreamShape,
    whole: Callable[[Result], Any],
) -> None:
    router = ctx.runtime.router
    if stream:

        async def early_failure(result: Result) -> None:
            await send_http_error(send, request.path, failure_error(result, ctx.redactor))

        await relay(
            router.stream(prepared, allow_restart=False),
            shape,
            send,
            request.receive,
            early_failure,
        )
        return
    result = await unless_disconnected(router.complete(prepared), request.receive)
    if result is None:
        return  # the client left: nobody to answer (the request is recorded as cancelled)
    if result.status != "ok":
        raise failure_error(result, ctx.redactor)
    await send_json(send, 200, whole(result))


async def chat(ctx: Context, request: Request, send: Send) -> None:
    """POST /chat: the original's record, or SSE with ?stream=true."""
    body = await request.json()
    if isinstance(body, dict) and ("template_id" in body or "template" in body):
        _reload_templates(ctx)
    with _named_fields(ctx.redactor):
        parsed = parse_chat(
            request, body, ctx.runtime.templates, ctx.runtime.settings.default_model
        )
        prepared = ctx.runtime.router.prepare(parsed.request)
    await _routed(
        ctx,
        request,
        send,
        prepared,
        parsed.stream,
        ChatStreamShape(ctx.redactor),
        lambda result: record(result, ctx.redactor),
    )


async def chat_completions(ctx: Context, request: Request, send: Send) -> None:
    """POST /v1/chat/completions: OpenAI's chat.completion or chunk stream."""
    body = await request.json()
    with _named_fields(ctx.redactor):
        parsed = parse_v1(body, ctx.runtime.settings.default_model)
        prepared = ctx.runtime.router.prepare(parsed.request)
    await _routed(
        ctx,
        request,
        send,
        prepared,
        parsed.stream,
        OpenAIStreamShape(ctx.redactor, parsed.include_usage),
        lambda result: completion(result, ctx.redactor),
    )


async def rate(ctx: Context, request: Request, send: Send) -> None:
    """POST /rate: JSON form or ?prompt_id=&score= (+ optional {"feedback"})."""
    parsed = parse_rate(request, await request.json())
    saved = ctx.runtime.rate(parsed.prompt_id, parsed.rating, parsed.feedback, parsed.model)
    await send_json(send, 200, {"status": "ok", "message": "rating recorded", **saved})


async def stats(ctx: Context, request: Request, send: Send) -> None:
    """GET /stats: the core's analytics."""
    await send_json(send, 200, ctx.runtime.store.stats())


async def models(ctx: Context, request: Request, send: Send) -> None:
    """GET /models (?live=true merges the providers' own listings)."""
    runtime = ctx.runtime
    rows = runtime.model_rows()
    payload: dict[str, Any] = {
        "available_models": runtime.catalog.usable_ids(),
        "note": MODELS_NOTE,
        "default_model": runtime.settings.default_model,
        "models": rows,
    }
    if query_bool(request, "live"):
        merged, summary = merge_live(rows, await live_models(runtime, ctx.live_timeout_s))
        for info in summary.values():
            if "error" in info:
                info["error"] = ctx.redactor.text(info["error"])
        payload["models"] = merged
        payload["live"] = summary
    await send_json(send, 200, payload)


async def v1_models(ctx: Context, request: Request, send: Send) -> None:
    """GET /v1/models: OpenAI's model list."""
    runtime = ctx.runtime
    await send_json(send, 200, model_list(runtime.model_rows(), set(runtime.catalog.usable_ids())))


async def v1_model(ctx: Context, request: Request, send: Send) -> None:
    """GET /v1/models/{model}: one model object (retired ids too: they are still served)."""
    model_id = request.path[len(MODEL_PREFIX) :]
    for row in ctx.runtime.model_rows():
        if row["id"] == model_id:
            await send_json(send, 200, model_object(row))
            return
    raise field_error(
        404,
        f"model {model_id!r} does not exist; GET /v1/models lists the models "
        "(PROVIDER:MODEL ids work in requests but are not listed)",
        "model",
        "model_not_found",
    )


async def templates(ctx: Context, request: Request, send: Send) -> None:
    """GET /templates: every template with its variables."""
    warning = _reload_templates(ctx)
    items = [template.as_dict() for template in ctx.runtime.templates.values()]
    await send_json(send, 200, {"templates": items, "count": len(items), "warning": warning})


async def health(ctx: Context, request: Request, send: Send) -> None:
    """GET /health: liveness and which providers have a key (never the key)."""
    settings = ctx.runtime.settings
    pool = ctx.runtime.router.providers
    providers = {
        name: {"kind": provider.kind, "has_key": pool.has_key(name)}
        for name, provider in settings.providers.items()
    }
    await send_json(
        send,
        200,
        {
            "status": "ok",
            "version": __version__,
            "demo": settings.demo,
            "default_model": settings.default_model,
            "providers": providers,
            "uptime_s": round(time.monotonic() - ctx.started, 3),
        },
    )


async def openapi_json(ctx: Context, request: Request, send: Send) -> None:
    """GET /openapi.json: the OpenAPI 3.1 description of this API."""
    body = openapi.document_bytes()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


ROUTES: dict[str, dict[str, Handler]] = {
    "/chat": {"POST": chat},
    "/rate": {"POST": rate},
    "/stats": {"GET": stats},
    "/models": {"GET": models},
    "/templates": {"GET": templates},
    "/health": {"GET": health},
    "/v1/chat/completions": {"POST": chat_completions},
    "/v1/models": {"GET": v1_models},
    "/v1/models/{model}": {"GET": v1_model},
    "/openapi.json": {"GET": openapi_json},
}
MODEL_PREFIX = "/v1/models/"  # model ids contain "/": everything after it is the id

OPEN_PATHS = frozenset({"/health"})  # answered without a token


def find_route(path: str) -> dict[str, Handler] | None:
    """The methods served at `path` (None: no endpoint). `/v1/models/ID` takes ids with "/"
    sent as they are or percent-encoded (the openai SDK sends %2F; the path arrives decoded)."""
    methods = ROUTES.get(path)
    if methods is None and path.startswith(MODEL_PREFIX) and len(path) > len(MODEL_PREFIX):
        return ROUTES["/v1/models/{model}"]
    return methods


def not_found(path: str) -> HTTPError:
    return HTTPError(404, f"no endpoint at {path}; GET /openapi.json lists them")
