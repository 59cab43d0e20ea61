"""A turn accepted but never finished (process died) is answered once after restart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.messages import InboundMessage
from bot.runtime import open_runtime
from bot.settings import Settings
from jobs.inbox_recovery import MAX_ATTEMPTS, recover_unfinished

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def message(external_id: str, text: str = "wool socks") -> InboundMessage:
    return InboundMessage(channel="web", external_id=external_id, sender_id="u", chat_id="u", text=text, timestamp=NOW)


async def test_accepted_turn_is_answered_exactly_once_after_restart(settings: Settings) -> None:
    clock = [NOW]
    async with open_runtime(settings, clock=lambda: clock[0]) as runtime:
        await runtime.store.accept(message("crash-1"))  # acknowledged, then the process died
    clock[0] = NOW + timedelta(minutes=5)
    async with open_runtime(settings, clock=lambda: clock[0]) as runtime:
        assert await recover_unfinished(runtime.store, runtime.engine, now=clock[0], older_than=timedelta(0)) == 1
        assert await recover_unfinished(runtime.store, runtime.engine, now=clock[0], older_than=timedelta(0)) == 0
        inbox_id = (await runtime.store.accept(message("crash-1"))).inbox_id
        replies = await runtime.store.replies_for(inbox_id)
        assert len(replies) == 1 and replies[0].products


async def test_a_recovered_platform_turn_queues_its_replies_for_delivery(settings: Settings) -> None:
    telegram = InboundMessage(channel="telegram", external_id="tg-crash-1", sender_id="4915100000001", chat_id="4915100000001",
                              text="wool socks", timestamp=NOW)
    clock = [NOW]
    async with open_runtime(settings, clock=lambda: clock[0]) as runtime:
        await runtime.store.accept(telegram)  # acknowledged to Telegram, then the process died
    clock[0] = NOW + timedelta(minutes=5)
    async with open_runtime(settings, clock=lambda: clock[0]) as runtime:
        assert await recover_unfinished(runtime.store, runtime.engine, now=clock[0], older_than=timedelta(0)) == 1
        queued = await runtime.store.outbox_items("telegram", "4915100000001")
        replies = await runtime.store.replies_for((await runtime.store.accept(telegram)).inbox_id)
    assert replies and len(queued) == len(replies)  # each stored reply is on its way to the shopper, once
    assert [item.status for item in queued] == ["pending"] * len(replies)


async def test_recent_rows_are_left_to_the_turn_in_progress(settings: Settings) -> None:
    async with open_runtime(settings, clock=lambda: NOW) as runtime:
        await runtime.store.accept(message("fresh"))
        assert await recover_unfinished(runtime.store, runtime.engine, now=NOW + timedelta(seconds=5)) == 0
        assert len(await runtime.store.unfinished_inbox()) == 1


async def test_a_turn_that_keeps_failing_is_marked_failed_not_retried_forever(settings: Settings) -> None:
    async with open_runtime(settings, clock=lambda: NOW) as runtime:
        accepted = await runtime.store.accept(message("poison"))
        for _ in range(MAX_ATTEMPTS):
            await runtime.store.note_attempt(accepted.inbox_id, "boom")
        later = NOW + timedelta(minutes=10)
        assert await recover_unfinished(runtime.store, runtime.engine, now=later) == 0
        assert await runtime.store.unfinished_inbox() == []


async def test_a_recovered_platform_turn_queues_its_reply_for_delivery(settings: Settings) -> None:
    inbound = InboundMessage(channel="telegram", external_id="tg-crash", sender_id="515", chat_id="515", text="wool socks", timestamp=NOW)
    async with open_runtime(settings, clock=lambda: NOW) as runtime:
        await runtime.store.accept(inbound)  # acknowledged to Telegram, then the process died
        assert await runtime.store.outbox_items("telegram", "515") == []
        assert await recover_unfinished(runtime.store, runtime.engine, now=NOW, older_than=timedelta(0)) == 1
        queued = await runtime.store.outbox_items("telegram", "515")
        assert [item.status for item in queued] == ["pending"]  # the outbox sender delivers it like any reply
        assert await runtime.store.outbox_items("web", "u") == []


async def test_the_worker_and_the_recovery_job_running_one_row_answer_it_once(settings: Settings) -> None:
    inbound = InboundMessage(channel="telegram", external_id="tg-both", sender_id="616", chat_id="616", text="wool socks", timestamp=NOW)
    async with open_runtime(settings, clock=lambda: NOW) as runtime:
        accepted = await runtime.store.accept(inbound)
        runtime.worker.submit(accepted.inbox_id, inbound)  # a backlog older than the recovery's grace period
        assert await recover_unfinished(runtime.store, runtime.engine, now=NOW, older_than=timedelta(0)) == 1
        await runtime.worker.wait_idle()
        assert len(await runtime.store.outbox_items("telegram", "616")) == 1
        assert await runtime.store.inbox_status(accepted.inbox_id) == "done"
