"""Does a quote answer the question? What a careful reader checks, as numbers.

Retrieval finds passages about the question's topic; a passage about the topic
may still not hold what is asked. Confidence starts from how well the passage
matches (its dense similarity and the share of the question's terms it holds)
and is cut when the quote fails a check a careful reader would make:

- **words the documents never use**: a question about a "daughter" or a "bank"
  that no document mentions is not answered by any of them (words that only
  frame a question, like "name" or "kind", do not count; a misspelt word of
  the passage is not unseen, nor a word English does not know one or two
  typing slips from a word of the documents: "directoy" is "directory"). In a
  short question the one such word is the crux; in a long one ("How do I stop
  Chrome asking to save passwords for one site?") one word in five or six is
  the asker's wording more often than what is asked, so the check fails when
  such words are at least a share of the question's topic words
  (`unseen_share`, chosen by measurement; 0: any one);
- **the kind of thing asked for**: a *when* question wants a date or a year in
  the quote, *how many* a number, *who* a name, *where* a place after "in",
  "at"..., each one the question does not already hold; the question's first
  wh-word sets its kind (qa/questions.py);
- **a detail the passage does not hold**: a name or a number the question
  states ("in Moscow", "in April 2024") that the passage never mentions: the
  passage is about another place, year or person, however close it reads.
  What frames the passage counts as the passage's own: its document's title
  and first paragraph ("the leader" of a later paragraph is the lede's "Cuban
  leader"). A name is held in another form too ("Catholic" by "Catholics", a
  misspelt "Maastrich" by "Maastricht"); a number only as stated.

An FAQ pair whose question is nearly the user's own (`faq_match`) and asks the
same kind of thing (who, when, how many...) is exempt from the first two checks:
it was written to answer exactly that, in its own words. Not from the third: a
day, place or name the user states that the FAQ never mentions ("Do you open on
Saturday?" against "Are you open on Sundays?") means it was written for another
case, however alike the two read. An FAQ pair the reader (qa/comprehension)
reads as answering the user's question (`reader_exempts_faq`) is exempt from the
same two checks, whatever its wording: users ask in words the FAQ's author did not
use ("folder" for "directory"), and the reader has read the pair's question and
answer against the user's, which is what those checks stand in for. Not when
the thing the question asks for by name is a word no document uses ("What
*language* did he speak?"): documents that never speak of languages name none,
whatever the reader makes of a pair about the visit.
`candidate_features` turns one candidate
into numbers; `AnswerModel` turns them into a confidence and holds the
thresholds of the three outcomes, which `python -m bench.select_answering`
chooses with each family of evaluation sets held out (docs/quality.md).
Nothing here reads an index or a model: the inputs come from retrieval.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .lexical import analyze, coverage, misspelt, unseen
from .questions import FRAME_WORDS, asked_for, holds_kind, is_negated, names, question_kind, words

MODEL_FILE = Path(__file__).with_name("answer_model.json")


@lru_cache(maxsize=65_536)
def _terms(text: str) -> frozenset[str]:
    return frozenset(analyze(text))


@lru_cache(maxsize=1)
def _frame_terms() -> frozenset[str]:
    return frozenset(analyze(" ".join(sorted(FRAME_WORDS))))


@dataclass(frozen=True)
class Candidate:
    """What the answer model sees of one retrieved passage and the quote cut from it."""

    is_faq: bool
    dense: float  # the passage's dense score (retrieval's)
    quote_cosine: float  # cosine of the question with the quoted sentence(s), or with the FAQ question
    coverage: float  # IDF-weighted share of the question's terms in the passage
    quote_coverage: float  # ... in the quote (for an FAQ pair: in its question and alternates)
    unseen_focus: float  # the share of the question's topic words (not framing words) that no document uses,
    # nor the passage as a typing slip (0: none)
    kind_missing: float  # 1 when the question asks for a number, date, name or place and the quote holds none new
    names_missing: float  # share of the question's names (capitalised words) that the quote does not hold
    negation_missing: float  # 1 when the question is negated ("not", "never") and the quote is not
    kind_differs: float  # 1 for an FAQ pair none of whose phrasings asks the kind of thing the question asks
    details_missing: float  # 1 when a name or number the question states is nowhere in the passage (or FAQ question),
    # its document's title or first paragraph
    score: float  # retrieval's fused score of the passage
    read: float = 0.0  # the reader's probability that the passage answers the question (qa/comprehension)
    asked_unseen: float = 0.0  # 1 when the thing a what / which question asks for by name ("what *language*")
    # is a word no document uses (`questions.asked_for`)


FEATURES = tuple(Candidate.__dataclass_fields__)
CHECKS = ("unseen_focus", "kind_missing", "details_missing")
NEVER_WAIVED = ("details_missing",)  # checks an FAQ's matching question does not exempt it from
LONE = ("answer", "abstain", "suggest")


def _kinds(asked_text: str) -> set[str]:
    """The kinds of thing an FAQ pair's phrasings (one a line) ask for."""
    return {question_kind(line) for line in asked_text.splitlines() if line.strip()}


def _bare(word: str) -> str:
    """A word without a possessive ending: "díaz-canel's" is "díaz-canel"."""
    return re.sub(r"['’]s?$", "", word)


def details(question: str) -> frozenset[str]:
    """The names (capitalised words) and numbers a question states, lower-cased, without possessives; a name
    joined by a dash ("Cuba–Russia") counts as its parts."""
    stated = {part for w in names(question) for part in re.split(r"[–—]", w) if part}
    stated |= {w for w in words(question) if any(c.isdigit() for c in w)}
    return frozenset(_bare(w) for w in stated)


@lru_cache(maxsize=65_536)
def _bare_words(text: str) -> frozenset[str]:
    return frozenset(_bare(w) for w in words(text))


def missing_details(question: str, text: str) -> frozenset[str]:
    """The names and numbers `question` states (`details`) that `text` nowhere holds.

    A name is held in another form as a careful reader would read it: inflected ("Catholic" of "Catholics"),
    joined by another dash ("Cretaceous-Paleogene" of "Cretaceous–Paleogene"), or misspelt by one or two typing
    slips, as `lexical.unseen` forgives them ("Maastrich" of "Maastricht", "Bedigo" of "Bendigo"; a word of
    five letters or more that English does not know). A number only as stated: 2024 is not 2025.
    """
    stated = details(question) - _bare_words(text)
    return frozenset(d for d in stated if not _held_as_form(d, text))


def _held_as_form(detail: str, text: str) -> bool:
    """Whether a name `text` does not hold as written is there in another form (`missing_details`)."""
    if any(c.isdigit() for c in detail):
        return False
    terms = analyze(detail)
    return bool(terms) and not unseen(detail, _terms(text))  # a name of stopwords alone ("US") only as written


def unseen_focus(weights: dict[str, float], unseen_terms: frozenset[str], passage_text: str) -> float:
    """The share of the question's topic words (not framing words like "name" or "kind") that no document uses.

    In on-topic questions the documents cannot answer, the one unseen word is usually the crux ("Who
    *designed* the cemetery?", "What did she *wear*?": one word in two to four). QnABot's softer rule (three
    topic words in four suffice) answered four such questions of our own about the bundled article
    (tests/fixtures/bundled_regression.jsonl); `AnswerModel.unseen_share` says from what share the check fails,
    and the selection chooses it. A word one or two typing slips from a word of the passage itself ("beriods"
    for "beroids") is read as that word: the passage, not the whole vocabulary, since in a large corpus nearly
    every word has a neighbour one edit away.
    """
    topic = set(weights) - _frame_terms()
    missing = unseen_terms & topic
    if not missing:  # the usual case: no need to analyse the passage
        return 0.0
    passage_terms = _terms(passage_text)
    return sum(not misspelt(t, passage_terms) for t in missing) / len(topic)


def candidate_features(
    question: str,
    weights: dict[str, float],
    unseen_terms: frozenset[str],
    *,
    is_faq: bool,
    dense: float,
    quote_cosine: float,
    passage_coverage: float,
    quote: str,
    asked_text: str,
    passage_text: str,
    score: float = 0.0,
    read: float = 0.0,
    context: str = "",
) -> Candidate:
    """The features of one candidate.

    Args:
        question: the question as asked.
        weights: IDF of each distinct analysed term of the question (`lexical.term_weights`).
        unseen_terms: the question's terms that no document holds.
        is_faq: the passage is an FAQ pair.
        dense: retrieval's dense score of the passage.
        quote_cosine: the question's cosine with the quoted sentences (FAQ: with its best question phrasing).
        passage_coverage: retrieval's coverage of the question's terms in the passage.
        quote: the words that would be cited.
        asked_text: for an FAQ pair, its question and alternates (what it answers); else "".
        passage_text: the whole passage (for an FAQ pair, its answer).
        score: retrieval's fused score of the passage.
        read: the reader's probability that the passage (an FAQ pair: its question and answer) answers the question.
        context: what frames the passage in its document (its title and first paragraph): a detail stated
            there is the passage's too ("the leader" of paragraph 3 is the Cuban leader of paragraph 1).
    """
    matched_terms = _terms(asked_text) if is_faq else _terms(quote)
    held = holds_kind(question_kind(question), quote, question)
    asked_names = names(question)
    where = f"{asked_text}\n{quote}"
    return Candidate(
        is_faq=is_faq,
        dense=dense,
        quote_cosine=quote_cosine,
        coverage=passage_coverage,
        quote_coverage=coverage(weights, matched_terms),
        unseen_focus=unseen_focus(weights, unseen_terms, f"{asked_text}\n{passage_text}"),
        kind_missing=1.0 if held is False else 0.0,
        names_missing=(len(asked_names - words(where)) / len(asked_names)) if asked_names else 0.0,
        negation_missing=1.0 if is_negated(question) and not is_negated(where) else 0.0,
        kind_differs=1.0 if is_faq and question_kind(question) not in _kinds(asked_text) else 0.0,
        details_missing=1.0 if missing_details(question, f"{asked_text}\n{passage_text}\n{context}") else 0.0,
        score=score,
        read=read,
        asked_unseen=1.0 if _asked_unseen(question, unseen_terms) else 0.0,
    )


def _asked_unseen(question: str, unseen_terms: frozenset[str]) -> bool:
    """Whether the thing `question` asks for by name (`questions.asked_for`) is a word no document uses."""
    asked = asked_for(question)
    return asked is not None and bool(_terms(asked) & unseen_terms)


def as_vector(c: Candidate) -> list[float]:
    """The candidate's features in `FEATURES` order."""
    return [float(getattr(c, name)) for name in FEATURES]


@dataclass(frozen=True)
class AnswerModel:
    """Confidence from a candidate's features, and the thresholds of the three outcomes.

    match = sigmoid(scale × (dense + coverage_weight × coverage − center)) is how well retrieval matched
    the passage; read is the reader's probability that the passage answers the question
    (qa/comprehension). confidence = (1 − w) × match + w × read, with w = `read_paragraph` for a
    paragraph and `read_faq` for an FAQ pair, multiplied by `failed_check` for each check in `checks`
    that the quote fails; an FAQ pair whose question
    matches the user's with a cosine of `faq_match` or more is exempt from the checks but those in
    `NEVER_WAIVED` (a detail the user states that the FAQ never mentions), and so is one the reader reads as
    answering with a probability of `reader_exempts_faq` or more (None: no pair is), unless the thing the
    question asks for by name is a word no document uses (`asked_unseen`). A quote that
    fails a check is never given as an answer, however confident: it can only be suggested. The exemption
    needs the FAQ to ask the same kind of thing: "What was the purpose of the visit?" was not written to
    answer "Who travelled with him?", however close the two read.

    Attributes:
        answer_at: answer when the best candidate's confidence is at least this.
        suggest_at: below `answer_at` but at least this, offer the best candidates as suggestions; below, abstain.
        closeness: when the runner-up's retrieval score is within this of the best's, suggest instead of
            answering (0: never).
        pass_over: when the first passage's quote fails a check, answer from the first of the next
            `pass_over` passages whose quote passes them all (a sentence that holds the asked-for fact beats
            one that does not); 0: never.
        read_paragraph, read_faq: the reader's weight in a paragraph's and an FAQ pair's confidence.
        reader_exempts_faq: the reader's probability at which an FAQ pair is exempt from the checks but those
            in `NEVER_WAIVED`, as one whose question matches is; None: the reader exempts none.
        unseen_share: the `unseen_focus` check fails when the words no document uses are at least this share
            of the question's topic words (0: any one such word).
        rerank: answer from the most confident candidate rather than from retrieval's first.
        lone: what a "did you mean…?" with a single suggestion becomes: "answer" (when its quote passes
            the checks) or "abstain", since a list of one is no choice to offer; "suggest" keeps it (as the
            bot did before the reader).
    """

    center: float = 0.495
    scale: float = 12.0
    coverage_weight: float = 0.4
    checks: tuple[str, ...] = CHECKS
    failed_check: float = 0.5
    faq_match: float = 0.9
    answer_at: float = 0.5
    suggest_at: float = 0.5
    closeness: float = 0.0
    pass_over: int = 0
    read_paragraph: float = 0.0
    read_faq: float = 0.0
    reader_exempts_faq: float | None = None
    rerank: bool = False
    lone: str = "abstain"
    unseen_share: float = 0.0

    def fails(self, name: str, value):
        """Whether a check's feature `value` (a number, or an array of them) fails it."""
        if name == "unseen_focus":
            return (value > 0) & (value >= self.unseen_share)
        return value >= 0.5

    def failed(self, c: Candidate) -> list[str]:
        """The checks `c`'s quote fails."""
        exempt = self.exempt(c)
        return [name for name in self.checks
                if (name in NEVER_WAIVED or not exempt) and self.fails(name, getattr(c, name))]

    def exempt(self, c: Candidate) -> bool:
        """Whether `c` is an FAQ pair exempt from the checks but `NEVER_WAIVED`: its question matches the user's
        and asks the same kind of thing, or the reader reads it as answering a question that does not ask for a
        thing no document names."""
        if not c.is_faq:
            return False
        if c.quote_cosine >= self.faq_match and not c.kind_differs:
            return True
        return self.reader_exempts_faq is not None and c.read >= self.reader_exempts_faq and not c.asked_unseen

    def can_answer(self, c: Candidate) -> bool:
        """Whether `c`'s quote may be given as an answer at all (it fails none of the checks)."""
        return not self.failed(c)

    def probability(self, c: Candidate) -> float:
        """The confidence that `c`'s quote answers the question, in [0, 1]."""
        x = self.scale * (c.dense + self.coverage_weight * c.coverage - self.center)
        match = 1.0 / (1.0 + math.exp(-x)) if x > -700 else 0.0
        weight = self.read_faq if c.is_faq else self.read_paragraph
        return ((1.0 - weight) * match + weight * c.read) * self.failed_check ** len(self.failed(c))

    def to_dict(self) -> dict:
        data = dict(self.__dict__)
        data["checks"] = list(self.checks)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "AnswerModel":
        """The model a dict (qa/answer_model.json) describes; keys it does not know are ignored.

        Raises:
            ValueError: a check that does not exist.
        """
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        unknown = [c for c in known.get("checks", ()) if c not in CHECKS]
        if unknown:
            raise ValueError(f"unknown answer checks {unknown}; known: {list(CHECKS)}")
        if known.get("lone", "abstain") not in LONE:
            raise ValueError(f"lone must be one of {', '.join(LONE)}, got {known['lone']!r}")
        if "checks" in known:
            known["checks"] = tuple(known["checks"])
        return cls(**known)


@lru_cache(maxsize=1)
def default_model() -> AnswerModel:
    """The shipped model: qa/answer_model.json, written by `python -m bench.select_answering --write`."""
    return AnswerModel.from_dict(json.loads(MODEL_FILE.read_text(encoding="utf-8")))
