"""Nightly retention deletes old transcripts and keeps recent ones, on a faked clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.messages import InboundMessage, OutboundMessage
from bot.store import Store
from jobs.retention import RetentionPolicy, apply_retention

START = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)


async def test_old_transcripts_go_recent_ones_stay(tmp_path: Path) -> None:
    clock = [START]
    async with Store(tmp_path / "db.sqlite", clock=lambda: clock[0]) as store:
        for n, when in enumerate((START, START + timedelta(days=100))):
            clock[0] = when
            msg = InboundMessage(channel="web", external_id=f"m{n}", sender_id=f"u{n}", chat_id=f"u{n}", text="hi", timestamp=when)
            accepted = await store.accept(msg)
            conversation = await store.conversation_for(msg)
            await store.finish_turn(accepted.inbox_id, conversation, msg, [OutboundMessage("hello")])
        clock[0] = START + timedelta(days=120)
        deleted = await apply_retention(store, RetentionPolicy(transcript_days=90), clock[0])
        assert deleted["messages"] == 2 and deleted["inbox"] == 1 and deleted["conversations"] == 1
        assert await store.count("messages") == 2
        assert [m.text for m in await store.messages_after("web", "u1")] == ["hi", "hello"]
        again = await apply_retention(store, RetentionPolicy(transcript_days=90), clock[0])
        assert sum(again.values()) == 0
