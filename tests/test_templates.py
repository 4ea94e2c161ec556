"""Prompt templates: shipped file, rendering, validation errors, overrides, legacy JSON, reload."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from llmrouter_tui.core import templates as tmod
from llmrouter_tui.core.errors import (
    ConfigError,
    InputError,
    MissingVariablesError,
    UnknownTemplateError,
)
from llmrouter_tui.core.templates import (
    RenderedTemplate,
    Template,
    TemplateSet,
    TemplateWatcher,
    default_templates_path,
    load_templates,
    load_templates_file,
)

ORIGINALS = [
    {
        "id": "gen_story_1",
        "title": "Story Generator",
        "prompt": "Write a short story about a {{character}} who discovers a {{object}}.",
        "tags": ["creative", "story", "fun"],
        "category": "creative writing",
    },
    {
        "id": "bug_fixer_1",
        "title": "Code Bug Fixer",
        "prompt": "Fix the following code:\n{{code_snippet}}",
        "tags": ["code", "debugging"],
        "category": "programming",
    },
    {
        "id": "friendly",
        "title": "Friendly Explainer",
        "prompt": "Explain the following in a friendly way for {{audience}}: {{topic}}",
        "tags": ["explain", "friendly", "audience"],
        "category": "education",
    },
    {
        "id": "summarize",
        "title": "Summarizer",
        "prompt": "Summarize the following text in {{num_sentences}} sentences: {{text}}",
        "tags": ["summarize", "text", "shorten"],
        "category": "productivity",
    },
    {
        "id": "explain_like_5",
        "title": "Explain Like I'm 5",
        "prompt": "Explain this like I'm 5 years old: {{concept}}",
        "tags": ["explain", "simple", "ELI5"],
        "category": "education",
    },
]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def make(
    prompt: str, system: str | None = None, defaults: dict[str, str] | None = None
) -> Template:
    return Template(
        id="t",
        title="T",
        category="c",
        tags=(),
        prompt=prompt,
        system=system,
        defaults=defaults or {},
    )


# ---- the shipped file ------------------------------------------------------------------------


def test_default_path_is_the_repo_file_in_a_source_checkout() -> None:
    path = default_templates_path()
    assert path.name == "prompt_templates.toml"
    assert path.is_file()


def test_default_path_prefers_the_packaged_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    core = tmp_path / "llmrouter_tui" / "core"
    core.mkdir(parents=True)
    repo_copy = write(tmp_path / "prompt_templates.toml", "")
    monkeypatch.setattr(tmod, "__file__", str(core / "templates.py"))
    assert default_templates_path() == repo_copy
    (tmp_path / "llmrouter_tui" / "data").mkdir()
    packaged = write(tmp_path / "llmrouter_tui" / "data" / "prompt_templates.toml", "")
    assert default_templates_path() == packaged


def test_shipped_file_has_the_five_originals_exactly() -> None:
    shipped = load_templates_file(default_templates_path())
    for original in ORIGINALS:
        template = shipped[original["id"]]
        assert template.title == original["title"]
        assert template.prompt == original["prompt"]
        assert list(template.tags) == original["tags"]
        assert template.category == original["category"]
        assert template.system is None
    assert list(shipped)[:5] == [o["id"] for o in ORIGINALS]
    assert shipped["summarize"].defaults == {"num_sentences": "3"}


def test_shipped_file_has_useful_extras_that_all_render() -> None:
    shipped = load_templates()
    extras = [t for t in shipped.values() if t.id not in {o["id"] for o in ORIGINALS}]
    assert len(extras) >= 4
    assert any(t.system for t in extras)
    assert any(t.defaults for t in extras)
    for template in shipped.values():
        assert template.title and template.category and template.tags
        values = {name: f"<{name}>" for name in template.variables}
        rendered = template.render(values)
        assert "{{" not in rendered.prompt
        assert rendered.system is None or "{{" not in rendered.system


def test_shipped_templates_by_category_and_as_dict() -> None:
    shipped = load_templates()
    groups = shipped.by_category()
    assert list(groups) == sorted(groups, key=str.casefold)
    assert [t.id for t in groups["education"]] == ["friendly", "explain_like_5"]
    data = shipped["summarize"].as_dict()
    assert data == {
        "id": "summarize",
        "title": "Summarizer",
        "category": "productivity",
        "tags": ["summarize", "text", "shorten"],
        "variables": ["num_sentences", "text"],
        "defaults": {"num_sentences": "3"},
        "system": None,
        "description": None,
        "prompt": "Summarize the following text in {{num_sentences}} sentences: {{text}}",
    }
    json.dumps(data)


# ---- rendering -------------------------------------------------------------------------------


def test_render_original_prompt() -> None:
    rendered = load_templates().render("friendly", {"audience": "kids", "topic": "gravity"})
    assert rendered == RenderedTemplate(
        prompt="Explain the following in a friendly way for kids: gravity", system=None
    )


def test_whitespace_inside_braces() -> None:
    template = make("A {{ topic }} and {{topic}} and {{\tother  }}.")
    assert template.variables == ["topic", "other"]
    assert template.render({"topic": "x", "other": "y"}).prompt == "A x and x and y."


def test_variables_are_unique_in_order_across_prompt_and_system() -> None:
    template = make("{{b}} {{a}} {{b}}", system="{{c}} {{a}}")
    assert template.variables == ["b", "a", "c"]
    rendered = template.render({"a": 1, "b": 2, "c": 3})
    assert rendered == RenderedTemplate(prompt="2 1 2", system="3 1")


def test_missing_variables_error_names_each_missing_one() -> None:
    template = make("{{a}} {{b}} {{c}}", system="{{d}}")
    with pytest.raises(MissingVariablesError) as info:
        template.render({"b": "ok"})
    assert info.value.missing == ["a", "c", "d"]
    assert info.value.template_id == "t"
    for name in ("a", "c", "d"):
        assert name in str(info.value)
    assert isinstance(info.value, InputError)


@pytest.mark.parametrize("empty", ["", "   ", "\n\t", None])
def test_empty_value_counts_as_missing(empty: str | None) -> None:
    with pytest.raises(MissingVariablesError) as info:
        make("{{a}} {{b}}").render({"a": empty, "b": "x"})
    assert info.value.missing == ["a"]


def test_defaults_fill_gaps_and_values_override_them() -> None:
    template = make("{{n}} sentences: {{text}}", defaults={"n": "3"})
    assert template.render({"text": "t"}).prompt == "3 sentences: t"
    assert template.render({"text": "t", "n": 5}).prompt == "5 sentences: t"
    assert template.render({"text": "t", "n": "  "}).prompt == "3 sentences: t"
    with pytest.raises(MissingVariablesError) as info:
        template.render({"n": "1"})
    assert info.value.missing == ["text"]


def test_values_are_not_re_expanded() -> None:
    template = make("{{a}} / {{b}}")
    rendered = template.render({"a": "{{b}}", "b": "{{ a }} and {{c}}"})
    assert rendered.prompt == "{{b}} / {{ a }} and {{c}}"


def test_extra_values_are_ignored_and_values_are_stringified() -> None:
    rendered = make("n={{n}} f={{f}}").render({"n": 3, "f": 1.5, "unused": "x"})
    assert rendered.prompt == "n=3 f=1.5"


def test_values_with_regex_specials_are_inserted_literally() -> None:
    rendered = make("{{a}}").render({"a": r"\1 \g<0> $1 \\"})
    assert rendered.prompt == r"\1 \g<0> $1 \\"


def test_unknown_template_lists_known_ids() -> None:
    shipped = load_templates()
    with pytest.raises(UnknownTemplateError) as info:
        shipped.require("sumarize")
    message = str(info.value)
    for template_id in shipped.ids():
        assert template_id in message
    assert "Did you mean 'summarize'" in message
    with pytest.raises(UnknownTemplateError):
        shipped.render("nope", {})
    assert isinstance(info.value, InputError)


def test_template_set_is_mapping_like() -> None:
    a = make("{{x}}")
    ts = TemplateSet({"t": a})
    assert "t" in ts and "u" not in ts
    assert len(ts) == 1
    assert list(ts) == ["t"] == ts.ids()
    assert ts.get("t") is a and ts.get("u") is None
    assert ts["t"] is a
    assert ts.render("t", {"x": "1"}).prompt == "1"


# ---- file errors -----------------------------------------------------------------------------


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "prompt_templates.toml",
        '[ok]\nprompt = "fine"\n\n[bad]\nprompt = "unterminated\ntitle = "x"\n',
    )
    with pytest.raises(ConfigError) as info:
        load_templates_file(path)
    assert info.value.path == str(path)
    assert info.value.line == 5
    assert str(path) in str(info.value)
    assert "line 5" in str(info.value)
    assert "invalid TOML" in str(info.value)


def test_toml_error_at_end_of_file_has_a_line(tmp_path: Path) -> None:
    path = write(tmp_path / "t.toml", '[a]\nprompt = "x"\ntitle =')
    with pytest.raises(ConfigError) as info:
        load_templates_file(path)
    assert info.value.line == 3


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_templates_file(tmp_path / "missing.toml")
    assert "missing.toml" in str(info.value)
    write_bytes = tmp_path / "latin1.toml"
    write_bytes.write_bytes(b'[a]\nprompt = "caf\xe9"\n')
    with pytest.raises(ConfigError, match="UTF-8"):
        load_templates_file(write_bytes)


SCHEMA_CASES = [
    # (body of [demo] after a valid first template, key named, line expected)
    ('title = "x"\n', "prompt", 4),
    ("prompt = 3\n", "prompt", 5),
    ('prompt = "x"\ntags = "code"\n', "tags", 6),
    ('prompt = "x"\ntags = ["a", 2]\n', "tags", 6),
    ('prompt = "x"\ntitle = ["x"]\n', "title", 6),
    ('prompt = "x"\nsystem = 1\n', "system", 6),
    ('prompt = "x"\ndefaults = "n=3"\n', "defaults", 6),
    ('prompt = "{{n}}"\ndefaults = { n = 3 }\n', "defaults", 6),
    ('prompt = "{{n}}"\n\n[demo.defaults]\nm = "3"\n', "defaults", 7),
    ('prompt = "x"\ntittle = "typo"\n', "tittle", 6),
    ('prompt = "Hi {{name}"\n', "prompt", 5),
    ('prompt = "Hi {name}}"\n', "prompt", 5),
    ('prompt = "ok {{name}}"\nsystem = "{{ bad-name }}"\n', "system", 6),
]


@pytest.mark.parametrize(("body", "key", "line"), SCHEMA_CASES)
def test_schema_errors_name_file_template_key_and_line(
    tmp_path: Path, body: str, key: str, line: int
) -> None:
    path = write(tmp_path / "mine.toml", '[first]\nprompt = "fine"\n\n[demo]\n' + body)
    with pytest.raises(ConfigError) as info:
        load_templates_file(path)
    message = str(info.value)
    assert str(path) in message
    assert "'demo'" in message
    assert key in message
    assert info.value.line == line


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    path = write(tmp_path / "t.toml", '[a]\nprompt = "x"\ncatgory = "y"\n')
    with pytest.raises(ConfigError, match="did you mean 'category'"):
        load_templates_file(path)


def test_non_table_top_level_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "t.toml", 'prompt = "x"\n')
    with pytest.raises(ConfigError, match="not a template") as info:
        load_templates_file(path)
    assert info.value.line == 1


def test_minimal_template_gets_defaults(tmp_path: Path) -> None:
    path = write(tmp_path / "t.toml", '["my-tpl"]\nprompt = "Do {{ thing }}"\n')
    template = load_templates_file(path)["my-tpl"]
    assert template.title == "my-tpl"
    assert template.category == "general"
    assert template.tags == ()
    assert template.source == str(path)
    assert template.variables == ["thing"]


# ---- several files ---------------------------------------------------------------------------


def test_override_order(tmp_path: Path) -> None:
    cwd_file = write(
        tmp_path / "cwd.toml",
        '[summarize]\ntitle = "Mine"\nprompt = "Short: {{text}}"\n\n'
        '[shared]\nprompt = "from cwd"\n\n[cwd_only]\nprompt = "c"\n',
    )
    data_file = write(
        tmp_path / "data.toml", '[shared]\nprompt = "from data dir"\n\n[data_only]\nprompt = "d"\n'
    )
    ts = load_templates([cwd_file, data_file, tmp_path / "does-not-exist.toml"])
    assert ts["summarize"].title == "Mine"
    assert ts["summarize"].source == str(cwd_file)
    assert ts["shared"].prompt == "from data dir"
    assert ts["friendly"].source == str(default_templates_path())
    ids = ts.ids()
    assert ids.index("summarize") < ids.index("explain_like_5")  # replaced in place
    assert ids[-3:] == ["shared", "cwd_only", "data_only"]


def test_default_file_given_as_extra_is_read_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    link = tmp_path / "prompt_templates.toml"
    link.symlink_to(default_templates_path())
    calls: list[Path] = []
    real = tmod.load_templates_file

    def counting(path: Path | str) -> dict[str, Template]:
        calls.append(Path(path))
        return real(path)

    monkeypatch.setattr(tmod, "load_templates_file", counting)
    ts = load_templates([link, default_templates_path()])
    assert calls == [default_templates_path()]
    assert "friendly" in ts


def test_broken_extra_file_fails_the_load(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.toml", "[x]\n")
    with pytest.raises(ConfigError, match="prompt"):
        load_templates([bad])


# ---- legacy JSON -----------------------------------------------------------------------------


def test_json_legacy_format(tmp_path: Path) -> None:
    path = write(tmp_path / "prompt_templates.json", json.dumps(ORIGINALS, indent=2))
    loaded = load_templates_file(path)
    assert list(loaded) == [o["id"] for o in ORIGINALS]
    for original in ORIGINALS:
        assert loaded[original["id"]].prompt == original["prompt"]
        assert list(loaded[original["id"]].tags) == original["tags"]
    ts = load_templates([path])
    assert ts["summarize"].defaults == {}  # the JSON file replaced the default summarize


def test_json_errors(tmp_path: Path) -> None:
    broken = write(tmp_path / "a.json", '[\n  {"id": "x",\n  "prompt": }\n]')
    with pytest.raises(ConfigError, match="invalid JSON") as info:
        load_templates_file(broken)
    assert info.value.line == 3
    not_list = write(tmp_path / "b.json", '{"id": "x"}')
    with pytest.raises(ConfigError, match="list"):
        load_templates_file(not_list)
    dup = write(tmp_path / "c.json", json.dumps([{"id": "x", "prompt": "a"}] * 2, indent=1))
    with pytest.raises(ConfigError, match="twice"):
        load_templates_file(dup)
    bad = write(
        tmp_path / "d.json",
        json.dumps([{"id": "ok", "prompt": "a"}, {"id": "y", "prompt": "a", "tag": []}], indent=1),
    )
    with pytest.raises(ConfigError, match=r"'y'.*'tag'") as info:
        load_templates_file(bad)
    assert info.value.line is not None


# ---- watcher ---------------------------------------------------------------------------------


def bump(path: Path, text: str) -> None:
    """Rewrite `path` and move its mtime forward so the change is visible on any filesystem."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    later = before + 2_000_000_000
    os.utime(path, ns=(later, later))


def test_watcher_reloads_and_keeps_last_good_set(tmp_path: Path) -> None:
    mine = tmp_path / "prompt_templates.toml"
    write(mine, '[mine]\nprompt = "v1 {{x}}"\n')
    watcher = TemplateWatcher([mine])
    assert watcher.current["mine"].prompt == "v1 {{x}}"
    assert watcher.check() is None  # nothing changed

    bump(mine, '[mine]\nprompt = "v2 {{x}}"\n')
    fresh = watcher.check()
    assert fresh is not None and fresh["mine"].prompt == "v2 {{x}}"
    assert watcher.current is fresh
    assert watcher.check() is None

    bump(mine, '[mine]\nprompt = "v3 {{x}\n')
    with pytest.raises(ConfigError) as info:
        watcher.check()
    assert str(mine) in str(info.value)
    assert watcher.error is info.value
    assert watcher.current is fresh  # still the last good set
    assert watcher.current["mine"].prompt == "v2 {{x}}"
    assert watcher.check() is None  # the same broken state is reported once

    bump(mine, '[mine]\nprompt = "v4 {{x}}"\n')
    fixed = watcher.check()
    assert fixed is not None and fixed["mine"].prompt == "v4 {{x}}"
    assert watcher.error is None
    assert watcher.current is fixed


def test_watcher_sees_files_appear_and_disappear(tmp_path: Path) -> None:
    later = tmp_path / "later.toml"
    watcher = TemplateWatcher([later])
    assert "late" not in watcher.current
    assert watcher.check() is None
    write(later, '[late]\nprompt = "hi"\n')
    appeared = watcher.check()
    assert appeared is not None and "late" in appeared
    later.unlink()
    gone = watcher.check()
    assert gone is not None and "late" not in gone and "friendly" in gone


def test_watcher_check_is_stat_only_when_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = write(tmp_path / "t.toml", '[mine]\nprompt = "x"\n')
    watcher = TemplateWatcher([mine])

    def no_reads(path: Path | str) -> dict[str, Template]:
        raise AssertionError("re-read although nothing changed")

    monkeypatch.setattr(tmod, "load_templates_file", no_reads)
    for _ in range(3):
        assert watcher.check() is None


def test_watcher_with_initial_set_does_not_load(tmp_path: Path) -> None:
    initial = TemplateSet({"t": make("x")})
    watcher = TemplateWatcher([], initial=initial)
    assert watcher.current is initial
    assert watcher.check() is None
