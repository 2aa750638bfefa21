"""The folder store: an index as a folder of files, with a manifest that names one build's files.

Layout of an index folder::

    manifest.json            the commit point: format, model, fingerprint, counts, checksums, build id
    <build-id>/passages.jsonl
    <build-id>/keys.npy      int32 rows (passage, field, sentence) — what each vector embeds
    <build-id>/digests.npy   uint8 (n_keys, 16): each key's model-input digest, for the next build's reuse
    <build-id>/vectors.faiss
    <build-id>/slots.npy     int64, only after an update of an HNSW index: key row → FAISS id
    <build-id>/bm25/         bm25s' own save format, and every passage's analysed terms
    .lock                    held by a build

The manifest carries a SHA-256 of every build file and of its own content, so
any truncated or altered file is refused at load time.
A build writes a new `<build-id>/` folder and then replaces `manifest.json` in
one `os.replace`, so a reader sees the old index or the new one, never a mix,
and a build killed at any point leaves the previous index as it was.
Nothing is pickled: JSON, JSONL, `.npy` without pickle, and FAISS' own format.

The vectors are a FAISS index: exact (IndexFlatIP) up to FLAT_MAX_VECTORS, HNSW above.
An update of an HNSW index adds the new vectors to the previous graph in place
(`update_hnsw`): removed ones stay in the graph as ids that searches skip, until
they pass REBUILD_SHARE of it.

`write` reports each stage it reaches to `on_stage` (write, commit, manifest,
cleanup); the crash tests stop a build there and SIGKILL it.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ..discovery import sha256_file
from ..errors import IndexBusyError, IndexCorruptError, IndexMismatchError, IndexNotFoundError, QAError
from ..lexical import LexicalIndex
from ..types import Manifest, Passage
from .base import Build, OnStage, Stored, no_stage

log = logging.getLogger(__name__)

FORMAT_VERSION = 3  # 2: the manifest carries its own checksum; 3: FAQ pairs have an entry key (question + answer)
MANIFEST = "manifest.json"
LOCK = ".lock"

# Exact search (IndexFlatIP) up to this many vectors; above it, HNSW. Measured by `make bench`
# (docs/performance.md): one exact query costs ~0.5 ms at 10k vectors, 1.5 ms at 30k, 6 ms at
# 100k and 60-120 ms at 1M on 2 cores; HNSW stays under a millisecond at every size, with
# recall@10 0.998 up to 100k. Below 20k exact search is cheap enough to keep results exact.
FLAT_MAX_VECTORS = 20_000
# HNSW, not IVF: on the model's real embeddings IVF needed 6-12 % of its lists probed for
# recall@10 >= 0.95 (HNSW: 0.98 at efSearch 32), and HNSW needs no training. efSearch 400
# rather than the 200 the Retriever's k = 200 gives anyway (FAISS searches with max(efSearch, k)):
# at 1M vectors recall@10 0.981 against 0.971, for p50 ~0.8 instead of ~0.45 ms. Corpora with
# many near-duplicates stay lower (0.94 at 1M): see docs/performance.md, "Scale".
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 40
HNSW_EF_SEARCH = 400
VECTOR_INDEX_KINDS = ("auto", "flat", "hnsw")
# Rebuild an HNSW index when more than this share of its vectors belong to removed keys:
# they cost memory and search time, and the graph around them has drifted from a fresh one's.
REBUILD_SHARE = 0.2


def manifest_digest(manifest: dict) -> str:
    """SHA-256 of a manifest's content, without its own `manifest_sha256` field."""
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode("ascii")).hexdigest()


@dataclass
class FolderIndex:
    """A build loaded from an index folder: an `Index` (qa/stores/base.py) answered by FAISS and bm25s."""

    folder: Path
    manifest: Manifest
    passages: list[Passage]
    keys: np.ndarray  # (n_keys, 3) int32: passage row, field, sentence index
    vectors: object  # a faiss.Index over the key embeddings, rows aligned with `keys` unless `slots` says otherwise
    lexical: LexicalIndex
    # After an in-place update of an HNSW index (`update_hnsw`): the FAISS id of each key row.
    # Ids that no key row names are removed vectors, which searches skip. None: id = key row.
    slots: np.ndarray | None = None

    def __post_init__(self):
        self._search_params = None
        if self.slots is not None:
            import faiss

            self._row_of_id = np.full(self.vectors.ntotal + 1, -1, dtype=np.int64)  # the last entry maps FAISS' -1
            self._row_of_id[self.slots] = np.arange(len(self.slots))
            self._live = np.packbits(self._row_of_id[:-1] >= 0, bitorder="little")
            params = faiss.SearchParametersHNSW()
            params.efSearch = self.vectors.hnsw.efSearch
            # Both the bitmap and the selector must outlive every search: FAISS keeps raw pointers to them.
            self._selector = faiss.IDSelectorBitmap(self.vectors.ntotal, faiss.swig_ptr(self._live))
            params.sel = self._selector
            self._search_params = params

    @property
    def model(self) -> str:
        return self.manifest.model

    @property
    def key_count(self) -> int:
        """How many key vectors the index holds."""
        return len(self.keys)

    def nearest_keys(self, queries: np.ndarray, k: int) -> np.ndarray:
        """Rows of the `k` keys nearest each query vector (inner product), best first; -1 pads.

        Args:
            queries: float32 (n, dimension), unit rows.

        Returns:
            int64 (n, k).
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if self.slots is None:
            return self.vectors.search(queries, k)[1]
        _, ids = self.vectors.search(queries, k, params=self._search_params)
        return self._row_of_id[ids]

    def key_vectors(self, rows: np.ndarray) -> np.ndarray:
        """The stored vectors of the given key rows, float32 (len(rows), dimension), in the order asked."""
        return self.vectors.reconstruct_batch(rows if self.slots is None else self.slots[rows])

    def all_key_vectors(self) -> np.ndarray:
        """Every key's vector, float32 (key_count, dimension), in key row order."""
        if self.slots is None:
            return self.vectors.reconstruct_n(0, self.vectors.ntotal)
        return self.vectors.reconstruct_batch(self.slots)

    @property
    def dimension(self) -> int:
        return self.manifest.dimension


@contextmanager
def build_lock(folder: Path, wait: float) -> Iterator[None]:
    """Hold the folder's build lock; wait up to `wait` seconds for another build to finish.

    Raises:
        IndexBusyError: another build still holds the lock after `wait` seconds.
    """
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK, "a+") as fh:
        deadline = time.monotonic() + wait
        waited = False
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise IndexBusyError(
                        f"another build is writing the index in {folder}; try again when it has finished"
                    ) from None
                if not waited:
                    log.warning("another build is writing the index in %s; waiting up to %.0f s for it", folder, wait)
                    waited = True
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def write_build(
    folder: Path,
    manifest: dict,
    passages: list[Passage],
    keys: np.ndarray,
    vector_index,
    lexical: LexicalIndex,
    on_stage: OnStage | None = None,
    arrays: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write one build's files beside the current index, then commit it by replacing the manifest.

    The caller holds the build lock. `on_stage` is told "write", "commit",
    "manifest" and "cleanup" as each begins. `arrays` are more files of the build,
    saved as NAME.npy (digests, slots). Returns the new build's folder.
    """
    stage = on_stage or (lambda name: None)
    import faiss

    build_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    staging = folder / f".tmp-{build_id}"
    staging.mkdir(parents=True)
    with open(staging / "passages.jsonl", "w", encoding="utf-8") as fh:
        for p in passages:
            fh.write(json.dumps(p.to_dict(), ensure_ascii=False) + "\n")
    stage("write")
    np.save(staging / "keys.npy", keys.astype(np.int32), allow_pickle=False)
    faiss.write_index(vector_index, str(staging / "vectors.faiss"))
    lexical.save(staging / "bm25")
    for name, array in (arrays or {}).items():
        np.save(staging / f"{name}.npy", array, allow_pickle=False)
    files = sorted(p for p in staging.rglob("*") if p.is_file())
    checksums = {str(p.relative_to(staging)): sha256_file(p) for p in files}
    for path in files:
        _fsync(path)
    final = folder / build_id
    os.rename(staging, final)
    stage("commit")
    manifest = {**manifest, "format_version": FORMAT_VERSION, "build_id": build_id, "checksums": checksums}
    manifest["manifest_sha256"] = manifest_digest(manifest)
    tmp_manifest = folder / f".{MANIFEST}.{build_id}"
    tmp_manifest.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    _fsync(tmp_manifest)
    stage("manifest")
    os.replace(tmp_manifest, folder / MANIFEST)
    _fsync(folder)
    stage("cleanup")
    return final


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def clean_leftovers(folder: Path) -> None:
    """Remove builds that the manifest does not name: aborted ones and superseded ones.

    The caller holds the build lock, so no build is writing.
    """
    try:
        current = read_manifest(folder).get("build_id") if (folder / MANIFEST).exists() else None
    except QAError:
        current = None  # a damaged or foreign manifest names no build worth keeping; the new build replaces it
    for child in folder.iterdir():
        if child.name in (MANIFEST, LOCK, "README.md") or child.name == current:
            continue
        if child.is_dir() and (child.name.startswith(".tmp-") or (child / "passages.jsonl").exists() or not any(child.iterdir())):
            shutil.rmtree(child, ignore_errors=True)
        elif child.is_file() and child.name.startswith(f".{MANIFEST}."):
            child.unlink(missing_ok=True)


def manifest_signature(folder: Path) -> tuple | None:
    """What changes when a build commits (the manifest's inode, size and time), or None without one: cheap to poll."""
    try:
        st = os.stat(Path(folder) / MANIFEST)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def read_manifest(folder: Path) -> dict:
    """The manifest of the index in `folder`.

    Raises:
        IndexNotFoundError: there is no index there.
        IndexCorruptError: the manifest is unreadable.
    """
    path = folder / MANIFEST
    if not path.exists():
        raise IndexNotFoundError(f"no index in {folder}: build one with `qa build PATH... --index {folder}` (or `make run`)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(manifest, dict):
            raise ValueError("not an object")
    except (ValueError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(f"{path} is damaged ({exc}); rebuild the index with `qa build`") from None
    if "manifest_sha256" in manifest and manifest["manifest_sha256"] != manifest_digest(manifest):
        raise IndexCorruptError(f"{path} is damaged (checksum mismatch); rebuild the index with `qa build`")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexMismatchError(
            f"{path}: index format {version!r}, this version of qa reads format {FORMAT_VERSION}; rebuild the index with `qa build`"
        )
    for key in ("build_id", "model", "dimension", "checksums", "passage_count", "manifest_sha256"):
        if key not in manifest:
            raise IndexCorruptError(f"{path} is damaged (no {key!r}); rebuild the index with `qa build`")
    return manifest


def load_index(folder: Path, model: str | None = None, verify: bool = True) -> FolderIndex:
    """Load the index in `folder`.

    Args:
        folder: the index folder.
        model: the model the caller will embed questions with; None accepts the index's own.
        verify: check every file against the manifest's checksums.

    Raises:
        IndexNotFoundError, IndexMismatchError, IndexCorruptError: with a one-line message.
    """
    folder = Path(folder)
    for attempt in range(3):
        manifest = read_manifest(folder)
        try:
            return _load_build(folder, manifest, model, verify)
        except IndexCorruptError:
            # A build that committed while we read may have removed the build we
            # were reading; that is not damage: read the new manifest and retry.
            if attempt == 2 or read_manifest(folder)["build_id"] == manifest["build_id"]:
                raise
    raise AssertionError("unreachable")


def _load_build(folder: Path, manifest: dict, model: str | None, verify: bool) -> FolderIndex:
    """Load the build that `manifest` names (see load_index)."""
    import faiss

    if model is not None and model != manifest["model"]:
        raise IndexMismatchError(
            f"the index in {folder} was built with model {manifest['model']!r}, not {model!r}; "
            f"rebuild it with `qa build --model {model}` or drop --model"
        )
    data = folder / manifest["build_id"]
    for name, expected in manifest["checksums"].items():
        path = data / name
        if not path.is_file():
            raise IndexCorruptError(f"{path} is missing; rebuild the index with `qa build`")
        if verify and sha256_file(path) != expected:
            raise IndexCorruptError(f"{path} is damaged (checksum mismatch); rebuild the index with `qa build`")
    current = data / "passages.jsonl"
    try:
        with open(current, encoding="utf-8") as fh:
            passages = [Passage.from_dict(json.loads(line)) for line in fh]
        current = data / "keys.npy"
        keys = np.load(current, allow_pickle=False)
        current = data / "vectors.faiss"
        vectors = faiss.read_index(str(current))
        current = data / "bm25"
        lexical = LexicalIndex.load(current)
        slots = None
        if "slots.npy" in manifest["checksums"]:
            current = data / "slots.npy"
            slots = np.load(current, allow_pickle=False)
    except Exception as exc:  # any parse failure of a checksummed file means the index is unusable
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        raise IndexCorruptError(f"{current} cannot be read ({reason}); rebuild the index with `qa build`") from None
    if (
        len(passages) != manifest["passage_count"]
        or keys.ndim != 2
        or keys.shape[0] != (vectors.ntotal if slots is None else len(slots))
        or (slots is not None and len(slots) and not 0 <= int(slots.min()) <= int(slots.max()) < vectors.ntotal)
        or vectors.d != manifest["dimension"]
        or lexical.size != len(passages)
    ):
        raise IndexCorruptError(f"{data}: files disagree with the manifest; rebuild the index with `qa build`")
    return FolderIndex(folder, typed_manifest(folder, manifest), passages, keys, vectors, lexical, slots)


def typed_manifest(folder: Path, manifest: dict) -> Manifest:
    """`Manifest.from_dict` of a manifest read from `folder`.

    Raises:
        IndexCorruptError: a field of the wrong type.
    """
    try:
        return Manifest.from_dict(manifest)
    except (KeyError, TypeError, ValueError) as exc:
        raise IndexCorruptError(
            f"{folder / MANIFEST} is damaged ({type(exc).__name__}: {exc}); rebuild the index with `qa build`"
        ) from None


def choose_vector_index(n: int) -> str:
    """The vector index `auto` builds for `n` vectors: "flat" while exact search is fast enough, else "hnsw"."""
    return "flat" if n <= FLAT_MAX_VECTORS else "hnsw"


def make_vector_index(vectors: np.ndarray, kind: str = "auto"):
    """A FAISS inner-product index over unit vectors, chosen by corpus size.

    Both kinds keep the vectors themselves, so `reconstruct_batch` (which the
    Retriever uses to rescore a candidate's keys) works and costs no extra memory.

    Args:
        vectors: float32 (n, d), rows of unit length.
        kind: "flat" (exact), "hnsw" (approximate), or "auto" (`choose_vector_index`).

    Raises:
        ValueError: an unknown kind.
    """
    import faiss

    if kind not in VECTOR_INDEX_KINDS:
        raise ValueError(f"vector index kind must be one of {', '.join(VECTOR_INDEX_KINDS)}, got {kind!r}")
    n, d = vectors.shape
    if kind == "auto":
        kind = choose_vector_index(n)
    if kind == "flat":
        index = faiss.IndexFlatIP(d)
    else:
        index = faiss.IndexHNSWFlat(d, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    if n:
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def describe_vector_index(index, requested: str = "auto") -> dict:
    """The manifest's record of a vector index: its FAISS class, the parameters that shape its results, and why."""
    out: dict = {"type": type(index).__name__, "ntotal": int(index.ntotal)}
    hnsw = getattr(index, "hnsw", None)
    if hnsw is not None:
        out.update(M=int(index.hnsw.nb_neighbors(1)), ef_construction=int(hnsw.efConstruction), ef_search=int(hnsw.efSearch))
    out["requested"] = requested
    if requested == "auto":
        out["flat_max_vectors"] = FLAT_MAX_VECTORS
    return out


def update_hnsw(old: FolderIndex, old_key: np.ndarray, fresh: np.ndarray) -> tuple[object, np.ndarray] | None:
    """The previous HNSW index with the new keys' vectors added, and each new key row's FAISS id.

    Args:
        old: the previous build (its FAISS index is changed in place).
        old_key: per new key, the previous key row whose vector it takes, or -1.
        fresh: the vectors of the keys with old_key -1, in key order.

    Returns:
        (index, slots), or None when removed vectors would pass REBUILD_SHARE of the index.
    """
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


class FolderStore:
    """The index in one folder (see the module's docstring): an `IndexStore`.

    Args:
        folder: the index folder; a build creates it.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def describe(self) -> str:
        return str(self.folder)

    __str__ = describe

    def manifest(self) -> Manifest:
        return typed_manifest(self.folder, read_manifest(self.folder))

    def open(self, model: str | None = None, verify: bool = True) -> FolderIndex:
        return load_index(self.folder, model=model, verify=verify)

    def signature(self) -> tuple | None:
        return manifest_signature(self.folder)

    def lock(self, wait: float):
        return build_lock(self.folder, wait)

    def previous(self, model: str) -> Stored | None:
        """The current build, if it passes verification (every checksum, every file parsed) and `model` made it.

        A damaged build lends nothing, so the next build embeds every text afresh
        rather than sealing damaged vectors under new checksums.
        """
        if not (self.folder / MANIFEST).exists():
            return None
        try:
            index = load_index(self.folder, model=model, verify=True)
        except IndexCorruptError as exc:
            log.warning("the current index is damaged (%s): building from scratch, reusing nothing", exc)
            return None
        except QAError:
            return None
        data = self.folder / index.manifest.build_id
        digests = None
        if "digests.npy" in index.manifest.checksums:
            digests = np.load(data / "digests.npy", allow_pickle=False)
            if digests.shape != (index.key_count, 16):
                digests = None
        tokens = index.lexical.tokens(data / "bm25")
        if tokens is not None and len(tokens) != len(index.passages):
            tokens = None
        return Stored(index, digests, tokens)

    def write(self, build: Build, on_stage: OnStage = no_stage) -> Manifest:
        """Write `build` as a new build folder and commit it (see `write_build`); drop what no manifest names."""
        clean_leftovers(self.folder)
        index, arrays, how = self._vector_index(build)
        fields = dict(build.fields)
        fields["vector_index"] = type(index).__name__
        fields["vector_index_params"] = describe_vector_index(index, build.vector_index)
        if build.update:
            fields["update"] = {**fields["update"], "vector_index": how,
                                "removed_vectors": int(index.ntotal - len(build.keys))}
        lexical = LexicalIndex.fit_tokens(build.tokens)
        write_build(self.folder, fields, build.passages, build.keys, index, lexical, on_stage, arrays)
        clean_leftovers(self.folder)
        return self.manifest()

    def _vector_index(self, build: Build) -> tuple[object, dict[str, np.ndarray], str]:
        """The FAISS index of a build, the arrays saved beside it, and how it was made (updated, rebuilt, copied)."""
        arrays = {"digests": build.digests}
        kind = choose_vector_index(len(build.keys)) if build.vector_index == "auto" else build.vector_index
        old = build.previous.index if build.update and build.previous is not None else None
        if (
            isinstance(old, FolderIndex)
            and kind == "hnsw"
            and getattr(old.vectors, "hnsw", None) is not None
            and old.manifest.get("vector_index_params", {}).get("requested") == build.vector_index
        ):
            updated = update_hnsw(old, build.old_key, build.fresh)
            if updated is not None:
                index, arrays["slots"] = updated
                return index, arrays, "updated"
        return make_vector_index(build.vectors, build.vector_index), arrays, "rebuilt" if kind == "hnsw" else "copied"

    def drop(self) -> None:
        """Remove the index: its manifest, lock and builds (other files in the folder stay)."""
        if not self.folder.is_dir():
            return
        (self.folder / MANIFEST).unlink(missing_ok=True)
        clean_leftovers(self.folder)
        (self.folder / LOCK).unlink(missing_ok=True)
        if not any(self.folder.iterdir()):
            self.folder.rmdir()
