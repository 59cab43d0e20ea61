"""Conversation memory: one SQLite file behind one writer connection.

The store owns the database. It opens it in WAL mode with a busy timeout,
applies the numbered migrations from :mod:`bot.migrations`, and serialises every
read-then-write sequence in ``BEGIN IMMEDIATE`` transactions behind one lock, so
concurrent turns never interleave half-written state. No network call happens
while a transaction is open: callers compute first, then write.

A turn is written in two steps: :meth:`Store.accept` records the inbound event in
the inbox (deduplicated on channel + platform id) before anything is
acknowledged, and :meth:`Store.finish_turn` writes the shopper's message, the
replies, the conversation's new state and the inbox status in one transaction.

A webhook waits for :meth:`Store.accept` before it answers the platform, so the
inbox insert goes first in the writer queue: it waits at most for the one
transaction being written, never for every turn queued behind it. There is one
writing connection: a second one would compete for SQLite's write lock ("database
is locked" under load) instead of queueing.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import logging
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

import aiosqlite

from bot.messages import Attachment, InboundMessage, OutboundMessage
from bot.metrics import Metrics
from bot.migrations import MIGRATIONS

T = TypeVar("T")
log = logging.getLogger(__name__)

ConversationState = Literal["bot", "pending_human", "human", "closed"]
Clock = Callable[[], datetime]
# the CHECK constraints of the followups table (migration 5)
FOLLOWUP_KINDS = ("reminder", "back_in_stock")
FOLLOWUP_STATUSES = ("pending", "queued", "sending", "sent", "maybe_sent", "failed", "blocked", "cancelled")


# tables whose rows belong to a customer and move with a chat identity that gets linked to another one
_CUSTOMER_OWNED = ("consents", "subscriptions", "followups", "profile_consents", "profile_facts")


def utc_now() -> datetime:
    return datetime.now(UTC)


class WriterQueue:
    """One writer at a time, first come first served, except that urgent writers go first.

    The lock is handed to the next waiter on release (it is never free while
    someone waits), so a stream of ordinary writers cannot overtake an urgent one.
    """

    def __init__(self) -> None:
        self._held = False
        self._urgent: collections.deque[asyncio.Future[None]] = collections.deque()
        self._ordinary: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def locked(self) -> bool:
        return self._held

    @asynccontextmanager
    async def hold(self, *, urgent: bool = False) -> AsyncIterator[None]:
        if self._held:
            waiters = self._urgent if urgent else self._ordinary
            turn = asyncio.get_running_loop().create_future()
            waiters.append(turn)
            try:
                await turn
            except asyncio.CancelledError:
                if turn.done() and not turn.cancelled():
                    self._release()  # handed the lock as it was cancelled: pass it on
                else:
                    waiters.remove(turn)
                raise
        self._held = True
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        for waiters in (self._urgent, self._ordinary):
            while waiters:
                turn = waiters.popleft()
                if not turn.done():
                    turn.set_result(None)  # ownership passes on: the lock stays held
                    return
        self._held = False


class StoreError(RuntimeError):
    """The conversation database could not be opened or written."""


# SQLite's primary result codes for "cannot write here": read-only, I/O error, disk full, cannot open
_STORAGE_UNAVAILABLE = frozenset({8, 10, 13, 14})


def storage_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says the database cannot be written now (disk full, read-only, I/O error), not a bug."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.OperationalError) and code is not None and code & 0xFF in _STORAGE_UNAVAILABLE
class TurnAlreadyFinished(StoreError):
    """The inbox row's turn was completed by someone else (recovery and the worker both ran it)."""

    def __init__(self, inbox_id: int, status: str) -> None:
        super().__init__(f"inbox row {inbox_id} is already {status}")
        self.inbox_id = inbox_id
        self.status = status


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    customer_id: str
    channel: str
    chat_id: str
    state: ConversationState
    locale: str | None
    context: dict[str, Any] = field(default_factory=dict)
    owner: str | None = None


@dataclass(frozen=True, slots=True)
class Accepted:
    """The result of accepting an inbound event: its inbox row and whether it is new."""

    inbox_id: int
    is_new: bool
    status: str


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    conversation_id: str | None
    channel: str
    chat_id: str
    message: OutboundMessage
    attempts: int
    status: str
    error: str | None = None
    locale: str | None = None
    author: str = "bot"


@dataclass(frozen=True, slots=True)
class InboxEntry:
    inbox_id: int
    message: InboundMessage
    attempts: int
    received_at: datetime


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: int
    conversation_id: str
    direction: str
    author: str
    text: str
    payload: dict[str, Any] | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OrderLine:
    sku: str
    title: str
    quantity: int
    unit_price: Decimal
    product_id: str | None = None  # the catalog product, when the SKU was known at import


@dataclass(frozen=True, slots=True)
class Order:
    order_number: str
    customer_id: str | None
    status: str
    currency: str
    total: Decimal
    tracking_url: str | None
    created_at: datetime
    lines: tuple[OrderLine, ...]


@dataclass(frozen=True, slots=True)
class Customer:
    id: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    locale: str | None = None
    timezone: str | None = None


def _inbound_to_json(msg: InboundMessage) -> str:
    return json.dumps(
        {
            "channel": msg.channel,
            "external_id": msg.external_id,
            "sender_id": msg.sender_id,
            "chat_id": msg.chat_id,
            "text": msg.text,
            "timestamp": msg.timestamp.isoformat(),
            "attachments": [_attachment(a) for a in msg.attachments],
            "locale_hint": msg.locale_hint,
            "button_payload": msg.button_payload,
            "raw": msg.raw,
        },
        ensure_ascii=False,
    )


def _attachment(a: Attachment) -> dict[str, str]:
    return {"kind": a.kind, "url": a.url, "mime_type": a.mime_type, "name": a.name}


def inbound_from_json(payload: str) -> InboundMessage:
    data = json.loads(payload)
    return InboundMessage(
        channel=data["channel"],
        external_id=data["external_id"],
        sender_id=data["sender_id"],
        chat_id=data["chat_id"],
        text=data["text"],
        timestamp=datetime.fromisoformat(data["timestamp"]),
        attachments=tuple(Attachment(**a) for a in data.get("attachments", ())),
        locale_hint=data.get("locale_hint"),
        button_payload=data.get("button_payload"),
        raw=data.get("raw") or {},
    )


BUSY_TIMEOUT_MS = 5000  # how long a statement waits for another connection's write lock
_BEGIN_PATIENCE = BUSY_TIMEOUT_MS / 1000  # seconds, the same patience


async def _retry_while_busy(attempt: Callable[[], Awaitable[T]], *, poll: float | None = None) -> T:
    """Run ``attempt`` (a ``BEGIN IMMEDIATE`` or a single write), retrying while SQLite refuses at once.

    The connection is shared by the process's coroutines: while one of them is between
    the rows of a ``SELECT`` (a cursor not yet closed), the connection holds that read's
    snapshot. If another process (the web process accepting a webhook) committed since,
    SQLite refuses to start a write on the stale snapshot with ``SQLITE_BUSY_SNAPSHOT``
    (or ``SQLITE_BUSY``) at once, without its busy timeout. The reader finishes as soon
    as the event loop lets it, so the write starts over a moment later. ``poll`` retries at
    that fixed interval instead of backing off (an attempt that does not wait for the lock itself).
    """
    delay, deadline = poll or 0.001, time.monotonic() + _BEGIN_PATIENCE
    while True:
        try:
            return await attempt()
        except sqlite3.OperationalError as exc:
            busy = getattr(exc, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_BUSY_SNAPSHOT")
            if not busy or time.monotonic() >= deadline:  # a real busy timeout has waited its 5 s already
                raise
        await asyncio.sleep(delay)  # let the coroutine holding the read (or the other process) finish
        delay = delay if poll else min(delay * 2, 0.05)


def _inbox_entry(row: aiosqlite.Row) -> InboxEntry:
    return InboxEntry(row["id"], inbound_from_json(row["payload"]), row["attempts"], datetime.fromisoformat(row["received_at"]))


class Store:
    """The SQLite conversation store. Open once per process (in the app lifespan)."""

    def __init__(self, path: Path, *, clock: Clock = utc_now) -> None:
        self.path = path
        self._clock = clock
        self._db: aiosqlite.Connection | None = None
        self._writers = WriterQueue()

    def __repr__(self) -> str:
        return f"Store(path={str(self.path)!r})"

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("the store is not open")
        return self._db

    async def open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = await _connect(self.path)
            await self._db.execute("PRAGMA journal_mode=WAL")
            await self._migrate()
        except (sqlite3.Error, OSError) as exc:
            await self.close()
            raise StoreError(f"cannot open the database at {self.path}: {exc}") from exc

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def _migrate(self) -> None:
        await self.db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)")
        async with self.db.execute("SELECT version FROM schema_migrations") as cur:
            applied = {row[0] for row in await cur.fetchall()}
        for version, sql in MIGRATIONS:
            if version in applied:
                continue
            async with self.transaction() as db:
                # executescript would COMMIT our transaction; run statement by statement
                for statement in _split_sql(sql):
                    await db.execute(statement)
                await db.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    (version, self._now()),
                )
            log.info("applied database migration %d", version)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``), serialised with every other writer."""
        async with self._writers.hold():
            await _retry_while_busy(lambda: self.db.execute("BEGIN IMMEDIATE"))
            try:
                yield self.db
            except BaseException:
                await self._rollback()
                raise
            try:
                await self.db.execute("COMMIT")
            except BaseException:
                await self._rollback()  # a failed COMMIT (disk full) may leave the transaction open: never keep it
                raise

    async def atomic(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in one ``BEGIN IMMEDIATE`` … ``COMMIT`` on the database thread, in a single hop.

        :meth:`transaction` holds SQLite's write lock across awaits, so while the event
        loop runs other turns' CPU work the lock stays taken and another process (the web
        process acknowledging a webhook) waits for it. ``work`` is plain synchronous code
        on the connection and holds the lock only for as long as SQLite needs. The hot
        writes of a turn and of the outbox use this; ``work`` must not await or block.
        """

        def run(connection: sqlite3.Connection) -> T:
            connection.execute("BEGIN IMMEDIATE")  # raises before anything is written: _retry_while_busy may retry
            try:
                result = work(connection)
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:  # see _rollback: SQLite may have rolled back already
                    connection.execute("ROLLBACK")
                raise
            return result

        async with self._writers.hold():
            return await _retry_while_busy(lambda: self._on_db_thread(run))

    async def _on_db_thread(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` on the connection's own thread, as one call (aiosqlite runs every call there)."""
        connection: sqlite3.Connection = self.db._conn
        return cast(T, await self.db._execute(work, connection))  # type: ignore[no-untyped-call]

    async def _rollback(self) -> None:
        # SQLite rolls back by itself on some errors (disk full, I/O): a second ROLLBACK would fail with
        # "no transaction is active" and hide the error that says what went wrong
        if self.db.in_transaction:
            await self.db.execute("ROLLBACK")

    async def truncate_wal(self) -> bool:
        """Checkpoint the write-ahead log into the database and empty it; False when a reader kept it from finishing.

        Old WAL frames hold old row versions: after an erasure they must go too.
        """
        async with self._writers.hold(), self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)") as cur:
            row = await cur.fetchone()
        return row is None or not row[0]

    def now(self) -> datetime:
        """The store's clock (faked in tests)."""
        return self._clock()

    def _now(self) -> str:
        return self._clock().astimezone(UTC).isoformat()

    # -- inbox ---------------------------------------------------------------

    async def accept(self, msg: InboundMessage) -> Accepted:
        """Record an inbound event once; a replay returns the existing row.

        One autocommit statement, ahead of every queued turn write (the webhook waits for it).
        While another process (the worker) holds SQLite's write lock, the insert is retried
        every half millisecond rather than through SQLite's busy handler, which backs off
        1, 2, 5, 10, 15… ms: there a lock held for 9 ms cost the webhook 18.
        """
        params = (msg.channel, msg.external_id, msg.chat_id, _inbound_to_json(msg), self._now())

        def insert_now(db: sqlite3.Connection) -> list[sqlite3.Row]:
            db.execute("PRAGMA busy_timeout=0")
            try:
                return db.execute(
                    "INSERT INTO inbox (channel, external_id, chat_id, payload, received_at) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (channel, external_id) DO NOTHING RETURNING id",
                    params,
                ).fetchall()
            finally:
                db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

        async with self._writers.hold(urgent=True):
            inserted = await _retry_while_busy(lambda: self._on_db_thread(insert_now), poll=0.0005)
        for row in inserted:
            return Accepted(inbox_id=int(row[0]), is_new=True, status="accepted")
        existing = await self.db.execute_fetchall(
            "SELECT id, status FROM inbox WHERE channel = ? AND external_id = ?", (msg.channel, msg.external_id)
        )
        for row in existing:
            return Accepted(inbox_id=int(row[0]), is_new=False, status=str(row[1]))
        # the conflicting row vanished: only possible if someone deleted it meanwhile
        raise StoreError(f"inbox row for {msg.channel}/{msg.external_id} disappeared")

    async def unfinished_inbox(self) -> list[InboxEntry]:
        """Accepted events whose turn has not completed, oldest first."""
        async with self.db.execute(
            "SELECT id, payload, attempts, received_at FROM inbox WHERE status = 'accepted' ORDER BY id"
        ) as cur:
            return [_inbox_entry(row) for row in await cur.fetchall()]

    async def accepted_after(self, after_id: int, *, limit: int = 500) -> list[InboxEntry]:
        """Accepted events with an id above ``after_id``, oldest first (the worker's feed of new turns)."""
        async with self.db.execute(
            "SELECT id, payload, attempts, received_at FROM inbox WHERE id > ? AND status = 'accepted' ORDER BY id LIMIT ?",
            (after_id, limit),
        ) as cur:
            return [_inbox_entry(row) for row in await cur.fetchall()]

    async def inbox_status(self, inbox_id: int) -> str | None:
        async with self.db.execute("SELECT status FROM inbox WHERE id = ?", (inbox_id,)) as cur:
            row = await cur.fetchone()
        return None if row is None else str(row["status"])

    async def note_attempt(self, inbox_id: int, error: str) -> None:
        async with self.transaction() as db:
            await db.execute(
                "UPDATE inbox SET attempts = attempts + 1, error = ? WHERE id = ?", (error[:500], inbox_id)
            )

    async def fail_inbound(self, inbox_id: int, error: str) -> None:
        async with self.transaction() as db:
            await db.execute(
                "UPDATE inbox SET status = 'failed', attempts = attempts + 1, error = ?, processed_at = ? WHERE id = ?",
                (error[:500], self._now(), inbox_id),
            )

    async def replies_for(self, inbox_id: int) -> list[OutboundMessage]:
        """The bot's replies already written for an inbox event (to answer a replay)."""
        async with self.db.execute(
            "SELECT text, payload FROM messages WHERE inbox_id = ? AND direction = 'out' ORDER BY id", (inbox_id,)
        ) as cur:
            rows = await cur.fetchall()
        return [OutboundMessage.from_dict(json.loads(r["payload"])) if r["payload"] else OutboundMessage(r["text"]) for r in rows]

    # -- customers and conversations ----------------------------------------

    async def conversation_for(self, msg: InboundMessage) -> Conversation:
        """The open conversation of this chat, creating customer and identity on first contact."""
        row = await self._open_conversation_row(msg.channel, msg.chat_id)
        if row is not None:
            return _conversation(row)
        now = self._now()

        def create(db: sqlite3.Connection) -> None:
            ident = db.execute(
                "SELECT customer_id FROM identities WHERE channel = ? AND external_id = ?", (msg.channel, msg.sender_id)
            ).fetchone()
            if ident is None:
                customer_id = "cus_" + uuid.uuid4().hex[:16]
                db.execute("INSERT INTO customers (id, created_at) VALUES (?, ?)", (customer_id, now))
                db.execute(
                    "INSERT INTO identities (channel, external_id, customer_id, created_at) VALUES (?, ?, ?, ?)",
                    (msg.channel, msg.sender_id, customer_id, now),
                )
            else:
                customer_id = ident["customer_id"]
            db.execute(
                "INSERT INTO conversations (id, customer_id, channel, chat_id, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                ("conv_" + uuid.uuid4().hex[:16], customer_id, msg.channel, msg.chat_id, now, now),
            )

        await self.atomic(create)
        row = await self._open_conversation_row(msg.channel, msg.chat_id)
        if row is None:
            raise StoreError(f"conversation for {msg.channel}/{msg.chat_id} could not be created")
        return _conversation(row)

    async def open_conversation(self, channel: str, chat_id: str) -> Conversation | None:
        """The chat's open conversation, without creating one."""
        row = await self._open_conversation_row(channel, chat_id)
        return _conversation(row) if row else None

    async def _open_conversation_row(self, channel: str, chat_id: str) -> sqlite3.Row | None:
        async with self.db.execute(
            "SELECT * FROM conversations WHERE channel = ? AND chat_id = ? AND state != 'closed'", (channel, chat_id)
        ) as cur:
            return await cur.fetchone()

    async def get_conversation(self, conversation_id: str) -> Conversation | None:
        async with self.db.execute("SELECT * FROM conversations WHERE id = ?", (conversation_id,)) as cur:
            row = await cur.fetchone()
        return _conversation(row) if row else None

    async def link_identity(self, channel: str, external_id: str, customer_id: str, *, verified: bool) -> None:
        """Point a channel identity at a known customer (after phone or one-time-code verification).

        Conversations the identity already had move with it, so the customer sees one history.
        """
        async with self.transaction() as db:
            async with db.execute(
                "SELECT customer_id FROM identities WHERE channel = ? AND external_id = ?", (channel, external_id)
            ) as cur:
                row = await cur.fetchone()
            now = self._now()
            if row is None:
                await db.execute(
                    "INSERT INTO identities (channel, external_id, customer_id, verified, created_at) VALUES (?, ?, ?, ?, ?)",
                    (channel, external_id, customer_id, int(verified), now),
                )
                return
            previous = row["customer_id"]
            await db.execute(
                "UPDATE identities SET customer_id = ?, verified = ? WHERE channel = ? AND external_id = ?",
                (customer_id, int(verified), channel, external_id),
            )
            if previous != customer_id:
                await db.execute("UPDATE conversations SET customer_id = ? WHERE customer_id = ?", (customer_id, previous))
                async with db.execute("SELECT COUNT(*) FROM identities WHERE customer_id = ?", (previous,)) as cur:
                    remaining = await cur.fetchone()
                if remaining is not None and remaining[0] == 0:
                    # what the stand-in customer held follows the chat (a duplicate of a row the customer has is dropped)
                    for table in _CUSTOMER_OWNED:
                        await db.execute(f"UPDATE OR IGNORE {table} SET customer_id = ? WHERE customer_id = ?", (customer_id, previous))  # noqa: S608
                    await db.execute("DELETE FROM customers WHERE id = ? AND email IS NULL AND phone IS NULL", (previous,))

    async def is_verified(self, channel: str, external_id: str) -> bool:
        """Whether this channel identity is verified as its customer (phone or one-time code)."""
        async with self.db.execute(
            "SELECT verified FROM identities WHERE channel = ? AND external_id = ?", (channel, external_id)
        ) as cur:
            row = await cur.fetchone()
        return bool(row and row["verified"])

    async def customer_by_email(self, email: str) -> str | None:
        """The id of the customer with this e-mail address (case-insensitive), or None."""
        async with self.db.execute(
            "SELECT id FROM customers WHERE lower(email) = ? ORDER BY created_at, id LIMIT 1", (email.strip().lower(),)
        ) as cur:
            row = await cur.fetchone()
        return str(row["id"]) if row else None

    async def customer_by_phone(self, phone_e164: str) -> str | None:
        """The id of the customer whose phone is this E.164 number, or None."""
        async with self.db.execute(
            "SELECT id FROM customers WHERE phone = ? ORDER BY created_at, id LIMIT 1", (phone_e164,)
        ) as cur:
            row = await cur.fetchone()
        return str(row["id"]) if row else None

    async def get_customer(self, customer_id: str) -> Customer | None:
        async with self.db.execute("SELECT * FROM customers WHERE id = ?", (customer_id,)) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        return Customer(row["id"], row["name"], row["email"], row["phone"], row["locale"], row["timezone"])

    async def finish_turn(
        self,
        inbox_id: int | None,
        conversation: Conversation,
        inbound: InboundMessage,
        replies: Sequence[OutboundMessage],
        *,
        outbox: bool = False,
        escalation_reason: str | None = None,
        started_in: ConversationState | None = None,
    ) -> list[int] | None:
        """Write one turn atomically: shopper message, replies, conversation state, inbox done.

        With ``outbox``, the replies are also queued for delivery through the
        platform (channels that are not answered in the HTTP response).
        Returns the ids of the stored reply messages, or None when staff took the
        thread over while the turn ran (``started_in`` differs): then the replies are dropped.
        Raises :class:`TurnAlreadyFinished`, writing nothing, when the inbox row is no longer
        ``accepted``: another process ran the same turn first.
        """
        now = self._now()

        def write(db: sqlite3.Connection) -> list[int] | None:
            nonlocal conversation, replies, escalation_reason
            dropped = False
            reply_ids: list[int] = []
            if inbox_id is not None:
                inbox_row = db.execute("SELECT status FROM inbox WHERE id = ?", (inbox_id,)).fetchone()
                if inbox_row is not None and inbox_row["status"] != "accepted":
                    raise TurnAlreadyFinished(inbox_id, inbox_row["status"])
            current = db.execute("SELECT state, owner, context FROM conversations WHERE id = ?", (conversation.id,)).fetchone()
            if started_in is not None and current is not None and current["state"] != started_in:
                # staff claimed, released or resolved the thread while this turn ran: their change wins,
                # and a bot reply computed for the old state is not sent
                stored_context = json.loads(current["context"] or "{}")
                conversation = dataclasses.replace(
                    conversation,
                    state=current["state"],
                    owner=current["owner"],
                    context={**conversation.context, **{k: v for k, v in stored_context.items() if k.startswith("staff")}},
                )
                if current["state"] in ("pending_human", "human"):
                    replies = []
                    escalation_reason = None
                    dropped = True
            db.execute(
                "INSERT INTO messages (conversation_id, direction, author, text, payload, inbox_id, created_at) "
                "VALUES (?, 'in', 'shopper', ?, ?, ?, ?)",
                (conversation.id, inbound.text, json.dumps({"button_payload": inbound.button_payload}), inbox_id, now),
            )
            for reply in replies:
                cur = db.execute(
                    "INSERT INTO messages (conversation_id, direction, author, text, payload, inbox_id, created_at) "
                    "VALUES (?, 'out', 'bot', ?, ?, ?, ?)",
                    (conversation.id, reply.text, json.dumps(reply.to_dict(), ensure_ascii=False), inbox_id, now),
                )
                reply_ids.append(int(cur.lastrowid or 0))
            db.execute(
                "UPDATE conversations SET state = ?, owner = ?, locale = ?, context = ?, updated_at = ? WHERE id = ?",
                (
                    conversation.state,
                    conversation.owner,
                    conversation.locale,
                    json.dumps(conversation.context, ensure_ascii=False, default=str),
                    now,
                    conversation.id,
                ),
            )
            if conversation.locale:
                db.execute("UPDATE customers SET locale = ? WHERE id = ?", (conversation.locale, conversation.customer_id))
            if outbox:
                for reply in replies:
                    db.execute(
                        "INSERT INTO outbox (conversation_id, channel, chat_id, payload, next_attempt_at, created_at) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (conversation.id, inbound.channel, inbound.chat_id, json.dumps(reply.to_dict(), ensure_ascii=False), now, now),
                    )
            db.execute(
                "UPDATE identities SET last_inbound_at = ?, unreachable = 0 WHERE channel = ? AND external_id = ?",
                (inbound.timestamp.astimezone(UTC).isoformat(), inbound.channel, inbound.sender_id),
            )
            if inbound.chat_id != inbound.sender_id:  # a group chat that wrote again has the bot back in it
                db.execute(
                    "UPDATE conversations SET context = json_remove(context, '$.unreachable') "
                    "WHERE channel = ? AND chat_id = ? AND json_extract(context, '$.unreachable') IS NOT NULL",
                    (inbound.channel, inbound.chat_id),
                )
            if escalation_reason is not None:
                db.execute(
                    "INSERT INTO escalations (conversation_id, reason, created_at) VALUES (?, ?, ?)",
                    (conversation.id, escalation_reason, now),
                )
            if inbox_id is not None:
                db.execute(
                    "UPDATE inbox SET status = 'done', attempts = attempts + 1, processed_at = ? WHERE id = ?",
                    (now, inbox_id),
                )
            return None if dropped else reply_ids

        return await self.atomic(write)

    async def messages_after(self, channel: str, chat_id: str, after_id: int = 0, limit: int = 100) -> list[StoredMessage]:
        """Messages of a chat's conversations with an id above ``after_id``, oldest first."""
        async with self.db.execute(
            "SELECT m.* FROM messages m JOIN conversations c ON c.id = m.conversation_id "
            "WHERE c.channel = ? AND c.chat_id = ? AND m.id > ? ORDER BY m.id LIMIT ?",
            (channel, chat_id, after_id, limit),
        ) as cur:
            rows = await cur.fetchall()
        return [
            StoredMessage(
                id=r["id"],
                conversation_id=r["conversation_id"],
                direction=r["direction"],
                author=r["author"],
                text=r["text"],
                payload=json.loads(r["payload"]) if r["payload"] else None,
                created_at=datetime.fromisoformat(r["created_at"]),
            )
            for r in rows
        ]

    async def last_message_id(self, channel: str, chat_id: str) -> int:
        async with self.db.execute(
            "SELECT MAX(m.id) FROM messages m JOIN conversations c ON c.id = m.conversation_id "
            "WHERE c.channel = ? AND c.chat_id = ?",
            (channel, chat_id),
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    async def recent_messages(self, conversation_id: str, limit: int = 20) -> list[StoredMessage]:
        async with self.db.execute(
            "SELECT * FROM messages WHERE conversation_id = ? ORDER BY id DESC LIMIT ?", (conversation_id, limit)
        ) as cur:
            rows = await cur.fetchall()
        return [
            StoredMessage(
                r["id"],
                r["conversation_id"],
                r["direction"],
                r["author"],
                r["text"],
                json.loads(r["payload"]) if r["payload"] else None,
                datetime.fromisoformat(r["created_at"]),
            )
            for r in reversed(list(rows))
        ]

    async def check_writable(self) -> None:
        """Raise unless the database accepts a write right now (readiness probe)."""
        async with self.transaction() as db:
            await db.execute("CREATE TABLE IF NOT EXISTS readiness_probe (at TEXT)")
            await db.execute("DELETE FROM readiness_probe")
            await db.execute("INSERT INTO readiness_probe (at) VALUES (?)", (self._now(),))

    async def refresh_gauges(self, metrics: Metrics) -> None:
        """Set the database-backed gauges (what ``/metrics`` does on every scrape).

        The counts are read on a separate read-only connection in a worker thread: with
        100,000 follow-ups they take tens of milliseconds, which the store's own connection,
        shared by every chat turn, should not wait for (see ``bench/privacy_scale.py``).
        """
        counts = await asyncio.to_thread(_gauge_counts, self.path)
        for state in ("bot", "pending_human", "human", "closed"):
            metrics.conversations_open.labels(state).set(counts.conversations.get(state, 0))
        # every series, so a count that drops to zero (erasure) reads 0, not its old value
        for status in FOLLOWUP_STATUSES:
            metrics.followups_by_status.labels(status).set(counts.followups.get(status, 0))
        for kind in FOLLOWUP_KINDS:
            delivered, converted = counts.delivered.get(kind, (0, 0))
            metrics.followups_delivered.labels(kind).set(delivered)
            metrics.followup_conversions.labels(kind).set(converted)

    # -- escalations -----------------------------------------------------------

    async def open_escalation(self, conversation_id: str, reason: str) -> int:
        """Record a hand-over to staff (the staff inbox lists the open ones)."""
        async with self.transaction() as db:
            cur = await db.execute(
                "INSERT INTO escalations (conversation_id, reason, created_at) VALUES (?, ?, ?)",
                (conversation_id, reason, self._now()),
            )
            return int(cur.lastrowid or 0)

    # -- outbox -----------------------------------------------------------------

    async def claim_due_outbox(
        self, now: datetime, limit: int = 50, *, channel: str | None = None, excluding: Sequence[str] = ()
    ) -> list[OutboxItem]:
        """Take due pending deliveries (oldest first) and mark them ``sending``, atomically.

        ``channel`` restricts the claim to one platform; ``excluding`` leaves some out.
        """
        stamp = now.astimezone(UTC).isoformat()
        where, params = "o.status = 'pending' AND o.next_attempt_at <= ?", [stamp]
        if channel is not None:
            where += " AND o.channel = ?"
            params.append(channel)
        if excluding:
            where += f" AND o.channel NOT IN ({','.join('?' * len(excluding))})"
            params.extend(excluding)
        def claim(db: sqlite3.Connection) -> list[sqlite3.Row]:
            rows = db.execute(
                "SELECT o.*, c.locale AS locale FROM outbox o LEFT JOIN conversations c ON c.id = o.conversation_id "  # noqa: S608
                f"WHERE {where} ORDER BY o.id LIMIT ?",
                (*params, limit),
            ).fetchall()
            if rows:
                marks = ",".join("?" * len(rows))
                db.execute(f"UPDATE outbox SET status = 'sending' WHERE id IN ({marks})", [r["id"] for r in rows])  # noqa: S608
            return rows

        return [_outbox_item(r) for r in await self.atomic(claim)]

    async def outbox_sent(self, outbox_id: int, platform_ids: Sequence[str]) -> None:
        await self.atomic(
            lambda db: db.execute(
                "UPDATE outbox SET status = 'sent', attempts = attempts + 1, platform_message_id = ?, sent_at = ?, error = NULL "
                "WHERE id = ?",
                (",".join(platform_ids), self._now(), outbox_id),
            )
        )

    async def outbox_retry(self, outbox_id: int, at: datetime, error: str) -> None:
        await self.atomic(
            lambda db: db.execute(
                "UPDATE outbox SET status = 'pending', attempts = attempts + 1, next_attempt_at = ?, error = ? WHERE id = ?",
                (at.astimezone(UTC).isoformat(), error[:500], outbox_id),
            )
        )

    async def outbox_finish(self, outbox_id: int, status: str, error: str) -> None:
        """End a delivery as ``failed``, ``maybe_sent`` (not resent blindly) or ``held``."""
        if status not in {"failed", "maybe_sent", "held"}:
            raise ValueError(f"not a final outbox status: {status}")
        await self.atomic(
            lambda db: db.execute(
                "UPDATE outbox SET status = ?, attempts = attempts + 1, error = ? WHERE id = ?", (status, error[:500], outbox_id)
            )
        )

    async def recover_outbox(self) -> int:
        """After a crash, deliveries caught mid-send may have reached the platform: mark them for review."""
        async with self.transaction() as db:
            cur = await db.execute(
                "UPDATE outbox SET status = 'maybe_sent', error = 'interrupted while sending' WHERE status = 'sending'"
            )
            return cur.rowcount

    async def outbox_items(self, channel: str, chat_id: str) -> list[OutboxItem]:
        async with self.db.execute(
            "SELECT o.*, c.locale AS locale FROM outbox o LEFT JOIN conversations c ON c.id = o.conversation_id "
            "WHERE o.channel = ? AND o.chat_id = ? ORDER BY o.id",
            (channel, chat_id),
        ) as cur:
            return [_outbox_item(r) for r in await cur.fetchall()]

    async def record_receipt(self, channel: str, platform_message_id: str, status: str, error_code: str | None) -> None:
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO delivery_status (channel, platform_message_id, status, error_code, recorded_at) VALUES (?, ?, ?, ?, ?)",
                (channel, platform_message_id, status, error_code, self._now()),
            )

    async def mark_unreachable(self, channel: str, external_id: str) -> None:
        """The shopper blocked the bot or opted out on the platform (or, for a group chat, removed it): stop sending."""
        async with self.transaction() as db:
            cur = await db.execute(
                "UPDATE identities SET unreachable = 1 WHERE channel = ? AND external_id = ?", (channel, external_id)
            )
            if cur.rowcount == 0:  # a group chat: its id is nobody's identity, the flag lives on its conversations
                await db.execute(
                    "UPDATE conversations SET context = json_set(COALESCE(context, '{}'), '$.unreachable', json('true')) "
                    "WHERE channel = ? AND chat_id = ?",
                    (channel, external_id),
                )

    async def reachability(self, channel: str, chat_id: str) -> tuple[bool, datetime | None]:
        """Whether the chat can be messaged, and when it last wrote to us.

        A private chat is its shopper's identity. A group chat (Telegram) has an id of its
        own: it is reachable while it has a conversation not flagged by :meth:`mark_unreachable`,
        and its last message is the last one the inbox accepted from it.
        """
        async with self.db.execute(
            "SELECT unreachable, last_inbound_at FROM identities WHERE channel = ? AND external_id = ?", (channel, chat_id)
        ) as cur:
            row = await cur.fetchone()
        if row is not None:
            last = datetime.fromisoformat(row["last_inbound_at"]) if row["last_inbound_at"] else None
            return not row["unreachable"], last
        async with self.db.execute(
            "SELECT COALESCE(MAX(json_extract(c.context, '$.unreachable')), 0) AS unreachable, "
            "(SELECT MAX(received_at) FROM inbox i WHERE i.channel = c.channel AND i.chat_id = c.chat_id) AS last_inbound_at "
            "FROM conversations c WHERE c.channel = ? AND c.chat_id = ? GROUP BY c.channel, c.chat_id",
            (channel, chat_id),
        ) as cur:
            group = await cur.fetchone()
        if group is None:
            return False, None
        last = datetime.fromisoformat(group["last_inbound_at"]) if group["last_inbound_at"] else None
        return not group["unreachable"], last

    # -- customers and orders (demo data and imports) ------------------------

    async def upsert_customers(self, customers: Iterable[Customer]) -> int:
        now = self._now()
        count = 0
        async with self.transaction() as db:
            for c in customers:
                await db.execute(
                    "INSERT INTO customers (id, name, email, phone, locale, timezone, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET name = excluded.name, email = excluded.email, "
                    "phone = excluded.phone, locale = excluded.locale, timezone = excluded.timezone",
                    (c.id, c.name, c.email, c.phone, c.locale, c.timezone, now),
                )
                count += 1
        return count

    async def upsert_orders(self, orders: Iterable[Order]) -> int:
        async with self.transaction() as db:
            return await write_orders(db, orders)

    async def orders_for(self, customer_id: str) -> list[Order]:
        async with self.db.execute(
            "SELECT * FROM orders WHERE customer_id = ? ORDER BY created_at DESC", (customer_id,)
        ) as cur:
            rows = await cur.fetchall()
        return [_order(r) for r in rows]

    async def count(self, table: str) -> int:
        if table not in {"customers", "identities", "conversations", "messages", "inbox", "orders"}:
            raise ValueError(f"unknown table {table!r}")
        async with self.db.execute(f"SELECT COUNT(*) FROM {table}") as cur:  # noqa: S608 - table name checked above
            row = await cur.fetchone()
        return int(row[0]) if row else 0


@dataclass(frozen=True, slots=True)
class _GaugeCounts:
    conversations: dict[str, int]  # state -> conversations
    followups: dict[str, int]  # status -> follow-ups
    delivered: dict[str, tuple[int, int]]  # kind -> (delivered, attributed an order)


def _gauge_counts(path: Path) -> _GaugeCounts:
    """The counts behind the gauges, on a short-lived read-only connection (blocking: run it in a thread)."""
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)
    try:
        conversations = dict(db.execute("SELECT state, COUNT(*) FROM conversations GROUP BY state").fetchall())
        # status alone: answered from the covering index followups_due, without reading the rows
        followups = dict(db.execute("SELECT status, COUNT(*) FROM followups GROUP BY status").fetchall())
        # conversions are only ever attributed to delivered follow-ups: read those rows only
        delivered = {
            kind: (int(sent), int(converted or 0))
            for kind, sent, converted in db.execute(
                "SELECT kind, COUNT(*), SUM(converted_order IS NOT NULL) FROM followups WHERE status = 'sent' GROUP BY kind"
            )
        }
    finally:
        db.close()
    return _GaugeCounts(conversations, followups, delivered)


async def write_orders(db: aiosqlite.Connection, orders: Iterable[Order]) -> int:
    """Insert or update orders by number inside the caller's transaction; returns how many."""
    count = 0
    for o in orders:
        lines = json.dumps(
            [
                {"sku": ln.sku, "title": ln.title, "quantity": ln.quantity, "unit_price": str(ln.unit_price),
                 "product_id": ln.product_id}
                for ln in o.lines
            ]
        )
        await db.execute(
            "INSERT INTO orders (order_number, customer_id, status, currency, total, tracking_url, created_at, lines) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (order_number) DO UPDATE SET "
            "customer_id = excluded.customer_id, status = excluded.status, currency = excluded.currency, "
            "total = excluded.total, tracking_url = excluded.tracking_url, created_at = excluded.created_at, "
            "lines = excluded.lines",
            (o.order_number, o.customer_id, o.status, o.currency, str(o.total), o.tracking_url, o.created_at.isoformat(), lines),
        )
        await db.execute("DELETE FROM order_items WHERE order_number = ?", (o.order_number,))
        await db.executemany(
            "INSERT OR IGNORE INTO order_items (order_number, product_id, customer_id, status) VALUES (?, ?, ?, ?)",
            [(o.order_number, ln.product_id, o.customer_id, o.status) for ln in o.lines if ln.product_id],
        )
        count += 1
    return count
async def _connect(path: Path) -> aiosqlite.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves
    db = await aiosqlite.connect(path, isolation_level=None)
    db.row_factory = sqlite3.Row
    await db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    await db.execute("PRAGMA foreign_keys=ON")
    await db.execute("PRAGMA synchronous=NORMAL")
    return db


def _outbox_item(row: sqlite3.Row) -> OutboxItem:
    return OutboxItem(
        id=row["id"],
        conversation_id=row["conversation_id"],
        channel=row["channel"],
        chat_id=row["chat_id"],
        message=OutboundMessage.from_dict(json.loads(row["payload"])),
        attempts=row["attempts"],
        status=row["status"],
        error=row["error"],
        locale=row["locale"],
        author=row["author"],
    )


def _conversation(row: sqlite3.Row) -> Conversation:
    return Conversation(
        id=row["id"],
        customer_id=row["customer_id"],
        channel=row["channel"],
        chat_id=row["chat_id"],
        state=row["state"],
        locale=row["locale"],
        context=json.loads(row["context"] or "{}"),
        owner=row["owner"],
    )


def _order(row: sqlite3.Row) -> Order:
    return Order(
        order_number=row["order_number"],
        customer_id=row["customer_id"],
        status=row["status"],
        currency=row["currency"],
        total=Decimal(row["total"]),
        tracking_url=row["tracking_url"],
        created_at=datetime.fromisoformat(row["created_at"]),
        lines=tuple(
            OrderLine(ln["sku"], ln["title"], int(ln["quantity"]), Decimal(ln["unit_price"]), ln.get("product_id"))
            for ln in json.loads(row["lines"])
        ),
    )


def _split_sql(script: str) -> list[str]:
    """Split a migration script into statements (no semicolons inside our literals)."""
    statements = []
    for chunk in script.split(";"):
        lines = [ln for ln in chunk.splitlines() if not ln.strip().startswith("--")]
        statement = "\n".join(lines).strip()
        if statement:
            statements.append(statement)
    return statements
