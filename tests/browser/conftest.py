"""Browser fixtures: one ``eco2 up``-style stack and one Chromium for the whole browser suite,
a fresh browser context (Korean locale) per test, and screenshots under tests/artifacts/.

Debian's Chromium is driven by Playwright's bundled driver (``executable_path``); nothing is
ever downloaded. Without /usr/bin/chromium the tests are skipped with the reason (the CI
script installs it).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import tests.conftest as suite
from tests.browser.stack import Stack

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "browser"
# The flags this machine needs: no sandbox as root, and no background traffic to Google's
# hosts (the network is closed; those connections would only fail, many at a time).
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

if not CHROMIUM.exists():
    pytest.skip(
        "browser tests need Debian's chromium at /usr/bin/chromium "
        "(apt-get install -y chromium fonts-noto-cjk; .ci/run does this)",
        allow_module_level=True,
    )

from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright  # noqa: E402

Shot = Callable[[str], Path]


# One stack for the browser package, stopped when its last test is done (not at the end of
# the whole session: the rest of `make test` should not share the machine with it).
@pytest.fixture(scope="package")
def stack() -> Iterator[Stack]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="eco2-browser-"))
    running = Stack(suite.REDIS_URL, suite.DATABASE_URL, folder)  # resolved in pytest_configure
    try:
        running.start()
        yield running
    finally:
        running.stop()
        shutil.copy(running.log_path, ARTIFACTS / "stack.log")
        shutil.rmtree(folder, ignore_errors=True)


# Module scope, not session: while Playwright's sync API is started, its event loop counts as
# running in this thread, and every asyncio test after it would fail ("Runner.run() cannot be
# called from a running event loop"). Stopping it at the end of each module clears that.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture
def context(stack: Stack, browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(
        base_url=stack.base_url, locale="ko-KR", viewport={"width": 1100, "height": 820},
    )
    ctx.set_default_timeout(20_000)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def shot(page: Page, request: pytest.FixtureRequest) -> Shot:
    """``shot("step")`` saves tests/artifacts/browser/<test>-<n>-<step>.png."""
    test = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    counter = [0]

    def take(step: str, *, full_page: bool = False) -> Path:
        counter[0] += 1
        path = ARTIFACTS / f"{test}-{counter[0]:02d}-{step}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return take


def sign_in(page: Page, nickname: str) -> None:
    """Through the dev provider, as a person would: the button, the nickname form, back home."""
    page.goto("/")
    page.get_by_test_id("signin-button").click()
    page.wait_for_url("**/api/v1/auth/dev/authorize**")
    page.fill("#nickname", nickname)
    page.click("button[type=submit]")
    page.wait_for_url("**/#/home")
    page.get_by_test_id("who").filter(has_text=nickname).wait_for()
