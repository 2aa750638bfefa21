"""What every reader shares: the Document it returns, ids, titles, decoding, and the passage assembler.

A reader turns one file's bytes into blocks of text (paragraphs, headings,
explicit questions) located in the text the index stores; `assemble` turns the
blocks into passages (paragraphs and FAQ pairs) the same way for every format.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .. import settings
from ..errors import DocumentError, UnreadableDocumentError
from ..sentences import split_sentences
from ..types import Passage

log = logging.getLogger(__name__)

# A text file is refused as binary when this share of its characters could not be decoded.
MAX_REPLACEMENT_SHARE = 0.3
# Copies of one passage's text a document may hold; more are left out (a 43 KB .docx held 26,886).
MAX_IDENTICAL = 3
# A paragraph longer than this is cut into passages of at most this many characters, at spaces:
# the model reads about 1,300 of them, and an answer returns its passage (a 2.4 MB file without
# punctuation was one passage in every answer that retrieved it).
MAX_PASSAGE_CHARS = 10_000

_FAQ_HEADING = re.compile(
    r"^\s*(?:#{1,6}\s*)?(?:\*\*)?\s*(?:frequently\s+asked\s+questions|faqs?)\b", re.IGNORECASE
)
MD_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
# A line that is only a label ("Filed under:", "Tags:") carries nothing to answer from.
_EMPTY_TRAILER = re.compile(r"^\s*[\w][\w '&/-]{0,40}:\s*$")
_QUESTION_PREFIX = re.compile(r"^\s*(?:#{1,6}\s*|[-*]\s+)?(?:\*\*)?\s*(?:q\s*[:.)]\s*)?", re.IGNORECASE)


@dataclass(frozen=True)
class Document:
    """A source file as read: its path (as given), the text the index stores, title and passages.

    `text` is the file itself for text formats and the extracted text for the
    others (HTML, PDF, DOCX); passage offsets point into it. `warnings` holds
    (line, message) pairs the reader noticed, for `qa check`.
    """

    path: str
    text: str
    title: str
    passages: tuple[Passage, ...]
    kind: str = ""
    warnings: tuple[tuple[int, str], ...] = ()


def readable_title(path: Path) -> str:
    """'diaz-canel_russia-visit.txt' -> 'Diaz Canel Russia Visit'."""
    words = re.split(r"[-_\s.]+", path.stem)
    return " ".join(w[:1].upper() + w[1:] for w in words if w) or path.name


def passage_id(path: str, kind: str, text: str, seen: dict[str, int]) -> str:
    """A stable id from the document and the passage's content: it survives rebuilds of unchanged text."""
    digest = hashlib.sha1(f"{kind}\0{text}".encode()).hexdigest()[:12]
    doc = re.sub(r"[^A-Za-z0-9]+", "-", Path(path).stem).strip("-").lower()[:40] or "doc"
    base = f"{doc}:{digest}"
    seen[base] = seen.get(base, 0) + 1
    return base if seen[base] == 1 else f"{base}-{seen[base]}"


def _utf16(raw: bytes) -> str | None:
    """The UTF-16 encoding of `raw`, by its byte-order mark or (without one) by NULs in every other byte; else None.

    Windows tools (PowerShell, Notepad's "Unicode") write UTF-16, whose NUL bytes made such files look binary.
    """
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    sample = raw[:4096]
    if len(sample) >= 8 and len(sample) % 2 == 0:
        even, odd = sample[0::2].count(0), sample[1::2].count(0)
        if odd >= 0.9 * len(sample) // 2 and even == 0:
            return "utf-16-le"
        if even >= 0.9 * len(sample) // 2 and odd == 0:
            return "utf-16-be"
    return None


def decode_text(path: str, raw: bytes) -> str:
    """A text file's bytes as text: UTF-8, UTF-16 (by its mark or its NULs) or Windows-1252, with a warning for
    the last; bytes none of them decodes become U+FFFD with a warning.

    Raises:
        UnreadableDocumentError: the bytes are not text (a NUL byte, or mostly undecodable).
    """
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    encoding = _utf16(raw)
    if encoding is not None:
        try:
            return raw.decode(encoding).removeprefix("\ufeff")
        except UnicodeDecodeError:
            pass  # not UTF-16 after all: judged as bytes below
    nul = raw.find(b"\0")
    if nul >= 0:
        line = raw[:nul].count(b"\n") + 1
        raise UnreadableDocumentError(path, "not a text file (it holds NUL bytes)", line)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        text = raw.decode("utf-8", errors="replace")
    try:
        # Windows-1252 decodes all but five bytes; mostly ASCII with a few accents reads as Western text.
        western = raw.decode("cp1252")
        if sum(ord(c) > 127 for c in western) <= MAX_REPLACEMENT_SHARE * len(western):
            log.warning("%s:%d: not valid UTF-8; read as Windows-1252 (cp1252)", path, line)
            return western
    except UnicodeDecodeError:
        pass
    share = text.count("\ufffd") / max(1, len(text))
    if share >= MAX_REPLACEMENT_SHARE:
        raise UnreadableDocumentError(path, f"not a text file ({share:.0%} of it is not valid UTF-8)", line)
    log.warning("%s:%d: not valid UTF-8; undecodable bytes replaced with U+FFFD", path, line)
    return text


def line_of(text: str, offset: int) -> int:
    """The 1-based line of `text` that holds `offset`."""
    return text.count("\n", 0, offset) + 1


def sentences_of(path: str, line: int, body: str, offset: int):
    """split_sentences, with any failure of the splitter reported as a DocumentError naming file and line."""
    try:
        return split_sentences(body, offset=offset)
    except Exception as exc:  # pysbd is a dependency: its failures must name the document, not crash the build
        raise DocumentError.at(path, f"cannot split into sentences ({type(exc).__name__}: {exc})", line) from exc


# --------------------------------------------------------------------------- blocks → passages


@dataclass(frozen=True)
class Line:
    """One line of the stored text: its offsets (without the line break) and content."""

    start: int
    end: int
    text: str

    @property
    def stripped(self) -> str:
        return self.text.strip()


@dataclass
class Block:
    """A run of lines that belong together: a paragraph, a heading, or a question.

    Args:
        lines: the lines, in order.
        heading: the heading's text when the block is a heading, else None.
        question: an explicit question (HTML <summary>, <dt>): its lines after the first, if any, answer it.
        closes: the answer of an open question ends with this block.
    """

    lines: list[Line]
    heading: str | None = None
    question: bool = False
    closes: bool = False


def split_lines(text: str, breaks: re.Pattern | None = None) -> list[Line]:
    """The lines of `text` with their offsets: at `breaks` (a pattern), else wherever str.splitlines breaks."""
    lines, pos = [], 0
    if breaks is None:
        for raw in text.splitlines(keepends=True):
            content = raw.rstrip("\r\n")
            lines.append(Line(pos, pos + len(content), content))
            pos += len(raw)
        return lines
    for match in breaks.finditer(text):
        lines.append(Line(pos, match.start(), text[pos : match.start()]))
        pos = match.end()
    if pos < len(text):
        lines.append(Line(pos, len(text), text[pos:]))
    return lines


def trim_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def is_question(line: str) -> bool:
    """True when a line reads as a question: it ends with '?' (before any closing '**')."""
    return line.rstrip().rstrip("*").rstrip().endswith("?")


def question_text(line: str) -> str:
    """A question line without its Markdown or 'Q:' prefix and emphasis."""
    return _QUESTION_PREFIX.sub("", line).strip().strip("*").strip()


def assemble(
    path: str,
    text: str,
    blocks: Iterable[Block],
    *,
    separated: bool = True,
    questions_anywhere: bool = False,
    title: str | None = None,
    locate: Callable[[int], tuple[int | None, int]] | None = None,
) -> tuple[str, list[Passage], list[tuple[int, str]]]:
    """Paragraphs and FAQ pairs from a document's blocks.

    After a heading or line such as "FAQ" or "Frequently Asked Questions", a
    block whose first line ends in '?' opens a question and the blocks after
    it are its answer. With `questions_anywhere`, a heading ending in '?'
    opens one anywhere in the document; explicit question blocks always do.

    Args:
        path: the document's path, for ids and messages.
        text: the stored text the blocks' offsets point into.
        blocks: the blocks in document order.
        separated: paragraphs were separated by blank lines (a heading then ends an FAQ section).
        questions_anywhere: a heading ending in '?' opens a question outside FAQ sections too.
        title: the document's title; None takes the first heading, else the file name made readable.
        locate: source offset → (page, line) for the passage; None: no page, the line in `text`.

    Returns:
        (title, passages, warnings): warnings are (line, message) pairs.

    Raises:
        DocumentError: the sentence splitter failed (naming file and line).
    """
    locate = locate or (lambda offset: (None, line_of(text, offset)))
    first_heading = None
    passages: list[Passage] = []
    warnings: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    in_faq = False
    paragraph_no = 0
    question: Block | None = None
    answer: list[Line] = []
    max_chars, max_passages = settings.max_doc_chars(), settings.max_doc_passages()
    copies: dict[tuple, list[int]] = {}  # (kind, question, text) -> [first line, copies left out]
    stopped = False

    def add(kind: str, start: int, end: int, q: str | None = None, at: int | None = None) -> None:
        nonlocal stopped
        start, end = trim_span(text, start, end)
        if not text[start:end] or stopped:
            return
        if start >= max_chars:
            return
        end = min(end, max_chars)
        body = text[start:end]
        key = (kind, q, body)
        if key in copies:
            copies[key][1] += 1
            if copies[key][1] > MAX_IDENTICAL - 1:
                return
        else:
            copies[key] = [locate(start if at is None else at)[1], 0]
        pieces = [(start, end)] if kind == "faq" or end - start <= MAX_PASSAGE_CHARS else cut_long(text, start, end)
        if len(pieces) > 1:
            line = locate(start)[1]
            warnings.append((line, f"a paragraph of {end - start:,} characters is cut into {len(pieces)} passages "
                                   f"of at most {MAX_PASSAGE_CHARS:,}"))
        for a, b in pieces:
            if len(passages) >= max_passages:
                stopped = True
                line = locate(a)[1]
                warnings.append((line, f"over {max_passages:,} passages (QA_MAX_DOC_PASSAGES); "
                                       f"from line {line} on the text is not indexed"))
                return
            _add(kind, a, b, q, at)

    def _add(kind: str, start: int, end: int, q: str | None, at: int | None) -> None:
        nonlocal paragraph_no
        start, end = trim_span(text, start, end)
        body = text[start:end]
        if not body:
            return
        page, line = locate(start if at is None else at)
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
                line=line,
                question=q,
                sentences=sentences_of(path, line, body, start),
                page=page,
            )
        )

    def flush_faq() -> None:
        nonlocal question, answer
        if question is not None:
            first = question.lines[0]
            asked = question_text(question.heading if question.heading is not None else first.text)
            if answer and asked:
                add("faq", answer[0].start, answer[-1].end, q=asked, at=first.start)
            else:
                line = locate(first.start)[1]
                log.warning("%s:%d: FAQ question has no answer; skipped", path, line)
                warnings.append((line, f"FAQ question {asked!r} has no answer; skipped"))
        question, answer = None, []

    for block in blocks:
        first = block.lines[0]
        single = len(block.lines) == 1 or block.heading is not None
        head = block.heading if block.heading is not None else first.text
        if single and not block.question and _FAQ_HEADING.match(head) and not is_question(head):
            flush_faq()
            in_faq = True
            continue
        if len(block.lines) == 1 and block.heading is None and _EMPTY_TRAILER.match(first.text):
            continue
        asks = block.question or (
            block.heading is not None and is_question(block.heading) and (in_faq or questions_anywhere)
        )
        if block.heading is not None and not asks:
            first_heading = first_heading or block.heading.strip() or None
            if in_faq and separated:
                flush_faq()
                in_faq = False
            elif question is not None and not in_faq:
                flush_faq()
            continue
        if in_faq or asks or question is not None:
            rest = block.lines
            if asks or (in_faq and block.heading is None and is_question(first.text)):
                flush_faq()
                question, rest = block, ([] if block.heading is not None else block.lines[1:])
            if question is None:
                add("paragraph", first.start, block.lines[-1].end)
                continue
            answer.extend(l for l in rest if not _EMPTY_TRAILER.match(l.text))
            if block.closes:
                flush_faq()
            continue
        add("paragraph", first.start, block.lines[-1].end)
    flush_faq()
    if len(text) > max_chars:
        line = locate(max_chars)[1]
        warnings.append((line, f"the text is over {max_chars:,} characters (QA_MAX_DOC_CHARS); "
                               f"from line {line} on it is not indexed"))
    for (kind, q, body), (line, repeats) in copies.items():
        if repeats > MAX_IDENTICAL - 1:
            left_out = repeats - (MAX_IDENTICAL - 1)
            warnings.append((line, f"{left_out:,} more copies of the {kind} on line {line} "
                                   f"({' '.join(body.split())[:40]!r}) are not indexed (at most {MAX_IDENTICAL} copies)"))
    warnings.sort(key=lambda w: w[0])

    title = title or first_heading or readable_title(Path(path))
    return title, [replace(p, title=title) for p in passages], warnings


def cut_long(text: str, start: int, end: int, size: int = MAX_PASSAGE_CHARS) -> list[tuple[int, int]]:
    """Spans of at most `size` characters covering text[start:end], cut at the last space (or line break) before each limit."""
    spans = []
    while end - start > size:
        cut = max(text.rfind(" ", start + size // 2, start + size), text.rfind("\n", start + size // 2, start + size))
        cut = cut if cut > start else start + size
        spans.append((start, cut))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if start < end:
        spans.append((start, end))
    return spans


def text_blocks(lines: list[Line], one_per_line: bool) -> Iterator[Block]:
    """Group non-blank lines into paragraphs (by blank lines, or one per line); a Markdown heading line is its own block."""
    block: list[Line] = []
    for line in lines:
        heading = MD_HEADING.match(line.text)
        if not line.stripped:
            if block:
                yield Block(block)
            block = []
        elif one_per_line or heading:
            if block:
                yield Block(block)
            yield Block([line], heading=heading.group(2) if heading else None)
            block = []
        else:
            block.append(line)
    if block:
        yield Block(block)


def has_blank_lines(lines: list[Line]) -> bool:
    """True when paragraphs are separated by blank lines (else each line is a paragraph)."""
    return any(not l.stripped for l in lines[1:-1]) and sum(1 for l in lines if l.stripped) > 1


@dataclass
class TextBuilder:
    """The extracted text of a non-text format, built block by block, with each block's lines located in it.

    Blocks are separated by a blank line; `page_starts` records where each page begins (PDF).
    """

    parts: list[str] = field(default_factory=list)
    length: int = 0
    blocks: list[Block] = field(default_factory=list)
    limit: int = field(default_factory=settings.max_doc_chars)

    @property
    def full(self) -> bool:
        """The text has reached the limit (QA_MAX_DOC_CHARS): a reader can stop extracting.

        Only the text that `assemble` keeps is extracted, so a small file that unpacks
        to 50 MB of XML costs what its first `limit` characters cost; `assemble` says
        where the text was cut.
        """
        return self.length > self.limit

    def add(self, text: str, *, heading: bool = False, question: bool = False, closes: bool = False) -> Block | None:
        """Append one block of (already cleaned) text; its lines stay lines. Returns the block, or None if blank or full."""
        text = text.strip()
        if not text or self.full:
            return None
        if self.parts:
            self._append("\n\n")
        start = self.length
        self._append(text)
        lines = [Line(start + l.start, start + l.end, l.text) for l in split_lines(text, _NEWLINE) if l.text.strip()]
        block = Block(lines, heading=" ".join(text.split()) if heading else None, question=question, closes=closes)
        self.blocks.append(block)
        return block

    def _append(self, piece: str) -> None:
        self.parts.append(piece)
        self.length += len(piece)

    @property
    def text(self) -> str:
        return "".join(self.parts)


_NEWLINE = re.compile("\n")


def clean_inline(text: str) -> str:
    """Whitespace runs (but line breaks) collapsed to one space, each line stripped, blank lines dropped."""
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def check_ids(path: str, passages: list[Passage]) -> None:
    """Raise DocumentError on two passages with one id (an FAQ file's own ids)."""
    seen: dict[str, int] = {}
    for p in passages:
        if p.id in seen:
            raise DocumentError.at(path, f"duplicate id {p.id.split(':', 1)[1]!r} (first on line {seen[p.id]})", p.line)
        seen[p.id] = p.line
