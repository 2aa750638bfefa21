"""FAQ files as CSV: a header naming (in any case) question, answer and optionally id, alternates."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ..errors import DocumentError
from .base import Document, check_ids, decode_text, readable_title
from .faq import faq_passage

SUFFIXES = (".csv",)
KIND = "faq-csv"


def parse_faq_csv(path: str, text: str) -> Document:
    """CSV with a header naming (case-insensitively) question, answer and optionally id, alternates."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise DocumentError.at(path, f"bad CSV: {exc}", 1) from exc
    if header is None:
        raise DocumentError.at(path, "empty CSV file; expected a header with question and answer", 1)
    names = [h.strip().lower() for h in header]
    if "question" not in names or "answer" not in names:
        raise DocumentError.at(path, f"the CSV header must name 'question' and 'answer' columns, got {header}", 1)
    title = readable_title(Path(path))
    seen: dict[str, int] = {}
    passages = []
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(names):
                raise DocumentError.at(path, f"expected {len(names)} fields, got {len(row)}", line)
            passages.append(faq_passage(path, title, dict(zip(names, row)), line, len(passages), seen))
    except csv.Error as exc:
        raise DocumentError.at(path, f"bad CSV: {exc}", reader.line_num) from exc
    check_ids(path, passages)
    return Document(path=path, text=text, title=title, passages=tuple(passages), kind=KIND)


def read(path: str, data: bytes) -> Document:
    """A CSV file's bytes → Document (see parse_faq_csv)."""
    return parse_faq_csv(path, decode_text(path, data))
