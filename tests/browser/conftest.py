"""Browser tests: Debian's headless chromium (driven by Playwright) against a real `langgraph dev`.

One server for the package runs the real graph with a scripted model (scripted_graph.py) and
auth on; every test signs in as a user of its own, so tests never see each other's threads.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from agent.server.dev import ServerProcess
from tests.integration.server_harness import start_dev_server

CHROMIUM = os.environ.get("AGENT_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCRIPTED_GRAPH = Path(__file__).with_name("scripted_graph.py")
USERS = [f"user{n}" for n in range(80)]
JWT_SECRET = "browser-tests-secret-0123456789abcdef0123456789"
CUSTOM_PERSONA = """description = "A pirate who answers in pirate speak."
system = "You are a pirate. Answer every question in pirate speak."
"""
WAIT_MS = 60_000  # upper bound for anything the page waits for (a hang guard, not a timing claim)


def token_for(user: str) -> str:
    """The static bearer token of a test user."""
    return f"token-{user}"


def expired_jwt(user: str) -> str:
    """A correctly signed JWT whose `exp` has passed."""
    return jwt.encode({"sub": user, "exp": int(time.time()) - 60}, JWT_SECRET, algorithm="HS256")


@dataclass
class WebServer:
    """The server under test and a way to ask its API directly, as a given user."""

    process: ServerProcess
    personas_dir: Path

    @property
    def url(self) -> str:
        """Base URL of the server (the page is at /chat)."""
        return self.process.url

    def api(self, user: str) -> httpx.Client:
        """An HTTP client for the standard API, signed in as `user`."""
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token_for(user)}"},
            timeout=60,
        )


@pytest.fixture(scope="package")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    """`langgraph dev` with the project's langgraph.json (page included), auth, scripted model."""
    directory = tmp_path_factory.mktemp("web-server")
    personas = directory / "personas"
    personas.mkdir()
    (personas / "pirate.toml").write_text(CUSTOM_PERSONA, encoding="utf-8")
    env = {
        "AGENT_AUTH_TOKENS": ",".join(f"{token_for(u)}:{u}" for u in USERS),
        "AGENT_JWT_SECRET": JWT_SECRET,
        "AGENT_WEB_GRAPH": "scripted",
        "AGENT_PERSONAS_DIR": str(personas),
    }
    server = start_dev_server(
        directory, env=env, graphs={"scripted": f"{SCRIPTED_GRAPH}:graph"}, jobs=8
    )
    try:
        yield WebServer(server, personas)
    finally:
        server.stop()


@pytest.fixture(scope="package")
def playwright_driver() -> Iterator[Playwright]:
    """Playwright's driver (it launches the system chromium; it downloads nothing).

    Package scope, not session: while the sync driver is open its event loop runs on the main
    thread, and asyncio tests in other directories could not start their own.
    """
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    """Debian's chromium, headless, with a fresh empty profile."""
    assert Path(CHROMIUM).exists(), (
        f"{CHROMIUM} not found: the browser tests need Debian's chromium (apt-get install "
        "chromium; `make browser-setup` does it)."
    )
    # launch() starts chromium on a new, empty temporary profile and removes it afterwards.
    browser = playwright_driver.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
    )
    try:
        yield browser
    finally:
        browser.close()


_user_numbers = itertools.count()


@pytest.fixture
def user() -> str:
    """A user no other test uses, so its thread list starts empty."""
    return USERS[next(_user_numbers) % len(USERS)]


def new_context(browser: Browser, **options: Any) -> BrowserContext:
    """A fresh browser context (its own storage), failing fast on console errors."""
    context = browser.new_context(**options)
    context.set_default_timeout(WAIT_MS)
    return context


def signed_in(context: BrowserContext, user: str) -> None:
    """Every tab of this context starts signed in as `user` (the token in session storage)."""
    context.add_init_script(f"sessionStorage.setItem('agent.token', {token_for(user)!r});")


@pytest.fixture
def context(browser: Browser, user: str) -> Iterator[BrowserContext]:
    """A browser context signed in as this test's user."""
    context = new_context(browser)
    signed_in(context, user)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def page(context: BrowserContext, web_server: WebServer) -> Iterator[Page]:
    """The chat page, loaded and signed in, with page errors collected (and asserted absent)."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{web_server.url}/chat")
    page.wait_for_selector("#persona option", state="attached")  # settings loaded: ready
    yield page
    assert errors == [], f"JavaScript errors on the page: {errors}"
