"""Privacy requests and live metrics on a large database: what an erasure, an export and a scrape cost.

On a fresh SQLite file (the real store and migrations): ``--customers`` shoppers,
each with an identity, a conversation, ``--messages`` messages and a reminder
consent, and ``--followups`` follow-ups spread over them (one in ten delivered,
one in forty of those attributed to an order). Then:

* **scrape**: :meth:`bot.store.Store.refresh_gauges` plus rendering, what ``GET /metrics``
  does on every scrape (conversations by state, follow-ups by status, delivered and
  converted by kind, all read from the tables), ``--runs`` times, while a small query
  runs on the store's own connection every 5 ms (how long a chat turn would wait);
* **lookup**: :func:`bot.privacy.find_customer` by phone, then :func:`bot.privacy.held_records`
  (the console's privacy page);
* **export**: :func:`bot.privacy.export_customer` of one shopper;
* **erase**: :func:`bot.privacy.erase_customer` of ``--erasures`` shoppers one after the
  other, each with its transaction, secure delete and WAL truncation.

    /tmp/venv/bin/python bench/privacy_scale.py [--customers 10000] [--messages 20] [--followups 100000]
                                                [--runs 20] [--erasures 20] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.followups_scale import percentile, reminders, seed_shoppers
from bot.metrics import Metrics
from bot.privacy import erase_customer, export_customer, find_customer, held_records
from bot.store import Store
from jobs.followups import create_followups


async def build(store: Store, args: argparse.Namespace) -> list[tuple[str, str]]:
    people = await seed_shoppers(store, args.customers)
    now = datetime.now(UTC)
    iso = now.isoformat()
    async with store.transaction() as db:
        await db.executemany(
            "UPDATE customers SET name = ?, phone = ?, email = ? WHERE id = ?",
            [(f"Shopper {n}", f"+3460{n:07d}", f"shopper{n}@example.com", c) for n, (c, _) in enumerate(people)],
        )
        await db.executemany(
            "INSERT INTO messages (conversation_id, direction, author, text, created_at) VALUES (?, ?, ?, ?, ?)",
            [
                (f"conv_{c}", "in" if m % 2 == 0 else "out", "shopper" if m % 2 == 0 else "bot", f"message {m} of {c}", iso)
                for c, _ in people
                for m in range(args.messages)
            ],
        )
    due = [now + timedelta(days=1 + n % 30) for n in range(args.followups)]
    await create_followups(store, reminders(people, args.followups, 0, due))
    async with store.transaction() as db:
        await db.execute("UPDATE followups SET status = 'sent', sent_at = ? WHERE id % 10 = 0", (iso,))
        await db.execute("UPDATE followups SET converted_order = 'o' || id, converted_at = ? WHERE id % 400 = 0", (iso,))
    return people


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as workdir:
        path = Path(workdir) / "shopkeeper.db"
        async with Store(path) as store:
            started = time.perf_counter()
            people = await build(store, args)
            built = time.perf_counter() - started
            metrics = Metrics()
            scrapes: list[float] = []
            waits: list[float] = []  # a chat turn's small query on the store's connection, during the scrapes
            done = asyncio.Event()

            async def turn_queries() -> None:
                while not done.is_set():
                    t0 = time.perf_counter()
                    async with store.db.execute("SELECT id FROM customers WHERE id = ?", (people[0][0],)) as cur:
                        await cur.fetchone()
                    waits.append(time.perf_counter() - t0)
                    await asyncio.sleep(0.005)

            probe = asyncio.create_task(turn_queries())
            for _ in range(args.runs):
                t0 = time.perf_counter()
                await store.refresh_gauges(metrics)
                metrics.render()
                scrapes.append(time.perf_counter() - t0)
            done.set()
            await probe
            target = people[len(people) // 2][0]
            t0 = time.perf_counter()
            found = await find_customer(store, f"+3460{len(people) // 2:07d}")
            held = await held_records(store, found)
            lookup = time.perf_counter() - t0
            t0 = time.perf_counter()
            document = await export_customer(store, target)
            export = time.perf_counter() - t0
            erasures = []
            for n in range(args.erasures):
                customer = people[(n * 7919) % len(people)][0]
                t0 = time.perf_counter()
                report = await erase_customer(store, customer, actor="bench")
                erasures.append(time.perf_counter() - t0)
                assert report.rows_deleted["customers"] == 1
        size = path.stat().st_size
    return {
        "customers": args.customers,
        "messages": args.customers * args.messages,
        "followups": args.followups,
        "build_seconds": round(built, 1),
        "database_mb": round(size / 1e6, 1),
        "scrape_ms": {"p50": round(percentile(scrapes, 0.5) * 1000, 1), "max": round(max(scrapes) * 1000, 1)},
        "store_query_during_scrapes_ms": {"p50": round(percentile(waits, 0.5) * 1000, 2), "max": round(max(waits) * 1000, 1)},
        "lookup_and_counts_ms": round(lookup * 1000, 1),
        "held": held,
        "export_ms": round(export * 1000, 1),
        "export_bytes": len(json.dumps(document, default=str)),
        "erase_ms": {"p50": round(percentile(erasures, 0.5) * 1000, 1), "max": round(max(erasures) * 1000, 1)},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=20, help="messages per customer")
    parser.add_argument("--followups", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20, help="scrapes to time")
    parser.add_argument("--erasures", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['customers']:,} customers, {result['messages']:,} messages, {result['followups']:,} follow-ups "
              f"({result['database_mb']} MB, built in {result['build_seconds']} s)")
        print(f"/metrics scrape (gauges from the database + render): p50 {result['scrape_ms']['p50']} ms, "
              f"max {result['scrape_ms']['max']} ms")
        print(f"a store query meanwhile (the connection chat turns use): p50 {result['store_query_during_scrapes_ms']['p50']} ms, "
              f"max {result['store_query_during_scrapes_ms']['max']} ms")
        print(f"console lookup by phone + counts per kind: {result['lookup_and_counts_ms']} ms  {result['held']}")
        print(f"export of one shopper: {result['export_ms']} ms ({result['export_bytes']:,} bytes)")
        print(f"erasure of one shopper: p50 {result['erase_ms']['p50']} ms, max {result['erase_ms']['max']} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
