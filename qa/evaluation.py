"""`qa eval`: retrieval, answer and abstention quality on real evaluation sets, against baselines.

A set is a folder in one of two shapes (see ../shared/eval/README.md):

* article QA: `docs.jsonl` (doc_id, title, paragraphs) + `questions.jsonl`
  (question, doc_id, paragraph_index, answers);
* FAQ retrieval: `faqs.jsonl` (faq_id, question, answer) + `queries.jsonl` (query, faq_ids).

The set's documents are written out as ordinary files (Markdown articles, a
JSONL FAQ file) and indexed by the real pipeline; every question goes through
`Bot.ask`. The baselines — BM25 alone, dense alone, and their reciprocal-rank
fusion — rank the same passages with the same model and tokenizer, the way a
user gluing bm25s or FAISS together would: one text per passage (the paragraph,
or the FAQ question).
"""

from __future__ import annotations

import json
import logging
import random
import statistics
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from .bot import Bot
from .embedding import Embedder
from .errors import QAError
from .lexical import LexicalIndex, fold
from .stores import parse_store
from .keys import FIELD_QUESTION, FIELD_TEXT

log = logging.getLogger(__name__)

RRF_K = 60
OUT_OF_SCOPE_SAMPLE = 300
DEPTH = 10


@dataclass
class Question:
    text: str
    gold: set[str]  # passage ids that answer it (empty for an unanswerable question)
    answers: list[str] = field(default_factory=list)  # gold answer strings (article sets)
    unanswerable: bool = False  # written to look answerable, but the documents do not hold the answer


@dataclass
class EvalSet:
    name: str
    kind: str  # "article" or "faq"
    folder: Path
    questions: list[Question]


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def set_kind(folder: Path) -> str:
    """'article' or 'faq', from the files the folder holds.

    Raises:
        QAError: the folder is in neither shape.
    """
    if (folder / "docs.jsonl").exists() and (folder / "questions.jsonl").exists():
        return "article"
    if (folder / "faqs.jsonl").exists() and (folder / "queries.jsonl").exists():
        return "faq"
    raise QAError(f"{folder}: not an evaluation set (expected docs.jsonl + questions.jsonl, or faqs.jsonl + queries.jsonl)")


def write_corpus(folder: Path, out: Path) -> str:
    """Write a set's documents as files the real pipeline reads; returns the set's kind."""
    kind = set_kind(folder)
    out.mkdir(parents=True, exist_ok=True)
    if kind == "article":
        for doc in read_jsonl(folder / "docs.jsonl"):
            paragraphs = [" ".join(p.split()) for p in doc["paragraphs"]]
            (out / f"{doc['doc_id']}.md").write_text(f"# {doc['title']}\n\n" + "\n\n".join(paragraphs) + "\n", encoding="utf-8")
    else:
        with open(out / "faqs.jsonl", "w", encoding="utf-8") as fh:
            for faq in read_jsonl(folder / "faqs.jsonl"):
                fh.write(json.dumps({"id": faq["faq_id"], "question": faq["question"], "answer": faq["answer"]}, ensure_ascii=False) + "\n")
    return kind


def load_questions(folder: Path, bot: Bot, kind: str) -> list[Question]:
    """The set's questions with their gold passages resolved to the index's passage ids."""
    passages = bot.index.passages
    if kind == "article":
        by_place = {(Path(p.path).stem, p.position): p.id for p in passages if p.kind == "paragraph"}
        questions = []
        for q in read_jsonl(folder / "questions.jsonl"):
            if q.get("unanswerable"):
                questions.append(Question(q["question"], set(), [], unanswerable=True))
                continue
            pid = by_place.get((q["doc_id"], q["paragraph_index"]))
            if pid is None:
                raise QAError(f"{folder}: paragraph {q['paragraph_index']} of {q['doc_id']} is not in the index")
            questions.append(Question(q["question"], {pid}, list(q["answers"])))
        return questions
    ids = {p.id.split(":", 1)[1]: p.id for p in passages}
    return [Question(q["query"], {ids[f] for f in q["faq_ids"] if f in ids}) for q in read_jsonl(folder / "queries.jsonl")]


def document_keys(folder: Path) -> set[str]:
    """What a set's documents are: its article titles, or its FAQ questions (folded)."""
    if set_kind(folder) == "article":
        return {fold(d["title"]).strip() for d in read_jsonl(folder / "docs.jsonl")}
    return {fold(f["question"]).strip() for f in read_jsonl(folder / "faqs.jsonl")}


def out_of_scope_pool(folder: Path, folders: list[Path]) -> list[str]:
    """The questions of the other sets that share no document with `folder`: questions about the same
    articles (xquad_en and squad2_dev) or the same FAQ pairs (stackfaq and stackfaq_threads) are in scope."""
    own = document_keys(folder)
    return [t for f in folders if f != folder and not (own & document_keys(f)) for t in question_texts(f)]


def question_texts(folder: Path) -> list[str]:
    """Every question of a set, for use as another set's out-of-scope questions."""
    kind = set_kind(folder)
    name, key = ("questions.jsonl", "question") if kind == "article" else ("queries.jsonl", "query")
    return [q[key] for q in read_jsonl(folder / name)]


def auc(positives: list[float], negatives: list[float]) -> float | None:
    """The probability that a random positive scores above a random negative (ties count half)."""
    if not positives or not negatives:
        return None
    scores = np.concatenate([np.asarray(positives, dtype=np.float64), np.asarray(negatives, dtype=np.float64)])
    ranks = np.empty(len(scores))
    order = np.argsort(scores, kind="stable")
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores):  # average ranks of ties
        tied = scores == value
        ranks[tied] = ranks[tied].mean()
    n_pos, n_neg = len(positives), len(negatives)
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def outcome_metrics(answers: list, questions: list[Question]) -> dict:
    """Shares of the answerable questions answered right, answered wrong, suggested (with or without a right
    candidate) and abstained; a citation is right when it cites a gold passage."""
    counts = {"answered_right": 0, "answered_wrong": 0, "suggested_right": 0, "suggested_wrong": 0, "abstained": 0}
    answerable = [(a, q) for a, q in zip(answers, questions) if not q.unanswerable]
    for a, q in answerable:
        if a.answered:
            counts["answered_right" if a.citations[0].passage_id in q.gold else "answered_wrong"] += 1
        elif a.suggestions:
            counts["suggested_right" if any(s.passage_id in q.gold for s in a.suggestions) else "suggested_wrong"] += 1
        else:
            counts["abstained"] += 1
    n = max(len(answerable), 1)
    return {name: value / n for name, value in counts.items()}


def mistakes(answers: list, questions: list[Question], outside: list, passages: dict) -> list[dict]:
    """The answers a reader of the report would want to see, one record each: an answerable question answered
    from a passage that is not gold ("answered_wrong"), an unanswerable one answered ("answered_unanswerable"),
    an out-of-scope one answered ("answered_out_of_scope"), and an answerable one whose first retrieved passage
    is gold but that was suggested or abstained on ("held_back": the bot found it and would not say it). Each
    names the question, the confidence, what was cited (its label: the FAQ question or "paragraph N", its source
    and the quote) or, held back, the first passage and the outcome, and the gold passages (by label, with their
    ids: the pairs of a thread share a question), so a team can tell a wrong answer from a gold that misses
    another FAQ answering the same question.

    Args:
        outside: the answers to the out-of-scope questions.
        passages: the index's passages by id (for the gold ones' labels).
    """
    def cited(answer) -> dict:
        c = answer.citations[0]
        return {"passage_id": c.passage_id, "source": c.source, "label": c.label, "quote": c.quote}

    def gold(q: Question) -> list[dict]:  # one entry per label: a thread's pairs share their question
        named: dict[tuple[str, str], list[str]] = {}
        for pid in sorted(q.gold):
            if pid in passages:
                named.setdefault((passages[pid].title, passages[pid].label), []).append(pid)
        return [{"source": source, "label": label, "passage_ids": ids} for (source, label), ids in named.items()]

    records = []
    for a, q in zip(answers, questions):
        if not a.answered:
            if not q.unanswerable and a.passages and a.passages[0].passage.id in q.gold:
                first = a.passages[0].passage
                records.append({"mistake": "held_back", "outcome": a.outcome, "question": q.text,
                                "confidence": round(a.confidence, 4),
                                "first": {"passage_id": first.id, "source": first.title, "label": first.label},
                                "gold": gold(q), "answers": q.answers})
            continue
        if a.citations[0].passage_id in q.gold:
            continue
        kind = "answered_unanswerable" if q.unanswerable else "answered_wrong"
        records.append({"mistake": kind, "question": q.text, "confidence": round(a.confidence, 4),
                        "cited": cited(a), "gold": gold(q), "answers": q.answers})
    records += [{"mistake": "answered_out_of_scope", "question": a.question, "confidence": round(a.confidence, 4),
                 "cited": cited(a), "gold": [], "answers": []} for a in outside if a.answered]
    return records


def retrieval_metrics(rankings: list[list[str]], questions: list[Question]) -> dict:
    """Recall@1, Recall@5 and MRR@10 of the first gold passage in each ranking (answerable questions only)."""
    pairs = [(r, q) for r, q in zip(rankings, questions) if not q.unanswerable]
    rankings, questions = [r for r, _ in pairs], [q for _, q in pairs]
    r1 = r5 = rr = 0.0
    for ranking, q in zip(rankings, questions):
        rank = next((i for i, pid in enumerate(ranking[:DEPTH]) if pid in q.gold), None)
        if rank is not None:
            r1 += rank == 0
            r5 += rank < 5
            rr += 1.0 / (rank + 1)
    n = max(len(questions), 1)
    return {"recall@1": r1 / n, "recall@5": r5 / n, "mrr@10": rr / n}


def squad_normalize(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces."""
    import re
    import string

    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def squad_em_f1(prediction: str, answers: list[str]) -> tuple[float, float]:
    """SQuAD 2.0's exact match and F1 of one prediction against its gold answers ("" = no answer)."""
    if not answers:  # unanswerable: only abstaining is right
        return (1.0, 1.0) if not prediction else (0.0, 0.0)
    from collections import Counter

    best_em = best_f1 = 0.0
    predicted = squad_normalize(prediction).split()
    for gold in answers:
        expected = squad_normalize(gold).split()
        best_em = max(best_em, float(predicted == expected))
        common = sum((Counter(predicted) & Counter(expected)).values())
        if common:
            precision, recall = common / len(predicted), common / len(expected)
            best_f1 = max(best_f1, 2 * precision * recall / (precision + recall))
    return best_em, best_f1


def reading_scores(folder: Path, reader, threshold: float = 0.5) -> dict:
    """The reader alone, SQuAD 2.0 style: each question read against its gold paragraph.

    An answerable question is read against the paragraph its answer is in. An unanswerable one is read
    against the paragraph it was written against when the set names it; the test folds do not, so it is
    read against the paragraph of its article that BM25 ranks first for it (the one it most looks
    answerable from). The reader answers its span when its probability is at least `threshold`, else
    abstains; an abstention on an unanswerable question scores 1.

    Returns:
        exact_match, f1 (all questions), has_answer_f1, no_answer_accuracy, the threshold and the count; and
        two figures that no threshold sets: span_f1, the F1 of the reader's span on the answerable questions
        as if it always answered, and answerability_auc, how well its probability ranks the answerable
        questions above the unanswerable ones.
    """
    docs = {d["doc_id"]: d["paragraphs"] for d in read_jsonl(folder / "docs.jsonl")}
    questions = read_jsonl(folder / "questions.jsonl")
    pairs = []
    for q in questions:
        paragraphs = docs[q["doc_id"]]
        index = q.get("paragraph_index")
        if index is None:
            index = int(np.argmax(LexicalIndex.fit(paragraphs).scores(q["question"])))
        pairs.append((q["question"], paragraphs[index]))
    readings = []
    for at in range(0, len(pairs), 64):
        readings += reader.read_pairs(pairs[at:at + 64])
    em, f1, has_f1, no_right, span_f1 = [], [], [], [], []
    for q, (_, paragraph), r in zip(questions, pairs, readings):
        prediction = paragraph[r.start:r.end] if r.answerable >= threshold else ""
        e, f = squad_em_f1(prediction, [] if q.get("unanswerable") else q["answers"])
        em.append(e)
        f1.append(f)
        (no_right if q.get("unanswerable") else has_f1).append(f)
        if not q.get("unanswerable"):
            span_f1.append(squad_em_f1(paragraph[r.start:r.end], q["answers"])[1])
    probability = {True: [], False: []}
    for q, r in zip(questions, readings):
        probability[not q.get("unanswerable")].append(r.answerable)
    return {"questions": len(questions), "threshold": threshold, "exact_match": float(np.mean(em)),
            "f1": float(np.mean(f1)), "has_answer_f1": float(np.mean(has_f1)) if has_f1 else None,
            "no_answer_accuracy": float(np.mean(no_right)) if no_right else None,
            "span_f1": float(np.mean(span_f1)) if span_f1 else None,
            "answerability_auc": auc(probability[True], probability[False])}


def answer_hit(text: str, answers: list[str]) -> bool:
    """The answer contains a gold answer string, after case and accent folding."""
    folded = " ".join(fold(text).split())
    return any(" ".join(fold(a).split()) in folded for a in answers)


class Baselines:
    """BM25 alone, dense alone and RRF over one text per passage of the same index."""

    def __init__(self, bot: Bot, kind: str):
        import faiss

        index = bot.index
        self.ids = [p.id for p in index.passages]
        field_code = FIELD_TEXT if kind == "article" else FIELD_QUESTION
        rows = np.flatnonzero(index.keys[:, 1] == field_code)
        rows = rows[np.unique(index.keys[rows, 0], return_index=True)[1]]  # one key per passage
        assert len(rows) == len(self.ids)
        self.dense = faiss.IndexFlatIP(index.dimension)
        self.dense.add(index.key_vectors(rows))
        texts = [p.text if kind == "article" else (p.question or "") for p in index.passages]
        self.bm25 = LexicalIndex.fit(texts)  # the same tokenizer as ours, over one text a passage

    def rank(self, question: str, qvec: np.ndarray) -> dict[str, list[str]]:
        n = min(100, len(self.ids))
        _, dense_rows = self.dense.search(qvec.reshape(1, -1), n)
        dense = [self.ids[i] for i in dense_rows[0] if i >= 0]
        scores = self.bm25.scores(question)
        bm25 = [self.ids[i] for i in np.argsort(-scores, kind="stable")[:n]]
        fused: dict[str, float] = {}
        for ranking in (dense, bm25):
            for r, pid in enumerate(ranking):
                fused[pid] = fused.get(pid, 0.0) + 1.0 / (RRF_K + r + 1)
        rrf = sorted(fused, key=lambda pid: -fused[pid])
        return {"bm25": bm25, "dense": dense, "rrf": rrf}


def evaluate_set(
    folder: Path,
    embedder: Embedder,
    others: list[str],
    limit: int | None = None,
    seed: int = 0,
    out_of_scope: int = OUT_OF_SCOPE_SAMPLE,
    store: str | None = None,
    reading: bool = True,
) -> dict:
    """Build a temporary index of one set and measure ours and the baselines on it; its wrong answers are under
    "mistakes" (`mistakes`).

    Args:
        store: where the temporary index is built (argument → $QA_STORE → "folder"; see qa.stores).
            In Milvus it is a collection of its own, named after the set, dropped afterwards.
        reading: for an article set, also score the reader alone on the gold paragraphs (`reading_scores`).
    """
    folder = Path(folder)
    spec = parse_store(store)
    with tempfile.TemporaryDirectory(prefix="qa-eval-") as tmp, _temporary_index(spec, Path(tmp), folder.name) as index:
        kind = write_corpus(folder, Path(tmp) / "corpus")
        bot = Bot.build([Path(tmp) / "corpus"], index, embedder=embedder, store=str(spec))
        questions = load_questions(folder, bot, kind)
        if limit:
            questions = random.Random(seed).sample(questions, min(limit, len(questions)))
        baselines = Baselines(bot, kind)
        bot.ask("warm up")

        ours, base = [], {"bm25": [], "dense": [], "rrf": []}
        latencies, answers = [], []
        vectors = bot.embedder.encode([q.text for q in questions], batch_size=64)  # for the baselines
        for q, qvec in zip(questions, vectors):
            started = time.perf_counter()
            answer = bot.ask(q.text, k=DEPTH)
            latencies.append((time.perf_counter() - started) * 1000)
            answers.append(answer)
            ours.append([h.passage.id for h in answer.passages])
            for name, ranking in baselines.rank(q.text, qvec).items():
                base[name].append(ranking)

        own = set(q.text for q in questions)
        pool = [t for t in others if t not in own]
        sample = random.Random(seed).sample(pool, min(out_of_scope, len(pool)))
        outside = bot.ask_many(sample) if sample else []
        passages = bot.passages

    result = retrieval_metrics(ours, questions)
    answerable = [(a, q) for a, q in zip(answers, questions) if not q.unanswerable]
    unanswerable = [a for a, q in zip(answers, questions) if q.unanswerable]
    words = [len(a.text.split()) for a, _ in answerable if a.answered]
    hits = [answer_hit(a.text, q.answers) for a, q in answerable if a.answered]
    answered_answerable = sum(a.answered for a, _ in answerable) / max(len(answerable), 1)
    abstained_unanswerable = sum(not a.answered for a in unanswerable) / len(unanswerable) if unanswerable else None
    result.update(
        answer_hit=(sum(hits) / len(answerable)) if kind == "article" else None,
        median_answer_words=statistics.median(words) if words else 0,
        answered_in_scope=answered_answerable,
        abstained_out_of_scope=sum(a.outcome == "abstained" for a in outside) / len(sample) if sample else None,
        not_answered_out_of_scope=sum(not a.answered for a in outside) / len(sample) if sample else None,
        unanswerable_questions=len(unanswerable),
        answered_answerable=answered_answerable if unanswerable else None,
        abstained_unanswerable=abstained_unanswerable,
        balanced_accuracy=(answered_answerable + abstained_unanswerable) / 2 if unanswerable else None,
        confidence_auc=auc([a.confidence for a, _ in answerable], [a.confidence for a in unanswerable]),
        **outcome_metrics(answers, questions),
        p50_ms=float(np.percentile(latencies, 50)),
        p99_ms=float(np.percentile(latencies, 99)),
        qps=1000.0 / statistics.mean(latencies),
    )
    if kind == "article" and reading and bot.answerer.reader is not None:
        result["reading"] = reading_scores(folder, bot.answerer.reader)
    return {
        "set": folder.name,
        "kind": kind,
        "questions": len(questions),
        "answerable_questions": len(answerable),
        "out_of_scope_questions": len(sample),
        "ours": result,
        "baselines": {name: retrieval_metrics(rankings, questions) for name, rankings in base.items()},
        "mistakes": mistakes(answers, questions, outside, {p.id: p for p in passages}),
    }


@contextmanager
def _temporary_index(spec, tmp: Path, name: str) -> Iterator[Path]:
    """The --index of a set's temporary index, in `tmp` or in the store, dropped after.

    Its name is new, so it is never the index of a store that already holds one (a Milvus alias).
    """
    from .stores import open_store

    index = tmp / f"eval_{name}_{uuid.uuid4().hex[:8]}"
    try:
        yield index
    finally:
        open_store(spec, index).drop()


def _pct(x) -> str:
    return "—" if x is None else f"{x:.3f}"


def report(results: list[dict]) -> str:
    """The Markdown report: one table of Recall@1 side by side, then ours in detail."""
    lines = [
        "| set | questions | BM25 R@1 | dense R@1 | RRF R@1 | **ours R@1** | ours R@5 | ours MRR@10 | best baseline MRR@10 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        b, o = r["baselines"], r["ours"]
        best = max(v["recall@1"] for v in b.values())
        mark = "✓" if o["recall@1"] > best else "✗"
        lines.append(
            f"| {r['set']} | {r['questions']} | {_pct(b['bm25']['recall@1'])} | {_pct(b['dense']['recall@1'])} | "
            f"{_pct(b['rrf']['recall@1'])} | **{_pct(o['recall@1'])}** {mark} | {_pct(o['recall@5'])} | {_pct(o['mrr@10'])} | "
            f"{_pct(max(v['mrr@10'] for v in b.values()))} |"
        )
    lines += [
        "",
        "| set | answer hit | median answer words | answered (in scope) | abstained (out of scope) | p50 ms | p99 ms | questions/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        o = r["ours"]
        lines.append(
            f"| {r['set']} | {_pct(o['answer_hit'])} | {o['median_answer_words']:g} | {_pct(o['answered_in_scope'])} | "
            f"{_pct(o['abstained_out_of_scope'])} | {o['p50_ms']:.1f} | {o['p99_ms']:.1f} | {o['qps']:.0f} |"
        )
    lines += [
        "",
        "| set | answered right | answered wrong | suggested, right among them | suggested, none right | abstained "
        "| unanswerable questions | answered (answerable) | abstained (unanswerable) | balanced accuracy | confidence AUC |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        o = r["ours"]
        lines.append(
            f"| {r['set']} | {_pct(o['answered_right'])} | {_pct(o['answered_wrong'])} | {_pct(o['suggested_right'])} | "
            f"{_pct(o['suggested_wrong'])} | {_pct(o['abstained'])} | {o['unanswerable_questions']} | "
            f"{_pct(o['answered_answerable'])} | {_pct(o['abstained_unanswerable'])} | {_pct(o['balanced_accuracy'])} | "
            f"{_pct(o['confidence_auc'])} |"
        )
    reading = [r for r in results if r["ours"].get("reading")]
    if reading:
        lines += [
            "",
            "The reader alone, each question read against its gold paragraph (SQuAD 2.0 scoring: an abstention "
            "on an unanswerable question scores 1; `qa.evaluation.reading_scores`):",
            "",
            "| set | questions | exact match | F1 | F1 (answerable) | abstained (unanswerable) | answer at "
            "| span F1 if it always answered | answerability AUC |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in reading:
            g = r["ours"]["reading"]
            lines.append(
                f"| {r['set']} | {g['questions']} | {100 * g['exact_match']:.1f} | {100 * g['f1']:.1f} | "
                f"{100 * g['has_answer_f1']:.1f} | {_pct(g['no_answer_accuracy'])} | {g['threshold']:g} | "
                f"{100 * g['span_f1']:.1f} | {_pct(g['answerability_auc'])} |"
            )
    return "\n".join(lines) + "\n"


def main(args) -> int:
    """Entry point of `qa eval` (arguments parsed by qa.cli)."""
    folders = [Path(p) for p in args.paths]
    for f in folders:
        set_kind(f)
    store = str(parse_store(getattr(args, "store", None)))  # a bad --store fails before any model loads
    for out in (args.out, getattr(args, "mistakes", None)):  # ... and a report nowhere to go, before the sets run
        if out and not Path(out).parent.is_dir():
            raise QAError(f"{out}: no such folder to write into")
    embedder = Embedder(args.model)
    results, wrong = [], []
    for folder in folders:
        result = evaluate_set(folder, embedder, out_of_scope_pool(folder, folders), limit=args.limit, store=store)
        results.append(result)
        wrong += [{"set": result["set"], **record} for record in result.pop("mistakes")]
        if args.json:
            print(json.dumps(result, ensure_ascii=False), flush=True)
        else:
            log.info("%s done", folder.name)
    text = report(results)
    if not args.json:
        print(text)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    if getattr(args, "mistakes", None):
        with open(args.mistakes, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in wrong)
        log.info("%d mistakes written to %s", len(wrong), args.mistakes)
    return 0
