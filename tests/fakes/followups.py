"""Stand-ins for follow-up tests: a movable clock, a recording channel, a tiny catalog, shopper set-up.

Time is faked, never slept: :class:`Clock` is passed to the store, the dispatcher
and the outbox sender, and tests move it across quiet hours, caps, windows and
restarts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import ClassVar

from bot.consent import ConsentLedger, Evidence, Purpose
from bot.messages import InboundMessage, OutboundMessage
from bot.store import Store
from channels.base import BaseChannel, ParsedWebhook, SendError, SendPolicy, SentMessage, WebhookRequest
from kb.assortment import Assortment
from kb.index import ALL_KINDS, BaseIndex, UpsertStats
from kb.models import Hit, HitKind, Passage, Product, ProductName, SearchFilters, Variant


class Clock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def set(self, now: datetime) -> datetime:
        self.now = now
        return now


@dataclass
class Sent:
    chat_id: str
    text: str
    at: datetime
    message: OutboundMessage | None = None


class RecordingChannel(BaseChannel):
    """A platform adapter that records sends (and can fail them) instead of calling an API."""

    name: ClassVar[str] = "telegram"

    def __init__(self, name: str = "telegram", *, window: timedelta | None = None, clock: Clock | None = None) -> None:
        self.name = name  # type: ignore[misc]
        self.policy = SendPolicy(reply_window=window, messages_per_second=0)  # type: ignore[misc]
        self.sent: list[Sent] = []
        self.failures: list[SendError] = []
        self._clock = clock

    def verify(self, request: WebhookRequest) -> None:
        raise NotImplementedError

    def parse(self, request: WebhookRequest) -> ParsedWebhook:
        raise NotImplementedError

    async def send(self, chat_id: str, message: OutboundMessage, *, staff_reply: bool = False) -> SentMessage:
        if self.failures:
            raise self.failures.pop(0)
        at = self._clock() if self._clock else datetime.min.replace(tzinfo=UTC)
        self.sent.append(Sent(chat_id, message.text, at, message))
        return SentMessage((f"{self.name}-{len(self.sent)}",))


@dataclass
class TemplateRecorder:
    """A template sender (WhatsApp outside the window) that records what it sent."""

    sent: list[tuple[str, str, str]] = field(default_factory=list)

    async def __call__(self, chat_id: str, text: str, locale: str) -> SentMessage:
        self.sent.append((chat_id, text, locale))
        return SentMessage((f"template-{len(self.sent)}",))


class Catalog(BaseIndex):
    """A dictionary of products behind the index contract (what follow-ups need of it)."""

    def __init__(self, products: Iterable[Product] = ()) -> None:
        self.products = {p.id: p for p in products}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def upsert_products(self, products: Iterable[Product], *, source: str | None = None) -> UpsertStats:
        count = 0
        for product in products:
            self.products[product.id] = product
            count += 1
        return UpsertStats(updated=count)

    async def upsert_passages(self, passages: Iterable[Passage], *, source: str | None = None) -> UpsertStats:
        return UpsertStats()

    async def search(
        self, query: str, filters: SearchFilters | None = None, k: int = 10, kinds: Sequence[HitKind] = ALL_KINDS
    ) -> list[Hit]:
        words = set(query.lower().split())
        found = [p for p in self.products.values() if words & set(p.title.lower().split())]
        return [Hit("product", 1.0, product=p) for p in found[:k]]

    async def assortment(self) -> Assortment:
        return Assortment.from_products((p.title, p.category, p.tags) for p in self.products.values())

    async def get_product(self, product_id: str) -> Product | None:
        return self.products.get(product_id)

    async def product_count(self) -> int:
        return len(self.products)

    async def brands(self) -> tuple[str, ...]:
        return ()

    async def product_names(self) -> tuple[ProductName, ...]:
        return tuple(ProductName(p.brand, p.title, p.category, p.description) for p in self.products.values())

    async def product_for_sku(self, sku: str) -> Product | None:
        return next((p for p in self.products.values() if any(v.sku == sku for v in p.variants)), None)


def shoe(product_id: str = "RUN-9", title: str = "Carbon Racer", stock: dict[str, int] | None = None, price: str = "120") -> Product:
    """A shoe with sizes 41–43 (stock per size, default sold out in 42)."""
    stock = stock if stock is not None else {"41": 3, "42": 0, "43": 5}
    variants = tuple(Variant(f"{product_id}-{size}", Decimal(price), qty, {"size": size}) for size, qty in stock.items())
    return Product(product_id, title, "A fast shoe.", "EUR", variants, url=f"https://shop.example/{product_id}")


def with_stock(product: Product, sku: str, qty: int) -> Product:
    return replace(product, variants=tuple(replace(v, stock=qty) if v.sku == sku else v for v in product.variants))


async def shopper(
    store: Store,
    chat_id: str,
    *,
    channel: str = "telegram",
    purposes: Sequence[Purpose] = (Purpose.REMINDERS, Purpose.BACK_IN_STOCK),
    locale: str | None = None,
    timezone: str | None = None,
    last_inbound: datetime | None = None,
) -> str:
    """A customer with an identity, an open conversation and consents on ``channel``; returns the customer id."""
    at = last_inbound or store.now()
    inbound = InboundMessage(channel=channel, external_id=f"hello-{chat_id}", sender_id=chat_id, chat_id=chat_id, text="hi", timestamp=at)
    conversation = await store.conversation_for(inbound)
    async with store.transaction() as db:
        await db.execute(
            "UPDATE identities SET last_inbound_at = ? WHERE channel = ? AND external_id = ?", (at.isoformat(), channel, chat_id)
        )
        await db.execute("UPDATE customers SET locale = ?, timezone = ? WHERE id = ?", (locale, timezone, conversation.customer_id))
        if locale:
            await db.execute("UPDATE conversations SET locale = ? WHERE id = ?", (locale, conversation.id))
    ledger = ConsentLedger(store)
    for purpose in purposes:
        await ledger.grant(conversation.customer_id, purpose, channel, Evidence(f"{channel}:yes-{chat_id}", "yes", at))
    return conversation.customer_id
