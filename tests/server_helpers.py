"""Shared pieces of the server tests (tests/test_server_*.py).

- `serving()`: the embedded server on port 0 inside the test's event loop.
- `ServerProcess`: `python -m llmrouter_tui --serve ...` (or any command) in a subprocess,
  its stderr collected, its URL read from the banner.
- `sse_events()`: the `data:` payloads of an SSE body.
- `validate()` / `check_response()`: a small JSON Schema validator (the subset the OpenAPI
  document uses) to hold real responses to /openapi.json.
- `leaks()`: every place a secret or a 6-character fragment of it appears in a text.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from llmrouter_tui.server.http import HttpServer, ServerConfig
from llmrouter_tui.server.openapi import document
from llmrouter_tui.server.types import ASGIApp

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
FRAGMENT = 6

ACCESS_LINE = re.compile(
    r'^\S+:\d+ - "(?P<method>[A-Z-]+) (?P<path>\S+)" (?P<status>\d{3}|-) \d+\.\dms$'
)


# ---- SSE ------------------------------------------------------------------------------------


def sse_events(text: str) -> list[Any]:
    """The `data:` payloads of an SSE stream, JSON-decoded (`[DONE]` kept as the string)."""
    events: list[Any] = []
    for block in text.split("\n\n"):
        for line in block.splitlines():
            if line.startswith("data: "):
                payload = line[len("data: ") :]
                events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


# ---- secrets --------------------------------------------------------------------------------


def fragments(secret: str, size: int = FRAGMENT) -> list[str]:
    return [secret[i : i + size] for i in range(len(secret) - size + 1)]


def _public_text() -> str:
    from llmrouter_tui.core.catalog import Catalog

    return "\n".join([*Catalog().models, "groq", "gemini", "openai", "local", "llama3.2"])


PUBLIC_TEXT = _public_text()


def leaks(text: str, secrets: Iterable[str]) -> list[str]:
    """Secrets, or FRAGMENT-character pieces of them, found in `text`.

    Pieces that are public words (model and provider names, e.g. "gemini" inside a test key)
    are left out.
    """
    found = []
    for secret in secrets:
        pieces = [secret, *(f for f in fragments(secret) if f not in PUBLIC_TEXT)]
        found += [piece for piece in pieces if piece in text]
    return found


# ---- JSON Schema (the subset /openapi.json uses) ----------------------------------------------


class SchemaError(AssertionError):
    pass


_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _TYPES[name])


def validate(value: Any, schema: dict[str, Any], root: dict[str, Any], where: str = "$") -> None:
    """Raise SchemaError naming the first place `value` breaks `schema`."""
    if "$ref" in schema:
        node: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        validate(value, node, root, where)
        return
    known = {
        "$ref", "type", "properties", "required", "additionalProperties", "items", "enum",
        "const", "oneOf", "anyOf", "minimum", "maximum", "minItems", "pattern", "description",
        "x-event-schema",
    }  # fmt: skip
    unknown = set(schema) - known
    if unknown:
        raise SchemaError(f"{where}: the validator does not support {sorted(unknown)}")
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(value, n) for n in names):
            raise SchemaError(f"{where}: expected {names}, got {type(value).__name__} {value!r}")
    if "const" in schema and value != schema["const"]:
        raise SchemaError(f"{where}: expected {schema['const']!r}, got {value!r}")
    if "enum" in schema and value not in schema["enum"]:
        raise SchemaError(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise SchemaError(f"{where}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            raise SchemaError(f"{where}: {value} > {schema['maximum']}")
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        raise SchemaError(f"{where}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, dict):
        for name in schema.get("required", ()):
            if name not in value:
                raise SchemaError(f"{where}: missing required {name!r}")
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in props:
                validate(item, props[name], root, f"{where}.{name}")
            elif extra is False:
                raise SchemaError(f"{where}: unexpected property {name!r}")
            elif isinstance(extra, dict):
                validate(item, extra, root, f"{where}.{name}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            raise SchemaError(f"{where}: fewer than {schema['minItems']} items")
        if "items" in schema:
            for index, item in enumerate(value):
                validate(item, schema["items"], root, f"{where}[{index}]")
    for key, need in (("oneOf", 1), ("anyOf", None)):
        if key in schema:
            passed = 0
            for option in schema[key]:
                try:
                    validate(value, option, root, where)
                    passed += 1
                except SchemaError:
                    pass
            if (need is None and passed == 0) or (need is not None and passed != need):
                raise SchemaError(f"{where}: {passed} of the {key} options match {value!r:.200}")


def response_schema(
    path: str, method: str, status: int, content_type: str = "application/json"
) -> dict[str, Any]:
    """The documented schema for a response (KeyError if the status is not documented)."""
    responses = document()["paths"][path][method.lower()]["responses"]
    media = responses[str(status)]["content"][content_type]
    return media.get("x-event-schema", media["schema"])


def check_response(response: httpx.Response, path: str | None = None) -> Any:
    """Validate a real response against /openapi.json; return its JSON (or SSE events)."""
    request = response.request
    path = path or request.url.path
    ctype = response.headers.get("content-type", "").split(";")[0]
    schema = response_schema(path, request.method, response.status_code, ctype)
    root = document()
    if ctype == "text/event-stream":
        events = sse_events(response.text)
        for index, event in enumerate(events):
            if event != "[DONE]":
                validate(event, schema, root, f"event[{index}]")
        return events
    data = response.json()
    validate(data, schema, root)
    return data


# ---- the embedded server in the test's loop ---------------------------------------------------


@asynccontextmanager
async def serving(app: ASGIApp, **config: Any) -> AsyncIterator[HttpServer]:
    """Run `app` on 127.0.0.1:<random port>; `server.log_text()` gives the access log."""
    log = io.StringIO()
    server = HttpServer(app, ServerConfig(host="127.0.0.1", port=0, **config), log=log)
    ready = asyncio.Event()
    task = asyncio.create_task(
        server.run(install_signal_handlers=False, ready=lambda _s: ready.set())
    )
    waiter = asyncio.ensure_future(ready.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        task.result()  # raises the start-up error
    server.log_text = log.getvalue  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.request_stop()
        await asyncio.wait_for(task, 15)


# ---- a server in a subprocess ---------------------------------------------------------------

_URL = re.compile(r"(?:serving on|running on) (http://[\w.\[\]:]+)", re.IGNORECASE)


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without provider/app settings, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GROQ_", "GEMINI_", "GOOGLE_", "LLMROUTER_"))
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class ServerProcess:
    """A server subprocess; stderr is collected line by line in the background."""

    def __init__(
        self, args: list[str], env: dict[str, str], cwd: Path | None = None, *, module: bool = True
    ) -> None:
        command = [sys.executable, "-m", "llmrouter_tui", *args] if module else args
        self.proc = subprocess.Popen(
            command,
            env=env,
            cwd=str(cwd) if cwd else None,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._got_line = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.url = ""

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._got_line:
                self.lines.append(line.rstrip("\n"))
                self._got_line.notify_all()
        with self._got_line:
            self._got_line.notify_all()

    @property
    def stderr(self) -> str:
        with self._got_line:
            return "\n".join(self.lines)

    def wait_for_url(self, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        with self._got_line:
            while True:
                for line in self.lines:
                    match = _URL.search(line)
                    if match:
                        self.url = match.group(1)
                        return self.url
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"server did not start:\n{chr(10).join(self.lines)}")
                self._got_line.wait(min(left, 0.2))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(5)


def refuses_connections(url: str) -> bool:
    """A probe for `wait_until`: is a new connection to `url` refused?"""
    try:
        httpx.get(f"{url}/health", timeout=2)
    except httpx.ConnectError:
        return True
    return False


def access_lines(stderr: str) -> list[re.Match[str]]:
    """The access-log lines in a server's stderr, parsed."""
    return [m for m in map(ACCESS_LINE.match, stderr.splitlines()) if m]


def write_config(path: Path, **routing: float | int | bool) -> Path:
    """An llmrouter.toml with a [routing] table (short limits for fault tests)."""
    lines = ["[routing]"] + [f"{key} = {json.dumps(value)}" for key, value in routing.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


FAST_ROUTING_TOML: dict[str, float | int] = {
    "max_retries": 1,
    "backoff_initial_s": 0.01,
    "backoff_max_s": 0.02,
    "connect_timeout_s": 1,
    "first_token_timeout_s": 2,
    "stream_idle_timeout_s": 1,
    "attempt_timeout_s": 5,
    "total_timeout_s": 8,
}
