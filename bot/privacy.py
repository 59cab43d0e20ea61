"""Export and erasure of everything held about one shopper.

Every table of the conversation database is classified in :data:`TABLES`:
either it holds shoppers' personal data, with the SQL that finds one
customer's rows, or it does not (catalog events, staff accounts, bookkeeping).
A test fails when a migration adds a table nobody classified, so new personal
data cannot slip past export and erasure.

Erasure deletes the person's rows everywhere; the consent ledger keeps only the
minimal proof that consent was withdrawn (purpose, channel, when), keyed by a
one-way hash instead of the customer id. Deleted rows are overwritten on disk
(``secure_delete``) and the write-ahead log is truncated afterwards, so the
bytes are gone from the database files too, not only from query results. Every
erasure writes one audit entry naming the pseudonym, who asked (``cli``,
``shopper`` or a staff id) and how many rows went, never the person's data.
Knowledge-base indexes hold catalog and policy text only; the erasure test
searches them too.

The command line, the shopper's "forget me" and the staff console all call
:func:`erase_customer`; :func:`find_customer` resolves what a person gives
(id, phone, e-mail, channel identity) and :func:`held_records` says what is
held before anything is exported or erased.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.logs import hash_id
from bot.staff import write_audit
from bot.store import Store

log = logging.getLogger(__name__)

# table -> WHERE clause selecting one customer's rows (parameter: the customer id), or None: no personal data
TABLES: dict[str, str | None] = {
    "customers": "id = ?",
    "identities": "customer_id = ?",
    "conversations": "customer_id = ?",
    "messages": "conversation_id IN (SELECT id FROM conversations WHERE customer_id = ?)",
    "inbox": "EXISTS (SELECT 1 FROM identities i WHERE i.customer_id = ? AND i.channel = inbox.channel AND i.external_id = inbox.chat_id)",
    "outbox": "conversation_id IN (SELECT id FROM conversations WHERE customer_id = ?)",
    "delivery_status": (
        "EXISTS (SELECT 1 FROM outbox o JOIN conversations c ON c.id = o.conversation_id WHERE c.customer_id = ? "
        "AND o.channel = delivery_status.channel AND instr(',' || o.platform_message_id || ',', "
        "',' || delivery_status.platform_message_id || ',') > 0)"
    ),
    "orders": "customer_id = ?",
    "order_items": "customer_id = ?",
    "escalations": "conversation_id IN (SELECT id FROM conversations WHERE customer_id = ?)",
    "staff_notes": "conversation_id IN (SELECT id FROM conversations WHERE customer_id = ?)",
    "audit_log": "target IN (SELECT id FROM conversations WHERE customer_id = ?) OR target = ?",
    "consents": "customer_id = ?",
    "followups": "customer_id = ?",
    "subscriptions": "customer_id = ?",
    "conversions": "customer_id = ?",
    "profile_facts": "customer_id = ?",
    "profile_consents": "customer_id = ?",
    "verification_codes": (
        "customer_id = ? OR EXISTS (SELECT 1 FROM identities i WHERE i.customer_id = ? "
        "AND i.channel = verification_codes.channel AND i.external_id = verification_codes.external_id)"
    ),
    "order_lookup_misses": (
        "EXISTS (SELECT 1 FROM identities i WHERE i.customer_id = ? "
        "AND i.channel = order_lookup_misses.channel AND i.external_id = order_lookup_misses.external_id)"
    ),
    # no shopper data in these
    "schema_migrations": None,
    "sqlite_sequence": None,
    "staff_users": None,
    "staff_sessions": None,
    "canned_replies": None,
    "back_in_stock_events": None,
    "readiness_probe": None,
    "scheduler_lease": None,
}
# children before parents, so foreign keys never block a delete; a classified table missing here
# (a newer one) is erased before all of these, as new tables hang off customers and conversations
ERASE_ORDER = (
    "delivery_status", "outbox", "inbox", "messages", "escalations", "staff_notes", "audit_log",
    "followups", "subscriptions", "conversions", "profile_facts", "profile_consents", "verification_codes",
    "order_lookup_misses", "order_items", "orders", "conversations", "identities", "customers",
)


class UnknownCustomerError(LookupError):
    """No customer matches the given id, phone or e-mail."""


class AmbiguousCustomerError(UnknownCustomerError):
    """More than one customer matches (a shared phone number, say): the customer id is needed."""


@dataclass(frozen=True, slots=True)
class ErasureReport:
    customer_hash: str
    rows_deleted: dict[str, int]
    consent_withdrawals_kept: int

    @property
    def total_deleted(self) -> int:
        return sum(self.rows_deleted.values())


async def existing_tables(store: Store) -> set[str]:
    async with store.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'") as cur:
        return {row[0] for row in await cur.fetchall()}


async def find_customer(store: Store, key: str) -> str:
    """The customer id for an id, a phone number, an e-mail or a channel identity."""
    normalized = key.strip()
    async with store.db.execute(
        "SELECT id FROM customers WHERE id = ? OR lower(email) = lower(?) OR replace(replace(phone, ' ', ''), '-', '') = ? "
        "UNION SELECT customer_id FROM identities WHERE external_id = ? OR external_id = 'whatsapp:' || ?",
        (normalized, normalized, normalized.replace(" ", "").replace("-", ""), normalized, normalized),
    ) as cur:
        rows = [row[0] for row in await cur.fetchall()]
    if not rows:
        raise UnknownCustomerError(f"no customer matches {key!r}")
    if len(set(rows)) > 1:
        raise AmbiguousCustomerError(f"{key!r} matches {len(set(rows))} customers; use the customer id")
    return str(rows[0])


def _erase_order() -> list[str]:
    newer = [t for t, clause in TABLES.items() if clause is not None and t not in ERASE_ORDER and t != "consents"]
    return newer + [t for t in ERASE_ORDER if TABLES.get(t) is not None]


def _params(table: str, customer_id: str) -> tuple[str, ...]:
    clause = TABLES[table] or ""
    return (customer_id,) * clause.count("?")


async def export_customer(store: Store, customer_id: str) -> dict[str, Any]:
    """Everything held about one customer, table by table, as JSON-ready data."""
    tables = await existing_tables(store)
    export: dict[str, Any] = {"customer_id": customer_id, "exported_at": store.now().isoformat(), "data": {}}
    for table, clause in TABLES.items():
        if clause is None or table not in tables:
            continue
        async with store.db.execute(f"SELECT * FROM {table} WHERE {clause}", _params(table, customer_id)) as cur:  # noqa: S608
            rows = [dict(row) for row in await cur.fetchall()]
        for row in rows:
            for key, value in row.items():
                if isinstance(value, str) and value[:1] in "[{":
                    with contextlib.suppress(ValueError):  # text that only looks like JSON stays text
                        row[key] = json.loads(value)
        export["data"][table] = rows
    return export


async def held_records(store: Store, customer_id: str) -> dict[str, int]:
    """How many rows each table holds about one customer (tables holding none are left out)."""
    tables = await existing_tables(store)
    held: dict[str, int] = {}
    for table, clause in TABLES.items():
        if clause is None or table not in tables:
            continue
        async with store.db.execute(f"SELECT COUNT(*) FROM {table} WHERE {clause}", _params(table, customer_id)) as cur:  # noqa: S608
            row = await cur.fetchone()
        if row is not None and row[0]:
            held[table] = int(row[0])
    return held


async def erase_customer(store: Store, customer_id: str, *, actor: str = "system") -> ErasureReport:
    """Delete one customer everywhere, keeping only proof of withdrawn consent.

    ``actor`` says who asked, for the audit entry: ``cli``, ``shopper`` or a staff id.
    """
    tables = await existing_tables(store)
    pseudonym = hash_id(customer_id)
    deleted: dict[str, int] = {}
    kept = 0
    # deleted rows are zeroed on disk instead of lingering in free pages (on for this connection from now on)
    await store.db.execute("PRAGMA secure_delete = ON")
    async with store.transaction() as db:
        if "consents" in tables:
            # the law asks us to prove a withdrawal: keep purpose, channel and dates under a pseudonym
            cur = await db.execute(
                "UPDATE consents SET customer_id = ?, evidence_text = NULL, evidence_message_id = NULL, "
                "revoked_text = NULL, revoked_message_id = NULL, status = 'revoked', "
                "revoked_at = COALESCE(revoked_at, ?) WHERE customer_id = ?",
                (pseudonym, store.now().isoformat(), customer_id),
            )
            kept = cur.rowcount
        for table in _erase_order():
            if table not in tables:
                continue
            cur = await db.execute(f"DELETE FROM {table} WHERE {TABLES[table]}", _params(table, customer_id))  # noqa: S608
            deleted[table] = cur.rowcount
        await write_audit(
            db, store.now(), actor, "customer_erased", pseudonym,
            rows_deleted=sum(deleted.values()), consent_withdrawals_kept=kept,
        )
    if not await store.truncate_wal():
        # another process is reading an older snapshot; its frames are overwritten by later writes
        log.warning("after an erasure the write-ahead log could not be truncated yet (a reader is active)")
    return ErasureReport(customer_hash=pseudonym, rows_deleted=deleted, consent_withdrawals_kept=kept)


def export_token(customer_id: str, expires_at: datetime, secret: bytes) -> str:
    """A link token that proves who the export is for and until when (HMAC-signed)."""
    payload = f"{customer_id}|{int(expires_at.timestamp())}".encode()
    signature = hmac.new(secret, payload, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + base64.urlsafe_b64encode(signature).decode().rstrip("=")


def read_export_token(token: str, secret: bytes, now: datetime) -> str | None:
    """The customer id of a valid, unexpired token; None otherwise (constant-time check)."""
    try:
        encoded_payload, encoded_signature = token.split(".", 1)
        payload = base64.urlsafe_b64decode(encoded_payload + "=" * (-len(encoded_payload) % 4))
        signature = base64.urlsafe_b64decode(encoded_signature + "=" * (-len(encoded_signature) % 4))
        customer_id, expires = payload.decode().rsplit("|", 1)
        expiry = int(expires)
    except (ValueError, UnicodeDecodeError):
        return None
    if not hmac.compare_digest(signature, hmac.new(secret, payload, hashlib.sha256).digest()):
        return None
    if now.timestamp() > expiry:
        return None
    return customer_id


def load_secret(data_dir: Path) -> bytes:
    """The install's signing secret, created on first use (0600) in the data dir."""
    path = data_dir / "secret.key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
    return path.read_bytes()


def export_filename(customer_id: str, at: datetime) -> str:
    return f"shopkeeper-export-{hash_id(customer_id)[2:]}-{at:%Y%m%d}.json"
