"""Follow-ups end to end with time faked: quiet hours, caps, the 24-hour window, staff threads, restarts.

Every test moves a :class:`~tests.fakes.followups.Clock` instead of sleeping. The
dispatcher, the outbox sender and the store share it; platforms are recording
fakes behind the channel contract.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.consent import ConsentLedger, Evidence, Purpose, stamp
from bot.metrics import Metrics
from bot.outbox import OutboxSender
from bot.reminders import parse_time_of_day, parse_when, subject_of
from bot.runtime import open_runtime
from bot.settings import Settings
from bot.store import Order, OrderLine, Store
from channels.base import BaseChannel, SendError
from jobs.followups import (
    BACK_IN_STOCK,
    REMINDER,
    FollowUpDispatcher,
    FollowUpPolicy,
    NewFollowUp,
    attribute_conversions,
    conversion_stats,
    create_followups,
    review_queue,
)
from jobs.lease import LeaseLost, SchedulerLease
from jobs.scheduler import build_scheduler
from kb.inventory import set_stock
from tests.fakes.followups import Catalog, Clock, RecordingChannel, TemplateRecorder, shoe, shopper

MADRID = "Europe/Madrid"
NOW = datetime(2026, 11, 18, 10, 0, tzinfo=UTC)  # a Wednesday, 11:00 in Madrid


async def _no_sleep(seconds: float) -> None:
    return None


@dataclass
class Rig:
    store: Store
    clock: Clock
    channels: dict[str, BaseChannel]
    catalog: Catalog
    dispatcher: FollowUpDispatcher
    sender: OutboxSender
    metrics: Metrics
    templates: TemplateRecorder

    @property
    def telegram(self) -> RecordingChannel:
        channel = self.channels["telegram"]
        assert isinstance(channel, RecordingChannel)
        return channel

    async def tick(self) -> None:
        """One scheduler tick: dispatch, let the outbox deliver, take its outcomes."""
        await self.dispatcher.run_once()
        while await self.sender.deliver_due():
            pass
        await self.dispatcher.reconcile()


def rig_for(store: Store, clock: Clock, *, policy: FollowUpPolicy | None = None, lease: SchedulerLease | None = None) -> Rig:
    channels: dict[str, BaseChannel] = {
        "telegram": RecordingChannel("telegram", clock=clock),
        "whatsapp": RecordingChannel("whatsapp", window=timedelta(hours=24), clock=clock),
        "messenger": RecordingChannel("messenger", window=timedelta(hours=24), clock=clock),
    }
    catalog = Catalog([shoe()])
    metrics = Metrics()
    templates = TemplateRecorder()
    sender = OutboxSender(store, channels, clock=clock, sleep=_no_sleep, monotonic=lambda: 0.0, metrics=metrics)
    dispatcher = FollowUpDispatcher(
        store, catalog, channels, policy=policy or FollowUpPolicy(), lease=lease, metrics=metrics,
        templates={"whatsapp": templates}, wake=sender.wake, clock=clock,
    )
    return Rig(store, clock, channels, catalog, dispatcher, sender, metrics, templates)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
async def store(tmp_path: Path, clock: Clock) -> AsyncIterator[Store]:
    async with Store(tmp_path / "shopkeeper.db", clock=clock) as opened:
        yield opened


@pytest.fixture
def rig(store: Store, clock: Clock) -> Rig:
    return rig_for(store, clock)


async def reminder(store: Store, customer: str, chat_id: str, due: datetime, *, channel: str = "telegram", subject: str = "the boots",
                   timezone: str = MADRID, sku: str | None = None, kind: str = REMINDER, subscription_id: int | None = None) -> int:
    await create_followups(store, [NewFollowUp(kind, customer, channel, chat_id, due, timezone, subject=subject, sku=sku,
                                               subscription_id=subscription_id, title="Carbon Racer" if sku else None)])
    async with store.db.execute("SELECT MAX(id) FROM followups") as cur:
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def status_of(store: Store, followup_id: int) -> tuple[str, str | None, datetime]:
    async with store.db.execute("SELECT status, reason, due_at FROM followups WHERE id = ?", (followup_id,)) as cur:
        row = await cur.fetchone()
    assert row is not None
    return row["status"], row["reason"], datetime.fromisoformat(row["due_at"])


def local(day: int, hour: int, minute: int = 0, zone: str = MADRID) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=ZoneInfo(zone)).astimezone(UTC)


# -- the policy ------------------------------------------------------------------------------------------------


def test_quiet_hours_cover_the_night_and_push_to_their_end() -> None:
    policy = FollowUpPolicy()
    assert policy.is_quiet(local(18, 22), MADRID) and policy.is_quiet(local(19, 8, 59), MADRID)
    assert not policy.is_quiet(local(18, 20, 59), MADRID) and not policy.is_quiet(local(19, 9), MADRID)
    assert policy.next_allowed(local(18, 22), MADRID) == local(19, 9)
    assert policy.next_allowed(local(19, 3), MADRID) == local(19, 9)
    assert policy.next_allowed(local(19, 12), MADRID) == local(19, 12)
    # the shopper's timezone, not the server's: 22:00 in Madrid is 16:00 in New York
    assert not policy.is_quiet(local(18, 22), "America/New_York")
    assert not FollowUpPolicy(quiet_start=time(0), quiet_end=time(0)).is_quiet(local(18, 3), MADRID)  # start == end: none
    daytime = FollowUpPolicy(quiet_start=time(12), quiet_end=time(14))
    assert daytime.is_quiet(local(18, 13), MADRID) and daytime.next_allowed(local(18, 13), MADRID) == local(18, 14)


def test_quiet_hours_across_a_daylight_saving_change() -> None:
    policy = FollowUpPolicy()
    night = datetime(2026, 3, 28, 23, 30, tzinfo=ZoneInfo(MADRID))  # clocks jump from 02:00 to 03:00 that night
    assert policy.next_allowed(night.astimezone(UTC), MADRID) == datetime(2026, 3, 29, 9, 0, tzinfo=ZoneInfo(MADRID)).astimezone(UTC)


# -- reminders: parsing --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language", "expected", "subject"),
    [
        ("remind me on Friday at 6pm about the blue dress", "en", (20, 18, 0), "the blue dress"),
        ("recuérdamelo mañana", "es", (19, 10, 0), None),
        ("recuérdame el viernes a las 6 de la tarde", "es", (20, 18, 0), None),
        ("rappelle-moi demain à 18h de commander les chaussures", "fr", (19, 18, 0), "commander les chaussures"),
        ("erinnere mich morgen um 18 Uhr an die Regenjacke", "de", (19, 18, 0), "die Regenjacke"),
        ("erinnere mich am Freitag um 9.30 Uhr", "de", (20, 9, 30), None),
        ("me lembre amanhã às 18h da jaqueta", "pt_BR", (19, 18, 0), "jaqueta"),
        ("remind me tonight", "en", (18, 19, 0), None),
        ("remind me tomorrow morning about socks", "en", (19, 9, 0), "socks"),
        ("remind me at 18:30", "en", (18, 18, 30), None),
        ("remind me at 9", "en", (19, 9, 0), None),  # 9:00 has passed today: tomorrow
        ("recuérdame mañana por la mañana", "es", (19, 9, 0), None),
        ("remind me on dec 20", "en", None, None),
    ],
)
def test_reminder_times_in_five_languages(text: str, language: str, expected: tuple[int, int, int] | None, subject: str | None) -> None:
    when = parse_when(text, language=language, now=NOW, timezone=MADRID)
    assert when is not None
    at = when.at.astimezone(ZoneInfo(MADRID))
    if expected is not None:
        assert (at.day, at.hour, at.minute) == expected
    else:
        assert (at.month, at.day, at.hour) == (12, 20, 10)
    assert subject_of(text) == subject


def test_delays_and_what_is_not_a_time() -> None:
    for text, language in [("remind me in 2 hours", "en"), ("recuérdame en 2 horas", "es"), ("rappelle-moi dans 2 heures", "fr"),
                           ("erinnere mich in 2 Stunden", "de"), ("me lembre daqui a 2 horas", "pt_BR")]:
        when = parse_when(text, language=language, now=NOW, timezone=MADRID)
        assert when is not None and when.at == NOW + timedelta(hours=2), text
    assert parse_when("remind me about the blue dress", language="en", now=NOW, timezone=MADRID) is None
    assert parse_time_of_day("I want 2 pairs of socks") is None
    assert parse_time_of_day("a las 18") == time(18, 0)
    assert parse_time_of_day("à 18h30") == time(18, 30)
    assert parse_time_of_day("um 6 Uhr abends") == time(18, 0)
    assert parse_time_of_day("às 9h da manhã") == time(9, 0)


# -- quiet hours, caps, windows, staff ---------------------------------------------------------------------------


async def test_a_reminder_due_at_night_waits_for_the_morning(rig: Rig, store: Store, clock: Clock) -> None:
    customer = await shopper(store, "1001")
    followup = await reminder(store, customer, "1001", local(18, 22, 30))
    clock.set(local(18, 22, 30))
    await rig.tick()
    status, reason, due = await status_of(store, followup)
    assert (status, reason, due) == ("pending", "quiet_hours", local(19, 9))
    assert rig.telegram.sent == []
    clock.set(local(19, 8, 59))
    await rig.tick()
    assert rig.telegram.sent == []
    clock.set(local(19, 9))
    await rig.tick()
    assert [s.chat_id for s in rig.telegram.sent] == ["1001"]
    assert "the boots" in rig.telegram.sent[0].text and "STOP" in rig.telegram.sent[0].text
    assert (await status_of(store, followup))[0] == "sent"
    await rig.tick()
    assert len(rig.telegram.sent) == 1  # once


async def test_quiet_hours_follow_the_shoppers_timezone(rig: Rig, store: Store, clock: Clock) -> None:
    customer = await shopper(store, "1002", timezone="America/New_York")
    followup = await reminder(store, customer, "1002", local(18, 22, 30), timezone="America/New_York")  # 16:30 in New York
    clock.set(local(18, 22, 30))
    await rig.tick()
    assert (await status_of(store, followup))[0] == "sent"


async def test_the_cap_allows_two_nudges_a_week_then_waits(rig: Rig, store: Store, clock: Clock) -> None:
    customer = await shopper(store, "1003")
    sent_at: list[datetime] = []
    for _day in range(3):
        async with store.transaction() as db:
            cur = await db.execute(
                "INSERT INTO subscriptions (customer_id, channel, chat_id, sku, title, size, timezone, created_at) "
                "VALUES (?, 'telegram', '1003', 'RUN-9-41', 'Carbon Racer', '41', ?, ?)",
                (customer, MADRID, stamp(clock())),
            )
            subscription = int(cur.lastrowid or 0)
        await reminder(store, customer, "1003", clock(), kind=BACK_IN_STOCK, sku="RUN-9-41", subscription_id=subscription)
        await rig.tick()
        sent_at.append(clock())
        clock.advance(days=1)
    assert len(rig.telegram.sent) == 2
    async with store.db.execute("SELECT id, status, reason, due_at FROM followups ORDER BY id") as cur:
        rows = list(await cur.fetchall())
    assert [r["status"] for r in rows] == ["sent", "sent", "pending"]
    assert rows[2]["reason"] == "cap"
    assert datetime.fromisoformat(rows[2]["due_at"]) == sent_at[0] + timedelta(days=7)
    clock.set(sent_at[0] + timedelta(days=7))
    await rig.tick()
    assert len(rig.telegram.sent) == 3


async def test_reminders_the_shopper_set_are_not_capped(rig: Rig, store: Store, clock: Clock) -> None:
    customer = await shopper(store, "1004")
    for minutes in range(4):
        await reminder(store, customer, "1004", clock() + timedelta(minutes=minutes), subject=f"thing {minutes}")
    clock.advance(minutes=5)
    await rig.tick()
    assert [s.text.split("\n")[0] for s in rig.telegram.sent] == [f"⏰ Reminder: thing {n}" for n in range(4)]


async def test_whatsapp_outside_24_hours_uses_the_template_in_the_shoppers_language(rig: Rig, store: Store, clock: Clock) -> None:
    customer = await shopper(store, "34600000001", channel="whatsapp", locale="es", last_inbound=clock() - timedelta(hours=25))
    followup = await reminder(store, customer, "34600000001", clock(), channel="whatsapp", subject="las botas")
    await rig.tick()
    assert rig.channels["whatsapp"].sent == []  # type: ignore[attr-defined]
    assert len(rig.templates.sent) == 1
    chat, text, locale = rig.templates.sent[0]
    assert (chat, locale) == ("34600000001", "es")
    assert "Recordatorio" in text and "las botas" in text and "\n" not in text
    assert (await status_of(store, followup))[0] == "sent"
    async with store.db.execute("SELECT status FROM outbox") as cur:
        assert [r[0] for r in await cur.fetchall()] == ["sent"]


async def test_whatsapp_inside_24_hours_is_a_normal_message(rig: Rig, store: Store, clock: Clock) -> None:
    customer = await shopper(store, "34600000002", channel="whatsapp", last_inbound=clock() - timedelta(hours=23))
    await reminder(store, customer, "34600000002", clock(), channel="whatsapp")
    await rig.tick()
    assert len(rig.channels["whatsapp"].sent) == 1 and rig.templates.sent == []  # type: ignore[attr-defined]


async def test_without_a_template_or_on_messenger_nothing_goes_out_after_24_hours(store: Store, clock: Clock) -> None:
    rig = rig_for(store, clock)
    rig.dispatcher._templates.clear()
    wa = await shopper(store, "34600000003", channel="whatsapp", last_inbound=clock() - timedelta(days=2))
    fb = await shopper(store, "psid-1", channel="messenger", last_inbound=clock() - timedelta(days=2))
    first = await reminder(store, wa, "34600000003", clock(), channel="whatsapp")
    second = await reminder(store, fb, "psid-1", clock(), channel="messenger")
    await rig.tick()
    assert await status_of(store, first) == ("blocked", "window_no_template", clock())
    assert await status_of(store, second) == ("blocked", "messenger_window_no_tag", clock())
    assert rig.channels["messenger"].sent == []  # type: ignore[attr-defined]


async def test_nothing_is_sent_into_a_thread_staff_owns(rig: Rig, store: Store, clock: Clock) -> None:
    customer = await shopper(store, "1005")
    followup = await reminder(store, customer, "1005", clock())
    async with store.transaction() as db:
        await db.execute("UPDATE conversations SET state = 'human', owner = 'staff-1' WHERE chat_id = '1005'")
    await rig.tick()
    status, reason, due = await status_of(store, followup)
    assert (status, reason, due) == ("pending", "staff", clock() + timedelta(minutes=30))
    async with store.transaction() as db:
        await db.execute("UPDATE conversations SET state = 'bot', owner = NULL WHERE chat_id = '1005'")
    clock.advance(minutes=30)
    await rig.tick()
    assert (await status_of(store, followup))[0] == "sent"


async def test_rendered_in_the_shoppers_language(rig: Rig, store: Store, clock: Clock) -> None:
    for chat, locale, words in [("2001", "de", "Erinnerung"), ("2002", "fr", "Rappel"), ("2003", "pt_BR", "Lembrete")]:
        customer = await shopper(store, chat, locale=locale)
        await reminder(store, customer, chat, clock())
        await rig.tick()
        assert words in rig.telegram.sent[-1].text, (locale, rig.telegram.sent[-1].text)


async def test_a_revoked_consent_is_checked_at_send_time(rig: Rig, store: Store, clock: Clock) -> None:
    customer = await shopper(store, "1006")
    followup = await reminder(store, customer, "1006", clock() + timedelta(hours=1))
    async with store.transaction() as db:  # revoked by staff in the database, without cancelling anything
        await db.execute("UPDATE consents SET status = 'revoked', revoked_via = 'staff' WHERE customer_id = ?", (customer,))
    clock.advance(hours=1)
    await rig.tick()
    assert (await status_of(store, followup))[:2] == ("cancelled", "no_consent")
    assert rig.telegram.sent == []


async def test_stop_holds_a_queued_follow_up_the_outbox_has_not_sent(rig: Rig, store: Store, clock: Clock) -> None:
    customer = await shopper(store, "1007")
    followup = await reminder(store, customer, "1007", clock())
    await rig.dispatcher.run_once()  # queued in the outbox; the sender has not run yet
    assert (await status_of(store, followup))[0] == "queued"
    stop = Evidence("telegram:stop-1", "STOP", clock())
    revocation = await ConsentLedger(store).revoke_all(customer, "telegram", stop)
    assert set(revocation.purposes) == {Purpose.REMINDERS, Purpose.BACK_IN_STOCK} and revocation.cancelled == 1
    while await rig.sender.deliver_due():
        pass
    assert rig.telegram.sent == []
    assert (await status_of(store, followup))[0] == "cancelled"


async def test_a_platform_block_revokes_consent_and_stops_the_rest(rig: Rig, store: Store, clock: Clock) -> None:
    customer = await shopper(store, "1008")
    first = await reminder(store, customer, "1008", clock(), subject="one")
    second = await reminder(store, customer, "1008", clock() + timedelta(hours=1), subject="two")
    rig.telegram.failures.append(SendError("Forbidden: bot was blocked by the user", unreachable=True, code="403"))
    await rig.tick()
    assert (await status_of(store, first))[0] == "failed"
    clock.advance(hours=1)
    await rig.tick()  # the next pass sees the identity unreachable and revokes
    assert not await ConsentLedger(store).is_granted(customer, Purpose.REMINDERS, "telegram")
    records = await ConsentLedger(store).records(customer)
    assert {r.revoked_via for r in records} == {"platform"}
    assert (await status_of(store, second))[0] == "cancelled"
    assert rig.telegram.sent == []


# -- back in stock: events, pacing, budget ----------------------------------------------------------------------


async def subscribe(store: Store, customer: str, chat_id: str, sku: str = "RUN-9-42", max_price: str | None = None) -> int:
    async with store.transaction() as db:
        cur = await db.execute(
            "INSERT INTO subscriptions (customer_id, channel, chat_id, sku, product_id, title, size, max_price, timezone, created_at) "
            "VALUES (?, 'telegram', ?, ?, 'RUN-9', 'Carbon Racer', '42', ?, ?, ?)",
            (customer, chat_id, sku, max_price, MADRID, stamp(store.now())),
        )
        return int(cur.lastrowid or 0)


async def test_a_small_restock_nudges_no_more_shoppers_than_units_first_come_first_served(
    rig: Rig, store: Store, clock: Clock
) -> None:
    chats = [f"30{n}" for n in range(5)]
    for chat in chats:
        customer = await shopper(store, chat)
        await subscribe(store, customer, chat)
        clock.advance(seconds=1)
    await set_stock(rig.catalog, "RUN-9-42", 2, store=store)
    await rig.tick()
    assert [s.chat_id for s in rig.telegram.sent] == chats[:2]
    assert "back in stock" in rig.telegram.sent[0].text and rig.telegram.sent[0].message is not None
    assert rig.telegram.sent[0].message.products[0].sku == "RUN-9-42"
    clock.advance(minutes=30)
    await rig.tick()
    assert len(rig.telegram.sent) == 2  # the wave is not over
    clock.advance(minutes=31)
    await rig.tick()  # nobody bought: the next two in line
    assert [s.chat_id for s in rig.telegram.sent] == chats[:4]
    await set_stock(rig.catalog, "RUN-9-42", 0, store=store)  # sold out before the last one's turn
    clock.advance(minutes=61)
    await rig.tick()
    assert len(rig.telegram.sent) == 4
    async with store.db.execute("SELECT status FROM subscriptions ORDER BY id") as cur:
        assert [r[0] for r in await cur.fetchall()] == ["notified"] * 4 + ["active"]  # waits for the next restock
    await set_stock(rig.catalog, "RUN-9-42", 1, store=store)
    await rig.tick()
    assert [s.chat_id for s in rig.telegram.sent] == chats


async def test_a_nudge_over_the_shoppers_budget_is_not_sent(rig: Rig, store: Store, clock: Clock) -> None:
    cheap = await shopper(store, "3101")
    rich = await shopper(store, "3102")
    await subscribe(store, cheap, "3101", max_price="100")
    await subscribe(store, rich, "3102", max_price="150")
    await set_stock(rig.catalog, "RUN-9-42", 10, store=store)
    await rig.tick()
    assert [s.chat_id for s in rig.telegram.sent] == ["3102"]
    async with store.db.execute("SELECT chat_id, status, reason FROM followups ORDER BY id") as cur:
        assert [tuple(r) for r in await cur.fetchall()] == [("3101", "cancelled", "over_budget"), ("3102", "sent", None)]


async def test_an_event_is_consumed_once(rig: Rig, store: Store, clock: Clock) -> None:
    customer = await shopper(store, "3201")
    await subscribe(store, customer, "3201")
    await set_stock(rig.catalog, "RUN-9-42", 5, store=store)
    assert await rig.dispatcher.consume_back_in_stock_events() == 1
    assert await rig.dispatcher.consume_back_in_stock_events() == 0
    await set_stock(rig.catalog, "RUN-9-42", 0, store=store)
    await set_stock(rig.catalog, "RUN-9-42", 5, store=store)
    assert await rig.dispatcher.consume_back_in_stock_events() == 0  # a nudge is already waiting for that subscription


# -- restarts, crashes, the lease ----------------------------------------------------------------------------------


async def test_a_scheduler_down_across_due_times_sends_each_once_in_order(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "shopkeeper.db"
    async with Store(path, clock=clock) as store:
        customer = await shopper(store, "4001")
        for hour, subject in [(12, "first"), (14, "second"), (23, "third"), (13, "fourth")]:
            await reminder(store, customer, "4001", local(18, hour), subject=subject)
    clock.set(local(19, 2))  # the scheduler was down all evening; now it is night in Madrid
    async with Store(path, clock=clock) as store:
        rig = rig_for(store, clock)
        await rig.tick()
        assert rig.telegram.sent == []  # quiet hours still hold
        clock.set(local(19, 9))
        await rig.tick()
        await rig.tick()
        assert [s.text.split("\n")[0] for s in rig.telegram.sent] == [
            "⏰ Reminder: first", "⏰ Reminder: fourth", "⏰ Reminder: second", "⏰ Reminder: third",
        ]


async def test_crash_after_queueing_sends_once_after_restart(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "shopkeeper.db"
    async with Store(path, clock=clock) as store:
        customer = await shopper(store, "4101")
        followup = await reminder(store, customer, "4101", clock())
        await rig_for(store, clock).dispatcher.run_once()  # queued; the process dies before the outbox sends
    async with Store(path, clock=clock) as store:
        rig = rig_for(store, clock)
        await store.recover_outbox()
        await rig.dispatcher.recover()
        await rig.tick()
        await rig.tick()
        assert [s.chat_id for s in rig.telegram.sent] == ["4101"]
        assert (await status_of(store, followup))[0] == "sent"


async def test_crash_mid_send_is_never_resent_and_waits_for_review(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "shopkeeper.db"
    async with Store(path, clock=clock) as store:
        customer = await shopper(store, "4201")
        wa = await shopper(store, "34600004201", channel="whatsapp", last_inbound=clock() - timedelta(days=2))
        followup = await reminder(store, customer, "4201", clock())
        template = await reminder(store, wa, "34600004201", clock(), channel="whatsapp")
        rig = rig_for(store, clock)
        await rig.dispatcher.run_once()
        assert len(rig.templates.sent) == 1
        async with store.transaction() as db:  # the state a crash in the middle of both sends leaves behind
            await db.execute("UPDATE outbox SET status = 'sending' WHERE id IN (SELECT outbox_id FROM followups WHERE id IN (?, ?))",
                             (followup, template))
            await db.execute("UPDATE followups SET status = 'sending' WHERE id = ?", (template,))
    async with Store(path, clock=clock) as store:
        rig = rig_for(store, clock)
        await store.recover_outbox()
        await rig.dispatcher.recover()
        await rig.tick()
        assert rig.telegram.sent == [] and rig.templates.sent == []  # neither is sent again
        assert (await status_of(store, followup))[0] == "maybe_sent"
        assert (await status_of(store, template))[0] == "maybe_sent"
        assert {row["id"] for row in await review_queue(store)} == {followup, template}


async def test_a_template_queued_but_not_yet_claimed_is_sent_once_after_a_crash(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "shopkeeper.db"
    async with Store(path, clock=clock) as store:
        wa = await shopper(store, "34600004301", channel="whatsapp", last_inbound=clock() - timedelta(days=2))
        template = await reminder(store, wa, "34600004301", clock(), channel="whatsapp")
        async with store.transaction() as db:  # the batch committed 'queued', the process died before the claim
            await db.execute("UPDATE followups SET status = 'queued', via = 'template', attempts = 1 WHERE id = ?", (template,))
    async with Store(path, clock=clock) as store:
        rig = rig_for(store, clock)
        await rig.dispatcher.recover()
        assert (await status_of(store, template))[0] == "pending"
        await rig.tick()
        await rig.tick()
        assert len(rig.templates.sent) == 1 and (await status_of(store, template))[0] == "sent"


async def test_one_lease_holder_and_takeover_after_expiry(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "shopkeeper.db"
    async with Store(path, clock=clock) as web, Store(path, clock=clock) as worker:
        first = SchedulerLease(web, ttl=timedelta(seconds=30), holder="web-host:1:a")
        second = SchedulerLease(worker, ttl=timedelta(seconds=30), holder="worker-host:2:b")
        assert await first.acquire() is True and first.held
        assert await second.acquire() is False and not second.held
        clock.advance(seconds=20)
        assert await first.acquire() is False and first.held  # renewed, not newly taken
        clock.advance(seconds=29)
        assert await second.acquire() is False  # renewed 29 s ago: still valid
        clock.advance(seconds=2)  # the holder stopped renewing: expired
        assert not first.held
        assert await second.acquire() is True and second.held
        # the old holder cannot claim anything any more (fenced inside the write transaction)
        customer = await shopper(web, "5001")
        await reminder(web, customer, "5001", clock())
        stale = rig_for(web, clock, lease=first)
        first._expires_at = clock() + timedelta(seconds=10)  # it believes it still holds the lease
        with pytest.raises(LeaseLost):
            await stale.dispatcher.run_once()
        assert not first.held
        assert (await status_of(web, 1))[0] == "pending"
        fresh = rig_for(worker, clock, lease=second)
        await fresh.tick()
        assert len(fresh.telegram.sent) == 1


async def test_a_dead_holder_on_this_machine_is_replaced_at_once(tmp_path: Path, clock: Clock) -> None:
    import socket
    import subprocess
    import sys

    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    dead = f"{socket.gethostname()}:{finished.stdout.strip()}:dead"
    async with Store(tmp_path / "shopkeeper.db", clock=clock) as store:
        async with store.transaction() as db:
            await db.execute(
                "INSERT INTO scheduler_lease (name, holder, acquired_at, renewed_at, expires_at) VALUES ('scheduler', ?, ?, ?, ?)",
                (dead, stamp(clock()), stamp(clock()), stamp(clock() + timedelta(minutes=5))),
            )
        lease = SchedulerLease(store, ttl=timedelta(seconds=30))
        assert await lease.acquire() is True
        assert (await lease.current()).holder == lease.holder  # type: ignore[union-attr]


async def test_web_and_worker_start_schedulers_but_one_works(settings: Settings) -> None:
    settings = settings.model_copy(update={"followup_quiet_start": time(0), "followup_quiet_end": time(0)})  # real clock here
    async with open_runtime(settings) as web, open_runtime(settings) as worker:
        leases = [SchedulerLease(rt.store, ttl=timedelta(seconds=30)) for rt in (web, worker)]
        schedulers = [build_scheduler(rt, lease=lease) for rt, lease in zip((web, worker), leases, strict=True)]
        for scheduler in schedulers:
            assert {job.id for job in scheduler.get_jobs()} >= {
                "scheduler_lease", "followups", "inbox_recovery", "followup_conversions", "privacy_erasures",
            }
        customer = await shopper(web.store, "shopper-7", channel="web", purposes=(Purpose.REMINDERS,))
        await reminder(web.store, customer, "shopper-7", web.store.now() - timedelta(minutes=1), channel="web", timezone="UTC")
        for scheduler in schedulers:  # both processes tick: lease first, then the dispatcher
            await scheduler.get_job("scheduler_lease").func()
        for scheduler in schedulers:
            await scheduler.get_job("followups").func()
        assert [lease.held for lease in leases] == [True, False]
        messages = await web.store.messages_after("web", "shopper-7")
        followups = [m for m in messages if m.payload and "followup_id" in m.payload]
        assert len(followups) == 1 and "Reminder" in followups[0].text  # delivered once, to the web page's poll


# -- conversion ---------------------------------------------------------------------------------------------------


async def test_an_order_with_the_nudged_item_within_7_days_is_attributed(rig: Rig, store: Store, clock: Clock) -> None:
    customer = await shopper(store, "6001")
    other = await shopper(store, "6002")
    for who, chat in [(customer, "6001"), (other, "6002")]:
        await subscribe(store, who, chat)
    await set_stock(rig.catalog, "RUN-9-42", 10, store=store)
    await rig.tick()
    assert len(rig.telegram.sent) == 2
    line = OrderLine("RUN-9-42", "Carbon Racer", 1, Decimal("120"))
    await store.upsert_orders([
        Order("A-1", customer, "processing", "EUR", Decimal("120"), None, clock() + timedelta(days=3), (line,)),
        Order("A-2", other, "processing", "EUR", Decimal("120"), None, clock() + timedelta(days=8), (line,)),  # too late
    ])
    clock.advance(days=9)
    assert await attribute_conversions(store, rig.catalog) == 1
    assert await attribute_conversions(store, rig.catalog) == 0  # an order counts once
    stats = await conversion_stats(store)
    assert (stats.sent, stats.converted, stats.rate) == (2, 1, 0.5)
    assert stats.by_kind[BACK_IN_STOCK].converted == 1
    await store.refresh_gauges(rig.metrics)  # what /metrics does on every scrape
    rendered = rig.metrics.render().decode()
    assert 'shopkeeper_followup_conversions{kind="back_in_stock"} 1.0' in rendered
    assert 'shopkeeper_followups_delivered{kind="back_in_stock"} 2.0' in rendered
    assert 'shopkeeper_followups_by_status{status="sent"} 2.0' in rendered
    assert 'shopkeeper_followups_total{kind="back_in_stock",outcome="sent"} 2.0' in rendered


def test_the_followups_table_is_indexed_for_the_due_scan(tmp_path: Path) -> None:
    from bot.migrations import MIGRATIONS
    from bot.store import _split_sql

    with sqlite3.connect(tmp_path / "plan.db") as db:
        for _version, sql in MIGRATIONS:
            for statement in _split_sql(sql):
                db.execute(statement)
        plan = " ".join(str(row) for row in db.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM followups WHERE status = 'pending' AND due_at <= ? "
            "ORDER BY due_at, requested_at, id LIMIT 200",
            ("x",),
        ))
    assert "followups_due" in plan and "TEMP B-TREE" not in plan
