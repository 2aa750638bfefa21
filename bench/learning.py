"""Does the learning loop learn? The measurement of docs/quality.md, "Learning from users".

    .venv/bin/python -m bench.learning                  # prints the report
    .venv/bin/python -m bench.learning --write          # ... and writes it into docs/quality.md

1. Clustering threshold, on covidqa_qsim (a set the loop is not scored on): its queries (several a FAQ
   where it has them) are clustered greedily (qa/review.py) at each cosine threshold; purity is the share of
   queries whose cluster's most common FAQ is their own, and the report gives clusters per query. The
   shipped `CLUSTER_COSINE` is the lowest threshold with purity >= 0.95 there.
2. The loop, on stackfaq_threads (and, as a check on a set nothing here was chosen on, covidqa_qsim): each
   FAQ's rephrasings in qid order, alternately into a *logged* half and a *held-back* half. The corpus is
   indexed by the real pipeline; the logged half is asked through a Bot with a question log (as chat users
   would); the review queue is built from the log, and a reviewer who always accepts the top candidate adds
   each cluster with an FAQ candidate to `alternates.jsonl` (one action a cluster; `Review.accept` adds the
   questions that FAQ already answered well with it); the index is rebuilt; Recall@1 (the first retrieved
   passage is a gold FAQ) is measured on the held-back half before and after. Two kinds of users: *silent*
   ones leave only the bot's own outcomes; *careful* ones pick the right suggestion when one is offered and
   mark every other reply that did not answer them right unhelpful (the gold FAQ stands in for what they wanted).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from qa import Bot, QuestionLog
from qa.embedding import Embedder
from qa.evaluation import write_corpus
from qa.indexing import build_index
from qa.alternates import ALTERNATES_FILE, parse_alternates
from qa.review import CLUSTER_COSINE, Review, greedy_clusters

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT.parent / "shared" / "eval"
DOC = ROOT / "docs" / "quality.md"
SECTION = "## Learning from users"
LOOP_SETS = ("stackfaq_threads", "covidqa_qsim")  # the first is the issue's; the second a check
THRESHOLDS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def cluster_purity(embedder: Embedder, folder: Path) -> list[dict]:
    """Purity and clusters per query of greedy clustering at each threshold, on one set's queries."""
    queries = _jsonl(folder / "queries.jsonl")
    vectors = embedder.encode([q["query"] for q in queries], batch_size=64)
    gold = [q["faq_ids"][0] for q in queries]
    rows = []
    for threshold in THRESHOLDS:
        groups = greedy_clusters(vectors, threshold)
        pure = sum(Counter(gold[i] for i in g).most_common(1)[0][1] for g in groups)
        rows.append({"threshold": threshold, "purity": pure / len(queries), "clusters_per_query": len(groups) / len(queries)})
    return rows


def recall_at_1(bot: Bot, questions: list[dict], ids: dict[str, str]) -> float:
    answers = bot.ask_many([q["query"] for q in questions])
    hits = [a.passages and a.passages[0].passage.id in {ids[f] for f in q["faq_ids"]} for a, q in zip(answers, questions)]
    return sum(hits) / len(hits)


def learning_loop(embedder: Embedder, folder: Path, work: Path, users: bool) -> dict:
    """One round of the loop; with `users`, each logged question's user acts as a careful one would:
    picks the gold FAQ when it is among the suggestions, else marks a reply that did not answer it right unhelpful."""
    data, index = work / "data", work / "index"
    write_corpus(folder, data)
    build_index([data], index, embedder, allow_conflicts=True)
    by_faq: dict[str, list[dict]] = {}
    for q in sorted(_jsonl(folder / "queries.jsonl"), key=lambda q: q["qid"]):
        by_faq.setdefault(q["faq_ids"][0], []).append(q)
    logged = [q for qs in by_faq.values() for q in qs[0::2]]
    held = [q for qs in by_faq.values() for q in qs[1::2]]

    question_log = QuestionLog(work / "qa-log.sqlite3")
    bot = Bot(index, embedder=embedder, question_log=question_log).warm_up()
    ids = {p.id.split(":", 1)[1]: p.id for p in bot.passages}
    before = recall_at_1(Bot(index, embedder=embedder), held, ids)
    answers = bot.ask_many([q["query"] for q in logged])
    gold_of = {q["query"]: ids[q["faq_ids"][0]] for q in logged}
    picks = thumbs = 0
    for q, answer in zip(logged if users else [], answers):
        gold = gold_of[q["query"]]
        if answer.outcome == "suggested" and gold in {s.passage_id for s in answer.suggestions}:
            bot.ask(q["query"], choose=gold)
            picks += 1
        elif not (answer.outcome == "answered" and answer.citations[0].passage_id == gold):
            bot.feedback(answer.answer_id, False)  # a wrong answer, or suggestions without the right one
            thumbs += 1

    review = Review(bot, question_log, data)
    started = time.perf_counter()
    queue = review.queue()
    queue_seconds = time.perf_counter() - started
    accepted = right = mixed = 0
    for cluster in queue:
        mixed += len({gold_of.get(q) for q in cluster.questions}) > 1
        if cluster.candidate is not None and cluster.candidate.kind == "faq":
            review.accept(cluster)
            accepted += 1
            right += sum(gold_of.get(q) == cluster.candidate.id for q in cluster.questions) == len(cluster.questions)
    added = parse_alternates(ALTERNATES_FILE, (data / ALTERNATES_FILE).read_text(encoding="utf-8")) if accepted else {}
    phrasings = [(faq_id, q) for faq_id, qs in added.items() for q in qs]
    queued = {q for c in queue for q in c.questions}
    build_index([data], index, embedder, allow_conflicts=True)
    after = recall_at_1(Bot(index, embedder=embedder), held, ids)
    return {
        "users": users, "picks": picks, "thumbs_down": thumbs, "faqs": len(by_faq), "logged": len(logged), "held_back": len(held),
        "outcomes": dict(Counter(a.outcome for a in answers)),
        "queued_questions": sum(c.count for c in queue), "clusters": len(queue), "actions": accepted,
        "clusters_all_right": right, "clusters_mixing_faqs": mixed, "queue_seconds": round(queue_seconds, 2),
        "alternates_added": len(phrasings), "answered_well_added": sum(q not in queued for _, q in phrasings),
        "alternates_on_a_wrong_faq": sum(gold_of.get(q) not in (None, faq_id) for faq_id, q in phrasings),
        "recall_at_1_before": before, "recall_at_1_after": after,
    }


def report(purity: list[dict], loops: list[dict]) -> str:
    lines = [
        SECTION, "",
        "Command: `.venv/bin/python -m bench.learning --write` (this section is its output; the loop is described in",
        "[README.md](../README.md#learning-from-users) and `qa/review.py`).", "",
        "**Clustering threshold** (greedy clustering of the queries of covidqa_qsim, a set the loop below is not",
        "scored on; purity: share of queries whose cluster's most common FAQ is their own):", "",
        "| cosine | purity | clusters per query |", "|---|---|---|",
    ]
    lines += [f"| {r['threshold']:.2f}{' (shipped)' if abs(r['threshold'] - CLUSTER_COSINE) < 1e-9 else ''} | "
              f"{r['purity']:.3f} | {r['clusters_per_query']:.3f} |" for r in purity]
    loop = loops[0]
    lines += [
        "",
        f"**The loop** on stackfaq_threads ({loop['faqs']} FAQs), and on covidqa_qsim as a check: each FAQ's "
        f"rephrasings alternately into a logged half (on stackfaq_threads {loop['logged']} questions, asked through a "
        f"Bot with a question log) and a held-back half ({loop['held_back']}). Outcomes of the logged questions there: "
        + ", ".join(f"{k} {v}" for k, v in sorted(loop["outcomes"].items())) + ". "
        "Then a reviewer accepts every cluster's top FAQ candidate (one action a cluster; the accept also adds the "
        "logged questions that FAQ already answered well), and the index is rebuilt. Two kinds of users: *silent* "
        "ones leave only the bot's own outcomes in the log; *careful* ones pick the right suggestion when it is "
        "offered and mark any other reply that did not answer them right unhelpful (known here from the gold FAQ).", "",
        "| set | users | picks / unhelpful | questions queued | clusters (all one FAQ = candidate; mixing FAQs) | "
        "alternates added (already answered well; on a wrong FAQ) | review actions / questions logged | "
        "Recall@1 held-back, before | after | gain |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in loops:
        lines.append(
            f"| {r['set']} | {'careful' if r['users'] else 'silent'} | {r['picks']} / {r['thumbs_down']} | "
            f"{r['queued_questions']} | {r['clusters']} ({r['clusters_all_right']}; {r['clusters_mixing_faqs']}) | "
            f"{r['alternates_added']} ({r['answered_well_added']}; {r['alternates_on_a_wrong_faq']}) | "
            f"{r['actions']} / {r['logged']} | {r['recall_at_1_before']:.3f} | {r['recall_at_1_after']:.3f} | "
            f"{r['recall_at_1_after'] - r['recall_at_1_before']:+.3f} |")
    lines.append("")
    return "\n".join(lines)


def write_section(text: str) -> None:
    doc = DOC.read_text(encoding="utf-8")
    if SECTION in doc:
        start = doc.index(SECTION)
        rest = doc.find("\n## ", start + len(SECTION))
        doc = doc[:start] + text + (doc[rest + 1:] if rest != -1 else "")
    else:
        doc = doc.rstrip() + "\n\n" + text
    DOC.write_text(doc, encoding="utf-8")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--write", action="store_true", help="write the report into docs/quality.md")
    p.add_argument("--eval", type=Path, default=EVAL, help="the evaluation sets (default: ../shared/eval)")
    args = p.parse_args(argv)
    embedder = Embedder()
    purity = cluster_purity(embedder, args.eval / "covidqa_qsim")
    loops = []
    for name in LOOP_SETS:
        for users in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                loops.append({"set": name, **learning_loop(embedder, args.eval / name, Path(tmp), users)})
    text = report(purity, loops)
    print(text)
    print(json.dumps({"purity": purity, "loops": loops}))
    if args.write:
        write_section(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
