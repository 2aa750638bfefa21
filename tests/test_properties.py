"""Property-based tests (hypothesis): parsers and ask() on arbitrary and hostile text.

Example counts are modest: a real ask() costs a few milliseconds, a build a few
hundred. QA_PROPERTY_SCALE=10 multiplies them for a deeper search.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from qa import Bot, DocumentError
from qa.answering import NOT_COVERED, NOT_SURE
from qa.documents import parse_article, parse_markdown, parse_faq_csv, parse_faq_json, parse_faq_jsonl
from qa.indexing import build_index
from qa.lexical import analyze

from .conftest import ARTICLE

SCALE = int(os.environ.get("QA_PROPERTY_SCALE") or 1)
FAST = settings(max_examples=300 * SCALE, deadline=None)
ASKS = settings(max_examples=150 * SCALE, deadline=None)

# ----------------------------------------------------------------------------- strategies

surrogates = st.characters(categories=["Cs"])
controls = st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Zp"])
rtl = st.characters(min_codepoint=0x0590, max_codepoint=0x06FF)  # Hebrew and Arabic
emoji = st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF)
punctuation = st.characters(categories=["P", "S"])
any_char = st.characters(codec=None)  # every code point but surrogates

hostile_text = st.one_of(
    st.text(max_size=300),
    st.text(controls, max_size=60),
    st.text(st.one_of(rtl, st.just(" "), st.just("?")), max_size=120),
    st.text(st.one_of(emoji, st.just(" ")), max_size=60),
    st.text(punctuation, max_size=80),
    st.text(st.one_of(any_char, surrogates), max_size=80),
)

# Pieces of articles that steer the parser down its branches: headings, FAQ sections, questions, labels.
FRAGMENTS = [
    "# Title", "## FAQ", "Frequently Asked Questions", "**FAQ**", "### How do refunds work?",
    "Q: Why is the sky blue?", "- What is this?", "Because it is.", "Filed under:", "Tags:",
    "Dr. Smith arrived at 5 p.m. He left.", "A sentence. Another one! A third?", "", " ", "\t",
    "?", "#", "**", "Ünïcödé — “quotes” and emoji 🎉.", "שלום עולם.", "مرحبا بالعالم؟",
]
line_sep = st.sampled_from(["\n", "\r\n", "\n\n", "\r", "\u2028", "\x0c", "\x85"])
article_text = st.one_of(
    st.text(max_size=1500),
    st.lists(st.tuples(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=40)), line_sep), max_size=40).map(
        lambda parts: "".join(a + b for a, b in parts)
    ),
)

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(st.one_of(any_char, surrogates), max_size=30))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)), max_leaves=12)
faq_record = st.fixed_dictionaries(
    {},
    optional={
        "question": st.one_of(st.text(max_size=60), json_scalars),
        "answer": st.one_of(st.text(max_size=200), json_scalars),
        "id": st.one_of(st.text(max_size=8), st.integers(0, 3)),
        "alternates": st.one_of(st.lists(st.text(max_size=20), max_size=3), st.text(max_size=20), json_values),
        "Question": st.text(max_size=20),
    },
)


# ----------------------------------------------------------------------------- parsers


def check_article(text: str, doc) -> None:
    """Offsets round-trip: every passage and sentence is the source text at its offsets."""
    ids = [p.id for p in doc.passages]
    assert len(set(ids)) == len(ids)
    for p in doc.passages:
        assert text[p.start : p.end] == p.text
        assert p.text and p.text == p.text.strip()
        assert p.sentences
        previous_end = p.start
        for span in p.sentences:
            assert previous_end <= span.start < span.end <= p.end
            sentence = text[span.start : span.end]
            assert sentence == sentence.strip()
            previous_end = span.end
        if p.kind == "faq":
            assert p.question


@FAST
@given(article_text)
@example("")
@example("\n\n\n")
@example("## FAQ\n\nWhat?\n\n")
@example("a\rb\u2028c\x85d\x0ce")
def test_the_article_parser_never_crashes_and_its_offsets_round_trip(text):
    check_article(text, parse_article("doc.md", text))


@FAST
@given(article_text)
@example("```\n# code\n\n```\nQ?\n---\n\n## FAQ\n\nWhy?\n\nBecause.\n")
@example("a\rb\r\n\r\nc\x00d")
def test_the_markdown_parser_never_crashes_and_its_offsets_round_trip(text):
    check_article(text, parse_markdown("doc.md", text))


def check_faq_outcome(parse, path: str, text: str) -> None:
    """A parsed FAQ file, or a DocumentError whose message starts with 'path:line: '."""
    try:
        doc = parse(path, text)
    except DocumentError as exc:
        message = str(exc)
        match = re.match(rf"{re.escape(path)}:(\d+): \S", message)
        assert match, message
        assert 1 <= int(match.group(1)) <= len(re.split(r"\r\n|\r|\n", text)), message  # csv counts a lone \r too
        assert "\n" not in message
        return
    for p in doc.passages:
        assert p.text and p.text == p.text.strip() and p.question
        assert (p.start, p.end) == (0, len(p.text))
        for span in p.sentences:
            assert 0 <= span.start < span.end <= len(p.text)
        json.dumps(p.to_dict(), ensure_ascii=False).encode("utf-8")  # writable to passages.jsonl


@FAST
@given(st.text(max_size=600))
@example("[" * 5000)
@example('{"faqs": [{"question": "q", "answer": "a"}]}')
def test_faq_parsers_on_arbitrary_text_parse_or_name_file_and_line(text):
    for parse, path in ((parse_faq_json, "faq.json"), (parse_faq_jsonl, "faq.jsonl"), (parse_faq_csv, "faq.csv")):
        check_faq_outcome(parse, path, text)


@FAST
@given(st.one_of(st.lists(faq_record, max_size=5), json_values, st.fixed_dictionaries({"title": json_scalars, "faqs": st.lists(faq_record, max_size=4)})),
       st.booleans())
def test_faq_json_of_any_shape_parses_or_names_file_and_line(data, indent):
    text = json.dumps(data, indent=1 if indent else None)
    check_faq_outcome(parse_faq_json, "faq.json", text)
    if isinstance(data, list):
        check_faq_outcome(parse_faq_jsonl, "faq.jsonl", "\n".join(json.dumps(r) for r in data))


@FAST
@given(st.lists(st.lists(st.text(max_size=30), max_size=4), max_size=8), st.booleans())
def test_faq_csv_of_any_shape_parses_or_names_file_and_line(rows, with_header):
    out = io.StringIO()
    writer = csv.writer(out)
    if with_header:
        writer.writerow(["question", "answer"])
    writer.writerows(rows)
    check_faq_outcome(parse_faq_csv, "faq.csv", out.getvalue())


# ----------------------------------------------------------------------------- ask()

SOURCE = ARTICLE.read_bytes().decode("utf-8")
QUESTION_ERRORS = re.compile(r"question is empty|characters long; the limit is|invalid Unicode \(an unpaired surrogate")


def check_answer(question: str, answer) -> None:
    """A valid Answer: an exact quote of the cited passage at its offsets, suggestions of retrieved passages,
    or an abstention."""
    assert answer.question == question.strip()
    assert 0.0 <= answer.confidence <= 1.0
    assert 1 <= len(answer.passages) <= 5
    passages = {h.passage.id: h.passage for h in answer.passages}
    if answer.outcome == "suggested":
        assert answer.text == NOT_SURE and answer.citations == ()
        assert 1 <= len(answer.suggestions) <= 3 and {s.passage_id for s in answer.suggestions} <= set(passages)
        return
    if not answer.answered:
        assert answer.text == NOT_COVERED and answer.citations == ()
        return
    assert answer.citations and answer.text == answer.citations[0].quote
    for c in answer.citations:
        p = passages[c.passage_id]
        assert p.start <= c.start < c.end <= p.end
        assert c.quote == p.text[c.start - p.start : c.end - p.start] == SOURCE[c.start : c.end]
    json.dumps(answer.to_dict(), ensure_ascii=False)


def ask_or_refuse(bot, question: str) -> None:
    try:
        answer = bot.ask(question)
    except ValueError as exc:
        assert QUESTION_ERRORS.search(str(exc)), str(exc)
        return
    check_answer(question, answer)


@ASKS
@given(hostile_text)
@example("\x00")
@example("\u202eWho did Díaz-Canel meet?\u202c")
@example("?!?!.,;:—…")
@example("🇨🇺🇷🇺 🤝?")
@example("who did díaz-canel meet in st. petersburg \ud83d")
@example("Who did Díaz-Canel meet in St. Petersburg?")
def test_ask_on_arbitrary_unicode_answers_validly_or_refuses_clearly(bot, question):
    ask_or_refuse(bot, question)


@pytest.mark.parametrize("unit", ["a", "why? ", "🎉", "\u05e9", "\x07", "Díaz-Canel ", ".,!"])
def test_ask_on_100000_characters_is_refused_by_default_and_answered_when_allowed(bot, article_index, embedder, unit):
    question = (unit * (100_000 // len(unit) + 1))[:100_000]
    if question.strip():
        with pytest.raises(ValueError, match=r"characters long; the limit is 2,000"):
            bot.ask(question)
    roomy = Bot(article_index, embedder=embedder, max_question_chars=100_000)
    ask_or_refuse(roomy, question)


def test_ask_refuses_non_strings_and_blank_questions(bot):
    for bad in (None, 42, b"bytes", ["list"]):
        with pytest.raises(ValueError, match="question must be a string"):
            bot.ask(bad)  # type: ignore[arg-type]
    for blank in ("", "   ", "\n\t\u3000"):
        with pytest.raises(ValueError, match="question is empty"):
            bot.ask(blank)


# ----------------------------------------------------------------------------- whole builds


@settings(max_examples=12 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(article_text)
def test_any_article_builds_an_index_that_answers_validly(embedder, text):
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        (corpus / "doc.txt").write_bytes(text.encode("utf-8"))
        source = (corpus / "doc.txt").read_bytes().decode("utf-8")  # as qa reads it: no newline translation
        try:
            build_index([corpus], Path(tmp) / "index", embedder)
        except DocumentError as exc:
            if "\0" in source:  # a NUL byte: not a text file, skipped, so nothing to index
                assert re.search(r"doc\.txt:\d+: not a text file \(it holds NUL bytes\)", str(exc)), str(exc)
                return
            passages = parse_article("doc.md", source).passages
            if passages:
                assert "hold no words to index" in str(exc)
                assert not any(analyze(p.text) for p in passages)
            else:
                assert "hold no text to index" in str(exc)
            return
        bot = Bot(Path(tmp) / "index", embedder=embedder)
        doc = parse_article("doc.txt", source)
        for question in [doc.passages[0].text[:200], "What is this about?"]:
            try:
                answer = bot.ask(question)
            except ValueError as exc:
                assert QUESTION_ERRORS.search(str(exc)), str(exc)
                continue
            assert 0.0 <= answer.confidence <= 1.0
            for c in answer.citations:
                assert c.quote == source[c.start : c.end] and c.quote.strip()
