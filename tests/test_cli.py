"""The `qa` command: build, ask (text and JSON), info, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT


def qa(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "qa.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        timeout=300,
    )


def test_ask_json_has_the_answer_shape(article_index):
    out = qa("ask", "Who did Díaz-Canel meet in St. Petersburg?", "--index", str(article_index), "--json", "-k", "3")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["answered"] is True
    assert "Alexander Beglov" in data["text"]
    assert data["citations"][0]["quote"] == data["text"]
    assert data["citations"][0]["source"] == "Diaz Canel Russia Visit"
    assert len(data["passages"]) == 3
    assert {"id", "kind", "text", "title", "score", "rank", "start", "end"} <= set(data["passages"][0])


def test_ask_prints_the_quote_and_its_citation(article_index):
    out = qa("ask", "Which governor did Díaz-Canel meet in St. Petersburg?", "--index", str(article_index))
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.splitlines()[:2]
    assert "Alexander Beglov" in first
    assert "Diaz Canel Russia Visit, paragraph" in second and "confidence" in second


@pytest.mark.parametrize(
    "args, message",
    [
        (["ask", "   "], "error: question is empty"),
        (["ask", "Who?", "-k", "0"], "error: k must be an integer >= 1, got 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(article_index, args, message):
    out = qa(*args, "--index", str(article_index))
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [out.stderr.strip()]
    assert out.stderr.startswith(message)
    assert "Traceback" not in out.stderr


def test_missing_index_says_how_to_build_one(tmp_path):
    out = qa("ask", "Who?", "--index", str(tmp_path / "none"))
    assert out.returncode == 2
    assert "no index in" in out.stderr and "qa build" in out.stderr


def test_build_then_info_then_if_stale(tmp_path, corpus):
    index = tmp_path / "index"
    out = qa("build", str(corpus), "--index", str(index), "-q")
    assert out.returncode == 0, out.stderr
    assert "indexed 19 passages (15 paragraphs, 4 FAQ pairs) from 1 files" in out.stdout
    info = json.loads(qa("info", "--index", str(index), "--json").stdout)
    assert info["fresh"] is True and info["passages"] == 19 and info["model"] == "all-MiniLM-L6-v2"
    again = qa("build", str(corpus), "--index", str(index), "--if-stale")
    assert "up to date" in again.stdout
    (corpus / "new.md").write_text("# New\n\nThe harbour opens at dawn.\n", encoding="utf-8")
    assert json.loads(qa("info", "--index", str(index), "--json").stdout)["fresh"] is False
    rebuilt = qa("build", str(corpus), "--index", str(index), "--if-stale", "-q")
    assert "indexed 20 passages" in rebuilt.stdout
    assert "files: 1 added, 0 changed, 0 removed, 1 unchanged; updated the index (kept 19 of 20 passages" in rebuilt.stdout


def test_build_of_a_malformed_file_names_it_and_keeps_nothing_half_done(tmp_path):
    (tmp_path / "faq.csv").write_text("question,answer\nWhat?\n", encoding="utf-8")
    out = qa("build", str(tmp_path / "faq.csv"), "--index", str(tmp_path / "index"), "-q")
    assert out.returncode == 2
    assert "faq.csv:2: expected 2 fields, got 1" in out.stderr
    assert not (tmp_path / "index" / "manifest.json").exists()


@pytest.mark.slow
def test_unknown_model_is_a_one_line_error(tmp_path, corpus):
    out = qa("build", str(corpus), "--index", str(tmp_path / "i"), "--model", str(tmp_path / "no-such-model"), "-q")
    assert out.returncode == 2
    assert "cannot load embedding model" in out.stderr and "Traceback" not in out.stderr
