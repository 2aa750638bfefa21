"""Cut a question and a passage into the reader's input windows, the same way for training and for `ask()`.

A window is ``[CLS] question [SEP] part of the passage [SEP]``, at most
`max_tokens` long. A passage longer than one window is read in overlapping
windows, so that an answer near a window's edge is whole in the next one.
Every passage token keeps its character offsets into the passage, so a span
the reader picks maps back to exact passage text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAX_TOKENS = 192  # the training length; ask() reads with the length the weights were trained at
MAX_QUESTION_TOKENS = 48
OVERLAP = 48  # passage tokens two neighbouring windows share


@dataclass(frozen=True)
class Window:
    """One input window and where its passage tokens come from.

    `input_ids`, `token_type_ids` and `context_mask` have one entry per token;
    `offsets[i]` is the (start, end) character range in the passage of token i,
    or (-1, -1) for a token that is not passage text.
    """

    input_ids: np.ndarray
    token_type_ids: np.ndarray
    context_mask: np.ndarray
    offsets: np.ndarray

    @property
    def first_char(self) -> int:
        """Where in the passage this window's text starts."""
        return int(self.offsets[self.context_mask.astype(bool)][1:, 0].min())

    def token_span(self, start: int, end: int) -> tuple[int, int] | None:
        """The first and last token of the character range [start, end), if the window holds all of it."""
        inside = np.flatnonzero(self.offsets[:, 0] >= 0)
        if not len(inside) or start < self.offsets[inside[0], 0] or end > self.offsets[inside[-1], 1]:
            return None
        first = inside[np.searchsorted(self.offsets[inside, 1], start, side="right")]
        last = inside[np.searchsorted(self.offsets[inside, 0], end, side="left") - 1]
        return (int(first), int(last)) if first <= last else None


def load_tokenizer(model_dir: Path):
    """The base model's `tokenizers.Tokenizer`, with its built-in padding and truncation turned off."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


class Windower:
    """Cuts (question, passage) pairs into windows with one tokenizer."""

    def __init__(self, tokenizer, max_tokens: int = MAX_TOKENS, overlap: int = OVERLAP):
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.overlap = overlap
        self.cls = tokenizer.token_to_id("[CLS]")
        self.sep = tokenizer.token_to_id("[SEP]")

    def question_ids(self, question: str) -> list[int]:
        return self.tokenizer.encode(question, add_special_tokens=False).ids[:MAX_QUESTION_TOKENS]

    def passage_tokens(self, passage: str) -> tuple[list[int], list[tuple[int, int]]]:
        encoding = self.tokenizer.encode(passage, add_special_tokens=False)
        return encoding.ids, encoding.offsets

    def windows(self, question_ids: list[int], passage_ids: list[int], passage_offsets: list[tuple[int, int]],
                limit: int | None = None) -> list[Window]:
        """The windows of one question over one tokenised passage, first to last (at most `limit`)."""
        room = self.max_tokens - len(question_ids) - 3
        step = max(room - self.overlap, 1)
        head = [self.cls, *question_ids, self.sep]
        out = []
        begin = 0
        while True:
            part = slice(begin, begin + room)
            ids = passage_ids[part]
            n_head, n_part = len(head), len(ids)
            input_ids = np.array(head + ids + [self.sep], dtype=np.int64)
            token_type_ids = np.array([0] * n_head + [1] * (n_part + 1), dtype=np.int64)
            context_mask = np.zeros(len(input_ids), dtype=np.int64)
            context_mask[0] = 1
            context_mask[n_head:n_head + n_part] = 1
            offsets = np.full((len(input_ids), 2), -1, dtype=np.int64)
            if n_part:
                offsets[n_head:n_head + n_part] = np.array(passage_offsets[part], dtype=np.int64)
            out.append(Window(input_ids, token_type_ids, context_mask, offsets))
            if begin + room >= len(passage_ids) or (limit is not None and len(out) >= limit):
                return out
            begin += step

    def __call__(self, question: str, passage: str, limit: int | None = None) -> list[Window]:
        return self.windows(self.question_ids(question), *self.passage_tokens(passage), limit=limit)


def batch_arrays(windows: list[Window]) -> dict[str, np.ndarray]:
    """Pad a list of windows to one batch: the four int64 arrays the network takes."""
    width = max(len(w.input_ids) for w in windows)
    arrays = {name: np.zeros((len(windows), width), dtype=np.int64)
              for name in ("input_ids", "attention_mask", "token_type_ids", "context_mask")}
    for row, window in enumerate(windows):
        n = len(window.input_ids)
        arrays["input_ids"][row, :n] = window.input_ids
        arrays["attention_mask"][row, :n] = 1
        arrays["token_type_ids"][row, :n] = window.token_type_ids
        arrays["context_mask"][row, :n] = window.context_mask
    return arrays
