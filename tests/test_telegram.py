"""The Telegram adapter: recorded Updates, rendering, sends against the fake Bot API, polling, webhook setup."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import SecretStr
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut

from bot.app import create_app
from bot.messages import Button, OutboundMessage, ProductCard, Source
from bot.runtime import open_runtime
from bot.settings import Settings
from channels.base import ChannelConfigError, SendError, WebhookAuthError, WebhookPayloadError
from channels.telegram import (
    ALLOWED_UPDATES,
    MAX_CAPTION_UNITS,
    MAX_TEXT_UNITS,
    TelegramChannel,
    poll_once,
    render,
    run_polling,
    setup_webhook,
    visible_units,
)
from tests.channel_cases.telegram import CASE, SECRET, TOKEN, FakeTelegram, delivery, text_update, visible_text
from tests.support.fake_server import serve_in_thread
from tests.support.server import free_port

FIXTURES = Path(__file__).parent / "fixtures" / "telegram"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SOCK = ProductCard(
    "SOCK-1", "Merino Hiking Sock", Decimal("18.00"), "EUR", True, "https://shop.example/p/sock",
    image="https://shop.example/img/sock.jpg", price_text="€18.00", reason="under your €20 budget",
)
COTTON = ProductCard("SOCK-2", "Cotton <Sock> & Co", Decimal("9.50"), "EUR", False, "https://shop.example/p/cotton", price_text="€9.50")


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def make_channel(api: str = "http://127.0.0.1:9", **options: Any) -> TelegramChannel:
    options.setdefault("webhook_secret", SECRET)
    return TelegramChannel(TOKEN, api_base=api + "/bot", clock=lambda: NOW, **options)


@cache
def parser(*, allow_groups: bool = False, secret: str | None = SECRET) -> TelegramChannel:
    """An unopened channel for parse and verify (building one costs two HTTP clients' TLS set-up)."""
    return make_channel(allow_groups=allow_groups, webhook_secret=secret)


@pytest.fixture
def fake() -> Iterator[tuple[FakeTelegram, str]]:
    platform = FakeTelegram()
    with serve_in_thread(platform.app) as url:
        yield platform, url


# -- parsing recorded Updates ---------------------------------------------------


def test_text_message_becomes_one_inbound_message_with_the_locale_hint() -> None:
    update = load("text_message")
    (message,) = parser().parse(delivery(update)).messages
    assert message.channel == "telegram"
    assert message.external_id == "815000001"
    assert message.chat_id == message.sender_id == "1111111"
    assert message.text == "¿tienen calcetines de lana por menos de 20 €?"
    assert message.locale_hint == "es"
    assert message.timestamp == datetime.fromtimestamp(1763640000, UTC)
    assert message.attachments == () and message.button_payload is None
    assert message.raw == update


def test_tapped_button_carries_its_payload_and_title() -> None:
    (message,) = parser().parse(delivery(load("callback_query"))).messages
    assert message.button_payload == "/topic shipping"
    assert message.text == "Envíos"
    assert message.chat_id == message.sender_id == "1111111"
    assert message.external_id == "815000002"
    assert message.timestamp == NOW  # a tap has no date of its own


def test_tapped_button_whose_title_is_unknown_falls_back_to_its_data() -> None:
    update = load("callback_query")
    update["callback_query"]["data"] = "/human-now"
    (message,) = parser().parse(delivery(update)).messages
    assert (message.text, message.button_payload) == ("/human-now", "/human-now")


@pytest.mark.parametrize(
    ("fixture", "kind", "mime", "name"),
    [
        ("photo", "image", "image/jpeg", ""),
        ("sticker", "sticker", "", "👍"),
        ("voice", "audio", "audio/ogg", ""),
        ("document", "document", "application/pdf", "factura-1042.pdf"),
        ("location", "location", "", ""),
    ],
)
def test_non_text_messages_become_attachments_with_empty_text(fixture: str, kind: str, mime: str, name: str) -> None:
    (message,) = parser().parse(delivery(load(fixture))).messages
    assert message.text == ""
    (attachment,) = message.attachments
    assert (attachment.kind, attachment.mime_type, attachment.name) == (kind, mime, name)
    assert TOKEN not in attachment.url  # file downloads need the token: never put such a URL in a message


def test_location_is_a_geo_uri() -> None:
    (message,) = parser().parse(delivery(load("location"))).messages
    assert message.attachments[0].url == "geo:40.416775,-3.70379"


def test_a_photo_caption_is_what_the_shopper_said() -> None:
    (message,) = parser().parse(delivery(load("photo_with_caption"))).messages
    assert message.text == "¿tienen esta en azul?"
    assert [a.kind for a in message.attachments] == ["image"]


def test_edited_messages_are_ignored() -> None:
    assert parser().parse(delivery(load("edited_message"))) == parser().parse(delivery(load("edited_message")))
    parsed = parser().parse(delivery(load("edited_message")))
    assert parsed.messages == [] and parsed.receipts == []
    assert "edited_message" not in ALLOWED_UPDATES


def test_group_messages_are_ignored_unless_groups_are_allowed() -> None:
    assert parser().parse(delivery(load("group_message"))).messages == []
    (message,) = parser(allow_groups=True).parse(delivery(load("group_message"))).messages
    assert message.chat_id == "-1001234567890"
    assert message.sender_id == "2222222"
    assert message.text == "/help"  # the bot's @name is not part of the command
    assert message.locale_hint == "pt-br"


def test_a_shopper_blocking_the_bot_is_an_unreachable_receipt() -> None:
    parsed = parser().parse(delivery(load("my_chat_member_blocked")))
    (receipt,) = parsed.receipts
    assert receipt.unreachable and receipt.chat_id == "1111111" and receipt.status == "blocked"
    assert parsed.messages == []


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"\xff\xfe\x00",
        b"[]",
        b'"update"',
        b'{"update_id": "815000001"}',
        b'{"update_id": true}',
        b'{"update_id": 1, "message": "hello"}',
        b'{"update_id": 1, "message": {"message_id": 1}}',
        b'{"update_id": 1, "message": {"message_id": 1, "date": "yesterday", "chat": {"id": 1, "type": "private"}, "text": "x"}}',
        b"[" * 100_000,
    ],
)
def test_malformed_bodies_are_payload_errors(body: bytes) -> None:
    with pytest.raises(WebhookPayloadError):
        parser().parse(delivery(body))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
update_like = st.fixed_dictionaries(
    {"update_id": st.integers(min_value=0, max_value=2**40)},
    optional={
        "message": st.fixed_dictionaries(
            {"message_id": json_values, "date": json_values, "chat": json_values},
            optional={"text": json_values, "from": json_values, "photo": json_values, "location": json_values},
        ),
        "callback_query": st.dictionaries(st.sampled_from(["id", "from", "data", "message", "chat_instance"]), json_values),
        "my_chat_member": json_values,
    },
)


@hypothesis_settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()) | update_like.map(lambda v: json.dumps(v).encode()))
def test_parse_raises_only_payload_errors(body: bytes) -> None:
    try:
        parsed = parser(allow_groups=True).parse(delivery(body))
    except WebhookPayloadError:
        return
    for message in parsed.messages:
        assert isinstance(message.text, str) and message.timestamp.tzinfo is not None


# -- verification --------------------------------------------------------------


def test_the_secret_header_is_required_and_compared() -> None:
    channel = parser()
    channel.verify(delivery(load("text_message")))
    with pytest.raises(WebhookAuthError) as missing:
        channel.verify(delivery(load("text_message"), secret=None))
    assert missing.value.status_code == 401
    for wrong in ("wrong", SECRET + "x", SECRET[:-1], "ñandú-" + SECRET):
        with pytest.raises(WebhookAuthError) as refused:
            channel.verify(delivery(load("text_message"), secret=wrong))
        assert refused.value.status_code == 403


def test_without_a_configured_secret_every_delivery_is_refused() -> None:
    channel = parser(secret=None)
    for secret in (SECRET, None, ""):
        with pytest.raises(WebhookAuthError) as refused:
            channel.verify(delivery(load("text_message"), secret=secret))
        assert refused.value.status_code == 403


# -- rendering -----------------------------------------------------------------


def test_text_is_escaped_html_with_bold_and_quotes() -> None:
    (part,), keyboard = render(OutboundMessage("Prices are **<b>final</b>** & fair\n> Free returns\n> within 30 days\nThanks"))
    assert part.html == (
        "Prices are <b>&lt;b&gt;final&lt;/b&gt;</b> &amp; fair\n<blockquote>Free returns\nwithin 30 days</blockquote>\nThanks"
    )
    assert keyboard is None
    assert visible_text(part.html)[1] == []


def test_buttons_become_an_inline_keyboard_and_oversized_payloads_degrade_to_text() -> None:
    long_payload = "/topic " + "x" * 70
    (part,), keyboard = render(OutboundMessage("Pick one", buttons=(Button("Shipping", "/topic shipping"), Button("Más", long_payload))))
    assert keyboard is not None
    assert keyboard.to_dict() == {"inline_keyboard": [[{"text": "Shipping", "callback_data": "/topic shipping"}]]}
    assert "[1] Más" in part.html


def test_products_are_a_numbered_list_with_links_and_the_first_page_previewed() -> None:
    (part,), _ = render(OutboundMessage("Two options:", products=(SOCK, COTTON), sources=(Source("Returns", "https://shop.example/r"),)))
    assert '1. <a href="https://shop.example/p/sock"><b>Merino Hiking Sock</b></a> — €18.00' in part.html
    assert "<i>under your €20 budget</i>" in part.html
    assert '2. <a href="https://shop.example/p/cotton"><b>Cotton &lt;Sock&gt; &amp; Co</b></a> — €9.50 (out of stock)' in part.html
    assert 'Sources: <a href="https://shop.example/r">Returns</a>' in part.html
    assert part.photo == "" and part.preview == "https://shop.example/p/sock"


def test_a_single_product_with_an_image_is_a_photo_with_the_reply_as_caption() -> None:
    (part,), keyboard = render(OutboundMessage("This one fits:", buttons=(Button("More", "/more"),), products=(SOCK,)))
    assert part.photo == SOCK.image
    assert part.html.startswith("This one fits:\n1. ") and "€18.00" in part.html
    assert keyboard is not None
    (long,), _ = render(OutboundMessage("word " * 250, products=(SOCK,)))
    assert long.photo == "" and MAX_CAPTION_UNITS < visible_units(long.html) <= MAX_TEXT_UNITS


def test_long_text_is_split_under_the_limit_at_spaces_with_valid_html() -> None:
    text = "\n".join(f"Line {i}: **socks** & <wool> " + "lorem ipsum " * 30 for i in range(40)) + "\n" + "z" * 5000
    parts, _ = render(OutboundMessage(text))
    assert len(parts) > 2
    for part in parts:
        visible, errors = visible_text(part.html)
        assert errors == [] and len(visible.encode("utf-16-le")) // 2 <= MAX_TEXT_UNITS
    joined = "".join(visible_text(p.html)[0] for p in parts)
    assert joined.count("z") == 5000 and joined.count("socks") == 40


@hypothesis_settings(max_examples=150, deadline=None)
@given(
    text=st.text(min_size=1, max_size=6000),
    titles=st.lists(st.text(min_size=1, max_size=200), max_size=3),
    image=st.booleans(),
)
def test_rendering_always_gives_telegram_valid_html_within_limits(text: str, titles: list[str], image: bool) -> None:
    picture = "https://shop.example/i.jpg" if image else ""
    cards = tuple(
        ProductCard(f"S{i}", title, Decimal("1.00"), "EUR", True, "https://shop.example/p", image=picture) for i, title in enumerate(titles)
    )
    parts, _ = render(OutboundMessage(text, products=cards))
    for part in parts:
        visible, errors = visible_text(part.html)
        limit = MAX_CAPTION_UNITS if part.photo else MAX_TEXT_UNITS
        assert errors == []
        assert len(visible.encode("utf-16-le")) // 2 <= limit


# -- sending against the fake Bot API -------------------------------------------


async def test_send_text_with_keyboard_uses_html_and_no_preview(fake: tuple[FakeTelegram, str]) -> None:
    platform, url = fake
    channel = make_channel(url)
    await channel.open()
    try:
        sent = await channel.send("1111111", OutboundMessage("Hi **there**", buttons=(Button("Shipping", "/topic shipping"),)))
    finally:
        await channel.close()
    (record,) = platform.sent
    assert record.chat_id == "1111111" and record.text == "Hi <b>there</b>"
    assert record.raw["parse_mode"] == "HTML"
    assert record.raw["reply_markup"] == {"inline_keyboard": [[{"text": "Shipping", "callback_data": "/topic shipping"}]]}
    assert record.raw["link_preview_options"] == {"is_disabled": True}
    assert sent.platform_message_ids == ("1111111:501",)


async def test_a_single_product_goes_out_as_a_photo_and_falls_back_to_text_when_refused(fake: tuple[FakeTelegram, str]) -> None:
    platform, url = fake
    channel = make_channel(url)
    await channel.open()
    try:
        await channel.send("1111111", OutboundMessage("This one:", products=(SOCK,)))
        platform.reject_photos = True
        await channel.send("1111111", OutboundMessage("This one:", products=(SOCK,)))
    finally:
        await channel.close()
    assert [name for name, _ in platform.calls if name.startswith("send")] == ["sendPhoto", "sendPhoto", "sendMessage"]
    assert platform.sent[0].raw["photo"] == SOCK.image and "Merino Hiking Sock" in platform.sent[0].raw["caption"]
    assert "Merino Hiking Sock" in platform.sent[1].text  # the caption, as text


@pytest.mark.parametrize(
    ("status", "flags"),
    [
        (429, {"retry_after": 7.0, "permanent": False, "unreachable": False, "maybe_sent": False}),
        (403, {"retry_after": None, "permanent": True, "unreachable": True, "maybe_sent": False}),
        (400, {"retry_after": None, "permanent": True, "unreachable": False, "maybe_sent": False}),
        (500, {"retry_after": None, "permanent": False, "unreachable": False, "maybe_sent": False}),
        (502, {"retry_after": None, "permanent": False, "unreachable": False, "maybe_sent": False}),
    ],
)
async def test_platform_errors_are_translated(fake: tuple[FakeTelegram, str], status: int, flags: dict[str, Any]) -> None:
    platform, url = fake
    channel = make_channel(url)
    platform.fail_next(status, retry_after=7)
    await channel.open()
    try:
        with pytest.raises(SendError) as caught:
            await channel.send("1111111", OutboundMessage("hello"))
    finally:
        await channel.close()
    error = caught.value
    assert {name: getattr(error, name) for name in flags} == flags
    assert TOKEN not in str(error)


async def test_a_timeout_after_the_request_left_is_maybe_sent(fake: tuple[FakeTelegram, str]) -> None:
    platform, url = fake
    channel = make_channel(url, read_seconds=0.3)
    platform.delay_next(1.5)
    await channel.open()
    try:
        with pytest.raises(SendError) as caught:
            await channel.send("1111111", OutboundMessage("hello"))
    finally:
        await channel.close()
    assert caught.value.maybe_sent and not caught.value.permanent


async def test_no_connection_at_all_is_retried_not_maybe_sent() -> None:
    channel = make_channel(f"http://127.0.0.1:{free_port()}")
    await channel.open()  # getMe fails too: start-up goes on, the outbox retries
    try:
        with pytest.raises(SendError) as caught:
            await channel.send("1111111", OutboundMessage("hello"))
    finally:
        await channel.close()
    assert not caught.value.maybe_sent and not caught.value.permanent and caught.value.retry_after is None


def test_timeouts_are_maybe_sent_only_once_bytes_may_have_left() -> None:
    channel = make_channel()

    def timed_out(cause: BaseException) -> TimedOut:
        error = TimedOut()
        error.__cause__ = cause
        return error

    request = httpx.Request("POST", "https://api.telegram.org/botX/sendMessage")
    assert not channel._translate(timed_out(httpx.PoolTimeout("pool", request=request))).maybe_sent
    assert not channel._translate(timed_out(httpx.ConnectTimeout("connect", request=request))).maybe_sent
    assert channel._translate(timed_out(httpx.ReadTimeout("read", request=request))).maybe_sent
    broken = NetworkError("httpx.RemoteProtocolError: closed")
    broken.__cause__ = httpx.RemoteProtocolError("closed", request=request)
    assert channel._translate(broken).maybe_sent
    assert channel._translate(BadRequest("Bad Request: message is too long")).permanent
    assert channel._translate(RetryAfter(timedelta(seconds=3))).retry_after == 3.0


async def test_a_failure_after_the_first_part_is_maybe_sent_not_retried_whole(fake: tuple[FakeTelegram, str]) -> None:
    platform, url = fake
    channel = make_channel(url)
    platform.fail_next(500, after=1)
    await channel.open()
    try:
        with pytest.raises(SendError) as caught:
            await channel.send("1111111", OutboundMessage("lorem ipsum " * 500))
    finally:
        await channel.close()
    assert caught.value.maybe_sent and len(platform.sent) == 1


async def test_a_rejected_token_stops_start_up_without_printing_it(fake: tuple[FakeTelegram, str]) -> None:
    _, url = fake
    channel = TelegramChannel("7012345678:AAAnotherTokenThatTheFakeRejects0000", api_base=url + "/bot")
    with pytest.raises(ChannelConfigError) as caught:
        await channel.open()
    await channel.close()
    assert "AAAnother" not in str(caught.value) and caught.value.__cause__ is None


async def test_a_tapped_button_is_answered_so_the_spinner_stops(fake: tuple[FakeTelegram, str]) -> None:
    platform, url = fake
    channel = make_channel(url)
    await channel.open()
    try:
        channel.parse(delivery(load("callback_query")))
    finally:
        await channel.close()  # waits for the background answer
    assert [params["callback_query_id"] for params in platform.called("answerCallbackQuery")] == ["4382bfdwdsb323b2d9"]


# -- webhook registration and polling ----------------------------------------------


async def test_setup_webhook_registers_the_url_the_secret_and_the_updates(fake: tuple[FakeTelegram, str]) -> None:
    platform, url = fake
    channel = make_channel(url)
    await channel.open()
    try:
        registered = await setup_webhook(channel, "https://shop.example/")
    finally:
        await channel.close()
    assert registered == "https://shop.example/webhooks/telegram"
    (params,) = platform.called("setWebhook")
    assert params["url"] == registered and params["secret_token"] == SECRET
    assert params["allowed_updates"] == list(ALLOWED_UPDATES)


async def test_setup_webhook_needs_a_secret_and_https() -> None:
    with pytest.raises(ChannelConfigError):
        await setup_webhook(make_channel(webhook_secret=None), "https://shop.example")
    with pytest.raises(ChannelConfigError):
        await setup_webhook(make_channel(), "http://shop.example")


def _polling_settings(data_dir: Path, url: str) -> Settings:
    return Settings(data_dir=data_dir, _env_file=None, telegram_bot_token=SecretStr(TOKEN), telegram_api_base=url + "/bot")  # type: ignore[call-arg]


async def test_polled_updates_take_the_webhook_path_to_a_reply(fake: tuple[FakeTelegram, str], data_dir: Path) -> None:
    platform, url = fake
    platform.push_update(text_update("do you have wool socks?", chat_id=1111111, update_id=900))
    platform.push_update(load("edited_message") | {"update_id": 901})
    async with open_runtime(_polling_settings(data_dir, url)) as runtime:
        channel = runtime.channels["telegram"]
        assert isinstance(channel, TelegramChannel)
        offset = await poll_once(runtime, channel, None, poll_seconds=0)
        assert offset == 902
        await runtime.worker.wait_idle()
        await runtime.sender.deliver_due()
        assert await poll_once(runtime, channel, offset, poll_seconds=0) == 902  # confirmed updates are gone
    (reply,) = platform.sent
    assert reply.chat_id == "1111111" and "sock" in reply.text.lower()


async def test_a_group_chat_is_answered_in_the_group_until_the_bot_is_removed(fake: tuple[FakeTelegram, str], data_dir: Path) -> None:
    platform, url = fake
    group = load("group_message")  # from user 2222222 in supergroup -1001234567890
    asked = {**group, "message": {**group["message"], "text": "do you have wool socks?", "entities": []}}
    platform.push_update(asked)
    settings = _polling_settings(data_dir, url).model_copy(update={"telegram_allow_groups": True})
    async with open_runtime(settings) as runtime:
        channel = runtime.channels["telegram"]
        assert isinstance(channel, TelegramChannel)
        offset = await poll_once(runtime, channel, None, poll_seconds=0)
        await runtime.worker.wait_idle()
        await runtime.sender.deliver_due()
        (reply,) = platform.sent  # the group's id is nobody's identity: it is still reachable
        assert reply.chat_id == "-1001234567890" and "sock" in reply.text.lower()
        assert [item.status for item in await runtime.store.outbox_items("telegram", "-1001234567890")] == ["sent"]

        platform.fail_next(403)  # "Forbidden: bot was kicked from the supergroup chat"
        again = {**asked, "update_id": asked["update_id"] + 1, "message": {**asked["message"], "message_id": 89, "text": "and gloves?"}}
        platform.push_update(again)
        offset = await poll_once(runtime, channel, offset, poll_seconds=0)
        await runtime.worker.wait_idle()
        await runtime.sender.deliver_due()
        assert await runtime.store.reachability("telegram", "-1001234567890") == (False, ANY)
        assert await runtime.store.reachability("telegram", "2222222") == (True, ANY)  # the member did not block us

        third = {**asked, "update_id": asked["update_id"] + 2, "message": {**asked["message"], "message_id": 90, "text": "thanks"}}
        platform.push_update(third)  # the group wrote again: the bot is back in it
        await poll_once(runtime, channel, offset, poll_seconds=0)
        await runtime.worker.wait_idle()
        await runtime.sender.deliver_due()
        statuses = [item.status for item in await runtime.store.outbox_items("telegram", "-1001234567890")]
    assert statuses == ["sent", "failed", "sent"]
    assert [record.chat_id for record in platform.sent] == ["-1001234567890", "-1001234567890"]


async def test_run_polling_removes_the_webhook_and_polls_until_stopped(fake: tuple[FakeTelegram, str], data_dir: Path) -> None:
    platform, url = fake
    async with open_runtime(_polling_settings(data_dir, url)) as runtime:
        stop = asyncio.Event()
        polling = asyncio.create_task(run_polling(runtime, stop=stop, poll_seconds=1))
        platform.push_update(text_update("hello", chat_id=1111111, update_id=910))
        for _ in range(200):
            if await runtime.store.count("inbox"):
                break
            await asyncio.sleep(0.02)  # waiting for the real poll loop against the fake server
        stop.set()
        await asyncio.wait_for(polling, timeout=10)
        await runtime.worker.wait_idle()
    assert platform.called("deleteWebhook")
    offsets = [int(params.get("offset") or 0) for params in platform.called("getUpdates")]
    assert offsets[-1] == 911


async def test_run_polling_needs_the_telegram_channel(data_dir: Path) -> None:
    async with open_runtime(Settings(data_dir=data_dir, _env_file=None)) as runtime:  # type: ignore[call-arg]
        with pytest.raises(ChannelConfigError):
            await run_polling(runtime)


# -- the adapter as an object ---------------------------------------------------------


def test_repr_and_errors_never_show_the_token() -> None:
    channel = make_channel()
    assert TOKEN not in repr(channel) and SECRET not in repr(channel)
    assert "7012345678" in repr(channel)


def test_policy_paces_like_telegram_asks() -> None:
    policy = make_channel().policy
    assert (policy.reply_window, policy.messages_per_second, policy.per_chat_interval) == (None, 30.0, 1.0)


def test_signed_garbage_posted_to_the_app_never_yields_a_server_error(tmp_path: Path, demo_seed: Path) -> None:
    platform = FakeTelegram()
    data = tmp_path / "var"
    shutil.copytree(demo_seed, data)
    with serve_in_thread(platform.app) as url:
        settings = Settings(data_dir=data, _env_file=None, **CASE.settings(url))  # type: ignore[call-arg]
        with TestClient(create_app(settings, start_scheduler=False)) as client:

            @hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
            @given(body=st.binary(max_size=200) | update_like.map(lambda v: json.dumps(v).encode()))
            def post(body: bytes) -> None:
                headers = {"content-type": "application/json", "x-telegram-bot-api-secret-token": SECRET}
                response = client.post("/webhooks/telegram", content=body, headers=headers)
                assert response.status_code < 500, response.text

            post()
