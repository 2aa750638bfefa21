"""Build an index: documents → passages → embeddings → FAISS + BM25 → a committed folder."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from . import settings
from .alternates import KIND as ALTERNATES_KIND, merge_alternates, parse_alternates
from .checks import check_documents, conflicts
from .follow_ups import resolve as resolve_follow_ups
from .documents import Document, iter_files, load_document
from .embedding import Embedder, EmbeddingError
from .incremental import file_changes, load_previous, plan, reader_digest, update_hnsw
from .errors import DocumentError, IndexCorruptError, QAError
from .keys import lexical_text, passage_keys
from .lexical import LexicalIndex, analyze
from .store import (
    MANIFEST,
    build_lock,
    clean_leftovers,
    fingerprint,
    load_index,
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
    if len(texts) != old.key_count:
        return {}
    try:
        matrix = old.all_key_vectors()
    except RuntimeError:
        return {}
    return {_text_hash(t): matrix[i] for i, t in enumerate(texts)}


def _previous_milvus_vectors(milvus, model: str) -> dict[bytes, np.ndarray]:
    """As `_previous_vectors`, from the build a Milvus index's alias points at."""
    stored = milvus.stored_vectors(model)
    if stored is None:
        return {}
    passages, matrix = stored
    texts = [t for p in passages for _, _, t in passage_keys(p)]
    if len(texts) != len(matrix):
        return {}
    return {_text_hash(t): matrix[i] for i, t in enumerate(texts)}


# A build embeds its texts in chunks of this many, each in one `Embedder.encode` call, locally or
# on a Ray actor alike: a vector's last bits depend on the batch it was embedded in, so both ways
# cutting the same chunks is what makes a --ray build's vectors identical to a local build's.
EMBED_CHUNK = 1024


def _embed_new(embedder, texts: list[str], batch_size: int, progress: bool, ray, on_stage) -> np.ndarray:
    """`embed_texts` as a build's "embed" stage: a failure leaves the index as it was, and says so."""
    if on_stage:
        on_stage("embed")
    try:
        return embed_texts(embedder, texts, batch_size, progress, ray)
    except EmbeddingError as exc:
        raise EmbeddingError(f"{exc}. The index is unchanged") from None


def embed_texts(embedder: Embedder, texts: list[str], batch_size: int = 32, progress: bool = False,
                ray: str | None = None) -> np.ndarray:
    """Embed `texts` chunk by chunk (EMBED_CHUNK), here or with Ray ("local" or a cluster address).

    Returns:
        float32 (len(texts), dimension).
    """
    chunks = [texts[i : i + EMBED_CHUNK] for i in range(0, len(texts), EMBED_CHUNK)]
    if not chunks:
        return embedder.encode([], batch_size=batch_size)
    if ray:
        from .ray_embedding import encode_chunks

        parts = encode_chunks(embedder, chunks, ray, batch_size=batch_size)
    else:
        bar = None
        if progress and len(chunks) > 1:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(texts), desc="embedding", unit="text")
        parts = []
        for chunk in chunks:
            parts.append(embedder.encode(chunk, batch_size=batch_size, progress=progress and bar is None))
            if bar is not None:
                bar.update(len(chunk))
        if bar is not None:
            bar.close()
    return np.vstack(parts)


def unique_ids(passages: list[Passage]) -> list[Passage]:
    """The passages, each id made unique by the one rule documents use too: a repeat gets -2, -3, … in corpus order.

    (Two files with the same name in different folders give their passages the same ids.)
    """
    seen: set[str] = set()
    out = []
    for p in passages:
        pid, n = p.id, 1
        while pid in seen:
            n += 1
            pid = f"{p.id}-{n}"
        seen.add(pid)
        out.append(p if pid == p.id else replace(p, id=pid))
    return out


def _files_with_keys(paths: list[str | Path]) -> list[tuple[Path, str]]:
    """Every supported file under `paths`, with a key that does not depend on where the corpus lives.

    With one input a key is the file's path below it (`faq.csv`). With several,
    two inputs may each hold a `faq.csv`: keys are then paths below the folder
    the inputs share (`a/faq.csv`, `b/faq.csv`), so citations, the manifest and
    an update's changed/unchanged files each name one file. A file reached
    through two inputs (a folder and a file inside it) is read once.

    Raises:
        DocumentError: a path does not exist.
    """
    roots = [Path(p) for p in paths]
    base = None
    if len(roots) > 1:
        absolute = [os.path.abspath(r) for r in roots]
        base = os.path.commonpath([a if Path(a).is_dir() else os.path.dirname(a) for a in absolute])
    out, seen = [], set()
    for root in roots:
        for path in iter_files([root]):
            key = path.relative_to(root).as_posix() if root.is_dir() else path.name
            if base is not None:
                below = Path(os.path.relpath(os.path.abspath(root), base))
                key = (below / key).as_posix() if root.is_dir() else below.as_posix()
                key = key.removeprefix("./")
            if key in seen:
                log.warning("%s: read already through another input (as %s); skipped", path, key)
                continue
            seen.add(key)
            out.append((path, key))
    return out


def collect_documents(
    paths: list[str | Path], max_bytes: int | None = None, on_stage: Callable[[str], None] | None = None,
    reuse: Callable[[Path, str, str], Document | None] | None = None,
) -> tuple[list[Document], list[dict], list[dict]]:
    """Read every supported file under `paths`; a bad one is skipped with its reason, never the whole build.

    Unreadable files (binary, encrypted, damaged), malformed ones (a CSV row with
    a field too many, invalid JSON: the reason names the line), files over a size
    limit and a reader's own failure all skip that one file; the manifest records
    it (so fixing it makes the index stale) and `qa build` and `qa check` name it.

    Args:
        reuse: given (path, key, sha256), the document as a previous build read it, or None to read
            the file (see qa.incremental.Previous.document).

    Returns:
        (documents, sources, skipped): the documents read; one record per document (path, key,
        sha256, title, kind, passage count) for the manifest; one record per skipped file
        (path, key, sha256, line, reason).

    Raises:
        DocumentError: no readable documents at all (naming each skipped file and its reason).
    """
    documents: list[Document] = []
    sources: list[dict] = []
    skipped: list[dict] = []
    limit = settings.max_doc_bytes(max_bytes) if reuse else 0
    for path, key in _files_with_keys(paths):
        sha = sha256_file(path)
        document = reuse(path, key, sha) if reuse and path.stat().st_size <= limit else None
        if document is None:
            try:
                document = load_document(path, max_bytes)
            except DocumentError as exc:
                log.warning("%s%s", exc, "" if str(exc).endswith("; skipped") else "; skipped")
                line, reason = _reason(exc, path)
                skipped.append({"path": str(path), "key": key, "sha256": sha, "line": line, "reason": reason})
                continue
        documents.append(document)
        sources.append({
            "path": str(path), "key": key, "sha256": sha,
            "title": document.title, "kind": document.kind, "passages": len(document.passages),
            "reader_warnings": [[line, message] for line, message in document.warnings],
        })
        if len(sources) == 1 and on_stage:
            on_stage("parse")
    if not sources:
        found = f"; skipped {len(skipped)}: " + "; ".join(map(skipped_line, skipped)) if skipped else ""
        raise DocumentError(f"no readable documents in {', '.join(map(str, paths))}{found}")
    return documents, sources, skipped


def _reason(exc: Exception, path: Path) -> tuple[int | None, str]:
    """(line or None, reason) of a DocumentError's 'path[:line]: reason[; skipped]'."""
    text = str(exc).removesuffix("; skipped")
    match = re.match(r":(\d+)?:? ?(.*)", text[len(str(path)):], re.S) if text.startswith(str(path)) else None
    if not match:
        return None, text
    return (int(match.group(1)) if match.group(1) else None), match.group(2)


def skipped_line(record: dict) -> str:
    """'scan.pdf: no text ...' or 'image.md:3: not a text file ...': one skipped file, for messages."""
    where = record["key"] + (f":{record['line']}" if record.get("line") else "")
    return f"{where}: {record['reason']}"


def passages_of(documents: list[Document], sources: list[dict]) -> list[Passage]:
    """The documents' passages, each naming its file below the folder given to the build.

    Never by its absolute path, which would reveal the server's folders and user names in
    citations and /ask; the manifest's sources keep the path as given, for the CLI. The
    phrasings of an `alternates.jsonl` among the documents join their FAQs (qa/alternates.py), and
    each FAQ's follow-up references become the passage ids they name (qa/follow_ups.py).
    """
    passages = [replace(p, path=source["key"]) for source, document in zip(sources, documents) for p in document.passages]
    targets, _ = resolve_follow_ups(passages)  # the ingest checks report what is left out
    passages = unique_ids(passages)
    passages = [replace(p, follow_ups=tuple(passages[j].id for j in found)) if p.follow_ups else p
                for p, found in zip(passages, targets)]
    for document in documents:
        if document.kind == ALTERNATES_KIND:
            passages = merge_alternates(passages, parse_alternates(document.path, document.text), document.path)
    return passages


def collect_passages(paths: list[str | Path], max_bytes: int | None = None) -> tuple[list[Passage], list[dict]]:
    """Parse every supported file under `paths`; files over `max_bytes` (see settings.max_doc_bytes) are refused.

    Returns:
        (passages, sources): all passages in a stable order, and one record per file read
        (path, key, sha256, title, kind, passage count) for the manifest's fingerprint.

    Raises:
        DocumentError: a malformed file (naming file and line), or no documents at all.
    """
    documents, sources, _ = collect_documents(paths, max_bytes)
    passages = passages_of(documents, sources)
    if not passages:
        raise DocumentError(f"the documents in {', '.join(map(str, paths))} hold no text to index")
    return unique_ids(passages), sources


def is_stale(folder: Path, manifest: dict | None = None) -> bool:
    """True when the corpus the index was built from has changed since, or cannot be found.

    Args:
        manifest: the index's manifest when read already (e.g. from Milvus); else read from `folder`.
    """
    manifest = read_manifest(folder) if manifest is None else manifest
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
    on_stage: Callable[[str], None] | None = None,
    allow_conflicts: bool = True,
    store: str | None = None,
    ray: str | None = None,
    update: bool = True,
) -> dict:
    """Build the index of the documents under `paths` into `folder`, replacing its index atomically.

    Parsing happens before anything is written, so a bad document leaves the
    previous index untouched; so does a crash at any later point.

    Args:
        max_bytes: the largest document accepted (argument → $QA_MAX_DOC_BYTES → 50 MiB).
        on_stage: told the name of each stage as the build reaches it (parse, embed, write,
            commit, manifest, cleanup), e.g. for a test to stop the build there.
        allow_conflicts: build even when one FAQ question has different answers (see qa.checks);
            they are logged either way. `qa build` passes False unless --allow-conflicts is given.
        store: where the index goes (argument → $QA_STORE → "folder"; see qa.stores). For Milvus,
            `folder`'s last part names the collection, and nothing is written to disk.
        ray: embed with Ray Data (argument → $QA_RAY_ADDRESS → not): "local" starts a Ray on this
            machine, anything else is a cluster address (see qa.ray_embedding).
        update: update the index in `folder` when it is sound and of the same model (qa/incremental.py);
            False reads every file and builds both indexes in full (still reusing the vectors of unchanged text).

    Returns:
        The new manifest.

    Raises:
        DocumentError: a malformed or over-large document, or conflicting FAQ answers
            (the index is untouched).
        IndexBusyError: another build holds the folder for longer than `lock_wait` seconds.
    """
    from contextlib import nullcontext

    from .stores import milvus_store, parse_store

    started = time.perf_counter()
    folder = Path(folder)
    if any(Path(p).resolve() == folder.resolve() for p in paths):
        # The build would write its index among the documents, and the next build would skip the
        # whole folder as an index folder.
        raise ValueError(f"the index folder {folder} is also a folder of documents to index; "
                         "put the index beside the documents (e.g. --index index)")
    spec = parse_store(store)
    milvus = milvus_store(spec, folder) if spec.kind == "milvus" else None
    ray = settings.ray_address(ray)
    # An index of the same model in the folder is updated rather than rebuilt (qa/incremental.py).
    previous = (load_previous(folder, embedder.model_id)
                if update and milvus is None and (folder / MANIFEST).exists() else None)
    documents, sources, skipped = collect_documents(
        list(paths), settings.max_doc_bytes(max_bytes), on_stage, previous.document if previous else None
    )
    passages = unique_ids(passages_of(documents, sources))
    _mark_renamed(documents, sources, passages)
    if not passages:
        raise DocumentError(f"the documents in {', '.join(map(str, paths))} hold no text to index")
    log.info("parsed %d files into %d passages (%d skipped)", len(sources), len(passages), len(skipped))
    problems = check_documents(documents)
    for problem in problems:
        log.warning("%s", problem)
    errors = conflicts(problems)
    if errors and not allow_conflicts:
        more = f" (and {len(errors) - 1} more; see `qa check`)" if len(errors) > 1 else ""
        raise DocumentError(f"{errors[0].path}:{errors[0].line}: {errors[0].message}{more}; "
                            "fix the documents or build with --allow-conflicts")
    for source, document in zip(sources, documents):
        source["warnings"] = [f"{p.line}: {p.message}" for p in problems if p.path == document.path]
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
    old_sources = previous.index.manifest["sources"] if previous else _old_sources(folder, milvus)

    with build_lock(folder, lock_wait) if milvus is None else nullcontext():
        if milvus is None:
            clean_leftovers(folder)
            if previous is not None and read_manifest(folder).get("build_id") != previous.build_id:
                previous = load_previous(folder, embedder.model_id)  # another build committed meanwhile
            if previous is not None:
                manifest, index, lexical, arrays = _update(
                    previous, embedder, passages, keys, key_texts, vector_index, batch_size, progress, ray, on_stage
                )
                manifest.update(_corpus_manifest(paths, sources, skipped, passages, problems, errors))
                manifest["files"] = file_changes(old_sources, sources)
                manifest["build_seconds"] = round(time.perf_counter() - started, 3)
                write_build(folder, manifest, passages, keys, index, lexical, on_stage, arrays)
                clean_leftovers(folder)
                return read_manifest(folder)
            previous = _previous_vectors(folder, embedder.model_id) if (folder / MANIFEST).exists() else {}
        else:
            previous = _previous_milvus_vectors(milvus, embedder.model_id)
        # Each distinct model input is embedded once: repeated texts (an FAQ question shared by several
        # answers, or asked again with other capitals for an uncased model) then get one identical
        # vector, so their ties are exact and broken the same way by every backend, rather than by
        # the rounding noise of the batch each copy happened to be in. An input that any of its texts
        # had in the previous index keeps that vector (only this corpus is tokenised, not the old one).
        hashes = embedder.input_digests(key_texts)
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
        fresh = _embed_new(embedder, [key_texts[i] for i in todo], batch_size, progress, ray, on_stage)
        dimension = fresh.shape[1] if len(todo) else embedder.dimension
        vectors = np.empty((len(key_texts), dimension), dtype=np.float32)
        fresh_by_hash = {hashes[i]: fresh[j] for j, i in enumerate(todo)}
        for i, h in enumerate(hashes):
            vectors[i] = reuse[h] if h in reuse else fresh_by_hash[h]
        reused = sum(h in reuse for h in hashes)
        log.info("embedded %d distinct texts for %d keys, reused %d", len(todo), len(key_texts) - reused, reused)

        if milvus is None:
            index = make_vector_index(vectors, vector_index)
            lexical = LexicalIndex.fit(lexical_texts)
        manifest = {
            "model": embedder.model_id,
            "dimension": int(dimension),
            "vector_index": type(index).__name__ if milvus is None else "milvus",
            "vector_index_params": describe_vector_index(index, vector_index) if milvus is None else {},
            "embedding_backend": embedder.active_backend or ("ray" if ray else None),
            "embedded_with": "ray" if ray else "local",
            **_corpus_manifest(paths, sources, skipped, passages, problems, errors),
            "key_count": int(len(keys)),
            "embedded": len(todo),  # distinct texts embedded by this build
            "reused": reused,  # keys whose vector came from the previous index
            "deduplicated": len(key_texts) - reused - len(todo),  # keys sharing a model input embedded once
            "update": {"mode": "full"},
            "files": file_changes(old_sources, sources),
            "build_seconds": None,
        }
        if milvus is not None:
            manifest["build_seconds"] = round(time.perf_counter() - started, 3)
            return milvus.write(manifest, passages, keys, vectors, on_stage)
        manifest["build_seconds"] = round(time.perf_counter() - started, 3)
        digests = np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(-1, 16)
        write_build(folder, manifest, passages, keys, index, lexical, on_stage, {"digests": digests})
        clean_leftovers(folder)
    return read_manifest(folder)


def _mark_renamed(documents: list[Document], sources: list[dict], passages: list[Passage]) -> None:
    """Mark the sources whose passage ids `unique_ids` changed: an update must read them again."""
    row = 0
    for source, document in zip(sources, documents):
        count = len(document.passages)
        source["renamed"] = any(p.id != q.id for p, q in zip(document.passages, passages[row : row + count]))
        row += count


def _old_sources(folder: Path, milvus) -> list[dict]:
    """The sources of the index being replaced, for the build's added/changed/removed count ([] without one)."""
    try:
        return (milvus.read_manifest() if milvus is not None else read_manifest(folder)).get("sources", [])
    except QAError:
        return []


def _corpus_manifest(paths, sources, skipped, passages, problems, errors) -> dict:
    """The manifest's record of the corpus a build indexed."""
    return {
        # Skipped files count: fixing one makes the index stale.
        "fingerprint": fingerprint(sources + skipped),
        "inputs": [str(p) for p in paths],
        "input_paths": [str(Path(p).resolve()) for p in paths],
        "sources": sources,
        "skipped": skipped,
        "problems": {"errors": len(errors), "warnings": len(problems) - len(errors)},
        "passage_count": len(passages),
        "faq_count": sum(p.kind == "faq" for p in passages),
        "paragraph_count": sum(p.kind == "paragraph" for p in passages),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "readers": reader_digest(),  # an update reuses parsed passages and terms only from the same code
    }


def _update(previous, embedder, passages, keys, key_texts, vector_index, batch_size, progress, ray, on_stage):
    """The vector and lexical indexes of the new corpus, from the previous index and new texts only.

    Returns:
        (the manifest's model, index and embedding fields, vector index, lexical index,
        arrays to write beside them).
    """
    old = previous.index
    matched = plan(previous, passages, keys[:, 0], key_texts, embedder)
    todo_keys = np.flatnonzero(matched.old_key < 0)
    first: dict[bytes, int] = {}
    for i in todo_keys:
        first.setdefault(matched.digests[i], int(i))
    todo = sorted(first.values(), key=lambda i: len(key_texts[i]))
    fresh = _embed_new(embedder, [key_texts[i] for i in todo], batch_size, progress, ray, on_stage)
    by_digest = {matched.digests[i]: fresh[j] for j, i in enumerate(todo)}
    fresh_keys = np.empty((todo_keys.size, old.dimension), dtype=np.float32)
    for j, i in enumerate(todo_keys):
        fresh_keys[j] = by_digest[matched.digests[i]]

    kind = choose_vector_index(len(keys)) if vector_index == "auto" else vector_index
    old_kind = "hnsw" if getattr(old.vectors, "hnsw", None) is not None else "flat"
    same_params = old.manifest.get("vector_index_params", {}).get("requested") == vector_index
    updated = update_hnsw(previous, matched.old_key, fresh_keys) if kind == old_kind == "hnsw" and same_params else None
    arrays = {"digests": np.frombuffer(b"".join(matched.digests), dtype=np.uint8).reshape(-1, 16)}
    if updated is not None:
        index, arrays["slots"] = updated
        how = "updated"
    else:
        vectors = np.empty((len(keys), old.dimension), dtype=np.float32)
        reused_rows = np.flatnonzero(matched.old_key >= 0)
        if reused_rows.size:
            vectors[reused_rows] = old.key_vectors(matched.old_key[reused_rows])
        vectors[todo_keys] = fresh_keys
        index = make_vector_index(vectors, vector_index)
        how = "rebuilt" if kind == "hnsw" else "copied"
    reused = int(len(keys) - todo_keys.size)
    log.info("update: kept %d of %d passages, embedded %d distinct texts, reused %d key vectors; %s the %s index",
             matched.kept, len(passages), len(todo), reused, how, kind)
    fields = {
        "model": embedder.model_id,
        "dimension": int(old.dimension),
        "vector_index": type(index).__name__,
        "vector_index_params": describe_vector_index(index, vector_index),
        "embedding_backend": embedder.active_backend or ("ray" if ray else None),
        "embedded_with": "ray" if ray else "local",
        "key_count": int(len(keys)),
        "embedded": len(todo),
        "reused": reused,
        "deduplicated": int(todo_keys.size - len(todo)),
        "update": {
            "mode": "incremental", "vector_index": how, "kept_passages": matched.kept,
            "removed_vectors": int(index.ntotal - len(keys)),
        },
    }
    return fields, index, LexicalIndex.fit_tokens(matched.tokens), arrays
