"""Product-line names that imply a brand: learned from a catalog, read as the head of a shopper's request.

The derivation tests build small catalogs where one condition decides; the reading
tests use one catalog with phones, laptops, a yoga laptop and accessories by other
brands, in the five languages; the conversation tests run the real engine over a
small phone shop on a real SQLite index.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from bot.constraints import Constraints
from bot.i18n import use_locale
from bot.messages import OutboundMessage, ProductCard
from bot.personalization import broken_constraints, filters_for, fit_reason
from bot.runtime import Runtime, open_runtime
from bot.settings import Settings
from kb.models import Product, ProductName, Variant
from kb.product_lines import ImpliedBrand, ProductLines
from kb.sqlite_index import SQLiteIndex
from tests.fakes.followups import Clock
from tests.support.shoppers import Chat, text_of


def name(brand: str, title: str, category: str = "", description: str | None = None) -> ProductName:
    """A product; its description quotes its title, capitalised as names are, unless one is given."""
    return ProductName(brand, title, category, f"Meet the {title}." if description is None else description)


def lines_of(*products: ProductName, known: bool = False) -> dict[str, str]:
    return {line.name: line.brand for line in ProductLines.from_catalog(products, known=known).lines}


PHONES = [
    name("Apple", "iPhone 13 Pro", "smartphones", "The iPhone 13 Pro is a cutting-edge smartphone."),
    name("Apple", "iPhone 12", "smartphones", "A great phone."),
    name("Apple", "Apple iPhone Charger", "mobile-accessories", "Charges your iPhone fast."),
    name("Apple", "Apple MacBook Pro 14 Inch", "laptops", "The MacBook Pro is a laptop."),
    name("Apple", "Apple AirPods Max Silver", "mobile-accessories", "The AirPods Max cover your ears."),
    name("Oppo", "Oppo F19 Pro Plus", "smartphones", "The Oppo F19 has a big battery."),
    name("Samsung", "Samsung Galaxy S8", "smartphones", "The Samsung Galaxy S8 is a premium phone."),
    name("Samsung", "Samsung Galaxy Tab White", "tablets", "A tablet."),
    name("Lenovo", "Lenovo Yoga 920", "laptops", "The Lenovo Yoga 920 is a 2-in-1 convertible laptop."),
    name("Dell", "New DELL XPS 13 9300 Laptop", "laptops", "The new XPS 13 is a light laptop."),
    name("GadgetMaster", "Selfie Lamp with iPhone", "mobile-accessories", "A selfie lamp: attach it to your iPhone."),
    name("Spigen", "Ultra Hybrid Case for iPhone 13", "mobile-accessories", "A clear case."),
    name("Essence", "Essence Mascara Lash Princess", "beauty", "A volumizing mascara."),
    name("Rolex", "Rolex Submariner Watch", "watches", "The Submariner is a dive watch."),
]
LINES = ProductLines.from_catalog(PHONES)


# --------------------------------------------------------------------------- derivation


def test_a_line_name_stands_after_the_brand_or_first_in_a_title_without_it() -> None:
    found = lines_of(*PHONES)
    assert found["iPhone"] == "Apple"  # first in "iPhone 13 Pro"
    assert found["Galaxy"] == "Samsung"  # right after the brand
    assert found["XPS"] == "Dell"  # right after the brand, mid-title
    assert found["MacBook"] == "Apple" and found["AirPods"] == "Apple" and found["Submariner"] == "Rolex"
    assert "Yoga" in found and "F19" in found  # a model code is a line of one


def test_accessories_for_a_line_by_other_brands_do_not_take_it_away() -> None:
    # "Selfie Lamp with iPhone" and "Case for iPhone 13" are made for the line, by GadgetMaster and Spigen
    assert lines_of(*PHONES)["iPhone"] == "Apple"


def test_a_word_in_another_brands_title_is_no_line() -> None:
    assert lines_of(name("Lenovo", "Lenovo Yoga 920", "laptops")) == {"Yoga": "Lenovo"}
    found = lines_of(name("Lenovo", "Lenovo Yoga 920", "laptops"), name("Zen Supplies", "Yoga Block Cork", "fitness"))
    assert "Yoga" not in found
    unbranded = lines_of(name("Lenovo", "Lenovo Yoga 920", "laptops"), name("", "Yoga Strap", "fitness"))
    assert "Yoga" not in unbranded


def test_retail_vocabulary_is_no_line_even_when_one_brand_sells_it() -> None:
    found = lines_of(
        name("Essence", "Essence Mascara Lash Princess", "beauty"),  # glossary: mascara
        name("Apple", "Apple Watch Series 4 Gold", "accessories"),  # glossary: watch
        name("Annibale Colombo", "Annibale Colombo Bed", "furniture"),  # glossary: bed
        name("Puma", "Puma Ultra Rider", "shoes"),  # a qualifier every maker uses
        name("Finch", "Finch Trainers Max", "trainers"),  # the catalog's own category name
        name("Acme", "Acme Something", "misc"),  # query vocabulary
        name("Acme", "Acme Zephyr", "misc"),  # a name: the only line here
    )
    assert found == {"Zephyr": "Acme"}


def test_describing_words_and_words_never_written_as_names_are_no_line() -> None:
    found = lines_of(
        # the descriptions write "dark" in lower case inside a sentence: an ordinary word
        name("Larder Lane", "Dark Chocolate 72%", "snacks", "Our Dark Chocolate is a rich dark chocolate."),
        # "almond" starts one title but describes another of the same brand
        name("Larder Lane", "Almond Cantuccini", "snacks", "The Almond Cantuccini are crisp."),
        name("Larder Lane", "Crunchy Almond Butter", "snacks", "A crunchy spread."),
        # a made-up model name, capitalised wherever the descriptions use it
        name("Alder Outdoor", "Collada 22 Daypack", "bags", "The Collada carries a day's kit."),
        # no description writes it at all: no evidence that it is a name
        name("Alder Outdoor", "Thermal Merino Top", "clothing", "Warm."),
    )
    assert found == {"Collada": "Alder Outdoor"}


def test_well_known_lines_complete_the_catalog_without_overriding_it() -> None:
    sony = lines_of(name("Sony", "Sony WH-1000XM5 Headphones", "audio"), known=True)
    assert sony["PlayStation"] == "Sony"  # the store sells Sony: a PlayStation question is Sony's
    unsold = lines_of(name("Oppo", "Oppo A57", "smartphones"), known=True)
    assert unsold["iPhone"] == "Apple"  # no iPhone at all: the shopper hears nothing fits, with the closest options
    resold = lines_of(name("Phone Outlet", "iPhone 13 Refurbished", "smartphones", "A refurbished iPhone."), known=True)
    assert resold["iPhone"] == "Phone Outlet"  # the catalog sells iPhones under its own brand name: it decides
    shared = lines_of(name("Acme", "iPhone 13 Case Clear", "cases"), name("Zed", "iPhone Stand", "stands"), known=True)
    assert "iPhone" not in shared  # titles name the line under several brands, none of them Apple


# --------------------------------------------------------------------------- reading a message


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("iphone 13 pro", "en"),
        ("do you have an iPhone 13 under $900?", "en"),
        ("quiero un iPhone 13 barato", "es"),
        ("je cherche un iPhone 13 pas cher", "fr"),
        ("habt ihr das iPhone 13 Pro?", "de"),
        ("vocês têm iphone 13 pro max 256gb?", "pt_BR"),
        ("an iphone for my mom", "en"),
        ("celular iphone até 300 dólares", "pt_BR"),
    ],
)
def test_a_line_asked_for_implies_its_brand_in_every_language(text: str, language: str) -> None:
    assert LINES.implied_brand(text, language) == ImpliedBrand("Apple", "iPhone")


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("iphone case", "en"),
        ("case for my macbook", "en"),
        ("selfie lamp for my iphone", "en"),
        ("iphone charger", "en"),
        ("funda para iPhone 13", "es"),
        ("coque pour iPhone", "fr"),
        ("une coque d'iPhone", "fr"),
        ("Hülle für iPhone 13", "de"),
        ("capinha de iphone", "pt_BR"),
    ],
)
def test_an_accessory_for_a_line_implies_no_brand(text: str, language: str) -> None:
    assert LINES.implied_brand(text, language) is None


def test_a_line_that_only_describes_the_product_implies_no_brand() -> None:
    assert LINES.implied_brand("yoga mat", "en") is None  # "mat" is no word of the Yoga's titles
    assert LINES.implied_brand("tapis de yoga", "fr") is None
    assert LINES.implied_brand("something like an iphone but cheaper", "en") is None
    assert LINES.implied_brand("yoga laptop", "en") == ImpliedBrand("Lenovo", "Yoga")  # the laptop is the Yoga
    assert LINES.implied_brand("galaxy tab", "en") == ImpliedBrand("Samsung", "Galaxy")


def test_a_brand_the_shopper_names_wins() -> None:
    assert LINES.implied_brand("a Samsung phone, not an iPhone", "en", declared=("Samsung",)) is None
    assert LINES.implied_brand("an iPhone case from Spigen", "en", declared=("Spigen",)) is None
    assert LINES.implied_brand("iphone 13", "en", excluded=("Apple",)) is None
    assert LINES.implied_brand("Apple iPhone 13", "en", declared=("Apple",)) is None  # declared already: nothing to add
    sony = ProductLines.from_catalog([name("Sony", "Sony WH-1000XM5 Headphones", "audio")])
    # the extractor reads "PlayStation" as a brand; it is Sony's line, so Sony's products are admitted
    assert sony.implied_brand("playstation 5", "en", declared=("PlayStation",)) == ImpliedBrand("Sony", "PlayStation")
    nike = ProductLines.from_catalog([name("Nike", "Nike Baseball Cleats", "shoes")])
    assert nike.implied_brand("air jordan 1", "en", declared=("Jordan",)) == ImpliedBrand("Nike", "Air Jordan")


def test_a_negated_line_implies_no_brand_but_a_budget_is_no_negation() -> None:
    assert LINES.implied_brand("a phone, not an iphone", "en") is None
    assert LINES.implied_brand("anything but a Galaxy", "en") is None
    assert LINES.implied_brand("un móvil que no sea un iPhone", "es") is None
    assert LINES.implied_brand("no more than $500, an iphone", "en") == ImpliedBrand("Apple", "iPhone")


def test_spellings_shoppers_use() -> None:
    assert LINES.implied_brand("air pods max", "en") == ImpliedBrand("Apple", "AirPods")
    assert LINES.implied_brand("IPHONES", "en") == ImpliedBrand("Apple", "iPhone")
    assert LINES.implied_brand("galaxies", "en") == ImpliedBrand("Samsung", "Galaxy")
    assert LINES.implied_brand("can i phone you later", "en") is None
    assert ProductLines().implied_brand("iphone 13", "en") is None  # a store without lines implies nothing


# --------------------------------------------------------------------------- filters and reasons


def product(brand: str, title: str, price: str = "100") -> Product:
    return Product(title.lower().replace(" ", "-"), title, "", "USD", (Variant(title, Decimal(price), 3),), brand=brand)


def test_the_implied_brand_is_a_filter_with_its_reason_on_the_cards() -> None:
    iphone, oppo = product("Apple", "iPhone 13 Pro"), product("Oppo", "Oppo F19 Pro Plus")
    implied = ImpliedBrand("Apple", "iPhone")
    filters = filters_for(Constraints(), lang="en", implied=implied)
    assert filters.brands == ("Apple",)
    assert filters_for(Constraints(brands_include=("PlayStation",)), implied=ImpliedBrand("Sony", "PlayStation")).brands == (
        "PlayStation", "Sony",
    )
    assert filters_for(Constraints()).brands == ()
    with use_locale("en"):
        assert fit_reason(iphone, Constraints(), "USD", implied) == "by Apple, the maker of iPhone"
        assert fit_reason(oppo, Constraints(), "USD", implied) == ""
        assert broken_constraints(oppo, filters, "USD", implied) == ["not by Apple, the maker of iPhone"]
        declared = filters_for(Constraints(brands_include=("Samsung",)))
        assert broken_constraints(oppo, declared, "USD") == ["not the brand you asked for"]
    with use_locale("es"):
        assert fit_reason(iphone, Constraints(), "USD", implied) == "de Apple, el fabricante de iPhone"
    with use_locale("de"):
        assert broken_constraints(oppo, filters, "USD", implied) == ["nicht von Apple, dem Hersteller von iPhone"]


# --------------------------------------------------------------------------- a conversation


def phone(pid: str, brand: str, title: str, price: str, category: str = "smartphones") -> Product:
    return Product(
        pid, title, f"{title}: a phone of our test shop.", "USD", (Variant(pid, Decimal(price), 4),),
        category=category, brand=brand, url=f"https://shop.example/{pid}", source="test-catalog",
    )


SHOP = [
    phone("ip13", "Apple", "iPhone 13 Pro", "1099"),
    phone("ip12", "Apple", "iPhone 12 Pro", "799"),
    phone("f19", "Oppo", "Oppo F19 Pro Plus", "399"),
    phone("a57", "Oppo", "Oppo A57 Pro", "49"),
    phone("s8", "Samsung", "Samsung Galaxy S8 Pro", "499"),
    phone("case", "Spigen", "Ultra Hybrid Case for iPhone 13 Pro", "29", category="phone cases"),
]


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[Runtime]:
    """A phone shop (BM25 only) where "pro" alone would bring Oppo and Samsung phones along."""
    settings = Settings(data_dir=tmp_path / "var", demo=False, embedder="none", currency="USD", _env_file=None)  # type: ignore[call-arg]
    settings.data_dir.mkdir(parents=True)
    async with SQLiteIndex(settings.index_path, None) as index:
        await index.upsert_products(SHOP, source="test-catalog")
    async with open_runtime(settings, clock=Clock(datetime(2026, 11, 22, 10, 0, tzinfo=UTC))) as opened:
        yield opened


def cards_of(replies: list[OutboundMessage]) -> list[ProductCard]:
    return [card for reply in replies for card in reply.products]


async def test_a_shopper_asking_for_a_line_gets_only_its_makers_products_with_a_reason(shop: Runtime) -> None:
    clock = Clock(datetime(2026, 11, 22, 10, 0, tzinfo=UTC))
    english = Chat(shop, clock, "ana", locale="en")
    cards = cards_of(await english.replies("do you have the iphone 13 pro?"))
    assert cards and {c.title for c in cards} <= {"iPhone 13 Pro", "iPhone 12 Pro"}
    assert all(c.reason.startswith("by Apple, the maker of iPhone") for c in cards)
    # a refinement keeps the line: still only Apple
    refined = cards_of(await english.replies("any under 900?"))
    assert [c.title for c in refined] == ["iPhone 12 Pro"]

    spanish = Chat(shop, clock, "luis", locale="es")
    cards = cards_of(await spanish.replies("¿tienen el iPhone 13 Pro?"))
    assert cards and {c.title for c in cards} <= {"iPhone 13 Pro", "iPhone 12 Pro"}
    assert all(c.reason.startswith("de Apple, el fabricante de iPhone") for c in cards)


async def test_an_accessory_or_a_named_brand_is_not_filtered_to_the_lines_maker(shop: Runtime) -> None:
    clock = Clock(datetime(2026, 11, 22, 10, 0, tzinfo=UTC))
    chat = Chat(shop, clock, "eva", locale="en")
    assert "Ultra Hybrid Case for iPhone 13 Pro" in {c.title for c in cards_of(await chat.replies("a case for my iphone 13 pro"))}
    other = Chat(shop, clock, "max", locale="en")
    cards = cards_of(await other.replies("a Samsung phone, not an iPhone, pro model"))
    assert {c.title for c in cards} == {"Samsung Galaxy S8 Pro"}


async def test_when_no_product_of_the_maker_fits_the_closest_options_say_what_they_break(shop: Runtime) -> None:
    clock = Clock(datetime(2026, 11, 22, 10, 0, tzinfo=UTC))
    chat = Chat(shop, clock, "zoe", locale="en")
    replies = await chat.replies("iphone pro under $60")
    assert "Nothing in our catalog matches everything you asked for" in text_of(replies)
    reasons = {c.title: c.reason for c in cards_of(replies)}
    assert reasons["Ultra Hybrid Case for iPhone 13 Pro"] == "not by Apple, the maker of iPhone"  # under budget, another maker
    assert reasons["iPhone 12 Pro"] == "costs $799.00, over your budget"  # the maker's, over budget
