"""llmrouter.toml's schema is declared once (core/config.py, core/config_schema.py).

The same declarations check files (errors name the file and the line of the key), refuse
unknown keys with the valid ones and a "did you mean", feed `llmrouter-tui config --json`, and
generate README's configuration reference.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import fields
from pathlib import Path

import pytest

from llmrouter_tui.config_cmd import collect
from llmrouter_tui.core.catalog import Catalog
from llmrouter_tui.core.config import (
    SECTIONS,
    AutoSettings,
    BudgetSettings,
    CacheSettings,
    RoutingSettings,
    ServerSettings,
    Settings,
    load_settings,
)
from llmrouter_tui.core.config_schema import SCHEMA, reference
from llmrouter_tui.core.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("LLMROUTER_CONFIG", "LLMROUTER_DATA_DIR", "GROQ_API_KEY", "OLLAMA_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def load(home: Path, text: str) -> Settings:
    config = home / "mine.toml"
    config.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_settings(config=config, data_dir=home / "data", load_dotenv_file=False)


def refused(home: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(home, text)
    assert caught.value.path == str(home / "mine.toml")
    assert "Traceback" not in str(caught.value)
    return caught.value


# ---- one declaration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls", [RoutingSettings, CacheSettings, ServerSettings, AutoSettings, BudgetSettings]
)
def test_every_field_of_a_section_is_declared_with_its_default(cls: type) -> None:
    section = next(
        s for s in SECTIONS if s.name and s.keys and cls.__name__.lower().startswith(s.name)
    )
    assert list(section.keys) == [f.name for f in fields(cls)]
    instance = cls()
    for item in fields(cls):
        key = item.metadata[SCHEMA]
        assert key.doc and len(key.doc) < 100, item.name
        assert getattr(instance, item.name) == key.default, item.name


def test_the_readme_reference_is_generated_from_the_schema() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(
        r"<!-- config reference: generated -->\n(.*?)<!-- end of config reference -->",
        readme,
        re.S,
    )
    assert match, "README.md lost its config reference markers"
    assert match.group(1) == reference(SECTIONS), (
        "README's configuration reference differs from the schema; paste the output of "
        "`python -c 'from llmrouter_tui.core.config import SECTIONS; from "
        'llmrouter_tui.core.config_schema import reference; print(reference(SECTIONS), end="")\'`'
    )


def test_the_readme_example_loads_and_gives_the_defaults(home: Path) -> None:
    example = reference(SECTIONS).split("```toml\n")[1].split("```")[0]
    settings = load(home, example)
    defaults = Settings()
    for name in ("default_model", "routing", "cache", "server", "auto", "budget"):
        assert getattr(settings, name) == getattr(defaults, name), name
    assert settings.providers["ollama"].base_url == "http://127.0.0.1:11434/v1"
    assert settings.models["llama3.2"]["fallbacks"] == ("openai/gpt-oss-20b",)
    assert "price_in" not in settings.models["llama3.2"]  # shown commented out


def test_config_json_describes_every_declared_setting(home: Path) -> None:
    info = collect(load(home, "[routing]\nmax_retries = 4\n"))
    rows = {row["name"]: row for row in info["settings"]}
    for section in SECTIONS:
        for name, key in section.keys.items():
            if section.named:
                name = f"providers.groq.{name}" if section.name == "providers" else None
                if name is None:
                    continue
            elif section.name:
                name = f"{section.name}.{name}"
            assert rows[name]["description"] == key.doc, name
            assert rows[name]["accepts"] == key.describe(), name
    assert rows["routing.max_retries"]["value"] == 4
    assert rows["auto.weights"]["value"] == dict(AutoSettings().weights)


# ---- unknown keys ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        # A comment that mentions the key comes first: the error points at the key itself.
        (
            "# max_retrys was renamed\n[routing]\nmax_retrys = 2\n",
            3,
            ["in [routing]", "did you mean 'max_retries'?", "valid keys: max_retries, "],
        ),
        ('defualt_model = "x"\n', 1, ["at the top level", "did you mean 'default_model'?"]),
        (
            '[providers.ollama]\nkind = "openai"\n\nbase_ur = "http://127.0.0.1:1/v1"\n',
            4,
            ["in [providers.ollama]", "did you mean 'base_url'?", "kind, base_url, api_key_env"],
        ),
        (
            '[models."m"]\nprovider = "groq"\nfallback = ["x"]\n',
            3,
            ['in [models."m"]', "did you mean 'fallbacks'?"],
        ),
        (
            "[auto]\nexplore = 0.2\nweights = { qualty = 1 }\n",
            3,
            ["weights has an unknown weight 'qualty'", "did you mean 'quality'?"],
        ),
        ("[budget]\nzzz = 1\n", 2, ["valid keys: daily_usd, monthly_usd"]),
    ],
)
def test_unknown_keys_name_the_line_the_valid_keys_and_the_likely_one(
    home: Path, text: str, line: int, words: list[str]
) -> None:
    error = refused(home, text)
    assert error.line == line, str(error)
    for word in words:
        assert word in str(error)
    assert "Fix or remove it" in str(error) or "weight" in str(error)


def test_an_unlike_key_gets_no_guess(home: Path) -> None:
    error = refused(home, "[cache]\nxyzzy = 1\n")
    assert "did you mean" not in str(error)
    assert "valid keys: enabled, ttl_s" in str(error)


# ---- types and bounds --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[routing]\nmax_retries = -1\n", "[routing] max_retries must be an integer ≥ 0, got -1"),
        ("[routing]\nmax_retries = 1.5\n", "must be an integer ≥ 0"),
        ("[routing]\nmax_retries = true\n", "must be an integer ≥ 0, got True"),
        ("[routing]\ncooldown_s = inf\n", "[routing] cooldown_s must be a number ≥ 0, got inf"),
        ("[routing]\ncooldown_s = nan\n", "must be a number ≥ 0"),
        (f"[routing]\ncooldown_s = {'9' * 400}\n", "must be a number ≥ 0"),
        ("[cache]\nenabled = 1\n", "[cache] enabled must be true or false, got 1"),
        ("[auto]\nexplore = 1.5\n", "[auto] explore must be a number from 0 to 1"),
        ("[auto]\nwindow_days = 0\n", "[auto] window_days must be an integer ≥ 1"),
        ("[auto]\nweights = { speed = -1 }\n", "[auto] weights.speed must be a number ≥ 0"),
        (
            "[auto]\nweights = { quality = 0, reliability = 0, speed = 0, cost = 0 }\n",
            "[auto] weights must not all be 0",
        ),
        ("[auto]\ncandidates = ['a', '']\n", "[auto] candidates must be a list of non-empty"),
        ("[server]\nallow_hosts = 'a'\n", "must be a list of non-empty strings"),
        ("default_model = '  '\n", "default_model must be a non-empty string"),
        ("[providers.x]\nkind = 'nope'\n", "kind must be one of 'groq', 'gemini', 'openai'"),
        ("[providers.x]\nkind = 'openai'\nbase_url = 'ftp://h'\n", "must be an http(s) URL"),
        ("[providers.x]\nkind = 'openai'\nbase_url = 'http://'\n", "must be an http(s) URL"),
        ("# no kind: the table's header is the line\n[providers.x]\n", "needs a kind"),
        ('[models."m"]\nprovider = "groq"\ncontext_window = 0\n', "an integer ≥ 1"),
        ('[models."m"]\nprovider = "groq"\nstatus = "gone"\n', "status must be one of"),
        ('[models."m"]\nprovider = "groq"\nshutdown = "soon"\n', "must be a date (YYYY-MM-DD)"),
        ('[models."m"]\nprovider = "groq"\nprice_out = -0.5\n', "price_out must be a number ≥ 0"),
    ],
)
def test_bad_values_name_the_key_its_line_and_what_it_accepts(
    home: Path, text: str, words: str
) -> None:
    error = refused(home, text)
    assert words in str(error)
    assert error.line == text.count("\n"), str(error)  # each case's last line is the bad one


def test_dates_and_numbers_are_converted(home: Path) -> None:
    settings = load(
        home,
        """
        [routing]
        cooldown_s = 7
        [models."m"]
        provider = "groq"
        status = "deprecated"
        shutdown = 2026-12-01
        replacement = "openai/gpt-oss-20b"
        """,
    )
    assert settings.routing.cooldown_s == 7.0 and isinstance(settings.routing.cooldown_s, float)
    assert settings.models["m"]["shutdown"] == "2026-12-01"
    # The catalog serves the model until that day and its replacement from then on.
    import datetime as dt

    before = Catalog(settings.models, today=dt.date(2026, 11, 30)).resolve("m")
    after = Catalog(settings.models, today=dt.date(2026, 12, 1)).resolve("m")
    assert (before.model, after.model) == ("m", "openai/gpt-oss-20b")
