"""Does the int8 reader decide as the fp32 one does, and how much faster is it? One run, both measured.

    .venv/bin/python -m bench.reader_int8                 # part of `make bench`
    .venv/bin/python -m bench.reader_int8 --limit 200     # fewer questions a set

Each set's documents (../shared/eval, and the bundled article) are indexed once by the real pipeline; every
question, and as many questions of the other sets (out of scope here), goes through `Bot.ask` twice: with the
fp32 reader and with the int8 one (`QA_READER_PRECISION=int8`), in alternating blocks so a busy spell of the
machine falls on both. A *decision* is what the user sees: the outcome, the cited passage and its quote, and
the suggestions offered. Issue 19 allows int8 only where it keeps at least 99 % of the fp32 decisions; the
shipped default (`qa.settings.DEFAULT_READER_PRECISION`) follows this command's verdict.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from pathlib import Path

from qa import Bot
from qa.comprehension import Comprehension
from qa.evaluation import question_texts, write_corpus

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT.parent / "shared" / "eval"
SETS = ["xquad_en_test", "squad2_test", "stackfaq_threads", "covidqa_qsim", "bundled"]
TARGET = 0.99
BLOCK = 25


def decision(answer) -> tuple:
    """What the user sees of an answer."""
    cited = tuple((c.passage_id, c.start, c.end) for c in answer.citations)
    return answer.outcome, cited, tuple(s.passage_id for s in answer.suggestions)


def questions_of(name: str) -> list[str]:
    if name == "bundled":
        files = ("bundled_regression.jsonl", "bundled_questions.jsonl")
        return [json.loads(line)["question"] for f in files
                for line in (ROOT / "tests" / "fixtures" / f).read_text(encoding="utf-8").splitlines()]
    return question_texts(EVAL / name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reader_int8", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", default=SETS, help="sets in ../shared/eval, or bundled")
    parser.add_argument("--limit", type=int, default=300, help="questions of each set, and as many out of scope")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    rng = random.Random(0)
    pools = {name: questions_of(name) for name in args.sets}
    rows, kept_all, total_all, seconds = {}, 0, 0, {"fp32": 0.0, "int8": 0.0}
    for name in args.sets:
        own = pools[name]
        asked = rng.sample(own, min(args.limit, len(own)))
        others = [q for other in args.sets if other != name for q in pools[other] if q not in set(own)]
        asked += rng.sample(others, min(args.limit, len(others)))
        with tempfile.TemporaryDirectory(prefix="qa-int8-") as tmp:
            corpus = Path(tmp) / "corpus"
            if name == "bundled":
                corpus.mkdir()
                shutil.copy(ROOT / "data" / "diaz-canel-russia-visit.txt", corpus)
            else:
                write_corpus(EVAL / name, corpus)
            built = Bot.build([corpus], Path(tmp) / "index")
            bots = {p: Bot(Path(tmp) / "index", embedder=built.embedder,
                           reader=Comprehension(threads=built.answerer.reader.threads, precision=p)).warm_up()
                    for p in ("fp32", "int8")}
            seen: dict[str, list] = {"fp32": [], "int8": []}
            for start in range(0, len(asked), BLOCK):
                block = asked[start:start + BLOCK]
                for precision, bot in bots.items():
                    began = time.perf_counter()
                    seen[precision] += [decision(bot.ask(q)) for q in block]
                    seconds[precision] += time.perf_counter() - began
            kept = sum(a == b for a, b in zip(seen["fp32"], seen["int8"]))
        rows[name] = {"questions": len(asked), "kept": kept, "share": kept / len(asked)}
        kept_all, total_all = kept_all + kept, total_all + len(asked)
        print(f"{name}: int8 keeps {kept} of {len(asked)} fp32 decisions ({kept / len(asked):.3f})", flush=True)
    share = kept_all / total_all
    speed = seconds["fp32"] / seconds["int8"]
    verdict = "met" if share >= TARGET else "NOT met"
    print(f"all: int8 keeps {kept_all} of {total_all} decisions ({share:.4f}; target >= {TARGET}: {verdict}); "
          f"ask() takes {speed:.2f}x less time with int8 (same questions, alternating blocks)")
    if args.json:
        args.json.write_text(json.dumps({"sets": rows, "kept": share, "target": TARGET, "met": share >= TARGET,
                                         "speedup": speed}, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
