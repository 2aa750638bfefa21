"""The web chat: grounded answers with their citations, in the browser.

    python ui.py --index index            # http://127.0.0.1:7860
    qa serve -- --host 0.0.0.0 --auth me:secret

The page is a thin view of `qa.Bot`: each reply is an `Answer` rendered by
`render_answer`, which escapes every piece of document text and every question,
so a document holding `<script>` shows it as text. The chat history lives in
each browser session (the Chatbot value and a `gr.State`), never in this module.
A JSON endpoint, `/ask`, returns `Answer.to_dict()` for programs; `/feedback`
records a thumbs up or down, as the chat's own buttons do, in the question log.
With logins and `--review --reviewers NAMES`, a Review tab shows the review queue
(qa/review.py) to those logins only: every review action checks the caller's login
on the server, so a chat user who calls a review handler by name is refused.

Importing this module loads no model and reads no index; `main()` loads both
once, before the server starts.
"""

from __future__ import annotations

import argparse
import html
import ipaddress
import json
import logging
import os
import sys
import time
from typing import Collection, Sequence

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Gradio keeps timing records of the last N events (10,000 by default) for its monitoring page.
os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "500")

import gradio as gr  # noqa: E402  (after the analytics switch, which Gradio reads at import)
from starlette.middleware import Middleware  # noqa: E402

from qa import Answer, Bot, Hit, QAError, open_review, remember, settings  # noqa: E402

log = logging.getLogger("ui")

DEFAULT_HOST = settings.DEFAULT_HOST
DEFAULT_PORT = settings.DEFAULT_PORT
# One ask() at a time per core. Measured on 2 cores, 16 gradio_client users: 16-19 requests/s
# at 1, 2 or 4 at once (Gradio's own work per request outweighs ask()'s ~10 ms), but p99
# 3.0 s at 1 against 1.6-1.8 s at 2 or 4, since one slow question no longer holds up the rest.
CONCURRENCY = 2
MAX_EXAMPLES = 8
SUGGESTIONS = 3  # closest passages shown with an abstention, and "did you mean…?" buttons at most
FOLLOW_UPS = 4  # follow-up buttons under an answer at most
SHOWN_QUESTION_CHARS = 1000
NOT_COVERED = "Not covered by the documents."
NOT_SURE = "Did you mean…?"

CSS = """
.qa-answer, .qa-abstain, .qa-error { border-left: 4px solid; padding-left: .7em; }
.qa-answer { border-color: #16a34a; }
.qa-abstain { border-color: #d97706; }
.qa-error { border-color: #dc2626; }
.qa-quote { font-size: 1.05em; margin: 0 0 .4em 0; }
.qa-citation, .qa-note { font-size: .9em; opacity: .85; margin: 0 0 .4em 0; }
.qa-abstain-title { font-size: 1.05em; font-weight: 600; margin: 0 0 .4em 0; }
.qa-error { font-weight: 600; }
.qa-sources summary { cursor: pointer; font-size: .9em; }
.qa-passage { margin: .5em 0; font-size: .9em; }
.qa-passage-head { font-size: .9em; opacity: .75; }
.qa-sources mark { padding: 0 .1em; }
.qa-quote mark.qa-span { background: #fde68a; color: inherit; font-weight: 600; padding: 0 .1em; }
"""


# Gradio labels each chat message for screen readers with its content, which for these
# replies is HTML: screen readers would read the markup. This sets each message's label to
# the text the message shows instead, whenever Gradio (re)renders it.
ARIA_JS = """() => {
  const tag = "\\u0027s message: ";
  const relabel = () => document.querySelectorAll(`#chat [aria-label*="${tag}"]`).forEach((el) => {
    const label = el.getAttribute("aria-label");
    const shown = label.slice(0, label.indexOf(tag)) + tag + el.innerText.replace(/\\s+/g, " ").trim();
    if (label !== shown) el.setAttribute("aria-label", shown);
  });
  new MutationObserver(relabel).observe(document.documentElement,
    {subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ["aria-label", "open"]});
  relabel();
}"""


def _text(value: str) -> str:
    """Document or user text as HTML that shows literally: escaped, newlines kept as <br>."""
    return html.escape(value).replace("\n", "<br>")


def _head(hit: Hit, note: str) -> str:
    # No retrieval score: its scale (it can pass 1) is not the answer's confidence, the one number shown.
    p = hit.passage
    return f'<div class="qa-passage-head">{_text(p.title)} · {_text(p.label)}{note}</div>'


def _highlighted(hit: Hit, spans: list[tuple[int, int]]) -> str:
    """The passage's text with each (start, end) span, in source offsets, inside <mark>."""
    text, base = hit.passage.text, hit.passage.start
    parts, cursor = [], 0
    for start, end in sorted(spans):
        start, end = start - base, end - base
        if not cursor <= start < end <= len(text):
            continue
        parts += [_text(text[cursor:start]), f"<mark>{_text(text[start:end])}</mark>"]
        cursor = end
    parts.append(_text(text[cursor:]))
    return "".join(parts)


def _quote(answer: Answer) -> str:
    """The answer's quote, escaped, with the words the reader found to answer the question in <mark>."""
    c = answer.citations[0] if answer.citations else None
    span = c.answer_span if c is not None and c.quote == answer.text else None
    if not span:
        return _text(answer.text)
    a, b = c.answer_start, c.answer_end
    return f'{_text(answer.text[:a])}<mark class="qa-span">{_text(answer.text[a:b])}</mark>{_text(answer.text[b:])}'


def _snippet(text: str, limit: int = 240) -> str:
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + " …"


def render_answer(answer: Answer) -> str:
    """One bot reply as HTML, with every piece of document text in it escaped.

    An answer shows its quote (the reader's answer words in <mark>), a citation line (source, FAQ question or
    paragraph, confidence) and a collapsed "Sources" section holding the cited
    passage with the quote in <mark> and the other retrieved passages with their
    scores. An abstention says the documents do not cover the question and
    lists the closest passages as suggestions.

    Args:
        answer: the bot's Answer.

    Returns:
        An HTML fragment on one line (the Chatbot would re-indent a multi-line one).
    """
    cited: dict[str, list[tuple[int, int]]] = {}
    for c in answer.citations:
        cited.setdefault(c.passage_id, []).append((c.start, c.end))
    if answer.outcome == "suggested":
        items = "".join(
            f'<li class="qa-suggestion">{_text(sug.text)} <span class="qa-note">({_text(sug.source)} · '
            f"{_text(sug.label)} · confidence {sug.confidence:.2f})</span></li>"
            for sug in answer.suggestions
        )
        top = [
            f'<p class="qa-abstain-title">{NOT_SURE}</p>',
            f'<ol class="qa-suggestions">{items}</ol>',
            '<p class="qa-note">The documents hold more than one candidate and none is a sure answer: '
            "pick one below the chat to see its answer and source.</p>",
        ]
    elif answer.answered:
        top = [f'<p class="qa-quote">{_quote(answer)}</p>']
        top += [
            f'<p class="qa-citation">Source: {_text(c.source)} · {_text(c.label)}'
            f" · confidence {answer.confidence:.2f}</p>"
            for c in answer.citations
        ]
    else:
        top = [
            f'<p class="qa-abstain-title">{NOT_COVERED}</p>',
            f'<p class="qa-note">Confidence {answer.confidence:.2f}. '
            + ("Closest passages:</p>" if answer.passages else "Nothing in the index came close.</p>"),
        ]
        top += [
            f'<div class="qa-passage qa-suggestion">{_head(h, "")}{_text(_snippet(h.passage.text))}</div>'
            for h in answer.passages[:SUGGESTIONS]
        ]
    # An abstention already shows its closest passages: Sources then holds only the others.
    listed = answer.passages if answer.outcome != "abstained" else answer.passages[SUGGESTIONS:]
    sources = []
    for hit in sorted(listed, key=lambda h: (h.passage.id not in cited, h.rank)):
        spans = cited.get(hit.passage.id, [])
        note = " · cited" if spans else ""
        sources.append(f'<div class="qa-passage">{_head(hit, note)}{_highlighted(hit, spans)}</div>')
    if sources:
        title = "Sources" if answer.answered else "More passages"
        top.append(
            f'<details class="qa-sources"><summary>{title} ({len(sources)})</summary>{"".join(sources)}</details>'
        )
    return f'<div class="{"qa-answer" if answer.answered else "qa-abstain"}">{"".join(top)}</div>'


def render_error(error: Exception) -> str:
    """A refused question (too long, empty) or an index problem, as a one-line chat message."""
    return f'<div class="qa-error">Cannot answer: {_text(str(error))}</div>'


def render_question(question: str) -> str:
    """The user's question as shown in the chat: escaped, and cut short if it is huge."""
    if len(question) > SHOWN_QUESTION_CHARS:
        question = f"{question[:SHOWN_QUESTION_CHARS]} … ({len(question):,} characters)"
    return _text(question)


def example_questions(bot: Bot, limit: int = MAX_EXAMPLES) -> list[str]:
    """Up to `limit` FAQ questions of the index, spread over it; none for a corpus without FAQs."""
    questions = list(dict.fromkeys(bot.faq_questions()))
    step = max(1, len(questions) // limit)
    return questions[::step][:limit]


def _sources_line(bot: Bot) -> str:
    titles = bot.titles()
    shown = ", ".join(_text(t) for t in titles[:5])
    more = f" and {len(titles) - 5} more" if len(titles) > 5 else ""
    return (
        "<p>Answers quote the documents word for word and name their source. "
        f"Documents: {shown}{more}.</p>"
    )


SOURCE_HEADERS = ["title", "file", "kind", "passages", "warnings", "built (UTC)"]


def source_rows(bot: Bot) -> list[list]:
    """Bot.sources() as table rows for the Documents tab."""
    return [
        [s["title"], s["key"], s["kind"], s["passages"], "\n".join(s["warnings"]), s["built_at"] or ""]
        for s in bot.sources()
    ]


class _Blocks(gr.Blocks):
    """gr.Blocks whose `/ask` takes missing values (`{"data": []}`) as None, so that `ask` names the reason.

    Gradio itself refuses such a call before `ask` runs: with `{"error": null}` for the
    caller and a 20-line traceback in the log, every time.
    """

    def validate_inputs(self, block_fn, inputs):
        missing = len(block_fn.inputs) - len(inputs)
        if block_fn.api_name == "ask" and missing > 0 and isinstance(inputs, list):
            inputs.extend([None] * missing)
        super().validate_inputs(block_fn, inputs)


class _NoUploads:
    """ASGI middleware that refuses Gradio's upload route before reading a byte of the body.

    The chat takes no files, and Gradio's `/gradio_api/upload` stores files of any size,
    without a login check on a server that has none.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"].rstrip("/").endswith("/upload"):
            await send({"type": "http.response.start", "status": 403,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
            await send({"type": "http.response.body", "body": b"uploads are disabled: this chat takes no files\n"})
            return
        await self.app(scope, receive, send)


class _BodyLimit:
    """ASGI middleware that refuses a request body over `limit` bytes (413) before Gradio parses any of it.

    A declared Content-Length over the limit is refused at once; a body without one
    (chunked) is read up to the limit and refused as soon as it passes it. Before this,
    a 5 MB question was parsed, validated, refused, and left the server 16 MB larger.
    """

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    async def _refuse(self, send) -> None:
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
        await send({"type": "http.response.body",
                    "body": f"request body over the {self.limit:,}-byte limit (QA_MAX_REQUEST_BYTES)\n".encode()})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            return await self._refuse(send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.limit:
                return await self._refuse(send)
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replayed():
            return replay.pop() if replay else await receive()

        return await self.app(scope, replayed, send)


class _SessionSweep:
    """ASGI middleware that forgets Gradio sessions idle for longer than `idle` seconds, every `every` seconds.

    Gradio keeps each session's copy of the page's state (the chat, its suggestions)
    until `state_session_capacity` newer sessions push it out, however old it is.
    This drops the idle ones early; the capacity (QA_MAX_SESSIONS) bounds the rest.
    """

    def __init__(self, app, blocks: gr.Blocks, idle: float, every: float = 30.0):
        self.app = app
        self.blocks = blocks
        self.idle = idle
        self.every = every
        self.last = time.monotonic()

    async def __call__(self, scope, receive, send):
        if time.monotonic() - self.last > self.every:
            self.last = time.monotonic()
            forget_idle_sessions(self.blocks, self.idle)
        return await self.app(scope, receive, send)


def forget_idle_sessions(blocks: gr.Blocks, idle: float) -> int:
    """Drop the sessions of `blocks` unused for more than `idle` seconds; returns how many.

    Uses Gradio's StateHolder (`session_data`, `time_last_used`, `lock`) and its queue's
    `pending_event_ids_session` and `event_ids_to_events`: tests/test_hardening2_web.py fails if
    a Gradio upgrade renames them.
    """
    import datetime

    holder = blocks.state_holder
    cutoff = datetime.datetime.now() - datetime.timedelta(seconds=idle)
    with holder.lock:
        old = [sid for sid, used in list(holder.time_last_used.items()) if used < cutoff]
        for sid in old:
            holder.session_data.pop(sid, None)
            holder.time_last_used.pop(sid, None)
        held = set(holder.session_data)
    # Gradio never forgets which events an API session (`/call/ask`) had, finished or not: forget
    # those of sessions it no longer holds, once none of their events is still waiting or running.
    queue = blocks._queue
    for sid, events in list(queue.pending_event_ids_session.items()):
        if sid not in held and not any(e in queue.event_ids_to_events for e in events):
            queue.pending_event_ids_session.pop(sid, None)
    return len(old)


SESSION_IDLE_SECONDS = 3600  # a session unused this long is forgotten (its page starts a new one on the next ask)


def asker_of(request: gr.Request | None) -> str | None:
    """Who asks, for the question log: the login, else the client's address (not the session, which
    every API call gets anew), so that review can require more than one asker's evidence."""
    if request is None:
        return None
    user = getattr(request, "username", None)
    if user:
        return f"login {user}"
    client = getattr(request, "client", None)
    host = getattr(client, "host", None)
    return f"address {host}" if host else None


REVIEW_HEADERS = ["#", "asked", "questions", "why", "best candidate", "it also answered (added on accept)"]


def review_rows(queue: list) -> list[list]:
    """The review queue's clusters as table rows for the Review tab."""
    rows = []
    for n, c in enumerate(queue, 1):
        why = ", ".join(f"{k} {v}" for k, v in c.reasons.most_common())
        candidate = f"{c.candidate.id}: {c.candidate.label or _snippet(c.candidate.text, 80)}" if c.candidate else ""
        rows.append([n, c.count, "\n".join(c.questions), why, candidate, "\n".join(c.also_answered)])
    return rows


def build_app(bot: Bot, concurrency: int = CONCURRENCY, review=None, reviewers: Collection[str] = ()) -> gr.Blocks:
    """The chat page and the `/ask` and `/feedback` endpoints over `bot`, queued for concurrent users.

    Args:
        bot: a Bot; call `warm_up()` first so no request pays for loading.
        concurrency: requests answered at once; the rest wait in Gradio's queue.
        review: a `qa.review.Review` to show as a Review tab (only behind a login), or None.
        reviewers: the logins that may see the Review tab and act on it; nobody else can, by any route.

    Raises:
        ValueError: a review without reviewers.

    Returns:
        The Gradio app, not launched (see `launch`).
    """

    def offer(answer: Answer | None, history: list[str]) -> tuple:
        """The "did you mean…?" state and buttons for an answer: its suggestions, or none."""
        suggestions = list(answer.suggestions) if answer is not None else []
        pending = {"question": answer.question, "history": history,
                   "suggestions": [[s.passage_id, s.text] for s in suggestions]} if suggestions else None
        buttons = [gr.Button(value=_snippet(s.text, 90), visible=True) for s in suggestions]
        buttons += [gr.Button(value="", visible=False)] * (SUGGESTIONS - len(buttons))
        return (pending, *buttons)

    def follow(answer: Answer | None) -> tuple:
        """The follow-up state (questions) and buttons under an answer: the FAQs its FAQ names, or none."""
        shown = list(answer.follow_ups[:FOLLOW_UPS]) if answer is not None else []
        buttons = [gr.Button(value=_snippet(f.question, 90), visible=True) for f in shown]
        buttons += [gr.Button(value="", visible=False)] * (FOLLOW_UPS - len(buttons))
        return ([f.question for f in shown], *buttons)

    def respond(question: str, messages: list, asked: list[str], ids: dict, request: gr.Request):
        if not question.strip():
            return ("", messages, asked, ids, *offer(None, asked), *follow(None))
        answer, before = None, asked
        try:
            answer = bot.ask(question, history=asked, asker=asker_of(request))
            reply = render_answer(answer)
            asked = remember(asked, question)
        except (ValueError, QAError) as exc:
            reply = render_error(exc)
        messages = messages + [
            {"role": "user", "content": render_question(question)},
            {"role": "assistant", "content": reply},
        ]
        return ("", messages, asked, answered(ids, messages, answer), *offer(answer, before), *follow(answer))

    def answered(ids: dict, messages: list, answer: Answer | None) -> dict:
        """The chat's answer ids by message index, with the last message's (for thumbs up / down)."""
        return {**ids, str(len(messages) - 1): answer.answer_id} if answer is not None else ids

    def pick(index: int, messages: list, pending: dict | None, ids: dict, request: gr.Request):
        """Answer the pending question from the suggestion the user picked, with its citation (logged as picked)."""
        if not pending or index >= len(pending["suggestions"]):
            return (messages, ids, *offer(None, []), *follow(None))
        passage_id, text = pending["suggestions"][index]
        answer = None
        try:
            answer = bot.ask(pending["question"], history=pending["history"], choose=passage_id,
                             asker=asker_of(request))
            reply = render_answer(answer)
        except (ValueError, QAError) as exc:
            reply = render_error(exc)
        messages = messages + [
            {"role": "user", "content": render_question(text)},
            {"role": "assistant", "content": reply},
        ]
        return (messages, answered(ids, messages, answer), *offer(None, []), *follow(answer))

    def ask_follow_up(index: int, messages: list, asked: list[str], ids: dict, offered: list[str],
                      request: gr.Request):
        """Ask the follow-up FAQ the user clicked, read right after the answer that offered it."""
        if index >= len(offered or []):
            return ("", messages, asked, ids, *offer(None, asked), *follow(None))
        return respond(offered[index], messages, asked, ids, request)

    # Handlers, not functools.partial: Gradio passes gr.Request only to a function whose own
    # signature asks for it (it warned on, and miscounted, the partials' arguments).
    def picker(index: int):
        def picked(messages: list, pending: dict | None, ids: dict, request: gr.Request):
            return pick(index, messages, pending, ids, request)
        return picked

    def follower(index: int):
        def followed(messages: list, asked: list[str], ids: dict, offered: list[str], request: gr.Request):
            return ask_follow_up(index, messages, asked, ids, offered, request)
        return followed

    def like(ids: dict, event: gr.LikeData) -> None:
        """A thumb on a reply: recorded in the question log (an undone thumb records nothing)."""
        index = event.index[0] if isinstance(event.index, (list, tuple)) else event.index
        answer_id = ids.get(str(index))
        if answer_id and isinstance(event.liked, bool):
            bot.feedback(answer_id, event.liked)

    def feedback(answer_id: str, helpful: bool) -> str:
        """Record whether the answer `answer_id` (from /ask) helped; returns {"recorded": true|false} as JSON."""
        try:
            return json.dumps({"recorded": bot.feedback(answer_id, helpful)})
        except ValueError as exc:
            raise gr.Error(str(exc), print_exception=False) from None

    def ask(question: str, history: list[str] | None = None, choose: str | None = None,
            request: gr.Request = None) -> str:
        """Answer `question` (earlier questions of the conversation in `history`, oldest first) as Answer JSON.

        `choose`, a suggestion's `passage_id` from an earlier reply, answers from that passage.
        """
        # A JSON string, not a dict: gradio_client takes any dict with a "path" key for a
        # file to download, and citations and passages carry the source file's path.
        if question is None:
            message = "no question: /ask takes the question and, optionally, the earlier questions"
        elif history is not None and not (isinstance(history, list) and all(isinstance(h, str) for h in history)):
            message = f"history must be a list of earlier questions (strings), got {history!r:.80}"
        else:
            try:
                answer = bot.ask(question, history=history or [], choose=choose or None, asker=asker_of(request))
                return json.dumps(answer.to_dict(), ensure_ascii=False)
            except (ValueError, QAError) as exc:
                message = str(exc)
        log.info("/ask refused: %.200s", message)
        raise gr.Error(message, print_exception=False)

    def faq_rows(query: str = "") -> list[list[str]]:
        """The FAQ pairs matching `query` (every word, any case), as table rows."""
        return [[f["question"], f["answer"], f["source"]] for f in bot.faqs(query)]

    def choose_example(event: gr.SelectData) -> str:
        return event.value["text"]

    with _Blocks(title="Ask the documents", analytics_enabled=False) as app:
        gr.HTML(f"<h1>Ask the documents</h1>{_sources_line(bot)}")
        with gr.Tab("Chat", elem_id="chat-tab"):
            chatbot = gr.Chatbot(
                label="Chat",
                show_label=False,  # its floating badge covered the first line of a scrolled chat
                height=560,
                render_markdown=False,
                allow_tags=False,
                sanitize_html=True,
                feedback_options=("Like", "Dislike"),
                buttons=[],
                placeholder="Ask a question about the documents.",
                examples=[{"text": q} for q in example_questions(bot)] or None,
                elem_id="chat",
            )
            asked = gr.State([])
            ids = gr.State({})
            with gr.Row():
                question = gr.Textbox(
                    placeholder="Type a question and press Enter",
                    show_label=False,
                    scale=6,
                    autofocus=True,
                    elem_id="question",
                )
                clear = gr.Button("Clear chat", scale=1, elem_id="clear")
            pending = gr.State(None)
            with gr.Row(elem_id="suggestions"):
                choices = [gr.Button(visible=False, size="sm", elem_id=f"suggestion-{i + 1}") for i in range(SUGGESTIONS)]
            offered = gr.State([])
            with gr.Row(elem_id="follow-ups"):
                follow_ups = [gr.Button(visible=False, size="sm", variant="secondary", elem_id=f"follow-up-{i + 1}")
                              for i in range(FOLLOW_UPS)]
            # One concurrency group: the chat and /ask share the `concurrency` slots.
            chat = dict(concurrency_id="bot", api_visibility="private")
            replies = [question, chatbot, asked, ids, pending, *choices, offered, *follow_ups]
            question.submit(respond, [question, chatbot, asked, ids], replies, **chat)
            chatbot.example_select(choose_example, None, question, queue=False, api_visibility="private").then(
                respond, [question, chatbot, asked, ids], replies, **chat
            )
            for i, button in enumerate(choices):
                button.click(picker(i), [chatbot, pending, ids],
                             [chatbot, ids, pending, *choices, offered, *follow_ups], **chat)
            for i, button in enumerate(follow_ups):
                button.click(follower(i), [chatbot, asked, ids, offered], replies, **chat)
            chatbot.like(like, ids, None, queue=False, api_visibility="private")
            hidden = [gr.Button(visible=False)] * SUGGESTIONS
            none_offered = ([], *[gr.Button(visible=False)] * FOLLOW_UPS)
            clear.click(lambda: ("", [], [], {}, None, *hidden, *none_offered), None, replies, queue=False,
                        api_visibility="private")
            chatbot.clear(lambda: ([], {}, None, *hidden, *none_offered), None,
                          [asked, ids, pending, *choices, offered, *follow_ups], queue=False, api_visibility="private")
        with gr.Tab("Documents", elem_id="documents-tab"):
            gr.Dataframe(
                value=source_rows(bot), headers=SOURCE_HEADERS, interactive=False, wrap=True,
                label="Sources", elem_id="sources",
            )
            search = gr.Textbox(placeholder="Search the FAQ", show_label=False, elem_id="faq-search")
            faqs = gr.Dataframe(
                value=faq_rows(), headers=["question", "answer", "source"], interactive=False, wrap=True,
                label="FAQ", elem_id="faqs",
            )
            search.change(faq_rows, search, faqs, api_name="faqs", queue=False)
        if review is not None:
            tab, show = _review_tab(review, reviewers)
            app.load(show, None, tab, queue=False, api_visibility="private")
        gr.api(ask, api_name="ask", concurrency_id="bot")
        gr.api(feedback, api_name="feedback", concurrency_id="bot")
    app.queue(default_concurrency_limit=concurrency)
    return app


def _reviewer(reviewers: frozenset[str], request: gr.Request | None) -> str:
    """The caller's login if it may review.

    Raises:
        gr.Error: it may not (no login, or a login that is not among the reviewers).
    """
    user = getattr(request, "username", None)
    if not user or user not in reviewers:
        log.warning("review action refused for %s: not a reviewer", repr(user) if user else "a caller without a login")
        raise gr.Error("only reviewers may use the review queue", print_exception=False)
    return user


def _review_tab(review, reviewers: Collection[str]):
    """The Review tab: the review queue, and per cluster: add as alternates, add a new FAQ, or dismiss.

    The tab is hidden from every login but the reviewers', and each of its handlers checks the
    caller's login on the server: hiding alone would not stop a call by name or by index.

    Returns:
        (tab, show): the tab, and the handler that shows it to a reviewer when a page loads.
    """
    reviewers = frozenset(reviewers)
    if not reviewers:
        raise ValueError("a Review tab needs reviewers: name the logins that may review (--reviewers)")

    def show(request: gr.Request):
        user = getattr(request, "username", None)
        return gr.Tab(visible=bool(user) and user in reviewers)

    def refresh(request: gr.Request):
        _reviewer(reviewers, request)
        return _refresh()

    def _refresh(note: str = ""):
        try:
            queue = review.queue()
        except ValueError as exc:  # a damaged question log: a message in the tab, not an "Error" badge
            return (gr.skip(), gr.skip(), gr.skip(), f"Cannot show the review queue: {exc}")
        choices = [(f"{n}. {_snippet(c.questions[0], 70)} ({c.count}x)", c.key) for n, c in enumerate(queue, 1)]
        first = queue[0] if queue else None
        return (review_rows(queue), gr.Dropdown(choices=choices, value=first.key if first else None),
                first.candidate.id if first and first.candidate else "",
                note or f"{len(queue)} cluster(s) to review.")

    def select(key: str | None, request: gr.Request) -> str:
        _reviewer(reviewers, request)
        try:
            cluster = next((c for c in review.queue() if c.key == key), None)
        except ValueError:
            return gr.skip()
        return cluster.candidate.id if cluster and cluster.candidate else ""

    def act(action: str, key: str | None, faq_id: str, question: str, answer: str, request: gr.Request):
        user = _reviewer(reviewers, request)
        try:
            if not key:
                raise ValueError("pick a cluster first")
            cluster = review.find(key)
            if action == "accept":
                note = f"Added as alternates of {faq_id or cluster.candidate.id} in {review.accept(cluster, faq_id or None).name}."
            elif action == "add":
                note = f"Added a new FAQ in {review.add_faq(cluster, question, answer).name}."
            else:
                review.dismiss(cluster)
                note = "Dismissed."
        except ValueError as exc:
            return (gr.skip(), gr.skip(), gr.skip(), f"Cannot do that: {exc}")
        log.info("review: %s by %s", action, user)
        return _refresh(note + " Run `qa build` to apply; the chat switches to the new index by itself.")

    def accept_action(key, faq_id, question, answer, request: gr.Request):
        return act("accept", key, faq_id, question, answer, request)

    def add_action(key, faq_id, question, answer, request: gr.Request):
        return act("add", key, faq_id, question, answer, request)

    def dismiss_action(key, faq_id, question, answer, request: gr.Request):
        return act("dismiss", key, faq_id, question, answer, request)

    with gr.Tab("Review", elem_id="review-tab", visible=False) as tab:
        status = gr.Markdown(elem_id="review-status")
        table = gr.Dataframe(headers=REVIEW_HEADERS, interactive=False, wrap=True, label="Questions to review",
                             elem_id="review-queue")
        with gr.Row():
            cluster = gr.Dropdown(label="Cluster", choices=[], elem_id="review-cluster", scale=3)
            faq_id = gr.Textbox(label="FAQ id", elem_id="review-faq-id", scale=2)
            accept = gr.Button("Add as alternates", variant="primary", elem_id="review-accept", scale=1)
            dismiss = gr.Button("Dismiss", elem_id="review-dismiss", scale=1)
        with gr.Row():
            new_question = gr.Textbox(label="New FAQ question", elem_id="review-question", scale=3)
            new_answer = gr.Textbox(label="Its answer", elem_id="review-answer", scale=3)
            add = gr.Button("Add new FAQ", elem_id="review-add", scale=1)
        reload = gr.Button("Refresh", size="sm", elem_id="review-refresh")
        outputs = [table, cluster, faq_id, status]
        private = dict(api_visibility="private", concurrency_id="bot")
        reload.click(refresh, None, outputs, **private)
        tab.select(refresh, None, outputs, **private)
        cluster.input(select, cluster, faq_id, **private)
        fields = [cluster, faq_id, new_question, new_answer]
        accept.click(accept_action, fields, outputs, **private)
        add.click(add_action, fields, outputs, **private)
        dismiss.click(dismiss_action, fields, outputs, **private)
    return tab, show


def is_loopback(host: str) -> bool:
    """True when `host` is reachable only from this machine (localhost, 127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, auth) -> str | None:
    """The warning to show when the chat would be reachable from other machines with no login, else None."""
    if auth or is_loopback(host):
        return None
    return (
        f"the chat listens on {host}, reachable from other machines, with no login: "
        "anyone who can reach it can read the documents; add --auth user:password (or set QA_AUTH)"
    )


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """'user:password' -> ('user', 'password'); None or '' -> None.

    Raises:
        ValueError: no ':' or an empty user or password (the value itself is not echoed).
    """
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ValueError("auth must look like user:password, with neither part empty")
    return user, password


def read_logins(path: str | os.PathLike) -> list[tuple[str, str]]:
    """The logins of a file: one USER:PASSWORD a line; blank lines and lines starting with # are skipped.

    Raises:
        ValueError: the file cannot be read, a line is not USER:PASSWORD (named by its line, the
            password not echoed), a user appears twice, or there is no login at all.
    """
    try:
        text = open(path, encoding="utf-8").read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the logins file ({exc})") from None
    logins: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            user, password = parse_auth(line)
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: {exc}") from None
        if user in logins:
            raise ValueError(f"{path}:{number}: the user {user!r} has a login already")
        logins[user] = password
    if not logins:
        raise ValueError(f"{path}: no USER:PASSWORD line")
    return list(logins.items())


def launch(
    app: gr.Blocks,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    auth: tuple[str, str] | list[tuple[str, str]] | None = None,
    *,
    block: bool = True,
) -> str:
    """Serve `app` on host:port (never a public share link); warn when exposed without a login.

    Args:
        app: the app from `build_app`.
        host: the address to bind; 127.0.0.1 keeps the chat on this machine.
        port: the TCP port.
        auth: a (user, password) login, or a list of them, required to open the page and call the API; or None.
        block: False returns once the server runs (tests); True serves until interrupted.

    Returns:
        The local URL.
    """
    warning = exposure_warning(host, auth)
    if warning:
        log.warning(warning)
    _, url, _ = app.launch(
        server_name=host,
        server_port=port,
        auth=auth or None,
        share=False,
        ssr_mode=False,
        prevent_thread_lock=True,
        quiet=True,
        theme=gr.themes.Default(),
        css=CSS,
        js=ARIA_JS,
        max_file_size=0,  # a second lock behind _NoUploads: any upload that reached Gradio holds no bytes
        state_session_capacity=settings.max_sessions(),
        # An offline app needs no run history (a "Runs" page offering to "connect a bucket") and no
        # /monitoring page, which answered without a login and logged its token URL.
        run_history=False,
        enable_monitoring=False,
        app_kwargs={"middleware": [
            Middleware(_NoUploads),
            Middleware(_BodyLimit, limit=settings.max_request_bytes()),
            Middleware(_SessionSweep, blocks=app, idle=SESSION_IDLE_SECONDS),
        ]},
    )
    log.info("the chat is ready at %s", url)
    if block:
        app.block_thread()
    return url


def _bypass_proxy_for_loopback() -> None:
    """Put 127.0.0.1 and localhost in NO_PROXY: through a proxy, Gradio's start-up check of itself fails (403)."""
    hosts = [h for h in (os.environ.get("NO_PROXY") or os.environ.get("no_proxy") or "").split(",") if h]
    hosts += [h for h in ("127.0.0.1", "localhost") if h not in hosts]
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = ",".join(hosts)


def parser() -> argparse.ArgumentParser:
    """The command line; each option falls back to its environment variable, then to its default."""
    p = argparse.ArgumentParser(prog="ui.py", description="The web chat over an index of your documents.")
    p.add_argument("--index", metavar="DIR", help="index folder (default: $QA_INDEX_DIR or ./index)")
    p.add_argument("--model", metavar="M", help="embedding model (default: $QA_MODEL or the index's own)")
    p.add_argument("--store", metavar="STORE",
                   help="where the index lives: folder, milvus:PATH.db or http://HOST:19530 (default: $QA_STORE or folder)")
    p.add_argument("--threshold", metavar="T", type=float, help="abstain below this confidence (default: $QA_THRESHOLD)")
    p.add_argument("--host", help="address (default: $QA_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: $QA_PORT or 7860)")
    p.add_argument("--auth", metavar="USER:PASSWORD", help="login to require (default: $QA_AUTH)")
    p.add_argument("--auth-file", metavar="FILE",
                   help="more logins, USER:PASSWORD a line (default: $QA_AUTH_FILE); keep it readable by you only")
    p.add_argument("--reviewers", metavar="NAMES",
                   help="the logins, comma-separated, that may use the Review tab (default: $QA_REVIEWERS)")
    p.add_argument("--log", metavar="FILE", help="question log, or off (default: $QA_LOG or qa-log.sqlite3 beside the index)")
    p.add_argument("--review", action="store_true", help="show the Review tab to the --reviewers (needs logins)")
    p.add_argument("--data", metavar="DIR", help="where the Review tab writes (default: $QA_DATA_DIR or ./data)")
    return p


def logins_of(args) -> list[tuple[str, str]]:
    """Every login the chat accepts: --auth (or $QA_AUTH) and the lines of --auth-file (or $QA_AUTH_FILE).

    Raises:
        ValueError: a malformed login, or one user given twice.
    """
    logins = [parse_auth(settings.auth(args.auth))] if settings.auth(args.auth) else []
    path = settings.auth_file(args.auth_file)
    if path is not None:
        logins += read_logins(path)
    users = [user for user, _ in logins]
    twice = sorted({user for user in users if users.count(user) > 1})
    if twice:
        raise ValueError(f"the user {twice[0]!r} has two logins (--auth and --auth-file)")
    return logins


def main(argv: Sequence[str] | None = None) -> int:
    """Start the web chat: load the index and the model once, then serve until interrupted.

    Returns:
        The exit status: 0, or 2 after a one-line error (no index, bad option).
    """
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "faiss.loader", "sentence_transformers", "transformers", "bm25s"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    _bypass_proxy_for_loopback()
    try:
        logins = logins_of(args)
        host, port = settings.host(args.host), settings.port(args.port)
        reviewers = settings.reviewers(args.reviewers)
        if args.review and not logins:
            raise ValueError("--review needs a login (--auth USER:PASSWORD or --auth-file): reviewers are not anonymous users")
        if args.review and not reviewers:
            raise ValueError("--review needs --reviewers NAMES: the logins that may review (chat users may not)")
        unknown = sorted(reviewers - {user for user, _ in logins})
        if args.review and unknown:
            raise ValueError(f"--reviewers names {', '.join(map(repr, unknown))}, which has no login")
        log_file = settings.question_log(args.log, index=args.index, default_on=True)
        bot = Bot(args.index, model=args.model, threshold=args.threshold, question_log=log_file or "off",
                  store=args.store).warm_up()
        review = open_review(args.index, str(log_file or "off"), args.data, bot=bot) if args.review else None
    except (QAError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if log_file:
        log.info("questions, answers and feedback are logged in %s (--log off to stop)", log_file)
    app = build_app(bot, review=review, reviewers=reviewers)
    try:
        url = launch(app, host, port, logins, block=False)
        print(f"the chat is at {url} (Ctrl-C to stop)", flush=True)  # `qa serve` printed no address before
        app.block_thread()
    except KeyboardInterrupt:  # Ctrl-C before Gradio's own wait loop took over: stop just as cleanly
        app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
