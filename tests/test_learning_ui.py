"""The learning loop in the web chat and the CLI: /feedback, thumbs, the Review tab, `qa review`, live reload."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ui
from qa import Bot, QuestionLog, open_review
from qa.cli import main as qa_main
from qa.indexing import build_index

from .conftest import free_port
from .test_browser import CHROMIUM, FLAGS, REPLY, ask, assert_stayed_local, screenshot
from .test_learning import FAQ, faq_folder_with_logged_bot

UNANSWERED = "Where are you located?"  # abstains on FAQ until its words are an alternate of faq:office
LOGIN = ("reviewer", "long-passphrase")


@pytest.fixture
def served(tmp_path, embedder):
    """The chat with a question log and the Review tab, over a data folder of its own, behind a login."""
    data, index, bot = faq_folder_with_logged_bot(tmp_path, embedder)
    review = open_review(str(index), str(tmp_path / "qa-log.sqlite3"), str(data), bot=bot)
    app = ui.build_app(bot, review=review, reviewers={LOGIN[0]})
    url = ui.launch(app, "127.0.0.1", free_port(), LOGIN, block=False)
    yield url, bot, data, index
    app.close()


def test_feedback_endpoint_records_thumbs_for_ask_answers(served):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    url, bot, _, _ = served
    client = Client(url, auth=LOGIN, verbose=False)
    answer = json.loads(client.predict("Where is the office?", None, api_name="/ask"))
    assert answer["answered"] and len(answer["answer_id"]) == 32
    assert json.loads(client.predict(answer["answer_id"], False, api_name="/feedback")) == {"recorded": True}
    assert bot.question_log.rows()[-1]["helpful"] == 0
    assert json.loads(client.predict("f" * 32, True, api_name="/feedback")) == {"recorded": False}
    with pytest.raises(AppError, match="answer_id"):
        client.predict("", True, api_name="/feedback")
    assert list(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == ["/faqs", "/ask", "/feedback"]


def test_the_review_tab_is_only_built_with_a_review(bot, served):
    def ids(app):
        return {b.elem_id for b in app.blocks.values()}

    assert "review-tab" not in ids(ui.build_app(bot))
    assert "review-tab" in ids(ui.build_app(served[1], review=open_review(None, str(served[1].question_log.path),
                                                                          str(served[2]), bot=served[1]),
                                            reviewers={LOGIN[0]}))


def test_review_needs_a_login(capsys, article_index):
    assert ui.main(["--index", str(article_index), "--review"]) == 2
    assert "--review needs a login" in capsys.readouterr().err


def test_qa_review_lists_and_accepts_and_the_build_applies_it(tmp_path, embedder, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "faq.csv").write_text(FAQ, encoding="utf-8")
    index = tmp_path / "index"
    build_index([data], index, embedder)
    log_file = tmp_path / "log.sqlite3"
    bot = Bot(index, embedder=embedder, question_log=log_file)
    bot.ask_many(["Which street is the office on?", "Where do I leave my car?", "Where do I leave the car?"], threshold=1.0)
    common = ["--index", str(index), "--log", str(log_file), "--data", str(data)]
    assert qa_main(["review", *common, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed and sum(c["count"] for c in listed) == 3 and listed[0]["count"] == 2
    assert listed[0]["candidate"]["passage_id"] == "faq:parking"
    assert qa_main(["review", *common, "--accept-all"]) == 0
    assert "run `qa build`" in capsys.readouterr().out
    assert qa_main(["review", *common]) == 0 and "nothing to review" in capsys.readouterr().out
    assert qa_main(["review", "--index", str(index), "--log", str(tmp_path / "none.sqlite3"), "--data", str(data)]) == 2
    assert "no question log" in capsys.readouterr().err
    assert (data / "alternates.jsonl").exists() and not list(index.rglob("alternates.jsonl"))


# --- the whole loop in a real browser ----------------------------------------------------------------------

@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_thumbs_review_tab_rebuild_and_the_same_question_answered(served, embedder):
    """A user is not answered and says so; a reviewer adds the question to an FAQ; after `qa build` the chat answers it."""
    from playwright.sync_api import sync_playwright

    url, bot, data, index = served
    requested: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        page = browser.new_page(viewport={"width": 1200, "height": 1100})
        page.on("request", lambda r: requested.append(r.url))
        page.goto(url, wait_until="load")
        page.fill("input[type=text]", LOGIN[0])
        page.fill("input[type=password]", LOGIN[1])
        page.keyboard.press("Enter")
        page.wait_for_selector("#question textarea")

        reply = ask(page, UNANSWERED)
        assert reply.locator(".qa-abstain-title").count() == 1
        page.locator('#chat button[aria-label="Dislike"]').last.click()
        page.wait_for_function("() => true")
        first = bot.question_log.rows()[0]
        for _ in range(50):
            if bot.question_log.rows()[0]["helpful"] == 0:
                break
            page.wait_for_timeout(100)
        assert bot.question_log.rows()[0]["helpful"] == 0 and first["question"] == UNANSWERED

        page.click("#review-tab-button")
        page.wait_for_selector("#review-queue")
        page.wait_for_function("(q) => document.querySelector('#review-queue').innerText.includes(q)", arg=UNANSWERED)
        page.fill("#review-faq-id textarea, #review-faq-id input", "faq:office")
        page.click("#review-accept")
        page.wait_for_function("() => document.querySelector('#review-status').innerText.includes('Added as alternates')")
        screenshot(page, "review.png")
        lines = (data / "alternates.jsonl").read_text(encoding="utf-8").splitlines()
        assert json.loads(lines[0]) == {"id": "faq:office", "alternates": [UNANSWERED]}

        build_index([data], index, embedder)  # what `qa build` does; the chat is not restarted
        page.click("#chat-tab-button")
        again = ask(page, UNANSWERED)
        assert again.locator(".qa-quote").inner_text() == "At 12 Harbour Street, second floor."
        screenshot(page, "learned.png")
        browser.close()
    assert_stayed_local(requested)
