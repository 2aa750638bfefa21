"""Vector and BM25 indexes at 10k–1M entries, from real embeddings and real text.

Encoding a million passages takes hours on 2 cores, so the large corpora are
made from the real key embeddings of the benchmark corpus (its paragraphs,
sentences, FAQ questions and answers, as `qa build` embedded them):

    v = normalise(x_i + sigma * z),   x_i a real embedding drawn uniformly,
                                      z ~ N(0, C) with C the real embeddings' covariance.

Noise shaped like the real embeddings' own spread keeps the copies in the
region of the space real text occupies (isotropic noise in 384 dimensions
would spread them over the whole sphere, which no real corpus does). The
queries are real questions embedded by the model; exact search (IndexFlatIP)
over the same vectors is the ground truth for recall@10. BM25 indexes the
corpus' real passage texts repeated to N passages.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .measure import ms

# Retriever.search asks FAISS for candidates * 4 keys (50 * 4): latency is measured at that k too.
RETRIEVER_K = 200


def synthesize(real: np.ndarray, n: int, sigma: float, seed: int = 0, chunk: int = 100_000) -> tuple[np.ndarray, float]:
    """`n` unit vectors made from `real` ones: a real vector plus noise of the real covariance, renormalised.

    Returns:
        (vectors float32 (n, d), mean cosine between a made vector and the real one it was made from).
    """
    rng = np.random.default_rng(seed)
    centred = real - real.mean(axis=0)
    cov = centred.T @ centred / max(len(real) - 1, 1)
    shape = np.linalg.cholesky(cov + 1e-6 * np.eye(real.shape[1])).astype(np.float32)
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    cosines = []
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        source = rng.integers(0, len(real), stop - start)
        noise = rng.standard_normal((stop - start, real.shape[1]), dtype=np.float32) @ shape.T
        v = real[source] + sigma * noise
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        out[start:stop] = v
        cosines.append(np.einsum("ij,ij->i", v[:2000], real[source[:2000]]))
    return out, float(np.concatenate(cosines).mean())


@dataclass
class IndexFigures:
    """One vector index at one size."""

    kind: str  # the FAISS class
    build_s: float
    bytes: int  # size of the saved index (what `qa build` writes and a server loads)
    raw_bytes: int  # n * d * 4: the float32 vectors alone
    p50_ms: float  # one query, k = 10
    p99_ms: float
    p50_ms_k200: float  # one query, k = RETRIEVER_K
    p99_ms_k200: float
    recall_at_10: float  # against exact search
    reconstruct_ok: bool  # reconstruct_batch returns the stored vectors (the Retriever needs it)


@dataclass
class ScaleFigures:
    """Everything measured at one corpus size."""

    n: int
    auto_kind: str  # what make_vector_index(kind="auto") builds at this size: "flat", "hnsw", ...
    flat: IndexFigures
    ann: IndexFigures | None  # the approximate index measured beside flat (HNSW), None if not measured
    bm25_build_s: float
    bm25_p50_ms: float
    bm25_p99_ms: float
    bm25_top50_p50_ms: float  # scores plus the Retriever's top-50 selection over all passages
    bm25_top50_p99_ms: float
    copy_cosine: float

    def chosen(self) -> IndexFigures:
        """The figures of the index `auto` picks at this size."""
        return self.flat if self.auto_kind == "flat" or self.ann is None else self.ann

    def to_dict(self) -> dict:
        return asdict(self)


def _latency(index, queries: np.ndarray, k: int) -> tuple[float, float]:
    times = []
    for q in queries:
        started = time.perf_counter()
        index.search(q.reshape(1, -1), k)
        times.append(time.perf_counter() - started)
    return ms(times, 50), ms(times, 99)


def measure_index(index, build_s: float, vectors: np.ndarray, queries: np.ndarray, truth: np.ndarray,
                  latency_queries: int, workdir: Path) -> IndexFigures:
    """Latency, recall@10 against `truth`, saved size and reconstruction of a built index."""
    import faiss

    path = workdir / "probe.faiss"
    faiss.write_index(index, str(path))
    size = path.stat().st_size
    path.unlink()
    _, found = index.search(queries, 10)
    recall = float(np.mean([len(set(a) & set(b)) / 10.0 for a, b in zip(truth, found)]))
    lat_q = queries[:latency_queries]
    p50, p99 = _latency(index, lat_q, 10)
    p50b, p99b = _latency(index, lat_q, min(RETRIEVER_K, index.ntotal))
    ids = np.linspace(0, index.ntotal - 1, num=min(50, index.ntotal)).astype(np.int64)
    try:
        reconstruct_ok = bool(np.allclose(index.reconstruct_batch(ids), vectors[ids], atol=1e-6))
    except RuntimeError:
        reconstruct_ok = False
    return IndexFigures(type(index).__name__, build_s, size, vectors.nbytes, p50, p99, p50b, p99b, recall, reconstruct_ok)


def _bm25(texts: list[str], n: int, questions: list[str]) -> tuple[float, float, float, float, float]:
    """Build BM25 over `texts` repeated to `n` passages.

    Returns:
        (build seconds, `LexicalIndex.scores` p50 and p99 ms, the same plus top-50 selection p50 and p99 ms).

    Each distinct text is analysed once (the analyser is the pipeline's own) and
    its tokens reused for its copies, so the build time is bm25s' indexing alone.
    """
    import bm25s
    from bm25s.tokenization import Tokenized

    from qa.lexical import LexicalIndex, analyze

    vocab: dict[str, int] = {}
    ids = [[vocab.setdefault(t, len(vocab)) for t in analyze(text)] for text in texts]
    corpus = [ids[i % len(ids)] for i in range(n)]
    started = time.perf_counter()
    bm25 = bm25s.BM25()
    bm25.index(Tokenized(ids=corpus, vocab=vocab), show_progress=False)
    build = time.perf_counter() - started
    lexical = LexicalIndex(bm25)
    lexical.scores(questions[0])
    times, topn = [], []
    for q in questions:
        started = time.perf_counter()
        scores = lexical.scores(q)
        times.append(time.perf_counter() - started)
        # What the Retriever does next with the scores: the best 50 passages.
        np.argpartition(-scores, min(50, scores.size - 1))[:50]
        topn.append(time.perf_counter() - started)
    return build, ms(times, 50), ms(times, 99), ms(topn, 50), ms(topn, 99)


def measure_scale(
    n: int,
    real: np.ndarray,
    queries: np.ndarray,
    question_texts: list[str],
    passage_texts: list[str],
    *,
    sigma: float,
    ann_kind: str = "hnsw",
    latency_queries: int = 200,
    flat_latency_queries: int | None = None,
    seed: int = 0,
    bm25: bool = True,
    log=print,
) -> ScaleFigures:
    """Measure exact and approximate vector search, and BM25, at `n` entries."""
    from qa.stores.folder import choose_vector_index, make_vector_index

    vectors, copy_cos = synthesize(real, n, sigma, seed=seed)
    with tempfile.TemporaryDirectory(prefix="qa-bench-scale-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        flat = make_vector_index(vectors, "flat")
        flat_build = time.perf_counter() - started
        _, truth = flat.search(queries, 10)
        flat_fig = measure_index(flat, flat_build, vectors, queries, truth, flat_latency_queries or latency_queries, work)
        log(f"  {n:>9,} flat: p50 {flat_fig.p50_ms:.2f} ms, p99 {flat_fig.p99_ms:.2f} ms")
        del flat
        auto_kind = choose_vector_index(n)
        ann_fig = None
        if ann_kind:
            started = time.perf_counter()
            ann = make_vector_index(vectors, ann_kind)
            ann_build = time.perf_counter() - started
            ann_fig = measure_index(ann, ann_build, vectors, queries, truth, latency_queries, work)
            log(f"  {n:>9,} {ann_fig.kind}: build {ann_build:.1f} s, p50 {ann_fig.p50_ms:.2f} ms, "
                f"p99 {ann_fig.p99_ms:.2f} ms, recall@10 {ann_fig.recall_at_10:.3f}")
            del ann
    del vectors
    if not bm25:
        return ScaleFigures(n, auto_kind, flat_fig, ann_fig, 0.0, 0.0, 0.0, 0.0, 0.0, copy_cos)
    bm25_build, bm25_p50, bm25_p99, top_p50, top_p99 = _bm25(passage_texts, n, question_texts[:latency_queries])
    log(f"  {n:>9,} BM25: build {bm25_build:.1f} s, p50 {bm25_p50:.2f} ms, p99 {bm25_p99:.2f} ms; "
        f"with top-50 selection p50 {top_p50:.2f} ms, p99 {top_p99:.2f} ms")
    return ScaleFigures(n, auto_kind, flat_fig, ann_fig, bm25_build, bm25_p50, bm25_p99, top_p50, top_p99, copy_cos)
