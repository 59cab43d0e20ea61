"""Query cleaning: a shopper's message becomes the product words to search for, in five languages."""

from __future__ import annotations

import pytest

from kb.glossary import translations
from kb.query import clean_query


@pytest.mark.parametrize(
    ("message", "language", "words"),
    [
        # English: openers, question cues, budget and size phrases go
        ("Do you have running shoes in size 42 under $100?", "en", "running shoes"),
        ("hi! any red dresses under 50 bucks please", "en", "red dresses"),
        ("need a laptop for uni, somewhere between $1000 and $1500", "en", "laptop for uni"),
        ("I'm looking for a rain jacket", "en", "rain jacket"),
        # Spanish
        ("¿tienen calcetines de lana?", "es", "calcetines de lana"),
        ("busco gafas de sol de menos de 30 dólares", "es", "gafas de sol"),
        ("quiero zapatillas de correr talla 40 por menos de 90 €", "es", "zapatillas de correr"),
        # French
        ("je cherche un cadeau pour ma mère, moins de 40 euros", "fr", "cadeau pour ma mère"),
        ("Avez-vous des chaussures de randonnée en taille 43 ?", "fr", "chaussures de randonnée"),
        # German
        ("Habt ihr Rasenmäher?", "de", "Rasenmäher"),
        ("Ich suche Laufschuhe in Größe 43 für maximal 120 €", "de", "Laufschuhe"),
        ("Luxusuhr ab 5000 Dollar", "de", "Luxusuhr"),
        # Portuguese
        ("vocês têm mochila para trilha?", "pt", "mochila para trilha"),
        ("celular até 300 dólares", "pt", "celular"),
        ("procuro tênis tamanho 40 até R$ 300", "pt", "tênis"),
    ],
)
def test_conversation_budget_and_size_words_are_removed(message: str, language: str, words: str) -> None:
    assert clean_query(message, language).words == words


@pytest.mark.parametrize(
    ("message", "language"),
    [
        ("samsung galaxy phone that's available now", "en"),
        ("sportbike in stock?", "en"),
        ("¿tienen la raqueta de tenis en stock?", "es"),
        ("ordinateur portable disponible ?", "fr"),
        ("Samsung Galaxy S8 – sofort lieferbar?", "de"),
        ("bota de trilha em estoque", "pt"),
    ],
)
def test_availability_requests_set_in_stock_only_and_leave_the_query(message: str, language: str) -> None:
    cleaned = clean_query(message, language)
    assert cleaned.in_stock_only
    for word in ("stock", "available", "lieferbar", "estoque", "disponible"):
        assert word not in cleaned.words.casefold()


def test_a_plain_query_is_not_an_availability_request() -> None:
    assert not clean_query("red lipstick", "en").in_stock_only


@pytest.mark.parametrize(("message", "words"), [("iphone 13 pro", "iphone 13 pro"), ("Samsung Galaxy S8", "Samsung Galaxy S8"),
                                                ("summer dress for my 8 year old daughter", "summer dress for my 8 year old daughter")])
def test_numbers_that_are_not_prices_or_sizes_stay(message: str, words: str) -> None:
    assert clean_query(message, "en").words == words


@pytest.mark.parametrize(
    ("message", "language", "absent"),
    [
        ("chocolate sin frutos secos", "es", "frutos"),
        ("sac sans cuir", "fr", "cuir"),
        ("Schuhe ohne Leder", "de", "leder"),
        ("tênis sem couro", "pt", "couro"),
        ("no sugar energy bars", "en", "sugar"),
    ],
)
def test_negated_words_are_not_searched_for(message: str, language: str, absent: str) -> None:
    cleaned = clean_query(message, language)
    assert absent not in cleaned.text.casefold()
    assert cleaned.words  # the product itself is still searched


def test_non_stick_is_a_product_word_not_a_negation() -> None:
    assert clean_query("non-stick pan", "en").words == "non-stick pan"


def test_english_terms_of_retail_words_are_appended() -> None:
    cleaned = clean_query("¿tienen calcetines de lana?", "es")
    assert cleaned.translated == ("socks", "wool")
    assert cleaned.text == "calcetines de lana socks wool"
    assert clean_query("Handtasche von Prada", "de").translated == ("handbag",)  # German compound head
    assert clean_query("boucles d'oreilles vertes", "fr").translated == ("earrings", "green")


def test_english_queries_and_cognates_are_not_translated() -> None:
    assert clean_query("wool socks", "en").translated == ()
    assert translations("perfume até 50 dólares", "pt") == []  # "perfume" is already the English word


def test_a_message_without_product_words_gives_an_empty_query() -> None:
    assert clean_query("do you have anything under $50?", "en").text == ""


def test_unknown_language_applies_every_vocabulary() -> None:
    assert clean_query("¿tienen calcetines?", None).words == "calcetines"
    assert clean_query("habt ihr Socken?", "xx").words == "Socken"


def test_locale_codes_are_accepted() -> None:
    assert clean_query("vocês têm meias de lã?", "pt_BR").words == "meias de lã"
