"""The question log: what users asked, what the bot replied, and what they thought of it.

A local SQLite file (the standard library's `sqlite3`, in WAL mode), one row an
answer: the question, the outcome (answered / suggested / abstained), the cited
passage and confidence, the best retrieved passage even below the threshold,
the ids of the first retrieved passages, the suggestion a user picked, and the
user's feedback. `qa review` reads it.

Writing to the log never blocks or fails an answer: every write waits at most
`timeout` seconds for the file, and any failure (a locked file, a full disk, a
damaged file) is logged as one warning, then quietly until a write succeeds
again. The log keeps at most `max_rows` answers: the oldest are dropped as new
ones come (their pages are reused, so the file stops growing).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

from .types import Answer

log = logging.getLogger(__name__)

DEFAULT_MAX_ROWS = 100_000
DEFAULT_TIMEOUT = 0.25  # seconds a write may wait for the file before it is given up
RETRIEVED_KEPT = 5  # retrieved passage ids kept per answer, best first (review's fallback candidates)
_TRIM_EVERY = 100  # writes between two checks of the row limit

SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    answer_id TEXT NOT NULL UNIQUE,
    asked_at REAL NOT NULL,
    question TEXT NOT NULL,
    outcome TEXT NOT NULL,
    confidence REAL NOT NULL,
    passage_id TEXT,
    best_passage_id TEXT,
    best_score REAL,
    suggestions TEXT NOT NULL DEFAULT '',
    retrieved TEXT NOT NULL DEFAULT '',
    chosen TEXT,
    helpful INTEGER,
    reviewed TEXT,
    build_id TEXT,
    asker TEXT
);
CREATE INDEX IF NOT EXISTS answers_open ON answers (reviewed);
"""
COLUMNS = ("seq", "answer_id", "asked_at", "question", "outcome", "confidence", "passage_id", "best_passage_id",
           "best_score", "suggestions", "retrieved", "chosen", "helpful", "reviewed", "build_id", "asker")


def _owner_only(path: Path) -> None:
    """Create the log file readable and writable by its owner only (0600), or make an existing one so.

    It holds every question users asked. SQLite gives its -wal and -shm files the mode of
    the database file, so new ones follow; old ones are narrowed too.
    """
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for part in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if part.exists() and part.stat().st_mode & 0o077:
                part.chmod(0o600)
        except OSError as exc:  # not our file: reading and writing it may still work
            log.warning("question log %s: cannot make it readable by its owner only (%s)", part, exc)


class QuestionLog:
    """One log file, shared by the threads of one process (and safe to share between processes).

    Args:
        path: the SQLite file; its folder is created if missing.
        max_rows: answers kept; older ones are dropped.
        timeout: seconds a write may wait for the file (another writer, another thread).
    """

    def __init__(self, path: str | Path, *, max_rows: int = DEFAULT_MAX_ROWS, timeout: float = DEFAULT_TIMEOUT):
        if max_rows < 1:
            raise ValueError(f"max_rows must be >= 1, got {max_rows}")
        self.path = Path(path)
        self.max_rows = max_rows
        self.timeout = timeout
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._writes = 0
        self._failing = False

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _owner_only(self.path)
            conn = sqlite3.connect(self.path, timeout=self.timeout, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # in WAL mode: a power cut may lose the last rows, never the file
            conn.executescript(SCHEMA)
            if "asker" not in {row[1] for row in conn.execute("PRAGMA table_info(answers)")}:
                conn.execute("ALTER TABLE answers ADD COLUMN asker TEXT")  # a log written before issue 21
            self._conn = conn
        return self._conn

    def _write(self, what: str, sql: str, params: tuple) -> bool:
        """Run one write; True when it was stored. Never raises: a failure is one warning."""
        if not self._lock.acquire(timeout=self.timeout):
            return self._failed(what, "another thread held the log")
        try:
            conn = self._connect()
            changed = conn.execute(sql, params).rowcount
            self._writes += 1
            if self._writes % _TRIM_EVERY == 0:
                conn.execute("DELETE FROM answers WHERE seq <= (SELECT MAX(seq) FROM answers) - ?", (self.max_rows,))
        except (sqlite3.Error, OSError) as exc:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            return self._failed(what, f"{type(exc).__name__}: {exc}")
        finally:
            self._lock.release()
        if self._failing:
            log.info("the question log %s is written again", self.path)
            self._failing = False
        return changed > 0

    def _failed(self, what: str, reason: str) -> bool:
        if not self._failing:
            log.warning("question log %s: %s not recorded (%s); answers go on, unlogged until it works again",
                        self.path, what, reason)
            self._failing = True
        return False

    def record(self, answer: Answer, *, chosen: str | None = None, build_id: str | None = None,
               asker: str | None = None) -> bool:
        """Store one answer (its `answer_id` must be set); True when stored.

        `asker` names who asked (the web chat: the login, else the client's address), so that
        review can tell one person's evidence from several people's (qa/review.py).
        """
        best = answer.passages[0] if answer.passages else None
        cited = answer.citations[0].passage_id if answer.citations else None
        return self._write(
            "an answer",
            "INSERT OR IGNORE INTO answers (answer_id, asked_at, question, outcome, confidence, passage_id, "
            "best_passage_id, best_score, suggestions, retrieved, chosen, build_id, asker) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (answer.answer_id, time.time(), answer.question, answer.outcome, float(answer.confidence), cited,
             best.passage.id if best else None, float(best.score) if best else None,
             " ".join(s.passage_id for s in answer.suggestions),
             " ".join(h.passage.id for h in answer.passages[:RETRIEVED_KEPT]), chosen, build_id, asker),
        )

    def feedback(self, answer_id: str, helpful: bool) -> bool:
        """Mark an answer helpful or not; True when the answer is in the log."""
        return self._write("feedback", "UPDATE answers SET helpful = ? WHERE answer_id = ?", (int(bool(helpful)), answer_id))

    def mark_reviewed(self, answer_ids: list[str], action: str) -> int:
        """Mark answers as handled by a review action ("alternates", "added", "dismissed"); returns how many."""
        done = 0
        for answer_id in answer_ids:
            done += self._write("a review", "UPDATE answers SET reviewed = ? WHERE answer_id = ?", (action, answer_id))
        return done

    def rows(self, *, open_only: bool = False) -> list[dict]:
        """Every stored answer, oldest first (only those no review has handled, with `open_only`).

        Raises:
            sqlite3.Error: the file cannot be read (for `qa review`, which reports it).
        """
        if not self.path.exists():
            return []
        with self._lock:
            conn = self._connect()
            where = " WHERE reviewed IS NULL" if open_only else ""
            cursor = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM answers{where} ORDER BY seq")
            return [dict(zip(COLUMNS, row)) for row in cursor.fetchall()]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
