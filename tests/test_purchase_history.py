"""Prior orders shape suggestions: the purchase profile, re-ranking after hard filters, reasons,
and two customers on two channels who never see each other's orders or their effect.

Demo customers: cus_001 Lucía bought the Sierra Mid hiking boot (HIK-001) in size 38
in January 2026 (AF-1001); cus_002 Oliver bought the same boot in size 43 in October
2026 (AF-1022), and running shoes in 43. Co-purchase pairs need at least two orders
of other customers, so the tests add them through the order importer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bot.claude import ClaudeResponder
from bot.i18n import use_locale
from bot.messages import OutboundMessage
from bot.order_import import import_orders, parse_orders
from bot.purchase_history import (
    CO_PURCHASE_MIN_ORDERS,
    CoPurchase,
    Purchase,
    PurchaseHistory,
    load_purchase_history,
    rerank,
)
from bot.runtime import Runtime, open_runtime
from bot.settings import Settings
from bot.tools import ToolBox
from kb.models import Hit, Product, SearchFilters, Variant
from tests.fakes.anthropic_api import FakeMessagesAPI, reply, tool_call
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


def other_customers_orders(pairs: int, *, first: str = "HIK-001-40-BRN", second: str = "BAG-001-GRN") -> str:
    """``pairs`` orders of new customers, each buying ``first`` and ``second`` together."""
    rows = ["order_number,email,created_at,status,sku,title,quantity,unit_price"]
    for n in range(pairs):
        rows.append(f"X-{n},other{n}@example.org,2026-0{n + 2}-10T10:00:00+01:00,delivered,{first},Boot,1,139.00")
        rows.append(f"X-{n},,,,{second},Daypack,1,79.90")
    return "\n".join(rows) + "\n"


async def add_orders(runtime: Runtime, text: str) -> None:
    parsed = parse_orders(text, name="test.csv", timezone="Europe/Madrid")
    assert not parsed.errors
    await import_orders(runtime.store, runtime.index, parsed, source="test.csv", default_currency="EUR")


def everything(replies: list[OutboundMessage]) -> str:
    return "\n".join([r.text for r in replies] + [f"{c.sku} {c.title} {c.reason}" for r in replies for c in r.products])


# -- the profile ----------------------------------------------------------------------------------------------


async def test_the_profile_reads_sizes_brands_prices_and_owned_durables(runtime: Runtime) -> None:
    lucia = await load_purchase_history(runtime.store, runtime.index, "cus_001")
    assert lucia.sizes_by_category["hiking boots"] == "38"
    assert {"HIK-001", "KIT-003"} <= set(lucia.owned_durables)
    assert "COF-001" not in lucia.owned_durables  # coffee is used up, not owned
    assert lucia.brand_affinity["finch roasters"] > lucia.brand_affinity["alder outdoor"]
    assert lucia.price_band is not None and lucia.price_band[0] <= lucia.price_band[1]
    oliver = await load_purchase_history(runtime.store, runtime.index, "cus_002")
    assert oliver.sizes_by_category == {"running shoes": "43", "socks": "L", "hiking boots": "43"}
    assert not (await load_purchase_history(runtime.store, runtime.index, "cus_nobody")).purchases


async def test_co_purchases_count_other_customers_orders_only(runtime: Runtime) -> None:
    await add_orders(runtime, other_customers_orders(CO_PURCHASE_MIN_ORDERS - 1))
    lucia = await load_purchase_history(runtime.store, runtime.index, "cus_001")
    assert "BAG-001" not in lucia.co_purchases  # one other basket is not a pattern (and would mirror one person)
    await add_orders(runtime, other_customers_orders(CO_PURCHASE_MIN_ORDERS))
    lucia = await load_purchase_history(runtime.store, runtime.index, "cus_001")
    pairing = lucia.co_purchases["BAG-001"]
    assert pairing.goes_with.product_id == "HIK-001" and pairing.orders == CO_PURCHASE_MIN_ORDERS
    # her own orders never count as "bought together by other customers"
    own = "\n".join(
        f"L-{n},{LUCIA},2026-0{n + 2}-01T10:00:00+01:00,delivered,HIK-001-38-BRN,Boot,1,139.00\nL-{n},,,,BAG-005,Tote,1,49.90"
        for n in range(3)
    )
    await add_orders(runtime, "order_number,email,created_at,status,sku,title,quantity,unit_price\n" + own + "\n")
    lucia = await load_purchase_history(runtime.store, runtime.index, "cus_001")
    assert "BAG-005" not in lucia.co_purchases


# -- re-ranking ------------------------------------------------------------------------------------------------


def product(pid: str, *, category: str = "Bags", brand: str = "Other", price: str = "50", sizes: tuple[str, ...] = ()) -> Product:
    variants = tuple(Variant(f"{pid}-{s}", Decimal(price), 5, {"size": s}) for s in sizes) or (Variant(pid, Decimal(price), 5),)
    return Product(pid, pid.title(), "", "EUR", variants, category=category, brand=brand, attributes={"durable": True})


def bought(pid: str, month: int, *, category: str = "Bags", brand: str = "Other", size: str | None = None) -> Purchase:
    return Purchase(pid, f"{pid} item", category, brand, size, Decimal("100"), datetime(2026, month, 3, tzinfo=UTC), True)


def test_rerank_drops_owned_durables_and_lifts_what_fits_without_adding_anything() -> None:
    boots = bought("boots", 3, category="Hiking boots", size="38")
    history = PurchaseHistory(
        purchases=(boots,),
        sizes_by_category={"hiking boots": "38"},
        brand_affinity={"alder": 1.0},
        category_affinity={"hiking boots": 1.0},
        owned_durables={"boots": boots},
        co_purchases={"pack": CoPurchase(boots, 3)},
    )
    hits = [
        Hit("product", 0.9, product=product("boots", category="Hiking boots", sizes=("38",))),
        Hit("product", 0.8, product=product("tote")),
        Hit("product", 0.7, product=product("hiker", category="Hiking boots", brand="Alder", sizes=("38", "39"))),
        Hit("product", 0.6, product=product("pack")),
    ]
    with use_locale("en"):
        ranked = rerank(hits, history, NOW)
    assert [s.hit.id for s in ranked] == ["hiker", "pack", "tote"]
    reasons = {s.hit.id: s.reason for s in ranked}
    assert reasons["pack"] == "goes with the boots item you bought in March"
    assert reasons["hiker"] == "in your usual size 38 · from Alder, a brand you've bought before"
    assert reasons["tote"] == ""
    with use_locale("es"):
        assert rerank(hits, history, NOW)[1].reason == "combina con boots item, que compraste en marzo"


def test_when_every_hit_is_already_owned_they_are_kept_and_say_so() -> None:
    boots = bought("boots", 1)
    history = PurchaseHistory(purchases=(boots,), owned_durables={"boots": boots})
    with use_locale("de"):
        ranked = rerank([Hit("product", 1.0, product=product("boots"))], history, datetime(2027, 2, 1, tzinfo=UTC))
    assert [(s.hit.id, s.reason) for s in ranked] == [("boots", "du hast es im Januar 2026 gekauft")]


async def test_preferences_never_override_hard_filters(runtime: Runtime, clock: Clock) -> None:
    # Oliver's history favours Finch Athletic running shoes around 90 €; he asks for under 70
    oliver = Chat(runtime, clock, "whatsapp:+15550100002", "twilio", locale="en")
    cards = await oliver.cards("running shoes under 70")
    assert cards and all(card.price <= Decimal("70") for card in cards)
    filtered = await runtime.index.search("running shoes", SearchFilters(max_price=Decimal("70")), k=20, kinds=("product",))
    allowed = {v.sku for h in filtered if h.product is not None for v in h.product.variants}
    assert {card.sku for card in cards} <= allowed


# -- two customers, two channels ---------------------------------------------------------------------------------


async def test_two_customers_on_two_channels_never_see_each_others_orders_or_their_effect(
    runtime: Runtime, clock: Clock, mailbox: MailboxNotifier
) -> None:
    await add_orders(runtime, other_customers_orders(CO_PURCHASE_MIN_ORDERS))
    lucia = Chat(runtime, clock, "tg-lucia", "telegram", locale="en")
    await lucia.replies("where is my order?")
    await lucia.replies(LUCIA)
    assert "AF-1027" in everything(await lucia.replies(mailbox.last_code_for(LUCIA)))  # verified: her latest order
    oliver = Chat(runtime, clock, "whatsapp:+15550100002", "twilio", locale="en")  # verified by his number

    # order numbers: each sees only their own
    assert "AF-1001" in everything(await lucia.replies("where is order AF-1001?"))
    for number, total in (("AF-1003", "109"), ("AF-1022", "229")):
        answer = everything(await lucia.replies(f"where is order {number}?"))
        assert "can't find an order" in answer and number not in answer and total not in answer
    assert "AF-1022" in everything(await oliver.replies("where is order AF-1022?"))
    answer = everything(await oliver.replies("where is order AF-1001?"))
    assert "can't find an order" in answer and "AF-1001" not in answer and "176" not in answer

    # suggestions: shaped by their own orders only
    lucia_bags = {c.sku.split("-")[0] + "-" + c.sku.split("-")[1]: c.reason for c in await lucia.cards("daypack")}
    oliver_bags = {c.sku.split("-")[0] + "-" + c.sku.split("-")[1]: c.reason for c in await oliver.cards("daypack")}
    assert "you bought in January" in lucia_bags["BAG-001"] and "October" not in " ".join(lucia_bags.values())
    assert "you bought in October" in oliver_bags["BAG-001"] and "January" not in " ".join(oliver_bags.values())

    lucia_boots = await lucia.cards("hiking boots")
    oliver_boots = await oliver.cards("hiking boots")
    assert not any(c.sku.startswith("HIK-001") for c in lucia_boots + oliver_boots)  # both own that boot
    lucia_reasons, oliver_reasons = " ".join(c.reason for c in lucia_boots), " ".join(c.reason for c in oliver_boots)
    assert "in your usual size 38" in lucia_reasons and "size 43" not in lucia_reasons
    assert "in your usual size 43" in oliver_reasons and "size 38" not in oliver_reasons

    # a third, unverified shopper on the web gets no purchase-based reasons at all
    stranger = Chat(runtime, clock, "web-stranger", "web", locale="en")
    for card in await stranger.cards("hiking boots") + await stranger.cards("daypack"):
        assert "bought" not in card.reason and "usual" not in card.reason


async def test_claudes_cards_carry_the_same_purchase_reasons(runtime: Runtime, clock: Clock) -> None:
    await add_orders(runtime, other_customers_orders(CO_PURCHASE_MIN_ORDERS))
    fake = FakeMessagesAPI([
        tool_call("search_catalog", {"query": "daypack"}),
        reply("The Collada 22 is a good match.", product_ids=["BAG-001"]),
    ])
    client = fake.client()
    runtime.engine.responder = ClaudeResponder(client, model="claude-test", max_tokens=512, tools=ToolBox(runtime.index),
                                               store=runtime.store, turn_timeout=10.0)
    try:
        oliver = Chat(runtime, clock, "whatsapp:+15550100002", "twilio", locale="en")
        cards = await oliver.cards("daypack")
    finally:
        await client.close()
    assert [c.sku.split("-")[1] for c in cards] == ["001"]
    assert "goes with the Sierra Mid Waterproof Hiking Boot you bought in October" in cards[0].reason
