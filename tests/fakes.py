"""A fake encoder for tests that need vectors but not meaning (as haystack's MockTextEmbedder).

`HashEncoder` is an `Encoder` (qa/encoders.py) whose vector for a text is seeded by the
text's hash: equal texts get equal vectors, different texts near-orthogonal ones, the
same on every run and every machine, and no model loads. Tests of the store seam,
of planning and of fusion wiring use it; tests of what answers say use the real model.
"""

from __future__ import annotations

import hashlib

import numpy as np

from qa.embedding import Embedder

FAKE_MODEL = "fake-hash-encoder"


class HashEncoder:
    """An `Encoder` whose vectors are seeded by each text's BLAKE2b hash; unit rows of `dimension` floats."""

    backend = "fake"

    def __init__(self, dimension: int = 32):
        self.dimension = dimension
        self.calls: list[int] = []  # how many texts each `encode` was given

    def encode(self, texts: list[str], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        self.calls.append(len(texts))
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")
            vector = np.random.default_rng(seed).standard_normal(self.dimension)
            out[i] = vector / np.linalg.norm(vector)
        return out

    def token_ids(self, texts: list[str], chunk: int = 4096) -> list[np.ndarray]:
        """A text's UTF-8 bytes stand for its tokens: only equal texts are one model input."""
        return [np.frombuffer(t.encode("utf-8"), dtype=np.uint8).astype(np.int32) for t in texts]


def fake_embedder(dimension: int = 32) -> Embedder:
    """An Embedder over a HashEncoder, named FAKE_MODEL (an index it builds refuses the real model)."""
    return Embedder(FAKE_MODEL, encoder=HashEncoder(dimension))
