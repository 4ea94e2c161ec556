"""Hostile input, property-based: templates, and every body field of /chat, /rate and /v1.

Any JSON value in any field (and any query string) gets a 2xx, or a 4xx with a plain
`{"detail": str}`: never a 5xx, never a traceback. Templates insert values once (braces in
values never expand) and always name every missing variable.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import fake_settings
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from reliability_helpers import GROQ, assert_no_key

from llmrouter_tui.core.errors import ConfigError, MissingVariablesError
from llmrouter_tui.core.runtime import Runtime
from llmrouter_tui.core.templates import Template, load_templates_file
from llmrouter_tui.server.app import create_app
from llmrouter_tui.server.parameters import BY_NAME
from llmrouter_tui.testing.fake_upstream import FakeUpstream

BOUNDED = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# ---- templates ----------------------------------------------------------------------------------

NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True)
LITERAL = st.text(max_size=12).filter(lambda s: "{{" not in s and "}}" not in s)
SPACE = st.sampled_from(["", " ", "\t", "  "])
HOSTILE_TEXT = st.sampled_from(
    ["{{a}}", "{{ b }}", "{{{{a}}}}", "}}{{", "\\1", "\\g<0>", "$1", "%s", "{0}", "\x00", "\ud800"]
)
VALUE = st.one_of(st.text(max_size=20), HOSTILE_TEXT, st.integers(), st.floats(allow_nan=False))


@st.composite
def template_text(draw: st.DrawFn) -> tuple[str, list[tuple[str, str | None]]]:
    """(text, parts): parts are (literal, None) or (name, "var") in order."""
    parts: list[tuple[str, str | None]] = []
    text = ""
    for _ in range(draw(st.integers(0, 5))):
        literal = draw(LITERAL)
        name = draw(NAME)
        placeholder = "{{" + draw(SPACE) + name + draw(SPACE) + "}}"
        # A literal ending in "{" would not glue onto "{{": the placeholder still matches.
        text += literal + placeholder
        parts += [(literal, None), (name, "var")]
    tail = draw(LITERAL)
    return text + tail, [*parts, (tail, None)]


def _expected(parts: list[tuple[str, str | None]], values: dict[str, str]) -> str:
    return "".join(values[p] if kind == "var" else p for p, kind in parts)


def _order(*part_lists: list[tuple[str, str | None]]) -> list[str]:
    seen: dict[str, None] = {}
    for parts in part_lists:
        for p, kind in parts:
            if kind == "var":
                seen.setdefault(p, None)
    return list(seen)


@pytest.mark.slow
@BOUNDED
@given(template_text(), st.one_of(st.none(), template_text()), st.data())
def test_template_values_are_inserted_once_and_never_expanded(prompt, system, data):
    prompt_text, prompt_parts = prompt
    system_text, system_parts = system if system else (None, [])
    names = _order(prompt_parts, system_parts)
    raw = {name: data.draw(VALUE.filter(lambda v: str(v).strip()), label=name) for name in names}
    template = Template("t", "T", "c", (), prompt_text, system_text)
    assert template.variables == names
    rendered = template.render(raw)
    values = {k: str(v) for k, v in raw.items()}
    assert rendered.prompt == _expected(prompt_parts, values)
    if system_text is not None:
        assert rendered.system == _expected(system_parts, values)


@BOUNDED
@given(template_text(), st.data())
def test_missing_variables_are_always_all_named(prompt, data):
    text, parts = prompt
    names = _order(parts)
    given_values = {
        name: data.draw(st.one_of(st.none(), st.sampled_from(["", "  ", "\t\n"]), VALUE))
        for name in data.draw(
            st.lists(st.sampled_from(names), unique=True) if names else st.just([])
        )
    }
    defaults = {
        name: data.draw(st.text(min_size=1, max_size=5))
        for name in data.draw(
            st.lists(st.sampled_from(names), unique=True) if names else st.just([])
        )
    }
    template = Template("t", "T", "c", (), text, None, defaults)

    def has_value(name: str) -> bool:
        value = given_values.get(name)
        if value is not None and str(value).strip():
            return True
        return bool(defaults.get(name, "").strip())

    missing = [n for n in names if not has_value(n)]
    if missing:
        with pytest.raises(MissingVariablesError) as info:
            template.render(given_values)
        assert info.value.missing == missing
        for name in missing:
            assert repr(name)[1:-1] in str(info.value) or name in str(info.value)
    else:
        template.render(given_values)  # renders


@BOUNDED
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda b: b.decode("latin-1"))))
def test_any_templates_file_loads_or_is_one_config_error(tmp_path_factory, content: str):
    path = tmp_path_factory.mktemp("tpl") / "prompt_templates.toml"
    path.write_text(content, encoding="utf-8", errors="surrogatepass")
    try:
        load_templates_file(path)
    except ConfigError as exc:
        assert str(path) in str(exc)


# ---- request bodies through the ASGI app -----------------------------------------------------

JSON_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),  # NaN and ±Infinity too: Python's json reads them
    st.text(max_size=20),
    st.sampled_from(["", " ", "\ud800", "\x00", "{{topic}}", "=1+1", "x" * 20000, "🦀" * 50]),
)
JSON_VALUE = st.recursive(
    JSON_SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
CHAT_FIELDS = [
    "model", "prompt", "template_id", "template", "template_vars", "messages", "system",
    "temperature", "max_tokens", "ignore_cache", "stream", "conversation_id", "extra",
]  # fmt: skip
RATE_FIELDS = ["prompt_id", "rating", "score", "feedback", "model", "extra"]
# Every field /v1 knows (passed, accepted or refused: parameters.PARAMETERS), plus an unknown one.
V1_FIELDS = [*BY_NAME, "extra"]
QUERY_VALUE = st.one_of(st.text(max_size=12), st.sampled_from(["true", "0", "yes", "", GROQ]))


class Api:
    """The app in-process on one private event loop (hypothesis drives it synchronously)."""

    def __init__(self, upstream: FakeUpstream, data_dir: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.runtime = Runtime(fake_settings(upstream.base_url, data_dir))
        app = create_app(self.runtime, token="")
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test", timeout=30
        )

    def post(self, url: str, body: Any, params: dict[str, str] | None = None) -> httpx.Response:
        content = json.dumps(body, allow_nan=True).encode("utf-8", "surrogatepass")
        headers = {"content-type": "application/json"}
        request = self.client.post(url, content=content, headers=headers, params=params)
        return self.loop.run_until_complete(request)

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.run_until_complete(self.runtime.aclose())
        self.loop.close()


@pytest.fixture
def api(upstream: FakeUpstream, tmp_path: Path) -> Iterator[Api]:
    client = Api(upstream, tmp_path / "data")
    yield client
    client.close()


def assert_clean(response: httpx.Response) -> None:
    """2xx, or 4xx with {"detail": str}; never a 5xx or a traceback."""
    assert response.status_code < 500, response.text[:500]
    assert "Traceback" not in response.text
    assert_no_key(response.text)
    if response.status_code >= 400:
        detail = response.json()["detail"]
        assert isinstance(detail, str) and detail
    elif response.headers["content-type"].startswith("application/json"):
        response.json()


def _mutate(base: dict[str, Any], fields: list[str], data: st.DataObject) -> Any:
    """The base body with one to three fields set to any JSON value (or removed), or any
    JSON value instead of the body."""
    if data.draw(st.integers(0, 9), label="whole body") == 0:
        return data.draw(JSON_VALUE, label="body")
    body = dict(base)
    for _ in range(data.draw(st.integers(1, 3), label="how many")):
        name = data.draw(st.sampled_from(fields), label="field")
        if data.draw(st.booleans(), label="remove") and name in body:
            del body[name]
        else:
            body[name] = data.draw(JSON_VALUE, label=name)
    return body


@pytest.mark.slow
@BOUNDED
@given(data=st.data())
def test_chat_any_field_any_value(api: Api, data: st.DataObject):
    base = {"model": GROQ, "prompt": "hostile but fine"}
    body = _mutate(base, CHAT_FIELDS, data)
    if isinstance(body, dict) and data.draw(st.booleans(), label="nested"):
        body["messages"] = [
            {"role": data.draw(JSON_VALUE), "content": data.draw(JSON_VALUE)},
            {"role": "user", "content": data.draw(JSON_VALUE)},
        ]
        body.pop("prompt", None)
    params = data.draw(
        st.dictionaries(st.sampled_from(["model", "stream", "ignore_cache"]), QUERY_VALUE),
        label="query",
    )
    response = api.post("/chat", body, params)
    event(f"HTTP {response.status_code}")
    assert_clean(response)


@pytest.mark.slow
@BOUNDED
@given(data=st.data())
def test_rate_any_field_any_value(api: Api, data: st.DataObject):
    chat = api.post("/chat", {"model": GROQ, "prompt": "rate me"})
    prompt_id = chat.json()["prompt_id"]
    body = _mutate({"prompt_id": prompt_id, "rating": 4, "feedback": "fine"}, RATE_FIELDS, data)
    params = None
    if data.draw(st.booleans(), label="query form"):
        params = data.draw(
            st.dictionaries(
                st.sampled_from(["prompt_id", "score", "rating", "feedback", "model"]),
                st.one_of(QUERY_VALUE, st.just(prompt_id)),
            ),
            label="query",
        )
    response = api.post("/rate", body, params)
    event(f"HTTP {response.status_code}")
    assert_clean(response)


@pytest.mark.slow
@BOUNDED
@given(data=st.data())
def test_v1_any_field_any_value(api: Api, data: st.DataObject):
    base = {"model": GROQ, "messages": [{"role": "user", "content": "hostile but fine"}]}
    body = _mutate(base, V1_FIELDS, data)
    if isinstance(body, dict) and data.draw(st.booleans(), label="nested"):
        body["messages"] = [
            {"role": data.draw(JSON_VALUE), "content": data.draw(JSON_VALUE)},
            {"role": "user", "content": data.draw(JSON_VALUE)},
        ]
    response = api.post("/v1/chat/completions", body)
    event(f"HTTP {response.status_code}")
    assert_clean(response)


_TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
_CALL = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
TOOL_TURN_FIELDS = ["role", "content", "tool_calls", "tool_call_id", "extra"]


@pytest.mark.slow
@BOUNDED
@given(data=st.data())
def test_v1_tool_and_image_turns_any_field_any_value(api: Api, data: st.DataObject):
    """A tool round trip and an image for every model kind, each message and parameter
    mutated: tools, tool calls, tool results and content parts reach every provider's
    request builder (whose failures must be 4xx too)."""
    model = data.draw(st.sampled_from([GROQ, "gemini-3.5-flash", "llama3.2"]), label="model")
    parts: list[Any] = [{"type": "text", "text": "call tool"}]
    if data.draw(st.booleans(), label="image"):
        parts.append({"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}})
    turns: list[Any] = [
        {"role": "user", "content": parts},
        {"role": "assistant", "content": None, "tool_calls": [_CALL]},
        {"role": "tool", "tool_call_id": "c1", "content": "{}"},
    ]
    if data.draw(st.booleans(), label="mutate a message"):
        index = data.draw(st.integers(0, 2), label="message")
        turns[index] = _mutate(turns[index], TOOL_TURN_FIELDS, data)
    body: Any = {"model": model, "messages": turns, "tools": [_TOOL]}
    if data.draw(st.booleans(), label="mutate the body"):
        body = _mutate(body, V1_FIELDS, data)
    body = (
        body
        if data.draw(st.booleans(), label="tools") or not isinstance(body, dict)
        else {k: v for k, v in body.items() if k != "tools"}
    )
    response = api.post("/v1/chat/completions", body)
    event(f"HTTP {response.status_code}")
    assert_clean(response)


@pytest.mark.parametrize("role", [{}, ["user"]])
def test_v1_unhashable_role_is_a_400(api: Api, role: Any):
    response = api.post("/v1/chat/completions", {"messages": [{"role": role, "content": "x"}]})
    assert_clean(response)
    assert response.status_code == 400
    assert "messages[0].role" in response.json()["detail"]


def test_the_request_property_tests_can_fail(api: Api):
    """The checker itself: a 5xx or a body without `detail` must not pass."""
    bad = httpx.Response(500, json={"detail": "internal error"})
    with pytest.raises(AssertionError):
        assert_clean(bad)
    with pytest.raises((AssertionError, KeyError)):
        assert_clean(httpx.Response(400, json={"message": "no detail"}))
    with pytest.raises(AssertionError):  # a traceback in a 4xx body
        assert_clean(httpx.Response(400, json={"detail": "Traceback (most recent call last)"}))
    assert_clean(httpx.Response(400, json={"detail": "prompt is empty"}))  # the good case passes
