"""The first step of routing: a request checked and resolved into what the router sends.

Everything here refuses bad input with an InputError before any model is tried, so a
caller's mistake never counts against a model's health.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

from .auto import is_auto
from .budget import BudgetBlock
from .capabilities import (
    Need,
    UnsupportedParameterError,
    required_capabilities,
    unmet_need,
    unmet_reason,
)
from .catalog import Catalog, Resolution, not_configured
from .config import Settings
from .errors import InputError, UnknownModelError
from .messages import check_conversation, message_from_openai, prompt_text
from .params import GenerationParams
from .selection import Selection
from .templates import TemplateSet
from .textcheck import require_valid_text
from .types import ChatRequest, ImagePart, Message

NO_PARAMS = GenerationParams()


@dataclass(slots=True)
class Prepared:
    """A validated request with its messages resolved and its candidates chosen."""

    prompt_id: str
    requested_model: str
    candidates: list[Resolution]
    messages: tuple[Message, ...]
    system: str | None
    temperature: float | None
    max_tokens: int | None
    ignore_cache: bool
    prompt: str
    template_id: str | None = None
    conversation_id: str | None = None
    notice: str | None = None
    source: str = "core"
    params: GenerationParams = NO_PARAMS
    # What the request asks of a model (capabilities.required_capabilities); candidates that
    # cannot honour it are skipped.
    needs: tuple[Need, ...] = ()
    # `auto` only: why the first candidate was chosen (the rest of its ranking follows).
    auto_reason: str | None = None
    # A reached [budget] limit: paid fallbacks are skipped (the first candidate is free).
    budget: BudgetBlock | None = None
    compare_id: str | None = None


def new_prompt_id() -> str:
    """32 hex digits: the time in milliseconds, then 80 random bits.

    Ids that grow with time insert at the end of the prompt_id indexes instead of at random
    places in them, so the requests recorded together touch one index page instead of one
    each (a commit costs per page written); they also sort by time.
    """
    return f"{int(time.time() * 1000):012x}{os.urandom(10).hex()}"


def _check_text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"{name} must be a string, got {type(value).__name__}")
    return value


class Preparer:
    """Turns ChatRequests into Prepared requests for one router."""

    __slots__ = ("catalog", "selection", "settings")

    def __init__(self, settings: Settings, catalog: Catalog, selection: Selection) -> None:
        self.settings = settings
        self.catalog = catalog
        self.selection = selection

    def prepare(self, request: ChatRequest, templates: TemplateSet | None) -> Prepared:
        """Validate a request and resolve its input and candidates; raises InputError."""
        # Text no provider, database or log can take is the caller's fault: refused here,
        # before any attempt, so it never counts against a model's health.
        require_valid_text(request, "")
        model = request.model if request.model is not None else self.settings.default_model
        model = _check_text(model, "model")
        messages, system, template_id = _input_messages(request, templates)
        temperature, max_tokens = _check_limits(request)
        params = request.params or NO_PARAMS
        compare_id = request.compare_id
        if compare_id is not None:
            compare_id = _check_text(compare_id, "compare_id")
        auto_reason = None
        if is_auto(model):
            needs = self.check_needs(messages, params, None)
            candidates, auto_reason, budget, _ = self.selection.choose(needs, template_id)
        else:
            candidates = self.catalog.candidates(model)
            provider = candidates[0].provider
            if provider not in self.selection.providers.settings:
                # Named by the caller: an error, not a silent fallback elsewhere.
                raise UnknownModelError(
                    f"model {model!r} cannot be used: {not_configured(provider)}"
                )
            needs = self.check_needs(messages, params, candidates[0])
            budget = self.selection.check_budget(candidates)
        return Prepared(
            prompt_id=new_prompt_id(),
            requested_model=model,
            candidates=candidates,
            messages=tuple(messages),
            system=system,
            temperature=temperature,
            max_tokens=max_tokens,
            ignore_cache=bool(request.ignore_cache),
            prompt=prompt_text(messages),
            template_id=template_id,
            conversation_id=request.conversation_id,
            notice=candidates[0].notice,
            source=request.source,
            params=params,
            needs=needs,
            auto_reason=auto_reason,
            budget=budget,
            compare_id=compare_id,
        )

    def check_needs(
        self, messages: Sequence[Message], params: GenerationParams, first: Resolution | None
    ) -> tuple[Need, ...]:
        """What the request asks of a model; refused here when the requested model cannot
        honour it (never silently sent elsewhere)."""
        if not self.settings.routing.fetch_image_urls:
            _refuse_image_urls(messages)
        needs = required_capabilities(messages, params)
        if needs and first is not None:
            capabilities = self.catalog.capabilities(first.model, first.provider)
            need = unmet_need(capabilities, needs)
            if need is not None:
                raise UnsupportedParameterError(
                    need.parameter, first.model, unmet_reason(need, first.model, capabilities)
                )
        return needs


def _input_messages(
    request: ChatRequest, templates: TemplateSet | None
) -> tuple[list[Message], str | None, str | None]:
    """The conversation to send, its system text and its template id, from exactly one of
    prompt, template_id or messages."""
    system = None if request.system is None else _check_text(request.system, "system")
    sources = [
        request.prompt is not None,
        request.template_id is not None,
        request.messages is not None,
    ]
    if sum(sources) == 0:
        raise InputError("nothing to send: give a prompt, a template_id or messages")
    if sum(sources) > 1:
        raise InputError("give only one of prompt, template_id or messages")
    if request.prompt is not None:
        prompt = _check_text(request.prompt, "prompt")
        if not prompt.strip():
            raise InputError("prompt is empty; type something to send")
        return [Message("user", prompt)], system, None
    if request.template_id is not None:
        template_id = _check_text(request.template_id, "template_id")
        if templates is None:
            raise InputError("templates are not loaded; cannot use template_id")
        rendered = templates.render(template_id, request.template_vars or {})
        if system is None:
            system = rendered.system
        return [Message("user", rendered.prompt)], system, template_id
    messages, system = _check_messages(request.messages, system)
    return messages, system, None


def _check_limits(request: ChatRequest) -> tuple[float | None, int | None]:
    """temperature (as a float) and max_tokens, checked."""
    temperature = request.temperature
    if temperature is not None and (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not 0 <= temperature <= 2
    ):
        raise InputError(f"temperature must be a number from 0 to 2, got {temperature!r}")
    max_tokens = request.max_tokens
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise InputError(f"max_tokens must be a positive integer, got {max_tokens!r}")
    return (None if temperature is None else float(temperature)), max_tokens


def _check_messages(raw: object, system: str | None) -> tuple[list[Message], str | None]:
    """Messages (Message objects or OpenAI-shaped dicts) checked, in order.

    System messages keep their positions. A leading one becomes `system` when there is
    none: it is sent first either way, and requests that always did this keep their
    cache keys.
    """
    if not isinstance(raw, list | tuple) or not raw:
        raise InputError("messages must be a non-empty list of {role, content} objects")
    messages = [message_from_openai(item, index) for index, item in enumerate(raw)]
    first = messages[0]
    # A named one stays a message: its name goes with it.
    if (
        system is None
        and first.role == "system"
        and isinstance(first.content, str)
        and first.name is None
    ):
        messages.pop(0)
        system = first.content
    check_conversation(messages)
    return messages, system


def _refuse_image_urls(messages: Sequence[Message]) -> None:
    """Refuse http(s) image URLs: fetching them is off unless [routing] fetch_image_urls."""
    for index, message in enumerate(messages):
        if not message.images:
            continue
        for at, part in enumerate(message.content):
            if isinstance(part, ImagePart) and not part.is_data_url:
                raise InputError(
                    f"messages[{index}].content[{at}]: http(s) image URLs are not "
                    "fetched unless [routing] fetch_image_urls = true; send the image "
                    "as a data:image/...;base64 URL"
                )
