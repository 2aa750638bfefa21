"""Every answer this checkout gives on public sets, as JSON lines: run it on two commits and compare the files.

    .venv/bin/python -m bench.answers OUT.jsonl [--sets xquad_en_test covidqa_qsim]
    cmp before.jsonl after.jsonl    # a refactor that changes no answer leaves them identical

Each set's documents are indexed by the real pipeline and every question goes through `Bot.ask_many`; a line
holds the set, the question, the outcome, the confidence (6 decimals), the text and the suggestions' passage ids.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from qa import Bot
from qa.evaluation import question_texts, write_corpus

EVAL = Path(__file__).resolve().parent.parent.parent / "shared" / "eval"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.answers", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the JSON lines file to write")
    parser.add_argument("--sets", nargs="+", default=["xquad_en_test", "covidqa_qsim"], help="sets in ../shared/eval")
    args = parser.parse_args(argv)
    lines = []
    for name in args.sets:
        folder = EVAL / name
        with tempfile.TemporaryDirectory(prefix="qa-answers-") as tmp:
            write_corpus(folder, Path(tmp) / "corpus")
            bot = Bot.build([Path(tmp) / "corpus"], Path(tmp) / "index")
            questions = question_texts(folder)
            for question, answer in zip(questions, bot.ask_many(questions)):
                lines.append(json.dumps([name, question, answer.outcome, round(answer.confidence, 6), answer.text,
                                         [s.passage_id for s in answer.suggestions]], ensure_ascii=False))
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} answers to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
