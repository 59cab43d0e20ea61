"""The Messenger adapter: recorded payloads, handshake and signature, rendering, HUMAN_AGENT, error flags."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections import deque
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from bot.app import create_app
from bot.messages import Button, OutboundMessage, ProductCard, Source
from bot.settings import Settings
from channels.base import ParsedWebhook, SendError, SentMessage, WebhookAuthError, WebhookPayloadError, WebhookRequest
from channels.messenger import postback_id
from channels.meta import MessengerChannel
from tests.channel_cases.messenger import (
    APP_SECRET,
    CASE,
    GRAPH_VERSION,
    PAGE_ACCESS_TOKEN,
    PAGE_ID,
    VERIFY_TOKEN,
    signed_request,
    text_message_payload,
    validate,
)

FIXTURES = Path(__file__).parent / "fixtures" / "messenger"
GRAPH = f"https://graph.test/{GRAPH_VERSION}"
PSID = "6783512448326415"

Answer = httpx.Response | type[Exception]


class FakeSendApi:
    """An ``httpx.MockTransport`` handler: records requests, answers queued responses or the Send API's success."""

    def __init__(self, *answers: Answer) -> None:
        self.requests: list[httpx.Request] = []
        self._answers: deque[Answer] = deque(answers)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self._answers:
            answer = self._answers.popleft()
            if isinstance(answer, httpx.Response):
                return answer
            raise answer("simulated transport failure", request=request)  # type: ignore[call-arg]
        recipient = json.loads(request.content)["recipient"]["id"]
        return httpx.Response(200, json={"recipient_id": recipient, "message_id": f"m_sent-{len(self.requests)}"})

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(request.content) for request in self.requests]


def make_channel(api: FakeSendApi | None = None, *, verify_token: str | None = VERIFY_TOKEN) -> MessengerChannel:
    return MessengerChannel(
        app_secret=SecretStr(APP_SECRET),
        page_access_token=SecretStr(PAGE_ACCESS_TOKEN),
        verify_token=SecretStr(verify_token) if verify_token is not None else None,
        graph_api_base=GRAPH,
        transport=httpx.MockTransport(api or FakeSendApi()),
    )


def parse_fixture(name: str) -> ParsedWebhook:
    channel = make_channel()
    request = signed_request((FIXTURES / name).read_bytes())
    channel.verify(request)
    return channel.parse(request)


def graph_error(status: int, code: int | None, *, subcode: int | None = None, retry_after: str | None = None) -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    if code is None:
        return httpx.Response(status, text="<html>Service Unavailable</html>", headers=headers)
    error = {"message": f"(#{code}) refused", "type": "OAuthException", "code": code, "fbtrace_id": "BLBz/WZt8dN"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return httpx.Response(status, json={"error": error}, headers=headers)


async def send(api: FakeSendApi, message: OutboundMessage | str = "Hello", *, human_agent: bool = False) -> SentMessage:
    channel = make_channel(api)
    await channel.open()
    try:
        return await channel.send(PSID, OutboundMessage(message) if isinstance(message, str) else message, staff_reply=human_agent)
    finally:
        await channel.close()


# -- recorded payloads -----------------------------------------------------------


def test_text_message() -> None:
    parsed = parse_fixture("text.json")
    assert parsed.receipts == []
    (message,) = parsed.messages
    assert message.channel == "messenger"
    assert message.external_id == "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN0P"
    assert message.sender_id == message.chat_id == PSID
    assert message.text == "Hallo! Habt ihr Wandersocken aus Merino?"
    assert message.timestamp == datetime(2025, 6, 8, 20, 59, 43, 512000, tzinfo=UTC)
    assert message.button_payload is None and message.attachments == ()
    assert message.raw["page_id"] == PAGE_ID


def test_quick_reply_carries_its_payload() -> None:
    (message,) = parse_fixture("quick_reply.json").messages
    assert (message.text, message.button_payload) == ("Shipping", "/topic shipping")


def test_postback_uses_its_mid_title_and_payload() -> None:
    (message,) = parse_fixture("postback.json").messages
    assert message.external_id.startswith("m_Bt9Ff3")
    assert (message.text, message.button_payload) == ("Talk to a person", "/human")


def test_postback_without_mid_gets_a_stable_id() -> None:
    first = parse_fixture("postback_without_mid.json").messages[0]
    again = parse_fixture("postback_without_mid.json").messages[0]
    assert first.external_id == again.external_id
    assert first.external_id.startswith("postback-")
    assert (first.text, first.button_payload) == ("Get Started", "/start")
    other = postback_id(PSID, first.timestamp, "/human")
    assert other != first.external_id
    assert postback_id(PSID, first.timestamp, "/start") != postback_id(PSID, first.timestamp + timedelta(milliseconds=1), "/start")


def test_image_attachment_keeps_its_url() -> None:
    (message,) = parse_fixture("attachment_image.json").messages
    assert message.text == ""
    (attachment,) = message.attachments
    assert attachment.kind == "image"
    assert attachment.url.startswith("https://scontent.xx.fbcdn.net/")


def test_location_attachment() -> None:
    (message,) = parse_fixture("attachment_location.json").messages
    (attachment,) = message.attachments
    assert (attachment.kind, attachment.url, attachment.name) == ("location", "geo:40.416775,-3.70379", "Pinned Location")


def test_echoes_and_reactions_are_ignored() -> None:
    assert parse_fixture("echo.json") == ParsedWebhook()
    assert parse_fixture("reaction.json") == ParsedWebhook()


def test_delivery_becomes_one_receipt_per_message() -> None:
    parsed = parse_fixture("delivery.json")
    assert parsed.messages == []
    assert [(r.status, r.chat_id) for r in parsed.receipts] == [("delivered", PSID), ("delivered", PSID)]
    assert all(r.platform_message_id.startswith("m_") for r in parsed.receipts)


def test_read_becomes_a_watermark_receipt() -> None:
    (receipt,) = parse_fixture("read.json").receipts
    assert (receipt.platform_message_id, receipt.status, receipt.chat_id) == ("watermark:1749417099001", "read", PSID)


def test_every_event_of_a_batch_is_parsed() -> None:
    parsed = parse_fixture("batch.json")
    assert [m.text for m in parsed.messages] == ["first", "second", "Returns", "fourth"]
    assert [m.button_payload for m in parsed.messages] == [None, None, "/topic returns", "/human"]
    assert [m.chat_id for m in parsed.messages] == [PSID, "7129045537612088", PSID, "7129045537612088"]
    assert [r.status for r in parsed.receipts] == ["read"]


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"null", b'{"object": "whatsapp_business_account", "entry": []}', b'{"object": "page"}',
     b'{"object": "page", "entry": [{"messaging": [{"sender": {"id": "1"}, "timestamp": 1, "message": {"text": "no mid"}}]}]}',
     b'{"object": "page", "entry": [{"messaging": [{"sender": {}, "timestamp": 1, "message": {"mid": "m_1"}}]}]}'],
)
def test_malformed_bodies_are_payload_errors(body: bytes) -> None:
    with pytest.raises(WebhookPayloadError):
        make_channel().parse(signed_request(body))


# -- handshake and signature -----------------------------------------------------


def test_handshake() -> None:
    channel = make_channel()
    good = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "CHALLENGE_ACCEPTED"}
    assert channel.handshake(WebhookRequest("GET", "https://shop.example/webhooks/messenger", {}, good, b"")) == "CHALLENGE_ACCEPTED"
    for query in ({**good, "hub.verify_token": VERIFY_TOKEN + "x"}, {"hub.mode": "subscribe", "hub.challenge": "1"}):
        with pytest.raises(WebhookAuthError) as info:
            channel.handshake(WebhookRequest("GET", "https://shop.example/webhooks/messenger", {}, query, b""))
        assert info.value.status_code == 403


def test_signature_known_answer_and_forgeries() -> None:
    body = b'{"object":"page","entry":[]}'
    # computed independently of the adapter: HMAC-SHA256(app secret, raw body)
    digest = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    channel = make_channel()
    url = "https://shop.example/webhooks/messenger"
    channel.verify(WebhookRequest("POST", url, {"x-hub-signature-256": f"sha256={digest}"}, {}, body))
    for header, status in ((None, 401), (f"sha256={digest[:-2]}", 403), (f"sha256={digest[::-1]}", 403), (digest, 403)):
        headers = {"x-hub-signature-256": header} if header is not None else {}
        with pytest.raises(WebhookAuthError) as info:
            channel.verify(WebhookRequest("POST", url, headers, {}, body))
        assert info.value.status_code == status
    with pytest.raises(WebhookAuthError):
        channel.verify(WebhookRequest("POST", url, {"x-hub-signature-256": f"sha256={digest}"}, {}, body + b"\n"))


def test_handshake_through_the_webhook_route(tmp_path: Path) -> None:
    # an empty store without the demo catalog: the route, not the engine, is under test
    overrides = {"demo": False, "embedder": "none", **CASE.settings("https://graph.test")}
    app_settings = Settings(data_dir=tmp_path, _env_file=None, **overrides)  # type: ignore[call-arg]
    with TestClient(create_app(app_settings, start_scheduler=False)) as client:
        good = client.get("/webhooks/messenger", params={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "7"})
        bad = client.get("/webhooks/messenger", params={"hub.mode": "subscribe", "hub.verify_token": "x", "hub.challenge": "7"})
        unsigned = client.post("/webhooks/messenger", content=json.dumps(text_message_payload(text="hi", chat_id=PSID, message_id="1")))
    assert (good.status_code, good.text) == (200, "7")
    assert bad.status_code == 403
    assert unsigned.status_code == 401


# -- rendering -------------------------------------------------------------------


def render(message: OutboundMessage) -> list[dict[str, Any]]:
    parts = make_channel().render(message)
    for part in parts:
        assert validate({"recipient": {"id": PSID}, "messaging_type": "RESPONSE", "message": part}) is None, part
    return parts


def buttons(*titles: str) -> tuple[Button, ...]:
    return tuple(Button(title, f"/pick {i}") for i, title in enumerate(titles))


def card(n: int, *, image: bool = True, in_stock: bool = True) -> ProductCard:
    return ProductCard(
        f"SKU-{n}", f"Product number {n}", Decimal("10.00") + n, "EUR", in_stock, f"https://shop.example/p/{n}",
        image=f"https://shop.example/i/{n}.jpg" if image else "", price_text=f"€{10 + n}.00",
    )


def test_plain_text() -> None:
    assert render(OutboundMessage("Hello")) == [{"text": "Hello"}]


def test_buttons_become_quick_replies_with_titles_cut_at_twenty() -> None:
    (part,) = render(OutboundMessage("Anything else?", buttons=buttons("Shipping", "Talk to a person from our team")))
    assert part["text"] == "Anything else?"
    assert part["quick_replies"] == [
        {"content_type": "text", "title": "Shipping", "payload": "/pick 0"},
        {"content_type": "text", "title": "Talk to a person fr…", "payload": "/pick 1"},
    ]


def test_more_than_thirteen_buttons_degrade_to_numbered_text() -> None:
    (part,) = render(OutboundMessage("Sizes:", buttons=buttons(*[f"EU {n}" for n in range(34, 48)])))
    assert "quick_replies" not in part
    assert "[1] EU 34" in part["text"] and "[14] EU 47" in part["text"]


def test_products_without_images_are_text_lines() -> None:
    (part,) = render(OutboundMessage("Options:", products=(card(1, image=False), card(2, image=False, in_stock=False))))
    for fact in ("Options:", "Product number 1", "€11.00", "https://shop.example/p/1", "Product number 2", "out of stock"):
        assert fact in part["text"]


def test_products_with_images_become_a_generic_template_after_the_text() -> None:
    reply = OutboundMessage(
        "Here are 2 options:", buttons=buttons("Shipping"), products=(card(1), card(2, in_stock=False)),
        sources=(Source("Returns", "https://shop.example/pages/returns"),),
    )
    text, template = render(reply)
    assert text == {"text": "Here are 2 options:\nSources: Returns (https://shop.example/pages/returns)"}
    payload = template["attachment"]["payload"]
    assert payload["template_type"] == "generic"
    assert payload["elements"] == [
        {"title": "Product number 1", "subtitle": "€11.00", "image_url": "https://shop.example/i/1.jpg",
         "default_action": {"type": "web_url", "url": "https://shop.example/p/1"}},
        {"title": "Product number 2", "subtitle": "€12.00 · out of stock", "image_url": "https://shop.example/i/2.jpg",
         "default_action": {"type": "web_url", "url": "https://shop.example/p/2"}},
    ]
    assert template["quick_replies"] == [{"content_type": "text", "title": "Shipping", "payload": "/pick 0"}]


def test_a_template_holds_ten_products_and_the_rest_are_text() -> None:
    text, template = render(OutboundMessage("Lots:", products=tuple(card(n) for n in range(12))))
    assert [e["title"] for e in template["attachment"]["payload"]["elements"]] == [f"Product number {n}" for n in range(10)]
    assert "Product number 10" in text["text"] and "Product number 11" in text["text"]


def test_long_text_is_split_at_two_thousand_characters() -> None:
    words = [f"w{i:07d}" for i in range(600)]  # 10 characters with the space: 6,000 in all
    parts = render(OutboundMessage(" ".join(words), buttons=buttons("Yes")))
    assert len(parts) == 3
    assert all(len(p["text"]) <= 2000 for p in parts)
    assert " ".join(p["text"] for p in parts).split() == words
    assert [("quick_replies" in p) for p in parts] == [False, False, True]


async def test_send_uses_response_type_and_the_token_in_the_header_only() -> None:
    api = FakeSendApi()
    sent = await send(api, "Hello")
    (request,) = api.requests
    assert str(request.url) == f"{GRAPH}/me/messages"
    assert "access_token" not in str(request.url) and PAGE_ACCESS_TOKEN not in str(request.url)
    assert request.headers["authorization"] == f"Bearer {PAGE_ACCESS_TOKEN}"
    assert api.bodies == [{"recipient": {"id": PSID}, "messaging_type": "RESPONSE", "message": {"text": "Hello"}}]
    assert sent.platform_message_ids == ("m_sent-1",)


async def test_staff_replies_can_use_the_human_agent_tag() -> None:
    api = FakeSendApi()
    reply = OutboundMessage("A colleague will check your order.", products=(card(1),))
    sent = await send(api, reply, human_agent=True)
    assert len(sent.platform_message_ids) == 2
    for body in api.bodies:
        assert (body["messaging_type"], body["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")
        assert validate(body) is None
    channel = make_channel()
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    assert channel.within_human_agent_window(now - timedelta(days=6), now)
    assert not channel.within_human_agent_window(now - timedelta(days=8), now)
    assert not channel.within_window(now - timedelta(days=2), now)  # the bot's own replies: 24 hours only


@pytest.mark.parametrize(
    ("answer", "retry_after", "permanent", "unreachable", "maybe_sent", "code"),
    [
        (graph_error(429, 613, retry_after="30"), 30.0, False, False, False, "613"),
        (graph_error(400, 613), None, False, False, False, "613"),
        (graph_error(400, 4), None, False, False, False, "4"),
        (graph_error(400, 32), None, False, False, False, "32"),
        (graph_error(500, 1200), None, False, False, False, "1200"),
        (graph_error(500, 2), None, False, False, False, "2"),
        (graph_error(503, None), None, False, False, False, "http-503"),
        (graph_error(400, 551, subcode=1545041), None, True, True, False, "551/1545041"),
        (graph_error(400, 551), None, True, True, False, "551"),
        (graph_error(400, 100, subcode=2018001), None, True, True, False, "100/2018001"),
        (graph_error(400, 10, subcode=2018278), None, True, False, False, "10/2018278"),
        (graph_error(403, 200, subcode=2018028), None, True, False, False, "200/2018028"),
        (graph_error(400, 200, subcode=1545041), None, True, True, False, "200/1545041"),
        (graph_error(401, 190), None, True, False, False, "190"),
        (graph_error(400, 100), None, True, False, False, "100"),
        (httpx.ConnectError, None, False, False, False, None),
        (httpx.PoolTimeout, None, False, False, False, None),
        (httpx.ReadTimeout, None, False, False, True, None),
        (httpx.WriteTimeout, None, False, False, True, None),
    ],
)
async def test_errors_translate_into_send_error_flags(
    answer: Answer, retry_after: float | None, permanent: bool, unreachable: bool, maybe_sent: bool, code: str | None
) -> None:
    with pytest.raises(SendError) as info:
        await send(FakeSendApi(answer))
    error = info.value
    assert (error.retry_after, error.permanent, error.unreachable, error.maybe_sent, error.code) == (
        retry_after, permanent, unreachable, maybe_sent, code,
    )


async def test_a_failed_template_after_the_text_went_out_is_maybe_sent() -> None:
    api = FakeSendApi(httpx.Response(200, json={"recipient_id": PSID, "message_id": "m_text"}), graph_error(500, 1200))
    with pytest.raises(SendError) as info:
        await send(api, OutboundMessage("Options:", products=(card(1),)))
    assert info.value.maybe_sent
    assert "1 of 2 parts" in str(info.value)


async def test_the_token_never_shows_in_reprs_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    leaky = httpx.Response(400, json={"error": {"message": f"token {PAGE_ACCESS_TOKEN} is invalid", "code": 190}})
    channel = make_channel(FakeSendApi(leaky, httpx.ConnectError))
    caplog.set_level(logging.DEBUG)
    await channel.open()
    try:
        assert PAGE_ACCESS_TOKEN not in repr(channel) and APP_SECRET not in repr(channel)
        for _ in range(2):
            with pytest.raises(SendError) as info:
                await channel.send(PSID, OutboundMessage("hi"))
            assert PAGE_ACCESS_TOKEN not in str(info.value)
            assert PAGE_ACCESS_TOKEN not in str(info.value.__cause__)
    finally:
        await channel.close()
    assert PAGE_ACCESS_TOKEN not in caplog.text


# -- fuzzing ---------------------------------------------------------------------

KEYS = ["object", "entry", "id", "time", "messaging", "sender", "recipient", "timestamp", "message", "mid", "text", "quick_reply",
        "payload", "attachments", "type", "url", "coordinates", "lat", "long", "title", "is_echo", "postback", "delivery", "mids",
        "watermark", "read", "reaction", "sticker_id"]
WORDS = st.sampled_from(["page", "image", "location", "file", "fallback", "template", PSID, "1749416383512", "m_1", "-5", "1e400"])
LEAVES = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12) | WORDS
JSON = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=6),
    max_leaves=40,
)
EVENT = st.fixed_dictionaries(
    {"sender": st.fixed_dictionaries({"id": LEAVES}) | JSON, "timestamp": LEAVES},
    optional={"message": JSON | st.fixed_dictionaries({"mid": LEAVES}, optional={"text": LEAVES, "attachments": JSON, "quick_reply": JSON,
                                                                                   "is_echo": LEAVES}),
              "postback": JSON, "delivery": JSON, "read": JSON},
)
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CHANNEL = make_channel()


def _parse_or_payload_error(body: bytes) -> None:
    try:
        parsed = CHANNEL.parse(signed_request(body))
    except WebhookPayloadError:
        return
    for message in parsed.messages:
        assert isinstance(message.external_id, str) and message.timestamp.tzinfo is not None


@FUZZ
@given(JSON)
def test_arbitrary_json_raises_only_payload_errors(value: Any) -> None:
    _parse_or_payload_error(json.dumps(value).encode())


@FUZZ
@given(JSON)
def test_arbitrary_entries_raise_only_payload_errors(entry: Any) -> None:
    _parse_or_payload_error(json.dumps({"object": "page", "entry": entry}).encode())


@FUZZ
@given(st.lists(EVENT, max_size=4))
def test_near_valid_events_raise_only_payload_errors(events: list[Any]) -> None:
    _parse_or_payload_error(json.dumps({"object": "page", "entry": [{"id": PAGE_ID, "time": 1, "messaging": events}]}).encode())
