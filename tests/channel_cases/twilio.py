"""The WhatsApp-through-Twilio case: a loopback fake of Twilio's Messages API and signed form webhooks.

The fake answers like ``api.twilio.com``: HTTP Basic authentication with the
account SID and auth token, ``POST /2010-04-01/Accounts/{sid}/Messages.json``
form-encoded in, the Message resource (``sid`` ``SM…``, 201) out, and errors as
``{"code", "message", "more_info", "status"}``. It checks the documented limits
that matter here: a ``whatsapp:`` sender and recipient, a body or media, a
body of at most 1,600 characters, at most one media URL per WhatsApp message.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import uuid
from collections import deque
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from channels.base import WebhookRequest
from tests.channel_cases import SentRecord

ACCOUNT_SID = "AC" + "7e4b1d2c9a0f3e8b" * 2
AUTH_TOKEN = "5c1f0e9d8b7a6f5e4d3c2b1a0f9e8d7c"
WHATSAPP_NUMBER = "whatsapp:+14155238886"
# What Twilio answers for a status the contract asks for: (code, message).
ERRORS: dict[int, tuple[int, str]] = {
    400: (21211, "Invalid 'To' Phone Number"),
    401: (20003, "Authenticate"),
    403: (20003, "Permission Denied"),
    404: (20404, "The requested resource was not found"),
    429: (20429, "Too Many Requests"),
    500: (20500, "Internal Server Error"),
    503: (20503, "Service Unavailable"),
}


def sign(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    """The ``X-Twilio-Signature`` Twilio sends for a form POST of ``params`` to ``url``."""
    return str(RequestValidator(token).compute_signature(url, params))


def inbound_text(text: str, *, sender: str = "whatsapp:+4915100000001", sid: str = "SM" + "0" * 32) -> dict[str, str]:
    """An incoming WhatsApp text message, with the parameters Twilio documents."""
    return {
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ProfileName": "Ana",
        "MessageType": "text",
        "SmsSid": sid,
        "WaId": sender.removeprefix("whatsapp:+"),
        "SmsStatus": "received",
        "Body": text,
        "To": WHATSAPP_NUMBER,
        "NumSegments": "1",
        "ReferralNumMedia": "0",
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": sender,
        "ApiVersion": "2010-04-01",
    }


def signed_delivery(
    params: dict[str, str], *, public_url: str = "https://shop.example", token: str = AUTH_TOKEN, path: str = "/webhooks/twilio"
) -> WebhookRequest:
    """A form POST of ``params`` signed over ``public_url + path``, as Twilio makes it."""
    url = public_url + path
    return WebhookRequest(
        method="POST",
        url=url,
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "user-agent": "TwilioProxy/1.1",
            "x-twilio-signature": sign(url, params, token),
        },
        query={},
        body=urlencode(params).encode(),
    )


def message_sid_for(message_id: str) -> str:
    return "SM" + uuid.uuid5(uuid.NAMESPACE_URL, message_id).hex


class FakeTwilio:
    """Twilio's Messages API on loopback, recording every message created."""

    def __init__(self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN) -> None:
        self.account_sid = account_sid
        self._authorization = "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self.sent: list[SentRecord] = []
        self.requests: list[dict[str, Any]] = []
        self._failures: deque[tuple[int, int | None, int | None, str | None]] = deque()
        self._let_through = 0
        self._delays: deque[float] = deque()
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route("/2010-04-01/Accounts/{sid}/Messages.json", self._create, methods=["POST"])])

    def fail_next(
        self,
        status: int,
        *,
        retry_after: int | None = None,
        count: int = 1,
        code: int | None = None,
        message: str | None = None,
        after: int = 0,
    ) -> None:
        """Answer ``count`` creations with this error (``Retry-After`` header when given) once ``after`` went through."""
        with self._lock:
            self._let_through = after
            for _ in range(count):
                self._failures.append((status, retry_after, code, message))

    def delay_next(self, seconds: float) -> None:
        """Answer the next creation only after ``seconds`` (the request has arrived by then)."""
        with self._lock:
            self._delays.append(seconds)

    async def _create(self, request: Request) -> JSONResponse:
        if request.headers.get("authorization") != self._authorization or request.path_params["sid"] != self.account_sid:
            return _error(401)
        form = await request.form()
        params: dict[str, Any] = {key: value for key, value in form.items() if isinstance(value, str)}
        media = [value for value in form.getlist("MediaUrl") if isinstance(value, str)]
        if media:
            params["MediaUrl"] = media
        with self._lock:
            self.requests.append(params)
            delay = self._delays.popleft() if self._delays else 0.0
            failure = None
            if self._let_through > 0:
                self._let_through -= 1
            elif self._failures:
                failure = self._failures.popleft()
        if delay:
            await asyncio.sleep(delay)
        if failure is not None:
            return _error(failure[0], retry_after=failure[1], code=failure[2], message=failure[3])
        to, sender, body = params.get("To", ""), params.get("From", ""), params.get("Body", "")
        if not to.startswith("whatsapp:+") or not to[10:].isdigit():
            return _error(400, code=21211, message=f"Invalid 'To' Phone Number: {to}")
        if not sender.startswith("whatsapp:+"):
            return _error(400, code=63007, message="Twilio could not find a Channel with the specified From address")
        if not body and not media and "ContentSid" not in params:
            return _error(400, code=21619, message="A text message body or media urls must be specified.")
        if len(body) > 1600:
            return _error(400, code=21617, message="The concatenated message body exceeds the 1600 character limit.")
        if len(media) > 1:
            return _error(400, code=63019, message="Media failed to send: WhatsApp allows one media per message")
        sid = "SM" + uuid.uuid4().hex
        self.sent.append(SentRecord(chat_id=to, text=body, raw=params))
        now = format_datetime(datetime.now(UTC), usegmt=True)
        resource = {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender,
            "messaging_service_sid": None,
            "num_media": str(len(media)),
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}/Media.json"},
            "to": to,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }
        return JSONResponse(resource, status_code=201)


def _error(status: int, *, retry_after: int | None = None, code: int | None = None, message: str | None = None) -> JSONResponse:
    default_code, default_message = ERRORS.get(status, (20500, "Error"))
    code = code or default_code
    more_info = f"https://www.twilio.com/docs/errors/{code}"
    body = {"code": code, "message": message or default_message, "more_info": more_info, "status": status}
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse(body, status_code=status, headers=headers)


class TwilioCase:
    """How the contract suite drives the WhatsApp-through-Twilio adapter."""

    name = "twilio"

    def fake(self) -> FakeTwilio:
        return FakeTwilio()

    def settings(self, fake_base_url: str) -> dict[str, Any]:
        return {
            "twilio_account_sid": ACCOUNT_SID,
            "twilio_auth_token": AUTH_TOKEN,
            "twilio_whatsapp_number": WHATSAPP_NUMBER,
            "twilio_api_base": fake_base_url,
        }

    def text_delivery(self, *, public_url: str, text: str, chat_id: str, message_id: str) -> WebhookRequest:
        params = inbound_text(text, sender="whatsapp:+" + chat_id.removeprefix("whatsapp:").lstrip("+"), sid=message_sid_for(message_id))
        return signed_delivery(params, public_url=public_url)

    def forged(self, request: WebhookRequest) -> list[WebhookRequest]:
        good = request.headers["x-twilio-signature"]

        def with_signature(value: str | None) -> WebhookRequest:
            headers = {k: v for k, v in request.headers.items() if k != "x-twilio-signature"}
            if value is not None:
                headers["x-twilio-signature"] = value
            return WebhookRequest(request.method, request.url, headers, request.query, request.body)

        other_token = sign(request.url, dict(_pairs(request.body)), token="0" * 32)
        return [with_signature(other_token), with_signature(None), with_signature(good[:-4]), with_signature(good.lower())]


def _pairs(body: bytes) -> list[tuple[str, str]]:
    return parse_qsl(body.decode(), keep_blank_values=True)


CASE = TwilioCase()
