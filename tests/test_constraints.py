"""Offline shopper-constraint extraction (bot.constraints) and its evaluation (bot.constraints_eval).

The sentences here are written for these tests, in the five supported languages; the
labelled dev set is only used by the regression-floor test at the end.
"""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from pathlib import Path

import pytest

from bot.constraints import (
    Budget,
    Constraints,
    Deadline,
    Size,
    detect_language,
    extract_constraints,
    parse_number,
    resolve_deadline,
)
from bot.constraints_eval import evaluate, format_report
from tests.support.shared_data import require

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEV_SET = SHARED_DATA / "eval" / "constraints_dev.jsonl"

# A Wednesday.
TODAY = datetime.date(2025, 3, 12)


def extract(text: str, language: str | None = None, brands: tuple[str, ...] = ()) -> Constraints:
    return extract_constraints(text, language=language, brands=brands)


# --- budget -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language", "maximum", "currency"),
    [
        ("anything below 45 dollars for a teacher?", "en", Decimal(45), "USD"),
        ("algo que cueste menos de 25€, porfa", "es", Decimal(25), "EUR"),
        ("une lampe, pas plus de 70 euros", "fr", Decimal(70), "EUR"),
        ("Eine Uhr für höchstens 90 Euro", "de", Decimal(90), "EUR"),
        ("uma bolsa de no máximo 120 reais", "pt", Decimal(120), "BRL"),
        ("tops 30 quid", "en", Decimal(30), "GBP"),
        ("un cadeau à 15 balles max", "fr", Decimal(15), "EUR"),
        ("unas gafas, hasta 35 pavos", "es", Decimal(35), "EUR"),
        ("ein Schal bis 20 Mäuse", "de", Decimal(20), "EUR"),
        ("algo bacana até 200 conto", "pt", Decimal(200), "BRL"),
        ("keep it under 60 please", "en", Decimal(60), None),
    ],
)
def test_budget_ceiling_per_language(text: str, language: str, maximum: Decimal, currency: str | None) -> None:
    budget = extract(text, language).budget
    assert budget == Budget(max=maximum, min=None, currency=currency)


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("Mi presupuesto es de 1.299,90 € como máximo", "es", Decimal("1299.90")),
        ("Laptop bis 1.299,90 € bitte", "de", Decimal("1299.90")),
        ("notebook até R$ 1.299,90", "pt", Decimal("1299.90")),
        ("a laptop up to $1,299.90", "en", Decimal("1299.90")),
        ("un parfum à moins de 49,90 €", "fr", Decimal("49.90")),
        ("un ordinateur à moins de 1 299 €", "fr", Decimal("1299")),
        ("a bike, up to 2.5k usd", "en", Decimal("2500")),
    ],
)
def test_budget_numbers_are_parsed_per_locale(text: str, language: str, expected: Decimal) -> None:
    assert extract(text, language).budget.max == expected


def test_parse_number_uses_babel_and_falls_back_on_the_other_convention() -> None:
    assert parse_number("1.299,90", "de") == Decimal("1299.90")
    assert parse_number("1,299.90", "en") == Decimal("1299.90")
    assert parse_number("49,90", "fr") == Decimal("49.90")
    assert parse_number("49.99", "de") == Decimal("49.99")  # not 4999
    assert parse_number("42,5", "en") == Decimal("42.5")
    assert parse_number("1.200", "pt") == Decimal("1200")
    assert parse_number("abc", "en") is None


@pytest.mark.parametrize(
    ("text", "language", "low", "high", "currency"),
    [
        ("somewhere between 70 and 90 dollars", "en", Decimal(70), Decimal(90), "USD"),
        ("£25-£35 for a secret santa", "en", Decimal(25), Decimal(35), "GBP"),
        ("entre 15 et 25 balles", "fr", Decimal(15), Decimal(25), "EUR"),
        ("zwischen 40 und 60 €", "de", Decimal(40), Decimal(60), "EUR"),
        ("de R$ 80 a R$ 150", "pt", Decimal(80), Decimal(150), "BRL"),
        ("rund 50 Euro", "de", Decimal(45), Decimal(55), "EUR"),
        ("cerca de 200 reais", "pt", Decimal(180), Decimal(220), "BRL"),
        ("alrededor de 30 euros", "es", Decimal(27), Decimal(33), "EUR"),
        ("something ~$80", "en", Decimal(72), Decimal(88), "USD"),
    ],
)
def test_budget_ranges_and_approximations(text: str, language: str, low: Decimal, high: Decimal, currency: str) -> None:
    assert extract(text, language).budget == Budget(max=high, min=low, currency=currency)


def test_budget_floor_and_vague_wishes() -> None:
    assert extract("at least £60, it's for my boss", "en").budget == Budget(max=None, min=Decimal(60), currency="GBP")
    assert extract("algo a partir de 100 euros", "es").budget.min == Decimal(100)
    assert extract("je voudrais un truc pas trop cher", "fr").budget.is_empty()
    assert extract("ich brauche 3 Tassen", "de").budget.is_empty()
    assert extract("my son is 12 and wears 152", "en").budget.is_empty()


# --- sizes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language", "size"),
    [
        ("running shoes, US 11 please", "en", Size("shoe_us", "11")),
        ("trail runners in a 9 UK", "en", Size("shoe_uk", "9")),
        ("Stiefel, Schuhgröße 39", "de", Size("shoe_eu", "39")),
        ("unas botas, calzo un 41", "es", Size("shoe_eu", "41")),
        ("des bottines pointure 40,5", "fr", Size("shoe_eu", "40.5")),
        ("tênis de corrida tamanho 38", "pt", Size("other", "BR 38")),
        ("sneakers in 44 EU", "en", Size("shoe_eu", "44")),
    ],
)
def test_shoe_sizes(text: str, language: str, size: Size) -> None:
    assert extract(text, language).sizes == (size,)


@pytest.mark.parametrize(
    ("text", "language", "sizes"),
    [
        ("a hoodie, size large", "en", (Size("clothing", "L"),)),
        ("une veste taille S", "fr", (Size("clothing", "S"),)),
        ("ein Hemd in Größe XL", "de", (Size("clothing", "XL"),)),
        ("camiseta tamanho G", "pt", (Size("clothing", "L"),)),
        ("moletom tamanho GG ou XG", "pt", (Size("clothing", "XL"), Size("clothing", "XXL"))),
        ("polos en tallas S y M", "es", (Size("clothing", "S"), Size("clothing", "M"))),
        ("jeans W30 L32", "en", (Size("numeric", "30/32"),)),
        ("ein Kleid in Größe 40", "de", (Size("numeric", "40"),)),
        ("a winter coat for my daughter, she wears 116", "en", (Size("other", "116"),)),
    ],
)
def test_clothing_and_numeric_sizes(text: str, language: str, sizes: tuple[Size, ...]) -> None:
    assert extract(text, language).sizes == sizes


def test_ages_are_not_sizes_or_quantities() -> None:
    result = extract("un pull pour mon neveu de 7 ans", "fr")
    assert result.sizes == ()
    assert result.quantity is None
    assert result.recipient == "other"


# --- colours and materials ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language", "colors", "avoid_colors", "materials", "avoid_materials"),
    [
        ("no beige please, and nothing in wool", "en", (), ("beige",), (), ("wool",)),
        ("una chaqueta azul marino, sin cuero", "es", ("navy",), (), (), ("leather",)),
        ("pas de soie, plutôt du coton, en vert", "fr", ("green",), (), ("cotton",), ("silk",)),
        ("eine Decke aus Leinen, kein Gelb", "de", (), ("yellow",), ("linen",), ()),
        ("bolsa sem couro, de linho, cor vinho", "pt", ("red",), (), ("linen",), ("leather",)),
        ("Faux leather tote in olive or mustard", "en", ("green", "yellow"), (), (), ("leather",)),
        ("light grey cashmere, not charcoal", "en", (), ("gray",), ("cashmere",), ()),
    ],
)
def test_colours_and_materials_with_negation(
    text: str,
    language: str,
    colors: tuple[str, ...],
    avoid_colors: tuple[str, ...],
    materials: tuple[str, ...],
    avoid_materials: tuple[str, ...],
) -> None:
    result = extract(text, language)
    assert result.colors_include == colors
    assert result.colors_exclude == avoid_colors
    assert result.materials_include == materials
    assert result.materials_exclude == avoid_materials


def test_colour_words_naming_products_are_not_colours() -> None:
    assert extract("a bottle of red wine for my dad", "en").colors_include == ()
    assert extract("chocolate blanco para mi madre", "es").colors_include == ()
    assert extract("un bouquet de roses pour ma femme", "fr").colors_include == ()


# --- dietary ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language", "dietary"),
    [
        ("my son can't have peanuts, anything safe?", "en", ("nut_free",)),
        ("galletas sin huevo y sin soja", "es", ("egg_free", "soy_free")),
        ("ma fille est allergique aux noisettes", "fr", ("nut_free",)),
        ("Pralinen, ich habe eine Laktoseintoleranz", "de", ("lactose_free",)),
        ("meu pai é diabético, algo sem açúcar", "pt", ("sugar_free",)),
        ("plant-based and halal snacks", "en", ("vegan", "halal")),
        ("a vegan leather belt", "en", ()),
    ],
)
def test_dietary_needs_and_allergens(text: str, language: str, dietary: tuple[str, ...]) -> None:
    assert extract(text, language).dietary == dietary


def test_first_person_diet_means_the_gift_is_for_the_shopper() -> None:
    assert extract("I'm coeliac, do you have gluten free biscuits?", "en").recipient == "self"
    assert extract("je suis végétarienne, des idées ?", "fr").dietary == ("vegetarian",)


# --- deadlines ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language", "deadline", "date"),
    [
        ("can it arrive by Tuesday?", "en", Deadline("by tuesday", "tuesday", None), datetime.date(2025, 3, 18)),
        ("lo necesito para el jueves", "es", Deadline("by thursday", "thursday", None), datetime.date(2025, 3, 13)),
        ("livré d'ici 4 jours ?", "fr", Deadline("within 4 days", None, 4), datetime.date(2025, 3, 16)),
        ("geht das bis übermorgen?", "de", Deadline("day after tomorrow", None, 2), datetime.date(2025, 3, 14)),
        ("chega até amanhã?", "pt", Deadline("tomorrow", None, 1), datetime.date(2025, 3, 13)),
        ("needed before march 3rd", "en", Deadline("by mar 3", None, None), datetime.date(2026, 3, 3)),
        ("para antes del 25 de marzo", "es", Deadline("by mar 25", None, None), datetime.date(2025, 3, 25)),
        ("bis nächsten Mittwoch", "de", Deadline("by next wednesday", "wednesday", None), datetime.date(2025, 3, 19)),
        ("within two weeks", "en", Deadline("within 2 weeks", None, 14), datetime.date(2025, 3, 26)),
    ],
)
def test_deadlines_and_their_dates(text: str, language: str, deadline: Deadline, date: datetime.date) -> None:
    found = extract(text, language).deadline
    assert found == deadline
    assert resolve_deadline(found, TODAY) == date


def test_resolve_deadline_edge_cases() -> None:
    assert resolve_deadline(None, TODAY) is None
    assert resolve_deadline(Deadline("by wednesday", "wednesday", None), TODAY) == datetime.date(2025, 3, 19)
    assert resolve_deadline(Deadline("by the 20th", None, None), TODAY) == datetime.date(2025, 3, 20)
    assert resolve_deadline(Deadline("by the 5th", None, None), TODAY) == datetime.date(2025, 4, 5)
    assert resolve_deadline(Deadline("whenever", None, None), TODAY) is None


def test_past_events_and_greetings_are_not_deadlines() -> None:
    assert extract("I ordered 5 days ago, where is it?", "en").deadline is None
    assert extract("Guten Morgen! Habt ihr Schals?", "de").deadline is None


# --- recipient, occasion, brands, quantity ------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language", "recipient", "occasion"),
    [
        ("c'est pour l'anniversaire de mon mari", "fr", "husband", "birthday"),
        ("ein Weihnachtsgeschenk für meine Oma", "de", "other", "christmas"),
        ("regalo de boda para una compañera de trabajo", "es", "colleague", "wedding"),
        ("presente de dia das mães pra minha sogra", "pt", "other", "other"),
        ("something for my stepdad's retirement", "en", "other", "other"),
        ("for our 5th wedding anniversary, for my husband", "en", "husband", "anniversary"),
        ("aniversario de novios, es para mi pareja", "es", "other", "anniversary"),
        ("un petit cadeau pour mes enfants", "fr", "child", None),
        ("treating myself this time", "en", "self", None),
    ],
)
def test_recipient_and_occasion(text: str, language: str, recipient: str, occasion: str | None) -> None:
    result = extract(text, language)
    assert result.recipient == recipient
    assert result.occasion == occasion


def test_brands_from_the_store_catalog() -> None:
    catalog = ("Pampi", "Velvet Touch", "Essence")
    assert extract("anything from pampi?", "en", catalog).brands_include == ("Pampi",)
    assert extract("nothing by velvet touch please", "en", catalog).brands_exclude == ("Velvet Touch",)
    # a brand that is also an everyday word needs a capital letter or a cue
    assert extract("a candle with an essence of lavender", "en", catalog).brands_include == ()
    assert extract("she loves Essence mascara", "en", catalog).brands_include == ("Essence",)


def test_well_known_brands_and_unknown_capitalised_ones() -> None:
    result = extract("he likes levis and Carhartt, but no tommy hilfiger", "en")
    assert result.brands_include == ("Levi's", "Carhartt")
    assert result.brands_exclude == ("Tommy Hilfiger",)
    assert extract("sin nada de Shein", "es").brands_exclude == ("Shein",)
    assert extract("kompatible Kapseln, aber keine von Nespresso", "de").brands_exclude == ("Nespresso",)
    assert extract("an apple pie recipe book", "en").brands_include == ()


@pytest.mark.parametrize(
    ("text", "language", "quantity"),
    [
        ("five scented candles", "en", 5),
        ("pack of 4 beach towels", "en", 4),
        ("une douzaine de macarons", "fr", 12),
        ("zwei Paar Wollsocken", "de", 2),
        ("quero 3 canecas", "pt", 3),
        ("necesito 8 tazas para la oficina", "es", 8),
        ("x3 of the grey one and x2 of the blue", "en", 5),
        ("an iPhone 15 case", "en", None),
        ("order #4471 hasn't arrived", "en", None),
    ],
)
def test_quantity(text: str, language: str, quantity: int | None) -> None:
    assert extract(text, language).quantity == quantity


# --- corrections and conversation memory --------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("actually make that under 80", "en"),
        ("en fait, plutôt en bleu", "fr"),
        ("mejor en talla L", "es"),
        ("doch lieber in Schwarz", "de"),
        ("na verdade é pro meu avô", "pt"),
        ("no wait, size 9 not 10", "en"),
    ],
)
def test_corrections_are_flagged(text: str, language: str) -> None:
    assert extract(text, language).is_correction


def test_exclusions_are_not_corrections() -> None:
    assert not extract("no gadgets please, something for the kitchen", "en").is_correction
    assert not extract("sorry to bother you, do you have scarves?", "en").is_correction


def test_corrected_away_values_are_dropped_not_excluded() -> None:
    result = extract("oops, I meant XS not S", "en")
    assert result.sizes == (Size("clothing", "XS"),)
    assert result.is_correction
    swap = extract("c'est pour mon frère, pas pour ma sœur", "fr")
    assert swap.recipient == "other"
    later = extract("statt 2 bitte 4 Stück", "de")
    assert later.quantity == 4


def test_merged_into_replaces_corrected_fields_and_keeps_the_rest() -> None:
    first = extract("gift for my mom under 50 euros, size M, no red", "en")
    correction = extract("actually make that under 80", "en")
    merged = correction.merged_into(first)
    assert merged.budget == Budget(max=Decimal(80), min=None, currency="EUR")
    assert merged.sizes == (Size("clothing", "M"),)
    assert merged.colors_exclude == ("red",)
    assert merged.recipient == "mother"

    resized = extract("oops meant L not M", "en").merged_into(merged)
    assert resized.sizes == (Size("clothing", "L"),)


def test_merged_into_adds_new_inclusions_and_exclusions() -> None:
    first = extract("a scarf, no red, in wool", "en")
    more = extract("also not green", "en").merged_into(first)
    assert more.colors_exclude == ("red", "green")
    assert more.materials_include == ("wool",)
    flipped = extract("red is fine actually, but no wool", "en").merged_into(more)
    assert "wool" in flipped.materials_exclude and "wool" not in flipped.materials_include
    assert extract("hello", "en").merged_into(first) == Constraints(
        colors_exclude=("red",), materials_include=("wool",)
    )


# --- text handling, schema ----------------------------------------------------------------


def test_invisible_unicode_emojis_and_case_are_handled() -> None:
    text = "ＨＩ 👋🏽 need a gift for my m\u00adom\u200b, UNDER \u200d$５０ 🎁, NOT\u2060 WHITE"
    result = extract(text)
    assert result.recipient == "mother"
    assert result.budget == Budget(max=Decimal(50), min=None, currency="USD")
    assert result.colors_exclude == ("white",)


def test_accents_are_optional() -> None:
    assert extract("lo necesito para manana, talla M, sin poliester", "es").deadline == Deadline("tomorrow", None, 1)
    assert extract("lo necesito para manana, talla M, sin poliester", "es").materials_exclude == ("polyester",)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("¿Tienen bufandas de lana para mi abuelo?", "es"),
        ("Je cherche un cadeau pour ma mère", "fr"),
        ("Ich suche ein Geschenk für meinen Bruder", "de"),
        ("Vocês têm presente pra minha mãe?", "pt"),
        ("looking for a present for my dad", "en"),
    ],
)
def test_language_detection(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_messages_without_constraints_are_empty() -> None:
    for text in ("hello there", "where is my order?", "Quiero hablar con alguien", "merci beaucoup !"):
        assert extract(text).is_empty(), text


def test_to_dict_follows_the_dataset_schema() -> None:
    data = extract("entre 19,90 et 40 € pour ma femme, taille 38", "fr").to_dict()
    assert list(data) == [
        "budget", "sizes", "colors_include", "colors_exclude", "materials_include", "materials_exclude", "dietary",
        "deadline", "recipient", "occasion", "brands_include", "brands_exclude", "quantity", "is_correction",
    ]
    assert data["budget"] == {"max": 40, "min": 19.9, "currency": "EUR"}
    assert isinstance(data["budget"]["max"], int)
    assert data["sizes"] == [{"system": "numeric", "value": "38"}]
    assert data["deadline"] is None
    json.dumps(data)  # plain JSON types only


# --- evaluation ---------------------------------------------------------------------------


def test_evaluate_counts_items_and_writes_predictions(tmp_path: Path) -> None:
    empty = Constraints().to_dict()
    gold_ok = {**empty, "budget": {"max": 30, "min": None, "currency": "EUR"}, "recipient": "mother"}
    gold_bad = {**empty, "colors_exclude": ["red"], "quantity": 2}
    dataset = tmp_path / "mini.jsonl"
    rows = [
        {"id": "a", "text": "pour ma mère, moins de 30 €", "language": "fr", "expected": gold_ok},
        {"id": "b", "text": "no red please", "language": "en", "expected": gold_bad},
    ]
    dataset.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    out = tmp_path / "pred.jsonl"
    metrics = evaluate(dataset, out)
    assert metrics["messages"] == 2
    assert metrics["fields"]["budget.max"] == {"tp": 1, "fp": 0, "fn": 0, "support": 1, "precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert metrics["fields"]["quantity"]["fn"] == 1
    assert metrics["micro"]["tp"] == 4 and metrics["micro"]["fn"] == 1 and metrics["micro"]["fp"] == 0
    assert metrics["exact_match"] == 0.5
    assert metrics["errors"] == ["b"]
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [line["id"] for line in lines] == ["a", "b"]
    assert set(lines[0]["predicted"]) == set(empty)
    assert "micro" in format_report(metrics)


def test_dev_set_regression_floor() -> None:
    metrics = evaluate(require(DEV_SET))
    assert metrics["micro"]["f1"] >= 0.85, format_report(metrics)


def test_merged_into_adds_a_budget_bound_without_a_correction() -> None:
    first = extract("a lamp under 100 euros", "en")
    both = extract("but at least 50", "en").merged_into(first)
    assert both.budget == Budget(max=Decimal(100), min=Decimal(50), currency="EUR")
