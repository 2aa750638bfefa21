"""The benchmark's real corpus: articles and FAQ pages from ../shared/eval, written as files `qa build` reads.

- xquad_en_test: each Wikipedia article becomes one Markdown file (title heading, one
  paragraph per block) — paragraph passages with sentence keys. The test fold, not
  the full xquad_en: two thirds of that set's articles trained the reader (issue 19).
- stackfaq and covidqa_qsim: the FAQ pairs become JSONL FAQ files — FAQ passages
  with question and answer keys.

Questions are the sets' own: XQuAD questions, StackFAQ and COVID-QA rephrasings.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

EVAL = Path(__file__).resolve().parent.parent.parent / "shared" / "eval"
ARTICLES = "xquad_en_test"  # the article set: its questions are also the ones the bench compares ONNX and torch on
# Generated text and the questions asked of it come from these (the full squad2_dev and xquad_en leave ../shared/eval).
SQUAD_TEST_FOLDS = ("squad2_test", "xquad_en_test")


@dataclass(frozen=True)
class Corpus:
    """A benchmark corpus on disk and the real questions asked of it."""

    folder: Path
    questions: list[str]
    files: int


def _jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def write_corpus(folder: Path, eval_dir: Path = EVAL, fraction: float = 1.0, seed: int = 0) -> Corpus:
    """Write the benchmark corpus into `folder`.

    Args:
        folder: an empty or new folder.
        eval_dir: the evaluation sets (../shared/eval).
        fraction: share of each set's documents to keep (a tiny run uses a few percent).
        seed: for the questions' shuffle.

    Returns:
        The corpus: its folder, its questions (shuffled, of all three sets) and its file count.
    """
    folder.mkdir(parents=True, exist_ok=True)
    files = 0
    questions: list[str] = []
    docs = _jsonl(eval_dir / ARTICLES / "docs.jsonl")
    keep = docs[: max(1, round(len(docs) * fraction))]
    kept_ids = {d["doc_id"] for d in keep}
    for doc in keep:
        body = "\n\n".join(p.strip() for p in doc["paragraphs"])
        (folder / f"{doc['doc_id']}.md").write_text(f"# {doc['title']}\n\n{body}\n", encoding="utf-8")
        files += 1
    questions += [q["question"] for q in _jsonl(eval_dir / ARTICLES / "questions.jsonl") if q["doc_id"] in kept_ids]
    for name in ("stackfaq", "covidqa_qsim"):
        faqs = _jsonl(eval_dir / name / "faqs.jsonl")
        faqs = faqs[: max(1, round(len(faqs) * fraction))]
        kept = {f["faq_id"] for f in faqs}
        with open(folder / f"{name}.jsonl", "w", encoding="utf-8") as fh:
            for f in faqs:
                fh.write(json.dumps({"question": f["question"], "answer": f["answer"]}, ensure_ascii=False) + "\n")
        files += 1
        questions += [q["query"] for q in _jsonl(eval_dir / name / "queries.jsonl") if kept & set(q["faq_ids"])]
    random.Random(seed).shuffle(questions)
    return Corpus(folder, questions, files)
