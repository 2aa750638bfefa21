"""Sentence embeddings for the rest of the package: one `Embedder` that holds one encoder, loaded lazily.

The encoder is ONNX Runtime when an exact export of the model exists or can be
made (qa/onnx_runtime.py), else torch (qa/encoders.py); both give the same
vectors. Every batch is checked once here: a damaged model can yield NaN, whose
confidence would pass any threshold, so such vectors raise instead.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import settings
from .encoders import DEFAULT_MODEL, Encoder, TorchEncoder, model_location
from .errors import QAError

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_MODEL", "Embedder", "EmbedderSettings", "EmbeddingError"]


class EmbeddingError(QAError):
    """The model returned vectors that cannot be used (NaN or infinite)."""


@dataclass(frozen=True)
class EmbedderSettings:
    """Everything needed to make the same Embedder again, e.g. in another process.

    Args:
        model: a sentence-transformers model name or path.
        backend: "auto" (ONNX when an exact export is available, else torch), "torch" or "onnx".
        cache_dir: where ONNX exports are cached.
        threads: torch intra-op threads; for ONNX, the threads of one query and the workers for many texts.
        allow_download: let sentence-transformers fetch a model that is not on this machine.
    """

    model: str
    backend: str
    cache_dir: str
    threads: int | None = None
    allow_download: bool = False


class Embedder:
    """Turns texts into L2-normalised float32 vectors.

    The model loads on first use (thread-safe), never at construction, so that
    building a bot or importing the package stays cheap.

    Args:
        model: a sentence-transformers model name or path (argument → $QA_MODEL → the bundled model).
        threads: see `EmbedderSettings`.
        backend: "auto", "torch" or "onnx" (argument → $QA_BACKEND → "auto").
        cache_dir: where ONNX exports are cached (argument → $QA_CACHE_DIR → ~/.cache/qa).
        encoder: an encoder already loaded, to use instead of loading one (it must embed `model`).

    Raises:
        ValueError: an unknown backend.
    """

    def __init__(
        self,
        model: str | None = None,
        threads: int | None = None,
        backend: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        encoder: Encoder | None = None,
    ):
        self.settings = EmbedderSettings(
            model=settings.model(model) or DEFAULT_MODEL,
            backend=settings.backend(backend),
            cache_dir=str(settings.cache_dir(cache_dir)),
            threads=threads,
            allow_download=settings.allow_download(),
        )
        self._encoder: Encoder | None = encoder
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, config: EmbedderSettings) -> "Embedder":
        """The Embedder that `config` describes (nothing loads until first use)."""
        embedder = cls.__new__(cls)
        embedder.settings = config
        embedder._encoder = None
        embedder._lock = threading.Lock()
        return embedder

    @property
    def model_id(self) -> str:
        return self.settings.model

    @property
    def backend(self) -> str:
        """The backend asked for: "auto", "torch" or "onnx"."""
        return self.settings.backend

    @property
    def cache_dir(self) -> Path:
        return Path(self.settings.cache_dir)

    @property
    def active_backend(self) -> str | None:
        """The backend in use once loaded ("torch" or "onnx"), else None."""
        return self._encoder.backend if self._encoder is not None else None

    def warm_up(self) -> Encoder:
        """Load the model now (idempotent); returns the loaded encoder."""
        with self._lock:
            if self._encoder is None:
                self._encoder = self._load()
        return self._encoder

    def _load(self) -> Encoder:
        from .onnx_cache import load_onnx
        from .onnx_runtime import ExportError

        config = self.settings
        location = model_location(config.model)
        if config.backend in ("auto", "onnx"):
            try:
                encoder = load_onnx(location, self.cache_dir)
                if config.threads:
                    encoder.workers = encoder.query_threads = config.threads
                log.info("embedding with ONNX Runtime: %s (export %s)", config.model, encoder.folder)
                return encoder
            except ExportError as exc:
                if config.backend == "onnx":
                    raise QAError(f"cannot use the ONNX backend for {config.model!r}: {exc}") from exc
                log.warning("ONNX backend unavailable for %s (%s); using torch", config.model, exc)
        return TorchEncoder(location, config.threads, config.allow_download, name=config.model)

    @property
    def dimension(self) -> int:
        return int(self.warm_up().dimension)

    def token_ids(self, texts: list[str], chunk: int = 4096) -> list[np.ndarray]:
        """What the model reads of each text: its token ids after the tokenizer's normalisation and the cut."""
        return self.warm_up().token_ids(list(texts), chunk)

    def input_digests(self, texts: list[str]) -> list[bytes]:
        """A digest of each text's `token_ids`.

        Texts with equal digests are one input to the model (an uncased model reads
        "Higher Risk" and "higher risk" alike; two long texts may differ only past
        the truncation point), so they have one embedding. A build embeds each
        input once and gives every such text that one vector: the texts then tie
        exactly, and every backend breaks the tie the same way, instead of by the
        rounding noise of whichever batch each copy was embedded in.
        """
        return [hashlib.blake2b(ids.tobytes(), digest_size=16).digest() for ids in self.token_ids(texts)]

    def encode(self, texts: list[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """Embed `texts`.

        Returns:
            float32 array of shape (len(texts), dimension), each row of unit length.

        Raises:
            EmbeddingError: the model returned NaN or infinite values (its files may be damaged).
        """
        encoder = self.warm_up()
        if not texts:
            return np.zeros((0, encoder.dimension), dtype=np.float32)
        vectors = encoder.encode(list(texts), batch_size=batch_size, progress=progress)
        if not np.isfinite(vectors).all():
            raise EmbeddingError(
                f"the embedding model {self.model_id!r} returned invalid vectors (NaN or infinite); "
                "its files may be damaged"
            )
        return vectors
