"""Quality regression: `qa eval` on a fixed subset of the real evaluation sets must not fall below
the levels measured in docs/quality.md, less a small noise margin."""

from __future__ import annotations

import json

import pytest

from qa.evaluation import evaluate_set, question_texts

from .conftest import EVAL

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (EVAL / "xquad_en_test").exists(), reason="../shared/eval is not beside the checkout"),
]

# (set, questions sampled with seed 0, floors, ceilings). Levels of the shipped answer model with the reader, from
# `python -m bench.select_answering` (docs/quality.md, "The reader"; stop 35's run, equal to `make eval`'s):
# xquad_en_test R@1 0.977, answer hit 0.729, answered right 0.790, right answers plus right suggestions 0.818,
# wrong 0.003; stackfaq_threads R@1 0.962, right + suggested 0.927, wrong 0.014; covidqa_qsim R@1 0.713,
# right + suggested 0.833, wrong 0.058; out of scope abstained >= 0.98. Floors are those less 0.03 and ceilings
# those plus 0.03 (these subsets and the selection's sample of out-of-scope questions differ a little), so noise
# passes and a real regression fails. (Stop 35's model suggests less: suggest_at 0.3, and a lone suggestion is
# answered or not, so right + suggested fell from 0.867 to 0.818 on xquad_en_test while answered right rose.)
CASES = [
    ("xquad_en_test", 391, {"recall@1": 0.947, "answer_hit": 0.699, "answered_right": 0.76,
                            "right_or_suggested": 0.788, "abstained_out_of_scope": 0.95}, {"answered_wrong": 0.033}),
    ("stackfaq_threads", 300, {"recall@1": 0.93, "right_or_suggested": 0.897, "abstained_out_of_scope": 0.95},
     {"answered_wrong": 0.044}),
    ("covidqa_qsim", 240, {"recall@1": 0.683, "right_or_suggested": 0.803, "abstained_out_of_scope": 0.95},
     {"answered_wrong": 0.088}),
]


@pytest.mark.parametrize("name, limit, floors, ceilings", CASES, ids=[c[0] for c in CASES])
def test_eval_subset_stays_above_its_floors_and_beats_the_baselines(embedder, name, limit, floors, ceilings):
    others = [t for other in ("xquad_en_test", "covidqa_qsim", "stackfaq_threads") if other != name
              for t in question_texts(EVAL / other)]
    result = evaluate_set(EVAL / name, embedder, others, limit=limit, out_of_scope=150, reading=False)
    print("\n" + json.dumps(result))
    ours = result["ours"]
    ours["right_or_suggested"] = ours["answered_right"] + ours["suggested_right"]
    for metric, floor in floors.items():
        assert ours[metric] >= floor, (metric, ours[metric], floor)
    for metric, ceiling in ceilings.items():
        assert ours[metric] <= ceiling, (metric, ours[metric], ceiling)
    best_baseline = max(b["recall@1"] for b in result["baselines"].values())
    assert ours["recall@1"] >= best_baseline, (ours["recall@1"], result["baselines"])
    if result["kind"] == "article":
        assert ours["median_answer_words"] <= 40
