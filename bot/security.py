"""HTTP hardening shared by every route: security headers, body size limit, per-client rate limit.

The rate limiter is a token bucket per client address and route group, kept in
memory (one process serves one store; behind a proxy, the proxy's forwarded
address is used only when ``trust_forwarded_headers`` is on). Webhooks from the
platforms are not rate-limited here: they are authenticated, deduplicated and
acknowledged fast, and the platforms retry on any refusal.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.logs import request_id

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
# the chat page carries its script and style inline (one file, no build step)
CHAT_PAGE_CSP = (
    b"default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' https: data:; frame-ancestors 'none'"
)
# FastAPI's /docs page loads Swagger UI from its CDN
DOCS_CSP = (
    b"default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    b"style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' https: data:; frame-ancestors 'none'"
)
DEFAULT_CSP = b"default-src 'self'; img-src 'self' https: data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"
MAX_BODY_BYTES = 1_000_000
SIGNED_ROUTES = frozenset({"/api/catalog", "/api/inventory", "/api/orders"})
SIGNED_ROUTE_MAX_BODY = 50_000_000


class TokenBucket:
    """``rate`` requests per second with bursts up to ``burst``, per key."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic, max_keys: int = 50_000) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, key: str) -> tuple[bool, float]:
        """Whether a request may pass now, and else how many seconds until one may."""
        now = self._clock()
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if len(self._buckets) >= self._max_keys and key not in self._buckets:
            self._buckets.clear()  # bounded memory: forgetting buckets only ever lets clients through
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return True, 0.0
        self._buckets[key] = (tokens, now)
        return False, (1 - tokens) / self.rate


class HardeningMiddleware:
    """Adds security headers, refuses oversized bodies (413) and over-eager clients (429)."""

    def __init__(self, app: ASGIApp, *, limiter: TokenBucket, trust_forwarded: bool = False, max_body: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limiter = limiter
        self.trust_forwarded = trust_forwarded
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = dict(scope.get("headers") or [])
        # signed store-system routes (catalog upload, inventory) have their own limits and are not throttled
        store_system = path in SIGNED_ROUTES
        max_body = SIGNED_ROUTE_MAX_BODY if store_system else self.max_body
        declared = headers.get(b"content-length", b"").decode("latin-1")
        if declared.isdecimal() and int(declared) > max_body:
            await _error(send, 413, f"request body larger than {max_body} bytes")
            return
        limited = path.startswith(("/api/", "/staff/login")) and not store_system
        if limited:
            allowed, wait = self.limiter.allow(f"{self._client(scope, headers)}:{path.split('/')[1]}")
            if not allowed:
                await _error(send, 429, "too many requests, slow down", retry_after=wait)
                return
        csp = DOCS_CSP if path.startswith(("/docs", "/redoc")) else CHAT_PAGE_CSP if path == "/" else DEFAULT_CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                existing = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in existing]
                if b"content-security-policy" not in existing:
                    extra.append((b"content-security-policy", csp))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_body:
                    raise BodyTooLargeError
            return message

        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        token = request_id.set(incoming[:64] if incoming.isprintable() and incoming else uuid.uuid4().hex[:16])
        try:
            await self.app(scope, limited_receive, send_with_headers)
        except BodyTooLargeError:
            await _error(send, 413, f"request body larger than {max_body} bytes")
        finally:
            request_id.reset(token)

    def _client(self, scope: Scope, headers: dict[bytes, bytes]) -> str:
        if self.trust_forwarded and b"x-forwarded-for" in headers:
            return headers[b"x-forwarded-for"].split(b",")[0].strip().decode("latin-1")
        client = scope.get("client")
        return str(client[0]) if client else "unknown"


class BodyTooLargeError(Exception):
    """A chunked body grew past the limit while being read."""


async def _error(send: Send, status: int, message: str, retry_after: float | None = None) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *SECURITY_HEADERS]
    if retry_after is not None:
        headers.append((b"retry-after", str(max(1, int(retry_after + 0.999))).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
