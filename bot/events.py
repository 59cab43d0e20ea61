"""In-process notifications of conversation changes (for the live staff console).

The engine and the staff actions publish an :class:`Event` after they commit;
subscribers (one per open console page, via server-sent events) each get their
own bounded queue. A slow subscriber loses old events rather than slowing the
bot down: the console re-reads state from the database on every event anyway.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

QUEUE_SIZE = 100


@dataclass(frozen=True, slots=True)
class Event:
    kind: str  # "escalated", "message", "claimed", "released", "resolved", "reannounced", "erased"
    conversation_id: str
    state: str


class EventBus:
    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[Event]] = set()

    def publish(self, event: Event) -> None:
        for queue in list(self._subscribers):
            if queue.full():
                queue.get_nowait()  # drop the oldest: the page reloads state from the database
            queue.put_nowait(event)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[Event]]:
        queue: asyncio.Queue[Event] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)
