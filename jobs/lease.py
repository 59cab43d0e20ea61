"""One scheduler per database: a lease row in SQLite that one process holds at a time.

``web`` and ``worker`` may both start a scheduler on the same database; only the
process holding the lease runs the scheduled work. The lease is a row of
``scheduler_lease`` (name, holder id, expiry). The holder renews it every third
of its lifetime (:meth:`SchedulerLease.acquire` is both "take" and "renew");
anyone may take it once ``expires_at`` has passed, or at once when the holder
is a process of this machine that no longer exists (a restart after a crash
does not wait for the expiry). Taking and renewing happen in ``BEGIN IMMEDIATE``
transactions, so two processes never both believe they hold it.

Work done under the lease is fenced: :meth:`SchedulerLease.check` runs inside
the writer's own transaction and fails when the lease moved to another holder
or expired meanwhile (a process that stalled past its expiry must not claim
anything). Times come from the store's clock, so tests move them.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiosqlite

from bot.consent import stamp
from bot.store import Store

log = logging.getLogger(__name__)

DEFAULT_NAME = "scheduler"


class LeaseLost(RuntimeError):
    """The lease is held by another process (or expired) while work under it was being written."""


def holder_id() -> str:
    """``host:pid:nonce``: unique per process start, and tells whether the holder still runs here."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _holder_is_gone(holder: str) -> bool:
    """True when ``holder`` names a process of this machine that has exited (it cannot renew any more)."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdecimal():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False  # another lease object of this very process: it is alive
    try:
        os.kill(pid, 0)  # signal 0: existence check only
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # exists, owned by another user
    return False


@dataclass(frozen=True, slots=True)
class LeaseState:
    """The lease row as last seen."""

    holder: str
    expires_at: datetime


class SchedulerLease:
    """The lease of one process. Build once per scheduler; call :meth:`acquire` periodically."""

    def __init__(self, store: Store, *, ttl: timedelta, name: str = DEFAULT_NAME, holder: str | None = None) -> None:
        if ttl <= timedelta(0):
            raise ValueError("the lease lifetime must be positive")
        self._store = store
        self.ttl = ttl
        self.name = name
        self.holder = holder or holder_id()
        self._expires_at: datetime | None = None

    def __repr__(self) -> str:
        return f"SchedulerLease(name={self.name!r}, holder={self.holder!r}, held={self.held})"

    @property
    def held(self) -> bool:
        """Whether this process held the lease at its last renewal and it has not expired since."""
        return self._expires_at is not None and self._store.now() < self._expires_at

    async def acquire(self) -> bool:
        """Take or renew the lease. True only when it was just taken (not renewed): recover first.

        After the call, :attr:`held` says whether this process holds it.
        """
        now = self._store.now()
        expires = now + self.ttl
        async with self._store.transaction() as db:
            async with db.execute("SELECT holder, expires_at FROM scheduler_lease WHERE name = ?", (self.name,)) as cur:
                row = await cur.fetchone()
            if row is None:
                await db.execute(
                    "INSERT INTO scheduler_lease (name, holder, acquired_at, renewed_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                    (self.name, self.holder, stamp(now), stamp(now), stamp(expires)),
                )
                taken = True
            elif row["holder"] == self.holder:
                await db.execute(
                    "UPDATE scheduler_lease SET renewed_at = ?, expires_at = ? WHERE name = ?", (stamp(now), stamp(expires), self.name)
                )
                # our own lease lapsed: someone may have taken it and given it back, so recover as after a takeover
                taken = self._expires_at is None or now >= datetime.fromisoformat(row["expires_at"])
            elif datetime.fromisoformat(row["expires_at"]) <= now or _holder_is_gone(row["holder"]):
                await db.execute(
                    "UPDATE scheduler_lease SET holder = ?, acquired_at = ?, renewed_at = ?, expires_at = ? WHERE name = ?",
                    (self.holder, stamp(now), stamp(now), stamp(expires), self.name),
                )
                log.warning("scheduler lease taken over from %s (expired or gone)", row["holder"])
                taken = True
            else:
                self._expires_at = None
                return False
        was_held = self._expires_at is not None
        self._expires_at = expires
        if taken and not was_held:
            log.info("scheduler lease acquired by %s", self.holder)
        return taken

    async def release(self) -> None:
        """Give the lease up (on shutdown) so another process takes it without waiting for the expiry."""
        async with self._store.transaction() as db:
            await db.execute("DELETE FROM scheduler_lease WHERE name = ? AND holder = ?", (self.name, self.holder))
        self._expires_at = None

    async def current(self) -> LeaseState | None:
        """Who holds the lease now, as the database says."""
        async with self._store.db.execute("SELECT holder, expires_at FROM scheduler_lease WHERE name = ?", (self.name,)) as cur:
            row = await cur.fetchone()
        return LeaseState(row["holder"], datetime.fromisoformat(row["expires_at"])) if row else None

    async def check(self, db: aiosqlite.Connection) -> None:
        """Inside the caller's write transaction: raise :class:`LeaseLost` unless this process holds the lease now."""
        async with db.execute("SELECT holder, expires_at FROM scheduler_lease WHERE name = ?", (self.name,)) as cur:
            row = await cur.fetchone()
        if row is None or row["holder"] != self.holder or datetime.fromisoformat(row["expires_at"]) <= self._store.now():
            self._expires_at = None
            raise LeaseLost(f"scheduler lease {self.name!r} is not held by {self.holder}")
