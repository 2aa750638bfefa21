"""Build an index: documents → passages → keys → plan → embed → a build that the store writes.

One path for every build and every store: collect the documents, check them, lay out
the keys, plan what the store's current build lends (qa/incremental.py; nothing for a
first build or `--full`), embed the rest, and hand the `Build` to the store, which writes
and commits it (qa/stores/). A full build is the plan against nothing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from . import settings
from .alternates import KIND as ALTERNATES_KIND, merge_alternates, parse_alternates
from .checks import check_documents, conflicts
from .follow_ups import resolve as resolve_follow_ups
from .discovery import sha256_file
from .documents import Document, iter_files, load_document
from .embedding import Embedder, EmbeddingError
from .incremental import file_changes, load_previous, plan, reader_digest
from .errors import DocumentError, QAError
from .keys import lexical_text, passage_keys
from .lexical import analyze
from .stores import Build, IndexStore, open_store
from .types import Manifest, Passage, Skipped, Source

log = logging.getLogger(__name__)


def fingerprint(files: Iterable[Source | Skipped]) -> str:
    """One hash of the corpus: every file's key (path below its input root) and content hash."""
    digest = hashlib.sha256()
    for key, sha in sorted((f.key, f.sha256) for f in files):
        digest.update(f"{key}\0{sha}\n".encode())
    return digest.hexdigest()


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
) -> tuple[list[Document], list[Source], list[Skipped]]:
    """Read every supported file under `paths`; a bad one is skipped with its reason, never the whole build.

    Unreadable files (binary, encrypted, damaged), malformed ones (a CSV row with
    a field too many, invalid JSON: the reason names the line), files over a size
    limit and a reader's own failure all skip that one file; the manifest records
    it (so fixing it makes the index stale) and `qa build` and `qa check` name it.

    Args:
        reuse: given (path, key, sha256), the document as a previous build read it, or None to read
            the file (see qa.incremental.Previous.document).

    Returns:
        (documents, sources, skipped): the documents read; one Source per document for the
        manifest; one Skipped per file that could not be read.

    Raises:
        DocumentError: no readable documents at all (naming each skipped file and its reason).
    """
    documents: list[Document] = []
    sources: list[Source] = []
    skipped: list[Skipped] = []
    limit = settings.max_doc_bytes(max_bytes) if reuse else 0
    for path, key in _files_with_keys(paths):
        sha = sha256_file(path)
        document = reuse(path, key, sha) if reuse and path.stat().st_size <= limit else None
        if document is None:
            try:
                document = load_document(path, max_bytes)
            except DocumentError as exc:
                log.warning("%s%s", exc, "" if str(exc).endswith("; skipped") else "; skipped")
                skipped.append(Skipped(str(path), key, sha, exc.reason or str(exc), exc.line))
                continue
        documents.append(document)
        sources.append(Source(str(path), key, sha, document.title, document.kind, len(document.passages),
                              reader_warnings=tuple(document.warnings)))
        if len(sources) == 1 and on_stage:
            on_stage("parse")
    if not sources:
        found = f"; skipped {len(skipped)}: " + "; ".join(map(str, skipped)) if skipped else ""
        raise DocumentError(f"no readable documents in {', '.join(map(str, paths))}{found}")
    return documents, sources, skipped


def passages_of(documents: list[Document], sources: list[Source]) -> list[Passage]:
    """The documents' passages, each naming its file below the folder given to the build.

    Never by its absolute path, which would reveal the server's folders and user names in
    citations and /ask; the manifest's sources keep the path as given, for the CLI. The
    phrasings of an `alternates.jsonl` among the documents join their FAQs (qa/alternates.py), and
    each FAQ's follow-up references become the passage ids they name (qa/follow_ups.py).
    """
    passages = [replace(p, path=source.key) for source, document in zip(sources, documents) for p in document.passages]
    targets, _ = resolve_follow_ups(passages)  # the ingest checks report what is left out
    passages = unique_ids(passages)
    passages = [replace(p, follow_ups=tuple(passages[j].id for j in found)) if p.follow_ups else p
                for p, found in zip(passages, targets)]
    for document in documents:
        if document.kind == ALTERNATES_KIND:
            passages = merge_alternates(passages, parse_alternates(document.path, document.text), document.path)
    return passages


def collect_passages(paths: list[str | Path], max_bytes: int | None = None) -> tuple[list[Passage], list[Source]]:
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


def is_stale(index: Manifest | str | os.PathLike, store: str | None = None) -> bool:
    """True when the corpus an index was built from has changed since, or cannot be found.

    Args:
        index: the index's manifest, or its --index (read from `store`: argument → $QA_STORE → folder).
    """
    manifest = index if isinstance(index, Manifest) else open_store(store, index).manifest()
    inputs = [absolute if Path(absolute).exists() else given
              for given, absolute in zip(manifest.inputs, manifest.input_paths)]
    try:
        now = [Skipped(str(path), key, sha256_file(path), "") for path, key in _files_with_keys(inputs)]
    except (DocumentError, OSError):
        return True
    return not now or fingerprint(now) != manifest.fingerprint


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
    store: str | IndexStore | None = None,
    ray: str | None = None,
    update: bool = True,
) -> Manifest:
    """Build the index of the documents under `paths` into the index named `folder`, replacing it atomically.

    Parsing happens before anything is written, so a bad document leaves the
    previous index untouched; so does a crash at any later point.

    Args:
        max_bytes: the largest document accepted (argument → $QA_MAX_DOC_BYTES → 50 MiB).
        on_stage: told the name of each stage as the build reaches it (parse, embed, write,
            commit, manifest, cleanup), e.g. for a test to stop the build there.
        allow_conflicts: build even when one FAQ question has different answers (see qa.checks);
            they are logged either way. `qa build` passes False unless --allow-conflicts is given.
        store: where the index goes: an IndexStore, or its spelling (argument → $QA_STORE →
            "folder"; see qa.stores). For Milvus, `folder`'s last part names the collection.
        ray: embed with Ray Data (argument → $QA_RAY_ADDRESS → not): "local" starts a Ray on this
            machine, anything else is a cluster address (see qa.ray_embedding).
        update: build on the store's current build when it is sound and of the same model
            (qa/incremental.py); False (`qa build --full`) reuses nothing and embeds every text.

    Returns:
        The new manifest.

    Raises:
        DocumentError: a malformed or over-large document, or conflicting FAQ answers
            (the index is untouched).
        IndexBusyError: another build holds the index for longer than `lock_wait` seconds.
        ValueError: the index folder is one of `paths`.
    """
    started = time.perf_counter()
    if any(Path(p).resolve() == Path(folder).resolve() for p in paths):
        # The build would write its index among the documents, and the next build would skip the
        # whole folder as an index folder.
        raise ValueError(f"the index folder {folder} is also a folder of documents to index; "
                         "put the index beside the documents (e.g. --index index)")
    store = store if isinstance(store, IndexStore) else open_store(store, folder)
    ray = settings.ray_address(ray)
    seen = store.signature() if update else None
    previous = load_previous(store, embedder.model_id) if update else None
    reuse = previous.document if previous is not None and previous.update else None
    documents, sources, skipped = collect_documents(list(paths), settings.max_doc_bytes(max_bytes), on_stage, reuse)
    passages = unique_ids(passages_of(documents, sources))
    sources = _mark_renamed(documents, sources, passages)
    sources, problems, errors = _check(paths, documents, sources, passages, allow_conflicts)
    log.info("parsed %d files into %d passages (%d skipped)", len(sources), len(passages), len(skipped))
    key_rows, key_texts = [], []
    for row, passage in enumerate(passages):
        for field, sentence, text in passage_keys(passage):
            key_rows.append((row, field, sentence))
            key_texts.append(text)
    keys = np.asarray(key_rows, dtype=np.int32).reshape(-1, 3)
    old_sources = _old_sources(store)

    with store.lock(lock_wait):
        if update and store.signature() != seen:
            previous = load_previous(store, embedder.model_id)  # another build committed meanwhile
        matched = plan(previous, passages, keys[:, 0], key_texts, embedder)
        # Each distinct model input is embedded once: repeated texts (an FAQ question shared by several
        # answers, or asked again with other capitals for an uncased model) then get one identical
        # vector, so their ties are exact and broken the same way by every backend, rather than by
        # the rounding noise of the batch each copy happened to be in.
        todo_keys = np.flatnonzero(matched.old_key < 0)
        first: dict[bytes, int] = {}
        for i in todo_keys:
            first.setdefault(matched.digests[i], int(i))
        todo = sorted(first.values(), key=lambda i: len(key_texts[i]))  # by length, so that batches pad little
        embedded = _embed_new(embedder, [key_texts[i] for i in todo], batch_size, progress, ray, on_stage)
        dimension = embedded.shape[1] if todo else previous.index.dimension if previous else embedder.dimension
        by_digest = {matched.digests[i]: embedded[j] for j, i in enumerate(todo)}
        fresh = np.empty((todo_keys.size, dimension), dtype=np.float32)
        for j, i in enumerate(todo_keys):
            fresh[j] = by_digest[matched.digests[i]]
        updating = previous is not None and previous.update
        reused = int(len(keys) - todo_keys.size)
        log.info("embedded %d distinct texts for %d keys, reused %d%s", len(todo), todo_keys.size, reused,
                 f"; kept {matched.kept} of {len(passages)} passages" if updating else "")
        fields = {
            "model": embedder.model_id,
            "dimension": int(dimension),
            "vector_index": None,  # the store's record of its vector index (qa/stores/)
            "vector_index_params": {},
            "embedding_backend": embedder.active_backend or ("ray" if ray else None),
            "embedded_with": "ray" if ray else "local",
            **_corpus_manifest(paths, sources, skipped, passages, problems, errors),
            "key_count": int(len(keys)),
            "embedded": len(todo),  # distinct texts embedded by this build
            "reused": reused,  # keys whose vector came from the previous build
            "deduplicated": int(todo_keys.size - len(todo)),  # keys sharing a model input embedded once
            "update": {"mode": "incremental", "kept_passages": matched.kept} if updating else {"mode": "full"},
            "files": file_changes(old_sources, sources),
            "build_seconds": round(time.perf_counter() - started, 3),
        }
        build = Build(
            fields=fields, passages=passages, keys=keys,
            digests=np.frombuffer(b"".join(matched.digests), dtype=np.uint8).reshape(-1, 16),
            tokens=matched.tokens, old_key=matched.old_key, fresh=fresh,
            previous=previous.stored if previous else None, update=updating, vector_index=vector_index,
        )
        return store.write(build, on_stage or (lambda name: None))


def _check(paths, documents: list[Document], sources: list[Source], passages: list[Passage], allow_conflicts: bool):
    """The ingest checks of a build (qa/checks.py): (sources with their warnings, problems, errors).

    Raises:
        DocumentError: no passages or no words to index, or conflicting answers without `allow_conflicts`.
    """
    where = ", ".join(map(str, paths))
    if not passages:
        raise DocumentError(f"the documents in {where} hold no text to index")
    problems = check_documents(documents)
    for problem in problems:
        log.warning("%s", problem)
    errors = conflicts(problems)
    if errors and not allow_conflicts:
        more = f" (and {len(errors) - 1} more; see `qa check`)" if len(errors) > 1 else ""
        raise DocumentError(f"{errors[0].path}:{errors[0].line}: {errors[0].message}{more}; "
                            "fix the documents or build with --allow-conflicts")
    sources = [replace(source, warnings=tuple(f"{p.line}: {p.message}" for p in problems if p.path == document.path))
               for source, document in zip(sources, documents)]
    if not any(analyze(lexical_text(p)) for p in passages):
        # bm25s cannot index a corpus without a single term (it fails with a bare ValueError).
        raise DocumentError(f"the documents in {where} hold no words to index (only punctuation, symbols or stopwords)")
    return sources, problems, errors


def _mark_renamed(documents: list[Document], sources: list[Source], passages: list[Passage]) -> list[Source]:
    """The sources, those whose passage ids `unique_ids` changed marked: an update must read them again."""
    out, row = [], 0
    for source, document in zip(sources, documents):
        count = len(document.passages)
        renamed = any(p.id != q.id for p, q in zip(document.passages, passages[row : row + count]))
        out.append(replace(source, renamed=renamed))
        row += count
    return out


def _old_sources(store: IndexStore) -> list[Source]:
    """The sources of the index being replaced, for the build's added/changed/removed count ([] without one)."""
    try:
        return list(store.manifest().sources)
    except QAError:
        return []


def _corpus_manifest(paths, sources: list[Source], skipped: list[Skipped], passages, problems, errors) -> dict:
    """The manifest's record of the corpus a build indexed."""
    return {
        # Skipped files count: fixing one makes the index stale.
        "fingerprint": fingerprint([*sources, *skipped]),
        "inputs": [str(p) for p in paths],
        "input_paths": [str(Path(p).resolve()) for p in paths],
        "sources": [s.to_dict() for s in sources],
        "skipped": [s.to_dict() for s in skipped],
        "problems": {"errors": len(errors), "warnings": len(problems) - len(errors)},
        "passage_count": len(passages),
        "faq_count": sum(p.kind == "faq" for p in passages),
        "paragraph_count": sum(p.kind == "paragraph" for p in passages),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "readers": reader_digest(),  # a build reuses parsed passages and terms only from the same code
    }
