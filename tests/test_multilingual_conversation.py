"""The same scripted conversation in each supported language: replies in that language, prices formatted for it."""

from __future__ import annotations

from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from bot.i18n import _, format_price, translations, use_locale
from bot.language import detect_language

SCRIPTS = {
    "en": ("hello", "do you have running shoes under 100?", "how long does shipping take?"),
    "es": ("hola", "¿tienen zapatillas de running por menos de 100 euros?", "¿cuánto tarda el envío?"),
    "fr": ("bonjour", "avez-vous des chaussures de course à moins de 100 euros ?", "combien de temps prend la livraison ?"),
    "de": ("hallo", "haben Sie Laufschuhe unter 100 Euro?", "wie lange dauert der Versand?"),
    "pt_BR": ("olá", "vocês têm tênis de corrida por menos de 100 euros?", "quanto tempo demora a entrega?"),
}
EXPECTED_PRICE = {"en": "€89.90", "es": "89,90\u00a0€", "fr": "89,90\u00a0€", "de": "89,90\u00a0€", "pt_BR": "€\u00a089,90"}


@pytest.mark.parametrize("locale", list(SCRIPTS))
def test_scripted_conversation_in_each_language(client: TestClient, locale: str) -> None:
    greeting, products, shipping = SCRIPTS[locale]
    user = f"polyglot-{locale}"
    first = client.post("/api/chat", json={"user_id": user, "text": greeting}).json()
    assert first["locale"] == locale
    with use_locale(locale):
        expected_start = _("Hi! {disclosure} I can help you find products, answer questions about shipping, returns and payment, "
                           "and hand you over to our team. What are you looking for?",
                           disclosure=_("I'm the automated shop assistant of {store}.", store="Alder & Finch"))
    assert first["replies"][0]["text"] == expected_start

    found = client.post("/api/chat", json={"user_id": user, "text": products}).json()
    cards = found["replies"][0]["products"]
    assert cards, found
    assert all(Decimal(card["price"]) <= 100 for card in cards)
    for card in cards:
        with use_locale(locale):
            assert card["price_text"] == format_price(Decimal(card["price"]), "EUR")
    if locale != "en":
        assert translations(locale).ngettext("Here is what I found in our catalog:", "Here are {n} options from our catalog:", 2) != (
            "Here are {n} options from our catalog:"
        )
        assert detect_language(found["replies"][0]["text"]) in {locale, None}

    policy = client.post("/api/chat", json={"user_id": user, "text": shipping}).json()
    reply = policy["replies"][0]
    assert reply["sources"], reply
    source = reply["sources"][0]["url"]
    if locale == "en":
        assert "/pages/shipping" in source
    else:
        assert f"/{locale.replace('_', '-') if False else locale}/pages/shipping" in source or f"/{locale}/" in source


@pytest.mark.parametrize(("locale", "text"), list(EXPECTED_PRICE.items()))
def test_prices_are_formatted_for_the_shoppers_locale(locale: str, text: str) -> None:
    with use_locale(locale):
        assert format_price(Decimal("89.90"), "EUR") == text
