"""The reader's learning curve: the reader alone on the test folds after ¼, ½ and all of its training data.

    .venv/bin/python -m bench.reader_curve            # after `make train` (which saves the ¼ and ½ checkpoints)
    .venv/bin/python -m bench.reader_curve --runs     # after `make learning-curve` (separate runs on ¼ and ½)

Two curves, scored alike with `qa.evaluation.reading_scores` (SQuAD 2.0 exact match and F1, every question
read against its gold paragraph) on squad2_test and xquad_en_test, which share no article with the training
data:

- the checkpoints of one run: `make train` trains the recipe (two passes over the training pairs) and saves
  the weights after a quarter and a half of the run beside the shipped ones (qa/comprehension/model-0.25,
  model-0.5). Their learning rate had not decayed yet, which a finished run's has: they tell how the run
  went, not what less data gives.
- separate runs (`--runs`): `make learning-curve` trains the same recipe, schedule and seed on a quarter
  and on a half of the training questions (`qa train --data-fraction`, into qa/comprehension/model-data0.25,
  model-data0.5), each to the end. Each point has twice the data of the one before, so the difference
  between two points is what one doubling of the data bought: the printout ends with it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from qa.comprehension import WEIGHTS_DIR, Comprehension
from qa.evaluation import reading_scores

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT.parent / "shared" / "eval"
SETS = ("squad2_test", "xquad_en_test")
MEASURES = ("span_f1", "answerability_auc", "f1")  # what each doubling's gain is printed for


def points(weights: Path, shares: list[float], runs: bool) -> list[tuple[float, Path]]:
    """(share, weights folder) of each point: `weights` itself for all of the data; for a share, the checkpoint
    `make train` saved beside it (model-0.25), or with `runs` the separate run `make learning-curve` trained
    beside it (model-data0.25)."""
    infix = "-data" if runs else "-"
    return [(share, weights if share == 1 else weights.with_name(f"{weights.name}{infix}{share:g}"))
            for share in shares]


def doubling_gains(rows: list[dict]) -> list[dict]:
    """For each set and measure, the gain from each point to the next that has twice its share of the data."""
    gains = []
    for name in SETS:
        by_share = {r["share"]: r for r in rows if r["set"] == name}
        for share in sorted(by_share):
            after = by_share.get(2 * share)
            if after is None:
                continue
            for measure in MEASURES:
                if by_share[share][measure] is not None and after[measure] is not None:
                    gains.append({"set": name, "measure": measure, "from": share, "to": 2 * share,
                                  "gain": after[measure] - by_share[share][measure]})
    return gains


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reader_curve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, default=WEIGHTS_DIR, help="the full run's weights")
    parser.add_argument("--shares", default="0.25,0.5,1", help="which points to score (default: all three)")
    parser.add_argument("--runs", action="store_true",
                        help="score the separate runs of `make learning-curve`, not the checkpoints of `make train`")
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS, help="which test folds to read")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    rows = []
    for share, folder in points(args.weights, [float(s) for s in args.shares.split(",")], args.runs):
        if not folder.exists():
            print(f"skipped {share:g}: no weights in {folder} (run `make {'learning-curve' if args.runs else 'train'}`)")
            continue
        reader = Comprehension(folder).warm_up()
        steps = f'{reader.card["steps"]} of {reader.card["of_steps"]}'
        for name in args.sets:
            scores = reading_scores(EVAL / name, reader)
            rows.append({"share": share, "steps": steps, "pairs": reader.card.get("pairs", {}).get("pairs"),
                         "set": name, **scores})
            print(json.dumps(rows[-1]), flush=True)
    print("| training data seen | steps | set | span F1 if it always answered | answerability AUC | exact match "
          "| F1 | F1 (answerable) | abstained (unanswerable) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        no_answer = "—" if r["no_answer_accuracy"] is None else f'{r["no_answer_accuracy"]:.3f}'
        auc = "—" if r["answerability_auc"] is None else f'{r["answerability_auc"]:.3f}'
        print(f'| {r["share"]:g} | {r["steps"]} | {r["set"]} | {100 * r["span_f1"]:.1f} | {auc} | '
              f'{100 * r["exact_match"]:.1f} | {100 * r["f1"]:.1f} | {100 * r["has_answer_f1"]:.1f} | {no_answer} |')
    gains = doubling_gains(rows)
    for g in gains:
        scale = 1 if g["measure"] == "answerability_auc" else 100
        print(f'{g["set"]} {g["measure"]}: {scale * g["gain"]:+.{3 if scale == 1 else 1}f} from {g["from"]:g} '
              f'to {g["to"]:g} of the data')
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")  # the gains follow from the rows
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
