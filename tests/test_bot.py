"""ask() on the bundled article: right passages, verbatim quotes, FAQ answers, abstention, bad input."""

from __future__ import annotations

import json

import pytest

from qa import Answer, Bot
from qa.answering import NOT_COVERED, check_citation

from .conftest import ARTICLE, FIXTURES

# Questions of our own about the bundled article, each with words its answer must hold
# (also scored by bench/quality_ablation.py, so tuning sees them).
_BUNDLED = [json.loads(line) for line in (FIXTURES / "bundled_questions.jsonl").read_text(encoding="utf-8").splitlines()]


def _cases(expect: str) -> list:
    """(question, fact) of the bundled questions that `expect` a paragraph or an FAQ; a known miss is a strict xfail."""
    return [
        pytest.param(r["question"], r["fact"], marks=pytest.mark.xfail(strict=True, reason=r["known_miss"]))
        if "known_miss" in r
        else (r["question"], r["fact"])
        for r in _BUNDLED
        if r["expect"] == expect
    ]


ARTICLE_QUESTIONS = _cases("paragraph")
# Paraphrases of the four FAQ questions → the start of the FAQ answer they must return whole.
FAQ_PARAPHRASES = _cases("faq")

OFF_TOPIC = [
    "How do I bake sourdough bread?",
    "What is the capital of France?",
    "Who won the football world cup in 2018?",
    "How do I reset my router password?",
    "What is the boiling point of water at sea level?",
    "Recommend a good science fiction novel.",
]


def _source_text() -> str:
    return ARTICLE.read_text(encoding="utf-8")


@pytest.mark.parametrize("question, fact", ARTICLE_QUESTIONS)
def test_article_questions_are_answered_with_a_verbatim_quote_holding_the_fact(bot, question, fact):
    answer = bot.ask(question)
    if answer.outcome == "suggested":
        picks = [bot.ask(question, choose=s.passage_id) for s in answer.suggestions]
        answer = next((a for a in picks if fact in a.text), answer)
    assert answer.answered, (question, answer.outcome, answer.confidence)
    assert fact in answer.text, (question, answer.text)
    (citation,) = answer.citations
    assert citation.source == "Diaz Canel Russia Visit"
    assert _source_text()[citation.start : citation.end] == citation.quote == answer.text
    assert len(answer.text.split()) <= 80, "an answer is a sentence or two, not a page"


@pytest.mark.parametrize("question, opening", FAQ_PARAPHRASES)
def test_faq_paraphrases_return_the_faq_answer_verbatim(bot, question, opening):
    answer = bot.ask(question)
    assert answer.answered
    (citation,) = answer.citations
    assert citation.kind == "faq"
    assert answer.text.startswith(opening)
    passage = answer.passages[0].passage
    assert answer.text == passage.text, "an FAQ answer is quoted whole"
    assert citation.label == passage.question
    assert _source_text()[citation.start : citation.end] == answer.text


def test_an_faq_is_found_by_words_of_its_answer(bot):
    answer = bot.ask("Which sectors like biotechnology and artificial intelligence are in the cooperation agenda?")
    top = answer.passages[0].passage
    assert top.kind == "faq"
    assert "biotechnology, energy, and artificial intelligence" in top.text


@pytest.mark.parametrize("question", OFF_TOPIC)
def test_off_topic_questions_abstain_and_still_list_related_passages(bot, question):
    answer = bot.ask(question)
    assert not answer.answered, (question, answer.confidence, answer.text)
    assert answer.text == NOT_COVERED
    assert answer.citations == ()
    assert len(answer.passages) == 5
    assert answer.confidence < 0.5


def test_confidence_is_in_unit_range_and_passages_are_ranked(bot):
    answer = bot.ask("Who did Díaz-Canel meet in St. Petersburg?", k=7)
    assert 0.0 <= answer.confidence <= 1.0
    assert [h.rank for h in answer.passages] == list(range(7))
    scores = [h.score for h in answer.passages]
    assert scores == sorted(scores, reverse=True)


def test_every_citation_is_checked_against_its_source(bot):
    answer = bot.ask("Who did Díaz-Canel meet in St. Petersburg?")
    assert answer.answered
    passage = answer.passages[0].passage
    check_citation(passage, answer.citations[0])
    from dataclasses import replace

    from qa.answering import GroundingError

    with pytest.raises(GroundingError):
        check_citation(passage, replace(answer.citations[0], quote=answer.citations[0].quote + " (and more)"))


def test_a_follow_up_is_read_in_the_light_of_the_previous_question(bot):
    alone = bot.ask("And who did he meet there?")
    followed = bot.ask("And who did he meet there?", history=["What did Díaz-Canel do in St. Petersburg?"])
    assert "Beglov" in followed.text
    assert followed.confidence >= alone.confidence


def test_a_question_longer_than_the_model_window_is_answered(bot):
    question = "Who did Díaz-Canel meet in St. Petersburg? " + "Please tell me more about the governor. " * 40
    assert len(question) < bot.max_question_chars
    answer = bot.ask(question)
    if answer.outcome == "suggested":  # the filler dilutes the match: the right passage is one click away
        answer = bot.ask(question, choose=answer.suggestions[0].passage_id)
    assert answer.answered and "Beglov" in answer.text


@pytest.mark.parametrize("question", ["", "   \n\t "])
def test_empty_question_is_a_clear_value_error(bot, question):
    with pytest.raises(ValueError, match="question is empty"):
        bot.ask(question)


def test_over_long_question_is_refused_with_its_length(bot):
    with pytest.raises(ValueError, match="question is 2,001 characters long; the limit is 2,000"):
        bot.ask("a" * 2001)


@pytest.mark.parametrize("k", [0, -3])
def test_k_below_one_is_a_value_error_naming_k(bot, k):
    with pytest.raises(ValueError, match=f"k must be an integer >= 1, got {k}"):
        bot.ask("Who did Díaz-Canel meet?", k=k)


def test_threshold_is_configurable_per_call_and_by_environment(bot, article_index, embedder, monkeypatch):
    question = "Who did Díaz-Canel meet in St. Petersburg?"
    assert not bot.ask(question, threshold=1.0).answered
    monkeypatch.setenv("QA_THRESHOLD", "1.0")
    assert not Bot(article_index, embedder=embedder).ask(question).answered
    with pytest.raises(ValueError, match="threshold must be in"):
        bot.ask(question, threshold=2)


def test_ask_many_matches_ask(bot):
    # Over 20 questions: FAISS then searches them as one matrix product, not one by one.
    questions = [r["question"] for r in _BUNDLED] + OFF_TOPIC + bot.faq_questions()
    assert len(questions) > 20
    batch = bot.ask_many(questions)
    assert len(batch) == len(questions)
    for question, answer in zip(questions, batch):
        one = bot.ask(question)
        assert answer.question == question
        assert (answer.text, answer.answered) == (one.text, one.answered)
        assert [(c.passage_id, c.start, c.end) for c in answer.citations] == [(c.passage_id, c.start, c.end) for c in one.citations]
        assert [h.passage.id for h in answer.passages] == [h.passage.id for h in one.passages]
        # A question embedded in a batch may differ from itself alone in the last bits (padding), no more.
        assert answer.confidence == pytest.approx(one.confidence, abs=1e-5)


def test_answer_to_dict_is_json_ready(bot):
    import json

    data = json.loads(json.dumps(bot.ask("Who did Díaz-Canel meet in St. Petersburg?").to_dict()))
    assert set(data) == {"question", "text", "answered", "outcome", "confidence", "citations", "suggestions", "passages", "answer_id",
                         "follow_ups"}
    assert data["follow_ups"] == []  # a paragraph names no follow-ups
    assert set(data["citations"][0]) == {"passage_id", "kind", "source", "path", "label", "quote", "start", "end", "score", "page",
                                         "answer_start", "answer_end"}


def test_importing_qa_loads_no_model_and_reads_no_index():
    import subprocess
    import sys

    code = "import sys, qa; print('torch' in sys.modules, 'faiss' in sys.modules, 'sentence_transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "False"]


def test_module_level_ask_uses_the_index_named_by_the_environment(article_index, monkeypatch):
    import qa

    monkeypatch.setenv("QA_INDEX_DIR", str(article_index))
    monkeypatch.setattr(qa, "_default_bot", None)
    answer = qa.ask("Who did Díaz-Canel meet in St. Petersburg?")
    assert isinstance(answer, Answer) and "Alexander Beglov" in answer.text
    monkeypatch.setattr(qa, "_default_bot", None)


def test_a_standalone_question_after_another_is_not_mixed_with_it(bot):
    alone = bot.ask("When did Fidel Castro visit Leningrad?")
    after = bot.ask("When did Fidel Castro visit Leningrad?", history=["Who accompanied Díaz-Canel on the visit?"])
    assert after.text == alone.text


def test_history_must_be_a_list_of_strings(bot):
    with pytest.raises(ValueError, match="history must be a list"):
        bot.ask("Who?", history=[1, 2])


def test_faq_questions_are_listed_for_examples(bot):
    assert bot.faq_questions()[0] == "What was the purpose of Díaz-Canel's visit to Russia in May 2025?"
    assert len(bot.passages) == 19
