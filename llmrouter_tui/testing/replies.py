"""Realistic long Markdown replies, generated deterministically (benchmarks, tests, demos).

`long_reply(seed, tokens)` writes what a model answering a programming question produces:
headings, paragraphs with inline code, bold text and links, bullet and numbered lists, fenced
code blocks in several languages (some with lines far wider than a terminal), wide tables of
numbers, and block quotes, until the text reaches about `tokens` tokens (estimated with
`heuristic_count`, 4 characters a token). The same seed always gives the same text.

`long_conversation(turns, seed)` gives the (prompt, reply) pairs of a conversation of such
replies, 1,000 to 3,000 tokens each.
"""

from __future__ import annotations

import random

from ..core.tokens import heuristic_count

_VOCABULARY = (
    "router request cache latency stream token model provider fallback retry header "
    "budget window queue worker batch commit index schema column buffer socket timeout "
    "backoff circuit breaker payload response client server handler parser encoder "
    "decoder iterator generator context session thread process signal channel event "
    "loop scheduler metric sample percentile histogram counter gauge span trace log "
    "record field value key table query plan join filter sort limit offset cursor page"
)
_WORDS = tuple(_VOCABULARY.split())
_LANGS = ("python", "bash", "json", "sql", "rust", "typescript")
_MODELS = ("gpt-oss-20b", "gpt-oss-120b", "gemini-3.5-flash", "qwen3.6-27b", "compound-mini")


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(8, 18))]
    i = rng.randrange(len(words))
    words[i] = f"`{words[i]}_{rng.choice(_WORDS)}()`"
    if rng.random() < 0.4:
        j = rng.randrange(len(words))
        words[j] = f"**{words[j]}**"
    if rng.random() < 0.15:
        k = rng.randrange(len(words))
        words[k] = f"[{words[k]}](https://example.com/docs/{words[k].strip('`*')})"
    return " ".join(words).capitalize() + "."


def _title(rng: random.Random) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 6))).capitalize()


def _paragraph(rng: random.Random) -> str:
    return " ".join(_sentence(rng) for _ in range(rng.randint(2, 5)))


def _bullets(rng: random.Random, numbered: bool) -> str:
    lines = []
    for n in range(1, rng.randint(4, 7) + 1):
        mark = f"{n}." if numbered else "-"
        lines.append(f"{mark} {_sentence(rng)}")
        if not numbered and rng.random() < 0.25:
            lines.append(f"  - {_sentence(rng)}")
    return "\n".join(lines)


def _python(rng: random.Random) -> list[str]:
    name = f"{rng.choice(_WORDS)}_{rng.choice(_WORDS)}"
    lines = [
        "from __future__ import annotations",
        "",
        "import asyncio",
        "from dataclasses import dataclass",
        "",
        "",
        "@dataclass(slots=True)",
        f"class {name.title().replace('_', '')}:",
        f'    """{_sentence(rng)}"""',
        "",
    ]
    for _ in range(rng.randint(3, 6)):
        field = rng.choice(_WORDS)
        lines.append(f"    {field}_{rng.randint(1, 99)}: int = {rng.randint(0, 5000)}")
    lines += ["", ""]
    for _ in range(rng.randint(2, 4)):
        fn = f"{rng.choice(_WORDS)}_{rng.choice(_WORDS)}"
        args = ", ".join(f"{rng.choice(_WORDS)}: float" for _ in range(rng.randint(1, 3)))
        lines.append(f"async def {fn}({args}) -> dict[str, float]:")
        lines.append(f'    """{_sentence(rng)}"""')
        for _ in range(rng.randint(3, 7)):
            var = rng.choice(_WORDS)
            lines.append(
                f"    {var} = await asyncio.sleep({rng.random():.3f}) or {rng.randint(1, 999)}"
            )
        if rng.random() < 0.7:  # a line far wider than any terminal
            words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(18, 30)))
            lines.append(f'    message = f"{{{rng.choice(_WORDS)}!r}}: {words} (end of line)"')
        lines.append(f'    return {{"{rng.choice(_WORDS)}": {rng.random() * 100:.2f}}}')
        lines += ["", ""]
    return lines[:-2]


def _bash(rng: random.Random) -> list[str]:
    flags = " ".join(f"--{rng.choice(_WORDS)}={rng.randint(1, 9999)}" for _ in range(10))
    return [
        "# install, then run the benchmark against a local server",
        "python -m venv .venv && .venv/bin/pip install -e '.[dev]'",
        f"curl -sS -X POST 'http://127.0.0.1:8000/chat?model={rng.choice(_MODELS)}' "
        f"-H 'Content-Type: application/json' -d '{{\"prompt\": \"{_sentence(rng)}\"}}'",
        f"llmrouter-tui ask {flags} 'summarise the logs'",
    ]


def _json(rng: random.Random) -> list[str]:
    lines = ["{"]
    n = rng.randint(4, 8)
    for i in range(n):
        comma = "," if i < n - 1 else ""
        lines.append(f'  "{rng.choice(_WORDS)}_{i}": {rng.randint(0, 10**6)}{comma}')
    lines.append("}")
    return lines


def _sql(rng: random.Random) -> list[str]:
    cols = ", ".join(f"{rng.choice(_WORDS)}_{i}" for i in range(rng.randint(6, 12)))
    return [
        f"SELECT {cols}",
        "FROM requests r JOIN attempts a ON a.prompt_id = r.prompt_id",
        f"WHERE r.latency_ms > {rng.randint(100, 900)} AND r.status = 'ok'",
        "ORDER BY r.created_at DESC",
        f"LIMIT {rng.randint(10, 500)};",
    ]


def _generic(rng: random.Random, lang: str) -> list[str]:
    comment = "//" if lang in ("rust", "typescript") else "#"
    lines = [f"{comment} {_sentence(rng)}"]
    for _ in range(rng.randint(6, 14)):
        lines.append(f"let {rng.choice(_WORDS)} = {rng.choice(_WORDS)}({rng.randint(0, 99)});")
    return lines


def _code(rng: random.Random) -> str:
    lang = rng.choice(_LANGS)
    body = {
        "python": _python,
        "bash": _bash,
        "json": _json,
        "sql": _sql,
    }.get(lang, lambda r: _generic(r, lang))(rng)
    return f"```{lang}\n" + "\n".join(body) + "\n```"


def _table(rng: random.Random) -> str:
    columns = ["model", "p50 ms", "p95 ms", "p99 ms", "req/s", "tokens/s", "errors", "cost $"]
    columns += [f"{rng.choice(_WORDS)} {i}" for i in range(rng.randint(0, 4))]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _ in range(rng.randint(5, 10)):
        cells = [rng.choice(_MODELS)]
        for _ in columns[1:]:
            cells.append(f"{rng.uniform(0, 10**7):,.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _section(rng: random.Random, index: int) -> list[str]:
    parts = [f"### {index}. {_title(rng)}", _paragraph(rng)]
    roll = rng.random()
    if roll < 0.45:
        parts += [_code(rng), _paragraph(rng)]
    elif roll < 0.7:
        parts += [_table(rng), _paragraph(rng)]
    elif roll < 0.85:
        parts += [_bullets(rng, numbered=rng.random() < 0.5)]
    else:
        parts += ["> " + _sentence(rng), _bullets(rng, numbered=False)]
    return parts


def long_reply(seed: int, tokens: int = 2000) -> str:
    """A Markdown reply of about `tokens` tokens; the same for the same arguments.

    Every reply has at least one code block with a line wider than 120 columns and one table
    of at least 8 numeric columns, so both show up whatever the length.
    """
    rng = random.Random(seed)
    parts = [f"## {_title(rng)}", _paragraph(rng), _bullets(rng, False)]
    python = random.Random(seed * 7919 + 1)
    code = _python(python)
    code.append(f"# {' '.join(python.choice(_WORDS) for _ in range(30))}")  # always a wide line
    parts += ["```python\n" + "\n".join(code) + "\n```", _paragraph(rng), _table(rng)]
    text = "\n\n".join(parts)
    index = 1
    while heuristic_count(text) < tokens:
        parts += _section(rng, index)
        index += 1
        text = "\n\n".join(parts)
    return text + "\n"


def long_conversation(turns: int, seed: int = 1) -> list[tuple[str, str]]:
    """`turns` (prompt, reply) pairs; replies of 1,000 to 3,000 tokens."""
    rng = random.Random(seed)
    out = []
    for n in range(turns):
        prompt = f"Question {n + 1}: {_sentence(rng)}"
        out.append((prompt, long_reply(seed * 1000 + n, rng.randint(1000, 3000))))
    return out
