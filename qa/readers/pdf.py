"""PDF (`.pdf`) through pypdf: the text of each page, cut into paragraphs; citations carry the page number.

A PDF's text layer has lines but rarely blank lines, so a paragraph ends at a
blank line or after a line clearly shorter than the page's longest (the last
line of a paragraph, a heading, a question), and such a short line after a
finished sentence starts a new one. The extracted text, pages in
order and blocks separated by blank lines, is what passage offsets point into.
An encrypted PDF that opens with no password is read; one that needs a
password, one with no text layer (scanned images) or a damaged one is skipped.
"""

from __future__ import annotations

import bisect
import io
import re
from pathlib import Path

from ..errors import UnreadableDocumentError
from .base import Document, TextBuilder, assemble, readable_title

SUFFIXES = (".pdf",)
KIND = "pdf"
# A line shorter than this share of the page's longest line ends its paragraph.
SHORT_LINE = 0.75


def paragraphs(page_text: str) -> list[str]:
    """A page's text cut into paragraphs (lines joined by newlines), whitespace runs collapsed."""
    lines = [" ".join(line.split()) for line in page_text.splitlines()]
    longest = max((len(l) for l in lines), default=0)
    out: list[str] = []
    current: list[str] = []
    for line in lines:
        if not line:
            if current:
                out.append("\n".join(current))
            current = []
            continue
        short = len(line) < SHORT_LINE * longest
        if current and short and current[-1].endswith((".", "!", "?", ":")):
            # A short line after a finished sentence starts a block of its own (a heading, a question).
            out.append("\n".join(current))
            current = []
        current.append(line)
        if short:
            out.append("\n".join(current))
            current = []
    if current:
        out.append("\n".join(current))
    return out


def _reader(path: str, data: bytes):
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableDocumentError(path, "encrypted PDF that needs a password")
        return reader
    except UnreadableDocumentError:
        raise
    except Exception as exc:  # pypdf raises many kinds on damaged files; each is a reason to skip, named
        raise UnreadableDocumentError(path, f"not a readable PDF ({_reason(exc)})") from exc


_JUNK_TITLES = {"untitled", "untitled document", "title", "document", "none", "null", "unknown", "microsoft word"}
_FILE_NAME = re.compile(r"\.(?:docx?|odt|rtf|tex|pdf|txt|indd|pages|pptx?|xlsx?)$", re.IGNORECASE)


def junk_title(title: str) -> bool:
    """True for a metadata title that names no document: "untitled", "Microsoft Word - x.docx", a file name, no letters.

    Tools fill the PDF info dictionary with such values; the file name says more.
    """
    t = title.strip().lower()
    return (t in _JUNK_TITLES or t.startswith(("microsoft word - ", "microsoft powerpoint - "))
            or bool(_FILE_NAME.search(t)) or not any(c.isalpha() for c in t))


def _reason(exc: Exception) -> str:
    text = " ".join(str(exc).split())[:160]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def parse_pdf(path: str, data: bytes) -> Document:
    """A PDF's bytes → Document over its extracted text, each passage with its page.

    Raises:
        UnreadableDocumentError: damaged, password-protected, or without a text layer.
    """
    reader = _reader(path, data)
    out = TextBuilder()
    page_starts: list[int] = []  # offset in the stored text where each page's first block starts
    page_numbers: list[int] = []
    try:
        pages = list(reader.pages)
        for number, page in enumerate(pages, start=1):
            if out.full:
                break  # assemble says where the text was cut
            blocks = paragraphs(page.extract_text() or "")
            for i, text in enumerate(blocks):
                block = out.add(text)
                if i == 0 and block is not None:
                    page_starts.append(block.lines[0].start)
                    page_numbers.append(number)
            if blocks and out.blocks:
                out.blocks[-1].closes = True  # an FAQ answer ends with its page
    except Exception as exc:
        raise UnreadableDocumentError(path, f"not a readable PDF ({_reason(exc)})") from exc
    if not out.blocks:
        raise UnreadableDocumentError(path, f"no text in {len(pages)} page(s) (a scanned, image-only PDF?)")
    text = out.text

    def locate(offset: int) -> tuple[int | None, int]:
        i = max(0, bisect.bisect_right(page_starts, offset) - 1)
        return page_numbers[i], text.count("\n", page_starts[i], offset) + 1

    meta_title = None
    try:
        meta = reader.metadata
        meta_title = " ".join(str(meta.title).split()) if meta is not None and meta.title else None
    except Exception:  # a damaged info dictionary costs only the title
        meta_title = None
    title = meta_title if meta_title and not junk_title(meta_title) else readable_title(Path(path))
    title, passages, warnings = assemble(path, text, out.blocks, title=title, locate=locate)
    return Document(path=path, text=text, title=title, passages=tuple(passages), kind=KIND, warnings=tuple(warnings))


read = parse_pdf
