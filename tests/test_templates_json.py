"""The original system's prompt_templates.json (issue 11): loaded, merged, checked, imported.

`prompt_templates.json` is read from the same places as `prompt_templates.toml` (the working
directory and the data directory). In one directory the TOML file wins over the JSON one,
with a notice; a broken JSON file stops start-up with its name, line and column; and
`llmrouter-tui templates import` converts the JSON list to TOML that loads back identically.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import GROQ_KEY
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_helpers import clean_env
from test_templates import ORIGINALS

from llmrouter_tui.core.runtime import Runtime
from llmrouter_tui.core.template_toml import NotRepresentable, dump_templates
from llmrouter_tui.core.templates import Template, load_templates, load_templates_file
from llmrouter_tui.testing.fake_upstream import FakeUpstream

#: The original llm-router's file, when this checkout sits next to it.
SEED = Path("/work/shared/seed/prompt_templates.json")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    monkeypatch.chdir(path)
    return path


@pytest.fixture
def seed_file(tmp_path: Path) -> Path:
    """The original's prompt_templates.json (the real file when present, else its content)."""
    path = tmp_path / "seed" / "prompt_templates.json"
    path.parent.mkdir()
    if SEED.is_file():
        shutil.copyfile(SEED, path)
    else:
        path.write_text(json.dumps(ORIGINALS, indent=2), encoding="utf-8")
    assert json.loads(path.read_text(encoding="utf-8")) == ORIGINALS
    return path


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def comparable(templates: dict[str, Template]) -> list[Template]:
    return [replace(t, source="") for t in templates.values()]


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmrouter_tui", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=clean_env(**env),
        timeout=60,
    )


# ---- loading ---------------------------------------------------------------------------------


def test_json_templates_load_from_the_working_and_data_directories(
    workdir: Path, tmp_path: Path, make_runtime: Callable[..., Runtime]
) -> None:
    write(workdir / "prompt_templates.json", json.dumps([{"id": "here", "prompt": "H {{x}}"}]))
    data = tmp_path / "data"
    data.mkdir()
    write(data / "prompt_templates.json", json.dumps([{"id": "there", "prompt": "T {{y}}"}]))
    runtime = make_runtime(data_dir=data)
    assert runtime.templates.render("here", {"x": "1"}).prompt == "H 1"
    assert runtime.templates.render("there", {"y": "2"}).prompt == "T 2"
    assert "friendly" in runtime.templates  # the shipped ones are still there
    assert runtime.notices == ()  # nothing overridden, nothing to say


def test_toml_wins_over_json_in_the_same_directory_with_a_notice(
    workdir: Path, make_runtime: Callable[..., Runtime]
) -> None:
    json_file = write(
        workdir / "prompt_templates.json",
        json.dumps(
            [{"id": "mine", "prompt": "json {{a}}"}, {"id": "only_json", "prompt": "j {{a}}"}],
            indent=2,
        ),
    )
    toml_file = write(workdir / "prompt_templates.toml", '[mine]\nprompt = "toml {{a}}"\n')
    runtime = make_runtime()
    assert runtime.templates.render("mine", {"a": "x"}).prompt == "toml x"
    assert runtime.templates.render("only_json", {"a": "x"}).prompt == "j x"
    [notice] = runtime.notices
    assert "'mine'" in notice.text and "only_json" not in notice.text
    assert f"both {json_file} and {toml_file}; using {toml_file}" in notice.text
    assert "TOML file wins" in notice.text


def test_seed_file_in_the_working_directory_announces_only_real_changes(
    workdir: Path, seed_file: Path, make_runtime: Callable[..., Runtime]
) -> None:
    shutil.copyfile(seed_file, workdir / "prompt_templates.json")
    runtime = make_runtime()
    # The original's summarize has no default sentence count; the others read the same.
    [notice] = runtime.notices
    assert notice.level == "warning"
    assert "'summarize'" in notice.text and "friendly" not in notice.text
    assert str(workdir / "prompt_templates.json") in notice.text
    assert runtime.templates["summarize"].defaults == {}


def test_broken_json_stops_start_up_with_file_line_and_column(
    workdir: Path, tmp_path: Path
) -> None:
    broken = write(
        workdir / "prompt_templates.json", '[\n  {"id": "x",\n   "prompt": "a" "b"}\n]\n'
    )
    done = run(
        ["ask", "--template", "friendly", "--var", "audience=a", "--var", "topic=b"],
        workdir,
        GROQ_API_KEY=GROQ_KEY,
        GROQ_BASE_URL=FakeUpstream.refused_url(),
        LLMROUTER_DATA_DIR=str(tmp_path / "data"),
    )
    assert done.returncode == 2
    assert f"{broken}, line 3: invalid JSON" in done.stderr
    assert "(column 18)" in done.stderr
    assert "Traceback" not in done.stderr


# ---- templates import ------------------------------------------------------------------------


def test_import_the_seed_file_round_trips(seed_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "converted.toml"
    done = run(["templates", "import", str(seed_file), "-o", str(out)], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "wrote 5 template(s)" in done.stderr
    assert comparable(load_templates_file(out)) == comparable(load_templates_file(seed_file))
    # The TOML also loads as a user file, replacing the built-ins by the same ids.
    loaded = load_templates([out])
    assert loaded["summarize"].defaults == {} and loaded["friendly"].source == str(out)


def test_import_refuses_to_overwrite_without_force(seed_file: Path, tmp_path: Path) -> None:
    default_out = seed_file.with_suffix(".toml")
    first = run(["templates", "import", str(seed_file)], tmp_path)
    assert first.returncode == 0, first.stderr
    assert default_out.is_file()
    default_out.write_text("# my edits\n", encoding="utf-8")

    again = run(["templates", "import", str(seed_file)], tmp_path)
    assert again.returncode == 2
    assert f"{default_out} already exists; pass --force" in again.stderr
    assert default_out.read_text(encoding="utf-8") == "# my edits\n"

    forced = run(["templates", "import", str(seed_file), "--force"], tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert len(load_templates_file(default_out)) == 5


def test_import_of_broken_json_names_the_position(tmp_path: Path) -> None:
    bad = write(tmp_path / "old.json", '[\n  {"id": "x", "prompt": "a",}\n]\n')
    done = run(["templates", "import", str(bad)], tmp_path)
    assert done.returncode == 2
    assert f"{bad}, line 2: invalid JSON" in done.stderr and "column" in done.stderr
    assert not (tmp_path / "old.toml").exists()


TRICKY = [
    {
        "id": "odd.id-1",
        "title": 'Quotes " and \\ backslashes',
        "category": "tests",
        "tags": ["a\tb", 'q"', "ünï"],
        "description": "line one\nline two",
        "system": 'Trailing quote"',
        "prompt": '"""{{x}}"""\r\n\\n is not a newline\u0000\u007f\u2028 {{ y }}\n',
        "defaults": {"y": "why\n"},
    },
    {"id": "minimal", "prompt": "just {{x}}"},
]


def test_tricky_text_survives_the_conversion(tmp_path: Path) -> None:
    source = write(tmp_path / "tricky.json", json.dumps(TRICKY))
    original = load_templates_file(source)
    out = write(tmp_path / "tricky.toml", dump_templates(original.values()))
    assert comparable(load_templates_file(out)) == comparable(original)


def test_text_toml_cannot_hold_is_refused(tmp_path: Path) -> None:
    source = write(tmp_path / "bad.json", json.dumps([{"id": "s", "prompt": "x \ud800"}]))
    with pytest.raises(NotRepresentable):
        dump_templates(load_templates_file(source).values())
    done = run(["templates", "import", str(source)], tmp_path)
    assert done.returncode == 2 and "cannot store" in done.stderr


# No braces: a stray `{{` is (rightly) a template error, so it is not what is tested here.
_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="{}"), min_size=1
).filter(lambda s: s.strip())


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prompt=_TEXT, system=st.none() | _TEXT, title=_TEXT, tags=st.lists(_TEXT, max_size=3))
def test_any_text_round_trips(
    tmp_path_factory: pytest.TempPathFactory,
    prompt: str,
    system: str | None,
    title: str,
    tags: list[str],
) -> None:
    template = Template(
        id="t",
        title=title,
        category="c",
        tags=tuple(tags),
        prompt=prompt + " {{v}}",
        system=system,
        defaults={"v": prompt},
    )
    path = tmp_path_factory.getbasetemp() / "round-trip.toml"
    path.write_text(dump_templates([template]), encoding="utf-8", newline="\n")
    [back] = load_templates_file(path).values()
    assert replace(back, source="") == template


def test_import_help_is_reachable() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "llmrouter_tui", "templates", "import", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=30,
    )
    assert done.returncode == 0 and "--force" in done.stdout
