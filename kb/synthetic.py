"""A deterministic synthetic catalog and shopper queries, for benchmarks and load tests.

:func:`synthetic_catalog` makes ``n`` products across apparel, footwear,
accessories, home, kitchen, food, beauty, electronics, sports and toys. Apparel and
footwear have one variant per size × colour with their own stock; other products
have one to three variants (sizes, pack sizes or colours). Prices are exact
decimals, about 8 % of variants are sold out and a few products do not track stock.
Food carries allergens and dietary labels, clothing its materials and colours, so
every structured filter of :class:`kb.models.SearchFilters` has something to do.

:func:`synthetic_queries` makes shopper-style queries over the same vocabulary in
the five supported languages, each with filters (budget, stock, size, colour).

The same ``seed`` always gives the same catalog and queries.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal

from kb.models import Product, SearchFilters, Variant

__all__ = ["SyntheticQuery", "synthetic_catalog", "synthetic_queries"]


@dataclass(frozen=True, slots=True)
class _Family:
    """A product type: nouns, the category it belongs to, price range and how it varies."""

    category: str
    nouns: tuple[str, ...]
    price: tuple[int, int]
    sizes: tuple[str, ...] = ()
    materials: tuple[str, ...] = ()
    food: bool = False


FAMILIES: tuple[_Family, ...] = (
    _Family("Running shoes", ("running shoe", "trail shoe", "racing flat", "road runner"), (45, 220), tuple(str(s) for s in range(36, 47)),
            ("mesh", "rubber", "foam")),
    _Family("Boots", ("hiking boot", "chelsea boot", "rain boot", "winter boot"), (60, 260), tuple(str(s) for s in range(36, 47)),
            ("leather", "suede", "rubber")),
    _Family("Socks", ("hiking socks", "running socks", "ankle socks", "dress socks"), (6, 30), ("S", "M", "L", "XL"),
            ("wool", "cotton", "bamboo")),
    _Family("T-shirts", ("t-shirt", "tee", "tank top", "long sleeve shirt"), (12, 60), ("XS", "S", "M", "L", "XL", "XXL"),
            ("cotton", "linen", "polyester")),
    _Family("Jackets", ("rain jacket", "down jacket", "fleece jacket", "windbreaker"), (50, 400), ("XS", "S", "M", "L", "XL", "XXL"),
            ("polyester", "down", "wool", "nylon")),
    _Family("Dresses", ("summer dress", "maxi dress", "shirt dress", "wrap dress"), (25, 180), ("XS", "S", "M", "L", "XL"),
            ("cotton", "linen", "silk", "viscose")),
    _Family("Bags", ("backpack", "tote bag", "handbag", "duffel bag", "crossbody bag"), (20, 350), (), ("leather", "canvas", "nylon")),
    _Family("Watches", ("wrist watch", "dive watch", "smartwatch", "chronograph"), (40, 2500), (), ("steel", "titanium", "leather")),
    _Family("Kitchen", ("chef knife", "frying pan", "saucepan", "cutting board", "hand blender", "kettle", "spice rack"), (8, 180), (),
            ("steel", "bamboo", "cast iron")),
    _Family("Home decor", ("table lamp", "plant pot", "photo frame", "scented candle", "cushion", "wall clock"), (8, 120), (),
            ("ceramic", "glass", "wood")),
    _Family("Snacks", ("dark chocolate", "granola", "protein bar", "trail mix", "oat cookies", "rice crackers"), (2, 15),
            ("100 g", "250 g"), (), True),
    _Family("Coffee & tea", ("espresso beans", "ground coffee", "green tea", "herbal tea", "cold brew"), (4, 40),
            ("250 g", "1 kg"), (), True),
    _Family("Beauty", ("lipstick", "mascara", "face cream", "body lotion", "nail polish", "shampoo"), (4, 70), (), ()),
    _Family("Electronics", ("wireless earbuds", "bluetooth speaker", "phone charger", "power bank", "smartphone", "tablet"), (15, 1200), (),
            ()),
    _Family("Sports", ("yoga mat", "tennis racket", "football", "dumbbell set", "water bottle", "bike helmet"), (8, 250), (), ()),
    _Family("Toys", ("building blocks", "puzzle", "plush bear", "toy car", "board game"), (6, 90), (), ()),
)
COLORS = ("black", "white", "grey", "navy", "red", "blue", "green", "beige", "brown", "pink", "yellow", "purple")
ADJECTIVES = ("lightweight", "classic", "premium", "everyday", "waterproof", "organic", "compact", "soft", "durable", "slim",
              "vintage", "recycled", "handmade", "ergonomic", "breathable", "insulated", "eco", "deluxe", "travel", "kids")
BRANDS = ("Finch", "Northwind", "Alder & Co", "Kestrel", "Bluebird", "Mosswood", "Orbit", "Sable", "Tundra", "Quill",
          "Marlow", "Juniper", "Vanta", "Harbor", "Lumen", "Cobalt", "Fern", "Atlas", "Wren", "Pioneer")
ALLERGENS = ("nuts", "milk", "gluten", "soy", "eggs")
DIETS = ("vegan", "vegetarian", "gluten-free", "organic")
USES = ("for long walks", "for the office", "for travel", "for cold mornings", "for weekend trips", "for everyday use",
        "for the gym", "for gifts", "for kids", "for the kitchen", "for small spaces", "for rainy days")

# Query vocabulary: the same product types in the five languages.
QUERY_NOUNS: dict[str, tuple[str, ...]] = {
    "en": ("running shoes", "wool socks", "rain jacket", "summer dress", "leather backpack", "dive watch", "chef knife",
           "table lamp", "dark chocolate", "green tea", "red lipstick", "wireless earbuds", "yoga mat", "board game", "hiking boots"),
    "es": ("zapatillas de correr", "calcetines de lana", "chaqueta impermeable", "vestido de verano", "mochila de cuero",
           "reloj de buceo", "cuchillo de cocina", "lámpara de mesa", "chocolate negro", "té verde", "pintalabios rojo",
           "auriculares inalámbricos", "esterilla de yoga", "juego de mesa", "botas de montaña"),
    "fr": ("chaussures de course", "chaussettes en laine", "veste de pluie", "robe d'été", "sac à dos en cuir",
           "montre de plongée", "couteau de chef", "lampe de table", "chocolat noir", "thé vert", "rouge à lèvres",
           "écouteurs sans fil", "tapis de yoga", "jeu de société", "chaussures de randonnée"),
    "de": ("Laufschuhe", "Wollsocken", "Regenjacke", "Sommerkleid", "Lederrucksack", "Taucheruhr", "Kochmesser", "Tischlampe",
           "Zartbitterschokolade", "grüner Tee", "roter Lippenstift", "kabellose Kopfhörer", "Yogamatte", "Brettspiel",
           "Wanderschuhe"),
    "pt": ("tênis de corrida", "meias de lã", "jaqueta de chuva", "vestido de verão", "mochila de couro", "relógio de mergulho",
           "faca de chef", "luminária de mesa", "chocolate amargo", "chá verde", "batom vermelho", "fones sem fio",
           "tapete de yoga", "jogo de tabuleiro", "botas de trilha"),
}
QUERY_FRAMES: dict[str, tuple[str, ...]] = {
    "en": ("do you have {n}?", "{n} under {p}", "looking for {n}", "{n}", "any {n} in stock?"),
    "es": ("¿tienen {n}?", "{n} por menos de {p} euros", "busco {n}", "{n}", "¿hay {n} en stock?"),
    "fr": ("avez-vous des {n} ?", "{n} moins de {p} euros", "je cherche {n}", "{n}", "{n} en stock ?"),
    "de": ("habt ihr {n}?", "{n} unter {p} Euro", "ich suche {n}", "{n}", "{n} sofort lieferbar?"),
    "pt": ("vocês têm {n}?", "{n} até {p} reais", "procuro {n}", "{n}", "{n} em estoque?"),
}


def _price(rng: random.Random, low: int, high: int) -> Decimal:
    whole = rng.randint(low, high)
    return Decimal(whole) + Decimal(rng.choice(("0.00", "0.49", "0.90", "0.95", "0.99")))


def synthetic_catalog(n: int, *, seed: int = 7, currency: str = "EUR") -> list[Product]:
    """``n`` products (ids ``syn-000001``…), deterministic for a given ``seed``."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    products: list[Product] = []
    for number in range(1, n + 1):
        family = FAMILIES[rng.randrange(len(FAMILIES))]
        noun = rng.choice(family.nouns)
        brand = rng.choice(BRANDS)
        adjective = rng.choice(ADJECTIVES)
        material = rng.choice(family.materials) if family.materials else ""
        colors = rng.sample(COLORS, rng.randint(1, 3)) if not family.food else []
        title = " ".join(w for w in (brand, adjective, material, noun) if w).replace("  ", " ")
        title = title[0].upper() + title[1:]
        base = _price(rng, *family.price)
        pid = f"syn-{number:06d}"
        variants: list[Variant] = []
        track_stock = rng.random() > 0.03
        if family.sizes and not family.food:
            sizes = family.sizes[rng.randrange(0, max(1, len(family.sizes) - 4)) :][: rng.randint(3, 6)]
            for size in sizes:
                for color in colors:
                    stock = (0 if rng.random() < 0.08 else rng.randint(1, 40)) if track_stock else None
                    variants.append(Variant(f"{pid}-{size}-{color}".replace(" ", ""), base, stock, {"size": size, "color": color}))
        else:
            options = family.sizes or tuple(colors) or ("one size",)
            for i, option in enumerate(options[: rng.randint(1, 3)]):
                price = base + Decimal(i * rng.choice((0, 2, 5)))
                stock = (0 if rng.random() < 0.08 else rng.randint(1, 60)) if track_stock else None
                key = "color" if option in COLORS else "size"
                variants.append(Variant(f"{pid}-{i}", price, stock, {key: option}))
        attributes: dict[str, object] = {}
        if material:
            attributes["materials"] = [material]
        if colors:
            attributes["colors"] = colors
        if family.food:
            contains = rng.sample(ALLERGENS, rng.randint(0, 2))
            attributes["allergens"] = contains
            attributes["free_from"] = [a for a in ALLERGENS if a not in contains and rng.random() < 0.3]
            attributes["dietary"] = rng.sample(DIETS, rng.randint(0, 2))
        use = rng.choice(USES)
        article = "An" if adjective[0] in "aeiou" else "A"
        made = f"of {material}" if material else "with care"
        description = (
            f"{article} {adjective} {noun} by {brand}, made {made} {use}. "
            f"{'Available in ' + ', '.join(colors) + '. ' if colors else ''}"
            f"Rated {rng.randint(35, 50) / 10} by our customers."
        )
        products.append(
            Product(
                id=pid,
                title=title,
                description=description,
                currency=currency,
                variants=tuple(variants),
                category=family.category,
                brand=brand,
                tags=(family.category.lower(), noun),
                url=f"https://shop.example/products/{pid}",
                attributes=attributes,
                source="synthetic",
            )
        )
    return products


@dataclass(frozen=True, slots=True)
class SyntheticQuery:
    """A shopper query with the filters the bot would apply to it."""

    text: str
    language: str
    filters: SearchFilters


def synthetic_queries(count: int, *, seed: int = 11) -> list[SyntheticQuery]:
    """``count`` queries in the five languages, each with a budget, stock, size or colour filter."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    languages = tuple(QUERY_NOUNS)
    queries: list[SyntheticQuery] = []
    for _ in range(count):
        lang = rng.choice(languages)
        noun = rng.choice(QUERY_NOUNS[lang])
        budget = rng.choice((20, 30, 50, 80, 100, 150, 300))
        text = rng.choice(QUERY_FRAMES[lang]).format(n=noun, p=budget)
        kind = rng.randrange(4)
        if kind == 0:
            filters = SearchFilters(max_price=Decimal(budget), lang=lang)
        elif kind == 1:
            filters = SearchFilters(max_price=Decimal(budget), in_stock_only=True, lang=lang)
        elif kind == 2:
            filters = SearchFilters(sizes=(rng.choice(("M", "L", "42", "39")),), in_stock_only=True, lang=lang)
        else:
            filters = SearchFilters(colors=(rng.choice(COLORS),), max_price=Decimal(budget), lang=lang)
        queries.append(SyntheticQuery(text, lang, filters))
    return queries
