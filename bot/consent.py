"""Consent to follow-ups: the ledger, the keywords that revoke it, and the yes/no question that grants it.

Nothing is sent to a shopper on the store's initiative unless they said yes to
it, in their own words, on that channel. The ledger (table ``consents``) is
append-only: one row per grant, per customer, purpose (:class:`Purpose`) and
channel, with what the shopper said (message id, text, time) and when; a
revocation closes the standing row with when, how (keyword, platform, staff) and
what was said. :mod:`jobs.followups` checks the ledger again right before each send.

In a turn (:class:`ConsentDialog`, called by the engine right after the
silent-state check):

* ``STOP``, ``UNSUBSCRIBE``, ``STOPALL``, ``CANCEL``, ``END``, ``QUIT`` and their
  equivalents in Spanish, French, German and Portuguese (:data:`STOP_WORDS`), sent
  as the whole message, revoke every follow-up purpose on that channel at once,
  cancel what was waiting to be sent there, and are confirmed. While staff owns
  the thread the revocation happens silently (the staff member sees the message).
* ``START`` / ``UNSTOP`` (:data:`START_WORDS`) restore what a keyword or the
  platform revoked; with nothing to restore the message is an ordinary turn
  (``start`` is also a greeting).
* ``HELP`` (:data:`HELP_WORDS`) explains what the bot sends and how to stop it.
* A tapped "Alert me when back" button (payload ``/notify SKU``, added by
  :func:`add_alert_buttons` under out-of-stock cards and near misses broken by
  size or stock) asks "Want me to message you when size 42 of … is back in
  stock? (yes/no)". Only an explicit yes (:func:`yes_or_no`, typed or tapped)
  grants the consent and records the subscription to that exact variant;
  anything else drops the question. Nothing is ever pre-ticked.
* The language model's ``subscribe_back_in_stock`` tool (:meth:`ConsentDialog.offer_alert`)
  asks the very same question when no back-in-stock consent stands on that channel;
  with a standing consent it subscribes at once and says so. A pending question of
  purpose ``reminders`` (the model's ``schedule_reminder`` tool) is answered in
  :class:`bot.reminders.ReminderDialog`.

Platform signals count as revocation too: an identity the outbox marked
unreachable (Telegram 403 blocked, Twilio 21610/63014, WhatsApp 131050 marketing
opt-out, Messenger 551…) has its consents on that channel revoked by
:meth:`ConsentLedger.sync_platform_revocations`, which the follow-up dispatcher
runs before every pass.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import aiosqlite

from bot.i18n import _, ngettext
from bot.messages import Button, InboundMessage, OutboundMessage
from bot.shop import ShopProfile
from bot.store import Conversation, Store
from kb.index import BaseIndex
from kb.inventory import product_for_sku
from kb.models import Product, SearchFilters, Variant

log = logging.getLogger(__name__)


class Purpose(StrEnum):
    """What a consent allows the store to send first."""

    REMINDERS = "reminders"
    BACK_IN_STOCK = "back_in_stock"
    MARKETING = "marketing"


FOLLOWUP_PURPOSES: tuple[Purpose, ...] = tuple(Purpose)


class Keyword(StrEnum):
    STOP = "stop"
    START = "start"
    HELP = "help"


def fold(text: str) -> str:
    """Lower case without accents, punctuation at the ends and repeated spaces (for keyword matching)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    plain = re.sub(r"[\s_]+", " ", plain)
    return plain.strip(" \t\n.,;:!?¡¿'\"()[]*-–—…").replace("’", "'")


def _words(*items: str) -> frozenset[str]:
    return frozenset(fold(item) for item in items)


# The whole message must be one of these (after :func:`fold`); carriers' keywords first, then each language.
STOP_WORDS: frozenset[str] = _words(
    "stop", "stopall", "stop all", "unsubscribe", "unsubscribe me", "cancel", "end", "quit", "opt out", "optout", "revoke",
    # es
    "parar", "para", "baja", "darme de baja", "dar de baja", "cancelar", "detener", "fin", "salir", "desuscribir",
    "desuscribirme", "no más mensajes",
    # fr
    "arrêt", "arrêter", "arrête", "stop", "désabonner", "me désabonner", "désabonnement", "désinscrire", "désinscription",
    "annuler", "fin", "quitter",
    # de
    "stopp", "halt", "abmelden", "abbestellen", "beenden", "ende", "kündigen", "austragen",
    # pt_BR
    "parar", "pare", "sair", "cancelar", "descadastrar", "me descadastrar", "fim", "desinscrever", "cancelar inscrição",
)
START_WORDS: frozenset[str] = _words(
    "start", "unstop", "subscribe", "resume",
    "alta", "reanudar", "suscribir", "suscribirme", "reactivar",
    "reprendre", "m'abonner", "abonner", "réactiver",
    "anmelden", "fortsetzen", "starten", "wieder anmelden",
    "voltar", "retomar", "inscrever", "reativar", "assinar",
)
HELP_WORDS: frozenset[str] = _words("help", "info", "ayuda", "información", "aide", "hilfe", "ajuda")
YES_WORDS: frozenset[str] = _words(
    "yes", "y", "yeah", "yep", "yup", "sure", "ok", "okay", "please", "yes please", "of course", "absolutely", "go ahead",
    "👍", "/consent yes",
    "sí", "si", "claro", "vale", "dale", "por favor", "sí por favor", "si por favor", "de acuerdo", "sí gracias", "venga",
    "oui", "ouais", "d'accord", "volontiers", "oui merci", "oui s'il vous plaît", "oui stp", "bien sûr", "avec plaisir",
    "ja", "jawohl", "gerne", "gern", "klar", "ja bitte", "ja gerne", "na klar", "einverstanden",
    "sim", "pode", "pode ser", "quero", "beleza", "com certeza", "sim por favor", "sim obrigado", "sim obrigada",
)
NO_WORDS: frozenset[str] = _words(
    "no", "n", "nope", "nah", "no thanks", "no thank you", "not now", "👎", "/consent no",
    "no gracias", "ahora no", "mejor no",
    "non", "non merci", "pas maintenant", "pas besoin",
    "nein", "nein danke", "lieber nicht", "jetzt nicht",
    "não", "nao", "não obrigado", "não obrigada", "agora não", "melhor não",
)
NOTIFY_COMMAND = "/notify"
YES_PAYLOAD = "/consent yes"
NO_PAYLOAD = "/consent no"
PENDING_KEY = "consent_pending"  # conversation.context: the question waiting for a yes/no
ALERT_TITLE_MAX = 20  # WhatsApp cuts reply-button titles at 20 characters


def consent_keyword(text: str) -> Keyword | None:
    """STOP, START or HELP when the whole message is one of their words, in any supported language."""
    folded = fold(text)
    if folded in STOP_WORDS:
        return Keyword.STOP
    if folded in START_WORDS:
        return Keyword.START
    if folded in HELP_WORDS:
        return Keyword.HELP
    return None


def yes_or_no(text: str) -> bool | None:
    """True for an explicit yes, False for an explicit no, None for anything else."""
    folded = fold(text)
    if folded in YES_WORDS:
        return True
    if folded in NO_WORDS:
        return False
    return None


def stamp(value: datetime) -> str:
    """The one timestamp format of the follow-up tables: UTC, microseconds always written (sorts as text)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the shopper said: the platform message id, its words and when."""

    message_id: str | None
    text: str
    at: datetime

    @classmethod
    def of(cls, inbound: InboundMessage) -> Evidence:
        words = inbound.text or inbound.button_payload or ""
        return cls(f"{inbound.channel}:{inbound.external_id}", words[:500], inbound.timestamp)


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """One ledger row."""

    customer_id: str
    purpose: Purpose
    channel: str
    status: str
    granted_at: datetime
    evidence_message_id: str | None
    evidence_text: str | None
    revoked_at: datetime | None
    revoked_via: str | None

    @property
    def granted(self) -> bool:
        return self.status == "granted"


def _record(row: sqlite3.Row) -> ConsentRecord:
    return ConsentRecord(
        customer_id=row["customer_id"],
        purpose=Purpose(row["purpose"]),
        channel=row["channel"],
        status=row["status"],
        granted_at=datetime.fromisoformat(row["granted_at"]),
        evidence_message_id=row["evidence_message_id"],
        evidence_text=row["evidence_text"],
        revoked_at=datetime.fromisoformat(row["revoked_at"]) if row["revoked_at"] else None,
        revoked_via=row["revoked_via"],
    )


@dataclass(frozen=True, slots=True)
class Revocation:
    """What one STOP (or platform signal) did."""

    purposes: tuple[Purpose, ...]
    cancelled: int  # follow-ups and subscriptions that will not be sent any more


class ConsentLedger:
    """Grants, revocations and checks on the ``consents`` table. Every write is one transaction.

    The table is append-only: each grant is a new row with its evidence; a
    revocation closes the standing row (``status = 'revoked'``, when, how, what was
    said). At most one row per customer, purpose and channel is ``granted``.
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    async def grant(self, customer_id: str, purpose: Purpose, channel: str, evidence: Evidence) -> bool:
        """Record an explicit yes; False when a grant was already standing (it is kept as it is)."""
        async with self._store.transaction() as db:
            return await self.grant_in(db, customer_id, purpose, channel, evidence, self._store.now())

    @staticmethod
    async def grant_in(
        db: aiosqlite.Connection,
        customer_id: str,
        purpose: Purpose,
        channel: str,
        evidence: Evidence,
        now: datetime,
        *,
        via: str = "chat",
    ) -> bool:
        """:meth:`grant` inside the caller's transaction (e.g. with the subscription it allows)."""
        cur = await db.execute(
            "INSERT OR IGNORE INTO consents (customer_id, purpose, channel, status, granted_at, granted_via, evidence_message_id, "
            "evidence_text, evidence_at) VALUES (?, ?, ?, 'granted', ?, ?, ?, ?, ?)",
            (customer_id, purpose.value, channel, stamp(now), via, evidence.message_id, evidence.text, stamp(evidence.at)),
        )
        return cur.rowcount == 1

    async def revoke_all(self, customer_id: str, channel: str, evidence: Evidence | None, *, via: str = "keyword") -> Revocation:
        """Revoke every follow-up purpose on ``channel`` and cancel what was waiting to go out there.

        Pending follow-ups are cancelled, queued ones not yet handed to the platform are
        held back in the outbox, and active back-in-stock subscriptions end.
        """
        now = self._store.now()
        async with self._store.transaction() as db:
            return await self._revoke_in(db, customer_id, channel, evidence, via, now)

    @staticmethod
    async def _revoke_in(
        db: aiosqlite.Connection, customer_id: str, channel: str, evidence: Evidence | None, via: str, now: datetime
    ) -> Revocation:
        async with db.execute(
            "SELECT purpose FROM consents WHERE customer_id = ? AND channel = ? AND status = 'granted'", (customer_id, channel)
        ) as cur:
            purposes = tuple(Purpose(row["purpose"]) for row in await cur.fetchall())
        message_id = evidence.message_id if evidence else None
        text = evidence.text if evidence else "the platform reported the shopper unreachable (blocked or opted out)"
        await db.execute(
            "UPDATE consents SET status = 'revoked', revoked_at = ?, revoked_via = ?, revoked_message_id = ?, revoked_text = ? "
            "WHERE customer_id = ? AND channel = ? AND status = 'granted'",
            (stamp(now), via, message_id, text, customer_id, channel),
        )
        reason = f"consent revoked ({via})"
        # queued but not yet sending: keep them from leaving (the outbox only sends 'pending' rows)
        await db.execute(
            "UPDATE outbox SET status = 'held', error = ? WHERE status = 'pending' AND id IN "
            "(SELECT outbox_id FROM followups WHERE customer_id = ? AND channel = ? AND status = 'queued')",
            (reason, customer_id, channel),
        )
        cur = await db.execute(
            "UPDATE followups SET status = 'cancelled', reason = ?, ended_at = ? WHERE customer_id = ? AND channel = ? "
            "AND (status = 'pending' OR (status = 'queued' AND (outbox_id IS NULL "
            "OR outbox_id IN (SELECT id FROM outbox WHERE status = 'held' AND error = ?))))",
            (reason, stamp(now), customer_id, channel, reason),
        )
        cancelled = cur.rowcount
        cur = await db.execute(
            "UPDATE subscriptions SET status = 'cancelled', ended_at = ? WHERE customer_id = ? AND channel = ? AND status = 'active'",
            (stamp(now), customer_id, channel),
        )
        return Revocation(purposes, cancelled + cur.rowcount)

    async def restore(self, customer_id: str, channel: str, evidence: Evidence) -> tuple[Purpose, ...]:
        """START: grant again what STOP or the platform revoked on this channel; returns those purposes."""
        now = self._store.now()
        async with self._store.transaction() as db:
            async with db.execute(
                "SELECT purpose, status, revoked_via FROM consents WHERE id IN "
                "(SELECT MAX(id) FROM consents WHERE customer_id = ? AND channel = ? GROUP BY purpose)",
                (customer_id, channel),
            ) as cur:
                latest = list(await cur.fetchall())
            purposes = tuple(
                Purpose(row["purpose"]) for row in latest if row["status"] == "revoked" and row["revoked_via"] in ("keyword", "platform")
            )
            for purpose in purposes:
                await self.grant_in(db, customer_id, purpose, channel, evidence, now, via="keyword")
        return purposes

    async def is_granted(self, customer_id: str, purpose: Purpose, channel: str) -> bool:
        async with self._store.db.execute(
            "SELECT 1 FROM consents WHERE customer_id = ? AND purpose = ? AND channel = ? AND status = 'granted'",
            (customer_id, purpose.value, channel),
        ) as cur:
            return await cur.fetchone() is not None

    async def records(self, customer_id: str) -> list[ConsentRecord]:
        """Every grant of a customer, oldest first (the standing ones have status ``granted``)."""
        async with self._store.db.execute("SELECT * FROM consents WHERE customer_id = ? ORDER BY id", (customer_id,)) as cur:
            return [_record(row) for row in await cur.fetchall()]

    async def sync_platform_revocations(self) -> int:
        """Revoke the consents of identities the platforms reported unreachable; returns how many identities."""
        async with self._store.db.execute(
            "SELECT DISTINCT c.customer_id, c.channel FROM consents c JOIN identities i "
            "ON i.customer_id = c.customer_id AND i.channel = c.channel WHERE c.status = 'granted' AND i.unreachable = 1"
        ) as cur:
            pairs = [(row["customer_id"], row["channel"]) for row in await cur.fetchall()]
        for customer_id, channel in pairs:
            revocation = await self.revoke_all(customer_id, channel, None, via="platform")
            log.info("platform opt-out: revoked %d consent(s) on %s", len(revocation.purposes), channel)
        return len(pairs)


# -- alert offers ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertTarget:
    """A sold-out variant the shopper could be alerted about."""

    sku: str
    title: str


def alert_targets(replies: Sequence[OutboundMessage], products: Iterable[Product], filters: SearchFilters) -> list[AlertTarget]:
    """The exact variants worth an alert in these replies: out-of-stock cards and near misses broken by size or stock.

    For a card whose product is sold out in the shopper's size, the variant in that
    size is the target (not the card's own variant); a size the product never comes
    in is not a target.
    """
    variants = {v.sku: (p, v) for p in products for v in p.variants}
    sizes = {s.upper() for s in filters.sizes}
    targets: list[AlertTarget] = []
    for reply in replies:
        for card in reply.products:
            found = variants.get(card.sku)
            if found is None:
                continue
            product, variant = found
            target: Variant | None = None
            in_size = [v for v in product.variants if v.options.get("size", "").upper() in sizes] if sizes else []
            if in_size and not any(v.in_stock for v in in_size):
                target = next((v for v in in_size if v.stock is not None), None)
            elif not card.in_stock and not variant.in_stock:
                target = variant
            if target is not None and target.sku not in {t.sku for t in targets}:
                targets.append(AlertTarget(target.sku, product.title))
    return targets


def add_alert_buttons(
    replies: list[OutboundMessage], products: Iterable[Product], filters: SearchFilters, *, limit: int = 3
) -> list[OutboundMessage]:
    """``replies`` with an "Alert me when back" button (payload ``/notify SKU``) per sold-out target."""
    targets = alert_targets(replies, products, filters)[:limit]
    if not targets:
        return replies
    if len(targets) == 1:
        buttons: tuple[Button, ...] = (Button(_("Alert me when back"), f"{NOTIFY_COMMAND} {targets[0].sku}"),)
    else:
        buttons = tuple(Button(_short("🔔 " + t.title), f"{NOTIFY_COMMAND} {t.sku}") for t in targets)
    index = next(i for i, reply in enumerate(replies) if reply.products)
    out = list(replies)
    out[index] = replace(out[index], buttons=(*out[index].buttons, *buttons))
    return out


def _short(title: str) -> str:
    return title if len(title) <= ALERT_TITLE_MAX else title[: ALERT_TITLE_MAX - 1].rstrip() + "…"


# -- the consent side of a turn ---------------------------------------------------------


def yes_no_question(question: str) -> OutboundMessage:
    """A consent question with Yes/No buttons (typed "yes"/"no" in any language work too, see :func:`yes_or_no`)."""
    return OutboundMessage(question, buttons=(Button(_("Yes"), YES_PAYLOAD), Button(_("No"), NO_PAYLOAD)))


class AlertStatus(StrEnum):
    """What became of a back-in-stock alert offer."""

    NOT_FOUND = "not_found"
    IN_STOCK = "in_stock"
    ALREADY_SUBSCRIBED = "already_subscribed"
    ASKED = "consent_needed"  # the yes/no question stands in the conversation
    SUBSCRIBED = "subscribed"


@dataclass(frozen=True, slots=True)
class AlertOffer:
    status: AlertStatus
    message: OutboundMessage  # what the shopper is told


def item_label(title: str, size: str | None) -> str:
    """"Carbon Edge Marathon Racer, size 42" (current locale)."""
    return _("{title}, size {size}", title=title, size=size) if size else title


class ConsentDialog:
    """Consent keywords, the back-in-stock yes/no question and its answer, inside one turn.

    :meth:`handle` returns the replies when it consumed the message and None to let
    the turn go on. It records its decisions in ``conversation.context`` in place
    (the engine writes the context with the turn).
    """

    def __init__(self, store: Store, index: BaseIndex, shop: ShopProfile) -> None:
        self._store = store
        self._index = index
        self._shop = shop
        self.ledger = ConsentLedger(store)

    async def while_staff_owns(self, inbound: InboundMessage, conversation: Conversation) -> None:
        """STOP still revokes while staff owns the thread; nothing is replied (staff sees the message)."""
        if consent_keyword(inbound.text or "") is Keyword.STOP:
            await self.ledger.revoke_all(conversation.customer_id, inbound.channel, Evidence.of(inbound))
            conversation.context.pop(PENDING_KEY, None)

    async def handle(
        self, inbound: InboundMessage, conversation: Conversation, text: str, now: datetime
    ) -> list[OutboundMessage] | None:
        """The replies when the message was about consent, else None.

        ``text`` is the message as the engine reads it (a tapped button's payload, or
        the payload of a numbered option the shopper typed).
        """
        if not text:
            return None
        context = conversation.context
        keyword = consent_keyword(text)
        if keyword is Keyword.STOP:
            context.pop(PENDING_KEY, None)
            context["last_intent"] = "consent_stop"
            revocation = await self.ledger.revoke_all(conversation.customer_id, inbound.channel, Evidence.of(inbound))
            return [self._stopped(revocation)]
        if keyword is Keyword.START:
            restored = await self.ledger.restore(conversation.customer_id, inbound.channel, Evidence.of(inbound))
            if restored:
                context["last_intent"] = "consent_start"
                return [
                    OutboundMessage(
                        _(
                            "You're subscribed again: I'll send the reminders and alerts you ask for. "
                            "Reply STOP at any time to stop them."
                        )
                    )
                ]
            return None  # nothing to restore: "start" is a greeting
        if keyword is Keyword.HELP:
            context["last_intent"] = "consent_help"
            return [self._help()]
        pending = context.get(PENDING_KEY)
        # a reminder's yes/no is answered by ReminderDialog, right after this
        if isinstance(pending, dict) and pending.get("purpose") != Purpose.REMINDERS.value:
            answer = yes_or_no(text)
            if answer is None:
                context.pop(PENDING_KEY, None)  # the shopper moved on: never read a later "yes" as consent
            else:
                context.pop(PENDING_KEY, None)
                context["last_intent"] = "consent_answer"
                if not answer:
                    return [OutboundMessage(_("No problem, I won't message you about it."))]
                return [await self._subscribe(inbound, conversation, pending, now)]
        if text.startswith(NOTIFY_COMMAND + " ") or text == NOTIFY_COMMAND:
            context["last_intent"] = "consent_question"
            return [(await self._ask(conversation, text[len(NOTIFY_COMMAND) :].strip(), now)).message]
        return None

    async def offer_alert(self, inbound: InboundMessage, conversation: Conversation, sku: str, now: datetime) -> AlertOffer:
        """A back-in-stock alert offered by a language model: the yes/no question, or the subscription when consent stands.

        Without a standing back-in-stock consent on this channel nothing is recorded but
        the question (``conversation.context``, answered next turn by :meth:`handle`).
        """
        offer = await self._ask(conversation, sku, now)
        if offer.status != AlertStatus.ASKED:
            return offer
        if not await self.ledger.is_granted(conversation.customer_id, Purpose.BACK_IN_STOCK, inbound.channel):
            return offer
        pending = conversation.context.pop(PENDING_KEY)
        return AlertOffer(AlertStatus.SUBSCRIBED, await self._subscribe(inbound, conversation, pending, now))

    # -- the steps -------------------------------------------------------------------

    def _stopped(self, revocation: Revocation) -> OutboundMessage:
        text = _(
            "You're unsubscribed: I won't send you reminders or alerts here any more. Reply START if you change your mind."
        )
        if revocation.cancelled:
            text += " " + ngettext(
                "{n} pending reminder or alert was cancelled.", "{n} pending reminders and alerts were cancelled.", revocation.cancelled
            )
        return OutboundMessage(text)

    def _help(self) -> OutboundMessage:
        text = _(
            "I'm the automated shop assistant of {store}. I find products and answer questions about shipping, returns "
            "and payment. I only message you first with reminders and back-in-stock alerts you asked for: reply STOP to "
            "stop them, START to get them again, or \"my reminders\" to see yours.",
            store=self._shop.name,
        )
        return OutboundMessage(text, buttons=(Button(_("Talk to a person"), "/human"),))

    async def _ask(self, conversation: Conversation, sku: str, now: datetime) -> AlertOffer:
        product = await product_for_sku(self._index, sku) if sku else None
        variant = next((v for v in product.variants if v.sku == sku), None) if product else None
        if product is None or variant is None:
            return AlertOffer(AlertStatus.NOT_FOUND, OutboundMessage(_("I can't find that item in our catalog any more.")))
        size = variant.options.get("size") or None
        label = item_label(product.title, size)
        if variant.in_stock:
            return AlertOffer(AlertStatus.IN_STOCK, OutboundMessage(_("Good news: {item} is in stock right now.", item=label)))
        async with self._store.db.execute(
            "SELECT 1 FROM subscriptions WHERE customer_id = ? AND channel = ? AND sku = ? AND status = 'active'",
            (conversation.customer_id, conversation.channel, sku),
        ) as cur:
            if await cur.fetchone() is not None:
                return AlertOffer(
                    AlertStatus.ALREADY_SUBSCRIBED,
                    OutboundMessage(_("You're already on the list: I'll message you when {item} is back in stock.", item=label)),
                )
        conversation.context.pop("pending_confirmation", None)  # the last question asked is the one a "yes" answers
        conversation.context[PENDING_KEY] = {
            "purpose": Purpose.BACK_IN_STOCK.value,
            "sku": sku,
            "product_id": product.id,
            "title": product.title,
            "size": size,
            "asked_at": now.isoformat(),
        }
        if size:
            question = _("Want me to message you when size {size} of {title} is back in stock? (yes/no)", size=size, title=product.title)
        else:
            question = _("Want me to message you when {title} is back in stock? (yes/no)", title=product.title)
        return AlertOffer(AlertStatus.ASKED, yes_no_question(question))

    async def _subscribe(
        self, inbound: InboundMessage, conversation: Conversation, pending: dict[str, Any], now: datetime
    ) -> OutboundMessage:
        customer = await self._store.get_customer(conversation.customer_id)
        timezone = (customer.timezone if customer else None) or self._shop.timezone
        budget = (conversation.context.get("constraints") or {}).get("budget") or {}
        evidence = Evidence.of(inbound)
        async with self._store.transaction() as db:
            await self.ledger.grant_in(db, conversation.customer_id, Purpose.BACK_IN_STOCK, inbound.channel, evidence, now)
            await db.execute(
                "INSERT OR IGNORE INTO subscriptions (customer_id, channel, chat_id, conversation_id, sku, product_id, title, size, "
                "max_price, min_price, timezone, locale, source_message_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    conversation.customer_id,
                    inbound.channel,
                    inbound.chat_id,
                    conversation.id,
                    str(pending["sku"]),
                    pending.get("product_id"),
                    str(pending["title"]),
                    pending.get("size"),
                    _amount(budget.get("max")),
                    _amount(budget.get("min")),
                    timezone,
                    conversation.locale,
                    evidence.message_id,
                    stamp(now),
                ),
            )
        label = item_label(str(pending["title"]), pending.get("size"))
        return OutboundMessage(
            _("Done! I'll message you here when {item} is back in stock. Reply STOP at any time to stop these messages.", item=label)
        )


def _amount(value: object) -> str | None:
    return None if value is None else str(Decimal(str(value)))
