"""Telegram, through python-telegram-bot (PTB): verify, parse, send, poll, register the webhook.

Inbound. Telegram POSTs one ``Update`` per request to ``/webhooks/telegram``
with the secret given to ``setWebhook`` in ``X-Telegram-Bot-Api-Secret-Token``.
:meth:`TelegramChannel.verify` compares it in constant time; with no secret
configured every delivery is refused (fail closed): :func:`run_polling` is the
way to run without a public HTTPS address. Updates are parsed by PTB itself
(``Update.de_json``) and normalized:

* a message in a private chat (groups only with ``telegram_allow_groups``):
  its text, or its caption; photos, documents, voice notes, locations,
  stickers… become attachments (text empty when they carry no caption, and
  the engine answers that it reads words only);
* a tapped inline button (``callback_query``): ``button_payload`` is the
  callback data and ``text`` the button's title. The query is answered at once
  in a tracked background task so the shopper's spinner stops while the turn
  runs;
* the shopper blocking the bot (``my_chat_member`` → ``kicked`` in a private
  chat) becomes an unreachable :class:`~channels.base.DeliveryReceipt`;
* edited messages are ignored (and not subscribed to): the original was already
  answered, and answering the edit too would make the bot repeat itself.
  Channel posts, inline queries and the rest are ignored as well.

Outbound. Text goes out in HTML parse mode with everything escaped, so the light
Markdown the engine writes (``**bold**``, ``> `` quote lines) is the only
formatting. Buttons become an inline keyboard (callback data ≤ 64 bytes; a
longer payload degrades to a numbered option in the text). One reply is one
Telegram message: products are a numbered list (linked title, price, stock,
why it fits) and the link preview shows the first product's page; a reply
with a single product that has an image is a photo message with the reply as
its caption when it fits 1,024 characters. Only a text over 4,096 characters
is split; a failure after some parts went out is reported ``maybe_sent``,
never retried whole.

Errors, translated into :class:`~channels.base.SendError`::

    RetryAfter (429)                  → retry_after = Telegram's delay
    Forbidden (bot blocked, kicked)   → unreachable
    BadRequest, ChatMigrated, Conflict, InvalidToken → permanent
    TimedOut after the request left   → maybe_sent
    TimedOut / NetworkError before it left, 5xx answers → retry (backoff)
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
from telegram import (
    Bot,
    CallbackQuery,
    Chat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    Update,
    User,
)
from telegram.constants import ChatMemberStatus, ChatType, ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest

from bot.i18n import _
from bot.messages import Attachment, InboundMessage, OutboundMessage, ProductCard
from bot.settings import Settings
from channels.base import (
    BaseChannel,
    ChannelConfigError,
    ChannelError,
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

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

SECRET_HEADER = "x-telegram-bot-api-secret-token"  # noqa: S105 - a header name, not a secret
WEBHOOK_PATH = "/webhooks/telegram"
# What the bot subscribes to, by webhook and by polling alike; edits are left out on purpose.
ALLOWED_UPDATES: tuple[str, ...] = ("message", "callback_query", "my_chat_member")
MAX_TEXT_UNITS = 4096  # Bot API: message text, after entity parsing
MAX_CAPTION_UNITS = 1024  # Bot API: photo caption, after entity parsing
MAX_CALLBACK_DATA_BYTES = 64

_GROUP_TYPES = frozenset({ChatType.GROUP, ChatType.SUPERGROUP})
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_TAG = re.compile(r"<[^>]*>")
_COMMAND_MENTION = re.compile(r"^(/[A-Za-z0-9_]+)@[A-Za-z0-9_]+\b")
# httpx errors raised before any byte of the request left this machine
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class TelegramChannel(BaseChannel):
    """The Telegram adapter. Composes a PTB :class:`telegram.Bot`; opened once in the app lifespan."""

    name: ClassVar[str] = "telegram"
    policy: SendPolicy = SendPolicy(reply_window=None, messages_per_second=30.0, per_chat_interval=1.0)

    def __init__(
        self,
        token: str,
        *,
        webhook_secret: str | None = None,
        api_base: str = "https://api.telegram.org/bot",
        allow_groups: bool = False,
        read_seconds: float = 10.0,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if not token:
            raise ChannelConfigError("SHOPKEEPER_TELEGRAM_BOT_TOKEN is empty")
        self._token = token
        self._secret = webhook_secret.encode() if webhook_secret else None
        self._allow_groups = allow_groups
        self._clock = clock
        self._bot = Bot(
            token,
            base_url=api_base,
            request=HTTPXRequest(connection_pool_size=8, read_timeout=read_seconds, write_timeout=10.0, connect_timeout=5.0),
            # long polling holds one connection open; PTB adds the poll timeout to this read timeout
            get_updates_request=HTTPXRequest(connection_pool_size=1, read_timeout=10.0, connect_timeout=5.0),
        )
        self._open = False
        self._background: set[asyncio.Task[None]] = set()

    @classmethod
    def from_settings(cls, settings: Settings) -> TelegramChannel:
        if settings.telegram_bot_token is None:
            raise ChannelConfigError("SHOPKEEPER_TELEGRAM_BOT_TOKEN is not set")
        secret = settings.telegram_webhook_secret
        return cls(
            settings.telegram_bot_token.get_secret_value(),
            webhook_secret=secret.get_secret_value() if secret is not None else None,
            api_base=settings.telegram_api_base,
            allow_groups=settings.telegram_allow_groups,
        )

    def __repr__(self) -> str:
        # the part of the token before ":" is the bot's public id; the rest is the secret
        return f"TelegramChannel(bot_id={self._token.split(':', 1)[0]}, groups={self._allow_groups}, open={self._open})"

    @property
    def bot(self) -> Bot:
        """The composed PTB bot (for :func:`setup_webhook` and polling)."""
        return self._bot

    def webhook_secret(self) -> str | None:
        """The secret Telegram must echo on each delivery (what ``setWebhook`` registers)."""
        return self._secret.decode() if self._secret is not None else None

    # -- lifecycle -----------------------------------------------------------

    async def open(self) -> None:
        """Open the HTTP pools and check the token with ``getMe``."""
        try:
            await self._bot.initialize()
        except InvalidToken:
            # PTB's message repeats the token: do not chain it
            raise ChannelConfigError("SHOPKEEPER_TELEGRAM_BOT_TOKEN was rejected by Telegram") from None
        except TelegramError as exc:  # Telegram unreachable now: start anyway, sends are retried from the outbox
            log.warning("telegram: getMe failed at start-up (%s); continuing", self._redact(str(exc)))
        self._open = True

    async def close(self) -> None:
        """Let pending callback answers finish (briefly), then close the HTTP pools."""
        self._open = False
        if self._background:
            _, pending = await asyncio.wait(set(self._background), timeout=2.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._bot.shutdown()

    # -- inbound -------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        if self._secret is None:
            raise WebhookAuthError("no SHOPKEEPER_TELEGRAM_WEBHOOK_SECRET configured: webhook deliveries are refused", 403)
        provided = request.headers.get(SECRET_HEADER)
        if not provided:
            raise WebhookAuthError(f"missing {SECRET_HEADER} header", 401)
        if not secrets.compare_digest(provided.encode("utf-8", "surrogateescape"), self._secret):
            raise WebhookAuthError(f"wrong {SECRET_HEADER} header", 403)

    def parse(self, request: WebhookRequest) -> ParsedWebhook:
        try:
            data = json.loads(request.body)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise WebhookPayloadError("body is not JSON") from exc
        if not isinstance(data, dict) or type(data.get("update_id")) is not int:
            raise WebhookPayloadError("not a Telegram Update: no integer update_id")
        try:
            update = Update.de_json(data, self._bot)
            return self.parse_update(update, raw=data)
        except WebhookPayloadError:
            raise
        except Exception as exc:  # PTB's parser raises KeyError, TypeError, ValueError… on malformed objects
            raise WebhookPayloadError(f"not a Telegram Update ({type(exc).__name__})") from exc

    def parse_update(self, update: Update, *, raw: dict[str, Any] | None = None) -> ParsedWebhook:
        """Normalize one PTB ``Update`` (from a webhook or from ``getUpdates``)."""
        raw = raw if raw is not None else update.to_dict()
        external_id = str(update.update_id)
        if update.message is not None:
            inbound = self._from_message(external_id, update.message, raw)
            return ParsedWebhook(messages=[inbound] if inbound else [])
        if update.callback_query is not None:
            inbound = self._from_callback(external_id, update.callback_query, raw)
            return ParsedWebhook(messages=[inbound] if inbound else [])
        member = update.my_chat_member
        if member is not None and member.chat.type == ChatType.PRIVATE and member.new_chat_member.status == ChatMemberStatus.BANNED:
            return ParsedWebhook(
                receipts=[DeliveryReceipt(platform_message_id="", status="blocked", chat_id=str(member.chat.id), unreachable=True)]
            )
        return ParsedWebhook()  # edits, channel posts, inline queries…: nothing for the engine

    def _chat_allowed(self, chat: Chat) -> bool:
        return chat.type == ChatType.PRIVATE or (self._allow_groups and chat.type in _GROUP_TYPES)

    def _from_message(self, external_id: str, message: Message, raw: dict[str, Any]) -> InboundMessage | None:
        if not self._chat_allowed(message.chat):
            return None
        text = _string(message.text) or _string(message.caption)
        attachments = _attachments(message)
        if not text and not attachments:
            return None  # service messages (member joined, pinned…)
        if message.chat.type in _GROUP_TYPES:
            text = _COMMAND_MENTION.sub(r"\1", text)  # "/help@shop_bot" → "/help"
        user = message.from_user
        return InboundMessage(
            channel=self.name,
            external_id=external_id,
            sender_id=str(user.id) if user is not None else str(message.chat.id),
            chat_id=str(message.chat.id),
            text=text,
            timestamp=_aware(message.date, self._clock),
            attachments=attachments,
            locale_hint=_language(user),
            raw=raw,
        )

    def _from_callback(self, external_id: str, query: CallbackQuery, raw: dict[str, Any]) -> InboundMessage | None:
        data = _string(query.data)
        if not data:
            return None  # a game button, not ours
        origin = query.message
        if origin is not None and not self._chat_allowed(origin.chat):
            return None
        chat_id = str(origin.chat.id) if origin is not None else str(query.from_user.id)
        title = _button_title(origin, data) if isinstance(origin, Message) else None
        self._answer_soon(query.id)
        return InboundMessage(
            channel=self.name,
            external_id=external_id,
            sender_id=str(query.from_user.id),
            chat_id=chat_id,
            text=title or data,
            timestamp=self._clock(),  # a tap carries no date of its own
            locale_hint=_language(query.from_user),
            button_payload=data,
            raw=raw,
        )

    def _answer_soon(self, query_id: str) -> None:
        """Stop the shopper's spinner now; the reply itself comes from the outbox."""
        if not self._open:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # parsed outside the event loop (tools, tests): nobody is waiting on a spinner
        task = loop.create_task(self._answer(query_id), name=f"telegram:answer:{query_id}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _answer(self, query_id: str) -> None:
        try:
            await self._bot.answer_callback_query(query_id)
        except TelegramError as exc:  # too old or already answered (a retried delivery): only the spinner is affected
            log.info("telegram: could not answer callback query: %s", self._redact(str(exc)))

    # -- outbound ------------------------------------------------------------

    async def send(self, chat_id: str, message: OutboundMessage, *, staff_reply: bool = False) -> SentMessage:
        parts, keyboard = render(message)

        async def send_one(index: int, part: Part) -> str:
            markup = keyboard if index == len(parts) - 1 else None  # the buttons go under the last part
            try:
                result = await self._send_part(chat_id, part, markup)
            except TelegramError as exc:
                raise self._translate(exc) from exc
            return f"{chat_id}:{result.message_id}"

        return await send_parts(parts, send_one)

    async def _send_part(self, chat_id: str, part: Part, markup: InlineKeyboardMarkup | None) -> Message:
        if part.photo:
            try:
                return await self._bot.send_photo(
                    chat_id=chat_id, photo=part.photo, caption=part.html, parse_mode=ParseMode.HTML, reply_markup=markup
                )
            except BadRequest as exc:  # Telegram could not fetch the image: the caption alone still carries every fact
                log.info("telegram: photo refused (%s); sending the caption as text", self._redact(str(exc)))
        return await self._bot.send_message(
            chat_id=chat_id,
            text=part.html,
            parse_mode=ParseMode.HTML,
            reply_markup=markup,
            link_preview_options=LinkPreviewOptions(url=part.preview) if part.preview else LinkPreviewOptions(is_disabled=True),
        )

    def _translate(self, exc: TelegramError) -> SendError:
        detail = self._redact(str(exc))
        if isinstance(exc, RetryAfter):
            return SendError(f"telegram flood control: {detail}", retry_after=_seconds(exc.retry_after), code="429")
        if isinstance(exc, Forbidden):
            return SendError(f"telegram refused: {detail}", unreachable=True, code="403")
        if isinstance(exc, InvalidToken):
            return SendError("telegram rejected the bot token", permanent=True, code="invalid_token")
        if isinstance(exc, ChatMigrated):
            return SendError(f"group moved to chat {exc.new_chat_id}", permanent=True, code="chat_migrated")
        if isinstance(exc, BadRequest):
            return SendError(f"telegram refused the message: {detail}", permanent=True, code="400")
        if isinstance(exc, Conflict):
            return SendError(f"telegram conflict: {detail}", permanent=True, code="409")
        if isinstance(exc, TimedOut):
            if isinstance(exc.__cause__, _NOT_SENT):
                return SendError(f"telegram request not sent: {detail}", code="timeout")
            return SendError(f"telegram timed out after sending: {detail}", maybe_sent=True, code="timeout")
        if isinstance(exc, NetworkError):
            cause = exc.__cause__
            if cause is None or isinstance(cause, _NOT_SENT):  # an error answer (5xx) or no connection at all
                return SendError(f"telegram unavailable: {detail}", code="network")
            return SendError(f"telegram connection failed mid-request: {detail}", maybe_sent=True, code="network")
        return SendError(f"telegram error: {detail}", permanent=True, code=type(exc).__name__)

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "<token>")


# -- rendering ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Part:
    """One Bot API message: HTML text, or a photo URL with ``html`` as its caption."""

    html: str
    photo: str = ""
    preview: str = ""  # the URL whose link preview a text message shows (none when empty)


def render(message: OutboundMessage) -> tuple[list[Part], InlineKeyboardMarkup | None]:
    """The messages a reply becomes (one, unless its text passes 4,096 units) and the inline keyboard for the last.

    A reply with a single product that has an image is one photo message when the
    whole reply fits a caption; otherwise one text message, whose link preview
    shows the first product's page.
    """
    tappable = [b for b in message.buttons if _fits_callback(b.payload)]
    typed = [b for b in message.buttons if not _fits_callback(b.payload)]
    if typed:
        log.warning("telegram: %d button payload(s) longer than 64 bytes shown as text options", len(typed))

    lines: list[_Line] = []
    for text in message.text.split("\n"):
        quote = text.startswith("> ")
        raw = text[2:] if quote else text
        lines.append(_Line(_inline(raw), quote=quote, raw=raw))
    lines.extend(_Line(_product_line(number, card)) for number, card in enumerate(message.products, 1))
    lines.extend(_Line(f"[{number}] {_escape(button.title)}") for number, button in enumerate(typed, 1))
    if message.sources:
        lines.append(_Line(_escape(_("Sources:")) + " " + ", ".join(_link(s.title, s.url) for s in message.sources)))
    keyboard = None
    if tappable:
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton(b.title, callback_data=b.payload)] for b in tappable])

    chunks = _pack(lines, MAX_TEXT_UNITS)
    single = message.products[0] if len(message.products) == 1 else None
    if single is not None and _is_http(single.image) and len(chunks) == 1 and visible_units(chunks[0]) <= MAX_CAPTION_UNITS:
        return [Part(chunks[0], photo=single.image)], keyboard
    preview = next((url for card in message.products for url in (card.url, card.image) if _is_http(url)), "")
    return [Part(chunk, preview=preview if index == 0 else "") for index, chunk in enumerate(chunks)], keyboard


@dataclass(frozen=True, slots=True)
class _Line:
    html: str
    quote: bool = False
    raw: str | None = None  # the Markdown it was rendered from, to re-split an over-long line


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


def _inline(text: str) -> str:
    """Escape, then the one inline format the engine writes: **bold**."""
    return _BOLD.sub(r"<b>\1</b>", _escape(text))


def visible_units(fragment: str) -> int:
    """Length as Telegram limits it: the text after entity parsing, in UTF-16 code units."""
    text = html.unescape(_TAG.sub("", fragment))
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _join(lines: Sequence[_Line]) -> str:
    out: list[str] = []
    quote: list[str] = []
    for line in lines:
        if line.quote:
            quote.append(line.html)
            continue
        if quote:
            out.append("<blockquote>" + "\n".join(quote) + "</blockquote>")
            quote = []
        out.append(line.html)
    if quote:
        out.append("<blockquote>" + "\n".join(quote) + "</blockquote>")
    return "\n".join(out)


def _pack(lines: Sequence[_Line], limit: int) -> list[str]:
    """Whole lines packed greedily into messages under ``limit``; an over-long line is cut at spaces."""
    while lines and not lines[-1].html.strip():
        lines = lines[:-1]
    pieces: list[_Line] = []
    for line in lines:
        if visible_units(line.html) <= limit:
            pieces.append(line)
            continue
        render_piece = _inline if line.raw is not None else _escape
        # a generated line (a product with a huge title) is re-split as its plain text, unformatted
        raw = line.raw if line.raw is not None else html.unescape(_TAG.sub("", line.html))
        pieces.extend(_Line(render_piece(piece), line.quote, piece) for piece in split_words(raw, _fits_visible(render_piece, limit)))
    chunks: list[str] = []
    current: list[_Line] = []
    for piece in pieces:
        if current and visible_units(_join([*current, piece])) > limit:
            chunks.append(_join(current))
            current = []
        current.append(piece)
    if current:
        chunks.append(_join(current))
    return [chunk for chunk in chunks if chunk.strip()]


def _fits_visible(render_piece: Callable[[str], str], limit: int) -> Callable[[str], bool]:
    return lambda text: visible_units(render_piece(text)) <= limit


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


def _product_line(number: int, card: ProductCard) -> str:
    line = f"{number}. {_link(card.title, card.url, bold=True)} — {_escape(_price(card))}{_stock(card)}"
    if card.reason:
        line += f"\n    <i>{_escape(card.reason)}</i>"
    return line


def _price(card: ProductCard) -> str:
    return card.price_text or f"{card.price} {card.currency}"


def _stock(card: ProductCard) -> str:
    return "" if card.in_stock else " (" + _escape(_("out of stock")) + ")"


def _link(title: str, url: str, *, bold: bool = False) -> str:
    text = _escape(title)
    if bold:
        text = f"<b>{text}</b>"
    return f'<a href="{html.escape(url, quote=True)}">{text}</a>' if _is_http(url) else text


def _is_http(url: str) -> bool:
    return url.startswith(("https://", "http://")) and len(url) < 2048 and not any(c.isspace() for c in url)


def _fits_callback(payload: str) -> bool:
    return 0 < len(payload.encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES


# -- parsing helpers ---------------------------------------------------------


def _string(value: object) -> str:
    return value if isinstance(value, str) else ""


def _language(user: User | None) -> str | None:
    code = user.language_code if user is not None else None
    return code if isinstance(code, str) and code else None


def _aware(value: object, clock: Callable[[], datetime]) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return clock()


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _button_title(message: Message, data: str) -> str | None:
    markup = message.reply_markup
    if markup is None:
        return None
    for row in markup.inline_keyboard:
        for button in row:
            if button.callback_data == data and isinstance(button.text, str):
                return button.text
    return None


def _attachments(message: Message) -> tuple[Attachment, ...]:
    found: list[Attachment] = []
    if message.photo:
        found.append(Attachment(kind="image", mime_type="image/jpeg"))
    if message.sticker is not None:
        found.append(Attachment(kind="sticker", name=_string(message.sticker.emoji)))
    if message.animation is not None:
        found.append(Attachment(kind="video", mime_type=_string(message.animation.mime_type), name=_string(message.animation.file_name)))
    elif message.document is not None:
        found.append(Attachment(kind="document", mime_type=_string(message.document.mime_type), name=_string(message.document.file_name)))
    if message.voice is not None:
        found.append(Attachment(kind="audio", mime_type=_string(message.voice.mime_type) or "audio/ogg"))
    if message.audio is not None:
        found.append(Attachment(kind="audio", mime_type=_string(message.audio.mime_type), name=_string(message.audio.file_name)))
    if message.video is not None:
        found.append(Attachment(kind="video", mime_type=_string(message.video.mime_type), name=_string(message.video.file_name)))
    if message.video_note is not None:
        found.append(Attachment(kind="video"))
    if message.contact is not None:
        found.append(Attachment(kind="contact", name=_string(message.contact.first_name)))
    if message.venue is not None:
        place = message.venue.location
        found.append(Attachment(kind="location", url=f"geo:{place.latitude},{place.longitude}", name=_string(message.venue.title)))
    elif message.location is not None:
        found.append(Attachment(kind="location", url=f"geo:{message.location.latitude},{message.location.longitude}"))
    return tuple(found)


# -- webhook registration and polling -----------------------------------------


async def setup_webhook(channel: TelegramChannel, public_url: str) -> str:
    """Register ``public_url + /webhooks/telegram`` with Telegram, with the secret; returns the URL.

    The channel must be open. Telegram only calls HTTPS URLs (ports 443, 80, 88 or 8443).
    """
    secret = channel.webhook_secret()
    if secret is None:
        raise ChannelConfigError("set SHOPKEEPER_TELEGRAM_WEBHOOK_SECRET first: deliveries without it are refused")
    if not public_url.startswith("https://"):
        raise ChannelConfigError("SHOPKEEPER_PUBLIC_URL must be an https:// URL for Telegram webhooks")
    url = public_url.rstrip("/") + WEBHOOK_PATH
    try:
        await channel.bot.set_webhook(url=url, secret_token=secret, allowed_updates=list(ALLOWED_UPDATES))
    except TelegramError as exc:
        raise ChannelError(f"telegram refused the webhook: {channel._redact(str(exc))}") from None
    return url


async def poll_once(runtime: Runtime, channel: TelegramChannel, offset: int | None, *, poll_seconds: float = 30.0) -> int | None:
    """One ``getUpdates`` long poll fed through parse → inbox → worker; returns the next offset."""
    updates = await channel.bot.get_updates(
        offset=offset, timeout=timedelta(seconds=poll_seconds), allowed_updates=list(ALLOWED_UPDATES)
    )
    for update in updates:
        offset = update.update_id + 1
        try:
            parsed = channel.parse_update(update)
        except Exception:  # one odd update must not stall the poll loop: log it and move past it
            log.exception("telegram: could not parse update %d; skipped", update.update_id)
            continue
        from channels.intake import ingest  # here: intake needs the runtime, which imports the registry

        await ingest(runtime, channel.name, parsed)
    return offset


async def run_polling(
    runtime: Runtime,
    *,
    stop: asyncio.Event | None = None,
    poll_seconds: float = 30.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Receive updates by long polling instead of a webhook (local use, no public URL).

    Removes any registered webhook first (Telegram allows one or the other), then
    polls until ``stop`` is set or the task is cancelled. Replies still go out through
    the outbox, so run ``runtime.sender.run()`` alongside.
    """
    channel = runtime.channels.get(TelegramChannel.name)
    if not isinstance(channel, TelegramChannel):
        raise ChannelConfigError("the telegram channel is not enabled: set SHOPKEEPER_TELEGRAM_BOT_TOKEN")
    stop = stop or asyncio.Event()
    await channel.bot.delete_webhook(drop_pending_updates=False)
    offset: int | None = None
    failures = 0
    while not stop.is_set():
        try:
            offset = await poll_once(runtime, channel, offset, poll_seconds=poll_seconds)
            failures = 0
        except RetryAfter as exc:
            await sleep(_seconds(exc.retry_after))
        except (InvalidToken, Forbidden) as exc:
            raise ChannelConfigError(f"telegram refused polling: {type(exc).__name__}") from None
        except Conflict as exc:
            raise ChannelConfigError(f"telegram refused polling (another poller or a webhook is active): {exc}") from None
        except NetworkError as exc:  # includes TimedOut: Telegram or the network is down for now
            failures += 1
            delay = min(30.0, 2.0 ** min(failures, 5))
            log.warning("telegram: getUpdates failed (%s); retrying in %.0f s", channel._redact(str(exc)), delay)
            await sleep(delay)
