"""`make bench-scale`: the scale-out path (Milvus store, Ray embedding) beside the default one, in one run.

    .venv/bin/python -m bench.scale_out                          # every part, sizes 10000
    .venv/bin/python -m bench.scale_out --sizes 10000,100000     # also 100k passages
    .venv/bin/python -m bench.scale_out --tiny --out-dir /tmp/b  # seconds: checks that it works

Three parts, each figure printed beside its reference from the same run:

* quality: `qa eval`'s evaluate_set on every set in ../shared/eval, once with each
  set's temporary index in folders and once in Milvus Lite; Recall@1 side by side
  (target: Milvus within 0.01 of the folder store).
* ray: `qa build` of the benchmark corpus (bench/corpus.py) in one process, then
  `qa build --ray` (a local Ray, one actor per core) of the same texts, then in one
  process again; throughput (texts embedded per second of build, Ray's start
  included) against the mean of the two one-process builds, and whether the
  vectors are identical (target: Ray >= 0.85x the single-process build).
* latency: `ask()` p50/p99 over the same N passages in the folder store and in
  Milvus Lite. The N passages are copies of the benchmark corpus' passages (each copy
  in its own folder, so with its own id); copy 0 keeps its real vectors, the others
  get the real vectors plus noise of their own covariance (bench/scale.py's recipe,
  sigma 1.0), since embedding 100k passages takes hours here. Both stores get the
  identical passages, keys and vectors; the questions are the corpus' real questions,
  asked alternately of the two bots.

Writes the "Scale-out" section of docs/performance.md (between markers that
`make bench` carries over) and bench/scale_out.json.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.sections import Section

ROOT = Path(__file__).resolve().parent.parent

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench.corpus import EVAL, write_corpus  # noqa: E402
from bench.measure import machine, ms  # noqa: E402

START, END = "<!-- scale-out:start -->", "<!-- scale-out:end -->"
SECTION = Section(START, END)  # this module's section of docs/performance.md
write_section, carry_over = SECTION.write, SECTION.carry_over
R1_TOLERANCE = 0.01
RAY_TARGET = 0.85
SIGMA = 1.0
COMMAND = ".venv/bin/python -m bench.scale_out"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", default="quality,ray,latency", help="which parts to run (default: all three)")
    p.add_argument("--sets", help="comma-separated eval sets (default: every set in --eval-dir)")
    p.add_argument("--limit", type=int, help="at most this many questions per set (default: all)")
    p.add_argument("--sizes", default="10000", help="passages in the latency corpora (default 10000)")
    p.add_argument("--questions", type=int, default=300, help="questions timed per store and size (default 300)")
    p.add_argument("--tiny", action="store_true", help="small sets, sizes and corpus: checks that the bench works")
    p.add_argument("--eval-dir", type=Path, default=EVAL)
    SECTION.add_arguments(p, ROOT / "bench" / "scale_out.json")
    return p.parse_args(argv)


def say(message: str) -> None:
    print(message, flush=True)


def eval_sets(eval_dir: Path) -> list[str]:
    return sorted(p.parent.name for pattern in ("*/docs.jsonl", "*/faqs.jsonl") for p in eval_dir.glob(pattern))


def quality(embedder, eval_dir: Path, sets: list[str], db: Path, limit: int | None, on_row=None) -> list[dict]:
    """Recall@1 (and the rest of evaluate_set's figures) of each set with the folder store and Milvus Lite.

    `on_row` gets the rows so far after each set (a long run keeps what it measured if it fails later).
    """
    from qa.evaluation import evaluate_set

    rows = []
    for name in sets:
        started = time.perf_counter()
        folder = evaluate_set(eval_dir / name, embedder, [], limit=limit, out_of_scope=0)
        milvus = evaluate_set(eval_dir / name, embedder, [], limit=limit, out_of_scope=0, store=f"milvus:{db}")
        row = {"set": name, "questions": folder["questions"],
               "folder": folder["ours"], "milvus": milvus["ours"],
               "delta_recall@1": milvus["ours"]["recall@1"] - folder["ours"]["recall@1"]}
        rows.append(row)
        if on_row:
            on_row(rows)
        say(f"  {name}: {row['questions']} questions, Recall@1 folder {folder['ours']['recall@1']:.4f}, "
            f"Milvus Lite {milvus['ours']['recall@1']:.4f} (delta {row['delta_recall@1']:+.4f}); "
            f"ask p50 {folder['ours']['p50_ms']:.1f} / {milvus['ours']['p50_ms']:.1f} ms ({time.perf_counter() - started:.0f} s)")
    return rows


def ray_build(embedder, corpus: Path, tmp: Path) -> dict:
    """The same corpus built in one process, with --ray (a local Ray), and in one process again.

    The two one-process builds bracket the Ray build, so that a change in the load other jobs
    put on the cores during the run weighs on both sides alike; the reference is their mean.
    Ray's start is timed apart (`start` before the build, which then finds Ray running) and
    counted in the Ray build's time; "steady" leaves it out (actor start and model loads stay in).
    """
    from qa.indexing import build_index
    from qa.ray_embedding import start
    from qa.stores.folder import load_index

    embedder.warm_up()
    first = build_index([corpus], tmp / "local", embedder)
    began = time.perf_counter()
    ray_module, _ = start("local")
    ray_start = time.perf_counter() - began
    try:
        ray = build_index([corpus], tmp / "ray", embedder, ray="local")
    finally:
        ray_module.shutdown()
    second = build_index([corpus], tmp / "local2", embedder)
    a, b = load_index(tmp / "local"), load_index(tmp / "ray")
    va, vb = a.vectors.reconstruct_n(0, a.vectors.ntotal), b.vectors.reconstruct_n(0, b.vectors.ntotal)
    local_s = (first["build_seconds"] + second["build_seconds"]) / 2
    texts = first["embedded"]
    out = {
        "texts": texts, "keys": first["key_count"], "cpus": os.cpu_count(),
        "local_seconds": local_s, "local_runs_seconds": [first["build_seconds"], second["build_seconds"]],
        "ray_start_seconds": ray_start, "ray_build_seconds": ray["build_seconds"],
        "ray_seconds": ray_start + ray["build_seconds"],
        "identical_vectors": bool(np.array_equal(a.keys, b.keys) and np.array_equal(va, vb)),
        "max_abs_diff": float(np.abs(va - vb).max()) if va.shape == vb.shape else None,
    }
    out["local_per_s"] = texts / out["local_seconds"]
    out["ray_per_s"] = texts / out["ray_seconds"]
    out["ratio"] = out["ray_per_s"] / out["local_per_s"]
    out["steady_ratio"] = out["local_seconds"] / out["ray_build_seconds"]
    say(f"  build of {texts:,} texts: one process {first['build_seconds']:.1f} s and {second['build_seconds']:.1f} s "
        f"({out['local_per_s']:.0f}/s), --ray {ray_start:.1f} s start + {ray['build_seconds']:.1f} s "
        f"({out['ray_per_s']:.0f}/s) = {out['ratio']:.2f}x ({out['steady_ratio']:.2f}x without the start); "
        f"vectors identical: {out['identical_vectors']}")
    return out


def rss_mb() -> float:
    """This process' resident memory now, in MiB."""
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:")) / 1024


def replicate(base, n: int, seed: int = 0):
    """`n` passages made of copies of `base`'s (a loaded folder index), with their keys and vectors.

    Copy c lives in folder copyNNN/ (so its passages have ids of their own); copy 0 keeps
    the real vectors, the others get bench/scale.py's noise (sigma SIGMA).
    """
    real = base.vectors.reconstruct_n(0, base.vectors.ntotal)
    centred = real - real.mean(axis=0)
    shape = np.linalg.cholesky(centred.T @ centred / max(len(real) - 1, 1) + 1e-6 * np.eye(real.shape[1])).astype(np.float32)
    rng = np.random.default_rng(seed)
    size = len(base.passages)
    passages, keys, vectors = [], [], []
    for copy in range((n + size - 1) // size):
        take = min(size, n - copy * size)
        for p in base.passages[:take]:
            passages.append(replace(p, id=f"copy{copy:03d}/{p.id}", path=f"copy{copy:03d}/{p.path}"))
        mask = base.keys[:, 0] < take
        k = base.keys[mask].copy()
        k[:, 0] += copy * size
        v = real[mask]
        if copy:
            v = v + SIGMA * (rng.standard_normal(v.shape, dtype=np.float32) @ shape.T)
            v /= np.linalg.norm(v, axis=1, keepdims=True)
        keys.append(k)
        vectors.append(v.astype(np.float32))
    return passages, np.vstack(keys), np.vstack(vectors)


def write_stores(base, n: int, tmp: Path, db: Path) -> tuple[Path, str, dict]:
    """The N-passage corpus written to an index folder and to Milvus Lite; (folder, Milvus index name, timings)."""
    from qa.keys import lexical_text
    from qa.lexical import LexicalIndex
    from qa.stores import collection_name
    from qa.stores.folder import build_lock, describe_vector_index, make_vector_index, write_build
    from qa.stores.milvus import MilvusStore

    passages, keys, vectors = replicate(base, n)
    manifest = {**{k: v for k, v in base.manifest.items() if k not in ("checksums", "build_id", "manifest_sha256")},
                "passage_count": len(passages), "key_count": int(len(keys)),
                "faq_count": sum(p.kind == "faq" for p in passages),
                "paragraph_count": sum(p.kind == "paragraph" for p in passages)}
    folder, name = tmp / f"folder_{n}", f"scale_{n}"
    started = time.perf_counter()
    index = make_vector_index(vectors)
    manifest_f = {**manifest, "vector_index": type(index).__name__, "vector_index_params": describe_vector_index(index)}
    with build_lock(folder, 0):
        write_build(folder, manifest_f, passages, keys, index, LexicalIndex.fit([lexical_text(p) for p in passages]))
    folder_s = time.perf_counter() - started
    started = time.perf_counter()
    MilvusStore(str(db), collection_name(name)).write_arrays(
        {**manifest, "vector_index": "milvus", "vector_index_params": {}}, passages, keys, vectors)
    milvus_s = time.perf_counter() - started
    return folder, name, {"keys": int(len(keys)), "folder_write_s": folder_s, "milvus_write_s": milvus_s}


def latency(embedder, base, sizes: list[int], questions: list[str], tmp: Path, db: Path) -> list[dict]:
    """ask() p50/p99 at each size in the folder store and in Milvus Lite, the questions asked alternately."""
    from qa import Bot

    rows = []
    for n in sizes:
        folder, name, row = write_stores(base, n, tmp, db)
        bots = {}
        for store, where in (("folder", folder), ("milvus", name)):
            gc.collect()
            rss, started = rss_mb(), time.perf_counter()
            bots[store] = Bot(where, store="folder" if store == "folder" else f"milvus:{db}", embedder=embedder).warm_up()
            row[f"{store}_load_s"] = time.perf_counter() - started
            row[f"{store}_load_rss_mb"] = rss_mb() - rss  # what this bot holds in the asking process
            bots[store].ask(questions[0])
        times: dict[str, list[float]] = {"folder": [], "milvus": []}
        same = 0
        for q in questions:
            answers = {}
            for store, bot in bots.items():
                started = time.perf_counter()
                answers[store] = bot.ask(q)
                times[store].append(time.perf_counter() - started)
            same += answers["folder"] == answers["milvus"]  # Answer equality leaves out the per-answer answer_id
        for store in bots:
            row[f"{store}_p50_ms"], row[f"{store}_p99_ms"] = ms(times[store], 50), ms(times[store], 99)
        cache = bots["milvus"].index.cache  # key vectors served without a Milvus call, warm-up question included
        row["milvus_cache_hit_rate"] = cache.hits / max(1, cache.hits + cache.misses)
        row.update(passages=n, questions=len(questions), same_answers=same / len(questions),
                   p50_ratio=row["milvus_p50_ms"] / row["folder_p50_ms"], p99_ratio=row["milvus_p99_ms"] / row["folder_p99_ms"])
        rows.append(row)
        say(f"  {n:,} passages ({row['keys']:,} vectors): ask p50 / p99 folder {row['folder_p50_ms']:.1f} / "
            f"{row['folder_p99_ms']:.1f} ms, Milvus Lite {row['milvus_p50_ms']:.1f} / {row['milvus_p99_ms']:.1f} ms "
            f"({row['p50_ratio']:.2f}x / {row['p99_ratio']:.2f}x); same answers {row['same_answers']:.3f}; "
            f"key vectors from the cache {row['milvus_cache_hit_rate']:.2f}; "
            f"written in {row['folder_write_s']:.0f} / {row['milvus_write_s']:.0f} s, loaded in "
            f"{row['folder_load_s']:.1f} / {row['milvus_load_s']:.1f} s")
    return rows


def section(results: dict) -> str:
    """The "Scale-out" section of docs/performance.md, from this run's results."""
    m = results["machine"]
    lines = [START, "## Scale-out (Milvus store, Ray embedding)", "",
             f"Measured by `{results['command']}` on {m.get('cores', '?')} cores ({m.get('cpu', '')}), "
             f"{results['date']}, in {results['minutes']:.0f} min; other jobs shared the cores (load average "
             f"{results['load_before']}) when it started. pymilvus {results['versions']['pymilvus']} with Milvus Lite "
             f"{results['versions'].get('milvus_lite', '?')}, Ray {results['versions']['ray']}. Figures from `bench/scale_out.json`.", ""]
    if results.get("quality"):
        lines += ["### Recall@1: Milvus Lite against the folder store (`qa eval --store`)", "",
                  "Each set's temporary index built in each store by `evaluate_set` (as `qa eval SET --store milvus:X.db` "
                  f"does); every answerable question; target: within {R1_TOLERANCE} of the folder store.", "",
                  "| set | questions | folder R@1 | Milvus Lite R@1 | delta | folder ask p50 / p99 | Milvus ask p50 / p99 | met |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in results["quality"]:
            f, q = r["folder"], r["milvus"]
            lines.append(f"| {r['set']} | {r['questions']} | {f['recall@1']:.4f} | {q['recall@1']:.4f} | {r['delta_recall@1']:+.4f} | "
                         f"{_latency(f)} | {_latency(q)} | "
                         f"{'yes' if abs(r['delta_recall@1']) <= R1_TOLERANCE else '**no**'} |")
        lines.append("")
    if results.get("ray"):
        r = results["ray"]
        met = "met" if r["ratio"] >= RAY_TARGET else "**missed**"
        runs = " and ".join(f"{x:.1f}" for x in r.get("local_runs_seconds", [r["local_seconds"]]))
        lines += ["### `qa build --ray` on one machine", "",
                  f"The benchmark corpus (bench/corpus.py: {r['keys']:,} keys, {r['texts']:,} distinct texts) built by "
                  f"`build_index` in one process, then with `ray=\"local\"` (a Ray started for the build, one actor per "
                  f"core with one model thread each, {r['cpus']} cores), then in one process again; the one-process figure "
                  "is the mean of the two builds around the Ray one. Throughput is distinct texts embedded per second "
                  "of the whole build; the Ray build's time includes starting Ray.", "",
                  "| build | seconds | texts/s | ratio | vectors |", "|---|---|---|---|---|",
                  f"| one process | {r['local_seconds']:.1f} ({runs}) | {r['local_per_s']:.1f} | 1.00 | |",
                  f"| `--ray` (local), Ray's start included | {r['ray_seconds']:.1f} | {r['ray_per_s']:.1f} | "
                  f"{r['ratio']:.2f} ({met}; target ≥ {RAY_TARGET}) | "
                  f"{'identical' if r['identical_vectors'] else 'differ, max abs ' + format(r['max_abs_diff'], '.2e')} |"]
        if "ray_start_seconds" in r:
            lines.append(f"| `--ray`, without Ray's start ({r['ray_start_seconds']:.1f} s) | {r['ray_build_seconds']:.1f} | "
                         f"{r['texts'] / r['ray_build_seconds']:.1f} | {r['steady_ratio']:.2f} | |")
        lines.append("")
    if results.get("latency"):
        lines += ["### `ask()` latency: Milvus Lite against the folder store", "",
                  f"The same N passages, keys and vectors in both stores (copies of the benchmark corpus; copy 0 with its real "
                  f"vectors, the others with bench/scale.py's noise, sigma {SIGMA}); {results['latency'][0]['questions']} real "
                  "questions asked alternately of the two bots, after one warm-up question each.", "",
                  "| passages | vectors | folder p50 / p99 | Milvus Lite p50 / p99 | ratio p50 / p99 | same answers | key vectors from the cache | write folder / Milvus | load folder / Milvus | RSS of the loaded bot, folder / Milvus |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in results["latency"]:
            lines.append(f"| {r['passages']:,} | {r['keys']:,} | {r['folder_p50_ms']:.1f} / {r['folder_p99_ms']:.1f} ms | "
                         f"{r['milvus_p50_ms']:.1f} / {r['milvus_p99_ms']:.1f} ms | {r['p50_ratio']:.2f} / {r['p99_ratio']:.2f} | "
                         f"{r['same_answers']:.3f} | {_share(r.get('milvus_cache_hit_rate'))} | "
                         f"{r['folder_write_s']:.0f} / {r['milvus_write_s']:.0f} s | "
                         f"{r['folder_load_s']:.1f} / {r['milvus_load_s']:.1f} s | {_mib(r, 'folder')} / {_mib(r, 'milvus')} |")
        lines.append("")
    lines += results.get("notes", [])
    lines.append(END)
    return "\n".join(lines) + "\n"


def _latency(figures: dict) -> str:
    p99 = figures.get("p99_ms")
    return f"{figures['p50_ms']:.1f} / " + ("—" if p99 is None else f"{p99:.1f}") + " ms"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _mib(row: dict, store: str) -> str:
    value = row.get(f"{store}_load_rss_mb")
    return "—" if value is None else f"{value:,.0f} MiB"


def merge(path: Path, results: dict) -> dict:
    """This run's parts over those of an earlier run kept in `path` (a run of one part keeps the others)."""
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        for part in ("quality", "ray", "latency"):
            if not results.get(part) and old.get(part):
                results[part] = old[part]
                results.setdefault("notes", []).append(f"The {part} figures are from an earlier run ({old['date']}).")
        # A quality run over some sets keeps the other sets' rows of the earlier run.
        measured = {row["set"] for row in results.get("quality") or []}
        kept = [row for row in old.get("quality") or [] if row["set"] not in measured]
        if measured and kept:
            results["quality"] = [*results["quality"], *kept]
            results.setdefault("notes", []).append(
                f"The Recall@1 rows of {', '.join(r['set'] for r in kept)} are from an earlier run ({old['date']}).")
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.rewrite:
        write_section(args.out_dir / "performance.md", section(json.loads(args.results.read_text(encoding="utf-8"))))
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("bm25s", "sentence_transformers", "transformers", "ray", "pymilvus", "grpc._server", "qa.indexing"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    import pymilvus
    import ray as ray_module

    from qa.embedding import Embedder

    parts = set(args.parts.split(","))
    started = time.perf_counter()
    load = os.getloadavg()[0]
    sets = args.sets.split(",") if args.sets else eval_sets(args.eval_dir)
    limit, sizes, nq = args.limit, [int(s) for s in args.sizes.split(",")], args.questions
    if args.tiny:
        sets, limit, sizes, nq = (args.sets.split(",") if args.sets else ["covidqa_qsim"]), limit or 40, [300, 700], min(nq, 20)
    embedder = Embedder()
    given = sys.argv[1:] if argv is None else argv
    results: dict = {"command": " ".join([COMMAND, *given]), "machine": machine(),
                     "date": time.strftime("%Y-%m-%d"), "load_before": f"{load:.1f}",
                     "versions": {"pymilvus": pymilvus.__version__, "milvus_lite": importlib.metadata.version("milvus_lite"),
                                  "ray": ray_module.__version__}}
    with tempfile.TemporaryDirectory(prefix="qa-scale-out-") as tmp_name:
        tmp = Path(tmp_name)
        db = tmp / "bench.db"
        if "quality" in parts:
            say(f"quality: {len(sets)} sets, folder store and Milvus Lite")
            def keep(rows: list[dict]) -> None:
                # Beside the results, not over them: the end of the run merges with the earlier results.
                partial = args.results.with_suffix(".partial.json")
                partial.parent.mkdir(parents=True, exist_ok=True)
                partial.write_text(json.dumps({**results, "quality": rows, "minutes": 0}, indent=2, default=float) + "\n")

            results["quality"] = quality(embedder, args.eval_dir, sets, db, limit, keep)
        if "ray" in parts or "latency" in parts:
            corpus = write_corpus(tmp / "corpus", args.eval_dir, fraction=0.05 if args.tiny else 1.0)
            say(f"ray: {corpus.files} files")
            results["ray"] = ray_build(embedder, corpus.folder, tmp) if "ray" in parts else None
            if "latency" in parts:
                from qa.indexing import build_index
                from qa.stores.folder import load_index

                if not (tmp / "local").exists():
                    build_index([corpus.folder], tmp / "local", embedder)
                say(f"latency: {', '.join(f'{n:,}' for n in sizes)} passages")
                results["latency"] = latency(embedder, load_index(tmp / "local"), sizes, corpus.questions[:nq], tmp, db)
    results["minutes"] = (time.perf_counter() - started) / 60
    results = merge(args.results, results)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2, default=float) + "\n", encoding="utf-8")
    write_section(args.out_dir / "performance.md", section(results))
    say(f"took {results['minutes']:.1f} min; wrote {args.results} and the Scale-out section of {args.out_dir / 'performance.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
