"""One list of settings: every environment variable the code reads is in it, and the README's table is made from it."""

from __future__ import annotations

import re

import pytest

from qa import settings

from .conftest import ROOT


def test_readme_holds_the_settings_table_made_from_the_list():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert settings.markdown_table() in readme


def test_every_variable_the_code_reads_is_listed():
    sources = [*sorted((ROOT / "qa").glob("*.py")), ROOT / "ui.py"]
    named = {m for path in sources for m in re.findall(r"\bQA_[A-Z_]+\b", path.read_text(encoding="utf-8"))}
    assert named <= set(settings.ENV_NAMES), named - set(settings.ENV_NAMES)


def test_the_argument_wins_over_the_environment_which_wins_over_the_default(monkeypatch, tmp_path):
    assert settings.index_dir() == settings.Path("index")
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path))
    assert settings.index_dir() == tmp_path
    assert settings.index_dir("elsewhere") == settings.Path("elsewhere")
    monkeypatch.setenv("QA_PORT", "8123")
    assert settings.port() == 8123 and settings.port(9000) == 9000


@pytest.mark.parametrize(
    "env, value, message",
    [
        ("QA_PORT", "70000", "port must be at most 65535, got 70000"),
        ("QA_PORT", "http", "QA_PORT must be a whole number of port, got 'http'"),
        ("QA_THRESHOLD", "high", "QA_THRESHOLD must be a number, got 'high'"),
        ("QA_THRESHOLD", "1.5", r"threshold must be in \[0, 1\], got 1.5"),
        ("QA_BACKEND", "tensorflow", "embedding backend must be one of auto, torch, onnx, got 'tensorflow'"),
        ("QA_MAX_DOC_BYTES", "0", "the maximum document size must be a whole number of bytes >= 1, got 0"),
        ("QA_READER_PRECISION", "fp16", "reader precision must be fp32 or int8, got 'fp16'"),
    ],
)
def test_a_bad_variable_is_named_in_the_error(monkeypatch, env, value, message):
    monkeypatch.setenv(env, value)
    resolver = {"QA_PORT": settings.port, "QA_THRESHOLD": settings.threshold, "QA_BACKEND": settings.backend,
                "QA_MAX_DOC_BYTES": settings.max_doc_bytes, "QA_READER_PRECISION": settings.reader_precision}[env]
    with pytest.raises(ValueError, match=message):
        resolver()


def test_tests_start_without_package_variables():
    """The autouse fixture in conftest clears them, so a developer's exported QA_BACKEND cannot leak in."""
    import os

    assert not [name for name in settings.ENV_NAMES if name in os.environ]
