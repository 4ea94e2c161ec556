"""Warnings a reply carries beyond its metadata: a rejected API key, a stored failure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..core.config import Settings
from ..core.types import Attempt
from .format import attempt_lines

#: Attempt errors (and HTTP statuses) that mean the provider refused the key itself.
KEY_ERRORS = frozenset({"auth", "forbidden"})
KEY_STATUSES = frozenset({401, 403})


def provider_title(name: str) -> str:
    """`Groq`, `Gemini`, `Ollama` from a provider name."""
    return name[:1].upper() + name[1:]


def key_problems(attempts: Iterable[Attempt], settings: Settings) -> list[str]:
    """One line per provider that rejected its key (401/403), even when a fallback answered:
    "Groq rejected GROQ_API_KEY (401) — check it"."""
    lines: list[str] = []
    seen: set[str] = set()
    for attempt in attempts:
        rejected = attempt.status in KEY_STATUSES or attempt.error in KEY_ERRORS
        if not rejected or attempt.provider in seen:
            continue
        seen.add(attempt.provider)
        provider = settings.providers.get(attempt.provider)
        variable = provider.api_key_env if provider is not None else None
        what = variable or "its API key"
        status = f" ({attempt.status})" if attempt.status else ""
        lines.append(f"{provider_title(attempt.provider)} rejected {what}{status} — check it.")
    return lines


def stored_error_text(row: Mapping[str, Any], attempts: list[Attempt]) -> str:
    """What a failed turn read back from the database shows: the reason and every attempt."""
    reason = str(row.get("error") or "the request failed").split(". Attempts:", 1)[0]
    return "\n".join([f"✗ Request failed: {reason}", *attempt_lines(attempts)])
