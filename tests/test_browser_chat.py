"""The web chat page in a real browser (Debian's Chromium driven by Playwright)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import running_server

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.browser


@pytest.fixture
def browser_page() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium is required in CI (.ci/run installs Debian's chromium)")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 420, "height": 860})
        try:
            yield page
        finally:
            browser.close()


def test_shopper_asks_for_running_shoes_and_sees_product_cards(browser_page, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import Page, expect

    expect.set_options(timeout=30_000)  # a loaded 2-core CI machine answers slower than Playwright's 5 s default

    page: Page = browser_page
    with running_server(data_dir) as server:
        page.goto(server.base_url + "/")
        expect(page.locator(".msg.bot").first).to_contain_text("automated")  # the greeting
        page.fill("#text", "do you have running shoes under 100?")
        page.click("#send")
        cards = page.locator(".msg.bot").last.locator(".card")
        expect(cards.first).to_be_visible()
        assert 1 <= cards.count() <= 3
        prices = cards.locator(".price").all_inner_texts()
        assert all("€" in price for price in prices)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "web-chat-running-shoes.png"), full_page=True)

        # a quick-reply button sends its payload and gets a sourced policy answer
        page.locator(".msg.bot").first.get_by_role("button", name="Returns").click()
        expect(page.locator(".msg.bot").last.locator(".sources a")).to_have_attribute("href", re.compile(r"^https://alderandfinch\.example/pages/returns"))

        # reloading the page shows the same conversation (kept server-side)
        page.reload()
        expect(page.locator(".card").first).to_be_visible()
