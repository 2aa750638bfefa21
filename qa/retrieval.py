"""Hybrid retrieval: dense candidates (FAISS) and lexical ones (BM25), rescored on exact features.

Stage one gathers candidate passages from both indexes. Stage two computes,
for each candidate, the cosine of the question with every text embedded for it
(the paragraph and each of its sentences; an FAQ question, its other phrasings
and its answer), its BM25 score, and the IDF-weighted share of the question's
terms it contains, and fuses them into one score (`RetrievalSettings`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .keys import FIELD_ALTERNATE, FIELD_ENTRY, FIELD_QUESTION, FIELD_SENTENCE, FIELD_TEXT
from .lexical import analyze, term_weights, unseen, unseen_idf
from .stores import Index
from .types import Hit, Passage


@dataclass(frozen=True)
class RetrievalSettings:
    """Weights of the fused score; one configuration for every corpus, chosen by measurement (docs/quality.md)."""

    candidates: int = 50  # passages taken from each of the dense and the lexical index
    lexical_weight: float = 0.0  # BM25, divided by the best BM25 score among the candidates
    # IDF-weighted share of the question's terms found in the passage. It counts for more in a
    # paragraph, whose narrative text embeds further from a question than an FAQ question does.
    coverage_weight: float = 0.15  # for an FAQ pair
    paragraph_coverage_weight: float = 0.5  # for a paragraph
    answer_weight: float = 0.8  # an FAQ answer's similarity, next to its question's
    entry_weight: float = 0.9  # the whole FAQ pair's (question and answer as one text), next to its question's
    sentence_weight: float = 0.9  # a paragraph's best sentence, next to the whole paragraph
    # Rank on the share of the question's *indexed* terms ("known"), or of all its terms ("all", where a
    # word no document holds counts against every passage alike).
    coverage_of: str = "all"


@dataclass(frozen=True)
class Features:
    """What stage two knows about each candidate passage (arrays aligned with `rows`)."""

    rows: np.ndarray  # passage rows in the index
    is_faq: np.ndarray  # bool
    text: np.ndarray  # cosine with the paragraph, or with the FAQ answer
    sentence: np.ndarray  # best cosine with one sentence (= text for one-sentence passages)
    asked: np.ndarray  # best cosine with the FAQ question or an alternate (-1 for paragraphs)
    entry: np.ndarray  # cosine with the FAQ pair as one text (-1 for paragraphs, and in indexes built without it)
    bm25: np.ndarray  # raw BM25 score
    coverage: np.ndarray  # IDF-weighted share of the question's terms found in the passage
    known_coverage: np.ndarray  # the same share among the question's terms that the index holds
    key_starts: np.ndarray  # candidate i's keys are the key rows key_starts[i] : key_starts[i] + key_counts[i],
    key_counts: np.ndarray
    offsets: np.ndarray  # ... with cosines[offsets[i] : offsets[i] + key_counts[i]]
    cosines: np.ndarray  # the cosine of every candidate's every key with the question, candidate by candidate

    def keys_of(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Candidate i's key rows and their cosines with the question."""
        start, count, at = int(self.key_starts[i]), int(self.key_counts[i]), int(self.offsets[i])
        return np.arange(start, start + count), self.cosines[at : at + count]


@dataclass(frozen=True)
class Evidence:
    """Why one passage was retrieved: the parts of its fused score, and what answering needs to cut a quote.

    Attributes:
        sentence_cosines: the question's cosine with each embedded sentence of the passage, by sentence index
            (empty for a passage of one sentence, which is embedded whole only).
        term_weights: the IDF of each distinct analysed term of the question (see `lexical.term_weights`).
    """

    row: int
    score: float
    dense: float
    bm25: float
    coverage: float
    sentence_cosines: dict[int, float]
    term_weights: dict[str, float]
    text_cosine: float = 0.0  # with the paragraph, or with the FAQ answer
    asked_cosine: float = -1.0  # best with the FAQ question or an alternate (-1 for a paragraph)
    unseen_terms: frozenset[str] = frozenset()  # the question's terms that no passage holds
    context: str = ""  # what frames the passage in its document: the title and the first paragraph
    frame: str = ""  # the title and the first sentence of that paragraph (empty for the first paragraph itself)


def dense_score(f: Features, s: RetrievalSettings) -> np.ndarray:
    """The dense part of the fused score: best of question/answer/whole pair for FAQ pairs, of whole/sentence for paragraphs."""
    paragraph = np.maximum(f.text, s.sentence_weight * f.sentence)
    faq = np.maximum(np.maximum(f.asked, s.answer_weight * f.text), s.entry_weight * f.entry)
    return np.where(f.is_faq, faq, paragraph)


def fused_score(f: Features, s: RetrievalSettings) -> np.ndarray:
    """Dense similarity plus weighted lexical evidence; higher is better."""
    best = f.bm25.max() if f.bm25.size else 0.0
    lexical = f.bm25 / best if best > 0 else np.zeros_like(f.bm25)
    coverage = f.known_coverage if s.coverage_of == "known" else f.coverage
    weight = np.where(f.is_faq, s.coverage_weight, s.paragraph_coverage_weight)
    return dense_score(f, s) + s.lexical_weight * lexical + weight * coverage


def _first_occurrences(values: np.ndarray) -> np.ndarray:
    """`values` without repeats, each kept where it first occurs."""
    _, first = np.unique(values, return_index=True)
    return values[np.sort(first)]


class Retriever:
    """Finds the passages of a stored index that best match a question.

    Args:
        index: the loaded index.
        settings: fusion weights; the defaults are the measured best.
    """

    def __init__(self, index: Index, settings: RetrievalSettings | None = None):
        self.index = index
        self.settings = settings or RetrievalSettings()
        keys = index.keys
        # Keys are grouped by passage: passage r's keys are keys[starts[r]:starts[r + 1]].
        self._starts = np.searchsorted(keys[:, 0], np.arange(len(index.passages) + 1)).astype(np.int64)
        self._fields = keys[:, 1]
        self._is_faq = np.array([p.kind == "faq" for p in index.passages], dtype=bool)
        self.idf = index.lexical.idf()
        # A question term that no passage contains is as rare as a term can be: it counts against coverage.
        self.unseen_idf = unseen_idf(len(index.passages))
        self._vocabulary: list[str] | None = None
        self._ledes: dict[str, Passage] | None = None  # a document's first paragraph, by path (`context`)
        self._frames: dict[str, str] = {}  # a document's frame, by path (`frame`)

    def context(self, row: int) -> str:
        """What frames passage `row` in its document: the document's title and its first paragraph (the lede
        of an article says whose visit, where, when; the paragraphs after it say "the leader", "the city")."""
        passage = self.index.passages[row]
        lede = self._lede(passage)
        return f"{passage.title}\n{lede.text if lede else ''}"

    def frame(self, row: int) -> str:
        """The shortest frame of a later paragraph: its document's title and the first sentence of the first
        paragraph, which names whose visit and where ("The Cuban leader, Miguel Díaz-Canel, ... in St.
        Petersburg"). Empty for an FAQ pair and for the first paragraph itself."""
        passage = self.index.passages[row]
        lede = self._lede(passage)
        if passage.kind != "paragraph" or lede is None or lede.id == passage.id:
            return ""
        if passage.path not in self._frames:  # one a document, made when first asked for
            sentence = lede.text_at(lede.sentences[0].start, lede.sentences[0].end) if lede.sentences else lede.text
            self._frames[passage.path] = f"{passage.title}\n{sentence}"
        return self._frames[passage.path]

    def _lede(self, passage: Passage) -> Passage | None:
        """The first paragraph of `passage`'s document."""
        if self._ledes is None:
            self._ledes = {p.path: p for p in self.index.passages if p.kind == "paragraph" and p.position == 0}
        return self._ledes.get(passage.path)

    def key_rows(self, row: int) -> np.ndarray:
        """The key rows (rows of `index.keys` and of the vector index) of passage `row`."""
        return np.arange(int(self._starts[row]), int(self._starts[row + 1]))

    def term_weights(self, question: str) -> dict[str, float]:
        """The IDF of each distinct analysed term of `question` in this index."""
        return term_weights(analyze(question), self.idf, self.unseen_idf)

    def unseen_terms(self, question: str) -> frozenset[str]:
        """The terms of the words of `question` that no passage holds in any form, nor misspells (`lexical.unseen`)."""
        if self._vocabulary is None:  # listed once: a slip is looked for among every term of the index
            self._vocabulary = list(self.idf)
        return unseen(question, self.idf, self._vocabulary)

    def nearest_keys(self, qvecs: np.ndarray, n: int) -> np.ndarray:
        """Ids of the keys nearest each question, enough for `n` passages (-1 pads), in one store call for all.

        Several keys per passage: asks for more keys than passages wanted.
        """
        total = self.index.key_count
        if not total:
            return np.full((len(qvecs), 0), -1, dtype=np.int64)
        return self.index.nearest_keys(qvecs, min(total, n * 4))

    def candidates(self, question: str, qvec: np.ndarray, n: int,
                   nearest: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the best `n` passages by dense and by BM25 score, and BM25 scores of all passages.

        Args:
            nearest: this question's row of `nearest_keys`, when searched already in a batch.
        """
        if nearest is None:
            nearest = self.nearest_keys(qvec.reshape(1, -1), n)[0]
        dense = _first_occurrences(self.index.keys[nearest[nearest >= 0], 0])[:n]
        bm25 = self.index.lexical.scores(question)
        matched = np.flatnonzero(bm25)  # usually a small share of a large corpus: select among those only
        if matched.size > n:
            matched = matched[np.argpartition(-bm25[matched], n - 1)[:n]]
        lexical = matched[np.argsort(-bm25[matched], kind="stable")]
        return _first_occurrences(np.concatenate([dense, lexical]).astype(np.int64)), bm25

    def features(self, question: str, qvec: np.ndarray, n: int | None = None,
                 nearest: np.ndarray | None = None) -> Features:
        """Stage one and the features of stage two, for every candidate."""
        n = self.settings.candidates if n is None else n
        rows, bm25 = self.candidates(question, qvec, n, nearest)
        starts = self._starts[rows]
        counts = self._starts[rows + 1] - starts
        offsets = np.zeros(len(rows), dtype=np.int64)
        np.cumsum(counts[:-1], out=offsets[1:])
        flat = np.repeat(starts - offsets, counts) + np.arange(int(counts.sum()), dtype=np.int64)  # every key row
        # In float64, then rounded: a float32 product's last bit depends on the row's place in the
        # matrix, so two identical keys (texts the model reads alike) could score 3e-8 apart and
        # swap places between backends; rounded from float64 they score exactly alike.
        cos = (
            (self.index.key_vectors(flat).astype(np.float64) @ qvec.astype(np.float64)).astype(np.float32)
            if flat.size
            else np.zeros(0, dtype=np.float32)
        )
        fields = self._fields[flat]

        def best(mask: np.ndarray) -> np.ndarray:
            if not flat.size:
                return np.zeros(0, dtype=np.float32)
            return np.maximum.reduceat(np.where(mask, cos, -1.0), offsets) if offsets.size else np.zeros(0)

        text = best(fields == FIELD_TEXT)
        sentence = np.maximum(best(fields == FIELD_SENTENCE), text)
        asked = best((fields == FIELD_QUESTION) | (fields == FIELD_ALTERNATE))
        entry = best(fields == FIELD_ENTRY)
        is_faq = self._is_faq[rows]

        weights = self.term_weights(question)
        total = sum(weights.values())
        known = sum(w for t, w in weights.items() if t in self.idf)
        found = np.zeros(len(rows), dtype=np.float32)
        for term, w in weights.items():
            docs = self.index.lexical.postings(term)  # sorted passage rows
            if docs.size:
                at = np.minimum(np.searchsorted(docs, rows), docs.size - 1)
                found += w * (docs[at] == rows)
        return Features(
            rows=rows,
            is_faq=is_faq,
            text=text,
            sentence=sentence,
            asked=asked,
            entry=entry,
            bm25=bm25[rows] if bm25.size else np.zeros(len(rows), dtype=np.float32),
            coverage=found / total if total > 0 else found,
            known_coverage=found / known if known > 0 else found,
            key_starts=starts,
            key_counts=counts,
            offsets=offsets,
            cosines=cos,
        )

    def search_many(self, questions: list[str], qvecs: np.ndarray, k: int) -> list[list[tuple[Hit, Evidence]]]:
        """`search` for several questions, with one nearest-keys call for all of them."""
        nearest = self.nearest_keys(qvecs, max(self.settings.candidates, k))
        return [self.search(q, v, k, row) for q, v, row in zip(questions, qvecs, nearest)]

    def search(self, question: str, qvec: np.ndarray, k: int,
               nearest: np.ndarray | None = None) -> list[tuple[Hit, Evidence]]:
        """The `k` best passages for a question, best first.

        Args:
            question: the question text (for BM25).
            qvec: its unit embedding, shape (dimension,).
            k: how many passages to return.
            nearest: its row of `nearest_keys`, when searched already in a batch.

        Returns:
            Up to k (hit, evidence) pairs, best first.
        """
        f = self.features(question, qvec, max(self.settings.candidates, k), nearest)
        if not len(f.rows):
            return []
        scores = fused_score(f, self.settings)
        dense = dense_score(f, self.settings)
        order = np.lexsort((f.rows, -scores))[:k]  # best score first; a tie goes to the earlier passage
        weights = self.term_weights(question)
        unseen = self.unseen_terms(question)
        return [
            (
                Hit(self.index.passages[int(f.rows[i])], float(scores[i]), rank),
                Evidence(int(f.rows[i]), float(scores[i]), float(dense[i]), float(f.bm25[i]), float(f.coverage[i]),
                         self._sentence_cosines(*f.keys_of(int(i))), weights, float(f.text[i]), float(f.asked[i]), unseen,
                         self.context(int(f.rows[i])), self.frame(int(f.rows[i]))),
            )
            for rank, i in enumerate(order)
        ]

    def _sentence_cosines(self, key_rows: np.ndarray, cosines: np.ndarray) -> dict[int, float]:
        """{sentence index: cosine} over a passage's sentence keys."""
        keys = self.index.keys
        return {int(keys[r, 2]): float(c) for r, c in zip(key_rows, cosines) if keys[r, 1] == FIELD_SENTENCE}
