"""`GET /models?live=true`: ask every provider for its model list and merge it in.

Each provider gets a short timeout; one that fails is reported, never fatal. Errors are
described by kind and HTTP status only, so no key (or URL carrying one) can leak.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from ..core.catalog import ModelRow
from ..core.runtime import Runtime
from .wire_shapes import LiveListing


def _describe(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None) or getattr(exc, "code", None)
    if isinstance(status, int):
        return f"HTTP {status} ({type(exc).__name__})"
    return type(exc).__name__


async def _listing(runtime: Runtime, name: str, timeout_s: float) -> dict[str, Any]:
    pool = runtime.router.providers
    if not pool.has_key(name):
        env = pool.settings[name].api_key_env or "its API key"
        return {"ok": False, "error": f"no API key (set {env})"}
    try:
        async with asyncio.timeout(timeout_s):
            models = await pool.get(name).list_models(timeout_s)
    except TimeoutError:
        return {"ok": False, "error": f"no answer within {timeout_s:g}s"}
    except Exception as exc:
        return {"ok": False, "error": _describe(exc)}
    return {
        "ok": True,
        "models": [
            {"id": m.id, "context_window": m.context_window, "label": m.label} for m in models
        ],
    }


async def live_models(runtime: Runtime, timeout_s: float) -> dict[str, dict[str, Any]]:
    """{provider: {"ok": True, "models": [...]} | {"ok": False, "error": "..."}}, in parallel."""
    names = list(runtime.router.providers.settings)
    found = await asyncio.gather(*(_listing(runtime, n, timeout_s) for n in names))
    return dict(zip(names, found, strict=True))


def merge_live(
    rows: Sequence[ModelRow], live: dict[str, dict[str, Any]]
) -> tuple[list[ModelRow], dict[str, LiveListing]]:
    """Catalog rows marked `live` true/false (None when unknown) plus live-only models.

    Returns the rows and a per-provider summary ({"ok", "count"} or {"ok", "error"}).
    """
    listed = {
        name: {m["id"]: m for m in info["models"]} for name, info in live.items() if info["ok"]
    }
    merged: list[ModelRow] = []
    for row in rows:
        ids = listed.get(row["provider"])
        merged.append({**row, "live": None if ids is None else row["id"] in ids})
    known = {(row["provider"], row["id"]) for row in rows}
    for provider, models in listed.items():
        for model_id, model in models.items():
            if (provider, model_id) in known:
                continue
            merged.append(
                {
                    "id": f"{provider}:{model_id}",
                    "provider": provider,
                    "label": model["label"] or model_id,
                    "context_window": model["context_window"],
                    "status": "not in catalog (live listing)",
                    "catalog_status": None,
                    "replacement": None,
                    "shutdown": None,
                    "kind": None,
                    "live": True,
                }
            )
    summary: dict[str, LiveListing] = {
        name: {"ok": True, "count": len(info["models"])}
        if info["ok"]
        else {"ok": False, "error": info["error"]}
        for name, info in live.items()
    }
    return merged, summary
