"""WhatsApp through Meta's Cloud API: webhooks in, ``POST /{phone_number_id}/messages`` out.

Inbound (``object: whatsapp_business_account``): every ``entry[].changes[].value``
of every entry is read, not only the first. Each ``messages[]`` item becomes an
:class:`~bot.messages.InboundMessage` (``external_id`` is the ``wamid``,
``sender_id``/``chat_id`` the shopper's ``wa_id``):

* ``text`` → its body; ``image``/``audio``/``video``/``document``/``sticker`` →
  an attachment whose ``url`` is ``whatsapp-media:<media id>`` (the download URL
  needs a later, authenticated Graph call; see :func:`media_id`), the caption as
  text; ``location`` → a ``geo:`` attachment; ``contacts`` and ``order`` → an
  attachment of that kind;
* ``interactive`` ``button_reply``/``list_reply`` and template quick replies
  (``button``) → ``button_payload`` = the id/payload, ``text`` = the title;
* ``unsupported`` and types this adapter does not know → an empty message with an
  ``unsupported`` attachment, so the engine answers that it reads text only;
  ``reaction``, ``system`` and ``request_welcome`` events are not messages and
  are skipped. Events addressed to another phone number of the same business
  account are skipped too.

Each ``statuses[]`` item becomes a :class:`~channels.base.DeliveryReceipt`
(``sent``/``delivered``/``read``/``failed`` with the first error code); error
131050 (the shopper stopped marketing messages) marks the shopper unreachable.

Outbound: a reply is one Graph call whenever the platform allows, so it lands
whole or not at all. The body is the reply text with product lines
(``price_text``, stock, URL) and sources, ``preview_url`` on when it holds a
link (WhatsApp then previews the first one). Buttons become up to 3 reply
buttons (titles ≤ 20 characters), else a list of up to 10 rows, else numbered
text. A reply with exactly one product that has an image is sent as that image
with the text as caption, or as reply buttons under that image. Only texts
longer than a message allows are split into several calls.

Free-form messages are allowed only within 24 hours of the shopper's last
message (the outbox holds them otherwise); :meth:`WhatsAppCloudChannel.send_template`
sends an approved template, the only thing WhatsApp accepts after that.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, ClassVar, Literal

import httpx
from pydantic import SecretStr

from bot.messages import Attachment, Button, InboundMessage, OutboundMessage
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
    has_web_url,
    is_web_url,
    load_payload,
    opt_dict,
    opt_str,
    split_text,
    truncate,
    without_buttons,
)

log = logging.getLogger(__name__)

TEXT_LIMIT = 4096
INTERACTIVE_BODY_LIMIT = 1024
CAPTION_LIMIT = 1024
REPLY_BUTTONS_MAX = 3
REPLY_BUTTON_TITLE_MAX = 20
REPLY_BUTTON_ID_MAX = 256
LIST_ROWS_MAX = 10
LIST_ROW_TITLE_MAX = 24
LIST_ROW_DESCRIPTION_MAX = 72
LIST_ROW_ID_MAX = 200
# The list opener needs a label; a symbol reads the same in every language.
LIST_BUTTON_LABEL = "☰"

MEDIA_KINDS = frozenset({"image", "audio", "video", "document", "sticker"})
MEDIA_SCHEME = "whatsapp-media:"
IGNORED_TYPES = frozenset({"reaction", "system", "request_welcome"})

# Graph error codes (https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes)
RETRY_CODES = frozenset({
    1,  # API unknown
    2,  # API service temporarily unavailable
    4,  # application request limit
    80007,  # business account rate limit
    130429,  # Cloud API throughput reached
    131000,  # something went wrong
    131016,  # service unavailable
    131056,  # too many messages to this shopper (pair rate limit)
})
UNREACHABLE_CODES = frozenset({131050})  # the shopper stopped marketing messages from the business
PERMANENT_CODES = frozenset({
    190,  # access token expired or invalid
    131026,  # message undeliverable
    131047,  # re-engagement: more than 24 hours since the shopper's last message
    131051,  # unsupported message type
})

ButtonMode = Literal["none", "buttons", "list", "numbered"]


def media_id(attachment: Attachment) -> str | None:
    """The Graph media id of an inbound WhatsApp attachment (GET ``/{media_id}`` gives its URL)."""
    return attachment.url.removeprefix(MEDIA_SCHEME) if attachment.url.startswith(MEDIA_SCHEME) else None


class WhatsAppCloudChannel(GraphChannel):
    """The WhatsApp Business Platform Cloud API adapter."""

    name: ClassVar[str] = "whatsapp"
    policy: SendPolicy = SendPolicy(reply_window=timedelta(hours=24), messages_per_second=80)

    def __init__(
        self,
        *,
        app_secret: SecretStr,
        access_token: SecretStr,
        phone_number_id: str,
        verify_token: SecretStr | None = None,
        graph_api_base: str = "https://graph.facebook.com/v21.0",
        template_name: str | None = None,
        timeout: float = 20.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            app_secret=app_secret,
            access_token=access_token,
            verify_token=verify_token,
            graph_api_base=graph_api_base,
            timeout=timeout,
            transport=transport,
        )
        self.phone_number_id = phone_number_id
        self.template_name = template_name  # the approved template for messages outside the 24-hour window

    @classmethod
    def from_settings(cls, settings: Settings) -> WhatsAppCloudChannel:
        """Build the adapter from ``SHOPKEEPER_META_*`` and ``SHOPKEEPER_WHATSAPP_*`` settings."""
        if settings.meta_app_secret is None:
            raise ChannelConfigError("SHOPKEEPER_META_APP_SECRET is required for the WhatsApp Cloud API")
        if settings.whatsapp_access_token is None:
            raise ChannelConfigError("SHOPKEEPER_WHATSAPP_ACCESS_TOKEN is required for the WhatsApp Cloud API")
        if settings.whatsapp_phone_number_id is None:
            raise ChannelConfigError("SHOPKEEPER_WHATSAPP_PHONE_NUMBER_ID is required for the WhatsApp Cloud API")
        return cls(
            app_secret=settings.meta_app_secret,
            access_token=settings.whatsapp_access_token,
            phone_number_id=settings.whatsapp_phone_number_id,
            verify_token=settings.meta_verify_token,
            graph_api_base=settings.graph_api_base,
            template_name=settings.whatsapp_template_name,
        )

    def __repr__(self) -> str:
        return f"WhatsAppCloudChannel(phone_number_id={self.phone_number_id!r}, graph_api_base={self._graph_api_base!r})"

    # -- inbound ---------------------------------------------------------------

    def parse(self, request: WebhookRequest) -> ParsedWebhook:
        """Every message and status of every change of every entry."""
        data = load_payload(request.body, "whatsapp_business_account")
        messages: list[InboundMessage] = []
        receipts: list[DeliveryReceipt] = []
        for entry in as_list(data.get("entry"), "entry"):
            changes = as_list(as_dict(entry, "entry[]").get("changes"), "entry[].changes", optional=True)
            for change in changes:
                change = as_dict(change, "entry[].changes[]")
                if change.get("field", "messages") != "messages":
                    continue  # template reviews, account updates…: not conversation events
                value = as_dict(change.get("value"), "entry[].changes[].value")
                metadata = opt_dict(value.get("metadata"))
                addressed_to = opt_str(metadata.get("phone_number_id"))
                if addressed_to and addressed_to != self.phone_number_id:
                    log.debug("skipping a whatsapp event for another phone number of the business account")
                    continue
                contacts = {
                    opt_str(contact.get("wa_id")): contact
                    for contact in as_list(value.get("contacts"), "value.contacts", optional=True)
                    if isinstance(contact, dict)
                }
                for item in as_list(value.get("messages"), "value.messages", optional=True):
                    message = self._message(as_dict(item, "value.messages[]"), contacts, metadata)
                    if message is not None:
                        messages.append(message)
                for item in as_list(value.get("statuses"), "value.statuses", optional=True):
                    receipts.append(self._receipt(as_dict(item, "value.statuses[]")))
        return ParsedWebhook(messages=messages, receipts=receipts)

    def _message(self, item: dict[str, Any], contacts: Mapping[str, Any], metadata: dict[str, Any]) -> InboundMessage | None:
        kind = opt_str(item.get("type"))
        if kind in IGNORED_TYPES:
            return None
        external_id = as_id(item.get("id"), "messages[].id")
        sender = as_id(item.get("from"), "messages[].from")
        timestamp = epoch(item.get("timestamp"), "messages[].timestamp")
        text, attachments, payload = _content(kind, item)
        raw = {"message": item, "contact": contacts.get(sender), "metadata": metadata}
        return InboundMessage(
            channel=self.name,
            external_id=external_id,
            sender_id=sender,
            chat_id=sender,
            text=text,
            timestamp=timestamp,
            attachments=attachments,
            button_payload=payload,
            raw=raw,
        )

    @staticmethod
    def _receipt(item: dict[str, Any]) -> DeliveryReceipt:
        errors = as_list(item.get("errors"), "statuses[].errors", optional=True)
        first = opt_dict(errors[0]) if errors else {}
        code = opt_str(first.get("code")) or None
        return DeliveryReceipt(
            platform_message_id=as_id(item.get("id"), "statuses[].id"),
            status=as_id(item.get("status"), "statuses[].status"),
            chat_id=opt_str(item.get("recipient_id")),
            error_code=code,
            unreachable=code is not None and code.isdecimal() and int(code) in UNREACHABLE_CODES,
        )

    # -- outbound --------------------------------------------------------------

    def render(self, message: OutboundMessage) -> list[dict[str, Any]]:
        """The message objects (without recipient) that carry ``message``, in sending order."""
        mode = button_mode(message.buttons)
        shown = message if mode == "numbered" else without_buttons(message)
        body = shown.as_plain_text().strip()
        if not body:
            raise SendError("nothing to send: the reply has no text", permanent=True)
        interactive = mode in ("buttons", "list")
        only = message.products[0] if len(message.products) == 1 else None
        image = only.image.strip() if only is not None and is_web_url(only.image) else ""
        if image and not interactive and len(body) > CAPTION_LIMIT:
            image = ""  # a long text reads better whole, with the link preview, than split around a picture
        tail_limit = INTERACTIVE_BODY_LIMIT if interactive else CAPTION_LIMIT if image else TEXT_LIMIT
        chunks = split_text(body, TEXT_LIMIT)
        if len(chunks[-1]) > tail_limit:
            chunks = chunks[:-1] + split_text(chunks[-1], tail_limit)
        parts = [_text(chunk) for chunk in chunks[:-1]]
        last = chunks[-1]
        if mode == "buttons":
            parts.append(_reply_buttons(last, message.buttons, image))
        elif mode == "list":
            parts.append(_list(last, message.buttons))
        elif image:
            parts.append({"type": "image", "image": {"link": image, "caption": last}})
        else:
            parts.append(_text(last))
        return parts

    async def send(self, chat_id: str, message: OutboundMessage, *, staff_reply: bool = False) -> SentMessage:
        """Send one reply (usually one Graph call; see the module docstring)."""
        return await self.deliver(self._messages_path, [self._envelope(chat_id, part) for part in self.render(message)])

    async def send_template(
        self, chat_id: str, template_name: str, language: str, *, body_parameters: Sequence[str] = ()
    ) -> SentMessage:
        """Send an approved message template (the only message allowed outside the 24-hour window).

        ``language`` is the template's language code as approved (``en_US``,
        ``pt_BR``…); ``body_parameters`` fill ``{{1}}``, ``{{2}}``… of its body.
        """
        template: dict[str, Any] = {"name": template_name, "language": {"code": language}}
        if body_parameters:
            template["components"] = [{"type": "body", "parameters": [{"type": "text", "text": p} for p in body_parameters]}]
        return await self.deliver(self._messages_path, [self._envelope(chat_id, {"type": "template", "template": template})])

    @property
    def _messages_path(self) -> str:
        return f"{self.phone_number_id}/messages"

    @staticmethod
    def _envelope(chat_id: str, part: Mapping[str, Any]) -> dict[str, Any]:
        if not chat_id:
            raise SendError("no WhatsApp recipient", permanent=True)
        return {"messaging_product": "whatsapp", "recipient_type": "individual", "to": chat_id, **part}

    def message_id(self, answer: Mapping[str, Any]) -> str:
        messages = answer.get("messages")
        first = messages[0] if isinstance(messages, list) and messages else None
        return opt_str(first.get("id")) if isinstance(first, dict) else ""

    def classify(self, error: GraphError) -> Outcome | None:
        if error.code in RETRY_CODES:
            return "retry"
        if error.code in UNREACHABLE_CODES:
            return "unreachable"
        if error.code in PERMANENT_CODES:
            return "permanent"
        return None


# -- parsing helpers -----------------------------------------------------------


def _content(kind: str, item: dict[str, Any]) -> tuple[str, tuple[Attachment, ...], str | None]:
    """(text, attachments, button payload) of one inbound message."""
    body = opt_dict(item.get(kind)) if kind else {}
    if kind == "text":
        return opt_str(body.get("body")), (), None
    if kind in MEDIA_KINDS:
        media = opt_str(body.get("id"))
        attachment = Attachment(
            kind=kind,
            url=MEDIA_SCHEME + media if media else "",
            mime_type=opt_str(body.get("mime_type")),
            name=opt_str(body.get("filename")),
        )
        return opt_str(body.get("caption")), (attachment,), None
    if kind == "location":
        latitude, longitude = body.get("latitude"), body.get("longitude")
        coordinates = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (latitude, longitude))
        place = opt_str(body.get("name")) or opt_str(body.get("address"))
        return "", (Attachment(kind="location", url=f"geo:{latitude},{longitude}" if coordinates else "", name=place),), None
    if kind == "interactive":
        reply_type = opt_str(body.get("type"))
        if reply_type in ("button_reply", "list_reply"):
            reply = opt_dict(body.get(reply_type))
            return opt_str(reply.get("title")), (), opt_str(reply.get("id")) or None
    if kind == "button":
        return opt_str(body.get("text")), (), opt_str(body.get("payload")) or None
    if kind == "contacts":
        cards = item.get("contacts")
        names = [opt_str(opt_dict(opt_dict(card).get("name")).get("formatted_name")) for card in cards] if isinstance(cards, list) else []
        return "", tuple(Attachment(kind="contact", name=name) for name in names) or (Attachment(kind="contact"),), None
    if kind == "order":
        return opt_str(body.get("text")), (Attachment(kind="order", name=opt_str(body.get("catalog_id"))),), None
    return "", (Attachment(kind="unsupported", name=kind or "unknown"),), None


# -- rendering helpers ---------------------------------------------------------


def button_mode(buttons: Sequence[Button]) -> ButtonMode:
    """How WhatsApp can show these buttons: reply buttons, a list, or numbered text."""
    if not buttons:
        return "none"
    titles = [b.title.strip() for b in buttons]
    payloads = [b.payload for b in buttons]
    if not all(titles) or not all(payloads) or len(set(payloads)) != len(payloads):
        return "numbered"
    if (
        len(buttons) <= REPLY_BUTTONS_MAX
        and all(len(t) <= REPLY_BUTTON_TITLE_MAX for t in titles)
        and len(set(titles)) == len(titles)
        and all(len(p) <= REPLY_BUTTON_ID_MAX for p in payloads)
    ):
        return "buttons"
    if len(buttons) <= LIST_ROWS_MAX and all(len(p) <= LIST_ROW_ID_MAX for p in payloads):
        return "list"
    return "numbered"


def _text(body: str) -> dict[str, Any]:
    return {"type": "text", "text": {"body": body, "preview_url": has_web_url(body)}}


def _reply_buttons(body: str, buttons: Sequence[Button], image: str) -> dict[str, Any]:
    interactive: dict[str, Any] = {
        "type": "button",
        "body": {"text": body},
        "action": {"buttons": [{"type": "reply", "reply": {"id": b.payload, "title": b.title.strip()}} for b in buttons]},
    }
    if image:
        interactive["header"] = {"type": "image", "image": {"link": image}}
    return {"type": "interactive", "interactive": interactive}


def _list(body: str, buttons: Sequence[Button]) -> dict[str, Any]:
    rows = []
    for button in buttons:
        title = button.title.strip()
        row = {"id": button.payload, "title": truncate(title, LIST_ROW_TITLE_MAX)}
        if len(title) > LIST_ROW_TITLE_MAX:
            row["description"] = truncate(title, LIST_ROW_DESCRIPTION_MAX)
        rows.append(row)
    return {
        "type": "interactive",
        "interactive": {"type": "list", "body": {"text": body}, "action": {"button": LIST_BUTTON_LABEL, "sections": [{"rows": rows}]}},
    }
