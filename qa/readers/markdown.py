"""Markdown (`.md`, `.markdown`) through markdown-it-py (CommonMark), keeping source offsets.

The parser finds the blocks (headings, paragraphs, lists, code, quotes, tables),
so a `#` inside a fenced code block is not a heading and a setext heading is
one; each passage is still the file's own text between its offsets.
"""

from __future__ import annotations

import re

from .base import Block, Document, assemble, decode_text, has_blank_lines, split_lines

SUFFIXES = (".md", ".markdown")
KIND = "markdown"
# markdown-it's own line breaks (it normalises \r\n and \r to \n before counting lines).
_BREAKS = re.compile(r"\r\n?|\n")
_BLOCKS = {
    "paragraph_open", "heading_open", "bullet_list_open", "ordered_list_open", "blockquote_open",
    "fence", "code_block", "html_block", "table_open",
}


def _parser():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table")


def parse_markdown(path: str, text: str) -> Document:
    """Split Markdown into paragraphs and FAQ pairs (see base.assemble) with offsets into `text`."""
    lines = split_lines(text, _BREAKS)
    separated = has_blank_lines(lines)
    tokens = _parser().parse(text)
    blocks: list[Block] = []
    for i, token in enumerate(tokens):
        if token.level != 0 or token.type not in _BLOCKS or not token.map:
            continue
        first, last = token.map
        chosen = [l for l in lines[first:last] if l.stripped]
        if not chosen:
            continue
        if token.type == "heading_open":
            blocks.append(Block(chosen, heading=tokens[i + 1].content))
        elif token.type == "paragraph_open" and not separated:
            blocks.extend(Block([l]) for l in chosen)  # no blank lines anywhere: one paragraph a line
        else:
            blocks.append(Block(chosen))
    title, passages, warnings = assemble(path, text, blocks, separated=separated)
    return Document(path=path, text=text, title=title, passages=tuple(passages), kind=KIND, warnings=tuple(warnings))


def read(path: str, data: bytes) -> Document:
    """A Markdown file's bytes → Document (see parse_markdown)."""
    return parse_markdown(path, decode_text(path, data))

