"""Which model ids may be sent to a provider, by provider kind.

A `PROVIDER:MODEL` id is open-ended user input. Gemini puts the model in the URL path
(`models/{model}:streamGenerateContent`), so `/`, `#`, `?` or `..` there would change which
endpoint receives the user's key; the OpenAI-style kinds send it in the JSON body, where ids
such as `meta-llama/llama-4-scout` or `llama3.2:3b` are normal.
"""

from __future__ import annotations

import re

from .errors import UnknownModelError

_BODY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}")
_PATH_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")

# kind -> (pattern, what it allows, for the error message); other kinds use the body rule.
_RULES: dict[str, tuple[re.Pattern[str], str]] = {
    "gemini": (_PATH_ID, "letters, digits, '.', '_' and '-'"),
}
_BODY_RULE = (_BODY_ID, "letters, digits and . _ - : / @ +")


def check_api_model(kind: str, requested: str, api_model: str) -> None:
    """Raise UnknownModelError unless `api_model` is safe to send to a provider of `kind`."""
    pattern, allowed = _RULES.get(kind, _BODY_RULE)
    if pattern.fullmatch(api_model) is None or ".." in api_model:
        raise UnknownModelError(
            f"model id {requested!r} has characters a {kind} model id cannot have; "
            f"use {allowed} (at most 200, starting with a letter or digit)"
        )
