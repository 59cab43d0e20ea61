"""On the demo store (outdoor and coffee gear): asked for a kind of thing it does not sell, the bot says so.

The demo catalog has running shoes, hiking boots, outdoor clothing, socks, bags,
kitchen and coffee gear: no yoga mats and no car tires. The answer names what the
store does sell, from its own category names, and shows no product.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from bot.runtime import Runtime, open_runtime
from bot.settings import Settings
from tests.fakes.followups import Clock
from tests.support.shoppers import Chat, text_of

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    async with open_runtime(settings, clock=Clock(NOW)) as opened:
        yield opened


@pytest.mark.parametrize(("message", "asked_for"), [("yoga mat", "yoga mat"), ("do you sell car tires?", "car tires")])
async def test_a_kind_of_product_the_store_does_not_sell_gets_we_dont_carry_that(runtime: Runtime, message: str, asked_for: str) -> None:
    chat = Chat(runtime, Clock(NOW), "ana", locale="en")
    replies = await chat.replies(message)
    text = text_of(replies)
    assert f'we don\'t carry anything like "{asked_for}"' in text
    assert "What we sell: " in text and "Running shoes" in text  # what the store does sell, in its catalog's words
    assert not [card for reply in replies for card in reply.products]


async def test_the_answer_is_in_the_shoppers_language(runtime: Runtime) -> None:
    chat = Chat(runtime, Clock(NOW), "lucia", locale="es")
    replies = await chat.replies("¿tienen pañales para bebé?")
    assert "no tenemos nada parecido a «pañales»" in text_of(replies)
    assert not [card for reply in replies for card in reply.products]


@pytest.mark.parametrize(
    ("message", "locale"),
    [("¿tienen calcetines de lana?", "es"), ("running shoes under 100", "en"), ("something warm for a winter hike", "en")],
)
async def test_what_the_store_sells_still_finds_products(runtime: Runtime, message: str, locale: str) -> None:
    chat = Chat(runtime, Clock(NOW), "tom", locale=locale)
    replies = await chat.replies(message)
    assert [card for reply in replies for card in reply.products]
    assert "carry" not in text_of(replies) and "no tenemos" not in text_of(replies)


async def test_saying_so_twice_does_not_hand_the_chat_to_staff(runtime: Runtime) -> None:
    chat = Chat(runtime, Clock(NOW), "kim", locale="en")
    await chat.replies("yoga mat")
    replies = await chat.replies("do you sell car tires?")
    assert 'we don\'t carry anything like "car tires"' in text_of(replies)  # an answer, not a second miss
    conversation = await runtime.store.open_conversation("telegram", "kim")
    assert conversation is not None and conversation.state == "bot"
