"""One module per platform adapter, each exposing ``CASE``: how the contract suite drives it.

A case knows how to point its adapter at a local fake of the platform's API
(a Starlette app served on loopback that speaks the platform's wire protocol
and records what it received), and how to build webhook deliveries the
platform would send, correctly signed or forged.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.applications import Starlette

from channels.base import WebhookRequest


@dataclass
class SentRecord:
    """One call the adapter made to the fake send API, normalised for assertions."""

    chat_id: str
    text: str
    raw: dict[str, Any] = field(default_factory=dict)


class FakePlatform(Protocol):
    """A local fake of the platform API."""

    app: Starlette
    sent: list[SentRecord]

    def fail_next(self, status: int, *, retry_after: int | None = None, count: int = 1) -> None:
        """Answer the next ``count`` send calls with this HTTP status (and Retry-After / platform equivalent)."""


class ChannelCase(Protocol):
    name: str  # the channel's name in the app (``/webhooks/{name}``)

    def fake(self) -> FakePlatform: ...

    def settings(self, fake_base_url: str) -> dict[str, Any]:
        """Settings overrides that enable this channel against the fake (and a public URL)."""

    def text_delivery(self, *, public_url: str, text: str, chat_id: str, message_id: str) -> WebhookRequest:
        """A correctly signed webhook delivery of one text message from ``chat_id``."""

    def forged(self, request: WebhookRequest) -> list[WebhookRequest]:
        """The same delivery with a wrong, a missing and a truncated signature."""


def all_cases() -> list[ChannelCase]:
    cases: list[ChannelCase] = []
    for module in pkgutil.iter_modules(__path__):
        cases.append(importlib.import_module(f"{__name__}.{module.name}").CASE)
    return sorted(cases, key=lambda case: case.name)
