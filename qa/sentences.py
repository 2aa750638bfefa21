"""Sentence boundaries with character offsets (pysbd), checked against the text."""

from __future__ import annotations

import re
from functools import lru_cache

from .types import Span


@lru_cache(maxsize=1)
def _segmenter():
    import pysbd

    return pysbd.Segmenter(language="en", clean=False, char_span=True)


# Control characters other than tab and line breaks (U+0000-U+001F, U+007F-U+009F), as text exported
# from Word or PDF holds: pysbd crashes on some (U+001C-U+001F before "9." raises int()'s ValueError).
# Each becomes one space, so pysbd's input has the text's length and every offset stays exact.
_CONTROLS = dict.fromkeys([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0)], " ")


def normalise(text: str) -> str:
    """`text` with each control character (but tab, CR and LF) replaced by a space: same length, same offsets."""
    return text.translate(_CONTROLS)


# pysbd's time grows faster than linearly with the text's length (120,000 characters take about a
# minute), so a long text is cut into windows at sentence-like boundaries first.
WINDOW_CHARS = 2000
_BOUNDARY = re.compile(r"[.!?][\"')\]]*\s+|\n")


def _windows(text: str) -> list[tuple[int, int]]:
    """(start, end) pieces of `text`, each about WINDOW_CHARS long, cut after a full stop or a newline."""
    pieces, start = [], 0
    while len(text) - start > WINDOW_CHARS:
        cut = None
        for match in _BOUNDARY.finditer(text, start + WINDOW_CHARS // 2, start + WINDOW_CHARS):
            cut = match.end()
        cut = cut or start + WINDOW_CHARS
        pieces.append((start, cut))
        start = cut
    pieces.append((start, len(text)))
    return pieces


def split_sentences(text: str, offset: int = 0) -> tuple[Span, ...]:
    """Sentence spans of `text`, shifted by `offset`; whitespace around each is trimmed.

    pysbd finds the boundaries (in the text with control characters as spaces,
    see `normalise`); each span is re-located in `text` so that the spans are
    always exact, in order and non-overlapping, whatever pysbd returns.
    """
    source, text = text, normalise(text)
    spans: list[Span] = []
    for start, end in _windows(text) if text.strip() else ():
        piece, cursor = text[start:end], 0
        for segment in _segmenter().segment(piece) if piece.strip() else ():
            sentence = segment.sent.strip()
            found = piece.find(sentence, cursor) if sentence else -1
            if found < 0:
                continue
            spans.append(Span(offset + start + found, offset + start + found + len(sentence)))
            cursor = found + len(sentence)
    if not spans and source.strip():
        start = len(source) - len(source.lstrip())
        spans.append(Span(offset + start, offset + len(source.rstrip())))
    return tuple(spans)
