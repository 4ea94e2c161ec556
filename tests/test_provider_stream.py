"""Issue 15: providers classify exceptions by type, share their stream bookkeeping, and read
OpenAI-style streams themselves (the SDK still makes Groq's request).

The providers run against the fake upstream over real sockets; the SSE reader and JSON
parsing are fed real bytes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from conftest import GROQ_KEY

from llmrouter_tui.core.config import ProviderSettings, Secret
from llmrouter_tui.core.providers.base import (
    ProviderCall,
    ProviderFailure,
    StreamEnd,
    StreamState,
    TextChunk,
)
from llmrouter_tui.core.providers.classify import failure_from_transport
from llmrouter_tui.core.providers.groq import GroqProvider
from llmrouter_tui.core.providers.openai_compat import OpenAICompatProvider
from llmrouter_tui.core.providers.openai_stream import ChunkReader, parse_json, sse_events
from llmrouter_tui.core.types import Message
from llmrouter_tui.testing.fake_payloads import default_reply
from llmrouter_tui.testing.fake_upstream import FakeUpstream, Fault

GROQ_MODEL = "openai/gpt-oss-20b"
LOCAL_MODEL = "llama3.2"

# ---- classification by type, not by class name ------------------------------------------


class ConnectError(Exception):
    """Named like httpx's ConnectError, but not one: a name proves nothing."""


class TimeoutException(OSError):
    """Named like httpx's TimeoutException; an OSError that is no connection error."""


@pytest.mark.parametrize(
    ("exc", "kind", "says"),
    [
        (httpx.ConnectTimeout("t"), "connect_error", "connect timeout"),
        (httpx.ReadTimeout("t"), "timeout", "no response in time"),
        (httpx.PoolTimeout("t"), "timeout", "no response in time"),
        (httpx.ConnectError("refused"), "connect_error", "connection failed"),
        (ConnectionRefusedError(111, "refused"), "connect_error", "connection failed"),
        (ConnectionResetError(104, "reset"), "connect_error", "connection failed"),
        (httpx.ReadError("eof"), "connect_error", "dropped before a reply"),
        (httpx.WriteError("pipe"), "connect_error", "dropped before a reply"),
        (httpx.RemoteProtocolError("cut"), "connect_error", "dropped before a reply"),
        (ConnectError("look-alike"), "unknown", "transport error (ConnectError)"),
        (TimeoutException("look-alike"), "unknown", "transport error (TimeoutException)"),
        (RuntimeError("?"), "unknown", "transport error (RuntimeError)"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_transport_failures_are_classified_by_type(
    exc: BaseException, kind: str, says: str
) -> None:
    failure = failure_from_transport(exc, got_output=False)
    assert (failure.kind, failure.got_output) == (kind, False)
    assert says in failure.message


def test_httpx2_exceptions_are_classified_when_loaded() -> None:
    httpx2 = pytest.importorskip("httpx2")
    assert failure_from_transport(httpx2.ReadTimeout("t"), got_output=False).kind == "timeout"
    assert failure_from_transport(httpx2.ConnectError("c"), got_output=False).kind == (
        "connect_error"
    )


def test_any_transport_error_after_output_is_a_cut() -> None:
    for exc in (httpx.ReadError("eof"), ConnectError("x"), RuntimeError("x")):
        failure = failure_from_transport(exc, got_output=True)
        assert (failure.kind, failure.got_output) == ("stream_cut", True)


# ---- the shared bookkeeping ----------------------------------------------------------------


def test_stream_state_marks_output_and_ends_by_finish_reason() -> None:
    state = StreamState()
    assert state.failure("malformed", "x").got_output is False
    with pytest.raises(ProviderFailure) as cut:
        state.end("Groq")
    assert cut.value.kind == "stream_cut"
    assert state.text("hi") == TextChunk("hi") and state.got_output
    assert state.failure("malformed", "x").got_output is True
    state.finish = "error"
    with pytest.raises(ProviderFailure) as error:
        state.end("Groq")
    assert error.value.kind == "server_error" and "Groq ended the reply" in error.value.message
    state.finish = "content_filter"
    with pytest.raises(ProviderFailure) as blocked:
        state.end("Groq")
    assert blocked.value.kind == "content_filter"
    state.finish = "stop"
    assert state.end("Groq") == StreamEnd("stop", None)


# ---- reading event streams -----------------------------------------------------------------


async def _events(*chunks: bytes, error_field: bool = True) -> list[tuple[str, bytes]]:
    async def source() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    return [e async for e in sse_events(source(), error_field=error_field)]


async def test_sse_lines_split_anywhere_and_any_line_ending() -> None:
    body = b'data: {"a":1}\r\n\r\nevent: error\r\ndata: {"b":2}\r\n\r\ndata: {"c":3}\rdata: [DONE]'
    want = [("", b'{"a":1}'), ("error", b'{"b":2}'), ("", b'{"c":3}'), ("", b"[DONE]")]
    assert await _events(body) == want
    for cut in range(1, len(body)):  # every place a network read could split the body
        assert await _events(body[:cut], body[cut:]) == want, cut
    assert await _events(*(body[i : i + 1] for i in range(len(body)))) == want


async def test_sse_comments_blank_data_and_the_llamacpp_error_field() -> None:
    body = b': OPENROUTER PROCESSING\n\ndata:\nid: 7\nerror: {"message":"x"}\ndata:{"a":1}\n'
    assert await _events(body) == [("error", b'{"message":"x"}'), ("", b'{"a":1}')]
    assert await _events(body, error_field=False) == [("", b'{"a":1}')]


def test_json_that_orjson_refuses_is_still_read() -> None:
    assert parse_json(b'{"t": "\\ud800"}') == {"t": "\ud800"}  # a lone surrogate
    assert parse_json('{"t": "caf\xe9"}'.encode("latin-1")) == {"t": "caf\ufffd"}
    with pytest.raises(ValueError):
        parse_json(b"{not json")


# ---- Groq: the SDK makes the request, the stream is read here ------------------------------


def _groq(fake: FakeUpstream) -> GroqProvider:
    settings = ProviderSettings("groq", "groq", base_url=fake.base_url, api_key=Secret(GROQ_KEY))
    return GroqProvider(settings)


def _local(fake: FakeUpstream) -> OpenAICompatProvider:
    settings = ProviderSettings(
        "local", "openai", base_url=fake.openai_base_url, key_required=False
    )
    return OpenAICompatProvider(settings)


async def _collect(provider: Any, model: str, prompt: str) -> list[Any]:
    call = ProviderCall(model=model, messages=(Message("user", prompt),))
    return [item async for item in provider.stream(call)]


async def test_groq_request_is_made_by_the_sdk(upstream: FakeUpstream) -> None:
    provider = _groq(upstream)
    try:
        items = await _collect(provider, GROQ_MODEL, "hello sdk")
    finally:
        await provider.aclose()
    text = "".join(i.text for i in items if isinstance(i, TextChunk))
    assert text == default_reply("groq", GROQ_MODEL, [{"role": "user", "content": "hello sdk"}])
    end = items[-1]
    assert isinstance(end, StreamEnd) and end.finish_reason == "stop"
    assert end.usage is not None and not end.usage.estimated
    (seen,) = [r for r in upstream.requests_for(GROQ_MODEL) if r.method == "POST"]
    assert seen.path == "/openai/v1/chat/completions" and seen.stream
    assert seen.api_key == GROQ_KEY
    assert seen.headers["user-agent"].startswith("AsyncGroq/Python")
    assert seen.headers["x-stainless-retry-count"] == "0"


@pytest.mark.parametrize("make", [_groq, _local], ids=["groq", "openai"])
async def test_streams_are_read_to_the_end_and_the_connection_reused(
    upstream: FakeUpstream, make: Any
) -> None:
    provider = make(upstream)
    model = GROQ_MODEL if make is _groq else LOCAL_MODEL
    try:
        await _collect(provider, model, "warm")
        before = upstream.connections_opened
        for n in range(5):
            items = await _collect(provider, model, f"again {n}")
            assert isinstance(items[-1], StreamEnd)
    finally:
        await provider.aclose()
    assert upstream.connections_opened == before  # every call reused the warm connection


async def test_groq_error_status_still_comes_through_the_sdk(upstream: FakeUpstream) -> None:
    upstream.add_fault(Fault("status", status=429, model=GROQ_MODEL, retry_after_s=0.5))
    provider = _groq(upstream)
    try:
        with pytest.raises(ProviderFailure) as failure:
            await _collect(provider, GROQ_MODEL, "limited")
    finally:
        await provider.aclose()
    assert (failure.value.kind, failure.value.status) == ("rate_limited", 429)
    assert failure.value.retry_after_s == 0.5 and GROQ_KEY not in failure.value.message


@pytest.mark.parametrize(
    "data",
    [
        b'{"choices": [1]}',
        b'{"choices": [{"delta": {"tool_calls": 5}}]}',
        b'{"usage": {"prompt_tokens": "x"}}',
    ],
)
def test_json_that_is_not_a_chunk_is_malformed_not_a_crash(data: bytes) -> None:
    reader = ChunkReader(StreamState())
    assert reader.take_event("", b'{"choices": [{"delta": {"content": "hi"}}]}')
    with pytest.raises(ProviderFailure) as failure:
        reader.take_event("", data)
    assert failure.value.kind == "malformed" and failure.value.got_output
    assert "unreadable stream chunk" in failure.value.message
