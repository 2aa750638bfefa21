"""What a question asks for, and whether a piece of text holds that kind of thing.

A careful reader expects a date or a year in the answer to a *when* question,
a number in the answer to *how many* / *how much* / *how long*, and a name the
question does not already hold in the answer to *who* or *where*. These are
plain rules on the text: no model.
"""

from __future__ import annotations

import re
from functools import lru_cache

# The question's kind, from its first wh-word; each maps to what its answer must hold.
_KINDS = (
    ("how_many", re.compile(r"\bhow\s+(?:many|much|long|old|far|big|large|tall|high|often|few)\b", re.I)),
    ("when", re.compile(r"\b(?:when|what\s+(?:year|month|day|date|time|century|decade|era|period)|"
                        r"which\s+(?:year|month|day|date|century|decade))\b", re.I)),
    ("who", re.compile(r"\b(?:who|whom|whose)\b", re.I)),
    ("where", re.compile(r"\bwhere\b", re.I)),
)
_MONTHS = ("january february march april may june july august september october november december "
           "jan feb mar apr jun jul aug sep sept oct nov dec").split()
_NUMBER_WORDS = set(("one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
                     "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety "
                     "hundred hundreds thousand thousands million millions billion billions dozen dozens "
                     "half quarter twice once several few").split())
_DATE_WORDS = set(("monday tuesday wednesday thursday friday saturday sunday today yesterday tomorrow century "
                   "centuries decade decades year years yearly annual annually daily weekly week weeks month "
                   "months day days hour hours minute minutes spring summer autumn fall winter ago era "
                   "morning evening night noon midnight season seasons period weekday weekdays weekend weekends "
                   "tonight dawn dusk o'clock am pm").split()) | set(_MONTHS)
_DIGIT = re.compile(r"\d")
_NEGATION = re.compile(r"\b(?:not|never|no|none|nothing|neither|nor|without|cannot)\b|n[’']t\b", re.I)
# Words that frame a question rather than name its topic ("what is the *name* of…", "what *kind* of…").
FRAME_WORDS = frozenset(("name names named call called kind kinds type types sort sorts way ways mean means meant "
                         "happen happened happens thing things one ones example examples part parts role roles "
                         "purpose reason reasons many much long old far often big large year years date day time "
                         "make makes made get gets got give gives gave take takes took tell know describe "
                         "explain list say said").split())
_WORD = re.compile(r"[^\W\d_][\w'’-]*|\d[\d,.:/-]*")
_CAPITALISED = re.compile(r"\b[A-ZÀ-Þ][\w’'-]*(?:\s+(?:of|de|del|la|von|van|the|and)?\s*[A-ZÀ-Þ][\w’'-]*)*")


@lru_cache(maxsize=4096)
def question_kind(question: str) -> str:
    """What the question asks for: "how_many", "when", "who", "where", or "other" (what, which, why, how...)."""
    for kind, pattern in _KINDS:
        if pattern.search(question):
            return kind
    return "other"


@lru_cache(maxsize=65_536)
def names(text: str) -> frozenset[str]:
    """Capitalised words of `text` that are not the first word of a sentence, folded (a crude proper-noun test)."""
    out = set()
    for m in _CAPITALISED.finditer(text):
        before = text[: m.start()].rstrip()
        if not before or before[-1] in ".!?:\"“(":
            words = m.group().split()[1:]  # the first word may be capitalised only because it starts a sentence
        else:
            words = m.group().split()
        out.update(w.lower().strip("’'") for w in words if len(w) > 1)
    return frozenset(out)


@lru_cache(maxsize=65_536)
def words(text: str) -> frozenset[str]:
    """The words and numbers of `text`, lower-cased."""
    return frozenset(w.lower() for w in _WORD.findall(text))


def holds_kind(kind: str, quote: str, question: str) -> bool | None:
    """Whether `quote` holds something of the kind a `kind` question asks for; None when the kind sets no test.

    A number or a date counts; a name counts only when the question does not already hold it.
    """
    if kind == "how_many":
        return bool(_DIGIT.search(quote)) or not _NUMBER_WORDS.isdisjoint(words(quote))
    if kind == "when":  # a date, a day, or a time ("at eight")
        return bool(_DIGIT.search(quote)) or not (_DATE_WORDS | _NUMBER_WORDS).isdisjoint(words(quote))
    if kind in ("who", "where"):
        return bool(names(quote) - words(question))
    return None


def is_negated(text: str) -> bool:
    """Whether `text` holds a negation ("not", "never", "no", "n't"...)."""
    return bool(_NEGATION.search(text))
