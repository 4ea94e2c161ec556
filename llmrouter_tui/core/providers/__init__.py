"""Provider kinds and the pool that builds providers on first use.

Adding a provider kind means adding a module and one line to PROVIDER_KINDS; the router
never changes.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from ..config import ProviderSettings, RoutingSettings
from .base import Provider, ProviderCall, ProviderFailure, StreamEnd, TextChunk, Timeouts

# kind -> "module:Class"; modules are imported lazily (SDK imports are slow).
PROVIDER_KINDS: dict[str, str] = {
    "groq": "llmrouter_tui.core.providers.groq:GroqProvider",
    "gemini": "llmrouter_tui.core.providers.gemini:GeminiProvider",
    "openai": "llmrouter_tui.core.providers.openai_compat:OpenAICompatProvider",
}

# SDK modules a kind imports on first use (google.genai takes ~0.4 s). They are imported when
# the provider is built, before the router starts an attempt's clock, so the import never
# counts against the first attempt's first-token timeout.
PROVIDER_SDKS: dict[str, tuple[str, ...]] = {
    "groq": ("groq",),
    "gemini": ("google.genai", "google.genai.types", "google.genai.errors"),
}

__all__ = [
    "PROVIDER_KINDS",
    "Provider",
    "ProviderCall",
    "ProviderFailure",
    "ProviderPool",
    "StreamEnd",
    "TextChunk",
    "Timeouts",
]


def build_provider(settings: ProviderSettings, routing: RoutingSettings) -> Provider:
    for sdk in PROVIDER_SDKS.get(settings.kind, ()):
        importlib.import_module(sdk)
    module_name, _, class_name = PROVIDER_KINDS[settings.kind].partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    provider: Provider = cls(settings, routing.connect_timeout_s, routing.attempt_timeout_s)
    return provider


class ProviderPool:
    """One provider instance per configured name, built when first needed."""

    def __init__(self, settings: Mapping[str, ProviderSettings], routing: RoutingSettings) -> None:
        self.settings = dict(settings)
        self._routing = routing
        self._built: dict[str, Provider] = {}

    def has_key(self, name: str) -> bool:
        provider = self.settings.get(name)
        return provider is not None and provider.has_key

    def get(self, name: str) -> Provider:
        provider = self._built.get(name)
        if provider is None:
            provider = build_provider(self.settings[name], self._routing)
            self._built[name] = provider
        return provider

    async def aclose(self) -> None:
        for provider in self._built.values():
            await provider.aclose()
        self._built.clear()
