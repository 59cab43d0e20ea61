"""SIGKILL the server between a webhook's acknowledgement and its reply; after a restart the shopper gets exactly one reply.

A real ``shopkeeper serve`` process (uvicorn, the real app, a real SQLite file)
receives a correctly signed webhook delivery and acknowledges it. The turn that
follows is then caught in flight, in one of the two places a crash can hit it:

* **mid-turn**: the (fake) Claude Messages API holds the model call, so the
  inbox row is accepted and nothing is in the outbox yet. After the restart the
  recovery runs the turn again and the reply goes out once.
* **mid-send**: the fake platform send API holds the request carrying the
  reply. The platform got it; the outbox row is caught ``sending``. After the
  restart it is flagged ``maybe_sent`` and never resent.

Both sides are read afterwards: what the platform's fake received and what the
database says. A second shopper sending the same text after the restart is the
reference for what one reply looks like on that platform, and proves the outbox
sender has gone past the interrupted row. Time in the subprocess is real; every
wait polls a condition with a timeout, the holds only have to outlast the kill.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.channel_cases import ChannelCase, telegram, twilio
from tests.fakes.anthropic_api import FAKE_API_KEY, FakeMessagesAPI, reply
from tests.support.fake_server import serve_in_thread
from tests.support.server import running_server

PUBLIC_URL = "https://shop.example"
TEXT = "how long does shipping take?"
HOLD_SECONDS = 15.0  # longer than it takes to notice the held request and kill the server
STARTUP_SECONDS = 240.0  # a shared, loaded machine can take minutes to load the embedder
CRASH_CHAT = "4915100000071"
REFERENCE_CHAT = "4915100000072"


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll a real process or server until ``condition`` holds (real waiting, not faked time)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.02)


def arrived(fake: Any) -> int:
    """Send requests that reached the fake platform, answered or still held."""
    if isinstance(fake, telegram.FakeTelegram):
        return sum(len(fake.called(method)) for method in telegram.SEND_METHODS)
    return len(fake.requests)


def received_by(fake: Any, case: ChannelCase, chat: str) -> int:
    address = "whatsapp:+" + chat if case.name == "twilio" else chat
    return sum(1 for record in fake.sent if record.chat_id == address)


def post(base_url: str, case: ChannelCase, chat: str, message_id: str) -> None:
    delivery = case.text_delivery(public_url=PUBLIC_URL, text=TEXT, chat_id=chat, message_id=message_id)
    path = delivery.url.removeprefix(PUBLIC_URL)
    response = httpx.post(base_url + path, headers=delivery.headers, content=delivery.body, timeout=30)
    assert response.status_code == 200, response.text


def inbox(database: Path, case: ChannelCase, chat: str) -> list[str]:
    chat_id = "whatsapp:+" + chat if case.name == "twilio" else chat
    with sqlite3.connect(database) as db:
        return [row[0] for row in db.execute("SELECT status FROM inbox WHERE channel = ? AND chat_id = ?", (case.name, chat_id))]


def outbox(database: Path, case: ChannelCase, chat: str) -> list[str]:
    chat_id = "whatsapp:+" + chat if case.name == "twilio" else chat
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT status FROM outbox WHERE channel = ? AND chat_id = ? ORDER BY id", (case.name, chat_id))
        return [row[0] for row in rows]


def replies_stored(database: Path, case: ChannelCase, chat: str) -> int:
    chat_id = "whatsapp:+" + chat if case.name == "twilio" else chat
    with sqlite3.connect(database) as db:
        row = db.execute(
            "SELECT COUNT(*) FROM messages m JOIN inbox i ON i.id = m.inbox_id "
            "WHERE m.direction = 'out' AND i.channel = ? AND i.chat_id = ?",
            (case.name, chat_id),
        ).fetchone()
    return int(row[0])


def env_for(case: ChannelCase, platform_url: str, model_url: str | None) -> dict[str, str]:
    env = {f"SHOPKEEPER_{key.upper()}": str(value) for key, value in case.settings(platform_url).items()}
    env["SHOPKEEPER_PUBLIC_URL"] = PUBLIC_URL
    if case.name == "telegram":
        env["SHOPKEEPER_TELEGRAM_WEBHOOK_SECRET"] = telegram.SECRET
    if model_url is not None:
        env["SHOPKEEPER_ANTHROPIC_API_KEY"] = FAKE_API_KEY
        env["SHOPKEEPER_ANTHROPIC_BASE_URL"] = model_url
    return env


CASES: dict[str, ChannelCase] = {"telegram": telegram.CASE, "twilio": twilio.CASE}


@pytest.mark.parametrize("channel", sorted(CASES))
def test_sigkill_while_the_model_thinks_then_restart_answers_once(channel: str, data_dir: Path) -> None:
    case = CASES[channel]
    database = data_dir / "shopkeeper.db"
    fake = case.fake()
    holds = iter([HOLD_SECONDS])  # the first model call hangs; the ones after the restart answer at once
    model = FakeMessagesAPI(default=reply("Orders ship within two working days."), latency=lambda: next(holds, 0.0))
    with serve_in_thread(fake.app) as platform_url, serve_in_thread(model.asgi_app()) as model_url:
        env = env_for(case, platform_url, model_url)
        with running_server(data_dir, extra_env=env, ready_timeout=STARTUP_SECONDS) as first:
            post(first.base_url, case, CRASH_CHAT, "crash-1")  # acknowledged: the event is in the inbox
            wait_for(lambda: len(model.requests) >= 1, 60, "the turn to reach the model")
            os.kill(first.pid, signal.SIGKILL)
            wait_for(lambda: not _alive(first.pid), 10, "the server to die")

        assert inbox(database, case, CRASH_CHAT) == ["accepted"]  # acknowledged, never answered
        assert outbox(database, case, CRASH_CHAT) == []
        assert arrived(fake) == 0

        with running_server(data_dir, extra_env=env, ready_timeout=STARTUP_SECONDS) as second:
            post(second.base_url, case, REFERENCE_CHAT, "reference-1")
            wait_for(lambda: received_by(fake, case, REFERENCE_CHAT) >= 1, 60, "the reference reply")
            wait_for(lambda: set(outbox(database, case, CRASH_CHAT)) == {"sent"}, 30, "the recovered reply")
            post(second.base_url, case, CRASH_CHAT, "crash-1")  # the platform retrying the same event changes nothing

    assert inbox(database, case, CRASH_CHAT) == ["done"]
    assert received_by(fake, case, CRASH_CHAT) == received_by(fake, case, REFERENCE_CHAT) >= 1  # exactly one reply
    assert replies_stored(database, case, CRASH_CHAT) == replies_stored(database, case, REFERENCE_CHAT)
    assert len(outbox(database, case, CRASH_CHAT)) == len(outbox(database, case, REFERENCE_CHAT))
    assert "Orders ship within two working days." in next(r.text for r in fake.sent if r.chat_id.endswith(CRASH_CHAT))


@pytest.mark.parametrize("channel", sorted(CASES))
def test_sigkill_while_the_reply_is_in_flight_then_restart_never_resends(channel: str, data_dir: Path) -> None:
    case = CASES[channel]
    database = data_dir / "shopkeeper.db"
    fake: Any = case.fake()  # both cases' fakes can hold a request (delay_next)
    fake.delay_next(HOLD_SECONDS)  # the reply reaches the platform; its answer comes after the kill
    with serve_in_thread(fake.app) as platform_url:
        env = env_for(case, platform_url, None)
        with running_server(data_dir, extra_env=env, ready_timeout=STARTUP_SECONDS) as first:
            post(first.base_url, case, CRASH_CHAT, "crash-2")
            wait_for(lambda: arrived(fake) >= 1, 60, "the reply to reach the platform")
            os.kill(first.pid, signal.SIGKILL)
            wait_for(lambda: not _alive(first.pid), 10, "the server to die")

        assert inbox(database, case, CRASH_CHAT) == ["done"]
        assert outbox(database, case, CRASH_CHAT)[0] == "sending"  # caught mid-send

        with running_server(data_dir, extra_env=env, ready_timeout=STARTUP_SECONDS) as second:
            post(second.base_url, case, REFERENCE_CHAT, "reference-2")
            wait_for(lambda: received_by(fake, case, REFERENCE_CHAT) >= 1, 60, "the reference reply")
            wait_for(lambda: received_by(fake, case, CRASH_CHAT) >= 1, 30, "the held request to complete")

    crash = outbox(database, case, CRASH_CHAT)
    assert crash[0] == "maybe_sent"  # flagged for review, not resent
    assert received_by(fake, case, CRASH_CHAT) == 1  # the platform got the reply once
    assert arrived(fake) == received_by(fake, case, CRASH_CHAT) + received_by(fake, case, REFERENCE_CHAT)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
