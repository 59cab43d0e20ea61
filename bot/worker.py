"""Runs accepted webhook turns in the background: FIFO per chat, concurrent across chats.

A webhook route accepts an event into the inbox, hands it to :meth:`TurnWorker.submit`
and answers 2xx at once. The worker keeps one queue per chat and one task
draining it, so a chat's messages are answered in arrival order while other
chats proceed in parallel. Replies go to the outbox in the turn's transaction;
the worker then wakes the outbox sender.

At most ``max_concurrent`` turns run at once (the others wait in their chat's
queue): a turn is CPU work on the event loop that also answers the webhooks, and
hundreds of ready turns would make every acknowledgement wait behind them.

On shutdown :meth:`stop` lets in-flight turns finish and leaves queued ones in
the inbox (still ``accepted``), where the next start's recovery picks them up.

A web process that leaves its turns to ``shopkeeper worker`` (``serve --no-scheduler``,
as in the Procfile) has a worker built with ``runs_turns=False``: :meth:`submit`
declines and the row waits in the inbox for the worker process's
:class:`jobs.inbox_feed.InboxFeed`. Acknowledging a webhook then never waits behind a
turn's CPU work, whatever the LLM is doing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.engine import DialogEngine
from bot.messages import InboundMessage

log = logging.getLogger(__name__)


@dataclass
class _ChatQueue:
    items: asyncio.Queue[tuple[int, InboundMessage]] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None


class TurnWorker:
    """Background processing of accepted inbound events."""

    def __init__(
        self,
        engine: DialogEngine,
        *,
        on_replies: Callable[[], None] | None = None,
        max_concurrent: int = 32,
        runs_turns: bool = True,
    ) -> None:
        self._engine = engine
        self._runs_turns = runs_turns
        self._held: set[int] = set()  # inbox ids queued or running here
        self._running = asyncio.Semaphore(max_concurrent)
        self._on_replies = on_replies
        self._chats: dict[tuple[str, str], _ChatQueue] = {}
        self._stopping = False
        self._idle = asyncio.Event()
        self._idle.set()

    def submit(self, inbox_id: int, inbound: InboundMessage) -> bool:
        """Queue a turn; False when turns run elsewhere or the worker is stopping (the row stays in the inbox)."""
        if self._stopping or not self._runs_turns:
            return False
        if inbox_id in self._held:
            return True
        key = (inbound.channel, inbound.chat_id)
        chat = self._chats.get(key)
        if chat is None:
            chat = self._chats[key] = _ChatQueue()
        chat.items.put_nowait((inbox_id, inbound))
        self._held.add(inbox_id)
        self._idle.clear()
        if chat.task is None or chat.task.done():
            chat.task = asyncio.create_task(self._drain(key, chat), name=f"turns:{key[0]}:{key[1]}")
        return True

    async def _drain(self, key: tuple[str, str], chat: _ChatQueue) -> None:
        while not chat.items.empty() and not self._stopping:
            inbox_id, inbound = chat.items.get_nowait()
            try:
                async with self._running:
                    await self._engine.handle(inbound, inbox_id=inbox_id, via_outbox=True)
            except Exception:  # the row stays 'accepted' and the recovery job retries it
                log.exception("turn for inbox row %d failed; it will be retried", inbox_id)
            finally:
                self._held.discard(inbox_id)
            if self._on_replies is not None:
                self._on_replies()
        if self._chats.get(key) is chat and (chat.items.empty() or self._stopping):
            del self._chats[key]
        if not self._chats:
            self._idle.set()

    def holds(self, inbox_id: int) -> bool:
        """Whether the turn of ``inbox_id`` is queued or running in this worker (recovery leaves it alone)."""
        return inbox_id in self._held

    async def wait_idle(self) -> None:
        """Wait until every queued turn has been handled."""
        await self._idle.wait()

    async def stop(self) -> None:
        """Finish the turns in flight; queued ones stay in the inbox for the next start."""
        self._stopping = True
        tasks = [chat.task for chat in self._chats.values() if chat.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._chats.clear()
        self._held.clear()
        self._idle.set()
