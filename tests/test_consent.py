"""Consent: asked in words, never pre-ticked, revoked by STOP in five languages, restored by START; reminders in chat.

The chat tests drive the real engine on the demo store (a real SQLite file) with
a faked clock. In the demo catalog, RUN-012 ("Carbon Edge Marathon Racer") is
sold out in every size.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.consent import (
    START_WORDS,
    STOP_WORDS,
    ConsentLedger,
    Evidence,
    Keyword,
    Purpose,
    add_alert_buttons,
    consent_keyword,
    yes_or_no,
)
from bot.messages import OutboundMessage, ProductCard
from bot.privacy import erase_customer
from bot.runtime import Runtime, open_runtime
from bot.settings import Settings
from jobs.scheduler import build_dispatcher
from kb.inventory import set_stock
from kb.models import SearchFilters
from tests.fakes.followups import Clock, shoe
from tests.support.shoppers import Chat, text_of

NOW = datetime(2026, 11, 18, 11, 0, tzinfo=UTC)  # Wednesday, 12:00 in Madrid (the demo store's timezone)
SOLD_OUT = "RUN-012-42-WHT"


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
async def runtime(settings: Settings, clock: Clock) -> AsyncIterator[Runtime]:
    async with open_runtime(settings, clock=clock) as opened:
        yield opened


# -- words -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "word",
    ["STOP", "Stop.", "stopall", "UNSUBSCRIBE", "cancel", "END", "quit",  # carriers' keywords
     "BAJA", "parar", "cancelar", "darme de baja",  # es
     "ARRÊT", "arret", "désabonner", "Stop !",  # fr
     "STOPP", "abmelden", "ABBESTELLEN",  # de
     "PARAR", "sair", "descadastrar", "cancelar inscrição"],  # pt_BR
)
def test_stop_words_in_five_languages(word: str) -> None:
    assert consent_keyword(word) is Keyword.STOP


@pytest.mark.parametrize("text", ["stop sending me shoes under 50", "cancel my order", "can I quit my subscription?", "stopper", ""])
def test_only_the_whole_message_is_a_keyword(text: str) -> None:
    assert consent_keyword(text) is None


def test_start_and_help_words() -> None:
    for word in ["START", "unstop", "Alta", "reprendre", "anmelden", "voltar"]:
        assert consent_keyword(word) is Keyword.START, word
    for word in ["HELP", "ayuda", "Aide", "hilfe", "AJUDA", "info"]:
        assert consent_keyword(word) is Keyword.HELP, word
    assert not STOP_WORDS & START_WORDS


def test_yes_and_no_are_explicit() -> None:
    for word in ["yes", "Yes!", "sí", "si", "claro", "oui", "d'accord", "ja", "gerne", "sim", "pode", "/consent yes"]:
        assert yes_or_no(word) is True, word
    for word in ["no", "nope", "non", "nein", "não", "nao", "no gracias", "/consent no"]:
        assert yes_or_no(word) is False, word
    for word in ["maybe", "yes but only in blue", "how much is it?", ""]:
        assert yes_or_no(word) is None, word


def test_alert_buttons_target_the_exact_sold_out_variant() -> None:
    product = shoe(stock={"41": 3, "42": 0, "43": 5})
    card = ProductCard("RUN-9-41", product.title, product.variants[0].price, "EUR", True)
    replies = [OutboundMessage("The closest options:", products=(card,))]
    # a near miss broken by size: the alert is for size 42, not the card's size 41
    offered = add_alert_buttons(replies, [product], SearchFilters(sizes=("42",)))
    assert [b.payload for b in offered[0].buttons] == ["/notify RUN-9-42"]
    assert add_alert_buttons(replies, [product], SearchFilters(sizes=("41",))) == replies  # in stock: no alert
    assert add_alert_buttons(replies, [product], SearchFilters(sizes=("45",))) == replies  # never made in 45


# -- the consent question ------------------------------------------------------------------------------------


async def test_alert_offer_asks_in_words_and_never_pre_ticks(runtime: Runtime, clock: Clock) -> None:
    chat = Chat(runtime, clock, "ana", channel="web")
    ledger = ConsentLedger(runtime.store)
    replies = await chat.replies("carbon edge marathon racer in size 42 under 170")
    buttons = [b.payload for r in replies for b in r.buttons]
    assert f"/notify {SOLD_OUT}" in buttons
    question = text_of(await chat.replies(tap=f"/notify {SOLD_OUT}"))
    assert "size 42" in question and "(yes/no)" in question
    customer = await chat.customer()
    assert await ledger.records(customer) == []  # asking is not consenting
    await chat.replies("do you have wool socks?")  # the shopper moved on
    await chat.replies("yes")
    assert await ledger.records(customer) == []  # a later "yes" is not an answer to the old question
    await chat.replies(tap=f"/notify {SOLD_OUT}")
    done = text_of(await chat.replies("yes please"))
    assert "Carbon Edge Marathon Racer, size 42" in done and "STOP" in done
    [record] = await ledger.records(customer)
    assert (record.purpose, record.channel, record.status) == (Purpose.BACK_IN_STOCK, "web", "granted")
    assert record.evidence_text == "yes please" and record.evidence_message_id == f"web:ana-{chat.count}"
    async with runtime.store.db.execute("SELECT sku, status, max_price, size FROM subscriptions WHERE customer_id = ?", (customer,)) as cur:
        assert [tuple(r) for r in await cur.fetchall()] == [(SOLD_OUT, "active", "170", "42")]
    assert "already on the list" in text_of(await chat.replies(tap=f"/notify {SOLD_OUT}"))

    # the variant comes back: the shopper gets one nudge, on the web page's poll
    await set_stock(runtime.index, SOLD_OUT, 4, store=runtime.store)
    await build_dispatcher(runtime, None).run_once()
    nudges = [m for m in await runtime.store.messages_after("web", "ana") if m.payload and "followup_id" in m.payload]
    assert len(nudges) == 1 and "back in stock" in nudges[0].text
    assert nudges[0].payload is not None and nudges[0].payload["products"][0]["sku"] == SOLD_OUT


async def test_no_means_nothing_is_recorded(runtime: Runtime, clock: Clock) -> None:
    chat = Chat(runtime, clock, "ben", channel="web")
    await chat.replies(tap=f"/notify {SOLD_OUT}")
    assert "won't" in text_of(await chat.replies(tap="/consent no"))
    assert await ConsentLedger(runtime.store).records(await chat.customer()) == []


async def test_the_question_in_spanish_and_a_typed_si(runtime: Runtime, clock: Clock) -> None:
    chat = Chat(runtime, clock, "carla", channel="web")
    await chat.replies("/language es")
    question = text_of(await chat.replies(tap=f"/notify {SOLD_OUT}"))
    assert "talla 42" in question and "(sí/no)" in question
    assert "Hecho" in text_of(await chat.replies("sí"))


# -- STOP, START, HELP -----------------------------------------------------------------------------------------


async def test_stop_revokes_every_purpose_on_that_channel_and_is_confirmed(runtime: Runtime, clock: Clock) -> None:
    chat = Chat(runtime, clock, "dani", channel="web")
    await chat.replies("/language es")
    assert "Vale" in text_of(await chat.replies("recuérdame mañana a las 18 lo de las botas"))
    await chat.replies(tap=f"/notify {SOLD_OUT}")
    await chat.replies("sí")
    customer = await chat.customer()
    ledger = ConsentLedger(runtime.store)
    await ledger.grant(customer, Purpose.REMINDERS, "telegram", Evidence("telegram:1", "yes", clock()))  # another channel
    confirmation = text_of(await chat.replies("BAJA"))
    assert "Te has dado de baja" in confirmation and "2" in confirmation  # the reminder and the alert
    for purpose in (Purpose.REMINDERS, Purpose.BACK_IN_STOCK):
        assert not await ledger.is_granted(customer, purpose, "web")
    assert await ledger.is_granted(customer, Purpose.REMINDERS, "telegram")
    revoked = [r for r in await ledger.records(customer) if r.channel == "web"]
    assert {r.revoked_via for r in revoked} == {"keyword"} and all(r.revoked_at for r in revoked)
    async with runtime.store.db.execute("SELECT status FROM followups WHERE customer_id = ? AND channel = 'web'", (customer,)) as cur:
        assert [r[0] for r in await cur.fetchall()] == ["cancelled"]
    restart = text_of(await chat.replies("START"))
    assert "STOP" in restart
    assert await ledger.is_granted(customer, Purpose.REMINDERS, "web")
    records = await ledger.records(customer)
    assert [r.status for r in records if r.channel == "web"].count("granted") == 2  # new grants; the old rows keep their revocation


@pytest.mark.parametrize(("language", "word", "expected"), [
    ("en", "STOP", "unsubscribed"), ("fr", "ARRÊT", "désabonné"), ("de", "STOPP", "abgemeldet"), ("pt", "PARAR", "cancelada"),
])
async def test_stop_is_confirmed_in_the_shoppers_language(runtime: Runtime, clock: Clock, language: str, word: str, expected: str) -> None:
    chat = Chat(runtime, clock, f"stop-{language}", channel="web")
    await chat.replies(f"/language {language}")
    assert expected in text_of(await chat.replies(word))


async def test_start_without_anything_to_restore_is_a_greeting(runtime: Runtime, clock: Clock) -> None:
    chat = Chat(runtime, clock, "eva", channel="web")
    assert "subscribed again" not in text_of(await chat.replies("start"))


async def test_help_explains_how_to_stop(runtime: Runtime, clock: Clock) -> None:
    chat = Chat(runtime, clock, "finn", channel="web")
    reply = text_of(await chat.replies("HELP"))
    assert "STOP" in reply and "START" in reply and "reminders" in reply


async def test_stop_revokes_even_while_staff_owns_the_thread(runtime: Runtime, clock: Clock) -> None:
    chat = Chat(runtime, clock, "gus", channel="web")
    await chat.replies("remind me tomorrow at 6pm")
    customer = await chat.customer()
    async with runtime.store.transaction() as db:
        await db.execute("UPDATE conversations SET state = 'human', owner = 'staff-1' WHERE chat_id = 'gus'")
    assert await chat.replies("stop") == []  # the bot stays silent; staff sees the message
    assert not await ConsentLedger(runtime.store).is_granted(customer, Purpose.REMINDERS, "web")


async def test_erasure_keeps_only_the_withdrawal(runtime: Runtime, clock: Clock) -> None:
    chat = Chat(runtime, clock, "hugo", channel="web")
    await chat.replies("remind me tomorrow at 6pm about socks")
    await chat.replies("STOP")
    customer = await chat.customer()
    report = await erase_customer(runtime.store, customer)
    assert report.consent_withdrawals_kept == 1
    async with runtime.store.db.execute("SELECT COUNT(*) FROM followups WHERE customer_id = ?", (customer,)) as cur:
        assert (await cur.fetchone())[0] == 0  # type: ignore[index]


# -- reminders in chat -------------------------------------------------------------------------------------------


async def test_set_list_and_cancel_reminders(runtime: Runtime, clock: Clock) -> None:
    chat = Chat(runtime, clock, "ines", channel="web")
    set_reply = text_of(await chat.replies("remind me on Friday at 6pm about the carbon edge racer"))
    assert "Fri, Nov 20 at 6:00 PM" in set_reply and "carbon edge racer" in set_reply
    await chat.replies("remind me tomorrow at 10am about socks")
    listing = (await chat.replies("my reminders"))[0]
    assert text_of([listing]).splitlines()[1:3] == [
        "1. Thu, Nov 19 at 10:00 AM — socks",
        "2. Fri, Nov 20 at 6:00 PM — the carbon edge racer",
    ]
    assert [b.title for b in listing.buttons] == ["Cancel 1", "Cancel 2"]
    customer = await chat.customer()
    async with runtime.store.db.execute(
        "SELECT sku, title, timezone, due_at FROM followups WHERE customer_id = ? AND subject LIKE '%carbon%'", (customer,)
    ) as cur:
        row = await cur.fetchone()
    assert row is not None and row["title"] == "Carbon Edge Marathon Racer" and row["sku"].startswith("RUN-012")
    assert row["timezone"] == "Europe/Madrid"
    assert datetime.fromisoformat(row["due_at"]) == datetime(2026, 11, 20, 18, 0, tzinfo=ZoneInfo("Europe/Madrid"))
    assert "socks" in text_of(await chat.replies("cancel reminder 1"))
    assert "cancelled" in text_of(await chat.replies(tap=listing.buttons[1].payload))
    assert "no reminders" in text_of(await chat.replies("my reminders"))
    assert "can't find reminder 7" in text_of(await chat.replies("cancel reminder 7"))


@pytest.mark.parametrize(
    ("language", "request_text", "listing", "cancel", "cancelled"),
    [
        ("es", "recuérdame mañana a las 18", "mis recordatorios", "cancelar recordatorio 1", "cancelado"),
        ("fr", "rappelez-moi demain à 18h", "mes rappels", "annuler le rappel 1", "annulé"),
        ("de", "erinnern Sie mich morgen um 18 Uhr", "meine Erinnerungen", "Erinnerung 1 löschen", "gelöscht"),
        ("pt", "me lembre amanhã às 18h", "meus lembretes", "cancelar lembrete 1", "cancelado"),
    ],
)
async def test_reminders_in_other_languages(
    runtime: Runtime, clock: Clock, language: str, request_text: str, listing: str, cancel: str, cancelled: str
) -> None:
    chat = Chat(runtime, clock, f"rem-{language}", channel="web")
    await chat.replies(f"/language {language}")
    confirmation = text_of(await chat.replies(request_text))
    assert "18:00" in confirmation
    assert "18:00" in text_of(await chat.replies(listing))
    assert cancelled in text_of(await chat.replies(cancel))


async def test_recuerdamelo_points_at_the_last_product_shown(runtime: Runtime, clock: Clock) -> None:
    chat = Chat(runtime, clock, "jon", channel="web")
    replies = await chat.replies("carbon edge marathon racer")
    first = next(p for r in replies for p in r.products)
    await chat.replies("recuérdamelo mañana")
    async with runtime.store.db.execute("SELECT title, due_at FROM followups WHERE chat_id = 'jon'") as cur:
        row = await cur.fetchone()
    assert row is not None and row["title"] == first.title
    assert datetime.fromisoformat(row["due_at"]) == datetime(2026, 11, 19, 10, 0, tzinfo=ZoneInfo("Europe/Madrid"))


async def test_a_reminder_asked_without_a_time_gets_a_question(runtime: Runtime, clock: Clock) -> None:
    chat = Chat(runtime, clock, "kim", channel="web")
    assert "When should I remind you" in text_of(await chat.replies("remind me about the trail shoes"))
    reply = text_of(await chat.replies("tomorrow at 7pm"))
    assert "Thu, Nov 19 at 7:00 PM" in reply and "trail shoes" in reply


async def test_a_reminder_at_night_says_when_it_will_really_come(runtime: Runtime, clock: Clock) -> None:
    chat = Chat(runtime, clock, "lia", channel="web")
    reply = text_of(await chat.replies("remind me tomorrow at 23:30"))
    assert "between 9:00 PM and 9:00 AM" in reply and "Fri, Nov 20 at 9:00 AM" in reply
    assert timedelta(0) < datetime(2026, 11, 20, tzinfo=UTC) - clock()


async def test_remind_me_what_is_a_question_not_a_reminder(runtime: Runtime, clock: Clock) -> None:
    chat = Chat(runtime, clock, "max", channel="web")
    reply = text_of(await chat.replies("can you remind me what your return policy is?"))
    assert "When should I remind you" not in reply and "Okay!" not in reply
    async with runtime.store.db.execute("SELECT COUNT(*) FROM followups WHERE chat_id = 'max'") as cur:
        assert (await cur.fetchone())[0] == 0  # type: ignore[index]
