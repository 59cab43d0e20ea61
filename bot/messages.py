"""The normalized message types every channel speaks.

Only channel adapters build an :class:`InboundMessage`; the dialog engine only
returns :class:`OutboundMessage` values. Text is the one mandatory part of an
outbound message: buttons, product cards and sources are optional and each
channel renders them in its platform's best form or degrades them to text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from bot.i18n import _


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file the shopper sent (image, audio, document, location…)."""

    kind: str
    url: str = ""
    mime_type: str = ""
    name: str = ""


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One message from a shopper, whatever the platform.

    ``external_id`` is the platform's message id and the deduplication key with
    ``channel``; ids are always strings. ``raw`` keeps the platform payload.
    """

    channel: str
    external_id: str
    sender_id: str
    chat_id: str
    text: str
    timestamp: datetime
    attachments: tuple[Attachment, ...] = ()
    locale_hint: str | None = None
    button_payload: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("channel", "external_id", "sender_id", "chat_id"):
            value = getattr(self, name)
            if not isinstance(value, str):
                object.__setattr__(self, name, str(value))
        if self.timestamp.tzinfo is None:
            raise ValueError("InboundMessage.timestamp must be timezone-aware")


@dataclass(frozen=True, slots=True)
class Button:
    """A quick reply; ``payload`` is what comes back when it is tapped."""

    title: str
    payload: str


@dataclass(frozen=True, slots=True)
class ProductCard:
    """A product suggestion with data that comes from the catalog, never the model."""

    sku: str
    title: str
    price: Decimal
    currency: str
    in_stock: bool
    url: str = ""
    image: str = ""
    price_text: str = ""  # the price formatted in the shopper's locale
    reason: str = ""  # why it is suggested ("under your 50 € budget")


@dataclass(frozen=True, slots=True)
class Source:
    """Where a statement in a reply comes from (a product or a page)."""

    title: str
    url: str


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One reply to a shopper. Light Markdown in ``text``."""

    text: str
    buttons: tuple[Button, ...] = ()
    products: tuple[ProductCard, ...] = ()
    sources: tuple[Source, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "buttons": [{"title": b.title, "payload": b.payload} for b in self.buttons],
            "products": [
                {
                    "sku": p.sku,
                    "title": p.title,
                    "price": str(p.price),
                    "price_text": p.price_text,
                    "currency": p.currency,
                    "in_stock": p.in_stock,
                    "url": p.url,
                    "image": p.image,
                    "reason": p.reason,
                }
                for p in self.products
            ],
            "sources": [{"title": s.title, "url": s.url} for s in self.sources],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OutboundMessage:
        return cls(
            text=data["text"],
            buttons=tuple(Button(**b) for b in data.get("buttons", ())),
            products=tuple(
                ProductCard(
                    sku=p["sku"],
                    title=p["title"],
                    price=Decimal(p["price"]),
                    currency=p["currency"],
                    in_stock=p["in_stock"],
                    url=p.get("url", ""),
                    image=p.get("image", ""),
                    price_text=p.get("price_text", ""),
                    reason=p.get("reason", ""),
                )
                for p in data.get("products", ())
            ),
            sources=tuple(Source(**s) for s in data.get("sources", ())),
        )

    def as_plain_text(self) -> str:
        """The degraded form for channels with text only: options numbered (current locale)."""
        lines = [self.text]
        for i, card in enumerate(self.products, 1):
            stock = "" if card.in_stock else " (" + _("out of stock") + ")"
            lines.append(f"{i}. {card.title}: {card.price_text or card.price}{stock}")
            if card.url:
                lines.append(f"   {card.url}")
        for i, button in enumerate(self.buttons, 1):
            lines.append(f"[{i}] {button.title}")
        if self.sources:
            lines.append(_("Sources:") + " " + "; ".join(f"{s.title} ({s.url})" if s.url else s.title for s in self.sources))
        return "\n".join(lines)
