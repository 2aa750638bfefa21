"""Realistic generated text for large benchmark corpora: a word-bigram Markov chain over real articles.

The chain learns from the Wikipedia paragraphs of ../shared/eval's SQuAD test folds (squad2_test and
xquad_en_test, which stay there when the full sets leave), so
generated sentences have the vocabulary, word frequencies and local grammar of real prose
(the vocabulary of their 28 articles), which BM25's IDF and the model's embeddings both need;
the same seed always gives the same text.
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from pathlib import Path

from bench.corpus import EVAL, SQUAD_TEST_FOLDS

_TOKEN = re.compile(r"\S+")


class TextGenerator:
    """Sentences and titled Markdown documents drawn from a bigram chain over real paragraphs."""

    def __init__(self, eval_dir: Path = EVAL, seed: int = 0):
        self.rng = random.Random(seed)
        follow: dict[str, list[str]] = defaultdict(list)
        self.starts: list[str] = []
        self.titles: list[str] = []
        for name in SQUAD_TEST_FOLDS:
            with open(eval_dir / name / "docs.jsonl", encoding="utf-8") as fh:
                for line in fh:
                    doc = json.loads(line)
                    self.titles.append(doc["title"].replace("_", " "))
                    for paragraph in doc["paragraphs"]:
                        words = _TOKEN.findall(paragraph)
                        for i, word in enumerate(words):
                            if i == 0 or words[i - 1].endswith("."):
                                if word[:1].isupper():
                                    self.starts.append(word)
                            if i + 1 < len(words):
                                follow[word].append(words[i + 1])
        self.follow = dict(follow)

    def sentence(self, min_words: int = 8, max_words: int = 24) -> str:
        """One sentence: starts where a real one does, ends at a full stop between the word limits."""
        rng = self.rng
        words = [rng.choice(self.starts)]
        while True:
            nexts = self.follow.get(words[-1])
            if not nexts:
                words.append(rng.choice(self.starts))
                continue
            word = rng.choice(nexts)
            words.append(word)
            if len(words) >= max_words or (len(words) >= min_words and word.endswith(".")):
                break
        text = " ".join(words)
        return text if text.endswith(".") else text.rstrip(",;:") + "."

    def paragraph(self, sentences: tuple[int, int] = (2, 4)) -> str:
        return " ".join(self.sentence() for _ in range(self.rng.randint(*sentences)))

    def document(self, paragraphs: int) -> str:
        """A Markdown article: a title heading and `paragraphs` paragraphs."""
        title = f"{self.rng.choice(self.titles)} {self.rng.randint(1, 9999)}"
        return f"# {title}\n\n" + "\n\n".join(self.paragraph() for _ in range(paragraphs)) + "\n"
