"""`make bench`, reading: how fast each reader turns files into passages, beside how fast the model embeds them.

    .venv/bin/python -m bench.reading          # about 2 minutes
    .venv/bin/python -m bench.reading --tiny   # seconds: checks that it works

Writes files of every format with the real libraries (PDF with reportlab, as
tests/formats.py does, since pypdf cannot write text; DOCX with python-docx;
the rest as text) from bench/textgen.py's generated prose, reads each with
`qa.documents.load_document` (what `qa build` calls), and reports files/s, MB/s,
pages/s (PDF) and passages/s. In the same run it embeds passages of the same text
with the model, so the table shows which stage bounds a build.

Writes bench/reading.json and the "Reading throughput" section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from bench.sections import Section, load_note

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- reading:start -->", "<!-- reading:end -->"
SECTION = Section(START, END)  # this module's section of docs/performance.md
write_section, carry_over = SECTION.write, SECTION.carry_over
FORMATS = ("txt", "md", "rst", "html", "pdf", "docx", "csv", "json")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--files", type=int, default=40, help="files of each format (default 40)")
    p.add_argument("--paragraphs", type=int, default=30, help="paragraphs (or FAQ pairs) per file (default 30)")
    p.add_argument("--embed", type=int, default=512, help="passages embedded for the comparison (default 512)")
    p.add_argument("--tiny", action="store_true", help="3 files of 5 paragraphs, 64 passages embedded")
    SECTION.add_arguments(p, ROOT / "bench" / "reading.json")
    return p.parse_args(argv)


def say(message: str) -> None:
    print(message, flush=True)


def _question(gen) -> str:
    return gen.sentence(5, 12).rstrip(".") + "?"


def write_file(folder: Path, fmt: str, i: int, gen, paragraphs: int) -> Path:
    """One generated file of format `fmt` with `paragraphs` paragraphs (or FAQ pairs)."""
    path = folder / f"{fmt}-{i:04d}.{fmt}"
    title = gen.rng.choice(gen.titles)
    body = [gen.paragraph() for _ in range(paragraphs)]
    if fmt == "txt":
        path.write_text(title + "\n\n" + "\n\n".join(body) + "\n", encoding="utf-8")
    elif fmt == "md":
        path.write_text(f"# {title}\n\n" + "\n\n".join(
            (f"## Section {n // 5 + 1}\n\n" if n % 5 == 0 else "") + p for n, p in enumerate(body)) + "\n", encoding="utf-8")
    elif fmt == "rst":
        parts = [f"{title}\n{'=' * len(title)}"]
        for n, p in enumerate(body):
            if n % 5 == 0:
                heading = f"Section {n // 5 + 1}"
                parts.append(f"{heading}\n{'-' * len(heading)}")
            parts.append(p)
        path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    elif fmt == "html":
        sections = "".join((f"<h2>Section {n // 5 + 1}</h2>" if n % 5 == 0 else "") + f"<p>{p}</p>\n" for n, p in enumerate(body))
        path.write_text(
            f"<!doctype html><html><head><title>{title}</title><script>var t = 1;</script></head><body>"
            "<header><nav><a href='/'>Home</a> <a href='/help'>Help</a> <a href='/shop'>Shop</a></nav></header>"
            f"<main><h1>{title}</h1>\n{sections}</main><aside>Related articles</aside>"
            "<footer>Copyright 2025. Privacy. Cookies.</footer></body></html>", encoding="utf-8")
    elif fmt == "pdf":
        from reportlab.lib.pagesizes import A4
        from reportlab.pdfgen import canvas

        c = canvas.Canvas(str(path), pagesize=A4)
        c.setTitle(title)
        y = 800
        for p in [title] + body:
            for line in textwrap.wrap(p, 95) + [""]:
                if y < 60:
                    c.showPage()
                    y = 800
                c.drawString(50, y, line)
                y -= 14
        c.showPage()
        c.save()
    elif fmt == "docx":
        import docx

        d = docx.Document()
        d.add_heading(title, 0)
        for n, p in enumerate(body):
            if n % 5 == 0:
                d.add_heading(f"Section {n // 5 + 1}", 1)
            d.add_paragraph(p)
        d.save(str(path))
    elif fmt == "csv":
        with open(path, "w", encoding="utf-8", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(["question", "answer"])
            for p in body:
                out.writerow([_question(gen), p])
    elif fmt == "json":
        path.write_text(json.dumps([{"question": _question(gen), "answer": p} for p in body], indent=1), encoding="utf-8")
    else:
        raise ValueError(f"unknown format {fmt!r}")
    return path


def pdf_pages(paths: list[Path]) -> int:
    from pypdf import PdfReader

    return sum(len(PdfReader(p).pages) for p in paths)


def read_rate(paths: list[Path]) -> dict:
    """Read every file as `qa build` does; files/s, MB/s and passages/s."""
    from qa.documents import load_document

    load_document(paths[0])  # imports the reader's libraries outside the timing
    started = time.perf_counter()
    passages = sum(len(load_document(p).passages) for p in paths)
    seconds = time.perf_counter() - started
    size = sum(p.stat().st_size for p in paths)
    return {"files": len(paths), "bytes": size, "passages": passages, "seconds": round(seconds, 3),
            "files_per_s": len(paths) / seconds, "mb_per_s": size / 1e6 / seconds, "passages_per_s": passages / seconds}


def embed_rate(texts: list[str]) -> dict:
    """The model embedding the keys of `texts`' passages as a build does (qa.keys, EMBED_CHUNK chunks, batch 32)."""
    from qa.embedding import Embedder
    from qa.indexing import embed_texts
    from qa.keys import passage_keys
    from qa.readers.markdown import read

    passages = [p for t in texts for p in read("embed.md", t.encode()).passages]
    keys = [text for p in passages for _, _, text in passage_keys(p)]
    embedder = Embedder()
    embedder.encode(keys[:32])  # load the model outside the timing
    started = time.perf_counter()
    embed_texts(embedder, keys)
    seconds = time.perf_counter() - started
    return {"passages": len(passages), "keys": len(keys), "seconds": round(seconds, 3),
            "keys_per_s": len(keys) / seconds, "passages_per_s": len(passages) / seconds}


def measure(args) -> dict:
    from bench.textgen import TextGenerator

    files, paragraphs, embed = (3, 5, 64) if args.tiny else (args.files, args.paragraphs, args.embed)
    gen = TextGenerator(seed=5)
    rows = {}
    with tempfile.TemporaryDirectory(prefix="qa-reading-") as tmp:
        for fmt in FORMATS:
            folder = Path(tmp) / fmt
            folder.mkdir()
            paths = [write_file(folder, fmt, i, gen, paragraphs) for i in range(files)]
            rows[fmt] = read_rate(paths)
            if fmt == "pdf":
                rows[fmt]["pages"] = pdf_pages(paths)
                rows[fmt]["pages_per_s"] = rows[fmt]["pages"] / rows[fmt]["seconds"]
            r = rows[fmt]
            say(f"  {fmt:5} {r['files']} files, {r['bytes'] / 1e6:.1f} MB, {r['passages']} passages: "
                f"{r['files_per_s']:.1f} files/s, {r['mb_per_s']:.2f} MB/s, {r['passages_per_s']:.0f} passages/s")
    texts = [f"# Embedding sample\n\n{gen.paragraph()}\n" for _ in range(embed)]
    embedding = embed_rate(texts)
    say(f"  model: {embedding['keys_per_s']:.1f} keys/s = {embedding['passages_per_s']:.1f} paragraphs/s "
        f"({embedding['keys'] / embedding['passages']:.1f} keys a paragraph)")
    from bench.measure import machine

    return {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "load_average": os.getloadavg(),
            "command": "python -m bench.reading" + (" --tiny" if args.tiny else ""),
            "formats": rows, "embedding": embedding}


def section(r: dict) -> str:
    """The "Reading throughput" section of docs/performance.md, from one run's results."""
    e = r["embedding"]
    lines = []
    for fmt, x in r["formats"].items():
        pages = f"{x['pages_per_s']:.0f} pages/s ({x['pages']} pages)" if "pages" in x else "—"
        lines.append(f"| {fmt} | {x['files']} | {x['bytes'] / 1e6:.1f} | {x['files_per_s']:.1f} | {x['mb_per_s']:.2f} | "
                     f"{pages} | {x['passages_per_s']:,.0f} | {x['passages_per_s'] / e['passages_per_s']:,.0f}× |")
    slowest = min(r["formats"], key=lambda f: r["formats"][f]["passages_per_s"])
    verdict = ("embedding is the bottleneck for every format" if r["formats"][slowest]["passages_per_s"] > e["passages_per_s"]
               else f"reading {slowest} is slower than embedding it")
    return f"""{START}
## Reading throughput by format

Measured by `.venv/bin/python -m bench.reading` (part of `make bench`) on {r['machine'].get('cpu')}, {r['date']}; \
{load_note(r['load_average'][0])}. Figures from `bench/reading.json`.

Files generated by the bench with the real libraries (PDF: reportlab, DOCX: python-docx; prose from bench/textgen.py), \
read with `load_document` as `qa build` reads them, one process, one core. In the same run the model embedded \
{e['passages']} paragraphs' keys (each paragraph whole and each of its sentences, {e['keys'] / e['passages']:.1f} keys a \
paragraph) at **{e['keys_per_s']:.1f} keys/s = {e['passages_per_s']:.1f} paragraphs/s**.

| format | files | MB | files/s | MB/s | pages/s | passages/s | × embedding |
|---|---|---|---|---|---|---|---|
{chr(10).join(lines)}

"× embedding" is passages read per second over paragraphs embedded per second: {verdict}. An update of a \
changed corpus (see Incremental builds) reads only the changed files.
{END}
"""


def main(argv: list[str] | None = None) -> int:
    return SECTION.main(parse_args(argv), "reading throughput:", measure, section,
                        lambda r: f"  took {r['minutes']} min")


if __name__ == "__main__":
    sys.exit(main())
