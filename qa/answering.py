"""Grounded answers: a verbatim quote of the best passage, or an honest abstention.

An FAQ match answers with the FAQ's answer, whole. A paragraph match answers
with the one or two sentences of it that best answer the question. Either way
the answer's text is cut from the passage by offsets and checked against it,
so it cannot say anything the documents do not.
"""

from __future__ import annotations

import math
from functools import lru_cache
from dataclasses import dataclass

from .lexical import analyze, coverage
from .retrieval import Evidence
from .types import Answer, Citation, Hit, Passage

NOT_COVERED = "The documents do not cover this question."


class GroundingError(AssertionError):
    """A quote did not match its source: a bug, never shown as an answer."""


@dataclass(frozen=True)
class AnswerSettings:
    """How answers are cut and when the bot abstains; see docs/quality.md for how these were chosen."""

    threshold: float = 0.5  # answer when confidence >= threshold
    confidence_center: float = 0.495  # evidence at which confidence is 0.5
    confidence_scale: float = 12.0  # steepness of the confidence curve
    coverage_weight: float = 0.4  # weight of the question-term coverage in the confidence evidence
    sentence_lexical_weight: float = 0.75  # weight of term coverage when picking sentences
    second_sentence_margin: float = 0.4  # add the better neighbour sentence when it scores within this of the best
    max_answer_words: int = 80  # never extend an answer past this many words


def quote(passage: Passage, start: int, end: int) -> str:
    """The exact source text between two source offsets of `passage`."""
    return passage.text[start - passage.start : end - passage.start]


def check_citation(passage: Passage, citation: Citation) -> None:
    """Raise GroundingError unless the citation's quote is exactly the passage's text at its offsets."""
    if not (passage.start <= citation.start <= citation.end <= passage.end) or quote(
        passage, citation.start, citation.end
    ) != citation.quote or not citation.quote.strip():
        raise GroundingError(f"quote of {passage.id} does not match its source at {citation.start}:{citation.end}")


@lru_cache(maxsize=65_536)
def _terms(sentence: str) -> frozenset[str]:
    """The analysed terms of a sentence, cached: the same top passages come back question after question."""
    return frozenset(analyze(sentence))


class Answerer:
    """Turns retrieved passages (with their Evidence) into an Answer."""

    def __init__(self, settings: AnswerSettings | None = None):
        self.settings = settings or AnswerSettings()

    def confidence(self, evidence: Evidence) -> float:
        """A number in [0, 1] from the best passage's dense similarity and term coverage."""
        s = self.settings
        x = evidence.dense + s.coverage_weight * evidence.coverage
        return 1.0 / (1.0 + math.exp(-s.confidence_scale * (x - s.confidence_center)))

    def best_span(self, passage: Passage, evidence: Evidence) -> tuple[int, int]:
        """Source offsets of the sentence(s) of a paragraph that best answer the question."""
        s = self.settings
        sentences = passage.sentences
        if len(sentences) <= 1:
            return passage.start, passage.end
        cosine, weights = evidence.sentence_cosines, evidence.term_weights
        scores = []
        for i, span in enumerate(sentences):
            words = _terms(quote(passage, span.start, span.end))
            scores.append(cosine.get(i, 0.0) + s.sentence_lexical_weight * coverage(weights, words))
        best = max(range(len(sentences)), key=lambda i: (scores[i], -i))
        first = last = best
        neighbours = [j for j in (best - 1, best + 1) if 0 <= j < len(sentences)]
        neighbour = max(neighbours, key=lambda j: scores[j]) if neighbours else None
        if neighbour is not None and scores[neighbour] >= scores[best] - s.second_sentence_margin:
            start, end = min(best, neighbour), max(best, neighbour)
            if len(quote(passage, sentences[start].start, sentences[end].end).split()) <= s.max_answer_words:
                first, last = start, end
        return sentences[first].start, sentences[last].end

    def answer(self, question: str, results: list[tuple[Hit, Evidence]], threshold: float | None = None) -> Answer:
        """The Answer for `question` from ranked retrieval results.

        Args:
            question: the question as asked.
            results: (hit, evidence) pairs, best first.
            threshold: overrides the configured abstention threshold.
        """
        threshold = self.settings.threshold if threshold is None else threshold
        hits = tuple(hit for hit, _ in results)
        if not results:
            return Answer(question, NOT_COVERED, False, 0.0, (), hits)
        top, evidence = results[0]
        confidence = self.confidence(evidence)
        if not confidence >= threshold:  # NaN evidence never answers
            return Answer(question, NOT_COVERED, False, confidence, (), hits)
        passage = top.passage
        if passage.kind == "faq":
            start, end = passage.start, passage.end
        else:
            start, end = self.best_span(passage, evidence)
        citation = Citation(
            passage_id=passage.id,
            kind=passage.kind,
            source=passage.title,
            path=passage.path,
            label=passage.label,
            quote=quote(passage, start, end),
            start=start,
            end=end,
            score=top.score,
            page=passage.page,
        )
        check_citation(passage, citation)
        return Answer(question, citation.quote, True, confidence, (citation,), hits)
