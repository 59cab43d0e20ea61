"""The WhatsApp Cloud API adapter: recorded payloads, handshake and signature, rendering, error flags."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import subprocess
import sys
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
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
from channels.base import ParsedWebhook, SendError, WebhookAuthError, WebhookPayloadError, WebhookRequest
from channels.meta import WhatsAppCloudChannel, parse_retry_after, split_text
from channels.whatsapp_cloud import LIST_BUTTON_LABEL, media_id
from tests.channel_cases.whatsapp import (
    ACCESS_TOKEN,
    APP_SECRET,
    CASE,
    GRAPH_VERSION,
    PHONE_NUMBER_ID,
    VERIFY_TOKEN,
    signed_request,
    text_message_payload,
    validate,
)

FIXTURES = Path(__file__).parent / "fixtures" / "whatsapp"
GRAPH = f"https://graph.test/{GRAPH_VERSION}"
SHOPPER = "16505551234"

Answer = httpx.Response | type[Exception]


class FakeGraph:
    """An ``httpx.MockTransport`` handler: records requests, answers queued responses or Graph's success."""

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
        to = json.loads(request.content)["to"]
        return httpx.Response(200, json={"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
                                         "messages": [{"id": f"wamid.sent-{len(self.requests)}"}]})

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(request.content) for request in self.requests]


def make_channel(
    graph: Callable[[httpx.Request], httpx.Response] | None = None, *, verify_token: str | None = VERIFY_TOKEN
) -> WhatsAppCloudChannel:
    return WhatsAppCloudChannel(
        app_secret=SecretStr(APP_SECRET),
        access_token=SecretStr(ACCESS_TOKEN),
        phone_number_id=PHONE_NUMBER_ID,
        verify_token=SecretStr(verify_token) if verify_token is not None else None,
        graph_api_base=GRAPH,
        transport=httpx.MockTransport(graph or FakeGraph()),
    )


def parse_fixture(name: str) -> ParsedWebhook:
    channel = make_channel()
    request = signed_request((FIXTURES / name).read_bytes())
    channel.verify(request)
    return channel.parse(request)


def graph_error(status: int, code: int | None, *, subcode: int | None = None, retry_after: str | None = None) -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    if code is None:
        return httpx.Response(status, text="<html>Bad gateway</html>", headers=headers)
    error = {"message": f"(#{code}) refused", "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEf123"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return httpx.Response(status, json={"error": error}, headers=headers)


async def send(graph: FakeGraph, message: OutboundMessage | str = "Hello") -> Any:
    channel = make_channel(graph)
    await channel.open()
    try:
        return await channel.send(SHOPPER, OutboundMessage(message) if isinstance(message, str) else message)
    finally:
        await channel.close()


# -- recorded payloads -----------------------------------------------------------


def test_text_message() -> None:
    parsed = parse_fixture("text.json")
    assert parsed.receipts == []
    (message,) = parsed.messages
    assert message.channel == "whatsapp"
    assert message.external_id == "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
    assert message.sender_id == message.chat_id == SHOPPER
    assert message.text == "Do you have the merino socks in size 42? ¿Y en gris?"
    assert message.timestamp == datetime(2025, 6, 8, 20, 59, 43, tzinfo=UTC)
    assert message.attachments == () and message.button_payload is None
    assert message.raw["contact"]["profile"]["name"] == "Sheena Nelson"
    assert message.raw["metadata"]["phone_number_id"] == PHONE_NUMBER_ID


def test_image_keeps_the_media_id_and_caption() -> None:
    (message,) = parse_fixture("image.json").messages
    assert message.text == "Is this one still available?"
    (attachment,) = message.attachments
    assert (attachment.kind, attachment.mime_type) == ("image", "image/jpeg")
    assert media_id(attachment) == "1003383421387256"


def test_location() -> None:
    (message,) = parse_fixture("location.json").messages
    assert message.text == ""
    (attachment,) = message.attachments
    assert attachment.kind == "location"
    assert attachment.url == "geo:37.483307,-122.148981"
    assert attachment.name == "Meta Headquarters"


@pytest.mark.parametrize(
    ("fixture", "text", "payload"),
    [
        ("interactive_button_reply.json", "Shipping", "/topic shipping"),
        ("interactive_list_reply.json", "Returns", "/topic returns"),
        ("button_quick_reply.json", "Yes, tell me", "/restock yes"),
    ],
)
def test_tapped_buttons_carry_their_payload(fixture: str, text: str, payload: str) -> None:
    (message,) = parse_fixture(fixture).messages
    assert (message.text, message.button_payload) == (text, payload)


@pytest.mark.parametrize(
    ("fixture", "status", "code", "unreachable"),
    [
        ("status_delivered.json", "delivered", None, False),
        ("status_read.json", "read", None, False),
        ("status_failed_131047.json", "failed", "131047", False),
        ("status_failed_131050.json", "failed", "131050", True),
    ],
)
def test_statuses_become_receipts(fixture: str, status: str, code: str | None, unreachable: bool) -> None:
    parsed = parse_fixture(fixture)
    assert parsed.messages == []
    (receipt,) = parsed.receipts
    assert receipt.platform_message_id.startswith("wamid.")
    assert (receipt.status, receipt.error_code, receipt.unreachable, receipt.chat_id) == (status, code, unreachable, SHOPPER)


def test_every_message_of_a_batch_is_parsed() -> None:
    messages = parse_fixture("batch.json").messages
    assert [m.text for m in messages] == ["first", "second", "third", "Talk to a person"]
    assert [m.chat_id for m in messages] == [SHOPPER, "4915112345678", "5511987654321", SHOPPER]
    assert messages[3].button_payload == "/human"
    assert len({m.external_id for m in messages}) == 4


def test_unsupported_message_reaches_the_engine_as_an_empty_message() -> None:
    (message,) = parse_fixture("unsupported.json").messages
    assert message.text == ""
    assert [a.kind for a in message.attachments] == ["unsupported"]


def test_reactions_are_not_messages() -> None:
    assert parse_fixture("reaction.json") == ParsedWebhook()


def test_events_for_another_phone_number_are_skipped() -> None:
    payload = text_message_payload(text="hi", chat_id=SHOPPER, message_id="x")
    payload["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "999999999999"
    assert make_channel().parse(signed_request(payload)).messages == []


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[]", b'{"object": "page", "entry": []}', b'{"object": "whatsapp_business_account", "entry": {}}',
     b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {"messages": [{"type": "text"}]}}]}]}'],
)
def test_malformed_bodies_are_payload_errors(body: bytes) -> None:
    with pytest.raises(WebhookPayloadError):
        make_channel().parse(signed_request(body))


# -- handshake and signature -----------------------------------------------------


def handshake_request(**query: str) -> WebhookRequest:
    return WebhookRequest(method="GET", url="https://shop.example/webhooks/whatsapp", headers={}, query=query, body=b"")


def test_handshake_echoes_the_challenge_for_the_right_token() -> None:
    request = handshake_request(**{"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"})
    assert make_channel().handshake(request) == "1158201444"


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
        {},
    ],
)
def test_handshake_refuses_a_wrong_or_missing_token(query: dict[str, str]) -> None:
    with pytest.raises(WebhookAuthError) as info:
        make_channel().handshake(handshake_request(**query))
    assert info.value.status_code == 403


def test_handshake_fails_closed_without_a_configured_verify_token() -> None:
    request = handshake_request(**{"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"})
    with pytest.raises(WebhookAuthError):
        make_channel(verify_token=None).handshake(request)


def test_signature_known_answer() -> None:
    # GitHub's documented HMAC-SHA256 example (same scheme as Meta's X-Hub-Signature-256), checked with openssl.
    expected = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert hmac.new(b"It's a Secret to Everybody", b"Hello, World!", hashlib.sha256).hexdigest() == expected
    channel = WhatsAppCloudChannel(
        app_secret=SecretStr("It's a Secret to Everybody"), access_token=SecretStr("t"), phone_number_id=PHONE_NUMBER_ID
    )
    url = "https://shop.example/webhooks/whatsapp"
    request = WebhookRequest("POST", url, {"x-hub-signature-256": f"sha256={expected}"}, {}, b"Hello, World!")
    channel.verify(request)
    upper = WebhookRequest("POST", request.url, {"x-hub-signature-256": f"sha256={expected.upper()}"}, {}, request.body)
    channel.verify(upper)
    with pytest.raises(WebhookAuthError):
        channel.verify(WebhookRequest("POST", request.url, request.headers, {}, b"Hello, World?"))


@pytest.mark.parametrize(
    ("header", "status"),
    [(None, 401), ("", 401), ("sha256=", 403), ("sha256=zz", 403), ("md5=abc", 403), ("sha256=" + "0" * 64, 403)],
)
def test_bad_signatures(header: str | None, status: int) -> None:
    body = json.dumps(text_message_payload(text="hi", chat_id=SHOPPER, message_id="1")).encode()
    headers = {"x-hub-signature-256": header} if header is not None else {}
    with pytest.raises(WebhookAuthError) as info:
        make_channel().verify(WebhookRequest("POST", "https://shop.example/webhooks/whatsapp", headers, {}, body))
    assert info.value.status_code == status


def test_handshake_through_the_webhook_route(tmp_path: Path) -> None:
    # an empty store without the demo catalog: the route, not the engine, is under test
    overrides = {"demo": False, "embedder": "none", **CASE.settings("https://graph.test")}
    app_settings = Settings(data_dir=tmp_path, _env_file=None, **overrides)  # type: ignore[call-arg]
    with TestClient(create_app(app_settings, start_scheduler=False)) as client:
        good = client.get("/webhooks/whatsapp", params={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "42"})
        bad = client.get("/webhooks/whatsapp", params={"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "42"})
    assert (good.status_code, good.text) == (200, "42")
    assert bad.status_code == 403


# -- rendering -------------------------------------------------------------------


def render(message: OutboundMessage) -> list[dict[str, Any]]:
    parts = make_channel().render(message)
    for part in parts:
        assert validate({"messaging_product": "whatsapp", "to": SHOPPER, **part}) is None, part
    return parts


def buttons(*titles: str) -> tuple[Button, ...]:
    return tuple(Button(title, f"/pick {i}") for i, title in enumerate(titles))


SOCK = ProductCard("SOCK-1", "Merino Hiking Sock", Decimal("18.00"), "EUR", True, "https://shop.example/p/sock",
                   image="https://shop.example/i/sock.jpg", price_text="€18.00")
COTTON = ProductCard("SOCK-2", "Cotton Sock", Decimal("9.50"), "EUR", False, "https://shop.example/p/cotton",
                     image="https://shop.example/i/cotton.jpg", price_text="€9.50")


def test_plain_text_and_link_preview() -> None:
    assert render(OutboundMessage("Hello")) == [{"type": "text", "text": {"body": "Hello", "preview_url": False}}]
    (part,) = render(OutboundMessage("See https://shop.example/p/sock"))
    assert part["text"]["preview_url"] is True


def test_up_to_three_buttons_are_reply_buttons() -> None:
    (part,) = render(OutboundMessage("Anything else?", buttons=buttons("Shipping", "Returns", "Talk to a person")))
    interactive = part["interactive"]
    assert interactive["type"] == "button"
    assert interactive["body"]["text"] == "Anything else?"
    assert [b["reply"] for b in interactive["action"]["buttons"]] == [
        {"id": "/pick 0", "title": "Shipping"}, {"id": "/pick 1", "title": "Returns"}, {"id": "/pick 2", "title": "Talk to a person"},
    ]


def test_more_than_three_buttons_become_a_list() -> None:
    (part,) = render(OutboundMessage("Pick a topic", buttons=buttons("Shipping", "Returns", "Payment", "Sizes", "A person")))
    interactive = part["interactive"]
    assert interactive["type"] == "list"
    assert interactive["action"]["button"] == LIST_BUTTON_LABEL
    (section,) = interactive["action"]["sections"]
    assert [row["title"] for row in section["rows"]] == ["Shipping", "Returns", "Payment", "Sizes", "A person"]
    assert [row["id"] for row in section["rows"]] == [f"/pick {i}" for i in range(5)]


def test_a_title_too_long_for_a_reply_button_moves_to_a_list_row_with_its_full_title() -> None:
    long_title = "Talk to a person from our customer team"
    (part,) = render(OutboundMessage("Need help?", buttons=buttons("Shipping", long_title)))
    (row_short, row_long) = part["interactive"]["action"]["sections"][0]["rows"]
    assert row_short == {"id": "/pick 0", "title": "Shipping"}
    assert len(row_long["title"]) <= 24 and row_long["title"].endswith("…")
    assert row_long["description"] == long_title


def test_more_than_ten_buttons_degrade_to_numbered_text() -> None:
    (part,) = render(OutboundMessage("Sizes:", buttons=buttons(*[f"EU {n}" for n in range(36, 47)])))
    body = part["text"]["body"]
    assert part["type"] == "text"
    assert "[1] EU 36" in body and "[11] EU 46" in body


def test_long_text_is_split_at_the_limit_and_nothing_is_lost() -> None:
    words = [f"word{i}" for i in range(2000)]
    parts = render(OutboundMessage(" ".join(words)))
    sizes = [len(p["text"]["body"]) for p in parts]
    assert len(sizes) == 5
    assert all(4080 <= size <= 4096 for size in sizes[:-1])  # cut at the last space before the limit
    assert " ".join(p["text"]["body"] for p in parts).split() == words


def test_long_text_with_buttons_keeps_the_buttons_on_the_last_part() -> None:
    parts = render(OutboundMessage("x " * 3000, buttons=buttons("Yes", "No")))
    assert [p["type"] for p in parts] == ["text", "text", "interactive"]
    assert len(parts[-1]["interactive"]["body"]["text"]) <= 1024


def test_products_become_text_lines_with_price_stock_and_link() -> None:
    (part,) = render(OutboundMessage("Here are 2 options:", products=(SOCK, COTTON),
                                     sources=(Source("Returns", "https://shop.example/pages/returns"),)))
    body = part["text"]["body"]
    assert part["text"]["preview_url"] is True
    for fact in ("Here are 2 options:", "Merino Hiking Sock", "€18.00", "https://shop.example/p/sock", "Cotton Sock", "out of stock",
                 "Returns (https://shop.example/pages/returns)"):
        assert fact in body


def test_a_single_product_with_an_image_is_sent_as_that_image() -> None:
    (part,) = render(OutboundMessage("This one fits:", products=(SOCK,)))
    assert part["type"] == "image"
    assert part["image"]["link"] == SOCK.image
    assert "Merino Hiking Sock" in part["image"]["caption"] and "€18.00" in part["image"]["caption"]


def test_a_single_product_with_buttons_shows_the_image_as_header() -> None:
    (part,) = render(OutboundMessage("This one fits:", products=(SOCK,), buttons=buttons("Buy", "More")))
    assert part["interactive"]["header"] == {"type": "image", "image": {"link": SOCK.image}}
    assert "Merino Hiking Sock" in part["interactive"]["body"]["text"]


def test_an_empty_reply_is_refused_for_good() -> None:
    with pytest.raises(SendError) as info:
        make_channel().render(OutboundMessage("   "))
    assert info.value.permanent


def test_split_text_prefers_paragraphs() -> None:
    assert split_text("a" * 6 + "\n\n" + "b" * 6, 10) == ["a" * 6, "b" * 6]
    assert split_text("abcdefghijkl", 5) == ["abcde", "fghij", "kl"]
    assert split_text("", 5) == [""]


# -- sending ---------------------------------------------------------------------


async def test_send_posts_to_the_phone_number_with_the_token_in_the_header_only() -> None:
    graph = FakeGraph()
    sent = await send(graph, "Hello")
    (request,) = graph.requests
    assert str(request.url) == f"{GRAPH}/{PHONE_NUMBER_ID}/messages"
    assert request.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert ACCESS_TOKEN not in str(request.url)
    assert graph.bodies[0] == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": SHOPPER, "type": "text",
                               "text": {"body": "Hello", "preview_url": False}}
    assert sent.platform_message_ids == ("wamid.sent-1",)


async def test_send_template() -> None:
    graph = FakeGraph()
    channel = make_channel(graph)
    await channel.open()
    try:
        sent = await channel.send_template(SHOPPER, "back_in_stock", "en_US", body_parameters=("Merino Hiking Sock",))
    finally:
        await channel.close()
    assert graph.bodies[0]["type"] == "template"
    assert graph.bodies[0]["template"] == {
        "name": "back_in_stock", "language": {"code": "en_US"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "Merino Hiking Sock"}]}],
    }
    assert sent.platform_message_ids == ("wamid.sent-1",)


@pytest.mark.parametrize(
    ("answer", "retry_after", "permanent", "unreachable", "maybe_sent", "code"),
    [
        (graph_error(429, 130429, retry_after="30"), 30.0, False, False, False, "130429"),
        (graph_error(400, 130429), None, False, False, False, "130429"),
        (graph_error(400, 4), None, False, False, False, "4"),
        (graph_error(400, 80007), None, False, False, False, "80007"),
        (graph_error(400, 131056, subcode=2494100), None, False, False, False, "131056"),
        (graph_error(500, 131000), None, False, False, False, "131000"),
        (graph_error(502, None), None, False, False, False, "http-502"),
        (graph_error(400, 131026), None, True, False, False, "131026"),
        (graph_error(400, 131047), None, True, False, False, "131047"),
        (graph_error(400, 131051), None, True, False, False, "131051"),
        (graph_error(401, 190, subcode=463), None, True, False, False, "190"),
        (graph_error(400, 100), None, True, False, False, "100"),
        (graph_error(400, 131050), None, True, True, False, "131050"),
        (httpx.ConnectError, None, False, False, False, None),
        (httpx.ConnectTimeout, None, False, False, False, None),
        (httpx.ReadTimeout, None, False, False, True, None),
        (httpx.WriteTimeout, None, False, False, True, None),
        (httpx.RemoteProtocolError, None, False, False, True, None),
        (httpx.Response(200, text="not json"), None, False, False, True, None),
    ],
)
async def test_errors_translate_into_send_error_flags(
    answer: Answer, retry_after: float | None, permanent: bool, unreachable: bool, maybe_sent: bool, code: str | None
) -> None:
    with pytest.raises(SendError) as info:
        await send(FakeGraph(answer))
    error = info.value
    assert (error.retry_after, error.permanent, error.unreachable, error.maybe_sent, error.code) == (
        retry_after, permanent, unreachable, maybe_sent, code,
    )


async def test_a_failure_after_part_of_a_split_reply_went_out_is_maybe_sent() -> None:
    graph = FakeGraph(httpx.Response(200, json={"messages": [{"id": "wamid.first"}]}), graph_error(429, 130429, retry_after="5"))
    with pytest.raises(SendError) as info:
        await send(graph, "word " * 1000)
    assert info.value.maybe_sent and not info.value.permanent
    assert len(graph.requests) == 2


def test_retry_after_header_forms() -> None:
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: now
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


async def test_the_token_never_shows_in_reprs_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    leaky = httpx.Response(400, json={"error": {"message": f"bad token {ACCESS_TOKEN}", "code": 190, "type": "OAuthException"}})
    channel = make_channel(FakeGraph(leaky, httpx.ReadTimeout))
    caplog.set_level(logging.DEBUG)
    await channel.open()
    try:
        assert ACCESS_TOKEN not in repr(channel) and APP_SECRET not in repr(channel)
        for _ in range(2):
            with pytest.raises(SendError) as info:
                await channel.send(SHOPPER, OutboundMessage("hi"))
            assert ACCESS_TOKEN not in str(info.value) and ACCESS_TOKEN not in repr(info.value)
            assert ACCESS_TOKEN not in str(info.value.__cause__)
    finally:
        await channel.close()
    assert ACCESS_TOKEN not in caplog.text


@pytest.mark.parametrize("first", ["channels.whatsapp_cloud", "channels.messenger", "channels.meta"])
def test_the_meta_modules_import_in_any_order(first: str) -> None:
    code = f"import {first}\nfrom channels.meta import MessengerChannel as M, WhatsAppCloudChannel as W\nprint(W.name, M.name)"
    root = Path(__file__).parents[1]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=root)
    assert result.stdout.split() == ["whatsapp", "messenger"], result.stderr


async def test_send_before_open_is_a_programming_error() -> None:
    with pytest.raises(RuntimeError, match="open"):
        await make_channel().send(SHOPPER, OutboundMessage("hi"))


# -- fuzzing ---------------------------------------------------------------------

KEYS = ["object", "entry", "id", "changes", "field", "value", "metadata", "phone_number_id", "contacts", "wa_id", "profile",
        "messages", "statuses", "from", "timestamp", "type", "text", "body", "image", "caption", "mime_type", "location",
        "latitude", "longitude", "name", "interactive", "button_reply", "list_reply", "title", "button", "payload", "errors",
        "code", "status", "recipient_id", "order", "reaction"]
WORDS = st.sampled_from(["whatsapp_business_account", "messages", "text", "image", "interactive", "button_reply", "list_reply",
                         "button", "location", "contacts", "order", "reaction", "unsupported", "failed", "1749416383",
                         PHONE_NUMBER_ID, "131050", "-1", "1e400", "99999999999999999"])
LEAVES = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12) | WORDS
JSON = st.recursive(
    LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=6),
    max_leaves=40,
)
MESSAGE = st.fixed_dictionaries(
    {"from": LEAVES, "id": LEAVES, "timestamp": LEAVES, "type": WORDS},
    optional={kind: JSON for kind in ("text", "image", "interactive", "location", "button", "contacts", "order", "errors")},
)
STATUS = st.fixed_dictionaries({"id": LEAVES, "status": WORDS}, optional={"recipient_id": LEAVES, "errors": JSON})
VALUE = st.fixed_dictionaries(
    {},
    optional={
        "metadata": JSON, "contacts": JSON, "messages": st.lists(MESSAGE, max_size=3) | JSON, "statuses": st.lists(STATUS, max_size=3),
    },
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
    _parse_or_payload_error(json.dumps({"object": "whatsapp_business_account", "entry": entry}).encode())


@FUZZ
@given(st.lists(VALUE, max_size=3))
def test_near_valid_changes_raise_only_payload_errors(values: list[Any]) -> None:
    changes = [{"field": "messages", "value": value} for value in values]
    _parse_or_payload_error(json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": changes}]}).encode())


@FUZZ
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_payload_errors(body: bytes) -> None:
    _parse_or_payload_error(body)
