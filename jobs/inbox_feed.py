"""Hands the turns a web process accepted to this process's turn worker.

In the production layout (the Procfile's ``web`` and ``worker``) the web process
only verifies a delivery, writes it to the inbox and answers 2xx; the worker
process runs the turns. SQLite has no notifications, so the feed polls: every
``poll_interval`` it reads the accepted rows above the last id it handed on (an
indexed range on the primary key, a few microseconds when nothing is new) and
submits them, oldest first, to the :class:`bot.worker.TurnWorker`, which answers
each chat in order and different chats concurrently.

Only the process holding the scheduler lease feeds (one worker takes the turns,
however many run). The feed starts from the beginning of the inbox, so the turns a
previous worker left queued when it stopped or died are taken first. Web-chat and
terminal turns are answered by the process that received them, inside the
request, and are left to it; a turn that fails here stays ``accepted`` for the
recovery job (:mod:`jobs.inbox_recovery`), which leaves alone what the worker holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bot.store import Store
from bot.takeover import DIRECT_CHANNELS
from bot.worker import TurnWorker
from jobs.lease import SchedulerLease

log = logging.getLogger(__name__)


class InboxFeed:
    """Polls the inbox for turns accepted by another process and submits them to ``worker``."""

    def __init__(
        self, store: Store, worker: TurnWorker, lease: SchedulerLease, *, poll_interval: float = 0.1, batch: int = 500
    ) -> None:
        self._store = store
        self._worker = worker
        self._lease = lease
        self._poll_interval = poll_interval
        self._batch = batch
        self._last_id = 0
        self._stop = asyncio.Event()

    async def feed_once(self) -> int:
        """Submit every accepted row above the last one handed on; the number submitted."""
        if not self._lease.held:
            self._last_id = 0  # another process feeds; if the lease comes back, start over from what is left
            return 0
        submitted = 0
        while True:
            entries = await self._store.accepted_after(self._last_id, limit=self._batch)
            for entry in entries:
                self._last_id = entry.inbox_id
                if entry.message.channel in DIRECT_CHANNELS:
                    continue
                if self._worker.submit(entry.inbox_id, entry.message):
                    submitted += 1
            if len(entries) < self._batch:
                return submitted

    async def run(self) -> None:
        """Feed until :meth:`stop`; a failing poll is logged and retried at the next one."""
        while not self._stop.is_set():
            try:
                await self.feed_once()
            except Exception:  # a locked or briefly unwritable database: the rows wait for the next poll
                log.exception("reading new inbox rows failed; retrying")
            with contextlib.suppress(TimeoutError):  # the poll interval, cut short by stop()
                await asyncio.wait_for(self._stop.wait(), timeout=self._poll_interval)

    def stop(self) -> None:
        self._stop.set()
