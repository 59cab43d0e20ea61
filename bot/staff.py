"""Staff accounts of the takeover console: passwords, sessions, lockout, roles, audit.

Passwords are hashed with scrypt (:func:`hashlib.scrypt`) and a random salt per
user; the stored form carries its parameters (``scrypt$N$r$p$salt$hash``) so the
cost can be raised later without breaking existing accounts, and is compared in
constant time. Hashing is CPU-heavy: the async methods run it in a thread.

A login creates a session: a random token goes to the browser (in a cookie) and
only its SHA-256 is stored, next to the session's CSRF token and its expiry. A
session ends when it expires, when its owner logs out, or when it is revoked.

After :data:`MAX_FAILED_LOGINS` wrong passwords in a row an account is locked
for :data:`LOCKOUT`; a correct password during the lock does not open it.

Roles: ``agent`` (answers shoppers) and ``admin`` (also takes threads over from
colleagues, manages canned replies, reads the audit log). Every security-relevant
action is written to the ``audit_log`` table, in the same transaction as the
action itself when there is one.

Exceptions::

    StaffError
    ├── LoginFailed         wrong email or password (the message never says which)
    │   └── AccountLocked   too many failed logins; ``until`` says when it reopens
    ├── PermissionDenied    the staff member's role does not allow the action
    └── StaffExists         an account with this email already exists
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Literal

import aiosqlite
from babel import Locale, UnknownLocaleError

from bot.store import Store

log = logging.getLogger(__name__)

Role = Literal["agent", "admin"]
ROLES: tuple[Role, ...] = ("agent", "admin")

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
DEFAULT_SESSION_LIFETIME = timedelta(hours=12)
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024  # scrypt hashes any length; a cap keeps a login request cheap

# Django's scrypt defaults: 16 MiB of memory per hash
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_DKLEN = 64
SALT_BYTES = 16
_SCRYPT_MAX_N = 2**20
_MAXMEM = 256 * 1024 * 1024


class StaffError(Exception):
    """Base of every staff-account error."""


class LoginFailed(StaffError):
    """The email or the password is wrong (deliberately not saying which)."""


class AccountLocked(LoginFailed):
    """Too many failed logins; the account reopens at ``until``."""

    def __init__(self, until: datetime) -> None:
        super().__init__("account locked after too many failed logins")
        self.until = until


class PermissionDenied(StaffError):
    """The staff member's role does not allow this action."""


class StaffExists(StaffError):
    """A staff account with this email already exists."""


# -- passwords ------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """The scrypt hash of ``password`` with a fresh random salt, as ``scrypt$N$r$p$salt$hash``.

    CPU-heavy (tens of milliseconds): call :func:`hash_password_async` from async code.
    """
    salt = secrets.token_bytes(SALT_BYTES)
    derived = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=SCRYPT_DKLEN, maxmem=_MAXMEM)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(derived)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches the stored hash (constant-time comparison).

    A malformed stored value never matches. CPU-heavy like :func:`hash_password`.
    """
    try:
        scheme, n_text, r_text, p_text, salt_text, hash_text = stored.split("$")
        n, r, p = int(n_text), int(r_text), int(p_text)
        salt = base64.b64decode(salt_text, validate=True)
        expected = base64.b64decode(hash_text, validate=True)
    except ValueError:
        return False
    if scheme != "scrypt" or not (1 < n <= _SCRYPT_MAX_N) or not (0 < r <= 32) or not (0 < p <= 16) or not expected:
        return False
    derived = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=len(expected), maxmem=_MAXMEM)
    return hmac.compare_digest(derived, expected)


async def hash_password_async(password: str) -> str:
    """:func:`hash_password` in a worker thread, so the event loop keeps serving."""
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(password: str, stored: str) -> bool:
    """:func:`verify_password` in a worker thread."""
    return await asyncio.to_thread(verify_password, password, stored)


def check_password_policy(password: str) -> None:
    """Raise :class:`ValueError` naming the rule a new password breaks."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"the password must have at most {MAX_PASSWORD_LENGTH} characters")


def session_token_hash(token: str) -> str:
    """What is stored for a session token: its SHA-256 (the token itself is random and long)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def csrf_matches(expected: str, submitted: str | None) -> bool:
    """Constant-time CSRF check; a missing or empty token never matches."""
    if not submitted or not expected:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), submitted.encode("utf-8"))


def normalize_staff_locale(value: str | None) -> str:
    """A Babel locale identifier for formatting dates and numbers (``en`` when unknown)."""
    if not value:
        return "en"
    try:
        return str(Locale.parse(value.strip().replace("-", "_")))
    except (ValueError, UnknownLocaleError):
        return "en"


@cache
def _dummy_hash() -> str:
    """A hash to verify against when the email is unknown, so both cases cost the same."""
    return hash_password(secrets.token_urlsafe(16))


def _verify_against_dummy(password: str) -> None:
    verify_password(password, _dummy_hash())


# -- accounts and sessions ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StaffUser:
    """A staff member as the console sees it. The password hash is deliberately not here."""

    id: str
    email: str
    name: str | None
    role: Role
    locale: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def display_name(self) -> str:
        return self.name or self.email


@dataclass(frozen=True, slots=True)
class StaffSession:
    """A logged-in browser: who, its CSRF token, and when it ends."""

    staff: StaffUser
    csrf_token: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    target: str | None
    detail: dict[str, object]


def require_role(user: StaffUser, role: Role) -> None:
    """Raise :class:`PermissionDenied` unless ``user`` has ``role`` (admins have every role)."""
    if role == "admin" and not user.is_admin:
        raise PermissionDenied(f"{role} role required")


async def write_audit(
    db: aiosqlite.Connection, at: datetime, actor: str, action: str, target: str | None = None, **detail: object
) -> None:
    """Append one audit entry; call inside the transaction of the action it records."""
    await db.execute(
        "INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
        (at.astimezone(UTC).isoformat(), actor, action, target, json.dumps(detail, ensure_ascii=False, default=str)),
    )


def _user(row: sqlite3.Row) -> StaffUser:
    return StaffUser(
        id=row["id"], email=row["email"], name=row["name"], role=row["role"], locale=normalize_staff_locale(row["locale"])
    )


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class StaffAccounts:
    """Staff accounts, logins and sessions over the conversation :class:`~bot.store.Store`."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], datetime] | None = None,
        session_lifetime: timedelta = DEFAULT_SESSION_LIFETIME,
        max_failed_logins: int = MAX_FAILED_LOGINS,
        lockout: timedelta = LOCKOUT,
    ) -> None:
        self._store = store
        self._clock = clock or store.now
        self.session_lifetime = session_lifetime
        self.max_failed_logins = max_failed_logins
        self.lockout = lockout

    def _now(self) -> datetime:
        return self._clock().astimezone(UTC)

    # -- accounts ------------------------------------------------------------

    async def create_user(
        self, email: str, password: str, *, role: Role = "agent", name: str | None = None, locale: str | None = None
    ) -> StaffUser:
        """Add a staff account; raises :class:`StaffExists` or :class:`ValueError` (bad role, email, password)."""
        email = email.strip()
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        if "@" not in email or len(email) > 254 or any(ch.isspace() for ch in email):
            raise ValueError("email must look like name@example.com")
        check_password_policy(password)
        password_hash = await hash_password_async(password)
        user_id = "stf_" + uuid.uuid4().hex[:16]
        now = self._now()
        try:
            async with self._store.transaction() as db:
                await db.execute(
                    "INSERT INTO staff_users (id, email, name, role, password_hash, locale, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (user_id, email, name, role, password_hash, locale, now.isoformat()),
                )
                await write_audit(db, now, "system", "staff_created", user_id, email=email, role=role)
        except sqlite3.IntegrityError as exc:
            raise StaffExists(f"a staff account for {email} already exists") from exc
        log.info("staff account %s created with role %s", user_id, role)
        return StaffUser(user_id, email, name, role, normalize_staff_locale(locale))

    async def get_user(self, staff_id: str) -> StaffUser | None:
        async with self._store.db.execute("SELECT * FROM staff_users WHERE id = ?", (staff_id,)) as cur:
            row = await cur.fetchone()
        return _user(row) if row else None

    async def users(self) -> list[StaffUser]:
        async with self._store.db.execute("SELECT * FROM staff_users ORDER BY email") as cur:
            return [_user(r) for r in await cur.fetchall()]

    # -- logins --------------------------------------------------------------

    async def authenticate(self, email: str, password: str) -> StaffUser:
        """The staff member with this email and password, counting failures towards the lockout.

        Raises :class:`LoginFailed` (unknown email or wrong password) or
        :class:`AccountLocked` (locked now, or this failure locked it).
        """
        email = email.strip()
        async with self._store.db.execute("SELECT * FROM staff_users WHERE email = ?", (email,)) as cur:
            row = await cur.fetchone()
        if row is None or len(password) > MAX_PASSWORD_LENGTH:
            await asyncio.to_thread(_verify_against_dummy, password[:MAX_PASSWORD_LENGTH])
            await self._audit("anonymous", "login_failed", None, reason="unknown email or oversized password")
            raise LoginFailed("wrong email or password")
        good = await verify_password_async(password, row["password_hash"])
        now = self._now()
        async with self._store.transaction() as db:
            # re-read inside the transaction: concurrent attempts count one by one
            async with db.execute("SELECT failed_logins, locked_until FROM staff_users WHERE id = ?", (row["id"],)) as cur:
                current = await cur.fetchone()
            if current is None:
                raise LoginFailed("wrong email or password")
            locked_until = _parse_time(current["locked_until"])
            if locked_until is not None and now < locked_until:
                # raised after the commit, so the audit entry stays
                await write_audit(db, now, row["id"], "login_refused_locked", row["id"])
                refused: LoginFailed = AccountLocked(locked_until)
            elif good:
                await db.execute("UPDATE staff_users SET failed_logins = 0, locked_until = NULL WHERE id = ?", (row["id"],))
                await write_audit(db, now, row["id"], "login", row["id"])
                return _user(row)
            elif int(current["failed_logins"]) + 1 >= self.max_failed_logins:
                until = now + self.lockout
                await db.execute(
                    "UPDATE staff_users SET failed_logins = 0, locked_until = ? WHERE id = ?", (until.isoformat(), row["id"])
                )
                await write_audit(db, now, row["id"], "locked", row["id"], until=until.isoformat())
                refused = AccountLocked(until)
            else:
                failures = int(current["failed_logins"]) + 1
                await db.execute(
                    "UPDATE staff_users SET failed_logins = ?, locked_until = NULL WHERE id = ?", (failures, row["id"])
                )
                await write_audit(db, now, row["id"], "login_failed", row["id"], failures=failures)
                refused = LoginFailed("wrong email or password")
        raise refused

    async def login(self, email: str, password: str) -> tuple[str, StaffSession]:
        """Authenticate and open a session; returns the session token (for the cookie) and the session."""
        user = await self.authenticate(email, password)
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = self._now()
        expires = now + self.session_lifetime
        async with self._store.transaction() as db:
            # keep the table small: forget sessions that ended more than a day ago
            await db.execute("DELETE FROM staff_sessions WHERE expires_at < ?", ((now - timedelta(days=1)).isoformat(),))
            await db.execute(
                "INSERT INTO staff_sessions (token_hash, staff_id, csrf_token, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                (session_token_hash(token), user.id, csrf, now.isoformat(), expires.isoformat()),
            )
        return token, StaffSession(user, csrf, now, expires)

    async def session(self, token: str | None) -> StaffSession | None:
        """The live session of a token; None when unknown, expired, revoked or the account is gone."""
        if not token or len(token) > 256:
            return None
        async with self._store.db.execute(
            "SELECT s.csrf_token, s.created_at, s.expires_at, s.revoked_at, u.* FROM staff_sessions s "
            "JOIN staff_users u ON u.id = s.staff_id WHERE s.token_hash = ?",
            (session_token_hash(token),),
        ) as cur:
            row = await cur.fetchone()
        if row is None or row["revoked_at"] is not None:
            return None
        expires = datetime.fromisoformat(row["expires_at"])
        if self._now() >= expires:
            return None
        return StaffSession(_user(row), row["csrf_token"], datetime.fromisoformat(row["created_at"]), expires)

    async def logout(self, token: str | None) -> bool:
        """Revoke the session of a token; returns whether a live session was revoked."""
        if not token:
            return False
        now = self._now()
        async with self._store.transaction() as db:
            async with db.execute(
                "SELECT staff_id FROM staff_sessions WHERE token_hash = ? AND revoked_at IS NULL", (session_token_hash(token),)
            ) as cur:
                row = await cur.fetchone()
            if row is None:
                return False
            await db.execute("UPDATE staff_sessions SET revoked_at = ? WHERE token_hash = ?", (now.isoformat(), session_token_hash(token)))
            await write_audit(db, now, row["staff_id"], "logout", row["staff_id"])
        return True

    async def revoke_all(self, staff_id: str, *, actor: str = "system") -> int:
        """End every session of a staff member (password change, account compromise)."""
        now = self._now()
        async with self._store.transaction() as db:
            cur = await db.execute(
                "UPDATE staff_sessions SET revoked_at = ? WHERE staff_id = ? AND revoked_at IS NULL", (now.isoformat(), staff_id)
            )
            await write_audit(db, now, actor, "sessions_revoked", staff_id, count=cur.rowcount)
            return cur.rowcount

    # -- audit ---------------------------------------------------------------

    async def _audit(self, actor: str, action: str, target: str | None, **detail: object) -> None:
        async with self._store.transaction() as db:
            await write_audit(db, self._now(), actor, action, target, **detail)

    async def audit_log(self, limit: int = 200) -> list[AuditEntry]:
        """The latest audit entries, newest first."""
        async with self._store.db.execute("SELECT * FROM audit_log ORDER BY id DESC LIMIT ?", (limit,)) as cur:
            rows = await cur.fetchall()
        return [
            AuditEntry(r["id"], datetime.fromisoformat(r["at"]), r["actor"], r["action"], r["target"], json.loads(r["detail"] or "{}"))
            for r in rows
        ]
