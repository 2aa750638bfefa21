"""ask() with the reader against a plain torch query embedding: p50 and p99 ratios from one run.

    .venv/bin/python -m bench.reader_latency            # part of `make bench`

The corpus is xquad_en_test's articles (Markdown, one paragraph a block) and the bundled article; the
questions are xquad_en_test's. In one process, the same questions go one at a time through
`SentenceTransformer.encode` (torch, the reference: what embedding a query costs a plain pipeline) and
through `Bot.ask` (ONNX query embedding, retrieval, and the reader over the best three passages). The two
kinds alternate in blocks of 25 with a pause between blocks, so a busy spell of the machine falls on both.
Targets (issue 19): ask() p50 <= 4x and p99 <= 10x the torch embedding's. Then the reader alone, on the
fused graph ask() runs against the export's plain graph, in the same blocks: what the fusion saves.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from bench.measure import ms, timed
from bench.pipeline import RawTorch

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT.parent / "shared" / "eval"
TARGETS = {"p50": 4.0, "p99": 10.0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reader_latency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=300, help="questions timed (default 300)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)

    from qa import Bot
    from qa.evaluation import question_texts, write_corpus

    questions = question_texts(EVAL / "xquad_en_test")[: args.questions]
    with tempfile.TemporaryDirectory(prefix="qa-reader-latency-") as tmp:
        corpus = Path(tmp) / "corpus"
        write_corpus(EVAL / "xquad_en_test", corpus)
        shutil.copy(ROOT / "data" / "diaz-canel-russia-visit.txt", corpus)
        bot = Bot.build([corpus], Path(tmp) / "index").warm_up()
        raw = RawTorch()
        for q in questions[:10]:  # warm both paths
            bot.ask(q)
            raw.encode([q])
        times: dict[str, list[float]] = {"encode": [], "ask": []}
        for start in range(0, len(questions), 25):
            chunk = questions[start:start + 25]
            time.sleep(0.05)
            times["encode"] += timed(lambda q: raw.encode([q]), chunk)
            time.sleep(0.05)
            times["ask"] += timed(bot.ask, chunk)
        fused_vs_plain = reader_graphs(bot, questions)
    rows = {}
    for q in ("p50", "p99"):
        pct = int(q[1:])
        ask, encode = ms(times["ask"], pct), ms(times["encode"], pct)
        rows[q] = {"ask_ms": ask, "torch_encode_ms": encode, "ratio": ask / encode, "target": TARGETS[q],
                   "met": ask / encode <= TARGETS[q]}
        print(f"ask() {q} {ask:.1f} ms; torch query embedding {q} {encode:.1f} ms; ratio {ask / encode:.2f} "
              f"(target <= {TARGETS[q]:g}: {'met' if rows[q]['met'] else 'NOT met'})")
    print(f"the reader alone, fused graph against the plain one: p50 {fused_vs_plain['fused_p50_ms']:.1f} ms against "
          f"{fused_vs_plain['plain_p50_ms']:.1f} ms, ratio {fused_vs_plain['p50_ratio']:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"questions": len(questions), **rows, "reader_fused_vs_plain": fused_vs_plain},
                                        indent=1) + "\n", encoding="utf-8")
    return 0


def reader_graphs(bot, questions: list[str]) -> dict:
    """The reader alone over each question's candidates, on the export's fused graph (what ask() runs) and on
    its plain graph, alternating in blocks as above: the time the fusion saves."""
    from qa.answering import reader_text
    from qa.comprehension import Comprehension

    used = bot.answerer.reader
    fused, plain = (Comprehension(used.weights_dir, threads=used.threads, fused=f).warm_up() for f in (True, False))
    k = bot.answerer.settings.candidates
    reads = [(q, [reader_text(hit.passage)[0] for hit in bot.ask(q).passages[:k]]) for q in questions]
    times: dict[str, list[float]] = {"fused": [], "plain": []}
    for start in range(0, len(reads), 25):
        chunk = reads[start:start + 25]
        for name, reader in (("fused", fused), ("plain", plain)):
            time.sleep(0.05)
            times[name] += timed(lambda r: reader.read(*r), chunk)
    f, p = ms(times["fused"], 50), ms(times["plain"], 50)
    return {"fused_p50_ms": f, "plain_p50_ms": p, "p50_ratio": f / p}


if __name__ == "__main__":
    raise SystemExit(main())
