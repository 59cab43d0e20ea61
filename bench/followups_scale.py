"""Follow-ups at scale: create 100,000, dispatch them on time, kill the dispatcher and restart it.

Three phases on a fresh SQLite database (the real store, migrations, dispatcher,
lease and outbox sender; an in-process fake channel instead of a platform API):

1. **create**: ``--followups`` pending reminders for ``--customers`` shoppers in one
   transaction (:func:`jobs.followups.create_followups`, one ``executemany``). Most
   are due days ahead (the backlog the due scan must skip); ``--due`` of them fall
   due during the next phase, ``--rate`` per second.
2. **dispatch**: an APScheduler job (the production wiring: lease renewal plus one
   periodic dispatcher job every ``--tick`` seconds) and the outbox sender run until
   every due reminder was delivered. Lag = delivery time - due time, per reminder.
3. **restart**: ``--restart`` reminders are overdue at once (a scheduler that was
   down). A worker process (this script with ``--child``) dispatches them and is
   killed with SIGKILL mid-batch; a second one starts. Recovery = start of the new
   process → lease taken over, interrupted sends marked ``maybe_sent``, ready to
   dispatch; then everything left is sent. Both workers log each delivery, so
   duplicates and losses are counted from what the "platform" received.

Quiet hours are off (every reminder is due in daytime for the point of the test).

    /tmp/venv/bin/python bench/followups_scale.py [--followups 100000] [--customers 10000] [--due 10000] [--rate 300]
                                                  [--restart 20000] [--tick 1.0] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any, ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.consent import stamp
from bot.messages import OutboundMessage
from bot.metrics import Metrics
from bot.outbox import OutboxSender
from bot.store import Store
from channels.base import BaseChannel, ParsedWebhook, SendPolicy, SentMessage, WebhookRequest
from jobs.followups import REMINDER, FollowUpDispatcher, FollowUpPolicy, NewFollowUp, create_followups
from jobs.lease import SchedulerLease
from tests.fakes.followups import Catalog

CHANNEL = "bench"
RESTART_FIRST = 10_000_000  # subjects r10000000… belong to the restart phase
RESTART_ROWS = f"CAST(substr(subject, 2) AS INTEGER) >= {RESTART_FIRST}"
NO_QUIET_HOURS = FollowUpPolicy(quiet_start=clock_time(0), quiet_end=clock_time(0), batch_size=500)


class FakePlatform(BaseChannel):
    """A platform that accepts everything at once and remembers when each reminder arrived."""

    name: ClassVar[str] = CHANNEL
    policy: ClassVar[SendPolicy] = SendPolicy(reply_window=None, messages_per_second=0)

    def __init__(self, log_fd: int | None = None) -> None:
        self.arrivals: dict[str, list[float]] = {}
        self._log_fd = log_fd

    def verify(self, request: WebhookRequest) -> None:
        raise NotImplementedError

    def parse(self, request: WebhookRequest) -> ParsedWebhook:
        raise NotImplementedError

    async def send(self, chat_id: str, message: OutboundMessage, *, staff_reply: bool = False) -> SentMessage:
        subject = message.text.split("\n", 1)[0].rsplit(" ", 1)[-1]
        now = time.time()
        self.arrivals.setdefault(subject, []).append(now)
        if self._log_fd is not None:
            os.write(self._log_fd, f"sent {os.getpid()} {subject} {now:.6f}\n".encode())
        return SentMessage((uuid.uuid4().hex,))


async def seed_shoppers(store: Store, customers: int) -> list[tuple[str, str]]:
    """Customers with an identity, an open conversation and consent to reminders (bulk, outside the timings)."""
    now = stamp(datetime.now(UTC))
    iso = datetime.now(UTC).isoformat()
    people = [(f"cus_bench_{n:06d}", f"chat-{n:06d}") for n in range(customers)]
    async with store.transaction() as db:
        await db.executemany("INSERT INTO customers (id, created_at) VALUES (?, ?)", [(c, iso) for c, _ in people])
        await db.executemany(
            "INSERT INTO identities (channel, external_id, customer_id, created_at, last_inbound_at) VALUES (?, ?, ?, ?, ?)",
            [(CHANNEL, chat, c, iso, iso) for c, chat in people],
        )
        await db.executemany(
            "INSERT INTO conversations (id, customer_id, channel, chat_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            [(f"conv_{c}", c, CHANNEL, chat, iso, iso) for c, chat in people],
        )
        await db.executemany(
            "INSERT INTO consents (customer_id, purpose, channel, status, granted_at, evidence_message_id, evidence_text, evidence_at) "
            "VALUES (?, 'reminders', ?, 'granted', ?, ?, 'remind me', ?)",
            [(c, CHANNEL, now, f"{CHANNEL}:seed-{c}", now) for c, _ in people],
        )
    return people


def reminders(people: list[tuple[str, str]], count: int, first: int, due: list[datetime]) -> list[NewFollowUp]:
    return [
        NewFollowUp(REMINDER, people[(first + n) % len(people)][0], CHANNEL, people[(first + n) % len(people)][1], due[n], "UTC",
                    subject=f"r{first + n}")
        for n in range(count)
    ]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def create_and_dispatch(db_path: Path, args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with Store(db_path) as store:
        started = time.perf_counter()
        people = await seed_shoppers(store, args.customers)
        results["seed_seconds"] = round(time.perf_counter() - started, 2)

        start = datetime.now(UTC) + timedelta(seconds=12)  # after the creation and the scheduler start, so no row is born late
        due = [start + timedelta(seconds=n / args.rate) for n in range(args.due)]
        later = datetime.now(UTC) + timedelta(days=3)
        due += [later + timedelta(seconds=n) for n in range(args.followups - args.due)]
        items = reminders(people, args.followups, 0, due)
        started = time.perf_counter()
        created = await create_followups(store, items)
        results["create_seconds"] = round(time.perf_counter() - started, 2)
        results["created"] = created

        platform = FakePlatform()
        metrics = Metrics()
        channels: dict[str, BaseChannel] = {CHANNEL: platform}
        sender = OutboxSender(store, channels, metrics=metrics, poll_interval=0.2)
        lease = SchedulerLease(store, ttl=timedelta(seconds=30))
        dispatcher = FollowUpDispatcher(
            store, Catalog(), channels, policy=NO_QUIET_HOURS, lease=lease, metrics=metrics, wake=sender.wake,
            time_budget=0.8 * args.tick,
        )
        scheduler = AsyncIOScheduler(timezone="UTC")

        async def keep_lease() -> None:
            if await lease.acquire():
                await dispatcher.recover()

        async def dispatch() -> None:
            if lease.held:
                await dispatcher.run_once()

        await keep_lease()
        scheduler.add_job(keep_lease, "interval", seconds=10, id="lease", coalesce=True, max_instances=1)
        scheduler.add_job(dispatch, "interval", seconds=args.tick, id="followups", coalesce=True, max_instances=1)
        scheduler.start()
        sending = asyncio.create_task(sender.run())
        deadline = time.monotonic() + args.due / args.rate + 120
        while len(platform.arrivals) < args.due and time.monotonic() < deadline:  # noqa: ASYNC110 - polls real work in real time
            await asyncio.sleep(0.2)
        sender.stop()
        await sending
        scheduler.shutdown(wait=False)
        await dispatcher.reconcile()
        await lease.release()

        due_at = {f"r{n}": due[n].timestamp() for n in range(args.due)}
        lags = [arrivals[0] - due_at[subject] for subject, arrivals in platform.arrivals.items()]
        async with store.db.execute("SELECT status, COUNT(*) FROM followups GROUP BY status") as cur:
            counts = {row[0]: row[1] for row in await cur.fetchall()}
        results["dispatch"] = {
            "due": args.due,
            "rate_per_second": args.rate,
            "tick_seconds": args.tick,
            "delivered": len(platform.arrivals),
            "lag_p50_seconds": round(percentile(lags, 0.50), 3),
            "lag_p99_seconds": round(percentile(lags, 0.99), 3),
            "lag_max_seconds": round(max(lags), 3),
            "duplicates": sum(1 for a in platform.arrivals.values() if len(a) > 1),
            "losses": args.due - len(platform.arrivals),
            "statuses": counts,
        }
        results["restart_people"] = people
    return results


def run_child(args: argparse.Namespace) -> int:
    """A worker process: take the lease, recover, dispatch through the outbox until killed."""
    started = time.time()

    async def main() -> None:
        log_fd = os.open(args.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        async with Store(Path(args.db)) as store:
            platform = FakePlatform(log_fd)
            channels: dict[str, BaseChannel] = {CHANNEL: platform}
            sender = OutboxSender(store, channels, poll_interval=0.2)
            lease = SchedulerLease(store, ttl=timedelta(seconds=30))
            dispatcher = FollowUpDispatcher(
                store, Catalog(), channels, policy=NO_QUIET_HOURS, lease=lease, wake=sender.wake, time_budget=0.8 * args.tick
            )
            while not await lease.acquire() and not lease.held:  # noqa: ASYNC110 - another process holds it
                await asyncio.sleep(0.05)
            await store.recover_outbox()
            await dispatcher.recover()
            os.write(log_fd, f"recovered {os.getpid()} {started:.6f} {time.time():.6f}\n".encode())
            scheduler = AsyncIOScheduler(timezone="UTC")

            async def dispatch() -> None:
                if lease.held:
                    await dispatcher.run_once()

            async def renew() -> None:
                await lease.acquire()

            scheduler.add_job(renew, "interval", seconds=10, coalesce=True, max_instances=1)
            scheduler.add_job(dispatch, "interval", seconds=args.tick, next_run_time=datetime.now(UTC), coalesce=True, max_instances=1)
            scheduler.start()
            await sender.run()

    asyncio.run(main())
    return 0


def restart(db_path: Path, people: list[tuple[str, str]], args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Overdue reminders, a worker killed mid-batch, a new worker: recovery time, duplicates, losses."""

    async def overdue() -> None:
        async with Store(db_path) as store:
            past = datetime.now(UTC) - timedelta(minutes=10)
            due = [past + timedelta(milliseconds=n) for n in range(args.restart)]
            await create_followups(store, reminders(people, args.restart, RESTART_FIRST, due))

    asyncio.run(overdue())
    log = workdir / "deliveries.log"
    log.touch()
    command = [sys.executable, __file__, "--child", "--db", str(db_path), "--log", str(log), "--tick", str(args.tick)]

    def lines() -> list[list[str]]:
        return [line.split() for line in log.read_text().splitlines() if line.endswith(tuple("0123456789"))]

    first = subprocess.Popen(command)
    while sum(1 for line in lines() if line[0] == "sent") < args.restart // 4:
        time.sleep(0.05)  # real waiting on a real process
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    with sqlite3.connect(db_path) as db:
        at_kill = dict(db.execute(f"SELECT status, COUNT(*) FROM followups WHERE {RESTART_ROWS} GROUP BY status").fetchall())  # noqa: S608

    restarted_at = time.time()
    second = subprocess.Popen(command)
    ids = {f"r{RESTART_FIRST + n}" for n in range(args.restart)}

    def unfinished() -> int:
        with sqlite3.connect(db_path) as db:
            rows = db.execute(f"SELECT subject, status FROM followups WHERE {RESTART_ROWS}").fetchall()  # noqa: S608
        return sum(1 for subject, status in rows if status not in {"sent", "maybe_sent"} and subject in ids)

    deadline = time.monotonic() + 300
    while unfinished() and time.monotonic() < deadline:
        time.sleep(0.1)
    finished_at = time.time()
    second.terminate()
    second.wait(timeout=30)

    entries = lines()
    recovered = [e for e in entries if e[0] == "recovered" and int(e[1]) == second.pid]
    delivered = Counter(e[2] for e in entries if e[0] == "sent" and e[2] in ids)
    after_restart = [float(e[3]) for e in entries if e[0] == "sent" and int(e[1]) == second.pid]
    with sqlite3.connect(db_path) as db:
        final = dict(db.execute(f"SELECT subject, status FROM followups WHERE {RESTART_ROWS}").fetchall())  # noqa: S608
    maybe = [s for s, st in final.items() if st == "maybe_sent"]
    return {
        "overdue": args.restart,
        "delivered_before_kill": sum(1 for e in entries if e[0] == "sent" and int(e[1]) == first.pid),
        "statuses_at_kill": at_kill,
        "recovery_seconds": round(float(recovered[0][3]) - restarted_at, 3) if recovered else None,
        "first_delivery_after_restart_seconds": round(min(after_restart) - restarted_at, 3) if after_restart else None,
        "drain_seconds": round(finished_at - restarted_at, 2),
        "duplicates": sum(1 for n in delivered.values() if n > 1),
        "losses": sum(1 for s in ids if (final.get(s) == "sent" and delivered[s] == 0) or final.get(s) not in {"sent", "maybe_sent"}),
        "maybe_sent": len(maybe),
        "maybe_sent_delivered": sum(delivered[s] for s in maybe),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--followups", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--due", type=int, default=10_000, help="how many fall due during the dispatch phase")
    parser.add_argument("--rate", type=float, default=300.0, help="due reminders per second in the dispatch phase")
    parser.add_argument("--restart", type=int, default=20_000, help="overdue reminders in the restart phase")
    parser.add_argument("--tick", type=float, default=1.0, help="dispatcher interval in seconds")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--log", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return run_child(args)

    with tempfile.TemporaryDirectory(prefix="followups-bench-") as tmp:
        workdir = Path(tmp)
        db_path = workdir / "shopkeeper.db"
        results = asyncio.run(create_and_dispatch(db_path, args))
        people = results.pop("restart_people")
        results["restart"] = restart(db_path, people, args, workdir)
    results["followups"] = args.followups
    results["customers"] = args.customers
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    d, r = results["dispatch"], results["restart"]
    print(f"created {results['created']:,} pending follow-ups in {results['create_seconds']} s (one transaction)")
    print(f"dispatch: {d['delivered']:,}/{d['due']:,} delivered at {d['rate_per_second']:.0f}/s due, tick {d['tick_seconds']} s: "
          f"lag p50 {d['lag_p50_seconds']} s, p99 {d['lag_p99_seconds']} s, max {d['lag_max_seconds']} s; "
          f"duplicates {d['duplicates']}, losses {d['losses']}")
    print(f"restart: {r['overdue']:,} overdue, worker SIGKILLed after {r['delivered_before_kill']:,}; recovery {r['recovery_seconds']} s, "
          f"first delivery {r['first_delivery_after_restart_seconds']} s, all done {r['drain_seconds']} s after restart; "
          f"duplicates {r['duplicates']}, losses {r['losses']}, maybe_sent {r['maybe_sent']} (delivered {r['maybe_sent_delivered']})")
    print(json.dumps({k: v for k, v in results.items() if k not in {'dispatch', 'restart'}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
