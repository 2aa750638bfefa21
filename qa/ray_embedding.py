"""Embedding a build's texts with Ray Data: one model per actor, on this machine or a cluster.

`qa build --ray [ADDRESS]` sends the build's chunks of texts (`qa.indexing.EMBED_CHUNK`
texts each, cut exactly as a local build cuts them) through `map_batches` over
`RayEncoder`, an actor class that loads the model once from `EmbedderSettings`.
Every chunk is embedded by the same `Embedder.encode` call a local build makes, so the
vectors are identical to a local build's (batch composition changes a vector's last
bits; thread counts do not). Without an address, a Ray is started here for the build
(`ray.init(num_cpus=<cores>)`) and stopped after it. Nothing imports Ray unless asked.

Each actor takes one CPU and runs its model with one thread, so that actors x threads
is the number of cores Ray offers: with the driver's thread count (every core) in each
actor, two actors on 2 cores ran four busy threads.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import replace

import numpy as np

from .embedding import Embedder, EmbedderSettings
from .errors import require

log = logging.getLogger(__name__)


class RayEncoder:
    """A Ray Data actor: one Embedder per actor, loaded once; embeds one chunk of texts per row."""

    def __init__(self, config: EmbedderSettings, batch_size: int):
        self.embedder = Embedder.from_settings(config)
        self.embedder.warm_up()
        self.batch_size = batch_size

    def __call__(self, batch: dict) -> dict:
        vectors = [
            self.embedder.encode([str(t) for t in texts], batch_size=self.batch_size).tobytes()
            for texts in batch["texts"]
        ]
        return {"chunk": np.asarray(batch["chunk"]), "vectors": np.asarray(vectors, dtype=object)}


def start(address: str):
    """Connect to the Ray at `address`, or start one here for "local"; returns (ray, whether we started it).

    Raises:
        MissingExtraError: Ray is not installed.
    """
    ray = require("ray", "--ray")
    if ray.is_initialized():
        return ray, False
    env = {"env_vars": {k: os.environ[k] for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "QA_CACHE_DIR") if k in os.environ}}
    if address == "local":
        # A raylet on a busy machine can take longer than Ray's default wait to register (seen on 2 shared cores).
        os.environ.setdefault("RAY_raylet_start_wait_time_s", "120")
        ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
                 _node_ip_address="127.0.0.1", runtime_env=env)
    else:
        ray.init(address=address, log_to_driver=False, runtime_env=env)
    return ray, True


def encode_chunks(embedder: Embedder, chunks: list[list[str]], address: str, batch_size: int = 32,
                  workers: int | None = None) -> list[np.ndarray]:
    """Embed each chunk of texts on Ray; returns one float32 (len(chunk), dimension) array per chunk, in order.

    Args:
        address: "local" (start a Ray here) or a Ray cluster address.
        workers: actors, one model each (default: one per CPU Ray offers).
    """
    began = time.perf_counter()
    ray, started = start(address)
    if started:
        log.info("Ray ready in %.1f s", time.perf_counter() - began)
    try:
        from ray.data import ActorPoolStrategy, DataContext

        DataContext.get_current().enable_progress_bars = False
        logging.getLogger("ray").setLevel(logging.WARNING)

        size = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        size = min(size, len(chunks)) or 1
        # One thread per actor (its one CPU); the vectors do not depend on it (see OnnxEncoder._encode_many).
        config = replace(embedder.settings, threads=1)
        ds = ray.data.from_items([{"chunk": i, "texts": list(c)} for i, c in enumerate(chunks)],
                                 override_num_blocks=len(chunks))
        out = ds.map_batches(RayEncoder, fn_constructor_kwargs={"config": config, "batch_size": batch_size},
                             batch_size=1, batch_format="numpy", compute=ActorPoolStrategy(size=size), num_cpus=1)
        dimension = embedder.dimension
        found: dict[int, np.ndarray] = {}
        began = time.perf_counter()
        for row in out.iter_rows():
            found[int(row["chunk"])] = np.frombuffer(row["vectors"], dtype=np.float32).reshape(-1, dimension)
        log.info("embedded %d chunks on Ray with %d actors in %.1f s", len(chunks), size, time.perf_counter() - began)
        return [found[i] for i in range(len(chunks))]
    finally:
        if started:
            ray.shutdown()
