"""`llmrouter-tui config`: every setting in effect and where it came from.

Keys are shown only as "set" or "missing" (and the whole output is scrubbed of key text once
more); working-directory settings that were refused are listed with their warning.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .core.config import PROVIDER_KEYS, SECTIONS, Settings, load_settings
from .core.config_schema import Key
from .core.errors import ConfigError
from .core.provenance import DEFAULT, Origin, display_url
from .core.redact import Redactor
from .core.runtime import template_paths, workdir_template_paths
from .core.templates import TemplateSet, default_templates_path, load_templates
from .exit_codes import ExitCode


def config_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmrouter-tui config",
        description="Show every setting in effect and where it came from (file and line, "
        "environment variable, or default). Keys are shown only as set or missing. "
        "Exit codes: 0 shown, 2 broken configuration.",
    )
    parser.add_argument("--config", metavar="PATH", help="llmrouter.toml to use")
    parser.add_argument("--data-dir", metavar="DIR", help="where the database and logs/ live")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


# ---- collecting ------------------------------------------------------------------------------


def _row(
    name: str, value: Any, origin: Origin, shown: str | None = None, key: Key | None = None
) -> dict[str, Any]:
    """One setting; `shown` is its text form (default: JSON of the value); `key` its schema."""
    if shown is None:
        shown = "(not set)" if value is None else json.dumps(value, ensure_ascii=False)
    row = {"name": name, "value": value, "shown": shown, "source": origin}
    if key is not None:
        row.update(accepts=key.describe(), description=key.doc)
    return row


def _config_source(settings: Settings) -> str:
    origin = settings.sources.get("config", DEFAULT)
    if settings.config_path is None:
        return (
            "none found (looked for --config, $LLMROUTER_CONFIG, ./llmrouter.toml, "
            "<data dir>/llmrouter.toml)"
        )
    if origin.kind == "cli":
        return "chosen with --config (trusted)"
    if origin.kind == "env":
        return "chosen by $LLMROUTER_CONFIG (trusted)"
    if origin.kind == "dotenv":
        return (
            f"chosen by {origin.describe()}: a working-directory file, so its provider "
            "settings may not send keys it does not provide"
        )
    if origin.trusted:
        return f"found in the {origin.name} (trusted)"
    return (
        f"found in the {origin.name}: its provider settings may not send keys it does not "
        "provide (pass --config to trust it)"
    )


def _section_rows(settings: Settings) -> list[dict[str, Any]]:
    """Every key of the schema's plain tables (default_model, [routing], [cache]…)."""
    rows = []
    for section in SECTIONS:
        if section.named:
            continue
        holder = getattr(settings, section.name) if section.name else settings
        for key_name, key in section.keys.items():
            name = f"{section.name}.{key_name}" if section.name else key_name
            current = getattr(holder, key_name)
            if isinstance(current, tuple):
                current = list(current)
            elif isinstance(current, Mapping):
                current = dict(current)
            rows.append(_row(name, current, settings.sources.get(name, DEFAULT), key=key))
    return rows


def _provider_rows(settings: Settings) -> list[dict[str, Any]]:
    rows = []
    for name, provider in settings.providers.items():
        prefix = f"providers.{name}."

        def source(key: str, _prefix: str = prefix) -> Origin:
            return settings.sources.get(_prefix + key, DEFAULT)

        key_state = "set" if provider.api_key else "missing"
        key_shown = key_state
        if not provider.api_key and not provider.key_required:
            key_shown = "missing (not required for kind 'openai')"
        url = display_url(provider.base_url) if provider.base_url else None
        keys = PROVIDER_KEYS
        rows += [
            _row(prefix + "kind", provider.kind, source("kind"), key=keys["kind"]),
            _row(
                prefix + "base_url",
                url,
                source("base_url"),
                url or display_url(None),
                key=keys["base_url"],
            ),
            _row(
                prefix + "api_key_env",
                provider.api_key_env,
                source("api_key_env"),
                key=keys["api_key_env"],
            ),
            _row(prefix + "api_key", key_state, source("api_key"), key_shown),
        ]
    return rows


def _model_rows(settings: Settings) -> list[dict[str, Any]]:
    return [
        _row(
            f'models."{model_id}"', dict(table), settings.sources.get(f"models.{model_id}", DEFAULT)
        )
        for model_id, table in settings.models.items()
    ]


def _templates(settings: Settings) -> tuple[TemplateSet, list[str]]:
    paths = template_paths(settings.data_dir)
    templates = load_templates(paths, announce=workdir_template_paths(settings))
    read = [str(default_templates_path()), *(str(p) for p in paths if p.is_file())]
    return templates, list(dict.fromkeys(read))


def collect(settings: Settings) -> dict[str, Any]:
    """Everything the command shows, as plain data (origins still as Origin)."""
    templates, files = _templates(settings)
    data_origin = settings.sources.get("data_dir", DEFAULT)
    rows = [*_section_rows(settings), *_provider_rows(settings), *_model_rows(settings)]
    refused = {r.setting: r.origin for r in settings.refusals}
    for row in rows:
        if row["name"] in refused:
            row["refused"] = refused[row["name"]]
    return {
        "cwd": str(Path.cwd()),
        "config_file": str(settings.config_path) if settings.config_path else None,
        "config_source": _config_source(settings),
        "env_file": str(settings.env_file) if settings.env_file else None,
        "data_dir": _row("data_dir", str(settings.data_dir), data_origin),
        "settings": rows,
        "refused": [
            {"setting": r.setting, "source": r.origin, "warning": r.message}
            for r in settings.refusals
        ],
        "notices": [
            {"level": n.level, "text": n.text}
            for n in (*settings.notices, *templates.notices)
            if n.text not in {r.message for r in settings.refusals}
        ],
        "templates": {"files": files, "count": len(templates)},
    }


# ---- printing --------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, Origin):
        return value.as_dict()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items() if k != "shown"}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _source_text(origin: Origin) -> str:
    text = origin.describe()
    return text if origin.trusted or origin.kind == "default" else text + " [working directory]"


def render_text(info: dict[str, Any]) -> str:
    lines = [f"working directory: {info['cwd']}"]
    lines.append(f"config file:       {info['config_file'] or '(none)'}")
    lines.append(f"                   {info['config_source']}")
    lines.append(f"env file:          {info['env_file'] or '(none)'}")
    data = info["data_dir"]
    lines.append(f"data directory:    {data['value']}  ({_source_text(data['source'])})")
    lines.append("")
    rows = info["settings"]
    width = max(len(r["name"]) for r in rows) + 2
    value_width = min(40, max(len(r["shown"]) for r in rows))
    for row in rows:
        name, shown, source = row["name"], row["shown"], _source_text(row["source"])
        if "refused" in row:
            source += f"  (the value from {row['refused'].describe()} was refused, see below)"
        lines.append(f"{name:<{width}}{shown:<{value_width}}  {source}")
    lines.append("")
    templates = info["templates"]
    lines.append(f"templates: {templates['count']} loaded from " + ", ".join(templates["files"]))
    if info["refused"]:
        lines.append("")
        lines.append("refused working-directory settings:")
        lines.extend(f"  {r['setting']}: {r['warning']}" for r in info["refused"])
    if info["notices"]:
        lines.append("")
        lines.append("notices:")
        lines.extend(f"  {n['level']}: {n['text']}" for n in info["notices"])
    return "\n".join(lines) + "\n"


def run_config(argv: list[str]) -> int:
    """Entry point for `llmrouter-tui config`; returns the process exit code."""
    args = config_parser().parse_args(argv)
    try:
        settings = load_settings(config=args.config, data_dir=args.data_dir)
        info = collect(settings)
    except ConfigError as exc:
        sys.stderr.write(f"config error: {exc}\n")
        return ExitCode.BAD_INPUT
    if args.json:
        text = json.dumps(_jsonable(info), ensure_ascii=False, indent=2) + "\n"
    else:
        text = render_text(info)
    # Keys are never put in the output; this is the belt to those braces.
    sys.stdout.write(Redactor.for_settings(settings).text(text))
    return ExitCode.OK
