"""POST /compare over HTTP: one request to two models, both replies in one answer (or one
event stream), each the record /chat returns, sharing a compare id for POST /prefer.

Sides are "a" and "b", as /prefer's prompt_a / prompt_b and outcomes "a" / "b". A blind
compare (`blind: true`) puts the two models in random order and leaves out every field that
names a reply's model or provider (BLIND_HIDDEN) until the vote: /prefer's answer names them.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from ..core.auto import is_auto
from ..core.catalog import Catalog
from ..core.compare import suggested_models
from ..core.errors import UnknownModelError
from ..core.redact import Redactor
from ..core.router import Router
from ..core.types import Result
from .asgi import HTTPError
from .results import ChatStreamShape, failure_detail, failure_status, record, sse
from .validation import field_error
from .wire_shapes import BLIND_HIDDEN, BLIND_HIDDEN_START, SIDES, CompareEnd, CompareOpening


def choose_models(
    router: Router,
    catalog: Catalog,
    models: tuple[str, str] | None,
    template_id: str | None,
    redactor: Redactor,
) -> tuple[str, str]:
    """The given models (each checked: 400 naming `models[i]`), or auto's two best now."""
    if models is None:
        suggested = suggested_models(router, template_id)
        if suggested is None:
            raise field_error(
                400,
                "models is required here: auto has fewer than two models to suggest (models "
                "with an API key that are available now); give models: [a, b]",
                "models",
            )
        return suggested
    for index, model in enumerate(models):
        if is_auto(model):
            continue
        try:
            catalog.resolve(model)
        except UnknownModelError as exc:
            raise field_error(
                400,
                redactor.text(f"models[{index}]: {exc}"),
                f"models[{index}]",
                "model_not_found",
            ) from None
    return models


def shuffled(models: tuple[str, str]) -> tuple[str, str]:
    """The pair in random order (a blind compare must not tell which side is which)."""
    return (models[1], models[0]) if secrets.randbelow(2) else models


def blind_record(data: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key not in BLIND_HIDDEN}


def payload(
    compare_id: str,
    models: Sequence[str],
    results: Sequence[Result],
    redactor: Redactor,
    blind: bool,
) -> dict[str, Any]:
    """The whole answer: compare_id, blind, models (unless blind), then replies a and b."""
    out: dict[str, Any] = {"compare_id": compare_id, "blind": blind}
    if not blind:
        out["models"] = list(models)
    for side, result in zip(SIDES, results, strict=True):
        data = record(result, redactor)
        out[side] = blind_record(data) if blind else data
    return out


def both_failed(
    compare_id: str, models: Sequence[str], results: Sequence[Result], redactor: Redactor
) -> HTTPError:
    """Neither side answered: the first side's error status, each side's reason."""
    a, b = results
    reasons = "; ".join(
        f"{side} ({model}): {failure_detail(result, redactor)}"
        for side, model, result in zip(SIDES, models, results, strict=True)
    )
    return HTTPError(
        failure_status(a),
        f"both replies of the compare failed. {reasons}",
        extra={
            "compare_id": compare_id,
            "error_kind": a.error_kind,
            "prompt_ids": [a.prompt_id, b.prompt_id],
        },
    )


def opening_event(compare_id: str, models: Sequence[str], blind: bool) -> bytes:
    """The first event of a streamed compare."""
    event: CompareOpening = {"type": "compare", "compare_id": compare_id, "blind": blind}
    if not blind:
        event["models"] = list(models)
    return sse(event)


def closing_event(compare_id: str) -> bytes:
    """The last event, once both sides finished (its absence: the stream broke)."""
    end: CompareEnd = {"type": "end", "compare_id": compare_id}
    return sse(end)


class CompareSideShape(ChatStreamShape):
    """One side's events of `POST /compare` with `stream=true`: /chat's events, tagged
    `side` ("a" or "b"), blinded for a blind compare."""

    def __init__(self, redactor: Redactor, side: str, blind: bool) -> None:
        super().__init__(redactor)
        self._side = side
        self._blind = blind

    def event(self, payload: Mapping[str, Any]) -> bytes:
        tagged = {"type": payload["type"], "side": self._side, **payload}
        if self._blind:
            tagged = _blinded(tagged)
        return sse(tagged)


def _blinded(event: dict[str, Any]) -> dict[str, Any]:
    kind = event["type"]
    if kind == "start":
        event = {key: value for key, value in event.items() if key not in BLIND_HIDDEN_START}
    if "result" in event:
        event["result"] = blind_record(event["result"])
    if kind == "error":
        error = event["error"]
        event["error"] = {
            **error,
            "message": f"this reply failed ({error.get('kind') or 'error'}); its details name "
            "the model, which a blind compare hides",
        }
    return event
