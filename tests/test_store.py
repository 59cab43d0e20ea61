"""The conversation store on a real SQLite file: migrations, dedupe, atomic turns."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.messages import InboundMessage, OutboundMessage
from bot.migrations import MIGRATIONS
from bot.store import Store

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def inbound(external_id: str = "m1", chat: str = "c1", text: str = "hi") -> InboundMessage:
    return InboundMessage(channel="web", external_id=external_id, sender_id=chat, chat_id=chat, text=text, timestamp=NOW)


async def test_migrations_apply_once_and_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    async with Store(path):
        pass
    async with Store(path):
        pass
    with sqlite3.connect(path) as db:
        versions = [row[0] for row in db.execute("SELECT version FROM schema_migrations")]
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
    assert versions == [v for v, _ in MIGRATIONS]
    assert mode == "wal"


async def test_same_event_is_accepted_once(tmp_path: Path) -> None:
    async with Store(tmp_path / "db.sqlite", clock=lambda: NOW) as store:
        first = await store.accept(inbound("dup"))
        second = await store.accept(inbound("dup"))
        assert first.is_new and not second.is_new
        assert first.inbox_id == second.inbox_id
        assert await store.count("inbox") == 1


async def test_finish_turn_writes_messages_state_and_inbox_together(tmp_path: Path) -> None:
    async with Store(tmp_path / "db.sqlite", clock=lambda: NOW) as store:
        msg = inbound()
        accepted = await store.accept(msg)
        conversation = await store.conversation_for(msg)
        await store.finish_turn(accepted.inbox_id, conversation, msg, [OutboundMessage("hello"), OutboundMessage("again")])
        assert await store.unfinished_inbox() == []
        assert [r.text for r in await store.replies_for(accepted.inbox_id)] == ["hello", "again"]
        assert await store.count("messages") == 3


async def test_failed_turn_leaves_nothing_half_written(tmp_path: Path) -> None:
    async with Store(tmp_path / "db.sqlite", clock=lambda: NOW) as store:
        msg = inbound()
        accepted = await store.accept(msg)
        conversation = await store.conversation_for(msg)
        broken = OutboundMessage.__new__(OutboundMessage)  # no fields: serialising it fails mid-transaction
        with pytest.raises(AttributeError):
            await store.finish_turn(accepted.inbox_id, conversation, msg, [OutboundMessage("ok"), broken])
        assert await store.count("messages") == 0
        assert [e.inbox_id for e in await store.unfinished_inbox()] == [accepted.inbox_id]


async def test_one_customer_and_conversation_per_chat(tmp_path: Path) -> None:
    async with Store(tmp_path / "db.sqlite", clock=lambda: NOW) as store:
        a = await store.conversation_for(inbound("1", chat="alice"))
        again = await store.conversation_for(inbound("2", chat="alice"))
        b = await store.conversation_for(inbound("3", chat="bob"))
        assert a.id == again.id
        assert a.customer_id != b.customer_id
        assert await store.count("customers") == 2


def test_store_repr_shows_no_connection_internals(tmp_path: Path) -> None:
    assert repr(Store(tmp_path / "x.db")) == f"Store(path={str(tmp_path / 'x.db')!r})"


async def test_staff_taking_over_during_a_turn_wins_and_the_bot_reply_is_dropped(tmp_path: Path) -> None:
    async with Store(tmp_path / "db.sqlite", clock=lambda: NOW) as store:
        msg = inbound("race-1", chat="racer")
        accepted = await store.accept(msg)
        conversation = await store.conversation_for(msg)  # the turn starts in state "bot"
        async with store.transaction() as db:  # meanwhile, staff claims the thread
            await db.execute("UPDATE conversations SET state = 'human', owner = 'staff-1' WHERE id = ?", (conversation.id,))
        written = await store.finish_turn(
            accepted.inbox_id, conversation, msg, [OutboundMessage("bot answer")], outbox=True, started_in="bot"
        )
        assert written is None
        after = await store.get_conversation(conversation.id)
        assert after is not None and (after.state, after.owner) == ("human", "staff-1")
        assert await store.replies_for(accepted.inbox_id) == []
        assert await store.outbox_items("web", "racer") == []
        assert await store.count("messages") == 1  # the shopper's message is kept for staff


async def test_an_inbox_insert_goes_ahead_of_queued_turn_writes() -> None:
    from bot.store import WriterQueue

    queue = WriterQueue()
    order: list[str] = []
    release = asyncio.Event()

    async def writer(name: str, *, urgent: bool = False) -> None:
        async with queue.hold(urgent=urgent):
            order.append(name)
            if name == "first":
                await release.wait()

    first = asyncio.create_task(writer("first"))
    await asyncio.sleep(0)  # the first writer holds the queue
    queued = [asyncio.create_task(writer(f"turn-{i}")) for i in range(3)]
    await asyncio.sleep(0)
    inbox = asyncio.create_task(writer("inbox", urgent=True))
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, *queued, inbox)
    assert order == ["first", "inbox", "turn-0", "turn-1", "turn-2"]
    assert not queue.locked
