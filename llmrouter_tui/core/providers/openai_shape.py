"""Request and usage shapes shared by OpenAI-style APIs (Groq, OpenAI-compatible)."""

from __future__ import annotations

from typing import Any

from ..types import Usage
from .base import ProviderCall


def openai_messages(call: ProviderCall) -> list[dict[str, str]]:
    """Chat messages in OpenAI's shape, system prompt first."""
    messages = [{"role": "system", "content": call.system}] if call.system else []
    messages.extend({"role": m.role, "content": m.content} for m in call.messages)
    return messages


def usage_from_openai(raw: Any) -> Usage | None:
    """Usage from an OpenAI-style usage object or dict, or None when absent."""
    if raw is None:
        return None
    get = raw.get if isinstance(raw, dict) else lambda k: getattr(raw, k, None)
    prompt, completion, total = get("prompt_tokens"), get("completion_tokens"), get("total_tokens")
    if prompt is None and completion is None:
        return None
    prompt, completion = int(prompt or 0), int(completion or 0)
    return Usage(prompt, completion, int(total or prompt + completion), estimated=False)
