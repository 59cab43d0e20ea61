"""The kind of thing a request asks for, and whether the store carries any (kb.assortment)."""

from __future__ import annotations

import pytest

from kb.assortment import Assortment, is_product_kind, kind_stems, request_heads
from kb.query import clean_query

# What DummyJSON-like products are called: the Lenovo *Yoga* is a laptop, the cars are cars.
SHOP = Assortment.from_products(
    [
        ("Lenovo Yoga 920", "laptops", ["laptops"]),
        ("Charger SXT RWD", "vehicle", ["sedans", "sports cars", "vehicles"]),
        ("iPhone X", "smartphones", ["smartphones", "apple"]),
        ("Rolex Submariner Watch", "mens-watches", ["watches", "luxury watches"]),
        ("Blue Women's Handbag", "womens-bags", ["fashion accessories", "handbags"]),
        ("Juice", "groceries", ["beverages"]),
        ("Wooden Bathroom Sink With Mirror", "furniture", ["furniture", "bathroom"]),
        ("Annibale Colombo Sofa", "furniture", ["furniture", "sofas"]),
        ("Apple AirPods Max Silver", "mobile-accessories", ["electronics", "over-ear headphones"]),
        ("Table Lamp", "home-decoration", ["home decor", "lighting"]),
        ("Knife", "kitchen-accessories", ["kitchen tools", "cutlery"]),
    ]
)


def heads(message: str, language: str) -> list[tuple[str, str, bool]]:
    """(shopper's word, English kind, known) of each phrase of the cleaned message, as the index sees it."""
    return [(h.word, h.kind, h.known) for h in request_heads(clean_query(message, language).text, language)]


@pytest.mark.parametrize(
    ("message", "language", "expected"),
    [
        ("do you sell winter tires for my car?", "en", [("tires", "tires", True)]),
        ("yoga mat", "en", [("mat", "mat", True)]),
        ("tablet I can draw on with a pen", "en", [("tablet", "tablet", True)]),
        ("¿tienen calcetines de lana?", "es", [("calcetines", "socks", True)]),
        ("gafas de sol de menos de 30 dólares", "es", [("gafas de sol", "sunglasses", True)]),
        ("chaussures de course", "fr", [("chaussures de course", "running shoes", True)]),
        ("rouge à lèvres rouge", "fr", [("rouge à lèvres", "lipstick", True)]),
        ("Handtasche von Prada", "de", [("Handtasche", "handbag", True)]),
        ("habt ihr Rasenmäher?", "de", [("Rasenmäher", "lawn mower", True)]),
        ("Luxusuhr ab 5000 Dollar", "de", [("Luxusuhr", "watch", True)]),
        ("suco e refrigerante pra festa", "pt", [("suco", "juice", True), ("refrigerante", "soft drinks", True)]),
        ("meias de lã", "pt", [("meias", "socks", True)]),
        ("¿y camisetas de running?", "es", [("camisetas", "t-shirt", True)]),
    ],
)
def test_the_head_of_a_request_in_five_languages(message: str, language: str, expected: list[tuple[str, str, bool]]) -> None:
    assert heads(message, language) == expected


@pytest.mark.parametrize(
    ("message", "language"),
    [
        ("iphone 13 pro", "en"),  # a model number
        ("yoga", "en"),  # an activity, not a product type
        ("anniversary gift for my husband", "en"),  # an occasion: the store's own words decide
        ("tapis de yoga", "fr"),  # "tapis" is in no vocabulary here: left to the embedder
        ("Samsung Galaxy S8 – sofort lieferbar?", "de"),
        ("algo pra deixar a casa mais bonita", "pt"),
    ],
)
def test_unknown_heads_are_not_product_types(message: str, language: str) -> None:
    found = heads(message, language)
    assert found and not any(known for _, _, known in found)
    assert SHOP.missing_kind(clean_query(message, language).text, language) is None


@pytest.mark.parametrize("message", ["something to keep my coffee hot", "stuff to start playing", "i look so dark on zoom calls"])
def test_a_request_that_names_no_thing_is_never_missing(message: str) -> None:
    assert not any(known for _, _, known in heads(message, "en"))  # a verb, or nothing before "i"
    assert SHOP.missing_kind(clean_query(message, "en").text, "en") is None


def test_a_pronoun_ends_the_phrase_before_any_word() -> None:
    assert request_heads("i look so dark on zoom calls", "en") == ()


def test_forms_of_a_product_type_share_a_stem() -> None:
    assert kind_stems("tires") & kind_stems("tire")
    assert kind_stems("knives") & kind_stems("knife")
    assert kind_stems("watches") & kind_stems("Watch")
    assert kind_stems("lighting") & kind_stems("light")
    assert not is_product_kind("light") and not is_product_kind("sweet")  # as often adjectives: left to the ranking
    assert is_product_kind("Tyres") and is_product_kind("nappies")
    assert not is_product_kind("winter") and not is_product_kind("yoga")


def test_what_the_store_carries_is_read_from_titles_categories_and_tags() -> None:
    assert SHOP.carries("laptop") and SHOP.carries("car")  # category, tag
    assert SHOP.carries("phone")  # "smartphones" are phones
    assert SHOP.carries("wristwatch")  # a wristwatch is a watch
    assert SHOP.carries("couch")  # a synonym of "sofas"
    assert SHOP.carries("headphones") and SHOP.carries("lamp") and SHOP.carries("knives")
    assert Assortment.from_products([("Tempo Running T-Shirt", "Outdoor clothing", ["t-shirt"])]).carries("t-shirt")
    assert not SHOP.carries("mat") and not SHOP.carries("tires")
    assert not SHOP.carries("ink")  # "sink" does not end in a product called ink
    assert not SHOP.carries("yoga mat")


@pytest.mark.parametrize(
    ("message", "language", "asked_for"),
    [
        ("yoga mat", "en", "yoga mat"),
        ("do you sell winter tires for my car?", "en", "winter tires"),
        ("printer ink cartridges for hp", "en", "printer ink cartridges"),
        ("tienen pañales para bebé?", "es", "pañales"),
        ("habt ihr Rasenmäher?", "de", "Rasenmäher"),
        ("un pull en laine", "fr", "pull"),
        ("guarda-chuva", "pt", "guarda-chuva"),
        # what is quoted back to the shopper is the thing asked for, not the words that follow it
        ("une robe taille 38 pour un mariage, budget entre 80 et 150€, rien de blanc", "fr", "robe"),
        ("un jersey sin lana x favor q me pica", "es", "jersey"),
    ],
)
def test_a_kind_the_store_has_none_of_is_missing(message: str, language: str, asked_for: str) -> None:
    assert SHOP.missing_kind(clean_query(message, language).text, language) == asked_for


@pytest.mark.parametrize(
    ("message", "language"),
    [
        ("family car for road trips with the kids", "en"),
        ("lenovo laptop", "en"),
        ("celular até 300 dólares", "pt"),
        ("Handtasche von Prada", "de"),
        ("suco e pneus", "pt"),  # one of the two things asked for is carried
        ("ordinateur portable léger pour voyager", "fr"),
    ],
)
def test_a_kind_the_store_carries_is_not_missing(message: str, language: str) -> None:
    assert SHOP.missing_kind(clean_query(message, language).text, language) is None


def test_an_empty_store_never_claims_to_lack_anything() -> None:
    assert Assortment().missing_kind("yoga mat", "en") is None


@pytest.mark.parametrize("language", [None, "", "it", "ja"])
def test_in_a_language_the_bot_does_not_speak_nothing_is_declared_missing(language: str | None) -> None:
    # read as English, "presente pro meu namorado que curte games" would ask for games
    assert SHOP.missing_kind("yoga mat", language) is None
    assert SHOP.missing_kind("yoga mat", "en-GB") == "yoga mat"
    assert SHOP.missing_kind("pneus para o carro", "pt_BR") == "pneus"


def test_the_store_categories_are_listed_most_products_first() -> None:
    shop = Assortment.from_products([("A", "Socks", []), ("B", "Boots", ["hiking"]), ("C", "Socks", [])])
    assert shop.categories == ("Socks", "Boots")


def test_a_long_message_is_never_declared_not_carried() -> None:
    # a 700-word message is no short request for one kind of thing (and reading its head cost seconds a turn)
    long_message = " and ".join(["a yoga mat"] * 30)
    assert SHOP.missing_kind(" and ".join(["a yoga mat"] * 3), "en") == "yoga mat"
    assert SHOP.missing_kind(long_message, "en") is None
