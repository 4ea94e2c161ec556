"""The one interface every provider implements, and the failure type they all raise."""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from contextlib import aclosing, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from ..capabilities import Capabilities
from ..config import ProviderSettings
from ..params import GenerationParams
from ..types import Message, ToolCallDelta, Usage

_T = TypeVar("_T")

# Connections per provider client. The SDKs' default (100) makes the 101st concurrent stream
# wait for a pooled connection, and that wait counts against the first-token timeout: under
# load requests then fail although the provider is healthy. The server caps connections at
# 1000 too.
MAX_UPSTREAM_CONNECTIONS = 1000
MAX_IDLE_UPSTREAM_CONNECTIONS = 100
# Clients (connection pools) per provider, and the calls in flight on every client before
# another is built; see ProviderBase.
POOL_SHARDS = 8
SHARD_BUSY = 4

FailureKind = Literal[
    "rate_limited",  # 429 / 498: retry after a delay
    "server_error",  # 5xx, 408: retry
    "connect_error",  # refused / reset before any byte: retry
    "timeout",  # attempt or connect timeout with no response: fall back
    "first_token_timeout",  # no first token in time: fall back
    "stream_cut",  # the stream broke mid-answer: fall back
    "stream_stalled",  # no chunk within stream_idle_timeout_s: fall back
    "malformed",  # a chunk or body we could not parse: fall back
    "auth",  # missing/invalid key (401, Gemini 400 API_KEY_INVALID): fall back
    "forbidden",  # 403: fall back
    "not_found",  # 404 / decommissioned model: fall back
    "too_large",  # 413: fall back
    "context_length",  # prompt exceeds the model's window: fall back
    "content_filter",  # provider refused the content: clean error
    "bad_request",  # other 400/422: the caller's error, stop
    "unknown",  # anything else: fall back
]


class ProviderFailure(Exception):
    """Why one call to a provider failed, in terms the routing policy understands.

    `message` must never contain an API key; providers build it from the error body only.
    """

    def __init__(
        self,
        kind: FailureKind,
        message: str,
        *,
        status: int | None = None,
        retry_after_s: float | None = None,
        got_output: bool = False,
    ) -> None:
        super().__init__(message)
        self.kind: FailureKind = kind
        self.message = message
        self.status = status
        self.retry_after_s = retry_after_s
        # True once any reply text reached the caller: the stream broke mid-answer.
        self.got_output = got_output

    def __repr__(self) -> str:
        return f"ProviderFailure({self.kind!r}, status={self.status}, {self.message!r})"


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Per-attempt time limits in seconds."""

    connect_s: float = 5.0
    first_token_s: float = 20.0
    stream_idle_s: float = 30.0
    attempt_s: float = 60.0


_NO_PARAMS = GenerationParams()
_NO_CAPABILITIES = Capabilities()


@dataclass(frozen=True, slots=True)
class ProviderCall:
    """One call to one model: fully resolved messages and parameters.

    `system` goes first; system messages inside `messages` keep their positions where the API
    allows it (OpenAI-style kinds) and are joined into one instruction where it does not
    (Gemini). Every set field of `params` must be sent (mapped as the API needs) — the router
    has already checked it against `capabilities`, the model's catalog entry, which
    providers also use for mappings such as Gemini thinking budgets.
    """

    model: str  # the provider's own model id (no `provider:` prefix)
    messages: tuple[Message, ...]
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    params: GenerationParams = _NO_PARAMS
    capabilities: Capabilities = _NO_CAPABILITIES


@dataclass(frozen=True, slots=True)
class TextChunk:
    """Reply text."""

    text: str


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """The provider finished the reply. Usage is None when it reported none."""

    finish_reason: str | None
    usage: Usage | None = None


# Tool calls stream as the router's own ToolCallDelta events (OpenAI's delta shape).
StreamItem = TextChunk | ToolCallDelta | StreamEnd


@dataclass(frozen=True, slots=True)
class LiveModel:
    """One entry of a provider's live model listing."""

    id: str
    context_window: int | None = None
    label: str | None = None


class ProviderBase:
    """What every provider keeps: its settings, its limits and its clients, built on use.

    A provider holds up to POOL_SHARDS clients, each with its own connection pool, and lends
    each call the least busy one (`_lease`). httpcore scans every pooled connection on each
    request (a poll() per idle connection), so under load one big pool costs time per request
    in proportion to its size; several small ones keep that scan short. A new client is built
    only when every existing one has SHARD_BUSY calls in flight, so light use keeps one
    client and one warm connection.
    """

    kind: str = ""

    def __init__(
        self,
        settings: ProviderSettings,
        connect_timeout_s: float = 5.0,
        request_timeout_s: float = 60.0,
    ) -> None:
        self.name = settings.name
        self._settings = settings
        self._connect_timeout_s = connect_timeout_s
        # A backstop for SDKs that otherwise wait forever; the router's limits are tighter.
        self._request_timeout_s = request_timeout_s
        self._clients: list[Any] = []
        self._in_flight: list[int] = []

    @property
    def has_key(self) -> bool:
        return self._settings.has_key

    def _new_client(self, pool: dict[str, Any]) -> Any:
        """A client (SDK or httpx) whose httpx pool is built with `pool` (limits, TLS)."""
        raise NotImplementedError

    def _get_client(self) -> Any:
        """The first client (for calls that are not counted, like model listings)."""
        if not self._clients:
            self._add_client()
        return self._clients[0]

    def _add_client(self) -> int:
        import httpx

        limits = httpx.Limits(
            max_connections=MAX_UPSTREAM_CONNECTIONS // POOL_SHARDS,
            max_keepalive_connections=max(1, MAX_IDLE_UPSTREAM_CONNECTIONS // POOL_SHARDS),
        )
        self._clients.append(self._new_client({"limits": limits, "verify": _ssl_context()}))
        self._in_flight.append(0)
        return len(self._clients) - 1

    @contextmanager
    def _lease(self) -> Iterator[Any]:
        """The least busy client, counted as busy until the block ends."""
        in_flight = self._in_flight
        if in_flight:
            low = min(in_flight)
            index = in_flight.index(low)
        if not in_flight or (low >= SHARD_BUSY and len(in_flight) < POOL_SHARDS):
            index = self._add_client()
        in_flight[index] += 1
        try:
            yield self._clients[index]
        finally:
            in_flight[index] -= 1

    async def stream(self, call: ProviderCall) -> AsyncGenerator[StreamItem, None]:
        """See Provider.stream: runs `_stream` on a leased client with a fresh StreamState,
        turns any other exception into a ProviderFailure (`_failure`) and ends with the
        StreamEnd the state's finish reason means (`_end`)."""
        state = StreamState()
        with self._lease() as client:
            try:
                async with aclosing(self._stream(client, call, state)) as items:
                    async for item in items:
                        yield item
            except ProviderFailure:
                raise
            except Exception as exc:
                raise self._failure(exc, state) from None
        yield self._end(state)

    def _stream(
        self, client: Any, call: ProviderCall, state: StreamState
    ) -> AsyncGenerator[StreamItem, None]:
        """The provider's own streaming call on `client`: translates its wire format into
        items made by `state` (which keeps the bookkeeping) and sets `state.finish`."""
        raise NotImplementedError

    def _failure(self, exc: Exception, state: StreamState) -> ProviderFailure:
        """The failure an exception from `_stream` means. Providers map their SDK's own
        exception types first, by type, and hand the rest here (httpx transport errors)."""
        from .classify import failure_from_transport  # classify imports this module

        return failure_from_transport(exc, got_output=state.got_output)

    def _end(self, state: StreamState) -> StreamEnd:
        """The StreamEnd of a finished stream, or the failure its finish reason means."""
        return state.end("the server")

    def _take_clients(self) -> list[Any]:
        """Every client built so far; the provider starts afresh (for aclose)."""
        clients, self._clients, self._in_flight = self._clients, [], []
        return clients


class StreamState:
    """The bookkeeping of one streamed reply, the same for every provider: whether any
    output reached the caller (a failure after that is a cut mid-answer, which the router
    continues rather than retries), the finish reason, the latest usage and the number of
    tool calls. Providers make their items through it so none of this is forgotten."""

    __slots__ = ("finish", "got_output", "tool_calls", "usage")

    def __init__(self) -> None:
        self.got_output = False
        self.finish: str | None = None
        self.usage: Usage | None = None
        self.tool_calls = 0

    def text(self, text: str) -> TextChunk:
        self.got_output = True
        return TextChunk(text)

    def tool_call(self, delta: ToolCallDelta) -> ToolCallDelta:
        self.got_output = True
        self.tool_calls += 1
        return delta

    def take_usage(self, usage: Usage | None) -> None:
        """Keep the newest usage a chunk reports (a later chunk without one keeps it)."""
        if usage is not None:
            self.usage = usage

    def failure(self, kind: FailureKind, message: str, **fields: Any) -> ProviderFailure:
        """A ProviderFailure that knows whether output already reached the caller."""
        return ProviderFailure(kind, message, got_output=self.got_output, **fields)

    def end(self, server: str) -> StreamEnd:
        """The StreamEnd for the finish reason, or the failure that finish means: none at
        all (the stream was cut), `content_filter`, or OpenRouter's `error`."""
        finish = self.finish
        if finish is None:
            raise self.failure("stream_cut", "stream ended without a finish reason")
        if finish == "content_filter":
            raise ProviderFailure("content_filter", f"{server}'s content filter stopped the reply")
        if finish == "error":
            raise self.failure(
                "server_error", f"{server} ended the reply with finish reason 'error'"
            )
        return StreamEnd(finish, self.usage)


def trailer_grace_s(timeouts: Timeouts) -> float:
    """How long to read on after the finish reason: long enough for the usage chunk and
    [DONE] that normally follow at once (the body is then read to its end and the connection
    goes back to the pool), short enough that a server holding the stream open never makes
    the router see a stall."""
    return min(1.0, timeouts.stream_idle_s / 2)


async def read_trailer(
    items: AsyncIterator[_T], take: Callable[[_T], bool], grace_s: float
) -> None:
    """Feed what follows the finish reason to `take` (it returns True at the end marker),
    for at most `grace_s` seconds. The reply is already complete: a server that then holds
    the stream open, breaks it or sends junk changes nothing but the trailing usage."""
    try:
        async with asyncio.timeout(grace_s):
            async for item in items:
                if take(item):
                    return
    except Exception:  # best effort, see above (TimeoutError included)
        return


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """The context httpx would build by default (certifi's CA bundle, SSL_CERT_FILE and
    SSL_CERT_DIR honoured), built once per process: loading the CA bundle takes
    milliseconds, and a provider may build several clients."""
    import httpx

    return httpx.create_ssl_context()


class Provider(Protocol):
    """Talks to one API. Knows nothing of retries, fallbacks or caching.

    `stream` yields TextChunk and ToolCallDelta items and ends with exactly one StreamEnd
    (finish reason "tool_calls" when the model asked for tools), or raises ProviderFailure.
    It must not retry by itself.
    """

    name: str
    kind: str

    @property
    def has_key(self) -> bool: ...

    def stream(self, call: ProviderCall) -> AsyncGenerator[StreamItem, None]: ...

    async def list_models(self, timeout_s: float) -> list[LiveModel]: ...

    async def aclose(self) -> None: ...
