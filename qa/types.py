"""The currency every stage passes around: passages, citations and answers, and an index's manifest.

These are small frozen dataclasses with no behaviour beyond serialisation, so
that parsing, indexing, retrieval, answering and the UI agree on one shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator, Literal

PassageKind = Literal["faq", "paragraph"]


@dataclass(frozen=True)
class Span:
    """A sentence of a passage: character offsets into the passage's source text."""

    start: int
    end: int


@dataclass(frozen=True)
class Passage:
    """One retrievable unit: an article paragraph or an FAQ question/answer pair.

    Offsets point into the text of the source file (`path`), so
    `source_text[start:end] == text`. For an FAQ pair, `text` is the answer and
    `question` the question; `question_start`/`question_end` locate the
    question in the source where it has one (CSV/JSON files hold no shared
    source text, so their offsets are into the answer string itself). For a
    format whose bytes are not text (HTML, PDF, DOCX) the offsets point into
    the text extracted from it, and `page` is the PDF page (1-based).

    `follow_ups` names the FAQs to offer after this one: as a reader returns
    it, the references as written in the file (FAQ ids or questions); in a
    built index, the passage ids they resolved to (qa/follow_ups.py).
    """

    id: str
    kind: PassageKind
    text: str
    title: str
    path: str
    start: int
    end: int
    position: int
    line: int = 0
    question: str | None = None
    alternates: tuple[str, ...] = ()
    sentences: tuple[Span, ...] = ()
    page: int | None = None  # 1-based page of a PDF passage; None for other formats
    follow_ups: tuple[str, ...] = ()

    def text_at(self, start: int, end: int) -> str:
        """The exact source text between two source offsets inside this passage."""
        return self.text[start - self.start : end - self.start]

    @property
    def label(self) -> str:
        """A short human name: the FAQ question, or 'paragraph N' (1-based)."""
        if self.kind == "faq":
            return self.question or ""
        return f"paragraph {self.position + 1}"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["alternates"] = list(self.alternates)
        data["follow_ups"] = list(self.follow_ups)
        data["sentences"] = [[s.start, s.end] for s in self.sentences]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Passage":
        return cls(
            id=data["id"],
            kind=data["kind"],
            text=data["text"],
            title=data["title"],
            path=data["path"],
            start=data["start"],
            end=data["end"],
            position=data["position"],
            line=data.get("line", 0),
            question=data.get("question"),
            alternates=tuple(data.get("alternates", ())),
            sentences=tuple(Span(s, e) for s, e in data.get("sentences", ())),
            page=data.get("page"),
            follow_ups=tuple(data.get("follow_ups", ())),  # absent from indexes built before follow-ups
        )


@dataclass(frozen=True)
class Hit:
    """A retrieved passage with its fused score (higher is better) and rank (0-based)."""

    passage: Passage
    score: float
    rank: int

    def to_dict(self) -> dict:
        return {"rank": self.rank, "score": round(self.score, 4), **self.passage.to_dict()}


@dataclass(frozen=True)
class Citation:
    """Where an answer's words come from.

    `quote == passage.text[start - passage.start : end - passage.start]`, and
    `start`/`end` are offsets into the source file's text, like the passage's.
    `answer_start`/`answer_end`, when set, are the words within the quote that
    the reader (qa/comprehension) found to answer the question:
    `quote[answer_start:answer_end]`, for highlighting; None when it found none.
    """

    passage_id: str
    kind: PassageKind
    source: str
    path: str
    label: str
    quote: str
    start: int
    end: int
    score: float
    page: int | None = None  # the PDF page the quote is on; None for other formats
    answer_start: int | None = None
    answer_end: int | None = None

    @property
    def answer_span(self) -> str | None:
        """The words of the quote that answer the question, or None."""
        if self.answer_start is None or self.answer_end is None:
            return None
        return self.quote[self.answer_start:self.answer_end]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["score"] = round(self.score, 4)
        return data


@dataclass(frozen=True)
class Suggestion:
    """A candidate the bot could not choose with confidence: "Did you mean…?".

    `text` is what the user picks from: an FAQ pair's question, or a paragraph's
    first sentence. `confidence` is the probability that this passage's quote
    answers the question.
    """

    passage_id: str
    kind: PassageKind
    source: str
    label: str
    text: str
    confidence: float

    def to_dict(self) -> dict:
        data = asdict(self)
        data["confidence"] = round(self.confidence, 4)
        return data


@dataclass(frozen=True)
class FollowUp:
    """An FAQ the answered FAQ names as a likely next question: its passage id and question."""

    passage_id: str
    question: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Answer:
    """The bot's reply to one question: one of three outcomes.

    - answered: `text` is a verbatim quote of `citations[0]`'s source;
    - suggested: the bot is unsure between candidates; `text` says so and
      `suggestions` lists up to three ("Did you mean…?");
    - abstained: the documents do not cover the question; `text` says so.

    In every case `passages` lists the retrieved passages, best first. An
    answer from an FAQ that names follow-ups carries them in `follow_ups`.
    """

    question: str
    text: str
    answered: bool
    confidence: float
    citations: tuple[Citation, ...] = ()
    passages: tuple[Hit, ...] = field(default=())
    suggestions: tuple[Suggestion, ...] = ()
    answer_id: str = field(default="", compare=False)  # set by Bot.ask: names it for feedback and the question log
    follow_ups: tuple[FollowUp, ...] = ()  # set by Bot.ask for an answered FAQ that names follow-ups

    @property
    def outcome(self) -> str:
        """"answered", "suggested" or "abstained"."""
        if self.answered:
            return "answered"
        return "suggested" if self.suggestions else "abstained"

    def to_dict(self) -> dict:
        return {
            "question": self.question,
            "text": self.text,
            "answered": self.answered,
            "outcome": self.outcome,
            "confidence": round(self.confidence, 4),
            "citations": [c.to_dict() for c in self.citations],
            "suggestions": [s.to_dict() for s in self.suggestions],
            "passages": [h.to_dict() for h in self.passages],
            "answer_id": self.answer_id,
            "follow_ups": [f.to_dict() for f in self.follow_ups],
        }


@dataclass(frozen=True)
class Source:
    """One file a build read: where it was, its content hash, and what its reader made of it.

    `key` is the path below the folder given to the build (what citations show);
    `reader_warnings` is None in manifests written before they were kept, and then
    an update reads the file again rather than reuse its passages.
    """

    path: str
    key: str
    sha256: str
    title: str = ""
    kind: str = ""
    passages: int = 0
    reader_warnings: tuple[tuple[int, str], ...] | None = None
    renamed: bool = False  # a passage id was made unique across files: an update reads the file again
    warnings: tuple[str, ...] = ()  # the ingest checks' findings, "line: message"

    def to_dict(self) -> dict:
        data: dict[str, Any] = {"path": self.path, "key": self.key, "sha256": self.sha256, "title": self.title,
                                "kind": self.kind, "passages": self.passages}
        if self.reader_warnings is not None:
            data["reader_warnings"] = [[line, message] for line, message in self.reader_warnings]
        data["renamed"] = self.renamed
        data["warnings"] = list(self.warnings)
        return data

    @classmethod
    def from_dict(cls, data: Mapping) -> "Source":
        warnings = data.get("reader_warnings")
        return cls(
            path=data["path"],
            key=data.get("key", data["path"]),
            sha256=data.get("sha256", ""),
            title=data.get("title", ""),
            kind=data.get("kind", ""),
            passages=int(data.get("passages", 0)),
            reader_warnings=None if warnings is None else tuple((int(line), str(m)) for line, m in warnings),
            renamed=bool(data.get("renamed", False)),
            warnings=tuple(data.get("warnings", ())),
        )


@dataclass(frozen=True)
class Skipped:
    """A file a build could not read (binary, encrypted, damaged), and why: fixing it makes the index stale."""

    path: str
    key: str
    sha256: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        """'scan.pdf: no text ...' or 'image.md:3: not a text file ...', for messages."""
        where = self.key + (f":{self.line}" if self.line else "")
        return f"{where}: {self.reason}"

    def to_dict(self) -> dict:
        return {"path": self.path, "key": self.key, "sha256": self.sha256, "line": self.line, "reason": self.reason}

    @classmethod
    def from_dict(cls, data: Mapping) -> "Skipped":
        return cls(path=data["path"], key=data.get("key", data["path"]), sha256=data.get("sha256", ""),
                   reason=data.get("reason", ""), line=data.get("line"))


@dataclass(frozen=True)
class Manifest(Mapping):
    """What one build of an index holds and how it was made: model, counts, corpus, and the build's own record.

    A store keeps it as JSON (the folder store as manifest.json, Milvus as a collection
    property). `from_dict` reads the fields the code uses and keeps the JSON whole in
    `data`, and `to_dict` gives that JSON back unchanged, fields of one store or of
    another version of qa included, so that reading and writing a manifest never loses
    a field. It also reads as a read-only mapping of that JSON, for tools that print it.

    Raises (from_dict):
        KeyError, TypeError, ValueError: a required field is missing or of the wrong type.
    """

    model: str
    dimension: int
    build_id: str
    passage_count: int
    key_count: int | None = None
    faq_count: int = 0
    paragraph_count: int = 0
    fingerprint: str | None = None
    inputs: tuple[str, ...] = ()
    input_paths: tuple[str, ...] = ()
    sources: tuple[Source, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    built_at: str | None = None
    readers: str | None = None  # qa.incremental.reader_digest() of the code that read the documents
    vector_index: str | None = None
    embedded: int = 0
    reused: int = 0
    deduplicated: int = 0
    update: Mapping[str, Any] = field(default_factory=dict)
    files: Mapping[str, int] = field(default_factory=dict)
    problems: Mapping[str, int] = field(default_factory=dict)
    build_seconds: float | None = None
    checksums: Mapping[str, str] = field(default_factory=dict)  # the folder store's: file → SHA-256
    data: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def incremental(self) -> bool:
        """True when this build updated the previous one rather than building in full."""
        return self.update.get("mode") == "incremental"

    def to_dict(self) -> dict:
        return dict(self.data)

    @classmethod
    def from_dict(cls, data: Mapping) -> "Manifest":
        if not isinstance(data, Mapping):
            raise TypeError(f"a manifest is a JSON object, got {type(data).__name__}")
        counts = {name: int(data[name]) for name in ("faq_count", "paragraph_count", "embedded", "reused",
                                                      "deduplicated") if data.get(name) is not None}
        return cls(
            model=str(data["model"]),
            dimension=int(data["dimension"]),
            build_id=str(data["build_id"]),
            passage_count=int(data["passage_count"]),
            key_count=None if data.get("key_count") is None else int(data["key_count"]),
            fingerprint=data.get("fingerprint"),
            inputs=tuple(data.get("inputs", ())),
            input_paths=tuple(data.get("input_paths", ())),
            sources=tuple(Source.from_dict(s) for s in data.get("sources", ())),
            skipped=tuple(Skipped.from_dict(s) for s in data.get("skipped", ())),
            built_at=data.get("built_at"),
            readers=data.get("readers"),
            vector_index=data.get("vector_index"),
            update=dict(data.get("update") or {}),
            files=dict(data.get("files") or {}),
            problems=dict(data.get("problems") or {}),
            build_seconds=data.get("build_seconds"),
            checksums=dict(data.get("checksums") or {}),
            data=dict(data),
            **counts,
        )

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)
