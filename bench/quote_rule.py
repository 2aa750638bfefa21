"""Which sentences of a paragraph to quote: the reader's, the best-matching ones, or both.

    .venv/bin/python -m bench.quote_rule

For every xquad_en_test question whose first retrieved passage is its gold paragraph, the share whose quote
holds a gold answer (`qa.evaluation.answer_hit`) and the median quote length in words, for three rules: the
sentence(s) holding the reader's span; the sentences that best match the question (`Answerer.best_span`, the
rule before the reader); and both together within `max_answer_words` (`Answerer.around_span`, the rule `ask()`
uses).
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from qa import Bot
from qa.answering import sentences_around
from qa.evaluation import answer_hit, load_questions, write_corpus

EVAL = Path(__file__).resolve().parent.parent.parent / "shared" / "eval"


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="qa-quote-rule-") as tmp:
        write_corpus(EVAL / "xquad_en_test", Path(tmp) / "corpus")
        bot = Bot.build([Path(tmp) / "corpus"], Path(tmp) / "index").warm_up()
        questions = load_questions(EVAL / "xquad_en_test", bot, "article")
        answerer = bot.answerer
        hits: dict[str, list[bool]] = {"reader": [], "best match": [], "both": []}
        words: dict[str, list[int]] = {k: [] for k in hits}
        for q in questions:
            hit, evidence = bot.retriever.search(q.text, bot.embedder.encode([q.text])[0], 1)[0]
            passage = hit.passage
            if passage.id not in q.gold:
                continue
            span = answerer.reader_span(passage, answerer.read(q.text, [passage])[0])
            best = answerer.best_span(passage, evidence, "other", q.text)
            rules = {"reader": sentences_around(passage, *span) if span else best, "best match": best,
                     "both": answerer.around_span(passage, span, *best) if span else best}
            for name, (start, end) in rules.items():
                text = passage.text_at(start, end)
                hits[name].append(answer_hit(text, q.answers))
                words[name].append(len(text.split()))
    n = len(hits["reader"])
    print(f"{n} of {len(questions)} questions have their gold paragraph first")
    for name in hits:
        print(f"{name}: quote holds the answer {sum(hits[name]) / n:.3f}, median {statistics.median(words[name]):g} words")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
