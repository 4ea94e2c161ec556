"""Append-only JSONL/CSV sinks: one write per record, 0600 files, one header, torn lines."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmrouter_tui.core.logsinks import (
    PROMPT_FIELDS,
    RATING_FIELDS,
    AppendLog,
    format_csv,
    neutralise,
    read_csv,
    read_jsonl,
)

FIELDS = ("timestamp", "prompt_id", "text", "n", "flag", "items")


def row(i: int, text: str = "plain") -> dict[str, object]:
    return {
        "timestamp": f"2025-01-01T00:00:{i:02d}+00:00",
        "prompt_id": f"p{i}",
        "text": text,
        "n": i,
        "flag": i % 2 == 0,
        "items": [{"a": i}],
    }


@pytest.fixture
def umask_lax():
    old = os.umask(0)
    yield
    os.umask(old)


def test_field_orders_match_the_spec():
    assert PROMPT_FIELDS[:20] == (
        "timestamp",
        "prompt_id",
        "conversation_id",
        "requested_model",
        "model_used",
        "provider",
        "template_id",
        "prompt",
        "response",
        "latency_ms",
        "ttft_ms",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "tokens_estimated",
        "from_cache",
        "fallback_used",
        "attempts",
        "status",
        "error",
    )
    assert RATING_FIELDS == ("timestamp", "prompt_id", "model", "rating", "feedback")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("=1+2", "'=1+2"),
        ("+SUM(A1)", "'+SUM(A1)"),
        ("-2+3", "'-2+3"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("safe = text", "safe = text"),
        ("", ""),
    ],
)
def test_neutralise(text, expected):
    assert neutralise(text) == expected


def test_csv_cells_are_neutralised_but_numbers_are_not():
    line = format_csv(['=HYPERLINK("x")', -1, 2.5, None, True, [1]]).decode()
    assert line == '"\'=HYPERLINK(""x"")",-1,2.5,,true,[1]\r\n'


def test_jsonl_append_one_line_per_record(tmp_path: Path):
    path = tmp_path / "a.jsonl"
    sink = AppendLog(path, FIELDS, "jsonl")
    for i in range(3):
        assert sink.append(row(i, 'multi\nline, "quoted"')) is None
    rows, warnings = read_jsonl(path)
    assert warnings == []
    assert [r["prompt_id"] for r in rows] == ["p0", "p1", "p2"]
    assert list(rows[0]) == list(FIELDS)
    assert rows[1]["text"] == 'multi\nline, "quoted"'
    assert rows[0]["items"] == [{"a": 0}]
    assert path.read_bytes().count(b"\n") == 3


def test_csv_header_once_and_round_trip(tmp_path: Path):
    path = tmp_path / "a.csv"
    first = AppendLog(path, FIELDS, "csv")
    second = AppendLog(path, FIELDS, "csv")  # as if another process
    assert first.append(row(1, 'a,b\n"c"')) is None
    assert second.append(row(2)) is None
    assert first.append(row(3, "=evil()")) is None
    text = path.read_bytes().decode()
    assert text.count("timestamp,prompt_id") == 1
    assert text.startswith("timestamp,prompt_id,text,n,flag,items\r\n")
    rows, warnings = read_csv(path)
    assert warnings == []
    assert [r["prompt_id"] for r in rows] == ["p1", "p2", "p3"]
    assert rows[0]["text"] == 'a,b\n"c"'
    assert rows[2]["text"] == "'=evil()"
    assert rows[0]["flag"] == "false"
    assert json.loads(rows[0]["items"]) == [{"a": 1}]
    assert not list(tmp_path.glob(".*.tmp"))  # the header staging file is gone


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_new_files_are_0600_even_with_lax_umask(tmp_path: Path, umask_lax, fmt):
    path = tmp_path / f"x.{fmt}"
    AppendLog(path, FIELDS, fmt).append(row(1))  # type: ignore[arg-type]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_exactly_one_write_per_record(tmp_path: Path, monkeypatch, fmt):
    path = tmp_path / f"x.{fmt}"
    sink = AppendLog(path, FIELDS, fmt)  # type: ignore[arg-type]
    sink.append(row(0))  # creates the file (and header)
    calls: list[int] = []
    real_write = os.write

    def counting_write(fd: int, data: bytes) -> int:
        calls.append(len(data))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", counting_write)
    sink.append(row(1, "x" * 100_000))
    sink.append(row(2))
    assert len(calls) == 2


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_batch_is_one_write_and_reads_back_in_order(tmp_path: Path, monkeypatch, fmt):
    path = tmp_path / f"x.{fmt}"
    sink = AppendLog(path, FIELDS, fmt)  # type: ignore[arg-type]
    sink.append(row(0))
    calls: list[int] = []
    real_write = os.write

    def counting_write(fd: int, data: bytes) -> int:
        calls.append(len(data))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", counting_write)
    assert sink.append_many([row(i, f"text, {i}") for i in range(1, 6)]) is None
    assert len(calls) == 1
    rows, warnings = read_jsonl(path) if fmt == "jsonl" else read_csv(path)
    assert not warnings
    assert [r["prompt_id"] for r in rows] == [f"p{i}" for i in range(6)]
    assert rows[3]["text"] == "text, 3"


_CELLS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(alphabet=st.sampled_from(list('ab ,"\n\r\t=+-@é\x00')), max_size=8),
    st.lists(st.text(max_size=3), max_size=2),
)


@given(st.lists(_CELLS, min_size=1, max_size=6))
def test_csv_records_are_what_the_csv_module_writes(values: list[object]):
    """The hand-rolled formatter (it runs for every record) matches csv.writer exactly."""
    cells = [
        ""
        if v is None
        else ("true" if v else "false")
        if isinstance(v, bool)
        else repr(v)
        if isinstance(v, int | float)
        else neutralise(
            v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, separators=(",", ":"))
        )
        for v in values
    ]
    buf = io.StringIO()
    csv.writer(buf).writerow(cells)
    assert format_csv(values) == buf.getvalue().encode("utf-8", "replace")
    assert next(csv.reader(io.StringIO(format_csv(values).decode(), newline=""))) == cells


def test_failing_sink_warns_and_recovers(tmp_path: Path):
    path = tmp_path / "x.jsonl"
    path.mkdir()  # fails even as root
    sink = AppendLog(path, FIELDS, "jsonl")
    warning = sink.append(row(1))
    assert warning is not None
    assert warning.startswith(f"could not write {path}: [Errno ")
    assert warning.endswith("the reply was kept")
    path.rmdir()
    assert sink.append(row(2)) is None
    rows, warnings = read_jsonl(path)
    assert [r["prompt_id"] for r in rows] == ["p2"] and warnings == []


def test_missing_log_dir_is_recreated(tmp_path: Path):
    path = tmp_path / "gone" / "x.csv"
    assert AppendLog(path, FIELDS, "csv").append(row(1)) is None
    assert len(read_csv(path)[0]) == 1


def test_read_jsonl_skips_torn_last_line(tmp_path: Path):
    path = tmp_path / "t.jsonl"
    sink = AppendLog(path, FIELDS, "jsonl")
    sink.append(row(1))
    sink.append(row(2))
    with path.open("ab") as f:
        f.write(b'{"timestamp":"2025","prompt_id":"p3","te')
    rows, warnings = read_jsonl(path)
    assert [r["prompt_id"] for r in rows] == ["p1", "p2"]
    assert len(warnings) == 1 and "line 3" in warnings[0] and "torn" in warnings[0]


def test_complete_json_without_newline_is_still_torn(tmp_path: Path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"a":1}\n{"a":2}')
    rows, warnings = read_jsonl(path)
    assert rows == [{"a": 1}] and "line 2" in warnings[0]


def test_append_after_torn_line_starts_a_new_line(tmp_path: Path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"prompt_id":"p1"}\n{"prompt_id":"p2","te')
    sink = AppendLog(path, FIELDS, "jsonl")
    assert sink.append(row(3)) is None
    rows, warnings = read_jsonl(path)
    assert [r["prompt_id"] for r in rows] == ["p1", "p3"]
    assert len(warnings) == 1 and "line 2" in warnings[0]


def test_read_jsonl_reports_garbled_and_non_object_lines(tmp_path: Path):
    path = tmp_path / "g.jsonl"
    path.write_bytes(b'{"a":1}\n\x00\xffgarbage\n[1,2]\n\n{"a":2}\n')
    rows, warnings = read_jsonl(path)
    assert rows == [{"a": 1}, {"a": 2}]
    assert len(warnings) == 2
    assert "line 2" in warnings[0] and "line 3" in warnings[1]


def test_read_csv_skips_torn_last_record(tmp_path: Path):
    path = tmp_path / "t.csv"
    sink = AppendLog(path, FIELDS, "csv")
    sink.append(row(1, "multi\nline"))
    sink.append(row(2))
    with path.open("ab") as f:
        f.write(b"2025-01-01T00:00:03+00:00,p3,tor")
    rows, warnings = read_csv(path)
    assert [r["prompt_id"] for r in rows] == ["p1", "p2"]
    assert len(warnings) == 1 and "line 5" in warnings[0] and "torn" in warnings[0]
    # The next append isolates the torn record instead of gluing onto it.
    assert sink.append(row(4)) is None
    rows, warnings = read_csv(path)
    assert [r["prompt_id"] for r in rows] == ["p1", "p2", "p4"]
    assert len(warnings) == 1 and "garbled" in warnings[0]
