"""Hardening 2 (issue 21), the web chat: roles (item 6), bounded server memory (item 3), minor items of 10.

Each test failed on the code before it (main f887792).
"""

from __future__ import annotations

import json
import os
import select
import stat
import subprocess
import sys
import time
import uuid

import pytest

import ui
from qa import Bot, QuestionLog, open_review
from qa.indexing import build_index

from .conftest import ROOT, free_port
from .rel_support import qa_env
from .test_browser import CHROMIUM, FLAGS
from .test_learning import FAQ, faq_folder_with_logged_bot

REVIEWER = ("boss", "boss-long-passphrase")
CHAT_USER = ("ann", "ann-long-passphrase")


@pytest.fixture
def two_roles(tmp_path, embedder):
    """The chat with a Review tab, two logins, one of them a reviewer; one question in the review queue."""
    data, index, bot = faq_folder_with_logged_bot(tmp_path, embedder)
    bot.ask("Where are you located?", threshold=1.0)
    review = open_review(str(index), str(tmp_path / "qa-log.sqlite3"), str(data), bot=bot)
    app = ui.build_app(bot, review=review, reviewers={REVIEWER[0]})
    url = ui.launch(app, "127.0.0.1", free_port(), [REVIEWER, CHAT_USER], block=False)
    yield app, url, bot, data
    app.close()


class Caller:
    """A logged-in client that calls the app's handlers the way any client can: by index, private or not.

    Its calls share one session, as a page's do (the Review tab's cluster list is per session).
    """

    def __init__(self, app, url: str, login: tuple[str, str]):
        import httpx

        self.app = app
        self.client = httpx.Client(base_url=url, timeout=30)
        assert self.client.post("/login", data={"username": login[0], "password": login[1]}).status_code == 200
        self.session = uuid.uuid4().hex

    def call(self, handler: str, data: list) -> dict:
        """The queue's final message for one call ({"success": bool, "output": ...})."""
        index = next(i for i, f in self.app.fns.items() if getattr(f.fn, "__name__", "") == handler)
        joined = self.client.post("/gradio_api/queue/join", json={
            "data": data, "fn_index": index, "session_hash": self.session, "event_data": None, "trigger_id": None})
        assert joined.status_code == 200, joined.text
        with self.client.stream("GET", f"/gradio_api/queue/data?session_hash={self.session}") as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    message = json.loads(line[5:])
                    if message.get("msg") == "process_completed":
                        return message
        raise AssertionError("the call never completed")


# ---------------------------------------------------------------------------------------------- item 6

def test_6_a_chat_user_calling_review_handlers_by_index_is_refused(two_roles):
    """With --review every chat user was a reviewer, and private handlers could still be called."""
    app, url, bot, data = two_roles
    key = bot.question_log.rows()[0]["answer_id"]
    chat_user = Caller(app, url, CHAT_USER)
    for handler, args in (("refresh", []), ("select", [None]), ("dismiss_action", [None, "", "", ""]),
                          ("add_action", [None, "", "Where are you?", "Harbour Street."]),
                          ("accept_action", [None, "faq:office", "", ""])):
        refused = chat_user.call(handler, args)
        assert not refused["success"] and refused["output"]["error"] == "only reviewers may use the review queue"
    assert bot.question_log.rows()[0]["reviewed"] is None and not (data / "added-faq.csv").exists()
    reviewer = Caller(app, url, REVIEWER)
    listed = reviewer.call("refresh", [])
    assert listed["success"] and "Where are you located?" in json.dumps(listed["output"]["data"][0])
    done = reviewer.call("dismiss_action", [key, "", "", ""])
    assert done["success"] and bot.question_log.rows()[0]["reviewed"] == "dismissed"


def test_6_a_review_needs_reviewers_among_the_logins(article_index, tmp_path, capsys):
    logins = tmp_path / "logins.txt"
    logins.write_text("# the chat's users\nann:first-passphrase\n\nboss:second-passphrase\n")
    common = ["--index", str(article_index), "--auth-file", str(logins), "--log", str(tmp_path / "log.sqlite3"),
              "--data", str(tmp_path)]
    assert ui.main([*common, "--review"]) == 2
    assert "--review needs --reviewers NAMES" in capsys.readouterr().err
    assert ui.main([*common, "--review", "--reviewers", "boss,carol"]) == 2
    assert "--reviewers names 'carol', which has no login" in capsys.readouterr().err
    with pytest.raises(ValueError, match="review"):
        ui.build_app(Bot(article_index), review=object())


def test_6_logins_come_from_a_file_and_a_bad_line_is_named_without_its_password(tmp_path):
    logins = tmp_path / "logins.txt"
    logins.write_text("# comment\nann:first-passphrase\nboss:second:with-colon\n")
    assert ui.read_logins(logins) == [("ann", "first-passphrase"), ("boss", "second:with-colon")]
    logins.write_text("ann:first-passphrase\nsecret-without-a-user\n")
    with pytest.raises(ValueError, match=r"logins\.txt:2: auth must look like user:password") as info:
        ui.read_logins(logins)
    assert "secret-without-a-user" not in str(info.value)
    logins.write_text("ann:one-passphrase\nann:two-passphrase\n")
    with pytest.raises(ValueError, match=r"logins\.txt:2: the user 'ann' has a login already"):
        ui.read_logins(logins)


def test_6_the_question_log_is_readable_by_its_owner_only(tmp_path):
    log_file = tmp_path / "qa-log.sqlite3"
    log = QuestionLog(log_file)
    log.feedback("nothing", True)  # the first write creates the file
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "qa-log.sqlite3-wal").stat().st_mode) == 0o600
    log.close()
    old = tmp_path / "old.sqlite3"
    old.touch(mode=0o644)
    os.chmod(old, 0o644)
    QuestionLog(old).feedback("nothing", True)
    assert stat.S_IMODE(old.stat().st_mode) == 0o600


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_6_the_review_tab_shows_for_a_reviewer_only(two_roles):
    from playwright.sync_api import sync_playwright

    _, url, _, _ = two_roles
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        for login, shown in ((CHAT_USER, False), (REVIEWER, True)):
            page = browser.new_context().new_page()
            page.goto(url, wait_until="load")
            page.fill("input[type=text]", login[0])
            page.fill("input[type=password]", login[1])
            page.keyboard.press("Enter")
            page.wait_for_selector("#question textarea")
            page.wait_for_timeout(1500)  # the page's load event decides the tab
            assert page.locator("#review-tab-button").count() == (1 if shown else 0), login[0]
            if shown:
                page.click("#review-tab-button")
                page.wait_for_function(
                    "() => document.querySelector('#review-queue')?.innerText.includes('Where are you located?')")
        browser.close()


# ---------------------------------------------------------------------------------------------- item 10

def test_10_qa_serve_prints_its_address(article_index, tmp_path):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "qa.cli", "serve", "--", "--index", str(article_index), "--port", str(port),
         "--log", "off"],
        cwd=ROOT, env=qa_env(GRADIO_ANALYTICS_ENABLED="False", OMP_NUM_THREADS="1"),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        ready, _, _ = select.select([server.stdout], [], [], 120)  # it printed nothing before: do not wait forever
        assert ready, "qa serve printed no line in 120 s"
        line = server.stdout.readline()
        assert line.strip() == f"the chat is at http://127.0.0.1:{port}/ (Ctrl-C to stop)"
    finally:
        server.terminate()
        server.wait(30)


# ---------------------------------------------------------------------------------------------- item 3

def _rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _api_ask(client, question: str) -> int:
    """One raw `/gradio_api/call/ask`, as a script would call it: a new session each time; returns the status."""
    posted = client.post("/gradio_api/call/ask", json={"data": [question, None, None]})
    if posted.status_code != 200:
        return posted.status_code
    with client.stream("GET", f"/gradio_api/call/ask/{posted.json()['event_id']}") as stream:
        assert any(line.startswith("event: complete") for line in stream.iter_lines())
    return 200


@pytest.mark.timeout(600)
def test_3_server_memory_stays_flat_over_thousands_of_new_sessions(article_index):
    """Raw API calls, each a new session, left the server larger every time; 5 MB questions were parsed first."""
    import httpx
    from concurrent.futures import ThreadPoolExecutor

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "ui.py", "--index", str(article_index), "--port", str(port), "--log", "off"],
        cwd=ROOT, env=qa_env(GRADIO_ANALYTICS_ENABLED="False", OMP_NUM_THREADS="1", QA_MAX_SESSIONS="200"),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        ready, _, _ = select.select([server.stdout], [], [], 180)
        assert ready and "the chat is at" in server.stdout.readline()
        url = f"http://127.0.0.1:{port}"
        clients = [httpx.Client(base_url=url, timeout=60) for _ in range(4)]

        def burst(n: int) -> list[int]:
            with ThreadPoolExecutor(4) as pool:
                return list(pool.map(lambda i: _api_ask(clients[i % 4], "Who did Díaz-Canel meet?"), range(n)))

        assert set(burst(400)) == {200}  # past QA_MAX_SESSIONS: the plateau
        before = _rss_mb(server.pid)
        huge = "x" * 5_000_000
        for _ in range(10):
            refused = clients[0].post("/gradio_api/call/ask", json={"data": [huge, None, None]})
            assert refused.status_code == 413 and "QA_MAX_REQUEST_BYTES" in refused.text
        assert set(burst(1600)) == {200}
        after = _rss_mb(server.pid)
        # Before: about 60 KB a session (96 MB for these 1,600) and 16 MB for each 5 MB question.
        assert after - before < 12, f"RSS {before:.0f} MB -> {after:.0f} MB"
    finally:
        server.terminate()
        server.wait(30)


def test_3_idle_sessions_are_forgotten(bot):
    import httpx

    app = ui.build_app(bot)
    url = ui.launch(app, "127.0.0.1", free_port(), block=False)
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            assert _api_ask(client, "Who did Díaz-Canel meet?") == 200
        deadline = time.monotonic() + 30  # the queue lets go of a finished event just after its reply (later under load)
        while app._queue.event_ids_to_events and time.monotonic() < deadline:
            time.sleep(0.05)
        assert app.state_holder.session_data and app._queue.pending_event_ids_session
        assert ui.forget_idle_sessions(app, idle=3600) == 0 and app.state_holder.session_data
        assert ui.forget_idle_sessions(app, idle=0) == 1
        assert not app.state_holder.session_data and not app._queue.pending_event_ids_session
    finally:
        app.close()


def test_8_the_chat_logs_who_asked_by_login(two_roles):
    app, url, bot, _ = two_roles
    reply = Caller(app, url, CHAT_USER).call("ask", ["Where is the office?", None, None])
    assert reply["success"]
    assert bot.question_log.rows()[-1]["asker"] == "login ann"


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_8_a_suggestion_clicked_in_the_page_answers_and_is_logged_with_its_asker(tmp_path, embedder):
    from playwright.sync_api import sync_playwright

    from .test_browser import REPLY, ask

    data = tmp_path / "data"
    data.mkdir()
    (data / "faq.csv").write_text(FAQ, encoding="utf-8")
    build_index([data], tmp_path / "index", embedder)
    bot = Bot(tmp_path / "index", embedder=embedder, threshold=1.0, question_log=tmp_path / "log.sqlite3").warm_up()
    app = ui.build_app(bot)
    url = ui.launch(app, "127.0.0.1", free_port(), block=False)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
            page = browser.new_page()
            page.goto(url, wait_until="load")
            page.wait_for_selector("#question textarea")
            ask(page, "Is the office open on Saturday?")
            page.wait_for_selector("#suggestion-2", state="visible")
            before = page.locator(REPLY).count()
            page.click("#suggestion-2")
            page.wait_for_function("([s, n]) => document.querySelectorAll(s).length > n", arg=[REPLY, before])
            assert page.locator(REPLY).nth(before).locator(".qa-quote").count() == 1
            browser.close()
    finally:
        app.close()
    rows = bot.question_log.rows()
    assert [r["chosen"] is not None for r in rows] == [False, True]
    assert {r["asker"] for r in rows} == {"address 127.0.0.1"}


def test_10_run_history_and_the_monitoring_page_are_off(two_roles):
    """Gradio's "Runs" page ("Connect a bucket") and an unauthenticated /monitoring were on in an offline app."""
    app, url, _, _ = two_roles
    assert app.config["run_history"] is False
    monitoring = Caller(app, url, REVIEWER).client.get("/monitoring")
    assert monitoring.status_code == 403 and "not enabled" in monitoring.text
