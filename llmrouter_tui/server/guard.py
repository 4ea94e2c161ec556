"""Keep web pages from driving the server with the user's keys.

Any page the user visits may send requests to 127.0.0.1, and without a token nothing else
stands between it and the providers. Browsers mark what a page sends; these rules turn the
marks into refusals:

- Host: a DNS-rebinding page reaches us under a domain name of its own: 421 unless the name
  is this machine's (localhost, a loopback address, the bind or connection address) or allowed
  with `--allow-host` / `[server] allow_hosts` / $LLMROUTER_ALLOW_HOSTS.
- Origin: a page of another origin: 403 unless listed with `--cors-origin` /
  `[server] cors_origins` / $LLMROUTER_CORS_ORIGINS, which then gets CORS headers.
- Content-Type: every POST must say `application/json`. The types a page may send without
  a CORS preflight (none, text/plain, forms) are 415, so the browser has to ask first, and
  the preflight is refused unless the origin is listed.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..core.config import Settings
from ..core.errors import ConfigError
from .asgi import Header, HTTPError, Request
from .types import Message, Send

ALLOW_HOSTS_ENV = "LLMROUTER_ALLOW_HOSTS"
CORS_ORIGINS_ENV = "LLMROUTER_CORS_ORIGINS"

_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+")  # an HTTP header name
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SHOWN = 100  # longest piece of a refused header quoted back in an error

# A CORS preflight's answer: what a listed origin may send.
_METHODS = b"GET, HEAD, POST"
_HEADERS = ("Authorization", "Content-Type")
_MAX_AGE = b"600"
# Response headers a listed origin's page may read besides the CORS-safelisted ones: when to
# retry after a 429 (budget), whether the openai SDKs should, and which worker answered.
_EXPOSED = b"Retry-After, x-should-retry, x-llmrouter-worker"

HostPort = tuple[str, int | None]
Origin = tuple[str, str, int | None]  # scheme, host, port (the scheme's default filled in)


# ---- parsing --------------------------------------------------------------------------------


def split_host(value: str) -> HostPort | None:
    """`name`, `name:port`, `[v6]` or `[v6]:port` as (normalised name, port); None if malformed.

    Names are lower-cased without a trailing dot; IPv6 addresses are in their short form
    without brackets, so every spelling of one host compares equal.
    """
    text = value.strip().lower()
    if text.startswith("["):
        end = text.find("]")
        rest = text[end + 1 :] if end > 0 else "?"
        if rest and not rest.startswith(":"):
            return None
        try:
            name = str(ipaddress.IPv6Address(text[1:end]))
        except ValueError:
            return None
        port_text: str | None = rest[1:] if rest else None
    else:
        name, colon, port_text = text.partition(":")
        name = name.removesuffix(".")
        if not colon:
            port_text = None
        if not _NAME.fullmatch(name):
            return None
    port = None
    if port_text:  # "host:" (an empty port) means no port, as in URLs
        if not (port_text.isascii() and port_text.isdigit() and int(port_text) <= 65535):
            return None
        port = int(port_text)
    return name, port


def _address_name(host: str) -> str:
    """A bind or socket address as split_host names it (bare IPv6 in short form)."""
    if ":" in host:
        try:
            return str(ipaddress.IPv6Address(host.strip("[]")))
        except ValueError:
            return host.lower()
    return host.lower().removesuffix(".")


def _is_loopback_address(name: str) -> bool:
    if not (name[:1].isdigit() or ":" in name):
        return False
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def parse_origin(value: str) -> Origin | None:
    """`scheme://host[:port]` (a trailing `/` tolerated) as a comparable key; None otherwise."""
    scheme, sep, rest = value.strip().lower().partition("://")
    if not sep or not _SCHEME.fullmatch(scheme):
        return None
    host = split_host(rest.removesuffix("/"))
    if host is None:
        return None
    name, port = host
    return scheme, name, port if port is not None else _DEFAULT_PORTS.get(scheme)


def host_rule(entry: str) -> str:
    """One allow_hosts entry normalised: a name, an address, `.domain` or `*`.

    ValueError says what is wrong with it.
    """
    text = entry.strip().lower()
    if text == "*":
        return text
    suffix = text.startswith(".")
    body = text[1:] if suffix else text
    if body.count(":") > 1 and not body.startswith("["):
        body = f"[{body}]"  # a bare IPv6 address
    parsed = split_host(body)
    if parsed is None or not body:
        raise ValueError("is not a host name or address")
    if parsed[1] is not None:
        raise ValueError("has a port: give the name alone (any port is accepted)")
    return "." + parsed[0] if suffix else parsed[0]


def env_list(name: str) -> list[str]:
    """A comma-separated environment variable as a list (empty items dropped)."""
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


# ---- the rules ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Admission:
    """A request the guard lets through."""

    headers: tuple[Header, ...] = ()  # CORS headers to add to the response
    preflight: bool = False  # a CORS preflight: answer 204 with `headers`, nothing else


def _shown(raw: bytes) -> str:
    text = raw.decode("latin-1")
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"


def _refused_host(name: str) -> HTTPError:
    return HTTPError(
        421,
        f"refused: this server does not answer to the name {name!r} (Host header). A web page "
        f"can reach 127.0.0.1 under a domain name of its own (DNS rebinding), so only this "
        f"machine's names are accepted. To use this name on purpose, start the server with "
        f"--allow-host {name} (or allow_hosts in the [server] table of llmrouter.toml, or "
        f"the {ALLOW_HOSTS_ENV} environment variable, e.g. under uvicorn or in a container).",
    )


def _malformed_host(raw: bytes) -> HTTPError:
    return HTTPError(
        400,
        f"malformed Host header {_shown(raw)!r}: send the host name or address the server "
        "was reached at, e.g. 'Host: 127.0.0.1:8000'",
    )


def _refused_origin(raw: bytes, origin: Origin | None) -> HTTPError:
    shown = _shown(raw)
    fix = (
        f"To let that page use it on purpose, start the server with --cors-origin {shown} "
        f"(or cors_origins in the [server] table of llmrouter.toml, or the {CORS_ORIGINS_ENV} "
        "environment variable)."
        if origin is not None
        else "Only pages whose origin is listed with --cors-origin scheme://host[:port] may use it."
    )
    return HTTPError(
        403,
        f"refused: this request was sent by a web page at {shown!r} (Origin header), and pages "
        f"of other origins must not use this server or your API keys. {fix}",
    )


def _refused_site(raw: bytes) -> HTTPError:
    return HTTPError(
        403,
        f"refused: this request came from a page of another site (Sec-Fetch-Site: "
        f"{_shown(raw)}), and other sites must not use this server or your API keys. Open "
        "the URL directly, or list the page's origin with --cors-origin and use fetch().",
    )


def require_json(request: Request) -> None:
    """415 unless the request says `Content-Type: application/json` (UTF-8), even with no
    body: the other types are the ones a web page may send without asking first."""
    raw = request.header(b"content-type")
    if raw is None:
        raise HTTPError(
            415,
            "the request has no Content-Type; this endpoint takes JSON: send the header "
            "'Content-Type: application/json' (also when the body is empty)",
        )
    media, *params = raw.decode("latin-1").split(";")
    if media.strip().lower() != "application/json":
        raise HTTPError(
            415,
            f"the body must be JSON, got Content-Type {_shown(raw)!r}: send the header "
            "'Content-Type: application/json'",
        )
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip('"').lower() not in {
            "utf-8",
            "utf8",
        }:
            raise HTTPError(
                415,
                f"the body must be UTF-8 JSON, got Content-Type {_shown(raw)!r}: send UTF-8 "
                "with the header 'Content-Type: application/json'",
            )


class Guard:
    """The Host and Origin rules for one app; see the module docstring."""

    __slots__ = ("_any_host", "_names", "_origins", "_pass", "_suffixes", "listed")

    def __init__(
        self,
        host_rules: Iterable[str] = (),
        origins: Iterable[Origin] = (),
        *,
        bind_rule: str | None = None,
    ) -> None:
        listed_hosts = list(dict.fromkeys(host_rules))
        #: What was allowed on purpose (not the bind address), for the start banner.
        self.listed = Listed(
            tuple(listed_hosts), tuple(origin_text(o) for o in dict.fromkeys(origins))
        )
        rules = {*listed_hosts, *((bind_rule,) if bind_rule else ())}
        self._any_host = "*" in rules
        # The usual loopback spellings up front; other loopback addresses are computed.
        local = {"localhost", "127.0.0.1", "::1"}
        self._names = frozenset({*local, *(r for r in rules if r[:1] not in {".", "*"})})
        self._suffixes = tuple(r for r in rules if r.startswith("."))
        self._origins = frozenset(origins)
        # With CORS on, any answer may differ by Origin: caches must know.
        self._pass = Admission(((b"vary", b"Origin"),) if self._origins else ())

    @classmethod
    def from_sources(
        cls,
        hosts: Iterable[tuple[str, str]],
        origins: Iterable[tuple[str, str]],
        *,
        bind_rule: str | None = None,
    ) -> Guard:
        """Build from (value, where it was given) pairs; a bad value is a ConfigError naming
        the value and where it came from. `bind_rule`: the bind address, also accepted."""
        rules = []
        for value, source in hosts:
            try:
                rules.append(host_rule(value))
            except ValueError as exc:
                raise ConfigError(
                    f"{source}: {value!r} {exc}; give a host name or address (localhost, "
                    "llm.example.com, 10.0.0.5), '.example.com' for it and its subdomains, or "
                    "'*' for any name"
                ) from None
        keys = []
        for value, source in origins:
            key = parse_origin(value)
            if key is None:
                raise ConfigError(
                    f"{source}: {value!r} is not a web origin; give scheme://host[:port] as the "
                    "browser shows it, e.g. http://localhost:5173"
                )
            keys.append(key)
        return cls(rules, keys, bind_rule=bind_rule)

    def _host_allowed(self, name: str, server: object) -> bool:
        if name in self._names or _is_loopback_address(name):
            return True
        # The address this connection came in on (uvicorn gives no other bind information).
        local = server[0] if isinstance(server, tuple | list) and server else None
        if isinstance(local, str) and _address_name(local) == name:
            return True
        return any(name == rule[1:] or name.endswith(rule) for rule in self._suffixes)

    def admit(self, request: Request) -> Admission:
        """Let the request through (with CORS headers to add), or raise 421/403/400."""
        raw_host = request.header(b"host")
        host: HostPort | None = None
        # No Host at all: HTTP/1.0 tools; browsers always send one.
        if raw_host is not None:
            host = split_host(raw_host.decode("latin-1"))
            if not self._any_host:
                if host is None:
                    raise _malformed_host(raw_host)
                if not self._host_allowed(host[0], request.scope.get("server")):
                    raise _refused_host(host[0])
        raw_origin = request.header(b"origin")
        if raw_origin is None:  # not sent by a page of another origin (or not by a browser)
            # <img>, <script> and links send no Origin, but browsers mark them: such a
            # request could still make provider calls with the keys (/models?live=true).
            site = request.header(b"sec-fetch-site")
            if site is not None and site.strip().lower() in {b"cross-site", b"same-site"}:
                raise _refused_site(site)
            return self._pass
        origin = parse_origin(raw_origin.decode("latin-1"))
        if origin is not None and origin in self._origins:
            return self._cors(request, raw_origin)
        if origin is not None and host is not None and _same_origin(origin, host):
            return self._pass
        raise _refused_origin(raw_origin, origin)

    def _cors(self, request: Request, raw_origin: bytes) -> Admission:
        headers: list[Header] = [(b"access-control-allow-origin", raw_origin)]
        if request.method != "OPTIONS" or request.header(b"access-control-request-method") is None:
            return Admission(
                (*headers, (b"access-control-expose-headers", _EXPOSED), (b"vary", b"Origin"))
            )
        asked = request.header(b"access-control-request-headers") or b""
        headers += [
            (b"access-control-allow-methods", _METHODS),
            (b"access-control-allow-headers", _allowed_headers(asked)),
            (b"access-control-max-age", _MAX_AGE),
            (b"vary", b"Origin, Access-Control-Request-Headers"),
        ]
        # Chrome asks before a public page may reach a private address.
        private = request.header(b"access-control-request-private-network")
        if private is not None and private.strip().lower() == b"true":
            headers.append((b"access-control-allow-private-network", b"true"))
        return Admission(tuple(headers), preflight=True)


@dataclass(frozen=True, slots=True)
class Listed:
    """The host names and origins allowed on purpose (normalised), as the banner shows them."""

    hosts: tuple[str, ...] = ()
    origins: tuple[str, ...] = ()

    def banner_lines(self) -> list[str]:
        """One line for the extra host names, one for the CORS origins; each only when set."""
        lines = []
        if self.hosts:
            shown = ("* (any name)" if host == "*" else host for host in self.hosts)
            lines.append(f"also answering to host names: {', '.join(shown)}")
        if self.origins:
            lines.append(f"CORS: pages at {', '.join(self.origins)} may use this server")
        return lines


def origin_text(origin: Origin) -> str:
    """An origin key back as `scheme://host[:port]` (the port only when not the default)."""
    scheme, name, port = origin
    host = f"[{name}]" if ":" in name else name
    shown_port = "" if port is None or port == _DEFAULT_PORTS.get(scheme) else f":{port}"
    return f"{scheme}://{host}{shown_port}"


def _same_origin(origin: Origin, host: HostPort) -> bool:
    """The page was served by this very host and port (the server's own origin)."""
    scheme, name, port = origin
    host_name, host_port = host
    if host_port is None:
        host_port = _DEFAULT_PORTS.get(scheme)
    return name == host_name and port == host_port


def _allowed_headers(asked: bytes) -> bytes:
    """Authorization and Content-Type, plus whatever a listed origin's client asks for (the
    OpenAI JavaScript SDK sends its own x-stainless-* headers); headers grant nothing here."""
    names = list(_HEADERS)
    seen = {name.lower() for name in names}
    for item in asked.decode("latin-1").split(","):
        name = item.strip().lower()
        if name and name not in seen and _TOKEN.fullmatch(name):
            seen.add(name)
            names.append(name)
    return ", ".join(names).encode("latin-1")


def with_headers(send: Send, extra: Sequence[Header]) -> Send:
    """`send` with `extra` headers added to the response start."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), *extra]}
        await send(message)

    return sending


async def send_preflight(send: Send) -> None:
    """The answer to an allowed CORS preflight (its headers come from `with_headers`)."""
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def _bind_rule(bind_host: str | None) -> str | None:
    """The bind address as a host rule; None for 0.0.0.0 and :: (no name a client uses: the
    connection's own address stands in) or anything that is not a plain name."""
    try:
        rule = host_rule(bind_host or "")
    except ValueError:
        return None
    if rule == "*" or rule.startswith("."):
        return None
    try:
        return None if ipaddress.ip_address(rule).is_unspecified else rule
    except ValueError:
        return rule  # a name such as localhost or myhost.lan


def guard_for(
    settings: Settings,
    *,
    allow_hosts: Sequence[str] = (),
    cors_origins: Sequence[str] = (),
    bind_host: str | None = None,
) -> Guard:
    """The guard from the config's [server] table, $LLMROUTER_ALLOW_HOSTS /
    $LLMROUTER_CORS_ORIGINS, the command line and the address the server binds."""
    table = f"[server] in {settings.config_path}" if settings.config_path else "[server]"
    hosts = [
        *((value, f"{table} allow_hosts") for value in settings.server.allow_hosts),
        *((value, f"${ALLOW_HOSTS_ENV}") for value in env_list(ALLOW_HOSTS_ENV)),
        *((value, "--allow-host") for value in allow_hosts),
    ]
    origins = [
        *((value, f"{table} cors_origins") for value in settings.server.cors_origins),
        *((value, f"${CORS_ORIGINS_ENV}") for value in env_list(CORS_ORIGINS_ENV)),
        *((value, "--cors-origin") for value in cors_origins),
    ]
    return Guard.from_sources(hosts, origins, bind_rule=_bind_rule(bind_host))
