"""Turn /chat and /rate inputs (query string + JSON body) into checked values.

Every check names the field it rejects (and sets the error's `param` to it). Unknown body
fields are ignored, as the original FastAPI app did, so old scripts that send extra keys keep
working; OpenAI parameters /chat does not take (tools, n, logit_bias…) are refused by name,
never dropped (see parameters.PARAMETERS).
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

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


# Request fields an error may name in `param` (the OpenAI parameters, /chat's own, and those
# of /rate, /compare and /prefer).
_FIELDS = frozenset(
    {
        *BY_NAME,
        *("prompt", "template_id", "template_vars", "system", "prompt_id", "rating", "feedback"),
        *("models", "blind", "prompt_a", "prompt_b", "outcome", "compare_id"),
    }
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
    return field_error(400, f"{field} must be {expected}; got {_type_name(value)}", param_of(field))


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


def template_vars(body: Mapping[str, Any]) -> dict[str, str]:
    raw = body.get("template_vars")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise bad("template_vars", "an object of name: value", raw)
    values: dict[str, str] = {}
    for name, value in raw.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise bad(f"template_vars.{name}", "a string or a number", value)
        values[name] = value if isinstance(value, str) else str(value)
    return values


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
) -> ChatInput:
    """/chat: query `model`, `ignore_cache`, `stream` plus the JSON body."""
    body = require_object(body, "with prompt, template_id or messages")
    model = merge("model", request.query_value("model"), opt_str(body, "model"))
    _chat_refusals(body, model if model is not None else default_model, endpoint)
    max_tokens = opt_int(body, "max_completion_tokens")
    if max_tokens is None:
        max_tokens = opt_int(body, "max_tokens")
    ignore_cache = merge(
        "ignore_cache", query_bool(request, "ignore_cache"), opt_bool(body, "ignore_cache")
    )
    stream = merge("stream", query_bool(request, "stream"), opt_bool(body, "stream"))
    prompt = opt_str(body, "prompt")
    template_id = opt_str(body, "template_id")
    legacy = opt_str(body, "template")
    values = template_vars(body)
    if legacy is not None:
        if template_id is not None:
            raise HTTPError(400, "give template_id or the legacy template field, not both")
        template_id = legacy
        if prompt is not None:
            values = legacy_template_vars(templates, legacy, prompt, values)
            prompt = None
    messages = body.get("messages")
    if messages is not None and not isinstance(messages, list):
        raise bad("messages", "an array of {role, content} objects", messages)
    for index, item in enumerate(messages or ()):
        if not isinstance(item, dict):
            raise bad(f"messages[{index}]", "an object with role and content", item)
        for key in ("role", "content"):
            if not isinstance(item.get(key), str):
                raise bad(f"messages[{index}].{key}", "a string", item.get(key))
    chat = ChatRequest(
        model=model,
        prompt=prompt,
        template_id=template_id,
        template_vars=values,
        messages=messages,
        system=opt_str(body, "system"),
        temperature=opt_number(body, "temperature"),
        max_tokens=max_tokens,
        ignore_cache=bool(ignore_cache),
        conversation_id=opt_str(body, "conversation_id"),
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
            extra = require_object(body, "with an optional feedback")
        return RateInput(
            prompt_id=prompt_id,
            rating=_score_from_query(raw_score, score_name),
            feedback=merge("feedback", request.query_value("feedback"), opt_str(extra, "feedback")),
            model=merge("model", request.query_value("model"), opt_str(extra, "model")),
        )
    body = require_object(body, "with prompt_id and rating, or use ?prompt_id=&score=")
    prompt_id = opt_str(body, "prompt_id")
    if not prompt_id:
        raise HTTPError(400, "prompt_id is required")
    rating = body.get("rating", body.get("score"))
    if rating is None:
        raise HTTPError(400, "rating is required (a whole number from 1 to 5)")
    model = opt_str(body, "model")
    return RateInput(prompt_id, rating, opt_str(body, "feedback"), model or None)


@dataclass(frozen=True, slots=True)
class CompareInput:
    """A validated /compare request: the /chat request without a model, and the two models
    (None: auto suggests them)."""

    request: ChatRequest
    stream: bool
    models: tuple[str, str] | None
    blind: bool


def _compare_models(body: Mapping[str, Any]) -> tuple[str, str] | None:
    raw = body.get("models")
    if raw is None:
        return None
    if not isinstance(raw, list) or len(raw) != 2:
        got = f"{len(raw)} items" if isinstance(raw, list) else _type_name(raw)
        raise field_error(
            400,
            "models must be an array of two model ids ([a, b]), or left out for auto's two "
            f"best; got {got}",
            "models",
        )
    for index, model in enumerate(raw):
        if not isinstance(model, str) or not model.strip():
            got = "an empty string" if isinstance(model, str) else _type_name(model)
            raise field_error(
                400,
                f"models[{index}] must be a model id (GET /models lists them); got {got}",
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
    models = _compare_models(body)
    blind = bool(opt_bool(body, "blind"))
    chat = parse_chat(
        request, body, templates, models[0] if models else default_model, "POST /compare"
    )
    return CompareInput(chat.request, chat.stream, models, blind)


@dataclass(frozen=True, slots=True)
class PreferInput:
    """A validated /prefer request (the outcome's value is checked by the core)."""

    prompt_a: str
    prompt_b: str
    outcome: str
    feedback: str | None
    compare_id: str | None


def _required_str(body: Mapping[str, Any], field: str, what: str) -> str:
    value = opt_str(body, field)
    if not value:
        raise field_error(400, f"{field} is required: {what}", field)
    return value


def parse_prefer(body: Any) -> PreferInput:
    """/prefer: {prompt_a, prompt_b, outcome, feedback?, compare_id?}."""
    body = require_object(body, "with prompt_a, prompt_b and outcome")
    prompt_a = _required_str(body, "prompt_a", "the prompt_id of the first reply (a)")
    prompt_b = _required_str(body, "prompt_b", "the prompt_id of the second reply (b)")
    if prompt_a == prompt_b:
        raise field_error(
            400,
            "prompt_b must differ from prompt_a: a preference compares two different replies",
            "prompt_b",
        )
    outcome = _required_str(
        body,
        "outcome",
        'which reply was better: "a", "b", "tie" or "both_bad"',
    )
    return PreferInput(
        prompt_a, prompt_b, outcome, opt_str(body, "feedback"), opt_str(body, "compare_id")
    )
