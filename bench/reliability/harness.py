"""What every phase of the reliability suite shares: the server process, the fake platforms, shoppers, the audit.

* :class:`ServerProcess` runs ``shopkeeper serve`` on a fixed loopback port (so a
  restarted server is found at the same address, as a platform would find it),
  logs to a file (a pipe nobody reads would block a chatty server) and can be
  SIGKILLed and started again on the same data dir.
* :class:`Platforms` serves the fakes of the Telegram Bot API, Twilio's Messages
  API and the Messenger Send API (``tests/channel_cases``) on loopback, each
  behind a :class:`Recorder` that timestamps every message it received.
* :func:`shopper_loop` is one simulated shopper: it sends a message (a signed
  webhook delivery, or ``POST /api/chat`` for the web), waits for the reply to
  reach its platform, thinks, and sends the next one. A delivery that was not
  acknowledged is retried with the same platform id, as platforms do.
* :func:`audit` reads the database and what the fakes received, and counts what
  the issue promises never happens: lost, doubly processed or doubly sent messages.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.chat_latency import MESSAGES
from tests.channel_cases import ChannelCase, FakePlatform
from tests.channel_cases.messenger import CASE as MESSENGER
from tests.channel_cases.telegram import CASE as TELEGRAM
from tests.channel_cases.twilio import CASE as TWILIO
from tests.support.fake_server import serve_in_thread
from tests.support.server import free_port

PROJECT = Path(__file__).resolve().parents[2]
PUBLIC_URL = "https://shop.example"
WEBHOOK_CASES: dict[str, ChannelCase] = {"telegram": TELEGRAM, "twilio": TWILIO, "messenger": MESSENGER}
CHANNELS = ("web", "telegram", "twilio", "messenger")
# The load a real shop would put on one process, not a flood: the per-client HTTP limit is lifted because
# every simulated shopper shares one address; Twilio's pace is a WhatsApp sender's 80 messages/s.
BASE_ENV = {
    "SHOPKEEPER_LOG_LEVEL": "WARNING",
    "SHOPKEEPER_LOG_FORMAT": "text",
    "SHOPKEEPER_PUBLIC_URL": PUBLIC_URL,
    "SHOPKEEPER_RATE_LIMIT_PER_SECOND": "100000",
    "SHOPKEEPER_RATE_LIMIT_BURST": "100000",
    "SHOPKEEPER_TWILIO_MESSAGES_PER_SECOND": "80",
    "SHOPKEEPER_FOLLOWUP_QUIET_START": "00:00",  # real time in a real process: no quiet hours
    "SHOPKEEPER_FOLLOWUP_QUIET_END": "00:00",
    "PTB_TIMEDELTA": "true",
}


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


# -- the server ----------------------------------------------------------------------------------


class ServerProcess:
    """``shopkeeper serve`` on one data dir and one port, startable again after a SIGKILL."""

    def __init__(self, data_dir: Path, env: dict[str, str], log: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._env = {**os.environ, "PYTHONPATH": str(PROJECT), "SHOPKEEPER_DATA_DIR": str(data_dir), **BASE_ENV, **env}
        if "SHOPKEEPER_ANTHROPIC_API_KEY" not in env:
            self._env.pop("ANTHROPIC_API_KEY", None)
        self.process: subprocess.Popen[bytes] | None = None
        self.starts: list[float] = []  # seconds from spawn to ready, per start

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self, ready_timeout: float = 180.0) -> None:
        with self.log.open("ab") as err:
            self.process = subprocess.Popen(  # noqa: ASYNC220 - spawning is instant; readiness is awaited below
                [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=self.data_dir.parent, env=self._env, stdout=err, stderr=err,
            )
        spawned = time.monotonic()
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2) as http:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited with {self.process.returncode}; see {self.log}")
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() - spawned > ready_timeout:
                    raise TimeoutError("server did not become ready")
                await asyncio.sleep(0.05)  # a real process starting, not faked time
        self.starts.append(time.monotonic() - spawned)

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, as in a power cut or an OOM kill."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    async def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        for _ in range(300):
            if self.process.poll() is not None:
                return
            await asyncio.sleep(0.05)  # waiting for a real process to exit
        self.kill()

    def log_count(self, needle: str) -> int:
        return self.log.read_text(errors="replace").count(needle) if self.log.exists() else 0


# -- the fake platforms --------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    at: float  # time.monotonic() when the request reached the fake
    chat_id: str
    text: str


class Recorder:
    """Wraps a fake platform's ASGI app and timestamps every message the fake accepted."""

    def __init__(self, name: str, fake: FakePlatform) -> None:
        self.name = name
        self.fake = fake
        self.deliveries: list[Delivery] = []
        self.by_chat: dict[str, list[float]] = defaultdict(list)
        self.requests = 0
        self._holds: list[float] = []
        self._seen = 0
        self._lock = threading.Lock()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        arrived = time.monotonic()
        hold = 0.0
        if scope["type"] == "http":
            with self._lock:
                self.requests += 1
                hold = self._holds.pop(0) if self._holds else 0.0
        if hold:
            await asyncio.sleep(hold)  # the request arrived; the answer comes after the client gave up
        await self.fake.app(scope, receive, send)
        with self._lock:
            new = self.fake.sent[self._seen :]
            self._seen += len(new)
            for record in new:
                self.deliveries.append(Delivery(arrived, record.chat_id, record.text))
                self.by_chat[record.chat_id].append(arrived)

    def hold_next(self, seconds: float, *, count: int = 1) -> None:
        """Answer the next ``count`` requests only after ``seconds`` (a platform that is slow to answer)."""
        with self._lock:
            self._holds.extend([seconds] * count)

    def count(self, chat_key: str) -> int:
        with self._lock:
            return len(self.by_chat.get(chat_key, ()))

    def arrival(self, chat_key: str, index: int) -> float:
        with self._lock:
            return self.by_chat[chat_key][index]


class Platforms:
    """The three platform fakes on loopback, and the settings that point the server at them."""

    def __init__(self) -> None:
        self.recorders: dict[str, Recorder] = {}
        self.fakes: dict[str, Any] = {}
        self.ports: dict[str, int] = {}
        self.env: dict[str, str] = {}
        self._stack = ExitStack()

    def __enter__(self) -> Platforms:
        for name, case in WEBHOOK_CASES.items():
            fake = case.fake()
            recorder = Recorder(name, fake)
            url = self._stack.enter_context(serve_in_thread(recorder))
            self.fakes[name] = fake
            self.recorders[name] = recorder
            self.ports[name] = int(url.rsplit(":", 1)[1])
            self.env |= {f"SHOPKEEPER_{key.upper()}": str(value) for key, value in case.settings(url).items()}
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


def chat_key(channel: str, chat_id: str) -> str:
    """The recipient as the channel's fake records it (and as the outbox stores it)."""
    return f"whatsapp:+{chat_id}" if channel == "twilio" else chat_id


# -- shoppers ------------------------------------------------------------------------------------


@dataclass
class Stats:
    """What the shoppers observed."""

    ack_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    turn_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    sent: Counter[str] = field(default_factory=Counter)
    accepted: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # "channel: what" -> count
    retries: int = 0
    no_reply: Counter[str] = field(default_factory=Counter)  # accepted, but no reply seen within the wait
    turns_done: int = 0


@dataclass(frozen=True)
class Shopper:
    channel: str
    chat_id: str


def make_shoppers(count: int, seed: int, channels: tuple[str, ...] = CHANNELS) -> list[Shopper]:
    """``count`` shoppers spread evenly over ``channels``; ids unique per run (``seed``)."""
    shoppers = []
    for n in range(count):
        channel = channels[n % len(channels)]
        number = 4915000000000 + seed * 100_000 + n
        shoppers.append(Shopper(channel, f"web-{seed}-{n}" if channel == "web" else str(number)))
    return shoppers


@dataclass
class Drive:
    """How shoppers behave during one phase."""

    base_url: str
    platforms: Platforms
    until: float  # time.monotonic() after which no new message is started
    think: tuple[float, float] = (5.0, 15.0)
    reply_wait: float = 60.0
    retry_unacked: bool = False  # the crash phase: a platform retries a delivery until it is acknowledged
    retry_deadline: float = 0.0  # give up retrying after this (time.monotonic())
    stats: Stats = field(default_factory=Stats)


async def shopper_loop(shopper: Shopper, drive: Drive, http: httpx.AsyncClient) -> None:
    rng = random.Random(shopper.chat_id)
    await asyncio.sleep(rng.uniform(0, drive.think[1]))  # arrivals spread over the first think time
    n = 0
    while time.monotonic() < drive.until:
        n += 1
        text = MESSAGES[rng.randrange(len(MESSAGES))]
        message_id = f"{shopper.chat_id}-{n}"
        if shopper.channel == "web":
            await _web_turn(shopper, drive, http, text, message_id)
        else:
            await _webhook_turn(shopper, drive, http, text, message_id)
        if time.monotonic() < drive.until:
            await asyncio.sleep(rng.uniform(*drive.think))


async def _post_until_acknowledged(drive: Drive, channel: str, send: Any) -> tuple[httpx.Response | None, float]:
    """Post once, or (crash phase) until acknowledged; the latency is of the first attempt that answered."""
    stats = drive.stats
    while True:
        started = time.monotonic()
        try:
            response = await send()
        except httpx.HTTPError as exc:
            stats.errors[f"{channel}: {type(exc).__name__}"] += 1
            response = None
        elapsed = (time.monotonic() - started) * 1000
        if response is not None and response.status_code < 300:
            return response, elapsed
        if response is not None:
            stats.errors[f"{channel}: HTTP {response.status_code}"] += 1
        if not drive.retry_unacked or time.monotonic() > drive.retry_deadline:
            return None, elapsed
        stats.retries += 1
        await asyncio.sleep(0.3)  # a platform's retry delay, in real time against a real process


async def _web_turn(shopper: Shopper, drive: Drive, http: httpx.AsyncClient, text: str, message_id: str) -> None:
    drive.stats.sent["web"] += 1
    body = {"user_id": shopper.chat_id, "text": text, "message_id": message_id}
    response, elapsed = await _post_until_acknowledged(drive, "web", lambda: http.post("/api/chat", json=body))
    if response is None:
        return
    drive.stats.accepted["web"] += 1
    drive.stats.turns_done += 1
    drive.stats.turn_ms["web"].append(elapsed)
    if not response.json().get("replies"):
        drive.stats.no_reply["web"] += 1


async def _webhook_turn(shopper: Shopper, drive: Drive, http: httpx.AsyncClient, text: str, message_id: str) -> None:
    channel = shopper.channel
    case = WEBHOOK_CASES[channel]
    recorder = drive.platforms.recorders[channel]
    key = chat_key(channel, shopper.chat_id)
    request = case.text_delivery(public_url=PUBLIC_URL, text=text, chat_id=shopper.chat_id, message_id=message_id)
    drive.stats.sent[channel] += 1
    before = recorder.count(key)
    started = time.monotonic()
    response, elapsed = await _post_until_acknowledged(
        drive, channel, lambda: http.post(f"/webhooks/{channel}", content=request.body, headers=dict(request.headers))
    )
    if response is None:
        return
    drive.stats.accepted[channel] += 1
    drive.stats.ack_ms[channel].append(elapsed)
    deadline = time.monotonic() + drive.reply_wait
    while recorder.count(key) <= before:
        if time.monotonic() > deadline:
            drive.stats.no_reply[channel] += 1
            return
        await asyncio.sleep(0.1)  # the reply arrives at the fake platform in real time
    drive.stats.turns_done += 1
    drive.stats.turn_ms[channel].append((recorder.arrival(key, before) - started) * 1000)


async def sample_rss(server: ServerProcess, samples: list[tuple[float, float]], started: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        value = rss_mb(server.pid) if server.process is not None else None
        if value is not None:
            samples.append((round(time.monotonic() - started, 1), value))
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=2.0)


# -- the audit -----------------------------------------------------------------------------------


def wait_drained(database: Path, timeout: float) -> bool:
    """Every accepted turn finished and every reply reached a final state (polling a real process)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(database, timeout=30) as db:
            busy = db.execute("SELECT COUNT(*) FROM inbox WHERE status = 'accepted'").fetchone()[0]
            busy += db.execute(
                "SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'sending') AND next_attempt_at <= strftime('%Y-%m-%dT%H:%M:%S', "
                "'now', '+30 seconds')"
            ).fetchone()[0]
        if busy == 0:
            return True
        time.sleep(0.5)
    return False


def audit(database: Path, platforms: Platforms, *, channels: tuple[str, ...] = CHANNELS) -> dict[str, Any]:
    """Exactly one answer per accepted message, read from the database and from what the fakes received.

    * ``unfinished``: accepted inbox rows never processed (lost);
    * ``processed_twice``: inbox rows with more than one stored shopper message (a turn run twice);
    * ``unanswered``: processed rows without a bot reply (other than threads staff owns);
    * per webhook chat, the platform calls the fake received against the outbox: every reply queued
      once, each ``sent`` row's platform ids match calls received (``duplicates``: calls beyond
      ``sent`` + ``maybe_sent`` parts; ``phantom``: ``sent`` in the database but never received).
    """
    marks = ",".join("?" * len(channels))
    with sqlite3.connect(database, timeout=30) as db:
        inbox = db.execute(f"SELECT id, channel, status FROM inbox WHERE channel IN ({marks})", channels).fetchall()  # noqa: S608
        ins = dict(db.execute("SELECT inbox_id, COUNT(*) FROM messages WHERE direction = 'in' AND inbox_id IS NOT NULL GROUP BY inbox_id"))
        outs = dict(
            db.execute("SELECT inbox_id, COUNT(*) FROM messages WHERE direction = 'out' AND inbox_id IS NOT NULL GROUP BY inbox_id")
        )
        silent = {
            row[0]
            for row in db.execute(
                "SELECT m.inbox_id FROM messages m JOIN conversations c ON c.id = m.conversation_id "
                "WHERE m.direction = 'in' AND c.state IN ('pending_human', 'human')"
            )
        }
        escalations = db.execute("SELECT COUNT(*) FROM escalations").fetchone()[0]
        replies_per_chat = Counter(
            (channel, chat)
            for channel, chat in db.execute(
                "SELECT c.channel, c.chat_id FROM messages m JOIN conversations c ON c.id = m.conversation_id "
                "WHERE m.direction = 'out' AND m.author = 'bot'"
            )
        )
        outbox = db.execute("SELECT channel, chat_id, status, platform_message_id, author FROM outbox").fetchall()
        # follow-up deliveries are outbox rows too (audited on their own): compare turn replies on the other chats
        followup_chats = set(db.execute("SELECT channel, chat_id FROM followups").fetchall())
    result: dict[str, Any] = {
        "accepted_rows": len(inbox),
        "unfinished": sum(1 for _id, _c, status in inbox if status != "done"),
        "processed_twice": sum(1 for row_id, _c, _s in inbox if ins.get(row_id, 0) > 1),
        "unanswered": sum(1 for row_id, _c, status in inbox if status == "done" and not outs.get(row_id) and row_id not in silent),
        "handed_to_staff": escalations,
    }
    statuses: Counter[str] = Counter()
    parts: dict[tuple[str, str], int] = Counter()
    maybe: dict[tuple[str, str], int] = Counter()
    queued: Counter[tuple[str, str]] = Counter()
    for channel, chat, status, platform_ids, author in outbox:
        if channel not in platforms.recorders:
            continue
        statuses[status] += 1
        if author == "bot":
            queued[(channel, chat)] += 1
        if status == "sent":
            parts[(channel, chat)] += len((platform_ids or "").split(",")) if platform_ids else 1
        elif status == "maybe_sent":
            maybe[(channel, chat)] += 1
    received: Counter[tuple[str, str]] = Counter()
    for name, recorder in platforms.recorders.items():
        for delivery in recorder.deliveries:
            received[(name, delivery.chat_id)] += 1
    chats = set(parts) | set(received) | set(maybe)
    # a maybe_sent row may have been received whole, partly or not at all: allow up to 3 calls for it
    result["duplicates"] = sum(max(0, received[c] - parts[c] - 3 * maybe[c]) for c in chats)
    result["phantom"] = sum(max(0, parts[c] - received[c]) for c in chats)
    result["replies_not_queued_once"] = sum(
        1 for key, count in replies_per_chat.items() if key[0] in platforms.recorders and key not in followup_chats and queued[key] != count
    )
    result["outbox"] = dict(statuses)
    return result


def copy_seed(seed: Path, target: Path) -> Path:
    shutil.copytree(seed, target, ignore=shutil.ignore_patterns("ready"))
    return target


@contextmanager
def fake_claude(latency: tuple[float, float]) -> Iterator[FaultyClaude]:
    """The fake Messages API on loopback with ``latency`` seconds per call (and switchable faults)."""
    from bench.llm_overhead import scripted_model
    from tests.fakes.anthropic_api import FakeMessagesAPI

    claude = FaultyClaude(FakeMessagesAPI(default=scripted_model), latency)
    with serve_in_thread(claude) as url:
        claude.url = url
        yield claude


class FaultyClaude:
    """Delays every call by a random latency; ``mode`` "overloaded" answers 529, "hang" never answers in time."""

    def __init__(self, api: Any, latency: tuple[float, float]) -> None:
        self.api = api
        self.app = api.asgi_app()
        self.latency = latency
        self.mode = "ok"
        self.calls: Counter[str] = Counter()
        self.url = ""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.calls[self.mode] += 1
        if self.mode == "hang":
            await asyncio.sleep(120)
        await asyncio.sleep(random.uniform(*self.latency))
        if self.mode == "overloaded":
            body = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
            await send({"type": "http.response.start", "status": 529, "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)
