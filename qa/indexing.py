"""Build an index: documents → passages → embeddings → FAISS + BM25 → a committed folder."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from .documents import iter_files, load_document, resolve_max_doc_bytes
from .embedding import Embedder
from .errors import DocumentError, IndexCorruptError, QAError
from .lexical import LexicalIndex, analyze
from .store import (
    MANIFEST,
    build_lock,
    clean_leftovers,
    fingerprint,
    lexical_text,
    load_index,
    passage_keys,
    pause_point,
    read_manifest,
    sha256_file,
    write_build,
)
from .types import Passage

log = logging.getLogger(__name__)

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


def _text_hash(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def _previous_vectors(folder: Path, model: str) -> dict[bytes, np.ndarray]:
    """Embeddings of the current index by text hash, so unchanged text is not embedded again.

    Only an index that passes verification (every checksum, every file parsed) lends
    its vectors: a damaged one lends nothing, so the build embeds every text afresh
    rather than sealing damaged vectors under new checksums.
    """
    try:
        old = load_index(folder, model=model, verify=True)
    except IndexCorruptError as exc:
        log.warning("the current index is damaged (%s): building from scratch, reusing nothing", exc)
        return {}
    except QAError:
        return {}
    texts = [t for p in old.passages for _, _, t in passage_keys(p)]
    if len(texts) != old.vectors.ntotal:
        return {}
    try:
        matrix = old.vectors.reconstruct_n(0, old.vectors.ntotal)
    except RuntimeError:
        return {}
    return {_text_hash(t): matrix[i] for i, t in enumerate(texts)}


def _unique_ids(passages: list[Passage]) -> list[Passage]:
    seen: dict[str, int] = {}
    out = []
    for p in passages:
        seen[p.id] = seen.get(p.id, 0) + 1
        out.append(p if seen[p.id] == 1 else replace(p, id=f"{p.id}~{seen[p.id]}"))
    return out


def _files_with_keys(paths: list[str | Path]) -> list[tuple[Path, str]]:
    """Every supported file under `paths`, with a key that does not depend on where the corpus lives."""
    out = []
    for root in map(Path, paths):
        for path in iter_files([root]):
            key = path.relative_to(root).as_posix() if root.is_dir() else path.name
            out.append((path, key))
    return out


def collect_passages(paths: list[str | Path], max_bytes: int | None = None) -> tuple[list[Passage], list[dict]]:
    """Parse every supported file under `paths`; files over `max_bytes` (see resolve_max_doc_bytes) are refused.

    Returns:
        (passages, sources): all passages in a stable order, and one record per file
        (path, key, sha256, title, passage count) for the manifest's fingerprint.

    Raises:
        DocumentError: a malformed file (naming file and line), or no documents at all.
    """
    passages: list[Passage] = []
    sources: list[dict] = []
    for path, key in _files_with_keys(paths):
        document = load_document(path, max_bytes)
        # Passages (and so citations and /ask) name their file below the folder given to the
        # build, never by its absolute path, which would reveal the server's folders and user
        # names; the manifest's sources keep the path as given, for the CLI.
        passages.extend(replace(p, path=key) for p in document.passages)
        sources.append({
            "path": str(path), "key": key, "sha256": sha256_file(path),
            "title": document.title, "passages": len(document.passages),
        })
        if len(sources) == 1:
            pause_point("parse")
    if not sources:
        raise DocumentError(f"no supported documents (.txt, .md, .csv, .json, .jsonl) in {', '.join(map(str, paths))}")
    if not passages:
        raise DocumentError(f"the documents in {', '.join(map(str, paths))} hold no text to index")
    return _unique_ids(passages), sources


def is_stale(folder: Path) -> bool:
    """True when the corpus the index was built from has changed since, or cannot be found."""
    manifest = read_manifest(folder)
    inputs = []
    for given, absolute in zip(manifest.get("inputs", []), manifest.get("input_paths", [])):
        inputs.append(absolute if Path(absolute).exists() else given)
    try:
        now = [{"key": key, "sha256": sha256_file(path)} for path, key in _files_with_keys(inputs)]
    except (DocumentError, OSError):
        return True
    return not now or fingerprint(now) != manifest.get("fingerprint")


def build_index(
    paths: list[str | Path],
    folder: str | Path,
    embedder: Embedder,
    *,
    vector_index: str = "auto",
    batch_size: int = 32,
    progress: bool = False,
    lock_wait: float = 600.0,
    max_bytes: int | None = None,
) -> dict:
    """Build the index of the documents under `paths` into `folder`, replacing its index atomically.

    Parsing happens before anything is written, so a bad document leaves the
    previous index untouched; so does a crash at any later point.

    Args:
        max_bytes: the largest document accepted (argument → $QA_MAX_DOC_BYTES → 50 MiB).

    Returns:
        The new manifest.

    Raises:
        DocumentError: a malformed or over-large document (the index is untouched).
        IndexBusyError: another build holds the folder for longer than `lock_wait` seconds.
    """
    started = time.perf_counter()
    folder = Path(folder)
    passages, sources = collect_passages(list(paths), resolve_max_doc_bytes(max_bytes))
    log.info("parsed %d files into %d passages", len(sources), len(passages))
    lexical_texts = [lexical_text(p) for p in passages]
    if not any(analyze(t) for t in lexical_texts):
        # bm25s cannot index a corpus without a single term (it fails with a bare ValueError).
        raise DocumentError(
            f"the documents in {', '.join(map(str, paths))} hold no words to index "
            "(only punctuation, symbols or stopwords)"
        )

    key_rows, key_texts = [], []
    for row, passage in enumerate(passages):
        for field, sentence, text in passage_keys(passage):
            key_rows.append((row, field, sentence))
            key_texts.append(text)
    keys = np.asarray(key_rows, dtype=np.int32).reshape(-1, 3)

    with build_lock(folder, lock_wait):
        clean_leftovers(folder)
        previous = _previous_vectors(folder, embedder.model_id) if (folder / MANIFEST).exists() else {}
        # Each distinct model input is embedded once: repeated texts (an FAQ question shared by several
        # answers, or asked again with other capitals for an uncased model) then get one identical
        # vector, so their ties are exact and broken the same way by every backend, rather than by
        # the rounding noise of the batch each copy happened to be in. An input that any of its texts
        # had in the previous index keeps that vector (only this corpus is tokenised, not the old one).
        hashes = embedder.input_keys(key_texts)
        reuse: dict[bytes, np.ndarray] = {}
        if previous:
            for text, h in zip(key_texts, hashes):
                vector = previous.get(_text_hash(text))
                if vector is not None:
                    reuse.setdefault(h, vector)
        first: dict[bytes, int] = {}
        for i, h in enumerate(hashes):
            if h not in reuse:
                first.setdefault(h, i)
        todo = list(first.values())
        # Embed in order of length so that batches pad little.
        todo.sort(key=lambda i: len(key_texts[i]))
        pause_point("embed")
        fresh = embedder.encode([key_texts[i] for i in todo], batch_size=batch_size, progress=progress)
        if not np.isfinite(fresh).all():
            # A damaged model file can yield NaN: such vectors would pass every checksum and answer wrongly.
            raise QAError(
                f"the embedding model {embedder.model_id!r} returned invalid vectors (NaN or infinite); "
                "its files may be damaged. The index is unchanged"
            )
        dimension = fresh.shape[1] if len(todo) else embedder.dimension
        vectors = np.empty((len(key_texts), dimension), dtype=np.float32)
        fresh_by_hash = {hashes[i]: fresh[j] for j, i in enumerate(todo)}
        for i, h in enumerate(hashes):
            vectors[i] = reuse[h] if h in reuse else fresh_by_hash[h]
        reused = sum(h in reuse for h in hashes)
        log.info("embedded %d distinct texts for %d keys, reused %d", len(todo), len(key_texts) - reused, reused)

        index = make_vector_index(vectors, vector_index)
        lexical = LexicalIndex.fit(lexical_texts)
        manifest = {
            "model": embedder.model_id,
            "dimension": int(dimension),
            "vector_index": type(index).__name__,
            "vector_index_params": describe_vector_index(index, vector_index),
            "embedding_backend": getattr(embedder, "active_backend", None),
            "fingerprint": fingerprint(sources),
            "inputs": [str(p) for p in paths],
            "input_paths": [str(Path(p).resolve()) for p in paths],
            "sources": sources,
            "passage_count": len(passages),
            "faq_count": sum(p.kind == "faq" for p in passages),
            "paragraph_count": sum(p.kind == "paragraph" for p in passages),
            "key_count": int(len(keys)),
            "embedded": len(todo),  # distinct texts embedded by this build
            "reused": reused,  # keys whose vector came from the previous index
            "deduplicated": len(key_texts) - reused - len(todo),  # keys sharing a model input embedded once
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "build_seconds": None,
        }
        manifest["build_seconds"] = round(time.perf_counter() - started, 3)
        write_build(folder, manifest, passages, keys, index, lexical)
        clean_leftovers(folder)
    return read_manifest(folder)
