"""Merge the shipped adapters onto the base model and export the reader to ONNX, checked against torch.

Runs once per (weights, base model) pair, when `Comprehension.warm_up` finds no
export in the cache; it imports torch and peft, which `ask()` never does.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from .windows import Windower, batch_arrays, load_tokenizer

INPUTS = ("input_ids", "attention_mask", "token_type_ids", "context_mask")
FUSED = "model.fused.onnx"  # ONNX Runtime's fusion of model.onnx, which fp32 sessions run when it was kept
# An export whose logits differ from torch's by more than this on the check pairs is refused.
MAX_LOGIT_DIFF = 1e-3
CHECK_PAIRS = (
    ("Who did Díaz-Canel meet?", "Díaz-Canel met the governor of St. Petersburg, Alexander Beglov."),
    ("When was it built?", "The bridge was built in 1932 and rebuilt after the war. " * 30),
    ("hi", ""),
)


class ExportFailed(Exception):
    """The reader could not be exported, or the export's logits differ from torch's."""


def export_reader(base_dir: Path, weights_dir: Path, target: Path) -> dict:
    """Write `target`/model.onnx: the merged reader, inputs `INPUTS`, outputs (answerable, start, end).

    Returns:
        The export record (the worst logit difference to torch on `CHECK_PAIRS`).

    Raises:
        ExportFailed: the export fails or does not reproduce torch's logits.
    """
    import logging

    import torch
    from transformers.utils import logging as hf_logging

    from .network import load_network

    hf_logging.disable_progress_bar()
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed" and the like
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        network = load_network(base_dir, weights_dir)
    windower = Windower(load_tokenizer(base_dir))
    windows = [w for q, p in CHECK_PAIRS for w in windower(q, p, limit=2)]
    arrays = batch_arrays(windows)
    example = tuple(torch.from_numpy(arrays[name]) for name in INPUTS)
    target.mkdir(parents=True, exist_ok=True)
    batch, tokens = torch.export.Dim("batch"), torch.export.Dim("tokens", max=512)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                network, example, str(target / "model.onnx"), dynamo=True, external_data=False,
                input_names=list(INPUTS), output_names=["answerable", "start", "end"],
                dynamic_shapes={name: {0: batch, 1: tokens} for name in INPUTS}, verbose=False,
            )
    except Exception as exc:  # the exporter raises many kinds
        raise ExportFailed(f"torch.onnx.export failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from exc
    with torch.no_grad():
        expected = [t.numpy() for t in network(*example)]
    worst = _worst_logit_diff(target / "model.onnx", arrays, expected)
    if not worst <= MAX_LOGIT_DIFF:
        raise ExportFailed(f"the ONNX reader differs from torch by {worst:.2g} (limit {MAX_LOGIT_DIFF})")
    # torch's logits for the first check pair, kept so that each later load can tell a damaged cache file
    record = {"max_logit_diff": worst, "max_tokens": windower.max_tokens, "probe": CHECK_PAIRS[0],
              "probe_logits": [float(expected[0][0]), float(expected[1][0].max()), float(expected[2][0].max())],
              "fused": _fuse(target, arrays, expected)}
    (target / "export.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def _fuse(target: Path, arrays: dict[str, np.ndarray], expected: list[np.ndarray]) -> bool:
    """Write target/`FUSED` (attention, skip-layer-norm and bias-GELU as single kernels) when it reproduces
    torch's logits on the check pairs as closely as the plain export must; otherwise the plain export serves.

    Returns:
        Whether the fused graph was kept.
    """
    import logging

    from ..onnx_export import fuse_graph

    fused = target / FUSED
    try:
        fuse_graph(target / "model.onnx", fused)
        worst = _worst_logit_diff(fused, arrays, expected)
        if worst <= MAX_LOGIT_DIFF:
            return True
        logging.getLogger(__name__).info("the fused reader differs from torch by %.2g; keeping the plain export", worst)
    except Exception as exc:  # an optional speed-up: any failure keeps the plain graph
        logging.getLogger(__name__).info("ONNX Runtime fusions not applied to the reader (%s: %s)",
                                         type(exc).__name__, str(exc)[:200])
    fused.unlink(missing_ok=True)
    return False


def _worst_logit_diff(path: Path, arrays: dict[str, np.ndarray], expected: list[np.ndarray]) -> float:
    """The largest difference between the logits of the ONNX graph at `path` on `arrays` and torch's `expected`."""
    import onnxruntime as ort

    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {name: arrays[name] for name in INPUTS})
    return max(float(np.abs(a - b).max()) for a, b in zip(expected, got))
