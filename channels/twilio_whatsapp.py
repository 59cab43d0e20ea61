"""WhatsApp through Twilio: signed form webhooks in, the twilio SDK's async REST client out.

Inbound. Twilio POSTs form-encoded parameters to ``/webhooks/twilio`` for each
incoming WhatsApp message and for each status change of a message we sent.
:meth:`TwilioWhatsAppChannel.verify` checks ``X-Twilio-Signature`` with the SDK's
``RequestValidator`` (HMAC-SHA1 of the URL Twilio called plus the sorted
parameters, keyed with the auth token). The URL Twilio called is rebuilt as
``public_url`` + the request's path and query, so verification holds behind a
TLS-terminating proxy; without ``public_url``, ``X-Forwarded-Proto/Host`` are
used only when ``trust_forwarded_headers`` is on, and the URL as received
otherwise.

* an incoming message: ``Body``; ``From`` (``whatsapp:+E164``) is both sender and
  chat; ``MessageSid`` the external id; ``MediaUrl{n}``/``MediaContentType{n}``
  attachments; ``Latitude``/``Longitude`` a location attachment; a quick-reply
  tap's ``ButtonPayload`` (or a list pick's ``ListId``) the button payload.
  ``ProfileName`` and the rest stay in ``raw``. Messages from non-WhatsApp
  senders (SMS to the same number) are ignored.
* a status callback (``MessageStatus``): a :class:`~channels.base.DeliveryReceipt`;
  error 21610 (the shopper sent STOP) and 63014 (the shopper blocked the
  business) mark the shopper (``To``) unreachable.

Outbound. ``client.messages.create_async`` over the SDK's aiohttp client, never
a blocking call. WhatsApp has no buttons without pre-approved content
templates, so buttons become numbered options in the text (``[1] Shipping``),
products numbered lines with price and link, sources a ``Sources:`` list. One
reply is one WhatsApp message: a reply with a single product that has an image
is a media message with the reply as caption when it fits 1,024 characters.
Only a body over 1,600 characters is split; a failure after some parts went
out is reported ``maybe_sent``.

Errors, translated into :class:`~channels.base.SendError`::

    21610 unsubscribed (STOP), 63014 blocked   → unreachable
    63016 outside the 24-hour window           → permanent (code 63016)
    429, 5xx, connection refused               → retry (Retry-After honoured when sent)
    other 4xx                                  → permanent
    timeout or broken connection after the request left → maybe_sent
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import aiohttp
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from bot.i18n import _
from bot.messages import Attachment, InboundMessage, OutboundMessage, ProductCard
from bot.settings import Settings
from channels.base import (
    BaseChannel,
    ChannelConfigError,
    DeliveryReceipt,
    ParsedWebhook,
    SendError,
    SendPolicy,
    SentMessage,
    WebhookAuthError,
    WebhookPayloadError,
    WebhookRequest,
    send_parts,
)

log = logging.getLogger(__name__)
# The SDK logs every request and response at INFO: keep that for debugging only.
_SDK_LOG = log.getChild("sdk")
_SDK_LOG.setLevel(logging.WARNING)

SIGNATURE_HEADER = "x-twilio-signature"
WEBHOOK_PATH = "/webhooks/twilio"
MAX_BODY_UNITS = 1600  # Twilio's limit for a WhatsApp message body
MAX_CAPTION_UNITS = 1024  # WhatsApp's limit for a media caption
MAX_FORM_FIELDS = 500
MAX_MEDIA = 10
UNREACHABLE_CODES = frozenset({"21610", "63014"})  # STOP / unsubscribed; the shopper blocked the business
OUTSIDE_WINDOW_CODE = "63016"
# A non-empty mapping without TWILIO_* keys: the SDK would otherwise read credentials, edge and
# region from os.environ; here settings are the only source.
_SDK_ENVIRONMENT: Mapping[str, str] = {"SHOPKEEPER_SETTINGS_ONLY": "1"}
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Progress:
    """What the transport saw of one API call: whether bytes left, and the answer's Retry-After."""

    sent: bool = False
    retry_after: float | None = None


# Set around each API call; aiohttp's trace hooks run in the calling task's context and fill it in.
_PROGRESS: contextvars.ContextVar[_Progress | None] = contextvars.ContextVar("twilio_progress", default=None)


async def _on_headers_sent(session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestHeadersSentParams) -> None:
    progress = _PROGRESS.get()
    if progress is not None:
        progress.sent = True


async def _on_request_end(session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestEndParams) -> None:
    progress = _PROGRESS.get()
    if progress is not None:
        progress.retry_after = parse_retry_after(params.response.headers.get("Retry-After"))


class _FormParams(dict[str, list[str]]):
    """Form fields with every value kept; ``getall`` is what the SDK's validator asks a multi-dict for."""

    def getall(self, name: str) -> list[str]:
        return self[name]

    def first(self, name: str) -> str:
        values = self.get(name)
        return values[0] if values else ""


def _form(body: bytes) -> _FormParams:
    """Decode a form body; raises ValueError past :data:`MAX_FORM_FIELDS` fields."""
    params = _FormParams()
    for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS):
        params.setdefault(key, []).append(value)
    return params


class TwilioWhatsAppChannel(BaseChannel):
    """The WhatsApp-through-Twilio adapter. Composes the twilio SDK client; opened once in the app lifespan."""

    name: ClassVar[str] = "twilio"
    policy: SendPolicy = SendPolicy(reply_window=timedelta(hours=24), messages_per_second=1.0)

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        whatsapp_number: str,
        api_base: str | None = None,
        public_url: str | None = None,
        trust_forwarded_headers: bool = False,
        template_sid: str | None = None,
        messages_per_second: float = 1.0,
        request_seconds: float = 15.0,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if not (account_sid and auth_token and whatsapp_number):
            raise ChannelConfigError("SHOPKEEPER_TWILIO_ACCOUNT_SID, _AUTH_TOKEN and _WHATSAPP_NUMBER are all required")
        # the configured pace is per account, so it lives on the instance
        self.policy = SendPolicy(reply_window=timedelta(hours=24), messages_per_second=messages_per_second)
        self._account_sid = account_sid
        self._auth_token = auth_token
        self._validator = RequestValidator(auth_token)
        self._number = whatsapp_number
        self._api_base = api_base.rstrip("/") if api_base else None
        self._public_url = public_url.rstrip("/") if public_url else None
        self._trust_forwarded = trust_forwarded_headers
        self._template_sid = template_sid
        self._request_seconds = request_seconds
        self._clock = clock
        self._http: Any = None
        self._client: Any = None

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioWhatsAppChannel:
        if not (settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_whatsapp_number):
            raise ChannelConfigError("SHOPKEEPER_TWILIO_ACCOUNT_SID, _AUTH_TOKEN and _WHATSAPP_NUMBER are all required")
        return cls(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token.get_secret_value(),
            whatsapp_number=settings.twilio_whatsapp_number,
            api_base=settings.twilio_api_base,
            public_url=settings.public_url,
            trust_forwarded_headers=settings.trust_forwarded_headers,
            template_sid=settings.twilio_template_sid,
            messages_per_second=settings.twilio_messages_per_second,
        )

    def __repr__(self) -> str:
        return f"TwilioWhatsAppChannel(account={self._account_sid[:6]}…, number={self._number!r}, open={self._client is not None})"

    # -- lifecycle -----------------------------------------------------------

    async def open(self) -> None:
        """Build the SDK client on an aiohttp session that carries the credentials and the trace hooks."""
        if self._client is not None:
            return
        trace = aiohttp.TraceConfig()
        trace.on_request_headers_sent.append(_on_headers_sent)
        trace.on_request_end.append(_on_request_end)
        credentials = base64.b64encode(f"{self._account_sid}:{self._auth_token}".encode()).decode("ascii")
        # Credentials go in a session header rather than the SDK's per-request ``auth``, which aiohttp deprecates.
        session = aiohttp.ClientSession(
            headers={"Authorization": f"Basic {credentials}"},
            trace_configs=[trace],
            timeout=aiohttp.ClientTimeout(total=self._request_seconds, sock_connect=5.0),
        )
        http = AsyncTwilioHttpClient(pool_connections=False, logger=_SDK_LOG)
        http.session = session
        client = Client(account_sid=self._account_sid, http_client=http, environment=_SDK_ENVIRONMENT)
        if self._api_base:
            client.api.base_url = self._api_base
        self._http, self._client = http, client

    async def close(self) -> None:
        http, self._http, self._client = self._http, None, None
        if http is not None:
            await http.close()

    # -- inbound -------------------------------------------------------------

    def signed_url(self, request: WebhookRequest) -> str:
        """The URL Twilio called (and signed): public URL + path and query, or the forwarded/received one."""
        received = urlsplit(request.url)
        if self._public_url:
            base = urlsplit(self._public_url)
            prefix = base.path.rstrip("/")
            path = received.path if prefix and received.path.startswith(prefix + "/") else prefix + received.path
            return urlunsplit((base.scheme, base.netloc, path, received.query, ""))
        if self._trust_forwarded:
            scheme = _first(request.headers.get("x-forwarded-proto")) or received.scheme
            host = _first(request.headers.get("x-forwarded-host")) or request.headers.get("host") or received.netloc
            return urlunsplit((scheme, host, received.path, received.query, ""))
        return request.url

    def webhook_ack(self) -> tuple[bytes, str]:
        """Twilio expects TwiML; an empty <Response/> means "no reply from this webhook" (replies go by REST)."""
        return b'<?xml version="1.0" encoding="UTF-8"?><Response/>', "text/xml"

    def verify(self, request: WebhookRequest) -> None:
        signature = request.headers.get(SIGNATURE_HEADER)
        if not signature:
            raise WebhookAuthError("missing X-Twilio-Signature header", 401)
        try:
            valid = self._validator.validate(self.signed_url(request), _form(request.body), signature)
        except ValueError:  # too many fields, or a forwarded host with a malformed port
            valid = False
        if not valid:
            raise WebhookAuthError("X-Twilio-Signature does not match", 403)

    def parse(self, request: WebhookRequest) -> ParsedWebhook:
        try:
            form = _form(request.body)
        except ValueError as exc:
            raise WebhookPayloadError(f"more than {MAX_FORM_FIELDS} form fields") from exc
        fields = {key: values[-1] for key, values in form.items()}
        sid = fields.get("MessageSid") or fields.get("SmsSid") or ""
        if not sid:
            raise WebhookPayloadError("no MessageSid: not a Twilio messaging webhook")
        status = fields.get("MessageStatus")
        if status:
            code = fields.get("ErrorCode") or None
            receipt = DeliveryReceipt(
                platform_message_id=sid,
                status=status.lower(),
                chat_id=fields.get("To", ""),
                error_code=code,
                unreachable=code in UNREACHABLE_CODES,
            )
            return ParsedWebhook(receipts=[receipt])
        sender = fields.get("From", "")
        if not sender:
            raise WebhookPayloadError("no From: not a Twilio message webhook")
        if not sender.startswith("whatsapp:"):
            log.info("twilio: ignoring a non-WhatsApp message (%s…)", sender[:4])
            return ParsedWebhook()
        attachments = _attachments(form)
        payload = fields.get("ButtonPayload") or fields.get("ListId") or None
        text = fields.get("Body", "") or fields.get("ButtonText", "") or fields.get("ListTitle", "")
        if not text and not attachments and not payload:
            return ParsedWebhook()  # a reaction or an unsupported type: nothing to answer
        inbound = InboundMessage(
            channel=self.name,
            external_id=sid,
            sender_id=sender,
            chat_id=sender,
            text=text,
            timestamp=self._clock(),  # Twilio's webhook carries no time of its own
            attachments=attachments,
            button_payload=payload,
            raw=dict(fields),
        )
        return ParsedWebhook(messages=[inbound])

    # -- outbound ------------------------------------------------------------

    async def send(self, chat_id: str, message: OutboundMessage, *, staff_reply: bool = False) -> SentMessage:
        to = chat_id if chat_id.startswith("whatsapp:") else f"whatsapp:{chat_id}"

        async def send_one(index: int, part: Part) -> str:
            return await self._create(to=to, body=part.body, media_url=[part.media] if part.media else None)

        return await send_parts(render(message), send_one)

    async def send_template(self, chat_id: str, variables: Mapping[str, str]) -> SentMessage:
        """Send the approved content template (``twilio_template_sid``): the one way to write outside the 24-hour window."""
        if not self._template_sid:
            raise SendError("no approved template configured (SHOPKEEPER_TWILIO_TEMPLATE_SID)", permanent=True, code="no_template")
        to = chat_id if chat_id.startswith("whatsapp:") else f"whatsapp:{chat_id}"
        sid = await self._create(to=to, content_sid=self._template_sid, content_variables=json.dumps(dict(variables)))
        return SentMessage((sid,))

    async def _create(self, **fields: Any) -> str:
        client = self._client
        if client is None:
            raise SendError("the twilio channel is not open", code="not_open")
        arguments = {key: value for key, value in fields.items() if value is not None}
        if self._public_url:
            arguments["status_callback"] = self._public_url + WEBHOOK_PATH
        progress = _Progress()
        token = _PROGRESS.set(progress)
        try:
            async with asyncio.timeout(self._request_seconds):
                instance = await client.messages.create_async(from_=self._number, **arguments)
        except TwilioRestException as exc:
            raise _translate(exc, progress) from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            if progress.sent:
                raise SendError(f"twilio request failed after it was sent: {type(exc).__name__}", maybe_sent=True, code="network") from exc
            raise SendError(f"twilio unreachable: {type(exc).__name__}", code="network") from exc
        finally:
            _PROGRESS.reset(token)
        return str(instance.sid)


def _translate(exc: Any, progress: _Progress) -> SendError:
    """A Twilio error answer as a :class:`SendError` (``exc`` is a ``TwilioRestException``)."""
    status = int(exc.status)
    code = str(exc.code) if exc.code else None
    text = f"twilio {status}{f' error {code}' if code else ''}: {exc.msg}"
    if code in UNREACHABLE_CODES:
        return SendError(text, unreachable=True, code=code)
    if code == OUTSIDE_WINDOW_CODE:
        return SendError(text, permanent=True, code=code)
    if status == 429 or status >= 500:
        return SendError(text, retry_after=progress.retry_after, code=code or str(status))
    return SendError(text, permanent=True, code=code or str(status))


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _first(value: str | None) -> str:
    return value.split(",")[0].strip() if value else ""


def _attachments(form: _FormParams) -> tuple[Attachment, ...]:
    found: list[Attachment] = []
    count = form.first("NumMedia")
    for index in range(min(int(count), MAX_MEDIA) if count.isdigit() else 0):
        url = form.first(f"MediaUrl{index}")
        if url:
            mime = form.first(f"MediaContentType{index}")
            found.append(Attachment(kind=_media_kind(mime), url=url, mime_type=mime))
    try:
        latitude, longitude = float(form.first("Latitude")), float(form.first("Longitude"))
    except ValueError:
        pass
    else:
        if -90 <= latitude <= 90 and -180 <= longitude <= 180:
            name = form.first("Address") or form.first("Label")
            found.append(Attachment(kind="location", url=f"geo:{latitude},{longitude}", name=name))
    return tuple(found)


def _media_kind(mime: str) -> str:
    if mime == "image/webp":
        return "sticker"  # WhatsApp stickers arrive as WebP images
    major = mime.split("/", 1)[0]
    return major if major in ("image", "audio", "video") else "document"


# -- rendering ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Part:
    """One WhatsApp message: a body, and an image URL when it is a media message (body = caption)."""

    body: str
    media: str = ""


def render(message: OutboundMessage) -> list[Part]:
    """The messages a reply becomes: one, unless its body passes 1,600 characters.

    A reply with a single product that has an image carries that image (a media
    message, body as caption) when it fits 1,024 characters; otherwise WhatsApp's
    own preview of the first product link stands in for it.
    """
    lines = [_BOLD.sub(r"*\1*", line) for line in message.text.split("\n")]
    lines.extend(_product_line(number, card) for number, card in enumerate(message.products, 1))
    lines.extend(f"[{number}] {button.title}" for number, button in enumerate(message.buttons, 1))
    if message.sources:
        lines.append(_("Sources:"))
        lines.extend(f"- {source.title} {source.url}".rstrip() for source in message.sources)
    while lines and not lines[-1].strip():
        lines.pop()
    chunks = _pack(lines, MAX_BODY_UNITS)
    single = message.products[0] if len(message.products) == 1 else None
    if single is not None and _is_http(single.image) and len(chunks) == 1 and units(chunks[0]) <= MAX_CAPTION_UNITS:
        return [Part(chunks[0], media=single.image)]
    return [Part(chunk) for chunk in chunks]


def units(text: str) -> int:
    """Length in UTF-16 code units (an emoji counts 2), the conservative way to count characters."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _product_line(number: int, card: ProductCard) -> str:
    line = f"{number}. *{card.title}* — {_price(card)}{_stock(card)}"
    if card.reason:
        line += f"\n   _{card.reason}_"
    if _is_http(card.url):
        line += f"\n   {card.url}"
    return line


def _price(card: ProductCard) -> str:
    return card.price_text or f"{card.price} {card.currency}"


def _stock(card: ProductCard) -> str:
    return "" if card.in_stock else " (" + _("out of stock") + ")"


def _is_http(url: str) -> bool:
    return url.startswith(("https://", "http://")) and not any(c.isspace() for c in url)


def _pack(lines: list[str], limit: int) -> list[str]:
    """Whole lines packed greedily into bodies under ``limit``; an over-long line is cut at spaces."""
    pieces: list[str] = []
    for line in lines:
        pieces.extend([line] if units(line) <= limit else split_words(line, lambda text: units(text) <= limit))
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current}\n{piece}" if current else piece
        if current and units(candidate) > limit:
            chunks.append(current)
            candidate = piece
        current = candidate
    if current.strip():
        chunks.append(current)
    return [chunk for chunk in chunks if chunk.strip()]


def split_words(text: str, fits: Callable[[str], bool]) -> list[str]:
    """Cut ``text`` into pieces that each ``fits``, at whitespace where possible."""
    pieces: list[str] = []
    current = ""
    for token in re.split(r"(\s+)", text):
        if fits(current + token):
            current += token
            continue
        if current.strip():
            pieces.append(current.rstrip())
        current = token.lstrip()
        while current and not fits(current):  # one word longer than a message: cut inside it
            low, high = 1, len(current)
            while low < high:  # the longest prefix that fits
                middle = (low + high + 1) // 2
                low, high = (middle, high) if fits(current[:middle]) else (low, middle - 1)
            pieces.append(current[:low])
            current = current[low:]
    if current.strip():
        pieces.append(current.rstrip())
    return pieces
