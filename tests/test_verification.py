"""Who may see an order: WhatsApp numbers, one-time e-mail codes, and the limits on guessing.

The engine runs for real on the demo store (real SQLite files) with a faked
clock; codes go to a mailbox notifier instead of e-mail. Demo customers:
cus_001 Lucía (lucia.romero@example.com, +34600000001, orders AF-1001, AF-1011,
AF-1020, AF-1027), cus_002 Oliver (+15550100002, AF-1003, AF-1014, AF-1022),
cus_004 Jonas (+4915000000004, AF-1002…).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.notifiers import LogNotifier, mask_email
from bot.order_lookup import MISS_LIMIT
from bot.phones import to_e164, whatsapp_e164
from bot.privacy import erase_customer, export_customer
from bot.runtime import Runtime, open_runtime
from bot.settings import Settings
from bot.verification import MAX_ATTEMPTS, MAX_CODES_PER_HOUR
from tests.fakes.followups import Clock
from tests.fakes.notifier import MailboxNotifier
from tests.support.shoppers import Chat

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
LUCIA = "lucia.romero@example.com"


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def mailbox() -> MailboxNotifier:
    return MailboxNotifier()


@pytest.fixture
async def runtime(settings: Settings, clock: Clock, mailbox: MailboxNotifier) -> AsyncIterator[Runtime]:
    async with open_runtime(settings, clock=clock, notifier=mailbox) as opened:
        yield opened


async def verify_by_code(chat: Chat, mailbox: MailboxNotifier, email: str, question: str = "where is my order?") -> str:
    await chat.say(question)
    await chat.say(email)
    return await chat.say(mailbox.last_code_for(email))


# -- phone numbers -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("+34 600 00 00 01", None, "+34600000001"),
        ("0034-600-000-001", None, "+34600000001"),
        ("'+351912000011", None, "+351912000011"),
        ("(555) 010-0002", "1", "+15550100002"),
        ("0612345678", "33", "+33612345678"),
        ("(555) 010-0002", None, None),  # no country code and none known: not guessed
        ("+12", None, None),
        ("call me", None, None),
        ("", None, None),
    ],
)
def test_phone_numbers_are_normalized_to_e164(raw: str, country: str | None, expected: str | None) -> None:
    assert to_e164(raw, default_country_code=country) == expected


def test_whatsapp_senders_of_both_apis_read_as_e164() -> None:
    assert whatsapp_e164("whatsapp:+15550100002") == "+15550100002"  # Twilio
    assert whatsapp_e164("15550100002") == "+15550100002"  # Cloud API wa_id


# -- WhatsApp: the verified number links the chat ----------------------------------------------------------


@pytest.mark.parametrize(("channel", "sender"), [("twilio", "whatsapp:+15550100002"), ("whatsapp", "15550100002")])
async def test_a_whatsapp_number_on_file_links_and_verifies_the_chat(
    runtime: Runtime, clock: Clock, channel: str, sender: str
) -> None:
    chat = Chat(runtime, clock, sender, channel)
    answer = await chat.say("where is my order?")
    assert await chat.verified()
    assert await chat.customer() == "cus_002"
    assert "AF-1022" in answer  # Oliver's latest order
    assert "6-digit code" not in answer


async def test_an_unknown_whatsapp_number_is_offered_the_email_code(runtime: Runtime, clock: Clock) -> None:
    chat = Chat(runtime, clock, "whatsapp:+447700900123", "twilio")
    answer = await chat.say("where is my order AF-1003?")
    assert "6-digit code" in answer
    assert not await chat.verified()
    assert "AF-1003" not in answer


async def test_a_linked_whatsapp_chat_keeps_its_alerts_and_consents(runtime: Runtime, clock: Clock) -> None:
    chat = Chat(runtime, clock, "whatsapp:+447700900123", "twilio")
    await chat.say("hello")
    stand_in = await chat.customer()
    async with runtime.store.transaction() as db:
        await db.execute(
            "INSERT INTO consents (customer_id, purpose, channel, status, granted_at) VALUES (?, 'back_in_stock', 'twilio', 'granted', ?)",
            (stand_in, NOW.isoformat()),
        )
        await db.execute("UPDATE customers SET phone = '+447700900123' WHERE id = 'cus_003'")
    await chat.say("my order please")
    assert await chat.customer() == "cus_003"
    async with runtime.store.db.execute("SELECT customer_id FROM consents WHERE channel = 'twilio'") as cur:
        assert [row[0] for row in await cur.fetchall()] == ["cus_003"]
    assert await runtime.store.get_customer(stand_in) is None


# -- one-time code by e-mail -------------------------------------------------------------------------------


async def test_the_code_flow_verifies_and_answers_the_first_question(runtime: Runtime, clock: Clock, mailbox: MailboxNotifier) -> None:
    chat = Chat(runtime, clock, "tg-lucia")
    offer = await chat.say("where is my order AF-1001?")
    assert "6-digit code" in offer and "AF-1001" not in offer
    sent = await chat.say(f"It's {LUCIA}")
    assert "If that address is on an order with us" in sent
    assert [(s.email, s.customer_id, s.store_name) for s in mailbox.sent] == [(LUCIA, "cus_001", runtime.shop.name)]
    code = mailbox.last_code_for(LUCIA)
    assert len(code) == 6 and code.isdigit()
    wrong = "000000" if code != "000000" else "111111"
    assert "You can try 4 more times" in await chat.say(wrong)
    assert not await chat.verified()
    answer = await chat.say(code[:3] + " " + code[3:])
    assert "you're verified" in answer
    assert "AF-1001" in answer and "was delivered" in answer  # the question asked before verifying
    assert await chat.verified() and await chat.customer() == "cus_001"
    with sqlite3.connect(runtime.settings.database_path) as db:
        stored = [row[0] for row in db.execute("SELECT code_hash FROM verification_codes")]
    assert stored and all(code not in h for h in stored)  # only a keyed hash is kept


async def test_the_offer_opens_a_conversation_by_saying_the_bot_is_automated(runtime: Runtime, clock: Clock) -> None:
    chat = Chat(runtime, clock, "tg-new")
    first = await chat.say("where is my order?")
    assert first.startswith(f"I'm the automated shop assistant of {runtime.shop.name}.") and "6-digit code" in first
    assert not (await chat.say("where is my order?")).startswith("I'm the automated")


async def test_a_code_sent_stays_valid_when_the_shopper_asks_again(runtime: Runtime, clock: Clock, mailbox: MailboxNotifier) -> None:
    chat = Chat(runtime, clock, "tg-lucia")
    await chat.say("where is my order?")
    await chat.say(LUCIA)
    await chat.say("where is order AF-1011?")  # impatient: asks again before typing the code
    answer = await chat.say(mailbox.last_code_for(LUCIA))
    assert "you're verified" in answer and "AF-1011" in answer


async def test_an_unknown_address_gets_the_same_answer_and_no_code_works(
    runtime: Runtime, clock: Clock, mailbox: MailboxNotifier
) -> None:
    known, unknown = Chat(runtime, clock, "tg-known"), Chat(runtime, clock, "tg-unknown")
    await known.say("where is my order?")
    await unknown.say("where is my order?")
    assert await known.say(LUCIA) == await unknown.say("nobody@example.org")
    assert [s.email for s in mailbox.sent] == [LUCIA]
    for guess in ("123456", "654321"):
        assert "isn't right" in await unknown.say(guess)
    assert not await unknown.verified()


async def test_a_failing_mail_server_looks_the_same_to_the_shopper(runtime: Runtime, clock: Clock, mailbox: MailboxNotifier) -> None:
    mailbox.fail = True
    chat = Chat(runtime, clock, "tg-lucia")
    await chat.say("where is my order?")
    assert "If that address is on an order with us" in await chat.say(LUCIA)


async def test_codes_expire_after_ten_minutes(runtime: Runtime, clock: Clock, mailbox: MailboxNotifier) -> None:
    chat = Chat(runtime, clock, "tg-lucia")
    await chat.say("where is my order?")
    await chat.say(LUCIA)
    clock.advance(minutes=10)
    assert "expired" in await chat.say(mailbox.last_code_for(LUCIA))
    assert not await chat.verified()
    await chat.say(LUCIA)  # a new code, sent on request
    assert "you're verified" in await chat.say(mailbox.last_code_for(LUCIA))


async def test_a_code_stops_working_after_five_wrong_tries(runtime: Runtime, clock: Clock, mailbox: MailboxNotifier) -> None:
    chat = Chat(runtime, clock, "tg-lucia")
    await chat.say("where is my order?")
    await chat.say(LUCIA)
    code = mailbox.last_code_for(LUCIA)
    wrong = "000000" if code != "000000" else "111111"
    answers = [await chat.say(wrong) for _ in range(MAX_ATTEMPTS)]
    assert "You can try once more" in answers[-2]
    assert "tried too many times" in answers[-1]
    await chat.say(code)
    assert not await chat.verified()


async def test_at_most_three_codes_an_hour(runtime: Runtime, clock: Clock, mailbox: MailboxNotifier) -> None:
    chat = Chat(runtime, clock, "tg-lucia")
    await chat.say("where is my order?")
    for _ in range(MAX_CODES_PER_HOUR):
        assert "6-digit code" in await chat.say(LUCIA)
    assert "already sent several codes" in await chat.say("where is my order?") + await chat.say(LUCIA)
    assert len(mailbox.sent) == MAX_CODES_PER_HOUR
    clock.advance(hours=1)
    await chat.say("where is my order?")
    assert "6-digit code" in await chat.say(LUCIA)
    assert len(mailbox.sent) == MAX_CODES_PER_HOUR + 1


async def test_a_message_that_is_not_an_address_leaves_the_dialog(runtime: Runtime, clock: Clock, mailbox: MailboxNotifier) -> None:
    chat = Chat(runtime, clock, "tg-shopper")
    await chat.say("where is my order?")
    answer = await chat.say("running shoes under 100")
    assert "from our catalog" in answer  # a product search, answered as one
    assert "If that address" not in answer and mailbox.sent == []


@pytest.mark.parametrize(
    ("locale", "words"),
    [("es", "código de 6 cifras"), ("fr", "code à 6 chiffres"), ("de", "6-stelligen Code"), ("pt_BR", "código de 6 dígitos")],
)
async def test_the_offer_is_translated(runtime: Runtime, clock: Clock, locale: str, words: str) -> None:
    chat = Chat(runtime, clock, f"tg-{locale}", locale=locale)
    questions = {
        "es": "¿dónde está mi pedido?", "fr": "où est ma commande ?", "de": "wo ist meine Bestellung?", "pt_BR": "cadê meu pedido?",
    }
    assert words in await chat.say(questions[locale])


def test_the_log_notifier_never_logs_the_code_or_address_at_info(caplog: pytest.LogCaptureFixture) -> None:
    import asyncio

    shown: list[str] = []
    notifier = LogNotifier(echo=shown.append)
    with caplog.at_level(logging.INFO, logger="bot.notifiers"):
        asyncio.run(notifier.send_code(email=LUCIA, code="482913", customer_id="cus_001", store_name="Alder & Finch", locale="es"))
    assert caplog.records and all("482913" not in r.getMessage() and LUCIA not in r.getMessage() for r in caplog.records)
    assert shown == [f"[demo e-mail to {mask_email(LUCIA)} from Alder & Finch] your verification code is 482913"]
    assert "482913" not in repr(notifier)


# -- order numbers: own orders only, guessing slowed down --------------------------------------------------


async def test_another_customers_order_number_gets_the_not_found_answer(runtime: Runtime, clock: Clock) -> None:
    oliver = Chat(runtime, clock, "whatsapp:+15550100002", "twilio")
    await oliver.say("hello")
    other = await oliver.say("where is order AF-1002?")  # Jonas's order
    missing = await oliver.say("where is order AF-9999?")  # no such order
    assert other == missing
    assert "AF-1002" not in other and "163" not in other and "track.example" not in other


async def test_guessing_order_numbers_is_rate_limited_per_chat(runtime: Runtime, clock: Clock) -> None:
    oliver = Chat(runtime, clock, "whatsapp:+15550100002", "twilio")
    for number in range(MISS_LIMIT):
        assert "can't find an order" in await oliver.say(f"where is order AF-20{number:02d}?")
    blocked = await oliver.say("where is order AF-1003?")  # even his own, while the window lasts
    assert "several order numbers" in blocked and "AF-1003" not in blocked
    jonas = Chat(runtime, clock, "whatsapp:+4915000000004", "twilio")
    assert "AF-1002" in await jonas.say("where is order AF-1002?")  # another chat is not affected
    clock.advance(hours=1)
    assert "AF-1003" in await oliver.say("where is order AF-1003?")


async def test_shopify_style_numbers_are_understood(runtime: Runtime, clock: Clock) -> None:
    async with runtime.store.transaction() as db:
        await db.execute(
            "INSERT INTO orders (order_number, customer_id, status, currency, total, created_at, lines) "
            "VALUES ('#1101', 'cus_002', 'shipped', 'EUR', '89.90', ?, '[]')",
            (NOW.isoformat(),),
        )
    oliver = Chat(runtime, clock, "whatsapp:+15550100002", "twilio")
    assert "#1101" in await oliver.say("any news on order 1101?")


# -- privacy ------------------------------------------------------------------------------------------------


async def test_codes_and_lookups_are_exported_and_erased_with_the_customer(
    runtime: Runtime, clock: Clock, mailbox: MailboxNotifier, data_dir: Path
) -> None:
    chat = Chat(runtime, clock, "tg-lucia")
    await verify_by_code(chat, mailbox, LUCIA)
    await chat.say("where is order AF-1002?")
    export = await export_customer(runtime.store, "cus_001")
    assert len(export["data"]["verification_codes"]) == 1
    assert len(export["data"]["order_lookup_misses"]) == 1
    report = await erase_customer(runtime.store, "cus_001")
    assert report.rows_deleted["verification_codes"] == 1 and report.rows_deleted["order_lookup_misses"] == 1
    with sqlite3.connect(data_dir / "shopkeeper.db") as db:
        assert db.execute("SELECT COUNT(*) FROM verification_codes").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM order_lookup_misses").fetchone()[0] == 0
