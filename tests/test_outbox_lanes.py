"""The outbox sender's lanes: one platform's slow sends or rate limit never hold up another's."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from bot.messages import InboundMessage, OutboundMessage
from bot.outbox import OutboxSender
from bot.store import Store
from channels.base import SentMessage
from tests.fakes.followups import Clock, RecordingChannel

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)


class BlockedChannel(RecordingChannel):
    """A platform whose send API hangs until the test releases it."""

    def __init__(self, name: str, *, clock: Clock) -> None:
        super().__init__(name, clock=clock)
        self.release = asyncio.Event()
        self.entered = asyncio.Event()

    async def send(self, chat_id: str, message: OutboundMessage, *, staff_reply: bool = False) -> SentMessage:
        self.entered.set()
        await self.release.wait()
        return await super().send(chat_id, message, staff_reply=staff_reply)


async def queue(store: Store, channel: str, chat: str, text: str) -> None:
    inbound = InboundMessage(channel=channel, external_id=f"{channel}-{text}", sender_id=chat, chat_id=chat, text="hi", timestamp=NOW)
    conversation = await store.conversation_for(inbound)
    await store.finish_turn(None, conversation, inbound, [OutboundMessage(text)], outbox=True)


async def wait_for(condition: asyncio.Event | None = None, check: object = None, timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not (check() if callable(check) else False):
            await asyncio.sleep(0.01)

    await asyncio.wait_for(condition.wait() if condition is not None else poll(), timeout)


async def test_a_hanging_platform_does_not_hold_up_another_platforms_replies(tmp_path: Path) -> None:
    clock = Clock(NOW)
    twilio = BlockedChannel("twilio", clock=clock)
    telegram = RecordingChannel("telegram", clock=clock)
    async with Store(tmp_path / "db.sqlite", clock=clock) as store:
        await queue(store, "twilio", "whatsapp:+34600000001", "first, to the slow platform")
        await queue(store, "telegram", "4242", "second, to telegram")
        await queue(store, "telegram", "4242", "third, to telegram")
        sender = OutboxSender(store, {"twilio": twilio, "telegram": telegram}, clock=clock, poll_interval=0.05)
        running = asyncio.create_task(sender.run())
        try:
            await wait_for(twilio.entered)
            await wait_for(check=lambda: len(telegram.sent) == 2)
            assert [s.text for s in telegram.sent] == ["second, to telegram", "third, to telegram"]  # in order
            assert twilio.sent == []  # still hanging
            twilio.release.set()
            await wait_for(check=lambda: len(twilio.sent) == 1)
        finally:
            sender.stop()
            await asyncio.wait_for(running, 10)
        statuses = {item.message.text: item.status for ch, chat in (("twilio", "whatsapp:+34600000001"), ("telegram", "4242"))
                    for item in await store.outbox_items(ch, chat)}
    assert set(statuses.values()) == {"sent"}


async def test_rows_of_an_unconfigured_channel_are_held_by_their_own_lane(tmp_path: Path) -> None:
    clock = Clock(NOW)
    telegram = RecordingChannel("telegram", clock=clock)
    async with Store(tmp_path / "db.sqlite", clock=clock) as store:
        await queue(store, "messenger", "psid-1", "for a channel switched off since")
        await queue(store, "telegram", "77", "hello")
        sender = OutboxSender(store, {"telegram": telegram}, clock=clock, poll_interval=0.05)
        running = asyncio.create_task(sender.run())
        try:
            await wait_for(check=lambda: len(telegram.sent) == 1)

            async def held() -> bool:
                return [i.status for i in await store.outbox_items("messenger", "psid-1")] == ["held"]

            for _ in range(500):
                if await held():
                    break
                await asyncio.sleep(0.01)
            assert await held()
        finally:
            sender.stop()
            await asyncio.wait_for(running, 10)
