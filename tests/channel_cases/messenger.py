"""The Messenger case: a loopback fake of Graph's ``/me/messages`` (Send API) and signed page webhooks.

The fake checks what the Send API checks (Bearer token, recipient, messaging
type and tag, text XOR attachment, the documented limits of quick replies and
generic templates) and answers like Graph: ``recipient_id`` and ``message_id``
on success, the ``{"error": {...}}`` object on failure.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from channels.base import WebhookRequest
from tests.channel_cases import SentRecord

GRAPH_VERSION = "v21.0"
APP_SECRET = "fb-test-app-secret-91ab"
VERIFY_TOKEN = "fb-test-verify-token"
PAGE_ACCESS_TOKEN = "EAAItestMessengerPageToken9876543210zyxwvu"
PAGE_ID = "1067280970047460"
MESSAGE_TAGS = {"HUMAN_AGENT", "ACCOUNT_UPDATE", "CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE"}

# What Graph answers for a status the contract asks for: (code, subcode, message).
ERRORS: dict[int, tuple[int, int | None, str]] = {
    400: (100, None, "(#100) Invalid parameter"),
    401: (190, None, "Invalid OAuth access token."),
    403: (200, 2018028, "(#200) Cannot message users who are not admins, developers or testers of the app"),
    429: (613, None, "(#613) Calls to this api have exceeded the rate limit."),
    500: (2, None, "An unexpected error has occurred. Please retry your request later."),
    503: (1200, None, "(#1200) Temporary send message failure. Please try again later"),
}


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_request(body: bytes | dict[str, Any], *, public_url: str = "https://shop.example", secret: str = APP_SECRET) -> WebhookRequest:
    """A webhook delivery of ``body`` (bytes as recorded, or a payload to serialise) signed like Meta does."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return WebhookRequest(
        method="POST",
        url=f"{public_url}/webhooks/messenger",
        headers={"content-type": "application/json", "user-agent": "facebookexternalua", "x-hub-signature-256": sign(raw, secret)},
        query={},
        body=raw,
    )


def graph_error(status: int, code: int, message: str, *, subcode: int | None = None, retry_after: int | None = None) -> JSONResponse:
    """Graph's error answer."""
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "B" + uuid.uuid4().hex[:10]}
    if subcode is not None:
        error["error_subcode"] = subcode
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse({"error": error}, status_code=status, headers=headers)


@dataclass(frozen=True)
class _Failure:
    status: int
    retry_after: int | None
    code: int | None
    subcode: int | None


class FakeMessengerSendApi:
    """A local stand-in for ``graph.facebook.com/{version}/me/messages``."""

    def __init__(self) -> None:
        self.sent: list[SentRecord] = []
        self.rejected: list[tuple[str, dict[str, Any]]] = []  # (why, body) of invalid requests
        self._failures: deque[_Failure] = deque()
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route(f"/{GRAPH_VERSION}/me/messages", self._messages, methods=["POST"])])

    def fail_next(
        self, status: int, *, retry_after: int | None = None, count: int = 1, code: int | None = None, subcode: int | None = None
    ) -> None:
        """Answer the next ``count`` sends with ``status`` and Graph's error for it (or ``code``/``subcode``)."""
        with self._lock:
            self._failures.extend(_Failure(status, retry_after, code, subcode) for _ in range(count))

    async def _messages(self, request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {PAGE_ACCESS_TOKEN}":
            return graph_error(401, 190, "Invalid OAuth access token.")
        if "access_token" in request.query_params:
            return graph_error(400, 100, "the fake refuses tokens in URLs: they end up in logs")
        try:
            body = await request.json()
        except ValueError:
            return graph_error(400, 100, "Invalid JSON")
        with self._lock:
            failure = self._failures.popleft() if self._failures else None
        if failure is not None:
            code, subcode, message = ERRORS.get(failure.status, (1, None, "An unknown error occurred."))
            if failure.code is not None:
                code, subcode, message = failure.code, failure.subcode, f"(#{failure.code}) refused by the fake"
            return graph_error(failure.status, code, message, subcode=subcode, retry_after=failure.retry_after)
        problem = validate(body)
        if problem is not None:
            self.rejected.append((problem, body))
            return graph_error(400, 100, f"(#100) {problem}")
        psid = body["recipient"]["id"]
        self.sent.append(SentRecord(chat_id=psid, text=readable_text(body), raw=body))
        return JSONResponse({"recipient_id": psid, "message_id": "m_" + uuid.uuid4().hex})


def validate(body: Any) -> str | None:
    """Why the Send API would refuse this request, per the documented limits; None when it is valid."""
    if not isinstance(body, dict) or not isinstance(body.get("recipient", {}).get("id"), str):
        return "recipient.id is required"
    messaging_type = body.get("messaging_type")
    if messaging_type not in {"RESPONSE", "UPDATE", "MESSAGE_TAG"}:
        return "messaging_type must be RESPONSE, UPDATE or MESSAGE_TAG"
    if (messaging_type == "MESSAGE_TAG") != ("tag" in body) or ("tag" in body and body["tag"] not in MESSAGE_TAGS):
        return "a valid tag goes with messaging_type MESSAGE_TAG, and only with it"
    message = body.get("message")
    if not isinstance(message, dict) or ("text" in message) == ("attachment" in message):
        return "message needs text or attachment, not both"
    if "text" in message and (not message["text"].strip() or len(message["text"]) > 2000):
        return "text must be 1-2000 characters"
    quick = message.get("quick_replies", [])
    if len(quick) > 13:
        return "at most 13 quick replies"
    for reply in quick:
        title, payload = reply.get("title", ""), reply.get("payload", "")
        if reply.get("content_type") == "text" and not (0 < len(title) <= 20 and len(payload) <= 1000):
            return "quick reply title 1-20, payload up to 1000 characters"
    if "attachment" in message:
        payload = message["attachment"].get("payload", {})
        if message["attachment"].get("type") != "template" or payload.get("template_type") != "generic":
            return "the fake knows generic templates only"
        elements = payload.get("elements", [])
        if not 1 <= len(elements) <= 10:
            return "1 to 10 elements"
        for element in elements:
            if not element.get("title") or len(element["title"]) > 80 or len(element.get("subtitle", "")) > 80:
                return "element title 1-80, subtitle up to 80 characters"
            if len(element.get("buttons", [])) > 3:
                return "at most 3 buttons per element"
    return None


def readable_text(body: dict[str, Any]) -> str:
    """Every human-readable string of a message: text, quick reply titles, card titles and subtitles."""
    message = body.get("message", {})
    parts = [message.get("text", "")]
    payload = message.get("attachment", {}).get("payload", {})
    parts.append(payload.get("text", ""))
    for element in payload.get("elements", []):
        parts.extend((element.get("title", ""), element.get("subtitle", "")))
        parts.extend(button.get("title", "") for button in element.get("buttons", []))
    parts.extend(reply.get("title", "") for reply in message.get("quick_replies", []))
    return "\n".join(part for part in parts if part)


def text_message_payload(*, text: str, chat_id: str, message_id: str, timestamp_ms: int | None = None) -> dict[str, Any]:
    """The documented page webhook payload of one text message."""
    millis = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
    return {
        "object": "page",
        "entry": [
            {
                "id": PAGE_ID,
                "time": millis,
                "messaging": [
                    {
                        "sender": {"id": chat_id},
                        "recipient": {"id": PAGE_ID},
                        "timestamp": millis,
                        "message": {"mid": f"m_{message_id}", "text": text},
                    }
                ],
            }
        ],
    }


@dataclass(frozen=True)
class MessengerCase:
    name: str = "messenger"

    def fake(self) -> FakeMessengerSendApi:
        return FakeMessengerSendApi()

    def settings(self, fake_base_url: str) -> dict[str, Any]:
        return {
            "graph_api_base": f"{fake_base_url}/{GRAPH_VERSION}",
            "meta_app_secret": APP_SECRET,
            "meta_verify_token": VERIFY_TOKEN,
            "messenger_page_access_token": PAGE_ACCESS_TOKEN,
        }

    def text_delivery(self, *, public_url: str, text: str, chat_id: str, message_id: str) -> WebhookRequest:
        return signed_request(text_message_payload(text=text, chat_id=chat_id, message_id=message_id), public_url=public_url)

    def forged(self, request: WebhookRequest) -> list[WebhookRequest]:
        good = request.headers["x-hub-signature-256"]
        others = {k: v for k, v in request.headers.items() if k != "x-hub-signature-256"}
        variants = {
            "wrong": sign(request.body, "not-the-app-secret"),
            "truncated": good[:-8],
            "other body": sign(request.body + b" "),
        }
        forged = [_replace_headers(request, others | {"x-hub-signature-256": value}) for value in variants.values()]
        forged.append(_replace_headers(request, others))  # missing
        return forged


def _replace_headers(request: WebhookRequest, headers: dict[str, str]) -> WebhookRequest:
    return WebhookRequest(method=request.method, url=request.url, headers=headers, query=request.query, body=request.body)


CASE = MessengerCase()
