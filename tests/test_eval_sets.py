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
