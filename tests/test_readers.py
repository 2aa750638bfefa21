"""Readers on real files of every format (written by the libraries), broken files, and hostile text (#12 items 2, 4, 5)."""

from __future__ import annotations

import logging
import os

import pytest

from qa.documents import iter_files, load_document, load_documents
from qa.errors import DocumentError, UnreadableDocumentError
from qa.readers import supported_suffixes

from .formats import HTML, RST, write_all, write_docx, write_encrypted_pdf, write_image_only_pdf, write_pdf


def check_offsets(doc) -> None:
    for p in doc.passages:
        # FAQ files hold no shared text: their offsets are into the answer itself.
        assert (p.text if doc.kind.startswith("faq-") else doc.text)[p.start : p.end] == p.text
        for span in p.sentences:
            assert p.start <= span.start < span.end <= p.end


def test_every_format_has_a_reader():
    assert {".txt", ".md", ".markdown", ".rst", ".csv", ".json", ".jsonl", ".html", ".htm", ".pdf", ".docx"} <= supported_suffixes()


def test_pdf_passages_carry_their_page_and_point_into_the_extracted_text(tmp_path):
    doc = load_document(write_pdf(tmp_path / "manual.pdf"))
    check_offsets(doc)
    assert doc.kind == "pdf" and doc.title == "Boiler manual"
    faq = [p for p in doc.passages if p.kind == "faq"]
    assert [(p.question, p.page) for p in faq] == [("Why does the boiler lose pressure?", 1)]
    assert faq[0].text == "A leak in the heating circuit or a faulty valve lowers the pressure over time."
    reset = next(p for p in doc.passages if "reset button" in p.text)
    assert reset.page == 2 and reset.line == 1
    assert not any("Frequently Asked" in p.text for p in doc.passages)


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda d: write_image_only_pdf(d / "scan.pdf"), r"scan\.pdf: no text in 1 page\(s\) \(a scanned, image-only PDF\?\)"),
        (lambda d: write_encrypted_pdf(d / "locked.pdf", write_pdf(d / "src.pdf")), r"locked\.pdf: encrypted PDF that needs a password"),
        (lambda d: (d / "cut.pdf").write_bytes(write_pdf(d / "src.pdf").read_bytes()[:300]) and d / "cut.pdf", r"cut\.pdf: not a readable PDF"),
        (lambda d: (d / "junk.pdf").write_bytes(b"%PDF-1.4 not really") and d / "junk.pdf", r"junk\.pdf: not a readable PDF"),
        (lambda d: (d / "cut.docx").write_bytes(write_docx(d / "src.docx").read_bytes()[:500]) and d / "cut.docx", r"cut\.docx: not a readable \.docx \(BadZipFile"),
        (lambda d: (d / "text.docx").write_text("just text", encoding="utf-8") and d / "text.docx", r"text\.docx: not a readable \.docx"),
    ],
)
def test_unreadable_files_are_refused_with_a_one_line_reason(tmp_path, make, reason):
    path = make(tmp_path)
    with pytest.raises(UnreadableDocumentError, match=reason) as info:
        load_document(path)
    assert "\n" not in str(info.value)


def test_docx_headings_paragraphs_tables_and_question_headings(tmp_path):
    doc = load_document(write_docx(tmp_path / "travel.docx"))
    check_offsets(doc)
    assert doc.kind == "docx" and doc.title == "Travel policy"
    faq = [(p.question, p.text) for p in doc.passages if p.kind == "faq"]
    assert faq == [("Can I fly business class?", "Only on flights longer than eight hours, with a manager's approval.")]
    texts = [p.text for p in doc.passages if p.kind == "paragraph"]
    assert "Hotels are booked near the client's office, within the daily limit." in texts
    assert "City | Daily limit\nLisbon | 120 euros" in texts
    assert "Hotels" not in texts  # a heading is not a passage


def test_html_main_text_without_boilerplate_and_faq_markup_as_pairs(tmp_path):
    path = tmp_path / "help.html"
    path.write_text(HTML, encoding="utf-8")
    doc = load_document(path)
    check_offsets(doc)
    assert doc.title == "Help centre"
    for junk in ("Home", "Shop the sale", "tracking", "summer sale", "Copyright"):
        assert junk not in doc.text
    faq = {p.question: p.text for p in doc.passages if p.kind == "faq"}
    assert faq == {
        "How do I cancel my order?": "Open Orders and press Cancel within 24 hours.",  # heading + JSON-LD
        "Can I change the delivery address?": "Yes, until the parcel has shipped.",  # <details>
        "Is gift wrapping free?": "Gift wrapping costs two euros per parcel.",  # <dt>/<dd>
        "Do you ship abroad?": "We ship parcels to thirty countries in Europe.",  # JSON-LD only
    }
    assert [p.text for p in doc.passages if p.kind == "paragraph"] == [
        "Our support team answers every message within one working day."
    ]


def test_rst_through_docutils_keeps_source_offsets_and_drops_comments(tmp_path):
    path = tmp_path / "guide.rst"
    path.write_text(RST, encoding="utf-8")
    doc = load_document(path)
    check_offsets(doc)
    assert doc.text == RST and doc.title == "Setup guide"
    assert [p.text for p in doc.passages if p.kind == "paragraph"] == [
        "Install the package with pip and run the setup command once.",
        "The configuration file lives in ``~/.config/app.toml`` and is read at start.",
    ]
    (faq,) = [p for p in doc.passages if p.kind == "faq"]
    assert (faq.question, faq.line) == ("Where are the logs?", 13)


def test_rst_include_directive_reads_no_other_file(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET VALUE\n", encoding="utf-8")
    path = tmp_path / "doc.rst"
    path.write_text(f"Title\n=====\n\n.. include:: {secret}\n\nVisible paragraph of text here.\n", encoding="utf-8")
    doc = load_document(path)
    assert not any("SECRET" in p.text for p in doc.passages)


def test_markdown_through_markdown_it_fenced_code_is_not_a_heading(tmp_path):
    path = tmp_path / "notes.md"
    path.write_text("Intro text of the notes file here.\n\n```\n# not a heading\n\nstill code\n```\n\nSetext question?\n-------\n\n## FAQ\n\nWhat is fenced?\n\nCode between backticks.\n", encoding="utf-8")
    doc = load_document(path)
    check_offsets(doc)
    assert doc.kind == "markdown" and doc.title == "Setext question?"
    assert "```\n# not a heading\n\nstill code\n```" in [p.text for p in doc.passages]
    assert [(p.question, p.text) for p in doc.passages if p.kind == "faq"] == [("What is fenced?", "Code between backticks.")]


# ----------------------------------------------------------------------------- #12 item 2: control characters


@pytest.mark.parametrize(
    "name, content",
    [
        ("notes.txt", "Step \x1f9. Tighten the bolts.\n"),
        ("faq.csv", "question,answer\nHow do I fix it?,Step \x1c9. Tighten the bolts.\n"),
        ("notes.md", "# Steps\n\nStep \x1e1. Open the case.\x1d2. Close it.\n"),
    ],
)
def test_control_characters_do_not_crash_the_sentence_splitter(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    doc = load_document(path)
    check_offsets(doc)
    assert doc.passages and all(p.sentences for p in doc.passages)
    sentences = [p.text[s.start - p.start : s.end - p.start] for p in doc.passages for s in p.sentences]
    assert any("Tighten the bolts." in s or "Close it." in s for s in sentences)


# ----------------------------------------------------------------------------- #12 item 4: symbolic links


def test_links_leaving_the_folder_are_not_followed_and_dangling_ones_are_named(tmp_path, caplog):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd.txt").write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    data = tmp_path / "data"
    data.mkdir()
    (data / "real.txt").write_text("A real paragraph about the office.\n", encoding="utf-8")
    os.symlink(outside / "passwd.txt", data / "passwd.txt")
    os.symlink(outside, data / "linked-folder")
    os.symlink(data / "real.txt", data / "alias.txt")  # inside the folder: followed
    os.symlink(tmp_path / "gone.txt", data / "dangling.txt")
    with caplog.at_level(logging.WARNING):
        files = [p.name for p in iter_files([data])]
    assert files == ["alias.txt", "real.txt"]
    assert "passwd.txt: a link to" in caplog.text and "outside" in caplog.text
    assert "linked-folder: a link to" in caplog.text
    assert "dangling.txt: dangling link" in caplog.text
    assert not any("root:x" in p.text for d in load_documents([data]) for p in d.passages)


# ----------------------------------------------------------------------------- #12 item 5: binary files


def test_binary_files_are_refused_with_a_one_line_reason(tmp_path, caplog):
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 50
    (tmp_path / "image.md").write_bytes(png)
    (tmp_path / "noise.txt").write_bytes(bytes(range(128, 256)) * 100)
    (tmp_path / "good.txt").write_text("The only real document here.\n", encoding="utf-8")
    with pytest.raises(UnreadableDocumentError, match=r"image\.md:3: not a text file \(it holds NUL bytes\)"):
        load_document(tmp_path / "image.md")
    with pytest.raises(UnreadableDocumentError, match=r"noise\.txt:1: not a text file \(100% of it is not valid UTF-8\)"):
        load_document(tmp_path / "noise.txt")
    with caplog.at_level(logging.WARNING):
        docs = load_documents([tmp_path])
    assert [d.title for d in docs] == ["Good"]
    assert "image.md:3: not a text file" in caplog.text


def test_a_mixed_folder_reads_every_format(tmp_path):
    docs = load_documents([write_all(tmp_path / "mixed")])
    assert sorted(d.kind for d in docs) == ["docx", "faq-csv", "html", "markdown", "pdf", "rst"]
    for d in docs:
        check_offsets(d)
        assert d.passages, d.path


def test_a_parsing_library_failure_names_the_file(tmp_path):
    path = tmp_path / "deep.html"
    path.write_text("<div>" * 300_000 + "text", encoding="utf-8")
    try:
        load_document(path)
    except DocumentError as exc:
        assert str(exc).startswith(str(path))
        assert "\n" not in str(exc)
