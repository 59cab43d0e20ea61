"""Facebook Messenger through Meta's Graph API: page webhooks in, ``POST /me/messages`` out.

Inbound (``object: page``): every ``entry[].messaging[]`` event of every entry
is read. ``sender.id`` (the page-scoped id, PSID) is both ``sender_id`` and
``chat_id``.

* ``message`` → an :class:`~bot.messages.InboundMessage` with ``external_id`` =
  ``mid``: its text; a tapped quick reply's ``payload`` as ``button_payload``;
  attachments (``image``/``audio``/``video``/``file`` with their URL, stickers,
  ``location`` as a ``geo:`` URL, shared links). Echoes of the page's own
  messages (``is_echo``) are skipped.
* ``postback`` (a tapped button) → text = its ``title``, ``button_payload`` = its
  ``payload``; ``external_id`` = its ``mid`` when present, else a stable hash of
  sender, timestamp and payload, so a redelivered postback is still deduplicated.
* ``delivery`` → one ``delivered`` receipt per ``mids[]``; ``read`` → one
  ``read`` receipt. Messenger reports reads (and deliveries without ``mids``) as
  a watermark, "everything sent before this instant", so those receipts carry
  ``watermark:<ms>`` as their message id.
* Everything else (reactions, referrals, opt-ins, handover events…) is skipped.

Outbound (``messaging_type: RESPONSE``): the reply text with product lines and
sources, split at 2,000 characters; buttons as up to 13 quick replies (titles
cut at 20 characters) on the last message, else numbered text; products as a
generic template (one card per product, at most 10: title, price and stock as
subtitle, image, tapping opens the product page) when any has an image, after
the text. The access token goes in the ``Authorization`` header, never in the
URL.

Messenger allows free-form messages for 24 hours after the shopper's last
message; the outbox enforces that through :attr:`MessengerChannel.policy`.
Staff replies may go out for 7 days with the ``HUMAN_AGENT`` tag: call
:meth:`MessengerChannel.send` with ``human_agent=True`` (the page needs the
Human Agent permission), and check :meth:`MessengerChannel.within_human_agent_window`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar

import httpx
from pydantic import SecretStr

from bot.i18n import _
from bot.messages import Attachment, Button, InboundMessage, OutboundMessage, ProductCard
from bot.settings import Settings
from channels.base import (
    ChannelConfigError,
    DeliveryReceipt,
    ParsedWebhook,
    SendError,
    SendPolicy,
    SentMessage,
    WebhookRequest,
)
from channels.meta import (
    GraphChannel,
    GraphError,
    Outcome,
    as_dict,
    as_id,
    as_list,
    epoch,
    is_web_url,
    load_payload,
    opt_dict,
    opt_str,
    split_text,
    truncate,
)

log = logging.getLogger(__name__)

TEXT_LIMIT = 2000
QUICK_REPLIES_MAX = 13
QUICK_REPLY_TITLE_MAX = 20
QUICK_REPLY_PAYLOAD_MAX = 1000
GENERIC_ELEMENTS_MAX = 10
ELEMENT_TITLE_MAX = 80
ELEMENT_SUBTITLE_MAX = 80
HUMAN_AGENT_WINDOW = timedelta(days=7)
SEND_PATH = "me/messages"

# Graph error codes (https://developers.facebook.com/docs/messenger-platform/error-codes)
RETRY_CODES = frozenset({
    1,  # unknown error
    2,  # service temporarily unavailable
    4,  # application request limit
    17,  # user request limit
    32,  # page request limit
    613,  # calls to this API exceeded the rate limit
    1200,  # temporary send message failure
})
UNREACHABLE_CODES = frozenset({551})  # this person isn't available right now
UNREACHABLE_SUBCODES = frozenset({
    1545041,  # this person isn't available right now
    2018001,  # no matching user found
    2018108,  # this person isn't receiving messages from you right now
})
PERMANENT_CODES = frozenset({
    10,  # permission: 2018278 is "sent outside of allowed window"
    190,  # invalid or expired access token
    200,  # permission missing (pages_messaging, Human Agent…)
})


class MessengerChannel(GraphChannel):
    """The Messenger Platform adapter for one Facebook Page."""

    name: ClassVar[str] = "messenger"
    policy: SendPolicy = SendPolicy(reply_window=timedelta(hours=24), messages_per_second=40, staff_reply_window=HUMAN_AGENT_WINDOW)
    code_includes_subcode: ClassVar[bool] = True

    def __init__(
        self,
        *,
        app_secret: SecretStr,
        page_access_token: SecretStr,
        verify_token: SecretStr | None = None,
        graph_api_base: str = "https://graph.facebook.com/v21.0",
        timeout: float = 20.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            app_secret=app_secret,
            access_token=page_access_token,
            verify_token=verify_token,
            graph_api_base=graph_api_base,
            timeout=timeout,
            transport=transport,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> MessengerChannel:
        """Build the adapter from ``SHOPKEEPER_META_*`` and ``SHOPKEEPER_MESSENGER_PAGE_ACCESS_TOKEN``."""
        if settings.meta_app_secret is None:
            raise ChannelConfigError("SHOPKEEPER_META_APP_SECRET is required for Messenger")
        if settings.messenger_page_access_token is None:
            raise ChannelConfigError("SHOPKEEPER_MESSENGER_PAGE_ACCESS_TOKEN is required for Messenger")
        return cls(
            app_secret=settings.meta_app_secret,
            page_access_token=settings.messenger_page_access_token,
            verify_token=settings.meta_verify_token,
            graph_api_base=settings.graph_api_base,
        )

    # -- inbound ---------------------------------------------------------------

    def parse(self, request: WebhookRequest) -> ParsedWebhook:
        """Every message, postback and receipt of every entry."""
        data = load_payload(request.body, "page")
        messages: list[InboundMessage] = []
        receipts: list[DeliveryReceipt] = []
        for entry in as_list(data.get("entry"), "entry"):
            entry = as_dict(entry, "entry[]")
            for event in as_list(entry.get("messaging"), "entry[].messaging", optional=True):
                event = as_dict(event, "entry[].messaging[]")
                if "message" in event:
                    message = self._message(event, entry)
                    if message is not None:
                        messages.append(message)
                elif "postback" in event:
                    messages.append(self._postback(event, entry))
                elif "delivery" in event or "read" in event:
                    receipts.extend(_receipts(event))
        return ParsedWebhook(messages=messages, receipts=receipts)

    def _message(self, event: dict[str, Any], entry: dict[str, Any]) -> InboundMessage | None:
        body = as_dict(event.get("message"), "messaging[].message")
        if body.get("is_echo") is True:
            return None  # what the page itself sent, echoed back
        sender = as_id(opt_dict(event.get("sender")).get("id"), "messaging[].sender.id")
        attachments = tuple(
            _attachment(as_dict(a, "message.attachments[]"))
            for a in as_list(body.get("attachments"), "message.attachments", optional=True)
        )
        quick_reply = opt_dict(body.get("quick_reply"))
        return InboundMessage(
            channel=self.name,
            external_id=as_id(body.get("mid"), "messaging[].message.mid"),
            sender_id=sender,
            chat_id=sender,
            text=opt_str(body.get("text")),
            timestamp=_event_time(event, entry),
            attachments=attachments,
            button_payload=opt_str(quick_reply.get("payload")) or None,
            raw={"page_id": entry.get("id"), "event": event},
        )

    def _postback(self, event: dict[str, Any], entry: dict[str, Any]) -> InboundMessage:
        body = as_dict(event.get("postback"), "messaging[].postback")
        sender = as_id(opt_dict(event.get("sender")).get("id"), "messaging[].sender.id")
        timestamp = _event_time(event, entry)
        payload = opt_str(body.get("payload"))
        external_id = opt_str(body.get("mid")) or postback_id(sender, timestamp, payload)
        return InboundMessage(
            channel=self.name,
            external_id=external_id,
            sender_id=sender,
            chat_id=sender,
            text=opt_str(body.get("title")),
            timestamp=timestamp,
            button_payload=payload or None,
            raw={"page_id": entry.get("id"), "event": event},
        )

    # -- outbound --------------------------------------------------------------

    def render(self, message: OutboundMessage) -> list[dict[str, Any]]:
        """The ``message`` objects that carry ``message``, in sending order."""
        cards = message.products[:GENERIC_ELEMENTS_MAX] if any(is_web_url(p.image) for p in message.products) else ()
        quick = _quick_replies(message.buttons)
        shown = OutboundMessage(
            text=message.text,
            buttons=() if quick else message.buttons,
            products=message.products[len(cards) :],
            sources=message.sources,
        )
        body = shown.as_plain_text().strip()
        parts: list[dict[str, Any]] = [{"text": chunk} for chunk in split_text(body, TEXT_LIMIT)] if body else []
        if cards:
            elements = [_element(card) for card in cards]
            parts.append({"attachment": {"type": "template", "payload": {"template_type": "generic", "elements": elements}}})
        if not parts:
            raise SendError("nothing to send: the reply has no text", permanent=True)
        if quick:
            parts[-1]["quick_replies"] = quick
        return parts

    async def send(self, chat_id: str, message: OutboundMessage, *, staff_reply: bool = False) -> SentMessage:
        """Send one reply; a staff reply is tagged ``HUMAN_AGENT`` (allowed up to 7 days)."""
        human_agent = staff_reply
        if not chat_id:
            raise SendError("no Messenger recipient", permanent=True)
        envelope: dict[str, Any] = {"recipient": {"id": chat_id}}
        if human_agent:
            envelope |= {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
        else:
            envelope["messaging_type"] = "RESPONSE"
        return await self.deliver(SEND_PATH, [{**envelope, "message": part} for part in self.render(message)])

    async def send_as_human_agent(self, chat_id: str, message: OutboundMessage) -> SentMessage:
        """A staff member's reply, allowed up to 7 days after the shopper's last message."""
        return await self.send(chat_id, message, staff_reply=True)

    def within_human_agent_window(self, last_inbound_at: datetime | None, now: datetime) -> bool:
        """Whether a ``HUMAN_AGENT``-tagged reply may be sent now."""
        return last_inbound_at is not None and now - last_inbound_at <= HUMAN_AGENT_WINDOW

    def message_id(self, answer: Mapping[str, Any]) -> str:
        return opt_str(answer.get("message_id"))

    def classify(self, error: GraphError) -> Outcome | None:
        if error.code in UNREACHABLE_CODES or error.subcode in UNREACHABLE_SUBCODES:
            return "unreachable"
        if error.code in RETRY_CODES:
            return "retry"
        if error.code in PERMANENT_CODES:
            return "permanent"
        return None


def postback_id(sender: str, timestamp: datetime, payload: str) -> str:
    """A stable id for a postback that came without ``mid`` (the same event always maps to it)."""
    millis = round(timestamp.timestamp() * 1000)
    digest = hashlib.sha256(f"{sender}\x1f{millis}\x1f{payload}".encode()).hexdigest()
    return f"postback-{digest[:40]}"


# -- parsing helpers -----------------------------------------------------------


def _event_time(event: dict[str, Any], entry: dict[str, Any]) -> datetime:
    value = event.get("timestamp", entry.get("time"))
    return epoch(value, "messaging[].timestamp", millis=True)


def _attachment(item: dict[str, Any]) -> Attachment:
    kind = opt_str(item.get("type")) or "unknown"
    payload = opt_dict(item.get("payload"))
    if kind == "location":
        coordinates = opt_dict(payload.get("coordinates"))
        lat, long = coordinates.get("lat"), coordinates.get("long")
        valid = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lat, long))
        return Attachment(kind="location", url=f"geo:{lat},{long}" if valid else "", name=opt_str(item.get("title")))
    if kind == "image" and "sticker_id" in payload:
        kind = "sticker"
    if kind == "fallback":
        return Attachment(kind="link", url=opt_str(item.get("url")) or opt_str(payload.get("url")), name=opt_str(item.get("title")))
    return Attachment(kind=kind, url=opt_str(payload.get("url")), name=opt_str(item.get("title")))


def _receipts(event: dict[str, Any]) -> list[DeliveryReceipt]:
    sender = opt_str(opt_dict(event.get("sender")).get("id"))
    if "delivery" in event:
        delivery = as_dict(event.get("delivery"), "messaging[].delivery")
        mids = [opt_str(m) for m in as_list(delivery.get("mids"), "delivery.mids", optional=True)]
        if any(mids):
            return [DeliveryReceipt(platform_message_id=mid, status="delivered", chat_id=sender) for mid in mids if mid]
        watermark = as_id(delivery.get("watermark"), "delivery.watermark")
        return [DeliveryReceipt(platform_message_id=f"watermark:{watermark}", status="delivered", chat_id=sender)]
    read = as_dict(event.get("read"), "messaging[].read")
    watermark = as_id(read.get("watermark"), "read.watermark")
    return [DeliveryReceipt(platform_message_id=f"watermark:{watermark}", status="read", chat_id=sender)]


# -- rendering helpers ---------------------------------------------------------


def _quick_replies(buttons: Sequence[Button]) -> list[dict[str, str]]:
    """Buttons as quick replies, or [] when Messenger cannot show them so (then: numbered text)."""
    if not buttons or len(buttons) > QUICK_REPLIES_MAX:
        return []
    if not all(b.title.strip() and b.payload and len(b.payload) <= QUICK_REPLY_PAYLOAD_MAX for b in buttons):
        return []
    return [{"content_type": "text", "title": truncate(b.title.strip(), QUICK_REPLY_TITLE_MAX), "payload": b.payload} for b in buttons]


def _element(card: ProductCard) -> dict[str, Any]:
    details = [card.price_text or f"{card.price} {card.currency}"]
    if not card.in_stock:
        details.append(_("out of stock"))
    if card.reason:
        details.append(card.reason)
    element: dict[str, Any] = {
        "title": truncate(card.title, ELEMENT_TITLE_MAX),
        "subtitle": truncate(" · ".join(details), ELEMENT_SUBTITLE_MAX),
    }
    if is_web_url(card.image):
        element["image_url"] = card.image.strip()
    if is_web_url(card.url):
        element["default_action"] = {"type": "web_url", "url": card.url.strip()}
    return element
