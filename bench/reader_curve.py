"""The reader's learning curve: the reader alone on the test folds after ¼, ½ and all of its training data.

    .venv/bin/python -m bench.reader_curve            # after `make train` (which saves the ¼ and ½ checkpoints)

`make train` trains the recipe (two passes over the training pairs) and saves the weights after a quarter and a half of
the run beside the shipped ones (qa/comprehension/model-0.25, model-0.5). Each is scored here with
`qa.evaluation.reading_scores` (SQuAD 2.0 exact match and F1, every question read against its gold
paragraph) on squad2_test and xquad_en_test, which share no article with the training data. The ¼ and ½
points are checkpoints of the same run, not separate runs on a quarter and a half of the data: their
learning rate had not decayed yet, which a separate run's would have.
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reader_curve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, default=WEIGHTS_DIR, help="the full run's weights")
    parser.add_argument("--shares", default="0.25,0.5,1", help="which points to score (default: all three)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    points = [(float(share), args.weights if float(share) == 1 else args.weights.with_name(f"{args.weights.name}-{float(share):g}"))
              for share in args.shares.split(",")]
    rows = []
    for share, folder in points:
        if not folder.exists():
            print(f"skipped {share:g}: no weights in {folder} (run `make train`)")
            continue
        reader = Comprehension(folder).warm_up()
        steps = f'{reader.card["steps"]} of {reader.card["of_steps"]}'
        for name in SETS:
            scores = reading_scores(EVAL / name, reader)
            rows.append({"share": share, "steps": steps, "set": name, **scores})
            print(json.dumps(rows[-1]), flush=True)
    print("| training data seen | steps | set | span F1 if it always answered | answerability AUC | exact match "
          "| F1 | F1 (answerable) | abstained (unanswerable) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        no_answer = "—" if r["no_answer_accuracy"] is None else f'{r["no_answer_accuracy"]:.3f}'
        auc = "—" if r["answerability_auc"] is None else f'{r["answerability_auc"]:.3f}'
        print(f'| {r["share"]:g} | {r["steps"]} | {r["set"]} | {100 * r["span_f1"]:.1f} | {auc} | '
              f'{100 * r["exact_match"]:.1f} | {100 * r["f1"]:.1f} | {100 * r["has_answer_f1"]:.1f} | {no_answer} |')
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
