"""The WhatsApp Cloud API case: a loopback fake of Graph's ``/{phone_number_id}/messages`` and signed webhooks.

The fake checks what Graph checks (Bearer token, the phone number id, the
documented limits of each message type) and answers like Graph: the message
id on success, the ``{"error": {...}}`` object on failure.
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
APP_SECRET = "wa-test-app-secret-5f2c"
VERIFY_TOKEN = "wa-test-verify-token"
ACCESS_TOKEN = "EAAGtestWhatsAppSystemUserToken0123456789abcdef"
PHONE_NUMBER_ID = "106540352242922"
WABA_ID = "102290129340398"
DISPLAY_PHONE_NUMBER = "15550783881"

# What Graph answers for a status the contract asks for: (code, subcode, message).
ERRORS: dict[int, tuple[int, int | None, str]] = {
    400: (131009, 2494010, "(#131009) Parameter value is not valid"),
    401: (190, 463, "Error validating access token: Session has expired"),
    403: (10, None, "(#10) Application does not have permission for this action"),
    429: (130429, 2494055, "(#130429) Rate limit hit"),
    500: (131000, None, "(#131000) Something went wrong"),
    503: (131016, None, "(#131016) Service unavailable"),
}


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_request(body: bytes | dict[str, Any], *, public_url: str = "https://shop.example", secret: str = APP_SECRET) -> WebhookRequest:
    """A webhook delivery of ``body`` (bytes as recorded, or a payload to serialise) signed like Meta does."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return WebhookRequest(
        method="POST",
        url=f"{public_url}/webhooks/whatsapp",
        headers={"content-type": "application/json", "user-agent": "facebookexternalua", "x-hub-signature-256": sign(raw, secret)},
        query={},
        body=raw,
    )


def graph_error(status: int, code: int, message: str, *, subcode: int | None = None, retry_after: int | None = None) -> JSONResponse:
    """Graph's error answer."""
    error: dict[str, Any] = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": message},
        "fbtrace_id": "A" + uuid.uuid4().hex[:22],
    }
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


class FakeWhatsAppCloud:
    """A local stand-in for ``graph.facebook.com/{version}/{phone_number_id}/messages``."""

    def __init__(self) -> None:
        self.sent: list[SentRecord] = []
        self.rejected: list[tuple[str, dict[str, Any]]] = []  # (why, body) of invalid requests
        self._failures: deque[_Failure] = deque()
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route(f"/{GRAPH_VERSION}/{{phone_number_id}}/messages", self._messages, methods=["POST"])])

    def fail_next(
        self, status: int, *, retry_after: int | None = None, count: int = 1, code: int | None = None, subcode: int | None = None
    ) -> None:
        """Answer the next ``count`` sends with ``status`` and Graph's error for it (or ``code``/``subcode``)."""
        with self._lock:
            self._failures.extend(_Failure(status, retry_after, code, subcode) for _ in range(count))

    async def _messages(self, request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {ACCESS_TOKEN}":
            return graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token")
        if "access_token" in request.query_params:
            return graph_error(400, 100, "the fake refuses tokens in URLs: they end up in logs")
        if request.path_params["phone_number_id"] != PHONE_NUMBER_ID:
            return graph_error(400, 100, "Unsupported post request. Object does not exist", subcode=33)
        try:
            body = await request.json()
        except ValueError:
            return graph_error(400, 100, "Invalid JSON")
        with self._lock:
            failure = self._failures.popleft() if self._failures else None
        if failure is not None:
            code, subcode, message = ERRORS.get(failure.status, (1, None, "An unknown error occurred"))
            if failure.code is not None:
                code, subcode, message = failure.code, failure.subcode, f"(#{failure.code}) refused by the fake"
            return graph_error(failure.status, code, message, subcode=subcode, retry_after=failure.retry_after)
        problem = validate(body)
        if problem is not None:
            self.rejected.append((problem, body))
            return graph_error(400, 131009, f"(#131009) Parameter value is not valid: {problem}", subcode=2494010)
        self.sent.append(SentRecord(chat_id=body["to"], text=readable_text(body), raw=body))
        return JSONResponse(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                "messages": [{"id": "wamid.HBgN" + uuid.uuid4().hex.upper()}],
            }
        )


def validate(body: Any) -> str | None:
    """Why Graph would refuse this message, per the documented limits; None when it is valid."""
    if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
        return "messaging_product must be whatsapp"
    if not isinstance(body.get("to"), str) or not body["to"].isdigit():
        return "to must be a wa_id"
    kind = body.get("type", "text")
    content = body.get(kind)
    if not isinstance(content, dict):
        return f"missing {kind} object"
    if kind == "text":
        text = content.get("body")
        if not isinstance(text, str) or not text.strip() or len(text) > 4096:
            return "text.body must be 1-4096 characters"
        return None
    if kind == "image":
        if not content.get("link") and not content.get("id"):
            return "image needs a link or an id"
        return "caption over 1024 characters" if len(content.get("caption", "")) > 1024 else None
    if kind == "template":
        return None if content.get("name") and content.get("language", {}).get("code") else "template needs name and language.code"
    if kind == "interactive":
        return _validate_interactive(content)
    return f"unsupported type {kind}"


def _validate_interactive(content: dict[str, Any]) -> str | None:
    text = content.get("body", {}).get("text", "")
    if not text or len(text) > 1024:
        return "interactive body must be 1-1024 characters"
    action = content.get("action", {})
    if content.get("type") == "button":
        buttons = action.get("buttons", [])
        replies = [b.get("reply", {}) for b in buttons]
        if not 1 <= len(buttons) <= 3:
            return "1 to 3 reply buttons"
        if any(not r.get("title") or len(r["title"]) > 20 for r in replies):
            return "button titles must be 1-20 characters"
        if any(not r.get("id") or len(r["id"]) > 256 for r in replies):
            return "button ids must be 1-256 characters"
        if len({r["title"] for r in replies}) != len(replies) or len({r["id"] for r in replies}) != len(replies):
            return "button titles and ids must be unique"
        header = content.get("header")
        if header is not None and header.get("type") == "image" and not header.get("image", {}).get("link"):
            return "image header needs a link"
        return None
    if content.get("type") == "list":
        label = action.get("button", "")
        if not label or len(label) > 20:
            return "list button must be 1-20 characters"
        rows = [row for section in action.get("sections", []) for row in section.get("rows", [])]
        if not 1 <= len(rows) <= 10:
            return "1 to 10 rows"
        if any(not row.get("title") or len(row["title"]) > 24 or len(row.get("description", "")) > 72 for row in rows):
            return "row title 1-24, description up to 72 characters"
        if any(not row.get("id") or len(row["id"]) > 200 for row in rows) or len({row["id"] for row in rows}) != len(rows):
            return "row ids must be unique, 1-200 characters"
        return None
    return "unsupported interactive type"


def readable_text(body: dict[str, Any]) -> str:
    """Every human-readable string of a message: body, caption, header, button and row titles."""
    kind = body.get("type", "text")
    content = body.get(kind, {})
    parts: list[str] = []
    if kind == "text":
        parts.append(content.get("body", ""))
    elif kind == "image":
        parts.append(content.get("caption", ""))
    elif kind == "template":
        parts.append(content.get("name", ""))
        for component in content.get("components", []):
            parts.extend(p.get("text", "") for p in component.get("parameters", []))
    elif kind == "interactive":
        for key in ("header", "body", "footer"):
            parts.append(content.get(key, {}).get("text", ""))
        action = content.get("action", {})
        parts.extend(b.get("reply", {}).get("title", "") for b in action.get("buttons", []))
        parts.append(action.get("button", ""))
        for section in action.get("sections", []):
            parts.append(section.get("title", ""))
            for row in section.get("rows", []):
                parts.extend((row.get("title", ""), row.get("description", "")))
    return "\n".join(part for part in parts if part)


def text_message_payload(*, text: str, chat_id: str, message_id: str, timestamp: int | None = None) -> dict[str, Any]:
    """The documented webhook payload of one text message."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": WABA_ID,
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": DISPLAY_PHONE_NUMBER, "phone_number_id": PHONE_NUMBER_ID},
                            "contacts": [{"profile": {"name": "Test Shopper"}, "wa_id": chat_id}],
                            "messages": [
                                {
                                    "from": chat_id,
                                    "id": f"wamid.{message_id}",
                                    "timestamp": str(timestamp if timestamp is not None else int(time.time())),
                                    "type": "text",
                                    "text": {"body": text},
                                }
                            ],
                        },
                        "field": "messages",
                    }
                ],
            }
        ],
    }


@dataclass(frozen=True)
class WhatsAppCloudCase:
    name: str = "whatsapp"

    def fake(self) -> FakeWhatsAppCloud:
        return FakeWhatsAppCloud()

    def settings(self, fake_base_url: str) -> dict[str, Any]:
        return {
            "graph_api_base": f"{fake_base_url}/{GRAPH_VERSION}",
            "meta_app_secret": APP_SECRET,
            "meta_verify_token": VERIFY_TOKEN,
            "whatsapp_access_token": ACCESS_TOKEN,
            "whatsapp_phone_number_id": PHONE_NUMBER_ID,
        }

    def text_delivery(self, *, public_url: str, text: str, chat_id: str, message_id: str) -> WebhookRequest:
        # Meta escapes non-ASCII characters in webhook bodies, as json.dumps does by default.
        return signed_request(text_message_payload(text=text, chat_id=chat_id, message_id=message_id), public_url=public_url)

    def forged(self, request: WebhookRequest) -> list[WebhookRequest]:
        good = request.headers["x-hub-signature-256"]
        others = {k: v for k, v in request.headers.items() if k != "x-hub-signature-256"}
        variants = {
            "wrong": sign(request.body, "not-the-app-secret"),
            "truncated": good[:-8],
            "sha1": "sha1=" + hmac.new(APP_SECRET.encode(), request.body, hashlib.sha1).hexdigest(),
        }
        forged = [_replace_headers(request, others | {"x-hub-signature-256": value}) for value in variants.values()]
        forged.append(_replace_headers(request, others))  # missing
        return forged


def _replace_headers(request: WebhookRequest, headers: dict[str, str]) -> WebhookRequest:
    return WebhookRequest(method=request.method, url=request.url, headers=headers, query=request.query, body=request.body)


CASE = WhatsAppCloudCase()
