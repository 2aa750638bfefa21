"""The web chat's read-only Documents tab: sources and the searchable FAQ list, from Bot.sources() / Bot.faqs()."""

from __future__ import annotations

from gradio_client import Client

import ui


def test_bot_sources_and_faqs_describe_the_index(bot):
    (source,) = bot.sources()
    assert source["title"] == "Diaz Canel Russia Visit" and source["kind"] == "text"
    assert source["passages"] == 19 and source["built_at"]
    assert len(bot.faqs()) == 4
    (match,) = bot.faqs("PURPOSE visit")
    assert match["question"] == "What was the purpose of Díaz-Canel's visit to Russia in May 2025?"
    assert bot.faqs("no such words anywhere") == []


def test_documents_tab_lists_sources_and_searches_the_faq(bot, chat_url):
    rows = ui.source_rows(bot)
    assert rows[0][:4] == ["Diaz Canel Russia Visit", "diaz-canel-russia-visit.txt", "text", 19]
    client = Client(chat_url, verbose=False)
    table = client.predict("purpose", api_name="/faqs")
    assert [r[0] for r in table["data"]] == ["What was the purpose of Díaz-Canel's visit to Russia in May 2025?"]
    assert len(client.predict("", api_name="/faqs")["data"]) == 4
