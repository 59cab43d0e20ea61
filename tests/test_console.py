"""The staff console on the real app (TestClient, real SQLite), and the takeover operations behind it."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from bot import console
from bot.app import create_app
from bot.console import SECURITY_HEADERS, SESSION_COOKIE, Console, event_stream
from bot.events import Event, EventBus
from bot.logs import hash_id
from bot.messages import InboundMessage
from bot.settings import Settings
from bot.shop import ShopProfile
from bot.staff import StaffAccounts, StaffUser
from bot.store import Store
from bot.takeover import InvalidTransition, Takeover
from tests.support.traces import table_traces

PASSWORD = "a long staff password"
ACCOUNTS = {
    "ana": ("ana@shop.example", "agent", "Ana Agent", "en"),
    "bo": ("bo@shop.example", "agent", "Bo Agent", "de"),
    "ada": ("ada@shop.example", "admin", "Ada Admin", "en"),
}
XSS = "<script>alert(1)</script>"
SQLI = "'; DROP TABLE messages;--"
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


# -- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture
def staff_users(settings: Settings) -> dict[str, StaffUser]:
    """Staff accounts created in the data dir before the app starts (as `shopkeeper staff add` does)."""

    async def create() -> dict[str, StaffUser]:
        async with Store(settings.database_path) as store:
            accounts = StaffAccounts(store)
            return {
                key: await accounts.create_user(email, PASSWORD, role=role, name=name, locale=locale)  # type: ignore[arg-type]
                for key, (email, role, name, locale) in ACCOUNTS.items()
            }

    return asyncio.run(create())


@pytest.fixture
def app_client(settings: Settings, staff_users: dict[str, StaffUser]) -> Iterator[TestClient]:
    with TestClient(create_app(settings, start_scheduler=False)) as test_client:
        yield test_client


@dataclass
class StaffBrowser:
    """One staff member's browser: their session cookie and CSRF token on a shared TestClient."""

    client: TestClient
    email: str
    cookie: str = ""
    csrf: str = ""
    seen: list[str] = field(default_factory=list)

    def login(self) -> StaffBrowser:
        self.client.cookies.clear()
        form = self.client.get("/staff/login")
        match = CSRF_FIELD.search(form.text)
        assert match, form.text
        response = self.client.post(
            "/staff/login", data={"email": self.email, "password": PASSWORD, "csrf": match.group(1)}, follow_redirects=False
        )
        assert response.status_code == 303, response.text
        self.seen += [form.text, response.text, str(response.headers)]
        self.cookie = response.cookies[SESSION_COOKIE]
        inbox = self.get("/staff")
        assert inbox.status_code == 200
        self.csrf = CSRF_FIELD.findall(inbox.text)[0]
        return self

    def _use(self) -> None:
        self.client.cookies.clear()
        if self.cookie:
            self.client.cookies.set(SESSION_COOKIE, self.cookie)

    def get(self, path: str) -> Any:  # the TestClient's response type
        self._use()
        response = self.client.get(path, follow_redirects=False)
        self.seen += [response.text, str(response.headers)]
        return response

    def post(self, path: str, data: dict[str, Any] | None = None, *, csrf: str | None = None) -> Any:
        self._use()
        body = {"csrf": self.csrf if csrf is None else csrf, **(data or {})}
        response = self.client.post(path, data=body, follow_redirects=False)
        self.seen += [response.text, str(response.headers)]
        return response


def staff(client: TestClient, key: str) -> StaffBrowser:
    return StaffBrowser(client, ACCOUNTS[key][0]).login()


def chat(client: TestClient, user: str, text: str) -> dict[str, Any]:
    client.cookies.clear()
    response = client.post("/api/chat", json={"user_id": user, "text": text})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def escalate(client: TestClient, user: str) -> str:
    """A web shopper asks for a person; returns the conversation id."""
    chat(client, user, "hi")
    body = chat(client, user, "I want to talk to a person")
    assert body["state"] == "pending_human"
    return str(body["conversation_id"])


def db_row(data_dir: Path, sql: str, *params: object) -> Any:
    with sqlite3.connect(data_dir / "shopkeeper.db") as db:
        db.row_factory = sqlite3.Row
        return db.execute(sql, params).fetchone()


def conversation_state(data_dir: Path, conversation_id: str) -> tuple[str, str | None]:
    row = db_row(data_dir, "SELECT state, owner FROM conversations WHERE id = ?", conversation_id)
    return row["state"], row["owner"]


def staff_routes(client: TestClient) -> list[tuple[str, str]]:
    # the app serves the console router's routes (FastAPI keeps an included router as one entry)
    assert any(getattr(r, "original_router", None) is console.router for r in client.app.routes)  # type: ignore[attr-defined]
    routes: list[tuple[str, str]] = []
    for route in console.router.routes:
        assert isinstance(route, APIRoute) and route.path.startswith("/staff")
        routes.extend((method, route.path) for method in sorted(route.methods or ()))
    return routes


PUBLIC = {("GET", "/staff/login"), ("POST", "/staff/login"), ("GET", "/staff/static/{name}")}


# -- access control --------------------------------------------------------------------------


def test_every_console_route_refuses_an_anonymous_request(app_client: TestClient) -> None:
    conversation_id = escalate(app_client, "anon-probe")
    chat(app_client, "anon-probe", "my secret order question 7731")
    routes = staff_routes(app_client)
    assert len(routes) >= 15
    for method, path in routes:
        if (method, path) in PUBLIC:
            continue
        url = path.replace("{conversation_id}", conversation_id).replace("{canned_id}", "1")
        app_client.cookies.clear()
        if method == "GET":
            response = app_client.get(url, follow_redirects=False)
            assert response.status_code in (303, 401), (method, url, response.status_code)
            if response.status_code == 303:
                assert response.headers["location"] == "/staff/login"
        else:
            response = app_client.post(url, data={"text": "hello", "csrf": "x"}, follow_redirects=False)
            assert response.status_code in (401, 403), (method, url, response.status_code)
        assert "7731" not in response.text and conversation_id not in response.text, (method, url)
        assert response.headers["content-security-policy"] == SECURITY_HEADERS["Content-Security-Policy"]
    assert conversation_state(app_client.app.state.runtime.settings.data_dir, conversation_id) == ("pending_human", None)  # type: ignore[attr-defined]


def test_a_forged_or_expired_cookie_is_anonymous(app_client: TestClient) -> None:
    app_client.cookies.set(SESSION_COOKIE, "forged-token")
    assert app_client.get("/staff", follow_redirects=False).status_code == 303
    assert app_client.get("/staff/events").status_code == 401


def test_login_page_and_static_files_are_public_but_hold_no_data(app_client: TestClient) -> None:
    page = app_client.get("/staff/login")
    assert page.status_code == 200 and 'name="password"' in page.text
    for name, kind in (("staff.js", "javascript"), ("staff.css", "css")):
        response = app_client.get(f"/staff/static/{name}")
        assert response.status_code == 200 and kind in response.headers["content-type"]
    assert app_client.get("/staff/static/../app.py").status_code == 404
    assert app_client.get("/staff/static/secrets.txt").status_code == 404


def test_wrong_password_shows_a_generic_error(app_client: TestClient) -> None:
    page = app_client.get("/staff/login").text
    texts = []
    for email in ("ana@shop.example", "nobody@shop.example"):
        csrf = CSRF_FIELD.findall(page)[0]  # each form carries a fresh token
        response = app_client.post("/staff/login", data={"email": email, "password": "nope nope nope", "csrf": csrf})
        assert response.status_code == 401
        assert "Sign-in failed" in response.text
        assert SESSION_COOKIE not in response.cookies
        page = response.text
        texts.append(CSRF_FIELD.sub("", response.text))
    assert texts[0] == texts[1]  # an unknown email and a wrong password look the same


def test_login_form_needs_its_csrf_token(app_client: TestClient) -> None:
    app_client.get("/staff/login")
    for csrf in ("", "wrong"):
        response = app_client.post("/staff/login", data={"email": "ana@shop.example", "password": PASSWORD, "csrf": csrf})
        assert response.status_code == 403
        assert SESSION_COOKIE not in response.cookies


def test_session_cookie_is_httponly_strict_and_not_secure_on_plain_http(app_client: TestClient) -> None:
    form = app_client.get("/staff/login")
    csrf = CSRF_FIELD.findall(form.text)[0]
    response = app_client.post(
        "/staff/login", data={"email": "ana@shop.example", "password": PASSWORD, "csrf": csrf}, follow_redirects=False
    )
    cookie = next(v for v in response.headers.get_list("set-cookie") if v.startswith(SESSION_COOKIE + "="))
    flags = cookie.lower()
    assert "httponly" in flags and "samesite=strict" in flags and "path=/" in flags
    assert "secure" not in flags


def test_cookies_are_secure_with_an_https_public_url(data_dir: Path, staff_users: dict[str, StaffUser]) -> None:
    settings = Settings(data_dir=data_dir, public_url="https://shop.example", _env_file=None)  # type: ignore[call-arg]
    with TestClient(create_app(settings, start_scheduler=False), base_url="https://testserver") as client:
        form = client.get("/staff/login")
        login_cookie = form.headers["set-cookie"].lower()
        assert login_cookie.startswith("__host-") and "secure" in login_cookie
        csrf = CSRF_FIELD.findall(form.text)[0]
        response = client.post(
            "/staff/login", data={"email": "ana@shop.example", "password": PASSWORD, "csrf": csrf}, follow_redirects=False
        )
        assert response.status_code == 303
        cookie = next(v for v in response.headers.get_list("set-cookie") if v.startswith(f"__Host-{SESSION_COOKIE}="))
        assert all(flag in cookie.lower() for flag in ("secure", "httponly", "samesite=strict", "path=/"))


def test_pages_carry_security_headers_and_no_inline_script(app_client: TestClient) -> None:
    ana = staff(app_client, "ana")
    conversation_id = escalate(app_client, "headers")
    for path in ("/staff", "/staff/dashboard", f"/staff/threads/{conversation_id}", "/staff/login"):
        response = ana.get(path)
        assert response.status_code in (200, 303)
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value, (path, name)
        assert "unsafe-inline" not in response.headers["content-security-policy"]
        scripts = re.findall(r"<script[^>]*>", response.text)
        assert all('src="/staff/static/staff.js"' in tag for tag in scripts), scripts
        assert " style=" not in response.text and "<style" not in response.text


def test_csrf_missing_or_wrong_is_refused_on_every_form(app_client: TestClient, data_dir: Path) -> None:
    ada = staff(app_client, "ada")
    conversation_id = escalate(app_client, "csrf-probe")
    posts = [path for method, path in staff_routes(app_client) if method == "POST" and (method, path) not in PUBLIC]
    assert len(posts) >= 8
    for path in posts:
        url = path.replace("{conversation_id}", conversation_id).replace("{canned_id}", "1")
        for csrf in ("", "not-the-token", ada.csrf[:-1]):
            response = ada.post(url, {"text": "hi", "note": "n", "title": "t"}, csrf=csrf)
            assert response.status_code == 403, (url, csrf, response.status_code)
    assert conversation_state(data_dir, conversation_id) == ("pending_human", None)
    assert ada.get("/staff").status_code == 200  # the logout above was refused too


def test_after_logout_the_old_cookie_cannot_act(app_client: TestClient, data_dir: Path) -> None:
    ana = staff(app_client, "ana")
    conversation_id = escalate(app_client, "logout-probe")
    old_cookie, old_csrf = ana.cookie, ana.csrf
    response = ana.post("/staff/logout")
    assert response.status_code == 303 and response.headers["location"] == "/staff/login"
    cleared = next(v for v in response.headers.get_list("set-cookie") if v.startswith(SESSION_COOKIE + "="))
    assert "max-age=0" in cleared.lower()

    ana.cookie, ana.csrf = old_cookie, old_csrf  # a stolen copy of the cookie
    assert ana.get("/staff").status_code == 303
    assert ana.get(f"/staff/threads/{conversation_id}").status_code == 303
    assert ana.get("/staff/inbox/partial").status_code == 401
    assert ana.get("/staff/events").status_code == 401
    assert ana.post(f"/staff/threads/{conversation_id}/claim").status_code == 403
    assert conversation_state(data_dir, conversation_id) == ("pending_human", None)


def test_password_hashes_never_appear_in_responses_or_logs(
    app_client: TestClient, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hashes = [row[0] for row in sqlite3.connect(data_dir / "shopkeeper.db").execute("SELECT password_hash FROM staff_users")]
    assert len(hashes) == 3
    conversation_id = escalate(app_client, "hash-probe")
    ada = staff(app_client, "ada")
    ada.post("/staff/canned", {"title": "Hello", "text": "Hi, this is the store team."})
    pages = ("/staff", "/staff/inbox/partial", f"/staff/threads/{conversation_id}", "/staff/dashboard", "/staff/canned", "/staff/audit")
    for path in pages:
        assert ada.get(path).status_code == 200, path
    ada.post(f"/staff/threads/{conversation_id}/claim")
    ada.post(f"/staff/threads/{conversation_id}/reply", {"text": "Hello!"})
    ada.post("/staff/logout")
    failed = StaffBrowser(app_client, "ana@shop.example")
    form = app_client.get("/staff/login")
    failed.seen.append(app_client.post("/staff/login", data={"email": "ana@shop.example", "password": "bad bad bad",
                                                            "csrf": CSRF_FIELD.findall(form.text)[0]}).text)
    everything = "\n".join(ada.seen + failed.seen) + "\n" + caplog.text
    for stored in hashes:
        assert stored not in everything
        assert stored.split("$")[-1] not in everything  # not even the digest alone
    assert "scrypt$" not in everything
    assert PASSWORD not in everything


# -- roles --------------------------------------------------------------------------------------


def test_agents_and_admins_differ(app_client: TestClient, data_dir: Path) -> None:
    ana, bo, ada = staff(app_client, "ana"), staff(app_client, "bo"), staff(app_client, "ada")
    # admin-only pages and actions
    for path in ("/staff/canned", "/staff/audit"):
        assert ana.get(path).status_code == 403
        assert ada.get(path).status_code == 200
    assert ana.post("/staff/canned", {"title": "x", "text": "y"}).status_code == 403
    assert ada.post("/staff/canned", {"title": "Shipping", "text": "We ship in 2 days."}).status_code == 303
    assert ana.post("/staff/canned/1/delete").status_code == 403
    assert "Canned replies" in ada.get("/staff").text and "Canned replies" not in ana.get("/staff").text

    conversation_id = escalate(app_client, "roles")
    assert ana.post(f"/staff/threads/{conversation_id}/claim").status_code == 303
    # a colleague agent can neither take the thread nor answer nor hand it back
    assert bo.post(f"/staff/threads/{conversation_id}/claim").status_code == 409
    assert bo.post(f"/staff/threads/{conversation_id}/reply", {"text": "me too"}).status_code == 409
    assert bo.post(f"/staff/threads/{conversation_id}/release").status_code == 403
    assert conversation_state(data_dir, conversation_id) == ("human", _staff_id(data_dir, "ana"))
    # ...and does not see it in the inbox; an admin does, under colleagues
    assert conversation_id not in bo.get("/staff").text
    assert conversation_id in ada.get("/staff").text
    # an admin may take over
    assert ada.post(f"/staff/threads/{conversation_id}/claim").status_code == 303
    assert conversation_state(data_dir, conversation_id) == ("human", _staff_id(data_dir, "ada"))
    assert db_row(data_dir, "SELECT action FROM audit_log ORDER BY id DESC LIMIT 1")["action"] == "taken_over"
    # the previous owner is no longer the owner
    assert ana.post(f"/staff/threads/{conversation_id}/reply", {"text": "still here"}).status_code == 409
    # any staff can add notes; an admin can hand back anyone's thread
    assert bo.post(f"/staff/threads/{conversation_id}/notes", {"text": "customer is a VIP"}).status_code == 303
    assert ada.post(f"/staff/threads/{conversation_id}/resolve").status_code == 303


def _staff_id(data_dir: Path, key: str) -> str:
    return str(db_row(data_dir, "SELECT id FROM staff_users WHERE email = ?", ACCOUNTS[key][0])["id"])


# -- rendering untrusted text -----------------------------------------------------------------


def test_hostile_chat_text_is_stored_as_is_and_rendered_inert(app_client: TestClient, data_dir: Path) -> None:
    conversation_id = escalate(app_client, "hostile")
    chat(app_client, "hostile", XSS)
    chat(app_client, "hostile", SQLI)
    rows = sqlite3.connect(data_dir / "shopkeeper.db").execute(
        "SELECT text FROM messages WHERE conversation_id = ? AND author = 'shopper'", (conversation_id,)
    ).fetchall()
    assert {XSS, SQLI} <= {r[0] for r in rows}  # stored exactly; the messages table is still there

    ana = staff(app_client, "ana")
    inbox = ana.get("/staff").text
    assert "&#39;; DROP TABLE messages;--" in inbox  # the latest shopper text, escaped, in the inbox
    ana.post(f"/staff/threads/{conversation_id}/claim")
    ana.post(f"/staff/threads/{conversation_id}/notes", {"text": '<img src=x onerror="alert(2)">'})
    ana.post(f"/staff/threads/{conversation_id}/reply", {"text": "<b>bold</b> reply"})
    for path in (f"/staff/threads/{conversation_id}", f"/staff/threads/{conversation_id}/live", "/staff/inbox/partial"):
        page = ana.get(path).text
        assert XSS not in page and "<img src=x" not in page and "<b>bold</b>" not in page
    page = ana.get(f"/staff/threads/{conversation_id}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&#39;; DROP TABLE messages;--" in page
    assert "&lt;img src=x onerror=&#34;alert(2)&#34;&gt;" in page
    assert "&lt;b&gt;bold&lt;/b&gt; reply" in page
    # the shopper gets the staff text as plain text too (the chat page renders text nodes)
    messages = app_client.get("/api/chat/hostile/messages").json()["messages"]
    assert messages[-1]["author"] == "staff" and messages[-1]["text"] == "<b>bold</b> reply"


# -- the takeover lifecycle through the console ---------------------------------------------------


def test_claim_reply_release_resolve_and_what_the_shopper_sees(app_client: TestClient, data_dir: Path) -> None:
    ana = staff(app_client, "ana")
    conversation_id = escalate(app_client, "lifecycle")
    inbox = ana.get("/staff").text
    assert conversation_id in inbox and "Asked for a person" in inbox

    # a pending thread cannot be answered before it is claimed
    assert ana.post(f"/staff/threads/{conversation_id}/reply", {"text": "hello"}).status_code == 409
    assert ana.post(f"/staff/threads/{conversation_id}/claim").status_code == 303
    assert conversation_state(data_dir, conversation_id) == ("human", _staff_id(data_dir, "ana"))
    assert ana.post(f"/staff/threads/{conversation_id}/claim").status_code == 303  # idempotent for the owner

    after = app_client.get("/api/chat/lifecycle/messages").json()["messages"][-1]["id"]
    assert ana.post(f"/staff/threads/{conversation_id}/reply", {"text": "Hi, Ana from the shop here."}).status_code == 303
    assert ana.post(f"/staff/threads/{conversation_id}/reply", {"text": "   "}).status_code == 422
    later = app_client.get("/api/chat/lifecycle/messages", params={"after": after}).json()["messages"]
    assert [(m["author"], m["text"]) for m in later] == [("staff", "Hi, Ana from the shop here.")]
    assert db_row(data_dir, "SELECT COUNT(*) AS n FROM outbox WHERE conversation_id = ?", conversation_id)["n"] == 0  # web: no outbox

    # while staff owns the thread the bot stays silent
    body = chat(app_client, "lifecycle", "do you have running shoes under 100?")
    assert body["replies"] == [] and body["state"] == "human"

    # release with a hand-back note for the bot
    note = "Promised a 10% discount code by email; do not offer another."
    assert ana.post(f"/staff/threads/{conversation_id}/release", {"note": note}).status_code == 303
    row = db_row(data_dir, "SELECT state, owner, context FROM conversations WHERE id = ?", conversation_id)
    assert (row["state"], row["owner"]) == ("bot", None)
    assert note in row["context"] and "staff_notes_for_bot" in row["context"]
    escalation = db_row(data_dir, "SELECT * FROM escalations WHERE conversation_id = ? ORDER BY id", conversation_id)
    assert escalation["outcome"] == "released" and escalation["first_staff_reply_at"] and escalation["claimed_at"]
    assert chat(app_client, "lifecycle", "do you have running shoes under 100?")["replies"]  # the bot answers again
    assert ana.post(f"/staff/threads/{conversation_id}/release").status_code == 409  # already with the bot

    # a second hand-over, resolved this time
    assert chat(app_client, "lifecycle", "talk to a person please")["state"] == "pending_human"
    assert ana.post(f"/staff/threads/{conversation_id}/claim").status_code == 303
    assert ana.post(f"/staff/threads/{conversation_id}/resolve", {"note": "Answered the sizing question."}).status_code == 303
    outcomes = [r[0] for r in sqlite3.connect(data_dir / "shopkeeper.db").execute(
        "SELECT outcome FROM escalations WHERE conversation_id = ? ORDER BY id", (conversation_id,))]
    assert outcomes == ["released", "resolved"]
    assert chat(app_client, "lifecycle", "wool socks")["replies"]
    page = ana.get(f"/staff/threads/{conversation_id}").text
    assert "With the bot" in page and "Answered the sizing question." in page


def test_thread_view_shows_constraints_suggestions_orders_notes_and_canned(app_client: TestClient, data_dir: Path) -> None:
    chat(app_client, "viewer", "I'm looking for running shoes under 90")
    body = chat(app_client, "viewer", "I want to talk to a person")
    conversation_id = body["conversation_id"]
    ada = staff(app_client, "ada")
    ada.post("/staff/canned", {"title": "Greeting", "text": "Hello from the store team!"})
    ada.post(f"/staff/threads/{conversation_id}/claim")
    page = ada.get(f"/staff/threads/{conversation_id}").text
    assert 'id="constraints"' in page and "90" in page
    assert 'id="suggestions"' in page and 'class="card"' in page
    assert "Greeting" in page and 'data-text="Hello from the store team!"' in page
    canned_id = db_row(data_dir, "SELECT id FROM canned_replies")["id"]
    assert ada.post(f"/staff/threads/{conversation_id}/reply", {"canned_id": canned_id}).status_code == 303
    messages = app_client.get("/api/chat/viewer/messages").json()["messages"]
    assert messages[-1]["text"] == "Hello from the store team!"
    assert ada.post(f"/staff/threads/{conversation_id}/notes", {"text": "Wants them before Friday"}).status_code == 303
    assert "Wants them before Friday" in ada.get(f"/staff/threads/{conversation_id}").text
    assert ada.get("/staff/threads/conv_doesnotexist").status_code == 404


def test_past_orders_appear_for_a_shopper_with_orders(app_client: TestClient, data_dir: Path) -> None:
    customer = db_row(data_dir, "SELECT customer_id FROM orders LIMIT 1")["customer_id"]
    conversation_id = escalate(app_client, "with-orders")
    with sqlite3.connect(data_dir / "shopkeeper.db") as db:
        db.execute("UPDATE conversations SET customer_id = ? WHERE id = ?", (customer, conversation_id))
    order = db_row(data_dir, "SELECT order_number FROM orders WHERE customer_id = ? LIMIT 1", customer)["order_number"]
    page = staff(app_client, "ana").get(f"/staff/threads/{conversation_id}").text
    assert order in page


def test_consents_appear_without_their_evidence(app_client: TestClient, data_dir: Path) -> None:
    conversation_id = escalate(app_client, "with-consent")
    customer = db_row(data_dir, "SELECT customer_id FROM conversations WHERE id = ?", conversation_id)["customer_id"]
    with sqlite3.connect(data_dir / "shopkeeper.db") as db:
        db.execute(
            "INSERT INTO consents (customer_id, purpose, channel, status, granted_at, evidence_text) VALUES (?, ?, ?, ?, ?, ?)",
            (customer, "back_in_stock", "web", "granted", "2025-03-01T09:00:00+00:00", "yes please tell me"),
        )
    page = staff(app_client, "ana").get(f"/staff/threads/{conversation_id}").text
    assert "purpose: back_in_stock" in page and "status: granted" in page
    assert "yes please tell me" not in page


def test_staff_locale_formats_dates(app_client: TestClient) -> None:
    conversation_id = escalate(app_client, "locale")
    german = staff(app_client, "bo").get(f"/staff/threads/{conversation_id}").text
    english = staff(app_client, "ana").get(f"/staff/threads/{conversation_id}").text
    assert re.search(r">\d{2}\.\d{2}\.\d{2}, \d{2}:\d{2}<", german)  # 01.03.25, 09:00
    assert re.search(r">\d{1,2}/\d{1,2}/\d{2}, \d{1,2}:\d{2}\s?[AP]M<", english)


def test_platform_reply_goes_to_the_outbox_as_staff(app_client: TestClient, data_dir: Path) -> None:
    runtime = app_client.app.state.runtime  # type: ignore[attr-defined]

    def telegram(text: str, n: int) -> list[Any]:
        inbound = InboundMessage(
            channel="telegram", external_id=f"tg-{n}", sender_id="4242", chat_id="4242", text=text, timestamp=datetime.now(UTC)
        )
        return list(app_client.portal.call(partial(runtime.engine.handle, inbound, via_outbox=True)))  # type: ignore[union-attr]

    telegram("hello", 1)
    assert telegram("I want to talk to a person", 2)
    conversation_id = db_row(data_dir, "SELECT id FROM conversations WHERE channel = 'telegram'")["id"]
    bot_rows = db_row(data_dir, "SELECT COUNT(*) AS n FROM outbox WHERE conversation_id = ?", conversation_id)["n"]
    ana = staff(app_client, "ana")
    page = ana.get(f"/staff/threads/{conversation_id}").text
    assert "telegram" in page
    ana.post(f"/staff/threads/{conversation_id}/claim")
    assert "not configured on this server" in ana.get(f"/staff/threads/{conversation_id}").text
    assert not telegram("are you there?", 3)  # silent while staff owns it
    assert ana.post(f"/staff/threads/{conversation_id}/reply", {"text": "Yes! Ana here."}).status_code == 303
    rows = sqlite3.connect(data_dir / "shopkeeper.db").execute(
        "SELECT author, chat_id, channel, payload, status FROM outbox WHERE conversation_id = ? ORDER BY id", (conversation_id,)
    ).fetchall()
    assert len(rows) == bot_rows + 1
    author, chat_id, channel, payload, status = rows[-1]
    assert (author, chat_id, channel, status) == ("staff", "4242", "telegram", "pending")
    assert "Yes! Ana here." in payload
    assert {r[0] for r in rows[:-1]} == {"bot"}


def test_dashboard_shows_kpis_and_charts(app_client: TestClient) -> None:
    chat(app_client, "dash-1", "wool socks")
    escalate(app_client, "dash-2")
    ada = staff(app_client, "ada")
    page = ada.get("/staff/dashboard").text
    for marker in ("kpi-conversations", "kpi-containment", "kpi-first-reply", "kpi-csat", "chart-daily", "chart-reasons", "<svg"):
        assert marker in page
    assert "Asked for a person" in page
    assert "50%" in page  # two conversations, one escalated
    assert ada.get("/staff/dashboard?days=7").status_code == 200
    assert ada.get("/staff/dashboard?days=12345").status_code == 200  # an unknown period falls back to 30 days
    assert "50\xa0%" in staff(app_client, "bo").get("/staff/dashboard").text  # German number formatting


def sent_followup(data_dir: Path, kind: str, sent_at: datetime, *, status: str = "sent", converted: str | None = None) -> None:
    """A follow-up the scheduler delivered (and, with ``converted``, an order attributed to it)."""
    with sqlite3.connect(data_dir / "shopkeeper.db") as db:
        db.execute(
            "INSERT INTO followups (kind, purpose, customer_id, channel, chat_id, sku, title, timezone, requested_at, due_at, "
            "status, sent_at, converted_order, converted_at, created_at) "
            "VALUES (?, ?, 'cus_003', 'telegram', '5001', 'RUN-012-42-WHT', 'Carbon Edge', 'Europe/Madrid', ?, ?, ?, ?, ?, ?, ?)",
            (kind, "reminders" if kind == "reminder" else kind, sent_at.isoformat(), sent_at.isoformat(), status,
             sent_at.isoformat(), converted, (sent_at + timedelta(days=2)).isoformat() if converted else None, sent_at.isoformat()),
        )


def test_dashboard_shows_followups_delivered_and_the_orders_they_brought(app_client: TestClient, data_dir: Path) -> None:
    now = datetime.now(UTC)
    recent = now - timedelta(days=3)
    for converted in ("1001", None, None):
        sent_followup(data_dir, "back_in_stock", recent, converted=converted)
    sent_followup(data_dir, "reminder", recent, converted="1002")
    sent_followup(data_dir, "back_in_stock", recent, status="maybe_sent")
    sent_followup(data_dir, "reminder", now - timedelta(days=40))  # outside the 30-day period
    sent_followup(data_dir, "reminder", recent, status="pending")  # not delivered: not counted
    page = staff(app_client, "ana").get("/staff/dashboard").text
    kpi = dict(re.findall(r'id="(kpi-followup[\w-]*)"><span class="kpi-value">([^<]*)</span>', page))
    assert kpi == {"kpi-followups-sent": "4", "kpi-followup-conversions": "2", "kpi-followup-rate": "50%"}
    rows = re.findall(r"<tr><td>([^<]+)</td><td>(\d+)</td><td>(\d+)</td><td>([^<]+)</td></tr>", page)
    assert rows == [("Back-in-stock nudges", "3", "1", "33.3%"), ("Reminders", "1", "1", "100%")]
    assert "within 7 days" in page
    assert "1 follow-ups may or may not have reached the shopper" in page
    longer = staff(app_client, "ana").get("/staff/dashboard?days=90").text
    assert re.search(r'id="kpi-followups-sent"><span class="kpi-value">5<', longer)


# -- live events -------------------------------------------------------------------------------


def test_event_stream_delivers_bus_events_while_the_session_lives(app_client: TestClient) -> None:
    ana = staff(app_client, "ana")
    console: Console = app_client.app.state.staff_console  # type: ignore[attr-defined]

    async def first_events() -> list[str]:
        stream = event_stream(console, ana.cookie, heartbeat=0.05, max_seconds=5)
        chunks = [await anext(stream)]
        console.runtime.events.publish(Event("escalated", "conv_x", "pending_human"))
        chunks.append(await anext(stream))
        chunks.append(await anext(stream))  # a keep-alive comment
        await stream.aclose()
        return chunks

    hello, event, keep_alive = app_client.portal.call(first_events)  # type: ignore[union-attr]
    assert hello.startswith("retry:")
    assert event == 'data: {"kind": "escalated", "conversation_id": "conv_x", "state": "pending_human"}\n\n'
    assert keep_alive.startswith(":")

    async def after_logout() -> list[str]:
        stream = event_stream(console, ana.cookie, heartbeat=0.05, max_seconds=5)
        chunks = [await anext(stream)]
        await console.staff.logout(ana.cookie)
        chunks += [chunk async for chunk in stream]  # ends at the next heartbeat
        return chunks

    assert len(app_client.portal.call(after_logout)) == 1  # type: ignore[union-attr]
    assert console.runtime.events.subscriber_count == 0


def test_staff_actions_publish_events(app_client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    bus: EventBus = app_client.app.state.runtime.events  # type: ignore[attr-defined]
    seen: list[Event] = []
    original = bus.publish

    def recording(event: Event) -> None:
        seen.append(event)
        original(event)

    monkeypatch.setattr(bus, "publish", recording)
    conversation_id = escalate(app_client, "events")
    ana = staff(app_client, "ana")
    ana.post(f"/staff/threads/{conversation_id}/claim")
    ana.post(f"/staff/threads/{conversation_id}/reply", {"text": "hi"})
    ana.post(f"/staff/threads/{conversation_id}/resolve")
    assert [(e.kind, e.state) for e in seen] == [
        ("escalated", "pending_human"), ("claimed", "human"), ("message", "human"), ("resolved", "bot"),
    ]


# -- privacy requests (admins) -------------------------------------------------------------------


DEMO_CUSTOMERS = json.loads((Path(__file__).resolve().parents[1] / "kb" / "demo" / "customers.json").read_text())


def shopper_with_history(client: TestClient, data_dir: Path) -> dict[str, str]:
    """A demo customer (with orders) who also chatted on the web, was handed to staff and got a note."""
    who = dict(DEMO_CUSTOMERS[1])
    conversation_id = escalate(client, "oliver-web-5521")
    chat(client, "oliver-web-5521", "I am Oliver, my parcel to Bath is late")
    with sqlite3.connect(data_dir / "shopkeeper.db") as db:
        db.execute("UPDATE identities SET customer_id = ? WHERE external_id = 'oliver-web-5521'", (who["id"],))
        db.execute("UPDATE conversations SET customer_id = ? WHERE id = ?", (who["id"], conversation_id))
    ada = staff(client, "ada")
    ada.post(f"/staff/threads/{conversation_id}/claim")
    ada.post(f"/staff/threads/{conversation_id}/notes", {"text": "Oliver prefers e-mail"})
    return {**who, "web": "oliver-web-5521", "conversation": conversation_id}


def test_privacy_requests_are_for_admins_only(app_client: TestClient, data_dir: Path) -> None:
    who = shopper_with_history(app_client, data_dir)
    ana, ada = staff(app_client, "ana"), staff(app_client, "ada")
    assert "/staff/privacy" in ada.get("/staff").text and "/staff/privacy" not in ana.get("/staff").text
    refusals = [
        ana.get("/staff/privacy"),
        ana.post("/staff/privacy/lookup", {"q": who["email"]}),
        ana.post("/staff/privacy/export", {"customer_id": who["id"]}),
        ana.post("/staff/privacy/erase", {"customer_id": who["id"], "confirm": who["id"]}),
    ]
    for response in refusals:
        assert response.status_code == 403
        assert "Privacy requests (export and erasure of a customer&#39;s data) are for admins" in response.text
        assert who["email"] not in response.text and who["name"] not in response.text
        assert "attachment" not in response.headers.get("content-disposition", "")
    assert db_row(data_dir, "SELECT COUNT(*) AS n FROM customers WHERE id = ?", who["id"])["n"] == 1
    assert db_row(data_dir, "SELECT COUNT(*) AS n FROM audit_log WHERE action LIKE 'customer_%'")["n"] == 0
    assert ada.get("/staff/privacy").status_code == 200


def test_admin_finds_a_customer_by_id_phone_or_email_and_sees_what_is_held(app_client: TestClient, data_dir: Path) -> None:
    who = shopper_with_history(app_client, data_dir)
    ada = staff(app_client, "ada")
    spaced_phone = who["phone"][:5] + " " + who["phone"][5:8] + " " + who["phone"][8:]
    for query in (who["id"], who["email"].upper(), spaced_phone, who["web"]):
        page = ada.post("/staff/privacy/lookup", {"q": query})
        assert page.status_code == 200, query
        assert f'<dd id="customer-id">{who["id"]}</dd>' in page.text
    held = dict(re.findall(r'<tr data-table="(\w+)"><td>[^<]+</td><td>(\d+)</td></tr>', page.text))
    orders = db_row(data_dir, "SELECT COUNT(*) AS n FROM orders WHERE customer_id = ?", who["id"])["n"]
    assert orders > 0 and held["orders"] == str(orders)
    assert held["identities"] == "1" and held["conversations"] == "1" and held["staff_notes"] == "1"
    assert int(held["messages"]) >= 4 and held["escalations"] == "1"
    assert "Past orders" not in page.text and "Hand-overs to staff" in page.text and "web" in page.text
    assert 'name="customer_id" value="' + who["id"] + '"' in page.text and 'id="erase-confirm"' in page.text

    unknown = ada.post("/staff/privacy/lookup", {"q": "nobody@nowhere.example"})
    assert unknown.status_code == 404 and "No customer matches" in unknown.text
    with sqlite3.connect(data_dir / "shopkeeper.db") as db:  # a household sharing one phone
        db.execute("INSERT INTO customers (id, name, phone, created_at) VALUES ('cus_partner', 'Partner', ?, '2026-01-01')",
                   (who["phone"],))
    shared = ada.post("/staff/privacy/lookup", {"q": who["phone"]})
    assert shared.status_code == 409 and "more than one customer" in shared.text and 'id="customer"' not in shared.text
    empty = ada.post("/staff/privacy/lookup", {"q": "   "})
    assert empty.status_code == 422 and "Enter a customer id" in empty.text
    assert ada.post("/staff/privacy/lookup", {"q": "x" * 300}).status_code == 422  # over the field's limit


def test_console_export_is_the_command_line_export_and_is_audited(app_client: TestClient, data_dir: Path) -> None:
    who = shopper_with_history(app_client, data_dir)
    ada = staff(app_client, "ada")
    response = ada.post("/staff/privacy/export", {"customer_id": who["id"]})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["content-disposition"].startswith('attachment; filename="shopkeeper-export-')
    assert who["id"] not in response.headers["content-disposition"]
    exported = response.json()
    env = {**os.environ, "SHOPKEEPER_DATA_DIR": str(data_dir), "SHOPKEEPER_LOG_LEVEL": "WARNING"}
    cli = subprocess.run([sys.executable, "-m", "bot.cli", "customer", "export", who["id"]],
                         env=env, capture_output=True, text=True, check=True, timeout=120)
    from_cli = json.loads(cli.stdout)
    assert exported["data"] == from_cli["data"] and exported["customer_id"] == who["id"]
    assert any("parcel to Bath" in m["text"] for m in exported["data"]["messages"])
    assert [n["text"] for n in exported["data"]["staff_notes"]] == ["Oliver prefers e-mail"]
    audit = db_row(data_dir, "SELECT * FROM audit_log WHERE action = 'customer_exported'")
    assert audit["actor"] == _staff_id(data_dir, "ada") and audit["target"] == hash_id(who["id"])
    assert not any(value in str(dict(audit)) for value in (who["id"], who["email"], who["name"], who["phone"]))
    gone = ada.post("/staff/privacy/export", {"customer_id": "cus_nobody"})
    assert gone.status_code == 404 and "No customer with this id" in gone.text


def test_console_erasure_needs_the_typed_id_then_leaves_no_trace(
    app_client: TestClient, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    who = shopper_with_history(app_client, data_dir)
    needles = [who["id"], who["email"], who["name"], who["phone"], who["web"], "parcel to Bath", "Oliver prefers"]
    assert table_traces(data_dir / "shopkeeper.db", needles)
    ada = staff(app_client, "ada")
    for wrong in ("", "yes", who["email"], who["id"] + "x"):
        refused = ada.post("/staff/privacy/erase", {"customer_id": who["id"], "confirm": wrong})
        assert refused.status_code == 422 and "Nothing was erased" in refused.text
    assert db_row(data_dir, "SELECT COUNT(*) AS n FROM customers WHERE id = ?", who["id"])["n"] == 1
    customers_before = db_row(data_dir, "SELECT COUNT(*) AS n FROM customers")["n"]

    bus: EventBus = app_client.app.state.runtime.events  # type: ignore[attr-defined]
    published: list[Event] = []
    monkeypatch.setattr(bus, "publish", published.append)
    done = ada.post("/staff/privacy/erase", {"customer_id": who["id"], "confirm": f"  {who['id']} "})
    assert done.status_code == 303
    assert done.headers["location"] == f"/staff/privacy?erased={hash_id(who['id'])}"
    assert (Event("erased", who["conversation"], "closed")) in published
    page = ada.get(done.headers["location"])
    assert page.status_code == 200 and "Erased:" in page.text and hash_id(who["id"]) in page.text

    assert table_traces(data_dir / "shopkeeper.db", needles) == []
    audit = db_row(data_dir, "SELECT * FROM audit_log WHERE action = 'customer_erased'")
    assert audit["actor"] == _staff_id(data_dir, "ada") and audit["target"] == hash_id(who["id"])
    assert json.loads(audit["detail"])["rows_deleted"] > 0
    assert ada.get(f"/staff/threads/{who['conversation']}").status_code == 404
    assert ada.post("/staff/privacy/lookup", {"q": who["email"]}).status_code == 404
    again = ada.post("/staff/privacy/erase", {"customer_id": who["id"], "confirm": who["id"]})
    assert again.status_code == 404
    assert db_row(data_dir, "SELECT COUNT(*) AS n FROM customers")["n"] == customers_before - 1  # nobody else


# -- takeover operations with a fake clock: timers and KPIs ----------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


SHOP = ShopProfile(name="Test Shop", currency="EUR", timezone="UTC", default_locale="en")


@dataclass
class Desk:
    store: Store
    takeover: Takeover
    accounts: StaffAccounts
    clock: FakeClock
    events: list[Event]
    wakes: list[int]


class RecordingBus(EventBus):
    """An event bus that also keeps every event published."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Event] = []

    def publish(self, event: Event) -> None:
        self.seen.append(event)
        super().publish(event)


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    clock = FakeClock()
    bus = RecordingBus()
    events = bus.seen
    wakes: list[int] = []
    async with Store(tmp_path / "shopkeeper.db", clock=clock) as store:
        takeover = Takeover(
            store, bus, SHOP, clock=clock, reannounce_after=timedelta(minutes=5), idle_after=timedelta(minutes=30),
            on_outbox=lambda: wakes.append(1),
        )
        yield Desk(store, takeover, StaffAccounts(store, clock=clock), clock, events, wakes)


async def open_thread(desk: Desk, chat_id: str, *, channel: str = "web", reason: str | None = "asked_for_human") -> str:
    inbound = InboundMessage(channel=channel, external_id=f"{chat_id}-1", sender_id=chat_id, chat_id=chat_id,
                             text="hello", timestamp=desk.clock())
    conversation = await desk.store.conversation_for(inbound)
    if reason is not None:
        async with desk.store.transaction() as db:
            await db.execute("UPDATE conversations SET state = 'pending_human' WHERE id = ?", (conversation.id,))
        await desk.store.open_escalation(conversation.id, reason)
    return conversation.id


async def test_pending_threads_are_reannounced_after_the_delay(desk: Desk) -> None:
    conversation_id = await open_thread(desk, "r1")
    desk.clock.advance(minutes=4, seconds=59)
    assert await desk.takeover.reannounce_due() == []
    desk.clock.advance(seconds=1)
    assert await desk.takeover.reannounce_due() == [conversation_id]
    assert desk.events[-1] == Event("reannounced", conversation_id, "pending_human")
    assert await desk.takeover.reannounce_due() == []  # not again until another delay has passed
    desk.clock.advance(minutes=5)
    assert await desk.takeover.reannounce_due() == [conversation_id]
    agent = await desk.accounts.create_user("a@shop.example", PASSWORD)
    await desk.takeover.claim(conversation_id, agent)
    desk.clock.advance(minutes=60)
    assert await desk.takeover.reannounce_due() == []  # claimed threads are not announced
    inbox = await desk.takeover.inbox(agent)
    assert [i.conversation_id for i in inbox.mine] == [conversation_id] and not inbox.pending


async def test_idle_threads_return_to_the_bot_and_the_shopper_is_told(desk: Desk) -> None:
    agent = await desk.accounts.create_user("a@shop.example", PASSWORD)
    web = await open_thread(desk, "idle-web")
    telegram = await open_thread(desk, "idle-tg", channel="telegram")
    await desk.takeover.claim(web, agent)
    await desk.takeover.claim(telegram, agent)
    desk.clock.advance(minutes=20)
    await desk.takeover.reply(telegram, agent, "Looking into it")  # staff activity restarts the idle clock
    desk.clock.advance(minutes=10)
    assert await desk.takeover.return_idle_threads() == [web]
    desk.clock.advance(minutes=20)
    assert await desk.takeover.return_idle_threads() == [telegram]
    assert await desk.takeover.return_idle_threads() == []
    db = desk.store.db
    for conversation_id in (web, telegram):
        async with db.execute("SELECT state, owner FROM conversations WHERE id = ?", (conversation_id,)) as cur:
            assert tuple(await cur.fetchone()) == ("bot", None)  # type: ignore[arg-type]
        async with db.execute("SELECT author, text FROM messages WHERE conversation_id = ? ORDER BY id DESC", (conversation_id,)) as cur:
            author, text = await cur.fetchone()  # type: ignore[misc]
        assert author == "system" and "automated shop assistant of Test Shop" in text
        async with db.execute("SELECT outcome FROM escalations WHERE conversation_id = ?", (conversation_id,)) as cur:
            assert (await cur.fetchone())[0] == "timed_out"  # type: ignore[index]
    async with db.execute("SELECT author FROM outbox WHERE conversation_id = ? ORDER BY id", (telegram,)) as cur:
        assert [r[0] for r in await cur.fetchall()] == ["staff", "system"]
    async with db.execute("SELECT COUNT(*) FROM outbox WHERE conversation_id = ?", (web,)) as cur:
        assert (await cur.fetchone())[0] == 0  # type: ignore[index]
    assert desk.wakes  # the outbox sender was woken for the platform messages
    assert [e.kind for e in desk.events if e.kind == "timed_out"] == ["timed_out", "timed_out"]


async def test_only_pending_or_owned_threads_change_hands(desk: Desk) -> None:
    agent = await desk.accounts.create_user("a@shop.example", PASSWORD)
    with_bot = await open_thread(desk, "b1", reason=None)
    with pytest.raises(InvalidTransition):
        await desk.takeover.claim(with_bot, agent)
    with pytest.raises(InvalidTransition):
        await desk.takeover.resolve(with_bot, agent)
    pending = await open_thread(desk, "b2")
    await desk.takeover.claim(pending, agent)
    with pytest.raises(ValueError, match="at most"):
        await desk.takeover.reply(pending, agent, "x" * 5000)
    with pytest.raises(ValueError, match="empty"):
        await desk.takeover.add_note(pending, agent, "  ")


async def test_kpis_on_a_scripted_history(desk: Desk) -> None:
    agent = await desk.accounts.create_user("a@shop.example", PASSWORD)
    for chat_id in ("k1", "k2", "k3", "k4", "k5"):  # five conversations with the bot only
        await open_thread(desk, chat_id, reason=None)
    first = await open_thread(desk, "k6")  # asked for a person, first reply after 2 minutes
    desk.clock.advance(minutes=1)
    await desk.takeover.claim(first, agent)
    desk.clock.advance(minutes=1)
    await desk.takeover.reply(first, agent, "Hi")
    desk.clock.advance(minutes=1)
    await desk.takeover.reply(first, agent, "Anything else?")  # only the first reply counts
    await desk.takeover.resolve(first, agent)
    second = await open_thread(desk, "k7", reason="sensitive:refund")  # first reply after 6 minutes
    desk.clock.advance(minutes=6)
    await desk.takeover.claim(second, agent)
    await desk.takeover.reply(second, agent, "Let me check the refund")
    await desk.takeover.release(second, agent, "Refund approved")
    third = await open_thread(desk, "k8", reason="sensitive:allergy")  # never answered
    escalation_ids = [r[0] for r in await (await desk.store.db.execute("SELECT id FROM escalations ORDER BY id")).fetchall()]
    await desk.takeover.record_csat(escalation_ids[0], 4)
    await desk.takeover.record_csat(escalation_ids[1], 5)
    with pytest.raises(ValueError):
        await desk.takeover.record_csat(escalation_ids[2], 6)

    kpis = await desk.takeover.kpis(desk.clock.now - timedelta(days=30), chart_days=7)
    assert kpis.conversations == 8
    assert kpis.escalated_conversations == 3 and kpis.escalations == 3
    assert kpis.containment_rate == pytest.approx(5 / 8)
    assert kpis.escalations_by_reason == [("sensitive", 2), ("asked_for_human", 1)]
    assert dict(kpis.outcomes) == {"resolved": 1, "released": 1, "open": 1}
    assert kpis.median_first_reply == timedelta(minutes=4) and kpis.first_replies == 2
    assert kpis.csat_average == pytest.approx(4.5) and kpis.csat_responses == 2
    assert (kpis.open_pending, kpis.open_human) == (1, 0)
    assert len(kpis.daily) == 7 and kpis.daily[-1].conversations == 8 and kpis.daily[-1].escalations == 3
    assert sum(d.conversations for d in kpis.daily[:-1]) == 0
    # an empty period has no rates rather than a division by zero
    empty = await desk.takeover.kpis(desk.clock.now + timedelta(days=1))
    assert empty.conversations == 0 and empty.containment_rate is None and empty.median_first_reply is None
    inbox = await desk.takeover.inbox(agent)
    assert [i.conversation_id for i in inbox.pending] == [third]
    assert inbox.pending[0].reason == "sensitive:allergy"


async def test_inbox_lists_newest_need_first(desk: Desk) -> None:
    agent = await desk.accounts.create_user("a@shop.example", PASSWORD)
    older = await open_thread(desk, "n1")
    desk.clock.advance(minutes=2)
    newer = await open_thread(desk, "n2")
    inbox = await desk.takeover.inbox(agent)
    assert [i.conversation_id for i in inbox.pending] == [newer, older]
    assert inbox.waiting_count == 2
