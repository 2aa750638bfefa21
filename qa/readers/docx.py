"""Word files (`.docx`) through python-docx: paragraphs and headings in body order, tables by row.

A heading (style "Heading N") ending in '?' followed by text is an FAQ pair;
after a heading such as "FAQ", paragraphs ending in '?' are questions too.
The title is the "Title" paragraph, else the document's core title, else the
file name. Passages point into the extracted text the index stores.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from .. import settings
from ..errors import DocumentError, UnreadableDocumentError
from .base import Document, TextBuilder, assemble, clean_inline, readable_title

SUFFIXES = (".docx",)
KIND = "docx"


def _unpacked(path: str, data: bytes) -> None:
    """Refuse a file whose parts unpack to more than QA_MAX_DOC_BYTES (a zip bomb), before parsing any.

    The sizes come from the zip's directory; zipfile stops reading a part at its
    stated size and fails its checksum, so a part cannot unpack to more than it says.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            size = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # python-docx names the damage below
    limit = settings.max_doc_bytes()
    if size > limit:
        raise DocumentError.at(
            path, f"unpacks to {size:,} bytes, over the {limit:,}-byte limit for one document; raise it with QA_MAX_DOC_BYTES"
        )


def _open(path: str, data: bytes):
    import docx

    _unpacked(path, data)
    try:
        return docx.Document(io.BytesIO(data))
    except Exception as exc:  # a broken zip, a zip without word/document.xml, bad XML: skip, with the reason
        reason = " ".join(str(exc).split())[:160]
        raise UnreadableDocumentError(path, f"not a readable .docx ({type(exc).__name__}: {reason})") from exc


def parse_docx(path: str, data: bytes) -> Document:
    """A .docx file's bytes → Document over its extracted text.

    Raises:
        UnreadableDocumentError: not a Word document (damaged zip or content).
    """
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    document = _open(path, data)
    out = TextBuilder()
    title = None
    # python-docx resolves a paragraph's style by scanning every style of the file (about 1 ms a
    # paragraph); a file names few styles, so each is resolved once.
    style_names: dict[str | None, str] = {}
    try:
        for element in document.element.body.iterchildren():
            if out.full:
                break  # assemble says where the text was cut
            tag = element.tag.rsplit("}", 1)[-1]
            if tag == "p":
                paragraph = Paragraph(element, document)
                text = clean_inline(paragraph.text)
                if element.style not in style_names:
                    style_names[element.style] = (paragraph.style.name if paragraph.style is not None else "") or ""
                style = style_names[element.style]
                if style == "Title":
                    title = title or " ".join(text.split()) or None
                    out.add(text, heading=True)
                else:
                    out.add(text, heading=style.startswith("Heading"))
            elif tag == "tbl":
                table = Table(element, document)
                rows = [" | ".join(clean_inline(c.text).replace("\n", " ") for c in row.cells) for row in table.rows]
                out.add("\n".join(r for r in rows if r.strip(" |")))
        core_title = document.core_properties.title
    except Exception as exc:
        reason = " ".join(str(exc).split())[:160]
        raise UnreadableDocumentError(path, f"not a readable .docx ({type(exc).__name__}: {reason})") from exc
    title = title or (" ".join(core_title.split()) if core_title else None) or readable_title(Path(path))
    title, passages, warnings = assemble(path, out.text, out.blocks, questions_anywhere=True, title=title)
    return Document(path=path, text=out.text, title=title, passages=tuple(passages), kind=KIND, warnings=tuple(warnings))


read = parse_docx
