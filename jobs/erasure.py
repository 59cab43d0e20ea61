"""Carry out "forget me" requests made on messaging platforms, once the confirmation is delivered.

On the web and in the terminal the engine erases right after the turn. On a
platform the confirmation still sits in the outbox, and erasing first would
delete it unsent; this job erases each requesting customer as soon as none of
their deliveries is pending or in flight.
"""

from __future__ import annotations

import logging

from bot.logs import hash_id
from bot.privacy import erase_customer
from bot.store import Store

log = logging.getLogger(__name__)


async def erase_requested(store: Store) -> int:
    """Erase every customer whose request is confirmed and delivered; returns how many."""
    async with store.db.execute(
        "SELECT DISTINCT c.customer_id FROM conversations c "
        "WHERE json_extract(c.context, '$.erase_requested_at') IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM outbox o JOIN conversations oc ON oc.id = o.conversation_id "
        "                WHERE oc.customer_id = c.customer_id AND o.status IN ('pending', 'sending'))"
    ) as cur:
        customers = [row[0] for row in await cur.fetchall()]
    for customer_id in customers:
        await erase_customer(store, customer_id, actor="shopper")
        log.info("erased customer %s at their request", hash_id(customer_id))
    return len(customers)
