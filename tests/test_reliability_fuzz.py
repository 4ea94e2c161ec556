"""Schema-driven fuzzing (schemathesis) of a running `llmrouter-tui --serve --demo`.

Every operation in /openapi.json gets bounded generated requests, valid and invalid, with
and without the bearer token. Every response must: not be a 5xx, arrive within the time
limit, carry a documented status and content type, and match its documented schema.
Whether generated data is accepted or rejected is left to the property tests in
test_reliability_hostile.py (the server is stricter than the schema can express, and
lenient about unknown fields).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402
from server_helpers import ServerProcess, clean_env  # noqa: E402

from llmrouter_tui.server.openapi import document  # noqa: E402

pytestmark = pytest.mark.slow  # a --serve --demo process fuzzed by schemathesis

TOKEN = "fuzz-token-7c1e9a"
# The server is stricter than the schema can say (the last message must be a non-empty user
# turn) and, like the original app, ignores unknown fields and query parameters: whether
# generated data is accepted or rejected is not what this run checks.
LENIENCY = [
    schemathesis.checks.positive_data_acceptance,
    schemathesis.checks.negative_data_rejection,
]
schema = schemathesis.openapi.from_dict(document())


@schema.auth()
class BearerToken:
    """The token on generated requests; schemathesis drops it itself to test that it is
    required (a request without it must be a 401)."""

    def get(self, case: Any, context: Any) -> str:
        return TOKEN

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory):
    root: Path = tmp_path_factory.mktemp("fuzz")
    server = ServerProcess(
        [
            *("--serve", "--demo", "--port", "0", "--quiet", "--token", TOKEN),
            *("--data-dir", str(root / "data")),
        ],
        clean_env(),
        cwd=root,
    )
    server.wait_for_url()
    yield server
    assert server.stop() == 0
    assert "internal error" not in server.stderr, server.stderr


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # the same cases every run: a CI failure reproduces locally
)
def test_every_operation_against_the_schema(case, fuzz_server):
    response = case.call(base_url=fuzz_server.url, timeout=15)
    case.validate_response(response, excluded_checks=LENIENCY)
    assert response.elapsed < 15  # seconds: no hang
    assert "Traceback" not in response.text
