"""The endpoints: the original system's /chat, /rate, /stats, /models, plus /compare,
/prefer, /templates, /health, /metrics, the OpenAI-compatible /v1 endpoints and
/openapi.json."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from ..core.compare import compare as compare_both
from ..core.compare import compare_stream, new_compare_id
from ..core.errors import ConfigError, InputError, UnknownPromptError
from ..core.redact import Redactor
from ..core.router import Prepared
from ..core.runtime import Runtime
from ..core.types import Result
from . import compare as side_by_side
from . import metrics as exposition
from . import openapi
from .asgi import HTTPError, Request, send_json
from .errors import send_http_error
from .live import live_models, merge_live
from .openai_api import (
    OpenAIStreamShape,
    completion,
    listed,
    model_list,
    parse_v1,
    retrieved_model,
)
from .results import ChatStreamShape, failure_error, record, unless_disconnected
from .sse import StreamShape, relay, relay_compare
from .types import Send
from .validation import (
    field_error,
    input_error,
    parse_chat,
    parse_compare,
    parse_prefer,
    parse_rate,
    query_bool,
)
from .wire_shapes import Health, Models, ProviderKey, Stats, Templates

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


async def compare(ctx: Context, request: Request, send: Send) -> None:
    """POST /compare: the /chat request sent to two models at once; both records (or both
    streams, events tagged by side) and the compare_id for POST /prefer."""
    body = await request.json()
    if isinstance(body, dict) and ("template_id" in body or "template" in body):
        _reload_templates(ctx)
    runtime = ctx.runtime
    router = runtime.router
    redactor = ctx.redactor
    with _named_fields(redactor):
        parsed = parse_compare(request, body, runtime.templates, runtime.settings.default_model)
        models = side_by_side.choose_models(
            router, runtime.catalog, parsed.models, parsed.request.template_id, redactor
        )
    if parsed.blind:
        models = side_by_side.shuffled(models)
    compare_id = new_compare_id()
    if parsed.stream:

        async def both_failed(results: tuple[Result, Result]) -> None:
            error = side_by_side.both_failed(compare_id, models, results, redactor)
            await send_http_error(send, request.path, error)

        with _named_fields(redactor):  # a side's request refused before either started
            await relay_compare(
                compare_stream(
                    router, parsed.request, models, compare_id=compare_id, allow_restart=False
                ),
                [
                    side_by_side.CompareSideShape(redactor, side, parsed.blind)
                    for side in side_by_side.SIDES
                ],
                send,
                request.receive,
                opening=side_by_side.opening_event(compare_id, models, parsed.blind),
                closing=side_by_side.closing_event(compare_id),
                early_failure=both_failed,
            )
        return
    with _named_fields(redactor):
        both = await unless_disconnected(
            compare_both(router, parsed.request, models, compare_id=compare_id), request.receive
        )
    if both is None:
        return  # the client left (both requests are recorded as cancelled)
    if all(result.status != "ok" for result in both.results):
        raise side_by_side.both_failed(compare_id, models, both.results, redactor)
    await send_json(
        send, 200, side_by_side.payload(compare_id, models, both.results, redactor, parsed.blind)
    )


async def prefer(ctx: Context, request: Request, send: Send) -> None:
    """POST /prefer: which of two recorded replies (a compare's) was better."""
    parsed = parse_prefer(await request.json())
    runtime = ctx.runtime
    try:
        saved = await runtime.aprefer(
            parsed.prompt_a, parsed.prompt_b, parsed.outcome, parsed.feedback, parsed.compare_id
        )
    except UnknownPromptError as exc:
        unknown = "prompt_a" if runtime.store.get_request(parsed.prompt_a) is None else "prompt_b"
        raise field_error(404, ctx.redactor.text(str(exc)), unknown, "prompt_not_found") from None
    except InputError as exc:
        raise input_error(exc, ctx.redactor) from None
    await send_json(send, 200, {"status": "ok", "message": "preference recorded", **saved})


async def rate(ctx: Context, request: Request, send: Send) -> None:
    """POST /rate: JSON form or ?prompt_id=&score= (+ optional {"feedback"})."""
    parsed = parse_rate(request, await request.json())
    saved = await ctx.runtime.arate(parsed.prompt_id, parsed.rating, parsed.feedback, parsed.model)
    await send_json(send, 200, {"status": "ok", "message": "rating recorded", **saved})


async def stats(ctx: Context, request: Request, send: Send) -> None:
    """GET /stats: the core's analytics; `?template=ID`: the leaderboard from that
    template's votes only."""
    template = request.query_value("template")
    if template is not None and not template.strip():
        raise field_error(
            400,
            "query parameter template must be a template id (GET /templates lists them), or "
            "left out for the leaderboard over every template",
            "template",
        )
    store = ctx.runtime.store
    payload: Stats = {**store.stats(), "leaderboard_template": template}
    if template is not None:
        payload["leaderboard"] = store.leaderboard(template)
    await send_json(send, 200, payload)


async def models(ctx: Context, request: Request, send: Send) -> None:
    """GET /models (?live=true merges the providers' own listings)."""
    runtime = ctx.runtime
    rows = runtime.model_rows()
    payload: Models = {
        "available_models": [row["id"] for row in rows if listed(row)],
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
    await send_json(send, 200, model_list(ctx.runtime.model_rows()))


async def v1_model(ctx: Context, request: Request, send: Send) -> None:
    """GET /v1/models/{model}: one model object (retired ids too: they are still served)."""
    model_id = request.path[len(MODEL_PREFIX) :]
    found = retrieved_model(ctx.runtime, model_id)
    if found is not None:
        await send_json(send, 200, found)
        return
    raise field_error(
        404,
        f"model {model_id!r} does not exist; GET /v1/models lists the models "
        "(PROVIDER:MODEL ids of a configured provider work too, but are not listed)",
        "model",
        "model_not_found",
    )


async def templates(ctx: Context, request: Request, send: Send) -> None:
    """GET /templates: every template with its variables."""
    warning = _reload_templates(ctx)
    items = [template.as_dict() for template in ctx.runtime.templates.values()]
    payload: Templates = {"templates": items, "count": len(items), "warning": warning}
    await send_json(send, 200, payload)


async def health(ctx: Context, request: Request, send: Send) -> None:
    """GET /health: liveness and which providers have a key (never the key)."""
    settings = ctx.runtime.settings
    pool = ctx.runtime.router.providers
    providers: dict[str, ProviderKey] = {
        name: {"kind": provider.kind, "has_key": pool.has_key(name)}
        for name, provider in settings.providers.items()
    }
    payload: Health = {
        "status": "ok",
        "version": __version__,
        "demo": settings.demo,
        "default_model": settings.default_model,
        "providers": providers,
        "uptime_s": round(time.monotonic() - ctx.started, 3),
    }
    await send_json(send, 200, payload)


async def metrics(ctx: Context, request: Request, send: Send) -> None:
    """GET /metrics: this process's counters in Prometheus' text format."""
    runtime = ctx.runtime
    body = exposition.render(
        runtime.router.metrics,
        exposition.circuit_states(runtime.router.breaker, runtime.catalog),
        ctx.redactor.text,
    )
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", exposition.CONTENT_TYPE),
                (b"content-length", b"%d" % len(body)),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


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
    "/compare": {"POST": compare},
    "/prefer": {"POST": prefer},
    "/stats": {"GET": stats},
    "/models": {"GET": models},
    "/templates": {"GET": templates},
    "/health": {"GET": health},
    "/metrics": {"GET": metrics},
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


def endpoint_of(path: str) -> str:
    """The endpoint a path belongs to, as /metrics labels it: the route ("/v1/models/{model}"
    for any model id), or "other" for paths with no endpoint (so labels stay few)."""
    if path in ROUTES:
        return path
    if path.startswith(MODEL_PREFIX) and len(path) > len(MODEL_PREFIX):
        return "/v1/models/{model}"
    return "other"


def not_found(path: str) -> HTTPError:
    return HTTPError(404, f"no endpoint at {path}; GET /openapi.json lists them")
