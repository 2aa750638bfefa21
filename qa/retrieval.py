"""Hybrid retrieval: dense candidates (FAISS) and lexical ones (BM25), rescored on exact features.

Stage one gathers candidates from both indexes. Stage two computes, for each
candidate passage, the cosine of the question with every text embedded for it
(the paragraph, its sentences, an FAQ question and its other phrasings, an FAQ
answer) and its BM25 score, and fuses them into one score.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .lexical import analyze
from .store import FIELD_ALTERNATE, FIELD_QUESTION, FIELD_SENTENCE, FIELD_TEXT, StoredIndex, lexical_text
from .types import Hit


@dataclass(frozen=True)
class RetrievalSettings:
    """Weights of the fused score; fixed at construction, chosen by `qa eval` (see docs/quality.md)."""

    candidates: int = 50  # passages rescored per query
    lexical_weight: float = 0.25  # weight of BM25, normalised by the best BM25 score of the query
    answer_weight: float = 0.9  # how much an FAQ answer's similarity counts next to its question's
    sentence_weight: float = 1.0  # how much a paragraph's best sentence counts next to the whole


@dataclass(frozen=True)
class Evidence:
    """Why a passage was retrieved: the features the fused score was made of."""

    row: int
    score: float
    dense: float
    lexical: float  # BM25 normalised to [0, 1] by the query's best
    coverage: float  # IDF-weighted share of the question's terms found in the passage
    key_scores: dict[int, float] = field(default_factory=dict)  # key row -> cosine


class Retriever:
    """Finds the passages of a stored index that best match a question vector and text."""

    def __init__(self, index: StoredIndex, settings: RetrievalSettings | None = None):
        self.index = index
        self.settings = settings or RetrievalSettings()
        keys = index.keys
        # keys are grouped by passage: row r's keys are keys[starts[r]:starts[r + 1]]
        self._starts = np.searchsorted(keys[:, 0], np.arange(len(index.passages) + 1)).astype(np.int64)
        self._idf = index.lexical.idf()
        # A question term no passage contains is as rare as a term can be: it counts against coverage.
        n = len(index.passages)
        self._unseen_idf = float(np.log1p((n + 0.5) / 0.5))

    def dense_candidates(self, qvec: np.ndarray, n: int) -> dict[int, float]:
        """Passage rows of the `n` nearest keys, each with its best cosine."""
        total = self.index.vectors.ntotal
        if total == 0:
            return {}
        scores, ids = self.index.vectors.search(qvec.reshape(1, -1), min(total, n))
        best: dict[int, float] = {}
        for score, key in zip(scores[0], ids[0]):
            if key < 0:
                continue
            row = int(self.index.keys[key, 0])
            best[row] = max(best.get(row, -1.0), float(score))
        return best

    def key_vectors(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """(key rows, vectors) of one passage."""
        start, stop = int(self._starts[row]), int(self._starts[row + 1])
        ids = np.arange(start, stop)
        return ids, self.index.vectors.reconstruct_batch(ids)

    def coverage(self, question_terms: list[str], text_terms: set[str]) -> float:
        """IDF-weighted share of the question's terms that occur in a text."""
        weights = [self._idf.get(t, self._unseen_idf) for t in question_terms]
        total = sum(weights)
        if total <= 0:
            return 0.0
        return sum(w for t, w in zip(question_terms, weights) if t in text_terms) / total

    def search(self, question: str, qvec: np.ndarray, k: int) -> list[tuple[Hit, Evidence]]:
        """The `k` best passages for a question, best first.

        Args:
            question: the question text (for BM25).
            qvec: its unit embedding, shape (dimension,).
            k: how many passages to return.
        """
        s = self.settings
        n = max(s.candidates, k)
        dense = self.dense_candidates(qvec, n * 4)
        bm25 = self.index.lexical.scores(question)
        top_lexical = np.argsort(-bm25)[:n] if bm25.size else np.array([], dtype=np.int64)
        rows = set(sorted(dense, key=dense.get, reverse=True)[:n])
        rows.update(int(r) for r in top_lexical if bm25[r] > 0)
        best_bm25 = float(bm25.max()) if bm25.size else 0.0
        terms = analyze(question)
        keys = self.index.keys

        evidence = []
        for row in rows:
            ids, vectors = self.key_vectors(row)
            cosines = vectors @ qvec
            fields = keys[ids, 1]
            passage = self.index.passages[row]
            text_sim = float(cosines[fields == FIELD_TEXT].max())
            sentence = cosines[fields == FIELD_SENTENCE]
            if passage.kind == "faq":
                asked = cosines[(fields == FIELD_QUESTION) | (fields == FIELD_ALTERNATE)]
                dense_score = max(float(asked.max()) if asked.size else -1.0, s.answer_weight * text_sim)
            else:
                best_sentence = float(sentence.max()) if sentence.size else text_sim
                dense_score = max(text_sim, s.sentence_weight * best_sentence)
            lexical = float(bm25[row]) / best_bm25 if best_bm25 > 0 else 0.0
            coverage = self.coverage(terms, set(analyze(lexical_text(passage))))
            score = dense_score + s.lexical_weight * lexical
            evidence.append(
                Evidence(row, score, dense_score, lexical, coverage, dict(zip(ids.tolist(), cosines.tolist())))
            )
        evidence.sort(key=lambda e: (-e.score, e.row))
        return [
            (Hit(self.index.passages[e.row], e.score, rank), e) for rank, e in enumerate(evidence[:k])
        ]
