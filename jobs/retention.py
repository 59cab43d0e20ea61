"""Nightly retention: delete what is older than the store keeps it.

Transcripts (messages, processed inbox rows, delivered outbox rows, delivery
receipts) older than ``transcript_retention_days`` are deleted; conversations
left with no message are closed and removed. Orders and consent records follow
their own, longer setting (accounting duties); the consent ledger is kept as
proof of consent and only erased on request (see :mod:`bot.privacy`). Runs from
the scheduler once a night; safe to run any time and more than once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    transcript_days: int = 90
    order_days: int = 365 * 6


async def apply_retention(store: Store, policy: RetentionPolicy, now: datetime) -> dict[str, int]:
    """Delete expired records; returns rows deleted per table."""
    transcripts = (now - timedelta(days=policy.transcript_days)).astimezone(UTC).isoformat()
    orders = (now - timedelta(days=policy.order_days)).astimezone(UTC).isoformat()
    deleted: dict[str, int] = {}
    async with store.transaction() as db:
        statements = {
            "messages": ("DELETE FROM messages WHERE created_at < ?", transcripts),
            "inbox": ("DELETE FROM inbox WHERE status != 'accepted' AND received_at < ?", transcripts),
            "outbox": ("DELETE FROM outbox WHERE status NOT IN ('pending', 'sending') AND created_at < ?", transcripts),
            "delivery_status": ("DELETE FROM delivery_status WHERE recorded_at < ?", transcripts),
            "conversations": (
                "DELETE FROM conversations WHERE updated_at < ? AND state IN ('bot', 'closed') "
                "AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = conversations.id)",
                transcripts,
            ),
            "orders": ("DELETE FROM orders WHERE created_at < ?", orders),
        }
        for table, (sql, cutoff) in statements.items():
            cur = await db.execute(sql, (cutoff,))
            deleted[table] = cur.rowcount
    if any(deleted.values()):
        log.info("retention deleted %s", {k: v for k, v in deleted.items() if v})
    return deleted
