"""The APScheduler clock of a shopkeeper process.

The scheduler only decides *when* work runs; the database decides *what* is
due, so a restart never loses or repeats work. Built and started in the app
lifespan, shut down there.

Several processes may start a scheduler on one database (``serve`` and
``worker``): each runs the same jobs, but only the one holding the scheduler
lease (:mod:`jobs.lease`) does their work. The ``scheduler_lease`` job takes or
renews the lease every third of its lifetime; when it takes it (first start, or
over from a holder that died) the follow-up dispatcher recovers what the
previous holder left mid-send before dispatching anything.

Jobs: ``scheduler_lease``; ``inbox_recovery`` (turns a crash left unfinished);
``retention`` (nightly); ``privacy_erasures`` ("forget me" requests whose confirmation was delivered);
``followups`` (:meth:`jobs.followups.FollowUpDispatcher.run_once`: due reminders and
back-in-stock nudges, every ``followup_dispatch_seconds``); ``followup_conversions``
(orders attributed to follow-ups).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.runtime import Runtime
from jobs.erasure import erase_requested
from jobs.followups import FollowUpDispatcher, FollowUpPolicy, attribute_conversions, template_senders
from jobs.inbox_recovery import recover_unfinished
from jobs.lease import SchedulerLease
from jobs.retention import RetentionPolicy, apply_retention

log = logging.getLogger(__name__)

INBOX_RECOVERY_SECONDS = 30
ERASURE_SECONDS = 15
CONVERSION_SECONDS = 300


def build_dispatcher(runtime: Runtime, lease: SchedulerLease | None) -> FollowUpDispatcher:
    """The follow-up dispatcher of this process, sending through its outbox sender and channels."""
    return FollowUpDispatcher(
        runtime.store,
        runtime.index,
        runtime.channels,
        policy=FollowUpPolicy.from_settings(runtime.settings),
        lease=lease,
        metrics=runtime.metrics,
        templates=template_senders(runtime.channels, runtime.settings),
        wake=runtime.sender.wake,
        default_locale=runtime.shop.default_locale,
        time_budget=0.8 * runtime.settings.followup_dispatch_seconds,
    )


def build_scheduler(runtime: Runtime, *, lease: SchedulerLease | None = None) -> AsyncIOScheduler:
    """A scheduler with shopkeeper's periodic jobs; call ``start()`` inside the event loop.

    ``lease`` defaults to a new lease of this process (``scheduler_lease_seconds``).
    """
    scheduler = AsyncIOScheduler(timezone="UTC")
    settings = runtime.settings
    lease = lease or SchedulerLease(runtime.store, ttl=timedelta(seconds=settings.scheduler_lease_seconds))
    dispatcher = build_dispatcher(runtime, lease)
    policy = dispatcher.policy

    async def keep_lease() -> None:
        if await lease.acquire():
            await dispatcher.recover()  # the previous holder may have died mid-send

    async def inbox_recovery() -> None:
        if lease.held:
            await recover_unfinished(
                runtime.store, runtime.engine, now=runtime.store.now(), older_than=timedelta(seconds=60),
                skip=lambda entry: runtime.worker.holds(entry.inbox_id),
            )

    async def retention() -> None:
        if lease.held:
            retention_policy = RetentionPolicy(
                transcript_days=runtime.settings.transcript_retention_days, order_days=runtime.settings.order_retention_days
            )
            await apply_retention(runtime.store, retention_policy, runtime.store.now())

    async def privacy_erasures() -> None:
        if lease.held:
            await erase_requested(runtime.store)

    async def followups() -> None:
        if lease.held:
            await dispatcher.run_once()

    async def conversions() -> None:
        if lease.held:
            await attribute_conversions(runtime.store, runtime.index, window=policy.conversion_window)

    now = datetime.now(UTC)
    common = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
    renew = settings.scheduler_lease_seconds / 3
    scheduler.add_job(keep_lease, "interval", seconds=renew, id="scheduler_lease", next_run_time=now, **common)
    scheduler.add_job(inbox_recovery, "interval", seconds=INBOX_RECOVERY_SECONDS, id="inbox_recovery", **common)
    # nightly, at 03:30 in the store's timezone
    scheduler.add_job(retention, "cron", hour=3, minute=30, timezone=runtime.shop.timezone, id="retention", coalesce=True)
    scheduler.add_job(privacy_erasures, "interval", seconds=ERASURE_SECONDS, id="privacy_erasures", **common)
    scheduler.add_job(
        followups, "interval", seconds=settings.followup_dispatch_seconds, id="followups",
        next_run_time=now + timedelta(seconds=settings.followup_dispatch_seconds), **common,
    )
    scheduler.add_job(conversions, "interval", seconds=CONVERSION_SECONDS, id="followup_conversions", **common)
    return scheduler
