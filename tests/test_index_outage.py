"""A search index that cannot answer (Weaviate down or unreachable): the shopper is told, nothing is lost, and it recovers."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime

from bot.messages import InboundMessage, OutboundMessage
from bot.runtime import open_runtime
from bot.settings import Settings
from kb.index import ALL_KINDS, BaseIndex, IndexUnavailableError
from kb.models import Hit, HitKind, SearchFilters

_ids = itertools.count(1)


class FlakyIndex:
    """The demo index behind a switch that makes every search fail as an unreachable Weaviate does."""

    def __init__(self, inner: BaseIndex) -> None:
        self.inner = inner
        self.down = True

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def search(
        self, query: str, filters: SearchFilters | None = None, k: int = 10, kinds: Sequence[HitKind] = ALL_KINDS
    ) -> list[Hit]:
        if self.down:
            raise IndexUnavailableError("Weaviate at http://127.0.0.1:1 could not search: connection refused")
        return await self.inner.search(query, filters, k=k, kinds=kinds)


async def test_an_unreachable_index_gets_a_polite_answer_and_the_next_turn_searches_again(settings: Settings) -> None:
    async with open_runtime(settings) as runtime:
        flaky = FlakyIndex(runtime.engine.index)
        runtime.engine.index = flaky  # type: ignore[assignment]

        async def say(text: str) -> list[OutboundMessage]:
            inbound = InboundMessage("web", f"m{next(_ids)}", "ola", "ola", text, datetime.now(UTC))
            return await runtime.engine.handle(inbound)

        down = await say("do you have wool socks?")
        assert "can't search the catalog right now" in " ".join(r.text for r in down)
        assert not any(r.products for r in down)
        conversation = await runtime.store.open_conversation("web", "ola")
        assert conversation is not None and conversation.state == "bot"  # not escalated, nothing lost
        stored = await runtime.store.messages_after("web", "ola")
        assert [m.author for m in stored] == ["shopper", "bot"]  # the turn was recorded and answered

        flaky.down = False
        up = await say("do you have wool socks?")
        assert "can't search" not in " ".join(r.text for r in up)
        assert any("sock" in card.title.lower() for r in up for card in r.products)
