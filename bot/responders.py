"""Step 7 of a turn: turning what was understood and retrieved into replies.

A :class:`Responder` gets one :class:`TurnContext` (everything the engine
knows for this turn: the message, intent, constraints, retrieved hits, the
shopper's orders) and returns the replies. Every price, stock figure, policy
sentence and link in a reply comes from that context, never from the
responder's imagination. :class:`OfflineResponder` is the template responder
used when no language model is configured; it is also the fallback of any
model-backed responder.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from bot.constraints import Constraints
from bot.i18n import _, format_price, join_list, ngettext
from bot.messages import Button, InboundMessage, OutboundMessage, ProductCard, Source
from bot.order_lookup import order_key
from bot.personalization import broken_constraints, fit_reason
from bot.shop import ShopProfile
from bot.store import Conversation, Order
from bot.understanding import Intent, PolicyTopic, Understanding
from kb.models import Hit, Passage, Product, SearchFilters
from kb.product_lines import ImpliedBrand

EXCERPT_CHARS = 420
PURCHASE_REASONS = "purchase_reasons"  # ctx.extras key: product id -> why it fits the shopper's prior orders
NOT_CARRIED = "not_carried"  # ctx.extras key: NotCarried, the shopper asked for a kind of product the store has none of


@dataclass(frozen=True, slots=True)
class NotCarried:
    """A kind of product the store has none of (:meth:`kb.index.BaseIndex.missing_kind`).

    ``asked_for`` is the shopper's own words for it, ``categories`` the store's
    category names as its catalog writes them (what it does sell), most products first.
    """

    asked_for: str
    categories: tuple[str, ...] = ()


def not_carried_text(missing: NotCarried) -> str:
    """Saying that the store does not carry it, and what it does sell (from the catalog, nothing invented)."""
    if missing.categories:
        return _(
            "Sorry, we don't carry anything like \"{item}\". What we sell: {categories}. "
            "Can I help you find something there?",
            item=missing.asked_for,
            categories=join_list(list(missing.categories)),
        )
    return _("Sorry, we don't carry anything like \"{item}\".", item=missing.asked_for)


@dataclass(frozen=True, slots=True)
class TurnContext:
    """Everything a responder may use to answer one message."""

    inbound: InboundMessage
    conversation: Conversation
    understanding: Understanding
    constraints: Constraints  # the conversation's constraints after this message
    filters: SearchFilters
    shop: ShopProfile
    locale: str
    now: datetime
    first_turn: bool = False
    hits: tuple[Hit, ...] = ()
    near_misses: tuple[Hit, ...] = ()  # closest products when nothing satisfies every filter
    orders: tuple[Order, ...] = ()
    customer_verified: bool = False
    unanswered_streak: int = 0
    extras: dict[str, object] = field(default_factory=dict)
    implied_brand: ImpliedBrand | None = None  # the brand a product-line name implied ("iPhone" → Apple), filtered on


class Responder(Protocol):
    """Answers one turn. Implementations must not invent facts absent from the context."""

    name: str

    async def respond(self, ctx: TurnContext) -> list[OutboundMessage]: ...


def disclosure(shop: ShopProfile) -> str:
    return _("I'm the automated shop assistant of {store}.", store=shop.name)


def product_card(
    product: Product, constraints: Constraints, currency: str, filters: SearchFilters, implied: ImpliedBrand | None = None
) -> ProductCard:
    """A card whose price and stock come from the catalog, for the variant that fits best."""
    variants = list(product.variants)
    if filters.sizes:  # the shopper's size, even when it is sold out: never another size's price and stock
        sized = [v for v in variants if v.options.get("size", "").upper() in {s.upper() for s in filters.sizes}]
        variants = sized or variants
    variants = [v for v in variants if v.in_stock] or variants
    if filters.max_price is not None:
        affordable = [v for v in variants if v.price <= filters.max_price]
        variants = affordable or variants
    variant = min(variants, key=lambda v: v.price)
    return ProductCard(
        sku=variant.sku,
        title=product.title,
        price=variant.price,
        currency=currency,
        in_stock=variant.in_stock,
        url=product.url,
        image=product.image,
        price_text=format_price(variant.price, currency),
        reason=fit_reason(product, constraints, currency, implied),
    )


def with_history_reason(card: ProductCard, ctx: TurnContext, product_id: str) -> ProductCard:
    """The card with the purchase-history reason for its product (verified customers), after the constraint ones."""
    reasons = ctx.extras.get(PURCHASE_REASONS)
    extra = reasons.get(product_id, "") if isinstance(reasons, dict) else ""
    return dataclasses.replace(card, reason=" · ".join(r for r in (card.reason, extra) if r)) if extra else card


def excerpt(passage: Passage, limit: int = EXCERPT_CHARS) -> str:
    """The passage's opening lines up to about ``limit`` characters, cut at a line or sentence end."""
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in passage.text.splitlines()]
    kept: list[str] = []
    size = 0
    for line in (ln for ln in lines if ln):
        if size + len(line) > limit and kept:
            break
        if size + len(line) > limit:
            cut = line[:limit]
            boundary = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
            line = cut[: boundary + 1] if boundary > limit // 3 else cut[: cut.rfind(" ")] + " …"
        kept.append(line)
        size += len(line)
    return "\n".join(kept)


class OfflineResponder:
    """Template answers from retrieved data, in the shopper's language."""

    name = "offline"

    async def respond(self, ctx: TurnContext) -> list[OutboundMessage]:
        handler = {
            Intent.GREETING: self._greeting,
            Intent.HELP: self._help,
            Intent.PRODUCT_SEARCH: self._products,
            Intent.POLICY: self._policy,
            Intent.ORDER_STATUS: self._order_status,
            Intent.THANKS: self._thanks,
            Intent.GOODBYE: self._goodbye,
        }.get(ctx.understanding.intent, self._clarify)
        replies = handler(ctx)
        if ctx.first_turn and ctx.understanding.intent is not Intent.GREETING and replies:
            first = replies[0]
            replies[0] = OutboundMessage(
                text=disclosure(ctx.shop) + " " + first.text,
                buttons=first.buttons,
                products=first.products,
                sources=first.sources,
            )
        return replies

    def _menu(self) -> tuple[Button, ...]:
        return (
            Button(_("Shipping"), "/topic shipping"),
            Button(_("Returns"), "/topic returns"),
            Button(_("Talk to a person"), "/human"),
        )

    def _greeting(self, ctx: TurnContext) -> list[OutboundMessage]:
        text = _(
            "Hi! {disclosure} I can help you find products, answer questions about shipping, returns and payment, "
            "and hand you over to our team. What are you looking for?",
            disclosure=disclosure(ctx.shop),
        )
        return [OutboundMessage(text=text, buttons=self._menu())]

    def _help(self, ctx: TurnContext) -> list[OutboundMessage]:
        text = _(
            "{disclosure} You can ask me things like \"running shoes under 100\", \"vegan snacks\", "
            "\"how long does shipping take?\" or \"can I return an item?\". "
            "Say \"talk to a person\" at any time to reach our team, or \"/language fr\" to change the language.",
            disclosure=disclosure(ctx.shop),
        )
        return [OutboundMessage(text=text, buttons=self._menu())]

    def _products(self, ctx: TurnContext) -> list[OutboundMessage]:
        products = [h.product for h in ctx.hits if h.product is not None]
        currency = ctx.shop.currency
        if products:
            found = tuple(
                with_history_reason(product_card(p, ctx.constraints, currency, ctx.filters, ctx.implied_brand), ctx, p.id)
                for p in products
            )
            text = ngettext("Here is what I found in our catalog:", "Here are {n} options from our catalog:", len(found))
            if any(not card.in_stock for card in found):
                text += " " + _("Items marked out of stock can't be ordered right now.")
            sources = tuple(Source(card.title, card.url) for card in found)
            return [OutboundMessage(text=text, products=found, sources=sources)]
        near = [h.product for h in ctx.near_misses if h.product is not None]
        if near:
            lines = [_("Nothing in our catalog matches everything you asked for. The closest options:")]
            cards = []
            for product in near:
                card = product_card(product, ctx.constraints, currency, SearchFilters())
                why = ", ".join(broken_constraints(product, ctx.filters, currency, ctx.implied_brand))
                cards.append(
                    ProductCard(card.sku, card.title, card.price, card.currency, card.in_stock, card.url, card.image,
                                card.price_text, why)
                )
            sources = tuple(Source(c.title, c.url) for c in cards)
            return [OutboundMessage(text="\n".join(lines), products=tuple(cards), sources=sources)]
        missing = ctx.extras.get(NOT_CARRIED)
        if isinstance(missing, NotCarried):
            return [OutboundMessage(text=not_carried_text(missing), buttons=self._menu())]
        return self._clarify(ctx)

    def _policy(self, ctx: TurnContext) -> list[OutboundMessage]:
        passages = [h.passage for h in ctx.hits if h.passage is not None]
        if not passages:
            return [
                OutboundMessage(
                    text=_(
                        "I don't have a written answer to that in our store pages, and I won't guess. "
                        "Would you like me to pass your question to our team?"
                    ),
                    buttons=(Button(_("Talk to a person"), "/human"),),
                )
            ]
        best = passages[0]
        quoted = "\n".join("> " + line for line in excerpt(best).splitlines())
        text = _("From our \"{title}\" page:", title=best.title) + "\n" + quoted
        sources = [Source(best.title, best.url)]
        if ctx.understanding.policy_topic is PolicyTopic.CONTACT and ctx.shop.support_email:
            text += "\n" + _("You can also write to {email}.", email=ctx.shop.support_email)
        return [OutboundMessage(text=text, sources=tuple(sources))]

    def _order_status(self, ctx: TurnContext) -> list[OutboundMessage]:
        if not ctx.customer_verified:
            return [
                OutboundMessage(
                    text=_(
                        "For your privacy I can only share order details with the verified account holder, "
                        "and this chat isn't linked to an account yet. Our team can help you with your order."
                    ),
                    buttons=(Button(_("Talk to a person"), "/human"),),
                )
            ]
        orders = list(ctx.orders)
        wanted = ctx.understanding.order_number
        if wanted:
            orders = [o for o in orders if order_key(o.order_number) == order_key(wanted)]
            if not orders:
                return [OutboundMessage(text=_("I can't find an order with that number on your account."))]
        if not orders:
            return [OutboundMessage(text=_("I don't see any orders on your account yet."))]
        order = orders[0]
        status = {
            "processing": _("is being prepared"),
            "shipped": _("has shipped"),
            "delivered": _("was delivered"),
            "cancelled": _("was cancelled"),
        }.get(order.status, order.status)
        text = _(
            "Your order {number} ({total}) {status}.",
            number=order.order_number,
            total=format_price(order.total, order.currency),
            status=status,
        )
        sources: tuple[Source, ...] = ()
        if order.tracking_url:
            text += " " + _("Tracking: {url}", url=order.tracking_url)
            sources = (Source(_("Tracking"), order.tracking_url),)
        return [OutboundMessage(text=text, sources=sources)]

    def _thanks(self, ctx: TurnContext) -> list[OutboundMessage]:
        return [OutboundMessage(text=_("You're welcome! Anything else I can help with?"))]

    def _goodbye(self, ctx: TurnContext) -> list[OutboundMessage]:
        return [OutboundMessage(text=_("Thanks for stopping by {store}. Bye!", store=ctx.shop.name))]

    def _clarify(self, ctx: TurnContext) -> list[OutboundMessage]:
        if ctx.understanding.intent is Intent.PRODUCT_SEARCH:
            text = _(
                "I couldn't find anything like that in our catalog. Could you tell me more: "
                "the kind of product, a size, a colour or a budget?"
            )
        else:
            text = _(
                "I'm not sure I understood. Are you looking for a product, "
                "or do you have a question about an order, shipping or returns?"
            )
        return [OutboundMessage(text=text, buttons=self._menu())]
