"""Vendure import CSV (name, slug, description, assets, facets, optionGroups,
optionValues, sku, price, taxCategory, stockOnHand, trackInventory,
variantAssets, variantFacets).

Cells are padded with spaces, which are stripped. A row with a ``name`` starts
a product; following rows with an empty name are further variants of it.
``optionGroups`` ("screen size|RAM") names the options and each variant's
``optionValues`` ("13 inch|8GB") gives their values in the same order.
``facets`` ("category:Electronics|category:Computers|brand:Apple") become:
category = the last (most specific) category value, all categories in
``attributes["categories"]``, brand = the first brand, colour facets in
``attributes["colors"]`` and any other facet as a list under its own name.
``assets`` are ``|``-separated; the first is the product image.
id = slug, url = base_url + "/products/" + slug. Prices are in major units.
Stock is ``stockOnHand`` unless ``trackInventory`` is "false" (then ``None``).

Vendure does not require unique SKUs, and its demo catalog gives the three
colours of "Modern Cafe Chair" one SKU: variants of the same product may share
a SKU (kept as given) when their option values differ; a SKU reused by another
product, or a repeated option combination, is rejected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kb.models import Product, Variant

from .common import (
    CsvRow,
    ParseResult,
    SkuRegistry,
    join_url,
    option_name,
    parse_price,
    parse_stock,
    read_csv,
    read_text,
    require_columns,
    sort_errors,
    with_colors,
)
from .errors import RowError, RowProblem
from .text import clean_line, description_text, slugify

REQUIRED_COLUMNS = ("name", "slug", "optionGroups", "optionValues", "sku", "price")


def looks_like(header: list[str]) -> bool:
    """True for the header of a Vendure product import CSV."""
    names = {h.lower() for h in header}
    return {"name", "slug", "optiongroups", "optionvalues"} <= names


def _split(value: str) -> list[str]:
    return [clean_line(v) for v in value.split("|")] if value.strip() else []


def _facets(raw: str) -> tuple[str, str, dict[str, list[str]]]:
    """category, brand and the other facets (as attribute lists) from a facets cell."""
    categories: list[str] = []
    brands: list[str] = []
    attributes: dict[str, list[str]] = {}
    for item in _split(raw):
        name, sep, value = item.partition(":")
        name, value = clean_line(name), clean_line(value)
        if not sep or not name or not value:
            continue
        key = name.lower()
        if key == "category":
            categories.append(value)
        elif key == "brand":
            brands.append(value)
        else:
            key = "colors" if key in ("color", "colour") else name
            attributes.setdefault(key, [])
            if value not in attributes[key]:
                attributes[key].append(value)
    if categories:
        attributes["categories"] = list(dict.fromkeys(categories))
    return (categories[-1] if categories else ""), (brands[0] if brands else ""), attributes


@dataclass
class _Draft:
    slug: str
    line: int
    title: str
    description: str
    category: str
    brand: str
    assets: list[str]
    attributes: dict[str, Any]
    option_groups: list[str]
    variants: list[Variant] = field(default_factory=list)


def _new_product(row: CsvRow) -> _Draft:
    title = clean_line(row.get("name"))
    category, brand, attributes = _facets(row.get("facets"))
    return _Draft(
        slug=clean_line(row.get("slug")) or slugify(title, fallback="product"),
        line=row.line,
        title=title,
        description=description_text(row.cells.get("description", "")),
        category=category,
        brand=brand,
        assets=_split(row.get("assets")),
        attributes=attributes,
        option_groups=[option_name(g) for g in _split(row.get("optionGroups"))],
    )


def _variant(row: CsvRow, draft: _Draft, skus: SkuRegistry) -> Variant:
    values = _split(row.get("optionValues"))
    if len(values) != len(draft.option_groups):
        raise RowProblem(f"{len(values)} option value(s) {values!r} for {len(draft.option_groups)} option group(s) {draft.option_groups!r}")
    if any(not v for v in values):
        raise RowProblem("empty option value")
    price = parse_price(row.get("price"))
    stock = parse_stock(row.get("stockOnHand"))
    if row.get("trackInventory").lower() == "false":
        stock = None
    sku = clean_line(row.get("sku"))
    if not sku:
        raise RowProblem("missing sku")
    options = dict(zip(draft.option_groups, values, strict=True))
    if any(v.options == options for v in draft.variants):
        raise RowProblem(f"duplicate variant: option values {values!r} already used")
    skus.claim(sku, row.line, owner=draft.slug, shared_within_owner=True)
    for asset in _split(row.get("variantAssets")):
        if asset and asset not in draft.assets:
            draft.assets.append(asset)
    for key, facet_values in _facets(row.get("variantFacets"))[2].items():
        merged = draft.attributes.setdefault(key, [])
        merged.extend(v for v in facet_values if v not in merged)
    return Variant(sku=sku, price=price, stock=stock, options=options)


def parse(path: Path, *, currency: str = "USD", base_url: str = "") -> ParseResult:
    """Parse a Vendure product import CSV into products (see the module docstring)."""
    text = read_text(path)
    errors: list[RowError] = []
    header, rows = read_csv(path, text, errors)
    require_columns(path, header, REQUIRED_COLUMNS, "Vendure product CSV")
    source = str(path)
    drafts: list[_Draft] = []
    skus = SkuRegistry()
    current: _Draft | None = None
    seen_slugs: dict[str, int] = {}

    for row in rows:
        if row.get("name"):
            current = None
            draft = _new_product(row)
            if draft.slug in seen_slugs:
                errors.append(RowError(source, row.line, f"duplicate slug {draft.slug!r} (first used on line {seen_slugs[draft.slug]})"))
                continue
            seen_slugs[draft.slug] = row.line
            current = draft
            drafts.append(draft)
        elif current is None:
            errors.append(RowError(source, row.line, "variant row without a product (no name on this or a previous row)"))
            continue
        try:
            current.variants.append(_variant(row, current, skus))
        except RowProblem as problem:
            errors.append(RowError(source, row.line, f"{current.slug}: {problem.reason}"))

    products: list[Product] = []
    for draft in drafts:
        if not draft.variants:
            errors.append(RowError(source, draft.line, f"{draft.slug}: product has no valid variant, not imported"))
            continue
        attributes: dict[str, Any] = dict(draft.attributes)
        if draft.assets:
            attributes["images"] = list(draft.assets)
        products.append(
            Product(
                id=draft.slug,
                title=draft.title,
                description=draft.description,
                currency=currency,
                variants=tuple(draft.variants),
                category=draft.category,
                brand=draft.brand,
                url=join_url(base_url, "/products/", draft.slug),
                image=draft.assets[0] if draft.assets else "",
                attributes=with_colors(attributes, draft.variants),
                source=source,
            )
        )
    return ParseResult(products=products, errors=sort_errors(errors))
