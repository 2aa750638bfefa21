"""`make bench` at a tiny size: it runs end to end and writes every figure with its reference, ratio and target.

Timings are not checked here (noisy machines); only that the bench works and reports honestly.
"""

from __future__ import annotations

import pytest

import json
import subprocess
import sys

from .conftest import ROOT

REQUIRED = {"build_throughput", "ask_p50", "ask_p99", "batch_throughput", "batch_embed_only", "first_answer",
            "serving_memory", "top10_identical"}


@pytest.mark.slow
def test_tiny_bench_writes_results_report_and_plot(tmp_path):
    results = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--tiny", "--out-dir", str(tmp_path), "--results", str(results)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "targets met" in proc.stdout and "ratio" in proc.stdout

    data = json.loads(results.read_text())
    figures = data["figures"]
    assert REQUIRED <= set(figures)
    for name, f in figures.items():
        assert {"value", "unit", "reference", "reference_value", "ratio", "target", "met"} <= set(f), name
        assert f["value"] is not None, name
        if f["reference_value"]:
            assert abs(f["ratio"] - f["value"] / f["reference_value"]) < 1e-9, name
        if f["target"] is None:
            assert f["met"] is None, name
        else:
            assert isinstance(f["met"], bool), name
    # The exact path must agree with torch even on the tiny corpus.
    assert figures["top10_identical"]["value"] == 1.0
    assert data["details"]["build"]["embedding_backend"] == "onnx"
    assert len(data["details"]["batch"]["embed_arrangements"]) == 8
    scales = data["details"]["scales"]
    assert [s["n"] for s in scales] == [2000, 5000]
    for s in scales:
        assert s["flat"]["recall_at_10"] == 1.0 and s["flat"]["reconstruct_ok"]
        assert s["ann"]["reconstruct_ok"], "the Retriever needs reconstruct_batch on every index kind"

    report = (tmp_path / "performance.md").read_text()
    assert "| figure | value | reference (same run) | ratio | target | met |" in report
    assert "## Machine" in report and "## Commands" in report and "latency.png" in report
    assert (tmp_path / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
