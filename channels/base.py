"""The contract every messaging-platform adapter implements, and its errors.

An adapter does three things, and nothing else:

* ``verify(request)``: check the webhook's signature or secret in constant time;
  raise :class:`WebhookAuthError` when it does not hold (the route answers
  401/403 and stores nothing).
* ``parse(request)``: turn one webhook delivery into a :class:`ParsedWebhook`:
  every message in it (platforms batch events) as :class:`~bot.messages.InboundMessage`
  and every delivery receipt as :class:`DeliveryReceipt`. Malformed bodies raise
  :class:`WebhookPayloadError` (a 400).
* ``send(chat_id, message)``: deliver one :class:`~bot.messages.OutboundMessage`
  through the platform's official SDK, rendering buttons, cards and sources in
  the platform's best form and degrading to text where it has none. Failures
  are translated into :class:`SendError` with what the outbox needs to decide:
  retry later (``retry_after``), never retry (``permanent``), the shopper can no
  longer be reached (``unreachable``), or the request may have reached the
  platform (``maybe_sent``: do not resend blindly).

Exceptions::

    ChannelError
    ├── ChannelConfigError      a credential is missing or malformed (start-up)
    ├── WebhookAuthError        bad, missing or replayed signature (401/403)
    ├── WebhookPayloadError     body that is not the platform's format (400)
    └── SendError               the platform refused or failed a send
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import ClassVar, TypeVar

from bot.messages import InboundMessage, OutboundMessage


class ChannelError(Exception):
    """Base of every channel error."""


class ChannelConfigError(ChannelError):
    """A channel's settings are malformed; the message names the variable."""


class WebhookAuthError(ChannelError):
    """The webhook's signature or secret does not verify."""

    def __init__(self, message: str, status_code: int = 403) -> None:
        super().__init__(message)
        self.status_code = status_code


class WebhookPayloadError(ChannelError):
    """The webhook body is not in the platform's format."""


class SendError(ChannelError):
    """A send failed; the flags tell the outbox what to do next."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        permanent: bool = False,
        unreachable: bool = False,
        maybe_sent: bool = False,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent or unreachable
        self.unreachable = unreachable
        self.maybe_sent = maybe_sent
        self.code = code


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """What an adapter sees of one webhook delivery (headers lower-cased)."""

    method: str
    url: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """A platform's report on a message we sent (delivered, read, failed…)."""

    platform_message_id: str
    status: str
    chat_id: str = ""
    error_code: str | None = None
    unreachable: bool = False  # the error means the shopper blocked us or opted out


@dataclass(frozen=True, slots=True)
class ParsedWebhook:
    messages: list[InboundMessage] = field(default_factory=list)
    receipts: list[DeliveryReceipt] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SentMessage:
    """What the platform answered for a successful send."""

    platform_message_ids: tuple[str, ...]


Part = TypeVar("Part")


async def send_parts(parts: Sequence[Part], send_one: Callable[[int, Part], Awaitable[str]]) -> SentMessage:
    """Send a reply rendered as several platform messages, in order.

    ``send_one(index, part)`` sends one part and returns the platform's id for it,
    raising :class:`SendError`. A failure after some parts went out is
    ``maybe_sent``: the outbox must not resend the whole reply.
    """
    if not parts:
        raise SendError("nothing to send: the reply is empty", permanent=True, code="empty")
    sent: list[str] = []
    for index, part in enumerate(parts):
        try:
            sent.append(await send_one(index, part))
        except SendError as error:
            if not sent:
                raise
            raise SendError(
                f"{error} (after {len(sent)} of {len(parts)} parts were delivered)",
                permanent=error.permanent,
                unreachable=error.unreachable,
                maybe_sent=True,
                code=error.code,
            ) from error
    return SentMessage(tuple(sent))


@dataclass(frozen=True, slots=True)
class SendPolicy:
    """Platform rules the outbox applies before sending."""

    # free-form messages only within this window after the shopper's last message (None: no window)
    reply_window: timedelta | None = None
    messages_per_second: float = 30.0  # global pace
    per_chat_interval: float = 0.0  # seconds between two messages to one chat
    # window for replies written by staff (None: no window); Messenger allows 7 days with HUMAN_AGENT
    staff_reply_window: timedelta | None = None

    def __post_init__(self) -> None:
        if self.staff_reply_window is None and self.reply_window is not None:
            object.__setattr__(self, "staff_reply_window", self.reply_window)


class BaseChannel(ABC):
    """A messaging platform adapter. Opened once in the app lifespan."""

    name: ClassVar[str]
    policy: SendPolicy = SendPolicy()  # an adapter may set its own per instance (a configured pace)

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Open clients (HTTP sessions, SDK objects)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Close what :meth:`open` opened."""

    def webhook_ack(self) -> tuple[bytes, str] | None:
        """The body and media type the platform expects as acknowledgement; None for the default JSON."""
        return None

    def handshake(self, request: WebhookRequest) -> str | None:
        """Answer a platform's GET verification challenge; None when the platform has none."""
        return None

    @abstractmethod
    def verify(self, request: WebhookRequest) -> None:
        """Raise :class:`WebhookAuthError` unless the request provably comes from the platform."""

    @abstractmethod
    def parse(self, request: WebhookRequest) -> ParsedWebhook:
        """Every message and receipt in one verified delivery."""

    @abstractmethod
    async def send(self, chat_id: str, message: OutboundMessage, *, staff_reply: bool = False) -> SentMessage:
        """Deliver one reply; raise :class:`SendError` on failure.

        ``staff_reply`` marks a message written by a person from the store, which some
        platforms allow for longer after the shopper's last message (Messenger's
        ``HUMAN_AGENT`` tag); see :meth:`within_window`.
        """

    def within_window(self, last_inbound_at: datetime | None, now: datetime, *, staff_reply: bool = False) -> bool:
        """Whether a free-form message may be sent now under the platform's reply window."""
        window = self.policy.staff_reply_window if staff_reply else self.policy.reply_window
        if window is None:
            return True
        return last_inbound_at is not None and now - last_inbound_at <= window
