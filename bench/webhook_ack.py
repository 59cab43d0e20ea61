"""Webhook acknowledgement latency under load, while the turns behind it are slow.

Starts `shopkeeper serve` on loopback (a fresh copy of the demo store) with all four
platform channels enabled with test credentials; their send APIs (Telegram Bot API,
Twilio REST, Graph for WhatsApp Cloud and Messenger) and, with ``--llm-latency``, the
Anthropic Messages API are the local fakes of ``tests/``, served by a separate process
on loopback. An open-loop generator then posts correctly signed webhook deliveries
(one text message each, the four platforms in turn, over ``--chats`` shoppers) at
``--rate`` requests per second for ``--seconds``: each request leaves at its scheduled
time whether or not the earlier ones were answered, and its latency is counted from
that scheduled time (a late generator counts against the server, not for it).

When the load ends it waits for the inbox and the outbox to drain, then checks, from
the database and from what the fake platforms received, that every accepted message
got exactly one reply turn and that each reply reached the platform once.

    /tmp/venv/bin/python bench/webhook_ack.py --rate 200 --seconds 20 --llm-latency 1-3
    /tmp/venv/bin/python bench/webhook_ack.py --rate 200 --seconds 20            # offline responder
    /tmp/venv/bin/python bench/webhook_ack.py --rate 200 --seconds 20 --layout single   # one process does all

``--layout procfile`` (the default) runs the production layout of the Procfile: the
web process only verifies, stores and acknowledges, a ``shopkeeper worker`` process
runs the turns and the sending. ``--layout single`` runs one ``shopkeeper serve``
doing everything, as the README's demo command does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.channel_cases import messenger, telegram, twilio, whatsapp
from tests.support.server import free_port, running_server

PUBLIC_URL = "https://shop.example"
META_APP_SECRET = whatsapp.APP_SECRET  # one Meta app serves both WhatsApp Cloud and Messenger
CHANNELS = ("telegram", "twilio", "whatsapp", "messenger")
MESSAGES = [
    "do you have running shoes under 100?",
    "wool socks for hiking",
    "how long does shipping take?",
    "can I return an item?",
    "a gift for my mother under 40",
    "¿tienen mochilas impermeables?",
    "je cherche une veste chaude",
    "thanks!",
]


# -- the fake platforms, in their own process --------------------------------------


def _serve_fakes(port: int, llm_latency: tuple[float, float] | None) -> None:
    """Serve every fake send API (and the fake Messages API) on one loopback port; runs in a child process."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Mount, Route

    from tests.fakes.anthropic_api import FakeMessagesAPI, reply

    fakes: dict[str, Any] = {
        "telegram": telegram.FakeTelegram(),
        "twilio": twilio.FakeTwilio(),
        "whatsapp": whatsapp.FakeWhatsAppCloud(),
        "messenger": messenger.FakeMessengerSendApi(),
    }
    latency: Callable[[], float] = (lambda: random.uniform(*llm_latency)) if llm_latency else (lambda: 0.0)
    model = FakeMessagesAPI(
        default=reply("Happy to help! Tell me what you are looking for and I will check the catalog."), latency=latency
    )

    async def stats(request: Request) -> JSONResponse:
        # one count per platform message received, by (channel, chat)
        return JSONResponse(
            {
                "sent": {name: dict(Counter(record.chat_id for record in fake.sent)) for name, fake in fakes.items()},
                "llm_calls": len(model.requests),
            }
        )

    graph = Starlette(routes=[*fakes["messenger"].app.routes, *fakes["whatsapp"].app.routes])  # /me/messages first
    app = Starlette(
        routes=[
            Route("/stats", stats),
            Mount("/telegram", fakes["telegram"].app),
            Mount("/twilio", fakes["twilio"].app),
            Mount("/graph", graph),
            Mount("/anthropic", model.asgi_app()),
        ]
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def server_env(fakes: str, *, with_llm: bool) -> dict[str, str]:
    env = {
        "SHOPKEEPER_PUBLIC_URL": PUBLIC_URL,
        "SHOPKEEPER_RATE_LIMIT_PER_SECOND": "100000",
        "SHOPKEEPER_RATE_LIMIT_BURST": "100000",
        "SHOPKEEPER_TELEGRAM_BOT_TOKEN": telegram.TOKEN,
        "SHOPKEEPER_TELEGRAM_WEBHOOK_SECRET": telegram.SECRET,
        "SHOPKEEPER_TELEGRAM_API_BASE": f"{fakes}/telegram/bot",
        "SHOPKEEPER_TWILIO_ACCOUNT_SID": twilio.ACCOUNT_SID,
        "SHOPKEEPER_TWILIO_AUTH_TOKEN": twilio.AUTH_TOKEN,
        "SHOPKEEPER_TWILIO_WHATSAPP_NUMBER": twilio.WHATSAPP_NUMBER,
        "SHOPKEEPER_TWILIO_API_BASE": f"{fakes}/twilio",
        "SHOPKEEPER_TWILIO_MESSAGES_PER_SECOND": "80",  # a sender with a raised Twilio throughput
        "SHOPKEEPER_GRAPH_API_BASE": f"{fakes}/graph/{whatsapp.GRAPH_VERSION}",
        "SHOPKEEPER_META_APP_SECRET": META_APP_SECRET,
        "SHOPKEEPER_META_VERIFY_TOKEN": whatsapp.VERIFY_TOKEN,
        "SHOPKEEPER_WHATSAPP_ACCESS_TOKEN": whatsapp.ACCESS_TOKEN,
        "SHOPKEEPER_WHATSAPP_PHONE_NUMBER_ID": whatsapp.PHONE_NUMBER_ID,
        "SHOPKEEPER_MESSENGER_PAGE_ACCESS_TOKEN": messenger.PAGE_ACCESS_TOKEN,
    }
    if with_llm:
        env["SHOPKEEPER_ANTHROPIC_API_KEY"] = "sk-ant-api03-FAKE-bench-key-0123456789abcdef"
        env["SHOPKEEPER_ANTHROPIC_BASE_URL"] = f"{fakes}/anthropic"
    return env


# -- signed deliveries, as each platform makes them ------------------------------


def delivery(channel: str, chat: int, n: int, text: str) -> tuple[str, dict[str, str], bytes]:
    """(path, headers, body) of one correctly signed webhook delivery."""
    if channel == "telegram":
        update = telegram.text_update(text, chat_id=chat, update_id=1_000_000 + n)
        body = json.dumps(update).encode()
        return "/webhooks/telegram", {"content-type": "application/json", "x-telegram-bot-api-secret-token": telegram.SECRET}, body
    if channel == "twilio":
        params = twilio.inbound_text(text, sender=f"whatsapp:+{chat}", sid=twilio.message_sid_for(f"bench-{n}"))
        url = PUBLIC_URL + "/webhooks/twilio"
        headers = {"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": twilio.sign(url, params)}
        return "/webhooks/twilio", headers, urlencode(params).encode()
    if channel == "whatsapp":
        payload = whatsapp.text_message_payload(text=text, chat_id=str(chat), message_id=f"bench{n:08d}")
        body = json.dumps(payload).encode()
        return "/webhooks/whatsapp", {"content-type": "application/json", "x-hub-signature-256": whatsapp.sign(body, META_APP_SECRET)}, body
    payload = messenger.text_message_payload(text=text, chat_id=str(chat), message_id=f"m_bench{n:08d}")
    body = json.dumps(payload).encode()
    return "/webhooks/messenger", {"content-type": "application/json", "x-hub-signature-256": messenger.sign(body, META_APP_SECRET)}, body


def prepare(rate: int, seconds: float, chats: int) -> list[tuple[float, str, tuple[str, dict[str, str], bytes]]]:
    """Every request of the run, signed in advance: (offset in seconds, channel, request)."""
    total = int(rate * seconds)
    plan = []
    for n in range(total):
        channel = CHANNELS[n % len(CHANNELS)]
        chat = 4_915_200_000_000 + (n // len(CHANNELS)) % (chats // len(CHANNELS))
        plan.append((n / rate, channel, delivery(channel, chat, n, MESSAGES[n % len(MESSAGES)])))
    return plan


# -- the open-loop generator -------------------------------------------------------


class KeepAliveClient:
    """A minimal HTTP/1.1 client over a pool of persistent loopback connections.

    httpx costs about a millisecond of CPU per request, which on a shared 2-core
    machine made the generator, not the server, the bottleneck at 200 requests/s.
    """

    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        if self._idle:
            reader, writer = self._idle.pop()
            try:
                return await self._exchange(reader, writer, path, headers, body)
            except (ConnectionError, asyncio.IncompleteReadError):
                writer.close()  # the server closed this idle connection (keep-alive timeout): retry on a new one
        reader, writer = await asyncio.open_connection(self._host, self._port)
        return await self._exchange(reader, writer, path, headers, body)

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes]:
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        writer.write(
            f"POST {path} HTTP/1.1\r\nhost: {self._host}\r\ncontent-length: {len(body)}\r\n{head}\r\n".encode() + body
        )
        status_and_headers = await reader.readuntil(b"\r\n\r\n")
        lines = status_and_headers.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = next((int(line.split(":", 1)[1]) for line in lines[1:] if line.lower().startswith("content-length:")), 0)
        content = await reader.readexactly(length)
        if any(line.lower() == "connection: close" for line in lines[1:]):
            writer.close()
        else:
            self._idle.append((reader, writer))
        return status, content

    async def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


async def load(base: str, plan: list[tuple[float, str, tuple[str, dict[str, str], bytes]]]) -> dict[str, Any]:
    latencies: list[float] = []
    service: list[float] = []
    errors: Counter[str] = Counter()
    accepted = 0
    host, port = base.removeprefix("http://").split(":")
    http = KeepAliveClient(host, int(port))

    async def one(due: float, request: tuple[str, dict[str, str], bytes]) -> None:
        nonlocal accepted
        path, headers, body = request
        sent = time.perf_counter()
        try:
            status, content = await asyncio.wait_for(http.post(path, headers, body), timeout=30)
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
            errors[type(exc).__name__] += 1
            return
        done = time.perf_counter()
        latencies.append((done - due) * 1000)
        service.append((done - sent) * 1000)
        if status != 200:
            errors[str(status)] += 1
        elif path != "/webhooks/twilio":
            accepted += json.loads(content)["accepted"]
        else:
            accepted += 1  # Twilio gets TwiML; every delivery of the plan is a new message

    started = time.perf_counter()
    tasks = []
    for offset, _, request in plan:
        due = started + offset
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)  # the schedule of an open-loop generator
        tasks.append(asyncio.create_task(one(due, request)))
    launched = time.perf_counter() - started  # the span over which requests left, for the achieved rate
    await asyncio.gather(*tasks)
    await http.close()
    return {"latencies": latencies, "service": service, "errors": dict(errors), "accepted": accepted, "launched": launched}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- draining and the exactly-once check -----------------------------------------------


def backlog(database: Path) -> tuple[int, int]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as db:
        inbox = db.execute("SELECT COUNT(*) FROM inbox WHERE status = 'accepted'").fetchone()[0]
        outbox = db.execute("SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'sending')").fetchone()[0]
    return int(inbox), int(outbox)


def exactly_once(database: Path, received: dict[str, dict[str, int]]) -> dict[str, Any]:
    """Compare the database with what the platforms received."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as db:
        inbox = Counter(dict(db.execute("SELECT status, COUNT(*) FROM inbox GROUP BY status").fetchall()))
        turns_without_reply = db.execute(
            "SELECT COUNT(*) FROM inbox i WHERE i.status = 'done' AND NOT EXISTS "
            "(SELECT 1 FROM messages m WHERE m.inbox_id = i.id AND m.direction = 'out')"
        ).fetchone()[0]
        turns_answered_twice = db.execute(
            "SELECT COUNT(*) FROM (SELECT inbox_id FROM messages WHERE direction = 'in' AND inbox_id IS NOT NULL "
            "GROUP BY inbox_id HAVING COUNT(*) > 1)"
        ).fetchone()[0]
        outbox = Counter(dict(db.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall()))
        expected: Counter[tuple[str, str]] = Counter()
        for channel, chat, ids in db.execute("SELECT channel, chat_id, platform_message_id FROM outbox WHERE status = 'sent'"):
            expected[(channel, chat)] += len(ids.split(","))
    got = Counter({(channel, chat): count for channel, chats in received.items() for chat, count in chats.items()})
    mismatched = sum(1 for key in expected.keys() | got.keys() if expected[key] != got[key])
    return {
        "inbox": dict(inbox),
        "outbox": dict(outbox),
        "turns_without_reply": turns_without_reply,
        "turns_answered_twice": turns_answered_twice,
        "platform_messages_expected": sum(expected.values()),
        "platform_messages_received": sum(got.values()),
        "chats_with_a_different_count": mismatched,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=200, help="webhook deliveries per second")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--chats", type=int, default=800, help="distinct shoppers, spread over the four platforms")
    parser.add_argument("--llm-latency", help="use the fake Claude API with this latency per call, e.g. 1-3 (seconds)")
    parser.add_argument("--drain-timeout", type=float, default=900)
    parser.add_argument(
        "--layout",
        choices=("procfile", "single"),
        default="procfile",
        help="procfile: `serve --no-scheduler` accepts and a `shopkeeper worker` runs the turns (production); "
        "single: one `shopkeeper serve` does both (the demo)",
    )
    args = parser.parse_args()
    llm = tuple(float(x) for x in args.llm_latency.split("-")) if args.llm_latency else None
    llm_range = (llm[0], llm[-1]) if llm else None

    fakes_port = free_port()
    context = multiprocessing.get_context("spawn")
    fakes = context.Process(target=_serve_fakes, args=(fakes_port, llm_range), daemon=True)
    fakes.start()
    fakes_url = f"http://127.0.0.1:{fakes_port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(fakes_url + "/stats", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("the fake platforms did not start")
        time.sleep(0.1)  # waiting for a real process to bind

    plan = prepare(args.rate, args.seconds, args.chats)
    try:
        with tempfile.TemporaryDirectory() as tmp, running_server(
            Path(tmp) / "var", ready_timeout=300, extra_env=server_env(fakes_url, with_llm=llm is not None),
            with_worker=args.layout == "procfile",
        ) as server:
            database = Path(tmp) / "var" / "shopkeeper.db"
            result = asyncio.run(load(server.base_url, plan))
            drain_started = time.monotonic()
            while backlog(database) != (0, 0):
                if time.monotonic() - drain_started > args.drain_timeout:
                    break
                time.sleep(0.5)  # polling a real server's database until it has answered everything
            drained = time.monotonic() - drain_started
            stats = httpx.get(fakes_url + "/stats", timeout=10).json()
            check = exactly_once(database, stats["sent"])
    finally:
        fakes.terminate()
        fakes.join(timeout=10)

    latencies = result["latencies"]
    report = {
        "requests": len(plan),
        "rate_offered": args.rate,
        "rate_achieved": round((len(plan) - 1) / result["launched"], 1),
        "responder": f"fake Claude, {args.llm_latency} s per call" if llm else "offline",
        "layout": args.layout,
        "ack_ms": {
            "p50": round(percentile(latencies, 0.50), 1),
            "p95": round(percentile(latencies, 0.95), 1),
            "p99": round(percentile(latencies, 0.99), 1),
            "max": round(max(latencies), 1),
        },
        "service_ms_p99": round(percentile(result["service"], 0.99), 1),
        "errors": result["errors"],
        "accepted": result["accepted"],
        "drain_seconds": round(drained, 1),
        "llm_calls": stats["llm_calls"],
        **check,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
