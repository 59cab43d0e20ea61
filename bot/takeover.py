"""Staff takeover of conversations: the thread operations behind the console.

States (see :mod:`bot.handoff`)::

    bot ──escalate──► pending_human ──claim──► human ──resolve / release / idle──► bot
                            │                    ▲
                            └──resolve/release   └── an admin may take over a colleague's thread

While a thread is ``pending_human`` or ``human`` the engine records the shopper's
messages and answers nothing; staff answer through :meth:`Takeover.reply`.

Every operation is one ``BEGIN IMMEDIATE`` transaction over the
:class:`~bot.store.Store` that checks the thread's current state and owner,
changes it, updates the open row of ``escalations`` (claimed, first staff reply,
outcome) and appends to ``audit_log``; the :class:`~bot.events.EventBus` is told
after the commit so open consoles refresh.

A staff reply is delivered through the shopper's own channel: on the web and
terminal channels the stored ``staff`` message is all it takes (the web page
polls for it); on messaging platforms an outbox row with ``author = 'staff'`` is
written in the same transaction and goes out under the platform's rules (reply
window, rate limits) like any bot reply.

Two timers (:meth:`Takeover.sweep`, run periodically by the console's lifespan):
pending threads waiting longer than ``reannounce_after`` are announced again to
the consoles, and threads whose owner has done nothing for ``idle_after`` go back
to the bot with a message telling the shopper.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiosqlite

from bot.events import Event, EventBus
from bot.i18n import _, use_locale
from bot.messages import OutboundMessage
from bot.responders import disclosure
from bot.shop import ShopProfile
from bot.staff import PermissionDenied, StaffUser, require_role, write_audit
from bot.store import Conversation, Customer, Order, Store

log = logging.getLogger(__name__)

# Channels whose shopper reads staff replies straight from the messages table
DIRECT_CHANNELS = frozenset({"web", "terminal"})

DEFAULT_REANNOUNCE_AFTER = timedelta(minutes=5)
DEFAULT_IDLE_AFTER = timedelta(minutes=30)
DEFAULT_MAX_REPLY_CHARS = 4000
MAX_NOTE_CHARS = 4000
MAX_HANDBACK_NOTES = 10  # staff_notes_for_bot keeps the latest ones
TRANSCRIPT_LIMIT = 300
SUGGESTION_LIMIT = 6
# what the thread page shows of a consent record (evidence stays in the database)
CONSENT_COLUMNS = ("purpose", "channel", "status", "granted_at", "revoked_at", "revoked_via")


class TakeoverError(Exception):
    """Base of the errors of a thread operation."""


class ThreadNotFound(TakeoverError):
    """No conversation (or canned reply) with that id."""


class InvalidTransition(TakeoverError):
    """The thread is not in a state that allows the operation (already claimed, back with the bot…)."""


# -- what the console shows -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class InboxItem:
    """One thread in the staff inbox."""

    conversation_id: str
    channel: str
    chat_id: str
    state: str
    owner_id: str | None
    owner_name: str | None
    customer_name: str | None
    reason: str
    escalated_at: datetime
    need_at: datetime  # when the current need arose: the escalation or the shopper's unanswered message
    waiting: bool  # the shopper wrote last
    last_text: str
    overdue: bool  # pending for longer than the re-announce delay


@dataclass(frozen=True, slots=True)
class Inbox:
    pending: list[InboxItem]
    mine: list[InboxItem]
    others: list[InboxItem]  # owned by colleagues (listed for admins)

    @property
    def waiting_count(self) -> int:
        return len(self.pending) + sum(1 for item in self.mine if item.waiting)


@dataclass(frozen=True, slots=True)
class TranscriptEntry:
    id: int
    conversation_id: str
    channel: str
    author: str
    text: str
    created_at: datetime
    products: tuple[dict[str, Any], ...] = ()
    buttons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Note:
    id: int
    author: str
    text: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class EscalationRecord:
    id: int
    reason: str
    created_at: datetime
    claimed_by: str | None
    claimed_at: datetime | None
    first_staff_reply_at: datetime | None
    ended_at: datetime | None
    outcome: str | None
    csat: int | None


@dataclass(frozen=True, slots=True)
class CannedReply:
    id: int
    title: str
    text: str


@dataclass(frozen=True, slots=True)
class ThreadView:
    """Everything the thread page shows about one conversation."""

    conversation: Conversation
    customer: Customer | None
    owner_name: str | None
    transcript: list[TranscriptEntry]
    constraints: dict[str, Any]
    orders: list[Order]
    consents: list[dict[str, str]]
    notes: list[Note]
    escalations: list[EscalationRecord]
    suggestions: list[dict[str, Any]]
    handback_notes: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class DayCount:
    day: date
    conversations: int
    escalations: int


@dataclass(frozen=True, slots=True)
class Kpis:
    """Console KPIs over conversations started since ``since``."""

    since: datetime
    conversations: int
    escalated_conversations: int
    escalations: int
    escalations_by_reason: list[tuple[str, int]]
    outcomes: list[tuple[str, int]]
    median_first_reply: timedelta | None
    first_replies: int
    csat_average: float | None
    csat_responses: int
    open_pending: int
    open_human: int
    daily: list[DayCount] = field(default_factory=list)

    @property
    def containment_rate(self) -> float | None:
        """Share of conversations never escalated to staff (None without conversations)."""
        if not self.conversations:
            return None
        return (self.conversations - self.escalated_conversations) / self.conversations


# -- helpers ----------------------------------------------------------------------


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _declared(value: Any) -> Any:
    """Constraints without their unset fields and flags, for display ({} when nothing was declared)."""
    if isinstance(value, dict):
        kept = {k: _declared(v) for k, v in value.items() if k not in {"is_correction"}}
        return {k: v for k, v in kept.items() if v not in (None, "", [], {}, False)}
    if isinstance(value, list):
        return [v for v in (_declared(item) for item in value) if v not in (None, "", [], {})]
    return value


def idle_return_notice(shop: ShopProfile) -> OutboundMessage:
    """What the shopper reads when an idle staff thread comes back to the bot (current locale)."""
    text = _(
        "{disclosure} You can ask me things like \"running shoes under 100\", \"vegan snacks\", "
        "\"how long does shipping take?\" or \"can I return an item?\". "
        "Say \"talk to a person\" at any time to reach our team, or \"/language fr\" to change the language.",
        disclosure=disclosure(shop),
    )
    return OutboundMessage(text=text)


class Takeover:
    """Thread operations for the staff console. One per process, built in the console's lifespan."""

    def __init__(
        self,
        store: Store,
        events: EventBus,
        shop: ShopProfile,
        *,
        clock: Callable[[], datetime] | None = None,
        reannounce_after: timedelta = DEFAULT_REANNOUNCE_AFTER,
        idle_after: timedelta = DEFAULT_IDLE_AFTER,
        max_reply_chars: int = DEFAULT_MAX_REPLY_CHARS,
        on_outbox: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._events = events
        self._shop = shop
        self._clock = clock or store.now
        self.reannounce_after = reannounce_after
        self.idle_after = idle_after
        self.max_reply_chars = max_reply_chars
        self._on_outbox = on_outbox

    def now(self) -> datetime:
        return self._clock().astimezone(UTC)

    @property
    def _db(self) -> aiosqlite.Connection:
        return self._store.db

    # -- reading -------------------------------------------------------------

    async def inbox(self, staff: StaffUser) -> Inbox:
        """Pending threads, the staff member's own, and (for admins) colleagues' — newest need first."""
        now = self.now()
        async with self._db.execute(
            """
            SELECT c.id, c.channel, c.chat_id, c.state, c.owner, c.context, c.created_at AS conversation_created,
                   cu.name AS customer_name, su.name AS owner_name, su.email AS owner_email,
                   e.reason, e.created_at AS escalated_at,
                   (SELECT MAX(m.created_at) FROM messages m WHERE m.conversation_id = c.id AND m.author = 'shopper') AS last_shopper_at,
                   (SELECT m.author FROM messages m WHERE m.conversation_id = c.id ORDER BY m.id DESC LIMIT 1) AS last_author,
                   (SELECT m.text FROM messages m WHERE m.conversation_id = c.id AND m.author = 'shopper'
                     ORDER BY m.id DESC LIMIT 1) AS last_text
            FROM conversations c
            JOIN customers cu ON cu.id = c.customer_id
            LEFT JOIN staff_users su ON su.id = c.owner
            LEFT JOIN escalations e ON e.id = (
                SELECT id FROM escalations WHERE conversation_id = c.id AND ended_at IS NULL ORDER BY id DESC LIMIT 1)
            WHERE c.state IN ('pending_human', 'human')
            """
        ) as cur:
            rows = await cur.fetchall()
        pending: list[InboxItem] = []
        mine: list[InboxItem] = []
        others: list[InboxItem] = []
        for row in rows:
            context = json.loads(row["context"] or "{}")
            escalated_at = (
                _time(row["escalated_at"])
                or _time(context.get("escalation", {}).get("at"))
                or datetime.fromisoformat(row["conversation_created"])
            )
            waiting = row["last_author"] == "shopper"
            last_shopper = _time(row["last_shopper_at"])
            need_at = max(escalated_at, last_shopper) if waiting and last_shopper else escalated_at
            item = InboxItem(
                conversation_id=row["id"],
                channel=row["channel"],
                chat_id=row["chat_id"],
                state=row["state"],
                owner_id=row["owner"],
                owner_name=row["owner_name"] or row["owner_email"],
                customer_name=row["customer_name"],
                reason=row["reason"] or str(context.get("escalation", {}).get("reason", "asked_for_human")),
                escalated_at=escalated_at,
                need_at=need_at,
                waiting=waiting,
                last_text=(row["last_text"] or "")[:200],
                overdue=row["state"] == "pending_human" and now - escalated_at >= self.reannounce_after,
            )
            if row["state"] == "pending_human":
                pending.append(item)
            elif row["owner"] == staff.id:
                mine.append(item)
            elif staff.is_admin:
                others.append(item)
        for items in (pending, mine, others):
            items.sort(key=lambda i: i.need_at, reverse=True)
        return Inbox(pending, mine, others)

    async def thread(self, conversation_id: str) -> ThreadView:
        """The thread page's data; raises :class:`ThreadNotFound`."""
        conversation = await self._store.get_conversation(conversation_id)
        if conversation is None:
            raise ThreadNotFound(conversation_id)
        customer = await self._store.get_customer(conversation.customer_id)
        owner_name = None
        if conversation.owner:
            async with self._db.execute("SELECT name, email FROM staff_users WHERE id = ?", (conversation.owner,)) as cur:
                row = await cur.fetchone()
            owner_name = (row["name"] or row["email"]) if row else None
        transcript = await self._transcript(conversation.customer_id)
        suggestions: list[dict[str, Any]] = []
        seen: set[str] = set()
        for entry in reversed(transcript):
            if entry.conversation_id != conversation.id or entry.author != "bot":
                continue
            for product in entry.products:
                if product.get("sku") not in seen and len(suggestions) < SUGGESTION_LIMIT:
                    seen.add(str(product.get("sku")))
                    suggestions.append(product)
        constraints = conversation.context.get("constraints") or {}
        return ThreadView(
            conversation=conversation,
            customer=customer,
            owner_name=owner_name,
            transcript=transcript,
            constraints=_declared(constraints),
            orders=await self._store.orders_for(conversation.customer_id),
            consents=await self._consents(conversation.customer_id),
            notes=await self._notes(conversation.id),
            escalations=await self._escalations(conversation.id),
            suggestions=suggestions,
            handback_notes=list(conversation.context.get("staff_notes_for_bot") or []),
        )

    async def _transcript(self, customer_id: str) -> list[TranscriptEntry]:
        """The customer's messages across every channel and conversation, oldest first."""
        async with self._db.execute(
            "SELECT m.id, m.conversation_id, m.author, m.text, m.payload, m.created_at, c.channel "
            "FROM messages m JOIN conversations c ON c.id = m.conversation_id "
            "WHERE c.customer_id = ? ORDER BY m.id DESC LIMIT ?",
            (customer_id, TRANSCRIPT_LIMIT),
        ) as cur:
            rows = await cur.fetchall()
        entries = []
        for row in reversed(list(rows)):
            payload = json.loads(row["payload"]) if row["payload"] else {}
            if not isinstance(payload, dict):
                payload = {}
            products = tuple(p for p in payload.get("products") or () if isinstance(p, dict))
            buttons = tuple(str(b.get("title", "")) for b in payload.get("buttons") or () if isinstance(b, dict))
            entries.append(
                TranscriptEntry(
                    id=row["id"],
                    conversation_id=row["conversation_id"],
                    channel=row["channel"],
                    author=row["author"],
                    text=row["text"],
                    created_at=datetime.fromisoformat(row["created_at"]),
                    products=products,
                    buttons=buttons,
                )
            )
        return entries

    async def _consents(self, customer_id: str) -> list[dict[str, str]]:
        """Consent records, once a ``consents`` table exists (a later migration adds it)."""
        async with self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'consents'") as cur:
            if await cur.fetchone() is None:
                return []
        try:
            async with self._db.execute("SELECT * FROM consents WHERE customer_id = ? ORDER BY rowid", (customer_id,)) as cur:
                rows = list(await cur.fetchall())
        except sqlite3.OperationalError:  # a consents table of another shape: show nothing rather than fail the page
            log.warning("consents table has no customer_id column; consents not shown")
            return []
        shown: list[str] = []
        if rows:
            # sqlite3.Row iterates over values: its keys() are the column names
            columns = list(rows[0].keys())
            shown = [c for c in CONSENT_COLUMNS if c in columns] or [c for c in columns if c not in {"id", "customer_id"}]
        return [{c: "" if r[c] is None else str(r[c]) for c in shown} for r in rows]

    async def _notes(self, conversation_id: str) -> list[Note]:
        async with self._db.execute(
            "SELECT n.id, n.text, n.created_at, COALESCE(s.name, s.email, 'former staff') AS author "
            "FROM staff_notes n LEFT JOIN staff_users s ON s.id = n.staff_id WHERE n.conversation_id = ? ORDER BY n.id",
            (conversation_id,),
        ) as cur:
            return [Note(r["id"], r["author"], r["text"], datetime.fromisoformat(r["created_at"])) for r in await cur.fetchall()]

    async def _escalations(self, conversation_id: str) -> list[EscalationRecord]:
        async with self._db.execute(
            "SELECT e.*, COALESCE(s.name, s.email) AS claimer FROM escalations e LEFT JOIN staff_users s ON s.id = e.claimed_by "
            "WHERE e.conversation_id = ? ORDER BY e.id DESC",
            (conversation_id,),
        ) as cur:
            rows = await cur.fetchall()
        return [
            EscalationRecord(
                id=r["id"],
                reason=r["reason"],
                created_at=datetime.fromisoformat(r["created_at"]),
                claimed_by=r["claimer"],
                claimed_at=_time(r["claimed_at"]),
                first_staff_reply_at=_time(r["first_staff_reply_at"]),
                ended_at=_time(r["ended_at"]),
                outcome=r["outcome"],
                csat=r["csat"],
            )
            for r in rows
        ]

    async def _locked_conversation(self, db: aiosqlite.Connection, conversation_id: str) -> sqlite3.Row:
        async with db.execute("SELECT * FROM conversations WHERE id = ?", (conversation_id,)) as cur:
            row = await cur.fetchone()
        if row is None:
            raise ThreadNotFound(conversation_id)
        return row

    # -- operations ------------------------------------------------------------

    async def claim(self, conversation_id: str, staff: StaffUser) -> None:
        """Take a pending thread (pending_human → human, owner = staff).

        Claiming one's own thread again does nothing; an admin may take over a
        colleague's thread; anything else raises :class:`InvalidTransition`.
        """
        now = self.now()
        async with self._store.transaction() as db:
            row = await self._locked_conversation(db, conversation_id)
            if row["state"] == "human" and row["owner"] == staff.id:
                return
            if row["state"] == "human" and not staff.is_admin:
                raise InvalidTransition("another staff member already owns this thread")
            if row["state"] not in ("pending_human", "human"):
                raise InvalidTransition("this thread is with the bot, not waiting for staff")
            taken_from = row["owner"] if row["state"] == "human" else None
            await db.execute(
                "UPDATE conversations SET state = 'human', owner = ?, updated_at = ? WHERE id = ?", (staff.id, _stamp(now), conversation_id)
            )
            escalation_id = await self._open_escalation_id(db, row, now)
            await db.execute(
                "UPDATE escalations SET claimed_by = ?, claimed_at = COALESCE(claimed_at, ?) WHERE id = ?",
                (staff.id, _stamp(now), escalation_id),
            )
            if taken_from:
                await write_audit(db, now, staff.id, "taken_over", conversation_id, previous_owner=taken_from)
            else:
                await write_audit(db, now, staff.id, "claimed", conversation_id)
        self._events.publish(Event("claimed", conversation_id, "human"))

    async def _open_escalation_id(self, db: aiosqlite.Connection, conversation: sqlite3.Row, now: datetime) -> int:
        """The open escalation row of a thread, created if the hand-over predates the table."""
        async with db.execute(
            "SELECT id FROM escalations WHERE conversation_id = ? AND ended_at IS NULL ORDER BY id DESC LIMIT 1", (conversation["id"],)
        ) as cur:
            row = await cur.fetchone()
        if row is not None:
            return int(row["id"])
        context = json.loads(conversation["context"] or "{}")
        reason = str(context.get("escalation", {}).get("reason", "asked_for_human"))
        cur = await db.execute(
            "INSERT INTO escalations (conversation_id, reason, created_at) VALUES (?, ?, ?)", (conversation["id"], reason, _stamp(now))
        )
        return int(cur.lastrowid or 0)

    async def reply(self, conversation_id: str, staff: StaffUser, text: str) -> int:
        """Send a staff message to the shopper through their channel; returns the message id.

        Only the thread's owner replies (claim first). Raises :class:`ValueError`
        for an empty or over-long text.
        """
        text = text.strip()
        if not text:
            raise ValueError("the reply is empty")
        if len(text) > self.max_reply_chars:
            raise ValueError(f"the reply must be at most {self.max_reply_chars} characters")
        now = self.now()
        payload = json.dumps({**OutboundMessage(text=text).to_dict(), "staff_id": staff.id}, ensure_ascii=False)
        queued = False
        async with self._store.transaction() as db:
            row = await self._locked_conversation(db, conversation_id)
            if row["state"] != "human" or row["owner"] != staff.id:
                raise InvalidTransition("claim this thread before replying")
            cur = await db.execute(
                "INSERT INTO messages (conversation_id, direction, author, text, payload, created_at) VALUES (?, 'out', 'staff', ?, ?, ?)",
                (conversation_id, text, payload, _stamp(now)),
            )
            message_id = int(cur.lastrowid or 0)
            if row["channel"] not in DIRECT_CHANNELS:
                await db.execute(
                    "INSERT INTO outbox (conversation_id, channel, chat_id, payload, next_attempt_at, created_at, author) "
                    "VALUES (?, ?, ?, ?, ?, ?, 'staff')",
                    (conversation_id, row["channel"], row["chat_id"], payload, _stamp(now), _stamp(now)),
                )
                queued = True
            escalation_id = await self._open_escalation_id(db, row, now)
            await db.execute(
                "UPDATE escalations SET first_staff_reply_at = COALESCE(first_staff_reply_at, ?) WHERE id = ?", (_stamp(now), escalation_id)
            )
            await db.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (_stamp(now), conversation_id))
            await write_audit(db, now, staff.id, "replied", conversation_id, message_id=message_id, chars=len(text))
        self._events.publish(Event("message", conversation_id, "human"))
        if queued and self._on_outbox is not None:
            self._on_outbox()
        return message_id

    async def add_note(self, conversation_id: str, staff: StaffUser, text: str) -> int:
        """An internal note on the thread (never sent to the shopper)."""
        text = text.strip()
        if not text:
            raise ValueError("the note is empty")
        if len(text) > MAX_NOTE_CHARS:
            raise ValueError(f"the note must be at most {MAX_NOTE_CHARS} characters")
        now = self.now()
        async with self._store.transaction() as db:
            row = await self._locked_conversation(db, conversation_id)
            cur = await db.execute(
                "INSERT INTO staff_notes (conversation_id, staff_id, text, created_at) VALUES (?, ?, ?, ?)",
                (conversation_id, staff.id, text, _stamp(now)),
            )
            note_id = int(cur.lastrowid or 0)
            await write_audit(db, now, staff.id, "noted", conversation_id, note_id=note_id)
        self._events.publish(Event("note", conversation_id, str(row["state"])))
        return note_id

    async def resolve(self, conversation_id: str, staff: StaffUser, note: str = "") -> None:
        """The shopper's need is met: back to the bot, escalation outcome ``resolved``."""
        await self._hand_back(conversation_id, staff, "resolved", note)

    async def release(self, conversation_id: str, staff: StaffUser, note: str = "") -> None:
        """Give the thread back to the bot unresolved (outcome ``released``), with a note for the bot."""
        await self._hand_back(conversation_id, staff, "released", note)

    async def _hand_back(self, conversation_id: str, staff: StaffUser, outcome: str, note: str) -> None:
        note = note.strip()[:MAX_NOTE_CHARS]
        now = self.now()
        async with self._store.transaction() as db:
            row = await self._locked_conversation(db, conversation_id)
            if row["state"] not in ("pending_human", "human"):
                raise InvalidTransition("this thread is already with the bot")
            if row["state"] == "human" and row["owner"] != staff.id and not staff.is_admin:
                raise PermissionDenied("only the thread's owner or an admin can hand it back")
            context = json.loads(row["context"] or "{}")
            if note:
                # the responder reads these so the bot does not contradict what staff said
                notes = list(context.get("staff_notes_for_bot") or [])
                notes.append({"at": _stamp(now), "by": staff.display_name, "outcome": outcome, "text": note})
                context["staff_notes_for_bot"] = notes[-MAX_HANDBACK_NOTES:]
            context["unanswered"] = 0  # a fresh start: no instant re-escalation from an old streak
            await db.execute(
                "UPDATE conversations SET state = 'bot', owner = NULL, context = ?, updated_at = ? WHERE id = ?",
                (json.dumps(context, ensure_ascii=False, default=str), _stamp(now), conversation_id),
            )
            escalation_id = await self._open_escalation_id(db, row, now)
            await db.execute("UPDATE escalations SET ended_at = ?, outcome = ? WHERE id = ?", (_stamp(now), outcome, escalation_id))
            await write_audit(db, now, staff.id, outcome, conversation_id, with_note=bool(note))
        self._events.publish(Event(outcome, conversation_id, "bot"))

    # -- canned replies ------------------------------------------------------------

    async def canned_replies(self) -> list[CannedReply]:
        async with self._db.execute("SELECT id, title, text FROM canned_replies ORDER BY title COLLATE NOCASE, id") as cur:
            return [CannedReply(r["id"], r["title"], r["text"]) for r in await cur.fetchall()]

    async def canned_reply(self, canned_id: int) -> CannedReply:
        async with self._db.execute("SELECT id, title, text FROM canned_replies WHERE id = ?", (canned_id,)) as cur:
            row = await cur.fetchone()
        if row is None:
            raise ThreadNotFound(f"canned reply {canned_id}")
        return CannedReply(row["id"], row["title"], row["text"])

    async def add_canned_reply(self, staff: StaffUser, title: str, text: str) -> int:
        """A reusable reply (admins only)."""
        require_role(staff, "admin")
        title, text = title.strip(), text.strip()
        if not title or not text:
            raise ValueError("a canned reply needs a title and a text")
        if len(title) > 120 or len(text) > self.max_reply_chars:
            raise ValueError(f"title at most 120 characters, text at most {self.max_reply_chars}")
        now = self.now()
        async with self._store.transaction() as db:
            cur = await db.execute("INSERT INTO canned_replies (title, text) VALUES (?, ?)", (title, text))
            canned_id = int(cur.lastrowid or 0)
            await write_audit(db, now, staff.id, "canned_added", str(canned_id), title=title)
        return canned_id

    async def delete_canned_reply(self, staff: StaffUser, canned_id: int) -> None:
        require_role(staff, "admin")
        now = self.now()
        async with self._store.transaction() as db:
            cur = await db.execute("DELETE FROM canned_replies WHERE id = ?", (canned_id,))
            if cur.rowcount == 0:
                raise ThreadNotFound(f"canned reply {canned_id}")
            await write_audit(db, now, staff.id, "canned_deleted", str(canned_id))

    # -- satisfaction --------------------------------------------------------------

    async def record_csat(self, escalation_id: int, score: int) -> None:
        """Store the shopper's 1-5 rating of a finished escalation."""
        if not 1 <= score <= 5:
            raise ValueError("CSAT is a score from 1 to 5")
        async with self._store.transaction() as db:
            cur = await db.execute("UPDATE escalations SET csat = ? WHERE id = ?", (score, escalation_id))
            if cur.rowcount == 0:
                raise ThreadNotFound(f"escalation {escalation_id}")

    # -- timers --------------------------------------------------------------------

    async def sweep(self) -> tuple[list[str], list[str]]:
        """Run both timers once; returns (re-announced, returned-to-bot) conversation ids."""
        return await self.reannounce_due(), await self.return_idle_threads()

    async def reannounce_due(self) -> list[str]:
        """Announce again the pending threads nobody claimed within ``reannounce_after``."""
        now = self.now()
        due: list[str] = []
        async with self._store.transaction() as db:
            async with db.execute(
                "SELECT e.id, e.conversation_id, e.created_at, e.announced_at FROM escalations e "
                "JOIN conversations c ON c.id = e.conversation_id "
                "WHERE e.ended_at IS NULL AND c.state = 'pending_human'"
            ) as cur:
                rows = await cur.fetchall()
            for row in rows:
                last = _time(row["announced_at"]) or datetime.fromisoformat(row["created_at"])
                if now - last >= self.reannounce_after:
                    await db.execute("UPDATE escalations SET announced_at = ? WHERE id = ?", (_stamp(now), row["id"]))
                    due.append(row["conversation_id"])
            if due:
                await write_audit(db, now, "system", "reannounced", None, conversations=due)
        for conversation_id in due:
            self._events.publish(Event("reannounced", conversation_id, "pending_human"))
        return due

    async def return_idle_threads(self) -> list[str]:
        """Give back to the bot the threads whose owner did nothing for ``idle_after``, telling the shopper."""
        now = self.now()
        async with self._db.execute(
            """
            SELECT c.id, c.owner, c.updated_at,
                   (SELECT MAX(claimed_at) FROM escalations e WHERE e.conversation_id = c.id AND e.ended_at IS NULL) AS claimed_at,
                   (SELECT MAX(created_at) FROM messages m WHERE m.conversation_id = c.id AND m.author = 'staff') AS replied_at,
                   (SELECT MAX(created_at) FROM staff_notes n WHERE n.conversation_id = c.id) AS noted_at
            FROM conversations c WHERE c.state = 'human'
            """
        ) as cur:
            rows = await cur.fetchall()
        returned: list[str] = []
        for row in rows:
            moments = [t for t in (_time(row["claimed_at"]), _time(row["replied_at"]), _time(row["noted_at"])) if t is not None]
            last_staff_activity = max(moments) if moments else datetime.fromisoformat(row["updated_at"])
            if now - last_staff_activity < self.idle_after:
                continue
            if await self._return_to_bot(row["id"], row["owner"], now):
                returned.append(row["id"])
        if returned and self._on_outbox is not None:
            self._on_outbox()
        return returned

    async def _return_to_bot(self, conversation_id: str, owner: str | None, now: datetime) -> bool:
        conversation = await self._store.get_conversation(conversation_id)
        if conversation is None:
            return False
        with use_locale(conversation.locale or self._shop.default_locale):
            notice = idle_return_notice(self._shop)
        payload = json.dumps(notice.to_dict(), ensure_ascii=False)
        async with self._store.transaction() as db:
            # compare-and-set: a reply or hand-back that just happened wins over the timer
            cur = await db.execute(
                "UPDATE conversations SET state = 'bot', owner = NULL, updated_at = ? WHERE id = ? AND state = 'human' AND owner IS ?",
                (_stamp(now), conversation_id, owner),
            )
            if cur.rowcount != 1:
                return False
            await db.execute(
                "INSERT INTO messages (conversation_id, direction, author, text, payload, created_at) VALUES (?, 'out', 'system', ?, ?, ?)",
                (conversation_id, notice.text, payload, _stamp(now)),
            )
            if conversation.channel not in DIRECT_CHANNELS:
                await db.execute(
                    "INSERT INTO outbox (conversation_id, channel, chat_id, payload, next_attempt_at, created_at, author) "
                    "VALUES (?, ?, ?, ?, ?, ?, 'system')",
                    (conversation_id, conversation.channel, conversation.chat_id, payload, _stamp(now), _stamp(now)),
                )
            await db.execute(
                "UPDATE escalations SET ended_at = ?, outcome = 'timed_out' WHERE conversation_id = ? AND ended_at IS NULL",
                (_stamp(now), conversation_id),
            )
            await write_audit(db, now, "system", "timed_out", conversation_id, owner=owner)
        log.info("conversation %s returned to the bot after %s without staff activity", conversation_id, self.idle_after)
        self._events.publish(Event("timed_out", conversation_id, "bot"))
        return True

    # -- KPIs ----------------------------------------------------------------------

    async def kpis(self, since: datetime, *, chart_days: int = 14) -> Kpis:
        """Conversations, containment, escalations by reason and outcome, first-reply time, CSAT, daily counts."""
        start = _stamp(since)

        async def scalar(sql: str, *params: object) -> Any:
            async with self._db.execute(sql, params) as cur:
                row = await cur.fetchone()
            return row[0] if row else None

        async def pairs(sql: str, *params: object) -> list[tuple[str, int]]:
            async with self._db.execute(sql, params) as cur:
                return [(str(r[0]), int(r[1])) for r in await cur.fetchall()]

        conversations = int(await scalar("SELECT COUNT(*) FROM conversations WHERE created_at >= ?", start))
        escalated = int(
            await scalar(
                "SELECT COUNT(*) FROM conversations c WHERE c.created_at >= ? "
                "AND EXISTS (SELECT 1 FROM escalations e WHERE e.conversation_id = c.id)",
                start,
            )
        )
        # "sensitive:refund" counts as "sensitive": the detail is for the thread, not the chart
        by_reason = await pairs(
            "SELECT CASE WHEN instr(reason, ':') > 0 THEN substr(reason, 1, instr(reason, ':') - 1) ELSE reason END AS base, "
            "COUNT(*) FROM escalations WHERE created_at >= ? GROUP BY base ORDER BY COUNT(*) DESC, base",
            start,
        )
        outcomes = await pairs(
            "SELECT COALESCE(outcome, 'open'), COUNT(*) FROM escalations WHERE created_at >= ? "
            "GROUP BY COALESCE(outcome, 'open') ORDER BY COUNT(*) DESC",
            start,
        )
        async with self._db.execute(
            "SELECT created_at, first_staff_reply_at FROM escalations WHERE created_at >= ? AND first_staff_reply_at IS NOT NULL", (start,)
        ) as cur:
            waits = [
                (datetime.fromisoformat(r["first_staff_reply_at"]) - datetime.fromisoformat(r["created_at"])).total_seconds()
                for r in await cur.fetchall()
            ]
        async with self._db.execute(
            "SELECT AVG(csat), COUNT(csat) FROM escalations WHERE created_at >= ? AND csat IS NOT NULL", (start,)
        ) as cur:
            csat_row = await cur.fetchone()
        open_states = dict(
            await pairs("SELECT state, COUNT(*) FROM conversations WHERE state IN ('pending_human', 'human') GROUP BY state")
        )
        first_day = (self.now() - timedelta(days=chart_days - 1)).date()
        day_start = _stamp(datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC))
        per_day_conversations = dict(
            await pairs("SELECT substr(created_at, 1, 10), COUNT(*) FROM conversations WHERE created_at >= ? GROUP BY 1", day_start)
        )
        per_day_escalations = dict(
            await pairs("SELECT substr(created_at, 1, 10), COUNT(*) FROM escalations WHERE created_at >= ? GROUP BY 1", day_start)
        )
        daily = []
        for offset in range(chart_days):
            day = first_day + timedelta(days=offset)
            key = day.isoformat()
            daily.append(DayCount(day, per_day_conversations.get(key, 0), per_day_escalations.get(key, 0)))
        return Kpis(
            since=since,
            conversations=conversations,
            escalated_conversations=escalated,
            escalations=sum(count for _reason, count in by_reason),
            escalations_by_reason=by_reason,
            outcomes=outcomes,
            median_first_reply=timedelta(seconds=statistics.median(waits)) if waits else None,
            first_replies=len(waits),
            csat_average=float(csat_row[0]) if csat_row and csat_row[0] is not None else None,
            csat_responses=int(csat_row[1]) if csat_row else 0,
            open_pending=open_states.get("pending_human", 0),
            open_human=open_states.get("human", 0),
            daily=daily,
        )
