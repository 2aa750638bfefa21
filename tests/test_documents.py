"""Documents → passages: the bundled article, FAQ files, folders and bad input."""

from __future__ import annotations

import json
import logging

import pytest

from qa.documents import load_document, load_documents, parse_article
from qa.errors import DocumentError

from .conftest import ARTICLE


def test_bundled_article_parses_into_15_paragraphs_and_4_faq_pairs():
    doc = load_document(ARTICLE)
    kinds = [p.kind for p in doc.passages]
    assert kinds.count("paragraph") == 15
    assert kinds.count("faq") == 4
    assert not any("Filed under" in p.text for p in doc.passages)
    faq = [p for p in doc.passages if p.kind == "faq"]
    assert faq[0].question == "What was the purpose of Díaz-Canel's visit to Russia in May 2025?"
    assert faq[3].text.startswith("Cuba and Russia are assessing cooperation projects")


def test_offsets_round_trip_for_passages_and_sentences():
    doc = load_document(ARTICLE)
    for p in doc.passages:
        assert doc.text[p.start : p.end] == p.text
        assert p.sentences, p.id
        for span in p.sentences:
            sentence = doc.text[span.start : span.end]
            assert sentence and sentence == sentence.strip()
            assert p.start <= span.start < span.end <= p.end


def test_ids_are_stable_and_unique():
    first = [p.id for p in load_document(ARTICLE).passages]
    second = [p.id for p in load_document(ARTICLE).passages]
    assert first == second
    assert len(set(first)) == len(first)


def test_editing_one_paragraph_changes_only_its_id(tmp_path):
    text = ARTICLE.read_text(encoding="utf-8")
    edited = tmp_path / ARTICLE.name
    edited.write_text(text.replace("Alexander Beglov", "Alexander Beglov (governor)"), encoding="utf-8")
    before = [p.id for p in load_document(ARTICLE).passages]
    after = [p.id for p in load_document(edited).passages]
    assert sum(a != b for a, b in zip(before, after)) == 1


def test_markdown_title_blank_line_paragraphs_and_faq_heading():
    text = (
        "# Returns policy\n\n"
        "You can return any item within 30 days.\nThe receipt is required.\n\n"
        "Refunds go to the original card.\n\n"
        "## FAQ\n\n"
        "### How long do refunds take?\n\n"
        "Refunds take five working days.\n\n"
        "Can I return a gift?\n"
        "Yes, with a gift receipt.\n"
        "Tags:\n"
    )
    doc = parse_article("returns.md", text)
    assert doc.title == "Returns policy"
    paragraphs = [p for p in doc.passages if p.kind == "paragraph"]
    faq = [p for p in doc.passages if p.kind == "faq"]
    assert [p.text for p in paragraphs] == [
        "You can return any item within 30 days.\nThe receipt is required.",
        "Refunds go to the original card.",
    ]
    assert [(p.question, p.text) for p in faq] == [
        ("How long do refunds take?", "Refunds take five working days."),
        ("Can I return a gift?", "Yes, with a gift receipt."),
    ]
    for p in doc.passages:
        assert text[p.start : p.end] == p.text


def test_title_falls_back_to_a_readable_file_name():
    assert load_document(ARTICLE).title == "Diaz Canel Russia Visit"


def test_faq_csv_header_is_case_insensitive_and_ids_are_kept(tmp_path):
    path = tmp_path / "help.csv"
    path.write_text('ID,Question,Answer\nr1,How do I reset my password?,"Click ""Forgot password"", then follow the email."\n', encoding="utf-8")
    (p,) = load_document(path).passages
    assert p.id == "help:r1"
    assert p.question == "How do I reset my password?"
    assert p.text == 'Click "Forgot password", then follow the email.'
    assert p.kind == "faq" and p.line == 2


def test_faq_json_and_jsonl_with_alternates(tmp_path):
    records = [
        {"question": "Where is the office?", "answer": "In Lisbon.", "alternates": ["Office address?"]},
        {"id": "hours", "question": "When are you open?", "answer": "From 9 to 5."},
    ]
    (tmp_path / "a.json").write_text(json.dumps(records), encoding="utf-8")
    (tmp_path / "b.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    for name in ("a.json", "b.jsonl"):
        passages = load_document(tmp_path / name).passages
        assert [p.text for p in passages] == ["In Lisbon.", "From 9 to 5."]
        assert passages[0].alternates == ("Office address?",)
        assert passages[1].id.endswith(":hours")


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("bad.csv", "question,answer\nok?,fine\nbroken?\n", r"bad\.csv:3: expected 2 fields"),
        ("bad.csv", "q,a\nx,y\n", r"bad\.csv:1: the CSV header must name"),
        ("bad.jsonl", '{"question": "a?", "answer": "b"}\n{"question": "c?"\n', r"bad\.jsonl:2: invalid JSON"),
        ("bad.jsonl", '{"question": "a?", "answer": ""}\n', r"bad\.jsonl:1: missing or empty 'answer'"),
        ("bad.json", '[{"question": "a?", "answer": "b"},\n {"question": 3, "answer": "c"}]', r"bad\.json:2: missing or empty 'question'"),
        ("bad.json", '{"faqs": 3}', r"bad\.json:1: expected a list"),
    ],
)
def test_malformed_faq_files_name_file_and_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DocumentError, match=message):
        load_document(path)


def test_folder_skips_unsupported_files_with_a_warning(tmp_path, caplog):
    (tmp_path / "notes.txt").write_text("A paragraph about llamas.\n", encoding="utf-8")
    (tmp_path / "photo.png").write_bytes(b"\x89PNG")
    with caplog.at_level(logging.WARNING):
        docs = load_documents([tmp_path])
    assert [d.title for d in docs] == ["Notes"]
    assert "photo.png: unsupported file type" in caplog.text


def test_windows_1252_is_read_as_such_with_a_warning(tmp_path, caplog):
    """Issue 21, item 10: cp1252 text showed replacement characters."""
    path = tmp_path / "latin.txt"
    path.write_bytes("Caf\xe9 opens at nine \u2013 ask for Ren\xe9e.\n".encode("cp1252"))
    with caplog.at_level(logging.WARNING):
        (p,) = load_document(path).passages
    assert p.text == "Caf\xe9 opens at nine \u2013 ask for Ren\xe9e."
    assert "latin.txt:1: not valid UTF-8; read as Windows-1252 (cp1252)" in caplog.text


def test_undecodable_bytes_are_replaced_with_a_warning(tmp_path, caplog):
    path = tmp_path / "odd.txt"
    path.write_bytes(b"The office opens at nine \x81 on weekdays.\n")  # 0x81: neither UTF-8 nor cp1252
    with caplog.at_level(logging.WARNING):
        (p,) = load_document(path).passages
    assert p.text == "The office opens at nine \ufffd on weekdays."
    assert "odd.txt:1: not valid UTF-8; undecodable bytes replaced" in caplog.text


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_text_is_read(tmp_path, encoding):
    """Issue 21, item 10: UTF-16 files (with or without a byte-order mark) were refused as binary."""
    path = tmp_path / "notes.md"
    path.write_bytes("# Notes\n\nThe caf\xe9 opens at nine on weekdays.\n".encode(encoding))
    document = load_document(path)
    assert document.title == "Notes" and [p.text for p in document.passages] == ["The caf\xe9 opens at nine on weekdays."]


def test_missing_path_and_empty_folder_are_clear_errors(tmp_path):
    with pytest.raises(DocumentError, match="no such file or folder"):
        load_documents([tmp_path / "nope"])
    with pytest.raises(DocumentError, match="no supported documents"):
        load_documents([tmp_path])


def test_an_index_folder_inside_the_documents_folder_is_skipped(tmp_path):
    (tmp_path / "a.md").write_text("# A\n\nSome text.\n", encoding="utf-8")
    index = tmp_path / "index"
    index.mkdir()
    (index / "manifest.json").write_text("{}", encoding="utf-8")
    (index / ".lock").touch()
    (index / "build").mkdir()
    (index / "build" / "passages.jsonl").write_text("{not an faq}\n", encoding="utf-8")
    assert [d.title for d in load_documents([tmp_path])] == ["A"]


def test_a_very_long_paragraph_is_split_into_exact_ordered_sentences():
    from qa.sentences import split_sentences

    text = "The harbour opens at dawn. Ships from Dr. Lee's fleet dock at pier 4! Who pays? " * 1500
    spans = split_sentences(text, offset=7)
    assert len(spans) == 4500
    assert all(a.end <= b.start for a, b in zip(spans, spans[1:]))
    assert {text[s.start - 7 : s.end - 7] for s in spans} == {
        "The harbour opens at dawn.", "Ships from Dr. Lee's fleet dock at pier 4!", "Who pays?"
    }
