"""The README's Python examples, run as doctests in a folder laid out as the README describes."""

from __future__ import annotations

import doctest
import re
import shutil

import pytest

import qa

from .conftest import DATA, FIXTURES, ROOT

BLOCK = re.compile(r"```python\n(.*?)```", re.S)
README_SERVER = "http://127.0.0.1:7860/"


def python_blocks() -> list[str]:
    return BLOCK.findall((ROOT / "README.md").read_text(encoding="utf-8"))


def test_every_python_example_in_the_readme_is_a_doctest():
    blocks = python_blocks()
    assert blocks
    for block in blocks:
        code = [line for line in block.splitlines() if line.strip() and not line.startswith(("... ", ">>> "))]
        examples = doctest.DocTestParser().get_examples(block)
        assert examples and all(line in "\n".join(e.want for e in examples) for line in code), block


def test_the_readme_examples_run_and_show_what_they_say(tmp_path, monkeypatch, article_index, chat_url):
    """Placeholders become real paths: the README's index, YOUR-ARTICLES-FOLDER, YOUR-FAQ.csv, the web chat."""
    shutil.copytree(article_index, tmp_path / "index")
    shutil.copytree(DATA, tmp_path / "YOUR-ARTICLES-FOLDER")
    shutil.copy(FIXTURES / "readme_faq.csv", tmp_path / "YOUR-FAQ.csv")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QA_INDEX_DIR", raising=False)
    monkeypatch.setattr(qa, "_default_bot", None)
    parser = doctest.DocTestParser()
    for number, block in enumerate(python_blocks(), 1):
        test = parser.get_doctest(block.replace(README_SERVER, chat_url), {}, f"README.md python block {number}", "README.md", 0)
        assert test.examples, f"python block {number} holds no >>> examples"
        report: list[str] = []
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        runner.run(test, out=report.append)
        assert runner.failures == 0, "".join(report)
    assert (tmp_path / "YOUR-NEW-INDEX" / "manifest.json").exists()
