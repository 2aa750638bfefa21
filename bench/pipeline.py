"""The pipeline figures: build throughput, ask() latency, batch throughput, fresh-process start, quality.

Each figure is measured beside its reference in the same run, on the same
texts, one after the other, so that a busy machine slows both alike.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .measure import ms, run_child, timed

ROOT = Path(__file__).resolve().parent.parent
QA = str(Path(sys.executable).with_name("qa"))


class RawTorch:
    """sentence-transformers on torch, as a plain pipeline would use it: the reference."""

    def __init__(self):
        from sentence_transformers import SentenceTransformer

        from qa.encoders import DEFAULT_MODEL, model_location

        self.model = SentenceTransformer(model_location(DEFAULT_MODEL), device="cpu", local_files_only=True)
        self.model.encode(["warm up"] * 4, show_progress_bar=False)

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        return self.model.encode(
            texts, batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True, normalize_embeddings=True
        )


class FixedEncoder:
    """An `Encoder` whose vectors were computed earlier (by raw torch), to build the torch path's index.

    It reads texts with the torch model's own tokenizer, so a build keyed by
    `Embedder.input_digests` groups texts as the torch path would.
    """

    backend = "torch"

    def __init__(self, model_id: str, vectors: dict[str, np.ndarray]):
        from qa.encoders import TorchEncoder, model_location

        self._vectors = vectors
        self.dimension = len(next(iter(vectors.values())))
        self._tokenizing = TorchEncoder(model_location(model_id), name=model_id)

    def encode(self, texts, batch_size=32, progress=False):
        return np.stack([self._vectors[t] for t in texts]).astype(np.float32)

    def token_ids(self, texts, chunk=4096):
        return self._tokenizing.token_ids(texts, chunk)


def key_texts(corpus_folder: Path) -> tuple[int, list[str]]:
    """(passage count, every text `qa build` embeds for the corpus), parsed exactly as the build parses."""
    from qa.indexing import collect_passages
    from qa.keys import passage_keys

    passages, _ = collect_passages([corpus_folder])
    return len(passages), [t for p in passages for _, _, t in passage_keys(p)]


def env_with(**extra) -> dict:
    env = dict(os.environ)
    env.update({k: v for k, v in extra.items() if v is not None})
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    return env


def export_time(cache_dir: Path) -> float:
    """Seconds to export and check the ONNX model into an empty cache (done once per machine)."""
    from qa.embedding import Embedder

    started = time.perf_counter()
    embedder = Embedder(backend="onnx", cache_dir=cache_dir)
    embedder.warm_up()
    return time.perf_counter() - started


def measure_build(corpus_folder: Path, index_dir: Path, raw: RawTorch, log=print) -> dict:
    """`qa build` (a fresh process, end to end) against raw torch encode of the same key texts."""
    passages, texts = key_texts(corpus_folder)
    started = time.perf_counter()
    raw_vectors = raw.encode(texts)
    raw_s = time.perf_counter() - started
    log(f"  raw torch encode: {len(texts)} texts in {raw_s:.1f} s ({len(texts) / raw_s:.1f} texts/s)")
    # The bench corpora repeat questions with different answers on purpose (StackExchange duplicates).
    cmd = [QA, "build", str(corpus_folder), "--index", str(index_dir), "-q", "--allow-conflicts"]
    child = run_child(cmd, env=env_with())
    manifest = json.loads((index_dir / "manifest.json").read_text(encoding="utf-8"))
    log(f"  qa build: {passages} passages, {manifest['key_count']} texts in {child.total_s:.1f} s "
        f"(in-process {manifest['build_seconds']:.1f} s, backend {manifest.get('embedding_backend')})")
    return {
        "passages": passages,
        "texts": len(texts),
        "raw_encode_s": raw_s,
        "build_wall_s": child.total_s,
        "build_inprocess_s": manifest["build_seconds"],
        "build_peak_rss_mb": child.peak_rss_mb,
        "embedding_backend": manifest.get("embedding_backend"),
        "distinct_texts_embedded": manifest.get("embedded"),
        "vector_index": manifest.get("vector_index"),
        "command": " ".join(["qa", *cmd[1:]]),
        "raw_vectors": dict(zip(texts, raw_vectors)),
    }


def build_torch_index(corpus_folder: Path, index_dir: Path, raw_vectors: dict[str, np.ndarray]) -> None:
    """The torch path's index: the same build, with the vectors raw torch computed for these texts."""
    from qa.embedding import DEFAULT_MODEL, Embedder
    from qa.indexing import build_index

    build_index([corpus_folder], index_dir, Embedder(DEFAULT_MODEL, encoder=FixedEncoder(DEFAULT_MODEL, raw_vectors)))


def _ranking(answer, k: int = 10) -> list[str]:
    return [h.passage.id for h in answer.passages[:k]]


def _compare(left: list, right: list, out: dict, prefix: str) -> None:
    """Count equal rankings, sets and answers; note the fused-score gap of each ranking that differs."""
    order = sets = answers = 0
    gaps = []
    for a, b in zip(left, right):
        ra, rb = _ranking(a), _ranking(b)
        order += ra == rb
        sets += set(ra) == set(rb)
        answers += (a.text, a.answered) == (b.text, b.answered)
        if ra != rb:
            # How near a tie the first swap was: the two passages' scores on the left path
            # (its answer lists a few passages more than the 10 compared, for this).
            i = next(j for j, (x, y) in enumerate(zip(ra + [None] * 99, rb + [None] * 99)) if x != y)
            scores = {h.passage.id: h.score for h in a.passages}
            if i < len(ra) and i < len(rb) and rb[i] in scores:
                gaps.append(abs(scores[ra[i]] - scores[rb[i]]))
            else:
                gaps.append(None)
    n = max(len(left), 1)
    out[f"{prefix}same_top10_order"] = order / n
    out[f"{prefix}same_top10_set"] = sets / n
    out[f"{prefix}same_answer"] = answers / n
    out[f"{prefix}differing"] = len(left) - order
    out[f"{prefix}score_gaps_of_differing"] = gaps


def measure_identity(onnx_bot, torch_bot, questions: list[str], k: int = 15) -> dict:
    """Top-10 passages and answers of the ONNX path (index and queries) against the torch path's (asking for k).

    Also the torch path against itself, questions embedded one at a time instead of
    in batches of 64: the floor set by floating-point rounding, which no backend can beat.
    """
    onnx, torch_batched, torch_single = [], [], []
    for start in range(0, len(questions), 64):
        chunk = questions[start : start + 64]
        onnx += onnx_bot.ask_many(chunk, k)
        torch_batched += torch_bot.ask_many(chunk, k)
    torch_single = [torch_bot.ask(q, k) for q in questions]
    out: dict = {"questions": len(questions)}
    _compare(onnx, torch_batched, out, "")
    _compare(torch_single, torch_batched, out, "torch_self_")
    return out


def measure_ask(bot, torch_bot, raw: RawTorch, questions: list[str], block: int = 25) -> dict:
    """Warm ask() latency, one question at a time, beside raw torch encode of the same questions.

    The kinds of call alternate in blocks of `block` questions, with a pause between
    blocks: each call follows one of its own kind, as in a process that does only
    that (torch's and ONNX Runtime's threads spin a while after a call and would
    slow whatever the other library runs next), and a busy spell of the machine
    falls on all kinds alike.
    """
    for q in questions[:10]:
        bot.ask(q)
        torch_bot.ask(q)
        raw.encode([q])
    answerer, retriever = bot.answerer, bot.retriever
    embedder = bot.embedder

    def retrieve_and_answer(q):
        answerer.answer(q, retriever.search(q, vectors[q], bot.k))

    vectors = {q: embedder.encode([q])[0] for q in questions}
    kinds = {
        "encode": lambda q: raw.encode([q]),
        "ask": bot.ask,
        "torch_ask": torch_bot.ask,
        "embed": lambda q: embedder.encode([q]),
        "search": retrieve_and_answer,
    }
    times: dict[str, list[float]] = {name: [] for name in kinds}
    for start in range(0, len(questions), block):
        chunk = questions[start : start + block]
        for name, fn in kinds.items():
            time.sleep(0.05)
            times[name] += timed(fn, chunk)
    return {
        "questions": len(questions),
        "raw_torch_encode_p50_ms": ms(times["encode"], 50),
        "raw_torch_encode_p99_ms": ms(times["encode"], 99),
        "ask_p50_ms": ms(times["ask"], 50),
        "ask_p99_ms": ms(times["ask"], 99),
        "torch_ask_p50_ms": ms(times["torch_ask"], 50),
        "torch_ask_p99_ms": ms(times["torch_ask"], 99),
        "embed_p50_ms": ms(times["embed"], 50),
        "retrieve_answer_p50_ms": ms(times["search"], 50),
        "retrieve_answer_p99_ms": ms(times["search"], 99),
    }


def per_second(fn, items: int, rounds: int) -> float:
    """`items` divided by the median time of `rounds` calls of fn()."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return items / statistics.median(times)


def measure_batch(bot, questions: list[str], torch_bot=None, rounds: int = 3) -> dict:
    """ask_many(questions) against a loop of ask(), in questions per second (median of `rounds` each).

    With `torch_bot`, the same two figures for the torch path, for context.
    """
    def rate(fn) -> float:
        return per_second(fn, len(questions), rounds)

    out = {
        "questions": len(questions),
        "sequential_qps": rate(lambda: [bot.ask(q) for q in questions]),
        "batch_qps": rate(lambda: bot.ask_many(questions)),
        # ask_many's own first step alone: what a batch could reach if retrieval cost nothing.
        "embed_only_qps": rate(lambda: bot.embedder.encode(list(questions), batch_size=64)),
    }
    if torch_bot is not None:
        out["torch_sequential_qps"] = rate(lambda: [torch_bot.ask(q) for q in questions])
        out["torch_batch_qps"] = rate(lambda: torch_bot.ask_many(questions))
    return out


def measure_embed_arrangements(embedder, questions: list[str], rounds: int = 3) -> dict:
    """Questions/s of embedding `questions` alone in other arrangements of ONNX Runtime, beside ask_many's own.

    Whether another split of the 2 cores (two one-thread sessions or one
    two-thread session) or another batch size would embed a batch faster:
    the bound on ask_many() is the best of these, not just the one it uses.
    """
    encoder = embedder.warm_up()
    order = sorted(questions, key=len)

    def rate(fn) -> float:
        fn()  # a first pass makes any session this arrangement needs
        return per_second(fn, len(questions), rounds)

    def one_session(size: int) -> None:
        for i in range(0, len(order), size):
            encoder.run(order[i : i + size], encoder.workers)

    out = {}
    default = encoder.max_batch
    try:
        for size in (4, 8, 16, 32):
            encoder.max_batch = size
            out[f"{encoder.workers} one-thread sessions, batches of {size}"] = rate(
                lambda: encoder.encode(list(questions), batch_size=64))
    finally:
        encoder.max_batch = default
    for size in (8, 16, 32, 64):
        out[f"one {encoder.workers}-thread session, batches of {size}"] = rate(lambda: one_session(size))
    return out


def measure_query_threads(embedder, questions: list[str]) -> dict:
    """One question through ONNX Runtime with 1 and with 2 intra-op threads, idle and beside one busy process."""
    import subprocess

    encoder = embedder.warm_up()
    out = {}
    for label in ("idle", "busy"):
        burner = None
        if label == "busy":
            burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            time.sleep(0.3)
        try:
            for q in questions[:10]:
                encoder.run([q], 1)
                encoder.run([q], 2)
            one, two = [], []
            for q in questions:
                one += timed(lambda x: encoder.run([x], 1), [q])
                two += timed(lambda x: encoder.run([x], 2), [q])
        finally:
            if burner is not None:
                burner.kill()
                burner.wait()
        out[label] = {"1_thread_p50_ms": ms(one, 50), "1_thread_p99_ms": ms(one, 99),
                      "2_threads_p50_ms": ms(two, 50), "2_threads_p99_ms": ms(two, 99)}
    return out


PROBE = """
import sys, time
from qa import Bot
questions = open(sys.argv[2], encoding="utf-8").read().splitlines()
bot = Bot(sys.argv[1])
answer = bot.ask(questions[0])
print("first", flush=True)
for q in questions[1:]:
    bot.ask(q)
with open("/proc/self/status", encoding="utf-8") as fh:
    hwm = next(line.split()[1] for line in fh if line.startswith("VmHWM"))
print(bot.embedder.active_backend, int(hwm) / 1024.0, flush=True)
"""


def measure_fresh(index_dir: Path, questions: list[str], runs: int = 3, serve_questions: int = 200, log=print) -> dict:
    """A fresh `qa ask` process to its answer, and a serving process' peak memory; ONNX and torch backends.

    Peak memory is the serving process' own VmHWM: a child's ru_maxrss from wait4
    would include the RSS of the (large) benchmark process it was forked from.
    """
    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="qa-bench-probe-") as tmp:
        qfile = Path(tmp) / "questions.txt"
        qfile.write_text("\n".join(q.replace("\n", " ") for q in questions[:serve_questions]) + "\n", encoding="utf-8")
        for backend, n in (("onnx", runs), ("torch", max(1, runs - 1))):  # torch: ~7 s a run
            env = env_with(QA_BACKEND=backend)
            times = []
            for i in range(n):
                cmd = [QA, "ask", questions[i % len(questions)], "--index", str(index_dir)]
                child = run_child(cmd, env=env)
                times.append(child.total_s)
            probe = run_child([sys.executable, "-c", PROBE, str(index_dir), str(qfile)], env=env)
            served, hwm = probe.stdout.split()[-2:]
            out[backend] = {
                "first_answer_s": statistics.median(times),
                "first_answer_runs_s": times,
                "serving_peak_rss_mb": float(hwm),
                "serving_questions": min(serve_questions, len(questions)),
                "served_by": served,
            }
            log(f"  fresh process ({backend}): first answer {statistics.median(times):.2f} s, "
                f"serving peak RSS {float(hwm):.0f} MiB ({served})")
    out["command"] = "qa ask QUESTION --index DIR  (QA_BACKEND=onnx | torch)"
    return out


def measure_quality(eval_dir: Path, sets: list[str], limit: int | None, log=print) -> dict:
    """`qa eval`'s figures (Recall@1, answer hit) with the ONNX backend and with torch."""
    from qa.embedding import Embedder
    from qa.evaluation import evaluate_set, question_texts

    out: dict = {}
    for name in sets:
        folder = eval_dir / name
        others = [t for other in sets if other != name for t in question_texts(eval_dir / other)]
        row = {}
        for backend in ("onnx", "torch"):
            result = evaluate_set(folder, Embedder(backend=backend), others, limit=limit)
            ours = result["ours"]
            row[backend] = {"recall@1": ours["recall@1"], "answer_hit": ours.get("answer_hit"),
                            "questions": result["questions"]}
        log(f"  quality {name}: recall@1 onnx {row['onnx']['recall@1']:.4f} torch {row['torch']['recall@1']:.4f}")
        out[name] = row
    return out
