"""The endpoints: the original system's /chat, /rate, /stats, /models, plus /templates,
/health, the OpenAI-compatible /v1 pair and /openapi.json."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from ..core.errors import ConfigError
from ..core.redact import Redactor
from ..core.runtime import Runtime
from ..core.types import Result
from . import openapi
from .asgi import HTTPError, Request, send_json
from .errors import send_http_error
from .live import live_models, merge_live
from .openai_api import OpenAIStreamShape, completion, model_list, parse_v1
from .results import ChatStreamShape, failure_error, record, unless_disconnected
from .sse import StreamShape, relay
from .types import Send
from .validation import parse_chat, parse_rate, query_bool

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


async def _routed(
    ctx: Context,
    request: Request,
    send: Send,
    chat: Any,
    stream: bool,
    shape: StreamShape,
    whole: Callable[[Result], Any],
) -> None:
    router = ctx.runtime.router
    prepared = router.prepare(chat)
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
    parsed = parse_chat(request, body, ctx.runtime.templates)
    await _routed(
        ctx,
        request,
        send,
        parsed.request,
        parsed.stream,
        ChatStreamShape(ctx.redactor),
        lambda result: record(result, ctx.redactor),
    )


async def chat_completions(ctx: Context, request: Request, send: Send) -> None:
    """POST /v1/chat/completions: OpenAI's chat.completion or chunk stream."""
    parsed = parse_v1(await request.json())
    await _routed(
        ctx,
        request,
        send,
        parsed.request,
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
    "/openapi.json": {"GET": openapi_json},
}

OPEN_PATHS = frozenset({"/health"})  # answered without a token


def not_found(path: str) -> HTTPError:
    return HTTPError(404, f"no endpoint at {path}; GET /openapi.json lists them")
