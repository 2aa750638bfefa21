"""Incremental builds: update the index of a changed corpus instead of rebuilding it.

A build that finds a sound index of the same model in its folder (`load_previous`) reuses it
at every stage, and the result is the index a full build of the new corpus would give:

- parse: a file whose key and SHA-256 are unchanged is not read again; its passages come
  from the previous index (`Previous.document`). Not when the corpus has an alternates file
  (its phrasings are merged into other files' passages) or a passage id was made unique
  across files (then the file's own ids are not in the index).
- keys and vectors: a passage whose content is unchanged keeps its key vectors; the keys of
  new passages are tokenised, and a model input the previous index holds (`digests.npy`)
  keeps its vector; only the rest are embedded (`plan`).
- FAISS: a flat index is the vectors themselves, copied in key order. An HNSW index is
  updated in place (`update_hnsw`): new vectors are added, removed ones stay in the graph
  as unused ids that searches skip (`slots.npy` maps key rows to FAISS ids). It is rebuilt
  when the index type must change or removed vectors pass REBUILD_SHARE of the graph.
- BM25: bm25s' IDF and length norm depend on the whole corpus, so every score changes; the
  scores are recomputed by bm25s from the stored terms of unchanged passages and the terms
  of new ones, so only changed text is analysed and the scores equal a full build's.

The update is written as a new build and committed like any other (qa/store.py), so it is
as atomic and crash-safe as a full build.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from .errors import IndexCorruptError, QAError
from .keys import lexical_text
from .lexical import analyze
from .readers.base import Document
from .store import StoredIndex, load_index
from .types import Passage

log = logging.getLogger(__name__)

# Rebuild an HNSW index when more than this share of its vectors belong to removed keys:
# they cost memory and search time, and the graph around them has drifted from a fresh one's.
REBUILD_SHARE = 0.2


# What turns a file into passages, keys and BM25 terms: an index made by other code or other library
# versions is not reused for them (its vectors still are, by text; see qa.indexing._previous_vectors).
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
    """The index in the folder, as an update reuses it."""

    index: StoredIndex
    digests: np.ndarray  # uint8 (key_count, 16): the model-input digest of each key
    tokens: list[list[str]]  # each passage's analysed terms
    _documents: dict[tuple[str, str], tuple[dict, int]] = field(default_factory=dict)

    def __post_init__(self):
        sources = self.index.manifest.get("sources", [])
        # A corpus with alternates (merged into other files' passages) is parsed afresh.
        if any(s.get("kind") == "alternates" for s in sources):
            return
        start = 0
        for source in sources:
            if "reader_warnings" in source and not source.get("renamed"):
                self._documents.setdefault((source["key"], source["sha256"]), (source, start))
            start += source["passages"]
        if start != len(self.index.passages):
            self._documents.clear()

    @property
    def build_id(self) -> str:
        return self.index.manifest["build_id"]

    def document(self, path: Path, key: str, sha256: str) -> Document | None:
        """The document at `path` as the previous build read it, if the file is unchanged; else None."""
        found = self._documents.get((key, sha256))
        if found is None:
            return None
        source, start = found
        passages = self.index.passages[start : start + source["passages"]]
        return Document(
            path=str(path),
            text="",  # not kept in the index; a build needs only the passages of a non-alternates file
            title=source["title"],
            passages=tuple(replace(p, path=str(path)) for p in passages),
            kind=source["kind"],
            warnings=tuple((int(line), message) for line, message in source["reader_warnings"]),
        )


def load_previous(folder: Path, model: str) -> Previous | None:
    """The index in `folder` if an update can build on it: sound (every checksum), of `model`, with digests and terms."""
    try:
        index = load_index(folder, model=model, verify=True)
    except IndexCorruptError as exc:
        log.warning("the current index is damaged (%s): building from scratch", exc)
        return None
    except QAError:
        return None
    data = folder / index.manifest["build_id"]
    if index.manifest.get("readers") != reader_digest():
        log.info("the current index was read by other code or library versions: full build")
        return None
    if "digests.npy" not in index.manifest["checksums"]:
        log.info("the current index has no key digests (built by an older qa): full build")
        return None
    digests = np.load(data / "digests.npy", allow_pickle=False)
    tokens = index.lexical.tokens(data / "bm25")
    if tokens is None or digests.shape != (index.key_count, 16) or len(tokens) != len(index.passages):
        log.info("the current index has no stored terms: full build")
        return None
    return Previous(index, digests, tokens)


def signature(passage: Passage) -> tuple:
    """What a passage's keys and lexical text are made of: equal signatures, equal vectors and terms."""
    spans = tuple((s.start - passage.start, s.end - passage.start) for s in passage.sentences)
    return (passage.kind, passage.question, passage.alternates, passage.text, spans)


@dataclass(frozen=True)
class Plan:
    """What an update takes from the previous index.

    Attributes:
        old_key: per new key, the previous key row whose vector it takes, or -1 to embed it.
        digests: per new key, its model-input digest.
        tokens: per new passage, its analysed terms.
        kept: how many passages were taken unchanged from the previous index.
    """

    old_key: np.ndarray
    digests: list[bytes]
    tokens: list[list[str]]
    kept: int


def plan(previous: Previous, passages: list[Passage], key_passage: np.ndarray, key_texts: list[str], embedder) -> Plan:
    """Match the new corpus' passages and keys to the previous index's (see the module's docstring).

    Args:
        key_passage: per new key, its passage row (keys are grouped by passage, in order).
        key_texts: per new key, the text embedded.
    """
    old = previous.index
    old_starts = np.searchsorted(old.keys[:, 0], np.arange(len(old.passages) + 1))
    old_row = {}
    for row, p in enumerate(old.passages):
        old_row.setdefault(signature(p), row)
    starts = np.searchsorted(key_passage, np.arange(len(passages) + 1))
    old_key = np.full(len(key_texts), -1, dtype=np.int64)
    tokens: list[list[str]] = []
    kept = 0
    for row, p in enumerate(passages):
        match = old_row.get(signature(p))
        if match is None:
            tokens.append(analyze(lexical_text(p)))
            continue
        kept += 1
        tokens.append(previous.tokens[match])
        old_key[starts[row] : starts[row + 1]] = np.arange(old_starts[match], old_starts[match + 1])
    digests: list[bytes | None] = [None] * len(key_texts)
    for i in np.flatnonzero(old_key >= 0):
        digests[i] = previous.digests[old_key[i]].tobytes()
    todo = np.flatnonzero(old_key < 0)
    if todo.size:
        by_digest = {}
        for row, d in enumerate(previous.digests):
            by_digest.setdefault(d.tobytes(), row)
        for i, d in zip(todo, embedder.input_digests([key_texts[i] for i in todo])):
            digests[i] = d
            old_key[i] = by_digest.get(d, -1)
    return Plan(old_key, digests, tokens, kept)


def update_hnsw(previous: Previous, old_key: np.ndarray, fresh: np.ndarray) -> tuple[object, np.ndarray] | None:
    """The previous HNSW index with the new keys' vectors added, and each new key row's FAISS id.

    Args:
        old_key: per new key, the previous key row whose vector it takes, or -1.
        fresh: the vectors of the keys with old_key -1, in key order.

    Returns:
        (index, slots), or None when removed vectors would pass REBUILD_SHARE of the index.
    """
    old = previous.index
    old_slots = old.slots if old.slots is not None else np.arange(old.vectors.ntotal, dtype=np.int64)
    slots = np.full(len(old_key), -1, dtype=np.int64)
    claimed = np.zeros(old.vectors.ntotal, dtype=bool)
    copies = []
    for i in np.flatnonzero(old_key >= 0):
        slot = old_slots[old_key[i]]
        if claimed[slot]:
            copies.append(i)  # a second key with this vector needs an id of its own
        else:
            claimed[slot] = True
            slots[i] = slot
    add = np.sort(np.concatenate([np.flatnonzero(old_key < 0), np.asarray(copies, dtype=np.int64)]))
    unused = int(old.vectors.ntotal - claimed.sum())
    if unused > REBUILD_SHARE * (old.vectors.ntotal + add.size):
        return None
    vectors = np.empty((add.size, old.vectors.d), dtype=np.float32)
    is_fresh = old_key[add] < 0
    vectors[is_fresh] = fresh
    if (~is_fresh).any():
        vectors[~is_fresh] = old.vectors.reconstruct_batch(old_slots[old_key[add[~is_fresh]]])
    index = old.vectors
    slots[add] = index.ntotal + np.arange(add.size)
    if add.size:
        index.add(vectors)
    return index, slots


def file_changes(old_sources: list[dict], new_sources: list[dict]) -> dict:
    """How many indexed files were added, changed, removed and left unchanged, by key and SHA-256."""
    old = {s["key"]: s["sha256"] for s in old_sources}
    new = {s["key"]: s["sha256"] for s in new_sources}
    return {
        "added": sum(k not in old for k in new),
        "changed": sum(k in old and old[k] != sha for k, sha in new.items()),
        "removed": sum(k not in new for k in old),
        "unchanged": sum(old.get(k) == sha for k, sha in new.items()),
    }
