"""Staff takeover end to end: a shopper's web chat and the staff console, two real Chromium pages on a real server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import running_server

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
DOC_IMAGES = ROOT / "docs" / "images"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
EMAIL = "ana@alderandfinch.example"
PASSWORD = "browser test password"
POLL_TIMEOUT = 15_000  # ms: the shopper page polls every 3 s

pytestmark = pytest.mark.browser


@pytest.fixture
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium is required in CI (.ci/run installs Debian's chromium)")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def create_staff(data_dir: Path) -> None:
    """`shopkeeper staff add` on the data dir, the password on stdin (as a deployment script would)."""
    env = {**os.environ, "SHOPKEEPER_DATA_DIR": str(data_dir), "SHOPKEEPER_LOG_LEVEL": "WARNING"}
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "staff", "add", EMAIL, "--role", "admin", "--name", "Ana", "--locale", "en_GB"],
        input=PASSWORD + "\n", env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "created" in done.stdout and PASSWORD not in done.stdout + done.stderr


def screenshot(page: Any, name: str, *, full_page: bool = True) -> None:
    for folder in (ARTIFACTS, DOC_IMAGES):
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / name), full_page=full_page)


def test_staff_takes_over_a_web_chat_live_and_hands_it_back(browser: Any, data_dir: Path) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=30_000)  # a loaded 2-core CI machine answers slower than Playwright's 5 s default

    create_staff(data_dir)
    with running_server(data_dir) as server:
        shopper_context = browser.new_context(viewport={"width": 420, "height": 860})
        staff_context = browser.new_context(viewport={"width": 1280, "height": 900})
        try:
            shopper, console = shopper_context.new_page(), staff_context.new_page()

            # staff signs in; the inbox opens its live event stream
            console.goto(server.base_url + "/staff")
            expect(console).to_have_url(server.base_url + "/staff/login")
            console.fill("#email", EMAIL)
            console.fill("#password", PASSWORD)
            console.click("button[type=submit]")
            expect(console.get_by_role("heading", name="Inbox")).to_be_visible()
            expect(console.locator("body[data-live='open']")).to_have_count(1)
            expect(console.locator("#pending-list .thread")).to_have_count(0)
            console.evaluate("window.__notReloaded = true")

            # the shopper asks for a person in the web chat
            shopper.goto(server.base_url + "/")
            expect(shopper.locator(".msg.bot").first).to_contain_text("automated")
            shopper.fill("#text", "I need to talk to a person about my order")
            shopper.click("#send")
            expect(shopper.locator(".msg.bot").last).to_contain_text("team")

            # ...and the thread appears in the console without a reload (server-sent events)
            thread = console.locator("#pending-list .thread")
            expect(thread).to_have_count(1)
            expect(thread).to_contain_text("Asked for a person")
            expect(thread).to_contain_text("talk to a person about my order")
            assert console.evaluate("window.__notReloaded") is True
            expect(console.locator("#waiting-count")).to_have_text("1")
            screenshot(console, "staff-inbox.png")
            console.set_viewport_size({"width": 390, "height": 844})
            expect(thread).to_be_visible()
            assert console.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            screenshot(console, "staff-phone-inbox.png")
            console.set_viewport_size({"width": 1280, "height": 900})

            # staff claims and replies
            thread.locator("a").click()
            expect(console.locator("#thread-state")).to_have_text("Waiting for staff")
            console.click("#claim")
            expect(console.locator("#thread-state")).to_have_text("With staff")
            thread_url = console.url
            console.fill("#reply-text", "Hi, Ana from Alder & Finch here. Which order is it about?")
            console.click("#send-reply")
            expect(console.locator("#transcript .msg-staff").last).to_contain_text("Which order is it about?")

            # the shopper's page shows the reply (it polls)
            staff_reply = shopper.locator(".msg.staff")
            expect(staff_reply).to_contain_text("Which order is it about?", timeout=POLL_TIMEOUT)
            expect(staff_reply).to_contain_text("Store team")

            # while staff owns the thread the bot does not answer; the console shows the message live
            bot_replies = shopper.locator(".msg.bot").count()
            expect(console.locator("body[data-live='open']")).to_have_count(1)
            shopper.fill("#text", "It's order 1042. Also, do you have running shoes under 100?")
            shopper.click("#send")
            expect(console.locator("#transcript .msg-shopper").last).to_contain_text("order 1042")
            expect(shopper.locator("#status")).to_contain_text("person")
            assert shopper.locator(".msg.bot").count() == bot_replies
            console.fill("#note-text", "Order 1042: shopper asked about a late parcel.")
            console.click("#add-note")
            expect(console.locator("#notes")).to_contain_text("late parcel")
            screenshot(console, "staff-thread.png")

            # staff resolves with a note for the bot; the bot answers the shopper again
            console.fill("#resolve-note", "Parcel 1042 was delayed by the carrier; it arrives Friday.")
            console.click("#resolve")
            expect(console.locator("#thread-state")).to_have_text("With the bot")
            shopper.fill("#text", "do you have running shoes under 100?")
            shopper.click("#send")
            expect(shopper.locator(".msg.bot")).to_have_count(bot_replies + 1)
            expect(shopper.locator(".msg.bot").last.locator(".card").first).to_be_visible()
            ARTIFACTS.mkdir(exist_ok=True)
            shopper.screenshot(path=str(ARTIFACTS / "staff-takeover-shopper.png"), full_page=True)

            # the dashboard counts it; the console works on a phone
            console.goto(server.base_url + "/staff/dashboard")
            expect(console.locator("#kpi-escalations .kpi-value")).to_have_text("1")
            expect(console.locator("#chart-reasons")).to_contain_text("Asked for a person")
            screenshot(console, "staff-dashboard.png")
            console.set_viewport_size({"width": 390, "height": 844})
            console.reload()
            assert console.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            screenshot(console, "staff-phone-dashboard.png")
            console.goto(thread_url)
            expect(console.locator("#transcript .msg-staff")).to_have_count(1)
            assert console.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            screenshot(console, "staff-phone-thread.png")
            console.set_viewport_size({"width": 1280, "height": 900})

            # the shopper asks for their data, then to be forgotten; an admin finds them by their chat id,
            # downloads the export and erases them
            shopper_id = shopper.evaluate("localStorage.getItem('shopkeeper_user')")
            console.goto(server.base_url + "/staff/privacy")
            console.fill("#privacy-q", shopper_id)
            console.click("#privacy-find")
            expect(console.locator("#customer")).to_contain_text(shopper_id)
            expect(console.locator("#held tr[data-table='staff_notes'] td").last).to_have_text("1")
            customer_id = console.locator("#customer-id").inner_text()
            screenshot(console, "staff-privacy.png")
            with console.expect_download() as download:
                console.click("#export")
            assert download.value.suggested_filename.startswith("shopkeeper-export-")
            exported = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
            assert exported["customer_id"] == customer_id
            assert any("order 1042" in m["text"] for m in exported["data"]["messages"])
            console.fill("#erase-confirm", customer_id)
            console.click("#erase")
            expect(console.locator("#erased")).to_contain_text("records deleted")
            console.goto(thread_url)
            expect(console.locator("body")).to_contain_text("no such conversation")
            console.goto(server.base_url + "/staff/privacy")
            console.fill("#privacy-q", shopper_id)
            console.click("#privacy-find")
            expect(console.locator("#privacy-error")).to_contain_text("No customer matches")
        finally:
            # close the pages before the server stops: an open event stream would hold its shutdown
            staff_context.close()
            shopper_context.close()
