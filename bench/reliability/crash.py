"""SIGKILL the server at random moments under load, restart it, again and again; then count what was lost or doubled.

Shoppers on all four channels keep writing (a delivery that was not acknowledged
is retried with the same platform id, as platforms do; the web client retries
with the same ``message_id``) while reminders fall due on Telegram chats. The
server is killed with SIGKILL every few seconds and started again on the same
data dir and port. Afterwards, the audit: every accepted message processed once
and answered once (a reply caught mid-send is ``maybe_sent``: flagged, never
resent), every reminder delivered once or flagged, none twice.
"""

from __future__ import annotations

import asyncio
import random
import re
import sqlite3
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.reliability.harness import (
    Drive,
    Platforms,
    ServerProcess,
    audit,
    copy_seed,
    make_shoppers,
    shopper_loop,
    wait_drained,
)
from bot.store import Store
from jobs.followups import REMINDER, NewFollowUp, create_followups

SUBJECT = re.compile(r"fu-\d{5}")


def _seed_reminder_chats(database: Path, chats: int) -> list[tuple[str, str]]:
    now = datetime.now(UTC).isoformat()
    people = [(f"cus_crash_{n:05d}", str(4918000000000 + n)) for n in range(chats)]
    with sqlite3.connect(database) as db:
        db.executemany("INSERT INTO customers (id, created_at) VALUES (?, ?)", [(c, now) for c, _ in people])
        db.executemany(
            "INSERT INTO identities (channel, external_id, customer_id, created_at, last_inbound_at) VALUES ('telegram', ?, ?, ?, ?)",
            [(chat, c, now, now) for c, chat in people],
        )
        db.executemany(
            "INSERT INTO conversations (id, customer_id, channel, chat_id, created_at, updated_at) VALUES (?, ?, 'telegram', ?, ?, ?)",
            [(f"conv_{c}", c, chat, now, now) for c, chat in people],
        )
        db.executemany(
            "INSERT INTO consents (customer_id, purpose, channel, status, granted_at, evidence_message_id, evidence_text, evidence_at) "
            "VALUES (?, 'reminders', 'telegram', 'granted', ?, ?, 'remind me', ?)",
            [(c, now, f"telegram:bench-{c}", now) for c, _ in people],
        )
    return people


async def seed_reminders(database: Path, count: int, spread: float) -> None:
    """``count`` reminders on count/3 Telegram chats, falling due evenly over the next ``spread`` seconds."""
    people = await asyncio.to_thread(_seed_reminder_chats, database, max(1, count // 3))
    now = datetime.now(UTC)
    items = [
        NewFollowUp(REMINDER, people[n % len(people)][0], "telegram", people[n % len(people)][1],
                    now + timedelta(seconds=spread * n / count), "UTC", subject=f"fu-{n:05d}")
        for n in range(count)
    ]
    async with Store(database) as store:
        await create_followups(store, items)


async def run_crash(seed: Path, workdir: Path, *, kills: int, shoppers: int, reminders: int) -> dict[str, Any]:
    data_dir = copy_seed(seed, workdir / "var")
    database = data_dir / "shopkeeper.db"
    rng = random.Random(20261122)
    gaps = [rng.uniform(3.0, 8.0) for _ in range(kills)]
    await seed_reminders(database, reminders, spread=sum(gaps) * 0.8)
    with Platforms() as platforms:
        env = {"SHOPKEEPER_FOLLOWUP_DISPATCH_SECONDS": "0.5"}
        server = ServerProcess(data_dir, platforms.env | env, workdir / "server.log")
        await server.start()
        drive = Drive(server.base_url, platforms, until=time.monotonic() + 3600, think=(1.0, 3.0), reply_wait=20.0,
                      retry_unacked=True, retry_deadline=time.monotonic() + 3600)
        limits = httpx.Limits(max_connections=shoppers, max_keepalive_connections=shoppers)
        killed_at: list[dict[str, Any]] = []
        try:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=30, limits=limits) as http:
                load = asyncio.gather(*(shopper_loop(s, drive, http) for s in make_shoppers(shoppers, 7)))
                began = time.monotonic()
                for gap in gaps:
                    await asyncio.sleep(gap)  # a random moment under load, in real time
                    with sqlite3.connect(database, timeout=30) as db:
                        in_flight = db.execute(
                            "SELECT (SELECT COUNT(*) FROM inbox WHERE status = 'accepted'), "
                            "(SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'sending'))"
                        ).fetchone()
                    server.kill()
                    killed_at.append(
                        {"at_s": round(time.monotonic() - began, 1), "turns_queued": in_flight[0], "replies_queued": in_flight[1]}
                    )
                    await server.start()
                drive.until = time.monotonic()  # no new messages; unacknowledged ones are still retried for a while
                drive.retry_deadline = time.monotonic() + 60
                await load
            drained = await asyncio.to_thread(wait_drained, database, 120)
            await _wait_followups(database, time.monotonic() + 120)
        finally:
            await server.stop()
        followups = _followup_audit(database, platforms)
        result = {
            "kills": len(killed_at),
            "killed": killed_at,
            "restart_seconds": {"max": round(max(server.starts[1:], default=0), 2),
                                "mean": round(sum(server.starts[1:]) / max(1, len(server.starts) - 1), 2)},
            "shoppers": shoppers,
            "messages_sent": sum(drive.stats.sent.values()),
            "messages_accepted": sum(drive.stats.accepted.values()),
            "unacknowledged_retries": drive.stats.retries,
            "errors_seen_by_clients": dict(drive.stats.errors),
            "no_reply_seen": dict(drive.stats.no_reply),
            "drained": drained,
            "audit": audit(database, platforms),
            "followups": followups,
            "database_locked_in_log": server.log_count("database is locked"),
            "server_errors_in_log": server.log_count("Traceback"),
        }
    return result


async def _wait_followups(database: Path, deadline: float) -> None:
    while time.monotonic() < deadline:
        with sqlite3.connect(database, timeout=30) as db:
            open_rows = db.execute("SELECT COUNT(*) FROM followups WHERE status IN ('pending', 'queued', 'sending')").fetchone()[0]
        if open_rows == 0:
            return
        await asyncio.sleep(0.5)  # the real server dispatching in real time


def _followup_audit(database: Path, platforms: Platforms) -> dict[str, Any]:
    with sqlite3.connect(database) as db:
        status = dict(db.execute("SELECT subject, status FROM followups WHERE kind = 'reminder'").fetchall())
    delivered = Counter(m.group(0) for d in platforms.recorders["telegram"].deliveries if (m := SUBJECT.search(d.text)))
    return {
        "reminders": len(status),
        "statuses": dict(Counter(status.values())),
        "delivered": len(delivered),
        "sent_twice": sum(1 for n in delivered.values() if n > 1),
        # lost: neither delivered nor flagged for review (sent in the database but never received counts too)
        "lost": sum(1 for subject, s in status.items() if (s == "sent" and delivered[subject] == 0) or s not in ("sent", "maybe_sent")),
        "maybe_sent": sum(1 for s in status.values() if s == "maybe_sent"),
    }
