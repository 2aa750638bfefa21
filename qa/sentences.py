"""Sentence boundaries with character offsets (pysbd), checked against the text."""

from __future__ import annotations

from functools import lru_cache

from .types import Span


@lru_cache(maxsize=1)
def _segmenter():
    import pysbd

    return pysbd.Segmenter(language="en", clean=False, char_span=True)


def split_sentences(text: str, offset: int = 0) -> tuple[Span, ...]:
    """Sentence spans of `text`, shifted by `offset`; whitespace around each is trimmed.

    pysbd finds the boundaries; each span is re-located in `text` so that the
    spans are always exact, in order and non-overlapping, whatever pysbd returns.
    """
    spans: list[Span] = []
    cursor = 0
    for segment in _segmenter().segment(text) if text.strip() else ():
        sentence = segment.sent.strip()
        if not sentence:
            continue
        found = text.find(sentence, cursor)
        if found < 0:
            continue
        spans.append(Span(offset + found, offset + found + len(sentence)))
        cursor = found + len(sentence)
    if not spans and text.strip():
        start = len(text) - len(text.lstrip())
        spans.append(Span(offset + start, offset + len(text.rstrip())))
    return tuple(spans)
