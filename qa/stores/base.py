"""The store seam: what an index store is, as the rest of the package sees it.

Two Protocols and two small records:

- `Index`: a loaded build, the read surface the Retriever uses (passages, key rows,
  `nearest_keys`, `key_vectors` and a `Lexical` side). Retrieval, answering and
  citations are the same code on every store.
- `IndexStore`: an index's whole life in one place: read its manifest, open it for a
  model, a cheap signature that changes when a build commits (for reload), the current
  build for the next one to reuse, the build lock, writing a build, and dropping it.
- `Stored`: the current build as the next build reuses it (its vectors, and the
  model-input digests and analysed terms when the store kept them).
- `Build`: one build ready to write, as `qa.indexing.build_index` planned it.

`qa.indexing` plans and embeds a build and hands it to `IndexStore.write`; `qa.bot`
opens and reloads through `IndexStore.open` and `IndexStore.signature`. Neither asks
which store it holds: `qa.stores.open_store` is the one place that reads the kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable, ContextManager, Hashable, Protocol, runtime_checkable

import numpy as np

from ..types import Manifest, Passage

# Told the name of each stage a build reaches, in order: parse, embed (qa.indexing), then
# write, commit, [manifest,] cleanup (the store). The crash tests stop a build there.
OnStage = Callable[[str], None]


def no_stage(name: str) -> None:
    """An `OnStage` that listens to nothing."""


@runtime_checkable
class Lexical(Protocol):
    """The lexical side of an index: BM25 over passages, with the statistics the Retriever's features read."""

    @property
    def size(self) -> int:
        """How many passages are indexed."""
        ...

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every passage for `query`: float32 (size,)."""
        ...

    def postings(self, term: str) -> np.ndarray:
        """Rows of the passages that contain an analysed term, sorted; empty when it is not indexed."""
        ...

    def idf(self) -> dict[str, float]:
        """Inverse document frequency of every indexed term."""
        ...


@runtime_checkable
class Index(Protocol):
    """A loaded build: everything retrieval and answering read."""

    manifest: Manifest
    passages: list[Passage]
    keys: np.ndarray  # (key_count, 3) int32: passage row, field, sentence index (qa/keys.py)
    lexical: Lexical

    @property
    def model(self) -> str: ...

    @property
    def key_count(self) -> int: ...

    @property
    def dimension(self) -> int: ...

    def nearest_keys(self, queries: np.ndarray, k: int) -> np.ndarray:
        """Rows of the `k` keys nearest each query vector (inner product), best first; -1 pads.

        Args:
            queries: float32 (n, dimension), unit rows.

        Returns:
            int64 (n, k).
        """
        ...

    def key_vectors(self, rows: np.ndarray) -> np.ndarray:
        """The stored vectors of the given key rows: float32 (len(rows), dimension), in the order asked."""
        ...


@dataclass(frozen=True)
class Stored:
    """The current build of a store, as the next build reuses it.

    Attributes:
        index: the build, loaded and verified.
        digests: uint8 (key_count, 16), each key's model-input digest; None when the store kept none.
        tokens: each passage's analysed terms; None when the store kept none.
    """

    index: Index
    digests: np.ndarray | None = None
    tokens: list[list[str]] | None = None


@dataclass(frozen=True)
class Build:
    """One build, planned and embedded, ready for `IndexStore.write`.

    Attributes:
        fields: the manifest's record of the corpus and the embedding (everything but the store's own fields).
        passages: every passage, in index order.
        keys: int32 (key_count, 3), the key rows (qa/keys.py).
        digests: uint8 (key_count, 16), each key's model-input digest.
        tokens: each passage's analysed terms (what BM25 indexes).
        old_key: int64 (key_count,), the previous build's key row whose vector a key takes, or -1.
        fresh: float32 (number of keys with old_key -1, dimension), the vectors embedded now, in key order.
        previous: the build reused (None for a build from nothing).
        update: True when the previous build is updated rather than replaced (see qa.incremental).
        vector_index: the vector index asked for: "auto", "flat" or "hnsw" (a store may ignore it).
    """

    fields: dict
    passages: list[Passage]
    keys: np.ndarray
    digests: np.ndarray
    tokens: list[list[str]]
    old_key: np.ndarray
    fresh: np.ndarray
    previous: Stored | None = None
    update: bool = False
    vector_index: str = "auto"

    @property
    def dimension(self) -> int:
        return int(self.fields["dimension"])

    @cached_property
    def vectors(self) -> np.ndarray:
        """Every key's vector: float32 (key_count, dimension), the reused ones read from the previous build once.

        A store that updates the previous build in place needs only `fresh` and `old_key`.
        """
        out = np.empty((len(self.keys), self.dimension), dtype=np.float32)
        reused = np.flatnonzero(self.old_key >= 0)
        if reused.size:
            out[reused] = self.previous.index.key_vectors(self.old_key[reused])
        out[self.old_key < 0] = self.fresh
        return out


@runtime_checkable
class IndexStore(Protocol):
    """Where one index lives, and every part of its life that depends on the place.

    A store names one index (a folder, or a Milvus alias); `qa.stores.open_store` makes one.
    """

    def manifest(self) -> Manifest:
        """The manifest of the current build, without loading it.

        Raises:
            IndexNotFoundError, IndexMismatchError, IndexCorruptError: with a one-line message.
        """
        ...

    def open(self, model: str | None = None, verify: bool = True) -> Index:
        """Load the current build for answering.

        Args:
            model: the model the caller will embed questions with; None accepts the index's own.
            verify: check what the store can check (the folder store: every file's checksum).

        Raises:
            IndexNotFoundError, IndexMismatchError, IndexCorruptError: with a one-line message.
        """
        ...

    def signature(self) -> Hashable | None:
        """What changes when a build commits, or None without one: cheap enough to poll before every request."""
        ...

    def previous(self, model: str) -> Stored | None:
        """The current build if the next build may reuse it: sound, and made by `model`; else None."""
        ...

    def lock(self, wait: float) -> ContextManager[None]:
        """Hold the store's build lock, waiting up to `wait` seconds for another build.

        Raises:
            IndexBusyError: another build still holds it after `wait` seconds.
        """
        ...

    def write(self, build: Build, on_stage: OnStage = no_stage) -> Manifest:
        """Write `build` beside the current one and commit it atomically; returns the manifest written.

        The caller holds the lock. A build killed at any point leaves the previous one answering.
        """
        ...

    def drop(self) -> None:
        """Remove the index and every build of it (e.g. a temporary index)."""
        ...

    def describe(self) -> str:
        """Where the index is, for people (`qa info`, messages): a folder, or a Milvus URI and collection."""
        ...
