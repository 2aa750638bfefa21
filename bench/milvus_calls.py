"""Where a Milvus Lite `ask()` spends its time: each Milvus call timed inside real questions.

    .venv/bin/python -m bench.milvus_calls [SET] [--questions 100]
    .venv/bin/python -m bench.milvus_calls --passages 10000   # the benchmark corpus, replicated

Builds SET (default covidqa_qsim from ../shared/eval) into a Milvus Lite file and into a folder
(or, with --passages N, N passages made as bench/scale_out.py's latency part makes them, with
the benchmark corpus' questions), asks both bots the same questions, and prints the ask() p50 of
each store and, for Milvus,
the mean milliseconds per question spent in each client call (dense search, BM25 search, `get`
of the candidates' key vectors not in the loaded build's cache) with the number of vectors
fetched and the share of key vectors the cache served.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench.corpus import EVAL  # noqa: E402
from bench.measure import ms  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("set", nargs="?", default="covidqa_qsim")
    p.add_argument("--questions", type=int, default=100)
    p.add_argument("--eval-dir", type=Path, default=EVAL)
    p.add_argument("--passages", type=int, help="N passages of the replicated benchmark corpus instead of SET")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    for noisy in ("grpc._server", "qa", "pymilvus"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)

    from qa import Bot
    from qa.embedding import Embedder
    from qa.evaluation import question_texts, write_corpus

    embedder = Embedder()
    with tempfile.TemporaryDirectory(prefix="qa-milvus-calls-") as tmp:
        db = Path(tmp) / "calls.db"
        if args.passages:
            from bench.corpus import write_corpus as write_bench_corpus
            from bench.scale_out import write_stores
            from qa.indexing import build_index
            from qa.stores.folder import load_index

            corpus = write_bench_corpus(Path(tmp) / "corpus", args.eval_dir)
            build_index([corpus.folder], Path(tmp) / "base", embedder)
            index, name, _ = write_stores(load_index(Path(tmp) / "base"), args.passages, Path(tmp), db)
            questions = corpus.questions[: args.questions]
            milvus = Bot(name, store=f"milvus:{db}", embedder=embedder).warm_up()
            folder = Bot(index, embedder=embedder).warm_up()
        else:
            questions = question_texts(args.eval_dir / args.set)[: args.questions]
            write_corpus(args.eval_dir / args.set, Path(tmp) / "corpus")
            milvus = Bot.build([Path(tmp) / "corpus"], "calls", embedder=embedder, store=f"milvus:{db}").warm_up()
            folder = Bot.build([Path(tmp) / "corpus"], Path(tmp) / "index", embedder=embedder).warm_up()
        client = milvus.index.client
        spent: dict[str, list[float]] = defaultdict(list)
        fetched: list[int] = []
        for name in ("search", "get"):
            original = getattr(client, name)

            def timed(*a, _original=original, _name=name, **kw):
                started = time.perf_counter()
                out = _original(*a, **kw)
                label = f"search {kw.get('anns_field')}" if _name == "search" else "get key vectors"
                spent[label].append(time.perf_counter() - started)
                if _name == "get":
                    fetched.append(len(kw["ids"]))
                return out

            setattr(client, name, timed)
        milvus.ask(questions[0])
        folder.ask(questions[0])
        spent.clear()
        fetched.clear()
        milvus.index.cache.hits = milvus.index.cache.misses = 0
        times: dict[str, list[float]] = {"folder": [], "milvus": []}
        for q in questions:
            for label, bot in (("folder", folder), ("milvus", milvus)):
                started = time.perf_counter()
                bot.ask(q)
                times[label].append(time.perf_counter() - started)
    n = len(questions)
    label = f"benchmark corpus, {args.passages} passages" if args.passages else args.set
    out = {"set": label, "questions": n, "load_average": round(os.getloadavg()[0], 1),
           "folder_p50_ms": ms(times["folder"], 50), "milvus_p50_ms": ms(times["milvus"], 50),
           "calls_ms_per_question": {k: 1000 * sum(v) / n for k, v in spent.items()},
           "vectors_fetched_per_question": sum(fetched) / n,
           "cache_hit_rate": round(milvus.index.cache.hits / max(1, milvus.index.cache.hits + milvus.index.cache.misses), 3)}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
