"""The chat page in a real headless chromium against a real `langgraph dev` (issue 16, 1-8)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import (
    WAIT_MS,
    WebServer,
    expired_jwt,
    new_context,
    signed_in,
    token_for,
)
from tests.browser.scripted_graph import MARKDOWN_REPLY, SLOW_REPLY

pytestmark = pytest.mark.browser
expect.set_options(timeout=WAIT_MS)


# --- helpers -----------------------------------------------------------------------------------


def send(page: Page, text: str) -> None:
    """Type a message and press Enter, as a user would."""
    page.fill("#message", text)
    page.press("#message", "Enter")


def replies_done(page: Page, count: int) -> None:
    """Wait until `count` replies have ended and the page has shown the saved thread."""
    page.wait_for_selector(f'body[data-replies="{count}"]', state="attached")


def say_and_wait(page: Page, text: str) -> None:
    """Send a message and wait until its reply is finished and shown."""
    before = int(page.evaluate("document.body.dataset.replies || 0"))
    send(page, text)
    replies_done(page, before + 1)


def shown_messages(page: Page) -> list[tuple[str, str]]:
    """(role, text) of each message on the page, in order."""
    items = page.locator("#messages > li.msg")
    return [
        (
            "user" if "user" in (items.nth(i).get_attribute("class") or "") else "assistant",
            items.nth(i).locator(".body").inner_text().strip(),
        )
        for i in range(items.count())
    ]


def thread_id_of(page: Page) -> str:
    """The open thread's id (the page keeps it in the URL)."""
    match = re.search(r"thread=([0-9a-f-]{36})", page.url)
    assert match, f"no thread open: {page.url}"
    return match.group(1)


def state_of(server: WebServer, user: str, thread_id: str) -> dict[str, Any]:
    """The thread's saved state, read through the standard API as `user`."""
    with server.api(user) as api:
        response = api.get(f"/threads/{thread_id}/state")
    response.raise_for_status()
    return dict(response.json()["values"])


def streaming_text_lengths(page: Page) -> None:
    """Record every length the streaming reply's text goes through (window.lengths)."""
    page.evaluate(
        """() => {
        window.lengths = [];
        new MutationObserver(() => {
            const body = document.querySelector('.msg.streaming .body');
            if (body) window.lengths.push(body.textContent.length);
        }).observe(document.querySelector('#messages'),
                   {childList: true, subtree: true, characterData: true});
    }"""
    )


def wait_for_partial(page: Page, characters: int) -> None:
    """Wait until the streaming reply shows at least this many characters."""
    page.wait_for_function(
        f"() => (document.querySelector('.msg.streaming .body')?.textContent.length || 0) "
        f">= {characters}"
    )


# --- 1. streaming, Markdown, memory --------------------------------------------------------------


def test_two_turns_remember_the_first(page: Page) -> None:
    say_and_wait(page, "My name is Ada.")
    say_and_wait(page, "What is my name?")

    messages = shown_messages(page)
    assert [role for role, _ in messages] == ["user", "assistant", "user", "assistant"]
    assert "heard: My name is Ada. | What is my name?" in messages[-1][1]


def test_reply_streams_in_several_steps_and_the_page_stays_usable(page: Page) -> None:
    streaming_text_lengths(page)
    send(page, "slow: tell me a long story")
    wait_for_partial(page, 40)

    # While it streams: type the next message, search threads, open the settings.
    page.fill("#message", "typed while streaming")
    page.fill("#thread-search", "slow")
    page.click("#settings summary")
    expect(page.locator("#persona")).to_be_visible()
    assert page.input_value("#message") == "typed while streaming"
    wait_for_partial(page, 200)

    lengths = page.evaluate("window.lengths")
    assert len(set(lengths)) >= 3, f"the reply did not grow step by step: {lengths}"
    assert lengths == sorted(lengths)
    page.click("#stop")
    replies_done(page, 1)


def test_markdown_code_with_copy_and_tables(page: Page, context: Any) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    say_and_wait(page, "md: show me")

    reply = page.locator("#messages > li.msg.assistant").last
    expect(reply.locator("strong")).to_have_text("bold")
    expect(reply.locator("pre code")).to_have_text("print('hello')")
    expect(reply.locator("pre code .hljs-built_in, pre code .hljs-string").first).to_be_visible()
    expect(reply.locator("table tr")).to_have_count(3)
    expect(reply.locator("table td").first).to_have_text("Mars")
    reply.locator("button.copy").click()
    expect(reply.locator("button.copy")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == "print('hello')"
    assert "That is all." in MARKDOWN_REPLY and "That is all." in reply.inner_text()


def test_markdown_shows_raw_html_as_text(page: Page) -> None:
    say_and_wait(page, "<img src=x onerror=alert(1)> <script>alert(2)</script>")

    reply = page.locator("#messages > li.msg.assistant").last
    expect(reply).to_contain_text("<script>alert(2)</script>")
    assert reply.locator("img, script").count() == 0


# --- 2. stop, reload, second tab, busy ---------------------------------------------------------


def test_stop_cancels_the_server_run_and_keeps_the_partial_reply(
    page: Page, web_server: WebServer, user: str
) -> None:
    send(page, "slow: go on and on")
    wait_for_partial(page, 60)
    page.click("#stop")
    replies_done(page, 1)

    thread_id = thread_id_of(page)
    with web_server.api(user) as api:
        runs = api.get(f"/threads/{thread_id}/runs").json()
        thread = api.get(f"/threads/{thread_id}").json()
    assert [run["status"] for run in runs] == ["interrupted"]
    assert thread["status"] == "idle"
    messages = state_of(web_server, user, thread_id)["messages"]
    assert [m["type"] for m in messages] == ["human", "ai"]
    partial = messages[-1]["content"]
    assert messages[-1]["response_metadata"].get("interrupted") is True
    assert SLOW_REPLY.startswith(partial) and 0 < len(partial) < len(SLOW_REPLY)
    stopped = page.locator("#messages > li.msg.assistant").last
    expect(stopped.locator(".badge")).to_have_text("stopped")
    assert stopped.locator(".body").inner_text().strip() == partial.strip()

    say_and_wait(page, "and now?")
    assert "heard: slow: go on and on | and now?" in shown_messages(page)[-1][1]


def test_reload_during_a_reply_rejoins_the_live_stream(
    page: Page, web_server: WebServer, user: str
) -> None:
    send(page, "slow: keep talking")
    wait_for_partial(page, 40)
    thread_id = thread_id_of(page)

    page.reload()
    page.wait_for_selector(".msg.streaming")
    wait_for_partial(page, 300)  # the rejoined stream shows the reply from its start, live
    page.click("#stop")
    replies_done(page, 1)

    with web_server.api(user) as api:
        runs = api.get(f"/threads/{thread_id}/runs").json()
    assert len(runs) == 1, "the reload started another run"
    messages = state_of(web_server, user, thread_id)["messages"]
    assert [m["type"] for m in messages] == ["human", "ai"]
    assert [m["content"] for m in messages if m["type"] == "human"] == ["slow: keep talking"]


def test_a_second_tab_shows_the_live_reply_and_a_busy_thread_says_so(
    page: Page, context: Any, web_server: WebServer, user: str
) -> None:
    say_and_wait(page, "hello")
    second = context.new_page()  # opened before the next turn: it knows of no run yet
    second.goto(page.url)
    expect(second.locator("#messages > li.msg")).to_have_count(2)

    send(page, "slow: for two tabs")
    wait_for_partial(page, 40)
    send(second, "me too")

    expect(second.locator("#status")).to_contain_text("busy")
    assert second.input_value("#message") == "me too"  # nothing typed is lost
    wait_for_partial(second, 200)  # and the second tab shows the reply going on, live
    page.click("#stop")
    replies_done(page, 2)
    replies_done(second, 1)
    thread_id = thread_id_of(page)
    with web_server.api(user) as api:
        runs = api.get(f"/threads/{thread_id}/runs").json()
    assert len(runs) == 2  # "hello" and the slow one: the busy send created nothing
    humans = [m["content"] for m in state_of(web_server, user, thread_id)["messages"]]
    assert "me too" not in humans


# --- 3. persona picker and settings --------------------------------------------------------------


def test_persona_picker_switches_the_thread_and_edits_its_variables(
    page: Page, web_server: WebServer, user: str
) -> None:
    page.click("#settings summary")
    options = page.locator("#persona option").all_inner_texts()
    assert {"tutor", "travel_planner", "pirate"} <= set(options)

    page.select_option("#persona", "travel_planner")
    page.fill("#var-language", "French")
    say_and_wait(page, "where to?")

    assert "[You are a thoughtful travel planner" in shown_messages(page)[-1][1]
    values = state_of(web_server, user, thread_id_of(page))
    assert values["persona"] == "travel_planner"
    assert values["persona_vars"]["language"] == "French"
    expect(page.locator(".thread[aria-current=true] .thread-meta")).to_contain_text(
        "travel_planner"
    )

    page.select_option("#persona", "tutor")
    say_and_wait(page, "teach me")
    assert "Python tutor" in shown_messages(page)[-1][1]
    expect(page.locator(".thread[aria-current=true] .thread-meta")).to_contain_text("tutor")


def test_settings_are_sent_as_the_runs_context(
    page: Page, web_server: WebServer, user: str
) -> None:
    page.click("#settings summary")
    page.fill("#setting-max_turns", "1")
    say_and_wait(page, "first")
    say_and_wait(page, "second")

    assert "heard: second" in shown_messages(page)[-1][1]
    assert "first" not in shown_messages(page)[-1][1]  # a one-exchange window
    values = state_of(web_server, user, thread_id_of(page))
    assert values["archived"] == 2
    expect(page.locator("#notice-text")).to_have_text(
        "2 earlier messages are outside the model's window (kept in the transcript)."
    )


def test_settings_show_the_operators_limits_and_a_refused_setting_says_why(page: Page) -> None:
    page.click("#settings summary")
    expect(page.locator("#setting-temperature")).to_have_attribute("max", "2")
    expect(page.locator("#setting-max_reply_tokens")).to_have_attribute("max", "1024")

    page.fill("#setting-temperature", "5")
    send(page, "too hot")

    expect(page.locator("#messages .error")).to_contain_text("temperature")
    expect(page.locator("#messages .error")).to_contain_text("[0, 2]")


def test_a_message_over_the_servers_size_limit_is_refused_before_sending(page: Page) -> None:
    send(page, "x" * 40_000)

    expect(page.locator("#status")).to_contain_text("Message too large")
    assert page.locator("#messages > li").count() == 0


# --- 4. thread list ---------------------------------------------------------------------------


def test_thread_list_titles_rename_search_and_delete(
    page: Page, web_server: WebServer, user: str
) -> None:
    say_and_wait(page, "Plan a trip to Lisbon")
    first = thread_id_of(page)
    page.click("#new-thread")
    say_and_wait(page, "Bake a lemon cake")
    titles = page.locator(".thread .thread-title")
    expect(titles).to_have_text(["Bake a lemon cake", "Plan a trip to Lisbon"])
    expect(page.locator(".thread .thread-meta").first).to_contain_text("just now")

    page.locator(f'[data-thread-id="{first}"] .rename').click()
    page.fill(".thread-rename", "Lisbon in May")
    page.press(".thread-rename", "Enter")
    expect(page.locator(f'[data-thread-id="{first}"] .thread-title')).to_have_text("Lisbon in May")
    with web_server.api(user) as api:
        assert api.get(f"/threads/{first}").json()["metadata"]["title"] == "Lisbon in May"

    page.fill("#thread-search", "lisbon")
    expect(titles).to_have_text(["Lisbon in May"])
    page.fill("#thread-search", "")

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f'[data-thread-id="{first}"] .delete').click()
    expect(titles).to_have_text(["Bake a lemon cake"])
    with web_server.api(user) as api:
        assert api.get(f"/threads/{first}").status_code == 404


# --- 5. errors inline, with Retry ---------------------------------------------------------------


def test_a_failed_turn_shows_its_error_inline_and_retry_answers_it(
    page: Page, web_server: WebServer, user: str
) -> None:
    say_and_wait(page, "hello")
    say_and_wait(page, "flaky: are you there?")

    error = page.locator("#messages .error")
    expect(error).to_contain_text("cannot be reached")
    error.locator("button.retry").click()
    replies_done(page, 3)

    expect(page.locator("#messages .error")).to_have_count(0)
    assert "heard: hello | flaky: are you there?" in shown_messages(page)[-1][1]
    values = state_of(web_server, user, thread_id_of(page))
    humans = [m["content"] for m in values["messages"] if m["type"] == "human"]
    assert humans == ["hello", "flaky: are you there?"]  # retried in place, not duplicated


def test_an_empty_message_is_refused_before_sending(page: Page) -> None:
    send(page, "   ")

    expect(page.locator("#status")).to_have_text("The message is empty: type something first.")
    assert page.locator("#messages > li").count() == 0
    assert page.locator(".thread").count() == 0


def test_an_unknown_persona_names_the_choices_inline(page: Page, web_server: WebServer) -> None:
    extra = web_server.personas_dir / "ghost.toml"
    extra.write_text('system = "You are a ghost."\n', encoding="utf-8")
    page.reload()
    page.wait_for_selector("#persona option[value=ghost]", state="attached")
    page.click("#settings summary")
    page.select_option("#persona", "ghost")
    extra.unlink()  # the operator removes it while the page still offers it

    say_and_wait(page, "boo")

    expect(page.locator("#messages .error")).to_contain_text("Unknown persona 'ghost'")
    expect(page.locator("#messages .error")).to_contain_text("tutor")


# --- 6. auth -----------------------------------------------------------------------------------


def test_sign_in_refused_tokens_and_sign_out(browser: Browser, web_server: WebServer) -> None:
    context = new_context(browser)
    page = context.new_page()
    page.goto(f"{web_server.url}/chat")
    dialog = page.locator("#signin")
    expect(dialog).to_be_visible()

    page.fill("#token", expired_jwt("user1"))
    page.press("#token", "Enter")
    expect(page.locator("#signin-reason")).to_contain_text("expired")
    page.fill("#token", "not-a-token")
    page.press("#token", "Enter")
    expect(page.locator("#signin-reason")).to_contain_text("refused")

    page.fill("#token", token_for("user2"))
    page.press("#token", "Enter")
    expect(dialog).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('agent.token')") == token_for("user2")
    page.click("#sign-out")
    expect(dialog).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('agent.token')") is None
    context.close()


def test_a_token_refused_mid_session_asks_for_it_again_and_keeps_the_message(
    page: Page, user: str
) -> None:
    say_and_wait(page, "before the token expired")
    # From here on every request carries an expired token: the real server refuses it.
    expired = f"Bearer {expired_jwt(user)}"
    page.route(
        "**/*",
        lambda route: route.continue_(headers={**route.request.headers, "authorization": expired}),
    )
    send(page, "written after it expired")
    expect(page.locator("#signin")).to_be_visible()
    expect(page.locator("#signin-reason")).to_contain_text("expired")
    page.unroute("**/*")

    page.fill("#token", token_for(user))
    page.press("#token", "Enter")
    expect(page.locator("#signin")).to_be_hidden()
    expect(page.locator("#message")).to_have_value("written after it expired")
    expect(page.locator("#messages")).to_contain_text("before the token expired")
    page.press("#message", "Enter")
    replies_done(page, 2)
    (_, asked), (_, answer) = shown_messages(page)[-2:]
    assert asked == "written after it expired"
    # The model heard each message once: the refused attempt stored nothing.
    assert answer.endswith("heard: before the token expired | written after it expired")


def test_two_users_never_see_each_others_threads(
    browser: Browser, web_server: WebServer, page: Page, user: str
) -> None:
    say_and_wait(page, "alice's secret plan")
    secret_url = page.url
    other = "user79"

    # The same tab signs out and in as another user: nothing of the first may show, ever.
    page.evaluate(
        """(firstToken) => {
        window.leaked = false;
        new MutationObserver(() => {
            const shown = document.body.innerText.includes("secret plan");
            if (shown && sessionStorage.getItem('agent.token') !== firstToken) window.leaked = true;
        }).observe(document.body, {childList: true, subtree: true, characterData: true});
    }""",
        token_for(user),
    )
    page.click("#sign-out")
    page.fill("#token", token_for(other))
    page.press("#token", "Enter")
    expect(page.locator("#thread-empty")).to_be_visible()
    assert page.evaluate("window.leaked") is False

    # Another user's thread id in the URL: not found, and none of its content.
    intruder = new_context(browser)
    signed_in(intruder, other)
    tab = intruder.new_page()
    tab.goto(secret_url)
    expect(tab.locator("#status")).to_contain_text("does not exist")
    assert "secret plan" not in tab.locator("body").inner_text()
    intruder.close()


# --- 7. regenerate, edit, branches, window note, export ----------------------------------------


def test_regenerate_and_edit_fork_with_branch_switching(page: Page) -> None:
    say_and_wait(page, "one")
    say_and_wait(page, "two")

    page.locator("#messages > li.msg.assistant").last.locator(".regenerate").click()
    replies_done(page, 3)
    last_reply = page.locator("#messages > li.msg.assistant").last
    expect(last_reply.locator(".branch-label")).to_have_text("2 / 2")

    page.locator("#messages > li.msg.user").first.locator(".edit").click()
    page.fill(".edit-box textarea", "uno")
    page.click(".edit-box button.primary")
    replies_done(page, 4)
    assert [text for _, text in shown_messages(page)][0] == "uno"
    assert len(shown_messages(page)) == 2
    first_user = page.locator("#messages > li.msg.user").first
    expect(first_user.locator(".branch-label")).to_have_text("2 / 2")

    first_user.get_by_role("button", name="Previous version").click()
    expect(page.locator("#messages > li.msg.user").first.locator(".body")).to_have_text("one")
    assert len(shown_messages(page)) == 4
    page.locator("#messages > li.msg.user").first.get_by_role("button", name="Next version").click()
    expect(page.locator("#messages > li.msg.user").first.locator(".body")).to_have_text("uno")


def test_export_downloads_the_whole_transcript(page: Page) -> None:
    page.click("#settings summary")
    page.fill("#setting-max_turns", "1")
    for text in ("alpha", "beta", "gamma"):
        say_and_wait(page, text)
    expect(page.locator("#notice-text")).to_contain_text("4 earlier messages")

    with page.expect_download() as download:
        page.click("#export-md")
    text = Path(download.value.path()).read_text(encoding="utf-8")
    for said in ("alpha", "beta", "gamma"):
        assert f"\n{said}\n" in text
    assert text.startswith("# alpha")


# --- 8. keyboard, themes, phone -------------------------------------------------------------------


def test_keyboard_only_use_and_labels(page: Page) -> None:
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea, button')]
        .filter(e => e.offsetParent !== null)
        .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                     && !e.textContent.trim())
        .map(e => e.outerHTML)"""
    )
    assert unlabelled == []

    page.keyboard.press("Tab")
    expect(page.locator(".skip")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#message")).to_be_focused()
    page.keyboard.type("typed with the keyboard only")
    page.keyboard.press("Enter")
    replies_done(page, 1)
    assert "heard: typed with the keyboard only" in shown_messages(page)[-1][1]

    page.locator("#new-thread").focus()
    page.keyboard.press("Tab")
    expect(page.locator("#thread-search")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator(".thread-open").first).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#message")).to_be_focused()


def test_light_and_dark_themes(page: Page) -> None:
    def background() -> str:
        return str(page.evaluate("getComputedStyle(document.body).backgroundColor"))

    page.click("#theme")
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    light = background()
    page.click("#theme")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    assert background() != light
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")


def test_phone_sized_viewport(browser: Browser, web_server: WebServer, user: str) -> None:
    context = new_context(browser, viewport={"width": 375, "height": 667}, is_mobile=True)
    signed_in(context, user)
    page = context.new_page()
    page.goto(f"{web_server.url}/chat")
    page.wait_for_selector("#persona option", state="attached")

    say_and_wait(page, "md: on a phone")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, "the page scrolls sideways on a phone"
    expect(page.locator("#sidebar")).not_to_be_in_viewport()
    page.click("#threads-toggle")
    expect(page.locator("#sidebar")).to_be_in_viewport()
    page.locator(".thread-open").first.click()
    expect(page.locator("#sidebar")).not_to_be_in_viewport()
    context.close()


def test_only_the_owner_can_keep_a_stopped_reply_and_only_the_runs_own_text(
    page: Page, web_server: WebServer, user: str
) -> None:
    say_and_wait(page, "finished turn")
    thread_id = thread_id_of(page)
    with web_server.api(user) as api:
        [run] = api.get(f"/threads/{thread_id}/runs").json()
        keep = f"/chat/api/threads/{thread_id}/runs/{run['run_id']}/keep"
        assert api.post(keep, json={"shown": 5}).json()["saved"] is False  # it was not stopped
    with web_server.api("user78") as intruder:
        assert intruder.post(keep, json={}).status_code == 404
    assert [m["type"] for m in state_of(web_server, user, thread_id)["messages"]] == ["human", "ai"]
