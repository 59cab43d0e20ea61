"""WhatsApp through Twilio: signatures, recorded webhooks, rendering, sends against the fake Messages API."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from bot.app import create_app
from bot.messages import Button, OutboundMessage, ProductCard, Source
from bot.settings import Settings
from channels.base import SendError, WebhookAuthError, WebhookPayloadError, WebhookRequest
from channels.registry import enabled_channels
from channels.twilio_whatsapp import MAX_BODY_UNITS, MAX_CAPTION_UNITS, TwilioWhatsAppChannel, _form, parse_retry_after, render, units
from tests.channel_cases.twilio import ACCOUNT_SID, AUTH_TOKEN, CASE, WHATSAPP_NUMBER, FakeTwilio, sign, signed_delivery
from tests.support.fake_server import serve_in_thread
from tests.support.server import free_port

FIXTURES = Path(__file__).parent / "fixtures" / "twilio"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SHOPPER = "whatsapp:+34600111222"
SOCK = ProductCard(
    "SOCK-1", "Merino Hiking Sock", Decimal("18.00"), "EUR", True, "https://shop.example/p/sock",
    image="https://shop.example/img/sock.jpg", price_text="€18.00", reason="under your €20 budget",
)
COTTON = ProductCard("SOCK-2", "Cotton Sock", Decimal("9.50"), "EUR", False, "https://shop.example/p/cotton", price_text="€9.50")


def load(name: str) -> dict[str, str]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def make_channel(api: str | None = None, **options: Any) -> TwilioWhatsAppChannel:
    options.setdefault("public_url", "https://shop.example")
    return TwilioWhatsAppChannel(
        account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, whatsapp_number=WHATSAPP_NUMBER, api_base=api, clock=lambda: NOW, **options
    )


@cache
def parser() -> TwilioWhatsAppChannel:
    return make_channel()


def request(url: str, params: dict[str, str], signature: str | None, headers: dict[str, str] | None = None) -> WebhookRequest:
    all_headers = {"content-type": "application/x-www-form-urlencoded", **(headers or {})}
    if signature is not None:
        all_headers["x-twilio-signature"] = signature
    return WebhookRequest("POST", url, all_headers, {}, urlencode(params).encode())


@pytest.fixture
def fake() -> Iterator[tuple[FakeTwilio, str]]:
    platform = FakeTwilio()
    with serve_in_thread(platform.app) as url:
        yield platform, url


# -- signatures ------------------------------------------------------------------

KNOWN_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
KNOWN_PARAMS = {"CallSid": "CA1234567890ABCDE", "Caller": "+12349013030", "Digits": "1234", "From": "+12349013030", "To": "+18005551212"}
KNOWN_SIGNATURE = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="  # Twilio's "Webhooks security" worked example, auth token 12345


def known_answer_channel(**options: Any) -> TwilioWhatsAppChannel:
    return TwilioWhatsAppChannel(account_sid=ACCOUNT_SID, auth_token="12345", whatsapp_number=WHATSAPP_NUMBER, **options)


def test_twilios_published_signature_vector_verifies() -> None:
    assert RequestValidator("12345").compute_signature(KNOWN_URL, KNOWN_PARAMS) == KNOWN_SIGNATURE
    known_answer_channel().verify(request(KNOWN_URL, KNOWN_PARAMS, KNOWN_SIGNATURE))
    with pytest.raises(WebhookAuthError):
        known_answer_channel().verify(request(KNOWN_URL, KNOWN_PARAMS | {"Digits": "1235"}, KNOWN_SIGNATURE))


def test_behind_a_tls_proxy_the_public_url_is_what_was_signed() -> None:
    behind_proxy = "http://127.0.0.1:8000/myapp.php?foo=1&bar=2"
    known_answer_channel(public_url="https://mycompany.com").verify(request(behind_proxy, KNOWN_PARAMS, KNOWN_SIGNATURE))
    # a public URL with a path prefix that the proxy strips, or passes through
    prefixed = RequestValidator("12345").compute_signature("https://mycompany.com/shop/myapp.php?foo=1&bar=2", KNOWN_PARAMS)
    channel = known_answer_channel(public_url="https://mycompany.com/shop/")
    channel.verify(request(behind_proxy, KNOWN_PARAMS, prefixed))
    channel.verify(request("http://127.0.0.1:8000/shop/myapp.php?foo=1&bar=2", KNOWN_PARAMS, prefixed))
    with pytest.raises(WebhookAuthError):
        known_answer_channel().verify(request(behind_proxy, KNOWN_PARAMS, KNOWN_SIGNATURE))


def test_forwarded_headers_count_only_when_trusted() -> None:
    behind_proxy = "http://127.0.0.1:8000/myapp.php?foo=1&bar=2"
    forwarded = {"x-forwarded-proto": "https", "x-forwarded-host": "mycompany.com", "host": "127.0.0.1:8000"}
    known_answer_channel(trust_forwarded_headers=True).verify(request(behind_proxy, KNOWN_PARAMS, KNOWN_SIGNATURE, forwarded))
    with pytest.raises(WebhookAuthError):
        known_answer_channel().verify(request(behind_proxy, KNOWN_PARAMS, KNOWN_SIGNATURE, forwarded))
    # a multi-hop proxy lists several; the first is the client-facing one
    chained = forwarded | {"x-forwarded-proto": "https, http", "x-forwarded-host": "mycompany.com, internal:8080"}
    known_answer_channel(trust_forwarded_headers=True).verify(request(behind_proxy, KNOWN_PARAMS, KNOWN_SIGNATURE, chained))
    malformed = forwarded | {"x-forwarded-host": "mycompany.com:https"}
    with pytest.raises(WebhookAuthError):
        known_answer_channel(trust_forwarded_headers=True).verify(request(behind_proxy, KNOWN_PARAMS, KNOWN_SIGNATURE, malformed))


def test_missing_wrong_and_truncated_signatures_are_refused() -> None:
    good = signed_delivery(load("text"))
    parser().verify(good)
    signature = good.headers["x-twilio-signature"]
    cases = [(None, 401), ("", 401), (signature[:-2], 403), (sign(good.url, load("text"), token="f" * 32), 403), ("x" * 28, 403)]
    for value, status in cases:
        headers = {k: v for k, v in good.headers.items() if k != "x-twilio-signature"}
        if value is not None:
            headers["x-twilio-signature"] = value
        with pytest.raises(WebhookAuthError) as refused:
            parser().verify(WebhookRequest("POST", good.url, headers, {}, good.body))
        assert refused.value.status_code == status


def test_a_signature_for_another_body_or_url_is_refused() -> None:
    good = signed_delivery(load("text"))
    tampered = WebhookRequest("POST", good.url, good.headers, {}, good.body.replace(b"lana", b"seda"))
    moved = WebhookRequest("POST", good.url.replace("/webhooks/twilio", "/webhooks/other"), good.headers, {}, good.body)
    for forged in (tampered, moved):
        with pytest.raises(WebhookAuthError):
            parser().verify(forged)


# -- parsing recorded webhooks ---------------------------------------------------


def test_text_message() -> None:
    (message,) = parser().parse(signed_delivery(load("text"))).messages
    assert message.channel == "twilio"
    assert message.external_id == "SM1f0e8ae6ade43cb3c0ce4525424e404f"
    assert message.sender_id == message.chat_id == SHOPPER
    assert message.text == "¿tienen calcetines de lana?"
    assert message.timestamp == NOW
    assert message.raw["ProfileName"] == "Lucía"
    assert message.attachments == () and message.button_payload is None


def test_media_message_lists_every_attachment() -> None:
    (message,) = parser().parse(signed_delivery(load("media"))).messages
    assert message.text == ""
    assert [(a.kind, a.mime_type) for a in message.attachments] == [("image", "image/jpeg"), ("audio", "audio/ogg")]
    assert message.attachments[0].url.endswith("/Media/ME0a1b2c3d4e5f60718293a4b5c6d7e8f9")


def test_quick_reply_tap_carries_its_payload() -> None:
    (message,) = parser().parse(signed_delivery(load("button_reply"))).messages
    assert (message.text, message.button_payload) == ("Shipping", "/topic shipping")


def test_location_becomes_a_geo_attachment() -> None:
    (message,) = parser().parse(signed_delivery(load("location"))).messages
    (place,) = message.attachments
    assert (place.kind, place.url, place.name) == ("location", "geo:40.416775,-3.70379", "Puerta del Sol, Madrid")
    assert message.text == ""


def test_sms_to_the_same_number_is_ignored() -> None:
    assert parser().parse(signed_delivery(load("sms_text"))).messages == []


@pytest.mark.parametrize(
    ("fixture", "status", "code", "unreachable"),
    [
        ("status_delivered", "delivered", None, False),
        ("status_read", "read", None, False),
        ("status_failed_63016", "failed", "63016", False),
        ("status_undelivered_21610", "undelivered", "21610", True),
        ("status_failed_63014", "failed", "63014", True),
    ],
)
def test_status_callbacks_become_receipts(fixture: str, status: str, code: str | None, unreachable: bool) -> None:
    parsed = parser().parse(signed_delivery(load(fixture)))
    (receipt,) = parsed.receipts
    assert parsed.messages == []
    assert receipt.platform_message_id == load(fixture)["MessageSid"]
    assert (receipt.status, receipt.error_code, receipt.unreachable, receipt.chat_id) == (status, code, unreachable, SHOPPER)


@pytest.mark.parametrize("body", [b"", b"Body=hi", b"MessageSid=SM1", b"\xff\xfe", b"a=1&" * 600, b"=&=&&"])
def test_bodies_that_are_not_twilio_webhooks_are_payload_errors(body: bytes) -> None:
    with pytest.raises(WebhookPayloadError):
        parser().parse(WebhookRequest("POST", "https://shop.example/webhooks/twilio", {}, {}, body))


form_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
twilio_like = st.dictionaries(
    st.sampled_from(
        ["MessageSid", "SmsSid", "From", "To", "Body", "NumMedia", "MediaUrl0", "MediaContentType0", "MediaUrl1", "Latitude",
         "Longitude", "Address", "ButtonPayload", "ButtonText", "ListId", "MessageStatus", "ErrorCode", "ProfileName"]
    ) | form_text,
    st.sampled_from(["whatsapp:+34600111222", "SM123", "2", "1", "40.4", "-3.7", "nan", "inf", "delivered", "21610", ""]) | form_text,
    max_size=10,
).map(lambda fields: urlencode(fields).encode())


@hypothesis_settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=300) | twilio_like)
def test_parse_raises_only_payload_errors(body: bytes) -> None:
    try:
        parsed = parser().parse(WebhookRequest("POST", "https://shop.example/webhooks/twilio", {}, {}, body))
    except WebhookPayloadError:
        return
    for message in parsed.messages:
        assert message.chat_id.startswith("whatsapp:") and isinstance(message.text, str)


# -- rendering -------------------------------------------------------------------


def test_reply_renders_as_one_whatsapp_body_with_numbered_options() -> None:
    reply = OutboundMessage(
        "Here are **2** options:\n> Free returns",
        buttons=(Button("Shipping", "/topic shipping"), Button("Talk to a person", "/human")),
        products=(SOCK, COTTON),
        sources=(Source("Returns", "https://shop.example/r"),),
    )
    (part,) = render(reply)
    assert part.media == ""
    assert part.body == (
        "Here are *2* options:\n> Free returns\n"
        "1. *Merino Hiking Sock* — €18.00\n   _under your €20 budget_\n   https://shop.example/p/sock\n"
        "2. *Cotton Sock* — €9.50 (out of stock)\n   https://shop.example/p/cotton\n"
        "[1] Shipping\n[2] Talk to a person\n"
        "Sources:\n- Returns https://shop.example/r"
    )


def test_a_single_product_with_an_image_is_a_media_message_when_it_fits_a_caption() -> None:
    (part,) = render(OutboundMessage("This one:", products=(SOCK,)))
    assert part.media == SOCK.image and "Merino Hiking Sock" in part.body
    parts = render(OutboundMessage("word " * 250, products=(SOCK,)))
    assert [p.media for p in parts] == [""] and units(parts[0].body) > MAX_CAPTION_UNITS


@hypothesis_settings(max_examples=100, deadline=None)
@given(text=st.text(alphabet=st.characters(exclude_characters="*"), min_size=1, max_size=5000))
def test_long_bodies_are_split_under_1600_and_keep_every_character(text: str) -> None:
    parts = render(OutboundMessage(text))
    assert all(units(part.body) <= MAX_BODY_UNITS for part in parts)
    assert "".join("".join(part.body for part in parts).split()) == "".join(text.split())


# -- sending against the fake Messages API -----------------------------------------


async def test_send_uses_the_async_client_with_status_callback(fake: tuple[FakeTwilio, str]) -> None:
    platform, url = fake
    channel = make_channel(url)
    await channel.open()
    try:
        sent = await channel.send(SHOPPER, OutboundMessage("Hello **there**", products=(SOCK,)))
    finally:
        await channel.close()
    (record,) = platform.sent
    assert record.chat_id == SHOPPER and record.text.startswith("Hello *there*")
    assert record.raw["From"] == WHATSAPP_NUMBER
    assert record.raw["MediaUrl"] == [SOCK.image]
    assert record.raw["StatusCallback"] == "https://shop.example/webhooks/twilio"
    (sid,) = sent.platform_message_ids
    assert sid.startswith("SM") and len(sid) == 34


async def test_long_replies_are_several_messages_in_order(fake: tuple[FakeTwilio, str]) -> None:
    platform, url = fake
    channel = make_channel(url, public_url=None)
    await channel.open()
    try:
        sent = await channel.send(SHOPPER, OutboundMessage("lorem ipsum " * 300))
    finally:
        await channel.close()
    assert len(sent.platform_message_ids) == len(platform.sent) == 3
    assert "StatusCallback" not in platform.sent[0].raw  # no public URL: callbacks are configured in the console


async def test_the_approved_template_is_sent_by_content_sid(fake: tuple[FakeTwilio, str]) -> None:
    platform, url = fake
    channel = make_channel(url, template_sid="HX" + "ab" * 16)
    await channel.open()
    try:
        await channel.send_template(SHOPPER, {"1": "Merino Hiking Sock"})
        with pytest.raises(SendError) as caught:
            await make_channel(url).send_template(SHOPPER, {})
    finally:
        await channel.close()
    (params,) = platform.requests
    assert params["ContentSid"] == "HX" + "ab" * 16 and json.loads(params["ContentVariables"]) == {"1": "Merino Hiking Sock"}
    assert caught.value.permanent and caught.value.code == "no_template"


@pytest.mark.parametrize(
    ("status", "options", "flags"),
    [
        (429, {"retry_after": 30}, {"retry_after": 30.0, "permanent": False, "unreachable": False, "maybe_sent": False, "code": "20429"}),
        (429, {}, {"retry_after": None, "permanent": False, "unreachable": False, "maybe_sent": False, "code": "20429"}),
        (500, {}, {"retry_after": None, "permanent": False, "unreachable": False, "maybe_sent": False, "code": "20500"}),
        (503, {"retry_after": 5}, {"retry_after": 5.0, "permanent": False, "unreachable": False, "maybe_sent": False, "code": "20503"}),
        (400, {"code": 21610}, {"retry_after": None, "permanent": True, "unreachable": True, "maybe_sent": False, "code": "21610"}),
        (400, {"code": 63014}, {"retry_after": None, "permanent": True, "unreachable": True, "maybe_sent": False, "code": "63014"}),
        (400, {"code": 63016}, {"retry_after": None, "permanent": True, "unreachable": False, "maybe_sent": False, "code": "63016"}),
        (400, {}, {"retry_after": None, "permanent": True, "unreachable": False, "maybe_sent": False, "code": "21211"}),
        (401, {}, {"retry_after": None, "permanent": True, "unreachable": False, "maybe_sent": False, "code": "20003"}),
    ],
)
async def test_platform_errors_are_translated(
    fake: tuple[FakeTwilio, str], status: int, options: dict[str, Any], flags: dict[str, Any]
) -> None:
    platform, url = fake
    channel = make_channel(url)
    platform.fail_next(status, **options)
    await channel.open()
    try:
        with pytest.raises(SendError) as caught:
            await channel.send(SHOPPER, OutboundMessage("hello"))
    finally:
        await channel.close()
    assert {name: getattr(caught.value, name) for name in flags} == flags
    assert AUTH_TOKEN not in str(caught.value)


async def test_no_connection_is_retried_and_a_timeout_after_sending_is_maybe_sent(fake: tuple[FakeTwilio, str]) -> None:
    platform, url = fake
    unreachable = make_channel(f"http://127.0.0.1:{free_port()}")
    slow = make_channel(url, request_seconds=0.3)
    platform.delay_next(1.5)
    await unreachable.open()
    await slow.open()
    try:
        with pytest.raises(SendError) as refused:
            await unreachable.send(SHOPPER, OutboundMessage("hello"))
        with pytest.raises(SendError) as timed_out:
            await slow.send(SHOPPER, OutboundMessage("hello"))
    finally:
        await unreachable.close()
        await slow.close()
    assert not refused.value.maybe_sent and not refused.value.permanent
    assert timed_out.value.maybe_sent and not timed_out.value.permanent


async def test_a_send_before_open_is_retryable() -> None:
    with pytest.raises(SendError) as caught:
        await make_channel().send(SHOPPER, OutboundMessage("hello"))
    assert not caught.value.permanent and not caught.value.maybe_sent


async def test_a_failure_on_the_first_part_is_an_ordinary_retry_and_after_it_maybe_sent(fake: tuple[FakeTwilio, str]) -> None:
    platform, url = fake
    channel = make_channel(url)
    await channel.open()
    try:
        platform.fail_next(503)
        with pytest.raises(SendError) as first:
            await channel.send(SHOPPER, OutboundMessage("lorem ipsum " * 300))
        platform.fail_next(503, after=1)
        with pytest.raises(SendError) as second:
            await channel.send(SHOPPER, OutboundMessage("lorem ipsum " * 300))
    finally:
        await channel.close()
    assert not first.value.maybe_sent and not first.value.permanent  # nothing went out
    assert second.value.maybe_sent and len(platform.sent) == 1  # part 1 went out: never resend the whole reply


# -- the adapter as an object -----------------------------------------------------


def test_settings_build_the_channel_with_the_configured_pace(tmp_path: Path) -> None:
    settings = Settings(  # type: ignore[call-arg]
        data_dir=tmp_path, _env_file=None, public_url="https://shop.example", twilio_messages_per_second=12.5, **CASE.settings("http://127.0.0.1:9")
    )
    channel = enabled_channels(settings)["twilio"]
    assert isinstance(channel, TwilioWhatsAppChannel)
    assert channel.policy.messages_per_second == 12.5 and channel.policy.reply_window == timedelta(hours=24)
    assert channel.within_window(NOW - timedelta(hours=23), NOW) and not channel.within_window(NOW - timedelta(hours=25), NOW)
    assert TwilioWhatsAppChannel.policy.messages_per_second == 1.0  # the class default is untouched
    assert AUTH_TOKEN not in repr(channel) and ACCOUNT_SID not in repr(channel)


def test_retry_after_header_forms() -> None:
    assert parse_retry_after("30") == 30.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: retry now


def test_repeated_form_fields_keep_every_value_for_the_signature() -> None:
    params = _form(b"MediaUrl=a&MediaUrl=b&Body=x")
    assert params.getall("MediaUrl") == ["a", "b"] and params.first("Body") == "x"


def test_signed_garbage_posted_to_the_app_never_yields_a_server_error(tmp_path: Path, demo_seed: Path) -> None:
    platform = FakeTwilio()
    data = tmp_path / "var"
    shutil.copytree(demo_seed, data)
    with serve_in_thread(platform.app) as url:
        settings = Settings(data_dir=data, _env_file=None, public_url="https://shop.example", **CASE.settings(url))  # type: ignore[call-arg]
        with TestClient(create_app(settings, start_scheduler=False)) as client:

            @hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
            @given(body=st.binary(max_size=200) | twilio_like)
            def post(body: bytes) -> None:
                fields = dict(_form(body))
                signature = RequestValidator(AUTH_TOKEN).compute_signature("https://shop.example/webhooks/twilio", _form(body))
                headers = {"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature}
                response = client.post("/webhooks/twilio", content=body, headers=headers)
                assert response.status_code < 500, (fields, response.text)
                assert response.status_code != 403

            post()
