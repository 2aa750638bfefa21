"""The web chat's server side: the /ask endpoint through gradio_client, rendering, login, exposure."""

from __future__ import annotations

import dataclasses
import html

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

import ui
from qa import Answer, Citation, Hit, Passage

from .conftest import ROOT, free_port
from .rel_support import without_id

KNOWN = "Who did Díaz-Canel meet in St. Petersburg?"
OFF_TOPIC = "How do I bake sourdough bread?"
HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1">'


@pytest.fixture(scope="module")
def url(chat_url):
    return chat_url


@pytest.fixture(scope="module")
def client(url):
    from gradio_client import Client

    return Client(url, verbose=False)


def ask(client, question: str, history: list[str] | None = None) -> dict:
    return without_id(json.loads(client.predict(question, history, api_name="/ask")))


def test_ask_endpoint_answers_with_its_citation(client, bot):
    answer = ask(client, KNOWN)

    assert answer["answered"] is True
    assert "Alexander Beglov" in answer["text"]
    citation = answer["citations"][0]
    assert citation["quote"] == answer["text"]
    assert citation["source"] == "Diaz Canel Russia Visit"
    assert citation["label"].startswith("paragraph ")
    assert answer == without_id(json.loads(json.dumps(bot.ask(KNOWN).to_dict())))


def test_ask_endpoint_abstains_on_an_off_topic_question(client):
    answer = ask(client, OFF_TOPIC)

    assert answer["answered"] is False
    assert answer["citations"] == []
    assert answer["passages"], "an abstention still lists the closest passages"


def test_ask_endpoint_reads_a_follow_up_with_its_history(client, bot):
    history = [KNOWN]
    follow_up = "And when?"

    answer = ask(client, follow_up, history)

    assert answer == without_id(json.loads(json.dumps(bot.ask(follow_up, history=history).to_dict())))
    assert answer["text"] != bot.ask(follow_up).text, "the history should change what a bare follow-up finds"


def test_ask_endpoint_refuses_an_over_long_question_with_a_readable_message(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=r"3,000 characters long; the limit is 2,000"):
        ask(client, "x" * 3000)


@pytest.mark.parametrize("history", ["Who?", [1, 2], [None]])
def test_ask_endpoint_refuses_a_malformed_history_by_name(client, history):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="history must be a list of earlier questions"):
        ask(client, KNOWN, history)


def test_concurrent_requests_get_the_same_answers_as_sequential_ones(client, bot):
    questions = [KNOWN, OFF_TOPIC, "What did the Cuban leader lay at the monument?"] * 4
    expected = [without_id(json.loads(json.dumps(bot.ask(q).to_dict()))) for q in questions]

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda q: ask(client, q), questions))

    assert got == expected


def test_only_ask_feedback_and_the_faq_search_are_offered_to_programs(client):
    assert list(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == ["/faqs", "/ask", "/feedback"]


def hostile_answer() -> Answer:
    text = f"Before {HOSTILE} after."
    passage = Passage(
        id="evil:1", kind="faq", text=text, title=f"Title {HOSTILE}", path="evil.md",
        start=100, end=100 + len(text), position=0, question=f"Why {HOSTILE}?",
    )
    other = Passage(
        id="evil:2", kind="paragraph", text=f"Other {HOSTILE}", title="Other", path="evil.md",
        start=0, end=50, position=1,
    )
    quote_start = 100 + len("Before ")
    citation = Citation(
        passage_id="evil:1", kind="faq", source=passage.title, path="evil.md", label=passage.label,
        quote=HOSTILE, start=quote_start, end=quote_start + len(HOSTILE), score=0.9,
    )
    return Answer(f"Q {HOSTILE}", HOSTILE, True, 0.87, (citation,), (Hit(passage, 0.9, 0), Hit(other, 0.4, 1)))


def test_render_escapes_every_document_text():
    page = ui.render_answer(hostile_answer())

    assert "<script" not in page.lower() and "<img" not in page.lower()
    escaped = "&lt;script&gt;window.__pwned=1&lt;/script&gt;&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;"
    # The quote; the citation's source and label; the cited passage's title, question and text; the other text.
    assert page.count(escaped) == 7
    assert f"<mark>{escaped}</mark>" in page
    assert "Title " + escaped in page and "confidence 0.87" in page


def test_render_escapes_questions_and_error_messages():
    assert "<img" not in ui.render_question(HOSTILE)
    assert "<img" not in ui.render_error(ValueError(HOSTILE))
    assert "(5,000 characters)" in ui.render_question("x" * 5000)


def test_render_highlights_the_quote_inside_its_passage(bot):
    answer = bot.ask(KNOWN)
    page = ui.render_answer(answer)

    assert f"<mark>{html.escape(answer.citations[0].quote)}</mark>" in page
    assert '<p class="qa-citation">Source: Diaz Canel Russia Visit · paragraph ' in page
    assert "<details" in page and "Sources (" in page
    assert page.count('class="qa-passage"') == len(answer.passages)
    assert "score" not in page, "one scale: the answer's confidence is the only number"


def test_render_abstention_says_not_covered_and_suggests_closest_passages(bot):
    answer = bot.ask(OFF_TOPIC)
    page = ui.render_answer(answer)

    assert not answer.answered
    assert "Not covered by the documents" in page
    assert page.count("qa-suggestion") == min(ui.SUGGESTIONS, len(answer.passages))
    assert "<mark>" not in page and "qa-citation" not in page
    heads = [h.split("</div>")[0] for h in page.split('<div class="qa-passage-head">')[1:]]
    assert len(heads) == len(answer.passages) == len(set(heads)), "each passage is listed once"
    assert "More passages (" in page and "Sources (" not in page


def test_example_questions_come_from_the_index_faq(bot):
    faq = {p.question for p in bot.index.passages if p.kind == "faq"}

    examples = ui.example_questions(bot)

    assert examples and set(examples) <= faq
    assert len(examples) <= ui.MAX_EXAMPLES


@pytest.mark.slow
def test_login_is_required_when_auth_is_set(bot):
    import httpx
    from gradio_client import Client
    from gradio_client.exceptions import AuthenticationError

    app = ui.build_app(bot)
    url = ui.launch(app, "127.0.0.1", free_port(), auth=("ann", "s3cret pass"), block=False)
    try:
        with pytest.raises(AuthenticationError, match="credentials were not provided"):
            Client(url, verbose=False)
        with pytest.raises(ValueError, match="Could not login"):
            Client(url, auth=("ann", "wrong"), verbose=False)
        assert httpx.post(f"{url}gradio_api/call/ask", json={"data": [KNOWN, None]}).status_code == 401
        logged_in = Client(url, auth=("ann", "s3cret pass"), verbose=False)
        assert "Alexander Beglov" in json.loads(logged_in.predict(KNOWN, None, api_name="/ask"))["text"]
    finally:
        app.close()


@pytest.mark.parametrize("value, expected", [
    ("ann:secret", ("ann", "secret")),
    ("ann:with:colons", ("ann", "with:colons")),
    ("", None),
    (None, None),
])
def test_parse_auth(value, expected):
    assert ui.parse_auth(value) == expected


@pytest.mark.parametrize("value", ["annsecret", ":secret", "ann:"])
def test_parse_auth_refuses_malformed_values_without_echoing_them(value):
    with pytest.raises(ValueError, match="user:password") as info:
        ui.parse_auth(value)
    assert value not in str(info.value)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "LOCALHOST", "::1", "[::1]"])
def test_no_warning_on_loopback(host):
    assert ui.exposure_warning(host, None) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "10.0.0.5", "chat.example.org"])
def test_warning_when_exposed_without_login(host):
    warning = ui.exposure_warning(host, None)
    assert warning and host in warning and "--auth" in warning
    assert ui.exposure_warning(host, ("ann", "secret")) is None


def resolved(argv: list[str]) -> tuple:
    """(host, port, auth) as ui.main resolves them: the option, else the environment, else the default."""
    from qa import settings

    args = ui.parser().parse_args(argv)
    return settings.host(args.host), settings.port(args.port), settings.auth(args.auth)


def test_options_fall_back_to_environment_variables(monkeypatch):
    monkeypatch.setenv("QA_HOST", "0.0.0.0")
    monkeypatch.setenv("QA_PORT", "8123")
    monkeypatch.setenv("QA_AUTH", "ann:secret")

    assert resolved([]) == ("0.0.0.0", 8123, "ann:secret")
    assert resolved(["--host", "127.0.0.1", "--port", "9000", "--auth", "bob:pw"]) == ("127.0.0.1", 9000, "bob:pw")


def test_defaults_keep_the_chat_on_this_machine(monkeypatch):
    for var in ("QA_HOST", "QA_PORT", "QA_AUTH"):
        monkeypatch.delenv(var, raising=False)

    assert resolved([]) == ("127.0.0.1", 7860, None)


def test_main_reports_a_missing_index_in_one_line(tmp_path, capsys):
    assert ui.main(["--index", str(tmp_path / "nothing")]) == 2

    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_main_refuses_a_malformed_auth_before_loading_anything(tmp_path, capsys):
    assert ui.main(["--index", str(tmp_path / "nothing"), "--auth", "no-colon"]) == 2
    assert "user:password" in capsys.readouterr().err


@pytest.mark.slow
def test_importing_ui_loads_no_model():
    import subprocess
    import sys

    code = "import sys, ui; print(sorted(m for m in ('torch', 'faiss', 'sentence_transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"



def test_qa_serve_hands_the_options_after_the_separator_to_the_chat(tmp_path, capsys):
    from qa.cli import main as qa_main

    assert qa_main(["serve", "--", "--index", str(tmp_path / "nothing"), "--port", "7999"]) == 2
    assert "no index in" in capsys.readouterr().err


@pytest.mark.slow
def test_python_ui_py_serves_the_chat_until_interrupted(article_index):
    import signal
    import subprocess
    import sys
    import threading
    import time
    import urllib.request

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "ui.py", "--index", str(article_index), "--port", str(port)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # a background shell ignores Ctrl-C
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(server.stdout), daemon=True)
    reader.start()
    try:
        # The page can answer a moment before launch() returns: wait for the ready line, then probe.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and server.poll() is None and not any("the chat is ready" in l for l in lines):
            time.sleep(0.2)
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read().decode()
        assert "Ask the documents" in page
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
        reader.join(timeout=10)
    log = "".join(lines)
    assert server.returncode == 0
    assert f"the chat is ready at http://127.0.0.1:{port}/" in log
    assert "WARNING ui" not in log and "Traceback" not in log


def test_render_marks_the_readers_answer_words_inside_the_quote_escaped():
    answer = hostile_answer()
    quote = answer.text
    at = quote.index("<img")
    citation = dataclasses.replace(answer.citations[0], answer_start=at, answer_end=len(quote))
    page = ui.render_answer(dataclasses.replace(answer, citations=(citation,)))

    assert "<img" not in page
    marked = html.escape(quote[at:]).replace("\n", "<br>")
    assert f'<p class="qa-quote">{html.escape(quote[:at])}<mark class="qa-span">{marked}</mark></p>' in page
    plain = ui.render_answer(answer)  # no span: the quote as it is
    assert 'class="qa-span"' not in plain
