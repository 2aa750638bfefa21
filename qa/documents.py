"""Documents → passages: articles (text, Markdown) and FAQ files (CSV, JSON, JSONL).

Every passage keeps character offsets into the text it was cut from, so an
answer quoted from it can always be checked against its source.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Iterator

from .errors import DocumentError
from .sentences import split_sentences
from . import settings
from .types import Passage

log = logging.getLogger(__name__)

ARTICLE_SUFFIXES = {".txt", ".md", ".markdown"}
FAQ_SUFFIXES = {".csv", ".json", ".jsonl"}
SUPPORTED_SUFFIXES = ARTICLE_SUFFIXES | FAQ_SUFFIXES
_SURROGATE = re.compile("[\ud800-\udfff]")

_FAQ_HEADING = re.compile(
    r"^\s*(?:#{1,6}\s*)?(?:\*\*)?\s*(?:frequently\s+asked\s+questions|faqs?)\b", re.IGNORECASE
)
_MD_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
# A line that is only a label ("Filed under:", "Tags:") carries nothing to answer from.
_EMPTY_TRAILER = re.compile(r"^\s*[\w][\w '&/-]{0,40}:\s*$")
_QUESTION_PREFIX = re.compile(r"^\s*(?:#{1,6}\s*|[-*]\s+)?(?:\*\*)?\s*(?:q\s*[:.)]\s*)?", re.IGNORECASE)


@dataclass(frozen=True)
class Document:
    """A source file as read: its path (as given), decoded text and passages."""

    path: str
    text: str
    title: str
    passages: tuple[Passage, ...]


def readable_title(path: Path) -> str:
    """'diaz-canel_russia-visit.txt' -> 'Diaz Canel Russia Visit'."""
    words = re.split(r"[-_\s.]+", path.stem)
    return " ".join(w[:1].upper() + w[1:] for w in words if w) or path.name


def read_text(path: Path, max_bytes: int | None = None) -> str:
    """Read a file as UTF-8; undecodable bytes become U+FFFD with a warning.

    Args:
        path: the file.
        max_bytes: the largest file accepted (argument → $QA_MAX_DOC_BYTES → 50 MiB).

    Raises:
        DocumentError: the file is larger than `max_bytes` or cannot be read.
    """
    max_bytes = settings.max_doc_bytes(max_bytes)
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            # At most one byte past the limit, so a file that grows after fstat() is refused too.
            raw = fh.read(max_bytes + 1) if size <= max_bytes else b""
        size = max(size, len(raw))
    except OSError as exc:
        raise DocumentError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if size > max_bytes:
        raise DocumentError(
            f"{path}: {size:,} bytes is over the {max_bytes:,}-byte limit for one document; "
            f"raise it with --max-doc-bytes or QA_MAX_DOC_BYTES"
        )
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        log.warning("%s:%d: not valid UTF-8; undecodable bytes replaced with U+FFFD", path, line)
        return raw.decode("utf-8", errors="replace")


def passage_id(path: str, kind: str, text: str, seen: dict[str, int]) -> str:
    """A stable id from the document and the passage's content: it survives rebuilds of unchanged text."""
    digest = hashlib.sha1(f"{kind}\0{text}".encode()).hexdigest()[:12]
    doc = re.sub(r"[^A-Za-z0-9]+", "-", Path(path).stem).strip("-").lower()[:40] or "doc"
    base = f"{doc}:{digest}"
    seen[base] = seen.get(base, 0) + 1
    return base if seen[base] == 1 else f"{base}-{seen[base]}"


# --------------------------------------------------------------------------- articles


@dataclass(frozen=True)
class _Line:
    start: int
    end: int  # end of the line's content, without the newline
    text: str

    @property
    def stripped(self) -> str:
        return self.text.strip()


def _lines(text: str) -> list[_Line]:
    lines, pos = [], 0
    for raw in text.splitlines(keepends=True):
        content = raw.rstrip("\r\n")
        lines.append(_Line(pos, pos + len(content), content))
        pos += len(raw)
    return lines


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _blocks(lines: list[_Line], one_per_line: bool) -> Iterator[list[_Line]]:
    """Group non-blank lines into paragraphs: by blank lines, or one per line."""
    block: list[_Line] = []
    for line in lines:
        if not line.stripped:
            if block:
                yield block
            block = []
        elif one_per_line or _MD_HEADING.match(line.text):
            if block:
                yield block
            yield [line]
            block = []
        else:
            block.append(line)
    if block:
        yield block


def _is_question(line: str) -> bool:
    return line.rstrip().rstrip("*").rstrip().endswith("?")


def _question_text(line: str) -> str:
    return _QUESTION_PREFIX.sub("", line).strip().strip("*").strip()


def parse_article(path: str, text: str) -> Document:
    """Split an article into paragraphs and, after an FAQ heading, question/answer pairs.

    Paragraphs are separated by blank lines; a file without blank lines has one
    paragraph per line. The title is the first Markdown heading, else a
    readable form of the file name.
    """
    lines = _lines(text)
    has_blank = any(not l.stripped for l in lines[1:-1]) and sum(1 for l in lines if l.stripped) > 1
    title = None
    passages: list[Passage] = []
    seen: dict[str, int] = {}
    in_faq = False
    paragraph_no = 0
    question: _Line | None = None
    answer: list[_Line] = []

    def add(kind: str, start: int, end: int, line_no: int, q: str | None = None) -> None:
        nonlocal paragraph_no
        start, end = _trim(text, start, end)
        body = text[start:end]
        if not body:
            return
        position = paragraph_no if kind == "paragraph" else sum(p.kind == "faq" for p in passages)
        if kind == "paragraph":
            paragraph_no += 1
        passages.append(
            Passage(
                id=passage_id(path, kind, (q or "") + "\0" + body, seen),
                kind=kind,  # type: ignore[arg-type]
                text=body,
                title="",
                path=path,
                start=start,
                end=end,
                position=position,
                line=line_no,
                question=q,
                sentences=split_sentences(body, offset=start),
            )
        )

    def flush_faq() -> None:
        nonlocal question, answer
        if question is not None:
            if answer:
                add("faq", answer[0].start, answer[-1].end, text.count("\n", 0, question.start) + 1,
                    q=_question_text(question.text))
            else:
                log.warning("%s:%d: FAQ question has no answer; skipped", path,
                            text.count("\n", 0, question.start) + 1)
        question, answer = None, []

    for block in _blocks(lines, one_per_line=not has_blank):
        first = block[0]
        line_no = text.count("\n", 0, first.start) + 1
        heading = _MD_HEADING.match(first.text) if len(block) == 1 else None
        if _FAQ_HEADING.match(first.text) and len(block) == 1 and not _is_question(first.text):
            flush_faq()
            in_faq = True
            continue
        if len(block) == 1 and _EMPTY_TRAILER.match(first.text):
            continue
        if heading and not (in_faq and _is_question(heading.group(2))):
            if title is None:
                title = heading.group(2).strip()
            if in_faq and has_blank:
                flush_faq()
                in_faq = False
            continue
        if in_faq:
            rest = block
            if _is_question(first.text):
                flush_faq()
                question, rest = first, block[1:]
            if question is None:
                add("paragraph", block[0].start, block[-1].end, line_no)
                continue
            answer.extend(l for l in rest if not _EMPTY_TRAILER.match(l.text))
            continue
        add("paragraph", first.start, block[-1].end, line_no)
    flush_faq()

    title = title or readable_title(Path(path))
    passages = [replace(p, title=title) for p in passages]
    return Document(path=path, text=text, title=title, passages=tuple(passages))


# --------------------------------------------------------------------------- FAQ files


def _faq_passage(path: str, title: str, record: dict, line: int, position: int, seen: dict[str, int]) -> Passage:
    """One FAQ record → a passage, validating its fields (the error names file and line)."""
    if not isinstance(record, dict):
        raise DocumentError(f"{path}:{line}: expected an object with 'question' and 'answer', got {type(record).__name__}")
    fields = {str(k).strip().lower(): v for k, v in record.items()}
    for name in ("question", "answer", "id", "alternates"):
        texts = fields.get(name) if isinstance(fields.get(name), list) else [fields.get(name)]
        if any(isinstance(t, str) and _SURROGATE.search(t) for t in texts):
            # Only JSON escapes ("\ud800") can produce these; no encoder or file can hold them.
            raise DocumentError(f"{path}:{line}: {name!r} holds invalid Unicode (an unpaired surrogate escape)")
    missing = [f for f in ("question", "answer") if not isinstance(fields.get(f), str) or not fields[f].strip()]
    if missing:
        raise DocumentError(f"{path}:{line}: missing or empty {' and '.join(repr(m) for m in missing)}")
    alternates = fields.get("alternates") or ()
    if isinstance(alternates, str):
        alternates = [a for a in alternates.split("|")]
    if not isinstance(alternates, (list, tuple)) or not all(isinstance(a, str) for a in alternates):
        raise DocumentError(f"{path}:{line}: 'alternates' must be a list of strings")
    answer = fields["answer"]
    start, end = _trim(answer, 0, len(answer))
    body = answer[start:end]
    question = fields["question"].strip()
    given_id = fields.get("id")
    pid = f"{Path(path).stem}:{given_id}" if given_id not in (None, "") else passage_id(path, "faq", question + "\0" + body, seen)
    return Passage(
        id=pid,
        kind="faq",
        text=body,
        title=title,
        path=path,
        start=0,
        end=len(body),
        position=position,
        line=line,
        question=question,
        alternates=tuple(a.strip() for a in alternates if a.strip()),
        sentences=split_sentences(body, offset=0),
    )


def parse_faq_csv(path: str, text: str) -> Document:
    """CSV with a header naming (case-insensitively) question, answer and optionally id, alternates."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise DocumentError(f"{path}:1: bad CSV: {exc}") from exc
    if header is None:
        raise DocumentError(f"{path}:1: empty CSV file; expected a header with question and answer")
    names = [h.strip().lower() for h in header]
    if "question" not in names or "answer" not in names:
        raise DocumentError(f"{path}:1: the CSV header must name 'question' and 'answer' columns, got {header}")
    title = readable_title(Path(path))
    seen: dict[str, int] = {}
    passages = []
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(names):
                raise DocumentError(f"{path}:{line}: expected {len(names)} fields, got {len(row)}")
            passages.append(_faq_passage(path, title, dict(zip(names, row)), line, len(passages), seen))
    except csv.Error as exc:
        raise DocumentError(f"{path}:{reader.line_num}: bad CSV: {exc}") from exc
    _check_ids(path, passages)
    return Document(path=path, text=text, title=title, passages=tuple(passages))


def parse_faq_jsonl(path: str, text: str) -> Document:
    """JSON Lines: one object with question, answer (and optionally id, alternates) a line."""
    title = readable_title(Path(path))
    seen: dict[str, int] = {}
    passages = []
    # Only "\n" ends a JSON Lines record: splitlines() would also cut at U+2028 and
    # other separators that JSON strings may hold raw, and miscount lines.
    for line_no, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise DocumentError(f"{path}:{line_no}: invalid JSON: {_json_reason(exc)}") from exc
        passages.append(_faq_passage(path, title, record, line_no, len(passages), seen))
    _check_ids(path, passages)
    return Document(path=path, text=text, title=title, passages=tuple(passages))


def parse_faq_json(path: str, text: str) -> Document:
    """JSON: a list of FAQ objects, or an object with a 'faqs' (or 'items') list and an optional 'title'."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        line = exc.lineno if isinstance(exc, json.JSONDecodeError) else 1
        raise DocumentError(f"{path}:{line}: invalid JSON: {_json_reason(exc)}") from exc
    title = readable_title(Path(path))
    if isinstance(data, dict):
        if isinstance(data.get("title"), str) and data["title"].strip():
            title = data["title"].strip()
        data = data.get("faqs", data.get("items"))
    if not isinstance(data, list):
        raise DocumentError(f"{path}:1: expected a list of FAQ objects (or {{'faqs': [...]}})")
    seen: dict[str, int] = {}
    passages = []
    for i, record in enumerate(data):
        passages.append(_faq_passage(path, title, record, _json_item_line(text, i), len(passages), seen))
    _check_ids(path, passages)
    return Document(path=path, text=text, title=title, passages=tuple(passages))


def _json_reason(exc: Exception) -> str:
    """Why json.loads failed, in a few words (it also raises RecursionError and ValueError for huge numbers)."""
    if isinstance(exc, json.JSONDecodeError):
        return exc.msg
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).split(";")[0]


def _json_item_line(text: str, index: int) -> int:
    """Best-effort line of the index-th top-level item, for error messages."""
    starts = [m.start() for m in re.finditer(r'\{\s*"', text)]
    return text.count("\n", 0, starts[index]) + 1 if index < len(starts) else 1


def _check_ids(path: str, passages: list[Passage]) -> None:
    seen: dict[str, int] = {}
    for p in passages:
        if p.id in seen:
            raise DocumentError(f"{path}:{p.line}: duplicate id {p.id.split(':', 1)[1]!r} (first on line {seen[p.id]})")
        seen[p.id] = p.line


PARSERS = {
    ".txt": parse_article,
    ".md": parse_article,
    ".markdown": parse_article,
    ".csv": parse_faq_csv,
    ".json": parse_faq_json,
    ".jsonl": parse_faq_jsonl,
}


def iter_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Every supported file under the given files and folders, in a stable order.

    Raises:
        DocumentError: a path does not exist.
    """
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise DocumentError(f"{path}: no such file or folder")
        if path.is_dir():
            # An index folder kept among the documents is not a document.
            indexes = {m.parent for m in path.rglob("manifest.json") if (m.parent / ".lock").exists()}
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                if any(part.startswith(".") for part in child.relative_to(path).parts):
                    continue
                if any(folder in child.parents for folder in indexes):
                    continue
                if child.suffix.lower() in SUPPORTED_SUFFIXES:
                    yield child
                else:
                    log.warning("%s: unsupported file type %r; skipped", child, child.suffix or "(none)")
        elif path.suffix.lower() in SUPPORTED_SUFFIXES:
            yield path
        else:
            log.warning("%s: unsupported file type %r; skipped", path, path.suffix or "(none)")


def load_document(path: Path, max_bytes: int | None = None) -> Document:
    """Read and parse one file by its suffix."""
    text = read_text(path, max_bytes)
    return PARSERS[path.suffix.lower()](str(path), text)


def load_documents(paths: Iterable[str | Path], max_bytes: int | None = None) -> list[Document]:
    """Load every supported file under `paths`.

    Raises:
        DocumentError: a file is malformed (the message names file and line), or nothing was found.
    """
    documents = [load_document(p, max_bytes) for p in iter_files(paths)]
    if not documents:
        raise DocumentError(f"no supported documents ({', '.join(sorted(SUPPORTED_SUFFIXES))}) found in {list(map(str, paths))}")
    return documents
