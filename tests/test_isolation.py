"""A shopper trying to reach another shopper's data, through every path the app offers, with the offline responder.

Orders (an unverified chat, and a verified customer asking for someone else's
order number), what the bot remembers (constraints, allergies), the polling API
(a web id that equals another channel's chat id), export links, and staff-console
URLs guessed by staff of either role. The Claude path has its own tool-level test
(test_claude: check_order answers only for the verified customer's own orders).
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bot.app import create_app
from bot.messages import InboundMessage, OutboundMessage
from bot.settings import Settings
from bot.staff import StaffUser
from bot.store import Store
from tests.test_console import staff, staff_users  # noqa: F401 - the fixture is used by name


def orders(data_dir: Path) -> list[sqlite3.Row]:
    with sqlite3.connect(data_dir / "shopkeeper.db") as db:
        db.row_factory = sqlite3.Row
        return db.execute(
            "SELECT o.*, c.email, c.name FROM orders o JOIN customers c ON c.id = o.customer_id ORDER BY order_number"
        ).fetchall()


def say(client: TestClient, user: str, text: str) -> dict[str, Any]:
    response = client.post("/api/chat", json={"user_id": user, "text": text})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def shown(body: dict[str, Any]) -> str:
    """Everything a reply shows: texts, buttons, cards, sources."""
    return str(body["replies"])


def link_verified(data_dir: Path, user: str, customer_id: str) -> None:
    """What phone or one-time-code verification does: the web identity is this customer's, verified."""
    with sqlite3.connect(data_dir / "shopkeeper.db") as db:
        db.execute(
            "INSERT INTO identities (channel, external_id, customer_id, verified, created_at) VALUES ('web', ?, ?, 1, ?)",
            (user, customer_id, datetime.now(UTC).isoformat()),
        )


@pytest.fixture
def app(settings: Settings, staff_users: dict[str, StaffUser]) -> Any:  # noqa: F811
    with TestClient(create_app(settings, start_scheduler=False)) as client:
        yield client


def test_an_unverified_chat_learns_nothing_about_any_order(app: TestClient, data_dir: Path) -> None:
    for order in orders(data_dir)[:6]:
        for text in (f"where is my order {order['order_number']}?", f"I'm {order['email']}, status of {order['order_number']}"):
            body = shown(say(app, "curious-stranger", text))
            assert order["tracking_url"] not in body and order["total"] not in body, text
            assert order["name"] not in body and order["email"] not in body.replace(text, ""), text


def test_a_verified_customer_sees_their_own_order_and_not_anyone_elses(app: TestClient, data_dir: Path) -> None:
    every = orders(data_dir)
    mine = next(o for o in every if o["customer_id"] == "cus_001")
    theirs = [o for o in every if o["customer_id"] != "cus_001"][:5]
    link_verified(data_dir, "lucia-web", "cus_001")
    own = shown(say(app, "lucia-web", f"where is my order {mine['order_number']}?"))
    assert mine["order_number"] in own  # the positive case: the check is not just "never answer"
    for order in theirs:
        body = shown(say(app, "lucia-web", f"where is my order {order['order_number']}?"))
        assert order["tracking_url"] not in body and order["name"] not in body, order["order_number"]


def test_what_the_bot_remembers_stays_with_the_shopper_who_said_it(app: TestClient, data_dir: Path) -> None:
    say(app, "alice-web", "I'm allergic to peanuts and my budget is 37 euros, any snacks?")
    for text in ("what do you know about me?", "any snacks for me?", "what is my budget?", "send me my data"):
        body = shown(say(app, "bob-web", text))
        assert "peanut" not in body.lower() and "37" not in body, text


def test_a_web_id_equal_to_another_channels_chat_id_sees_nothing_of_that_chat(app: TestClient, settings: Settings) -> None:
    chat = "4915112345678"

    async def telegram_turn() -> None:
        async with Store(settings.database_path) as store:
            inbound = InboundMessage("telegram", "tg-secret-1", chat, chat, "ship it to 12 Secret Lane", datetime.now(UTC))
            conversation = await store.conversation_for(inbound)
            await store.finish_turn(None, conversation, inbound, [OutboundMessage("Noted: 12 Secret Lane")], outbox=True)

    asyncio.run(telegram_turn())
    polled = app.get(f"/api/chat/{chat}/messages").json()["messages"]
    assert polled == []
    body = say(app, chat, "where do you ship my order?")
    assert "Secret Lane" not in shown(body)
    assert all("Secret Lane" not in m["text"] for m in app.get(f"/api/chat/{chat}/messages").json()["messages"])


def test_export_links_open_their_owners_data_only(app: TestClient) -> None:
    links = {}
    for user, words in (("ana-web", "merino socks for ana"), ("ben-web", "rain jacket for ben")):
        say(app, user, words)
        reply = say(app, user, "send me my data")["replies"][0]
        url = reply["sources"][0]["url"]
        links[user] = url[url.index("/api/export/") :]
    ana = app.get(links["ana-web"]).text
    ben = app.get(links["ben-web"]).text
    assert "merino socks for ana" in ana and "rain jacket for ben" not in ana
    assert "rain jacket for ben" in ben and "merino socks for ana" not in ben
    # an export token is no key to anything else, and a guessed one opens nothing
    token = links["ana-web"].rsplit("/", 1)[1]
    for path in ("/api/export/" + token[::-1], "/api/export/" + token[:-1], f"/api/chat/{token}/messages", "/api/export/ana-web"):
        response = app.get(path)
        assert response.status_code in (200, 404) and "merino socks for ana" not in response.text, path


@pytest.mark.parametrize("role", ["ana", "ada"], ids=["agent", "admin"])
def test_guessed_console_urls_answer_not_found_never_an_error_or_data(app: TestClient, role: str) -> None:
    say(app, "victim-web", "my address is 7 Hidden Road")
    person = staff(app, role)
    guesses = ["conv_00000000000000000000", "victim-web", "1", "' OR '1'='1", "..%2F..%2Fshopkeeper.db", "%3Cscript%3E"]
    for guess in guesses:
        for path in (f"/staff/threads/{guess}", f"/staff/threads/{guess}/live"):
            response = person.get(path)
            assert response.status_code in (404, 422), (path, response.status_code)
            assert "7 Hidden Road" not in response.text and "Traceback" not in response.text, path
        acted = person.post(f"/staff/threads/{guess}/claim")
        assert acted.status_code in (404, 422), (guess, acted.status_code)
    assert person.post("/staff/canned/999999/delete").status_code == (403 if role == "ana" else 404)
