"""The public face of the package: build or load an index, then ask it questions."""

from __future__ import annotations

import logging
import os
import re
import threading
import uuid
from dataclasses import replace
from typing import Sequence

from . import indexing, settings
from .answering import AnswerSettings, Answerer
from .comprehension import Comprehension
from .embedding import Embedder
from .errors import QAError
from .follow_ups import follow_ups_by_passage, prefer_children
from .log import QuestionLog
from .retrieval import RetrievalSettings, Retriever
from .stores import Index, open_store
from .types import Answer, FollowUp, Manifest, Passage

log = logging.getLogger(__name__)

# A lone UTF-16 surrogate: JSON ("\ud800") can carry one, but no tokenizer can encode it.
_SURROGATE = re.compile("[\ud800-\udfff]")


def validate_question(question: object, max_chars: int) -> str:
    """The question, stripped; or ValueError with the reason.

    Raises:
        ValueError: not a string, blank, longer than `max_chars`, or holding
            an unpaired surrogate (invalid Unicode).
    """
    if not isinstance(question, str):
        raise ValueError(f"question must be a string, got {type(question).__name__}")
    text = question.strip()
    if not text:
        raise ValueError("question is empty: ask something, e.g. 'Who did Díaz-Canel meet in St. Petersburg?'")
    if len(text) > max_chars:
        raise ValueError(f"question is {len(text):,} characters long; the limit is {max_chars:,}")
    bad = _SURROGATE.search(text)
    if bad:
        raise ValueError(
            f"question holds invalid Unicode (an unpaired surrogate U+{ord(bad.group()):04X} at character {bad.start()})"
        )
    return text


# How many earlier questions the follow-up rule reads (`Bot._search_in_context`): the last non-blank one.
HISTORY_READ = 1


def validate_history(history: object, max_chars: int) -> list[str]:
    """The part of `history` the follow-up rule reads, checked; the rest is dropped.

    Every entry must be a string within the question limit, so a huge entry
    costs nothing before it is refused; only the last `HISTORY_READ` non-blank
    entries are kept, stripped.

    Raises:
        ValueError: not a list of strings, an entry over `max_chars`, or a kept
            entry holding invalid Unicode.
    """
    if history is None:
        return []
    if isinstance(history, (str, bytes)) or not isinstance(history, (list, tuple)) or not all(isinstance(h, str) for h in history):
        raise ValueError("history must be a list of earlier questions (strings), oldest first")
    for i, entry in enumerate(history, 1):
        if len(entry) > max_chars and len(entry.strip()) > max_chars:
            raise ValueError(
                f"history entry {i} is {len(entry.strip()):,} characters long; the limit is {max_chars:,} (as for a question)"
            )
    kept = [h for h in history if h.strip()][-HISTORY_READ:]
    return [validate_question(h, max_chars) for h in kept]


def remember(history: Sequence[str] | None, question: str) -> list[str]:
    """The history a conversation keeps after `question`: only what the follow-up rule will read."""
    kept = [h for h in (history or []) if h.strip()]
    if question.strip():
        kept.append(question.strip())
    return kept[-HISTORY_READ:]


# The follow-up rule (see `Bot._search_in_context`) may give back this much of the previous
# question's own confidence when it reads a question with it. On the 25 pairs of
# tests/fixtures/followup_pairs.jsonl (docs/reliability.md), follow-ups / stand-alone
# questions right: 0.0 → 7/10, 15/15; 0.05 and 0.1 → 9/10, 15/15; 0.2 → 9/10, 13/15
# (off-topic questions borrow the previous answer); no floor → 9/10, 12/15.
FOLLOW_UP_MARGIN = 0.1


_CONNECTIVES = {"and", "also", "then", "so", "but"}
_ANAPHORS = {"he", "she", "it", "they", "him", "her", "them", "his", "hers", "their", "its", "there", "then", "that", "those", "these"}


def leans_back(question: str) -> bool:
    """True when a question may refer to an earlier one: it opens with "and", "so"… or holds a pronoun."""
    words = [w.strip("?.,!;:'\"") for w in question.lower().split()]
    return bool(words) and (words[0] in _CONNECTIVES or any(w in _ANAPHORS for w in words))


def follow_up_query(question: str, previous: str) -> str:
    """The text retrieval sees when a question is read together with the previous one."""
    return f"{previous} {question}"


class Bot:
    """A question-answering bot over one index folder.

    Construction is cheap: the index and the model load on first use (or
    `warm_up()`), once, under a lock, so one Bot can serve many threads. The
    bot holds its stages side by side: an `Embedder`, a `Retriever` over the
    loaded index, and an `Answerer`.

    Args:
        index_dir: the index folder (argument → $QA_INDEX_DIR → ./index).
        model: the embedding model (argument → $QA_MODEL); None uses the one the index was built with.
        threshold: abstention threshold on confidence (argument → $QA_THRESHOLD → default).
        k: passages returned per answer by default.
        max_question_chars: longer questions are refused with a ValueError (argument → $QA_MAX_QUESTION_CHARS → 2000).
        retrieval: fusion weights (default: the measured best).
        answering: how answers are cut and when the bot abstains.
        verify: check the index files' checksums when loading.
        embedder: an Embedder to share (e.g. between bots); None makes one for the index's model.
        question_log: where to log questions and feedback: a file, a QuestionLog, or "off"
            (argument → $QA_LOG → off; see qa/log.py).

        store: where the index lives (argument → $QA_STORE → "folder"): "folder", "milvus:PATH.db"
            (Milvus Lite) or a Milvus server URI; with Milvus, `index_dir`'s last part names the index.
        reader: the reading-comprehension model (qa/comprehension): a `Comprehension` to share, or its
            weights folder (argument → $QA_READER → the shipped weights).
        reader_precision: "fp32" or "int8" (argument → $QA_READER_PRECISION → fp32); ignored when `reader`
            is a `Comprehension`.

    A Bot notices a newly committed index (`qa build` into its store) between two
    requests and switches to it whole: a request uses one index from start to end,
    and a new index that cannot be loaded leaves the old one serving (one warning).

    Raises:
        ValueError: k < 1, a threshold outside [0, 1], an unknown store or reader precision.
        QuestionLogError: the question log is damaged or written by a newer qa.
    """

    def __init__(
        self,
        index_dir: str | os.PathLike | None = None,
        *,
        model: str | None = None,
        threshold: float | None = None,
        k: int = 5,
        max_question_chars: int | None = None,
        retrieval: RetrievalSettings | None = None,
        answering: AnswerSettings | None = None,
        verify: bool = True,
        embedder: Embedder | None = None,
        question_log: str | os.PathLike | QuestionLog | None = None,
        store: str | None = None,
        reader: Comprehension | str | os.PathLike | None = None,
        reader_precision: str | None = None,
    ):
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.index_dir = settings.index_dir(index_dir)
        self.store = open_store(store, self.index_dir)
        self.model = settings.model(model)
        answer_settings = answering or AnswerSettings()
        threshold = settings.threshold(threshold)
        if threshold is not None:
            answer_settings = replace(answer_settings, threshold=threshold)
        if not isinstance(reader, Comprehension):
            reader = Comprehension(settings.reader_dir(reader), threads=min(os.cpu_count() or 1, 4),
                                   precision=settings.reader_precision(reader_precision))
        self.answerer = Answerer(answer_settings, reader)
        self.retrieval_settings = retrieval or RetrievalSettings()
        self.k = k
        self.max_question_chars = settings.max_question_chars(max_question_chars)
        self.verify = verify
        self._lock = threading.Lock()
        self._embedder: Embedder | None = embedder
        self._retriever: Retriever | None = None
        self._reload_lock = threading.Lock()
        self._signature_seen: object = None
        self._follow_ups: tuple[Index, dict[str, tuple[FollowUp, ...]]] | None = None
        self.built: Manifest | None = None  # the manifest of the build `Bot.build` made
        if isinstance(question_log, QuestionLog):
            self.question_log: QuestionLog | None = question_log
        else:
            path = settings.question_log(question_log)
            self.question_log = QuestionLog(path).open() if path else None  # a log it cannot use fails here

    @classmethod
    def build(
        cls,
        paths: Sequence[str | os.PathLike],
        index_dir: str | os.PathLike | None = None,
        *,
        model: str | None = None,
        progress: bool = False,
        embedder: Embedder | None = None,
        store: str | None = None,
        vector_index: str = "auto",
        max_bytes: int | None = None,
        allow_conflicts: bool = True,
        ray: str | None = None,
        update: bool = True,
        **kwargs,
    ) -> "Bot":
        """Index the documents under `paths` into `index_dir` and return a Bot over it (`bot.built`: the new manifest).

        The build options are those of `qa.indexing.build_index`; `kwargs` go to the Bot.

        Raises:
            DocumentError: a malformed document; the previous index is untouched.
            IndexBusyError: another build holds the index.
        """
        folder = settings.index_dir(index_dir)
        embedder = embedder or Embedder(model)
        bot = cls(folder, model=embedder.model_id, embedder=embedder, store=store, **kwargs)
        bot.built = indexing.build_index(
            list(paths), folder, embedder, progress=progress, store=bot.store, vector_index=vector_index,
            max_bytes=max_bytes, allow_conflicts=allow_conflicts, ray=ray, update=update,
        )
        return bot

    @property
    def answer_settings(self) -> AnswerSettings:
        return self.answerer.settings

    def warm_up(self) -> "Bot":
        """Load the index and the model now (idempotent, thread-safe).

        Raises:
            IndexNotFoundError, IndexMismatchError, IndexCorruptError: the index cannot be used.
            ReaderError: the reader's weights are missing or damaged (names the file).
        """
        with self._lock:
            if self._retriever is None:
                self._signature_seen = self.store.signature()
                index = self.store.open(model=self.model, verify=self.verify)
                if self._embedder is None or self._embedder.model_id != index.model:
                    self._embedder = Embedder(index.model)
                self._embedder.warm_up()
                if self.answerer.reader is not None:
                    self.answerer.reader.warm_up()
                self._retriever = Retriever(index, self.retrieval_settings)
        return self

    def reload_if_changed(self) -> bool:
        """Switch to a newly committed index, if the store's signature changed since the last look.

        The new index is loaded beside the old one and then swapped in with one
        assignment, so a request already running finishes on the old index. A new
        index that cannot be loaded (damaged, another model) is tried once and
        logged as one warning; the old one keeps serving until the signature changes again.

        Returns:
            True when the bot now serves a new index.
        """
        current = self._retriever
        if current is None:
            return False
        try:
            signature = self.store.signature()
        except QAError as exc:
            log.warning("cannot look for a new index in %s (%s); still serving build %s",
                        self.store, exc, current.index.manifest.build_id)
            return False
        if signature is None or signature == self._signature_seen:
            return False
        if not self._reload_lock.acquire(blocking=False):
            return False  # another request is loading it; this one is served by the old index
        try:
            if signature == self._signature_seen:
                return False
            self._signature_seen = signature
            try:
                index = self.store.open(model=self.embedder.model_id, verify=self.verify)
            except QAError as exc:
                log.warning("a new index was committed in %s but cannot be used (%s); still serving build %s",
                            self.store, exc, current.index.manifest.build_id)
                return False
            if index.manifest.build_id == current.index.manifest.build_id:
                return False
            self._retriever = Retriever(index, self.retrieval_settings)
            log.info("switched to the new index in %s (build %s, %d passages)",
                     self.store, index.manifest.build_id, len(index.passages))
            return True
        finally:
            self._reload_lock.release()

    def feedback(self, answer_id: str, helpful: bool) -> bool:
        """Record whether the answer `answer_id` helped (thumbs up or down) in the question log.

        Returns:
            True when recorded; False when the log is off, the answer is not in it, or it cannot be written.

        Raises:
            ValueError: `answer_id` is not a non-empty string or `helpful` not a bool.
        """
        if not isinstance(answer_id, str) or not answer_id.strip() or len(answer_id) > 64:
            raise ValueError(f"answer_id must be the answer_id of an earlier answer, got {answer_id!r:.80}")
        if not isinstance(helpful, bool):
            raise ValueError(f"helpful must be true or false, got {helpful!r:.80}")
        if self.question_log is None:
            log.info("feedback on %s not recorded: the question log is off", answer_id)
            return False
        return self.question_log.feedback(answer_id.strip(), helpful)

    @property
    def retriever(self) -> Retriever:
        """The retriever over the loaded index (loads it on first use)."""
        self.warm_up()
        assert self._retriever is not None
        return self._retriever

    @property
    def index(self) -> Index:
        """The loaded index (loads it on first use)."""
        return self.retriever.index

    @property
    def embedder(self) -> Embedder:
        self.warm_up()
        assert self._embedder is not None
        return self._embedder

    @property
    def passages(self) -> tuple[Passage, ...]:
        """Every passage of the index, in index order."""
        return tuple(self.index.passages)

    def faq_questions(self) -> list[str]:
        """The questions of the index's FAQ pairs, in index order (e.g. as example questions)."""
        return [p.question for p in self.index.passages if p.kind == "faq" and p.question]

    def titles(self) -> list[str]:
        """The titles of the indexed documents, in index order, each once."""
        return list(dict.fromkeys(p.title for p in self.index.passages))

    def sources(self) -> list[dict]:
        """What the index was built from, one record a file, for people to see what the bot knows.

        Returns:
            Dicts with title, key (path below the folder given to the build), kind (the reader:
            text, markdown, pdf, ...; "skipped" for a file that could not be read), passages,
            warnings (the ingest checks' findings, "line: message") and built_at (UTC, ISO 8601).
        """
        manifest = self.index.manifest
        built = manifest.built_at
        rows = [
            {"title": s.title, "key": s.key, "kind": s.kind, "passages": s.passages, "warnings": list(s.warnings),
             "built_at": built}
            for s in manifest.sources
        ]
        rows += [
            {"title": "", "key": s.key, "kind": "skipped", "passages": 0,
             "warnings": [f"{s.line}: {s.reason}" if s.line else s.reason], "built_at": built}
            for s in manifest.skipped
        ]
        return rows

    def faqs(self, query: str | None = None) -> list[dict]:
        """The index's FAQ pairs (question, answer, source title, path), those matching `query` if given.

        A pair matches when every word of `query` occurs (ignoring case) in its question,
        other phrasings, answer or source title.
        """
        words = (query or "").casefold().split()
        out = []
        for p in self.index.passages:
            if p.kind != "faq":
                continue
            haystack = " ".join([p.question or "", *p.alternates, p.text, p.title]).casefold()
            if all(w in haystack for w in words):
                out.append({"question": p.question or "", "answer": p.text, "source": p.title, "path": p.path})
        return out

    def ask(
        self,
        question: str,
        k: int | None = None,
        *,
        history: Sequence[str] | None = None,
        threshold: float | None = None,
        choose: str | None = None,
        asker: str | None = None,
    ) -> Answer:
        """Answer one question from the documents.

        Args:
            question: the question (at most `max_question_chars` characters).
            k: how many retrieved passages to return with the answer.
            history: earlier questions of the conversation, oldest first; a
                follow-up is read in their light, and when the last one is answered
                from an FAQ with follow-ups, its children are preferred
                (qa/follow_ups.py).
            threshold: overrides the answer threshold for this call.
            choose: the `passage_id` of a suggestion the user picked: answer from that passage.
            asker: who asks (a login, an address), logged so that review needs several askers'
                evidence before a pick or a thumbs-down decides a candidate; None: unknown.

        Returns:
            An Answer: a verbatim quote with its citation, suggestions ("did you mean…?"), or an abstention.

        Raises:
            ValueError: an empty or over-long question, k < 1, or a `choose` that is not a candidate.
        """
        return self.ask_many([question], k, history=history, threshold=threshold, choose=choose, asker=asker)[0]

    def ask_many(
        self,
        questions: Sequence[str],
        k: int | None = None,
        *,
        history: Sequence[str] | None = None,
        threshold: float | None = None,
        choose: str | None = None,
        asker: str | None = None,
    ) -> list[Answer]:
        """Answer several questions: faster than `ask` one by one (embedded in batches, searched together).

        The answers are those `ask` gives, in the order of `questions`; `choose` (see `ask`) applies to each.

        Raises:
            ValueError: any question is empty or over-long, or k < 1.
            EmbeddingError: the model returned invalid vectors.
        """
        k = self.k if k is None else k
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be an integer >= 1, got {k!r}")
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        texts = [validate_question(q, self.max_question_chars) for q in questions]
        history = validate_history(history, self.max_question_chars)
        self.warm_up()
        self.reload_if_changed()
        retriever = self.retriever  # one index for the whole request, even if a reload swaps it meanwhile
        found, read_as = self._search_in_context(texts, history[-1] if history else None, k, threshold, retriever)
        follow_ups = self._follow_ups_of(retriever)
        if history and follow_ups:
            found = self._after_parent(found, history[-1], threshold, retriever, follow_ups)
        answers = [
            replace(self.answerer.answer(text, results, threshold, choose, reading), answer_id=uuid.uuid4().hex)
            for text, results, reading in zip(texts, found, read_as)
        ]
        if follow_ups:
            answers = [replace(a, follow_ups=follow_ups.get(a.citations[0].passage_id, ())) if a.answered else a
                       for a in answers]
        if self.question_log is not None:
            build = retriever.index.manifest.build_id
            for answer in answers:
                self.question_log.record(answer, chosen=choose, build_id=build, asker=asker)
        return answers

    def _follow_ups_of(self, retriever: Retriever) -> dict[str, tuple[FollowUp, ...]]:
        """The follow-ups of the FAQs of the retriever's index that name any (worked out once per index)."""
        cached = self._follow_ups
        if cached is None or cached[0] is not retriever.index:
            cached = (retriever.index, follow_ups_by_passage(retriever.index.passages))
            self._follow_ups = cached
        return cached[1]

    def _after_parent(self, found: list, previous: str, threshold: float | None, retriever: Retriever,
                      follow_ups: dict[str, tuple[FollowUp, ...]]) -> list:
        """Each question's results, the previous answer's follow-ups preferred (qa/follow_ups.py, `prefer_children`).

        The previous answer is the one `previous` gets asked alone now; only an answered FAQ with follow-ups counts.
        """
        before = retriever.search_many([previous], self.embedder.encode([previous]), self.answerer.settings.candidates)[0]
        parent = self.answerer.answer(previous, before, threshold)
        children = frozenset(f.passage_id for f in follow_ups.get(parent.citations[0].passage_id, ())) \
            if parent.answered else frozenset()
        return [prefer_children(results, children) for results in found] if children else found

    def _search_in_context(self, texts: list[str], previous: str | None, k: int, threshold: float | None,
                           retriever: Retriever | None = None) -> tuple[list, list[str | None]]:
        """Retrieval results for each question: alone, or read with the previous question when that scores better;
        and for each, the question the reader reads (the joined one, or None: the question itself).

        A question is read with the previous one only when it may refer back (a
        pronoun, or a leading "and"), alone it would not be answered, the combined
        reading is more confident, and that confidence stays within FOLLOW_UP_MARGIN
        of the previous question's own: "And when?" borrows its subject, while "What
        is their address?" or an off-topic question keeps its own words and never
        inherits the previous answer. The reader reads the joined question, as a person
        reads "And when?" in its conversation; the quote's checks weigh the words of the
        question asked.
        """
        retriever, answerer = retriever or self.retriever, self.answerer
        back = [i for i, t in enumerate(texts) if leans_back(t)] if previous is not None else []
        read_as: list[str | None] = [None] * len(texts)
        if not back:
            return retriever.search_many(texts, self.embedder.encode(texts, batch_size=64), k), read_as
        n = len(texts)
        queries = [*texts, *(follow_up_query(texts[i], previous) for i in back), previous]
        found = retriever.search_many(queries, self.embedder.encode(queries, batch_size=64), k)
        chosen, combined, before = found[:n], found[n:-1], found[-1]
        answer_at = answerer.settings.answer_at if threshold is None else threshold
        floor = answerer.confidence(previous, before) - FOLLOW_UP_MARGIN
        for i, joint in zip(back, combined):
            # The quote must hold the words of the question asked, not of the one before it.
            weights = retriever.term_weights(texts[i])
            unseen = retriever.unseen_terms(texts[i])
            joint = [(hit, replace(evidence, term_weights=weights, unseen_terms=unseen)) for hit, evidence in joint]
            joined = follow_up_query(texts[i], previous)
            mine, theirs = answerer.confidence(texts[i], chosen[i]), answerer.confidence(texts[i], joint, joined)
            if not mine >= answer_at and theirs > mine and theirs >= floor:
                chosen[i], read_as[i] = joint, joined
        return chosen, read_as
