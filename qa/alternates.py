"""`alternates.jsonl` in the data folder: other phrasings of existing FAQs, added by review.

One JSON object a line, `{"id": FAQ_PASSAGE_ID, "alternates": ["...", ...]}`;
an FAQ may appear on several lines. It is an ordinary file of the data folder,
for people to read and version: the build reads it beside the documents and adds
each line's phrasings to that FAQ's own alternates (an id no FAQ has is a
warning), so `qa review` never writes into the index. `added-faq.csv`, the
other file review writes, is an ordinary FAQ file.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from dataclasses import replace
from pathlib import Path

from .errors import DocumentError
from .types import Passage

log = logging.getLogger(__name__)

ALTERNATES_FILE = "alternates.jsonl"
ADDED_FAQ_FILE = "added-faq.csv"
KIND = "alternates"


def is_alternates_file(path: str | Path) -> bool:
    return Path(path).name == ALTERNATES_FILE


def parse_alternates(path: str, text: str) -> dict[str, list[str]]:
    """The phrasings each FAQ id gains, in file order, each once.

    Raises:
        DocumentError: a line that is not an object with a string "id" and a list of strings "alternates".
    """
    found: dict[str, list[str]] = {}
    for line_no, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise DocumentError.at(path, f"invalid JSON: {exc}", line_no) from None
        faq_id = record.get("id") if isinstance(record, dict) else None
        phrasings = record.get("alternates") if isinstance(record, dict) else None
        if not isinstance(faq_id, str) or not faq_id.strip() or not isinstance(phrasings, list) \
                or not all(isinstance(a, str) for a in phrasings):
            raise DocumentError.at(path, f'expected {{"id": "FAQ id", "alternates": ["...", ...]}}', line_no)
        kept = found.setdefault(faq_id.strip(), [])
        kept += [a.strip() for a in phrasings if a.strip() and a.strip() not in kept]
    return found


def normal_question(text: str) -> str:
    """Case, whitespace and closing punctuation do not make two questions differ (as qa.checks compares them)."""
    return " ".join(text.casefold().split()).rstrip(" ?.!")


def repeats(passages: list[Passage], added: dict[str, list[str]]) -> list[tuple[str, str, str]]:
    """(faq id, phrasing, other FAQ's id) for each added phrasing that repeats another FAQ's question or alternate.

    Such a phrasing would take that question away from its own FAQ: one accepted
    review (or one poisoned one) must not make an FAQ's own question answer with another's text.
    """
    owner: dict[str, str] = {}
    for p in passages:
        if p.kind == "faq":
            for text in (p.question or "", *p.alternates):
                owner.setdefault(normal_question(text), p.id)
    found = []
    for faq_id, phrasings in added.items():
        for phrasing in phrasings:
            other = owner.get(normal_question(phrasing))
            if other is not None and other != faq_id:
                found.append((faq_id, phrasing, other))
    return found


def merge_alternates(passages: list[Passage], added: dict[str, list[str]], source: str = ALTERNATES_FILE) -> list[Passage]:
    """The passages, each FAQ named in `added` with those phrasings appended to its alternates (each once).

    A phrasing that repeats another FAQ's question (or alternate) is refused with a warning (see `repeats`).
    """
    by_id = {p.id: p for p in passages if p.kind == "faq"}
    for faq_id in added:
        if faq_id not in by_id:
            log.warning("%s: no FAQ has the id %r; its alternates are ignored", source, faq_id)
    refused = {(faq_id, phrasing) for faq_id, phrasing, _ in repeats(passages, added)}
    for faq_id, phrasing, other in repeats(passages, added):
        log.warning("%s: %r is the question of FAQ %r; not added as an alternate of %r", source, phrasing, other, faq_id)
    out = []
    for p in passages:
        extra = added.get(p.id) if p.kind == "faq" else None
        if extra:
            have = {a.casefold() for a in (p.question or "", *p.alternates)}
            new = tuple(a for a in extra if a.casefold() not in have and (p.id, a) not in refused)
            p = replace(p, alternates=p.alternates + new) if new else p
        out.append(p)
    return out


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutral_cell(text: str) -> str:
    """`text` made safe for a CSV cell a spreadsheet may open: a leading formula character gets a `'` before it.

    Logged questions are whatever a user typed (`=HYPERLINK(...)`); the reader keeps the `'`, which is visible
    and harmless in an answer.
    """
    return "'" + text if text.startswith(_FORMULA_START) else text


def append_alternates(data_dir: str | Path, faq_id: str, phrasings: list[str]) -> Path:
    """Add one line to the data folder's alternates file (created if missing); returns its path."""
    path = Path(data_dir) / ALTERNATES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"id": faq_id, "alternates": list(phrasings)}, ensure_ascii=False) + "\n")
    return path


def append_faq(data_dir: str | Path, question: str, answer: str, alternates: list[str] = ()) -> Path:
    """Add one FAQ pair to the data folder's added-faq.csv (created with its header if missing); returns its path.

    The file as it would be is read first by the reader that the next build reads it with, and
    written only if that reader accepts it: a pair the reader refuses (an answer over the CSV
    field limit) would otherwise make every later build skip the whole file. Cells that a
    spreadsheet would run as formulas are neutralised (`neutral_cell`).

    Raises:
        ValueError: an empty question or answer, or a pair the reader refuses (the reason names the line).
    """
    from .readers.faq_csv import parse_faq_csv

    question, answer = question.strip(), answer.strip()
    if not question or not answer:
        raise ValueError("a new FAQ needs a question and an answer, neither empty")
    path = Path(data_dir) / ADDED_FAQ_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    before = path.read_text(encoding="utf-8") if path.exists() else ""
    row = io.StringIO(newline="")
    writer = csv.writer(row)
    if not before.strip():
        before = ""
        writer.writerow(["question", "answer", "alternates"])
    elif not before.endswith(("\n", "\r")):
        row.write("\r\n")
    others = "|".join(a.replace("|", "/") for a in alternates if a.strip() and a.strip() != question)
    writer.writerow([neutral_cell(question), neutral_cell(answer), neutral_cell(others)])
    after = before + row.getvalue()
    try:
        parse_faq_csv(str(path), after)
    except DocumentError as exc:
        raise ValueError(f"not added: the reader would refuse it ({exc})") from None
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(after, encoding="utf-8", newline="")
    os.replace(temporary, path)
    return path
