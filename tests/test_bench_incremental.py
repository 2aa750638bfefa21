"""`make bench`'s incremental-build and reading parts at a tiny size: they run end to end and report what they claim."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.slow


def _run(module: str, results, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", module, "--tiny", "--results", str(results), *args],
                         cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(results.read_text(encoding="utf-8"))


def test_tiny_incremental_bench_updates_one_file_and_answers_as_a_full_build(tmp_path):
    from bench.incremental import section

    r = _run("bench.incremental", tmp_path / "incremental.json")
    assert r["update"]["mode"] == "incremental" and r["rebuild_mode"] == "full"
    assert r["files_changed"] == {"added": 0, "changed": 1, "removed": 0, "unchanged": r["files"] - 1}
    assert 0 < r["embedded_by_update"] < 20
    assert r["same_top10"] == r["questions"] == 20
    assert 0 < r["ratio"] == pytest.approx(r["update_seconds"] / r["full_seconds"], abs=1e-3)  # both times rounded to 0.01 s
    text = section(r)
    assert f"**{r['ratio']:.4f}**" in text and "bench.incremental --tiny" in text


def test_tiny_reading_bench_reads_every_format_and_embeds(tmp_path):
    from bench.reading import FORMATS, section

    r = _run("bench.reading", tmp_path / "reading.json")
    assert list(r["formats"]) == list(FORMATS)
    for fmt, row in r["formats"].items():
        assert row["files"] == 3 and row["passages"] >= 15, fmt
        assert row["mb_per_s"] > 0
    assert r["formats"]["pdf"]["pages"] >= 3
    assert r["embedding"]["keys"] > r["embedding"]["passages"] == 64
    assert "| pdf | 3 |" in section(r)
