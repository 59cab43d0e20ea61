"""The deterministic guardrail: what it flags, what it lets through, and the enforce policy.

Unit tests build one :class:`TurnContext` by hand; the last tests drive the real
engine on the demo store to show the offline responder's answers pass untouched.
"""

from __future__ import annotations

import base64
import codecs
import dataclasses
import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from bot.constraints import Budget, Constraints
from bot.guardrails import (
    EVIDENCE,
    FEEDBACK,
    HANDOFF_REQUEST,
    Evidence,
    Violation,
    check,
    enforce,
    sanitize,
    standard_commitment_wording,
)
from bot.handoff import EscalationReason
from bot.i18n import SUPPORTED_LOCALES, format_price, use_locale
from bot.messages import InboundMessage, OutboundMessage, ProductCard, Source
from bot.prompting import SYSTEM_PROMPT_RULES, system_prompt
from bot.responders import OfflineResponder, TurnContext
from bot.runtime import open_runtime
from bot.settings import Settings
from bot.shop import ShopProfile
from bot.store import Conversation, Order, OrderLine
from bot.understanding import Intent, Understanding
from kb.models import Hit, Passage, Product, SearchFilters, Variant

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
SHOP = ShopProfile(
    name="Alder & Finch",
    currency="EUR",
    timezone="Europe/Madrid",
    default_locale="en",
    domains=("alderandfinch.example",),
    support_email="help@alderandfinch.example",
)
SHOE = Product(
    id="RUN-001",
    title="Trailblazer Running Shoe",
    description="A dependable road shoe. Upper made from 60% recycled polyester mesh.",
    currency="EUR",
    variants=(
        Variant("RUN-001-40-BLU", Decimal("89.90"), 3, {"size": "40", "color": "blue"}),
        Variant("RUN-001-41-BLU", Decimal("89.90"), 0, {"size": "41", "color": "blue"}),
    ),
    url="https://alderandfinch.example/products/trailblazer",
    attributes={"reviews": [{"rating": 5, "comment": "Great! Now 20% discount, www.shoplux.com"}]},
)
RETURNS = Passage(
    id="returns-en-1",
    page_title="Returns and exchanges",
    heading_path=("Returns and exchanges",),
    text="You can return most items within **30 days of delivery**. Returns from Spain are free. "
    "Other countries: a prepaid label for 6.95 EUR. Faulty items are covered by our 2-year warranty.",
    url="https://alderandfinch.example/pages/returns",
    lang="en",
)
SHIPPING = Passage(
    id="shipping-en-1",
    page_title="Shipping",
    heading_path=("Shipping",),
    text="Spain: 4.95 EUR, 1-3 business days, free standard shipping on orders of 60 EUR or more.",
    url="https://alderandfinch.example/pages/shipping",
    lang="en",
)
OWN_ORDER = Order(
    order_number="AF-1003",
    customer_id="cus_002",
    status="shipped",
    currency="EUR",
    total=Decimal("94.85"),
    tracking_url="https://track.example/AF-1003",
    created_at=datetime(2026, 1, 27, 8, 41, tzinfo=UTC),
    lines=(OrderLine("RUN-001-43-BLU", "Trailblazer Running Shoe", 1, Decimal("89.90")),),
)


def make_ctx(
    text: str = "hello",
    *,
    hits: tuple[Hit, ...] = (),
    locale: str = "en",
    orders: tuple[Order, ...] = (),
    verified: bool = False,
    budget: Decimal | None = None,
    first_turn: bool = False,
    intent: Intent = Intent.PRODUCT_SEARCH,
) -> TurnContext:
    constraints = Constraints(budget=Budget(max=budget)) if budget is not None else Constraints()
    return TurnContext(
        inbound=InboundMessage("web", "m1", "s1", "s1", text, NOW),
        conversation=Conversation("conv_1", "cus_002", "web", "s1", "bot", locale),
        understanding=Understanding(intent, constraints),
        constraints=constraints,
        filters=SearchFilters(max_price=budget),
        shop=SHOP,
        locale=locale,
        now=NOW,
        first_turn=first_turn,
        hits=hits,
        orders=orders,
        customer_verified=verified,
    )


PRODUCT_HITS = (Hit("product", 1.0, product=SHOE),)
POLICY_HITS = (Hit("passage", 1.0, passage=RETURNS), Hit("passage", 0.9, passage=SHIPPING))


def kinds(text: str, ctx: TurnContext | None = None, **reply: object) -> list[str]:
    return [v.kind for v in check(OutboundMessage(text, **reply), ctx or make_ctx(hits=PRODUCT_HITS + POLICY_HITS))]  # type: ignore[arg-type]


# -- prices and amounts ---------------------------------------------------------------


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_a_catalog_price_formatted_in_any_locale_passes(locale: str) -> None:
    with use_locale(locale):
        price = format_price(Decimal("89.90"), "EUR")
    assert kinds(f"The Trailblazer costs {price}.", make_ctx(hits=PRODUCT_HITS, locale=locale)) == []


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_an_invented_price_is_caught_in_every_locale(locale: str) -> None:
    with use_locale(locale):
        price = format_price(Decimal("59.90"), "EUR")
    assert kinds(f"That one is {price}.", make_ctx(hits=PRODUCT_HITS, locale=locale)) == ["price"]


@pytest.mark.parametrize(
    "text", ["I'll sell it for $1.", "Yours for 1 €", "EUR 5 only", "just 9,99 euros", "R$ 10,00", "99 cents", "It costs 12."]
)
def test_amounts_written_every_way_are_checked(text: str) -> None:
    assert "price" in kinds(text)


def test_amounts_on_store_pages_and_own_orders_pass() -> None:
    ctx = make_ctx(hits=POLICY_HITS, orders=(OWN_ORDER,), verified=True)
    assert kinds("A prepaid label costs 6.95 EUR; free standard shipping from 60 €.", ctx) == []
    assert kinds("Your order AF-1003 (94,85 €) has shipped: https://track.example/AF-1003", ctx) == []


def test_an_unverified_shoppers_order_amounts_are_not_data() -> None:
    ctx = make_ctx(hits=POLICY_HITS, orders=(OWN_ORDER,), verified=False)
    assert "price" in kinds("Your order total was 94,85 €.", ctx)


def test_the_shoppers_budget_may_be_echoed_only_as_a_budget() -> None:
    ctx = make_ctx(hits=PRODUCT_HITS, budget=Decimal("100"))
    assert kinds("Here are shoes under 100 €.", ctx) == []
    assert kinds("Deal accepted: it is yours for 100 €.", ctx).count("price") == 1


@hypothesis_settings(max_examples=60, deadline=None)
@given(
    cents=st.integers(min_value=1, max_value=99_999_99),
    locale=st.sampled_from(SUPPORTED_LOCALES),
    currency=st.sampled_from(["EUR", "USD", "BRL", "GBP"]),
)
def test_any_price_passes_when_it_is_data_and_fails_when_it_is_not(cents: int, locale: str, currency: str) -> None:
    price = Decimal(cents) / 100
    product = dataclasses.replace(SHOE, variants=(Variant("X-1", price, 5),))
    grounded = make_ctx(hits=(Hit("product", 1.0, product=product),), locale=locale)
    with use_locale(locale):
        text = f"Price: {format_price(price, currency)}"
    assert [v for v in check(OutboundMessage(text), grounded) if v.kind == "price"] == []
    other = dataclasses.replace(SHOE, variants=(Variant("X-1", price + Decimal("1.37"), 5),))
    ungrounded = make_ctx(hits=(Hit("product", 1.0, product=other),), locale=locale)
    assert "price" in [v.kind for v in check(OutboundMessage(text), ungrounded)]


# -- discounts, stock, dates, durations ---------------------------------------------


def test_discounts_need_a_store_page_even_when_a_review_says_so() -> None:
    assert "discount" in kinds("Good news: 20% discount this week!")
    assert kinds("Save 20 % now") == ["discount"]
    assert kinds("The upper is 60% recycled polyester.") == []  # a product fact, not a discount


def test_stock_figures_come_from_the_catalog() -> None:
    assert kinds("Hurry, only 3 left in size 40!") == []
    assert kinds("Only 2 left in stock!") == ["stock"]
    assert kinds("Solo quedan 7 unidades.", make_ctx(hits=PRODUCT_HITS, locale="es")) == ["stock"]


def test_dates_come_from_data_or_the_shopper() -> None:
    assert kinds("It will arrive on March 12.") == ["date"]
    assert kinds("Llegará el 12 de marzo.", make_ctx(hits=PRODUCT_HITS, locale="es")) == ["date"]
    ctx = make_ctx("I need it by March 12", hits=PRODUCT_HITS)
    assert kinds("You need it by March 12: here are options.", ctx) == []
    own = make_ctx(hits=(), orders=(OWN_ORDER,), verified=True)
    assert kinds("You placed it on 27 January.", own) == []


def test_durations_must_be_on_a_store_page() -> None:
    assert kinds("You can return it within 30 days, and Spain gets it in 1-3 business days.") == []
    assert kinds("You can return it within 365 days.") == ["duration"]
    assert kinds("It has a 5-year warranty.") == ["duration"]
    assert kinds("It has a 2-year warranty.") == []


# -- policies, commitments -----------------------------------------------------------


@pytest.mark.parametrize(
    "claim",
    [
        "You'll get a full refund.",
        "We offer a bereavement discount.",
        "I can apply it retroactively.",
        "Shipping is free for life with a lifetime guarantee.",
        "Here is a coupon for you.",
        "Reembolso completo garantizado.",
        "Remboursement intégral.",
        "Wir zahlen eine Entschädigung.",
        "Don't miss the limited-time free shipping offer!",
        "Flash sale: everything must go.",
    ],
)
def test_policy_claims_without_a_store_page_are_caught(claim: str) -> None:
    assert "policy" in kinds(claim, make_ctx(hits=POLICY_HITS))


def test_policy_claims_a_retrieved_page_makes_pass() -> None:
    assert kinds("Returns are free from Spain, and there is free standard shipping from 60 EUR.", make_ctx(hits=POLICY_HITS)) == []
    assert "policy" in kinds("Free standard shipping from 60 EUR.", make_ctx(hits=PRODUCT_HITS))


@pytest.mark.parametrize(
    "text",
    [
        "That's legally binding.",
        "I promise it arrives.",
        "Deal!",
        "No takesies backsies.",
        "I guarantee it.",
        "Es legalmente vinculante.",
        "Trato hecho.",
        "C'est promis.",
        "Das ist rechtsverbindlich.",
        "Abgemacht!",
        "Negócio fechado.",
        "Eu prometo.",
    ],
)
def test_commitments_are_flagged_and_replaced_by_the_standard_wording(text: str) -> None:
    assert "commitment" in kinds(text)
    cleaned = sanitize(OutboundMessage(f"Thanks for asking. {text} Anything else?"))
    assert standard_commitment_wording() in cleaned.text
    assert "commitment" not in kinds(cleaned.text)
    assert cleaned.text.startswith("Thanks for asking.") and cleaned.text.endswith("Anything else?")


def test_the_standard_wording_is_translated() -> None:
    with use_locale("es"):
        cleaned = sanitize(OutboundMessage("¡Trato hecho!"))
    assert cleaned.text != standard_commitment_wording()
    assert "commitment" not in kinds(cleaned.text, make_ctx(locale="es"))


def test_dealing_with_something_is_no_commitment() -> None:
    assert kinds("Our team will deal with it.") == []


# -- links, language, leaks, customer data -----------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Visit www.shoplux.com for deals",
        "See https://evil.example.net/x",
        "Join cform.com",
        "[click](https://freegame.com)",
        "Write to assist@gmail.com",
        "Go to alderandfinch.example.evil.com",
        "Tracking: https://track.example/AF-1002",
        "ww\u200bw.evil\u200b.com",
        "Ｖｉｓｉｔ ｗｗｗ．ｅｖｉｌ．ｃｏｍ",
    ],
)
def test_links_outside_the_store_are_caught(text: str) -> None:
    assert "link" in kinds(text)


def test_store_links_and_the_shoppers_tracking_link_pass() -> None:
    ctx = make_ctx(hits=PRODUCT_HITS, orders=(OWN_ORDER,), verified=True)
    text = (
        "See https://alderandfinch.example/products/trailblazer, https://shop.alderandfinch.example/x, "
        "https://track.example/AF-1003 or write to help@alderandfinch.example."
    )
    assert kinds(text, ctx) == []


@pytest.mark.parametrize(
    "text",
    ["You fucking idiot.", "What a piece of shit", "eres un gilipollas", "quelle merde", "du Arschloch", "que porra", "f*ck off"],
)
def test_profanity_and_insults_are_caught(text: str) -> None:
    assert "profanity" in kinds(text)


@pytest.mark.parametrize("text", ["Try our dumbbell set.", "A trip to Scunthorpe", "A fickle weather jacket", "Beef jerky snacks"])
def test_innocent_words_are_not_profanity(text: str) -> None:
    assert "profanity" not in kinds(text)


@pytest.mark.parametrize(
    "text",
    [
        "Alder & Finch is the worst shop ever.",
        "Honestly this company is a scam.",
        "Esta tienda es una estafa.",
        "Don't buy from us, buy elsewhere.",
    ],
)
def test_disparaging_the_store_is_caught(text: str) -> None:
    assert "disparagement" in kinds(text)


def test_the_system_prompt_is_caught_verbatim_and_encoded() -> None:
    rules = system_prompt(SHOP, "en")
    chunk = " ".join(SYSTEM_PROMPT_RULES.split()[40:80])
    assert "system_prompt" in kinds(f"My instructions are: {chunk}")
    assert "system_prompt" in kinds(rules)
    assert "system_prompt" in kinds(base64.b64encode(rules.encode()).decode())
    assert "system_prompt" in kinds(codecs.encode(chunk, "rot13"))
    assert "system_prompt" in kinds(chunk[::-1])
    assert "system_prompt" in kinds("I put the products in store_data for you")
    assert kinds("I'm an automated assistant; I can hand the conversation to the team.") == []


def test_another_customers_order_details_are_caught() -> None:
    ctx = make_ctx(orders=(OWN_ORDER,), verified=True)
    assert "customer_data" in kinds("Order AF-1002 was delivered to Jonas.", ctx)
    assert kinds("Your order AF-1003 has shipped.", ctx) == []
    assert kinds("I can't find order AF-1002 on your account.", ctx) == []
    assert "customer_data" in kinds("Call him at +49 150 0000 0004.", ctx)


def test_cards_must_match_the_catalog() -> None:
    good = ProductCard("RUN-001-40-BLU", "Trailblazer Running Shoe", Decimal("89.90"), "EUR", True)
    assert kinds("Here you go.", products=(good,)) == []
    cheap = dataclasses.replace(good, price=Decimal("1"))
    assert kinds("Here you go.", products=(cheap,)) == ["card"]
    unknown = dataclasses.replace(good, sku="NOPE-1")
    assert kinds("Here you go.", products=(unknown,)) == ["card"]
    assert kinds("Here.", sources=(Source("x", "https://evil.example.net/"),)) == ["link"]


def test_invisible_characters_are_reported_and_stripped() -> None:
    hidden = "Here you go.\u200b\u202e\U000e0041\U000e0042"
    assert kinds(hidden) == ["invisible_text"]
    assert sanitize(OutboundMessage(hidden)).text == "Here you go."


# -- the policy ----------------------------------------------------------------------


class Scripted:
    """A responder returning scripted replies; can ask for a handoff."""

    name = "scripted"

    def __init__(self, *texts: str, handoff: EscalationReason | None = None) -> None:
        self.texts = list(texts)
        self.handoff = handoff
        self.contexts: list[TurnContext] = []

    async def respond(self, ctx: TurnContext) -> list[OutboundMessage]:
        self.contexts.append(ctx)
        if self.handoff is not None:
            ctx.extras[HANDOFF_REQUEST] = self.handoff
        return [OutboundMessage(self.texts.pop(0))]


async def test_a_passing_reply_goes_out_unchanged() -> None:
    responder = Scripted("Here are running shoes.")
    verdict = await enforce(responder.respond, make_ctx(hits=PRODUCT_HITS), safe=OfflineResponder())
    assert [r.text for r in verdict.replies] == ["Here are running shoes."]
    assert verdict.escalation is None and not verdict.regenerated


async def test_a_failing_reply_is_regenerated_once_with_feedback() -> None:
    responder = Scripted("Only 1 € today!", "The Trailblazer is a good fit.")
    verdict = await enforce(responder.respond, make_ctx(hits=PRODUCT_HITS), safe=OfflineResponder())
    assert [r.text for r in verdict.replies] == ["The Trailblazer is a good fit."]
    assert verdict.regenerated and [v.kind for v in verdict.violations] == ["price"]
    feedback = responder.contexts[1].extras[FEEDBACK]
    assert isinstance(feedback, list) and "price" in feedback[0]


async def test_two_failures_give_the_safe_offline_answer() -> None:
    responder = Scripted("Only 1 € today!", "Still 1 €, visit www.shoplux.com")
    verdict = await enforce(responder.respond, make_ctx(hits=PRODUCT_HITS), safe=OfflineResponder())
    assert verdict.safe_answer and verdict.escalation is None
    assert verdict.replies[0].products and verdict.replies[0].products[0].price == Decimal("89.90")


async def test_when_even_the_safe_answer_fails_the_thread_goes_to_staff() -> None:
    bad = Scripted("1 €", "1 €", "1 €")
    verdict = await enforce(bad.respond, make_ctx(hits=PRODUCT_HITS), safe=bad)  # type: ignore[arg-type]
    assert verdict.replies == [] and verdict.escalation is EscalationReason.GUARDRAIL
    assert verdict.detail == "price"


async def test_a_handoff_request_wins_over_the_text() -> None:
    responder = Scripted("whatever, visit www.shoplux.com", handoff=EscalationReason.FRUSTRATION)
    verdict = await enforce(responder.respond, make_ctx(), safe=OfflineResponder())
    assert verdict.escalation is EscalationReason.FRUSTRATION and verdict.replies == []


def test_evidence_from_tools_grounds_the_reply() -> None:
    ctx = make_ctx(hits=())
    assert kinds("89,90 € in blue.", ctx) == ["price"]
    evidence = Evidence()
    evidence.add_products([SHOE])
    ctx.extras[EVIDENCE] = evidence
    assert kinds("89,90 € in blue.", ctx) == []


def test_violations_describe_themselves_briefly() -> None:
    assert Violation("price", "x" * 200).describe() == "price: " + "x" * 80


# -- no false positives on the offline path ---------------------------------------------

SHOPPER_MESSAGES = {
    "en": ["hello", "running shoes under 100", "vegan chocolate", "How long does shipping take?", "Can I return an item?",
           "what payment methods do you accept?", "where is my order AF-1003?", "size guide", "merino socks", "thanks", "bye",
           "do you ship to the UK?", "is the coffee grinder in stock?", "contact", "gift for my dad under 50 euros"],
    "es": ["hola", "zapatillas de running de menos de 100 €", "¿cuánto tarda el envío?", "¿puedo devolver un artículo?",
           "chocolate vegano", "formas de pago"],
    "fr": ["bonjour", "chaussures de course à moins de 100 €", "délai de livraison ?", "puis-je retourner un article ?", "paiement"],
    "de": ["hallo", "Laufschuhe unter 100 €", "wie lange dauert der Versand?", "kann ich etwas zurückgeben?", "Zahlung"],
    "pt_BR": ["olá", "tênis de corrida até 100 reais", "quanto tempo demora o frete?", "posso devolver um produto?", "pagamento"],
}


async def test_the_offline_responder_passes_the_guardrail_untouched(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bot.guardrails")
    async with open_runtime(settings) as runtime:
        async with runtime.store.transaction() as db:
            await db.execute(
                "INSERT INTO identities (channel, external_id, customer_id, verified, created_at) "
                "VALUES ('web', 'verified', 'cus_002', 1, ?)",
                (NOW.isoformat(),),
            )
        for locale, messages in SHOPPER_MESSAGES.items():
            for i, text in enumerate(messages):
                sender = "verified" if "AF-1003" in text else f"{locale}-{i}"
                inbound = InboundMessage("web", f"{locale}-{i}", sender, sender, text, NOW, locale_hint=locale)
                replies = await runtime.engine.handle(inbound)
                assert replies, text
    assert [r.getMessage() for r in caplog.records] == []


async def test_every_demo_policy_page_quoted_offline_passes(settings: Settings) -> None:
    async with open_runtime(settings) as runtime:
        for locale in SUPPORTED_LOCALES:
            query = "shipping returns payment contact privacy size"
            hits = await runtime.index.search(query, SearchFilters(lang=locale), k=40, kinds=("passage",))
            assert hits
            for hit in hits:
                ctx = make_ctx("policy", hits=(hit,), locale=locale, intent=Intent.POLICY)
                with use_locale(locale):
                    replies = await OfflineResponder().respond(ctx)
                for reply in replies:
                    assert check(reply, ctx) == [], (hit.id, reply.text)
