"""Messages to shoppers outside the chat: the one-time codes that prove who they are.

A notifier delivers a verification code to the e-mail address a shopper gave
(:mod:`bot.verification`). :class:`BaseNotifier` is the contract; an implementation
must deliver the code to that address only, must not log the code or the address
in clear, and raises :class:`NotifierError` when it could not send (the shopper
is then told the same as when the address is unknown, so nothing leaks).

:class:`LogNotifier` is the demo's notifier: it sends nothing. At INFO it logs
that a code was issued (with a pseudonym of the customer, never the code or the
address); the demo user sees the code through ``echo`` (``shopkeeper chat`` prints
it on the terminal's stderr) or in the DEBUG log (``SHOPKEEPER_LOG_LEVEL=DEBUG``,
which the log formatter already treats as "personal data allowed").
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable

from bot.logs import hash_id

log = logging.getLogger(__name__)


class NotifierError(RuntimeError):
    """The code could not be sent."""


class BaseNotifier(ABC):
    """Sends one-time verification codes by e-mail."""

    @abstractmethod
    async def send_code(self, *, email: str, code: str, customer_id: str, store_name: str, locale: str) -> None:
        """Deliver ``code`` to ``email`` in ``locale`` (the message names the store and says the code expires in 10 minutes)."""


def mask_email(email: str) -> str:
    """``l***@example.com``: enough for a person to recognise their address, not to collect it."""
    local, _, domain = email.partition("@")
    return (local[:1] + "***@" + domain) if domain else "***"


class LogNotifier(BaseNotifier):
    """Sends nothing: logs that a code was issued; shows the code only on the demo terminal or at DEBUG."""

    def __init__(self, *, echo: Callable[[str], None] | None = None) -> None:
        self.echo = echo

    def __repr__(self) -> str:
        return "LogNotifier()"

    async def send_code(self, *, email: str, code: str, customer_id: str, store_name: str, locale: str) -> None:
        log.info("verification code issued for customer %s (LogNotifier: no e-mail is sent)", hash_id(customer_id))
        log.debug("verification code for %s: %s", mask_email(email), code)
        if self.echo is not None:
            self.echo(f"[demo e-mail to {mask_email(email)} from {store_name}] your verification code is {code}")
