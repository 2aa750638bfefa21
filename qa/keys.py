"""What is indexed for a passage: its key rows (the texts embedded for it) and its lexical text.

A key is one embedded text of one passage. `keys.npy` in a build holds one row
per key, (passage row, field, sentence index or -1), aligned with the rows of
the vector index; a passage's keys are contiguous, in passage order.
"""

from __future__ import annotations

from .types import Passage

FIELD_TEXT = 0  # a paragraph, or an FAQ answer, whole
FIELD_SENTENCE = 1  # one sentence of a multi-sentence paragraph or answer
FIELD_QUESTION = 2  # an FAQ question
FIELD_ALTERNATE = 3  # another phrasing of an FAQ question
FIELD_ENTRY = 4  # an FAQ pair whole: its question and its answer, as one text


def passage_keys(passage: Passage) -> list[tuple[int, int, str]]:
    """The texts embedded for one passage, as (field, sentence index or -1, text)."""
    keys: list[tuple[int, int, str]] = []
    if passage.kind == "faq":
        keys.append((FIELD_QUESTION, -1, passage.question or ""))
        keys.extend((FIELD_ALTERNATE, -1, alt) for alt in passage.alternates)
        keys.append((FIELD_ENTRY, -1, entry_text(passage)))
    keys.append((FIELD_TEXT, -1, passage.text))
    if len(passage.sentences) > 1:
        for i, span in enumerate(passage.sentences):
            keys.append((FIELD_SENTENCE, i, passage.text_at(span.start, span.end)))
    return keys


def entry_text(passage: Passage) -> str:
    """An FAQ pair as one text: users often ask in the answer's words, or in words of both."""
    return f"{passage.question or ''}\n{passage.text}"


def lexical_text(passage: Passage) -> str:
    """What BM25 indexes for a passage: for an FAQ pair, its questions and its answer."""
    if passage.kind == "faq":
        return "\n".join([passage.question or "", *passage.alternates, passage.text])
    return passage.text
