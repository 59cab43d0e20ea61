"""The Procfile layout: the web process only accepts, the worker process's feed runs the turns.

Unit level: a runtime built with ``runs_turns=False`` (the web process) leaves an
accepted row in the inbox; :class:`jobs.inbox_feed.InboxFeed` (the worker process)
hands the rows to its turn worker, oldest first, only while it holds the scheduler
lease, never web-chat rows; the recovery job leaves alone what the worker holds.

Process level: a real ``shopkeeper serve --no-scheduler`` and a real ``shopkeeper
worker`` on one data dir; a signed Telegram delivery to the web process is answered
once, by the worker, through the fake Bot API.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from bot.messages import InboundMessage
from bot.runtime import open_runtime
from bot.settings import Settings
from jobs.inbox_feed import InboxFeed
from jobs.inbox_recovery import recover_unfinished
from jobs.lease import SchedulerLease
from tests.channel_cases import telegram
from tests.support.fake_server import serve_in_thread
from tests.support.server import running_server

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
PUBLIC_URL = "https://shop.example"


def telegram_message(external_id: str, chat: str, text: str) -> InboundMessage:
    return InboundMessage(channel="telegram", external_id=external_id, sender_id=chat, chat_id=chat, text=text, timestamp=NOW)


def in_messages(database: Path, chat: str) -> list[str]:
    with sqlite3.connect(database) as db:
        rows = db.execute(
            "SELECT m.text FROM messages m JOIN conversations c ON c.id = m.conversation_id "
            "WHERE c.chat_id = ? AND m.direction = 'in' ORDER BY m.id",
            (chat,),
        )
        return [row[0] for row in rows]


async def test_a_web_process_that_leaves_turns_to_the_worker_only_accepts(settings: Settings) -> None:
    async with open_runtime(settings, clock=lambda: NOW, runs_turns=False) as runtime:
        accepted = await runtime.store.accept(telegram_message("tg-web-1", "701", "wool socks"))
        assert runtime.worker.submit(accepted.inbox_id, telegram_message("tg-web-1", "701", "wool socks")) is False
        await runtime.worker.wait_idle()
        assert await runtime.store.inbox_status(accepted.inbox_id) == "accepted"
        assert await runtime.store.outbox_items("telegram", "701") == []


async def test_the_feed_answers_what_another_process_accepted_in_order_once(settings: Settings) -> None:
    texts = ["wool socks", "actually under 20", "in black?"]
    async with open_runtime(settings, clock=lambda: NOW) as runtime:
        for n, text in enumerate(texts):  # accepted by the web process, which answered 200 and moved on
            await runtime.store.accept(telegram_message(f"tg-feed-{n}", "702", text))
        await runtime.store.accept(telegram_message("tg-feed-other", "703", "running shoes"))
        lease = SchedulerLease(runtime.store, ttl=timedelta(seconds=30))
        assert await lease.acquire()
        feed = InboxFeed(runtime.store, runtime.worker, lease)
        assert await feed.feed_once() == 4
        await runtime.worker.wait_idle()
        assert await feed.feed_once() == 0  # nothing new: nothing handed on twice
        assert await runtime.store.unfinished_inbox() == []
        queued_702 = await runtime.store.outbox_items("telegram", "702")
        queued_703 = await runtime.store.outbox_items("telegram", "703")
    assert in_messages(settings.database_path, "702") == texts  # one chat's turns in arrival order
    assert len(queued_702) >= 3 and len(queued_703) >= 1  # every turn queued its replies for delivery


async def test_without_the_lease_the_feed_takes_nothing(settings: Settings) -> None:
    async with open_runtime(settings, clock=lambda: NOW) as runtime:
        await SchedulerLease(runtime.store, ttl=timedelta(seconds=30), holder="other-host:1:abc").acquire()
        accepted = await runtime.store.accept(telegram_message("tg-nolease", "704", "wool socks"))
        ours = SchedulerLease(runtime.store, ttl=timedelta(seconds=30))
        assert not await ours.acquire()  # another worker holds it, and feeds
        feed = InboxFeed(runtime.store, runtime.worker, ours)
        assert await feed.feed_once() == 0
        assert await runtime.store.inbox_status(accepted.inbox_id) == "accepted"


async def test_web_chat_turns_are_left_to_the_process_answering_them(settings: Settings) -> None:
    web = InboundMessage(channel="web", external_id="web-feed-1", sender_id="u9", chat_id="u9", text="wool socks", timestamp=NOW)
    async with open_runtime(settings, clock=lambda: NOW) as runtime:
        accepted = await runtime.store.accept(web)  # the web process runs this turn inside the HTTP request
        lease = SchedulerLease(runtime.store, ttl=timedelta(seconds=30))
        assert await lease.acquire()
        assert await InboxFeed(runtime.store, runtime.worker, lease).feed_once() == 0
        assert await runtime.store.inbox_status(accepted.inbox_id) == "accepted"


async def test_recovery_leaves_alone_a_turn_the_worker_holds(settings: Settings) -> None:
    inbound = telegram_message("tg-held", "705", "wool socks")
    async with open_runtime(settings, clock=lambda: NOW) as runtime:
        accepted = await runtime.store.accept(inbound)
        runtime.worker.submit(accepted.inbox_id, inbound)  # queued behind a slow turn for longer than the grace period
        assert runtime.worker.holds(accepted.inbox_id)
        skipped = await recover_unfinished(
            runtime.store, runtime.engine, now=NOW, older_than=timedelta(0),
            skip=lambda entry: runtime.worker.holds(entry.inbox_id),
        )
        await runtime.worker.wait_idle()
        assert skipped == 0
        assert not runtime.worker.holds(accepted.inbox_id)
        assert await runtime.store.inbox_status(accepted.inbox_id) == "done"
    assert in_messages(settings.database_path, "705") == ["wool socks"]  # answered once, by the worker


def test_procfile_layout_web_accepts_and_the_worker_answers_once(data_dir: Path) -> None:
    fake = telegram.FakeTelegram()
    with serve_in_thread(fake.app) as platform_url:
        env = {f"SHOPKEEPER_{key.upper()}": str(value) for key, value in telegram.CASE.settings(platform_url).items()}
        env |= {"SHOPKEEPER_PUBLIC_URL": PUBLIC_URL, "SHOPKEEPER_TELEGRAM_WEBHOOK_SECRET": telegram.SECRET}
        with running_server(data_dir, extra_env=env, ready_timeout=240, with_worker=True) as server:
            assert server.worker_pid is not None
            delivery = telegram.CASE.text_delivery(public_url=PUBLIC_URL, text="wool socks", chat_id="706", message_id="9001")
            path = delivery.url.removeprefix(PUBLIC_URL)
            for _ in range(2):  # Telegram retries a delivery it thinks failed: the replay is acknowledged, not re-run
                response = httpx.post(server.base_url + path, headers=delivery.headers, content=delivery.body, timeout=30)
                assert response.status_code == 200, response.text
            deadline = time.monotonic() + 120
            while not any(record.chat_id == "706" for record in fake.sent):
                assert time.monotonic() < deadline, "the worker never answered"
                time.sleep(0.05)  # polling real processes, not faking time
            with sqlite3.connect(data_dir / "shopkeeper.db") as db:
                statuses = [row[0] for row in db.execute("SELECT status FROM inbox WHERE chat_id = '706'")]
                pending = db.execute("SELECT COUNT(*) FROM outbox WHERE chat_id = '706' AND status != 'sent'").fetchone()[0]
            deadline = time.monotonic() + 60
            while pending:
                assert time.monotonic() < deadline, "replies were queued and never sent"
                time.sleep(0.05)
                with sqlite3.connect(data_dir / "shopkeeper.db") as db:
                    pending = db.execute("SELECT COUNT(*) FROM outbox WHERE chat_id = '706' AND status != 'sent'").fetchone()[0]
            with sqlite3.connect(data_dir / "shopkeeper.db") as db:
                queued = db.execute("SELECT COUNT(*) FROM outbox WHERE chat_id = '706'").fetchone()[0]
    assert statuses == ["done"]
    assert in_messages(data_dir / "shopkeeper.db", "706") == ["wool socks"]
    assert sum(1 for record in fake.sent if record.chat_id == "706") == queued  # each reply reached Telegram once
