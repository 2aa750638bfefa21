"""The question log's schema migrations: a log written by every released schema records after the upgrade and keeps its rows.

Each released schema is here as its release wrote it (`git log -p -- qa/log.py`), created
with `CREATE TABLE IF NOT EXISTS` and no `user_version`, as those releases left their files.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from qa import Answer, Bot, QuestionLog
from qa.errors import QuestionLogError
from qa.log import COLUMNS, SCHEMA_VERSION
from qa.review import Review

from .conftest import ROOT
from .rel_support import qa_env

# Release a6d5c29: the first question log.
SCHEMA_A6D5C29 = """
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
    chosen TEXT,
    helpful INTEGER,
    reviewed TEXT,
    build_id TEXT
);
CREATE INDEX IF NOT EXISTS answers_open ON answers (reviewed);
"""
# Release d941e7d: `retrieved`, the first retrieved passages of each answer.
SCHEMA_D941E7D = """
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
    build_id TEXT
);
CREATE INDEX IF NOT EXISTS answers_open ON answers (reviewed);
"""
RELEASED = {"a6d5c29": SCHEMA_A6D5C29, "d941e7d": SCHEMA_D941E7D}
# Branch hardening (issue 21, 39642c6): `asker` added before versions were kept.
SCHEMA_HARDENING = SCHEMA_D941E7D.replace("    build_id TEXT\n", "    build_id TEXT,\n    asker TEXT\n")


def _old_log(path, schema: str) -> None:
    """A log as an earlier release left it: its schema, two answers (one with feedback, one reviewed)."""
    conn = sqlite3.connect(path)
    conn.executescript(schema)
    conn.execute("INSERT INTO answers (answer_id, asked_at, question, outcome, confidence, helpful) "
                 "VALUES ('old1', 1.0, 'Where is the office?', 'answered', 0.9, 0)")
    conn.execute("INSERT INTO answers (answer_id, asked_at, question, outcome, confidence, reviewed) "
                 "VALUES ('old2', 2.0, 'When do you open?', 'abstained', 0.1, 'dismissed')")
    conn.commit()
    conn.close()


def _answer(answer_id: str) -> Answer:
    return Answer(question="Is it open on Sundays?", text="t", answered=False, confidence=0.2, answer_id=answer_id)


@pytest.mark.parametrize("release", RELEASED)
def test_a_log_of_every_released_schema_records_after_the_upgrade_and_keeps_its_rows(release, tmp_path):
    path = tmp_path / "log.sqlite3"
    _old_log(path, RELEASED[release])
    log = QuestionLog(path).open()
    assert log.record(_answer("new1"), build_id="b1")
    assert log.feedback("new1", True) and log.feedback("old1", True)
    rows = log.rows()
    assert [r["answer_id"] for r in rows] == ["old1", "old2", "new1"]
    assert rows[0]["question"] == "Where is the office?" and rows[0]["helpful"] == 1
    assert rows[1]["reviewed"] == "dismissed" and rows[1]["retrieved"] == ""
    assert rows[2]["build_id"] == "b1" and set(rows[2]) == set(COLUMNS)
    assert [r["answer_id"] for r in log.rows(open_only=True)] == ["old1", "new1"]
    log.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()


def test_a_log_of_schema_2_gains_the_asker_column_records_who_asked_and_keeps_its_rows(tmp_path):
    """Migration 3 (issue 21): a log as schema version 2 left it records an asker; its old rows have none."""
    path = tmp_path / "log.sqlite3"
    _old_log(path, SCHEMA_D941E7D)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 2")
    conn.close()
    log = QuestionLog(path).open()
    assert log.record(_answer("new1"), build_id="b1", asker="alice")
    rows = log.rows()
    assert [(r["answer_id"], r["asker"]) for r in rows] == [("old1", None), ("old2", None), ("new1", "alice")]
    assert rows[0]["question"] == "Where is the office?" and rows[1]["reviewed"] == "dismissed"
    assert [r["answer_id"] for r in log.rows(open_only=True)] == ["old1", "new1"]
    log.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,) == (3,)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()


def test_a_log_the_hardening_branch_wrote_keeps_its_askers_and_is_not_altered_twice(tmp_path):
    path = tmp_path / "log.sqlite3"
    _old_log(path, SCHEMA_HARDENING)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE answers SET asker = 'bob' WHERE answer_id = 'old1'")
    conn.commit()
    conn.close()
    log = QuestionLog(path).open()
    assert log.record(_answer("new1"), asker="alice")
    assert [(r["answer_id"], r["asker"]) for r in log.rows()] == [("old1", "bob"), ("old2", None), ("new1", "alice")]
    log.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    conn.close()


def test_a_new_log_has_the_current_schema_and_version(tmp_path):
    log = QuestionLog(tmp_path / "new.sqlite3")
    assert log.record(_answer("a"))
    conn = sqlite3.connect(tmp_path / "new.sqlite3")
    columns = tuple(row[1] for row in conn.execute("PRAGMA table_info(answers)"))
    assert set(columns) == set(COLUMNS)
    assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    conn.close()
    assert QuestionLog(tmp_path / "new.sqlite3").open().rows()[0]["answer_id"] == "a"  # opening again changes nothing


def test_a_log_from_a_newer_qa_is_refused_at_start_and_left_as_it_was(tmp_path):
    path = tmp_path / "log.sqlite3"
    _old_log(path, SCHEMA_D941E7D)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(QuestionLogError, match=rf"schema version {SCHEMA_VERSION + 1}, newer than this qa's"):
        QuestionLog(path).open()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM answers").fetchone() == (2,)
    assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION + 1,)
    conn.close()


def test_review_names_a_log_that_a_newer_qa_upgraded_meanwhile_in_one_line(tmp_path, article_index):
    """The Review tab shows a log it cannot read as a message (issue 21); a newer schema is one such log."""
    path = tmp_path / "log.sqlite3"
    log = QuestionLog(path).open()
    assert log.record(_answer("a"))
    log.close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    review = Review(Bot(article_index), log, tmp_path)
    with pytest.raises(ValueError, match=rf"cannot read the question log {path} .*newer than this qa's"):
        review.queue()


def test_a_damaged_log_is_refused_when_a_bot_starts(tmp_path, article_index):
    path = tmp_path / "log.sqlite3"
    path.write_bytes(b"this is not a database, " * 200)
    with pytest.raises(QuestionLogError, match="is damaged"):
        Bot(article_index, question_log=path)


@pytest.mark.parametrize("damage", ["damaged", "newer"])
def test_the_cli_says_so_in_one_line(tmp_path, article_index, damage):
    path = tmp_path / "log.sqlite3"
    if damage == "damaged":
        path.write_bytes(b"\0garbage" * 500)
    else:
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA user_version = 99")
        conn.close()
    done = subprocess.run([sys.executable, "-m", "qa.cli", "ask", "hello", "--index", str(article_index)],
                          cwd=ROOT, env=qa_env(QA_LOG=str(path)), capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the question log ") and str(path) in lines[0], done.stderr
