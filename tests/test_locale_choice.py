"""Which language a turn is answered in."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.locale_choice import choose_locale, country_language, language_name
from bot.messages import InboundMessage

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def message(text: str, *, hint: str | None = None, channel: str = "web", sender: str = "u1") -> InboundMessage:
    return InboundMessage(channel=channel, external_id="x", sender_id=sender, chat_id=sender, text=text, timestamp=NOW, locale_hint=hint)


def test_explicit_choice_beats_everything() -> None:
    choice = choose_locale(message("/language de", hint="fr"), known="es", default="en")
    assert (choice.locale, choice.remember) == ("de", True)
    assert choose_locale(message("parlez-vous français ?"), known="en", default="en").locale == "fr"


def test_known_language_beats_hint_and_detection() -> None:
    assert choose_locale(message("do you have socks?", hint="de"), known="es", default="en").locale == "es"


def test_platform_hint_beats_detection() -> None:
    assert choose_locale(message("do you have socks?", hint="pt-BR"), known=None, default="en").locale == "pt_BR"


def test_detected_language_when_there_is_no_hint() -> None:
    choice = choose_locale(message("hola, ¿tienen calcetines de lana?"), known=None, default="en")
    assert (choice.locale, choice.remember) == ("es", True)


def test_whatsapp_number_country_when_the_text_says_nothing() -> None:
    inbound = message("👍", channel="twilio", sender="whatsapp:+4915100000001")
    assert country_language(inbound) == "de"
    assert choose_locale(inbound, known=None, default="en").locale == "de"
    assert country_language(message("ok", channel="whatsapp", sender="5511900000001")) == "pt_BR"
    assert country_language(message("ok", channel="telegram", sender="3360000000")) is None


def test_store_default_otherwise_and_unsupported_language_is_reported() -> None:
    choice = choose_locale(message("ok", hint="it"), known=None, default="fr")
    assert choice.locale == "fr"
    assert choice.unsupported == "it"
    assert not choice.remember
    assert choose_locale(message("/language it"), known=None, default="en").unsupported == "it"


@pytest.mark.parametrize(
    ("tag", "locale", "name"), [("it", "fr", "italien"), ("de", "es", "alemán"), ("pt_BR", "en", "Portuguese (Brazil)")]
)
def test_language_names_are_given_in_the_shoppers_language(tag: str, locale: str, name: str) -> None:
    assert language_name(tag, locale) == name
