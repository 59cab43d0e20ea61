"""The web chat channel: a JSON API and the chat page that uses it.

``POST /api/chat`` runs one turn and returns the replies in the response;
``GET /api/chat/{user_id}/messages?after=ID`` returns what arrived later (staff
replies, follow-ups) for the page to poll. A request that fails validation is
answered 422 with a message naming the field, and nothing is stored for it.

An optional ``message_id`` makes a send idempotent: retrying the same id
returns the replies of the first delivery instead of running the turn again.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from html import escape
from importlib.resources import files
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from bot.messages import InboundMessage
from bot.privacy import export_customer, export_filename, read_export_token
from bot.runtime import Runtime

CHANNEL = "web"

UserId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    user_id: UserId = Field(description="Your identifier for the shopper (stable across visits).")
    text: Annotated[str, StringConstraints(min_length=1)] = Field(description="The shopper's message, 1 to 4,000 characters.")
    locale: str | None = Field(default=None, description="A locale hint such as 'fr' or 'pt-BR'.")
    message_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = Field(
        default=None, description="Optional idempotency key: a retried id is answered once."
    )
    button_payload: Annotated[str, StringConstraints(max_length=256)] | None = Field(
        default=None, description="The payload of a tapped button, if the message is a tap."
    )


class ButtonOut(BaseModel):
    title: str
    payload: str


class ProductOut(BaseModel):
    sku: str
    title: str
    price: str = Field(description="Decimal price as a string, in the catalog currency.")
    price_text: str = Field(description="The price formatted in the shopper's locale.")
    currency: str
    in_stock: bool
    url: str
    image: str
    reason: str


class SourceOut(BaseModel):
    title: str
    url: str


class ReplyOut(BaseModel):
    text: str
    buttons: list[ButtonOut]
    products: list[ProductOut]
    sources: list[SourceOut]


class ChatResponse(BaseModel):
    conversation_id: str
    locale: str
    state: Literal["bot", "pending_human", "human", "closed"]
    replies: list[ReplyOut]
    last_message_id: int = Field(description="Pass as `after` when polling for later messages.")


class MessageOut(BaseModel):
    id: int
    author: Literal["shopper", "bot", "staff", "system"]
    text: str
    created_at: datetime
    reply: ReplyOut | None = None


class MessagesResponse(BaseModel):
    messages: list[MessageOut]


class ErrorResponse(BaseModel):
    error: str


router = APIRouter()


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@router.post(
    "/api/chat",
    response_model=ChatResponse,
    responses={422: {"model": ErrorResponse, "description": "Invalid request; the message names the problem."}},
    summary="Send a shopper message and get the bot's replies",
)
async def post_chat(body: ChatRequest, request: Request) -> ChatResponse:
    runtime = _runtime(request)
    limit = runtime.settings.max_message_chars
    if not body.text.strip():
        raise HTTPException(422, detail="text: must not be empty or only whitespace")
    if len(body.text) > limit:
        raise HTTPException(422, detail=f"text: must be at most {limit} characters (got {len(body.text)})")
    inbound = InboundMessage(
        channel=CHANNEL,
        external_id=body.message_id or uuid.uuid4().hex,
        sender_id=body.user_id,
        chat_id=body.user_id,
        text=body.text,
        timestamp=datetime.now(UTC),
        locale_hint=body.locale,
        button_payload=body.button_payload,
        raw=body.model_dump(),
    )
    replies, _new = await runtime.engine.accept_and_handle(inbound)
    # after "forget me" the conversation is gone: answer without creating it again
    conversation = await runtime.store.open_conversation(CHANNEL, body.user_id)
    last_id = await runtime.store.last_message_id(CHANNEL, body.user_id)
    return ChatResponse(
        conversation_id=conversation.id if conversation else "",
        locale=(conversation.locale if conversation else None) or runtime.shop.default_locale,
        state=conversation.state if conversation else "bot",
        replies=[ReplyOut.model_validate(r.to_dict()) for r in replies],
        last_message_id=last_id,
    )


@router.get(
    "/api/chat/{user_id}/messages",
    response_model=MessagesResponse,
    summary="Messages of a shopper's chat after a given message id (for polling)",
)
async def get_messages(
    user_id: str,
    request: Request,
    after: Annotated[int, Query(ge=0, description="Only messages with a larger id.")] = 0,
) -> MessagesResponse:
    if not user_id.strip() or len(user_id) > 128:
        raise HTTPException(422, detail="user_id: must be 1 to 128 characters")
    stored = await _runtime(request).store.messages_after(CHANNEL, user_id, after)
    return MessagesResponse(
        messages=[
            MessageOut(
                id=m.id,
                author=m.author,  # type: ignore[arg-type]
                text=m.text,
                created_at=m.created_at,
                reply=ReplyOut.model_validate(m.payload) if m.direction == "out" and m.payload else None,
            )
            for m in stored
        ]
    )


@router.get(
    "/api/export/{token}",
    summary="Download a shopper's data (link sent in chat, valid 24 hours)",
    responses={404: {"model": ErrorResponse, "description": "Unknown, forged or expired link."}},
)
async def download_export(token: str, request: Request) -> JSONResponse:
    runtime = _runtime(request)
    customer_id = read_export_token(token, runtime.engine.secret, datetime.now(UTC))
    if customer_id is None or await runtime.store.get_customer(customer_id) is None:
        raise HTTPException(404, detail="this link is invalid or has expired; ask the assistant for a new one")
    document = await export_customer(runtime.store, customer_id)
    filename = export_filename(customer_id, datetime.now(UTC))
    return JSONResponse(
        json.loads(json.dumps(document, default=str)),
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def chat_page(request: Request) -> HTMLResponse:
    html = files("channels").joinpath("web_chat.html").read_text(encoding="utf-8")
    name = _runtime(request).shop.name
    return HTMLResponse(html.replace("{{store_name}}", escape(name)).replace("{{store_initial}}", escape(name[:1].upper())))
