"""Model catalog resolution and llmrouter.toml loading."""

from __future__ import annotations

import datetime as dt
import os
import textwrap

import pytest

from llmrouter_tui.core.catalog import Catalog
from llmrouter_tui.core.config import Secret, load_settings
from llmrouter_tui.core.errors import ConfigError, UnknownModelError

TODAY = dt.date(2026, 11, 27)


def catalog(**kw):
    return Catalog(today=TODAY, **kw)


@pytest.mark.parametrize(
    ("retired", "replacement"),
    [
        ("llama-3.1-8b-instant", "openai/gpt-oss-20b"),
        ("llama-3.3-70b-versatile", "openai/gpt-oss-120b"),
        ("gemini-2.0-flash", "gemini-3.5-flash"),
        ("gemini-2.5-flash-lite-preview-06-17", "gemini-2.5-flash-lite"),
        ("moonshotai/kimi-k2-instruct", "openai/gpt-oss-120b"),
        ("mistral-saba-24b", "qwen/qwen3.6-27b"),
    ],
)
def test_retired_models_are_served_by_their_replacement(retired, replacement):
    resolution = catalog().resolve(retired)
    assert resolution.model == replacement
    assert resolution.requested == retired
    assert "retired" in resolution.notice and replacement in resolution.notice


def test_deprecated_models_still_serve_until_shutdown_then_retire():
    before = catalog().resolve("gemini-2.5-flash")
    assert before.model == "gemini-2.5-flash"
    assert "deprecated" in before.notice and "2026-12-01" in before.notice
    after = Catalog(today=dt.date(2026, 12, 1)).resolve("gemini-2.5-flash")
    assert after.model == "gemini-3.5-flash-lite"


def test_unknown_model_lists_known_ones():
    with pytest.raises(UnknownModelError) as info:
        catalog().resolve("gpt-9")
    assert "openai/gpt-oss-20b" in str(info.value)
    assert "PROVIDER:MODEL" in str(info.value)
    assert "llama-3.1-8b-instant" not in str(info.value)  # retired ones are not offered


def test_provider_prefix_reaches_uncatalogued_models():
    resolution = catalog().resolve("groq:some-new-model")
    assert (resolution.provider, resolution.api_model) == ("groq", "some-new-model")
    with pytest.raises(UnknownModelError, match="unknown provider 'nope'"):
        catalog().resolve("nope:x")


def test_candidates_cross_providers_and_skip_classifiers():
    chain = [c.model for c in catalog().candidates("openai/gpt-oss-20b")]
    assert chain == ["openai/gpt-oss-20b", "openai/gpt-oss-120b", "gemini-3.5-flash"]
    assert catalog().candidates("llama-3.1-8b-instant")[0].model == "openai/gpt-oss-20b"


def test_config_overrides_extend_catalog():
    cat = Catalog(
        {"llama3.2": {"provider": "ollama", "fallbacks": ["openai/gpt-oss-20b"]}},
        {"groq": 1, "gemini": 1, "ollama": 1},
        today=TODAY,
    )
    assert [c.key for c in cat.candidates("llama3.2")] == [
        "ollama:llama3.2",
        "groq:openai/gpt-oss-20b",
    ]


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in (
        "GROQ_API_KEY",
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "GROQ_BASE_URL",
        "GEMINI_BASE_URL",
        "GOOGLE_GEMINI_BASE_URL",
        "LLMROUTER_CONFIG",
        "LLMROUTER_DATA_DIR",
        "OLLAMA_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path, text):
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_issue_example_config_loads(clean_env, monkeypatch):
    monkeypatch.setenv("OLLAMA_API_KEY", "ollama-secret")
    cfg = write(
        clean_env / "llmrouter.toml",
        """
        default_model = "openai/gpt-oss-20b"
        [routing]
        max_retries = 2
        backoff_initial_s = 0.5
        backoff_max_s = 8.0
        retry_after_max_s = 30
        connect_timeout_s = 5
        first_token_timeout_s = 20
        stream_idle_timeout_s = 30
        attempt_timeout_s = 60
        total_timeout_s = 120
        cooldown_failures = 3
        cooldown_s = 30
        fallback_on_content_filter = false
        [cache]
        enabled = true
        ttl_s = 0
        [providers.ollama]
        kind = "openai"
        base_url = "http://127.0.0.1:11434/v1"
        api_key_env = "OLLAMA_API_KEY"
        [models."llama3.2"]
        provider = "ollama"
        context_window = 131072
        fallbacks = ["openai/gpt-oss-20b"]
        """,
    )
    # Named explicitly: from ./llmrouter.toml alone the key would be refused (test_workdir_trust).
    settings = load_settings(config=cfg, data_dir=clean_env / "data", load_dotenv_file=False)
    assert settings.config_path == cfg
    assert settings.routing.total_timeout_s == 120.0
    ollama = settings.providers["ollama"]
    assert ollama.api_key == Secret("ollama-secret")
    assert "ollama-secret" not in repr(settings)


def test_config_lookup_order(clean_env, monkeypatch):
    data = clean_env / "data"
    data.mkdir()
    write(data / "llmrouter.toml", 'default_model = "from-data-dir"\n')
    assert load_settings(data_dir=data, load_dotenv_file=False).default_model == "from-data-dir"
    write(clean_env / "llmrouter.toml", 'default_model = "from-cwd"\n')
    assert load_settings(data_dir=data, load_dotenv_file=False).default_model == "from-cwd"
    env_cfg = write(clean_env / "env.toml", 'default_model = "from-env"\n')
    monkeypatch.setenv("LLMROUTER_CONFIG", str(env_cfg))
    assert load_settings(data_dir=data, load_dotenv_file=False).default_model == "from-env"
    cli_cfg = write(clean_env / "cli.toml", 'default_model = "from-cli"\n')
    settings = load_settings(config=cli_cfg, data_dir=data, load_dotenv_file=False)
    assert settings.default_model == "from-cli"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[routing]\nmax_retries = = 2\n", "line 2"),
        ("[routing]\nmax_retrys = 2\n", "unknown setting 'max_retrys'"),
        ("[routing]\n\ncooldown_s = 'long'\n", "line 3"),
        ("[providers.x]\nkind = 'nope'\n", "kind must be one of"),
        ('[models."m"]\nprovider = "ghost"\n', "provider 'ghost' is not configured"),
    ],
)
def test_broken_config_names_file_line_and_problem(clean_env, text, needle):
    cfg = write(clean_env / "bad.toml", text)
    with pytest.raises(ConfigError) as info:
        load_settings(config=cfg, data_dir=clean_env, load_dotenv_file=False)
    assert str(cfg) in str(info.value)
    assert needle in str(info.value)


def test_missing_explicit_config_is_an_error(clean_env):
    with pytest.raises(ConfigError, match="not found"):
        load_settings(config=clean_env / "nope.toml", load_dotenv_file=False)


def test_dotenv_never_overrides_environment(clean_env, monkeypatch):
    write(clean_env / ".env", "GROQ_API_KEY=from-dotenv\nGEMINI_API_KEY=gem-from-dotenv\n")
    monkeypatch.setenv("GROQ_API_KEY", "from-env")
    settings = load_settings(data_dir=clean_env)
    assert settings.providers["groq"].api_key == Secret("from-env")
    assert settings.providers["gemini"].api_key == Secret("gem-from-dotenv")
    assert settings.env_file == clean_env / ".env"
    assert "GEMINI_API_KEY" not in os.environ  # .env is read, never loaded into the process


def test_gemini_base_url_aliases(clean_env, monkeypatch):
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", "http://127.0.0.1:9")
    assert (
        load_settings(data_dir=clean_env, load_dotenv_file=False).providers["gemini"].base_url
        == "http://127.0.0.1:9"
    )
