"""Stripping API keys (and fragments of them) from text that leaves the process.

The router scrubs upstream error messages before they are recorded or shown; the server
scrubs everything it emits again (with its own token added), as defence in depth.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .config import Settings

DEMO_KEY = "demo-key-not-secret"  # the placeholder demo mode gives every provider

FRAGMENT = 6  # shortest run of a secret's characters treated as a leak
MASK = "[redacted]"


class Redactor:
    """Replaces every secret, and every FRAGMENT-character piece of one, with MASK.

    Pieces that occur in `public` text (model ids, provider names) are left alone, so a key
    that happens to contain "gemini" does not blank out model names.
    """

    def __init__(self, secrets: Iterable[str], public: Iterable[str] = ()) -> None:
        public_text = "\n".join(public)
        pieces: set[str] = set()
        for secret in secrets:
            if not secret or secret == DEMO_KEY:
                continue
            pieces.add(secret)
            for start in range(len(secret) - FRAGMENT + 1):
                piece = secret[start : start + FRAGMENT]
                if piece not in public_text:
                    pieces.add(piece)
        ordered = sorted(pieces, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    @classmethod
    def for_settings(
        cls, settings: Settings, extra: Iterable[str | None] = (), public: Iterable[str] = ()
    ) -> Redactor:
        """Every configured provider key plus `extra` secrets (e.g. the server token)."""
        keys = [p.api_key.reveal() for p in settings.providers.values() if p.api_key]
        names = [*settings.providers, *(p.kind for p in settings.providers.values())]
        return cls([*keys, *(s for s in extra if s)], [*names, *public])

    def text(self, value: str) -> str:
        if self._pattern is None or not value:
            return value
        return self._pattern.sub(MASK, value)

    def record(self, record: dict[str, Any]) -> dict[str, Any]:
        """A result record with its error and attempt messages cleaned (in place)."""
        if self._pattern is None:
            return record
        if record.get("error"):
            record["error"] = self.text(record["error"])
        for attempt in record.get("attempts") or ():
            if attempt.get("message"):
                attempt["message"] = self.text(attempt["message"])
        return record
