"""Browser fixtures: the test app served on loopback, and Debian's Chromium driven by Playwright.

The browser is launched from the system's Chromium (``make browser`` installs it); Playwright's
own browser downloads are never used, since test tools cannot fetch browsers here. Each test
gets fresh browser contexts (cookies, storage), all closed before the server stops.
"""

from __future__ import annotations

import os
import shutil
import threading
import typing as t
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from werkzeug.serving import make_server

if t.TYPE_CHECKING:
    from flask import Flask

#: Chromium's background services (updates, sync, QUIC probes) try to reach the internet;
#: on this closed network they fail slowly, so they are switched off.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: A phone: the survey is answered from an email, mostly on one.
PHONE: dict[str, t.Any] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
}

#: A desktop screen without touch: where staff work.
DESKTOP: dict[str, t.Any] = {
    "viewport": {"width": 1280, "height": 900},
    "is_mobile": False,
    "has_touch": False,
    "device_scale_factor": 1,
}

#: How long a Playwright action, and an ``expect``, may wait before the test fails. Generous
#: for a busy CI machine (the first submitted comment also loads the sentiment word lists),
#: short enough that a broken page fails fast rather than after Playwright's 30 s.
ACTION_TIMEOUT_MS = 15_000
EXPECT_TIMEOUT_MS = 10_000

expect.set_options(timeout=EXPECT_TIMEOUT_MS)


def chromium_path() -> str | None:
    """``LOYALTY_CHROMIUM`` if set, else Debian's Chromium on the PATH."""
    configured = os.environ.get("LOYALTY_CHROMIUM")
    if configured:
        return configured if os.path.exists(configured) else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass(frozen=True)
class LiveServer:
    """The app served on loopback; ``url`` has no trailing slash."""

    url: str

    def __call__(self, path: str) -> str:
        return f"{self.url}{path}"


@pytest.fixture
def live_server(app: Flask) -> t.Iterator[LiveServer]:
    """Serve the test app in a background thread on a free loopback port.

    ``BASE_URL`` is pointed at the server before the test builds any link, so invitation
    emails link to it. The test's own app context stays pushed; every request the server
    handles gets its own context (and so its own database session).
    """
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app.config["BASE_URL"] = url
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(url)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser() -> t.Iterator[Browser]:
    """One headless Chromium for the whole session."""
    executable = chromium_path()
    if executable is None:
        pytest.fail(
            "Chromium not found: run `make browser` (apt-get install chromium) "
            "or set LOYALTY_CHROMIUM to its path",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def new_context(
    browser: Browser, live_server: LiveServer
) -> t.Iterator[t.Callable[..., BrowserContext]]:
    """Make a browser context (a phone by default, relative URLs on the live server);
    every context made is closed after the test, before the server stops."""
    contexts: list[BrowserContext] = []

    def make(**options: t.Any) -> BrowserContext:
        context = browser.new_context(**{**PHONE, "base_url": live_server.url, **options})
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_context: t.Callable[..., BrowserContext]) -> Page:
    """A page in a fresh phone-sized context with JavaScript on."""
    return new_context().new_page()
