"""Delivering queued replies through the platforms, once, at the platform's pace.

The outbox table is the truth: :meth:`OutboxSender.deliver_due` claims due rows
(``pending`` → ``sending``), applies the platform rules (shopper reachable,
24-hour reply window, rate limits), sends, and records the outcome:

* ``sent`` with the platform's message id;
* back to ``pending`` with a later ``next_attempt_at`` on a retryable failure
  (5xx, timeout before the request left, 429 honouring ``retry_after``);
* ``maybe_sent`` when the request may have reached the platform (a timeout
  after sending, a crash mid-send): never resent blindly, listed for review;
* ``failed`` when the platform refused for good or the shopper blocked us
  (the identity is then marked unreachable);
* ``held`` when a rule forbids sending now (outside the reply window without
  an approved template, channel not configured).

Each platform has its own delivery lane (:meth:`OutboxSender.run`): one task per
configured channel, sending that channel's rows one at a time in id order (so a
chat's replies keep their order), and one lane for rows of channels that are not
configured. A slow platform or its rate limit (Twilio's one message per second
per sender) never holds up the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta

from bot.i18n import use_locale
from bot.metrics import Metrics
from bot.store import OutboxItem, Store, utc_now
from channels.base import BaseChannel, SendError

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
BASE_BACKOFF_SECONDS = 2.0


class _Pacer:
    """Spaces sends: a global minimum interval per channel and one per chat."""

    def __init__(self, sleep: Callable[[float], Awaitable[None]], monotonic: Callable[[], float]) -> None:
        self._sleep = sleep
        self._monotonic = monotonic
        self._last_global: dict[str, float] = {}
        self._last_chat: dict[tuple[str, str], float] = {}

    async def wait(self, channel: BaseChannel, chat_id: str) -> None:
        policy = channel.policy
        now = self._monotonic()
        ready = now
        if policy.messages_per_second > 0 and channel.name in self._last_global:
            ready = max(ready, self._last_global[channel.name] + 1.0 / policy.messages_per_second)
        key = (channel.name, chat_id)
        if policy.per_chat_interval > 0 and key in self._last_chat:
            ready = max(ready, self._last_chat[key] + policy.per_chat_interval)
        if ready > now:
            await self._sleep(ready - now)
        stamp = max(ready, self._monotonic())
        self._last_global[channel.name] = stamp
        self._last_chat[key] = stamp


class OutboxSender:
    """Sends what the outbox holds. One per process that delivers (web+worker or worker)."""

    def __init__(
        self,
        store: Store,
        channels: Mapping[str, BaseChannel],
        *,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        poll_interval: float = 1.0,
        metrics: Metrics | None = None,
        default_locale: str = "en",
    ) -> None:
        self._default_locale = default_locale
        self._metrics = metrics or Metrics()
        self._store = store
        self._channels = channels
        self._clock = clock
        self._pacer = _Pacer(sleep, monotonic)
        self._poll_interval = poll_interval
        self._wakes: list[asyncio.Event] = []  # one per running lane
        self._stopped = asyncio.Event()

    def wake(self) -> None:
        """Deliver now rather than at the next poll (called after a turn queued replies)."""
        for event in self._wakes:
            event.set()

    async def run(self) -> None:
        """Deliver on every lane until :meth:`stop`."""
        lanes = [self._lane(name) for name in self._channels] + [self._lane(None)]
        await asyncio.gather(*lanes)

    async def _lane(self, channel: str | None) -> None:
        """One platform's deliveries (``None``: the rows of channels that are not configured)."""
        wake = asyncio.Event()
        self._wakes.append(wake)
        while not self._stopped.is_set():
            try:
                while await self.deliver_due(channel=channel, unconfigured=channel is None) and not self._stopped.is_set():
                    pass
            except Exception:  # keep delivering: one bad pass must not stop every future send
                log.exception("outbox pass failed (%s)", channel or "unconfigured channels")
            wake.clear()
            woken = asyncio.create_task(wake.wait())
            stop = asyncio.create_task(self._stopped.wait())
            await asyncio.wait({woken, stop}, timeout=self._poll_interval, return_when=asyncio.FIRST_COMPLETED)
            for task in (woken, stop):
                task.cancel()

    def stop(self) -> None:
        self._stopped.set()

    async def deliver_due(self, limit: int = 50, *, channel: str | None = None, unconfigured: bool = False) -> int:
        """One pass over due deliveries (at most ``limit``); returns how many were attempted.

        ``channel`` limits the pass to that platform's rows, ``unconfigured`` to the rows
        of channels this sender has no adapter for (the lanes of :meth:`run`); with
        neither, the pass takes every channel's rows in id order (tests, one-off runs).
        Rows are claimed one at a time, right before their send: a crash leaves only the
        row in flight ``sending`` (``maybe_sent`` after restart), never rows not yet tried.
        """
        attempted = 0
        while attempted < limit:
            if unconfigured:
                items = await self._store.claim_due_outbox(self._clock(), 1, excluding=tuple(self._channels))
            else:
                items = await self._store.claim_due_outbox(self._clock(), 1, channel=channel)
            if not items:
                break
            await self._deliver(items[0])
            attempted += 1
        return attempted

    async def _deliver(self, item: OutboxItem) -> None:
        channel = self._channels.get(item.channel)
        if channel is None:
            await self._finish(item, "held", f"channel {item.channel!r} is not configured")
            return
        reachable, last_inbound = await self._store.reachability(item.channel, item.chat_id)
        if not reachable:
            await self._finish(item, "failed", "shopper unreachable (blocked the bot or opted out)")
            return
        staff_reply = item.author == "staff"
        if not channel.within_window(last_inbound, self._clock(), staff_reply=staff_reply):
            await self._finish(item, "held", "outside the platform's reply window; needs an approved template")
            log.warning("outbox %d held: outside the %s reply window", item.id, item.channel)
            return
        await self._pacer.wait(channel, item.chat_id)
        try:
            # adapters render fallback words ("out of stock", "Sources:") in the shopper's language
            with use_locale(item.locale or self._default_locale):
                sent = await channel.send(item.chat_id, item.message, staff_reply=staff_reply)
        except SendError as exc:
            await self._failed(item, exc)
        except Exception as exc:  # an untranslated SDK error: it may have left, so never resend blindly
            log.exception("unexpected error sending outbox %d", item.id)
            await self._finish(item, "maybe_sent", f"unexpected error: {type(exc).__name__}")
        else:
            await self._store.outbox_sent(item.id, sent.platform_message_ids)
            self._metrics.outbox.labels(item.channel, "sent").inc()

    async def _failed(self, item: OutboxItem, exc: SendError) -> None:
        reason = f"{exc.code + ': ' if exc.code else ''}{exc}"
        self._metrics.channel_errors.labels(item.channel, exc.code or "none").inc()
        if exc.unreachable:
            await self._store.mark_unreachable(item.channel, item.chat_id)
            await self._finish(item, "failed", reason)
        elif exc.maybe_sent:
            await self._finish(item, "maybe_sent", reason)
        elif exc.permanent or item.attempts + 1 >= MAX_ATTEMPTS:
            await self._finish(item, "failed", reason)
        else:
            delay = exc.retry_after if exc.retry_after is not None else BASE_BACKOFF_SECONDS * 2**item.attempts
            await self._store.outbox_retry(item.id, self._clock() + timedelta(seconds=delay), reason)
            self._metrics.outbox.labels(item.channel, "retry").inc()

    async def _finish(self, item: OutboxItem, status: str, reason: str) -> None:
        await self._store.outbox_finish(item.id, status, reason)
        self._metrics.outbox.labels(item.channel, status).inc()
