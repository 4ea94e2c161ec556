"""Turn /chat, /compare, /rate and /prefer inputs (query string + JSON body) into checked
values.

The fields, their types, bounds and wording are the wire shapes' (wire_shapes.py): each body is
checked by its shape's Checker and only the declared fields are read from what it returns.
What is here is what a declaration cannot say: the query string, the legacy forms, and checks
across fields. Every check names the field it rejects (and sets the error's `param` to it).
Unknown body fields are ignored, as the original FastAPI app did, so old scripts that send
extra keys keep working; OpenAI parameters /chat does not take (tools, n, logit_bias…) are
refused by name, never dropped (see parameters.PARAMETERS).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..core.capabilities import UnsupportedParameterError
from ..core.errors import InputError, UnknownModelError
from ..core.params import params_from_openai
from ..core.redact import Redactor
from ..core.templates import TemplateSet
from ..core.types import ChatRequest
from .asgi import HTTPError, Request
from .parameters import BY_NAME, CHAT_PARAMETERS, FieldRefused, refusal_message
from .wire_check import FieldProblem, checker, type_name
from .wire_shapes import ChatRequest as ChatShape
from .wire_shapes import CompareRequest, PreferRequest, RateFeedback, RateRequest

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


# Request fields an error may name in `param`: the OpenAI parameters and every field of the
# request shapes, but not the legacy `template` (the core's "template 'ID' needs values…" is
# about the template, not that field).
_SHAPES = (ChatShape, CompareRequest, RateRequest, RateFeedback, PreferRequest)
_FIELDS = frozenset(
    {*BY_NAME, *(name for shape in _SHAPES for name in checker(shape).names)} - {"template"}
)
_FIELD_PATH = re.compile(r"[A-Za-z_]\w*(?:\[\d+\]|\.[A-Za-z_]\w*)*")


def param_of(text: str) -> str | None:
    """The request field a message starts with (`messages[2].content[0].image_url.url`,
    `top_p`), if it starts with one."""
    match = _FIELD_PATH.match(text)
    if match is None or match.group().split("[")[0].split(".")[0] not in _FIELDS:
        return None
    return match.group()


def field_error(status: int, detail: str, param: str | None, kind: str | None = None) -> HTTPError:
    """An HTTPError whose body names the field at fault (`param`) and, if any, the kind."""
    extra: dict[str, Any] = {}
    if param is not None:
        extra["param"] = param
    if kind is not None:
        extra["error_kind"] = kind
    return HTTPError(status, detail, extra=extra)


def input_error(exc: InputError, redactor: Redactor) -> HTTPError:
    """The core's (or the parameter table's) InputError as an HTTP error naming its field."""
    detail = redactor.text(str(exc))
    if isinstance(exc, UnsupportedParameterError):
        return field_error(exc.http_status, detail, exc.parameter, "unsupported_parameter")
    if isinstance(exc, FieldRefused):
        return field_error(exc.http_status, detail, exc.field, exc.code)
    if isinstance(exc, UnknownModelError):
        return field_error(exc.http_status, detail, "model", "model_not_found")
    return field_error(exc.http_status, detail, param_of(str(exc)))


def bad(field: str, expected: str, value: object) -> HTTPError:
    """400 naming the field, what it must be and what was sent."""
    return field_error(400, f"{field} must be {expected}; got {type_name(value)}", param_of(field))


def checked(shape: Any, body: Mapping[str, Any]) -> dict[str, Any]:
    """`body`'s declared fields, checked against `shape` (a 400 naming the field at fault)."""
    try:
        return checker(shape).check(body)
    except FieldProblem as problem:
        raise field_error(400, str(problem), problem.path) from None


def opt_str(body: Mapping[str, Any], field: str) -> str | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad(field, "a string", value)
    return value


def opt_bool(body: Mapping[str, Any], field: str) -> bool | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise bad(field, "true or false", value)
    return value


def opt_number(body: Mapping[str, Any], field: str) -> float | None:
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad(field, "a number", value)
    return value


def opt_int(body: Mapping[str, Any], field: str) -> int | None:
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise bad(field, "a whole number", value)
    return value


def query_bool(request: Request, name: str) -> bool | None:
    """A true/false query parameter (true|false|1|0|yes|no|on|off)."""
    raw = request.query_value(name)
    if raw is None:
        return None
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise HTTPError(400, f"query parameter {name} must be true or false; got {raw!r}")


def merge(field: str, from_query: Any, from_body: Any) -> Any:
    """A value that may come from the query string or the body, but not two different ones."""
    if from_query is None:
        return from_body
    if from_body is not None and from_body != from_query:
        raise HTTPError(
            400,
            f"{field} is given in both the query string ({from_query!r}) and the body "
            f"({from_body!r}); give it once",
        )
    return from_query


def require_object(body: Any, what: str) -> dict[str, Any]:
    if body is None:
        raise HTTPError(400, f"the request body must be a JSON object ({what})")
    if not isinstance(body, dict):
        raise bad("the request body", f"a JSON object ({what})", body)
    return body


def template_vars(raw: Mapping[str, str | float | None] | None) -> dict[str, str]:
    """Checked template_vars as text (null values left out)."""
    return {
        name: value if isinstance(value, str) else str(value)
        for name, value in (raw or {}).items()
        if value is not None
    }


def legacy_template_vars(
    templates: TemplateSet, template_id: str, prompt: str, values: dict[str, str]
) -> dict[str, str]:
    """The original's `{"prompt": P, "template": ID}`: P fills the template's first variable
    that has neither a value in template_vars nor a default."""
    template = templates.get(template_id)
    if template is None:
        return values  # the router reports the unknown template id with its hint
    given = {name for name, value in values.items() if value.strip()}
    free = [v for v in template.variables if v not in given and v not in template.defaults]
    if not free:
        names = ", ".join(template.variables) or "none"
        raise HTTPError(
            400,
            f"template {template_id!r} has no variable left for prompt (its variables: "
            f"{names}); use template_id and template_vars instead",
        )
    return {**values, free[0]: prompt}


@dataclass(frozen=True, slots=True)
class ChatInput:
    """A validated /chat request."""

    request: ChatRequest
    stream: bool


# /chat's own fields that share a name with an OpenAI parameter (checked by parse_chat).
_CHAT_OWN = frozenset(
    {"model", "messages", "temperature", "max_tokens", "stream", "ignore_cache", "conversation_id"}
)


_CHAT = "POST /chat"


def _chat_refusals(body: Mapping[str, Any], model: str, endpoint: str) -> None:
    """Refuse OpenAI parameters /chat (and /compare) does not take, when set to something
    that would change the answer (a value that means the default, like n = 1, passes)."""
    for name, value in body.items():
        param = BY_NAME.get(name)
        if param is None or param.chat or name in _CHAT_OWN:
            continue
        if param.handling == "refused" and not param.is_neutral(value):
            raise FieldRefused(name, "unsupported_parameter", refusal_message(param, model))
        if param.handling == "passed" and not params_from_openai({name: value}).is_empty():
            where = (
                "send it to POST /v1/chat/completions, which takes every OpenAI parameter "
                "(tools and tool messages included)"
                if endpoint == _CHAT
                else f"it takes the parameters {_CHAT} takes; leave {name} out"
            )
            raise FieldRefused(
                name, "unsupported_parameter", f"{name} is not accepted by {endpoint}; {where}"
            )


def parse_chat(
    request: Request,
    body: Any,
    templates: TemplateSet,
    default_model: str,
    endpoint: str = _CHAT,
    shape: Any = ChatShape,
) -> ChatInput:
    """/chat: query `model`, `ignore_cache`, `stream` plus the JSON body (checked against
    `shape`: /compare's is the /chat body with models instead of model)."""
    body = require_object(body, "with prompt, template_id or messages")
    fields = checked(shape, body)
    model = merge("model", request.query_value("model"), fields.get("model"))
    _chat_refusals(body, model if model is not None else default_model, endpoint)
    max_tokens = opt_int(body, "max_completion_tokens")  # an OpenAI parameter (its own table)
    if max_tokens is None:
        max_tokens = fields.get("max_tokens")
    ignore_cache = merge(
        "ignore_cache", query_bool(request, "ignore_cache"), fields.get("ignore_cache")
    )
    stream = merge("stream", query_bool(request, "stream"), fields.get("stream"))
    prompt = fields.get("prompt")
    template_id = fields.get("template_id")
    legacy = fields.get("template")
    values = template_vars(fields.get("template_vars"))
    if legacy is not None:
        if template_id is not None:
            raise HTTPError(400, "give template_id or the legacy template field, not both")
        template_id = legacy
        if prompt is not None:
            values = legacy_template_vars(templates, legacy, prompt, values)
            prompt = None
    chat = ChatRequest(
        model=model,
        prompt=prompt,
        template_id=template_id,
        template_vars=values,
        messages=fields.get("messages"),
        system=fields.get("system"),
        temperature=fields.get("temperature"),
        max_tokens=max_tokens,
        ignore_cache=bool(ignore_cache),
        conversation_id=fields.get("conversation_id"),
        source="serve",
        params=params_from_openai(
            {p.name: body[p.name] for p in CHAT_PARAMETERS if p.name in body}
        ),
    )
    return ChatInput(chat, bool(stream))


@dataclass(frozen=True, slots=True)
class RateInput:
    """A validated /rate request."""

    prompt_id: str
    rating: object  # checked by the core: a whole number 1..5
    feedback: str | None
    model: str | None


def _score_from_query(raw: str, name: str) -> int:
    text = raw.strip()
    if not text.lstrip("-").isdigit():
        raise HTTPError(400, f"{name} must be a whole number from 1 to 5; got {raw!r}")
    return int(text)


def parse_rate(request: Request, body: Any) -> RateInput:
    """/rate: JSON {prompt_id, model, rating, feedback} or ?prompt_id=&score=N (+ {feedback})."""
    query = request.query
    if "prompt_id" in query or "score" in query or "rating" in query:
        prompt_id = request.query_value("prompt_id")
        if not prompt_id:
            raise HTTPError(400, "prompt_id is required (query parameter)")
        score_name = "score" if "score" in query else "rating"
        raw_score = request.query_value(score_name)
        if raw_score is None:
            raise HTTPError(400, "score is required (query parameter, 1 to 5)")
        extra: dict[str, Any] = {}
        if body is not None:
            extra = checked(RateFeedback, require_object(body, "with an optional feedback"))
        return RateInput(
            prompt_id=prompt_id,
            rating=_score_from_query(raw_score, score_name),
            feedback=merge("feedback", request.query_value("feedback"), extra.get("feedback")),
            model=merge("model", request.query_value("model"), extra.get("model")),
        )
    body = require_object(body, "with prompt_id and rating, or use ?prompt_id=&score=")
    if body.get("rating") is None and "score" in body:
        body = {**body, "rating": body["score"]}  # the original's name for it
    fields = checked(RateRequest, body)
    return RateInput(
        fields["prompt_id"], fields["rating"], fields.get("feedback"), fields.get("model") or None
    )


@dataclass(frozen=True, slots=True)
class CompareInput:
    """A validated /compare request: the /chat request without a model, and the two models
    (None: auto suggests them)."""

    request: ChatRequest
    stream: bool
    models: tuple[str, str] | None
    blind: bool


def _compare_models(raw: list[str] | None) -> tuple[str, str] | None:
    """The two models (declared as two model ids); also not blank, not the same twice."""
    if raw is None:
        return None
    for index, model in enumerate(raw):
        if not model.strip():
            raise field_error(
                400,
                f"models[{index}] must be a model id (GET /models lists them); got a blank string",
                f"models[{index}]",
            )
    first, second = raw[0].strip(), raw[1].strip()
    if first == second:
        raise field_error(
            400,
            f"models must name two different models; got {first!r} twice (a compare of a "
            "model with itself says nothing about which model is better)",
            "models[1]",
        )
    return first, second


def parse_compare(
    request: Request, body: Any, templates: TemplateSet, default_model: str
) -> CompareInput:
    """/compare: the /chat body (and query) with `models` instead of `model`, plus `blind`."""
    body = require_object(body, "the /chat body with models: [a, b]")
    if request.query_value("model") is not None or body.get("model") is not None:
        raise field_error(
            400,
            "POST /compare takes models: [a, b], not model (leave both out and auto suggests "
            "its two best)",
            "model",
        )
    fields = checked(CompareRequest, body)
    models = _compare_models(fields.get("models"))
    chat = parse_chat(
        request,
        body,
        templates,
        models[0] if models else default_model,
        "POST /compare",
        CompareRequest,
    )
    return CompareInput(chat.request, chat.stream, models, bool(fields.get("blind")))


@dataclass(frozen=True, slots=True)
class PreferInput:
    """A validated /prefer request (the outcome's value is checked by the core)."""

    prompt_a: str
    prompt_b: str
    outcome: str
    feedback: str | None
    compare_id: str | None


def parse_prefer(body: Any) -> PreferInput:
    """/prefer: {prompt_a, prompt_b, outcome, feedback?, compare_id?}."""
    fields = checked(PreferRequest, require_object(body, "with prompt_a, prompt_b and outcome"))
    if fields["prompt_a"] == fields["prompt_b"]:
        raise field_error(
            400,
            "prompt_b must differ from prompt_a: a preference compares two different replies",
            "prompt_b",
        )
    return PreferInput(
        fields["prompt_a"],
        fields["prompt_b"],
        fields["outcome"],
        fields.get("feedback"),
        fields.get("compare_id"),
    )
