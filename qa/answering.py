"""Grounded answers: a verbatim quote, a "did you mean…?", or an honest abstention.

For each of the best few retrieved passages the reader (qa/comprehension, a
model trained here) reads the question against the passage (an FAQ pair: its
question and answer) and says how likely it answers the question and which
words do. The answerer cuts the quote it would give (an FAQ pair: its answer,
whole; a paragraph: the sentence(s) holding the reader's span) and the answer
model (qa/answerability.py) weighs the reader's probability, retrieval's match
and a careful reader's checks into a confidence. The most confident candidate
is answered when the model is sure enough; when it is less sure, the
candidates become suggestions ("did you mean…?", most confident first, never
a list of one); when nothing is likely, the bot abstains. Every quote is cut
from its passage by offsets and checked against it, so it cannot say anything
the documents do not.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import lru_cache

from .answerability import AnswerModel, Candidate, candidate_features, default_model, missing_details
from .comprehension import Comprehension, Reading
from .questions import holds_kind, question_kind
from .lexical import analyze, coverage, fold
from .retrieval import Evidence
from .types import Answer, Citation, Hit, Passage, Suggestion

NOT_COVERED = "The documents do not cover this question."
NOT_SURE = "I am not sure which of these you mean."


class GroundingError(AssertionError):
    """A quote did not match its source: a bug, never shown as an answer."""


@dataclass(frozen=True)
class AnswerSettings:
    """How answers are cut and chosen; see docs/quality.md for how these were chosen.

    Attributes:
        model: weighs a candidate's features into the probability that its quote answers the question,
            and holds the answer / suggest thresholds and the closeness rule.
        threshold: overrides `model.answer_at` when set (`QA_THRESHOLD`, `--threshold`).
        candidates: how many of the best retrieved passages are weighed.
        max_suggestions: at most this many suggestions.
    """

    model: AnswerModel = field(default_factory=default_model)
    threshold: float | None = None
    candidates: int = 3  # each is read by the reader: the cost of ask() grows with it (docs/performance.md)
    max_suggestions: int = 3
    sentence_lexical_weight: float = 0.75  # weight of term coverage when picking sentences
    sentence_kind_weight: float = 0.0  # bonus of a sentence holding the kind of thing asked for (a date, a number)
    second_sentence_margin: float = 0.4  # add the better neighbour sentence when it scores within this of the best
    max_answer_words: int = 80  # never extend an answer past this many words

    @property
    def answer_at(self) -> float:
        return self.model.answer_at if self.threshold is None else self.threshold


def check_citation(passage: Passage, citation: Citation) -> None:
    """Raise GroundingError unless the citation's quote is exactly the passage's text at its offsets."""
    if not (passage.start <= citation.start <= citation.end <= passage.end) or passage.text_at(
        citation.start, citation.end
    ) != citation.quote or not citation.quote.strip():
        raise GroundingError(f"quote of {passage.id} does not match its source at {citation.start}:{citation.end}")


@lru_cache(maxsize=65_536)
def _terms(sentence: str) -> frozenset[str]:
    """The analysed terms of a sentence, cached: the same top passages come back question after question."""
    return frozenset(analyze(sentence))


@dataclass(frozen=True)
class Scored:
    """One candidate: the retrieved passage, the quote it would give, its features and their probability."""

    hit: Hit
    evidence: Evidence
    start: int
    end: int
    features: Candidate
    probability: float
    span: tuple[int, int] | None = None  # source offsets of the reader's answer words, inside the quote

    @property
    def passage(self) -> Passage:
        return self.hit.passage


class Candidates:
    """One question's weighed candidates, scored when first needed.

    The first alone settles most questions (an answer with no close rival, or nothing likely enough to suggest),
    and the reader is most of ask()'s cost: the others are read, together, only when the decision asks for
    them (a "did you mean…?", a close rival, a rerank or a pass-over).

    Args:
        score: scores a list of (hit, evidence) results (`Answerer.score` for one question).
        results: the best `AnswerSettings.candidates` retrieval results, best first.
        scored: all of them already scored (to decide as if every candidate were read).
    """

    def __init__(self, score, results: list[tuple[Hit, Evidence]], scored: list[Scored] | None = None):
        self._score = score
        self.results = results
        self._scored: list[Scored] = list(scored or ())

    @property
    def first(self) -> Scored:
        if not self._scored:
            self._scored = self._score(self.results[:1])
        return self._scored[0]

    def all(self) -> list[Scored]:
        if len(self._scored) < len(self.results):
            self._scored = [self.first, *self._score(self.results[1:])]
        return self._scored


def says(passage: Passage) -> str:
    """What a passage offers, normalised: an FAQ pair its question, a paragraph its text.

    Two FAQ pairs that answer the same question (a thread's several answers) are not two meanings to ask the
    user about; nor is one paragraph indexed from two files. "Did you mean X or X?" is no question.
    """
    offered = (passage.question or passage.text) if passage.kind == "faq" else passage.text
    return " ".join(fold(offered).split())


def first_sentence(passage: Passage) -> str:
    """A paragraph's first sentence (what a suggestion shows of it), or the FAQ question."""
    if passage.kind == "faq":
        return passage.question or passage.text
    if passage.sentences:
        span = passage.sentences[0]
        return passage.text_at(span.start, span.end)
    return passage.text


def reader_text(passage: Passage, frame: str = "") -> tuple[str, int]:
    """What the reader reads of a passage, and where the passage's text starts in it.

    An FAQ pair is read as its question followed by its answer: the question says what the
    answer is about, as a paragraph's own words do. A paragraph is read after `frame` when one
    is given (`framing`).
    """
    if passage.kind == "faq" and passage.question:
        return f"{passage.question}\n{passage.text}", len(passage.question) + 1
    if frame:
        return f"{frame}\n{passage.text}", len(frame) + 1
    return passage.text, 0


def framing(question: str, passage: Passage, evidence: Evidence) -> str:
    """The frame the reader reads a paragraph after: its document's title and first sentence
    (`Evidence.frame`) when they state a name or number the question asks about and the paragraph
    does not ("What did the *Cuban* leader lay?" against "the leader laid a floral tribute"), as a
    reader of the article knows whose leader it is; otherwise nothing."""
    if passage.kind != "paragraph" or not evidence.frame:
        return ""
    missing = missing_details(question, passage.text)
    if not missing or not missing - missing_details(question, evidence.frame):
        return ""
    return evidence.frame


def sentences_around(passage: Passage, start: int, end: int) -> tuple[int, int]:
    """Source offsets of the sentence(s) of a paragraph that hold the source range [start, end)."""
    spans = passage.sentences
    if len(spans) <= 1:
        return passage.start, passage.end
    first = next((s for s in spans if s.end > start), spans[-1])
    last = next((s for s in reversed(spans) if s.start < end), spans[0])
    if last.end < first.start:  # the range falls between two sentences
        last = first
    return first.start, last.end


class Answerer:
    """Turns retrieved passages (with their Evidence) into an Answer.

    Args:
        settings: how answers are cut and chosen.
        reader: the reading-comprehension model; None reads no passage (confidence from retrieval's
            match and the checks alone, as before the reader: for tests of those parts).
    """

    def __init__(self, settings: AnswerSettings | None = None, reader: Comprehension | None = None):
        self.settings = settings or AnswerSettings()
        self.reader = reader

    def read(self, question: str, passages: list[Passage], frames: list[str] | None = None) -> list[Reading | None]:
        """The reader's reading of each passage, after its frame when it has one (`framing`); None for each when
        there is no reader.

        A framed reading whose answer words are in the frame says the answer is in the frame's paragraph, not
        this one: the passage is read again alone, and that reading stands.
        """
        if self.reader is None or not passages:
            return [None] * len(passages)
        frames = list(frames or [""] * len(passages))  # the caller's list stays as it was
        readings = self.reader.read(question, [reader_text(p, f)[0] for p, f in zip(passages, frames)])
        again = [i for i, (p, f, r) in enumerate(zip(passages, frames, readings))
                 if f and r.start < reader_text(p, f)[1]]
        for i, reading in zip(again, self.reader.read(question, [passages[i].text for i in again]) if again else ()):
            readings[i], frames[i] = reading, ""
        return [self._unframed(r, p, f) for r, p, f in zip(readings, passages, frames)]

    @staticmethod
    def _unframed(reading: Reading, passage: Passage, frame: str) -> Reading:
        """A framed reading with its span's offsets in `reader_text(passage)` (as if read without the frame)."""
        if not frame:
            return reading
        shift = reader_text(passage, frame)[1] - reader_text(passage)[1]
        return dataclasses.replace(reading, start=reading.start - shift, end=reading.end - shift)

    def reader_span(self, passage: Passage, reading: Reading | None) -> tuple[int, int] | None:
        """Source offsets of the reader's answer words in `passage`'s text, or None (not in the text)."""
        if reading is None or reading.end <= reading.start:
            return None
        shift = reader_text(passage)[1]
        start, end = reading.start - shift, reading.end - shift
        if start < 0 or end > len(passage.text) or not passage.text[start:end].strip():
            return None
        return passage.start + start, passage.start + end

    def around_span(self, passage: Passage, span: tuple[int, int], start: int, end: int) -> tuple[int, int]:
        """The quote for the reader's span: the sentence(s) holding it, and with them the sentences
        [start, end) that best match the question when the whole stays within `max_answer_words`.

        The reader's sentence holds the words it found; the best-matching sentences hold the question's
        own words, and with them the answer when the reader's span is off (docs/quality.md measures both).
        """
        first, last = sentences_around(passage, *span)
        merged = min(first, start), max(last, end)
        if len(passage.text_at(*merged).split()) <= self.settings.max_answer_words:
            return merged
        return first, last

    def best_span(self, passage: Passage, evidence: Evidence, kind: str = "other", question: str = "") -> tuple[int, int]:
        """Source offsets of the sentence(s) of a paragraph that best answer the question."""
        s = self.settings
        sentences = passage.sentences
        if len(sentences) <= 1:
            return passage.start, passage.end
        cosine, weights = evidence.sentence_cosines, evidence.term_weights
        scores = []
        for i, span in enumerate(sentences):
            text = passage.text_at(span.start, span.end)
            score = cosine.get(i, 0.0) + s.sentence_lexical_weight * coverage(weights, _terms(text))
            if s.sentence_kind_weight and holds_kind(kind, text, question):
                score += s.sentence_kind_weight
            scores.append(score)
        best = max(range(len(sentences)), key=lambda i: (scores[i], -i))
        first = last = best
        neighbours = [j for j in (best - 1, best + 1) if 0 <= j < len(sentences)]
        neighbour = max(neighbours, key=lambda j: scores[j]) if neighbours else None
        if neighbour is not None and scores[neighbour] >= scores[best] - s.second_sentence_margin:
            start, end = min(best, neighbour), max(best, neighbour)
            if len(passage.text_at(sentences[start].start, sentences[end].end).split()) <= s.max_answer_words:
                first, last = start, end
        return sentences[first].start, sentences[last].end

    def score(self, question: str, results: list[tuple[Hit, Evidence]], read_as: str | None = None) -> list[Scored]:
        """The best `settings.candidates` results, each with its quote and probability.

        In retrieval's order: reranking by the model cost Recall@1 when measured (docs/quality.md).
        `read_as` is the question as the reader reads it: a follow-up such as "And when?" joined to the
        question before it (`Bot`), since alone it asks nothing a passage can answer; None: `question`.
        """
        kind = question_kind(question)
        model = self.settings.model
        results = results[: self.settings.candidates]
        asked = read_as or question
        readings = self.read(asked, [hit.passage for hit, _ in results],
                             [framing(asked, hit.passage, evidence) for hit, evidence in results])
        scored = []
        for (hit, evidence), reading in zip(results, readings):
            passage = hit.passage
            span = self.reader_span(passage, reading)
            if passage.kind == "faq":
                start, end = passage.start, passage.end
                quote_cosine = evidence.asked_cosine
                asked = "\n".join([passage.question or "", *passage.alternates])
            else:
                start, end = self.best_span(passage, evidence, kind, question)
                if span is not None:
                    start, end = self.around_span(passage, span, start, end)
                chosen = [i for i, s in enumerate(passage.sentences) if start <= s.start and s.end <= end]
                cosines = [evidence.sentence_cosines[i] for i in chosen if i in evidence.sentence_cosines]
                quote_cosine = max(cosines) if cosines else evidence.text_cosine
                asked = ""
            features = candidate_features(
                question, evidence.term_weights, evidence.unseen_terms,
                is_faq=passage.kind == "faq", dense=evidence.dense, quote_cosine=quote_cosine,
                passage_coverage=evidence.coverage, quote=passage.text_at(start, end), asked_text=asked,
                passage_text=passage.text, score=hit.score, read=reading.answerable if reading else 0.0,
                context=evidence.context,
            )
            scored.append(Scored(hit, evidence, start, end, features, model.probability(features), span))
        return scored

    def candidates(self, question: str, results: list[tuple[Hit, Evidence]], read_as: str | None = None) -> Candidates:
        """The best `settings.candidates` results, to be scored when the decision needs them (`score`)."""
        return Candidates(lambda some: self.score(question, some, read_as), results[: self.settings.candidates])

    def confidence(self, question: str, results: list[tuple[Hit, Evidence]], read_as: str | None = None) -> float:
        """The confidence of the answer `results` would give `question` (0 when there is none; `read_as`: `score`)."""
        if not results:
            return 0.0
        candidates = self.candidates(question, results, read_as)
        return self.answering_candidate(candidates).probability

    def answering_candidate(self, candidates: Candidates) -> Scored:
        """Which candidate may answer.

        With `model.rerank`, the most confident one whose quote passes the checks (the most confident
        when none does). Otherwise retrieval's first, or when its quote fails a check, the first of the
        next `model.pass_over` whose quote passes them all (the first again when none does).
        """
        model = self.settings.model
        first = candidates.first
        if model.rerank:
            scored = candidates.all()
            passing = [i for i, c in enumerate(scored) if model.can_answer(c.features)] or range(len(scored))
            return scored[max(passing, key=lambda i: (scored[i].probability, -i))]
        if model.can_answer(first.features) or not model.pass_over:
            return first
        scored = candidates.all()
        return next((c for c in scored[1 : model.pass_over + 1] if model.can_answer(c.features)), first)

    def cite(self, candidate: Scored) -> Citation:
        """The citation of a candidate's quote, checked against its passage."""
        passage = candidate.passage
        span = candidate.span
        inside = span is not None and candidate.start <= span[0] and span[1] <= candidate.end
        citation = Citation(
            passage_id=passage.id,
            kind=passage.kind,
            source=passage.title,
            path=passage.path,
            label=passage.label,
            quote=passage.text_at(candidate.start, candidate.end),
            start=candidate.start,
            end=candidate.end,
            score=candidate.hit.score,
            page=passage.page,
            answer_start=span[0] - candidate.start if inside else None,
            answer_end=span[1] - candidate.start if inside else None,
        )
        check_citation(passage, citation)
        return citation

    def answer(self, question: str, results: list[tuple[Hit, Evidence]], threshold: float | None = None,
               choose: str | None = None, read_as: str | None = None) -> Answer:
        """The Answer for `question` from ranked retrieval results.

        Args:
            question: the question as asked.
            results: (hit, evidence) pairs, best first.
            threshold: overrides the answer threshold for this call.
            choose: the id of a passage to answer from (a suggestion the user picked); it must be one of
                the suggestions this question is offered. A pick is evidence the review loop learns from
                (qa/review.py): a passage the bot retrieved but did not offer would let anyone attach any
                question to any passage.
            read_as: the question as the reader reads it (`score`); None: `question`.

        Raises:
            ValueError: `choose` is not among the suggestions this question is offered.
        """
        if not results:
            return self._chosen(Answer(question, NOT_COVERED, False, 0.0, (), ()), None, choose)
        hits = tuple(hit for hit, _ in results)
        candidates = self.candidates(question, results, read_as)
        return self._chosen(self._decide(question, candidates, hits, threshold), candidates, choose)

    def _chosen(self, decided: Answer, candidates: Candidates | None, choose: str | None) -> Answer:
        """`decided`, or with `choose` the answer from that suggestion (`answer`)."""
        if choose is None:
            return decided
        if choose not in {s.passage_id for s in decided.suggestions}:
            raise ValueError(f"passage {choose!r} is not among the candidates offered as suggestions for this question")
        return self._answered(decided.question, next(c for c in candidates.all() if c.passage.id == choose),
                              decided.passages)

    def _decide(self, question: str, candidates: Candidates, hits: tuple[Hit, ...], threshold: float | None) -> Answer:
        """Answered, suggested or abstained, from the weighed candidates (`answer`), reading no more of them
        than the outcome needs (`Candidates`)."""
        s = self.settings
        answer_at = s.answer_at if threshold is None else threshold
        suggest_at = min(s.model.suggest_at, answer_at)
        best = self.answering_candidate(candidates)
        confidence = best.probability
        model = s.model
        if (confidence >= answer_at and model.can_answer(best.features)
                and not self._too_close(best, candidates, answer_at)):
            return self._answered(question, best, hits)
        if not confidence >= suggest_at:  # NaN never suggests
            return Answer(question, NOT_COVERED, False, confidence, (), hits)
        offered = sorted((c for c in candidates.all() if c.probability >= suggest_at), key=lambda c: -c.probability)
        distinct: dict[str, Scored] = {}
        for c in offered:  # the most confident of the candidates that say the same
            distinct.setdefault(says(c.passage), c)
        offered = list(distinct.values())[: s.max_suggestions]
        if len(offered) == 1 and model.lone != "suggest":  # a list of one is no choice: answer it, or not
            # ... but never under a threshold the caller set: it asked for nothing less sure than that.
            chosen_threshold = threshold is not None or s.threshold is not None
            if (model.lone == "answer" and model.can_answer(offered[0].features)
                    and (not chosen_threshold or offered[0].probability >= answer_at)):
                return self._answered(question, offered[0], hits)
            return Answer(question, NOT_COVERED, False, confidence, (), hits)
        suggestions = tuple(
            Suggestion(c.passage.id, c.passage.kind, c.passage.title, c.passage.label, first_sentence(c.passage),
                       c.probability)
            for c in offered
        )
        return Answer(question, NOT_SURE, False, confidence, (), hits, suggestions)

    def _too_close(self, best: Scored, candidates: Candidates, answer_at: float) -> bool:
        """Too close to call: the runner-up's retrieval score is within `closeness` of the best's, and the reader
        does not tell them apart (a passage it accepts is answered beside a near-duplicate it does not accept;
        when it accepts both, the question leaves out what separates them). A runner-up that says the same as
        the best (another answer to the same FAQ question) is not a rival. The runner-up is read only when its
        retrieval score is that close and the best is read as answering."""
        closeness = self.settings.model.closeness
        at = next(i for i, (hit, _) in enumerate(candidates.results) if hit is best.hit)
        said = says(best.passage)
        rival = next((i for i, (hit, _) in enumerate(candidates.results) if i > at and says(hit.passage) != said), None)
        if closeness <= 0 or rival is None or candidates.results[rival][0].score < best.hit.score - closeness:
            return False
        return not (best.features.read >= answer_at > candidates.all()[rival].features.read)

    def _answered(self, question: str, candidate: Scored, hits: tuple[Hit, ...]) -> Answer:
        citation = self.cite(candidate)
        return Answer(question, citation.quote, True, candidate.probability, (citation,), hits)
