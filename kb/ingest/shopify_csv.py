"""Shopify product CSV export (Handle, Title, Body (HTML), Vendor, ..., Variant SKU,
Variant Price, Image Src, ..., Status).

A product spans several rows sharing its ``Handle``: the first row holds the
product fields (Title, Body, Vendor, Tags, option names) and usually the first
variant; following rows add variants (option values, SKU, price, inventory)
and/or images (an image-only row has no variant fields).

Mapping: id = Handle, description = Body (HTML) as plain text, brand = Vendor,
category = last segment of Product Category (else Type), url = base_url +
"/products/" + handle, image = lowest-position image. Stock is the Variant
Inventory Qty when a tracker is set and a quantity is given; it is ``None``
(not tracked) when the tracker is empty, the quantity column is absent, or the
inventory policy is "continue" (the store sells regardless of stock).
Products whose Status is "draft" or "archived" are not imported (they are not
for sale); they are not errors. Option names are lower-cased.
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
from .text import clean_block, clean_line, description_text

REQUIRED_COLUMNS = ("Handle", "Title", "Variant Price")
_VARIANT_COLUMNS = (
    "Option1 Value",
    "Option2 Value",
    "Option3 Value",
    "Variant SKU",
    "Variant Price",
    "Variant Inventory Qty",
    "Variant Compare At Price",
)
_HIDDEN_STATUSES = frozenset({"draft", "archived"})


def looks_like(header: list[str]) -> bool:
    """True for the header of a Shopify product export."""
    names = set(header)
    return "Handle" in names and "Variant Price" in names and ("Title" in names or "Body (HTML)" in names)


@dataclass
class _Draft:
    handle: str
    line: int
    title: str
    description: str
    brand: str
    category: str
    tags: tuple[str, ...]
    option_names: tuple[str, str, str]
    attributes: dict[str, Any]
    hidden: bool
    variants: list[Variant] = field(default_factory=list)
    images: list[tuple[int, int, str]] = field(default_factory=list)  # (position, order, src)
    compare_at: dict[str, str] = field(default_factory=dict)
    rejected_variants: int = 0


def _product_fields(row: CsvRow, handle: str) -> _Draft:
    category_path = clean_line(row.get("Product Category"))
    product_type = clean_line(row.get("Type"))
    segments = [s.strip() for s in category_path.split(">") if s.strip()]
    attributes: dict[str, Any] = {}
    if product_type:
        attributes["product_type"] = product_type
    if category_path:
        attributes["category_path"] = category_path
    if row.get("Gift Card").lower() == "true":
        attributes["gift_card"] = True
    names = tuple(option_name(row.get(f"Option{i} Name")) for i in (1, 2, 3))
    return _Draft(
        handle=handle,
        line=row.line,
        title=clean_line(row.get("Title")),
        description=description_text(row.cells.get("Body (HTML)", "")),
        brand=clean_line(row.get("Vendor")),
        category=segments[-1] if segments else product_type,
        tags=tuple(dict.fromkeys(t for t in (clean_line(t) for t in row.get("Tags").split(",")) if t)),
        option_names=(names[0], names[1], names[2]),
        attributes=attributes,
        hidden=row.get("Status").lower() in _HIDDEN_STATUSES,
    )


def _has_variant(row: CsvRow) -> bool:
    return any(row.get(c) for c in _VARIANT_COLUMNS)


def _variant(row: CsvRow, draft: _Draft, skus: SkuRegistry) -> tuple[Variant, str]:
    price = parse_price(row.get("Variant Price"))
    compare_at = row.get("Variant Compare At Price")
    if compare_at:
        try:
            compare_at = str(parse_price(compare_at))
        except RowProblem as problem:
            raise RowProblem(f"Variant Compare At Price: {problem.reason}") from None
    tracker = row.get("Variant Inventory Tracker")
    policy = row.get("Variant Inventory Policy").lower()
    stock = parse_stock(row.get("Variant Inventory Qty")) if tracker and policy != "continue" else None
    options: dict[str, str] = {}
    for index, name in enumerate(draft.option_names, start=1):
        value = clean_line(row.get(f"Option{index} Value"))
        if not value or (name == "title" and value == "Default Title"):
            continue
        options[name or f"option{index}"] = value
    sku = clean_line(row.get("Variant SKU")) or f"{draft.handle}-{len(draft.variants) + draft.rejected_variants + 1}"
    skus.claim(sku, row.line)
    return Variant(sku=sku, price=price, stock=stock, options=options), compare_at


def parse(path: Path, *, currency: str = "USD", base_url: str = "") -> ParseResult:
    """Parse a Shopify product CSV export into products (see the module docstring)."""
    text = read_text(path)
    errors: list[RowError] = []
    header, rows = read_csv(path, text, errors)
    require_columns(path, header, REQUIRED_COLUMNS, "Shopify product CSV")
    source = str(path)
    drafts: dict[str, _Draft] = {}
    skus = SkuRegistry()

    for row in rows:
        handle = clean_line(row.get("Handle"))
        if not handle:
            errors.append(RowError(source, row.line, "missing Handle"))
            continue
        draft = drafts.get(handle)
        if draft is None:
            if not clean_line(row.get("Title")):
                what = "variant row" if _has_variant(row) else "row"
                errors.append(RowError(source, row.line, f"{what} for handle {handle!r} has no product row (missing Title)"))
                continue
            draft = drafts[handle] = _product_fields(row, handle)
        if draft.hidden:
            continue
        image = clean_line(row.get("Image Src"))
        if image:
            position_text = row.get("Image Position")
            position = int(position_text) if position_text.isdigit() else 1_000_000
            draft.images.append((position, len(draft.images), image))
        if not _has_variant(row):
            continue
        try:
            variant, compare_at = _variant(row, draft, skus)
        except RowProblem as problem:
            draft.rejected_variants += 1
            errors.append(RowError(source, row.line, f"{handle}: {problem.reason}"))
            continue
        draft.variants.append(variant)
        if compare_at:
            draft.compare_at[variant.sku] = compare_at

    products: list[Product] = []
    for draft in drafts.values():
        if draft.hidden:
            continue
        if not draft.variants:
            errors.append(RowError(source, draft.line, f"{draft.handle}: product has no valid variant, not imported"))
            continue
        images = [src for _, _, src in sorted(draft.images)]
        attributes = dict(draft.attributes)
        if images:
            attributes["images"] = list(dict.fromkeys(images))
        if draft.compare_at:
            attributes["compare_at_prices"] = draft.compare_at
        products.append(
            Product(
                id=draft.handle,
                title=draft.title,
                description=clean_block(draft.description),
                currency=currency,
                variants=tuple(draft.variants),
                category=draft.category,
                brand=draft.brand,
                tags=draft.tags,
                url=join_url(base_url, "/products/", draft.handle),
                image=images[0] if images else "",
                attributes=with_colors(attributes, draft.variants),
                source=source,
            )
        )
    return ParseResult(products=products, errors=sort_errors(errors))
