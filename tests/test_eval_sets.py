"""`qa eval` on a set with unanswerable questions (the shape of squad2_dev): retrieval is scored on the answerable ones."""

from __future__ import annotations

import json

from qa.evaluation import evaluate_set


def test_unanswerable_questions_are_not_scored_for_retrieval(tmp_path, embedder):
    folder = tmp_path / "tiny_squad2"
    folder.mkdir()
    doc = {"doc_id": "harbour", "title": "Harbour office", "paragraphs": [
        "The harbour office opens at nine in the morning and closes at five in the afternoon.",
        "Ferries to the island leave every hour from the north pier, weather permitting.",
    ]}
    questions = [
        {"qid": "a", "question": "When does the harbour office open?", "doc_id": "harbour", "paragraph_index": 0,
         "answers": ["at nine in the morning"], "unanswerable": False},
        {"qid": "b", "question": "Where do the ferries to the island leave from?", "doc_id": "harbour", "paragraph_index": 1,
         "answers": ["the north pier"], "unanswerable": False},
        {"qid": "c", "question": "When does the harbour office close on Sundays?", "doc_id": "harbour", "paragraph_index": None,
         "answers": [], "unanswerable": True},
    ]
    (folder / "docs.jsonl").write_text(json.dumps(doc) + "\n")
    (folder / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    result = evaluate_set(folder, embedder, [], out_of_scope=0)
    assert (result["questions"], result["answerable_questions"], result["ours"]["unanswerable_questions"]) == (3, 2, 1)
    assert result["ours"]["recall@1"] == 1.0


def _faq_set(folder, faqs, queries):
    folder.mkdir()
    (folder / "faqs.jsonl").write_text("".join(json.dumps(f) + "\n" for f in faqs))
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    return folder


FAQS = [
    {"faq_id": "open", "question": "When does the harbour office open?", "answer": "At nine in the morning."},
    {"faq_id": "hours", "question": "What are the opening hours of the harbour office?",
     "answer": "Nine to five on weekdays, closed at weekends."},
    {"faq_id": "hours-2", "question": "What are the opening hours of the harbour office?",
     "answer": "From nine until five, Monday to Friday."},  # a second answer to the same question, as in a thread
    {"faq_id": "ferry", "question": "Where do ferries to the island leave from?", "answer": "From the north pier."},
]


def test_a_wrong_answer_is_listed_with_what_it_cited_and_what_the_set_calls_right(tmp_path, embedder):
    """The set's gold for the office's opening is the "hours" FAQ, but the question is word for word the "open"
    FAQ's, which the bot cites: a mistake by the set's gold, listed so a reader can judge it; the right answer
    is not listed. The gold's two pairs that share a question are one entry."""
    folder = _faq_set(tmp_path / "harbour_faq", FAQS, [
        {"qid": "q1", "query": "When does the harbour office open?", "faq_ids": ["hours", "hours-2"]},
        {"qid": "q2", "query": "Where do ferries to the island leave from?", "faq_ids": ["ferry"]},
    ])
    result = evaluate_set(folder, embedder, [], out_of_scope=0)
    assert result["ours"]["answered_wrong"] == 0.5 and result["ours"]["answered_right"] == 0.5
    [record] = result["mistakes"]
    assert record["mistake"] == "answered_wrong" and record["question"] == "When does the harbour office open?"
    assert record["cited"]["label"] == "When does the harbour office open?"
    assert record["cited"]["quote"] == "At nine in the morning."
    [gold] = record["gold"]
    assert gold["label"] == "What are the opening hours of the harbour office?"  # one entry for the two pairs
    assert [pid.split(":")[-1] for pid in gold["passage_ids"]] == ["hours", "hours-2"]
    assert 0 < record["confidence"] <= 1


def test_qa_eval_writes_the_mistakes_of_every_set_as_json_lines(tmp_path):
    from .test_cli import qa

    folder = _faq_set(tmp_path / "harbour_faq", FAQS, [
        {"qid": "q1", "query": "When does the harbour office open?", "faq_ids": ["hours"]}])
    out = tmp_path / "mistakes.jsonl"
    run = qa("eval", str(folder), "--mistakes", str(out))
    assert run.returncode == 0, run.stderr
    [record] = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert record["set"] == "harbour_faq" and record["cited"]["passage_id"].endswith(":open")
    assert "mistakes" not in run.stdout  # the report is unchanged

    missing = qa("eval", str(folder), "--mistakes", str(tmp_path / "no" / "such" / "m.jsonl"))
    assert missing.returncode == 2 and "no such folder" in missing.stderr and "Traceback" not in missing.stderr


def test_a_question_whose_first_passage_is_right_but_is_not_answered_is_listed_as_held_back():
    """The bot found the gold passage first and suggested or abstained: the gap users feel most. A question whose
    first passage is not gold, or an unanswerable one, is not held back."""
    from qa.evaluation import Question, mistakes
    from qa.types import Answer, Hit, Passage, Suggestion

    def passage(pid: str, question: str) -> Passage:
        return Passage(id=f"faqs:{pid}", kind="faq", text="Answer.", title="Faqs", path="faqs.jsonl", start=0,
                       end=7, position=0, question=question)

    right, other = passage("hours", "What are the opening hours?"), passage("ferry", "Where do ferries leave?")
    offer = Suggestion(passage_id=right.id, kind="faq", source="Faqs", label=right.label, text=right.label,
                       confidence=0.4)
    suggested = Answer("When is it open?", "I am not sure which of these you mean.", False, 0.4,
                       passages=(Hit(right, 0.7, 0), Hit(other, 0.5, 1)), suggestions=(offer,))
    abstained = Answer("Is it open at night?", "I don't know.", False, 0.1, passages=(Hit(right, 0.4, 0),))
    missed = Answer("When is it open on Sundays?", "I don't know.", False, 0.1, passages=(Hit(other, 0.4, 0),))
    unanswerable = Answer("Who built it?", "I don't know.", False, 0.1, passages=(Hit(right, 0.4, 0),))
    questions = [Question(a.question, {right.id}) for a in (suggested, abstained, missed)]
    questions.append(Question(unanswerable.question, set(), unanswerable=True))
    records = mistakes([suggested, abstained, missed, unanswerable], questions, [], {right.id: right, other.id: other})
    assert [(r["mistake"], r["outcome"], r["question"]) for r in records] == [
        ("held_back", "suggested", "When is it open?"), ("held_back", "abstained", "Is it open at night?")]
    assert records[0]["first"] == {"passage_id": "faqs:hours", "source": "Faqs", "label": "What are the opening hours?"}
    assert records[0]["gold"] == [{"source": "Faqs", "label": "What are the opening hours?", "passage_ids": ["faqs:hours"]}]
