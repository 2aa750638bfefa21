"""The learning-curve bench's arithmetic: which weights each point reads, and what a doubling of data bought."""

from pathlib import Path

import pytest

from bench.reader_curve import doubling_gains, points


def test_points_read_the_checkpoints_of_one_run_or_the_separate_runs():
    weights = Path("/w/model")
    assert points(weights, [0.25, 0.5, 1.0], runs=False) == [
        (0.25, Path("/w/model-0.25")), (0.5, Path("/w/model-0.5")), (1.0, weights)]
    assert points(weights, [0.25, 0.5, 1.0], runs=True) == [
        (0.25, Path("/w/model-data0.25")), (0.5, Path("/w/model-data0.5")), (1.0, weights)]


def _row(share, name, span_f1, auc, f1):
    return {"share": share, "set": name, "span_f1": span_f1, "answerability_auc": auc, "f1": f1}


def test_doubling_gains_pair_each_point_with_the_one_of_twice_its_data():
    rows = [_row(0.25, "squad2_test", 0.50, 0.60, 0.40), _row(0.5, "squad2_test", 0.60, 0.70, 0.45),
            _row(1.0, "squad2_test", 0.65, 0.72, 0.50), _row(0.5, "xquad_en_test", 0.55, None, 0.50),
            _row(1.0, "xquad_en_test", 0.60, None, 0.55)]
    gains = {(g["set"], g["measure"], g["from"]): g["gain"] for g in doubling_gains(rows)}
    assert gains[("squad2_test", "answerability_auc", 0.25)] == pytest.approx(0.10)
    assert gains[("squad2_test", "answerability_auc", 0.5)] == pytest.approx(0.02)
    assert gains[("squad2_test", "span_f1", 0.5)] == pytest.approx(0.05)
    assert gains[("xquad_en_test", "f1", 0.5)] == pytest.approx(0.05)
    assert ("xquad_en_test", "answerability_auc", 0.5) not in gains  # no unanswerable questions: no AUC
    assert ("xquad_en_test", "span_f1", 0.25) not in gains  # no ¼ point of that set
