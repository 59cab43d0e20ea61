"""Do recommendations satisfy every hard constraint the shopper declared? The table of docs/benchmarks.md.

    python bench/recommendation_constraints.py [--k 3]

Two query sets, each message run through the bot's offline path for a product
search (:func:`bot.understanding.understand`, the brand a product-line name implies
(:meth:`kb.product_lines.ProductLines.implied_brand`, learned from the catalog as the
engine does) → :func:`bot.personalization.filters_for` → :func:`kb.query.clean_query`
→ ``index.search(..., k)``, k = the engine's default number of suggestions):

* the retrieval dev set (``../shared/data/eval/retrieval_dev.jsonl``) over the
  DummyJSON catalog: the hard constraints are the set's labels (``max_price``,
  ``min_price``, ``brand``, ``in_stock_only``);
* the constraint dev set (``constraints_dev.jsonl``) over the demo store's catalog,
  which carries sizes, colours, materials, allergens and dietary labels: the hard
  constraints are the set's ``expected`` labels (budget, sizes, colours to include or
  avoid, materials to avoid, dietary needs and allergies, brands to include or avoid).

Every suggested product is then checked on its own against the labeled constraints by
:func:`violations` below, which reads the product data directly and shares no code with
the index filters. The score is the share of suggestions that break nothing (goal
100%); the script lists every violation. An empty answer is not a violation (the bot
then says nothing fits and shows near misses with what each breaks, which are not
counted as recommendations).

Reads ``../shared/data`` relative to the project root; exits with a message when it is absent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.personalization import UK_TO_EU, US_TO_EU, filters_for  # noqa: E402 - conversion tables are data, not filter code
from bot.understanding import understand  # noqa: E402
from kb.embedder import make_embedder  # noqa: E402
from kb.evaluation import build_index  # noqa: E402
from kb.models import Product  # noqa: E402
from kb.product_lines import ProductLines  # noqa: E402
from kb.query import clean_query  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
RETRIEVAL = (SHARED / "catalogs" / "dummyjson" / "products.json", SHARED / "eval" / "retrieval_dev.jsonl")
CONSTRAINTS = (ROOT / "kb" / "demo" / "catalog.json", SHARED / "eval" / "constraints_dev.jsonl")
LOCALES = {"pt": "pt_BR"}
# allergens a "<x>_free" label excludes
ALLERGENS = {"gluten_free": {"gluten"}, "nut_free": {"nuts", "peanuts"}, "lactose_free": {"milk"}, "dairy_free": {"milk"},
             "egg_free": {"eggs"}, "soy_free": {"soy"}}
# dietary labels that say a food is free of an allergen (a product's own label is its statement)
LABEL_FREE_OF = {"vegan": {"milk", "eggs"}, "gluten-free": {"gluten"}, "lactose-free": {"milk"}, "dairy-free": {"milk"},
                 "nut-free": {"nuts", "peanuts"}}
FOOD_WORDS = re.compile(
    r"snack|food|grocer|pantry|chocolate|cocoa|granola|biscuit|cracker|cookie|honey|spread|butter|nut|oil|tea\b|coffee|"
    r"fruit|juice|candy|sweet|bakery|cereal|sauce|spice|meat|fish|cheese|milk",
    re.IGNORECASE,
)


def _values(product: Product, key: str) -> set[str]:
    raw = product.attributes.get(key) or []
    return {str(v).casefold() for v in ([raw] if isinstance(raw, str) else raw)}


def _is_food(product: Product) -> bool:
    if _values(product, "allergens") or _values(product, "free_from") or _values(product, "dietary"):
        return True
    return bool(FOOD_WORDS.search(product.category)) or bool(FOOD_WORDS.search(product.title) and not product.variants[0].options)


def _size_wanted(size: Mapping[str, str]) -> str:
    value = str(size["value"])
    if size["system"] == "shoe_us":
        return US_TO_EU.get(value, "?")
    if size["system"] == "shoe_uk":
        return UK_TO_EU.get(value, "?")
    return value.upper()


def violations(product: Product, hard: Mapping[str, Any]) -> list[str]:
    """Every labeled hard constraint ``product`` breaks, read from its own data."""
    broken: list[str] = []
    sizes = {_size_wanted(s) for s in hard.get("sizes") or []}
    low, high = hard.get("min_price"), hard.get("max_price")
    colors_in = {c.casefold() for c in hard.get("colors_include") or []}
    colors_out = {c.casefold() for c in hard.get("colors_exclude") or []}
    product_colors = _values(product, "colors") | {w for w in re.findall(r"[a-z]+", product.title.casefold())}

    def variant_ok(options: Mapping[str, str], price: Decimal, in_stock: bool) -> list[str]:
        why: list[str] = []
        if high is not None and price > Decimal(str(high)):
            why.append(f"price {price} > {high}")
        if low is not None and price < Decimal(str(low)):
            why.append(f"price {price} < {low}")
        if hard.get("in_stock_only") and not in_stock:
            why.append("out of stock")
        if sizes and str(options.get("size", "")).upper() not in sizes:
            why.append(f"size {options.get('size')} not in {sorted(sizes)}")
        color = str(options.get("color", "")).casefold()
        if colors_in and not (color in colors_in or (not color and product_colors & colors_in)):
            why.append(f"colour {color or sorted(product_colors)} not {sorted(colors_in)}")
        if color and color in colors_out:
            why.append(f"colour {color} excluded")
        return why

    per_variant = [variant_ok(v.options, v.price, v.in_stock) for v in product.variants]
    if all(per_variant):  # no single variant satisfies the variant conditions together
        broken.extend(min(per_variant, key=len))
    brand = product.brand.casefold()
    if hard.get("brands_include") and brand not in {b.casefold() for b in hard["brands_include"]}:
        broken.append(f"brand {product.brand!r} not asked for")
    if brand and brand in {b.casefold() for b in hard.get("brands_exclude") or []}:
        broken.append(f"brand {product.brand!r} excluded")
    materials = " | ".join(sorted(_values(product, "materials")))
    for material in hard.get("materials_exclude") or []:
        if re.search(rf"\b{re.escape(material.casefold())}\b", materials):
            broken.append(f"made of {material} ({materials})")
    labels = _values(product, "dietary")
    contains = _values(product, "allergens")
    free_of = _values(product, "free_from") | {a for label in labels for a in LABEL_FREE_OF.get(label, set())}
    for diet in hard.get("dietary") or []:
        if diet in ALLERGENS:
            allergens = ALLERGENS[diet]
            if allergens & contains:
                broken.append(f"{diet}: contains {sorted(allergens & contains)}")
            elif _is_food(product) and not allergens <= free_of:
                broken.append(f"{diet}: its data does not say it is free of {sorted(allergens - free_of)}")
        elif diet.replace("_", "-") not in labels and not (diet == "vegetarian" and "vegan" in labels):
            broken.append(f"not labelled {diet}")
    return broken


@dataclass(slots=True)
class Tally:
    queries: int = 0
    answered: int = 0
    suggested: int = 0
    constrained: int = 0  # suggestions for a message that declared at least one hard constraint
    ok: int = 0
    ok_constrained: int = 0


def _retrieval_hard(labels: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "max_price": labels.get("max_price"),
        "min_price": labels.get("min_price"),
        "in_stock_only": bool(labels.get("in_stock_only")),
        "brands_include": [labels["brand"]] if labels.get("brand") else [],
    }


def _constraints_hard(expected: Mapping[str, Any]) -> dict[str, Any]:
    budget = expected.get("budget") or {}
    return {
        "max_price": budget.get("max"),
        "min_price": budget.get("min"),
        "sizes": expected.get("sizes") or [],
        "colors_include": expected.get("colors_include") or [],
        "colors_exclude": expected.get("colors_exclude") or [],
        "materials_exclude": expected.get("materials_exclude") or [],
        "dietary": expected.get("dietary") or [],
        "brands_include": expected.get("brands_include") or [],
        "brands_exclude": expected.get("brands_exclude") or [],
    }


async def run(name: str, catalog: Path, dataset: Path, k: int) -> Tally:
    text = await asyncio.to_thread(dataset.read_text, encoding="utf-8")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    tally = Tally()
    with tempfile.TemporaryDirectory(prefix="shopkeeper-bench-") as tmp:
        index = await build_index(Path(tmp) / "kb.db", catalog, make_embedder("auto"))
        try:
            brands = tuple(await index.brands())
            lines = ProductLines.from_catalog(await index.product_names())
            for row in rows:
                message, language = row.get("query") or row["text"], row["language"]
                hard = _retrieval_hard(row["constraints"]) if "constraints" in row else _constraints_hard(row["expected"])
                declared = any(v for v in hard.values())
                understanding = understand(message, language=language, brands=brands)
                constraints = understanding.constraints
                implied = lines.implied_brand(
                    message, language, declared=constraints.brands_include, excluded=constraints.brands_exclude
                )
                cleaned = clean_query(message, language)
                filters = filters_for(
                    constraints, lang=LOCALES.get(language, language), in_stock_only=cleaned.in_stock_only, implied=implied
                )
                hits = await index.search(cleaned.text or message, filters, k=k, kinds=("product",))
                tally.queries += 1
                tally.answered += bool(hits)
                for hit in hits:
                    assert hit.product is not None
                    broken = violations(hit.product, hard)
                    tally.suggested += 1
                    tally.constrained += declared
                    tally.ok += not broken
                    tally.ok_constrained += declared and not broken
                    if broken:
                        print(f"  {name} {row.get('qid') or row['id']} {message!r}: {hit.product.id} {hit.product.title!r} breaks {broken}")
        finally:
            await index.close()
    return tally


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}% ({part}/{whole})" if whole else "n/a"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=3, help="suggestions per message (the engine's default is 3)")
    args = parser.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"shared data not found at {SHARED}: nothing to measure")
    lines = [
        "| query set | catalog | messages | answered | suggestions | satisfy every hard constraint | of those with a declared constraint |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, (catalog, dataset) in {"retrieval dev": RETRIEVAL, "constraint dev": CONSTRAINTS}.items():
        t = await run(name, catalog, dataset, args.k)
        lines.append(
            f"| {name} ({dataset.name}) | {catalog.parent.name}/{catalog.name} | {t.queries} | {t.answered} | {t.suggested} | "
            f"{_share(t.ok, t.suggested)} | {_share(t.ok_constrained, t.constrained)} |"
        )
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    asyncio.run(main())
