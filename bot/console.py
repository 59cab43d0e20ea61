"""The staff takeover console: ``/staff`` pages, actions and the live event stream.

Routes, all under ``/staff``; every one but the login page and the two static
files needs a session:

* ``GET /login``, ``POST /login``: sign in (double-submit CSRF cookie on the form);
  ``POST /logout``: end the session;
* ``GET /`` and ``GET /inbox/partial``: pending and owned threads, newest need first;
* ``GET /threads/{id}`` (and ``/live``, the part that refreshes): transcript,
  constraints, orders, bot suggestions, notes; ``POST /threads/{id}/claim``,
  ``/reply``, ``/notes``, ``/resolve``, ``/release``: the thread actions;
* ``GET /dashboard``: KPIs with inline SVG charts, and follow-ups delivered and the
  orders attributed to them (:func:`jobs.followups.conversion_stats`);
* ``GET|POST /canned``, ``POST /canned/{id}/delete``, ``GET /audit``: admins only;
* ``GET /privacy``, ``POST /privacy/lookup``, ``/privacy/export``, ``/privacy/erase``:
  privacy requests, admins only: find a customer by id, phone or e-mail, see what
  is held, download the complete export, erase after typing the customer id.
  Identifiers travel in form bodies, never in URLs (no trace in proxy logs or
  browser history); export and erasure are audited under the customer's
  pseudonym, and the erasure is :func:`bot.privacy.erase_customer`, the same as
  the command line and the shopper's "forget me";
* ``GET /events``: server-sent events from the :class:`~bot.events.EventBus`;
* ``GET /static/staff.js``, ``GET /static/staff.css``.

Pages are rendered server-side with Jinja2 (autoescaping on: chat text is always
inert) and enhanced by one static script (``/staff/static/staff.js``) that keeps
the inbox and the open thread live over SSE; there is no inline script or style,
so the Content-Security-Policy allows ``'self'`` only.

Anonymous requests never see data: pages redirect to the login form, actions
and feeds answer 401/403. Every form carries the session's CSRF token; a missing
or wrong one is a 403. Session cookies are HttpOnly and SameSite=Strict, and
Secure (with the ``__Host-`` prefix) when ``public_url`` is https.

The router's lifespan builds the :class:`~bot.staff.StaffAccounts` and
:class:`~bot.takeover.Takeover` services over the runtime, and runs the takeover
timers (re-announce, idle return) in this process, where the consoles listen.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib.resources import files
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import jinja2
from babel.dates import format_date, format_datetime, format_skeleton, format_timedelta
from babel.numbers import format_currency, format_decimal, format_percent
from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from fastapi.routing import APIRoute

from bot.events import Event
from bot.logs import hash_id
from bot.privacy import (
    AmbiguousCustomerError,
    UnknownCustomerError,
    erase_customer,
    export_customer,
    export_filename,
    find_customer,
    held_records,
)
from bot.runtime import Runtime
from bot.staff import LoginFailed, PermissionDenied, StaffAccounts, StaffSession, csrf_matches, write_audit
from bot.store import Customer
from bot.takeover import (
    DEFAULT_IDLE_AFTER,
    DEFAULT_REANNOUNCE_AFTER,
    DIRECT_CHANNELS,
    InvalidTransition,
    Takeover,
    ThreadNotFound,
)
from jobs.followups import conversion_stats

log = logging.getLogger(__name__)

SESSION_COOKIE = "shopkeeper_staff"
LOGIN_COOKIE = "shopkeeper_staff_login"
DEFAULT_SESSION_HOURS = 12
TIMER_SECONDS = 30.0  # how often the re-announce and idle timers run
SSE_HEARTBEAT_SECONDS = 10.0
# an event stream ends after this long and the browser reconnects: a server shutdown never waits on it for longer
SSE_MAX_SECONDS = 25.0
DASHBOARD_PERIODS = (1, 7, 30, 90)

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-store",
}
STATIC_FILES = {"staff.js": "text/javascript; charset=utf-8", "staff.css": "text/css; charset=utf-8"}
REASON_LABELS = {
    "asked_for_human": "Asked for a person",
    "unanswered": "Bot could not answer",
    "sensitive": "Sensitive topic",
    "frustration": "Frustrated shopper",
    "guardrail": "Reply blocked by guardrail",
}
# what each personal-data table of bot.privacy.TABLES holds, in words (a newer table shows its name)
HELD_LABELS = {
    "customers": "Customer record",
    "identities": "Channel identities",
    "conversations": "Conversations",
    "messages": "Messages",
    "inbox": "Received platform events",
    "outbox": "Outgoing deliveries",
    "delivery_status": "Delivery receipts",
    "orders": "Orders",
    "escalations": "Hand-overs to staff",
    "staff_notes": "Staff notes",
    "audit_log": "Staff actions on their threads (audit log)",
    "consents": "Consent records",
    "followups": "Follow-ups (reminders, back-in-stock nudges)",
    "subscriptions": "Back-in-stock alerts",
}
FOLLOWUP_KIND_LABELS = {"reminder": "Reminders", "back_in_stock": "Back-in-stock nudges"}
PRIVACY_ADMINS_ONLY = (
    "Privacy requests (export and erasure of a customer's data) are for admins. "
    "Ask an admin of this shop to handle the request."
)
STATE_LABELS = {"bot": "With the bot", "pending_human": "Waiting for staff", "human": "With staff", "closed": "Closed"}


# -- services ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Console:
    """The console's services for one app, built in the router's lifespan."""

    runtime: Runtime
    staff: StaffAccounts
    takeover: Takeover
    secure_cookies: bool

    @property
    def session_cookie(self) -> str:
        # the __Host- prefix pins the cookie to this host and path /, and needs Secure
        return f"__Host-{SESSION_COOKIE}" if self.secure_cookies else SESSION_COOKIE

    @property
    def login_cookie(self) -> str:
        return f"__Host-{LOGIN_COOKIE}" if self.secure_cookies else LOGIN_COOKIE


def build_console(runtime: Runtime) -> Console:
    """The console services over a runtime, configured from its settings."""
    settings = runtime.settings
    # read with defaults so the console works before these settings exist in bot.settings
    reannounce = timedelta(minutes=float(getattr(settings, "staff_reannounce_minutes", DEFAULT_REANNOUNCE_AFTER.total_seconds() / 60)))
    idle = timedelta(minutes=float(getattr(settings, "staff_idle_minutes", DEFAULT_IDLE_AFTER.total_seconds() / 60)))
    lifetime = timedelta(hours=float(getattr(settings, "staff_session_hours", DEFAULT_SESSION_HOURS)))
    return Console(
        runtime=runtime,
        staff=StaffAccounts(runtime.store, session_lifetime=lifetime),
        takeover=Takeover(
            runtime.store,
            runtime.events,
            runtime.shop,
            reannounce_after=reannounce,
            idle_after=idle,
            max_reply_chars=settings.max_message_chars,
            on_outbox=runtime.sender.wake,
        ),
        secure_cookies=bool(settings.public_url and settings.public_url.startswith("https://")),
    )


async def _run_timers(takeover: Takeover, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await takeover.sweep()
        except Exception:  # a failing pass is logged; the next one runs anyway
            log.exception("staff takeover timers failed")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Build the console over the app's runtime and run the takeover timers while the app runs."""
    console = build_console(app.state.runtime)
    await asyncio.to_thread(_warm_up)  # read templates and static files from disk once, off the event loop
    app.state.staff_console = console
    timers = asyncio.create_task(_run_timers(console.takeover, TIMER_SECONDS), name="staff-timers")
    try:
        yield
    finally:
        timers.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await timers


def _console(request: Request) -> Console:
    console: Console = request.app.state.staff_console
    return console


# -- security headers on every console response ---------------------------------------


class _SecureRoute(APIRoute):
    """Adds the console's security headers to every response of the router."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def secured(request: Request) -> Response:
            response = await handler(request)
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return secured


router = APIRouter(prefix="/staff", route_class=_SecureRoute, include_in_schema=False, lifespan=lifespan)


def _refuse(status_code: int, detail: str, **headers: str) -> HTTPException:
    return HTTPException(status_code=status_code, detail=detail, headers={**SECURITY_HEADERS, **headers})


async def _session(request: Request) -> StaffSession | None:
    console = _console(request)
    return await console.staff.session(request.cookies.get(console.session_cookie))


async def page_session(request: Request) -> StaffSession:
    """A page's viewer; anonymous visitors are sent to the login form."""
    session = await _session(request)
    if session is None:
        raise _refuse(303, "login required", Location="/staff/login")
    return session


async def feed_session(request: Request) -> StaffSession:
    """The viewer of a fragment or the event stream; anonymous requests get a 401."""
    session = await _session(request)
    if session is None:
        raise _refuse(401, "login required")
    return session


async def action_session(request: Request, csrf: Annotated[str, Form()] = "") -> StaffSession:
    """The staff member behind a form post, with its CSRF token checked (403 otherwise)."""
    session = await _session(request)
    if session is None:
        raise _refuse(403, "login required")
    if not csrf_matches(session.csrf_token, csrf):
        raise _refuse(403, "missing or invalid CSRF token")
    return session


def _admin(session: StaffSession) -> None:
    if not session.staff.is_admin:
        raise _refuse(403, "admins only")


Viewer = Annotated[StaffSession, Depends(page_session)]
FeedViewer = Annotated[StaffSession, Depends(feed_session)]
Actor = Annotated[StaffSession, Depends(action_session)]


# -- rendering --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Formats:
    """Dates and numbers in the staff member's locale, times in the store's timezone."""

    locale: str
    timezone: str

    def dt(self, value: datetime | None, width: str = "short") -> str:
        if value is None:
            return "—"
        return format_datetime(value, format=width, tzinfo=ZoneInfo(self.timezone), locale=self.locale)

    def num(self, value: float | int | Decimal | None, digits: int = 0) -> str:
        if value is None:
            return "—"
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(value, format=pattern, locale=self.locale)

    def pct(self, value: float | None) -> str:
        # the locale's own pattern (50 % in German), with up to one decimal
        return "—" if value is None else format_percent(round(value, 3), locale=self.locale, decimal_quantization=False)

    def duration(self, value: timedelta | None) -> str:
        return "—" if value is None else format_timedelta(value, threshold=1.5, locale=self.locale)

    def long_date(self, value: datetime) -> str:
        return format_date(value.astimezone(ZoneInfo(self.timezone)), format="medium", locale=self.locale)

    def day(self, value: date) -> str:
        return format_skeleton("MMMd", value, locale=self.locale)

    def money(self, amount: Any, currency: str) -> str:
        try:
            return format_currency(Decimal(str(amount)), currency, locale=self.locale)
        except (InvalidOperation, ValueError):
            return f"{amount} {currency}"


def reason_label(reason: str) -> str:
    """A readable escalation reason; ``sensitive:refund`` reads "Sensitive topic (refund)"."""
    base, _sep, detail = reason.partition(":")
    label = REASON_LABELS.get(base, base.replace("_", " "))
    return f"{label} ({detail.replace('_', ' ')})" if detail else label


def show(value: object) -> str:
    """A constraint or audit value as short text: lists joined, mappings as ``key: value``."""
    if isinstance(value, dict):
        return "; ".join(f"{k}: {show(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple, set)):
        return ", ".join(show(v) for v in value)
    return str(value)


def safe_url(url: object) -> str:
    """The URL if it is http(s), else an empty string (never a ``javascript:`` link)."""
    text = str(url or "")
    return text if urlsplit(text).scheme in ("http", "https") else ""


@cache
def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("bot", "templates/staff"),
        autoescape=True,  # every template, whatever its name: chat text must stay inert
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # loaded once at start-up (see _warm_up): no file access while serving
    )
    env.filters["safe_url"] = safe_url
    env.filters["show"] = show
    env.globals.update(reason_label=reason_label, state_label=STATE_LABELS.get)
    return env


def _render(
    request: Request, template: str, session: StaffSession | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    console = _console(request)
    locale = session.staff.locale if session else "en"
    html = _templates().get_template(template).render(
        me=session.staff if session else None,
        csrf=session.csrf_token if session else "",
        fmt=Formats(locale, console.runtime.shop.timezone),
        shop_name=console.runtime.shop.name,
        **context,
    )
    return HTMLResponse(html, status_code=status_code)


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# -- login and logout ---------------------------------------------------------------------


@router.get("/login")
async def login_form(request: Request) -> Response:
    if await _session(request) is not None:
        return _see_other("/staff")
    return _login_page(request)


def _login_page(request: Request, error: str = "", status_code: int = 200) -> HTMLResponse:
    console = _console(request)
    token = secrets.token_urlsafe(32)
    response = _render(request, "login.html", None, status_code=status_code, login_csrf=token, error=error)
    response.set_cookie(
        console.login_cookie, token, max_age=3600, httponly=True, samesite="strict", secure=console.secure_cookies, path="/"
    )
    return response


@router.post("/login")
async def login(
    request: Request,
    email: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    console = _console(request)
    if not csrf_matches(request.cookies.get(console.login_cookie, ""), csrf):
        raise _refuse(403, "missing or invalid CSRF token; reload the login page")
    try:
        token, session = await console.staff.login(email, password)
    except LoginFailed:
        message = "Sign-in failed. Check your email and password; after 5 failed attempts an account is locked for 15 minutes."
        return _login_page(request, message, status_code=401)
    response = _see_other("/staff")
    response.set_cookie(
        console.session_cookie,
        token,
        max_age=int((session.expires_at - session.created_at).total_seconds()),
        httponly=True,
        samesite="strict",
        secure=console.secure_cookies,
        path="/",
    )
    response.delete_cookie(console.login_cookie, path="/", secure=console.secure_cookies, httponly=True, samesite="strict")
    return response


@router.post("/logout")
async def logout(request: Request, session: Actor) -> Response:
    console = _console(request)
    await console.staff.logout(request.cookies.get(console.session_cookie))
    response = _see_other("/staff/login")
    response.delete_cookie(console.session_cookie, path="/", secure=console.secure_cookies, httponly=True, samesite="strict")
    return response


# -- inbox ------------------------------------------------------------------------------


@router.get("")
@router.get("/")
async def inbox_page(request: Request, session: Viewer) -> HTMLResponse:
    inbox = await _console(request).takeover.inbox(session.staff)
    return _render(request, "inbox.html", session, inbox=inbox, page="inbox")


@router.get("/inbox/partial")
async def inbox_partial(request: Request, session: FeedViewer) -> HTMLResponse:
    inbox = await _console(request).takeover.inbox(session.staff)
    response = _render(request, "_inbox_list.html", session, inbox=inbox)
    response.headers["X-Waiting-Count"] = str(inbox.waiting_count)
    return response


# -- threads ----------------------------------------------------------------------------


async def _thread_context(request: Request, session: StaffSession, conversation_id: str) -> dict[str, Any]:
    console = _console(request)
    try:
        view = await console.takeover.thread(conversation_id)
    except ThreadNotFound:
        raise _refuse(404, "no such conversation") from None
    conversation = view.conversation
    me = session.staff
    mine = conversation.state == "human" and conversation.owner == me.id
    return {
        "view": view,
        "conversation": conversation,
        "mine": mine,
        "can_claim": conversation.state == "pending_human" or (conversation.state == "human" and not mine and me.is_admin),
        "can_hand_back": conversation.state == "pending_human" or mine or (conversation.state == "human" and me.is_admin),
        "canned": await console.takeover.canned_replies() if mine else [],
        "delivery_warning": await _delivery_warning(console, conversation.channel, conversation.chat_id),
        "max_chars": console.takeover.max_reply_chars,
        "page": "thread",
    }


async def _delivery_warning(console: Console, channel_name: str, chat_id: str) -> str:
    """Why a staff reply on a messaging platform would not go out now, if it would not."""
    if channel_name in DIRECT_CHANNELS:
        return ""
    channel = console.runtime.channels.get(channel_name)
    if channel is None:
        return f"The {channel_name} channel is not configured on this server: replies are stored and held."
    reachable, last_inbound = await console.runtime.store.reachability(channel_name, chat_id)
    if not reachable:
        return "This shopper blocked the shop or opted out on the platform: replies will not be delivered."
    if not channel.within_window(last_inbound, console.takeover.now(), staff_reply=True):
        return "The platform's reply window has closed: replies are held until the shopper writes again."
    return ""


async def _thread_page(
    request: Request, session: StaffSession, conversation_id: str, *, error: str = "", status_code: int = 200
) -> HTMLResponse:
    context = await _thread_context(request, session, conversation_id)
    return _render(request, "thread.html", session, status_code=status_code, error=error, **context)


@router.get("/threads/{conversation_id}")
async def thread_page(request: Request, conversation_id: str, session: Viewer) -> HTMLResponse:
    return await _thread_page(request, session, conversation_id)


@router.get("/threads/{conversation_id}/live")
async def thread_live(request: Request, conversation_id: str, session: FeedViewer) -> HTMLResponse:
    context = await _thread_context(request, session, conversation_id)
    return _render(request, "_thread_live.html", session, **context)


async def _act(
    request: Request, session: StaffSession, conversation_id: str, action: Callable[[], Awaitable[object]]
) -> Response:
    """Run a thread action, then show the thread (303), or the thread with the problem (403/404/409/422)."""
    try:
        await action()
    except ThreadNotFound:
        raise _refuse(404, "no such conversation") from None
    except PermissionDenied as exc:
        return await _thread_page(request, session, conversation_id, error=str(exc), status_code=403)
    except InvalidTransition as exc:
        return await _thread_page(request, session, conversation_id, error=str(exc), status_code=409)
    except ValueError as exc:
        return await _thread_page(request, session, conversation_id, error=str(exc), status_code=422)
    return _see_other(f"/staff/threads/{conversation_id}")


@router.post("/threads/{conversation_id}/claim")
async def claim(request: Request, conversation_id: str, session: Actor) -> Response:
    takeover = _console(request).takeover
    return await _act(request, session, conversation_id, lambda: takeover.claim(conversation_id, session.staff))


@router.post("/threads/{conversation_id}/reply")
async def reply(
    request: Request,
    conversation_id: str,
    session: Actor,
    text: Annotated[str, Form()] = "",
    canned_id: Annotated[int | None, Form()] = None,
) -> Response:
    takeover = _console(request).takeover

    async def send() -> None:
        body = text
        if canned_id is not None and not body.strip():
            body = (await takeover.canned_reply(canned_id)).text
        await takeover.reply(conversation_id, session.staff, body)

    return await _act(request, session, conversation_id, send)


@router.post("/threads/{conversation_id}/notes")
async def add_note(request: Request, conversation_id: str, session: Actor, text: Annotated[str, Form()] = "") -> Response:
    takeover = _console(request).takeover
    return await _act(request, session, conversation_id, lambda: takeover.add_note(conversation_id, session.staff, text))


@router.post("/threads/{conversation_id}/resolve")
async def resolve(request: Request, conversation_id: str, session: Actor, note: Annotated[str, Form()] = "") -> Response:
    takeover = _console(request).takeover
    return await _act(request, session, conversation_id, lambda: takeover.resolve(conversation_id, session.staff, note))


@router.post("/threads/{conversation_id}/release")
async def release(request: Request, conversation_id: str, session: Actor, note: Annotated[str, Form()] = "") -> Response:
    takeover = _console(request).takeover
    return await _act(request, session, conversation_id, lambda: takeover.release(conversation_id, session.staff, note))


# -- dashboard --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: int
    size: float  # 0..1 of the chart's length


def bars(pairs: Sequence[tuple[str, int]]) -> list[Bar]:
    """Bars scaled to the largest value (for the inline SVG charts)."""
    top = max((value for _label, value in pairs), default=0) or 1
    return [Bar(label, value, value / top) for label, value in pairs]


@router.get("/dashboard")
async def dashboard(request: Request, session: Viewer, days: Annotated[int, Query()] = 30) -> HTMLResponse:
    if days not in DASHBOARD_PERIODS:
        days = 30
    console = _console(request)
    takeover = console.takeover
    since = takeover.now() - timedelta(days=days)
    kpis = await takeover.kpis(since)
    followups = await conversion_stats(console.runtime.store, since=since)
    top_day = max((max(d.conversations, d.escalations) for d in kpis.daily), default=0) or 1
    return _render(
        request,
        "dashboard.html",
        session,
        kpis=kpis,
        days=days,
        periods=DASHBOARD_PERIODS,
        reasons=bars([(reason_label(r), n) for r, n in kpis.escalations_by_reason]),
        outcomes=bars(kpis.outcomes),
        followups=followups,
        followup_kinds=[(FOLLOWUP_KIND_LABELS.get(kind, kind), stats) for kind, stats in sorted(followups.by_kind.items())],
        conversion_days=console.runtime.settings.followup_conversion_days,
        top_day=top_day,
        page="dashboard",
    )


# -- admin pages ------------------------------------------------------------------------


@router.get("/canned")
async def canned_page(request: Request, session: Viewer) -> HTMLResponse:
    _admin(session)
    canned = await _console(request).takeover.canned_replies()
    return _render(request, "canned.html", session, canned=canned, error="", page="canned")


@router.post("/canned")
async def add_canned(
    request: Request, session: Actor, title: Annotated[str, Form()] = "", text: Annotated[str, Form()] = ""
) -> Response:
    _admin(session)
    takeover = _console(request).takeover
    try:
        await takeover.add_canned_reply(session.staff, title, text)
    except ValueError as exc:
        canned = await takeover.canned_replies()
        return _render(request, "canned.html", session, status_code=422, canned=canned, error=str(exc), page="canned")
    return _see_other("/staff/canned")


@router.post("/canned/{canned_id}/delete")
async def delete_canned(request: Request, canned_id: int, session: Actor) -> Response:
    _admin(session)
    try:
        await _console(request).takeover.delete_canned_reply(session.staff, canned_id)
    except ThreadNotFound:
        raise _refuse(404, "no such canned reply") from None
    return _see_other("/staff/canned")


@router.get("/audit")
async def audit_page(request: Request, session: Viewer) -> HTMLResponse:
    _admin(session)
    entries = await _console(request).staff.audit_log()
    return _render(request, "audit.html", session, entries=entries, page="audit")


# -- privacy requests (admins) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeldKind:
    table: str
    label: str
    count: int


@dataclass(frozen=True, slots=True)
class CustomerFile:
    """What the privacy page shows about one customer before an export or an erasure."""

    customer: Customer
    identities: list[tuple[str, str]]  # (channel, external id)
    held: list[HeldKind]

    @property
    def consents(self) -> int:
        return next((k.count for k in self.held if k.table == "consents"), 0)


async def _customer_file(runtime: Runtime, customer_id: str) -> CustomerFile:
    store = runtime.store
    customer = await store.get_customer(customer_id) or Customer(customer_id)
    async with store.db.execute(
        "SELECT channel, external_id FROM identities WHERE customer_id = ? ORDER BY created_at, channel", (customer_id,)
    ) as cur:
        identities = [(row[0], row[1]) for row in await cur.fetchall()]
    held = await held_records(store, customer_id)
    kinds = [HeldKind(table, HELD_LABELS.get(table, table.replace("_", " ")), count) for table, count in held.items()]
    return CustomerFile(customer, identities, kinds)


def _privacy_page(
    request: Request, session: StaffSession, *, status_code: int = 200, found: CustomerFile | None = None,
    query: str = "", error: str = "", erased: dict[str, object] | None = None,
) -> HTMLResponse:
    return _render(
        request, "privacy.html", session, status_code=status_code, found=found, query=query, error=error,
        erased=erased, page="privacy",
    )


def _privacy_admin(request: Request, session: StaffSession) -> HTMLResponse | None:
    """The page an agent gets instead (403, saying why), or None for an admin."""
    if session.staff.is_admin:
        return None
    return _privacy_page(request, session, status_code=403, error=PRIVACY_ADMINS_ONLY)


async def _known_customer(request: Request, session: StaffSession, customer_id: str) -> str | HTMLResponse:
    """The customer id if it still exists, else the search page with a 404."""
    store = _console(request).runtime.store
    async with store.db.execute("SELECT 1 FROM customers WHERE id = ?", (customer_id.strip(),)) as cur:
        if await cur.fetchone() is not None:
            return customer_id.strip()
    return _privacy_page(request, session, status_code=404, error="No customer with this id (already erased?). Search again.")


@router.get("/privacy")
async def privacy_page(request: Request, session: Viewer, erased: Annotated[str, Query(max_length=20)] = "") -> HTMLResponse:
    if (refused := _privacy_admin(request, session)) is not None:
        return refused
    done: dict[str, object] | None = None
    if erased:
        entry = next(
            (e for e in await _console(request).staff.audit_log() if e.action == "customer_erased" and e.target == erased), None
        )
        done = {"pseudonym": erased, **entry.detail} if entry else None
    return _privacy_page(request, session, erased=done)


@router.post("/privacy/lookup")
async def privacy_lookup(request: Request, session: Actor, q: Annotated[str, Form(max_length=254)] = "") -> HTMLResponse:
    if (refused := _privacy_admin(request, session)) is not None:
        return refused
    if not q.strip():
        return _privacy_page(request, session, status_code=422, error="Enter a customer id, a phone number or an e-mail address.")
    runtime = _console(request).runtime
    try:
        customer_id = await find_customer(runtime.store, q)
    except AmbiguousCustomerError:
        error = "This matches more than one customer. Search by the customer id instead."
        return _privacy_page(request, session, status_code=409, query=q, error=error)
    except UnknownCustomerError:
        error = "No customer matches this id, phone number or e-mail address."
        return _privacy_page(request, session, status_code=404, query=q, error=error)
    return _privacy_page(request, session, found=await _customer_file(runtime, customer_id), query=q)


@router.post("/privacy/export")
async def privacy_export(request: Request, session: Actor, customer_id: Annotated[str, Form(max_length=200)] = "") -> Response:
    if (refused := _privacy_admin(request, session)) is not None:
        return refused
    known = await _known_customer(request, session, customer_id)
    if isinstance(known, HTMLResponse):
        return known
    store = _console(request).runtime.store
    document = await export_customer(store, known)
    body = json.dumps(document, ensure_ascii=False, indent=2, default=str) + "\n"
    async with store.transaction() as db:
        await write_audit(db, store.now(), session.staff.id, "customer_exported", hash_id(known), bytes=len(body.encode()))
    log.info("customer %s exported from the console by %s", hash_id(known), session.staff.id)
    return Response(
        body,
        media_type="application/json; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{export_filename(known, store.now())}"'},
    )


@router.post("/privacy/erase")
async def privacy_erase(
    request: Request,
    session: Actor,
    customer_id: Annotated[str, Form(max_length=200)] = "",
    confirm: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    if (refused := _privacy_admin(request, session)) is not None:
        return refused
    known = await _known_customer(request, session, customer_id)
    if isinstance(known, HTMLResponse):
        return known
    runtime = _console(request).runtime
    if confirm.strip() != known:
        return _privacy_page(
            request, session, status_code=422, found=await _customer_file(runtime, known),
            error=f"Nothing was erased: type the customer id {known} exactly to confirm.",
        )
    async with runtime.store.db.execute("SELECT id FROM conversations WHERE customer_id = ?", (known,)) as cur:
        conversations = [row[0] for row in await cur.fetchall()]
    report = await erase_customer(runtime.store, known, actor=session.staff.id)
    for conversation_id in conversations:  # open consoles drop the erased threads
        runtime.events.publish(Event("erased", conversation_id, "closed"))
    log.info("customer %s erased from the console by %s", report.customer_hash, session.staff.id)
    return _see_other(f"/staff/privacy?erased={report.customer_hash}")


# -- live events ------------------------------------------------------------------------


async def event_stream(
    console: Console,
    token: str | None,
    *,
    heartbeat: float = SSE_HEARTBEAT_SECONDS,
    max_seconds: float = SSE_MAX_SECONDS,
) -> AsyncGenerator[str, None]:
    """Server-sent events for one console page, while its session stays valid.

    Each event is ``data: {"kind", "conversation_id", "state"}``; the page
    re-reads what it shows. Comments keep the connection alive; the stream ends
    after ``max_seconds`` (the browser reconnects) or when the session ends.
    """
    loop = asyncio.get_running_loop()
    async with console.runtime.events.subscribe() as queue:
        yield "retry: 2000\n: connected\n\n"
        ends = loop.time() + max_seconds
        while (remaining := ends - loop.time()) > 0:
            try:
                event = await asyncio.wait_for(queue.get(), timeout=min(heartbeat, remaining))
            except TimeoutError:
                if await console.staff.session(token) is None:
                    return
                yield ": keep-alive\n\n"
                continue
            if await console.staff.session(token) is None:
                return
            data = {"kind": event.kind, "conversation_id": event.conversation_id, "state": event.state}
            yield f"data: {json.dumps(data)}\n\n"


@router.get("/events")
async def events(request: Request, session: FeedViewer) -> StreamingResponse:
    console = _console(request)
    return StreamingResponse(
        event_stream(console, request.cookies.get(console.session_cookie)),
        media_type="text/event-stream",
        headers={"X-Accel-Buffering": "no"},
    )


# -- static files -----------------------------------------------------------------------


@cache
def _static(name: str) -> bytes:
    return files("bot").joinpath("static", name).read_bytes()


def _warm_up() -> None:
    env = _templates()
    for name in env.list_templates():
        env.get_template(name)
    for name in STATIC_FILES:
        _static(name)


@router.get("/static/{name}")
async def static(name: str) -> Response:
    if name not in STATIC_FILES:
        raise _refuse(404, "not found")
    return Response(_static(name), media_type=STATIC_FILES[name], headers={"Cache-Control": "no-cache"})
