"""Export and erasure of one shopper, verified by searching every table and index afterwards."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from bot.messages import InboundMessage
from bot.privacy import TABLES, erase_customer, existing_tables, export_customer, find_customer
from bot.runtime import open_runtime
from bot.settings import Settings

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def message(channel: str, sender: str, text: str, n: int) -> InboundMessage:
    return InboundMessage(channel=channel, external_id=f"{channel}-{n}", sender_id=sender, chat_id=sender, text=text, timestamp=NOW)


async def _customer_with_history(settings: Settings) -> dict[str, str]:
    demo = json.loads((Path(__file__).resolve().parents[1] / "kb" / "demo" / "customers.json").read_text())[0]
    async with open_runtime(settings, clock=lambda: NOW) as runtime:
        store, engine = runtime.store, runtime.engine
        await store.link_identity("web", "ana-web-7731", demo["id"], verified=True)
        await store.link_identity("telegram", "7770011", demo["id"], verified=True)
        await engine.handle(message("web", "ana-web-7731", "do you have wool socks?", 1))
        await engine.handle(message("web", "ana-web-7731", f"my email is {demo['email']}, where is my order?", 2))
        await engine.handle(message("telegram", "7770011", "I want to talk to a person", 3), via_outbox=True)
        conversation = await store.conversation_for(message("telegram", "7770011", "", 4))
        async with store.transaction() as db:
            await db.execute(
                "INSERT INTO staff_notes (conversation_id, text, created_at) VALUES (?, ?, ?)",
                (conversation.id, f"called {demo['name']} back", NOW.isoformat()),
            )
    return {"id": demo["id"], "email": demo["email"], "phone": demo["phone"], "name": demo["name"],
            "web": "ana-web-7731", "telegram": "7770011"}


def _traces(database: Path, needles: list[str]) -> list[str]:
    found = []
    with sqlite3.connect(database) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in db.execute(f"SELECT * FROM {table}"):  # noqa: S608 - names from sqlite_master
                text = " ".join(str(value) for value in row if value is not None)
                found.extend(f"{table}: {needle}" for needle in needles if needle in text)
    return found


async def test_every_table_is_classified_for_privacy(settings: Settings) -> None:
    async with open_runtime(settings) as runtime:
        unclassified = await existing_tables(runtime.store) - set(TABLES)
    assert unclassified == set(), f"classify these tables in bot/privacy.py: {unclassified}"


async def test_export_holds_everything_about_the_person(settings: Settings) -> None:
    who = await _customer_with_history(settings)
    async with open_runtime(settings) as runtime:
        assert await find_customer(runtime.store, who["email"].upper()) == who["id"]
        assert await find_customer(runtime.store, who["telegram"]) == who["id"]
        document = await export_customer(runtime.store, who["id"])
    data = document["data"]
    assert {i["channel"] for i in data["identities"]} == {"web", "telegram"}
    assert len(data["conversations"]) == 2
    assert any("wool socks" in m["text"] for m in data["messages"])
    assert data["orders"] and all(o["customer_id"] == who["id"] for o in data["orders"])
    assert data["escalations"] and data["staff_notes"] and data["outbox"]
    json.dumps(document, default=str)  # serialisable as delivered


async def test_erasure_leaves_no_trace_in_any_table_or_index(settings: Settings, data_dir: Path) -> None:
    who = await _customer_with_history(settings)
    phone_digits = who["phone"].replace(" ", "").lstrip("+")
    needles = [who["id"], who["email"], who["name"], phone_digits, who["web"], who["telegram"]]
    assert _traces(data_dir / "shopkeeper.db", needles)  # the search finds them before erasure
    async with open_runtime(settings) as runtime:
        other_orders_before = await runtime.store.count("orders")
        report = await erase_customer(runtime.store, who["id"])
        assert await runtime.store.count("orders") < other_orders_before
    assert sum(report.rows_deleted.values()) > 0
    assert _traces(data_dir / "shopkeeper.db", needles) == []
    assert _traces(data_dir / "kb.db", needles) == []
    with sqlite3.connect(data_dir / "shopkeeper.db") as db:
        assert db.execute("SELECT COUNT(*) FROM customers").fetchone()[0] > 0  # everyone else is still there


def test_cli_export_and_erase(data_dir: Path, tmp_path: Path) -> None:
    env = {**os.environ, "SHOPKEEPER_DATA_DIR": str(data_dir)}
    customers = json.loads((Path(__file__).resolve().parents[1] / "kb" / "demo" / "customers.json").read_text())
    email = customers[1]["email"]
    out = tmp_path / "export.json"
    exported = subprocess.run([sys.executable, "-m", "bot.cli", "customer", "export", email, "--output", str(out)],
                              env=env, capture_output=True, text=True, check=False)
    assert exported.returncode == 0, exported.stderr
    assert json.loads(out.read_text())["data"]["customers"][0]["email"] == email
    refused = subprocess.run([sys.executable, "-m", "bot.cli", "customer", "erase", email],
                             env=env, input="n\n", capture_output=True, text=True, check=False)
    assert refused.returncode == 1
    erased = subprocess.run([sys.executable, "-m", "bot.cli", "customer", "erase", email, "--yes"],
                            env=env, capture_output=True, text=True, check=False)
    assert erased.returncode == 0, erased.stderr
    missing = subprocess.run([sys.executable, "-m", "bot.cli", "customer", "export", email],
                             env=env, capture_output=True, text=True, check=False)
    assert missing.returncode == 2 and "no customer matches" in missing.stderr


def test_shopper_can_get_a_24_hour_export_link_in_chat(settings: Settings) -> None:
    from fastapi.testclient import TestClient

    from bot.app import create_app

    with TestClient(create_app(settings, start_scheduler=False)) as client:
        client.post("/api/chat", json={"user_id": "privacy-1", "text": "wool socks please"})
        reply = client.post("/api/chat", json={"user_id": "privacy-1", "text": "send me my data"}).json()["replies"][0]
        link = reply["sources"][0]["url"]
        assert "/api/export/" in link and "24" in reply["text"]
        download = client.get(link[link.index("/api/export/"):])
        assert download.status_code == 200
        assert "attachment" in download.headers["content-disposition"]
        assert any("wool socks" in m["text"] for m in download.json()["data"]["messages"])
        forged = client.get(link[link.index("/api/export/"):-3] + "AAA")
        assert forged.status_code == 404


def test_forget_me_is_confirmed_once_then_erases(settings: Settings, data_dir: Path) -> None:
    from fastapi.testclient import TestClient

    from bot.app import create_app

    with TestClient(create_app(settings, start_scheduler=False)) as client:
        client.post("/api/chat", json={"user_id": "forget-7", "text": "wool socks"})
        ask = client.post("/api/chat", json={"user_id": "forget-7", "text": "forget me"}).json()["replies"][0]
        assert [b["payload"] for b in ask["buttons"]] == ["/forget yes", "/forget no"]
        kept = client.post("/api/chat", json={"user_id": "forget-7", "text": "no"}).json()["replies"][0]
        assert "haven't deleted" in kept["text"]
        client.post("/api/chat", json={"user_id": "forget-7", "text": "forget me"})
        done = client.post("/api/chat", json={"user_id": "forget-7", "text": "yes"}).json()["replies"][0]
        assert "deleted" in done["text"]
        assert client.get("/api/chat/forget-7/messages").json()["messages"] == []
    assert _traces(data_dir / "shopkeeper.db", ["forget-7"]) == []


def test_export_tokens_expire_and_cannot_be_forged() -> None:
    from datetime import timedelta

    from bot.privacy import export_token, read_export_token

    secret = b"k" * 32
    token = export_token("cus_1", NOW + timedelta(hours=24), secret)
    assert read_export_token(token, secret, NOW) == "cus_1"
    assert read_export_token(token, secret, NOW + timedelta(hours=25)) is None
    assert read_export_token(token, b"x" * 32, NOW) is None
    assert read_export_token("garbage", secret, NOW) is None
