"""Finish turns that were accepted but never completed (a crash between ack and reply).

Every inbound event is in the inbox before it is acknowledged; a row still
``accepted`` after a grace period belongs to a turn that died with its process.
This job runs it again. The engine writes a turn atomically, so a row is either
``done`` with its replies or still ``accepted`` with none: re-running it never
answers twice. A platform's turn (Telegram, WhatsApp, Messenger) queues its
replies in the outbox, as the webhook worker does; a web or terminal turn is
delivered by the stored message itself.

Rows the caller's turn worker still holds (queued behind a slow turn of the same
chat, say) are skipped: running them here would break the chat's order and do the
work twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.engine import DialogEngine
from bot.store import InboxEntry, Store
from bot.takeover import DIRECT_CHANNELS

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3


async def recover_unfinished(
    store: Store,
    engine: DialogEngine,
    *,
    now: datetime,
    older_than: timedelta = timedelta(seconds=60),
    skip: Callable[[InboxEntry], bool] = lambda entry: False,
) -> int:
    """Re-run every accepted-but-unfinished turn received before ``now - older_than``, except what ``skip`` says."""
    recovered = 0
    for entry in await store.unfinished_inbox():
        if entry.received_at > now - older_than or skip(entry):
            continue
        if entry.attempts >= MAX_ATTEMPTS:
            await store.fail_inbound(entry.inbox_id, "gave up after repeated failures")
            log.error("inbox row %d failed %d times; marked failed for review", entry.inbox_id, entry.attempts)
            continue
        try:
            # a platform's replies go out through the outbox, as the webhook worker sends them; without it they
            # would be stored and never delivered (the web chat shows stored messages to its polling page)
            via_outbox = entry.message.channel not in DIRECT_CHANNELS
            await engine.handle(entry.message, inbox_id=entry.inbox_id, via_outbox=via_outbox)
            recovered += 1
        except Exception as exc:  # keep going: one broken turn must not block the others
            await store.note_attempt(entry.inbox_id, repr(exc))
            log.exception("recovering inbox row %d failed", entry.inbox_id)
    if recovered:
        log.info("recovered %d unfinished turn(s)", recovered)
    return recovered
