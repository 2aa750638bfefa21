"""docs/performance.md, written by `make bench` from the figures of that run only."""

from __future__ import annotations

from . import report


def _mib(b: float) -> str:
    return f"{b / 2**20:,.0f} MiB"


def _gaps(gaps: list) -> str:
    known = [g for g in gaps if g is not None]
    if not gaps:
        return "— (none differ)"
    return f"{max(known):.1e}" if known else "unknown"


def why_not_met(results: dict, failed: list) -> list[str]:
    """One explanation per missed target, from this run's own measurements."""
    d = results["details"]
    ask, batch, identity = d["ask"], d["batch"], d["identity"]
    notes = []
    names = {f.name for f in failed}
    if "ask_p50" in names or "ask_p99" in names:
        notes.append(
            f"**ask() p50 and p99.** Embedding the question with ONNX Runtime took {ask['embed_p50_ms']:.2f} ms "
            f"({ask['embed_p50_ms'] / ask['raw_torch_encode_p50_ms']:.2f} of torch's encode); retrieval and the answer, "
            f"timed alone, {ask['retrieve_answer_p50_ms']:.2f} ms at p50 and {ask['retrieve_answer_p99_ms']:.2f} ms at p99. "
            "That part is mostly the reader (issue 19): a six-layer cross-encoder over windows of up to 192 tokens of "
            "the best passage, and of the next two when the outcome needs them (a \"did you mean…?\", a close rival), "
            "which is the p99. It runs exact fp32 on ONNX Runtime's fused graph; int8 is faster but changes more than "
            "1 % of the decisions (`python -m bench.reader_int8`), so it is not the default. docs/reader.md, \"Cost at "
            "ask()\", has `python -m bench.reader_latency`'s runs and what brought the ratio down."
        )
    if "batch_throughput" in names:
        per_q = 1000.0 / batch["batch_qps"]
        embed_share = ask["embed_p50_ms"] / ask["ask_p50_ms"]
        notes.append(
            f"**Batch.** ask_many() answered {batch['batch_qps']:.1f} questions/s ({per_q:.1f} ms each) against "
            f"{batch['sequential_qps']:.1f}/s for ask() in a loop. It embeds the questions in batches "
            f"({batch['embed_only_qps']:.0f}/s alone) and searches them together, but reads each question's passages "
            f"as ask() does, and the reading is most of the time: embedding is {embed_share:.0%} of ask()'s p50 here, "
            "about the share that batching it can save. A lone window already keeps both cores busy, so reading "
            "several questions' windows in one batch would make the same arithmetic a little more efficient, not "
            "spread it over idle cores. Reaching 3x would take a reader several times cheaper than the exact one; the "
            "int8 one is not three times faster either, and it keeps fewer than 99 % of the decisions "
            "(`python -m bench.reader_int8`)."
            + (f" On the torch path ask_many() gave {batch['torch_batch_qps']:.1f} against "
               f"{batch['torch_sequential_qps']:.1f} questions/s." if batch.get("torch_batch_qps") else "")
        )
    if "top10_identical" in names or "answers_identical" in names:
        gaps = [g for g in identity["score_gaps_of_differing"] if g is not None]
        notes.append(
            f"**Identity.** {identity['differing']} of {identity['questions']} questions had another top-10 order than "
            f"the torch path; in each, the passages that swapped places scored within "
            f"{max(gaps) if gaps else float('nan'):.1e} of each other: ties at float32 resolution, decided by "
            "rounding (ONNX Runtime and torch sum in different orders; vectors agree to ~2e-7). The eval figures "
            "below are unchanged."
        )
    return notes


def performance_md(results: dict, figures: list, args) -> str:
    """The performance report: machine, commands, the table of figures, the scale table and the plot."""
    m = results["machine"]
    d = results["details"]
    build, ask, batch, fresh, identity = d["build"], d["ask"], d["batch"], d["fresh_process"], d["identity"]
    met = sum(f.met is True for f in figures)
    targets = sum(f.met is not None for f in figures)
    failed = [f for f in figures if f.met is False]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    lines = [
        "# Performance",
        "",
        f"Written by `make bench` on {results['generated_at']} in {results['duration_s'] / 60:.1f} minutes; every figure "
        "below comes from that one run, each measured beside its reference (same texts, same questions, one after the "
        "other), so the ratios hold even when the machine is busy. Machine-readable: `bench/results.json`.",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB RAM, no GPU",
        f"- {m['platform']}, Python {m['python']}",
        f"- {versions}",
        f"- OPENBLAS_CORETYPE={m['openblas'].get('OPENBLAS_CORETYPE')}, OPENBLAS_L2_SIZE={m['openblas'].get('OPENBLAS_L2_SIZE')} "
        "(as set on this machine; left as is, since FAISS' bundled OpenBLAS 0.3.15 picks a generic kernel without it)",
        f"- load average (1 min) when the run started: {m['load_average_at_start']:.2f}, when it ended: "
        f"{m.get('load_average_at_end', float('nan')):.2f} (2 cores; other work on the machine slows both sides of a ratio)",
        "",
        "## Commands",
        "",
        "```sh",
        "make bench                      # = .venv/bin/python -m bench.run" + (f" {' '.join(results['argv'])}" if results["argv"] else ""),
        "qa build CORPUS --index DIR -q  # timed as a fresh process, end to end (CORPUS: what bench/corpus.py writes)",
        "qa ask QUESTION --index DIR     # timed from process start to exit, QA_BACKEND=onnx and =torch",
        "```",
        "",
        f"## Summary: {met} of {targets} targets met",
        "",
        "| figure | value | reference (same run) | ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for row in report.table_rows(figures):
        lines.append("| " + " | ".join(row) + " |")
    if failed:
        lines += ["", "Targets not met: " + "; ".join(f"{f.label} ({f.target_text})" for f in failed) + ". Why:", ""]
        lines += [f"- {n}" for n in why_not_met(results, failed)]
    lines += [
        "",
        "## What was measured",
        "",
        f"- **Corpus**: the articles of `xquad_en_test` (Markdown, one paragraph a block) and the FAQ pairs of `stackfaq` and "
        f"`covidqa_qsim` (JSONL) from `../shared/eval`: {build['passages']:,} passages, {build['texts']:,} embedded texts "
        "(each paragraph and its sentences, each FAQ question and answer). Questions: the sets' own real questions.",
        f"- **Build**: `qa build` as a fresh process ({build['build_wall_s']:.1f} s wall, {build['build_inprocess_s']:.1f} s "
        f"inside build_index, embedding backend `{build['embedding_backend']}`, index `{build['vector_index']}`"
        + (f"; it embedded each distinct text once: {build['distinct_texts_embedded']:,} of {build['texts']:,}"
           if build.get("distinct_texts_embedded") is not None else "")
        + ") against "
        f"`SentenceTransformer.encode(texts, batch_size=32)` on the same {build['texts']:,} texts with the model already "
        f"loaded ({build['raw_encode_s']:.1f} s). The one-time ONNX export (with its check against torch) "
        + (f"took {d['onnx_export_s']:.1f} s and " if d["onnx_export_s"] is not None else "")
        + "is not in the build figure: it happens once per machine and model (cached in ~/.cache/qa/onnx).",
        f"- **ask()**: {ask['questions']} questions, warm, one at a time, `Bot.ask(q)` on the ONNX index, and raw torch "
        "`encode([q])` of the same questions, in alternating blocks of 25 (each call follows one of its own kind). Of the ask() p50, embedding the question took "
        f"{ask['embed_p50_ms']:.2f} ms and retrieval plus the answer, the reader's reading included, {ask['retrieve_answer_p50_ms']:.2f} ms "
        f"(p99 {ask['retrieve_answer_p99_ms']:.2f} ms). The torch path's ask() p50 was {ask['torch_ask_p50_ms']:.2f} ms.",
        f"- **Batch**: `Bot.ask_many(questions)` against a loop of `Bot.ask` over the same {batch['questions']} questions "
        f"(median of 3 rounds each), and `Bot.embedder.encode(questions, batch_size=64)` alone (ask_many's first "
        "step, as it runs inside ask_many)"
        + ("; the same questions embedded alone in other arrangements: "
           + "; ".join(f"{label}: {qps:.0f}/s" for label, qps in batch["embed_arrangements"].items())
           if batch.get("embed_arrangements") else "")
        + ". On the torch path the two figures were "
        f"{batch['torch_batch_qps']:.1f} and "
        f"{batch['torch_sequential_qps']:.1f} questions/s ({batch['torch_batch_qps'] / batch['torch_sequential_qps']:.2f}x).",
        f"- **Identity with torch**: the torch path is an index built from raw torch vectors of the same texts and questions "
        f"embedded by torch; the ONNX path is `qa build`'s index and ONNX query vectors. Over {identity['questions']} "
        f"questions (all XQuAD questions and a share of the FAQ ones) the top-10 passages were identical in order for "
        f"{identity['same_top10_order']:.2%} and as sets for {identity['same_top10_set']:.2%}; the answers were identical "
        f"for {identity['same_answer']:.2%}. Where the order differed, the two passages that swapped places scored "
        f"within {_gaps(identity['score_gaps_of_differing'])} of each other. The torch path against itself (questions "
        f"embedded one at a time instead of in batches of 64, which changes only floating-point rounding) kept the "
        f"same order for {identity['torch_self_same_top10_order']:.2%} ({identity['torch_self_differing']} questions "
        f"differ, score gaps {_gaps(identity['torch_self_score_gaps_of_differing'])}).",
        "- **Threads for one question** (ONNX Runtime, the same question through a 1-thread and a 2-thread session, "
        "alternately; 'busy': beside one process spinning on a core): "
        + "; ".join(f"{label}: 1 thread p50 {r['1_thread_p50_ms']:.2f} / p99 {r['1_thread_p99_ms']:.2f} ms, "
                    f"2 threads p50 {r['2_threads_p50_ms']:.2f} / p99 {r['2_threads_p99_ms']:.2f} ms"
                    for label, r in d["query_threads"].items()) + ".",
        f"- **Fresh process**: `qa ask` from process start to exit (median of "
        f"{len(fresh['onnx']['first_answer_runs_s'])} runs: {', '.join(f'{t:.2f}' for t in fresh['onnx']['first_answer_runs_s'])} s); "
        f"serving memory is the peak RSS (VmHWM) of one process that loads the bot and answers "
        f"{fresh['onnx']['serving_questions']} questions.",
    ]
    if d["quality"]:
        lines += ["", "## Quality with each backend (`qa eval`'s evaluate_set)", "", "| set | backend | questions | Recall@1 | answer hit |", "|---|---|---|---|---|"]
        for name, row in d["quality"].items():
            for backend in ("onnx", "torch"):
                r = row[backend]
                hit = "—" if r.get("answer_hit") is None else f"{r['answer_hit']:.4f}"
                lines.append(f"| {name} | {backend} | {r['questions']} | {r['recall@1']:.4f} | {hit} |")
    scales = d["scales"]
    if scales:
        lines += [
            "",
            "## Scale",
            "",
            "![search latency against corpus size](latency.png)",
            "",
            "One query at a time; k = 10 unless marked; recall@10 against exact search over the same vectors; size is the "
            "saved FAISS file. `auto` is what `qa build` picks at that size (`make_vector_index`, FLAT_MAX_VECTORS). "
            "k = 200 is what the Retriever asks FAISS for (50 candidates x 4 keys).",
            "",
            "| vectors | auto | exact p50 / p99 | approx. index | build | p50 / p99 | p50 / p99 at k=200 | recall@10 | size / raw | BM25 build | BM25 p50 / p99 | BM25 + top-50 p50 / p99 |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for s in scales:
            f, a = s["flat"], s["ann"]
            ann = (f"{a['kind']} | {a['build_s']:.1f} s | {a['p50_ms']:.2f} / {a['p99_ms']:.2f} ms | "
                   f"{a['p50_ms_k200']:.2f} / {a['p99_ms_k200']:.2f} ms | {a['recall_at_10']:.3f} | "
                   f"{_mib(a['bytes'])} / {_mib(a['raw_bytes'])} = {a['bytes'] / a['raw_bytes']:.2f}") if a else "— | — | — | — | — | —"
            lines.append(
                f"| {s['n']:,} | {s['auto_kind']} | {f['p50_ms']:.2f} / {f['p99_ms']:.2f} ms | {ann} | "
                f"{s['bm25_build_s']:.1f} s | {s['bm25_p50_ms']:.2f} / {s['bm25_p99_ms']:.2f} ms | "
                f"{s['bm25_top50_p50_ms']:.2f} / {s['bm25_top50_p99_ms']:.2f} ms |"
            )
        lines += [
            "",
            "How the large corpora were made: encoding a million passages takes hours here, so each corpus is made from "
            f"the {build['texts']:,} real key embeddings of the benchmark corpus above: each vector is a real embedding "
            f"x (drawn uniformly) plus Gaussian noise with the real embeddings' own covariance, scaled by sigma = "
            f"{d['sigma']}, then renormalised (`bench/scale.py`). A made vector keeps a mean cosine of "
            f"{scales[-1]['copy_cosine']:.3f} with its source. Queries are real questions embedded by the model; ground "
            "truth is exact search (IndexFlatIP) over the same vectors. BM25 indexes the corpus' real passage texts "
            "repeated to N passages (each distinct text tokenised once by the pipeline's analyser), queried with the real "
            "questions through `LexicalIndex.scores`. Sizes count vectors for FAISS and passages for BM25; an index "
            f"stores {build['texts'] / build['passages']:.1f} vectors per passage on this corpus.",
        ]
        sens = d.get("sensitivity")
        if sens and sens.get("ann"):
            a = sens["ann"]
            lines += [
                "",
                f"How much the approximate figures depend on that recipe: the same {sens['n']:,} vectors made with "
                f"sigma = {d.get('check_sigma')} (copies at mean cosine {sens['copy_cosine']:.3f} to their source, so "
                f"each of the {build['texts']:,} sources has a tight cloud of near-duplicates) gave {a['kind']} "
                f"recall@10 {a['recall_at_10']:.3f} (p50 {a['p50_ms']:.2f} ms, p99 {a['p99_ms']:.2f} ms, built in "
                f"{a['build_s']:.1f} s). Real corpora rarely hold a hundred near-copies of each passage; the "
                "main figures use the wider recipe.",
            ]
    lines.append("")
    return "\n".join(lines)
