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


def first_right(bot: Bot, questions: list[dict], ids: dict[str, str]) -> list[bool]:
    """For each question: is the first retrieved passage one of its gold FAQs? (Recall@1 is their mean.)"""
    answers = bot.ask_many([q["query"] for q in questions])
    return [bool(a.passages) and a.passages[0].passage.id in {ids[f] for f in q["faq_ids"]} for a, q in zip(answers, questions)]


def learning_loop(embedder: Embedder, folder: Path, work: Path, users: bool, with_answered: bool = True) -> dict:
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
    before = first_right(Bot(index, embedder=embedder), held, ids)
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
            review.accept(cluster, with_answered=with_answered)
            accepted += 1
            right += sum(gold_of.get(q) == cluster.candidate.id for q in cluster.questions) == len(cluster.questions)
    added = parse_alternates(ALTERNATES_FILE, (data / ALTERNATES_FILE).read_text(encoding="utf-8")) if accepted else {}
    phrasings = [(faq_id, q) for faq_id, qs in added.items() for q in qs]
    queued = {q for c in queue for q in c.questions}
    build_index([data], index, embedder, allow_conflicts=True)
    after = first_right(Bot(index, embedder=embedder), held, ids)
    return {
        "users": users, "with_answered": with_answered, "picks": picks, "thumbs_down": thumbs, "faqs": len(by_faq), "logged": len(logged), "held_back": len(held),
        "outcomes": dict(Counter(a.outcome for a in answers)),
        "queued_questions": sum(c.count for c in queue), "clusters": len(queue), "actions": accepted,
        "clusters_all_right": right, "clusters_mixing_faqs": mixed, "queue_seconds": round(queue_seconds, 2),
        "alternates_added": len(phrasings), "answered_well_added": sum(q not in queued for _, q in phrasings),
        "alternates_on_a_wrong_faq": sum(gold_of.get(q) not in (None, faq_id) for faq_id, q in phrasings),
        "recall_at_1_before": sum(before) / len(held), "recall_at_1_after": sum(after) / len(held),
        "held_back_gained": sum(a and not b for a, b in zip(after, before)),
        "held_back_lost": sum(b and not a for a, b in zip(after, before)),
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
        "Recall@1 held-back, before | after | gain (questions gained / lost) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in loops:
        lines.append(
            f"| {r['set']} | {'careful' if r['users'] else 'silent'}{'' if r['with_answered'] else ', accept adds only the cluster'} | "
            f"{r['picks']} / {r['thumbs_down']} | "
            f"{r['queued_questions']} | {r['clusters']} ({r['clusters_all_right']}; {r['clusters_mixing_faqs']}) | "
            f"{r['alternates_added']} ({r['answered_well_added']}; {r['alternates_on_a_wrong_faq']}) | "
            f"{r['actions']} / {r['logged']} | {r['recall_at_1_before']:.3f} | {r['recall_at_1_after']:.3f} | "
            f"{r['recall_at_1_after'] - r['recall_at_1_before']:+.3f} ({r['held_back_gained']} / {r['held_back_lost']}) |")
    lines += ["", *diagnosis(loops), ""]
    return "\n".join(lines)


def diagnosis(loops: list[dict]) -> list[str]:
    """What limits the loop, in words, with this run's figures."""
    def find(name: str, users: bool, with_answered: bool = True) -> dict:
        return next(r for r in loops if r["set"] == name and r["users"] == users and r["with_answered"] == with_answered)

    careful, silent = find("stackfaq_threads", True), find("stackfaq_threads", False)
    narrow = find("stackfaq_threads", True, False)
    check, check_silent = find("covidqa_qsim", True), find("covidqa_qsim", False)

    def gain(r: dict) -> str:
        return f"{r['recall_at_1_after'] - r['recall_at_1_before']:+.3f}"

    return [
        "Why the gain was small, and what changed (before these changes, at commit 1e9134f, the same command measured "
        "0.960 → 0.970 with careful users and 0.960 → 0.946 with silent ones on stackfaq_threads):",
        "",
        "- *Alternates reach retrieval whole*: each is an embedded key (`FIELD_ALTERNATE`, qa/keys.py) that counts in "
        "an FAQ's question match exactly as its own question does, and its words join the FAQ's BM25 and coverage text.",
        "- *Clustering does not merge unrelated questions*: at cosine 0.85 the clusters mixing two FAQs' questions are "
        f"{careful['clusters_mixing_faqs']} of {careful['clusters']} here (column \"mixing FAQs\").",
        "- *Wrong candidates cost more than they look*: every alternate that landed on a wrong FAQ came from a question "
        "the bot had only suggested or abstained on, where the candidate was its own first guess; the rephrasings of "
        "one FAQ are alike, so one wrong alternate draws several held-back questions of the right FAQ to the wrong one. "
        "The careful-user simulation threw the signal away: a user shown three suggestions without the right one did "
        "nothing. Now such a user marks the reply unhelpful, and a \"did you mean…?\" or an abstention marked unhelpful "
        f"votes for no candidate: {careful['alternates_on_a_wrong_faq']} alternates on a wrong FAQ with careful users "
        "on stackfaq_threads.",
        "- *The main limit: the queue holds only what went badly*. An FAQ gained only its failed phrasings while its "
        "neighbours, whose users were answered well, gained nothing, so its reach grew one way and took some of their "
        "held-back questions (the \"lost\" counts); and an FAQ whose logged rephrasings were all answered "
        "confidently gained nothing either, though its held-back ones could still miss. Accepting a cluster now also "
        "adds the logged questions that FAQ already "
        "answered well (shown to the reviewer beside the cluster, no extra action). Without that (row \"accept adds "
        f"only the cluster\") careful users gain {gain(narrow)}; with it {gain(careful)}, in "
        f"{careful['actions']} review actions for {careful['logged']} logged questions. This change was found by "
        "listing the held-back misses of stackfaq_threads; it has no parameter to fit, and the check below is a set "
        "it was not found on.",
        f"- *Check on covidqa_qsim* (nothing here was chosen on it): careful users gain {gain(check)}, with or "
        f"without the answered-well questions ({gain(find('covidqa_qsim', True, False))} without). Silent users leave "
        f"the reviewer only the bot's guesses: on stackfaq_threads {silent['clusters_all_right']} of "
        f"{silent['clusters']} clusters' guesses are right and the loop ends at {gain(silent)}; on covidqa_qsim, "
        f"where the first passage is right for {check_silent['recall_at_1_before']:.2f} of the questions, accepting "
        f"them blindly costs {gain(check_silent)}: a reviewer has to read them.",
        f"- *Target*: +0.02 on stackfaq_threads' held-back half with fewer review actions than questions logged: "
        f"{'met' if careful['recall_at_1_after'] - careful['recall_at_1_before'] >= 0.02 and careful['actions'] < careful['logged'] else 'missed'} "
        f"with careful users ({gain(careful)}, {careful['actions']} actions for {careful['logged']} questions); "
        f"not with silent ones.",
    ]


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
        # Silent and careful users; then careful ones with accepts that add only the cluster's questions.
        for users, with_answered in ((False, True), (True, True), (True, False)):
            with tempfile.TemporaryDirectory() as tmp:
                loops.append({"set": name, **learning_loop(embedder, args.eval / name, Path(tmp), users, with_answered)})
    text = report(purity, loops)
    print(text)
    print(json.dumps({"purity": purity, "loops": loops}))
    if args.write:
        write_section(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
