"""The APScheduler clock of a shopkeeper process.

The scheduler only decides *when* work runs; the database decides *what* is
due, so a restart never loses or repeats work. Built and started in the app
lifespan, shut down there.
"""

from __future__ import annotations

from datetime import timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.runtime import Runtime
from jobs.erasure import erase_requested
from jobs.inbox_recovery import recover_unfinished

INBOX_RECOVERY_SECONDS = 30
ERASURE_SECONDS = 15


def build_scheduler(runtime: Runtime) -> AsyncIOScheduler:
    """A scheduler with shopkeeper's periodic jobs; call ``start()`` inside the event loop."""
    scheduler = AsyncIOScheduler(timezone="UTC")

    async def inbox_recovery() -> None:
        await recover_unfinished(runtime.store, runtime.engine, now=runtime.store.now(), older_than=timedelta(seconds=60))

    scheduler.add_job(
        inbox_recovery,
        "interval",
        seconds=INBOX_RECOVERY_SECONDS,
        id="inbox_recovery",
        coalesce=True,
        max_instances=1,
    )

    async def privacy_erasures() -> None:
        await erase_requested(runtime.store)

    scheduler.add_job(privacy_erasures, "interval", seconds=ERASURE_SECONDS, id="privacy_erasures", coalesce=True, max_instances=1)
    return scheduler
