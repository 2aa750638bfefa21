"""The learning loop: the question log, feedback, the review queue, alternates files and live reload."""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from qa import Bot, QuestionLog, settings
from qa.alternates import ADDED_FAQ_FILE, ALTERNATES_FILE
from qa.indexing import build_index
from qa.review import Review, greedy_clusters

FAQ = """id,question,answer
office,Where is the office?,"At 12 Harbour Street, second floor."
hours,When are you open?,"Monday to Friday, 9:00 to 17:00."
sunday,Are you open on Sundays?,"No, the office is closed on Sundays."
parking,Is there parking nearby?,"Yes, the Harbour car park is two minutes away on foot."
"""
OFF_TOPIC = "How do I reset my password for the online portal?"
NEW_FAQ = "How do I reset my password?"  # the question of the FAQ the reload tests add


@pytest.fixture
def faq_data(tmp_path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "faq.csv").write_text(FAQ, encoding="utf-8")
    return data


@pytest.fixture
def faq_index(faq_data, tmp_path, embedder) -> Path:
    index = tmp_path / "index"
    build_index([faq_data], index, embedder)
    return index


def faq_folder_with_logged_bot(tmp_path, embedder) -> tuple[Path, Path, Bot]:
    """A data folder holding FAQ, its index and a warm Bot over it that logs to tmp_path/qa-log.sqlite3."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "faq.csv").write_text(FAQ, encoding="utf-8")
    index = tmp_path / "index"
    build_index([data], index, embedder)
    return data, index, Bot(index, embedder=embedder, question_log=tmp_path / "qa-log.sqlite3").warm_up()


def logged_bot(index, embedder, tmp_path, **kwargs) -> Bot:
    return Bot(index, embedder=embedder, question_log=tmp_path / "log.sqlite3", **kwargs).warm_up()


# --- the log -----------------------------------------------------------------------------------------------

def test_log_stores_question_outcome_citation_best_passage_and_choice(faq_index, embedder, tmp_path):
    bot = logged_bot(faq_index, embedder, tmp_path)
    answered = bot.ask("Where is the office?")
    abstained = bot.ask(OFF_TOPIC)
    unsure = logged_bot(faq_index, embedder, tmp_path, threshold=1.0)  # the same log file
    offered = unsure.ask("Do you open on Saturday?").suggestions[-1].passage_id
    picked = unsure.ask("Do you open on Saturday?", choose=offered)
    assert answered.answer_id and answered.to_dict()["answer_id"] == answered.answer_id
    assert len({answered.answer_id, abstained.answer_id, picked.answer_id}) == 3
    rows = {r["answer_id"]: r for r in bot.question_log.rows()}
    assert rows[answered.answer_id]["outcome"] == "answered"
    assert rows[answered.answer_id]["passage_id"] == "faq:office"
    assert rows[answered.answer_id]["build_id"] == bot.index.manifest["build_id"]
    low = rows[abstained.answer_id]
    assert low["outcome"] == abstained.outcome != "answered" and low["passage_id"] is None
    assert low["best_passage_id"] == abstained.passages[0].passage.id  # kept even below the threshold
    assert low["confidence"] == pytest.approx(abstained.confidence)
    assert rows[picked.answer_id]["chosen"] == offered


def test_log_is_off_for_plain_bots_on_for_the_chat_and_off_means_off(faq_index, embedder, monkeypatch, tmp_path):
    assert Bot(faq_index, embedder=embedder).question_log is None
    assert settings.question_log(index=faq_index, default_on=True) == faq_index.resolve().parent / "qa-log.sqlite3"
    monkeypatch.setenv("QA_LOG", "off")
    assert settings.question_log(index=faq_index, default_on=True) is None
    assert Bot(faq_index, question_log=tmp_path / "x.sqlite3").question_log.path == tmp_path / "x.sqlite3"
    monkeypatch.setenv("QA_LOG", str(tmp_path / "env.sqlite3"))
    assert Bot(faq_index).question_log.path == tmp_path / "env.sqlite3"


def test_an_unwritable_log_never_fails_an_answer_and_warns_once(faq_index, embedder, tmp_path, caplog):
    (tmp_path / "log-is-a-folder").mkdir()
    bot = Bot(faq_index, embedder=embedder, question_log=tmp_path / "log-is-a-folder").warm_up()
    with caplog.at_level(logging.WARNING, logger="qa.log"):
        answers = [bot.ask("Where is the office?") for _ in range(3)]
    assert all(a.answered for a in answers)
    assert len([r for r in caplog.records if "not recorded" in r.message]) == 1


def test_a_locked_log_does_not_hold_up_answers(faq_index, embedder, tmp_path, caplog):
    bot = logged_bot(faq_index, embedder, tmp_path)
    bot.ask("Where is the office?")
    blocker = sqlite3.connect(tmp_path / "log.sqlite3", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with caplog.at_level(logging.WARNING, logger="qa.log"):
            started = time.perf_counter()
            answer = bot.ask("When are you open?")
            took = time.perf_counter() - started
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert answer.answered and took < 1.5
    assert any("not recorded" in r.message for r in caplog.records)
    assert bot.ask("Are you open on Sundays?").answered
    assert len(bot.question_log.rows()) == 2  # the write after the lock went through again


def test_the_log_keeps_at_most_max_rows(faq_index, embedder, tmp_path):
    bot = Bot(faq_index, embedder=embedder, question_log=QuestionLog(tmp_path / "small.sqlite3", max_rows=50))
    bot.ask_many(["Where is the office?"] * 300)
    rows = bot.question_log.rows()
    assert len(rows) == 50 and rows[-1]["seq"] == 300


WRITER = """
import sys
from qa import Answer, QuestionLog
log = QuestionLog(sys.argv[1])
i = 0
while True:
    i += 1
    log.record(Answer(question="q" * 500 + str(i), text="t", answered=False, confidence=0.1, answer_id=f"id{i}"))
    if i == 200:
        print("writing", flush=True)
"""


def test_a_process_killed_mid_write_leaves_the_log_readable(tmp_path):
    path = tmp_path / "log.sqlite3"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()
    log = QuestionLog(path)
    rows = log.rows()
    assert len(rows) >= 200 and [r["answer_id"] for r in rows] == [f"id{i}" for i in range(1, len(rows) + 1)]
    assert log.feedback(rows[0]["answer_id"], False) and log.rows()[0]["helpful"] == 0


# --- feedback ----------------------------------------------------------------------------------------------

def test_feedback_is_recorded_for_known_answers_only(faq_index, embedder, tmp_path):
    bot = logged_bot(faq_index, embedder, tmp_path)
    answer = bot.ask("Where is the office?")
    assert bot.feedback(answer.answer_id, False) is True
    assert bot.question_log.rows()[0]["helpful"] == 0
    assert bot.feedback(answer.answer_id, True) and bot.question_log.rows()[0]["helpful"] == 1
    assert bot.feedback("0" * 32, True) is False
    with pytest.raises(ValueError, match="answer_id"):
        bot.feedback("", True)
    with pytest.raises(ValueError, match="helpful"):
        bot.feedback(answer.answer_id, "yes")
    assert Bot(faq_index, embedder=embedder).feedback(answer.answer_id, True) is False  # log off


# --- alternates.jsonl --------------------------------------------------------------------------------------

def test_alternates_file_joins_its_faqs_at_build_time(faq_data, tmp_path, embedder, caplog):
    (faq_data / ALTERNATES_FILE).write_text(
        '{"id": "faq:office", "alternates": ["Which street are you on?"]}\n'
        '{"id": "faq:gone", "alternates": ["Nobody asks this"]}\n', encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        build_index([faq_data], tmp_path / "idx", embedder)
    bot = Bot(tmp_path / "idx", embedder=embedder)
    office = next(p for p in bot.passages if p.id == "faq:office")
    assert office.alternates == ("Which street are you on?",)
    assert any("faq:gone" in r.message for r in caplog.records)
    assert bot.ask("Which street are you on?").citations[0].passage_id == "faq:office"
    (faq_data / ALTERNATES_FILE).write_text('{"id": "faq:office"}\n', encoding="utf-8")
    manifest = build_index([faq_data], tmp_path / "idx", embedder)  # a malformed line skips the file, named
    assert str(manifest.skipped[0]).startswith("alternates.jsonl:1: expected")
    assert next(p for p in Bot(tmp_path / "idx", embedder=embedder).passages if p.id == "faq:office").alternates == ()


# --- review ------------------------------------------------------------------------------------------------

def test_greedy_clusters_join_similar_rows_in_order():
    import numpy as np

    v = np.array([[1, 0], [0.99, 0.141], [0, 1], [0.1, 0.995]], dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    assert greedy_clusters(v, 0.9) == [[0, 1], [2, 3]]
    assert greedy_clusters(v, 0.9999) == [[0], [1], [2], [3]]


def test_review_accepts_alternates_adds_faqs_dismisses_and_the_rebuild_answers(faq_data, faq_index, embedder, tmp_path):
    unsure = logged_bot(faq_index, embedder, tmp_path, threshold=1.0)  # nothing passes: every question is reviewed
    asked = ["Which street is your office on?", "On what street is the office?", "Which street is your office on?"]
    unsure.ask_many(asked + [OFF_TOPIC, "Can I bring my dog to the office?"])
    unsure.feedback(unsure.ask("Where is the office?").answer_id, True)
    review = Review(unsure, unsure.question_log, faq_data)
    queue = review.queue()
    office = queue[0]
    assert office.count >= 3 and set(asked) <= set(office.questions)
    assert office.candidate.id == "faq:office"
    assert json.loads(json.dumps([c.to_dict() for c in queue]))
    review.accept(office)
    password = next(c for c in review.queue() if OFF_TOPIC in c.questions)
    review.add_faq(password, "How do I reset my password?", "Use the 'Forgot password' link on the portal's login page.")
    for cluster in review.queue():
        review.dismiss(cluster)
    assert review.queue() == []
    assert office.answer_ids[0] not in [r["answer_id"] for r in unsure.question_log.rows(open_only=True)]
    with pytest.raises(ValueError, match="no open review cluster"):
        review.find(office.key)

    lines = (faq_data / ALTERNATES_FILE).read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["id"] == "faq:office"
    assert "question,answer,alternates" in (faq_data / ADDED_FAQ_FILE).read_text(encoding="utf-8")
    build_index([faq_data], faq_index, embedder)
    after = Bot(faq_index, embedder=embedder)
    street = after.ask("On what street is the office?")
    assert street.answered and street.citations[0].passage_id == "faq:office"
    reset = after.ask(OFF_TOPIC)
    assert reset.answered and "Forgot password" in reset.text


def test_accept_adds_the_questions_the_faq_already_answered_well_and_marks_them(faq_data, faq_index, embedder, tmp_path):
    bot = logged_bot(faq_index, embedder, tmp_path)
    well = bot.ask("Where's the office?")
    assert well.answered and well.citations[0].passage_id == "faq:office" and well.confidence >= 0.9
    disliked = bot.ask("Where is the office located?")
    bot.feedback(disliked.answer_id, False)  # marked unhelpful: never added as an alternate of that FAQ
    unsure = logged_bot(faq_index, embedder, tmp_path, threshold=1.0)
    unsure.ask("On what street is the office?")  # only suggested: in the queue
    review = Review(bot, bot.question_log, faq_data)
    street = next(c for c in review.queue() if "On what street is the office?" in c.questions)
    assert street.candidate.id == "faq:office"
    assert street.also_answered == ["Where's the office?"] and street.to_dict()["also_answered"] == street.also_answered
    review.accept(street)
    line = json.loads((faq_data / ALTERNATES_FILE).read_text(encoding="utf-8"))
    assert line == {"id": "faq:office", "alternates": ["On what street is the office?", "Where's the office?"]}
    reviewed = {r["question"]: r["reviewed"] for r in bot.question_log.rows()}
    assert reviewed["Where's the office?"] == "alternates" and reviewed["Where is the office located?"] is None


def test_a_rejected_did_you_mean_proposes_no_candidate(faq_data, faq_index, embedder, tmp_path):
    unsure = logged_bot(faq_index, embedder, tmp_path, threshold=1.0)
    answer = unsure.ask("Do you open on Saturday?")
    assert answer.outcome == "suggested"
    review = Review(unsure, unsure.question_log, faq_data)
    assert review.queue()[0].candidate is not None  # unmarked, the bot's first guess is proposed
    unsure.feedback(answer.answer_id, False)  # "none of these": the guesses are turned down
    cluster = review.queue()[0]
    assert cluster.candidate is None and cluster.reasons["unhelpful"] == 1
    with pytest.raises(ValueError, match="no FAQ candidate"):
        review.accept(cluster)
    assert review.accept(cluster, "faq:hours").name == ALTERNATES_FILE  # the reviewer names the FAQ


# --- live reload -------------------------------------------------------------------------------------------

def test_a_serving_bot_switches_to_a_rebuilt_index_whole(faq_data, faq_index, embedder):
    bot = Bot(faq_index, embedder=embedder).warm_up()
    before = bot.index.manifest["build_id"]
    assert not bot.ask(NEW_FAQ).answered
    errors, outcomes, stop = [], [], threading.Event()

    def hammer():
        while not stop.is_set():
            try:
                a = bot.ask("Where is the office?")
                outcomes.append(a.citations[0].passage_id if a.citations else None)
            except Exception as exc:  # any failure while the index is swapped is a bug
                errors.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        with open(faq_data / "faq.csv", "a", encoding="utf-8") as fh:
            fh.write('reset,How do I reset my password?,"Use the Forgot password link on the login page."\n')
        build_index([faq_data], faq_index, embedder)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors and outcomes and set(outcomes) == {"faq:office"}
    assert bot.ask(NEW_FAQ).answered
    assert bot.index.manifest["build_id"] != before


def test_a_damaged_new_index_leaves_the_old_one_serving_with_one_warning(faq_data, faq_index, embedder, caplog):
    bot = Bot(faq_index, embedder=embedder).warm_up()
    before = bot.index.manifest["build_id"]
    with open(faq_data / "faq.csv", "a", encoding="utf-8") as fh:
        fh.write('reset,How do I reset my password?,"Use the Forgot password link."\n')
    manifest = build_index([faq_data], faq_index, embedder)
    vectors = faq_index / manifest["build_id"] / "vectors.faiss"
    vectors.write_bytes(vectors.read_bytes()[:-10] + b"0123456789")
    with caplog.at_level(logging.WARNING, logger="qa.bot"):
        answers = [bot.ask("Where is the office?") for _ in range(3)]
    assert all(a.answered for a in answers) and bot.index.manifest["build_id"] == before
    assert len([r for r in caplog.records if "cannot be used" in r.message]) == 1
    build_index([faq_data], faq_index, embedder)  # repaired: the next request switches
    assert bot.ask(NEW_FAQ).answered
