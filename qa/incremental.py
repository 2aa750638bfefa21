"""Planning a build: what it takes from the current build of its store, and what it embeds.

Every build is a plan against the store's current build (`load_previous`), or against
nothing: a first build, a build by another model, `qa build --full`, or a damaged
index. The plan matches the new corpus to the previous build with two keys:

- a passage whose content is unchanged (`signature`) keeps its key vectors and its
  analysed terms, so it is neither tokenised nor analysed again;
- any other key is tokenised, and a model input the previous build holds (its digest,
  `Embedder.input_digests`) keeps that build's vector.

Only the rest is embedded, each distinct model input once (qa.indexing). Passages and
terms are reused only from a build read by the same code and libraries (`reader_digest`)
whose store kept digests and terms: that build is then *updated* (`Previous.update`), and
files whose key and SHA-256 are unchanged are not even parsed again (`Previous.document`).
Otherwise the build is a full one that still reuses the vectors of unchanged model inputs.

BM25's IDF and length norm depend on the whole corpus, so a store indexes the plan's terms
afresh: the scores equal a full build's. The store writes and commits the build like any other
(qa/stores/), so an update is as atomic and crash-safe as a full build.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from .keys import lexical_text, passage_keys
from .lexical import analyze
from .readers.base import Document
from .stores import IndexStore, Stored, open_store
from .types import Passage, Source

log = logging.getLogger(__name__)


# What turns a file into passages, keys and BM25 terms: passages and terms of a build made by other
# code or other library versions are not reused (its vectors still are, by model input).
_READER_MODULES = ("readers", "documents.py", "discovery.py", "sentences.py", "keys.py", "lexical.py", "types.py",
                   "alternates.py", "indexing.py")
_READER_LIBRARIES = ("pysbd", "markdown-it-py", "docutils", "lxml", "pypdf", "python-docx", "PyStemmer", "simplemma", "bm25s")


@lru_cache(maxsize=1)
def reader_digest() -> str:
    """A digest of the code and library versions that read documents and analyse their terms."""
    from importlib.metadata import PackageNotFoundError, version

    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for name in _READER_MODULES:
        for path in sorted((package / name).rglob("*.py")) if (package / name).is_dir() else [package / name]:
            digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    for library in _READER_LIBRARIES:
        try:
            digest.update(f"{library}=={version(library)}".encode())
        except PackageNotFoundError:
            digest.update(f"{library} absent".encode())
    return digest.hexdigest()


@dataclass
class Previous:
    """The current build of a store, as the next build reuses it.

    Attributes:
        stored: the build and what its store kept of it.
        update: True when its passages and terms may be reused too (same reader code, digests
            and terms kept); False lends only vectors, by model input.
    """

    stored: Stored
    update: bool
    _documents: dict[tuple[str, str], tuple[Source, int]] = field(default_factory=dict)

    def __post_init__(self):
        if not self.update:
            return
        sources = self.index.manifest.sources
        # A corpus with alternates (merged into other files' passages) is parsed afresh.
        if any(s.kind == "alternates" for s in sources):
            return
        start = 0
        for source in sources:
            if source.reader_warnings is not None and not source.renamed:
                self._documents.setdefault((source.key, source.sha256), (source, start))
            start += source.passages
        if start != len(self.index.passages):
            self._documents.clear()

    @property
    def index(self):
        return self.stored.index

    def document(self, path: Path, key: str, sha256: str) -> Document | None:
        """The document at `path` as the previous build read it, if the file is unchanged; else None."""
        found = self._documents.get((key, sha256))
        if found is None:
            return None
        source, start = found
        passages = self.index.passages[start : start + source.passages]
        return Document(
            path=str(path),
            text="",  # not kept in the index; a build needs only the passages of a non-alternates file
            title=source.title,
            passages=tuple(replace(p, path=str(path)) for p in passages),
            kind=source.kind,
            warnings=source.reader_warnings or (),
        )

    def digests(self, embedder) -> np.ndarray | None:
        """Each previous key's model-input digest, uint8 (key_count, 16): as stored, else computed from its passages.

        None when the previous passages no longer give its key rows (qa/keys.py changed since).
        """
        if self.stored.digests is not None:
            return self.stored.digests
        texts = [text for p in self.index.passages for _, _, text in passage_keys(p)]
        if len(texts) != self.index.key_count:
            return None
        return np.frombuffer(b"".join(embedder.input_digests(texts)), dtype=np.uint8).reshape(-1, 16)


def load_previous(store: IndexStore | str | os.PathLike, model: str) -> Previous | None:
    """The current build of `store` (an index folder by default) if a build by `model` may reuse it; else None."""
    if not isinstance(store, IndexStore):
        store = open_store(None, store)
    stored = store.previous(model)
    if stored is None:
        return None
    if stored.index.manifest.readers != reader_digest():
        log.info("the current index was read by other code or library versions: full build, reusing its vectors")
        return Previous(stored, update=False)
    if stored.digests is None or stored.tokens is None:
        log.info("the current index keeps no key digests or terms: full build, reusing its vectors")
        return Previous(stored, update=False)
    return Previous(stored, update=True)


def signature(passage: Passage) -> tuple:
    """What a passage's keys and lexical text are made of: equal signatures, equal vectors and terms."""
    spans = tuple((s.start - passage.start, s.end - passage.start) for s in passage.sentences)
    return (passage.kind, passage.question, passage.alternates, passage.text, spans)


@dataclass(frozen=True)
class Plan:
    """What a build takes from the previous build.

    Attributes:
        old_key: per new key, the previous key row whose vector it takes, or -1 to embed it.
        digests: per new key, its model-input digest.
        tokens: per new passage, its analysed terms.
        kept: how many passages were taken unchanged from the previous build (with `Previous.update`).
    """

    old_key: np.ndarray
    digests: list[bytes]
    tokens: list[list[str]]
    kept: int


def plan(previous: Previous | None, passages: list[Passage], key_passage: np.ndarray, key_texts: list[str],
         embedder) -> Plan:
    """Match the new corpus' passages and keys to the previous build's (see the module's docstring).

    Args:
        previous: the build to reuse, or None to plan a build from nothing.
        key_passage: per new key, its passage row (keys are grouped by passage, in order).
        key_texts: per new key, the text embedded.
    """
    old_key = np.full(len(key_texts), -1, dtype=np.int64)
    digests: list[bytes | None] = [None] * len(key_texts)
    tokens: list[list[str] | None] = [None] * len(passages)
    kept = 0
    if previous is not None and previous.update:
        old = previous.index
        old_starts = np.searchsorted(old.keys[:, 0], np.arange(len(old.passages) + 1))
        old_row = {}
        for row, p in enumerate(old.passages):
            old_row.setdefault(signature(p), row)
        starts = np.searchsorted(key_passage, np.arange(len(passages) + 1))
        for row, p in enumerate(passages):
            match = old_row.get(signature(p))
            if match is not None:
                kept += 1
                tokens[row] = previous.stored.tokens[match]
                old_key[starts[row] : starts[row + 1]] = np.arange(old_starts[match], old_starts[match + 1])
        for i in np.flatnonzero(old_key >= 0):
            digests[i] = previous.stored.digests[old_key[i]].tobytes()
    tokens = [analyze(lexical_text(p)) if t is None else t for p, t in zip(passages, tokens)]
    todo = np.flatnonzero(old_key < 0)
    if todo.size:
        old_digests = previous.digests(embedder) if previous is not None else None
        by_digest = {}
        for row, d in enumerate(old_digests if old_digests is not None else ()):
            by_digest.setdefault(d.tobytes(), row)
        for i, d in zip(todo, embedder.input_digests([key_texts[i] for i in todo])):
            digests[i] = d
            old_key[i] = by_digest.get(d, -1)
    return Plan(old_key, digests, tokens, kept)


def file_changes(old_sources: list[Source], new_sources: list[Source]) -> dict:
    """How many indexed files were added, changed, removed and left unchanged, by key and SHA-256."""
    old = {s.key: s.sha256 for s in old_sources}
    new = {s.key: s.sha256 for s in new_sources}
    return {
        "added": sum(k not in old for k in new),
        "changed": sum(k in old and old[k] != sha for k, sha in new.items()),
        "removed": sum(k not in new for k in old),
        "unchanged": sum(old.get(k) == sha for k, sha in new.items()),
    }
