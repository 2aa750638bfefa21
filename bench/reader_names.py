"""Does a reader refuse answerable questions that name something their paragraph does not say?

    .venv/bin/python -m bench.reader_names OLD_WEIGHTS_DIR [NEW_WEIGHTS_DIR ...]

The swapped-question negatives of the recipe (qa/comprehension/training.py) teach the reader that a question
naming a person, place or number its window lacks is not answered there. A real question often names what
its paragraph only refers to ("the Cuban leader" for paragraph 3's "the leader"), so the lesson could cost right
answers. This splits the answerable questions of the test folds (every one read against its gold paragraph)
into those whose stated names and numbers all appear in the paragraph and those naming one it lacks (the
answer model's own test, `qa.answerability.missing_details`, the one its details_missing check applies), and prints for each reader the mean answerability and
the share it accepts (probability >= 0.5, the reader's own bar). The previous weights: check out an
older commit (`git worktree add /tmp/before c15274c`) and pass its `qa/comprehension/model`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from qa.answerability import missing_details
from qa.comprehension import Comprehension
from qa.evaluation import read_jsonl

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT.parent / "shared" / "eval"
SETS = ("squad2_test", "xquad_en_test")
ACCEPTS = 0.5  # the reader's own bar, as in qa.evaluation.reading_scores


def answerable_questions(folder: Path) -> list[tuple[str, str, bool]]:
    """(question, gold paragraph, whether the question names something the paragraph lacks)."""
    docs = {d["doc_id"]: d["paragraphs"] for d in read_jsonl(folder / "docs.jsonl")}
    rows = []
    for q in read_jsonl(folder / "questions.jsonl"):
        if q.get("unanswerable") or q.get("paragraph_index") is None:
            continue
        paragraph = docs[q["doc_id"]][q["paragraph_index"]]
        rows.append((q["question"], paragraph, bool(missing_details(q["question"], paragraph))))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reader_names", description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", type=Path, nargs="+", help="reader weights folders (qa train --out)")
    args = parser.parse_args(argv)
    sets = {name: answerable_questions(EVAL / name) for name in SETS}
    print("| reader | set | questions | all names in the paragraph: mean p / accepted | "
          "names one it lacks: questions | mean p / accepted |")
    print("|---|---|---|---|---|---|")
    for folder in args.weights:
        reader = Comprehension(folder).warm_up()
        for name, rows in sets.items():
            probabilities = [r.answerable for r in reader.read_pairs([(question, paragraph) for question, paragraph, _ in rows])]
            cells = []
            for lacks in (False, True):
                chosen = [p for p, row in zip(probabilities, rows) if row[2] == lacks]
                cells.append((len(chosen), sum(chosen) / len(chosen), sum(p >= ACCEPTS for p in chosen) / len(chosen)))
            (_, mean_all, accepted_all), (lacking, mean_lacking, accepted_lacking) = cells
            print(f"| {folder} | {name} | {len(rows)} | {mean_all:.3f} / {accepted_all:.3f} | {lacking} | "
                  f"{mean_lacking:.3f} / {accepted_lacking:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
