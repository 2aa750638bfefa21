"""reStructuredText (`.rst`) through docutils, keeping source offsets.

docutils parses the file (with file inclusion and raw passthrough disabled,
and its messages silenced); its nodes tell which source blocks are section
titles, body text, or markup with nothing to read (comments, link targets,
substitution definitions). Each passage is the file's own text between its
offsets, markup included, so quotes are exact.
"""

from __future__ import annotations

import re

from ..errors import DocumentError
from .base import Block, Document, assemble, decode_text, split_lines

SUFFIXES = (".rst", ".rest")
KIND = "rst"
_BREAKS = re.compile(r"\r\n?|\n")
_SETTINGS = {
    "report_level": 5,  # no system messages in the output
    "halt_level": 5,  # never raise on a markup error: keep what parses
    "file_insertion_enabled": False,  # `.. include:: /etc/passwd` reads nothing
    "raw_enabled": False,
    "_disable_config": True,  # no docutils.conf from the user's machine
    "warning_stream": False,
}


def _doctree(path: str, text: str):
    from docutils.core import publish_doctree

    try:
        return publish_doctree(text, source_path=path, settings_overrides=_SETTINGS)
    except Exception as exc:  # docutils is a dependency: its failures name the file
        line = getattr(exc, "line", None) or 1
        raise DocumentError.at(path, f"reStructuredText cannot be parsed ({type(exc).__name__}: {exc})", line) from exc


def parse_rst(path: str, text: str) -> Document:
    """Split reStructuredText into paragraphs and FAQ pairs (see base.assemble), offsets into `text`."""
    from docutils import nodes

    tree = _doctree(path, text)
    titles: dict[int, str] = {}  # 1-based line of a title's underline -> its text
    content: set[int] = set()  # 1-based lines where body text starts
    question_terms: set[int] = set()
    for node in tree.findall():
        line = getattr(node, "line", None)
        if not line:
            continue
        if isinstance(node, (nodes.title, nodes.subtitle)) and isinstance(node.parent, (nodes.section, nodes.document)):
            titles[line] = node.astext()
        elif isinstance(node, (nodes.paragraph, nodes.literal_block, nodes.term, nodes.line_block,
                               nodes.doctest_block, nodes.table, nodes.definition)):
            content.add(line)
            if isinstance(node, nodes.term) and node.astext().rstrip().endswith("?"):
                question_terms.add(line)
    lines = split_lines(text, _BREAKS)
    blocks: list[Block] = []
    run: list[int] = []  # indexes into lines of the current blank-line-separated run
    for i in range(len(lines) + 1):
        if i < len(lines) and lines[i].stripped:
            run.append(i)
            continue
        if run:
            numbers = {j + 1 for j in run}
            chosen = [lines[j] for j in run]
            heading = next((titles[n] for n in sorted(numbers) if n in titles), None)
            if heading is not None:
                blocks.append(Block(chosen, heading=heading))
            elif numbers & content:
                # A definition whose term ends in '?' is a question and its answer, anywhere.
                asks = run[0] + 1 in question_terms
                blocks.append(Block(chosen, question=asks, closes=asks))
        run = []
    title = tree.get("title") or None
    title, passages, warnings = assemble(path, text, blocks, title=title)
    return Document(path=path, text=text, title=title, passages=tuple(passages), kind=KIND, warnings=tuple(warnings))


def read(path: str, data: bytes) -> Document:
    """A reStructuredText file's bytes → Document (see parse_rst)."""
    return parse_rst(path, decode_text(path, data))
