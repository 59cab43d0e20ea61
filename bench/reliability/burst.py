"""A burst of back-in-stock nudges through the real server: stock update → scheduler → follow-ups → outbox → platforms.

Shoppers (on Telegram, Twilio WhatsApp and Messenger, inside the 24-hour window,
with consent) subscribe to sold-out variants; one signed ``POST /api/inventory``
restocks them; the server's own scheduler turns the event into follow-ups and its
outbox sends them to the fake platforms. Checked from what the fakes received:
every nudge arrived once, the global pace per platform stayed within its policy
(Telegram 30/s, Messenger 40/s, Twilio 80/s as configured) and Telegram's one
message per second per chat held for the shoppers nudged twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import sqlite3
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.reliability.harness import Platforms, ServerProcess, chat_key, copy_seed
from bot.settings import Settings
from channels.registry import enabled_channels

INVENTORY_SECRET = "bench-inventory-secret-0123456789"  # noqa: S105 - the fake shop's, on loopback
BURST_CHANNELS = ("telegram", "twilio", "messenger")


def _sold_out_skus(kb: Path, count: int) -> list[tuple[str, str, str]]:
    with sqlite3.connect(kb) as db:
        rows = db.execute(
            "SELECT v.sku, v.product_id, p.data FROM variants v JOIN products p ON p.id = v.product_id WHERE v.stock = 0 ORDER BY v.sku"
        ).fetchall()
    return [(sku, product, json.loads(data)["title"]) for sku, product, data in rows[:count]]


def seed_subscribers(data_dir: Path, nudges: int) -> tuple[list[tuple[str, str]], list[str]]:
    """Shoppers with consent and subscriptions adding up to ``nudges``; returns (channel, chat) per nudge and the SKUs."""
    skus = _sold_out_skus(data_dir / "kb.db", 2)
    customers = nudges * 4 // 5
    now = datetime.now(UTC).isoformat()
    people = []
    for n in range(customers):
        channel = BURST_CHANNELS[n % 3]
        people.append((f"cus_burst_{n:06d}", channel, chat_key(channel, str(4917000000000 + n))))
    telegram = [p for p in people if p[1] == "telegram"]
    subscriptions = [(p, skus[0]) for p in people] + [(p, skus[1]) for p in telegram[: nudges - customers]]
    with sqlite3.connect(data_dir / "shopkeeper.db") as db:
        db.executemany("INSERT INTO customers (id, created_at) VALUES (?, ?)", [(c, now) for c, _ch, _chat in people])
        db.executemany(
            "INSERT INTO identities (channel, external_id, customer_id, created_at, last_inbound_at) VALUES (?, ?, ?, ?, ?)",
            [(ch, chat, c, now, now) for c, ch, chat in people],
        )
        db.executemany(
            "INSERT INTO conversations (id, customer_id, channel, chat_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            [(f"conv_{c}", c, ch, chat, now, now) for c, ch, chat in people],
        )
        db.executemany(
            "INSERT INTO consents (customer_id, purpose, channel, status, granted_at, evidence_message_id, evidence_text, evidence_at) "
            "VALUES (?, 'back_in_stock', ?, 'granted', ?, ?, 'tell me when it is back', ?)",
            [(c, ch, now, f"{ch}:bench-{c}", now) for c, ch, _chat in people],
        )
        db.executemany(
            "INSERT INTO subscriptions (customer_id, channel, chat_id, conversation_id, sku, product_id, title, timezone, locale, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'UTC', 'en', ?)",
            [(c, ch, chat, f"conv_{c}", sku, product, title, now) for (c, ch, chat), (sku, product, title) in subscriptions],
        )
    return [(ch, chat) for (_c, ch, chat), _s in subscriptions], [sku for sku, _p, _t in skus]


def _policies(platforms: Platforms) -> dict[str, tuple[float, float]]:
    """(messages per second, per-chat interval) of each adapter as the server configures it."""
    settings = Settings(_env_file=None, **{k.removeprefix("SHOPKEEPER_").lower(): v for k, v in platforms.env.items()},  # type: ignore[arg-type]
                        twilio_messages_per_second=80)
    return {name: (ch.policy.messages_per_second, ch.policy.per_chat_interval) for name, ch in enabled_channels(settings).items()}


def _settled(database: Path, expected: int) -> bool:
    with sqlite3.connect(database, timeout=30) as db:
        final = db.execute("SELECT COUNT(*) FROM followups WHERE status NOT IN ('pending', 'queued', 'sending')").fetchone()[0]
        moving = db.execute("SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'sending')").fetchone()[0]
    return bool(final >= expected and moving == 0)


def pace_check(times: list[float], rate: float) -> tuple[int, int]:
    """(largest count of sends inside any 1-second window, windows over ``rate`` + 1)."""
    ordered = sorted(times)
    worst, violations, start = 0, 0, 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= 1.0:
            start += 1
        inside = end - start + 1
        worst = max(worst, inside)
        if inside > rate + 1:  # one of slack: arrival jitter on loopback shifts a send across the window edge
            violations += 1
    return worst, violations


async def run_burst(seed: Path, workdir: Path, *, nudges: int) -> dict[str, Any]:
    data_dir = copy_seed(seed, workdir / "var")
    expected, skus = await asyncio.to_thread(seed_subscribers, data_dir, nudges)
    wanted = Counter(expected)
    with Platforms() as platforms:
        env = {
            "SHOPKEEPER_INVENTORY_SECRET": INVENTORY_SECRET,
            "SHOPKEEPER_FOLLOWUP_BATCH_SIZE": "1000",
            "SHOPKEEPER_FOLLOWUP_DISPATCH_SECONDS": "0.5",
        }
        server = ServerProcess(data_dir, platforms.env | env, workdir / "server.log")
        await server.start()
        try:
            body = json.dumps({"items": [{"sku": sku, "quantity": 100_000} for sku in skus]}).encode()
            signature = "sha256=" + hmac.new(INVENTORY_SECRET.encode(), body, hashlib.sha256).hexdigest()
            started = time.monotonic()
            async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
                response = await http.post("/api/inventory", content=body,
                                           headers={"content-type": "application/json", "x-shopkeeper-signature": signature})
            response.raise_for_status()
            deadline = started + 600
            # done when every nudge is final in the database (a message may take several platform calls)
            while not await asyncio.to_thread(_settled, data_dir / "shopkeeper.db", len(expected)):
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)  # the real server delivering in real time
            await asyncio.sleep(3)  # anything beyond what the database says was sent (a duplicate) would arrive now
        finally:
            await server.stop()
        policies = _policies(platforms)
        with sqlite3.connect(data_dir / "shopkeeper.db") as db:
            followups = dict(db.execute("SELECT status, COUNT(*) FROM followups GROUP BY status").fetchall())
            outbox = dict(db.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall())
            rows = db.execute("SELECT channel, chat_id, platform_message_id FROM outbox WHERE status = 'sent'").fetchall()
        sent_rows: Counter[tuple[str, str]] = Counter((channel, chat) for channel, chat, _ids in rows)
        parts: Counter[tuple[str, str]] = Counter()
        for channel, chat, ids in rows:
            parts[(channel, chat)] += len(ids.split(",")) if ids else 1
        received: Counter[tuple[str, str]] = Counter()
        pace: dict[str, Any] = {}
        last_arrival = started
        for name, recorder in platforms.recorders.items():
            calls = [d.at for d in recorder.deliveries]
            received.update((name, d.chat_id) for d in recorder.deliveries)
            # a message may take several calls (Messenger: the text, then the product card), back to back
            starts = [
                t for chat_times in recorder.by_chat.values() for i, t in enumerate(chat_times) if i == 0 or t - chat_times[i - 1] > 0.25
            ]
            rate, interval = policies[name]
            worst, violations = pace_check(starts, rate)
            gaps = [b - a for chat_times in recorder.by_chat.values() for a, b in itertools.pairwise(chat_times) if b - a > 0.25]
            too_close = sum(1 for gap in gaps if gap < interval - 0.05) if interval > 0 else 0
            pace[name] = {
                "messages": len(starts), "api_calls": len(calls), "policy_messages_per_s": rate,
                "max_messages_in_any_1s": worst, "max_calls_in_any_1s": pace_check(calls, rate)[0], "violations": violations,
                "mean_messages_per_s": round(len(starts) / (max(starts) - min(starts)), 1) if len(starts) > 1 else None,
                "per_chat_interval_s": interval, "min_gap_same_chat_s": round(min(gaps), 3) if gaps else None,
                "per_chat_violations": too_close,
            }
            last_arrival = max([last_arrival, *calls])
    duplicates = sum(max(0, received[k] - parts[k]) for k in received) + sum(max(0, sent_rows[k] - wanted[k]) for k in sent_rows)
    missing = sum(max(0, wanted[k] - sent_rows[k]) for k in wanted) + sum(max(0, parts[k] - received[k]) for k in parts)
    violations = sum(p["violations"] + p["per_chat_violations"] for p in pace.values())
    return {
        "nudges": len(expected),
        "delivered": sum(min(sent_rows[k], wanted[k]) for k in wanted),
        "duplicates": duplicates,
        "missing": missing,
        "delivery_seconds": round(last_arrival - started, 1),
        "pace": pace,
        "pace_violations": violations,
        "followups": followups,
        "outbox": outbox,
        "database_locked_in_log": server.log_count("database is locked"),
        "server_errors_in_log": server.log_count("Traceback"),
    }
