"""SIGKILL the worker in the middle of a batch of follow-up sends; after a restart each went out once or is flagged.

A real ``shopkeeper worker`` process (scheduler, lease, dispatcher, outbox, the
real Telegram adapter) sends reminders to a fake Telegram Bot API on loopback.
The fake holds one request open; the test kills the worker with SIGKILL while
that request is in flight, restarts it, and reads both sides: what the platform
received and what the database says. Every follow-up must be delivered exactly
once (``sent``) or, when the crash left it unknown, at most once and flagged
``maybe_sent`` for review. Nothing is lost, nothing is sent twice.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.consent import Purpose
from bot.store import Store
from jobs.followups import REMINDER, NewFollowUp, create_followups
from tests.channel_cases.telegram import TOKEN, FakeTelegram
from tests.fakes.followups import shopper
from tests.support.fake_server import serve_in_thread
from tests.support.server import stop_process

PROJECT = Path(__file__).resolve().parents[1]
FOLLOWUPS = 40
FAST_SENDS = 12  # the kill lands while the next one is in flight
HELD_SECONDS = 3.0
FINAL = {"sent", "maybe_sent"}


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll a real process or server until ``condition`` holds (real waiting, not faked time)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.02)


@contextmanager
def worker(data_dir: Path, api_base: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT),
        "PTB_TIMEDELTA": "true",
        "SHOPKEEPER_DATA_DIR": str(data_dir),
        "SHOPKEEPER_LOG_LEVEL": "WARNING",
        "SHOPKEEPER_TELEGRAM_BOT_TOKEN": TOKEN,
        "SHOPKEEPER_TELEGRAM_API_BASE": api_base + "/bot",
        "SHOPKEEPER_FOLLOWUP_QUIET_START": "00:00",  # real time in a real process: no quiet hours
        "SHOPKEEPER_FOLLOWUP_QUIET_END": "00:00",
        "SHOPKEEPER_FOLLOWUP_DISPATCH_SECONDS": "0.2",
    }
    env.pop("ANTHROPIC_API_KEY", None)
    with log.open("ab") as err:
        process = subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], cwd=data_dir, env=env, stdout=err, stderr=err)
    try:
        yield process
    finally:
        stop_process(process, timeout=20)


def statuses(database: Path) -> dict[str, str]:
    with sqlite3.connect(database) as db:
        return {subject: status for subject, status in db.execute("SELECT subject, status FROM followups")}


async def test_sigkill_mid_batch_then_restart_delivers_each_once_or_flags_it(data_dir: Path, tmp_path: Path) -> None:
    database = data_dir / "shopkeeper.db"
    now = datetime.now(UTC)
    async with Store(database) as store:
        items = []
        for n in range(FOLLOWUPS):
            chat = str(7_100_000_000 + n)
            customer = await shopper(store, chat, purposes=(Purpose.REMINDERS,))
            items.append(NewFollowUp(REMINDER, customer, "telegram", chat, now - timedelta(seconds=1), "UTC", subject=f"fu-{n:03d}"))
        assert await create_followups(store, items) == FOLLOWUPS

    fake = FakeTelegram()
    for _ in range(FAST_SENDS):
        fake.delay_next(0)
    fake.delay_next(HELD_SECONDS)  # this request reaches the platform; its answer comes after the kill
    log = tmp_path / "worker.log"
    with serve_in_thread(fake.app) as api:
        with worker(data_dir, api, log) as first:
            wait_for(lambda: len(fake.called("sendMessage")) > FAST_SENDS, 60, "the held send")
            os.kill(first.pid, signal.SIGKILL)
            first.wait()
        before = Counter(statuses(database).values())
        assert before["pending"] + before["queued"] + before["sending"] > 0, before  # it really died mid-batch

        with worker(data_dir, api, log) as second:
            wait_for(lambda: set(statuses(database).values()) <= FINAL, 60, "every follow-up to finish")
            assert second.poll() is None, log.read_text()
        wait_for(lambda: len(fake.sent) == len(fake.called("sendMessage")), 10, "the held request to complete")

    delivered = Counter(subject for record in fake.sent for subject in [_subject(record.text)] if subject)
    final = statuses(database)
    assert len(final) == FOLLOWUPS
    assert max(delivered.values()) == 1, delivered.most_common(3)  # duplicates: 0
    for subject, status in final.items():
        if status == "sent":
            assert delivered[subject] == 1, subject  # losses: 0
        else:
            assert status == "maybe_sent" and delivered[subject] <= 1, (subject, status)
    assert list(final.values()).count("maybe_sent") >= 1  # the one in flight at the kill is flagged, not resent
    with sqlite3.connect(database) as db:
        maybe = db.execute("SELECT COUNT(*) FROM outbox WHERE status = 'maybe_sent'").fetchone()[0]
    assert maybe == list(final.values()).count("maybe_sent")


def _subject(text: str) -> str | None:
    marker = text.find("fu-")
    return text[marker : marker + 6] if marker >= 0 else None
