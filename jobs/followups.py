"""Follow-ups: reminders and back-in-stock nudges, from the queue to the shopper, once.

The ``followups`` table is the truth; APScheduler only ticks (:mod:`jobs.scheduler`
runs :meth:`FollowUpDispatcher.run_once` every ``followup_dispatch_seconds`` in the
one process holding the scheduler lease). One pass:

1. **platform opt-outs**: consents of identities the outbox marked unreachable are
   revoked (:meth:`bot.consent.ConsentLedger.sync_platform_revocations`);
2. **back-in-stock events** (``back_in_stock_events``, written when stock goes
   0 → >0) become one ``back_in_stock`` follow-up per active subscription to that
   exact variant, in subscription order, and the event is marked consumed, in one
   transaction;
3. **reconcile**: follow-ups handed to the outbox take its outcome (``sent``,
   ``maybe_sent``, ``failed``; ``held`` → ``blocked``);
4. **dispatch**: due ``pending`` rows, oldest due first, in batches. For each, at
   send time, every time (:func:`decide`): consent still granted on that channel;
   back-in-stock only: the variant still sold and within the shopper's budget, and
   stock-aware pacing (never more nudges out in a wave than units in stock, first
   come first served); not in a thread staff owns (``pending_human``/``human``:
   checked again later); quiet hours in the shopper's timezone (the send waits for
   their end); the frequency cap on nudges per customer; the platform window
   (WhatsApp outside 24 hours → the configured template, Messenger → blocked as no
   message tag applies to these messages). The message is rendered in the shopper's
   language.

A batch is claimed and queued in **one transaction**, fenced by the lease:
``pending`` rows become ``queued`` together with their outbox row (and the
transcript message), or deferred/cancelled/blocked with a reason. The outbox
(:class:`bot.outbox.OutboxSender`) sends them. Web and terminal chats have no send
API: the stored message is the delivery (``sent`` at once). Template sends, which
the outbox cannot do, are sent here right after the commit, the outbox row written
``sending`` first and finished like the outbox does.

Crashes: before the commit nothing was claimed (the rows are still ``pending``:
sent once later); after it, the outbox row exists and the outbox guarantees at most
once (a row caught ``sending`` becomes ``maybe_sent``, listed for review, never
resent); a template caught ``sending`` becomes ``maybe_sent`` in :meth:`FollowUpDispatcher.recover`,
run whenever the lease is (re)taken. A scheduler that was down sends each overdue
row once, in due order, still respecting quiet hours.

Conversion: :func:`attribute_conversions` ties an order from a nudged customer that
contains the nudged item, placed within ``followup_conversion_days``, to the latest
such nudge; :func:`conversion_stats` summarises them for the staff dashboard, and
``/metrics`` reads them from the table on every scrape (``shopkeeper_followup_conversions``),
so the web process shows what the scheduler process attributed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time as monotonic_time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, Protocol
from zoneinfo import ZoneInfo

from bot.consent import ConsentLedger, Purpose, item_label, stamp
from bot.handoff import SILENT_STATES
from bot.i18n import _, format_price, use_locale
from bot.messages import OutboundMessage, ProductCard
from bot.metrics import Metrics
from bot.store import Store
from channels.base import BaseChannel, SendError, SentMessage
from kb.index import BaseIndex
from kb.inventory import product_for_sku
from kb.models import Product, Variant

if TYPE_CHECKING:
    from bot.settings import Settings
    from jobs.lease import SchedulerLease

log = logging.getLogger(__name__)

REMINDER = "reminder"
BACK_IN_STOCK = "back_in_stock"
KIND_PURPOSE: Mapping[str, Purpose] = {REMINDER: Purpose.REMINDERS, BACK_IN_STOCK: Purpose.BACK_IN_STOCK}
NUDGE_KINDS = frozenset({BACK_IN_STOCK})  # what the frequency cap counts; reminders were asked for at a time
DIRECT_CHANNELS = frozenset({"web", "terminal"})  # the stored message is the delivery (as in bot.takeover)
WHATSAPP_CHANNELS = frozenset({"whatsapp", "twilio"})
IN_FLIGHT = ("queued", "sending", "sent", "maybe_sent")  # statuses of a follow-up that went (or may have gone) out
TEMPLATE_MAX_ATTEMPTS = 5
TEMPLATE_BACKOFF = timedelta(seconds=30)
EVENTS_PER_PASS = 100
HANDOFF_POLL_SECONDS = 0.02
ATTRIBUTION_LOOKBACK = 5  # windows back: orders may be imported days after they were placed


# -- policy ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FollowUpPolicy:
    """The send-time rules, from the settings (``SHOPKEEPER_FOLLOWUP_*``)."""

    quiet_start: time = time(21, 0)
    quiet_end: time = time(9, 0)
    cap: int = 2
    cap_window: timedelta = timedelta(days=7)
    conversion_window: timedelta = timedelta(days=7)
    restock_wave: timedelta = timedelta(minutes=60)
    staff_recheck: timedelta = timedelta(minutes=30)
    batch_size: int = 200
    handoff_limit: int = 200  # follow-ups waiting in the outbox at most (the rest wait in the follow-ups table)

    @classmethod
    def from_settings(cls, settings: Settings) -> FollowUpPolicy:
        return cls(
            quiet_start=settings.followup_quiet_start,
            quiet_end=settings.followup_quiet_end,
            cap=settings.followup_cap,
            cap_window=timedelta(days=settings.followup_cap_days),
            conversion_window=timedelta(days=settings.followup_conversion_days),
            restock_wave=timedelta(minutes=settings.followup_restock_wave_minutes),
            batch_size=settings.followup_batch_size,
        )

    def is_quiet(self, at: datetime, timezone: str) -> bool:
        """Whether ``at`` falls in the quiet hours of ``timezone`` (start == end: never)."""
        start, end = self.quiet_start, self.quiet_end
        if start == end:
            return False
        local = at.astimezone(_zone(timezone)).time()
        return (local >= start or local < end) if start > end else start <= local < end

    def next_allowed(self, at: datetime, timezone: str) -> datetime:
        """``at``, or the end of the quiet hours it falls in (same timezone as ``at``)."""
        if not self.is_quiet(at, timezone):
            return at
        tz = _zone(timezone)
        local = at.astimezone(tz)
        candidate = datetime.combine(local.date(), self.quiet_end, tzinfo=tz)
        if candidate <= local:
            candidate = datetime.combine(local.date() + timedelta(days=1), self.quiet_end, tzinfo=tz)
        return candidate.astimezone(at.tzinfo or UTC)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


# -- templates (WhatsApp outside the 24-hour window) -------------------------------------


class TemplateSender(Protocol):
    """Sends an approved template carrying ``text`` (one line) in ``locale``."""

    def __call__(self, chat_id: str, text: str, locale: str) -> Awaitable[SentMessage]: ...


WHATSAPP_LANGUAGES = {"en": "en", "es": "es", "fr": "fr", "de": "de", "pt_BR": "pt_BR"}


def template_senders(channels: Mapping[str, BaseChannel], settings: Settings) -> dict[str, TemplateSender]:
    """The configured template senders by channel name.

    WhatsApp Cloud sends ``SHOPKEEPER_WHATSAPP_TEMPLATE_NAME`` in the shopper's
    language with the follow-up as its one body parameter ``{{1}}``; Twilio sends
    the content template ``SHOPKEEPER_TWILIO_TEMPLATE_SID`` with variable ``1``.
    """
    senders: dict[str, TemplateSender] = {}
    cloud = channels.get("whatsapp")
    if cloud is not None and settings.whatsapp_template_name:
        name = settings.whatsapp_template_name
        send_cloud = getattr(cloud, "send_template")  # noqa: B009 - only WhatsApp adapters have it

        def whatsapp(chat_id: str, text: str, locale: str) -> Awaitable[SentMessage]:
            result: Awaitable[SentMessage] = send_cloud(chat_id, name, WHATSAPP_LANGUAGES.get(locale, "en"), body_parameters=(text,))
            return result

        senders["whatsapp"] = whatsapp
    twilio = channels.get("twilio")
    if twilio is not None and settings.twilio_template_sid:
        send_twilio = getattr(twilio, "send_template")  # noqa: B009

        def via_twilio(chat_id: str, text: str, locale: str) -> Awaitable[SentMessage]:
            result: Awaitable[SentMessage] = send_twilio(chat_id, {"1": text})
            return result

        senders["twilio"] = via_twilio
    return senders


# -- creating follow-ups in bulk -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewFollowUp:
    """A follow-up to create (reminders from chat use :mod:`bot.reminders`; imports and benchmarks use this)."""

    kind: str
    customer_id: str
    channel: str
    chat_id: str
    due_at: datetime
    timezone: str
    conversation_id: str | None = None
    sku: str | None = None
    product_id: str | None = None
    title: str | None = None
    subject: str | None = None
    locale: str | None = None
    subscription_id: int | None = None
    source_key: str | None = None


async def create_followups(store: Store, items: Iterable[NewFollowUp]) -> int:
    """Insert follow-ups in one transaction (one ``executemany``); a repeated ``source_key`` is skipped."""
    now = stamp(store.now())
    rows = [
        (
            item.kind,
            KIND_PURPOSE[item.kind].value,
            item.customer_id,
            item.channel,
            item.chat_id,
            item.conversation_id,
            item.subscription_id,
            item.sku,
            item.product_id,
            item.title,
            item.subject,
            item.timezone,
            item.locale,
            stamp(item.due_at),
            stamp(item.due_at),
            item.source_key,
            now,
        )
        for item in items
    ]
    async with store.transaction() as db:
        before = db.total_changes
        await db.executemany(
            "INSERT OR IGNORE INTO followups (kind, purpose, customer_id, channel, chat_id, conversation_id, subscription_id, sku, "
            "product_id, title, subject, timezone, locale, requested_at, due_at, source_key, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        return int(db.total_changes - before)


# -- deciding, at send time ---------------------------------------------------------------------


class Action(StrEnum):
    SEND = "send"  # free-form message (through the outbox, or stored for web/terminal)
    TEMPLATE = "template"  # approved template (WhatsApp outside the window)
    DEFER = "defer"  # not now: due_at moves
    CANCEL = "cancel"  # never: consent gone, sold out, over budget, shopper unreachable
    BLOCK = "block"  # never: the platform forbids it (window without template or tag, channel off)


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str = ""
    at: datetime | None = None  # the new due time of a deferral


@dataclass(frozen=True, slots=True)
class DueFollowUp:
    """A due row with what the send-time checks need (one query joins it all)."""

    id: int
    kind: str
    customer_id: str
    channel: str
    chat_id: str
    conversation_id: str | None
    subscription_id: int | None
    sku: str | None
    title: str | None
    subject: str | None
    timezone: str
    locale: str | None
    due_at: datetime
    attempts: int
    consent: str | None
    open_conversation_id: str | None
    conversation_state: str | None
    conversation_locale: str | None
    customer_locale: str | None
    identity_known: bool
    unreachable: bool
    last_inbound_at: datetime | None
    subscription_status: str | None
    size: str | None
    max_price: Decimal | None
    min_price: Decimal | None

    @property
    def conversation(self) -> str | None:
        return self.open_conversation_id or self.conversation_id


def _decimal(value: object) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _due(row: sqlite3.Row) -> DueFollowUp:
    return DueFollowUp(
        id=row["id"],
        kind=row["kind"],
        customer_id=row["customer_id"],
        channel=row["channel"],
        chat_id=row["chat_id"],
        conversation_id=row["conversation_id"],
        subscription_id=row["subscription_id"],
        sku=row["sku"],
        title=row["title"],
        subject=row["subject"],
        timezone=row["timezone"],
        locale=row["locale"],
        due_at=datetime.fromisoformat(row["due_at"]),
        attempts=row["attempts"],
        consent=row["consent"],
        open_conversation_id=row["open_conversation_id"],
        conversation_state=row["conversation_state"],
        conversation_locale=row["conversation_locale"],
        customer_locale=row["customer_locale"],
        identity_known=row["identity_known"] is not None,
        unreachable=bool(row["unreachable"]),
        last_inbound_at=_time(row["last_inbound_at"]),
        subscription_status=row["subscription_status"],
        size=row["size"],
        max_price=_decimal(row["max_price"]),
        min_price=_decimal(row["min_price"]),
    )


DUE_COLUMNS = (
    "f.*, c.status AS consent, conv.id AS open_conversation_id, conv.state AS conversation_state, "
    "conv.locale AS conversation_locale, cu.locale AS customer_locale, i.external_id AS identity_known, "
    "i.unreachable AS unreachable, i.last_inbound_at AS last_inbound_at, s.status AS subscription_status, s.size AS size, "
    "s.max_price AS max_price, s.min_price AS min_price"
)
DUE_JOINS = (
    "FROM followups f "
    "LEFT JOIN consents c ON c.customer_id = f.customer_id AND c.purpose = f.purpose AND c.channel = f.channel AND c.status = 'granted' "
    "LEFT JOIN conversations conv ON conv.channel = f.channel AND conv.chat_id = f.chat_id AND conv.state != 'closed' "
    "LEFT JOIN customers cu ON cu.id = f.customer_id "
    "LEFT JOIN identities i ON i.channel = f.channel AND i.external_id = f.chat_id "
    "LEFT JOIN subscriptions s ON s.id = f.subscription_id "
)


@dataclass(frozen=True, slots=True)
class SendContext:
    """What :func:`decide` knows beyond the row: the channel and the counts of recent sends."""

    channel: BaseChannel | None
    has_template: bool = False
    variant: Variant | None = None  # back-in-stock: the subscribed variant as the catalog has it now
    recent_nudges: Sequence[datetime] = ()  # this customer's nudges within the cap window
    wave: Sequence[datetime] = ()  # nudges for this SKU within the current restock wave


def decide(item: DueFollowUp, now: datetime, policy: FollowUpPolicy, ctx: SendContext) -> Decision:
    """The send-time verdict for one due follow-up (pure: every input is passed in)."""
    if item.consent != "granted":
        return Decision(Action.CANCEL, "no_consent")
    direct = item.channel in DIRECT_CHANNELS
    if not direct:
        if ctx.channel is None:
            return Decision(Action.BLOCK, "channel_not_configured")
        if not item.identity_known or item.unreachable:
            return Decision(Action.CANCEL, "unreachable")
    elif item.conversation is None:
        return Decision(Action.BLOCK, "no_conversation")
    later: list[tuple[datetime, str]] = []
    if item.kind == BACK_IN_STOCK:
        if item.subscription_status != "active":
            return Decision(Action.CANCEL, "subscription_ended")
        variant = ctx.variant
        if variant is None:
            return Decision(Action.CANCEL, "product_gone")
        if not variant.in_stock:
            return Decision(Action.CANCEL, "sold_out")  # the subscription waits for the next restock
        if item.max_price is not None and variant.price > item.max_price:
            return Decision(Action.CANCEL, "over_budget")
        if item.min_price is not None and variant.price < item.min_price:
            return Decision(Action.CANCEL, "under_budget")
        if variant.stock is not None and len(ctx.wave) >= variant.stock:
            later.append((min(ctx.wave) + policy.restock_wave, "pacing"))
    if item.kind in NUDGE_KINDS and policy.cap > 0 and len(ctx.recent_nudges) >= policy.cap:
        ordered = sorted(ctx.recent_nudges)
        later.append((ordered[len(ordered) - policy.cap] + policy.cap_window, "cap"))
    if item.conversation_state in SILENT_STATES:
        later.append((now + policy.staff_recheck, "staff"))
    candidate = max([now, *(at for at, _r in later)])
    allowed = policy.next_allowed(candidate, item.timezone)
    if allowed > now:
        reasons = [reason for at, reason in later if at > now]
        if allowed > candidate:
            reasons.append("quiet_hours")
        return Decision(Action.DEFER, "+".join(reasons), allowed)
    if direct or ctx.channel is None or ctx.channel.within_window(item.last_inbound_at, now):
        return Decision(Action.SEND)
    if ctx.has_template:
        return Decision(Action.TEMPLATE)
    if item.channel == "messenger":
        return Decision(Action.BLOCK, "messenger_window_no_tag")
    return Decision(Action.BLOCK, "window_no_template")


# -- rendering --------------------------------------------------------------------------------


def render(item: DueFollowUp, product: Product | None, variant: Variant | None) -> OutboundMessage:
    """The follow-up in the current locale: its words, the product card with current price and stock, the way out."""
    cards: tuple[ProductCard, ...] = ()
    if product is not None and variant is not None:
        cards = (
            ProductCard(
                sku=variant.sku,
                title=product.title,
                price=variant.price,
                currency=product.currency,
                in_stock=variant.in_stock,
                url=product.url,
                image=product.image,
                price_text=format_price(variant.price, product.currency),
            ),
        )
    if item.kind == BACK_IN_STOCK:
        text = _("Good news: {item} is back in stock!", item=item_label(item.title or (product.title if product else ""), item.size))
    elif item.subject or item.title:
        text = _("⏰ Reminder: {subject}", subject=item.subject or item.title)
    else:
        text = _("⏰ Here's the reminder you asked for.")
    text += "\n" + _("Reply STOP to stop reminders and alerts.")
    return OutboundMessage(text, products=cards)


def template_text(message: OutboundMessage) -> str:
    """One line for a template parameter (no newlines or tabs, as WhatsApp requires)."""
    first = message.text.split("\n", 1)[0]
    if message.products:
        card = message.products[0]
        first += f" · {card.title} · {card.price_text or card.price}" + (f" · {card.url}" if card.url else "")
    return " ".join(first.split())[:1000]


# -- the dispatcher -----------------------------------------------------------------------------


@dataclass
class DispatchReport:
    """What one :meth:`FollowUpDispatcher.run_once` did."""

    created: int = 0  # back-in-stock follow-ups created from events
    examined: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    reconciled: int = 0


@dataclass(frozen=True, slots=True)
class _Planned:
    item: DueFollowUp
    decision: Decision
    message: OutboundMessage | None = None
    locale: str = "en"


@dataclass(frozen=True, slots=True)
class _TemplateJob:
    followup_id: int
    kind: str
    conversation_id: str | None
    channel: str
    chat_id: str
    payload: str
    text: str
    locale: str
    attempts: int


class FollowUpDispatcher:
    """Claims due follow-ups, checks them, hands them to the outbox. One per scheduler (under the lease)."""

    def __init__(
        self,
        store: Store,
        index: BaseIndex,
        channels: Mapping[str, BaseChannel],
        *,
        policy: FollowUpPolicy | None = None,
        lease: SchedulerLease | None = None,
        metrics: Metrics | None = None,
        templates: Mapping[str, TemplateSender] | None = None,
        wake: Callable[[], None] | None = None,
        default_locale: str = "en",
        clock: Callable[[], datetime] | None = None,
        time_budget: float = 0.8,
    ) -> None:
        self._store = store
        self._index = index
        self._channels = channels
        self.policy = policy or FollowUpPolicy()
        self._lease = lease
        self._metrics = metrics or Metrics()
        self._templates = dict(templates or {})
        self._wake = wake
        self._default_locale = default_locale
        self._clock = clock or store.now
        self._time_budget = time_budget
        self.ledger = ConsentLedger(store)

    # -- one pass ------------------------------------------------------------------------

    async def run_once(self) -> DispatchReport:
        """One pass (see the module docstring); does nothing unless this process holds the lease."""
        report = DispatchReport()
        if self._lease is not None and not self._lease.held:
            return report
        await self.ledger.sync_platform_revocations()
        report.created = await self.consume_back_in_stock_events()
        report.reconciled = await self.reconcile()
        started = monotonic_time.monotonic()
        while monotonic_time.monotonic() - started <= self._time_budget or not report.examined:
            room = self.policy.handoff_limit - await self._outbox_backlog()
            if room < max(1, self.policy.handoff_limit // 2):
                # the outbox is busy: refill it in chunks as it drains (its claims stay cheap, and the
                # dispatcher does not take the database from the sender one row at a time)
                await asyncio.sleep(HANDOFF_POLL_SECONDS)
                if monotonic_time.monotonic() - started > self._time_budget:
                    break
                continue
            limit = min(self.policy.batch_size, room)
            examined = await self._dispatch_batch(report, limit)
            report.examined += examined
            if examined < limit:
                break
        return report

    async def _outbox_backlog(self) -> int:
        async with self._store.db.execute("SELECT COUNT(*) FROM outbox WHERE status = 'pending'") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def recover(self) -> int:
        """After a crash (run when the lease is taken): templates caught mid-send are ``maybe_sent``, never resent.

        Templates queued but not yet claimed go back to ``pending`` (they were never tried).
        """
        now = stamp(self._clock())
        async with self._store.transaction() as db:
            if self._lease is not None:
                await self._lease.check(db)
            await db.execute(
                "UPDATE followups SET status = 'pending', sent_at = NULL, attempts = attempts - 1 "
                "WHERE status = 'queued' AND via = 'template' AND outbox_id IS NULL"
            )
            await db.execute(
                "UPDATE outbox SET status = 'maybe_sent', error = 'interrupted while sending a follow-up template' "
                "WHERE status = 'sending' AND id IN (SELECT outbox_id FROM followups WHERE status = 'sending')"
            )
            cur = await db.execute(
                "UPDATE followups SET status = 'maybe_sent', reason = 'interrupted while sending', ended_at = ? WHERE status = 'sending'",
                (now,),
            )
            interrupted = cur.rowcount
        if interrupted:
            log.warning("%d follow-up(s) were being sent when the previous scheduler stopped: marked maybe_sent", interrupted)
        await self.reconcile()
        return interrupted

    async def consume_back_in_stock_events(self) -> int:
        """Turn unconsumed back-in-stock events into follow-ups for that variant's subscribers (first come first served)."""
        now = stamp(self._clock())
        created = 0
        async with self._store.transaction() as db:
            async with db.execute(
                "SELECT id, sku FROM back_in_stock_events WHERE consumed_at IS NULL ORDER BY id LIMIT ?", (EVENTS_PER_PASS,)
            ) as cur:
                events = list(await cur.fetchall())
            if not events:
                return 0
            if self._lease is not None:
                await self._lease.check(db)
            for event in events:
                cur = await db.execute(
                    "INSERT OR IGNORE INTO followups (kind, purpose, customer_id, channel, chat_id, conversation_id, subscription_id, "
                    "sku, product_id, title, timezone, locale, requested_at, due_at, source_key, created_at) "
                    "SELECT 'back_in_stock', 'back_in_stock', s.customer_id, s.channel, s.chat_id, s.conversation_id, s.id, s.sku, "
                    "s.product_id, s.title, s.timezone, s.locale, ?, ?, 'bis:' || ? || ':' || s.id, ? FROM subscriptions s "
                    "WHERE s.sku = ? AND s.status = 'active' AND NOT EXISTS (SELECT 1 FROM followups f WHERE f.subscription_id = s.id "
                    "AND f.status IN ('pending', 'queued', 'sending')) ORDER BY s.id",
                    (now, now, event["id"], now, event["sku"]),
                )
                created += max(cur.rowcount, 0)
                await db.execute("UPDATE back_in_stock_events SET consumed_at = ? WHERE id = ?", (now, event["id"]))
        if created:
            log.info("back in stock: %d nudge(s) scheduled from %d event(s)", created, len(events))
        return created

    async def reconcile(self) -> int:
        """Follow-ups the outbox finished take its outcome."""
        now = stamp(self._clock())
        async with self._store.transaction() as db, db.execute(
            "UPDATE followups SET status = CASE o.status WHEN 'held' THEN 'blocked' ELSE o.status END, reason = o.error, "
            "delivered_at = CASE o.status WHEN 'sent' THEN o.sent_at END, ended_at = ? FROM outbox o "
            "WHERE o.id = followups.outbox_id AND followups.status = 'queued' AND o.status IN ('sent', 'maybe_sent', 'failed', 'held') "
            "RETURNING followups.kind, followups.status",
            (now,),
        ) as cur:
            rows = list(await cur.fetchall())
        for row in rows:
            self._metrics.followups.labels(row[0], row[1]).inc()
        return len(rows)

    # -- dispatch ----------------------------------------------------------------------------

    async def _dispatch_batch(self, report: DispatchReport, limit: int) -> int:
        now = self._clock()
        async with self._store.db.execute(
            f"SELECT {DUE_COLUMNS} {DUE_JOINS} WHERE f.status = 'pending' AND f.due_at <= ? "
            "ORDER BY f.due_at, f.requested_at, f.id LIMIT ?",
            (stamp(now), limit),
        ) as cur:
            items = [_due(row) for row in await cur.fetchall()]
        if not items:
            return 0
        catalog = await self._catalog(items)
        recent = await self._recent_nudges(items, now)
        wave = await self._wave(items, now)
        planned: list[_Planned] = []
        for item in items:
            product, variant = catalog.get(item.sku or "", (None, None))
            ctx = SendContext(
                channel=self._channels.get(item.channel),
                has_template=item.channel in self._templates,
                variant=variant,
                recent_nudges=recent[item.customer_id],
                wave=wave[item.sku or ""],
            )
            decision = decide(item, now, self.policy, ctx)
            if decision.action in (Action.SEND, Action.TEMPLATE):
                locale = item.conversation_locale or item.customer_locale or item.locale or self._default_locale
                with use_locale(locale):
                    message = render(item, product, variant)
                if item.kind in NUDGE_KINDS:
                    recent[item.customer_id].append(now)
                if item.kind == BACK_IN_STOCK and item.sku:
                    wave[item.sku].append(now)
                planned.append(_Planned(item, decision, message, locale))
            else:
                planned.append(_Planned(item, decision))
        jobs = await self._apply(planned, now, report)
        if any(p.decision.action is Action.SEND and p.item.channel not in DIRECT_CHANNELS for p in planned) and self._wake:
            self._wake()
        for job in jobs:
            await self._send_template(job)
        return len(items)

    async def _catalog(self, items: Sequence[DueFollowUp]) -> dict[str, tuple[Product | None, Variant | None]]:
        found: dict[str, tuple[Product | None, Variant | None]] = {}
        for sku in {item.sku for item in items if item.sku}:
            product = await product_for_sku(self._index, sku)
            variant = next((v for v in product.variants if v.sku == sku), None) if product else None
            found[sku] = (product, variant)
        return found

    async def _recent_nudges(self, items: Sequence[DueFollowUp], now: datetime) -> defaultdict[str, list[datetime]]:
        """Back-in-stock nudges sent to each customer of the batch within the frequency-cap window."""
        customers = sorted({item.customer_id for item in items if item.kind in NUDGE_KINDS})
        return await self._nudges_sent("customer_id", customers, now - self.policy.cap_window)

    async def _wave(self, items: Sequence[DueFollowUp], now: datetime) -> defaultdict[str, list[datetime]]:
        """Back-in-stock nudges sent for each SKU of the batch within the current restock wave."""
        skus = sorted({item.sku for item in items if item.kind == BACK_IN_STOCK and item.sku})
        return await self._nudges_sent("sku", skus, now - self.policy.restock_wave)

    async def _nudges_sent(
        self, column: Literal["customer_id", "sku"], keys: Sequence[str], since: datetime
    ) -> defaultdict[str, list[datetime]]:
        """When back-in-stock nudges went out (or may have) after ``since``, by ``column`` value."""
        sent: defaultdict[str, list[datetime]] = defaultdict(list)
        for chunk in _chunks(keys, 500):
            marks = ",".join("?" * len(chunk))
            async with self._store.db.execute(
                f"SELECT {column} AS key, sent_at FROM followups WHERE {column} IN ({marks}) AND kind = 'back_in_stock' "  # noqa: S608
                f"AND sent_at > ? AND status IN ('queued', 'sending', 'sent', 'maybe_sent')",
                (*chunk, stamp(since)),
            ) as cur:
                for row in await cur.fetchall():
                    sent[row["key"]].append(datetime.fromisoformat(row["sent_at"]))
        return sent

    async def _apply(self, planned: Sequence[_Planned], now: datetime, report: DispatchReport) -> list[_TemplateJob]:
        """Write the batch's decisions in one transaction, fenced by the lease; returns the templates to send.

        Sends become ``queued`` with their transcript message and ``pending`` outbox row
        (web and terminal: ``sent``, the message is the delivery); templates stay
        ``queued`` without an outbox row until :meth:`_send_template` claims each one.
        """
        at, iso = stamp(now), now.astimezone(UTC).isoformat()  # iso: the store's own format in its tables
        defers: list[tuple[str, str, int]] = []
        ends: list[tuple[str, str, str, int]] = []
        sends: list[tuple[_Planned, Decision]] = []
        counted: list[tuple[str, str]] = []
        async with self._store.transaction() as db:
            if self._lease is not None:
                await self._lease.check(db)
            fresh = await self._fresh(db, [p.item.id for p in planned if p.message is not None])
            for plan in planned:
                item, decision = plan.item, plan.decision
                if plan.message is not None:
                    state = fresh.get(item.id)
                    if state is None:
                        continue  # no longer pending (cancelled by the shopper meanwhile)
                    if state[0] != "granted":
                        decision = Decision(Action.CANCEL, "no_consent")
                    elif state[1] in SILENT_STATES:
                        decision = Decision(Action.DEFER, "staff", self.policy.next_allowed(now + self.policy.staff_recheck, item.timezone))
                if decision.action is Action.DEFER and decision.at is not None:
                    defers.append((stamp(decision.at), decision.reason, item.id))
                elif decision.action in (Action.CANCEL, Action.BLOCK):
                    ends.append(("cancelled" if decision.action is Action.CANCEL else "blocked", decision.reason, at, item.id))
                elif plan.message is not None:
                    sends.append((plan, decision))
                counted.append((item.kind, decision.reason if decision.action is Action.DEFER else _outcome(decision, item)))
            await db.executemany("UPDATE followups SET due_at = ?, reason = ? WHERE id = ? AND status = 'pending'", defers)
            await db.executemany("UPDATE followups SET status = ?, reason = ?, ended_at = ? WHERE id = ? AND status = 'pending'", ends)
            jobs = await self._queue(db, sends, at, iso) if sends else []
        for kind, outcome in counted:
            report.outcomes[outcome] += 1
            self._metrics.followups.labels(kind, outcome.split("+")[0]).inc()
        return jobs

    async def _fresh(self, db: Any, ids: Sequence[int]) -> dict[int, tuple[str | None, str | None]]:
        """Inside the transaction: consent and thread state of rows still pending (a STOP may have just arrived)."""
        fresh: dict[int, tuple[str | None, str | None]] = {}
        for chunk in _chunks(list(ids), 500):
            marks = ",".join("?" * len(chunk))
            async with db.execute(
                f"SELECT f.id, c.status AS consent, conv.state AS state {DUE_JOINS} WHERE f.id IN ({marks}) AND f.status = 'pending'",
                chunk,
            ) as cur:
                for row in await cur.fetchall():
                    fresh[row["id"]] = (row["consent"], row["state"])
        return fresh

    async def _queue(self, db: Any, sends: Sequence[tuple[_Planned, Decision]], at: str, iso: str) -> list[_TemplateJob]:
        """The batch's sends, a few statements for the whole batch (inside :meth:`_apply`'s transaction)."""
        claims = []
        messages: list[dict[str, Any]] = []
        outbox: list[dict[str, Any]] = []
        jobs: list[_TemplateJob] = []
        for plan, decision in sends:
            item, message = plan.item, plan.message
            assert message is not None  # noqa: S101 - only sends are queued
            direct = item.channel in DIRECT_CHANNELS
            template = decision.action is Action.TEMPLATE
            via = "direct" if direct else ("template" if template else "message")
            claims.append(("sent" if direct else "queued", via, at, at if direct else None, plan.locale, item.id))
            payload = json.dumps({**message.to_dict(), "followup_id": item.id}, ensure_ascii=False)
            if item.conversation is not None:
                messages.append({"conversation": item.conversation, "text": message.text, "payload": payload})
            if template:
                jobs.append(_TemplateJob(item.id, item.kind, item.conversation, item.channel, item.chat_id, payload,
                                         template_text(message), plan.locale, item.attempts + 1))
            elif not direct:
                outbox.append({"conversation": item.conversation, "channel": item.channel, "chat": item.chat_id, "payload": payload})
        await db.executemany(
            "UPDATE followups SET status = ?, via = ?, sent_at = ?, delivered_at = ?, locale = ?, attempts = attempts + 1, reason = NULL "
            "WHERE id = ? AND status = 'pending'",
            claims,
        )
        links: dict[int, list[int | None]] = {item_id: [None, None] for *_rest, item_id in claims}
        if messages:
            async with db.execute(
                "INSERT INTO messages (conversation_id, direction, author, text, payload, created_at) "
                "SELECT value ->> '$.conversation', 'out', 'bot', value ->> '$.text', value ->> '$.payload', ? FROM json_each(?) "
                "RETURNING id, json_extract(payload, '$.followup_id')",
                (iso, json.dumps(messages, ensure_ascii=False)),
            ) as cur:
                for message_id, followup_id in await cur.fetchall():
                    links[int(followup_id)][1] = int(message_id)
        if outbox:
            async with db.execute(
                "INSERT INTO outbox (conversation_id, channel, chat_id, payload, status, next_attempt_at, created_at) "
                "SELECT value ->> '$.conversation', value ->> '$.channel', value ->> '$.chat', value ->> '$.payload', 'pending', ?, ? "
                "FROM json_each(?) RETURNING id, json_extract(payload, '$.followup_id')",
                (iso, iso, json.dumps(outbox, ensure_ascii=False)),
            ) as cur:
                for outbox_id, followup_id in await cur.fetchall():
                    links[int(followup_id)][0] = int(outbox_id)
        await db.executemany(
            "UPDATE followups SET outbox_id = ?, message_id = ? WHERE id = ?",
            [(outbox_id, message_id, followup_id) for followup_id, (outbox_id, message_id) in links.items()],
        )
        notified = [(at, plan.item.subscription_id) for plan, _d in sends if plan.item.kind == BACK_IN_STOCK and plan.item.subscription_id]
        await db.executemany("UPDATE subscriptions SET status = 'notified', ended_at = ? WHERE id = ? AND status = 'active'", notified)
        return jobs

    async def _send_template(self, job: _TemplateJob) -> None:
        """Claim one queued template (outbox row and follow-up ``sending``), send it, record the outcome like the outbox."""
        iso = self._clock().astimezone(UTC).isoformat()
        async with self._store.transaction() as db:
            cur = await db.execute(
                "INSERT INTO outbox (conversation_id, channel, chat_id, payload, status, next_attempt_at, created_at) "
                "VALUES (?, ?, ?, ?, 'sending', ?, ?)",
                (job.conversation_id, job.channel, job.chat_id, job.payload, iso, iso),
            )
            outbox_id = int(cur.lastrowid or 0)
            cur = await db.execute(
                "UPDATE followups SET status = 'sending', outbox_id = ? WHERE id = ? AND status = 'queued'", (outbox_id, job.followup_id)
            )
            if cur.rowcount != 1:  # cancelled meanwhile (STOP): nothing leaves
                await db.execute("DELETE FROM outbox WHERE id = ?", (outbox_id,))
                return
        sender = self._templates[job.channel]
        try:
            sent = await sender(job.chat_id, job.text, job.locale)
        except SendError as exc:
            await self._template_failed(job, outbox_id, exc)
        except Exception as exc:  # an untranslated SDK error: it may have left, so never resend blindly
            log.exception("unexpected error sending follow-up %d as a template", job.followup_id)
            await self._store.outbox_finish(outbox_id, "maybe_sent", f"unexpected error: {type(exc).__name__}")
            await self._finish(job.followup_id, "maybe_sent", f"unexpected error: {type(exc).__name__}")
            self._metrics.followups.labels(job.kind, "maybe_sent").inc()
        else:
            await self._store.outbox_sent(outbox_id, sent.platform_message_ids)
            await self._finish(job.followup_id, "sent", None, delivered=True)
            self._metrics.followups.labels(job.kind, "sent").inc()

    async def _template_failed(self, job: _TemplateJob, outbox_id: int, exc: SendError) -> None:
        reason = f"{exc.code + ': ' if exc.code else ''}{exc}"
        self._metrics.channel_errors.labels(job.channel, exc.code or "none").inc()
        if exc.unreachable:
            await self._store.mark_unreachable(job.channel, job.chat_id)
            await self._store.outbox_finish(outbox_id, "failed", reason)
            await self._finish(job.followup_id, "failed", reason)
            await self.ledger.sync_platform_revocations()
            outcome = "failed"
        elif exc.maybe_sent:
            await self._store.outbox_finish(outbox_id, "maybe_sent", reason)
            await self._finish(job.followup_id, "maybe_sent", reason)
            outcome = "maybe_sent"
        elif exc.permanent or job.attempts >= TEMPLATE_MAX_ATTEMPTS:
            await self._store.outbox_finish(outbox_id, "failed", reason)
            await self._finish(job.followup_id, "failed", reason)
            outcome = "failed"
        else:
            delay = timedelta(seconds=exc.retry_after) if exc.retry_after is not None else TEMPLATE_BACKOFF * 2 ** (job.attempts - 1)
            await self._store.outbox_finish(outbox_id, "failed", reason + " (retried as a new attempt)")
            async with self._store.transaction() as db:
                await db.execute(
                    "UPDATE followups SET status = 'pending', due_at = ?, reason = ?, outbox_id = NULL, sent_at = NULL "
                    "WHERE id = ? AND status = 'sending'",
                    (stamp(self._clock() + delay), reason, job.followup_id),
                )
            outcome = "retry"
        self._metrics.followups.labels(job.kind, outcome).inc()

    async def _finish(self, followup_id: int, status: str, reason: str | None, *, delivered: bool = False) -> None:
        now = stamp(self._clock())
        async with self._store.transaction() as db:
            await db.execute(
                "UPDATE followups SET status = ?, reason = ?, ended_at = ?, delivered_at = ? "
                "WHERE id = ? AND status IN ('sending', 'maybe_sent')",
                (status, reason, now, now if delivered else None, followup_id),
            )


def _outcome(decision: Decision, item: DueFollowUp) -> str:
    if decision.action is Action.SEND:
        return "sent" if item.channel in DIRECT_CHANNELS else "queued"
    if decision.action is Action.TEMPLATE:
        return "template"
    return decision.reason


def _chunks(values: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


# -- conversions -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KindStats:
    """Delivered follow-ups of one kind and the orders attributed to them."""

    sent: int
    converted: int

    @property
    def rate(self) -> float | None:
        return self.converted / self.sent if self.sent else None


@dataclass(frozen=True, slots=True)
class ConversionStats:
    """For the staff dashboard: per kind and in total, since a given time (or ever)."""

    by_kind: Mapping[str, KindStats]
    maybe_sent: int  # waiting for a person to check (possibly delivered, never resent)

    @property
    def sent(self) -> int:
        return sum(s.sent for s in self.by_kind.values())

    @property
    def converted(self) -> int:
        return sum(s.converted for s in self.by_kind.values())

    @property
    def rate(self) -> float | None:
        return self.converted / self.sent if self.sent else None


async def attribute_conversions(
    store: Store,
    index: BaseIndex | None = None,
    *,
    window: timedelta = timedelta(days=7),
    now: datetime | None = None,
) -> int:
    """Attribute orders to the follow-ups that led to them; returns how many were attributed now.

    An order counts for a follow-up when it belongs to the same customer, was placed
    after the follow-up went out and within ``window``, and contains the follow-up's
    SKU (or, for a reminder about a product, any variant of it when ``index`` is
    given). The latest matching follow-up gets it; an order counts once.
    """
    now = now or store.now()
    async with store.db.execute(
        "SELECT id, kind, customer_id, sku, product_id, sent_at FROM followups WHERE status = 'sent' AND sku IS NOT NULL "
        "AND converted_order IS NULL AND sent_at > ? ORDER BY sent_at DESC, id DESC",
        (stamp(now - window * ATTRIBUTION_LOOKBACK),),
    ) as cur:
        candidates = list(await cur.fetchall())
    if not candidates:
        return 0
    async with store.db.execute("SELECT converted_order FROM followups WHERE converted_order IS NOT NULL") as cur:
        taken = {row[0] for row in await cur.fetchall()}
    orders_by_customer: dict[str, list[Any]] = {}
    attributed: list[tuple[str, str, int, str]] = []
    for row in candidates:
        customer = row["customer_id"]
        if customer not in orders_by_customer:
            orders_by_customer[customer] = list(await store.orders_for(customer))
        sent_at = datetime.fromisoformat(row["sent_at"])
        skus = {row["sku"]}
        if row["kind"] == REMINDER and row["product_id"] and index is not None:
            product = await product_for_sku(index, row["sku"])
            skus |= {v.sku for v in product.variants} if product else set()
        for order in sorted(orders_by_customer[customer], key=lambda o: o.created_at):
            placed = order.created_at if order.created_at.tzinfo else order.created_at.replace(tzinfo=UTC)
            if order.order_number in taken or not sent_at <= placed <= sent_at + window:
                continue
            if any(line.sku in skus for line in order.lines):
                taken.add(order.order_number)
                attributed.append((order.order_number, stamp(placed), row["id"], row["kind"]))
                break
    if attributed:
        async with store.transaction() as db:
            for order_number, placed_at, followup_id, _kind in attributed:
                await db.execute(
                    "UPDATE followups SET converted_order = ?, converted_at = ? WHERE id = ? AND converted_order IS NULL",
                    (order_number, placed_at, followup_id),
                )
    return len(attributed)


async def conversion_stats(store: Store, *, since: datetime | None = None) -> ConversionStats:
    """Follow-ups delivered and converted, by kind (what the staff dashboard shows)."""
    start = stamp(since) if since else ""
    async with store.db.execute(
        "SELECT kind, SUM(status = 'sent') AS sent, SUM(status = 'sent' AND converted_order IS NOT NULL) AS converted, "
        "SUM(status = 'maybe_sent') AS maybe_sent FROM followups WHERE sent_at IS NOT NULL AND sent_at >= ? GROUP BY kind",
        (start,),
    ) as cur:
        rows = await cur.fetchall()
    by_kind = {row["kind"]: KindStats(int(row["sent"] or 0), int(row["converted"] or 0)) for row in rows}
    return ConversionStats(by_kind=by_kind, maybe_sent=sum(int(row["maybe_sent"] or 0) for row in rows))


async def review_queue(store: Store, limit: int = 100) -> list[dict[str, Any]]:
    """Follow-ups that may or may not have reached the shopper (``maybe_sent``): for a person to check, never resent."""
    async with store.db.execute(
        "SELECT id, kind, customer_id, channel, chat_id, subject, title, sent_at, reason FROM followups WHERE status = 'maybe_sent' "
        "ORDER BY sent_at DESC LIMIT ?",
        (limit,),
    ) as cur:
        return [dict(row) for row in await cur.fetchall()]
