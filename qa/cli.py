"""The `qa` command: build, ask, info, chat, serve, eval.

Heavy imports (torch, FAISS, Gradio) happen inside the subcommands, so
`qa --help` is instant. Errors a user can fix are printed as one line on
stderr with exit status 2; no traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys

from .errors import DocumentError, QAError
from .types import Manifest

log = logging.getLogger("qa")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", metavar="DIR", help="index folder (default: $QA_INDEX_DIR or ./index)")
    parser.add_argument("--model", metavar="M", help="sentence-transformers model name or path (default: $QA_MODEL or the bundled all-MiniLM-L6-v2)")
    parser.add_argument("--store", metavar="STORE",
                        help="where the index lives: folder, milvus:PATH.db or http://HOST:19530 (default: $QA_STORE or folder)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and details")


def _bot(args):
    from .bot import Bot

    return Bot(args.index, model=args.model, threshold=getattr(args, "threshold", None), store=args.store)


def cmd_build(args) -> int:
    from . import settings
    from .bot import Bot
    from .indexing import is_stale
    from .stores import open_store

    folder = settings.index_dir(args.index)
    paths = settings.data_paths(args.paths)
    store = open_store(args.store, folder)
    if args.if_stale and store.signature() is not None:
        try:
            # Verify every file, as loading for answers will: a damaged index is never "up to date".
            manifest = store.open().manifest
            fresh = not is_stale(manifest) and list(manifest.inputs) == [str(p) for p in paths]
            if fresh and (args.model is None or args.model == manifest.model):
                print(terminal_safe(f"index in {store} is up to date ({manifest.passage_count} passages)"))
                return 0
        except QAError as exc:
            print(f"rebuilding: {exc}", file=sys.stderr)
    manifest = Bot.build(
        paths, folder, model=args.model, store=args.store, progress=not args.quiet, vector_index=args.vector_index,
        max_bytes=args.max_doc_bytes, allow_conflicts=args.allow_conflicts, ray=args.ray, update=not args.full,
    ).built
    print(terminal_safe(
        f"indexed {manifest.passage_count} passages ({manifest.paragraph_count} paragraphs, "
        f"{manifest.faq_count} FAQ pairs) from {len(manifest.sources)} files into {store} "
        f"in {manifest.build_seconds:.1f} s (embedded {manifest.embedded}, reused {manifest.reused})"
    ))
    print(terminal_safe(build_summary(manifest)))  # file names may hold escape sequences
    print(update_summary(manifest))
    return 0


def update_summary(manifest: Manifest) -> str:
    """'files: 1 added, 2 changed, 0 removed, 97 unchanged; updated the index (kept 1,940 of 1,952 passages)'."""
    files = manifest.files
    line = "files: " + ", ".join(f"{files.get(k, 0)} {k}" for k in ("added", "changed", "removed", "unchanged"))
    if manifest.incremental:
        update = manifest.update
        return line + (f"; updated the index (kept {update['kept_passages']:,} of {manifest.passage_count:,} "
                       f"passages; vector index {update['vector_index']})")
    return line + "; built the index in full"


def build_summary(manifest: Manifest) -> str:
    """'indexed 3 files; skipped 2: a.pdf: encrypted ...; b.md:3: not a text file ...', and the checks' warning count."""
    line = f"indexed {len(manifest.sources)} files"
    if manifest.skipped:
        line += f"; skipped {len(manifest.skipped)}: " + "; ".join(map(str, manifest.skipped))
    warnings = manifest.problems.get("warnings", 0)
    if warnings:
        line += f"; {warnings} warning(s) from the ingest checks (`qa check` lists them)"
    return line


def cmd_check(args) -> int:
    from .checks import check_documents
    from . import settings
    from .documents import load_document
    from .discovery import iter_files
    from .errors import UnreadableDocumentError

    paths = settings.data_paths(args.paths)
    limit = settings.max_doc_bytes(args.max_doc_bytes)
    documents, problems, files = [], [], 0
    for path in iter_files(paths):
        files += 1
        try:
            documents.append(load_document(path, limit))
        except UnreadableDocumentError as exc:
            problems.append(_problem(str(path), exc, "warning", "unreadable"))
        except DocumentError as exc:
            problems.append(_problem(str(path), exc, "error", "malformed"))
    problems += check_documents(documents)
    failing = [p for p in problems if p.severity == "error" and not (args.allow_conflicts and p.code == "conflict")]
    if args.json:
        print(json.dumps({"files": files, "problems": [p.to_dict() for p in problems]}, ensure_ascii=False, indent=2))
    else:
        for p in problems:
            print(terminal_safe(str(p)))
        errors = len([p for p in problems if p.severity == "error"])
        print(f"checked {files} files: {errors} error(s), {len(problems) - errors} warning(s)")
    return 1 if failing else 0


def _problem(path: str, exc: DocumentError, severity: str, code: str):
    """A DocumentError about the file at `path` as a Problem (line 1 when the error names none)."""
    from .checks import Problem

    return Problem(path, exc.line or 1, severity, code, exc.reason or str(exc))


def cmd_show(args) -> int:
    from . import settings
    from .stores import open_index

    index = open_index(args.store, settings.index_dir(args.index), verify=False)
    passage = next((p for p in index.passages if p.id == args.passage_id), None)
    if passage is None:
        raise ValueError(f"no passage {args.passage_id!r} in the index (ids are in `qa ask --json` citations)")
    start, end = passage.start, passage.end
    if args.span:
        try:
            start, end = (int(x) for x in args.span.split("-", 1))
        except ValueError:
            raise ValueError(f"--span must look like START-END (source offsets), got {args.span!r}") from None
        if not passage.start <= start < end <= passage.end:
            raise ValueError(f"--span {args.span} is outside the passage ({passage.start}-{passage.end})")
    print(show_passage(passage, start, end))
    return 0


def show_passage(passage, start: int, end: int) -> str:
    """A stored passage with the quote between source offsets start and end marked »like this«."""
    where = f"{passage.path}" + (f", page {passage.page}" if passage.page else "") + f", line {passage.line}"
    head = [f"{passage.id}  {passage.title} · {passage.label}", f"{where} · offsets {passage.start}-{passage.end}"]
    if passage.kind == "faq" and passage.question:
        head.append(f"Q: {passage.question}")
    text = passage.text
    a, b = start - passage.start, end - passage.start
    return "\n".join(head) + "\n\n" + text[:a] + "»" + text[a:b] + "«" + text[b:]


# Characters a terminal may act on rather than show: C0 and C1 controls (ESC starts
# "set the window title" or "clear the screen"; C1 U+009B is a one-byte CSI), DEL, and
# the bidirectional overrides that reorder what is shown. Newline and tab stay.
_TERMINAL_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """`text` with every control character a terminal would act on shown escaped, e.g. ESC as `\\x1b`."""
    return _TERMINAL_CONTROLS.sub(lambda m: repr(m.group())[1:-1], text)


class _SafeFormatter(logging.Formatter):
    """Log lines with control characters escaped: a build's warnings name files, whose names may hold ESC."""

    def format(self, record: logging.LogRecord) -> str:
        return terminal_safe(super().format(record))


def format_answer(answer, paths: dict[str, str] | None = None) -> str:
    """An Answer as terminal text: the quote, its citation and the confidence, control characters escaped.

    Args:
        answer: the Answer.
        paths: a citation's path (relative to the build's input) → the file's path on this machine.
    """
    paths = paths or {}
    lines = [answer.text]
    if answer.answered:
        c = answer.citations[0]
        path = paths.get(c.path, c.path)
        page = f", page {c.page}" if c.page else ""
        lines.append(f"  — {c.source}, {c.label} ({path}{page}:{c.start}-{c.end}) · confidence {answer.confidence:.2f}")
        lines.append(f"  (qa show {c.passage_id} --span {c.start}-{c.end})")
        if answer.follow_ups:
            lines.append("  Ask next:")
            lines += [f"  {n}. {f.question}  ({f.passage_id})" for n, f in enumerate(answer.follow_ups, 1)]
    elif answer.suggestions:
        lines.append("  Did you mean…?")
        for n, s in enumerate(answer.suggestions, 1):
            lines.append(f"  {n}. {s.text}  ({s.source}, {s.label} · {s.passage_id})")
    else:
        lines.append(f"  (confidence {answer.confidence:.2f}) Closest passages:")
        for hit in answer.passages[:3]:
            snippet = hit.passage.text if len(hit.passage.text) < 120 else hit.passage.text[:117] + "..."
            lines.append(f"  · {hit.passage.title}, {hit.passage.label}: {snippet}")
    return terminal_safe("\n".join(lines))


def _json(data) -> str:
    """JSON for the terminal: non-ASCII kept readable, but C1 controls escaped (json leaves them raw)."""
    text = json.dumps(data, ensure_ascii=False, indent=2)
    return _TERMINAL_CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def source_paths(bot) -> dict[str, str]:
    """Each source's key (its path below the build's input, as citations carry it) → the file as the build named it."""
    return {s.key: s.path for s in bot.index.manifest.sources}


def cmd_ask(args) -> int:
    bot = _bot(args)
    answer = bot.ask(args.question, args.k, choose=args.choose)
    if args.json:
        print(_json(answer.to_dict()))
    else:
        print(format_answer(answer, source_paths(bot)))
    return 0


def cmd_info(args) -> int:
    from . import settings
    from .errors import IndexCorruptError
    from .indexing import is_stale
    from .stores import open_store, parse_store

    spec = parse_store(args.store)
    store = open_store(spec, settings.index_dir(args.index))
    manifest = store.manifest()
    try:
        store.open()  # every checksum and every file (or every row), as answering will read them
        damaged = None
    except IndexCorruptError as exc:
        damaged = str(exc)
    stale = is_stale(manifest)
    info = {
        "index": store.describe(),
        "store": str(spec),
        "model": manifest.model,
        "dimension": manifest.dimension,
        "vector_index": manifest.vector_index,
        "passages": manifest.passage_count,
        "paragraphs": manifest.paragraph_count,
        "faq_pairs": manifest.faq_count,
        "built_at": manifest.built_at,
        "fresh": not stale and damaged is None,
        "damaged": damaged,
        "sources": [{"path": s.path, "title": s.title, "passages": s.passages} for s in manifest.sources],
    }
    status = 1 if damaged else 0
    if args.json:
        print(_json(info))
        return status
    if damaged:
        state = f"DAMAGED: {damaged}"
    else:
        state = "fresh" if info["fresh"] else "STALE: the documents changed; run qa build"
    print(terminal_safe(f"index      {info['index']} ({state})"))
    print(f"model      {info['model']} ({info['dimension']} dimensions, {info['vector_index']})")
    print(f"passages   {info['passages']} ({info['paragraphs']} paragraphs, {info['faq_pairs']} FAQ pairs)")
    print(f"built      {info['built_at']}")
    for s in info["sources"]:
        print(terminal_safe(f"source     {s['path']}: {s['title']} ({s['passages']} passages)"))
    return status


def cmd_chat(args) -> int:
    from .bot import remember

    bot = _bot(args).warm_up()
    paths = source_paths(bot)
    print("Ask a question about the documents (empty line or Ctrl-D to quit; "
          "a number picks a suggestion or asks a follow-up).")
    history: list[str] = []
    before: list[str] = []  # the history the last question was asked with, for picking one of its suggestions
    last = None
    while True:
        try:
            question = input("? ")
        except EOFError:
            print()
            return 0
        if not question.strip():
            return 0
        picked = question.strip()
        try:
            if last is not None and picked.isdigit() and 1 <= int(picked) <= len(last.suggestions):
                answer = bot.ask(last.question, history=before, choose=last.suggestions[int(picked) - 1].passage_id)
            else:
                if last is not None and picked.isdigit() and 1 <= int(picked) <= len(last.follow_ups):
                    question = last.follow_ups[int(picked) - 1].question
                    print(terminal_safe(f"? {question}"))
                before = history
                answer = bot.ask(question, history=history)
                history = remember(history, question)
        except ValueError as exc:
            print(terminal_safe(f"error: {exc}"))
            continue
        last = answer
        print(format_answer(answer, paths))


def _show_cluster(n: int, cluster) -> str:
    reasons = ", ".join(f"{k} {v}" for k, v in cluster.reasons.most_common())
    lines = [f"[{n}] asked {cluster.count}x ({reasons})"]
    lines += [f"    - {q}" for q in cluster.questions[:10]]
    if len(cluster.questions) > 10:
        lines.append(f"    … and {len(cluster.questions) - 10} more")
    c = cluster.candidate
    lines.append(f"    best candidate: {c.id} ({c.kind}) {c.label or c.text[:80]}" if c else "    best candidate: none")
    if cluster.also_answered:
        lines.append(f"    accepting also adds {len(cluster.also_answered)} question(s) it already answered well, e.g. "
                     f"{cluster.also_answered[0]!r}")
    return terminal_safe("\n".join(lines))


def cmd_review(args) -> int:
    from .review import open_review

    review = open_review(args.index, args.log, args.data, args.model)
    queue = review.queue()
    if args.json:
        print(_json([c.to_dict() for c in queue]))
        return 0
    if not queue:
        print("nothing to review")
        return 0
    interactive = not args.accept_all and sys.stdin.isatty() and not args.list
    done = 0
    for n, cluster in enumerate(queue, 1):
        print(_show_cluster(n, cluster))
        if args.accept_all:
            if cluster.candidate is not None and cluster.candidate.kind == "faq":
                review.accept(cluster)
                done += 1
            continue
        if not interactive:
            continue
        while True:
            choice = input("    [a]lternates of the candidate, alternates of [o]ther FAQ id, [n]ew FAQ, [d]ismiss, "
                           "[s]kip, [q]uit: ").strip().lower()[:1]
            try:
                if choice == "a":
                    review.accept(cluster)
                elif choice == "o":
                    review.accept(cluster, input("    FAQ id (a passage_id, e.g. from `qa ask --json`): ").strip())
                elif choice == "n":
                    review.add_faq(cluster, input("    question: "), input("    answer: "))
                elif choice == "d":
                    review.dismiss(cluster)
                elif choice == "q":
                    return _reviewed(done)
                elif choice != "s":
                    continue
            except ValueError as exc:
                print(terminal_safe(f"    error: {exc}"))
                continue
            done += choice != "s"
            break
    return _reviewed(done) if (interactive or args.accept_all) else 0


def _reviewed(done: int) -> int:
    if done:
        print(f"{done} cluster(s) handled; run `qa build` to apply them (a running chat switches to the new index)")
    return 0


def cmd_serve(args) -> int:
    try:
        import ui  # installed beside the package (pyproject's py-modules)
    except ImportError as exc:
        print(f"error: the web chat (ui.py) is not installed here ({exc})", file=sys.stderr)
        return 2
    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    return ui.main(rest) or 0


def cmd_eval(args) -> int:
    from .evaluation import main as eval_main

    return eval_main(args)


def cmd_train(args) -> int:
    from .comprehension import training

    logging.getLogger("qa.comprehension.training").setLevel(logging.INFO)
    return training.run(args)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qa", description="Grounded answers with citations from your own documents, offline.")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="index documents (files or folders) into the index folder")
    b.add_argument("paths", nargs="*", help="files or folders (default: $QA_DATA_DIR or ./data)")
    _common(b)
    b.add_argument("--if-stale", action="store_true", help="do nothing when the index is already up to date")
    b.add_argument("--full", action="store_true",
                   help="ignore the current index: read every file, embed every text and build the indexes in full")
    b.add_argument("--vector-index", choices=["auto", "flat", "hnsw"], default="auto", help="FAISS index type (default: by corpus size)")
    b.add_argument("--max-doc-bytes", type=int, metavar="N", help="refuse documents larger than N bytes (default: $QA_MAX_DOC_BYTES or 50 MiB)")
    b.add_argument("--allow-conflicts", action="store_true", help="build even when one FAQ question has different answers")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    b.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="embed with Ray Data: on a Ray started here, or on the cluster at ADDRESS (default: $QA_RAY_ADDRESS)")
    b.set_defaults(func=cmd_build)

    k = sub.add_parser("check", help="report problems in documents as file:line: message (exit 1 on errors)")
    k.add_argument("paths", nargs="*", help="files or folders (default: $QA_DATA_DIR or ./data)")
    k.add_argument("--json", action="store_true", help="the problems as JSON")
    k.add_argument("--allow-conflicts", action="store_true", help="conflicting FAQ answers do not fail the check")
    k.add_argument("--max-doc-bytes", type=int, metavar="N", help="refuse documents larger than N bytes")
    k.add_argument("-v", "--verbose", action="store_true")
    k.set_defaults(func=cmd_check)

    w = sub.add_parser("show", help="print a stored passage, with a quote marked")
    w.add_argument("passage_id", metavar="PASSAGE_ID")
    w.add_argument("--span", metavar="START-END", help="mark the quote between these source offsets (a citation's start-end)")
    _common(w)
    w.set_defaults(func=cmd_show)

    a = sub.add_parser("ask", help="answer one question")
    a.add_argument("question")
    _common(a)
    a.add_argument("-k", type=int, default=5, help="retrieved passages to return (default 5)")
    a.add_argument("--threshold", type=float, help="abstention threshold on confidence (default: $QA_THRESHOLD or 0.5)")
    a.add_argument("--json", action="store_true", help="print the Answer as JSON")
    a.add_argument("--choose", metavar="PASSAGE_ID", help="answer from this suggested passage (a suggestion's passage_id)")
    a.set_defaults(func=cmd_ask)

    i = sub.add_parser("info", help="model, counts, sources, and whether the index is fresh")
    _common(i)
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_info)

    c = sub.add_parser("chat", help="chat in the terminal")
    _common(c)
    c.add_argument("--threshold", type=float)
    c.set_defaults(func=cmd_chat)

    r = sub.add_parser("review", help="group the questions the chat did not answer well, and act on each group")
    _common(r)
    r.add_argument("--log", metavar="FILE", help="the question log (default: $QA_LOG or qa-log.sqlite3 beside the index)")
    r.add_argument("--data", metavar="DIR", help="where accepted changes are written (default: $QA_DATA_DIR or ./data)")
    r.add_argument("--list", action="store_true", help="only list the clusters")
    r.add_argument("--json", action="store_true", help="the clusters as JSON")
    r.add_argument("--accept-all", action="store_true", help="add every cluster to its FAQ candidate's alternates")
    r.set_defaults(func=cmd_review)

    s = sub.add_parser("serve", help="start the web chat (ui.py); options after -- go to it")
    s.add_argument("rest", nargs=argparse.REMAINDER)
    s.set_defaults(func=cmd_serve)

    e = sub.add_parser("eval", help="measure retrieval and answers on evaluation sets")
    e.add_argument("paths", nargs="+", metavar="PATH", help="folders in the shapes of ../shared/eval")
    e.add_argument("--json", action="store_true", help="one JSON object per set")
    e.add_argument("--out", metavar="FILE", help="also write the report as Markdown")
    e.add_argument("--mistakes", metavar="FILE",
                   help="write every wrong answer (what it cited, what the set calls right) and every right first "
                        "passage suggested or abstained on (held back) as JSON lines")
    e.add_argument("--limit", type=int, help="at most this many questions per set")
    e.add_argument("--model", metavar="M")
    e.add_argument("--store", metavar="STORE",
                   help="build each set's temporary index here: folder, milvus:PATH.db or http://HOST:19530 (default: $QA_STORE or folder)")
    e.add_argument("-v", "--verbose", action="store_true")
    e.set_defaults(func=cmd_eval)

    t = sub.add_parser("train", help="train the reader (qa/comprehension) from SQuAD-style data; see docs/reader.md")
    from .comprehension.training import add_arguments as train_arguments  # argparse only: no torch

    train_arguments(t)
    t.set_defaults(func=cmd_train)
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args, extra = p.parse_known_args(argv)
    if args.command == "serve":
        args.rest = extra + args.rest  # every option after `serve` belongs to the web chat
    elif extra:
        p.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    for handler in logging.getLogger().handlers:
        handler.setFormatter(_SafeFormatter(handler.formatter._fmt if handler.formatter else None))
    for noisy in ("faiss.loader", "sentence_transformers", "transformers", "httpx", "bm25s"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        return args.func(args)
    except (QAError, ValueError) as exc:
        print(terminal_safe(f"error: {exc}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader left (`qa info | head -1`): that is no error of ours. Point stdout at
        # /dev/null so that the interpreter's final flush does not fail a second time.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 1  # as Python's documentation advises: the output is incomplete


if __name__ == "__main__":
    sys.exit(main())
