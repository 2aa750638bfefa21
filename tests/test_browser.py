"""The web chat in a real headless Chromium: answers, citations, Sources, abstentions, hostile text, no network."""

from __future__ import annotations

import json

from pathlib import Path
from urllib.parse import urlparse

import pytest

import ui
from qa import Answer, Bot

from .conftest import FIXTURES, ROOT, free_port

CHROMIUM = Path("/usr/bin/chromium")
# The flags that keep Chromium from calling home (updates, sync, QUIC probes) and run it without a display.
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
REPLY = "#chat .qa-answer, #chat .qa-abstain, #chat .qa-error"
KNOWN = "Who did Díaz-Canel meet in St. Petersburg?"
HOSTILE_DOCUMENT = """\
# Release notes

The changelog entry reads <script>window.__pwned=1</script> verbatim.

The logo markup was <img src=x onerror="window.__pwned=1"> in old versions.
"""

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium; .ci/run does it)"
    ),
]


@pytest.fixture(scope="module")
def article_url(chat_url):
    """The chat over the bundled article (served once for the session)."""
    return chat_url


@pytest.fixture(scope="module")
def hostile_bot(tmp_path_factory, embedder):
    """A Bot over a document that holds a <script> and an <img onerror>."""
    folder = tmp_path_factory.mktemp("hostile")
    (folder / "release-notes.md").write_text(HOSTILE_DOCUMENT, encoding="utf-8")
    return Bot.build([folder], folder / "index", embedder=embedder).warm_up()


@pytest.fixture(scope="module")
def hostile_url(hostile_bot):
    app = ui.build_app(hostile_bot)
    yield ui.launch(app, "127.0.0.1", free_port(), block=False)
    app.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def requested() -> list[str]:
    """Every URL the page asks for, filled in by the `page` fixture."""
    return []


@pytest.fixture
def page(browser, requested):
    page = browser.new_page(viewport={"width": 1100, "height": 1000})
    page.on("request", lambda request: requested.append(request.url))
    yield page
    page.close()


def open_chat(page, url: str) -> None:
    page.goto(url, wait_until="load")
    page.wait_for_selector("#question textarea")


def ask(page, question: str):
    """Type `question`, press Enter and wait for its reply; returns the reply's locator (until the chat is cleared)."""
    replies = page.locator(REPLY)
    before = replies.count()
    page.fill("#question textarea", question)
    page.press("#question textarea", "Enter")
    page.wait_for_function(
        "([selector, n]) => document.querySelectorAll(selector).length > n", arg=[REPLY, before], timeout=30_000
    )
    return replies.nth(before)


def clear_chat(page, button: str = "#clear") -> None:
    page.click(button)
    page.wait_for_function("([selector]) => document.querySelectorAll(selector).length === 0", arg=[REPLY])


def open_sources(reply) -> None:
    reply.locator("details.qa-sources > summary").click()


def shows(reply, answer: Answer) -> bool:
    """True when `reply` on the page renders `answer`: its quote; its suggestions, in order; or an abstention with
    its confidence."""
    if answer.answered:
        return reply.locator(".qa-quote").inner_text() == answer.text
    if answer.outcome == "suggested":
        items = reply.locator("li.qa-suggestion")
        return (reply.locator(".qa-abstain-title").inner_text() == ui.NOT_SURE
                and items.count() == len(answer.suggestions)
                and all(s.label in items.nth(i).inner_text() for i, s in enumerate(answer.suggestions)))
    return (reply.locator(".qa-abstain-title").inner_text() == ui.NOT_COVERED
            and f"Confidence {answer.confidence:.2f}" in reply.inner_text())


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def assert_stayed_local(requested: list[str]) -> None:
    outside = [
        u for u in requested if urlparse(u).scheme not in ("data", "blob") and urlparse(u).hostname not in LOCAL_HOSTS
    ]
    assert requested and not outside, f"the page reached beyond this machine: {outside}"


def test_answer_shows_its_quote_citation_and_highlighted_source(page, requested, article_url, bot):
    expected = bot.ask(KNOWN)
    open_chat(page, article_url)

    reply = ask(page, KNOWN)

    assert "Alexander Beglov" in reply.locator(".qa-quote").inner_text()
    # The reader's answer words are marked inside the quote, as the API returns them.
    span = reply.locator(".qa-quote mark.qa-span")
    assert span.is_visible() and span.inner_text() == expected.citations[0].answer_span
    citation = reply.locator(".qa-citation")
    assert citation.is_visible()
    assert citation.inner_text() == (
        f"Source: Diaz Canel Russia Visit · {expected.citations[0].label} · confidence {expected.confidence:.2f}"
    )
    mark = reply.locator("details.qa-sources mark")
    assert not mark.is_visible(), "Sources start collapsed"
    open_sources(reply)
    assert mark.is_visible()
    assert mark.inner_text() == expected.citations[0].quote
    assert reply.locator("details.qa-sources .qa-passage").count() == len(expected.passages)
    screenshot(page, "answer.png")
    assert_stayed_local(requested)


def test_off_topic_question_gets_the_abstention_and_suggestions(page, requested, article_url):
    open_chat(page, article_url)

    reply = ask(page, "How do I bake sourdough bread?")

    assert reply.locator(".qa-abstain-title").inner_text() == "Not covered by the documents."
    assert reply.locator(".qa-suggestion").first.is_visible()
    assert reply.locator(".qa-citation, mark").count() == 0
    screenshot(page, "abstention.png")
    assert_stayed_local(requested)


@pytest.mark.parametrize("clear_button", ["#clear", '#chat button[aria-label="Clear"]'], ids=["clear-chat", "trash-icon"])
def test_follow_up_is_read_with_the_history_and_clear_forgets_it(page, requested, article_url, bot, clear_button):
    follow_up = "And when?"
    with_history, alone = bot.ask(follow_up, history=[KNOWN]), bot.ask(follow_up)
    assert with_history.text != alone.text, "the history should change what a bare follow-up finds"
    open_chat(page, article_url)

    ask(page, KNOWN)
    assert shows(ask(page, follow_up), with_history)

    clear_chat(page, clear_button)
    assert shows(ask(page, follow_up), alone)
    assert_stayed_local(requested)


def test_clicking_an_example_question_asks_it(page, requested, article_url, bot):
    open_chat(page, article_url)
    example = page.locator("#chat button.example").first
    question = example.inner_text()
    assert question in ui.example_questions(bot)

    example.click()
    page.wait_for_selector(REPLY, timeout=30_000)

    assert page.locator('#chat [data-testid="user"]').first.inner_text() == question
    assert page.locator(REPLY).last.locator(".qa-quote, .qa-abstain-title").is_visible()
    assert_stayed_local(requested)


def test_over_long_question_is_a_message_not_a_stack_trace(page, requested, article_url):
    open_chat(page, article_url)

    reply = ask(page, "why " * 700)

    assert reply.get_attribute("class") == "qa-error"
    assert "the limit is 2,000" in reply.inner_text()
    assert "Traceback" not in page.content()
    assert_stayed_local(requested)


def test_hostile_document_and_question_show_as_text_and_run_nothing(page, requested, hostile_url):
    open_chat(page, hostile_url)

    reply = ask(page, "What does the changelog entry read?")
    open_sources(reply)
    assert "<script>window.__pwned=1</script>" in reply.inner_text()
    clear_chat(page)
    reply = ask(page, "What was the logo markup in old versions?")
    open_sources(reply)
    assert '<img src=x onerror="window.__pwned=1">' in reply.inner_text()
    ask(page, '<img src=x onerror="window.__pwned=1"> what is this?')
    page.wait_for_timeout(500)  # time for an injected <img> to fail loading and fire onerror

    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator('#chat [data-testid="user"]').last.inner_text().startswith('<img src=x onerror="window.__pwned=1">')
    assert page.locator("#chat script, #chat img[src='x']").count() == 0
    screenshot(page, "hostile.png")
    assert_stayed_local(requested)


def test_chat_cosmetics_badge_abstention_one_scale_and_plain_aria_labels(page, requested, article_url, bot):
    """Issue 12, item 13: no label badge over the messages, each passage once, one number, labels without markup."""
    off_topic = "How do I bake sourdough bread?"
    abstention = bot.ask(off_topic)
    assert not abstention.answered and len(abstention.passages) > 3
    open_chat(page, article_url)
    for question in (KNOWN, "How long did the Nazi siege last?", "What criticisms does the rapprochement face?"):
        ask(page, question)
    reply = ask(page, off_topic)
    page.locator("#chat [role=log], #chat .bubble-wrap").first.evaluate("e => e.scrollTop = 40")

    assert page.locator('#chat [data-testid="block-label"]:visible').count() == 0, "the 'Chat' badge covers messages"

    open_sources(reply)
    heads = reply.locator(".qa-passage-head").all_inner_texts()
    assert len(heads) == len(abstention.passages) == len(set(heads)), heads

    shown = page.locator("#chat").inner_text()
    assert "score" not in shown
    assert reply.inner_text().count(f"{abstention.confidence:.2f}") == 1

    labels = page.locator("#chat [aria-label*=\"'s message: \"]")
    assert labels.count() == 8
    for i in range(labels.count()):
        label = labels.nth(i).get_attribute("aria-label")
        assert "<" not in label and "class=" not in label, label
    bot_label = labels.nth(1).get_attribute("aria-label")
    assert bot_label.startswith("bot's message: ") and bot.ask(KNOWN).text in bot_label
    screenshot(page, "cosmetics.png")
    assert_stayed_local(requested)


LOOKALIKE_FAQ = json.loads((FIXTURES / "lookalike_faq.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def lookalike_url(tmp_path_factory, embedder):
    """The chat over FAQ pairs that differ in one detail, so that a question leaving it out gets suggestions."""
    folder = tmp_path_factory.mktemp("lookalike")
    (folder / "faq.json").write_text(json.dumps(LOOKALIKE_FAQ), encoding="utf-8")
    from .test_answering import CLOSE_CALL

    bot = Bot.build([folder], tmp_path_factory.mktemp("lookalike-index"), embedder=embedder, answering=CLOSE_CALL).warm_up()
    app = ui.build_app(bot)
    yield ui.launch(app, "127.0.0.1", free_port(), block=False)
    app.close()


def test_did_you_mean_buttons_answer_the_picked_suggestion_with_its_citation(page, requested, lookalike_url):
    """A question that leaves out which of two lookalike FAQ pairs it means (website or mobile app) gets both as
    suggestions; picking one answers from it."""
    open_chat(page, lookalike_url)
    reply = ask(page, "I forgot my password")
    assert reply.locator(".qa-abstain-title").inner_text() == ui.NOT_SURE
    assert reply.locator("li.qa-suggestion").count() >= 2
    buttons = page.locator("#suggestions button:visible")
    labels = [buttons.nth(i).inner_text() for i in range(buttons.count())]
    assert "How do I reset my password in the mobile app?" in labels, labels
    screenshot(page, "suggestions.png")

    page.locator("#suggestions button", has_text="in the mobile app").click()
    page.wait_for_function("([s]) => document.querySelectorAll(s).length === 2", arg=[REPLY], timeout=30_000)
    answer = page.locator(REPLY).nth(1)
    assert answer.locator(".qa-quote").inner_text() == LOOKALIKE_FAQ[1]["answer"]
    assert "How do I reset my password in the mobile app?" in answer.locator(".qa-citation").inner_text()
    page.locator("#suggestions button", has_text="in the mobile app").wait_for(state="hidden")
    assert page.locator("#suggestions button:visible").count() == 0
    assert_stayed_local(requested)
