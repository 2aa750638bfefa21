"""Lexical retrieval: BM25 from bm25s over folded, stemmed, stopword-free tokens."""

from __future__ import annotations

import logging
import re
import unicodedata
from functools import lru_cache
from pathlib import Path

import numpy as np

_WORD = re.compile(r"\w+")


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    return frozenset(STOPWORDS_EN_PLUS)


def fold(text: str) -> str:
    """Lower-case and strip accents: 'Díaz' → 'diaz'."""
    if text.isascii():  # nothing to decompose: the common case, and ~20x faster
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=200_000)
def _terms(word: str) -> tuple[str, ...]:
    """A word's stem, and the stem of its lemma when that differs ("laid" → laid, lay; "met" → met, meet).

    Snowball stems regular forms together but not irregular ones; the lemma
    (simplemma's English tables) brings those together without losing the
    surface form, which some lemmas get wrong ("lay" → "lie").
    """
    import simplemma

    stemmer = _stemmer()
    stem = stemmer.stemWord(word)
    lemma = stemmer.stemWord(fold(simplemma.lemmatize(word, lang="en")))
    return (stem,) if lemma == stem else (stem, lemma)


def analyze(text: str) -> list[str]:
    """The tokens BM25 sees: folded words, stopwords dropped, stemmed, with lemmas of irregular forms."""
    stop = _stopwords()
    return [t for w in _WORD.findall(fold(text)) if w not in stop and (len(w) > 1 or w.isdigit()) for t in _terms(w)]


def unseen(text: str, known, vocabulary: list[str] | None = None) -> frozenset[str]:
    """The terms of `text`'s words that `known` has none of: a word is unseen only when neither its stem nor its
    lemma's is known. simplemma reads the question's "lay" as "lie", a form the documents' "laid" (lemma "lay")
    never yields; the word "lay" itself is in them.

    Nor is a typing slip unseen: a word English does not know ("directoy", "colaborator", "downlading") that is
    one or two slips (`misspelt`) from a term of `vocabulary` (default: `known`'s) is that term, misspelt. An
    English word is a word of its own however close it is to another ("indentation" is not "intention"), and a
    number is never a slip ("20245" is not "20244").
    """
    stop = _stopwords()
    out = set()
    for w in _WORD.findall(fold(text)):
        if w in stop or not (len(w) > 1 or w.isdigit()):
            continue
        terms = _terms(w)
        if any(t in known for t in terms) or _slip(w, terms[0], known if vocabulary is None else vocabulary):
            continue
        out.update(terms)
    return frozenset(out)


def _slip(word: str, term: str, vocabulary) -> bool:
    """Whether `word` (its stem `term`) is no English word and no number but a slip of one of `vocabulary`."""
    if any(c.isdigit() for c in word) or not allowed_edits(term):
        return False
    import simplemma

    return not simplemma.is_known(word, lang="en") and misspelt(term, vocabulary)


def term_weights(terms: list[str], idf: dict[str, float], unseen_idf: float) -> dict[str, float]:
    """IDF of each distinct term, in first-seen order; a term no passage holds gets `unseen_idf` (the highest)."""
    return {t: idf.get(t, unseen_idf) for t in dict.fromkeys(terms)}


def unseen_idf(size: int) -> float:
    """The IDF of a term that no passage of a `size`-passage corpus contains: as rare as a term can be."""
    return float(np.log1p((size + 0.5) / 0.5))


def allowed_edits(term: str) -> int:
    """How many typing slips a term may hold and still be read as a corpus word: none below 5 letters (too many
    short words lie one edit apart), one for 5-7, two from 8 (the rule of Elasticsearch's fuzziness AUTO,
    shifted by two letters to stay cautious)."""
    return 0 if len(term) < 5 else 1 if len(term) < 8 else 2


def misspelt(term: str, terms) -> bool:
    """Whether `term` is within `allowed_edits` of one of `terms` (a transposition counts as one edit)."""
    edits = allowed_edits(term)
    if not edits or not terms:
        return False
    from rapidfuzz import process
    from rapidfuzz.distance import OSA

    choices = terms if isinstance(terms, (list, tuple)) else list(terms)
    return process.extractOne(term, choices, scorer=OSA.distance, score_cutoff=edits) is not None


def coverage(weights: dict[str, float], text_terms: set[str] | frozenset[str]) -> float:
    """IDF-weighted share of the question's terms (`weights`) that occur among a text's terms."""
    total = sum(weights.values())
    return sum(w for t, w in weights.items() if t in text_terms) / total if total > 0 else 0.0


def _bm25s():
    """bm25s, imported on first use; it sets its own logger to DEBUG on import, which we undo."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


# Beside bm25s' files in a build's bm25/ folder: every passage's analysed terms, as ids into
# bm25s' vocabulary (TERMS) and where each passage's run of them starts (TERM_OFFSETS, n + 1).
TERMS = "terms.npy"
TERM_OFFSETS = "term_offsets.npy"


class LexicalIndex:
    """A BM25 index over passages (one token list a passage), saved in bm25s' own format.

    It also saves each passage's analysed terms, so that an update of the corpus
    (qa/incremental.py) analyses only new passages and gives bm25s the same token
    lists a full build would: BM25's IDF and length norm depend on the whole
    corpus, so every score is recomputed, but from stored terms, not from text.
    """

    def __init__(self, bm25, tokens: list[list[str]] | None = None):
        self._bm25 = bm25
        self._tokens = tokens

    @classmethod
    def fit(cls, texts: list[str]) -> "LexicalIndex":
        return cls.fit_tokens([analyze(t) for t in texts])

    @classmethod
    def fit_tokens(cls, tokens: list[list[str]]) -> "LexicalIndex":
        """The index of passages already analysed (`analyze`), one token list a passage."""
        bm25 = _bm25s().BM25()
        bm25.index(tokens, show_progress=False)
        return cls(bm25, tokens)

    def save(self, folder: Path) -> None:
        self._bm25.save(str(folder), show_progress=False)
        if self._tokens is not None:
            vocab = self._bm25.vocab_dict
            ids = np.fromiter((vocab[t] for doc in self._tokens for t in doc), dtype=np.int32)
            offsets = np.zeros(len(self._tokens) + 1, dtype=np.int64)
            np.cumsum([len(doc) for doc in self._tokens], out=offsets[1:])
            np.save(Path(folder) / TERMS, ids, allow_pickle=False)
            np.save(Path(folder) / TERM_OFFSETS, offsets, allow_pickle=False)

    def tokens(self, folder: Path) -> list[list[str]] | None:
        """Every passage's analysed terms, as saved in `folder` with this index; None for an index saved without them."""
        if self._tokens is not None:
            return self._tokens
        if not (Path(folder) / TERMS).exists():
            return None
        ids = np.load(Path(folder) / TERMS, allow_pickle=False)
        offsets = np.load(Path(folder) / TERM_OFFSETS, allow_pickle=False)
        if len(offsets) != self.size + 1 or int(offsets[-1]) != len(ids):
            return None
        words = np.empty(len(self._bm25.vocab_dict), dtype=object)
        for term, i in self._bm25.vocab_dict.items():
            words[i] = term
        flat = words[ids].tolist()
        return [flat[int(a) : int(b)] for a, b in zip(offsets[:-1], offsets[1:])]

    @classmethod
    def load(cls, folder: Path) -> "LexicalIndex":
        return cls(_bm25s().BM25.load(str(folder), allow_pickle=False, show_progress=False, verbosity=0))

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every passage for `query` (zeros when no query word is indexed)."""
        tokens = [t for t in analyze(query) if t in self._bm25.vocab_dict]
        if not tokens:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)

    def idf(self) -> dict[str, float]:
        """Inverse document frequency of every indexed term (BM25's formula, always positive)."""
        n = self.size
        df = np.diff(np.asarray(self._bm25.scores["indptr"]))
        idf = np.log1p((n - df + 0.5) / (df + 0.5))
        return {term: float(idf[i]) for term, i in self._bm25.vocab_dict.items() if i < len(idf)}

    def postings(self, term: str) -> np.ndarray:
        """Rows of the passages that contain an (analysed) term; empty when it is not indexed."""
        token = self._bm25.vocab_dict.get(term)
        if token is None:
            return np.zeros(0, dtype=np.int64)
        indptr, indices = self._bm25.scores["indptr"], self._bm25.scores["indices"]
        return np.asarray(indices[indptr[token] : indptr[token + 1]])

    @property
    def size(self) -> int:
        return int(self._bm25.scores["num_docs"])
