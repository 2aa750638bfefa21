"""A folder mixing every format: build summary with skipped files, page citations, `qa show`, and `qa check`."""

from __future__ import annotations

import json
import re

import pytest

from qa import Bot

from .formats import write_all, write_image_only_pdf
from .conftest import FIXTURES
from .test_cli import qa

CHECKS = FIXTURES / "checks"


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    folder = write_all(tmp_path_factory.mktemp("mixed") / "data")
    write_image_only_pdf(folder / "scan.pdf")
    (folder / "image.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00IHDR")
    return folder


@pytest.fixture(scope="module")
def mixed_index(mixed, tmp_path_factory):
    index = tmp_path_factory.mktemp("mixed-index")
    out = qa("build", str(mixed), "--index", str(index), "-q")
    assert out.returncode == 0, out.stderr
    return index, out


def test_build_counts_and_names_skipped_files(mixed_index):
    _, out = mixed_index
    assert "indexed 6 files; skipped 2: image.md:3: not a text file (it holds NUL bytes); scan.pdf: no text in 1 page(s)" in out.stdout


def test_pdf_answer_cites_its_page_and_the_quote_is_the_stored_text(mixed_index, embedder):
    index, _ = mixed_index
    bot = Bot(index, embedder=embedder)
    answer = bot.ask("How do I reset the boiler?")
    assert answer.answered
    c = answer.citations[0]
    assert (c.path.endswith("manual.pdf"), c.page) == (True, 2)
    passage = next(p for p in bot.passages if p.id == c.passage_id)
    assert passage.text[c.start - passage.start : c.end - passage.start] == c.quote
    assert "reset button" in c.quote
    data = json.loads(qa("ask", "How do I reset the boiler?", "--index", str(index), "--json").stdout)
    assert data["citations"][0]["page"] == 2
    shown = qa("show", c.passage_id, "--index", str(index), "--span", f"{c.start}-{c.end}")
    assert shown.returncode == 0, shown.stderr
    assert f"»{c.quote}«" in shown.stdout and "page 2" in shown.stdout


@pytest.mark.parametrize(
    "question, source, kind",
    [
        ("Can I fly business class?", "travel.docx", "faq"),
        ("Is gift wrapping free?", "help.html", "faq"),
        ("Where are the logs?", "guide.rst", "faq"),
        ("When does the office open on weekdays?", "notes.md", "paragraph"),
    ],
)
def test_every_format_answers_with_an_exact_citation(mixed_index, embedder, question, source, kind):
    index, _ = mixed_index
    bot = Bot(index, embedder=embedder)
    answer = bot.ask(question)
    c = answer.citations[0]
    assert answer.answered and c.path.endswith(source) and c.kind == kind
    passage = next(p for p in bot.passages if p.id == c.passage_id)
    assert passage.text[c.start - passage.start : c.end - passage.start] == c.quote == answer.text


def test_qa_check_reports_each_problem_as_file_line_message():
    out = qa("check", str(CHECKS))
    assert out.returncode == 1, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert all(re.match(r"\S+:\d+: (error|warning): ", l) for l in lines[:-1]), lines
    assert any(re.search(r"more-faq\.jsonl:1: error: FAQ question 'How do I reset my password\?' has a different answer at \S+faq\.csv:2", l) for l in lines)
    assert any(re.search(r"more-faq\.jsonl:2: warning: .*nearly repeats 'How do I reset my password\?' at \S+faq\.csv:2", l) for l in lines)
    data = json.loads(qa("check", str(CHECKS), "--json").stdout)
    codes = {p["code"]: p for p in data["problems"]}
    assert set(codes) == {"conflict", "near-duplicate", "empty-answer", "link-only", "too-short", "too-long", "no-passage"}
    assert codes["link-only"]["path"].endswith("faq.csv") and codes["link-only"]["line"] == 3
    assert codes["empty-answer"]["path"].endswith("notes.md") and codes["empty-answer"]["line"] == 7
    assert codes["no-passage"]["path"].endswith("empty.md")
    assert codes["too-long"]["path"].endswith("long.txt")
    assert codes["too-short"]["path"].endswith("notes.md") and codes["too-short"]["line"] == 3
    assert qa("check", str(CHECKS), "--allow-conflicts").returncode == 0


def test_build_refuses_conflicting_answers_unless_allowed(tmp_path):
    out = qa("build", str(CHECKS), "--index", str(tmp_path / "index"), "-q")
    assert out.returncode == 2
    assert re.search(r"error: \S+more-faq\.jsonl:1: FAQ question .* different answer .*--allow-conflicts", out.stderr)
    assert not (tmp_path / "index" / "manifest.json").exists()
    allowed = qa("build", str(CHECKS), "--index", str(tmp_path / "index"), "-q", "--allow-conflicts")
    assert allowed.returncode == 0, allowed.stderr
    assert "warning(s) from the ingest checks" in allowed.stdout
