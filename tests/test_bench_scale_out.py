"""`make bench-scale` at a tiny size: it runs, its section lands in performance.md and survives `make bench`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import EVAL, ROOT

pytest.importorskip("pymilvus", reason="the 'scale' extra is not installed")
pytest.importorskip("ray", reason="the 'scale' extra is not installed")


@pytest.mark.slow
@pytest.mark.skipif(not (EVAL / "covidqa_qsim").exists(), reason="../shared/eval is not beside the checkout")
def test_tiny_scale_out_bench_measures_and_writes_its_section(tmp_path):
    (tmp_path / "performance.md").write_text("# Performance\n\nmake bench's part\n")
    results = tmp_path / "scale_out.json"
    # The ray part is left out: a Ray start can time out on a loaded machine, and tests/test_ray.py covers --ray.
    proc = subprocess.run([sys.executable, "-m", "bench.scale_out", "--tiny", "--parts", "quality,latency",
                           "--out-dir", str(tmp_path), "--results", str(results)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(results.read_text())
    assert data["command"].endswith("--results " + str(results))
    quality = data["quality"][0]
    assert quality["set"] == "covidqa_qsim" and quality["questions"] == 40
    assert abs(quality["delta_recall@1"]) <= 0.01
    assert "ray" not in data or data["ray"] is None
    assert [r["passages"] for r in data["latency"]] == [300, 700]
    assert all(r["same_answers"] == 1.0 and r["milvus_p50_ms"] > 0 for r in data["latency"])

    text = (tmp_path / "performance.md").read_text()
    assert text.startswith("# Performance\n\nmake bench's part\n") and text.count("## Scale-out") == 1
    from bench.scale_out import carry_over

    again = carry_over(tmp_path / "performance.md", "# Performance (a new make bench run)\n")
    assert again.startswith("# Performance (a new make bench run)\n") and again.count("## Scale-out") == 1


def test_the_ray_table_counts_rays_start_and_shows_the_steady_ratio_apart():
    from bench.scale_out import section

    ray = {"texts": 1000, "keys": 1200, "cpus": 2, "local_seconds": 10.0, "local_runs_seconds": [9.0, 11.0],
           "ray_start_seconds": 2.0, "ray_build_seconds": 10.0, "ray_seconds": 12.0, "local_per_s": 100.0,
           "ray_per_s": 1000 / 12, "ratio": 10 / 12, "steady_ratio": 1.0, "identical_vectors": True, "max_abs_diff": 0.0}
    text = section({"machine": {"cores": 2, "cpu": "x"}, "command": "c", "date": "d", "minutes": 1.0, "load_before": "1.0",
                    "versions": {"pymilvus": "p", "milvus_lite": "m", "ray": "r"}, "ray": ray})
    assert "| one process | 10.0 (9.0 and 11.0) | 100.0 | 1.00 | |" in text
    assert "| `--ray` (local), Ray's start included | 12.0 | 83.3 | 0.83 (**missed**; target ≥ 0.85) | identical |" in text
    assert "| `--ray`, without Ray's start (2.0 s) | 10.0 | 100.0 | 1.00 | |" in text
