"""End to end on the real embedded model: the page, the server, llama.cpp (issue 16)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import WebServer
from tests.browser.test_chat_page import replies_done, send, state_of, thread_id_of

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_conversation_with_the_embedded_model(
    page: Page, web_server: WebServer, user: str
) -> None:
    page.goto(f"{web_server.url}/chat?graph=chatbot")
    page.wait_for_selector("#persona option", state="attached")
    page.click("#settings summary")
    page.fill("#setting-max_reply_tokens", "24")
    page.fill("#setting-temperature", "0")

    send(page, "Say hello in one short sentence.")
    replies_done(page, 1)
    send(page, "Now say goodbye.")
    replies_done(page, 2)

    replies = page.locator("#messages > li.msg.assistant .body")
    expect(replies).to_have_count(2)
    assert all(text.strip() for text in replies.all_inner_texts()), "an empty reply"
    expect(page.locator("#messages .error")).to_have_count(0)
    messages = state_of(web_server, user, thread_id_of(page))["messages"]
    assert [m["type"] for m in messages] == ["human", "ai", "human", "ai"]
    assert messages[-1]["content"].strip() == replies.last.inner_text().strip()
