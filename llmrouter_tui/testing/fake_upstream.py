"""A fake Groq / Gemini / OpenAI-compatible upstream speaking the real wire protocols.

Serves HTTP/1.1 (via h11, with keep-alive) on 127.0.0.1 from its own event loop in a
daemon thread, so sync code, async code and the app's `--demo` mode can all use it.
Faults (`Fault`) make it misbehave in the ways real providers and networks do.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote

import h11

from llmrouter_tui.testing import fake_features as F
from llmrouter_tui.testing import fake_payloads as P
from llmrouter_tui.testing.fake_payloads import DEFAULT_MODELS, Reply, default_reply

__all__ = ["FAULT_KINDS", "FakeUpstream", "Fault", "ReplyFn", "SeenRequest", "default_reply"]

ReplyFn = Callable[[str, str, list[dict[str, str]]], str]

FAULT_KINDS = frozenset(
    {
        "status",
        "silent",
        "slow_first_token",
        "cut",
        "stall",
        "malformed_chunk",
        "no_done",
        "reset",
        "non_json",
        "content_filter",
        "context_length",
        "truncated_length",
        "error_string",
        "error_object_midstream",
        "error_event",
        "error_field",
        "error_finish",
        "json_instead_of_stream",
    }
)
# Errors sent inside a 200 stream after `after_chunks` chunks (OpenAI-style wire formats).
_MIDSTREAM_ERRORS = frozenset(
    {"error_string", "error_object_midstream", "error_event", "error_field", "error_finish"}
)
_AT_CHUNK = frozenset({"cut", "stall", "malformed_chunk"}) | _MIDSTREAM_ERRORS
_TEXT = b"text/plain; charset=utf-8"
_GEMINI_ACTIONS = frozenset({"generateContent", "streamGenerateContent", "countTokens"})

_JSON = b"application/json"
_SSE = b"text/event-stream"
_SERVER = (b"server", b"fake-upstream")
# Static rate-limit headers Groq sends on every response; parsers may read them.
_GROQ_HEADERS = (
    _SERVER,
    (b"x-ratelimit-limit-requests", b"1000"),
    (b"x-ratelimit-limit-tokens", b"250000"),
    (b"x-ratelimit-remaining-requests", b"999"),
    (b"x-ratelimit-remaining-tokens", b"249000"),
    (b"x-ratelimit-reset-requests", b"1m26.4s"),
    (b"x-ratelimit-reset-tokens", b"240ms"),
    (b"x-groq-region", b"fake-local"),
)
_PLAIN_HEADERS = (_SERVER,)
_REASONS: dict[int, bytes] = {s.value: s.phrase.encode() for s in HTTPStatus}
_SECRET_HEADERS = frozenset({"authorization", "x-goog-api-key"})


def _trusted_kw() -> dict[str, Any]:
    # Our response headers are fixed, valid ASCII: h11's private `_parsed` flag skips its
    # per-header regex validation, the largest per-request cost. Fall back if it goes away.
    try:
        h11.Response(status_code=200, headers=[(b"a", b"b")], _parsed=True)
    except TypeError:
        return {}
    return {"_parsed": True}


_TRUSTED = _trusted_kw()


@dataclass
class Fault:
    """One way to misbehave, applied to matching chat requests.

    Kinds (stream / non-stream):
      status            HTTP `status` with the provider's error body (plus retry hints).
      silent            read the request, never answer; the socket stays open.
      slow_first_token  headers (and Groq/OpenAI role chunk) now, content after `delay_s`.
      cut               close mid-body after `after_chunks` chunks / half the JSON.
      stall             pause `delay_s` after `after_chunks` chunks / before the body.
      malformed_chunk   a `data: {not json` event after `after_chunks` / 200 invalid JSON.
      no_done           stream ends cleanly without `data: [DONE]`; with `delay_s`, the
                        body then stays open that long (a server that never closes it).
      reset             TCP RST right after the request, before any byte.
      non_json          502 text/html body.
      content_filter    Groq/OpenAI 400 content_filter; Gemini 200 promptFeedback block.
      context_length    400 context-length error in the provider's shape.
      truncated_length  shortened reply ending with `length` / `MAX_TOKENS`.

    Errors inside a 200 reply, as OpenAI-compatible servers send them, from `message` (None:
    fake_payloads.DEFAULT_ERROR_MESSAGE; "": no message field), `code` (a string or a
    number) and `error_type`. In a stream they come after `after_chunks` content chunks,
    followed by `data: [DONE]`; a non-stream request gets the error as its whole 200 JSON
    body instead.
      error_string            `data: {"error": "<message>"}` (Ollama, LM Studio, TGI).
      error_object_midstream  `data: {"error": {"message", "type", "code"}}` (OpenAI, vLLM,
                              SGLang, LiteLLM with string codes, llama.cpp since late 2025).
      error_event             `event: error` + `data:` in `error_shape` ("text": plain text).
      error_field             llama.cpp's non-standard `error: {"message", "type", "code"}`.
      error_finish            OpenRouter: a chunk with `error` {code, message} and a choice
                              with finish_reason "error".
      json_instead_of_stream  a stream request answered with the whole application/json
                              reply (text, tool calls, usage); with `error_shape`, with that
                              error body instead (LM Studio answers errors so, at HTTP 200).
    `error_shape` (P.ERROR_SHAPES: object, string, flat, text) also makes a `status` fault
    answer with that body shape instead of the provider's own (Ollama's `{"error": "…"}`…).

    `times` is decremented in place on each use; the fault stops matching at zero.
    Faults never apply to model listings, and a request failing auth consumes none.
    """

    kind: str
    model: str | None = None
    provider: str | None = None
    times: int | None = None
    status: int = 500
    retry_after_s: float | None = None
    retry_after_ms: int | None = None
    delay_s: float = 0.0
    after_chunks: int = 2
    message: str | None = None
    code: str | int | None = None
    error_shape: str | None = None
    error_type: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")
        if self.error_shape is not None and self.error_shape not in P.ERROR_SHAPES:
            raise ValueError(f"unknown error shape {self.error_shape!r}")


@dataclass(slots=True)
class SeenRequest:
    """A request the fake received (recorded before auth and faults are applied)."""

    t: float
    provider: str | None
    method: str
    path: str
    model: str | None
    stream: bool
    body: Any
    api_key: str | None = field(default=None, repr=False)
    query: str = ""
    # Lower-cased names; the auth headers are left out (the key is in `api_key`).
    headers: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass(slots=True)
class _Route:
    provider: str | None
    action: str  # "chat" | "list" | "get" | "count" | "404"
    model: str | None = None
    stream: bool = False
    sse: bool = True


class _Closed(Exception):
    """The connection was closed on purpose (fault) or by the peer; stop serving it."""


def _json_body(raw: bytes) -> Any:
    """The request body as JSON (None: empty or not JSON)."""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _key_of(provider: str | None, headers: dict[str, str], query: str) -> str | None:
    """The API key a request carries, where its provider's SDK puts it."""
    if provider == "gemini":
        key = headers.get("x-goog-api-key")
        if key is None and "key=" in query:
            key = parse_qs(query).get("key", [None])[0]
        return key
    auth = headers.get("authorization", "")
    return auth[7:] if auth[:7].lower() == "bearer " else None


class FakeUpstream:
    """Fake LLM upstream on 127.0.0.1 with a random port.

    `fast=True` answers "ok" in one chunk from cached bytes (benchmarks; ignores
    `reply_fn`). `chunk_delay_s` spaces stream chunks. `valid_keys` maps provider to
    the one key it accepts; providers without an entry accept any non-empty key.
    """

    def __init__(
        self,
        fast: bool = False,
        chunk_delay_s: float = 0.0,
        valid_keys: dict[str, str] | None = None,
    ) -> None:
        self.fast = fast
        self.chunk_delay_s = chunk_delay_s
        self.valid_keys = valid_keys
        self.reply_fn: ReplyFn = default_reply
        # Models that answer a trailing assistant message (prefill) with a 400.
        self.refuse_prefill: set[str] = set()
        self.models: dict[str, list[str]] = {k: list(v) for k, v in DEFAULT_MODELS.items()}
        # path -> (content type, body) served to GET as they are (e.g. images to fetch).
        self.files: dict[str, tuple[str, bytes]] = {}
        self.errors: list[BaseException] = []  # unexpected server-side exceptions
        self.port = 0
        self.connections_opened = 0  # TCP connections accepted; shows keep-alive reuse
        self._requests: list[SeenRequest] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._fast_cache: dict[tuple, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeUpstream:
        """Start serving; returns once the socket is listening."""
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._serve_conn, "127.0.0.1", 0, backlog=512)
                )
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as e:
                failure.append(e)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="fake-upstream", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = self._loop = None
            raise failure[0]
        return self

    def stop(self) -> None:
        """Close the listener and every connection (ending silent/stall waits), join the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=5)
        except Exception as e:  # keep going: the thread must still stop
            self.errors.append(e)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        self._loop = self._thread = self._server = None

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ public helpers

    @property
    def base_url(self) -> str:
        """Host root; the base URL for the Groq SDK and google-genai."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """Base URL for an OpenAI-compatible client."""
        return self.base_url + "/v1"

    @property
    def requests(self) -> list[SeenRequest]:
        """Snapshot of every request received, in arrival order."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, model: str, provider: str | None = None) -> list[SeenRequest]:
        """Requests that named `model` (optionally only for one provider)."""
        return [
            r
            for r in self.requests
            if r.model == model and (provider is None or r.provider == provider)
        ]

    def clear(self) -> None:
        """Forget recorded requests, faults and errors."""
        with self._lock:
            self._requests.clear()
            self._faults.clear()
            self.errors.clear()
            self.files.clear()
            self.refuse_prefill.clear()

    def add_fault(self, fault: Fault) -> None:
        """Queue a fault; the first matching one with `times` left applies to a request."""
        if fault.times is not None and fault.times <= 0:
            return
        with self._lock:
            self._faults.append(fault)

    @staticmethod
    def refused_url() -> str:
        """URL of a local port with nothing listening (connections are refused)."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def _take_fault(self, provider: str, model: str | None) -> Fault | None:
        if not self._faults:  # lock-free fast path; list truthiness is atomic
            return None
        with self._lock:
            for f in self._faults:
                if (f.model is None or f.model == model) and (
                    f.provider is None or f.provider == provider
                ):
                    if f.times is not None:
                        f.times -= 1
                        if f.times <= 0:
                            self._faults.remove(f)
                    return f
        return None

    # ------------------------------------------------------------------ connection loop

    async def _serve_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self.connections_opened += 1
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                got = await self._read_request(conn, reader)
                if got is None:
                    break
                req, body, t = got
                await self._dispatch(conn, reader, writer, req, body, t)
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    break
                conn.start_next_cycle()
        except (_Closed, ConnectionError, h11.RemoteProtocolError, OSError):
            pass
        except asyncio.CancelledError:
            # Only stop() cancels us. Swallowed because 3.11's start_server callback
            # logs a spurious traceback for a cancelled handler task.
            pass
        except Exception as e:  # a bug in the fake: record it, answer 500 if still possible
            self.errors.append(e)
            if conn.our_state is h11.SEND_RESPONSE:
                try:
                    body = P.oa_error(f"fake upstream error: {e!r}", "api_error", "fake_bug")
                    writer.write(self._whole_bytes(conn, 500, body, _JSON, _PLAIN_HEADERS))
                except Exception:
                    pass
        finally:
            if task is not None:
                self._tasks.discard(task)
            if not writer.transport.is_closing():
                writer.transport.close()

    async def _read_request(
        self, conn: h11.Connection, reader: asyncio.StreamReader
    ) -> tuple[h11.Request, bytes, float] | None:
        req: h11.Request | None = None
        t = 0.0
        parts: list[bytes] = []
        while True:
            ev = conn.next_event()
            if ev is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
            elif isinstance(ev, h11.Request):
                req, t = ev, time.monotonic()
            elif isinstance(ev, h11.Data):
                parts.append(ev.data)
            elif isinstance(ev, h11.EndOfMessage):
                assert req is not None
                return req, b"".join(parts), t
            else:  # ConnectionClosed (or PAUSED, which cannot happen here)
                return None

    # ------------------------------------------------------------------ routing

    @staticmethod
    def _route(method: str, path: str, query: str, headers: dict[str, str], body: Any) -> _Route:
        if path.startswith("/openai/v1/"):
            sub, provider = path[10:], "groq"
        elif path.startswith("/v1beta/"):
            return FakeUpstream._gemini_route(method, path[7:], query)
        elif path.startswith("/v1/"):
            sub = path[3:]
            # /v1 is shared: google-genai 3.x defaults to it, so tell Gemini by its key
            # or a `:generateContent`-style verb (Ollama ids like "llama3.2:3b" have colons).
            if (
                "x-goog-api-key" in headers
                or "key=" in query
                or sub.rpartition(":")[2] in _GEMINI_ACTIONS
            ):
                return FakeUpstream._gemini_route(method, sub, query)
            provider = "openai"
        else:
            return _Route(None, "404")
        if sub == "/chat/completions" and method == "POST":
            model = body.get("model") if isinstance(body, dict) else None
            stream = bool(body.get("stream")) if isinstance(body, dict) else False
            return _Route(provider, "chat", model if isinstance(model, str) else None, stream)
        if sub == "/models" and method == "GET":
            return _Route(provider, "list")
        if sub.startswith("/models/") and method == "GET":
            return _Route(provider, "get", unquote(sub[8:]))
        return _Route(provider, "404")

    @staticmethod
    def _gemini_route(method: str, sub: str, query: str) -> _Route:
        if sub == "/models" and method == "GET":
            return _Route("gemini", "list")
        if not sub.startswith("/models/"):
            return _Route("gemini", "404")
        rest = unquote(sub[8:])
        model, _, action = rest.partition(":")
        if model.startswith("models/"):
            model = model[7:]
        if not action:
            return _Route("gemini", "get" if method == "GET" else "404", model)
        if method != "POST" or action not in _GEMINI_ACTIONS:
            return _Route("gemini", "404", model)
        if action == "countTokens":
            return _Route("gemini", "count", model)
        stream = action == "streamGenerateContent"
        return _Route("gemini", "chat", model, stream, sse="alt=sse" in query)

    # ------------------------------------------------------------------ dispatch

    async def _dispatch(
        self,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        req: h11.Request,
        raw: bytes,
        t: float,
    ) -> None:
        method = req.method.decode()
        target = req.target.decode("latin-1")
        path, _, query = target.partition("?")
        headers = {k.decode(): v.decode("latin-1") for k, v in req.headers}
        body = _json_body(raw)
        route = self._route(method, path, query, headers, body)
        provider = route.provider
        key = _key_of(provider, headers, query)
        seen = SeenRequest(
            t,
            provider,
            method,
            path,
            route.model,
            route.stream,
            body,
            key or None,
            query,
            {k: v for k, v in headers.items() if k not in _SECRET_HEADERS},
        )
        with self._lock:
            self._requests.append(seen)

        extra = _GROQ_HEADERS if provider == "groq" else _PLAIN_HEADERS
        if provider is None and method == "GET" and path in self.files:
            ctype, data = self.files[path]
            writer.write(self._whole_bytes(conn, 200, data, ctype.encode(), extra))
            return
        if route.action == "404" or provider is None:
            body404 = P.not_found(method, path)
            if provider == "gemini":
                body404 = P.gm_error(404, f"Unknown route: {method} {path}")
            writer.write(self._whole_bytes(conn, 404, body404, _JSON, extra))
            return
        wanted = self.valid_keys.get(provider) if self.valid_keys else None
        # Local OpenAI-compatible servers (Ollama, vLLM…) usually need no key at all.
        keyless_ok = provider == "openai" and wanted is None
        if (not key and not keyless_ok) or (wanted is not None and key != wanted):
            if provider == "gemini":
                writer.write(self._whole_bytes(conn, 400, P.gm_invalid_key(), _JSON, extra))
            else:
                writer.write(self._whole_bytes(conn, 401, P.oa_invalid_key(), _JSON, extra))
            return
        if route.action == "list":
            ids = list(self.models.get(provider, ()))
            writer.write(self._whole_bytes(conn, 200, P.models_list(provider, ids), _JSON, extra))
        elif route.action == "get":
            mid = route.model or ""
            if mid in self.models.get(provider, ()):
                out = (200, P.model_get(provider, mid))
            elif provider == "gemini":
                out = (404, P.gm_status_error(404, mid, None, None, None))
            else:
                out = (404, P.oa_status_error(404, mid, None, None, None))
            writer.write(self._whole_bytes(conn, out[0], out[1], _JSON, extra))
        elif route.action == "count":
            n = P.count_prompt_tokens(P.gemini_messages(body))
            writer.write(self._whole_bytes(conn, 200, P.dumps({"totalTokens": n}), _JSON, extra))
        else:
            await self._chat(conn, reader, writer, route, body, extra)

    # ------------------------------------------------------------------ chat

    async def _chat(
        self,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        route: _Route,
        body: Any,
        extra: tuple[tuple[bytes, bytes], ...],
    ) -> None:
        provider = route.provider or "openai"
        model = route.model or ""
        gemini = provider == "gemini"
        fault = self._take_fault(provider, route.model)
        kind = fault.kind if fault else None
        if (
            fault is not None
            and kind not in ("slow_first_token", "stall", "cut")
            and await self._early_fault(conn, reader, writer, fault, route, body, extra)
        ):
            return

        if self.fast and kind is None:
            cached = self._fast_response(provider, model, route, body)
            if route.stream and route.sse:
                head, content, tail = cached
                await self._send_stream(conn, writer, None, head, content, tail, extra)
            else:
                writer.write(self._whole_bytes(conn, 200, cached, _JSON, extra))
            return

        refused = F.refusal(provider, model, body)
        if refused is not None:
            status, message, code = refused
            err = P.oa_error(message, "invalid_request_error", code)
            writer.write(self._whole_bytes(conn, status, err, _JSON, extra))
            return
        messages = P.gemini_messages(body) if gemini else P.openai_messages(body)
        prefill = P.prefill_of(messages)
        if prefill is not None and model in self.refuse_prefill:
            err = P.oa_error(
                "This model does not support assistant message prefill; the last message "
                "must have role user",
                "invalid_request_error",
                "invalid_request",
            )
            writer.write(self._whole_bytes(conn, 400, err, _JSON, extra))
            return
        prompt_tokens = P.count_prompt_tokens(messages)
        scripted = F.plan(provider, model, body)
        if self.fast:
            reply = Reply(["ok"], prompt_tokens)
        elif scripted.tool_calls:
            reply = Reply([], prompt_tokens, tool_calls=scripted.tool_calls)
        elif scripted.text is not None:
            reply = Reply(P.split_chunks(scripted.text), prompt_tokens)
        elif prefill is not None:
            # Like a real model, continue the assistant's text: the rest of its own answer
            # (another model's beginning is continued from the same place in its own).
            whole = self.reply_fn(provider, model, messages[:-1])
            rest = whole[len(prefill) :]
            reply = Reply(P.split_chunks(rest) if rest else [], prompt_tokens)
        else:
            reply = Reply(P.split_chunks(self.reply_fn(provider, model, messages)), prompt_tokens)
        if kind == "truncated_length" and reply.chunks:
            reply.chunks = reply.chunks[: max(1, len(reply.chunks) // 2)]
            reply.truncated = True
        rid = f"fake{next(self._ids):06d}"
        if route.stream and route.sse and kind != "json_instead_of_stream":
            head, content, tail = self._stream_events(provider, model, rid, body, reply)
            await self._send_stream(conn, writer, fault, head, content, tail, extra)
        else:
            payload = self._whole_body(provider, model, rid, route, reply)
            await self._send_whole(conn, writer, fault, payload, extra)

    def _stream_events(
        self, provider: str, model: str, rid: str, body: Any, reply: Reply
    ) -> tuple[list[bytes], list[bytes], list[bytes]]:
        if provider == "gemini":
            return P.gm_stream(model, rid, reply)
        opts = body.get("stream_options") if isinstance(body, dict) else None
        include_usage = isinstance(opts, dict) and bool(opts.get("include_usage"))
        return P.oa_stream(provider, model, rid, int(time.time()), reply, include_usage)

    def _whole_body(self, provider: str, model: str, rid: str, route: _Route, r: Reply) -> bytes:
        if provider != "gemini":
            return P.oa_whole(provider, model, rid, int(time.time()), r)
        if not route.stream:
            return P.gm_whole(model, rid, r)
        # streamGenerateContent without alt=sse answers with a JSON array of chunks.
        _, content, tail = P.gm_stream(model, rid, r)
        return b"[" + b",".join(e[6:-2] for e in content + tail) + b"]"

    def _fast_response(self, provider: str, model: str, route: _Route, body: Any) -> Any:
        # Benchmarks hammer identical requests: reuse the encoded reply per shape and size.
        gemini = provider == "gemini"
        messages = P.gemini_messages(body) if gemini else P.openai_messages(body)
        pt = P.count_prompt_tokens(messages)
        opts = body.get("stream_options") if isinstance(body, dict) else None
        usage = isinstance(opts, dict) and bool(opts.get("include_usage"))
        key = (provider, model, route.stream, route.sse, pt, usage)
        hit = self._fast_cache.get(key)
        if hit is None:
            if len(self._fast_cache) > 4096:
                self._fast_cache.clear()
            reply = Reply(["ok"], pt)
            if route.stream and route.sse:
                hit = self._stream_events(provider, model, "fast00", body, reply)
            else:
                hit = self._whole_body(provider, model, "fast00", route, reply)
            self._fast_cache[key] = hit
        return hit

    async def _early_fault(
        self,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        f: Fault,
        route: _Route,
        body: Any,
        extra: tuple[tuple[bytes, bytes], ...],
    ) -> bool:
        """Faults decided before any reply is generated; True when the request is answered."""
        provider, model = route.provider or "openai", route.model or ""
        gemini = provider == "gemini"
        kind = f.kind
        if kind == "silent":
            while await reader.read(65536):  # hold the socket until the client gives up
                pass
            raise _Closed
        if kind == "reset":
            self._reset(writer)
            raise _Closed
        if kind == "status":
            writer.write(self._status_bytes(conn, f, model, gemini, extra))
            return True
        if (kind in _MIDSTREAM_ERRORS and not (route.stream and route.sse)) or (
            kind == "json_instead_of_stream" and f.error_shape is not None
        ):
            err, ctype = self._error_body(f)  # the whole answer, at HTTP 200
            writer.write(self._whole_bytes(conn, 200, err, ctype, extra))
            return True
        if kind == "non_json":
            html = P.HTML_BAD_GATEWAY
            writer.write(self._whole_bytes(conn, 502, html, b"text/html", extra))
            return True
        if kind == "context_length":
            limit = P.limits(provider, model)[0]
            err = P.gm_context_length(limit) if gemini else P.oa_context_length(model, limit)
            writer.write(self._whole_bytes(conn, 400, err, _JSON, extra))
            return True
        if kind == "content_filter":
            if not gemini:
                err = P.oa_content_filter(f.message)
                writer.write(self._whole_bytes(conn, 400, err, _JSON, extra))
                return True
            pt = P.count_prompt_tokens(P.gemini_messages(body))
            blocked = P.gm_blocked(model, f"fake{next(self._ids):06d}", pt)
            out, ctype = P.dumps(blocked), _JSON
            if route.stream and route.sse:  # one SSE event, then the stream ends
                out, ctype = P.sse(blocked), _SSE
            writer.write(self._whole_bytes(conn, 200, out, ctype, extra))
            return True
        # malformed_chunk, no_done, truncated_length, json_instead_of_stream and errors
        # mid-stream shape the normal reply
        return False

    def _status_bytes(
        self,
        conn: h11.Connection,
        f: Fault,
        model: str,
        gemini: bool,
        extra: tuple[tuple[bytes, bytes], ...],
    ) -> bytes:
        """The whole error response of a "status" fault, with its retry hints."""
        retry_s = f.retry_after_s
        if retry_s is None and f.retry_after_ms is not None:
            retry_s = f.retry_after_ms / 1000
        hdrs = list(extra)
        code = None if f.code is None else str(f.code)
        ctype = _JSON
        if f.error_shape is not None:  # another server's error body (Ollama, vLLM…)
            err, ctype = self._error_body(f)
        elif gemini:
            err = P.gm_status_error(f.status, model, retry_s, f.message, code)
        else:
            err = P.oa_status_error(f.status, model, retry_s, f.message, code)
        if not gemini:
            if f.retry_after_s is not None:
                hdrs.append((b"retry-after", P.fmt_seconds(f.retry_after_s).encode()))
            if f.retry_after_ms is not None:
                hdrs.append((b"retry-after-ms", str(f.retry_after_ms).encode()))
        return self._whole_bytes(conn, f.status, err, ctype, tuple(hdrs))

    @staticmethod
    def _error_body(f: Fault) -> tuple[bytes, bytes]:
        """(body, content type) of a fault's error in its shape (error_string: string)."""
        shape = f.error_shape or ("string" if f.kind == "error_string" else "object")
        message = P.DEFAULT_ERROR_MESSAGE if f.message is None else f.message
        body = P.oa_error_body(shape, message, f.error_type, f.code)
        return body, _TEXT if shape == "text" else _JSON

    # ------------------------------------------------------------------ writing

    @staticmethod
    def _whole_bytes(
        conn: h11.Connection,
        status: int,
        body: bytes,
        ctype: bytes,
        extra: tuple[tuple[bytes, bytes], ...],
    ) -> bytes:
        headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]
        headers.extend(extra)
        resp = h11.Response(
            status_code=status, headers=headers, reason=_REASONS.get(status, b""), **_TRUSTED
        )
        return conn.send(resp) + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage())

    async def _send_whole(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        f: Fault | None,
        body: bytes,
        extra: tuple[tuple[bytes, bytes], ...],
    ) -> None:
        kind = f.kind if f else None
        if f is None or kind in ("no_done", "truncated_length", "json_instead_of_stream"):
            writer.write(self._whole_bytes(conn, 200, body, _JSON, extra))
            return
        if kind == "slow_first_token":
            await asyncio.sleep(f.delay_s)
            writer.write(self._whole_bytes(conn, 200, body, _JSON, extra))
            return
        if kind == "malformed_chunk":
            broken = body[: max(1, len(body) // 2)]
            writer.write(self._whole_bytes(conn, 200, broken, _JSON, extra))
            return
        headers = [(b"content-type", _JSON), (b"content-length", str(len(body)).encode())]
        writer.write(
            conn.send(
                h11.Response(status_code=200, headers=[*headers, *extra], reason=b"OK", **_TRUSTED)
            )
        )
        await writer.drain()
        if kind == "cut":
            writer.write(conn.send(h11.Data(data=body[: len(body) // 2])))
            await self._close_after_flush(writer)
        await asyncio.sleep(f.delay_s)  # stall
        writer.write(conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))

    async def _send_stream(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        f: Fault | None,
        head: list[bytes],
        content: list[bytes],
        tail: list[bytes],
        extra: tuple[tuple[bytes, bytes], ...],
    ) -> None:
        headers = [(b"content-type", _SSE), (b"cache-control", b"no-cache"), *extra]
        out = [conn.send(h11.Response(status_code=200, headers=headers, reason=b"OK", **_TRUSTED))]
        pending = list(head)

        async def flush() -> None:
            if pending:
                out.append(conn.send(h11.Data(data=b"".join(pending))))
                pending.clear()
            writer.write(b"".join(out))
            out.clear()
            await writer.drain()

        kind = f.kind if f else None
        if f is not None and kind == "slow_first_token":
            await flush()  # headers (and the role chunk) arrive on time, content does not
            await asyncio.sleep(f.delay_s)
        at = min(f.after_chunks, len(content)) if f is not None and kind in _AT_CHUNK else -1
        delay = self.chunk_delay_s
        for i in range(len(content) + 1):
            if (
                i == at
                and f is not None
                and await self._chunk_fault(conn, writer, f, pending, flush)
            ):
                return
            if i == len(content):
                break
            if delay and i:
                await flush()
                await asyncio.sleep(delay)
            pending.append(content[i])
        if kind == "no_done" and tail and tail[-1] == P.DONE_EVENT:
            tail = tail[:-1]
        pending.extend(tail)
        await flush()
        if kind == "no_done" and f is not None and f.delay_s:
            await asyncio.sleep(f.delay_s)  # the reply is complete, but the body stays open
        writer.write(conn.send(h11.EndOfMessage()))

    async def _chunk_fault(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        f: Fault,
        pending: list[bytes],
        flush: Callable[[], Awaitable[None]],
    ) -> bool:
        """A fault due at this point of a stream; True when it ended the stream."""
        kind = f.kind
        if kind == "cut":
            await flush()
            await self._close_after_flush(writer)
        elif kind == "stall":
            await flush()
            await asyncio.sleep(f.delay_s)
        elif kind in _MIDSTREAM_ERRORS:  # the error, [DONE], and the stream ends
            message = P.DEFAULT_ERROR_MESSAGE if f.message is None else f.message
            pending.append(P.oa_error_event(kind, f.error_shape, message, f.error_type, f.code))
            await flush()
            writer.write(conn.send(h11.EndOfMessage()))
            return True
        else:  # malformed_chunk
            pending.append(P.MALFORMED_EVENT)
        return False

    @staticmethod
    async def _close_after_flush(writer: asyncio.StreamWriter) -> None:
        """End the connection mid-message: data already written is delivered, then FIN."""
        writer.close()  # no h11 EndOfMessage, so the body is visibly incomplete
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        raise _Closed

    @staticmethod
    def _reset(writer: asyncio.StreamWriter) -> None:
        """Drop the connection with a TCP RST (SO_LINGER 0) before sending any byte."""
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
