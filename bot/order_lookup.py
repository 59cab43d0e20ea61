"""Order numbers a shopper asks about: their own orders only, and guessing is slowed down.

A verified shopper who names an order number gets its status only when the order
is theirs; any other number (someone else's order, or none at all) gets the same
"not on your account" answer, so a number tells nothing about other customers.
Each such miss is recorded per chat identity (``order_lookup_misses``); after
:data:`MISS_LIMIT` misses within :data:`MISS_WINDOW`, further numbered lookups
get a polite "please wait" until the window moves on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta

from bot.i18n import _
from bot.messages import Button, InboundMessage, OutboundMessage
from bot.store import Order, Store

MISS_LIMIT = 5
MISS_WINDOW = timedelta(hours=1)


def order_key(number: str) -> str:
    """An order number as compared: without ``#`` and spaces, case-folded ("#1001" == "1001")."""
    return re.sub(r"[\s#]", "", number).casefold()


def own_order(orders: Iterable[Order], number: str) -> Order | None:
    wanted = order_key(number)
    return next((o for o in orders if order_key(o.order_number) == wanted), None)


class OrderLookupGuard:
    """Counts a chat's lookups of order numbers that are not its customer's, and stops the guessing."""

    def __init__(self, store: Store, *, limit: int = MISS_LIMIT, window: timedelta = MISS_WINDOW) -> None:
        self.store = store
        self.limit = limit
        self.window = window

    async def check(self, inbound: InboundMessage, number: str, orders: Iterable[Order], now: datetime) -> list[OutboundMessage] | None:
        """The "too many tries" reply when this chat has guessed too much; else None (a miss is recorded)."""
        async with self.store.db.execute(
            "SELECT COUNT(*) FROM order_lookup_misses WHERE channel = ? AND external_id = ? AND at > ?",
            (inbound.channel, inbound.sender_id, (now - self.window).isoformat()),
        ) as cur:
            row = await cur.fetchone()
        if row is not None and row[0] >= self.limit:
            return [OutboundMessage(
                _("You've asked about several order numbers that aren't on your account. Please try again later, "
                  "or talk to a person from our team."),
                buttons=(Button(_("Talk to a person"), "/human"),),
            )]
        if own_order(orders, number) is None:
            async with self.store.transaction() as db:
                await db.execute(
                    "INSERT INTO order_lookup_misses (channel, external_id, at) VALUES (?, ?, ?)",
                    (inbound.channel, inbound.sender_id, now.isoformat()),
                )
        return None
