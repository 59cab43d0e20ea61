"""The web chat API driven through the real app, on a real SQLite file."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bot.app import create_app
from bot.settings import Settings


def chat(client: TestClient, text: str, user: str = "shopper-1", **extra: object) -> dict:
    response = client.post("/api/chat", json={"user_id": user, "text": text, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def table_counts(data_dir: Path) -> dict[str, int]:
    with sqlite3.connect(data_dir / "shopkeeper.db") as db:
        return {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("inbox", "messages", "conversations")}  # noqa: S608


def test_running_shoes_under_100_get_product_cards_from_the_catalog(client: TestClient) -> None:
    body = chat(client, "do you have running shoes under 100?")
    products = [p for reply in body["replies"] for p in reply["products"]]
    assert 1 <= len(products) <= 3
    for product in products:
        assert Decimal(product["price"]) <= 100
        assert product["currency"] == "EUR"
        assert product["url"].startswith("https://alderandfinch.example/products/")
        assert product["price_text"]  # formatted in the shopper's locale
    assert any("shoe" in p["title"].lower() or "runner" in p["title"].lower() for p in products)
    sources = [s["url"] for reply in body["replies"] for s in reply["sources"]]
    assert {p["url"] for p in products} <= set(sources)


def test_prices_in_cards_match_the_catalog(client: TestClient, data_dir: Path) -> None:
    body = chat(client, "wool hiking socks")
    products = [p for reply in body["replies"] for p in reply["products"]]
    assert products
    with sqlite3.connect(data_dir / "kb.db") as db:
        for product in products:
            row = db.execute("SELECT price FROM variants WHERE sku = ?", (product["sku"],)).fetchone()
            assert row is not None, product["sku"]
            assert Decimal(product["price"]) == Decimal(str(row[0])).quantize(Decimal(product["price"]))


def test_first_reply_says_it_is_an_automated_assistant(client: TestClient) -> None:
    body = chat(client, "hello")
    assert "automated" in body["replies"][0]["text"].lower()
    assert body["state"] == "bot"


def test_policy_question_quotes_the_source_page(client: TestClient) -> None:
    body = chat(client, "How many days do I have to return an item?")
    reply = body["replies"][0]
    assert reply["sources"], reply
    assert "/pages/returns" in reply["sources"][0]["url"]
    assert "30" in reply["text"]


def test_nothing_matching_gets_a_clarifying_question_not_an_invented_product(client: TestClient) -> None:
    body = chat(client, "do you sell car tyres?")
    reply = body["replies"][0]
    assert reply["products"] == []
    assert "?" in reply["text"]


def test_asking_for_a_person_hands_over_and_the_bot_goes_silent(client: TestClient) -> None:
    chat(client, "hi", user="u-human")
    body = chat(client, "I want to talk to a person", user="u-human")
    assert body["state"] == "pending_human"
    assert "team" in body["replies"][0]["text"].lower()
    later = chat(client, "hello? anyone?", user="u-human")
    assert later["replies"] == []
    assert later["state"] == "pending_human"


def test_conversation_survives_an_app_restart(settings: Settings) -> None:
    with TestClient(create_app(settings, start_scheduler=False)) as first:
        before = chat(first, "do you have running shoes under 100?", user="u-restart")
    with TestClient(create_app(settings, start_scheduler=False)) as second:
        history = second.get("/api/chat/u-restart/messages").json()["messages"]
        after = chat(second, "thanks", user="u-restart")
    assert after["conversation_id"] == before["conversation_id"]
    assert [m["author"] for m in history][:2] == ["shopper", "bot"]
    assert history[0]["text"] == "do you have running shoes under 100?"
    assert history[1]["reply"]["products"]


def test_budget_declared_earlier_still_applies_after_restart(settings: Settings) -> None:
    with TestClient(create_app(settings, start_scheduler=False)) as first:
        chat(first, "I'm looking for running shoes under 90", user="u-budget")
    with TestClient(create_app(settings, start_scheduler=False)) as second:
        body = chat(second, "any in blue?", user="u-budget")
    products = [p for reply in body["replies"] for p in reply["products"]]
    assert all(Decimal(p["price"]) <= 90 for p in products)


def test_polling_returns_only_later_messages(client: TestClient) -> None:
    first = chat(client, "hi", user="u-poll")
    chat(client, "wool socks", user="u-poll")
    later = client.get("/api/chat/u-poll/messages", params={"after": first["last_message_id"]}).json()["messages"]
    assert [m["author"] for m in later] == ["shopper", "bot"]
    assert all(m["id"] > first["last_message_id"] for m in later)


def test_a_retried_message_id_is_answered_once(client: TestClient, data_dir: Path) -> None:
    first = chat(client, "wool socks", user="u-retry", message_id="m-1")
    counts = table_counts(data_dir)
    again = chat(client, "wool socks", user="u-retry", message_id="m-1")
    assert again["replies"] == first["replies"]
    assert table_counts(data_dir) == counts


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ({"text": "hi"}, "user_id: required"),
        ({"user_id": "u"}, "text: required"),
        ({"user_id": "u", "text": ""}, "text"),
        ({"user_id": "u", "text": "   "}, "text: must not be empty"),
        ({"user_id": "u", "text": "x" * 4001}, "at most 4000 characters"),
        ({"user_id": 42, "text": "hi"}, "user_id"),
        ({"user_id": "u", "text": ["hi"]}, "text"),
        ({"user_id": "u", "text": "hi", "colour": "red"}, "colour"),
        ({"user_id": "", "text": "hi"}, "user_id"),
    ],
)
def test_bad_input_is_rejected_with_a_message_and_nothing_is_stored(
    client: TestClient, data_dir: Path, payload: dict, problem: str
) -> None:
    before = table_counts(data_dir)
    response = client.post("/api/chat", json=payload)
    assert response.status_code == 422
    assert problem in response.json()["error"]
    assert table_counts(data_dir) == before


def test_non_json_body_is_rejected(client: TestClient, data_dir: Path) -> None:
    before = table_counts(data_dir)
    response = client.post("/api/chat", content=b"text=hi", headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert "JSON" in response.json()["error"]
    assert table_counts(data_dir) == before


def test_exactly_4000_characters_is_accepted(client: TestClient) -> None:
    body = chat(client, ("socks " * 700)[:4000], user="u-long")
    assert body["replies"]


def test_chat_api_is_documented_in_openapi(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "/api/chat" in schema["paths"]
    assert "/api/chat/{user_id}/messages" in schema["paths"]
    request_schema = schema["components"]["schemas"]["ChatRequest"]
    assert set(request_schema["required"]) == {"user_id", "text"}


def test_chat_page_and_health(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "Alder &amp; Finch" in page.text
    assert client.get("/healthz").json() == {"status": "ok"}


def test_two_unanswered_turns_in_a_row_hand_the_thread_to_staff(tmp_path: Path) -> None:
    # a store with an empty catalog cannot answer any product question
    empty = Settings(data_dir=tmp_path / "empty", demo=False, _env_file=None)  # type: ignore[call-arg]
    with TestClient(create_app(empty, start_scheduler=False)) as client:
        first = chat(client, "do you sell car tyres?", user="u-lost")
        assert first["state"] == "bot"
        assert first["replies"][0]["products"] == []
        second = chat(client, "what about motorbike helmets?", user="u-lost")
    assert second["state"] == "pending_human"
    assert "team" in second["replies"][0]["text"].lower()


@pytest.mark.parametrize(
    "text",
    [
        "the boots arrived damaged and I want this sorted",
        "mi pedido llegó roto",
        "j'ai eu une réaction allergique après vos biscuits",
        "Ich werde rechtliche Schritte einleiten",
        "vocês são inúteis, estou irritado",
    ],
)
def test_sensitive_or_angry_messages_go_to_a_person(client: TestClient, text: str) -> None:
    body = chat(client, text, user=f"u-{abs(hash(text))}")
    assert body["state"] == "pending_human"
    assert body["replies"][0]["products"] == []


def test_answering_a_numbered_option_with_its_number_taps_it(client: TestClient) -> None:
    greeting = chat(client, "hi", user="u-number")
    titles = [b["title"] for b in greeting["replies"][0]["buttons"]]
    assert titles[1] == "Returns"
    body = chat(client, "2", user="u-number")
    assert "/pages/returns" in body["replies"][0]["sources"][0]["url"]
