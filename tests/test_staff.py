"""Staff accounts: password hashing, lockout, sessions, logout and roles, on a real SQLite store."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.staff import (
    LOCKOUT,
    MAX_FAILED_LOGINS,
    AccountLocked,
    LoginFailed,
    PermissionDenied,
    StaffAccounts,
    StaffExists,
    csrf_matches,
    hash_password,
    require_role,
    session_token_hash,
    verify_password,
)
from bot.store import Store

PASSWORD = "correct horse battery staple"


class FakeClock:
    """A clock the test moves by hand: no sleeping."""

    def __init__(self) -> None:
        self.now = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Store]:
    async with Store(tmp_path / "shopkeeper.db", clock=clock) as opened:
        yield opened


@pytest.fixture
def accounts(store: Store, clock: FakeClock) -> StaffAccounts:
    return StaffAccounts(store, clock=clock, session_lifetime=timedelta(hours=8))


# -- hashing ------------------------------------------------------------------------


def test_hash_never_equals_or_contains_the_password() -> None:
    stored = hash_password(PASSWORD)
    assert stored != PASSWORD
    assert PASSWORD not in stored
    assert stored.startswith("scrypt$")


def test_verify_accepts_the_right_password_and_refuses_others() -> None:
    stored = hash_password(PASSWORD)
    assert verify_password(PASSWORD, stored)
    assert not verify_password(PASSWORD + " ", stored)
    assert not verify_password("", stored)
    assert not verify_password(PASSWORD.upper(), stored)


def test_same_password_gets_different_salts_and_hashes() -> None:
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first != second
    assert first.split("$")[4] != second.split("$")[4]  # the salt
    assert verify_password(PASSWORD, first) and verify_password(PASSWORD, second)


@pytest.mark.parametrize("stored", ["", "plain", "bcrypt$1$2$3$4$5", "scrypt$x$8$1$AAAA$AAAA", "scrypt$16384$8$1$!!$??"])
def test_malformed_stored_hash_never_matches(stored: str) -> None:
    assert not verify_password(PASSWORD, stored)


async def test_the_database_holds_only_the_hash(accounts: StaffAccounts, store: Store, tmp_path: Path) -> None:
    await accounts.create_user("ana@shop.example", PASSWORD)
    with sqlite3.connect(tmp_path / "shopkeeper.db") as db:
        (stored,) = db.execute("SELECT password_hash FROM staff_users").fetchone()
        dump = "\n".join(db.iterdump())
    assert verify_password(PASSWORD, stored)
    assert PASSWORD not in dump


async def test_weak_passwords_duplicate_emails_and_unknown_roles_are_refused(accounts: StaffAccounts) -> None:
    with pytest.raises(ValueError, match="at least"):
        await accounts.create_user("short@shop.example", "short")
    with pytest.raises(ValueError, match="role"):
        await accounts.create_user("boss@shop.example", PASSWORD, role="owner")  # type: ignore[arg-type]
    await accounts.create_user("ana@shop.example", PASSWORD)
    with pytest.raises(StaffExists):
        await accounts.create_user("ANA@shop.example", PASSWORD)


# -- login and lockout ------------------------------------------------------------------


async def test_login_with_the_right_password_and_not_with_a_wrong_one(accounts: StaffAccounts) -> None:
    user = await accounts.create_user("ana@shop.example", PASSWORD, name="Ana")
    assert (await accounts.authenticate("ana@shop.example", PASSWORD)).id == user.id
    with pytest.raises(LoginFailed):
        await accounts.authenticate("ana@shop.example", "wrong password!")
    with pytest.raises(LoginFailed):
        await accounts.authenticate("nobody@shop.example", PASSWORD)


async def test_five_failures_lock_the_account_for_fifteen_minutes(accounts: StaffAccounts, clock: FakeClock) -> None:
    await accounts.create_user("ana@shop.example", PASSWORD)
    for _attempt in range(MAX_FAILED_LOGINS - 1):
        with pytest.raises(LoginFailed) as failure:
            await accounts.authenticate("ana@shop.example", "wrong password!")
        assert not isinstance(failure.value, AccountLocked)
    with pytest.raises(AccountLocked) as locked:
        await accounts.authenticate("ana@shop.example", "wrong password!")
    assert locked.value.until == clock.now + LOCKOUT

    # the right password does not open a locked account
    with pytest.raises(AccountLocked):
        await accounts.authenticate("ana@shop.example", PASSWORD)
    clock.advance(LOCKOUT - timedelta(seconds=1))
    with pytest.raises(AccountLocked):
        await accounts.login("ana@shop.example", PASSWORD)

    clock.advance(timedelta(seconds=1))
    token, session = await accounts.login("ana@shop.example", PASSWORD)
    assert session.staff.email == "ana@shop.example"
    assert await accounts.session(token) is not None


async def test_a_success_resets_the_failure_count(accounts: StaffAccounts) -> None:
    await accounts.create_user("ana@shop.example", PASSWORD)
    for _attempt in range(MAX_FAILED_LOGINS - 1):
        with pytest.raises(LoginFailed):
            await accounts.authenticate("ana@shop.example", "wrong password!")
    await accounts.authenticate("ana@shop.example", PASSWORD)
    for _attempt in range(MAX_FAILED_LOGINS - 1):
        with pytest.raises(LoginFailed) as failure:
            await accounts.authenticate("ana@shop.example", "wrong password!")
        assert not isinstance(failure.value, AccountLocked)


async def test_logins_failures_and_lockouts_are_audited_without_secrets(accounts: StaffAccounts) -> None:
    await accounts.create_user("ana@shop.example", PASSWORD)
    await accounts.login("ana@shop.example", PASSWORD)
    for _attempt in range(MAX_FAILED_LOGINS):
        with pytest.raises(LoginFailed):
            await accounts.authenticate("ana@shop.example", "wrong password!")
    actions = [entry.action for entry in await accounts.audit_log()]
    assert actions.count("login_failed") == MAX_FAILED_LOGINS - 1
    assert {"staff_created", "login", "locked"} <= set(actions)
    text = repr(await accounts.audit_log())
    assert PASSWORD not in text and "wrong password!" not in text and "scrypt$" not in text


# -- sessions ---------------------------------------------------------------------------


async def test_session_lasts_its_lifetime_and_not_longer(accounts: StaffAccounts, clock: FakeClock) -> None:
    await accounts.create_user("ana@shop.example", PASSWORD)
    token, session = await accounts.login("ana@shop.example", PASSWORD)
    assert session.expires_at == clock.now + timedelta(hours=8)
    clock.advance(timedelta(hours=8) - timedelta(seconds=1))
    assert await accounts.session(token) is not None
    clock.advance(timedelta(seconds=1))
    assert await accounts.session(token) is None


async def test_tokens_are_random_and_stored_hashed(accounts: StaffAccounts, tmp_path: Path) -> None:
    await accounts.create_user("ana@shop.example", PASSWORD)
    first, _session = await accounts.login("ana@shop.example", PASSWORD)
    second, _session = await accounts.login("ana@shop.example", PASSWORD)
    assert first != second and len(first) >= 40
    with sqlite3.connect(tmp_path / "shopkeeper.db") as db:
        stored = {row[0] for row in db.execute("SELECT token_hash FROM staff_sessions")}
    assert stored == {session_token_hash(first), session_token_hash(second)}
    assert first not in stored and second not in stored


async def test_logout_revokes_the_session(accounts: StaffAccounts) -> None:
    await accounts.create_user("ana@shop.example", PASSWORD)
    token, _session = await accounts.login("ana@shop.example", PASSWORD)
    other, _session = await accounts.login("ana@shop.example", PASSWORD)
    assert await accounts.logout(token)
    assert await accounts.session(token) is None
    assert not await accounts.logout(token)  # already revoked
    assert await accounts.session(other) is not None  # another browser stays signed in
    assert await accounts.revoke_all((await accounts.users())[0].id) == 1
    assert await accounts.session(other) is None


@pytest.mark.parametrize("token", [None, "", "not-a-token", "x" * 1000])
async def test_unknown_tokens_have_no_session(accounts: StaffAccounts, token: str | None) -> None:
    assert await accounts.session(token) is None


async def test_each_session_has_its_own_csrf_token(accounts: StaffAccounts) -> None:
    await accounts.create_user("ana@shop.example", PASSWORD)
    _token, first = await accounts.login("ana@shop.example", PASSWORD)
    _token, second = await accounts.login("ana@shop.example", PASSWORD)
    assert first.csrf_token != second.csrf_token
    assert csrf_matches(first.csrf_token, first.csrf_token)
    assert not csrf_matches(first.csrf_token, second.csrf_token)
    assert not csrf_matches(first.csrf_token, "")
    assert not csrf_matches(first.csrf_token, None)


# -- roles ------------------------------------------------------------------------------


async def test_roles(accounts: StaffAccounts) -> None:
    agent = await accounts.create_user("agent@shop.example", PASSWORD)
    admin = await accounts.create_user("admin@shop.example", PASSWORD, role="admin", locale="de-DE")
    assert agent.role == "agent" and not agent.is_admin
    assert admin.is_admin and admin.locale == "de_DE"
    require_role(admin, "admin")
    require_role(admin, "agent")
    require_role(agent, "agent")
    with pytest.raises(PermissionDenied):
        require_role(agent, "admin")
    _token, session = await accounts.login("admin@shop.example", PASSWORD)
    assert session.staff.role == "admin"


# -- the command line ---------------------------------------------------------------------


def test_cli_staff_add_reads_the_password_from_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    from bot.cli import main

    monkeypatch.chdir(tmp_path)  # no .env from the working directory
    monkeypatch.setenv("SHOPKEEPER_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SHOPKEEPER_LOG_LEVEL", "WARNING")
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["staff", "add", "ana@shop.example", "--role", "admin", "--name", "Ana"]) == 0
    assert "ana@shop.example (admin) created" in capsys.readouterr().out

    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["staff", "add", "ana@shop.example"]) == 2
    assert "already exists" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["staff", "add", "bo@shop.example"]) == 2
    assert "at least" in capsys.readouterr().err

    with sqlite3.connect(tmp_path / "var" / "shopkeeper.db") as db:
        rows = db.execute("SELECT email, role, name, password_hash FROM staff_users").fetchall()
    assert [(e, r, n) for e, r, n, _h in rows] == [("ana@shop.example", "admin", "Ana")]
    assert verify_password(PASSWORD, rows[0][3])
