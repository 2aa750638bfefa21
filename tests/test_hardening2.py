"""Hardening 2 (issue 21): each test failed on the code before it (main f887792).

Items 1, 2, 4, 5 and 9 (readers and builds), and the counting slip of item 10 in `qa check`.
The review loop, roles and server memory live in tests/test_hardening2_web.py.
"""

from __future__ import annotations

import io
import json
import random
import time
import zipfile
from pathlib import Path

import pytest

from qa import Bot
from qa.cli import main as cli_main
from qa.documents import load_document
from qa.errors import DocumentError
from qa.indexing import build_index, collect_documents
from qa.readers import supported_suffixes
from qa.readers.base import MAX_PASSAGE_CHARS, Document
from qa.readers.html import parse_html

from .formats import HTML, RST, write_docx, write_pdf

# ---------------------------------------------------------------------------------------------- item 1

JSONLD_ONLY = """<html><head><title>Shop</title><script type="application/ld+json">{}</script></head>
<body><h1>Shop help</h1><p>Our shop sells garden tools and seeds all year round.</p></body></html>"""


def _faq_jsonld(pairs) -> str:
    return json.dumps({"@context": "https://schema.org", "@type": "FAQPage", "mainEntity": [
        {"@type": "Question", "name": q, "acceptedAnswer": {"@type": "Answer", "text": a}} for q, a in pairs]})


def test_1_a_page_whose_json_ld_holds_questions_it_does_not_show_is_read():
    """It raised IndexError (the list of visible blocks was computed before the loop appended to it)."""
    page = JSONLD_ONLY.format(_faq_jsonld([("Do you ship abroad?", "Yes, to forty countries."),
                                           ("Is there a warranty?", "Two years on every tool.")]))
    document = parse_html("faq.html", page.encode())
    assert [(p.question, p.text) for p in document.passages if p.kind == "faq"] == [
        ("Do you ship abroad?", "Yes, to forty countries."), ("Is there a warranty?", "Two years on every tool.")]


def test_1_a_reader_that_fails_skips_its_file_with_the_reason_not_the_build(tmp_path, monkeypatch):
    from qa.readers import reader_for

    (tmp_path / "good.md").write_text("# Hours\n\nThe office opens at eight on weekdays.\n", encoding="utf-8")
    (tmp_path / "bad.html").write_text("<p>anything</p>", encoding="utf-8")

    def broken(path, data):
        raise IndexError("list index out of range")

    monkeypatch.setattr(reader_for(".html"), "read", broken)
    documents, sources, skipped = collect_documents([tmp_path])
    assert [s.key for s in sources] == ["good.md"]
    assert [str(s) for s in skipped] == ["bad.html: cannot be parsed (IndexError: list index out of range)"]


# Hostile inputs for every reader: each must give a Document or a DocumentError (skipped, named), quickly.
_WORDS = b"word " * 100_000  # 500 KB, one line, no punctuation


def _samples(folder: Path) -> dict[str, bytes]:
    """A valid file of every suffix a reader reads."""
    write_pdf(folder / "s.pdf")
    write_docx(folder / "s.docx")
    faq = [{"question": "Who waters the plants?", "answer": "The receptionist, on Mondays."}]
    text = "# Office notes\n\nThe office opens at eight.\n\n## FAQ\n\nIs it open on Sunday?\nNo, it is closed.\n"
    samples = {
        ".pdf": (folder / "s.pdf").read_bytes(), ".docx": (folder / "s.docx").read_bytes(),
        ".html": HTML.encode(), ".htm": HTML.encode(), ".rst": RST.encode(), ".rest": RST.encode(),
        ".md": text.encode(), ".markdown": text.encode(), ".txt": text.encode(),
        ".csv": b"question,answer\nWho waters the plants?,\"The receptionist, on Mondays.\"\n",
        ".json": json.dumps(faq).encode(), ".jsonl": b"\n".join(json.dumps(r).encode() for r in faq) + b"\n",
    }
    assert set(samples) == supported_suffixes(), "a new reader needs a sample here"
    return samples


def _nested(suffix: str) -> bytes:
    deep = 5000
    return {
        ".html": b"<html><body>" + b"<div><font>" * deep + b"deep text" + b"</font></div>" * deep + b"</body></html>",
        ".htm": b"<p><font>x" * deep,
        ".md": b"> " * deep + b"quoted\n" + b"- " * deep + b"item\n",
        ".markdown": b"[" * deep + b"x" + b"](y)" * deep,
        ".rst": b"\n\n".join(b"  " * i + b"- item" for i in range(0, 600)),
        ".rest": b".. note::\n\n" + b"".join(b"   " * (i + 1) + b".. note::\n\n" for i in range(300)) + b"   " * 301 + b"deep\n",
        ".json": b'{"a":' * deep + b"1" + b"}" * deep,
        ".jsonl": b"[" * deep + b"]" * deep + b"\n",
        ".csv": b'question,answer\n"' + b'""' * 50_000 + b'",x\n',
        ".txt": b"(" * 100_000,
    }.get(suffix, b"PK\x03\x04" * 1000)


def _hostile(suffix: str, sample: bytes, rng: random.Random) -> dict[str, bytes]:
    flipped = bytearray(sample)
    for _ in range(max(1, len(flipped) // 50)):
        flipped[rng.randrange(len(flipped))] = rng.randrange(256)
    text = sample.decode("utf-8", errors="replace")
    huge = {
        ".csv": b"question,answer\nWhat is it?," + _WORDS + b"\n",
        ".json": json.dumps([{"question": "What is it?", "answer": _WORDS.decode()}]).encode(),
        ".jsonl": json.dumps({"question": "What is it?", "answer": _WORDS.decode()}).encode(),
        ".html": b"<p>" + _WORDS + b"</p>", ".htm": _WORDS,
    }.get(suffix, _WORDS)
    return {
        "empty": b"",
        "truncated-half": sample[: len(sample) // 2],
        "truncated-last-byte": sample[:-1],
        "repeated": sample * 200,
        "nested": _nested(suffix),
        "flipped-bytes": bytes(flipped),
        "utf-16": text.encode("utf-16"),
        "cp1252": (text + " café – naïve").encode("cp1252", errors="replace"),
        "random": rng.randbytes(20_000),
        "huge-single-line": huge,
    }


@pytest.mark.timeout(600)
def test_1_every_reader_survives_hostile_inputs_within_a_time_bound(tmp_path):
    rng = random.Random(21)
    folder = tmp_path / "samples"
    folder.mkdir()
    failures, slowest = [], (0.0, "")
    started = time.perf_counter()
    for suffix, sample in sorted(_samples(folder).items()):
        assert isinstance(load_document(_write(folder, "valid", suffix, sample)), Document)
        for name, data in _hostile(suffix, sample, rng).items():
            path = _write(folder, name, suffix, data)
            t0 = time.perf_counter()
            try:
                document = load_document(path)
                assert all(len(p.text) <= MAX_PASSAGE_CHARS for p in document.passages if p.kind == "paragraph")
            except DocumentError as exc:
                assert str(exc).startswith(str(path)), exc  # the reason names the file
            except Exception as exc:  # noqa: BLE001 - the point of the test
                failures.append(f"{path.name}: {type(exc).__name__}: {exc}"[:300])
            took = time.perf_counter() - t0
            slowest = max(slowest, (took, path.name))
    assert not failures, failures
    assert slowest[0] < 30, f"{slowest[1]} took {slowest[0]:.1f} s"
    assert time.perf_counter() - started < 300


def _write(folder: Path, name: str, suffix: str, data: bytes) -> Path:
    path = folder / f"{name}{suffix}"
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------------------------------------- item 2

def test_2_deep_html_is_read_completely():
    """300 paragraphs each opening an unclosed <font>: libxml2 stopped at depth 255 (127 passages, no warning)."""
    page = "<html><body>" + "".join(f"<p><font>Paragraph {i} tells of topic{i}." for i in range(300)) + "</body></html>"
    document = parse_html("old.html", page.encode())
    assert len(document.passages) == 300 and document.passages[-1].text == "Paragraph 299 tells of topic299."
    assert document.warnings == ()


def test_2_html_past_the_parsers_hard_limit_is_warned_with_its_line(tmp_path):
    page = "<html><body><p>Before the deep part.</p>\n" + "<div>" * 3000 + "lost" + "</div>" * 3000 + "</body></html>"
    document = parse_html("deeper.html", page.encode())
    assert [p.text for p in document.passages] == ["Before the deep part."]
    assert document.warnings == ((2, "the page is cut here (Excessive depth in document: 2048): "
                                     "the text after line 2 is not indexed"),)


# ---------------------------------------------------------------------------------------------- item 4

def _repeated_docx(path: Path, copies: int) -> Path:
    """A small .docx whose document.xml repeats one paragraph `copies` times (it compresses ~50:1)."""
    source = zipfile.ZipFile(io.BytesIO(write_docx(path.with_name("source.docx.tmp")).read_bytes()))
    xml = source.read("word/document.xml").decode()
    start = xml.index("<w:p>") if "<w:p>" in xml else xml.index("<w:p ")
    first = xml[start : xml.index("</w:p>", start) + len("</w:p>")]
    body = '<w:p><w:r><w:t>Our office is open from nine to five on weekdays.</w:t></w:r></w:p>' * copies
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "word/document.xml":
                data = xml.replace(first, first + body, 1).encode()
            target.writestr(info.filename, data)
    return path


def test_4_a_docx_of_one_repeated_paragraph_is_read_fast_with_a_warning(tmp_path):
    """A 43 KB .docx gave 26,886 identical passages in 86 s, without a warning."""
    path = _repeated_docx(tmp_path / "repeat.docx", 20_000)
    assert path.stat().st_size < 100_000
    t0 = time.perf_counter()
    document = load_document(path)
    assert time.perf_counter() - t0 < 10
    office = [p for p in document.passages if p.text.startswith("Our office")]
    assert len(office) == 3
    assert any("19,997 more copies of the paragraph" in message for _, message in document.warnings)


def test_4_a_docx_that_unpacks_past_the_size_limit_is_skipped_with_the_reason(tmp_path, monkeypatch):
    path = _repeated_docx(tmp_path / "bomb.docx", 20_000)
    monkeypatch.setenv("QA_MAX_DOC_BYTES", "500000")
    with pytest.raises(DocumentError, match=r"bomb\.docx: unpacks to [\d,]+ bytes, over the 500,000-byte limit"):
        load_document(path)


def test_4_text_past_the_character_limit_is_cut_with_a_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("QA_MAX_DOC_CHARS", "1000")
    path = tmp_path / "long.md"
    path.write_text("\n\n".join(f"Paragraph {i} is about subject number {i} and nothing else." for i in range(100)))
    document = load_document(path)
    assert max(p.end for p in document.passages) <= 1000 and len(document.passages) < 25
    line = next(line for line, message in document.warnings if "over 1,000 characters (QA_MAX_DOC_CHARS)" in message)
    assert line > 1


def test_4_passages_past_the_limit_are_left_out_with_a_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("QA_MAX_DOC_PASSAGES", "5")
    (tmp_path / "many.txt").write_text("\n\n".join(f"Paragraph {i} says something new." for i in range(10)))
    (tmp_path / "many.csv").write_text("question,answer\n" + "".join(f"Question {i}?,Answer {i}.\n" for i in range(10)))
    for name in ("many.txt", "many.csv"):
        document = load_document(tmp_path / name)
        assert len(document.passages) == 5
        assert any("over 5 passages (QA_MAX_DOC_PASSAGES)" in message for _, message in document.warnings)


def test_4_a_huge_paragraph_without_punctuation_is_cut_into_bounded_passages(tmp_path):
    """A 2.4 MB file without punctuation was one passage, returned whole with every answer citing it."""
    path = tmp_path / "dump.txt"
    path.write_bytes(_WORDS)
    document = load_document(path)
    assert len(document.passages) == 50 and all(len(p.text) <= MAX_PASSAGE_CHARS for p in document.passages)
    assert "".join(p.text + " " for p in document.passages) == _WORDS.decode()
    assert document.warnings == ((1, "a paragraph of 499,999 characters is cut into 50 passages of at most 10,000"),)


def test_4_qa_check_names_the_file_over_a_limit(tmp_path, capsys):
    _repeated_docx(tmp_path / "repeat.docx", 50)
    assert cli_main(["check", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"{tmp_path / 'repeat.docx'}:" in out and "warning: 47 more copies of the paragraph" in out


# ---------------------------------------------------------------------------------------------- item 5

def _two_inputs(root: Path) -> tuple[Path, Path]:
    a, b = root / "dup" / "a", root / "dup" / "b"
    a.mkdir(parents=True)
    b.mkdir(parents=True)
    (a / "faq.csv").write_text("question,answer\nWhen does the library open?,The library opens at nine.\n")
    (b / "faq.csv").write_text("question,answer\nHow do I renew a parking permit?,Renew it online before it expires.\n")
    return a, b


def test_5_one_file_name_under_two_inputs_gets_two_keys(tmp_path):
    a, b = _two_inputs(tmp_path)
    _, sources, _ = collect_documents([a, b])
    assert [s.key for s in sources] == ["a/faq.csv", "b/faq.csv"]
    _, sources, _ = collect_documents([a, b / "faq.csv", a / "faq.csv"])  # a file reached twice is read once
    assert [s.key for s in sources] == ["a/faq.csv", "b/faq.csv"]


def test_5_citations_name_the_right_file_and_an_edit_is_seen(tmp_path, embedder):
    """`qa build dup/a dup/b`: "files: 1 added" for 2 files, a's answer cited as b's file, a's edit "unchanged"."""
    a, b = _two_inputs(tmp_path)
    folder = tmp_path / "index"
    manifest = build_index([a, b], folder, embedder)
    assert manifest.files["added"] == 2
    answer = Bot(folder, embedder=embedder).ask("When does the library open?")
    assert answer.answered and answer.citations[0].path == "a/faq.csv"
    (a / "faq.csv").write_text("question,answer\nWhen does the library open?,The library opens at ten.\n")
    manifest = build_index([a, b], folder, embedder)
    assert manifest.files == {"added": 0, "changed": 1, "removed": 0, "unchanged": 1}
    assert "ten" in Bot(folder, embedder=embedder).ask("When does the library open?").text


# ---------------------------------------------------------------------------------------------- item 9

HIDDEN_PAGE = """<html><head><title>Returns</title><script type="application/ld+json">{}</script></head><body>
<main><h1>Returns</h1>
<h2>How long do I have to return an item?</h2>
<p>You have 30 days to return an item.</p>
<p style="color: red; display:none">The secret discount code is FREESTUFF.</p>
<div style="visibility: hidden"><p>Staff only: the back door code is 1234.</p></div>
</main></body></html>"""


def test_9_hidden_text_is_not_indexed_and_is_warned_with_its_line():
    page = HIDDEN_PAGE.format(_faq_jsonld([("How long do I have to return an item?", "You have 365 days.")]))
    document = parse_html("returns.html", page.encode())
    texts = " ".join(p.text for p in document.passages)
    assert "FREESTUFF" not in texts and "1234" not in texts and "365" not in texts
    assert [p.text for p in document.passages] == ["You have 30 days to return an item."]
    assert document.warnings == (
        (1, "hidden JSON-LD answer to 'How long do I have to return an item?' differs from the page's own; "
            "the page's is kept: 'You have 365 days.'"),
        (5, "hidden text (by style display: none) is not indexed: 'The secret discount code is FREESTUFF.'"),
        (6, "hidden text (by style visibility: hidden) is not indexed: 'Staff only: the back door code is 1234.'"),
    )


def test_9_qa_check_warns_about_hidden_content(tmp_path, capsys):
    page = HIDDEN_PAGE.format(_faq_jsonld([("How long do I have to return an item?", "You have 365 days."),
                                           ("Can I return a gift?", "Yes, with the gift receipt.")]))
    (tmp_path / "returns.html").write_text(page, encoding="utf-8")
    assert cli_main(["check", str(tmp_path), "--json"]) == 0
    problems = json.loads(capsys.readouterr().out)["problems"]
    hidden = [p for p in problems if p["code"] == "hidden"]
    assert [p["line"] for p in hidden] == [1, 1, 5, 6]
    assert "the page does not show it) is indexed: 'Can I return a gift?'" in hidden[1]["message"]


def test_9_the_visible_answer_answers(tmp_path, embedder):
    page = HIDDEN_PAGE.format(_faq_jsonld([("How long do I have to return an item?", "You have 365 days.")]))
    (tmp_path / "returns.html").write_text(page, encoding="utf-8")
    build_index([tmp_path], tmp_path / "index", embedder)
    bot = Bot(tmp_path / "index", embedder=embedder)
    answer = bot.ask("How long do I have to return an item?")
    assert answer.answered and "30 days" in answer.text
    assert not bot.ask("What is the secret discount code?").text.count("FREESTUFF")


# ---------------------------------------------------------------------------------------------- item 10

def test_10_qa_check_counts_every_file_it_checked(tmp_path, capsys):
    """`qa check` said "checked 5 files" for 7: files it could not read were not counted."""
    for i in range(5):
        (tmp_path / f"note{i}.md").write_text(f"# Note {i}\n\nThe note number {i} says hello to everyone.\n")
    (tmp_path / "bad.csv").write_text("question,answer\nq,a,extra\n")
    (tmp_path / "binary.txt").write_bytes(b"\0\1\2")
    cli_main(["check", str(tmp_path)])
    assert "checked 7 files: 1 error(s)" in capsys.readouterr().out


def test_10_a_pdf_titled_untitled_is_named_by_its_file(tmp_path):
    """PDF titles came from junk metadata ("untitled", "Microsoft Word - x.docx")."""
    for junk in ("untitled", "Microsoft Word - draft3.docx"):
        path = write_pdf(tmp_path / "boiler-manual.pdf", title=junk)
        assert load_document(path).title == "Boiler Manual"
    assert load_document(write_pdf(tmp_path / "x.pdf", title="Boiler service guide")).title == "Boiler service guide"


def test_10_an_index_folder_that_is_the_data_folder_is_refused(tmp_path, capsys):
    """`--index` equal to the data folder wrote the index among the documents and broke the next build."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "notes.md").write_text("# Notes\n\nThe office opens at nine on weekdays.\n")
    assert cli_main(["build", str(data), "--index", str(data), "-q"]) == 2
    assert "the index folder" in capsys.readouterr().err and sorted(p.name for p in data.iterdir()) == ["notes.md"]


def test_10_file_names_with_escape_sequences_reach_the_terminal_escaped(tmp_path):
    """File names holding ESC sequences were printed raw by build logs (a name can retitle or clear a terminal)."""
    import subprocess
    import sys

    from .conftest import ROOT
    from .rel_support import qa_env

    data = tmp_path / "data"
    data.mkdir()
    (data / "notes.md").write_text("# Notes\n\nThe office opens at nine on weekdays.\n")
    (data / "bad\x1b]0;owned\x07.csv").write_text("question,answer\nq,a,extra\n")
    run = subprocess.run([sys.executable, "-m", "qa.cli", "build", str(data), "--index", str(tmp_path / "index"), "-q"],
                         cwd=ROOT, env=qa_env(OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "\x1b" not in run.stdout + run.stderr and "\x07" not in run.stdout + run.stderr
    assert "bad\\x1b]0;owned\\x07.csv:2: expected 2 fields, got 3" in run.stdout
    assert "bad\\x1b]0;owned\\x07.csv:2: expected 2 fields" in run.stderr
