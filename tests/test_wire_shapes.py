"""The wire shapes (server/wire_shapes.py) are the one declaration of every body (issue 15).

- Every route, on a real server over a real socket, answers with bodies that fit the
  generated /openapi.json held *closed*: an object may carry no field its shape does not
  declare, so a route that sends an undeclared field fails here as surely as one that leaves
  out a required one.
- Taking a field out of a declaration (in a copy of the package, run in a subprocess) takes it
  out of both the request check and /openapi.json.
- The declaration toolkit's own rules (required, bounds, enums, nested paths).
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, NotRequired, TypedDict

import httpx
import pytest
from server_helpers import SchemaError, serving, sse_events, validate

import llmrouter_tui
from llmrouter_tui.core.runtime import Runtime
from llmrouter_tui.core.stats import RecentRequest
from llmrouter_tui.server import openapi, wire, wire_shapes
from llmrouter_tui.server.app import create_app
from llmrouter_tui.server.routes import ROUTES, endpoint_of
from llmrouter_tui.server.wire_check import FieldProblem, checker
from llmrouter_tui.server.wire_schema import schemas
from llmrouter_tui.testing.fake_upstream import FakeUpstream, Fault

GROQ = "openai/gpt-oss-20b"
GEMINI = "gemini-3.5-flash"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def closed(schema: Any) -> Any:
    """`schema` with every object that lists its properties refusing any other field."""
    if isinstance(schema, dict):
        out = {key: closed(value) for key, value in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    return schema


CLOSED = closed(copy.deepcopy(openapi.document()))


def check_closed(response: httpx.Response) -> Any:
    """Validate a real response against the closed document; return its JSON or events."""
    request = response.request
    worker = response.headers.get(openapi.WORKER_HEADER)
    assert worker is not None and re.fullmatch(openapi._WORKER["schema"]["pattern"], worker)
    operation = CLOSED["paths"].get(_template(request.url.path), {}).get(request.method.lower())
    if operation is None:  # no such endpoint or method: the one error shape
        data = response.json()
        validate(data, {"$ref": "#/components/schemas/Error"}, CLOSED)
        return data
    documented = operation["responses"][str(response.status_code)]
    assert openapi.WORKER_HEADER in documented["headers"]
    ctype = response.headers["content-type"].split(";")[0]
    (media,) = [m for key, m in documented["content"].items() if key.split(";")[0] == ctype]
    schema = media.get("x-event-schema", media["schema"])
    if ctype == "text/event-stream":
        events = sse_events(response.text)
        for index, event in enumerate(events):
            if event != "[DONE]":
                validate(event, schema, CLOSED, f"event[{index}]")
        return events
    if not ctype.endswith("json"):
        return response.text
    data = response.json()
    validate(data, schema, CLOSED)
    return data


def _template(path: str) -> str:
    endpoint = endpoint_of(path)
    return endpoint if endpoint != "other" else path


async def test_every_route_answers_with_bodies_its_declaration_describes(
    make_runtime: Callable[..., Runtime], upstream: FakeUpstream
) -> None:
    runtime = make_runtime()
    seen: list[httpx.Response] = []
    async with (
        serving(create_app(runtime, token=""), worker_header=True) as server,
        httpx.AsyncClient(base_url=server.url, timeout=30) as http,
    ):

        async def call(method: str, url: str, body: Any = None, status: int = 200) -> Any:
            response = await http.request(method, url, json=body)
            seen.append(response)
            assert response.status_code == status, response.text
            return check_closed(response)

        chat = await call("POST", f"/chat?model={GROQ}", {"prompt": "hello", "system": "s"})
        assert chat["status"] == "ok"
        events = await call("POST", f"/chat?model={GEMINI}&stream=true", {"prompt": "hi"})
        assert [e["type"] for e in events][:: len(events) - 1] == ["start", "done"]
        tools = await call(
            "POST",
            "/v1/chat/completions",
            {
                "model": GROQ,
                "messages": [{"role": "user", "content": "call tool please"}],
                "tools": [WEATHER],
            },
        )
        assert tools["choices"][0]["message"]["tool_calls"]
        streamed_tools = await call(
            "POST",
            "/v1/chat/completions",
            {
                "model": GROQ,
                "messages": [{"role": "user", "content": "call tool please"}],
                "tools": [WEATHER],
                "stream": True,
                "stream_options": {"include_usage": True},
            },
        )
        assert streamed_tools[-1] == "[DONE]"
        v1 = await call(
            "POST",
            "/v1/chat/completions",
            {"model": GEMINI, "messages": [{"role": "user", "content": "hi"}]},
        )
        assert v1["object"] == "chat.completion"
        await call(
            "POST",
            "/v1/chat/completions",
            {"model": GROQ, "messages": [{"role": "user", "content": "x"}], "stream": True},
        )
        pair = [GROQ, GEMINI]
        both = await call("POST", "/compare", {"prompt": "which?", "models": pair})
        blind = await call("POST", "/compare", {"prompt": "b", "models": pair, "blind": True})
        assert "model_used" not in blind["a"]
        await call("POST", "/compare?stream=true", {"prompt": "s", "models": pair})
        await call("POST", "/compare?stream=true", {"prompt": "s", "models": pair, "blind": 1 == 1})
        vote = {"prompt_a": both["a"]["prompt_id"], "prompt_b": both["b"]["prompt_id"]}
        assert (await call("POST", "/prefer", {**vote, "outcome": "a"}))["winner"] == GROQ
        rated = {"prompt_id": chat["prompt_id"], "rating": 4, "feedback": "ok"}
        assert (await call("POST", "/rate", rated))["rating"] == 4
        await call("POST", f"/rate?prompt_id={chat['prompt_id']}&score=5", {"feedback": "x"})
        stats = await call("GET", "/stats")
        assert stats["total_prompts"] >= 1 and stats["leaderboard"]
        await call("GET", "/stats?template=summarize")
        # The TUI's latency chart reads rows no route serves: they too are their declaration.
        recent = runtime.store.recent_requests(5)
        declared = [spec.name for spec in wire.fields_of(RecentRequest)]
        assert recent and all(list(row) == declared for row in recent)
        await call("GET", "/models")
        await call("GET", "/models?live=true")
        templates = await call("GET", "/templates")
        assert templates["count"] == len(templates["templates"]) > 0
        await call(
            "POST",
            f"/chat?model={GROQ}",
            {
                "template_id": templates["templates"][0]["id"],
                "template_vars": dict.fromkeys(templates["templates"][0]["variables"], 1),
            },
        )
        await call("GET", "/health")
        assert "llmrouter_http_requests_total" in await call("GET", "/metrics")
        await call("GET", "/openapi.json")
        models = await call("GET", "/v1/models")
        await call("GET", "/v1/models/" + models["data"][-1]["id"])

        # Errors: bad fields, unknown things, failures before and after the first byte.
        await call("POST", "/chat", {"prompt": "x", "temperature": 3}, 400)
        await call("POST", "/chat", {"messages": [{"role": "robot", "content": "x"}]}, 400)
        await call("POST", "/v1/chat/completions", {"messages": [], "model": GROQ}, 400)
        await call("POST", "/rate", {"prompt_id": "nope", "rating": 3}, 404)
        await call("POST", "/prefer", {**vote, "outcome": "left"}, 400)
        await call("POST", "/compare", {"prompt": "x", "models": [GROQ, GROQ]}, 400)
        await call("GET", "/v1/models/no-such-model", status=404)
        await call("GET", "/nope", status=404)
        await call("DELETE", "/chat", status=405)
        upstream.add_fault(Fault(kind="status", status=500, times=None))
        failed = await call("POST", f"/chat?model={GROQ}", {"prompt": "fails"}, 502)
        assert failed["attempts"]
        await call(
            "POST",
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "x"}]},
            502,
        )
        await call("POST", "/compare", {"prompt": "x", "models": pair}, 502)
        upstream.clear()
        upstream.add_fault(Fault(kind="cut", after_chunks=1, times=None))
        broken = await call("POST", f"/chat?model={GROQ}&stream=true", {"prompt": "cut"})
        assert broken[-1]["type"] == "error"
        cut = await call(
            "POST",
            "/v1/chat/completions",
            {"model": GROQ, "messages": [{"role": "user", "content": "x"}], "stream": True},
        )
        assert "error" in cut[-1]
    routes = {_template(r.request.url.path) for r in seen}
    assert routes >= set(ROUTES), set(ROUTES) - routes
    assert {r.status_code for r in seen} >= {200, 400, 404, 405, 502}


def test_the_closed_check_catches_an_undeclared_field() -> None:
    # The check above would miss a route's stray field if closing did not work.
    record_schema = {"$ref": "#/components/schemas/Rating"}
    rating = {
        "status": "ok",
        "prompt_id": "p",
        "model": None,
        "rating": 3,
        "feedback": None,
        "created_at": "2026-01-01T00:00:00Z",
    }
    validate(rating, record_schema, CLOSED)
    with pytest.raises(SchemaError, match="unexpected property 'stray'"):
        validate({**rating, "stray": 1}, record_schema, CLOSED)
    with pytest.raises(SchemaError, match="missing required 'rating'"):
        validate({k: v for k, v in rating.items() if k != "rating"}, record_schema, CLOSED)


# ---- one declaration: a field removed disappears everywhere ---------------------------------

_PROBE = """
import json
import llmrouter_tui
from llmrouter_tui.core.templates import TemplateSet
from llmrouter_tui.server import openapi
from llmrouter_tui.server.asgi import HTTPError
from llmrouter_tui.server.validation import parse_chat, parse_compare

class Query:
    query = {}
    def query_value(self, name):
        return None

def documenting(field, names):
    schemas = openapi.document()["components"]["schemas"]
    return [name for name in names if field in schemas[name]["properties"]]

out = {"package": llmrouter_tui.__path__[0]}
out["documented"] = documenting("system", ("ChatRequest", "CompareRequest"))
out["result_documented"] = documenting(
    "cost_estimated", ("ChatResult", "RouterDetails", "CompareReply")
)
for name, parse in (("chat", parse_chat), ("compare", parse_compare)):
    try:
        parse(Query(), {"prompt": "x", "system": 5}, TemplateSet(), "m")
        out[name] = "accepted"
        body = {"prompt": "x", "system": "be brief"}
        out[name + "_system"] = parse(Query(), body, TemplateSet(), "m").request.system
    except HTTPError as exc:
        out[name] = exc.detail
print(json.dumps(out))
"""


def _probe(root: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE],
        capture_output=True,
        text=True,
        cwd=root,  # `-c` puts the working directory first on sys.path
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    assert Path(out.pop("package")).parent == root
    return out


def test_a_field_taken_out_of_its_declaration_leaves_both_the_check_and_openapi(
    tmp_path: Path,
) -> None:
    package = Path(llmrouter_tui.__file__).parent
    whole = _probe(package.parent)
    assert whole["documented"] == ["ChatRequest", "CompareRequest"]
    assert whole["result_documented"] == ["ChatResult", "RouterDetails", "CompareReply"]
    assert whole["chat"] == whole["compare"] == "system must be a string; got number"

    copied = tmp_path / "llmrouter_tui"
    shutil.copytree(package, copied, ignore=shutil.ignore_patterns("__pycache__"))
    shapes = copied / "server" / "wire_shapes.py"
    text = shapes.read_text("utf-8")
    removed = re.sub(r"(?m)^    system: str\n", "", text, count=1)
    removed = re.sub(r"(?m)^    cost_estimated: Annotated\[.*\n", "", removed, count=1)
    assert removed.count("\n") == text.count("\n") - 2, "the declarations to remove moved"
    shapes.write_text(removed, "utf-8")

    without = _probe(tmp_path)
    assert without["documented"] == [] and without["result_documented"] == []
    # An undeclared field is an unknown field: ignored, as /chat always ignored those.
    assert without["chat"] == without["compare"] == "accepted"
    assert without["chat_system"] is None and without["compare_system"] is None


# The core's return shapes (stats, leaderboard, model and template rows) are declared in core,
# once: /openapi.json documents them from there, and no server module lists their fields.
_CORE_PROBE = """
import json
from llmrouter_tui.server import openapi

schemas = openapi.document()["components"]["schemas"]
print(json.dumps({name: sorted(schema.get("properties", {})) for name, schema in schemas.items()}))
"""

# (file, line taken out, component, field): one field of each core-declared body.
_CORE_FIELDS = (
    ("core/stats.py", r"    cache_hit_rate: Annotated\[.*\n", "Stats", "cache_hit_rate"),
    ("core/stats.py", r"    fallbacks: int\n", "PerModelStats", "fallbacks"),
    ("core/leaderboard.py", r"    win_rate: Annotated\[.*\n", "LeaderboardRow", "win_rate"),
    ("core/catalog.py", r"    shutdown: str \| None\n", "ModelRow", "shutdown"),
    ("core/templates.py", r"    description: str \| None\n", "TemplateInfo", "description"),
)


def _core_probe(root: Path) -> dict[str, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", _CORE_PROBE],
        capture_output=True,
        text=True,
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out: dict[str, list[str]] = json.loads(done.stdout)
    return out


def test_a_field_taken_out_of_a_core_row_leaves_openapi(tmp_path: Path) -> None:
    package = Path(llmrouter_tui.__file__).parent
    whole = _core_probe(package.parent)
    for _, _, component, name in _CORE_FIELDS:
        assert name in whole[component], (component, name)

    copied = tmp_path / "llmrouter_tui"
    shutil.copytree(package, copied, ignore=shutil.ignore_patterns("__pycache__"))
    for file, line, _, _ in _CORE_FIELDS:
        path = copied / file
        text = path.read_text("utf-8")
        removed = re.sub(f"(?m)^{line}", "", text, count=1)
        assert removed != text, f"the declaration in {file} moved"
        path.write_text(removed, "utf-8")

    without = _core_probe(tmp_path)
    for _, _, component, name in _CORE_FIELDS:
        assert name not in without[component], (component, name)
    # Nothing else went: the copy differs only by the fields taken out.
    for component, names in whole.items():
        gone = {name for _, _, c, name in _CORE_FIELDS if c == component}
        assert [n for n in names if n not in gone] == without[component], component


# ---- the toolkit ----------------------------------------------------------------------------


class _Inner(TypedDict):
    level: Literal["low", "high"]


class _Probe(TypedDict):
    """A probe."""

    name: Annotated[str, wire.Field("Its name.")]
    size: NotRequired[Annotated[int, wire.Field(minimum=1, maximum=9)]]
    tags: NotRequired[list[_Inner]]
    note: NotRequired[str | None]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({}, "name is required: its name"),
        ({"name": ""}, "name is required: its name"),
        ({"name": 3}, "name must be a string; got number"),
        ({"name": "n", "size": 10}, "size must be a whole number from 1 to 9; got 10"),
        ({"name": "n", "size": 2.5}, "size must be a whole number from 1 to 9; got number"),
        ({"name": "n", "size": True}, "size must be a whole number from 1 to 9; got boolean"),
        ({"name": "n", "tags": [{"level": "mid"}]}, "tags[0].level must be one of low, high"),
        ({"name": "n", "tags": [{}]}, "tags[0].level is required"),
        ({"name": "n", "tags": {}}, "tags must be an array; got object"),
    ],
)
def test_the_checker_names_the_field_and_what_it_must_be(body: Any, problem: str) -> None:
    with pytest.raises(FieldProblem) as caught:
        checker(_Probe).check(body)
    assert str(caught.value).startswith(problem), str(caught.value)


def test_the_checker_keeps_declared_fields_only_and_whole_floats_as_ints() -> None:
    body = {"name": "n", "size": 3.0, "note": None, "extra": 1, "tags": [{"level": "low"}]}
    assert checker(_Probe).check(body) == {"name": "n", "size": 3, "tags": [{"level": "low"}]}


def test_the_schema_follows_the_declaration() -> None:
    made = schemas([_Probe])
    assert made["_Probe"] == {
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "Its name."},
            "size": {"type": "integer", "minimum": 1, "maximum": 9},
            "tags": {"type": "array", "items": {"$ref": "#/components/schemas/_Inner"}},
            "note": {"type": ["string", "null"]},
        },
        "required": ["name"],
        "description": "A probe.",
    }
    assert made["_Inner"]["properties"]["level"] == {"enum": ["low", "high"]}


def test_every_component_reference_resolves_and_every_request_shape_is_documented() -> None:
    document = openapi.document()
    text = json.dumps(document)
    for name in set(re.findall(r"#/components/schemas/(\w+)", text)):
        assert name in document["components"]["schemas"], name
    for shape in (wire_shapes.ChatRequest, wire_shapes.RateRequest, wire_shapes.PreferRequest):
        documented = document["components"]["schemas"][shape.__name__]["properties"]
        assert set(checker(shape).names) <= set(documented)
