"""Why does the bot abstain on questions its documents answer? Each abstention of a set, by cause.

    .venv/bin/python -m bench.abstentions [--sets stackfaq,stackfaq_threads,covidqa_qsim] [--limit N]

Every question goes through `Bot.ask` over the set's own index (as `qa eval` builds it). An abstention is
either *nothing likely* (the best candidate's confidence is under the suggestion threshold) or *a lone
suggestion* (a "did you mean…?" of one distinct item, which the answer model's `lone` setting turns into an
abstention: a thread's several answers to one question are one meaning, `qa.answering.says`). For each, the
line says whether retrieval's first passage is a right one, and which checks (`qa.answerability.CHECKS`) that
first candidate's quote fails, the reason it could not be answered. It prints counts only; it chooses nothing.
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT.parent / "shared" / "eval"
SETS = ("stackfaq", "stackfaq_threads", "covidqa_qsim")


def causes(folder: Path, limit: int | None = None) -> tuple[int, Counter]:
    """(questions asked, Counter of (kind of abstention, first passage right?, failed checks)) for one set."""
    from qa import Bot
    from qa.evaluation import load_questions, set_kind, write_corpus

    with tempfile.TemporaryDirectory(prefix="qa-abstentions-") as tmp:
        write_corpus(folder, Path(tmp) / "corpus")
        bot = Bot.build([Path(tmp) / "corpus"], Path(tmp) / "index").warm_up()
        questions = [q for q in load_questions(folder, bot, set_kind(folder)) if q.gold][:limit]
        model = bot.answerer.settings.model
        counts: Counter = Counter()
        for q in questions:
            answer = bot.ask(q.text)
            if answer.outcome != "abstained":
                continue
            results = bot.retriever.search(q.text, bot.embedder.encode([q.text])[0], bot.k)
            first = bot.answerer.score(q.text, results[:1])[0]
            kind = "a lone suggestion" if answer.confidence >= model.suggest_at else "nothing likely"
            right = "first passage right" if first.passage.id in q.gold else "first passage wrong"
            counts[kind, right, ", ".join(model.failed(first.features)) or "no check failed"] += 1
    return len(questions), counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.abstentions", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default=",".join(SETS), help=f"comma-separated sets of ../shared/eval (default {','.join(SETS)})")
    parser.add_argument("--limit", type=int, help="at most this many answerable questions a set")
    args = parser.parse_args(argv)
    for name in args.sets.split(","):
        asked, counts = causes(EVAL / name, args.limit)
        print(f"{name}: {sum(counts.values())} of {asked} answerable questions abstained")
        for (kind, right, failed), n in counts.most_common():
            print(f"  {n:5d}  {kind}; {right}; fails: {failed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
