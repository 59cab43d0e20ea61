"""Meta's Graph API plumbing, shared by the WhatsApp Cloud API and Messenger adapters.

Both platforms deliver webhooks and accept sends the same way, so both adapters
build on :class:`GraphChannel`, which owns:

* the GET verification handshake: ``hub.mode=subscribe`` with ``hub.verify_token``
  compared in constant time with ``SHOPKEEPER_META_VERIFY_TOKEN``; the answer is
  ``hub.challenge``, anything else is a 403;
* the POST signature: ``X-Hub-Signature-256: sha256=<hex>``, an HMAC-SHA256 of
  the raw body keyed with the app secret, compared with :func:`hmac.compare_digest`
  (missing → 401; wrong, truncated or malformed → 403);
* one plain :class:`httpx.AsyncClient` per adapter (Meta ships no Python SDK),
  opened in :meth:`GraphChannel.open` and closed in :meth:`GraphChannel.close`.
  The access token travels only in the ``Authorization: Bearer`` header: never
  in a URL (which proxies and ``httpx`` log), a repr or an error message;
* error translation into :class:`~channels.base.SendError`: Graph answers
  ``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}``; each
  adapter classifies the codes (:meth:`GraphChannel.classify`), this module turns
  the class into the outbox's flags. Transport failures are classified here:
  the request never left (connect errors, pool timeouts: retry) or it may have
  reached Meta (read/write timeouts, dropped connections: ``maybe_sent``). A
  reply rendered as several Graph calls that fails after the first call went
  out is ``maybe_sent`` too: resending would repeat what the shopper already has.

The adapters live in :mod:`channels.whatsapp_cloud` and :mod:`channels.messenger`
and are importable from here (``from channels.meta import MessengerChannel``);
they are loaded lazily, so importing this module never imports both.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import re
import secrets
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import httpx
from pydantic import SecretStr

from bot.messages import OutboundMessage
from channels.base import BaseChannel, SendError, SentMessage, WebhookAuthError, WebhookPayloadError, WebhookRequest

if TYPE_CHECKING:
    from channels.messenger import MessengerChannel
    from channels.whatsapp_cloud import WhatsAppCloudChannel

__all__ = [
    "GraphChannel",
    "GraphError",
    "MessengerChannel",
    "Outcome",
    "WhatsAppCloudChannel",
    "split_text",
    "truncate",
]

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "x-hub-signature-256"
_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")
_WEB_URL = re.compile(r"https?://\S+", re.IGNORECASE)
MAX_CHALLENGE_CHARS = 256

Outcome = Literal["retry", "permanent", "unreachable"]


@dataclass(frozen=True, slots=True)
class GraphError:
    """A failed Graph API call: the HTTP status and the ``error`` object, when there was one."""

    status: int
    code: int | None = None
    subcode: int | None = None
    message: str = ""
    fbtrace_id: str = ""
    retry_after: float | None = None


class GraphChannel(BaseChannel):
    """What the Graph API adapters share: handshake, signature, HTTP client, error flags.

    Subclasses implement ``parse``, ``send`` (through :meth:`deliver`), and
    :meth:`classify` (their platform's error codes) and :meth:`message_id`
    (where the platform puts the id of a sent message).
    """

    #: Whether ``SendError.code`` carries ``error_subcode`` too (``"10/2018278"``).
    code_includes_subcode: ClassVar[bool] = False

    def __init__(
        self,
        *,
        app_secret: SecretStr,
        access_token: SecretStr,
        verify_token: SecretStr | None,
        graph_api_base: str,
        timeout: float = 20.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._app_secret = app_secret
        self._access_token = access_token
        self._verify_token = verify_token
        self._graph_api_base = graph_api_base.rstrip("/")
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 5.0))
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(graph_api_base={self._graph_api_base!r})"

    # -- lifecycle -------------------------------------------------------------

    async def open(self) -> None:
        """Open the HTTP client (idempotent)."""
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self._graph_api_base + "/",
                headers={"Authorization": "Bearer " + self._access_token.get_secret_value()},
                timeout=self._timeout,
                transport=self._transport,
            )

    async def close(self) -> None:
        """Close the HTTP client."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    # -- webhooks --------------------------------------------------------------

    def handshake(self, request: WebhookRequest) -> str:
        """Answer Meta's subscription check with ``hub.challenge`` when the verify token matches."""
        if self._verify_token is None:
            raise WebhookAuthError("SHOPKEEPER_META_VERIFY_TOKEN is not set, so no subscription can be verified")
        mode = request.query.get("hub.mode")
        offered = request.query.get("hub.verify_token")
        expected = self._verify_token.get_secret_value()
        if mode != "subscribe" or offered is None or not secrets.compare_digest(offered.encode(), expected.encode()):
            raise WebhookAuthError("hub.verify_token does not match (or hub.mode is not subscribe)")
        challenge = request.query.get("hub.challenge", "")
        if not challenge or len(challenge) > MAX_CHALLENGE_CHARS:
            raise WebhookAuthError("hub.challenge is missing or too long", status_code=400)
        return challenge

    def verify(self, request: WebhookRequest) -> None:
        """Check ``X-Hub-Signature-256`` against an HMAC-SHA256 of the raw body."""
        header = request.headers.get(SIGNATURE_HEADER, "").strip()
        if not header:
            raise WebhookAuthError("missing X-Hub-Signature-256 header", status_code=401)
        match = _SIGNATURE.fullmatch(header)
        if match is None:
            raise WebhookAuthError("malformed X-Hub-Signature-256 header")
        expected = hmac.new(self._app_secret.get_secret_value().encode(), request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, match.group(1).lower()):
            raise WebhookAuthError("X-Hub-Signature-256 does not match the body")

    # -- sending ---------------------------------------------------------------

    @abstractmethod
    def classify(self, error: GraphError) -> Outcome | None:
        """What a Graph error means on this platform; None leaves it to the HTTP status."""

    @abstractmethod
    def message_id(self, answer: Mapping[str, Any]) -> str:
        """The platform's id of the message a successful call created ('' if absent)."""

    async def deliver(self, path: str, bodies: Sequence[Mapping[str, Any]]) -> SentMessage:
        """POST each body in order; one platform message id per body.

        A failure after an earlier body went out is reported ``maybe_sent``: the
        shopper already has part of the reply, and a blind retry would repeat it.
        """
        ids: list[str] = []
        for body in bodies:
            try:
                answer = await self.post(path, body)
            except SendError as exc:
                if not ids:
                    raise
                raise SendError(
                    f"{exc} (after {len(ids)} of {len(bodies)} parts of the reply were delivered)",
                    maybe_sent=True,
                    permanent=exc.permanent,
                    unreachable=exc.unreachable,
                    code=exc.code,
                ) from exc
            message_id = self.message_id(answer)
            if not message_id:
                log.warning("%s accepted a message but its answer carries no message id", self.name)
            ids.append(message_id)
        return SentMessage(tuple(ids))

    async def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """One Graph API call; the JSON answer, or :class:`SendError`."""
        if self._client is None:
            raise RuntimeError(f"{type(self).__name__} is not open: call open() in the app lifespan first")
        try:
            response = await self._client.post(path.lstrip("/"), json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise SendError(f"{self.name}: could not reach the Graph API ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise SendError(
                f"{self.name}: the Graph API call failed after it was sent ({type(exc).__name__}); it may have been delivered",
                maybe_sent=True,
            ) from exc
        if response.is_success:
            try:
                answer = response.json()
            except ValueError:
                answer = None
            if not isinstance(answer, dict):
                raise SendError(f"{self.name}: the Graph API answered {response.status_code} without a JSON object", maybe_sent=True)
            return answer
        raise self.send_error(graph_error(response))

    def send_error(self, error: GraphError) -> SendError:
        """Translate a Graph error into the flags the outbox acts on."""
        outcome = self.classify(error)
        if outcome is None:
            outcome = "retry" if error.status == 429 or error.status >= 500 else "permanent"
        if error.code is None:
            code = f"http-{error.status}"
        elif self.code_includes_subcode and error.subcode is not None:
            code = f"{error.code}/{error.subcode}"
        else:
            code = str(error.code)
        detail = self.redact(error.message) or f"HTTP {error.status}"
        trace = f" [fbtrace_id {error.fbtrace_id}]" if error.fbtrace_id else ""
        return SendError(
            f"{self.name} send failed: {detail}{trace}",
            retry_after=error.retry_after if outcome == "retry" else None,
            permanent=outcome == "permanent",
            unreachable=outcome == "unreachable",
            code=code,
        )

    def redact(self, text: str) -> str:
        """``text`` with the access token (should Graph ever echo it) masked."""
        token = self._access_token.get_secret_value()
        return text.replace(token, "**********") if token else text


def graph_error(response: httpx.Response) -> GraphError:
    """Read Graph's ``error`` object (tolerating bodies that are not Graph's, such as proxy pages)."""
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    try:
        data = response.json()
    except ValueError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return GraphError(status=response.status_code, retry_after=retry_after)
    return GraphError(
        status=response.status_code,
        code=_int_or_none(error.get("code")),
        subcode=_int_or_none(error.get("error_subcode")),
        message=str(error.get("message") or "")[:300],
        fbtrace_id=str(error.get("fbtrace_id") or "")[:64],
        retry_after=retry_after,
    )


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date); None if absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdecimal():
        return int(value)
    return None


# -- rendering helpers ---------------------------------------------------------


def split_text(text: str, limit: int) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` characters, at a paragraph, line or word when possible."""
    if limit < 1:
        raise ValueError("limit must be positive")
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[: limit + 1]
        cut = -1
        for separator in ("\n\n", "\n", " "):
            position = window.rfind(separator)
            if position >= limit // 2:
                cut = position
                break
        if cut <= 0:
            cut = limit
        piece = rest[:cut].rstrip()
        if piece:
            pieces.append(piece)
        rest = rest[cut:].lstrip()
    if rest or not pieces:
        pieces.append(rest)
    return pieces


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marking the cut with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def has_web_url(text: str) -> bool:
    """Whether ``text`` contains an http(s) link (WhatsApp then shows a preview)."""
    return _WEB_URL.search(text) is not None


def is_web_url(value: str) -> bool:
    """Whether ``value`` is one http(s) URL that a platform can fetch."""
    return _WEB_URL.fullmatch(value.strip()) is not None


def without_buttons(message: OutboundMessage) -> OutboundMessage:
    """The same reply with its buttons removed (rendered natively elsewhere)."""
    return OutboundMessage(text=message.text, products=message.products, sources=message.sources)


# -- payload helpers (every malformed shape becomes WebhookPayloadError) -------


def load_payload(body: bytes, expected_object: str) -> dict[str, Any]:
    """The webhook body as a JSON object whose ``object`` is ``expected_object``."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise WebhookPayloadError("the body is not JSON") from exc
    if not isinstance(data, dict):
        raise WebhookPayloadError("the body is not a JSON object")
    if data.get("object") != expected_object:
        raise WebhookPayloadError(f"expected object {expected_object!r}, got {str(data.get('object'))[:40]!r}")
    return data


def as_dict(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise WebhookPayloadError(f"{where} is not an object")
    return value


def as_list(value: object, where: str, *, optional: bool = False) -> list[Any]:
    if value is None and optional:
        return []
    if not isinstance(value, list):
        raise WebhookPayloadError(f"{where} is not a list")
    return value


def as_id(value: object, where: str) -> str:
    """A required identifier: a non-empty string or an integer, as a string."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise WebhookPayloadError(f"{where} is missing or not an id")


def opt_str(value: object) -> str:
    """An optional text field: the string, an integer as a string, or ''."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""


def opt_dict(value: object) -> dict[str, Any]:
    """An optional object field: the object, or {} for anything else."""
    return value if isinstance(value, dict) else {}


def epoch(value: object, where: str, *, millis: bool = False) -> datetime:
    """A Unix timestamp (seconds, or milliseconds) as an aware UTC datetime."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise WebhookPayloadError(f"{where} is not a timestamp")
    if isinstance(value, str) and not re.fullmatch(r"\d{1,16}(\.\d{1,9})?", value.strip()):
        raise WebhookPayloadError(f"{where} is not a timestamp")
    number = float(value)
    if millis:
        number /= 1000
    try:
        return datetime.fromtimestamp(number, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise WebhookPayloadError(f"{where} is out of range") from exc


def __getattr__(name: str) -> Any:
    """Load an adapter on first use, so this module never imports both (nor in a cycle)."""
    if name == "WhatsAppCloudChannel":
        from channels.whatsapp_cloud import WhatsAppCloudChannel

        return WhatsAppCloudChannel
    if name == "MessengerChannel":
        from channels.messenger import MessengerChannel

        return MessengerChannel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
