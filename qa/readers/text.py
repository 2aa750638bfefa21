"""Plain text (`.txt`): paragraphs separated by blank lines (one a line when there are none), FAQ sections."""

from __future__ import annotations

from .base import Document, assemble, decode_text, has_blank_lines, split_lines, text_blocks

SUFFIXES = (".txt",)
KIND = "text"


def parse_article(path: str, text: str) -> Document:
    """Split an article into paragraphs and, after an FAQ heading, question/answer pairs.

    Paragraphs are separated by blank lines; a file without blank lines has one
    paragraph per line. The title is the first Markdown-style heading line, else
    a readable form of the file name. Offsets point into `text` itself.
    """
    lines = split_lines(text)
    separated = has_blank_lines(lines)
    title, passages, warnings = assemble(path, text, text_blocks(lines, one_per_line=not separated), separated=separated)
    return Document(path=path, text=text, title=title, passages=tuple(passages), kind=KIND, warnings=tuple(warnings))


def read(path: str, data: bytes) -> Document:
    """A text file's bytes → Document (see parse_article)."""
    return parse_article(path, decode_text(path, data))
