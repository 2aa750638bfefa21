"""Export a sentence-transformers model to ONNX, checked against torch's own vectors.

Uses ``torch.onnx.export(dynamo=True)``: the legacy exporter produced a wrong
graph for this model (docs/performance.md). Mean or CLS pooling and L2
normalisation go inside the graph. Only qa/onnx_runtime.py calls this, once per
model, when its cache holds no export yet.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import warnings
from pathlib import Path

import numpy as np

from .onnx_runtime import CHECK_TEXTS, EXPORT_MIN_COSINE, EXPORT_VERSION, PROBE_TEXT, ExportError, OnnxEncoder

log = logging.getLogger(__name__)


def pooling_mode(model_dir: Path) -> str:
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
    pooling = pooling_mode(model_dir)
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


def fuse_graph(source: Path, target: Path) -> None:
    """Write to `target` the ONNX Runtime fusion of the graph in `source`: attention, skip-layer-norm and
    bias-GELU as single kernels, the same float32 arithmetic in fewer, larger steps.

    The caller checks the result against torch before using it: a fusion that changed the numbers is dropped.
    """
    import onnx_ir as ir
    from onnxscript.rewriter.ort_fusions import optimize_for_ort

    fused = optimize_for_ort(ir.load(str(source)))
    ir.save(fused[0] if isinstance(fused, tuple) else fused, str(target))


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
        os.replace(model_path, plain)
        fuse_graph(plain, model_path)
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


