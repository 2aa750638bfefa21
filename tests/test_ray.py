"""`qa build --ray`: the build's texts embedded on a real local Ray (started once for this module), vectors identical."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ray", reason="the 'scale' extra is not installed")

import qa.indexing  # noqa: E402
from qa.indexing import build_index  # noqa: E402
from qa.stores.folder import load_index  # noqa: E402

from .conftest import ARTICLE, DATA  # noqa: E402
from .rel_support import make_second_corpus  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    """A real Ray on this machine, two CPUs, for the whole module."""
    import os

    import ray

    os.environ.setdefault("RAY_raylet_start_wait_time_s", "120")  # as qa.ray_embedding does: slow machines
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    yield "local"
    ray.shutdown()


@pytest.mark.slow
def test_a_ray_build_has_the_vectors_of_a_local_build(local_ray, tmp_path, embedder, monkeypatch):
    monkeypatch.setattr(qa.indexing, "EMBED_CHUNK", 8)  # several chunks, over both actors
    corpus = make_second_corpus(tmp_path / "corpus")
    local = build_index([corpus], tmp_path / "local", embedder)
    remote = build_index([corpus], tmp_path / "ray", embedder, ray=local_ray)
    assert remote["embedded_with"] == "ray" and local["embedded_with"] == "local"
    assert remote["embedded"] == local["embedded"] > 8
    a, b = load_index(tmp_path / "local"), load_index(tmp_path / "ray")
    assert np.array_equal(a.keys, b.keys)
    assert np.array_equal(a.vectors.reconstruct_n(0, a.vectors.ntotal), b.vectors.reconstruct_n(0, b.vectors.ntotal))


@pytest.mark.slow
def test_a_ray_build_of_the_bundled_article_matches_the_session_index(local_ray, tmp_path, embedder, article_index):
    build_index([ARTICLE], tmp_path / "ray", embedder, ray=local_ray)
    a, b = load_index(article_index), load_index(tmp_path / "ray")
    assert np.array_equal(a.vectors.reconstruct_n(0, a.vectors.ntotal), b.vectors.reconstruct_n(0, b.vectors.ntotal))
    assert DATA.exists()


def test_ray_without_the_extra_is_one_line_naming_it(tmp_path):
    import subprocess
    import sys

    from .conftest import ROOT
    from .rel_support import qa_env

    code = "import sys; sys.modules['ray'] = None; from qa.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run([sys.executable, "-c", code, "build", str(ARTICLE), "--index", str(tmp_path / "i"), "--ray", "-q"],
                          cwd=ROOT, env=qa_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "error: --ray needs the 'scale' extra (ray is not installed): pip install -e '.[scale]'"
    )
    assert not (tmp_path / "i" / "manifest.json").exists()
