"""A notifier that keeps the codes it was asked to send, for tests to read like a mailbox."""

from __future__ import annotations

from dataclasses import dataclass

from bot.notifiers import BaseNotifier, NotifierError


@dataclass(frozen=True)
class SentCode:
    email: str
    code: str
    customer_id: str
    store_name: str
    locale: str


class MailboxNotifier(BaseNotifier):
    """Records every code "sent"; ``fail`` makes it raise like a mail server that is down."""

    def __init__(self) -> None:
        self.sent: list[SentCode] = []
        self.fail = False

    async def send_code(self, *, email: str, code: str, customer_id: str, store_name: str, locale: str) -> None:
        if self.fail:
            raise NotifierError("mail server unavailable")
        self.sent.append(SentCode(email, code, customer_id, store_name, locale))

    def last_code_for(self, email: str) -> str:
        return next(s.code for s in reversed(self.sent) if s.email == email)
