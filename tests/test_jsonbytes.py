"""Compact JSON bytes: orjson's output where it can, the standard library's where it refuses."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from llmrouter_tui.core.jsonbytes import dumps

_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)


@given(_VALUES)
def test_any_value_round_trips_as_valid_utf8_json(value: object):
    out = dumps(value)
    assert b"\n" not in out  # one line, whatever the text holds
    assert json.loads(out.decode("utf-8")) == value


def test_what_orjson_refuses_is_still_written():
    assert json.loads(dumps({"text": "bad \ud800 byte"})) == {"text": "bad \ud800 byte"}
    assert json.loads(dumps({"n": 2**80})) == {"n": 2**80}
    assert json.loads(dumps({1: "a"})) == {"1": "a"}
    assert dumps({"text": "wörld", "n": [1, 2]}) == '{"text":"wörld","n":[1,2]}'.encode()
