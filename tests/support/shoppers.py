"""A shopper on one channel talking to the real engine, with a clock the test moves."""

from __future__ import annotations

from bot.messages import InboundMessage, OutboundMessage, ProductCard
from bot.runtime import Runtime
from tests.fakes.followups import Clock


class Chat:
    """One shopper on one channel; every message comes 5 seconds after the last."""

    def __init__(self, runtime: Runtime, clock: Clock, user: str, channel: str = "telegram", locale: str | None = None) -> None:
        self.runtime, self.clock, self.user, self.channel, self.locale = runtime, clock, user, channel, locale
        self.count = 0

    async def replies(self, text: str = "", *, tap: str | None = None) -> list[OutboundMessage]:
        """The bot's replies to ``text``, or to a tap on a button carrying ``tap``."""
        self.count += 1
        self.clock.advance(seconds=5)
        inbound = InboundMessage(
            channel=self.channel, external_id=f"{self.user}-{self.count}", sender_id=self.user, chat_id=self.user,
            text=text or (tap or ""), timestamp=self.clock(), locale_hint=self.locale, button_payload=tap,
        )
        return await self.runtime.engine.handle(inbound)

    async def say(self, text: str) -> str:
        return text_of(await self.replies(text))

    async def cards(self, text: str) -> list[ProductCard]:
        return [card for reply in await self.replies(text) for card in reply.products]

    async def verified(self) -> bool:
        return await self.runtime.store.is_verified(self.channel, self.user)

    async def customer(self) -> str:
        conversation = await self.runtime.store.open_conversation(self.channel, self.user)
        assert conversation is not None
        return conversation.customer_id


def text_of(replies: list[OutboundMessage]) -> str:
    """The replies' text, Babel's narrow no-break spaces as plain spaces."""
    return "\n".join(r.text for r in replies).replace("\u202f", " ").replace("\xa0", " ")
