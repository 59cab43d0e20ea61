"""Hostile and odd input through the real webhooks, chat API and staff console: nothing breaks, nothing leaks, nothing runs.

Complements what each suite already covers (forged signatures and replays: the
channel contract; hostile web-chat text in the console: test_console; parse
fuzzing: each adapter's hypothesis test) with what crosses them: unicode edge
cases and injection strings arriving over every platform and stored exactly,
platform-supplied names rendered inert in the console, slow and oversized
request bodies, and a database that cannot be written.
"""

from __future__ import annotations

import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from bot.app import create_app
from bot.messages import InboundMessage
from bot.settings import Settings
from bot.staff import StaffUser
from bot.store import Store, storage_unavailable
from tests.channel_cases import ChannelCase, FakePlatform
from tests.channel_cases.messenger import CASE as MESSENGER
from tests.channel_cases.telegram import CASE as TELEGRAM
from tests.channel_cases.telegram import delivery as telegram_delivery
from tests.channel_cases.telegram import text_update
from tests.channel_cases.twilio import CASE as TWILIO
from tests.support.fake_server import serve_in_thread
from tests.support.server import Server, running_server
from tests.test_console import staff, staff_users  # noqa: F401 - the fixture is used by name

PUBLIC_URL = "https://shop.example"
WEBHOOK_CASES: tuple[ChannelCase, ...] = (TELEGRAM, TWILIO, MESSENGER)

# What shoppers really send, and what attackers try
EDGE_TEXTS = {
    "rtl": "هل لديكم جوارب صوفية؟ \u202eشكرا\u202c ושלום",
    "zero_width": "wo\u200bol so\u200dcks\ufeff under 20\u2060",
    "emoji": "👩‍👩‍👧‍👦 gift for my family 🎁🏽 under 50 €",
    "combining": "Wande\u0301rschuhe Gro\u0308ße 42 ñ",
    "long": ("wool socks " * 400)[:4000],
    "sql": "'; DROP TABLE messages;-- \" OR 1=1; SELECT * FROM customers --",
    "html": '<script>alert(1)</script><img src=x onerror="alert(2)"><b>socks</b> & </i>',
}


@pytest.fixture
def platforms() -> Iterator[dict[str, tuple[FakePlatform, str]]]:
    with ExitStack() as stack:
        fakes = {}
        for case in WEBHOOK_CASES:
            fake = case.fake()
            fakes[case.name] = (fake, stack.enter_context(serve_in_thread(fake.app)))
        yield fakes


@pytest.fixture
def server(data_dir: Path, platforms: dict[str, tuple[FakePlatform, str]]) -> Iterator[Server]:
    env = {"SHOPKEEPER_PUBLIC_URL": PUBLIC_URL, "SHOPKEEPER_RATE_LIMIT_PER_SECOND": "1000", "SHOPKEEPER_RATE_LIMIT_BURST": "1000"}
    for case in WEBHOOK_CASES:
        env |= {f"SHOPKEEPER_{k.upper()}": str(v) for k, v in case.settings(platforms[case.name][1]).items()}
    with running_server(data_dir, extra_env=env) as running:
        yield running


def wait_for(condition: Any, timeout: float = 180.0) -> None:
    """Poll a real server process until ``condition`` holds (real waiting, not faked time)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def rows(data_dir: Path, sql: str, *params: object) -> list[Any]:
    with sqlite3.connect(data_dir / "shopkeeper.db") as db:
        return db.execute(sql, params).fetchall()


def settled(data_dir: Path) -> bool:
    open_turns = rows(data_dir, "SELECT COUNT(*) FROM inbox WHERE status = 'accepted'")[0][0]
    open_sends = rows(data_dir, "SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'sending')")[0][0]
    return bool(open_turns == 0 and open_sends == 0)


def turns_done(data_dir: Path) -> bool:
    return bool(rows(data_dir, "SELECT COUNT(*) FROM inbox WHERE status = 'accepted'")[0][0] == 0)


# -- unicode and injection over every channel ----------------------------------------------------


def test_edge_case_and_injection_texts_over_every_channel_are_stored_exactly_and_answered_once(
    server: Server, data_dir: Path, platforms: dict[str, tuple[FakePlatform, str]]
) -> None:
    tables_before = rows(data_dir, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        for case in WEBHOOK_CASES:
            for n, (name, text) in enumerate(EDGE_TEXTS.items()):
                chat = str(4916000000000 + n)
                request = case.text_delivery(public_url=PUBLIC_URL, text=text, chat_id=chat, message_id=f"edge-{case.name}-{name}")
                response = http.post(f"/webhooks/{case.name}", content=request.body, headers=dict(request.headers))
                assert response.status_code == 200, (case.name, name, response.text)
                assert "Traceback" not in response.text
        for name, text in EDGE_TEXTS.items():
            response = http.post("/api/chat", json={"user_id": f"edge-{name}", "text": text})
            assert response.status_code == 200, (name, response.text)
            assert response.json()["replies"], name
    wait_for(lambda: settled(data_dir))

    for channel in ("web", *(case.name for case in WEBHOOK_CASES)):
        stored = [
            text
            for (text,) in rows(
                data_dir,
                "SELECT m.text FROM messages m JOIN conversations c ON c.id = m.conversation_id "
                "WHERE c.channel = ? AND m.direction = 'in' ORDER BY m.id",
                channel,
            )
        ]
        assert sorted(stored) == sorted(EDGE_TEXTS.values()), channel  # byte for byte: nothing stripped, escaped or truncated
    assert rows(data_dir, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name") == tables_before
    # every platform message answered by one turn (a turn may send two messages: an answer, then a yes/no question such
    # as "shall I remember size 42?"); the Telegram fake refuses HTML it cannot parse, so an unescaped echo would fail
    replies_per_turn = rows(
        data_dir,
        "SELECT i.id, COUNT(m.id) FROM inbox i LEFT JOIN messages m ON m.inbox_id = i.id AND m.direction = 'out' "
        "WHERE i.channel != 'web' GROUP BY i.id",
    )
    assert len(replies_per_turn) == 3 * len(EDGE_TEXTS) and all(n >= 1 for _, n in replies_per_turn)
    assert rows(data_dir, "SELECT status, COUNT(*) FROM outbox GROUP BY status") == [("sent", sum(n for _, n in replies_per_turn))]
    assert rows(data_dir, "SELECT COUNT(*) FROM inbox WHERE status = 'done'")[0][0] == 4 * len(EDGE_TEXTS)
    for name, (fake, _url) in platforms.items():
        assert fake.sent, name
        assert all("<script>" not in record.text for record in fake.sent), name


def test_over_4000_characters_from_a_platform_is_answered_politely_not_with_an_error(server: Server, data_dir: Path) -> None:
    request = TELEGRAM.text_delivery(public_url=PUBLIC_URL, text="socks " * 1000, chat_id="4916000000099", message_id="too-long")
    response = httpx.post(server.base_url + "/webhooks/telegram", content=request.body, headers=dict(request.headers), timeout=30)
    assert response.status_code == 200  # acknowledged: the platform must not retry it forever
    wait_for(lambda: settled(data_dir))
    replies = rows(data_dir, "SELECT status FROM outbox WHERE chat_id = '4916000000099'")
    assert replies == [("sent",)]


# -- platform-supplied names in the staff console ----------------------------------------------


def test_hostile_platform_names_and_texts_are_rendered_inert_in_the_console(
    settings: Settings, staff_users: dict[str, StaffUser], data_dir: Path  # noqa: F811
) -> None:
    fake = TELEGRAM.fake()
    with serve_in_thread(fake.app) as api:
        # no https public URL: the console would set Secure cookies the plain-http test client does not send back
        configured = Settings(data_dir=data_dir, _env_file=None, **TELEGRAM.settings(api))  # type: ignore[call-arg]
        with TestClient(create_app(configured, start_scheduler=False)) as client:
            hostile = '<img src=x onerror="alert(3)">'
            for n, text in enumerate(["hi", "I want to talk to a person", EDGE_TEXTS["html"]]):
                update = text_update(text, chat_id=4916000000123, update_id=900 + n)
                update["message"]["from"]["first_name"] = hostile
                update["message"]["from"]["username"] = "x<svg/onload=alert(4)>"
                update["message"]["chat"]["first_name"] = hostile
                request = telegram_delivery(update, public_url=PUBLIC_URL)
                response = client.post("/webhooks/telegram", content=request.body, headers=dict(request.headers))
                assert response.status_code == 200, response.text
                wait_for(lambda: turns_done(data_dir))  # no outbox sender without the scheduler: replies stay queued
            conversation_id = rows(data_dir, "SELECT id FROM conversations WHERE channel = 'telegram'")[0][0]
            assert rows(data_dir, "SELECT state FROM conversations WHERE id = ?", conversation_id) == [("pending_human",)]
            agent = staff(client, "ana")
            for path in ("/staff", "/staff/inbox/partial", f"/staff/threads/{conversation_id}", f"/staff/threads/{conversation_id}/live"):
                page = agent.get(path).text
                assert "<img src=x" not in page and "<svg" not in page and "<script>" not in page, path
            thread = agent.get(f"/staff/threads/{conversation_id}").text
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in thread


# -- slow and oversized bodies --------------------------------------------------------------------


def test_a_slow_client_does_not_hold_up_anyone_else(server: Server, data_dir: Path) -> None:
    host, port = server.base_url.removeprefix("http://").split(":")
    request = TELEGRAM.text_delivery(public_url=PUBLIC_URL, text="wool socks", chat_id="4916000000200", message_id="slow-1")
    head = "".join(f"{k}: {v}\r\n" for k, v in request.headers.items() if k != "content-length")
    warm = httpx.post(server.base_url + "/api/chat", json={"user_id": "warm-up", "text": "wool socks"}, timeout=300)
    assert warm.status_code == 200  # the first turn loads the embedder; what is measured here is concurrency, not that
    with socket.create_connection((host, int(port)), timeout=60) as slow:
        slow.sendall(f"POST /webhooks/telegram HTTP/1.1\r\n{head}content-length: {len(request.body)}\r\n\r\n".encode())
        slow.sendall(request.body[:10])  # and then nothing for a while: a slowloris
        others = [
            httpx.post(server.base_url + "/api/chat", json={"user_id": f"fast-{n}", "text": "wool socks"}, timeout=120) for n in range(3)
        ]
        assert [r.status_code for r in others] == [200, 200, 200]
        slow.sendall(request.body[10:])  # the slow client finishes: its delivery is still accepted
        answer = slow.recv(65536).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 200"), answer[:200]
    wait_for(lambda: settled(data_dir))
    assert rows(data_dir, "SELECT COUNT(*) FROM inbox WHERE channel = 'telegram'")[0][0] == 1


def test_an_abandoned_half_sent_delivery_stores_nothing(server: Server, data_dir: Path) -> None:
    host, port = server.base_url.removeprefix("http://").split(":")
    request = TELEGRAM.text_delivery(public_url=PUBLIC_URL, text="wool socks", chat_id="4916000000201", message_id="gone-1")
    head = "".join(f"{k}: {v}\r\n" for k, v in request.headers.items())
    with socket.create_connection((host, int(port)), timeout=10) as slow:
        slow.sendall(f"POST /webhooks/telegram HTTP/1.1\r\n{head}content-length: {len(request.body)}\r\n\r\n".encode())
        slow.sendall(request.body[:20])
    assert httpx.get(server.base_url + "/healthz", timeout=10).status_code == 200
    assert rows(data_dir, "SELECT COUNT(*) FROM inbox")[0][0] == 0


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_oversized_webhook_bodies_are_refused_and_nothing_is_stored(server: Server, data_dir: Path, declared: bool) -> None:
    update = text_update("x" * 1_100_000, chat_id=4916000000300, update_id=5)
    request = telegram_delivery(update, public_url=PUBLIC_URL)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(request.body), 65536):
            yield request.body[start : start + 65536]

    body: Any = request.body if declared else chunks()
    response = httpx.post(server.base_url + "/webhooks/telegram", content=body, headers=dict(request.headers), timeout=30)
    assert response.status_code == 413
    assert "larger than" in response.json()["error"] and "Traceback" not in response.text
    assert rows(data_dir, "SELECT COUNT(*) FROM inbox")[0][0] == 0


# -- a database that cannot be written ------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "on", "off"),
    [
        ("disk full", "PRAGMA max_page_count = {pages}", "PRAGMA max_page_count = 1073741823"),
        ("read-only", "PRAGMA query_only = ON", "PRAGMA query_only = OFF"),
    ],
)
def test_a_database_that_cannot_be_written_answers_503_clearly_and_recovers(settings: Settings, fault: str, on: str, off: str) -> None:
    unlimited = settings.model_copy(update={"rate_limit_per_second": 10_000, "rate_limit_burst": 10_000})
    with TestClient(create_app(unlimited, start_scheduler=False)) as client:
        store = client.app.state.runtime.store  # type: ignore[attr-defined]

        async def pragma(sql: str) -> Any:
            async with store.db.execute(sql) as cur:
                return await cur.fetchone()

        assert client.post("/api/chat", json={"user_id": "full-1", "text": "wool socks"}).status_code == 200
        pages = client.portal.call(pragma, "PRAGMA page_count")[0]  # type: ignore[union-attr]
        client.portal.call(pragma, on.format(pages=pages))  # type: ignore[union-attr]
        answers = [
            client.post("/api/chat", json={"user_id": f"full-{n % 3}", "text": "wool socks " * 300, "message_id": f"m-{n}"})
            for n in range(40)  # enough to use up the pages the file had free
        ]
        refused = [a for a in answers if a.status_code != 200]
        assert refused, f"{fault}: every write still succeeded"
        for answer in refused:
            assert answer.status_code == 503, answer.text
            assert "cannot be written" in answer.json()["error"] and "Traceback" not in answer.text
            assert answer.headers["retry-after"]
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["database"].startswith("error")

        client.portal.call(pragma, off)  # type: ignore[union-attr]
        retried = client.post("/api/chat", json={"user_id": "full-1", "text": "wool socks", "message_id": "m-39"})
        assert retried.status_code == 200 and retried.json()["replies"]  # recovered by itself, no restart
        assert client.get("/readyz").status_code == 200
        assert client.portal.call(pragma, "PRAGMA integrity_check")[0] == "ok"  # type: ignore[union-attr]


async def test_a_full_disk_is_reported_as_such_and_the_next_transaction_starts_cleanly(tmp_path: Path) -> None:
    async with Store(tmp_path / "shopkeeper.db") as store:
        async with store.db.execute("PRAGMA page_count") as cur:
            pages = (await cur.fetchone())[0]  # type: ignore[index]
        await store.db.execute(f"PRAGMA max_page_count = {pages}")
        failure: BaseException | None = None
        for n in range(200):
            inbound = InboundMessage("web", f"x{n}", "u", "u", "wool socks " * 100, datetime.now(UTC))
            try:
                await store.accept(inbound)
            except sqlite3.OperationalError as exc:
                failure = exc
                break
        assert failure is not None
        assert "full" in str(failure) and storage_unavailable(failure)  # not "cannot rollback - no transaction is active"
        assert not store.db.in_transaction
        await store.db.execute("PRAGMA max_page_count = 1073741823")
        accepted = await store.accept(InboundMessage("web", "after", "u", "u", "hi", datetime.now(UTC)))
        assert accepted.is_new


def test_store_error_classification_is_only_for_storage_conditions() -> None:
    assert not storage_unavailable(sqlite3.OperationalError("no such table: x"))
    assert not storage_unavailable(ValueError("database or disk is full"))
