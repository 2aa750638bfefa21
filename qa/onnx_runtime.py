"""The ONNX encoder: a sentence-transformers model exported once, run by ONNX Runtime, no torch.

The export (qa/onnx_export.py) is cached under ``<cache>/onnx/<key>/`` (qa/onnx_cache.py) and used
only after its vectors matched torch's on `CHECK_TEXTS` (cosine >=
EXPORT_MIN_COSINE); a failed export is remembered, so it is not tried again.
Each later load embeds one probe text and compares it with torch's vector kept
at export time, so a cache file damaged since is exported again, never used.
Speeds are in docs/performance.md (``make bench``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np


log = logging.getLogger(__name__)

# Every session of ours runs with its idle threads asleep, not spinning (`open_session`).
NO_SPINNING = ("session.intra_op.allow_spinning", "0")


def open_session(path: Path, threads: int):
    """An ONNX Runtime session on the CPU with `threads` intra-op threads, every graph optimisation, and idle
    threads that sleep rather than spin.

    ask() runs two sessions one after the other on the same cores (the query embedder's, then the reader's);
    a session's threads otherwise spin-wait for its next run and hold a core the other needs just then
    (`python -m bench.reader_latency` measures ask(); docs/reader.md, "Cost at ask()").
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    options.add_session_config_entry(*NO_SPINNING)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


# Bump when the exported graph or its inputs change, so old cached exports are not reused.
EXPORT_VERSION = 3
# An export whose vectors are further than this from torch's on any check text is refused.
EXPORT_MIN_COSINE = 0.9999
# Which check text's torch vector is kept to test the cached export each time it loads.
PROBE_TEXT = 3
# Texts the export is checked on: short and long, punctuation, non-ASCII, one past the 256-token limit.
CHECK_TEXTS = (
    "",
    "hi",
    "Who did Díaz-Canel meet in St. Petersburg?",
    "How many points did the Panthers defense surrender in Super Bowl 50?",
    "Use ~~tildes around the words~~ to strike text through in GitHub Markdown.",
    "The Panthers defense gave up just 308 points, ranking sixth in the league, while also leading the NFL in "
    "interceptions with 24 and boasting four Pro Bowl selections. Pro Bowl defensive tackle Kawann Short led the "
    "team in sacks with 11, while also forcing three fumbles and recovering two.",
    " ".join(f"word{i} and another token, number {i};" for i in range(120)),
)


class ExportError(Exception):
    """The model cannot be exported to ONNX, or the export does not reproduce torch's vectors."""


class OnnxEncoder:
    """ONNX Runtime + tokenizers: the exported graph of a sentence-transformers model.

    Sessions over the same file, each made on first use:

    - one text (a question) runs in one session with `query_threads` intra-op
      threads while nothing else is being encoded in this process, and with one
      thread when other encodes are in flight. Measured on 2 cores (`make bench`,
      docs/performance.md): 2 threads cut an idle query's p50 by about a third,
      but beside another busy process 1 thread was faster; concurrent requests of
      one server are exactly that case, so each then gets one thread.
    - many texts (a build, `ask_many`): batches of similar length spread over
      `workers` threads, each running a one-thread session: about twice the
      throughput of one two-thread session on 2 cores.

    Args:
        folder: holds model.onnx, tokenizer.json and export.json.
        record: the export record (max_seq_length, dimension); read from export.json when None.
        workers: threads for encoding many texts (default: the number of cores).
        query_threads: intra-op threads for a lone single text (default: the number of cores, at most 4).
    """

    backend = "onnx"

    def __init__(self, folder: Path, record: dict | None = None, workers: int | None = None,
                 query_threads: int | None = None):
        from tokenizers import Tokenizer

        self.folder = Path(folder)
        self.record = record or json.loads((self.folder / "export.json").read_text(encoding="utf-8"))
        self.dimension = int(self.record["dimension"])
        cores = os.cpu_count() or 1
        self.workers = max(1, workers or cores)
        self.query_threads = max(1, query_threads or min(cores, 4))
        # Small batches run fastest on CPU (measured on the benchmark's key texts, 2 workers:
        # ~250 texts/s at 8 a batch, ~205 at 32, ~140 at 64); larger requests are cut down to this.
        self.max_batch = 8
        tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        # The shipped tokenizer.json pads every input to 128 tokens and cuts at 128: pad to the
        # longest text of a batch instead, and cut where sentence-transformers does.
        pad = tokenizer.padding or {}
        tokenizer.no_padding()
        tokenizer.enable_padding(pad_id=pad.get("pad_id", 0), pad_token=pad.get("pad_token", "[PAD]"))
        tokenizer.no_truncation()
        tokenizer.enable_truncation(int(self.record["max_seq_length"]))
        self.tokenizer = tokenizer
        self._sessions: dict[int, object] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._in_flight = 0  # encode() calls running now, to give a concurrent query one thread

    def session(self, threads: int):
        """The ONNX Runtime session with `threads` intra-op threads (made once, thread-safely)."""
        with self._lock:
            if threads not in self._sessions:
                self._sessions[threads] = open_session(self.folder / "model.onnx", threads)
            return self._sessions[threads]

    def check(self) -> None:
        """Embed the export's probe text and compare it with torch's vector, kept at export time.

        Catches a cached model or tokenizer file that was damaged after the export
        (it loads, but embeds wrongly or as NaN) for the cost of one short query.

        Raises:
            ExportError: the vector differs from torch's (or the record has no probe).
        """
        probe = self.record.get("probe") or {}
        if "text" not in probe or len(probe.get("vector", ())) != self.dimension:
            raise ExportError("the export record has no probe vector")
        cosine = float(self.encode([probe["text"]])[0] @ np.asarray(probe["vector"], dtype=np.float32))
        if not cosine >= EXPORT_MIN_COSINE:  # NaN fails too
            raise ExportError(f"the cached export embeds its probe text wrongly (cosine {cosine:.6f} to torch's)")

    def run(self, texts: list[str], threads: int = 1) -> np.ndarray:
        """One batch through the session with `threads` intra-op threads (no splitting, no bookkeeping)."""
        encodings = self.tokenizer.encode_batch([t.strip() for t in texts])
        feed = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        return self.session(threads).run(None, feed)[0]

    def token_ids(self, texts: list[str], chunk: int = 4096) -> list[np.ndarray]:
        """The token ids the model reads for each text (see `Embedder.token_ids`)."""
        out = []
        for start in range(0, len(texts), chunk):
            for e in self.tokenizer.encode_batch([t.strip() for t in texts[start : start + chunk]]):
                out.append(np.asarray(e.ids, dtype=np.int64)[np.asarray(e.attention_mask, dtype=bool)])
        return out

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="qa-onnx")
            return self._pool

    def encode(self, texts: list[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Embed `texts` in batches of texts of similar length (at most `batch_size`, and `max_batch`).

        Returns:
            float32 array (len(texts), dimension), rows of unit length, in the order of `texts`.
        """
        n = len(texts)
        out = np.empty((n, self.dimension), dtype=np.float32)
        if not n:
            return out
        with self._lock:
            alone = self._in_flight == 0
            self._in_flight += 1
        try:
            if n == 1:
                out[0] = self.run(list(texts), self.query_threads if alone else 1)[0]
            else:
                self._encode_many(texts, out, batch_size, progress)
        finally:
            with self._lock:
                self._in_flight -= 1
        return out

    def _encode_many(self, texts: list[str], out: np.ndarray, batch_size: int, progress: bool) -> None:
        n = len(texts)
        # Sort by length so that a batch pads little. The batches do not depend on `workers`: a vector's
        # last bits depend on its batch, so any thread count (a Ray actor's one, a bigger machine's
        # several) gives the same vectors.
        order = sorted(range(n), key=lambda i: len(texts[i]))
        size = max(1, min(batch_size, self.max_batch))
        batches = [order[i : i + size] for i in range(0, n, size)]
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=n, desc="embedding", unit="text")

        def run(rows: list[int]) -> None:
            out[rows] = self.run([texts[i] for i in rows])
            if bar is not None:
                bar.update(len(rows))

        if self.workers == 1 or len(batches) == 1:
            for rows in batches:
                run(rows)
        else:
            list(self._executor().map(run, batches))
        if bar is not None:
            bar.close()
