"""The currency every stage passes around: passages, citations and answers.

These are small frozen dataclasses with no behaviour beyond serialisation, so
that parsing, indexing, retrieval, answering and the UI agree on one shape.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

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
