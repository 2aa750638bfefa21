"""The question log: what users asked, what the bot replied, and what they thought of it.

A local SQLite file (the standard library's `sqlite3`, in WAL mode), one row an
answer: the question, the outcome (answered / suggested / abstained), the cited
passage and confidence, the best retrieved passage even below the threshold,
the ids of the first retrieved passages, the suggestion a user picked, the
user's feedback, and who asked (a login or an address). `qa review` reads it.

Writing to the log never blocks or fails an answer: every write waits at most
`timeout` seconds for the file, and any failure (a locked file, a full disk, a
damaged file) is logged as one warning, then quietly until a write succeeds
again. The log keeps at most `max_rows` answers: the oldest are dropped as new
ones come (their pages are reused, so the file stops growing).

The file's schema has a version (SQLite's `PRAGMA user_version`) and grows only by
`MIGRATIONS`, applied in order when a log is opened (the pattern of simonw/llm's
`migrations.py`): a log written by any earlier release is upgraded in place and keeps
its rows. A log that cannot be upgraded (damaged, or written by a newer qa) is a
`QuestionLogError` when it is opened, one line at start, rather than answers that go
unlogged without end.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

from .errors import QuestionLogError
from .types import Answer

log = logging.getLogger(__name__)

DEFAULT_MAX_ROWS = 100_000
DEFAULT_TIMEOUT = 0.25  # seconds a write may wait for the file before it is given up
RETRIEVED_KEPT = 5  # retrieved passage ids kept per answer, best first (review's fallback candidates)
_TRIM_EVERY = 100  # writes between two checks of the row limit

# The schema as its releases wrote it; each step is applied once, in order. Never edit a
# released step: add one. A log from before versions were kept (user_version 0) is
# recognised by its columns (`_released_version`).
MIGRATIONS: tuple[tuple[str, str], ...] = (
    ("the answers table (release a6d5c29)", """
CREATE TABLE answers (
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
    chosen TEXT,
    helpful INTEGER,
    reviewed TEXT,
    build_id TEXT
);
CREATE INDEX answers_open ON answers (reviewed);
"""),
    ("the first retrieved passages of each answer (release d941e7d)", """
ALTER TABLE answers ADD COLUMN retrieved TEXT NOT NULL DEFAULT '';
"""),
    ("who asked each answer, for review's agreement of several askers (issue 21)", """
ALTER TABLE answers ADD COLUMN asker TEXT;
"""),
)
SCHEMA_VERSION = len(MIGRATIONS)
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

    def open(self) -> "QuestionLog":
        """Open the file now and bring its schema up to date, so that a log no write could use says so at start.

        Only a file that is not a sound SQLite database, or whose schema is newer than this
        code's, is refused: those never heal. A log that cannot be opened now for a passing
        reason (another writer holds it, a full disk, a missing permission) is one warning,
        and the writes try again as they always do.

        Raises:
            QuestionLogError: the file is damaged, or written by a newer qa.
        """
        with self._lock:
            try:
                self._connect()
            except sqlite3.Error as exc:
                if exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT):
                    raise QuestionLogError(f"the question log {self.path} is damaged ({exc}); "
                                           "move it aside to start a new one") from None
                self._cannot_open(exc)
            except OSError as exc:
                self._cannot_open(exc)
        return self

    def _cannot_open(self, exc: Exception) -> None:
        self._failed("answers", f"it cannot be opened now: {type(exc).__name__}: {exc}")

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _owner_only(self.path)
            conn = sqlite3.connect(self.path, timeout=self.timeout, check_same_thread=False, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")  # in WAL mode: a power cut may lose the last rows, never the file
                migrate(conn, self.path)
            except BaseException:
                conn.close()
                raise
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
        except (sqlite3.Error, OSError, QuestionLogError) as exc:
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


def _released_version(conn: sqlite3.Connection) -> int:
    """The schema version of a log written before versions were kept: 0 (empty), 1, 2 or 3, by its columns.

    The hardening branch (issue 21) added `asker` before versions were kept: its logs are version 3.
    """
    columns = {row[1] for row in conn.execute("PRAGMA table_info(answers)")}
    if not columns:
        return 0
    if "asker" in columns:
        return 3
    return 2 if "retrieved" in columns else 1


def migrate(conn: sqlite3.Connection, path: Path | str = "") -> int:
    """Bring a log's schema to SCHEMA_VERSION, one migration at a time, in one transaction; returns the version.

    Raises:
        QuestionLogError: the log was written by a newer qa.
        sqlite3.Error: the file is not a readable SQLite database.
    """
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return version
    conn.execute("BEGIN IMMEDIATE")  # one process migrates; another waits, then finds the work done
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0] or _released_version(conn)
        if version > SCHEMA_VERSION:
            raise QuestionLogError(
                f"the question log {path} has schema version {version}, newer than this qa's {SCHEMA_VERSION}; "
                "upgrade qa, or point $QA_LOG at another file"
            )
        for number, (description, sql) in enumerate(MIGRATIONS[version:], version + 1):
            log.info("question log %s: migration %d, %s", path, number, description)
            for statement in filter(str.strip, sql.split(";")):
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return SCHEMA_VERSION
