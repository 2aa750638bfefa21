"""What the FAQ-file readers share: one record (question, answer, id, alternates) → one passage."""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import DocumentError
from ..types import Passage
from .base import sentences_of, passage_id, trim_span

_SURROGATE = re.compile("[\ud800-\udfff]")


def faq_passage(path: str, title: str, record: dict, line: int, position: int, seen: dict[str, int]) -> Passage:
    """One FAQ record → a passage, validating its fields (the error names file and line).

    The passage's offsets are into the answer string itself: FAQ files hold no shared source text.
    """
    if not isinstance(record, dict):
        raise DocumentError(f"{path}:{line}: expected an object with 'question' and 'answer', got {type(record).__name__}")
    fields = {str(k).strip().lower(): v for k, v in record.items()}
    for name in ("question", "answer", "id", "alternates"):
        texts = fields.get(name) if isinstance(fields.get(name), list) else [fields.get(name)]
        if any(isinstance(t, str) and _SURROGATE.search(t) for t in texts):
            # Only JSON escapes ("\ud800") can produce these; no encoder or file can hold them.
            raise DocumentError(f"{path}:{line}: {name!r} holds invalid Unicode (an unpaired surrogate escape)")
    missing = [f for f in ("question", "answer") if not isinstance(fields.get(f), str) or not fields[f].strip()]
    if missing:
        raise DocumentError(f"{path}:{line}: missing or empty {' and '.join(repr(m) for m in missing)}")
    alternates = fields.get("alternates") or ()
    if isinstance(alternates, str):
        alternates = [a for a in alternates.split("|")]
    if not isinstance(alternates, (list, tuple)) or not all(isinstance(a, str) for a in alternates):
        raise DocumentError(f"{path}:{line}: 'alternates' must be a list of strings")
    answer = fields["answer"]
    start, end = trim_span(answer, 0, len(answer))
    body = answer[start:end]
    question = fields["question"].strip()
    given_id = fields.get("id")
    pid = f"{Path(path).stem}:{given_id}" if given_id not in (None, "") else passage_id(path, "faq", question + "\0" + body, seen)
    return Passage(
        id=pid,
        kind="faq",
        text=body,
        title=title,
        path=path,
        start=0,
        end=len(body),
        position=position,
        line=line,
        question=question,
        alternates=tuple(a.strip() for a in alternates if a.strip()),
        sentences=sentences_of(path, line, body, 0),
    )
