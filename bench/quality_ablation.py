"""Which retrieval design wins, measured: Recall@1 of fusion variants on every evaluation set.

    .venv/bin/python -m bench.quality_ablation               # the table of design choices (docs/quality.md)
    .venv/bin/python -m bench.quality_ablation --select      # choose the weights, each family of sets held out in turn
    .venv/bin/python -m bench.quality_ablation --sentences   # answer-sentence selection on xquad_en
    .venv/bin/python -m bench.quality_ablation --abstention  # confidence weights that separate in/out of scope

Each set is indexed once by the real pipeline (cached in --cache); the features
of every question's candidates come from the real Retriever; then each variant
of `RetrievalSettings` is scored on them. The output is the evidence table of
docs/quality.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
from pathlib import Path

import numpy as np

from qa import Bot
from qa.embedding import Embedder
from qa.evaluation import load_questions, write_corpus
from qa.retrieval import RetrievalSettings, fused_score

SETS = ["xquad_en", "squad2_dev", "stackfaq_threads", "covidqa_qsim", "stackfaq"]
# Sets that share data are held out together: xquad_en and squad2_dev share SQuAD articles, the two StackFAQ
# sets share their queries.
FAMILY = {"xquad_en": "squad", "squad2_dev": "squad", "stackfaq_threads": "stackfaq", "stackfaq": "stackfaq",
          "covidqa_qsim": "covidqa", "bundled": "bundled"}
# The weight grid --select searches (every other setting stays at its default).
GRID = {
    "coverage_weight": [0.15, 0.2, 0.25, 0.3],
    "paragraph_coverage_weight": [0.3, 0.4, 0.5, 0.6],
    "answer_weight": [0.7, 0.8, 0.9],
    "entry_weight": [0.0, 0.8, 0.9, 1.0],
}


def prepare(folder: Path, cache: Path, embedder: Embedder):
    """(bot, questions, features per question) for one set, building its index once."""
    corpus, index = cache / folder.name / "corpus", cache / folder.name / "index"
    if not (index / "manifest.json").exists():
        kind = write_corpus(folder, corpus)
        Bot.build([corpus], index, embedder=embedder)
    kind = "article" if (folder / "docs.jsonl").exists() else "faq"
    bot = Bot(index, embedder=embedder).warm_up()
    questions = [q for q in load_questions(folder, bot, kind) if not q.unanswerable]  # retrieval: answerable only
    vectors = embedder.encode([q.text for q in questions], batch_size=64)
    retriever = bot.retriever
    features = [retriever.features(q.text, v, 50) for q, v in zip(questions, vectors)]
    return bot, questions, features


def prepare_bundled(cache: Path, embedder: Embedder):
    """The bundled article with our own questions (tests/fixtures/bundled_questions.jsonl)."""
    from qa.evaluation import Question

    root = Path(__file__).resolve().parent.parent
    index = cache / "bundled" / "index"
    if not (index / "manifest.json").exists():
        Bot.build([root / "data"], index, embedder=embedder)
    bot = Bot(index, embedder=embedder).warm_up()
    rows = [json.loads(line) for line in (root / "tests" / "fixtures" / "bundled_questions.jsonl").read_text().splitlines()]
    questions = [
        Question(r["question"], {p.id for p in bot.passages if r["fact"] in p.text and p.kind == r["expect"]}, [r["fact"]])
        for r in rows
    ]
    vectors = embedder.encode([q.text for q in questions])
    retriever = bot.retriever
    return bot, questions, [retriever.features(q.text, v, 50) for q, v in zip(questions, vectors)]


def recall_at_1(bot, questions, features, settings) -> float:
    ids = [p.id for p in bot.index.passages]
    hits = 0
    for q, f in zip(questions, features):
        if len(f.rows):
            scores = fused_score(f, settings)
            hits += ids[int(f.rows[int(np.argmax(scores))])] in q.gold
    return hits / len(questions)


def best_baseline(bot, questions, embedder: Embedder) -> float:
    """The best Recall@1 of BM25 alone, dense alone and RRF (qa eval's baselines) on one set."""
    from qa.evaluation import Baselines

    kind = "faq" if any(p.kind == "faq" for p in bot.index.passages) else "article"
    baselines = Baselines(bot, kind)
    vectors = embedder.encode([q.text for q in questions], batch_size=64)
    hits = {"bm25": 0, "dense": 0, "rrf": 0}
    for q, v in zip(questions, vectors):
        for name, ranking in baselines.rank(q.text, v).items():
            hits[name] += bool(ranking) and ranking[0] in q.gold
    return max(hits.values()) / len(questions)


def select(data, embedder: Embedder) -> None:
    """Choose the retrieval weights on the grid, with each family of sets held out in turn.

    The objective is the mean over families of each family's mean Recall@1, so that a family with two
    sets counts once. For each family, the weights are chosen on the other families and measured on its
    sets; the shipped weights are chosen on all of them.
    """
    names = list(data)
    # The baselines index one text a passage; the bundled article mixes paragraphs and FAQ pairs.
    baseline = {n: best_baseline(data[n][0], data[n][1], embedder) for n in names if n != "bundled"}
    combos = [dict(zip(GRID, values)) for values in itertools.product(*GRID.values())]
    base = RetrievalSettings()
    table = np.array([[recall_at_1(*data[n], dataclasses.replace(base, **c)) for n in names] for c in combos])
    default = np.array([recall_at_1(*data[n], base) for n in names])
    families = sorted({FAMILY[n] for n in names})

    def objective(rows: np.ndarray, keep: list[str]) -> np.ndarray:
        return np.mean([rows[:, [i for i, n in enumerate(names) if FAMILY[n] == f]].mean(axis=1) for f in keep], axis=0)

    shipped = int(np.argmax(objective(table, families)))
    print("| held-out set | weights chosen without its family | its R@1 so chosen | shipped weights' R@1 | "
          "current defaults' R@1 | best baseline R@1 |")
    print("|---|---|---|---|---|---|")
    for family in families:
        chosen = int(np.argmax(objective(table, [f for f in families if f != family])))
        for i, n in enumerate(names):
            if FAMILY[n] == family:
                weights = ", ".join(f"{k} {v}" for k, v in combos[chosen].items())
                base_r1 = f"{baseline[n]:.3f}" if n in baseline else "—"
                print(f"| {n} | {weights} | {table[chosen, i]:.3f} | {table[shipped, i]:.3f} | {default[i]:.3f} | "
                      f"{base_r1} |", flush=True)
    print("shipped:", json.dumps(combos[shipped]))


def top_evidence(bot, texts: list[str], embedder: Embedder, settings: RetrievalSettings):
    """(dense, coverage) of the best passage for each question, as the answerer sees it."""
    retriever = bot.retriever
    retriever.settings = settings
    vectors = embedder.encode(texts, batch_size=64)
    out = []
    for text, v in zip(texts, vectors):
        (_, e), *_ = retriever.search(text, v, 1)
        out.append((e.dense, e.coverage))
    return np.array(out)


def abstention(data, sets: Path, embedder: Embedder, settings: RetrievalSettings) -> None:
    """Search the confidence evidence weight and centre that best separate in-scope from out-of-scope."""
    import random

    from qa.evaluation import question_texts

    table = {}
    for name, (bot, questions, _) in data.items():
        others = [t for other in SETS if other != name for t in question_texts(sets / other)]
        own = {q.text for q in questions}
        sample = random.Random(0).sample([t for t in others if t not in own], 300)
        table[name] = (top_evidence(bot, [q.text for q in questions], embedder, settings),
                       top_evidence(bot, sample, embedder, settings))
    best = None
    for cw in [0.0, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.7]:
        for center in np.arange(0.20, 0.70, 0.005):
            worst = 1.0
            scores = {}
            for name, (ins, outs) in table.items():
                answered = float(np.mean(ins[:, 0] + cw * ins[:, 1] >= center))
                abstained = float(np.mean(outs[:, 0] + cw * outs[:, 1] < center))
                scores[name] = (round(answered, 3), round(abstained, 3))
                worst = min(worst, answered, abstained)
            if best is None or worst > best[0]:
                best = (worst, cw, float(center), scores)
    print(json.dumps({"worst": best[0], "coverage_weight": best[1], "center": round(best[2], 3), "per_set": best[3]}))


def sentence_table(bot, questions, embedder: Embedder):
    """Per question (gold paragraph): each sentence's cosine, term coverage, words and whether it holds the answer."""
    from qa.evaluation import answer_hit
    from qa.keys import FIELD_SENTENCE
    from qa.lexical import analyze, coverage

    retriever = bot.retriever
    index = bot.index
    by_id = {p.id: r for r, p in enumerate(index.passages)}
    vectors = embedder.encode([q.text for q in questions], batch_size=64)
    table = []
    for q, v in zip(questions, vectors):
        row = by_id[next(iter(q.gold))]
        p = index.passages[row]
        key_rows = retriever.key_rows(row)
        keys = index.keys[key_rows]
        cos = index.vectors.reconstruct_batch(key_rows) @ v
        sent_cos = {int(k[2]): float(c) for k, c in zip(keys, cos) if k[1] == FIELD_SENTENCE}
        weights = retriever.term_weights(q.text)
        rows = []
        for i, span in enumerate(p.sentences):
            text = p.text_at(span.start, span.end)
            rows.append((sent_cos.get(i, float(cos.max())), coverage(weights, set(analyze(text))),
                         len(text.split()), answer_hit(text, q.answers)))
        table.append((rows, q.answers, p))
    return table


def sentences(data, embedder: Embedder) -> None:
    """Answer hit (given the gold paragraph) and median words of sentence-selection variants."""
    from qa.evaluation import answer_hit

    bot, questions, _ = data["xquad_en"]
    table = sentence_table(bot, questions, embedder)
    for lw in [0.0, 0.5, 0.75, 1.0]:
        for margin in [-1.0, 0.2, 0.4, 0.6]:
            for max_words in [60, 80]:
                hits, words = 0, []
                for rows, answers, p in table:
                    scores = [c + lw * cov for c, cov, _, _ in rows]
                    best = int(np.argmax(scores))
                    first = last = best
                    nb = [j for j in (best - 1, best + 1) if 0 <= j < len(rows)]
                    if nb and margin >= 0:
                        j = max(nb, key=lambda j: scores[j])
                        if scores[j] >= scores[best] - margin:
                            a, b = min(best, j), max(best, j)
                            if sum(r[2] for r in rows[a : b + 1]) <= max_words:
                                first, last = a, b
                    text = p.text_at(p.sentences[first].start, p.sentences[last].end)
                    hits += answer_hit(text, answers)
                    words.append(len(text.split()))
                print(json.dumps({"lexical": lw, "margin": margin, "max_words": max_words,
                                  "hit_given_paragraph": round(hits / len(table), 4), "median_words": float(np.median(words))}), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=str(Path(__file__).resolve().parent.parent.parent / "shared" / "eval"))
    parser.add_argument("--cache", default="/tmp/qa-ablation-v3")
    parser.add_argument("--select", action="store_true",
                        help="choose the weights on the grid, each family of sets held out in turn")
    parser.add_argument("--sentences", action="store_true", help="compare ways of choosing answer sentences")
    parser.add_argument("--abstention", action="store_true", help="search the confidence weights for abstention")
    args = parser.parse_args()
    embedder = Embedder()
    names = ["xquad_en"] if args.sentences else SETS
    data = {name: prepare(Path(args.sets) / name, Path(args.cache), embedder) for name in names}
    if not (args.sentences or args.abstention):
        data["bundled"] = prepare_bundled(Path(args.cache), embedder)  # our own questions on the bundled article
    base = RetrievalSettings()
    if args.sentences:
        sentences(data, embedder)
        return 0
    if args.abstention:
        abstention(data, Path(args.sets), embedder, base)
        return 0
    if args.select:
        select(data, embedder)
        return 0
    none = dataclasses.replace(base, coverage_weight=0.0, paragraph_coverage_weight=0.0, entry_weight=0.0)
    variants = {
        "dense over one key a passage (paragraph, or FAQ question)": dataclasses.replace(
            none, sentence_weight=0.0, answer_weight=0.0
        ),
        "+ sentence keys for paragraphs (best sentence x 0.9)": dataclasses.replace(none, answer_weight=0.0),
        "+ FAQ answer keys (answer x 0.8)": none,
        "+ FAQ pair keys (question and answer as one text)": dataclasses.replace(none, entry_weight=base.entry_weight),
        "+ BM25 / best BM25 x 0.25 (instead of coverage)": dataclasses.replace(
            none, lexical_weight=0.25, entry_weight=base.entry_weight),
        "+ term coverage, the same weight for paragraphs": dataclasses.replace(
            base, paragraph_coverage_weight=base.coverage_weight),
        "+ term coverage, more weight for paragraphs (default)": base,
        "default, coverage of indexed terms only": dataclasses.replace(base, coverage_of="known"),
    }
    names = [*SETS, "bundled"]
    print("| variant | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for label, s in variants.items():
        r = [recall_at_1(*data[name], s) for name in names]
        print(f"| {label} | " + " | ".join(f"{x:.3f}" for x in r) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
