"""Prices of models and the cost of a reply. Pure apart from reading the shipped data file.

Prices are data: `llmrouter_tui/data/prices.toml` (USD per 1M input and output tokens, with
the date and source of each), overridden per model by `price_in` / `price_out` in
`[models."ID"]` of llmrouter.toml. A model with no price is "unpriced" (its cost is None),
except on a provider of kind "openai" (a local server such as Ollama or vLLM), which is free
unless the config gives it a price.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from .errors import ConfigError

PER_TOKENS = 1_000_000  # prices are USD per this many tokens
_PRICE_KEYS = {
    "input",
    "output",
    "cached_input",
    "free_tier",
    "date",
    "source",
    "verified",
    "note",
}


@dataclass(frozen=True, slots=True)
class Price:
    """What one model costs: USD per 1M tokens, and where that figure comes from."""

    input: float
    output: float
    cached_input: float | None = None
    free_tier: bool = False  # the provider also offers the model on a free, rate-limited tier
    date: str | None = None
    source: str | None = None
    verified: bool = True  # False: a placeholder, not read from the provider's own page
    note: str | None = None

    @property
    def free(self) -> bool:
        """Costs nothing at all (a local model, or one configured with price 0)."""
        return self.input == 0 and self.output == 0

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """USD for a reply with these token counts."""
        return (prompt_tokens * self.input + completion_tokens * self.output) / PER_TOKENS

    def as_dict(self) -> dict[str, Any]:
        return {
            "input_per_1m": self.input,
            "output_per_1m": self.output,
            "cached_input_per_1m": self.cached_input,
            "free": self.free,
            "free_tier": self.free_tier,
            "date": self.date,
            "source": self.source,
            "verified": self.verified,
            "note": self.note,
        }


LOCAL_FREE = Price(
    0.0, 0.0, source="provider of kind openai without a price (a local server)", verified=True
)


def _number(value: Any, where: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where} must be a number, got {value!r}", path=source)
    if value < 0:
        raise ConfigError(f"{where} must not be negative, got {value!r}", path=source)
    return float(value)


def parse_prices(data: Mapping[str, Any], source: str) -> dict[str, Price]:
    """The `[prices."ID"]` tables of a prices file; ConfigError naming the file if invalid."""
    tables = data.get("prices", {})
    if not isinstance(tables, dict):
        raise ConfigError("[prices] must be a table", path=source)
    prices: dict[str, Price] = {}
    for model_id, table in tables.items():
        where = f'[prices."{model_id}"]'
        if not isinstance(table, dict):
            raise ConfigError(f"{where} must be a table", path=source)
        unknown = set(table) - _PRICE_KEYS
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}", path=source)
        if "input" not in table or "output" not in table:
            raise ConfigError(f"{where} needs input and output", path=source)
        cached = table.get("cached_input")
        prices[model_id] = Price(
            input=_number(table["input"], f"{where} input", source),
            output=_number(table["output"], f"{where} output", source),
            cached_input=None
            if cached is None
            else _number(cached, f"{where} cached_input", source),
            free_tier=bool(table.get("free_tier", False)),
            date=str(table["date"]) if table.get("date") is not None else None,
            source=table.get("source"),
            verified=bool(table.get("verified", True)),
            note=table.get("note"),
        )
    return prices


@functools.cache
def builtin_prices() -> Mapping[str, Price]:
    """The shipped price table (read once per process)."""
    import tomllib

    text = resources.files("llmrouter_tui").joinpath("data", "prices.toml").read_text("utf-8")
    return parse_prices(tomllib.loads(text), "prices.toml")


class PriceTable:
    """Prices by model id, with the config's overrides and free local providers applied."""

    def __init__(
        self,
        prices: Mapping[str, Price] | None = None,
        *,
        free_providers: frozenset[str] = frozenset(),
    ) -> None:
        self._prices: dict[str, Price] = dict(builtin_prices() if prices is None else prices)
        # Providers of kind "openai": their models are free unless priced.
        self._free_providers = free_providers

    @classmethod
    def for_settings(
        cls,
        models: Mapping[str, Mapping[str, Any]],
        providers: Mapping[str, object],
        source: str = "llmrouter.toml",
    ) -> PriceTable:
        """The shipped prices with `price_in` / `price_out` of `[models."ID"]` applied."""
        prices = dict(builtin_prices())
        for model_id, table in models.items():
            if "price_in" not in table and "price_out" not in table:
                continue
            base = prices.get(model_id)
            prices[model_id] = Price(
                input=float(table.get("price_in", base.input if base else 0.0)),
                output=float(table.get("price_out", base.output if base else 0.0)),
                cached_input=base.cached_input if base else None,
                free_tier=base.free_tier if base else False,
                source=source,
                verified=True,
                note="set in the config",
            )
        free = frozenset(
            name for name, conf in providers.items() if getattr(conf, "kind", None) == "openai"
        )
        return cls(prices, free_providers=free)

    def price(self, model: str, provider: str | None = None) -> Price | None:
        """The price of `model` (a catalog id, or `provider:model`), or None if unknown."""
        found = self._prices.get(model)
        if found is None and provider is not None and model.startswith(provider + ":"):
            found = self._prices.get(model[len(provider) + 1 :])
        if found is None and provider in self._free_providers:
            return LOCAL_FREE
        return found

    def is_free(self, model: str, provider: str | None = None) -> bool:
        """True only for models known to cost nothing (unpriced ones may cost money)."""
        found = self.price(model, provider)
        return found is not None and found.free

    def cost(
        self, model: str, provider: str | None, prompt_tokens: int, completion_tokens: int
    ) -> float | None:
        """USD for a reply, or None when the model has no price."""
        found = self.price(model, provider)
        return None if found is None else found.cost(prompt_tokens, completion_tokens)

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """Every price, JSON-ready (for `GET /models` and the analytics screen)."""
        return {model: price.as_dict() for model, price in self._prices.items()}


def format_usd(value: float | None) -> str:
    """A cost as people read it: "$0.0004", "$1.23", "free", "price unknown"."""
    if value is None:
        return "price unknown"
    if value == 0:
        return "free"
    if value >= 1:
        return f"${value:,.2f}"
    digits = max(2, 1 - math.floor(math.log10(value)))  # two significant figures
    text = f"{value:.{digits}f}"
    whole, _, decimals = text.partition(".")
    return f"${whole}.{decimals.rstrip('0').ljust(2, '0')}"
