"""What the FAQ-file readers share: one record (question, answer, id, alternates, follow_ups) → one passage.

`alternates` and `follow_ups` are lists of strings in JSON; in a CSV cell, the
items are separated by `|` (LIST_SEPARATOR).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import DocumentError
from ..types import Passage
from .base import sentences_of, passage_id, trim_span

_SURROGATE = re.compile("[\ud800-\udfff]")
LIST_SEPARATOR = "|"  # between the items of a list field in one CSV cell


def faq_passage(path: str, title: str, record: dict, line: int, position: int, seen: dict[str, int]) -> Passage:
    """One FAQ record → a passage, validating its fields (the error names file and line).

    The passage's offsets are into the answer string itself: FAQ files hold no shared source text.
    """
    if not isinstance(record, dict):
        raise DocumentError.at(path, f"expected an object with 'question' and 'answer', got {type(record).__name__}", line)
    fields = {str(k).strip().lower(): v for k, v in record.items()}
    for name in ("question", "answer", "id", "alternates", "follow_ups"):
        texts = fields.get(name) if isinstance(fields.get(name), list) else [fields.get(name)]
        if any(isinstance(t, str) and _SURROGATE.search(t) for t in texts):
            # Only JSON escapes ("\ud800") can produce these; no encoder or file can hold them.
            raise DocumentError.at(path, f"{name!r} holds invalid Unicode (an unpaired surrogate escape)", line)
    missing = [f for f in ("question", "answer") if not isinstance(fields.get(f), str) or not fields[f].strip()]
    if missing:
        raise DocumentError.at(path, f"missing or empty {' and '.join(repr(m) for m in missing)}", line)
    alternates = _string_list(fields, "alternates", path, line)
    follow_ups = _string_list(fields, "follow_ups", path, line)
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
        alternates=alternates,
        sentences=sentences_of(path, line, body, 0),
        follow_ups=tuple(dict.fromkeys(follow_ups)),
    )


def _string_list(fields: dict, name: str, path: str, line: int) -> tuple[str, ...]:
    """A list field's items, stripped, empty ones dropped: a JSON list of strings, or one `|`-separated string."""
    value = fields.get(name) or ()
    if isinstance(value, str):
        value = value.split(LIST_SEPARATOR)
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise DocumentError.at(path, f"{name!r} must be a list of strings", line)
    return tuple(v.strip() for v in value if v.strip())
