"""Faults: platforms that refuse, fail, hang or reset; a language model that is overloaded or silent; a full or read-only database.

1. **platform sends** (per adapter, in process: the real adapter, outbox sender and
   store, the platform fake on loopback, time faked so back-offs cost nothing):
   replies queued in the outbox meet 429 with ``retry_after``, 500s, requests that
   time out after they reached the platform, and a server that resets every
   connection. Each reply must arrive exactly once, or be flagged ``maybe_sent``
   when it may have arrived, never twice; a 429 is retried no sooner than asked.
2. **language model** (the real server with Claude configured against the fake
   Messages API): 529 overloaded, then no answer at all. Every shopper message
   still gets an answer (the offline responder's) and no 5xx.
3. **storage** (the app served in this process, so the test reaches its one
   writer connection): the database cannot grow (SQLite ``max_page_count``, the
   disk-full error) and then refuses writes (``query_only``, the read-only error).
   Requests get a clear error, readiness says so, nothing is corrupted, and it
   recovers by itself once space (or write access) returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import sqlite3
import struct
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from pydantic import SecretStr

from bench.reliability.harness import Platforms, ServerProcess, copy_seed, fake_claude, percentile
from bot.app import create_app
from bot.messages import InboundMessage, OutboundMessage
from bot.outbox import OutboxSender
from bot.settings import Settings
from bot.store import Store
from channels.base import BaseChannel
from tests.channel_cases import messenger as messenger_case
from tests.channel_cases import telegram as telegram_case
from tests.channel_cases import twilio as twilio_case
from tests.support.server import free_port

REPLIES_PER_CHANNEL = 40
RETRY_AFTER = 7
RATE_LIMITED = re.compile(r"429|rate|too many", re.IGNORECASE)
MARKER = re.compile(r"fault-[a-z]+-\d{3}")


def build_adapter(name: str, base_url: str) -> BaseChannel:
    """The real adapter against ``base_url``, with a one-second request timeout so a hang costs one second."""
    if name == "telegram":
        from channels.telegram import TelegramChannel

        return TelegramChannel(telegram_case.TOKEN, webhook_secret=telegram_case.SECRET, api_base=base_url + "/bot", read_seconds=1.0)
    if name == "twilio":
        from channels.twilio_whatsapp import TwilioWhatsAppChannel

        return TwilioWhatsAppChannel(account_sid=twilio_case.ACCOUNT_SID, auth_token=twilio_case.AUTH_TOKEN,
                                     whatsapp_number=twilio_case.WHATSAPP_NUMBER, api_base=base_url, messages_per_second=80,
                                     request_seconds=1.0)
    from channels.meta import MessengerChannel

    return MessengerChannel(app_secret=SecretStr(messenger_case.APP_SECRET), page_access_token=SecretStr(messenger_case.PAGE_ACCESS_TOKEN),
                            graph_api_base=f"{base_url}/{messenger_case.GRAPH_VERSION}", timeout=1.0)


class ResettingServer:
    """Accepts a connection, reads the request, and resets the connection (RST) without answering."""

    def __init__(self) -> None:
        self.resets = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> ResettingServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reader.read(65536), timeout=2)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.resets += 1
        writer.transport.abort()


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


async def _no_sleep(_: float) -> None:
    return None


def _chat(name: str, n: int) -> str:
    number = str(4919000000000 + n)
    return f"whatsapp:+{number}" if name == "twilio" else number


async def platform_faults(seed: Path, workdir: Path, platforms: Platforms) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, recorder in platforms.recorders.items():
        data_dir = copy_seed(seed, workdir / f"var-{name}")
        clock = FakeClock()
        async with Store(data_dir / "shopkeeper.db", clock=clock) as store:
            markers = []
            for n in range(REPLIES_PER_CHANNEL):
                chat = _chat(name, n)
                inbound = InboundMessage(channel=name, external_id=f"fault-in-{n}", sender_id=chat, chat_id=chat, text="hi",
                                         timestamp=clock())
                conversation = await store.conversation_for(inbound)
                marker = f"fault-{name}-{n:03d}"
                await store.finish_turn(None, conversation, inbound, [OutboundMessage(f"Reply {marker}")], outbox=True)
                markers.append(marker)
            base = f"http://127.0.0.1:{platforms.ports[name]}"
            fake = platforms.fakes[name]
            async with ResettingServer() as resetter:
                # 1. the platform resets every connection: the first five replies meet it
                broken = build_adapter(name, f"http://127.0.0.1:{resetter.port}")
                await broken.open()
                try:
                    await OutboxSender(store, {name: broken}, clock=clock, sleep=_no_sleep).deliver_due(limit=5)
                finally:
                    await broken.close()
                resets = resetter.resets
            after_resets = await _statuses(store)
            # 2. the platform is back but answers 429 (retry_after), 500, and holds two requests past the timeout
            fake.fail_next(429, retry_after=RETRY_AFTER, count=3)
            fake.fail_next(500, count=3)
            recorder.hold_next(3.0, count=2)
            adapter = build_adapter(name, base)
            await adapter.open()
            first_delay: dict[int, tuple[float, str]] = {}
            try:
                sender = OutboxSender(store, {name: adapter}, clock=clock, sleep=_no_sleep)
                for _pass in range(40):
                    if not await sender.deliver_due(limit=100):
                        clock.now += timedelta(seconds=1)
                        if not await _open_rows(store):
                            break
                        continue
                    for row_id, delay, error in await _retry_delays(store, clock()):
                        first_delay.setdefault(row_id, (delay, error))
                    clock.now += timedelta(seconds=1)
            finally:
                await adapter.close()
            final = await _statuses(store)
        received = Counter(m for d in recorder.deliveries for m in markers if m in d.text)
        status_of = {m: final.get(m, "missing") for m in markers}
        results[name] = {
            "replies": len(markers),
            "connection_resets": resets,
            "after_resets": dict(Counter(after_resets.values())),
            "final": dict(Counter(status_of.values())),
            "delivered_once": sum(1 for m in markers if received[m] == 1 and status_of[m] == "sent"),
            "flagged_maybe_sent": sum(1 for m in markers if status_of[m] == "maybe_sent"),
            "duplicates": sum(1 for m in markers if received[m] > 1),
            "lost": sum(1 for m in markers if status_of[m] not in ("sent", "maybe_sent") or (status_of[m] == "sent" and received[m] == 0)),
            "rate_limited_rows": len(limited := [d for d, e in first_delay.values() if RATE_LIMITED.search(e)]),
            "min_delay_after_429_s": round(min(limited), 1) if limited else None,
            "retried_before_retry_after": sum(1 for d in limited if d < RETRY_AFTER - 0.5),
            "retry_errors": sorted({e[:80] for _d, e in first_delay.values()})[:6],
        }
    return results


async def _statuses(store: Store) -> dict[str, str]:
    async with store.db.execute("SELECT payload, status FROM outbox") as cur:
        rows = await cur.fetchall()
    return {m.group(0): status for payload, status in rows if (m := MARKER.search(payload))}


async def _open_rows(store: Store) -> int:
    async with store.db.execute("SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'sending')") as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def _retry_delays(store: Store, now: datetime) -> list[tuple[int, float, str]]:
    """(row, seconds until its next attempt, last error) of every delivery waiting for a retry."""
    async with store.db.execute("SELECT id, next_attempt_at, error FROM outbox WHERE status = 'pending' AND attempts > 0") as cur:
        rows = await cur.fetchall()
    return [(r[0], (datetime.fromisoformat(r[1]) - now).total_seconds(), r[2] or "") for r in rows]


# -- the language model ---------------------------------------------------------------------------


async def llm_faults(seed: Path, workdir: Path) -> dict[str, Any]:
    data_dir = copy_seed(seed, workdir / "var-llm")
    results: dict[str, Any] = {}
    with fake_claude((0.0, 0.05)) as claude:
        env = {"SHOPKEEPER_ANTHROPIC_API_KEY": "sk-ant-api03-FAKE-bench-key", "SHOPKEEPER_ANTHROPIC_BASE_URL": claude.url,
               "SHOPKEEPER_ANTHROPIC_TIMEOUT_SECONDS": "2"}
        server = ServerProcess(data_dir, env, workdir / "server-llm.log")
        await server.start()
        try:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
                for mode in ("ok", "overloaded", "hang", "ok"):
                    claude.mode = mode
                    calls_before = sum(claude.calls.values())
                    outcomes = await asyncio.gather(*(_web_turn(http, f"llm-{mode}-{n}-{len(results)}") for n in range(10)))
                    statuses = Counter(status for status, _replies, _ms in outcomes)
                    results[f"{mode}#{len(results) + 1}"] = {
                        "turns": len(outcomes),
                        "http": {str(k): v for k, v in statuses.items()},
                        "answered": sum(1 for _s, replies, _ms in outcomes if replies),
                        "p50_ms": percentile([ms for _s, _r, ms in outcomes], 0.5),
                        "max_ms": round(max(ms for _s, _r, ms in outcomes), 1),
                        "llm_calls": sum(claude.calls.values()) - calls_before,
                    }
        finally:
            claude.mode = "ok"
            await server.stop()
    results["server_errors_in_log"] = server.log_count("Traceback")
    return results


async def _web_turn(http: httpx.AsyncClient, user: str) -> tuple[int, int, float]:
    started = time.monotonic()
    response = await http.post("/api/chat", json={"user_id": user, "text": "do you have wool socks?"})
    replies = len(response.json().get("replies", [])) if response.status_code == 200 else 0
    return response.status_code, replies, (time.monotonic() - started) * 1000


# -- storage --------------------------------------------------------------------------------------


async def storage_faults(seed: Path, workdir: Path) -> dict[str, Any]:
    data_dir = copy_seed(seed, workdir / "var-storage")
    settings = Settings(data_dir=data_dir, _env_file=None, rate_limit_per_second=100000, rate_limit_burst=100000,  # type: ignore[call-arg]
                        log_level="ERROR")
    app = create_app(settings, start_scheduler=False)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", lifespan="on"))
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - a real server binding its port
        await asyncio.sleep(0.02)
    results: dict[str, Any] = {}
    try:
        store: Store = app.state.runtime.store
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            for fault, on, off in (
                ("disk_full", "PRAGMA max_page_count = {pages}", "PRAGMA max_page_count = 1073741823"),
                ("read_only", "PRAGMA query_only = ON", "PRAGMA query_only = OFF"),
            ):
                before = await _count(store, "SELECT COUNT(*) FROM messages")
                async with store.db.execute("PRAGMA page_count") as cur:
                    pages = (await cur.fetchone())[0]
                await store.db.execute(on.format(pages=pages))
                answers: list[tuple[int, str]] = []
                for n in range(60):  # enough writes to exhaust the free pages the file still has
                    response = await http.post("/api/chat", json={"user_id": f"{fault}-{n % 5}", "text": "do you have wool socks?",
                                                                  "message_id": f"{fault}-{n}"})
                    answers.append((response.status_code, response.text[:200]))
                ready = await http.get("/readyz")
                webhook_like = answers[-1]
                await store.db.execute(off)
                recovered = await http.post("/api/chat", json={"user_id": f"{fault}-after", "text": "do you have wool socks?"})
                ready_after = await http.get("/readyz")
                async with store.db.execute("PRAGMA integrity_check") as cur:
                    integrity = (await cur.fetchone())[0]
                statuses = Counter(status for status, _ in answers)
                errors = sorted({text for status, text in answers if status >= 400})
                results[fault] = {
                    "requests": len(answers),
                    "http": {str(k): v for k, v in statuses.items()},
                    "error_bodies": errors[:3],
                    "readyz_during": {"status": ready.status_code, "body": ready.json()},
                    "last_answer": webhook_like,
                    "recovered_status": recovered.status_code,
                    "readyz_after": ready_after.status_code,
                    "integrity_check": integrity,
                    "messages_before": before,
                    "messages_after": await _count(store, "SELECT COUNT(*) FROM messages"),
                }
    finally:
        server.should_exit = True
        await serving
    with sqlite3.connect(data_dir / "shopkeeper.db") as db:
        results["integrity_after_restart"] = db.execute("PRAGMA integrity_check").fetchone()[0]
    return results


async def _count(store: Store, sql: str) -> int:
    async with store.db.execute(sql) as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def run_faults(seed: Path, workdir: Path) -> dict[str, Any]:
    with Platforms() as platforms:
        sends = await platform_faults(seed, workdir, platforms)
    llm = await llm_faults(seed, workdir)
    storage = await storage_faults(seed, workdir)
    return {"platform_sends": sends, "llm": llm, "storage": storage}
