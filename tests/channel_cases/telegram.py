"""The Telegram case: a loopback fake of the Bot API and Update deliveries carrying the webhook secret.

The fake answers like ``api.telegram.org``: ``{"ok": true, "result": …}`` on
success, ``{"ok": false, "error_code": …, "description": …}`` on failure (with
``parameters.retry_after`` for flood control). It checks what Telegram checks
that matters here: the token in the path, a numeric chat id, non-empty text
within 4,096 characters (1,024 for captions), HTML that Telegram can parse,
callback data of at most 64 bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
import time
from collections import deque
from html.parser import HTMLParser
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from channels.base import WebhookRequest
from tests.channel_cases import SentRecord

# PTB 22 warns (PTBDeprecationWarning) whenever it builds a RetryAfter unless this opt-in to its
# next major version's timedelta periods is set; under filterwarnings=error that warning would
# replace the RetryAfter the adapter translates. The adapter handles both forms.
os.environ.setdefault("PTB_TIMEDELTA", "true")

TOKEN = "7012345678:AAFakeTokenForShopkeeperTests-0123abcd"
SECRET = "shopkeeper-test-webhook-secret_01"
BOT_USER = {
    "id": 7012345678,
    "is_bot": True,
    "first_name": "Alder & Finch",
    "username": "alder_finch_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
SEND_METHODS = frozenset({"sendMessage", "sendPhoto"})
_ALLOWED_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "blockquote", "tg-spoiler", "span"}
)
# What Telegram answers for a status the contract asks for.
DESCRIPTIONS = {
    400: "Bad Request: chat not found",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    429: "Too Many Requests: retry after {retry_after}",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


def update_id_for(message_id: str) -> int:
    """A stable positive integer for a test's message id (Telegram's ids are integers)."""
    return int(hashlib.sha256(message_id.encode()).hexdigest()[:8], 16)


def text_update(text: str, *, chat_id: int = 4915100000001, update_id: int = 100, language: str | None = "en") -> dict[str, Any]:
    """A private-chat text message Update, as Telegram documents it."""
    user: dict[str, Any] = {"id": chat_id, "is_bot": False, "first_name": "Ana", "username": "ana_shops"}
    if language:
        user["language_code"] = language
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id % 100000,
            "from": user,
            "chat": {"id": chat_id, "first_name": "Ana", "username": "ana_shops", "type": "private"},
            "date": 1763640000,
            "text": text,
        },
    }


def delivery(update: dict[str, Any] | bytes, *, public_url: str = "https://shop.example", secret: str | None = SECRET) -> WebhookRequest:
    """A webhook POST of ``update`` as Telegram makes it (with the secret header unless ``secret`` is None)."""
    body = update if isinstance(update, bytes) else json.dumps(update).encode()
    headers = {"content-type": "application/json", "host": "shop.example"}
    if secret is not None:
        headers["x-telegram-bot-api-secret-token"] = secret
    return WebhookRequest(method="POST", url=f"{public_url}/webhooks/telegram", headers=headers, query={}, body=body)


class _TelegramHTML(HTMLParser):
    """Rejects what Telegram's HTML parse mode rejects: unknown or unbalanced tags."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _ALLOWED_TAGS:
            self.errors.append(f"unsupported start tag \"{tag}\"")
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unmatched end tag \"{tag}\"")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def visible_text(fragment: str) -> tuple[str, list[str]]:
    """The text after Telegram's entity parsing, and the parse errors."""
    parser = _TelegramHTML()
    parser.feed(fragment)
    parser.close()
    errors = parser.errors + [f"unclosed tag \"{tag}\"" for tag in parser.stack]
    return "".join(parser.text), errors


class FakeTelegram:
    """A Bot API server on loopback, recording every call."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.sent: list[SentRecord] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.reject_photos = False  # answer sendPhoto like Telegram does when it cannot fetch the URL
        self._updates: deque[dict[str, Any]] = deque()
        self._failures: list[list[Any]] = []  # [status, retry_after, methods, calls to let through first]
        self._delays: deque[float] = deque()
        self._lock = threading.Lock()
        self._message_id = 500
        self.app = Starlette(routes=[Route("/bot{token}/{method}", self._handle, methods=["GET", "POST"])])

    # -- what tests steer ----------------------------------------------------

    def fail_next(
        self, status: int, *, retry_after: int | None = None, count: int = 1, methods: frozenset[str] = SEND_METHODS, after: int = 0
    ) -> None:
        """Answer ``count`` send calls with this error, once ``after`` of them went through."""
        with self._lock:
            for _ in range(count):
                self._failures.append([status, retry_after, methods, after])

    def delay_next(self, seconds: float) -> None:
        """Answer the next send call only after ``seconds`` (the request has arrived by then)."""
        with self._lock:
            self._delays.append(seconds)

    def push_update(self, update: dict[str, Any]) -> None:
        """Queue an update for ``getUpdates``."""
        with self._lock:
            self._updates.append(update)

    def called(self, method: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == method]

    # -- the API -------------------------------------------------------------

    async def _handle(self, request: Request) -> JSONResponse:
        if request.path_params["token"] != self.token:
            return _error(401)
        method = request.path_params["method"]
        params = await _params(request)
        with self._lock:
            self.calls.append((method, params))
        if method in SEND_METHODS:
            with self._lock:
                delay = self._delays.popleft() if self._delays else 0.0
            if delay:
                await asyncio.sleep(delay)
            failure = self._take_failure(method)
            if failure is not None:
                return _error(failure[0], failure[1])
        handler = getattr(self, "_" + method, None)
        if handler is None:
            return _error(404, description="Not Found")
        result: JSONResponse = await handler(params)
        return result

    def _take_failure(self, method: str) -> tuple[int, int | None] | None:
        with self._lock:
            for index, (status, retry_after, methods, after) in enumerate(self._failures):
                if method not in methods:
                    continue
                if after > 0:
                    self._failures[index][3] = after - 1
                    return None
                del self._failures[index]
                return status, retry_after
        return None

    async def _getMe(self, params: dict[str, Any]) -> JSONResponse:
        return _ok(BOT_USER)

    async def _sendMessage(self, params: dict[str, Any]) -> JSONResponse:
        problem = _check_chat(params) or _check_markup(params)
        text = str(params.get("text", ""))
        visible, errors = visible_text(text) if params.get("parse_mode") == "HTML" else (text, [])
        if problem:
            return _error(400, description=problem)
        if errors:
            return _error(400, description=f"Bad Request: can't parse entities: {errors[0]}")
        if not visible.strip():
            return _error(400, description="Bad Request: message text is empty")
        if len(visible.encode("utf-16-le")) // 2 > 4096:
            return _error(400, description="Bad Request: message is too long")
        message = self._message(params, text=text)
        self.sent.append(SentRecord(chat_id=str(params["chat_id"]), text=text, raw=params))
        return _ok(message)

    async def _sendPhoto(self, params: dict[str, Any]) -> JSONResponse:
        problem = _check_chat(params) or _check_markup(params)
        caption = str(params.get("caption", ""))
        visible, errors = visible_text(caption) if params.get("parse_mode") == "HTML" else (caption, [])
        if problem:
            return _error(400, description=problem)
        if errors:
            return _error(400, description=f"Bad Request: can't parse entities: {errors[0]}")
        if len(visible.encode("utf-16-le")) // 2 > 1024:
            return _error(400, description="Bad Request: message caption is too long")
        if self.reject_photos:
            return _error(400, description="Bad Request: wrong type of the web page content")
        photo = [{"file_id": "AgACAgQAAxkDAAIB", "file_unique_id": "AQADs7Ex", "file_size": 1234, "width": 90, "height": 90}]
        message = self._message(params, caption=caption, photo=photo)
        self.sent.append(SentRecord(chat_id=str(params["chat_id"]), text=caption, raw=params))
        return _ok(message)

    async def _answerCallbackQuery(self, params: dict[str, Any]) -> JSONResponse:
        return _ok(True)

    async def _setWebhook(self, params: dict[str, Any]) -> JSONResponse:
        if not str(params.get("url", "")).startswith("https://"):
            return _error(400, description="Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        return _ok(True)

    async def _deleteWebhook(self, params: dict[str, Any]) -> JSONResponse:
        return _ok(True)

    async def _getUpdates(self, params: dict[str, Any]) -> JSONResponse:
        offset = int(params.get("offset") or 0)
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), 2.0)
        while True:
            with self._lock:
                while self._updates and self._updates[0]["update_id"] < offset:
                    self._updates.popleft()  # confirmed by the offset, as Telegram forgets them
                batch = list(self._updates)
            if batch or time.monotonic() >= deadline:
                return _ok(batch)
            await asyncio.sleep(0.02)  # the fake's long poll: wait for an update to be pushed

    def _message(self, params: dict[str, Any], **content: Any) -> dict[str, Any]:
        with self._lock:
            self._message_id += 1
            message_id = self._message_id
        chat_id = int(params["chat_id"])
        chat = {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup", "first_name": "Ana"}
        message = {"message_id": message_id, "from": BOT_USER, "chat": chat, "date": int(time.time()), **content}
        if "reply_markup" in params:
            message["reply_markup"] = params["reply_markup"]
        return message


async def _params(request: Request) -> dict[str, Any]:
    """PTB posts form fields, JSON-encoding the non-string ones."""
    if request.headers.get("content-type", "").startswith("application/json"):
        body = await request.body()
        return dict(json.loads(body)) if body else {}
    form = await request.form()
    params: dict[str, Any] = {}
    for key, value in form.items():
        if not isinstance(value, str):
            continue
        if key in {"reply_markup", "allowed_updates", "link_preview_options"}:
            params[key] = json.loads(value)
        else:
            params[key] = value
    return params


def _check_chat(params: dict[str, Any]) -> str | None:
    chat_id = str(params.get("chat_id", ""))
    if not chat_id.lstrip("-").isdigit():
        return "Bad Request: chat not found"
    return None


def _check_markup(params: dict[str, Any]) -> str | None:
    markup = params.get("reply_markup")
    if not markup:
        return None
    for row in markup.get("inline_keyboard", []):
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(data.encode()) <= 64:
                return "Bad Request: BUTTON_DATA_INVALID"
    return None


def _ok(result: Any) -> JSONResponse:
    return JSONResponse({"ok": True, "result": result})


def _error(status: int, retry_after: int | None = None, *, description: str | None = None) -> JSONResponse:
    text = description or DESCRIPTIONS.get(status, "Error").format(retry_after=retry_after)
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": text}
    if status == 429:
        body["parameters"] = {"retry_after": retry_after or 1}
    return JSONResponse(body, status_code=status)


class TelegramCase:
    """How the contract suite drives the Telegram adapter."""

    name = "telegram"

    def fake(self) -> FakeTelegram:
        return FakeTelegram()

    def settings(self, fake_base_url: str) -> dict[str, Any]:
        return {"telegram_bot_token": TOKEN, "telegram_webhook_secret": SECRET, "telegram_api_base": fake_base_url + "/bot"}

    def text_delivery(self, *, public_url: str, text: str, chat_id: str, message_id: str) -> WebhookRequest:
        update = text_update(text, chat_id=int(chat_id), update_id=update_id_for(message_id))
        return delivery(update, public_url=public_url)

    def forged(self, request: WebhookRequest) -> list[WebhookRequest]:
        def with_secret(value: str | None) -> WebhookRequest:
            headers = {k: v for k, v in request.headers.items() if k != "x-telegram-bot-api-secret-token"}
            if value is not None:
                headers["x-telegram-bot-api-secret-token"] = value
            return WebhookRequest(request.method, request.url, headers, request.query, request.body)

        return [with_secret("not-the-" + SECRET), with_secret(None), with_secret(SECRET[:-3]), with_secret(SECRET.upper())]


CASE = TelegramCase()
