"""FAQ files as JSON (a list, or {"title": ..., "faqs": [...]}) and JSON Lines (one object a line)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import DocumentError
from .base import Document, check_ids, decode_text, readable_title
from .faq import faq_passage

SUFFIXES = (".json", ".jsonl")
KIND = "faq-json"


def parse_faq_jsonl(path: str, text: str) -> Document:
    """JSON Lines: one object with question, answer (and optionally id, alternates) a line."""
    title = readable_title(Path(path))
    seen: dict[str, int] = {}
    passages = []
    # Only "\n" ends a JSON Lines record: splitlines() would also cut at U+2028 and
    # other separators that JSON strings may hold raw, and miscount lines.
    for line_no, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise DocumentError.at(path, f"invalid JSON: {_json_reason(exc)}", line_no) from exc
        passages.append(faq_passage(path, title, record, line_no, len(passages), seen))
    check_ids(path, passages)
    return Document(path=path, text=text, title=title, passages=tuple(passages), kind=KIND)


def parse_faq_json(path: str, text: str) -> Document:
    """JSON: a list of FAQ objects, or an object with a 'faqs' (or 'items') list and an optional 'title'."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        line = exc.lineno if isinstance(exc, json.JSONDecodeError) else 1
        raise DocumentError.at(path, f"invalid JSON: {_json_reason(exc)}", line) from exc
    title = readable_title(Path(path))
    if isinstance(data, dict):
        if isinstance(data.get("title"), str) and data["title"].strip():
            title = data["title"].strip()
        data = data.get("faqs", data.get("items"))
    if not isinstance(data, list):
        raise DocumentError.at(path, f"expected a list of FAQ objects (or {{'faqs': [...]}})", 1)
    seen: dict[str, int] = {}
    passages = []
    for i, record in enumerate(data):
        passages.append(faq_passage(path, title, record, _json_item_line(text, i), len(passages), seen))
    check_ids(path, passages)
    return Document(path=path, text=text, title=title, passages=tuple(passages), kind=KIND)


def _json_reason(exc: Exception) -> str:
    """Why json.loads failed, in a few words (it also raises RecursionError and ValueError for huge numbers)."""
    if isinstance(exc, json.JSONDecodeError):
        return exc.msg
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).split(";")[0]


def _json_item_line(text: str, index: int) -> int:
    """Best-effort line of the index-th top-level item, for error messages."""
    starts = [m.start() for m in re.finditer(r'\{\s*"', text)]
    return text.count("\n", 0, starts[index]) + 1 if index < len(starts) else 1


def read(path: str, data: bytes) -> Document:
    """A .json or .jsonl file's bytes → Document."""
    text = decode_text(path, data)
    return parse_faq_jsonl(path, text) if path.lower().endswith(".jsonl") else parse_faq_json(path, text)
