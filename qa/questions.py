"""What a question asks for, and whether a piece of text holds that kind of thing.

A careful reader expects a date or a year in the answer to a *when* question,
a number in the answer to *how many* / *how much* / *how long*, and a name the
question does not already hold in the answer to *who* or *where*. These are
plain rules on the text: no model.
"""

from __future__ import annotations

import re
from functools import lru_cache

from .lexical import analyze

# The question's kind, from its first wh-word ("What does Doctor Who do when…" asks "what"); each kind maps to
# what its answer must hold. "What are the opening hours…" asks when, as "What time…" does. At one position the longer form wins ("how many" before "how").
_KIND = re.compile(
    r"\b(?:(?P<how_many>how\s+(?:many|much|long|old|far|big|large|tall|high|often|few)"
    r"|what\s+(?:percentage|percent|proportion|fraction|share|amount|number))"
    r"|(?P<when>when|what\s+(?:year|month|day|date|time|century|decade|era|period)"
    r"|which\s+(?:year|month|day|date|century|decade)"
    r"|what\s+(?:are|is|were|was)\s+(?:the\s+|your\s+|its\s+|their\s+)?(?:[\w-]+\s+){0,2}(?:hours|times|schedule|dates)\b)"
    r"|(?P<who>who|whom|whose)|(?P<where>where)|(?P<other>what|which|why|how))\b",
    re.I,
)
_MONTHS = ("january february march april may june july august september october november december "
           "jan feb mar apr jun jul aug sep sept oct nov dec").split()
_NUMBER_WORDS = set(("one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
                     "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety "
                     "hundred hundreds thousand thousands million millions billion billions dozen dozens "
                     "half halves third thirds quarter quarters twice once several few").split())
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
                         "explain list say said nickname nicknamed entity entities besides percentage percent "
                         "proportion fraction amount number total average minimum maximum").split())
_WORD = re.compile(r"[^\W\d_][\w'’-]*|\d[\d,.:/-]*")
# A place is named after a preposition of place (which may start a sentence): "in St. Petersburg", "at the
# Piskaryovskoye Cemetery", "At 12 Harbour Street".
_PLACE = re.compile(r"\b(?i:in|at|near|from|into|inside|outside|across|along|within|around|throughout|beyond|"
                    r"towards?|through|off|on|to)\s+(?:the\s+)?(?:\d+[A-Za-z]?,?\s+)?((?:[A-ZÀ-Þ][\w’'.-]*)(?:\s+(?:of\s+)?[A-ZÀ-Þ][\w’'.-]*)*)")
_CAPITALISED = re.compile(r"\b[A-ZÀ-Þ][\w’'-]*(?:\s+(?:of|de|del|la|von|van|the|and)?\s*[A-ZÀ-Þ][\w’'-]*)*")


# "What language…", "Which governor…", "What kind of music…": the thing asked for, named after the wh-word.
_ASKED_FOR = re.compile(r"\b(?:what|which)\s+(?:(?:kinds?|types?|sorts?)\s+of\s+)?([^\W\d_][\w'’-]*)", re.I)
_MODALS = frozenset("would could must may might shall ought".split())


@lru_cache(maxsize=4096)
def asked_for(question: str) -> str | None:
    """The thing a what / which question asks for by name, lower-cased: "language" in "What language did he
    speak?", "governor" in "Which governor did he meet?", "music" in "What kind of music…?"; None for a question
    that names none: a verb after the wh-word ("What did he lay…?", "Which is…?") or a word that only frames
    the question ("What year…", "What is the name of…")."""
    m = _ASKED_FOR.search(question)
    word = m.group(1).lower() if m else None
    if word is None or word in _MODALS or word in FRAME_WORDS or not analyze(word):  # a stopword: "did", "is"
        return None
    return word


@lru_cache(maxsize=4096)
def question_kind(question: str) -> str:
    """What the question asks for, by its first wh-word: "how_many", "when", "who", "where", or "other"
    (what, which, why, how... or no wh-word)."""
    m = _KIND.search(question)
    return m.lastgroup if m else "other"


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
    """The words and numbers of `text`, lower-cased ("2024," is the number 2024)."""
    return frozenset(w.lower().rstrip(",.:/-") for w in _WORD.findall(text))


def holds_kind(kind: str, quote: str, question: str) -> bool | None:
    """Whether `quote` holds something of the kind a `kind` question asks for; None when the kind sets no test.

    A number, a date, a name (who) or a place after "in", "at", "near"... (where) counts only when the
    question does not already hold it: "How much oil did
    Russia ship in 2024?" is not answered by a sentence whose only number is 2024.
    """
    new = words(quote) - words(question)
    parts = {part for w in new for part in w.split("-")}  # "two-thirds", "six-time"
    if kind == "how_many":
        return any(_DIGIT.search(w) for w in new) or not _NUMBER_WORDS.isdisjoint(parts)
    if kind == "when":  # a date, a day, or a time ("at eight")
        return any(_DIGIT.search(w) for w in new) or not (_DATE_WORDS | _NUMBER_WORDS).isdisjoint(parts)
    if kind == "who":
        return bool(names(quote) - words(question))
    if kind == "where":  # a place the question does not name
        asked = words(question)
        return any(words(m.group(1)) - asked for m in _PLACE.finditer(quote))
    return None


def is_negated(text: str) -> bool:
    """Whether `text` holds a negation ("not", "never", "no", "n't"...)."""
    return bool(_NEGATION.search(text))
