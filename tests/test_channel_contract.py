"""The channel contract, run against every platform adapter (see ``tests/channel_cases/``).

Each adapter talks to a local fake of its platform's API on loopback, fed with
deliveries shaped like the platform's documented payloads.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.messages import Button, OutboundMessage, ProductCard, Source
from bot.outbox import OutboxSender
from bot.settings import Settings
from bot.store import Store
from channels.base import BaseChannel, WebhookAuthError, WebhookRequest
from channels.registry import enabled_channels
from tests.channel_cases import ChannelCase, FakePlatform, all_cases
from tests.support.fake_server import serve_in_thread
from tests.support.server import running_server

PUBLIC_URL = "https://shop.example"
CASES = all_cases()
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

pytestmark = pytest.mark.skipif(not CASES, reason="no channel adapters yet")


@pytest.fixture(params=CASES, ids=lambda case: case.name)
def case(request: pytest.FixtureRequest) -> ChannelCase:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def platform(case: ChannelCase) -> Iterator[tuple[FakePlatform, str]]:
    fake = case.fake()
    with serve_in_thread(fake.app) as url:
        yield fake, url


def channel_settings(case: ChannelCase, fake_url: str, data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, public_url=PUBLIC_URL, _env_file=None, **case.settings(fake_url))  # type: ignore[call-arg]


def build_channel(case: ChannelCase, fake_url: str, tmp_path: Path) -> BaseChannel:
    channels = enabled_channels(channel_settings(case, fake_url, tmp_path))
    assert list(channels) == [case.name], "the case's settings must enable exactly its channel"
    return channels[case.name]


def delivery(
    case: ChannelCase, text: str = "do you have wool socks?", chat_id: str = "4915100000001", message_id: str = "m-1"
) -> WebhookRequest:
    return case.text_delivery(public_url=PUBLIC_URL, text=text, chat_id=chat_id, message_id=message_id)


async def wait_for(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)  # polling a real server process, not standing in for time


def test_signed_delivery_verifies_and_forged_ones_fail(case: ChannelCase, platform: tuple[FakePlatform, str], tmp_path: Path) -> None:
    channel = build_channel(case, platform[1], tmp_path)
    good = delivery(case)
    channel.verify(good)
    forged = case.forged(good)
    assert len(forged) >= 3
    for bad in forged:
        with pytest.raises(WebhookAuthError):
            channel.verify(bad)


def test_text_delivery_parses_into_one_normalized_message(case: ChannelCase, platform: tuple[FakePlatform, str], tmp_path: Path) -> None:
    channel = build_channel(case, platform[1], tmp_path)
    parsed = channel.parse(delivery(case, text="hola, ¿tienen calcetines?", chat_id="4915100000002", message_id="abc-9"))
    assert len(parsed.messages) == 1
    message = parsed.messages[0]
    assert message.channel == case.name
    assert message.text == "hola, ¿tienen calcetines?"
    assert isinstance(message.external_id, str) and message.external_id
    assert "4915100000002" in message.chat_id
    assert message.timestamp.tzinfo is not None


async def test_send_text_reaches_the_platform(case: ChannelCase, platform: tuple[FakePlatform, str], tmp_path: Path) -> None:
    fake, url = platform
    channel = build_channel(case, url, tmp_path)
    await channel.open()
    try:
        sent = await channel.send(_chat(case), OutboundMessage("Hello from the shop"))
    finally:
        await channel.close()
    assert sent.platform_message_ids and all(isinstance(i, str) for i in sent.platform_message_ids)
    assert any("Hello from the shop" in record.text for record in fake.sent)


async def test_rich_reply_keeps_every_fact_whatever_the_platform_supports(
    case: ChannelCase, platform: tuple[FakePlatform, str], tmp_path: Path
) -> None:
    fake, url = platform
    channel = build_channel(case, url, tmp_path)
    reply = OutboundMessage(
        text="Here are 2 options:",
        buttons=(Button("Shipping", "/topic shipping"), Button("Talk to a person", "/human")),
        products=(
            ProductCard("SOCK-1", "Merino Hiking Sock", Decimal("18.00"), "EUR", True, "https://shop.example/p/sock", price_text="€18.00"),
            ProductCard("SOCK-2", "Cotton Sock", Decimal("9.50"), "EUR", False, "https://shop.example/p/cotton", price_text="€9.50"),
        ),
        sources=(Source("Returns", "https://shop.example/pages/returns"),),
    )
    await channel.open()
    try:
        await channel.send(_chat(case), reply)
    finally:
        await channel.close()
    everything = "\n".join(record.text + " " + str(record.raw) for record in fake.sent)
    for fact in ("Here are 2 options:", "Merino Hiking Sock", "18.00", "Cotton Sock", "Shipping", "Talk to a person"):
        assert fact in everything, fact


async def test_rate_limit_answer_is_retried_after_the_platforms_delay(
    case: ChannelCase, platform: tuple[FakePlatform, str], tmp_path: Path
) -> None:
    fake, url = platform
    channel = build_channel(case, url, tmp_path)
    clock = [NOW]
    async with Store(tmp_path / "db.sqlite", clock=lambda: clock[0]) as store:
        await _queue_reply(store, case, "Your socks are back in stock")
        fake.fail_next(429, retry_after=30)
        await channel.open()
        try:
            sender = OutboxSender(store, {case.name: channel}, clock=lambda: clock[0], sleep=_no_sleep)
            await sender.deliver_due()
            assert not fake.sent
            clock[0] = NOW + timedelta(seconds=10)
            assert await sender.deliver_due() == 0  # not before retry_after
            clock[0] = NOW + timedelta(seconds=31)
            assert await sender.deliver_due() == 1
        finally:
            await channel.close()
        assert [r.text for r in fake.sent if "back in stock" in r.text] == ["Your socks are back in stock"]
        (item,) = await store.outbox_items(case.name, _chat(case))
        assert item.status == "sent"


async def test_server_error_is_retried_and_delivered_once(case: ChannelCase, platform: tuple[FakePlatform, str], tmp_path: Path) -> None:
    fake, url = platform
    channel = build_channel(case, url, tmp_path)
    clock = [NOW]
    async with Store(tmp_path / "db.sqlite", clock=lambda: clock[0]) as store:
        await _queue_reply(store, case, "Order update")
        fake.fail_next(500, count=2)
        await channel.open()
        try:
            sender = OutboxSender(store, {case.name: channel}, clock=lambda: clock[0], sleep=_no_sleep)
            for minute in range(1, 6):
                clock[0] = NOW + timedelta(minutes=minute)
                await sender.deliver_due()
        finally:
            await channel.close()
        assert [r.text for r in fake.sent if "Order update" in r.text] == ["Order update"]


def test_webhook_end_to_end_answers_once_and_rejects_forgeries(
    case: ChannelCase, platform: tuple[FakePlatform, str], data_dir: Path
) -> None:
    fake, url = platform
    env = {f"SHOPKEEPER_{k.upper()}": str(v) for k, v in case.settings(url).items()} | {"SHOPKEEPER_PUBLIC_URL": PUBLIC_URL}
    good = delivery(case, text="do you have wool socks?", message_id="e2e-1")
    with running_server(data_dir, extra_env=env) as server:
        target = server.base_url + f"/webhooks/{case.name}"
        for bad in case.forged(good):
            response = httpx.post(target, content=bad.body, headers=dict(bad.headers), timeout=10)
            assert response.status_code in (401, 403), response.text
        with ThreadPoolExecutor(5) as pool:  # the platform retries the same event 5 times at once
            responses = list(pool.map(lambda _: httpx.post(target, content=good.body, headers=dict(good.headers), timeout=10), range(5)))
        statuses = [r.status_code for r in responses]
        assert statuses == [200] * 5
        asyncio.run(wait_for(lambda: _delivered(data_dir, case.name) and len(fake.sent) >= 1))
    with sqlite3.connect(data_dir / "shopkeeper.db") as db:
        inbox = db.execute("SELECT COUNT(*) FROM inbox WHERE channel = ?", (case.name,)).fetchone()[0]
        outbox = db.execute("SELECT status, platform_message_id FROM outbox WHERE channel = ?", (case.name,)).fetchall()
    assert inbox == 1
    assert [row[0] for row in outbox] == ["sent"]
    # one reply may take several platform calls (Messenger: the text, then a product carousel); none is repeated
    assert len(fake.sent) == len(outbox[0][1].split(","))
    assert "wool" in fake.sent[0].text.lower() or "sock" in fake.sent[0].text.lower()


def _delivered(data_dir: Path, channel: str) -> bool:
    """The turn finished and every reply it queued reached a final state."""
    with sqlite3.connect(data_dir / "shopkeeper.db") as db:
        done = db.execute("SELECT COUNT(*) FROM inbox WHERE channel = ? AND status = 'done'", (channel,)).fetchone()[0]
        open_rows = db.execute(
            "SELECT COUNT(*) FROM outbox WHERE channel = ? AND status IN ('pending', 'sending')", (channel,)
        ).fetchone()[0]
    return bool(done) and open_rows == 0


def _chat(case: ChannelCase) -> str:
    parsed_chat = {"twilio": "whatsapp:+4915100000001"}.get(case.name, "4915100000001")
    return parsed_chat


async def _queue_reply(store: Store, case: ChannelCase, text: str) -> None:
    """Put one reply in the outbox the way a finished turn does."""
    from bot.messages import InboundMessage

    chat = _chat(case)
    inbound = InboundMessage(channel=case.name, external_id=f"q-{text}", sender_id=chat, chat_id=chat, text="hi", timestamp=NOW)
    conversation = await store.conversation_for(inbound)
    await store.finish_turn(None, conversation, inbound, [OutboundMessage(text)], outbox=True)


async def _no_sleep(_: float) -> None:
    return None

