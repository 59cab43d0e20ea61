"""The webhook routes every platform adapter shares.

``POST /webhooks/{channel}``: read the raw body (size-limited) → the adapter
verifies it in constant time (401/403, nothing stored, on failure) → parses it
into messages and receipts → each message is accepted into the inbox (a replay
of the same platform id is acknowledged and not processed again) → 200 at
once; the turn runs in the background worker.

``GET /webhooks/{channel}``: the platform's verification handshake, where it
has one (Meta's ``hub.challenge``).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from bot.runtime import Runtime
from channels.base import BaseChannel, WebhookAuthError, WebhookPayloadError, WebhookRequest
from channels.intake import ingest

log = logging.getLogger(__name__)

MAX_WEBHOOK_BYTES = 1_000_000

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


def _channel(request: Request, name: str) -> tuple[Runtime, BaseChannel]:
    runtime: Runtime = request.app.state.runtime
    channel = runtime.channels.get(name)
    if channel is None:
        raise HTTPException(404, detail=f"channel {name!r} is not enabled")
    return runtime, channel


async def _webhook_request(request: Request) -> WebhookRequest:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdecimal() and int(declared) > MAX_WEBHOOK_BYTES:
        raise HTTPException(413, detail=f"body larger than {MAX_WEBHOOK_BYTES} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_WEBHOOK_BYTES:
            raise HTTPException(413, detail=f"body larger than {MAX_WEBHOOK_BYTES} bytes")
    return WebhookRequest(
        method=request.method,
        url=str(request.url),
        headers={k.lower(): v for k, v in request.headers.items()},
        query=dict(request.query_params),
        body=body,
    )


@router.get("/{name}", summary="Platform webhook verification handshake", response_class=PlainTextResponse)
async def handshake(name: str, request: Request) -> Response:
    _, channel = _channel(request, name)
    try:
        answer = channel.handshake(await _webhook_request(request))
    except WebhookAuthError as exc:
        return JSONResponse({"error": str(exc)}, status_code=exc.status_code)
    if answer is None:
        raise HTTPException(405, detail=f"channel {name!r} has no verification handshake")
    return PlainTextResponse(answer)


@router.post("/{name}", summary="Receive a platform webhook delivery")
async def receive(name: str, request: Request) -> Response:
    runtime, channel = _channel(request, name)
    delivery = await _webhook_request(request)
    try:
        channel.verify(delivery)
    except WebhookAuthError as exc:
        log.warning("rejected %s webhook: %s", name, exc)
        runtime.metrics.webhooks.labels(name, "rejected").inc()
        raise HTTPException(exc.status_code, detail="signature verification failed") from None
    try:
        parsed = channel.parse(delivery)
    except WebhookPayloadError as exc:
        raise HTTPException(400, detail=f"not a valid {name} payload: {exc}") from None
    counts = await ingest(runtime, name, parsed)
    ack = channel.webhook_ack()
    if ack is not None:  # e.g. Twilio wants TwiML, not JSON
        return Response(ack[0], media_type=ack[1])
    return JSONResponse({"accepted": counts.accepted, "duplicates": counts.duplicates, "receipts": counts.receipts})
