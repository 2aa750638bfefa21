"""`make bench`, incremental builds: one changed file in a large corpus, updated against built in full.

    .venv/bin/python -m bench.incremental                    # 10,000 passages (~15 min on 2 shared cores)
    .venv/bin/python -m bench.incremental --passages 100000  # the issue's scale (hours: the full build embeds it all)
    .venv/bin/python -m bench.incremental --tiny             # seconds: checks that it works

Generates a corpus of Markdown articles (bench/textgen.py: a bigram chain over real
Wikipedia paragraphs), builds it in full with `qa build` (embedding included), changes
one file (one paragraph edited, one added), then runs `qa build` again on the same index
folder, which updates it (qa/incremental.py). Each build is its own `qa build` process,
so both times include starting Python and loading the model. Identity: the updated index
and a `qa build --full` of the new corpus (into a copy of the first index; `--full`
ignores it and embeds every text again) answer a fixed question set (real XQuAD and
SQuAD questions); their top-10 passages must be the same.

Writes bench/incremental.json and the "Incremental builds" section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.sections import Section, load_note

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- incremental:start -->", "<!-- incremental:end -->"
SECTION = Section(START, END)  # this module's section of docs/performance.md
write_section, carry_over = SECTION.write, SECTION.carry_over
TARGET = 0.05
PARAGRAPHS_PER_FILE = 20
# The largest corpus whose full build fits in about 15 minutes on 2 shared cores (docs/performance.md).
DEFAULT_PASSAGES = 10_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--passages", type=int, default=DEFAULT_PASSAGES, help=f"passages in the corpus (default {DEFAULT_PASSAGES})")
    p.add_argument("--questions", type=int, default=200, help="questions compared for identity (default 200)")
    p.add_argument("--tiny", action="store_true", help="200 passages, 20 questions: checks that the bench works")
    SECTION.add_arguments(p, ROOT / "bench" / "incremental.json")
    return p.parse_args(argv)


def say(message: str) -> None:
    print(message, flush=True)


def write_corpus(folder: Path, passages: int, seed: int = 0) -> int:
    """`passages` paragraphs in Markdown files of PARAGRAPHS_PER_FILE each; returns the file count."""
    from bench.textgen import TextGenerator

    folder.mkdir(parents=True, exist_ok=True)
    gen = TextGenerator(seed=seed)
    files = 0
    for start in range(0, passages, PARAGRAPHS_PER_FILE):
        (folder / f"article-{files:05d}.md").write_text(gen.document(min(PARAGRAPHS_PER_FILE, passages - start)),
                                                        encoding="utf-8")
        files += 1
    return files


def change_one_file(folder: Path) -> str:
    """Edit one paragraph of one file in the middle of the corpus and add one; returns the file's name."""
    from bench.textgen import TextGenerator

    files = sorted(folder.glob("*.md"))
    path = files[len(files) // 2]
    gen = TextGenerator(seed=99)
    paragraphs = path.read_text(encoding="utf-8").rstrip("\n").split("\n\n")
    paragraphs[len(paragraphs) // 2] = gen.paragraph()
    paragraphs.append(gen.paragraph())
    path.write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    return path.name


def qa_build(corpus: Path, index: Path, *extra: str) -> tuple[float, dict]:
    """`qa build CORPUS --index INDEX` in its own process: (wall seconds, the new manifest)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "qa.cli", "build", str(corpus), "--index", str(index), "-q", *extra],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if out.returncode:
        raise SystemExit(f"qa build failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
    say("    " + out.stdout.strip().replace("\n", "\n    "))
    return seconds, json.loads((index / "manifest.json").read_text(encoding="utf-8"))


def questions(n: int) -> list[str]:
    """Real questions about the articles the text was generated from: SQuAD 2's and XQuAD's test folds, alternately."""
    from bench.corpus import EVAL, SQUAD_TEST_FOLDS

    sets = []
    for name in SQUAD_TEST_FOLDS:
        with open(EVAL / name / "questions.jsonl", encoding="utf-8") as fh:
            sets.append([json.loads(line)["question"] for _, line in zip(range(n), fh)])
    return [q for pair in zip(*sets) for q in pair][:n]


def top10(index: Path, asked: list[str], embedder) -> list[list[str]]:
    from qa import Bot

    bot = Bot(index, embedder=embedder)
    return [[h.passage.id for h in bot.ask(q, k=10).passages] for q in asked]


def measure(args) -> dict:
    from qa.embedding import Embedder

    passages = 200 if args.tiny else args.passages
    asked = questions(20 if args.tiny else args.questions)
    with tempfile.TemporaryDirectory(prefix="qa-incremental-") as tmp:
        tmp = Path(tmp)
        corpus, index, full, exact = tmp / "corpus", tmp / "index", tmp / "full", tmp / "exact"
        files = write_corpus(corpus, passages)
        say(f"  corpus: {passages:,} passages in {files:,} files; full build ...")
        full_s, first = qa_build(corpus, index)
        shutil.copytree(index, full)
        shutil.copytree(index, exact)
        changed = change_one_file(corpus)
        say(f"  changed {changed}; update ...")
        update_s, updated = qa_build(corpus, index)
        say("  the same corpus with qa build --full (embedding every text again) ...")
        rebuild_s, rebuilt = qa_build(corpus, full, "--full")
        say("  and with exact search (--vector-index flat), the reference for both ...")
        qa_build(corpus, exact, "--full", "--vector-index", "flat")
        embedder = Embedder()
        a, b, c = (top10(folder, asked, embedder) for folder in (index, full, exact))
        same = sum(x == y for x, y in zip(a, b))
    from bench.measure import machine

    return {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "load_average": os.getloadavg(),
        "command": ".venv/bin/python -m bench.incremental" + (" --tiny" if args.tiny else
                                                              "" if passages == DEFAULT_PASSAGES else f" --passages {passages}"),
        "passages": first["passage_count"],
        "files": files,
        "keys": first["key_count"],
        "vector_index": first["vector_index"],
        "full_seconds": round(full_s, 2),
        "full_build_seconds": first["build_seconds"],
        "update_seconds": round(update_s, 2),
        "update_build_seconds": updated["build_seconds"],
        "ratio": round(update_s / full_s, 4),
        "rebuild_seconds": round(rebuild_s, 2),
        "update": updated["update"],
        "files_changed": updated["files"],
        "embedded_by_update": updated["embedded"],
        "questions": len(asked),
        "same_top10": same,
        "update_same_as_exact": sum(x == z for x, z in zip(a, c)),
        "full_same_as_exact": sum(y == z for y, z in zip(b, c)),
        "rebuild_mode": rebuilt["update"]["mode"],
    }


def section(r: dict) -> str:
    """The "Incremental builds" section of docs/performance.md, from one run's results."""
    met = "met" if r["ratio"] <= TARGET else "**missed**"
    scale_note = ("" if r["passages"] >= 100_000 else
                  f" The issue's scale is 100,000 passages; a full build of that many embeds ~{r['keys'] / r['passages'] * 100_000:,.0f} "
                  f"keys, hours on these 2 cores, and was not measured: this run used {r['passages']:,} passages "
                  f"(`--passages` sets it) and took {r.get('minutes', 0):.1f} min in all.")
    return f"""{START}
## Incremental builds (one changed file)

Measured by `{r['command']}` \
(part of `make bench`) on {r['machine'].get('cpu', 'this machine') if isinstance(r['machine'], dict) else r['machine']}, {r['date']}; \
{load_note(r['load_average'][0])}. Figures from `bench/incremental.json`.

A corpus of {r['passages']:,} generated paragraphs ({r['files']:,} Markdown files, {r['keys']:,} keys, {r['vector_index']}) \
is built with `qa build`; then one file changes (one paragraph edited, one added) and `qa build` runs again on the same \
index, which updates it (qa/incremental.py). Both are whole `qa build` processes, embedding and model loading included.{scale_note}

| build | seconds | texts embedded |
|---|---|---|
| full build | {r['full_seconds']:.1f} | all |
| update after one changed file | {r['update_seconds']:.1f} | {r['embedded_by_update']} |
| `qa build --full` of the changed corpus (every text embedded again, both indexes rebuilt) | {r['rebuild_seconds']:.1f} | all |

Update ÷ full build: **{r['ratio']:.4f}** (target ≤ {TARGET}: {met} at {r['passages']:,} passages). \
The update reported files {', '.join(f"{v} {k}" for k, v in r['files_changed'].items())}; \
vector index {r['update']['vector_index']}, {r['update']['removed_vectors']} removed vectors left in the graph. \
Top-10 passages identical to the `--full` build for {r['same_top10']} of {r['questions']} questions (real XQuAD and \
SQuAD 2 questions).{hnsw_note(r)}
{END}
"""


def hnsw_note(r: dict) -> str:
    """Why an updated HNSW index can differ from a full build, with both measured against exact search."""
    if r["vector_index"] != "IndexHNSWFlat" or "update_same_as_exact" not in r:
        return ""
    return (f" An HNSW graph depends on the order its vectors were added in, so a full build of the changed corpus "
            f"is a different graph from the updated one, and each finds slightly different dense candidates; "
            f"against exact search (the same corpus built with `--vector-index flat`) the updated index has the same "
            f"top 10 for {r['update_same_as_exact']} questions and the full build for {r['full_same_as_exact']}. "
            "With a flat index (up to 20,000 keys) an update's top 10 equal a full build's "
            "(`tests/test_incremental.py`).")


def main(argv: list[str] | None = None) -> int:
    return SECTION.main(
        parse_args(argv), "incremental builds:", measure, section,
        lambda r: f"  update / full build = {r['ratio']:.4f} (target <= {TARGET}); top-10 identical for "
                  f"{r['same_top10']} of {r['questions']} questions; took {r['minutes']} min")


if __name__ == "__main__":
    sys.exit(main())
