"""Intent recognition in the five supported languages."""

from __future__ import annotations

import pytest

from bot.understanding import Intent, PolicyTopic, understand


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("hi", Intent.GREETING),
        ("Hola!", Intent.GREETING),
        ("bonjour", Intent.GREETING),
        ("help", Intent.HELP),
        ("do you have running shoes under 100?", Intent.PRODUCT_SEARCH),
        ("¿tienen calcetines de lana?", Intent.PRODUCT_SEARCH),
        ("je cherche un cadeau pour ma mère", Intent.PRODUCT_SEARCH),
        ("ich suche Wanderschuhe", Intent.PRODUCT_SEARCH),
        ("vocês têm tênis de corrida?", Intent.PRODUCT_SEARCH),
        ("wool socks", Intent.PRODUCT_SEARCH),
        ("where is my order?", Intent.ORDER_STATUS),
        ("¿dónde está mi pedido AF-1002?", Intent.ORDER_STATUS),
        ("I want to talk to a person", Intent.HUMAN),
        ("quiero hablar con un humano", Intent.HUMAN),
        ("je voudrais un conseiller", Intent.HUMAN),
        ("bitte einen Mitarbeiter", Intent.HUMAN),
        ("quero falar com um atendente", Intent.HUMAN),
        ("thanks!", Intent.THANKS),
        ("bye", Intent.GOODBYE),
    ],
)
def test_intents(text: str, intent: Intent) -> None:
    assert understand(text).intent is intent


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("how long does shipping take?", PolicyTopic.SHIPPING),
        ("¿cuánto cuesta el envío?", PolicyTopic.SHIPPING),
        ("combien de temps pour la livraison ?", PolicyTopic.SHIPPING),
        ("can I return an item?", PolicyTopic.RETURNS),
        ("Wie funktioniert die Rückgabe?", PolicyTopic.RETURNS),
        ("posso trocar o tamanho?", PolicyTopic.RETURNS),
        ("do you take paypal?", PolicyTopic.PAYMENT),
        ("what are your opening hours?", PolicyTopic.CONTACT),
        ("what size should I order?", PolicyTopic.SIZES),
    ],
)
def test_policy_topics(text: str, topic: PolicyTopic) -> None:
    result = understand(text)
    assert result.intent is Intent.POLICY
    assert result.policy_topic is topic


def test_gift_cards_are_a_product_not_a_payment_question() -> None:
    assert understand("do you have gift cards?").intent is Intent.PRODUCT_SEARCH


def test_order_number_is_extracted() -> None:
    assert understand("status of order #AF-1007 please").order_number == "AF-1007"
