"""Ingest checks: problems in a corpus that make answers wrong or useless, reported as `file:line: message`.

Run by every build (warnings are logged and kept in the manifest; conflicts
stop it unless allowed) and alone by `qa check`.

| check | severity |
|---|---|
| the same FAQ question with different answers | error (a conflict) |
| near-duplicate FAQ questions in different files | warning, naming both places |
| an FAQ question with an empty answer | warning (text formats; CSV/JSON files refuse it) |
| an FAQ answer that is only a link | warning |
| a paragraph too short or too long to be useful | warning |
| a document that produced no passage | warning |
| an FAQ follow-up that names no FAQ, several, or itself | warning (it is left out; qa/follow_ups.py) |
| text a reader of a page cannot see (CSS-hidden, JSON-LD pairs the page does not show or contradicts) | warning (`hidden`; the rule is in qa/readers/html.py) |
| an accepted alternate (alternates.jsonl) that repeats another FAQ's question | warning (`alternate-repeats`; the build leaves it out) |
| a document over a limit on what it unpacks to (text, passages, identical copies, a paragraph's length) | warning (`limit`) |
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Iterable

from .follow_ups import resolve as resolve_follow_ups
from .readers.base import Document
from .types import Passage

ERROR = "error"
WARNING = "warning"
# Below this many words a paragraph says too little to answer anything on its own.
MIN_PARAGRAPH_WORDS = 3
# all-MiniLM-L6-v2 reads 256 tokens (about 190 English words) of a text; past this a passage's
# whole-text vector ignores its end (its sentences are still embedded one by one).
MAX_PASSAGE_WORDS = 300
_LINK_ONLY = re.compile(r"^\s*(?:<?(?:https?://|www\.|mailto:)\S+?>?|\[[^\]]*\]\(\S+\))\s*[.!]?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Problem:
    """One finding of a check, at a file and line."""

    path: str
    line: int
    severity: str  # ERROR or WARNING
    code: str  # conflict, near-duplicate, empty-answer, link-only, too-short, too-long, no-passage, reader, hidden, limit, follow-up
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.severity}: {self.message}"

    def to_dict(self) -> dict:
        return asdict(self)


def _normal(text: str) -> str:
    """Case, whitespace and closing punctuation do not make two questions or answers differ."""
    return " ".join(text.casefold().split()).rstrip(" ?.!")


def _place(p: Passage) -> str:
    where = f"{p.path}:{p.line}"
    return f"{where} (page {p.page})" if p.page else where


def _repeated_alternates(doc: Document, passages: list[Passage]) -> list[Problem]:
    """A warning for each phrasing of `alternates.jsonl` that is another FAQ's question (the build leaves it out)."""
    import json

    from .alternates import parse_alternates, repeats

    found = []
    lines = doc.text.split("\n")
    for faq_id, phrasing, other in repeats(passages, parse_alternates(doc.path, doc.text)):
        line = next((n for n, text in enumerate(lines, 1) if faq_id in text and json.dumps(phrasing, ensure_ascii=False)[1:-1] in text), 1)
        found.append(Problem(doc.path, line, WARNING, "alternate-repeats",
                             f"{phrasing!r} is the question of FAQ {other!r}: not added as an alternate of {faq_id!r}"))
    return found


def reader_code(message: str) -> str:
    """The check code of a reader's warning, from its wording (readers return (line, message) pairs)."""
    if "has no answer" in message:
        return "empty-answer"
    if message.startswith("hidden "):
        return "hidden"
    if any(name in message for name in ("QA_MAX_DOC_CHARS", "QA_MAX_DOC_PASSAGES", "copies of the", "is cut into")):
        return "limit"
    return "reader"


def conflicts(problems: Iterable[Problem]) -> list[Problem]:
    """The problems that stop a build: conflicting answers."""
    return [p for p in problems if p.severity == ERROR]


def check_documents(documents: Iterable[Document]) -> list[Problem]:
    """Every problem the checks find in `documents`, in document order.

    Returns:
        Problems sorted by file and line, errors and warnings together.
    """
    from .lexical import analyze

    documents = list(documents)
    problems: list[Problem] = []
    questions: dict[str, Passage] = {}
    terms_seen: dict[frozenset[str], Passage] = {}
    for doc in documents:
        for line, message in doc.warnings:
            problems.append(Problem(doc.path, line, WARNING, reader_code(message), message))
        if not doc.passages and doc.kind != "alternates":
            problems.append(Problem(doc.path, 1, WARNING, "no-passage", "no passage: the document has no text to index"))
        for p in doc.passages:
            words = len(p.text.split())
            if p.kind == "faq":
                asked = p.question or ""
                key = _normal(asked)
                first = questions.get(key)
                if first is None:
                    questions[key] = p
                elif _normal(first.text) != _normal(p.text):
                    problems.append(Problem(
                        p.path, p.line, ERROR, "conflict",
                        f"FAQ question {asked!r} has a different answer at {_place(first)}",
                    ))
                terms = frozenset(analyze(asked))
                other = terms_seen.get(terms) if terms else None
                if other is None:
                    terms_seen.setdefault(terms, p)
                elif other.path != p.path and _normal(other.question or "") != key:
                    problems.append(Problem(
                        p.path, p.line, WARNING, "near-duplicate",
                        f"FAQ question {asked!r} nearly repeats {other.question!r} at {_place(other)}",
                    ))
                if _LINK_ONLY.match(p.text):
                    problems.append(Problem(
                        p.path, p.line, WARNING, "link-only",
                        f"the answer to {asked!r} is only a link: the bot can quote it but not answer from it",
                    ))
            elif words < MIN_PARAGRAPH_WORDS:
                problems.append(Problem(
                    p.path, p.line, WARNING, "too-short",
                    f"paragraph of {words} word(s) ({p.text[:40]!r}) is too short to answer from",
                ))
            if words > MAX_PASSAGE_WORDS:
                problems.append(Problem(
                    p.path, p.line, WARNING, "too-long",
                    f"{p.kind} of {words} words: the model reads about the first 190; split it into paragraphs",
                ))
    passages = [p for doc in documents for p in doc.passages]
    for doc in documents:
        if doc.kind == "alternates":
            problems += _repeated_alternates(doc, passages)
    for i, message in resolve_follow_ups(passages)[1]:
        problems.append(Problem(passages[i].path, passages[i].line, WARNING, "follow-up", message))
    order = {doc.path: i for i, doc in enumerate(documents)}
    return sorted(problems, key=lambda x: (order.get(x.path, len(order)), x.line))
