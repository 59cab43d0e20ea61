"""Export and erasure of one shopper, verified by searching every table and index afterwards."""

from __future__ import annotations

import io
import json
import logging
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest

from bot.logs import JsonFormatter
from bot.messages import InboundMessage
from bot.privacy import TABLES, erase_customer, existing_tables, export_customer, find_customer, held_records
from bot.runtime import open_runtime
from bot.settings import Settings
from tests.support.traces import file_traces, table_traces, weaviate_traces

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # a Friday, 13:00 in Madrid
WEAVIATE_URL = os.environ.get("WEAVIATE_URL")  # a Weaviate on a loopback address (tests may not leave the machine)


SOLD_OUT = "RUN-012-42-WHT"  # demo catalog: the Carbon Edge Marathon Racer, sold out in size 42
WEB_ID, TELEGRAM_ID = "lucia-web-7731", "777001155"
MESSAGE_TEXT = "my cat Biscuit chewed my old laces"  # something only this shopper ever wrote


def message(channel: str, sender: str, text: str, n: int, *, tap: str | None = None) -> InboundMessage:
    return InboundMessage(channel=channel, external_id=f"{channel}-{n}", sender_id=sender, chat_id=sender, text=text or (tap or ""),
                          timestamp=NOW, button_payload=tap)


@contextmanager
def json_log_lines() -> Iterator[io.StringIO]:
    """What shopkeeper logs meanwhile, as production writes it (JSON, INFO, personal data redacted)."""
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.setFormatter(JsonFormatter(redact_personal_data=True))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield sink
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def _customer_with_history(settings: Settings) -> dict[str, str]:
    """A demo customer (with orders) who used the web chat and Telegram: two identities, two conversations,
    consents granted and revoked, a pending reminder, an active back-in-stock alert, outbox rows, an escalation
    with a staff note."""
    demo = json.loads((Path(__file__).resolve().parents[1] / "kb" / "demo" / "customers.json").read_text())[0]
    async with open_runtime(settings, clock=lambda: NOW) as runtime:
        store, engine = runtime.store, runtime.engine
        await store.link_identity("web", WEB_ID, demo["id"], verified=True)
        await store.link_identity("telegram", TELEGRAM_ID, demo["id"], verified=True)
        await engine.handle(message("web", WEB_ID, "do you have wool socks?", 1))
        await engine.handle(message("web", WEB_ID, f"my email is {demo['email']}, where is my order?", 2))
        await engine.handle(message("web", WEB_ID, MESSAGE_TEXT + ", do you sell laces?", 3))
        await engine.handle(message("web", WEB_ID, "remind me tomorrow at 10am about socks", 4))
        await engine.handle(message("web", WEB_ID, "STOP", 5))  # revokes the web consent, cancels that reminder
        telegram = partial(engine.handle, via_outbox=True)
        await telegram(message("telegram", TELEGRAM_ID, "remind me on Monday at 6pm about the trail shoes", 6))
        await telegram(message("telegram", TELEGRAM_ID, "", 7, tap=f"/notify {SOLD_OUT}"))
        await telegram(message("telegram", TELEGRAM_ID, "yes", 8))
        await telegram(message("telegram", TELEGRAM_ID, "I want to talk to a person", 9))
        conversation = await store.conversation_for(message("telegram", TELEGRAM_ID, "", 10))
        async with store.transaction() as db:
            await db.execute(
                "INSERT INTO staff_notes (conversation_id, text, created_at) VALUES (?, ?, ?)",
                (conversation.id, f"called {demo['name']} back", NOW.isoformat()),
            )
    return {"id": demo["id"], "email": demo["email"], "phone": demo["phone"], "name": demo["name"],
            "web": WEB_ID, "telegram": TELEGRAM_ID}


def _needles(who: dict[str, str]) -> list[str]:
    return [who["id"], who["email"], who["name"], who["phone"], who["phone"].lstrip("+"), who["web"], who["telegram"], MESSAGE_TEXT]


def _traces(database: Path, needles: list[str]) -> list[str]:
    return table_traces(database, needles)


async def test_every_table_is_classified_for_privacy(settings: Settings) -> None:
    async with open_runtime(settings) as runtime:
        unclassified = await existing_tables(runtime.store) - set(TABLES)
    assert unclassified == set(), f"classify these tables in bot/privacy.py: {unclassified}"


async def test_a_newly_classified_table_is_exported_and_erased_first(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """A later migration only classifies its table in TABLES: export, counts and erasure (children first) follow."""
    async with open_runtime(settings, clock=lambda: NOW) as runtime:
        store = runtime.store
        async with store.transaction() as db:
            # no ON DELETE CASCADE: deleting the customer first would fail on the foreign key
            await db.execute(
                "CREATE TABLE fit_notes (id INTEGER PRIMARY KEY, customer_id TEXT NOT NULL REFERENCES customers(id), text TEXT)"
            )
            await db.execute("INSERT INTO fit_notes (customer_id, text) VALUES ('cus_003', 'narrow feet, wool allergy')")
        monkeypatch.setitem(TABLES, "fit_notes", "customer_id = ?")
        assert (await held_records(store, "cus_003"))["fit_notes"] == 1
        assert (await export_customer(store, "cus_003"))["data"]["fit_notes"][0]["text"] == "narrow feet, wool allergy"
        report = await erase_customer(store, "cus_003")
        assert report.rows_deleted["fit_notes"] == 1 and report.rows_deleted["customers"] == 1
        async with store.db.execute("SELECT COUNT(*) FROM fit_notes") as cur:
            assert (await cur.fetchone())[0] == 0  # type: ignore[index]


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
    assert {(c["channel"], c["purpose"], c["status"]) for c in data["consents"]} == {
        ("web", "reminders", "revoked"), ("telegram", "reminders", "granted"), ("telegram", "back_in_stock", "granted"),
    }
    assert {(f["channel"], f["status"]) for f in data["followups"]} == {("web", "cancelled"), ("telegram", "pending")}
    assert [(s["sku"], s["status"]) for s in data["subscriptions"]] == [(SOLD_OUT, "active")]
    json.dumps(document, default=str)  # serialisable as delivered


async def test_erasure_leaves_no_trace_in_any_table_or_index(settings: Settings, data_dir: Path) -> None:
    with json_log_lines() as logs:
        who = await _customer_with_history(settings)
        needles = _needles(who)
        database = data_dir / "shopkeeper.db"
        async with open_runtime(settings, clock=lambda: NOW) as runtime:
            store = runtime.store
            held = await held_records(store, who["id"])
            # everything the issue lists is really there before the erasure
            assert held["identities"] == 2 and held["conversations"] == 2 and held["orders"] > 0
            assert held["outbox"] > 0 and held["subscriptions"] == 1 and held["escalations"] == 1
            async with store.db.execute("SELECT channel, status FROM consents WHERE customer_id = ? ORDER BY id", (who["id"],)) as cur:
                consents = [tuple(row) for row in await cur.fetchall()]
            assert ("web", "revoked") in consents and ("telegram", "granted") in consents
            async with store.db.execute("SELECT COUNT(*) FROM followups WHERE customer_id = ? AND status = 'pending'", (who["id"],)) as cur:
                assert (await cur.fetchone())[0] == 1  # type: ignore[index]
            assert set(needles) == {n.split(": ", 1)[1] for n in _traces(database, needles)}  # the search sees each one
            others = await store.count("customers") - 1

            report = await erase_customer(store, who["id"], actor="cli")
            assert report.consent_withdrawals_kept == len(consents)
            assert await store.count("customers") == others  # everyone else is still there

    # every table (from sqlite_master, so tables added later are searched too), every text column
    assert _traces(database, needles) == []
    # ...and the files themselves: deleted rows are zeroed, the write-ahead log emptied
    assert file_traces(database, needles) == []
    # the embedded knowledge-base index holds catalog and policy text only
    assert _traces(data_dir / "kb.db", needles) == [] and file_traces(data_dir / "kb.db", needles) == []
    # what stays is the minimal, pseudonymous proof that consent was withdrawn
    with sqlite3.connect(database) as db:
        db.row_factory = sqlite3.Row
        kept = [dict(row) for row in db.execute("SELECT * FROM consents WHERE customer_id = ?", (report.customer_hash,))]
        audit = [dict(row) for row in db.execute("SELECT * FROM audit_log WHERE action = 'customer_erased'")]
    assert len(kept) == len(consents)
    for row in kept:
        assert row["status"] == "revoked" and row["revoked_at"]
        assert row["evidence_text"] is None and row["evidence_message_id"] is None
        assert row["revoked_text"] is None and row["revoked_message_id"] is None
    assert [(a["actor"], a["target"]) for a in audit] == [("cli", report.customer_hash)]
    # logs we control never held the identifiers in the first place (hashed at write time)
    lines = logs.getvalue().splitlines()
    assert lines and all(json.loads(line)["msg"] for line in lines)
    assert [line for line in lines if any(needle.lower() in line.lower() for needle in needles)] == []


@pytest.mark.skipif(not WEAVIATE_URL, reason="WEAVIATE_URL not set: no Weaviate server to search")
async def test_erasure_leaves_no_trace_in_weaviate(data_dir: Path) -> None:
    assert WEAVIATE_URL is not None
    tenant = f"erasure-{uuid.uuid4().hex[:12]}"
    settings = Settings(data_dir=data_dir, weaviate_url=WEAVIATE_URL, weaviate_tenant=tenant, _env_file=None)  # type: ignore[call-arg]
    try:
        who = await _customer_with_history(settings)
        async with open_runtime(settings, clock=lambda: NOW) as runtime:
            await erase_customer(runtime.store, who["id"])
        assert await weaviate_traces(WEAVIATE_URL, _needles(who), api_key=os.environ.get("WEAVIATE_API_KEY")) == []
        assert _traces(data_dir / "shopkeeper.db", _needles(who)) == []
    finally:
        from kb.weaviate_index import WeaviateIndex

        async with WeaviateIndex(WEAVIATE_URL, api_key=os.environ.get("WEAVIATE_API_KEY"), tenant=tenant) as index:
            await index.drop_tenant(recreate=False)


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
