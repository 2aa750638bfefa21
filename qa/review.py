"""The review queue: logged questions the bot did not answer well, grouped, with an action each.

A question joins the queue when the bot abstained, only suggested, answered
with low confidence, when the user picked a suggestion or marked the answer
unhelpful, and no review has handled it yet. Similar questions are clustered
by the embedding model the bot already holds (greedy: each question, most asked
first, joins the first cluster whose centroid it matches at cosine >=
`CLUSTER_COSINE`, else opens one), most asked clusters first, each with its best
candidate passage: the one users picked, else the one retrieval ranked first
most often (the next one where the user marked the first one's answer
unhelpful). A "did you mean…?" or an abstention the user marked unhelpful
votes for nothing: the user turned down the bot's own guesses, and a wrong
alternate costs more than a missing one (docs/quality.md, "Learning from users").
A pick, or the next passage after a thumbed-down answer, is one person's word:
it counts only when more than one asker (a login or an address, as the web chat
logs them) gave it, so one user cannot point a cluster at the passage of their
choice. Rows without an asker (Python, benchmarks) count as one asker each.

Every action writes an ordinary file of the data folder and marks the
cluster's log rows reviewed; nothing touches the index, which the next
`qa build` makes from those files:

- `accept`: the questions become alternate phrasings of an FAQ (`alternates.jsonl`), together with
  the other logged questions that FAQ answered and nobody marked unhelpful (`Cluster.also_answered`):
  they show how users ask for it, and an FAQ that gains only its failed phrasings draws the
  questions of its neighbours too (measured in docs/quality.md);
- `add_faq`: a new FAQ pair, the reviewer's answer, in `added-faq.csv`;
- `dismiss`: nothing is written.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import settings
from .alternates import append_alternates, append_faq
from .bot import Bot
from .errors import QuestionLogError
from .log import QuestionLog
from .types import Passage

log = logging.getLogger(__name__)

# Cosine at which two questions count as the same request. Measured by `python -m bench.learning`
# on covidqa_qsim (another set than the one the learning loop is scored on): see docs/quality.md,
# "Learning from users".
CLUSTER_COSINE = 0.85
# An answer this close above the answer threshold is "answered with low confidence" and reviewed too.
LOW_CONFIDENCE_MARGIN = 0.1
CHOSEN_VOTE = 3.0  # a suggestion a user picked outweighs this many first-ranked retrievals


@dataclass
class Cluster:
    """Similar logged questions and what to do with them.

    `key` names the cluster between a listing and an action (its first answer id);
    `questions` are the distinct questions, most asked first; `count` how often
    they were asked; `reasons` counts why they are in the queue; `candidate` is
    the best passage to attach them to, or None; `also_answered` are the other
    logged questions the candidate answered well, which accepting it adds too.
    """

    key: str
    questions: list[str]
    answer_ids: list[str]
    count: int
    reasons: Counter = field(default_factory=Counter)
    candidate: Passage | None = None
    also_answered: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        c = self.candidate
        return {
            "key": self.key, "count": self.count, "questions": self.questions, "reasons": dict(self.reasons),
            "also_answered": self.also_answered,
            "candidate": None if c is None else {"passage_id": c.id, "kind": c.kind, "label": c.label,
                                                 "source": c.title, "text": c.text},
        }


def reasons_of(row: dict, answer_at: float) -> list[str]:
    """Why a logged answer needs review (empty: it does not)."""
    found = []
    if row["outcome"] in ("abstained", "suggested"):
        found.append(row["outcome"])
    elif row["confidence"] < answer_at + LOW_CONFIDENCE_MARGIN:
        found.append("low confidence")
    if row["chosen"]:
        found.append("suggestion picked")
    if row["helpful"] == 0:
        found.append("unhelpful")
    return found


def greedy_clusters(vectors: np.ndarray, threshold: float) -> list[list[int]]:
    """Rows of `vectors` (unit length, in priority order) grouped: each joins the first centroid at cosine >= threshold."""
    groups: list[list[int]] = []
    sums: list[np.ndarray] = []
    for i, v in enumerate(vectors):
        if sums:
            centroids = np.stack(sums)
            centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
            scores = centroids @ v
            best = int(np.argmax(scores))
            if scores[best] >= threshold:
                groups[best].append(i)
                sums[best] = sums[best] + v
                continue
        groups.append([i])
        sums.append(v.astype(np.float64))
    return groups


def _normal(question: str) -> str:
    return " ".join(question.casefold().split()).rstrip("?").strip()


def _distinct(rows: list[dict], besides: list[str]) -> list[str]:
    """The rows' questions, each once (by `_normal`), leaving out those among `besides`."""
    seen = {_normal(q) for q in besides}
    out = []
    for row in rows:
        if _normal(row["question"]) not in seen:
            seen.add(_normal(row["question"]))
            out.append(row["question"])
    return out


class Review:
    """The review queue over one question log, writing accepted changes into one data folder.

    Args:
        bot: the Bot whose index and model the questions are matched against.
        question_log: the log to review.
        data_dir: the folder the next build reads (`alternates.jsonl`, `added-faq.csv` go there).
        threshold: the clustering cosine.
    """

    def __init__(self, bot: Bot, question_log: QuestionLog, data_dir: str | Path, *, threshold: float = CLUSTER_COSINE):
        self.bot = bot
        self.log = question_log
        self.data_dir = Path(data_dir)
        self.threshold = threshold

    def _open_rows(self) -> list[dict]:
        """The log's open rows.

        Raises:
            ValueError: the log cannot be read (damaged, not a log, or upgraded by a newer qa since it
                was opened), in one line naming the file: the CLI and the Review tab show it as such,
                not as a traceback.
        """
        try:
            return self.log.rows(open_only=True)
        except (sqlite3.Error, QuestionLogError) as exc:
            raise ValueError(f"cannot read the question log {self.log.path} ({exc}); "
                             "move it aside and the chat starts a new one") from None

    def answered_well(self) -> dict[str, list[dict]]:
        """{passage id: the open log rows it answered that need no review (confident, not marked unhelpful)}."""
        answer_at = self.bot.answer_settings.answer_at
        out: dict[str, list[dict]] = {}
        for row in self._open_rows():
            if row["outcome"] == "answered" and row["passage_id"] and not reasons_of(row, answer_at):
                out.setdefault(row["passage_id"], []).append(row)
        return out

    def queue(self) -> list[Cluster]:
        """The open clusters, most asked first."""
        answer_at = self.bot.answer_settings.answer_at
        rows = [(row, reasons) for row in self._open_rows() if (reasons := reasons_of(row, answer_at))]
        if not rows:
            return []
        answered_well = self.answered_well()
        by_text: dict[str, list[tuple[dict, list[str]]]] = {}
        for row, reasons in rows:
            by_text.setdefault(_normal(row["question"]), []).append((row, reasons))
        texts = sorted(by_text, key=lambda t: (-len(by_text[t]), by_text[t][0][0]["seq"]))
        vectors = self.bot.embedder.encode([by_text[t][0][0]["question"] for t in texts], batch_size=64)
        passages = {p.id: p for p in self.bot.index.passages}
        clusters = []
        for group in greedy_clusters(vectors, self.threshold):
            members = [m for i in group for m in by_text[texts[i]]]
            votes: Counter = Counter()
            said: dict[str, list[tuple[float, str]]] = {}  # passage -> (weight, asker) of users' own evidence
            for row, _ in members:
                asker = row.get("asker") or f"row {row['answer_id']}"
                if row["chosen"] in passages:
                    said.setdefault(row["chosen"], []).append((CHOSEN_VOTE, asker))
                # The first retrieved passage; where the user said an answer did not help, the next one. A
                # thumbed-down "did you mean…?" or abstention points nowhere: the user turned down the bot's guesses.
                if row["helpful"] == 0 and row["outcome"] != "answered":
                    continue
                rejected = row["passage_id"] if row["helpful"] == 0 else None
                best = next((pid for pid in row["retrieved"].split() if pid != rejected and pid in passages), None)
                if best is not None and rejected is None:
                    votes[best] += 1.0
                elif best is not None:
                    said.setdefault(best, []).append((1.0, asker))
            for pid, evidence in said.items():
                if len({asker for _, asker in evidence}) > 1:  # agreement, not one person's say-so
                    votes[pid] += sum(weight for weight, _ in evidence)
            # An FAQ first: only an FAQ can take alternate phrasings.
            ranked = sorted(votes, key=lambda pid: (passages[pid].kind != "faq", -votes[pid]))
            questions = [by_text[texts[i]][0][0]["question"] for i in group]
            clusters.append(Cluster(
                key=members[0][0]["answer_id"],
                questions=questions,
                answer_ids=[row["answer_id"] for row, _ in members],
                count=len(members),
                reasons=Counter(r for _, reasons in members for r in reasons),
                candidate=passages[ranked[0]] if ranked else None,
                also_answered=_distinct(answered_well.get(ranked[0], []), questions) if ranked else [],
            ))
        clusters.sort(key=lambda c: -c.count)
        return clusters

    def find(self, key: str) -> Cluster:
        """The open cluster named `key`.

        Raises:
            ValueError: no open cluster has that key (handled already, or never listed).
        """
        for cluster in self.queue():
            if cluster.key == key:
                return cluster
        raise ValueError(f"no open review cluster {key!r}: it was handled already, or the log changed")

    def accept(self, cluster: Cluster, faq_id: str | None = None, *, with_answered: bool = True) -> Path:
        """Add the cluster's questions as alternate phrasings of an FAQ (default: its candidate); returns the file.

        With `with_answered`, the other open logged questions that FAQ answered with confidence and
        nobody marked unhelpful are added too, and marked reviewed with the cluster.

        Raises:
            ValueError: the FAQ id names no FAQ of the index, or the cluster has no FAQ candidate.
        """
        faq_id = faq_id or (cluster.candidate.id if cluster.candidate else None)
        faq = next((p for p in self.bot.index.passages if p.id == faq_id and p.kind == "faq"), None)
        if faq is None:
            raise ValueError(f"no FAQ with id {faq_id!r} in the index: alternates need an FAQ (or add a new FAQ)"
                             if faq_id else "this cluster has no FAQ candidate: name an FAQ id, or add a new FAQ")
        well = [row for row in self.answered_well().get(faq.id, []) if row["answer_id"] not in cluster.answer_ids] \
            if with_answered else []
        also = _distinct(well, cluster.questions)
        path = append_alternates(self.data_dir, faq.id, cluster.questions + also)
        self.log.mark_reviewed(cluster.answer_ids + [row["answer_id"] for row in well], "alternates")
        log.info("review: %d question(s) (and %d it answered already) added as alternates of %s in %s",
                 len(cluster.questions), len(also), faq.id, path)
        return path

    def add_faq(self, cluster: Cluster, question: str, answer: str) -> Path:
        """Write a new FAQ pair (the other questions of the cluster as its alternates); returns the file.

        Raises:
            ValueError: an empty question or answer.
        """
        path = append_faq(self.data_dir, question, answer, [q for q in cluster.questions if q.strip() != question.strip()])
        self.log.mark_reviewed(cluster.answer_ids, "added")
        log.info("review: a new FAQ %r in %s", question, path)
        return path

    def dismiss(self, cluster: Cluster) -> None:
        """Take the cluster off the queue; nothing is written."""
        self.log.mark_reviewed(cluster.answer_ids, "dismissed")


def open_review(index: str | None, log_file: str | None, data: str | None, model: str | None = None, *, bot=None):
    """A Review over the chat's question log (see qa/review.py) and the data folder; the CLI's and the chat's.

    `bot` shares a running Bot (the chat's) instead of loading the index again.

    Raises:
        ValueError: the log is off or missing, or the data folder is not a folder.
    """
    path = settings.question_log(log_file, index=index, default_on=True)
    if path is None:
        raise ValueError("the question log is off (QA_LOG=off): there is nothing to review")
    if bot is None and not path.is_file():
        raise ValueError(f"no question log at {path}: the web chat writes it as people ask (or name one with --log)")
    folder = Path(data or settings.data_paths()[0])
    if not folder.is_dir():
        raise ValueError(f"the data folder {folder} is not a folder: review writes alternates.jsonl and added-faq.csv there")
    if bot is not None and bot.question_log is not None:
        return Review(bot, bot.question_log, folder)
    return Review(bot or Bot(index, model=model), QuestionLog(path), folder)
