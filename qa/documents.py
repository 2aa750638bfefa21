"""Documents → passages: find the files, read each with the reader for its format.

The formats live in `qa/readers/` (one module each: text, Markdown, reST, CSV
and JSON FAQ files, HTML, PDF, DOCX); which files a build reads is
`qa/discovery.py`. Every passage keeps character offsets into the text the
index stores (the file itself, or the text extracted from it), so an answer
quoted from it can always be checked against its source.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Iterable

from .discovery import iter_files
from .errors import DocumentError, UnreadableDocumentError
from .alternates import KIND as ALTERNATES_KIND, is_alternates_file, parse_alternates
from .readers import reader_for, supported_suffixes
from .readers.base import Document, decode_text, passage_id, readable_title
from .readers.faq_csv import parse_faq_csv
from .readers.faq_json import parse_faq_json, parse_faq_jsonl
from .readers.markdown import parse_markdown
from .readers.text import parse_article
from . import settings

log = logging.getLogger(__name__)

__all__ = [
    "Document", "DocumentError", "UnreadableDocumentError", "iter_files", "load_document", "load_documents",
    "parse_article", "parse_markdown", "parse_faq_csv", "parse_faq_json", "parse_faq_jsonl", "passage_id",
    "read_bytes", "read_text", "readable_title", "SUPPORTED_SUFFIXES",
]

SUPPORTED_SUFFIXES = supported_suffixes()


def read_bytes(path: Path, max_bytes: int | None = None) -> bytes:
    """A file's bytes, refusing one over the size limit.

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
        raise DocumentError.at(path, f"cannot read: {exc.strerror or exc}") from exc
    if size > max_bytes:
        raise DocumentError.at(
            path, f"{size:,} bytes is over the {max_bytes:,}-byte limit for one document; "
            "raise it with --max-doc-bytes or QA_MAX_DOC_BYTES"
        )
    return raw


def read_text(path: Path, max_bytes: int | None = None) -> str:
    """Read a text file as UTF-8; undecodable bytes become U+FFFD with a warning.

    Raises:
        DocumentError: the file is over the size limit or cannot be read.
        UnreadableDocumentError: it is not text (NUL bytes, or mostly undecodable).
    """
    return decode_text(str(path), read_bytes(path, max_bytes))


def load_document(path: Path, max_bytes: int | None = None) -> Document:
    """Read and parse one file with the reader for its suffix.

    Raises:
        DocumentError: a malformed file (naming file and line), or one over the size limit.
        UnreadableDocumentError: not a readable document (binary, encrypted, damaged); the reason says which.
    """
    path = Path(path)
    if is_alternates_file(path):
        text = read_text(path, max_bytes)
        parse_alternates(str(path), text)  # a malformed line stops the build here, naming it
        return Document(path=str(path), text=text, title="Alternate phrasings", passages=(), kind=ALTERNATES_KIND)
    reader = reader_for(path.suffix)
    if reader is None:
        raise DocumentError.at(path, f"unsupported file type {path.suffix or '(none)'!r}")
    data = read_bytes(path, max_bytes)
    try:
        document = reader.read(str(path), data)
    except DocumentError:
        raise
    except RecursionError as exc:
        raise DocumentError.at(path, "nested too deeply to parse") from exc
    except Exception as exc:  # a parsing library's own failure: name the file, never crash the build
        reason = " ".join(str(exc).split())[:200]
        raise DocumentError.at(path, f"cannot be parsed ({type(exc).__name__}: {reason})") from exc
    return _at_most(document, settings.max_doc_passages())


def _at_most(document: Document, limit: int) -> Document:
    """The document with at most `limit` passages (FAQ files make theirs without `assemble`, which caps its own)."""
    if len(document.passages) <= limit:
        return document
    first_out = document.passages[limit]
    warning = (first_out.line, f"over {limit:,} passages (QA_MAX_DOC_PASSAGES); "
                               f"from line {first_out.line} on the file is not indexed")
    log.warning("%s:%d: %s", document.path, *warning)
    return replace(document, passages=document.passages[:limit], warnings=document.warnings + (warning,))


def load_documents(paths: Iterable[str | Path], max_bytes: int | None = None) -> list[Document]:
    """Load every supported file under `paths`; unreadable ones are skipped with a warning.

    Raises:
        DocumentError: a file is malformed (the message names file and line), or nothing was found.
    """
    paths = list(paths)
    documents = []
    for path in iter_files(paths):
        try:
            documents.append(load_document(path, max_bytes))
        except UnreadableDocumentError as exc:
            log.warning("%s", exc)
    if not documents:
        raise DocumentError(f"no supported documents ({', '.join(sorted(SUPPORTED_SUFFIXES))}) found in {list(map(str, paths))}")
    return documents
