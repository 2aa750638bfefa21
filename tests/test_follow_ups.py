"""Follow-up prompts: `follow_ups` in FAQ files, resolved at build time, offered with answers, preferred right after."""

from __future__ import annotations

import json
import shutil

import pytest

import ui
from qa import Bot, DocumentError, Passage
from qa.checks import check_documents
from qa.cli import format_answer
from qa.follow_ups import CHILD_BONUS
from qa.indexing import build_index, collect_documents, collect_passages
from qa.readers.faq_csv import parse_faq_csv
from qa.readers.faq_json import parse_faq_json, parse_faq_jsonl

from .conftest import FIXTURES, free_port
from .test_browser import CHROMIUM, FLAGS, REPLY, ask as ask_in_page, assert_stayed_local, screenshot

SHOP = FIXTURES / "follow_ups"
# Asked alone, "What does it cost?" is too close to call between the two prices; right after
# an FAQ that names one of them as its follow-up, that one is the answer.
AMBIGUOUS = "What does it cost?"
EXPRESS, WRAPPING = "Can I get express delivery?", "Can you gift-wrap my order?"


@pytest.fixture(scope="module")
def shop(tmp_path_factory, embedder) -> Bot:
    """A Bot over tests/fixtures/follow_ups/shop.csv, whose FAQs name follow-ups."""
    folder = tmp_path_factory.mktemp("shop")
    return Bot.build([SHOP], folder / "index", embedder=embedder).warm_up()


def by_id(bot: Bot) -> dict[str, Passage]:
    return {p.id: p for p in bot.passages}


# --- readers -------------------------------------------------------------------------------------

def test_csv_follow_ups_column_is_split_at_the_bar():
    doc = parse_faq_csv("f.csv", "question,answer,follow_ups\nA?,a.,B? | c-id |\nB?,b.,\n")
    assert [p.follow_ups for p in doc.passages] == [("B?", "c-id"), ()]


def test_json_and_jsonl_follow_ups_are_lists_of_strings():
    records = [{"question": "A?", "answer": "a.", "follow_ups": ["B?", "B?", " x "]}, {"question": "B?", "answer": "b."}]
    from_json = parse_faq_json("f.json", json.dumps({"faqs": records}))
    from_jsonl = parse_faq_jsonl("f.jsonl", "\n".join(json.dumps(r) for r in records))
    for doc in (from_json, from_jsonl):
        assert [p.follow_ups for p in doc.passages] == [("B?", "x"), ()]


@pytest.mark.parametrize("value", [3, [1, "B?"], {"id": "b"}])
def test_a_follow_ups_field_that_is_not_a_list_of_strings_names_file_and_line(value):
    text = json.dumps({"question": "A?", "answer": "a."}) + "\n" + json.dumps({"question": "B?", "answer": "b.", "follow_ups": value})
    with pytest.raises(DocumentError, match=r"^f\.jsonl:2: 'follow_ups' must be a list of strings$"):
        parse_faq_jsonl("f.jsonl", text)


# --- resolution at build time --------------------------------------------------------------------

def test_references_resolve_by_id_passage_id_and_question_and_bad_ones_are_warnings(tmp_path):
    (tmp_path / "a.csv").write_text(
        "id,question,answer,follow_ups\n"
        "one,First question?,First answer.,two|b:far|THIRD  question|nowhere|one|Repeated question\n"
        "two,Second question?,Second answer.,\n"
        "three,Third question?,Third answer.,\n",
        encoding="utf-8",
    )
    (tmp_path / "b.jsonl").write_text("\n".join(json.dumps(r) for r in [
        {"id": "far", "question": "Far question?", "answer": "Far answer.", "follow_ups": ["first question?"]},
        {"question": "Repeated question?", "answer": "One answer."},
        {"question": "Repeated question", "answer": "Another answer."},
    ]), encoding="utf-8")

    passages, _ = collect_passages([tmp_path])
    follow = {p.id: p.follow_ups for p in passages if p.follow_ups}
    assert follow == {"a:one": ("a:two", "b:far", "a:three"), "b:far": ("a:one",)}

    documents, _, _ = collect_documents([tmp_path])
    warnings = [str(p) for p in check_documents(documents) if p.code == "follow-up"]
    a = str(tmp_path / "a.csv")
    assert warnings == [
        f"{a}:2: warning: follow-up 'nowhere' of 'First question?' names no FAQ "
        "(by passage id, id in this file, or question); it is left out",
        f"{a}:2: warning: follow-up 'one' of 'First question?' names the FAQ itself; it is left out",
        f"{a}:2: warning: follow-up 'Repeated question' of 'First question?' matches 2 FAQs "
        f"({tmp_path / 'b.jsonl'}:2, {tmp_path / 'b.jsonl'}:3); name one by its id; it is left out",
    ]


def test_an_unresolved_follow_up_never_breaks_the_build(tmp_path, embedder):
    (tmp_path / "faq.csv").write_text("question,answer,follow_ups\nA question?,An answer.,No such question?\n",
                                      encoding="utf-8")
    manifest = build_index([tmp_path], tmp_path / "index", embedder, allow_conflicts=False)
    assert manifest["problems"] == {"errors": 0, "warnings": 1}
    assert "follow-up 'No such question?'" in manifest["sources"][0]["warnings"][0]
    assert Bot(tmp_path / "index", embedder=embedder).passages[0].follow_ups == ()


def test_follow_ups_are_kept_in_the_index_and_an_index_without_them_still_loads(shop, tmp_path, embedder):
    assert by_id(shop)["shop:returns"].follow_ups == ("shop:refund-time", "shop:refund-shipping")
    old = tmp_path / "old-index"
    shutil.copytree(shop.index_dir, old)
    stored = old / json.loads((old / "manifest.json").read_text(encoding="utf-8"))["build_id"] / "passages.jsonl"
    lines = stored.read_text(encoding="utf-8").splitlines()
    stripped = []
    for line in lines:
        record = json.loads(line)
        del record["follow_ups"]
        stripped.append(json.dumps(record, ensure_ascii=False))
    stored.write_text("\n".join(stripped) + "\n", encoding="utf-8")
    old_bot = Bot(old, embedder=embedder, verify=False)
    assert all(p.follow_ups == () for p in old_bot.passages)
    assert old_bot.ask("How do I return an item?").follow_ups == ()


# --- answers -------------------------------------------------------------------------------------

def test_an_answered_faq_carries_its_follow_ups_in_to_dict(shop):
    answer = shop.ask("How do I return an item?")
    assert answer.outcome == "answered"
    assert [(f.passage_id, f.question) for f in answer.follow_ups] == [
        ("shop:refund-time", "How long does the refund take?"), ("shop:refund-shipping", "Do you refund the shipping costs?")]
    assert answer.to_dict()["follow_ups"] == [
        {"passage_id": "shop:refund-time", "question": "How long does the refund take?"},
        {"passage_id": "shop:refund-shipping", "question": "Do you refund the shipping costs?"}]
    text = format_answer(answer)
    assert "Ask next:\n  1. How long does the refund take?  (shop:refund-time)" in text
    assert shop.ask("How long does the refund take?").to_dict()["follow_ups"] == []
    assert shop.ask("What is the capital of Peru?").follow_ups == ()


def test_a_child_is_preferred_only_right_after_its_parent(shop):
    alone = shop.ask(AMBIGUOUS)
    assert alone.outcome == "suggested"
    assert {s.passage_id for s in alone.suggestions[:2]} == {"shop:express-price", "shop:wrapping-price"}

    after_express = shop.ask(AMBIGUOUS, history=[EXPRESS])
    after_wrapping = shop.ask(AMBIGUOUS, history=[WRAPPING])
    assert after_express.outcome == after_wrapping.outcome == "answered"
    assert after_express.citations[0].passage_id == "shop:express-price"
    assert after_wrapping.citations[0].passage_id == "shop:wrapping-price"
    assert after_express.passages[0].score == pytest.approx(alone.passages[
        [h.passage.id for h in alone.passages].index("shop:express-price")].score + CHILD_BONUS)

    # Two turns later, or after an FAQ without these follow-ups, the question is read as if alone.
    for history in ([EXPRESS, "Where is the office?"], ["Where is the office?"], ["How long does the refund take?"]):
        later = shop.ask(AMBIGUOUS, history=history)
        assert later.to_dict() | {"answer_id": ""} == alone.to_dict() | {"answer_id": ""}, history


def test_a_child_far_below_the_best_does_not_win(shop):
    question = "How long does the delivery take?"
    plain = shop.ask(question)
    after = shop.ask(question, history=["How do I return an item?"])  # its child "How long does the refund take?"
    scores = {h.passage.id: h.score for h in plain.passages}
    assert scores["shop:delivery-time"] - scores["shop:refund-time"] > CHILD_BONUS
    assert plain.citations[0].passage_id == after.citations[0].passage_id == "shop:delivery-time"


# --- the web chat --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shop_url(shop):
    app = ui.build_app(shop)
    yield ui.launch(app, "127.0.0.1", free_port(), block=False)
    app.close()


def test_ask_endpoint_returns_the_follow_ups(shop_url):
    from gradio_client import Client

    client = Client(shop_url, verbose=False)
    answer = json.loads(client.predict(EXPRESS, None, api_name="/ask"))
    assert answer["follow_ups"] == [{"passage_id": "shop:express-price", "question": "What does express delivery cost?"}]
    child = json.loads(client.predict(AMBIGUOUS, [EXPRESS], api_name="/ask"))
    assert child["answered"] and child["citations"][0]["passage_id"] == "shop:express-price"


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_clicking_a_follow_up_button_answers_that_faq_with_its_citation(shop_url, shop):
    from playwright.sync_api import sync_playwright

    requested: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        page = browser.new_page(viewport={"width": 1100, "height": 1000})
        page.on("request", lambda r: requested.append(r.url))
        page.goto(shop_url, wait_until="load")
        page.wait_for_selector("#question textarea")

        reply = ask_in_page(page, "How do I return an item?")
        assert reply.locator(".qa-quote").inner_text().startswith("Send it back within 30 days")
        buttons = page.locator("#follow-ups button")
        page.wait_for_selector("#follow-up-2", state="visible")
        assert [buttons.nth(i).inner_text() for i in range(2)] == [
            "How long does the refund take?", "Do you refund the shipping costs?"]
        assert not page.locator("#follow-up-3").is_visible()
        screenshot(page, "follow-ups.png")

        before = page.locator(REPLY).count()
        page.click("#follow-up-2")
        page.wait_for_function("([s, n]) => document.querySelectorAll(s).length > n", arg=[REPLY, before], timeout=30_000)
        child = page.locator(REPLY).nth(before)
        assert page.locator('#chat [data-testid="user"]').last.inner_text() == "Do you refund the shipping costs?"
        assert child.locator(".qa-quote").inner_text() == "Yes, the original shipping costs are refunded with the item."
        assert child.locator(".qa-citation").inner_text().startswith("Source: Shop · Do you refund the shipping costs?")
        # The child names no follow-ups: the buttons go away.
        page.wait_for_selector("#follow-up-1", state="hidden")
        browser.close()
    assert_stayed_local(requested)
