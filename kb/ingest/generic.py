"""The project's own catalog formats: generic JSON and generic CSV.

Generic JSON (the demo store's native format)::

    {"currency": "EUR",
     "products": [{"id", "handle", "title", "description", "category", "brand",
                   "tags": [...], "url", "image", "attributes": {...},
                   "variants": [{"sku", "options": {...}, "price", "stock"}]}]}

A bare list of products is accepted too. A product without ``variants`` but
with a top-level ``price`` gets one variant from its ``sku``/``price``/
``stock``. Unknown product keys are kept in ``attributes``. A product or the
file may set ``currency``; otherwise the ``currency`` argument applies.

Generic CSV: columns id, title, description, category, brand, tags (pipe- or
comma-separated), price, currency, stock, sku, size, color, url, image; one
row per variant, rows with the same id form one product (product fields are
taken from the first row that fills them). ``size``/``color`` and any
``option_<name>`` column become variant options; other columns go to
``attributes``. Comma, semicolon and tab delimiters are recognised.

In both, url defaults to base_url + "/products/" + (handle or id), and a
relative url ("/products/x") is prefixed with base_url.
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
    json_products,
    option_name,
    parse_currency,
    parse_price,
    parse_stock,
    read_csv,
    read_text,
    sort_errors,
    split_tags,
    with_colors,
)
from .errors import RowError, RowProblem, UnreadableFileError
from .text import clean_line, clean_value, description_text, slugify

# --------------------------------------------------------------------------- shared


def _url(raw: object, base_url: str, handle: str) -> str:
    url = clean_line(raw)
    if not url:
        return join_url(base_url, "/products/", handle)
    if url.startswith("/") and base_url:
        return join_url(base_url, url)
    return url


def _id_text(raw: object) -> str:
    if raw is None or isinstance(raw, bool | dict | list):
        return ""
    return clean_line(raw)


# --------------------------------------------------------------------------- JSON

_JSON_PRODUCT_KEYS = frozenset(
    {
        "id",
        "handle",
        "title",
        "name",
        "description",
        "category",
        "brand",
        "tags",
        "url",
        "image",
        "attributes",
        "variants",
        "currency",
        "sku",
        "price",
        "stock",
        "options",
    }
)


def looks_like_json(document: Any) -> bool:
    """True for a generic JSON catalog (``{"products": [...]}`` or a list of product objects)."""
    if isinstance(document, dict):
        items = document.get("products")
        if not isinstance(items, list):
            return False
    elif isinstance(document, list):
        items = document
    else:
        return False
    sample = [i for i in items[:10] if isinstance(i, dict)]
    if not sample:
        return isinstance(document, dict) or not items
    fitting = sum(("title" in i or "name" in i) and ("variants" in i or "price" in i) for i in sample)
    return fitting * 2 > len(sample)


def _json_variant(raw: object, index: int, product_id: str, skus: SkuRegistry, line: int) -> Variant:
    if not isinstance(raw, dict):
        raise RowProblem(f"variant {index + 1} is not an object")
    sku = clean_line(raw.get("sku")) or (product_id if index == 0 else f"{product_id}-{index + 1}")
    price = parse_price(raw.get("price"))
    stock = parse_stock(raw.get("stock"))
    options_raw = raw.get("options") or {}
    if not isinstance(options_raw, dict):
        raise RowProblem(f"variant {sku!r}: options must be an object")
    options = {option_name(k): clean_line(v) for k, v in options_raw.items() if clean_line(v) and option_name(k)}
    skus.claim(sku, line)
    return Variant(sku=sku, price=price, stock=stock, options=options)


def _json_product(
    item: object, line: int, source: str, currency: str, base_url: str, skus: SkuRegistry
) -> tuple[Product | None, list[str]]:
    """The product (None when rejected) and the reasons of rejected variants/product."""
    if not isinstance(item, dict):
        return None, [f"product is a JSON {type(item).__name__}, not an object"]
    handle = _id_text(item.get("handle"))
    product_id = _id_text(item.get("id")) or handle
    title = clean_line(item.get("title") or item.get("name"))
    if not product_id:
        return None, [f"product {title!r}: missing id" if title else "missing id"]
    if not title:
        return None, [f"product {product_id}: missing title"]
    try:
        product_currency = parse_currency(item.get("currency"), currency)
    except RowProblem as problem:
        return None, [f"product {product_id}: {problem.reason}"]
    raw_variants = item.get("variants")
    if raw_variants is None and "price" in item:
        raw_variants = [{"sku": item.get("sku"), "price": item.get("price"), "stock": item.get("stock"), "options": item.get("options")}]
    if not isinstance(raw_variants, list) or not raw_variants:
        return None, [f"product {product_id}: no variants and no price"]
    variants: list[Variant] = []
    problems: list[str] = []
    for index, raw in enumerate(raw_variants):
        try:
            variants.append(_json_variant(raw, index, product_id, skus, line))
        except RowProblem as problem:
            problems.append(f"product {product_id}, variant {index + 1}: {problem.reason}")
    if not variants:
        problems.append(f"product {product_id}: no valid variant, not imported")
        return None, problems
    attributes_raw = item.get("attributes")
    attributes: dict[str, Any] = clean_value(attributes_raw) if isinstance(attributes_raw, dict) else {}
    for key, value in item.items():
        if key not in _JSON_PRODUCT_KEYS and key not in attributes and value is not None:
            attributes[clean_line(key)] = clean_value(value)
    if handle and handle != product_id:
        attributes.setdefault("handle", handle)
    product = Product(
        id=product_id,
        title=title,
        description=description_text(item.get("description")),
        currency=product_currency,
        variants=tuple(variants),
        category=clean_line(item.get("category")),
        brand=clean_line(item.get("brand")),
        tags=split_tags(item.get("tags") or ()),
        url=_url(item.get("url"), base_url, handle or product_id),
        image=clean_line(item.get("image")),
        attributes=with_colors(attributes, variants),
        source=source,
    )
    return product, problems


def parse_json(path: Path, *, currency: str = "USD", base_url: str = "") -> ParseResult:
    """Parse a generic JSON catalog into products (see the module docstring)."""
    text = read_text(path)
    meta, items = json_products(path, text)
    source = str(path)
    try:
        file_currency = parse_currency(meta.get("currency"), currency)
    except RowProblem as problem:
        raise UnreadableFileError(f"{path}: {problem.reason}") from None
    skus = SkuRegistry()
    seen_ids: set[str] = set()
    result = ParseResult()
    for line, item in items:
        product, problems = _json_product(item, line, source, file_currency, base_url, skus)
        if product is not None and product.id in seen_ids:
            problems.append(f"duplicate product id {product.id!r}")
            product = None
        result.errors.extend(RowError(source, line, reason) for reason in problems)
        if product is not None:
            seen_ids.add(product.id)
            result.products.append(product)
    result.errors = sort_errors(result.errors)
    return result


# --------------------------------------------------------------------------- CSV

_CSV_ALIASES = {
    "name": "title",
    "product_id": "id",
    "handle": "handle",
    "body": "description",
    "quantity": "stock",
    "inventory": "stock",
    "image_url": "image",
    "link": "url",
    "colour": "color",
}
_CSV_PRODUCT_FIELDS = ("title", "description", "category", "brand", "tags", "url", "image", "currency")
_CSV_KNOWN = frozenset({"id", "handle", *_CSV_PRODUCT_FIELDS, "price", "stock", "sku", "size", "color"})


def _column_key(header_name: str) -> str:
    key = clean_line(header_name).lower().replace(" ", "_").replace("-", "_")
    return _CSV_ALIASES.get(key, key)


def looks_like_csv(header: list[str]) -> bool:
    """True for a generic CSV catalog header (id or handle, title, price)."""
    keys = {_column_key(h) for h in header}
    return ("id" in keys or "handle" in keys) and "title" in keys and "price" in keys


@dataclass
class _Group:
    product_id: str
    line: int
    rows: list[CsvRow] = field(default_factory=list)


def _first(rows: list[CsvRow], key: str) -> str:
    for row in rows:
        value = row.cells.get(key, "")
        if value.strip():
            return value
    return ""


def _csv_variant(row: CsvRow, product_id: str, index: int, option_columns: list[str], skus: SkuRegistry) -> Variant:
    price = parse_price(row.get("price"))
    stock = parse_stock(row.get("stock"))
    options: dict[str, str] = {}
    for column in option_columns:
        value = clean_line(row.get(column))
        if value:
            options[option_name(column.removeprefix("option_"))] = value
    sku = clean_line(row.get("sku")) or (product_id if index == 0 else f"{product_id}-{index + 1}")
    skus.claim(sku, row.line)
    return Variant(sku=sku, price=price, stock=stock, options=options)


def parse_csv(path: Path, *, currency: str = "USD", base_url: str = "") -> ParseResult:
    """Parse a generic CSV catalog into products (see the module docstring)."""
    text = read_text(path)
    errors: list[RowError] = []
    header, raw_rows = read_csv(path, text, errors)
    keys = [_column_key(h) for h in header]
    if not looks_like_csv(header):
        raise UnreadableFileError(f"{path}: not a generic catalog CSV (needs id or handle, title and price columns)")
    rows = [CsvRow(r.line, {_column_key(k): v for k, v in r.cells.items()}) for r in raw_rows]
    source = str(path)
    option_columns = [k for k in dict.fromkeys(keys) if k in ("size", "color") or k.startswith("option_")]
    extra_columns = [k for k in dict.fromkeys(keys) if k and k not in _CSV_KNOWN and k not in option_columns]

    groups: dict[str, _Group] = {}
    for row in rows:
        product_id = clean_line(row.get("id")) or clean_line(row.get("handle"))
        if not product_id:
            title = clean_line(row.get("title"))
            if not title:
                errors.append(RowError(source, row.line, "row has no id and no title"))
                continue
            product_id = slugify(title, fallback="product")
        groups.setdefault(product_id, _Group(product_id, row.line)).rows.append(row)

    skus = SkuRegistry()
    products: list[Product] = []
    for group in groups.values():
        title = clean_line(_first(group.rows, "title"))
        if not title:
            for row in group.rows:
                errors.append(RowError(source, row.line, f"product {group.product_id}: missing title (no product row)"))
            continue
        try:
            product_currency = parse_currency(_first(group.rows, "currency"), currency)
        except RowProblem as problem:
            errors.append(RowError(source, group.line, f"product {group.product_id}: {problem.reason}"))
            continue
        variants: list[Variant] = []
        for index, row in enumerate(group.rows):
            try:
                row_currency = parse_currency(row.get("currency"), product_currency)
                if row_currency != product_currency:
                    raise RowProblem(f"currency {row_currency} differs from the product's {product_currency}")
                variants.append(_csv_variant(row, group.product_id, index, option_columns, skus))
            except RowProblem as problem:
                errors.append(RowError(source, row.line, f"product {group.product_id}: {problem.reason}"))
        if not variants:
            errors.append(RowError(source, group.line, f"product {group.product_id}: no valid variant, not imported"))
            continue
        attributes: dict[str, Any] = {}
        for column in extra_columns:
            value = _first(group.rows, column)
            if value.strip():
                attributes[column] = clean_value(value)
        handle = clean_line(_first(group.rows, "handle")) or group.product_id
        products.append(
            Product(
                id=group.product_id,
                title=title,
                description=description_text(_first(group.rows, "description")),
                currency=product_currency,
                variants=tuple(variants),
                category=clean_line(_first(group.rows, "category")),
                brand=clean_line(_first(group.rows, "brand")),
                tags=split_tags(_first(group.rows, "tags")),
                url=_url(_first(group.rows, "url"), base_url, handle),
                image=clean_line(_first(group.rows, "image")),
                attributes=with_colors(attributes, variants),
                source=source,
            )
        )
    return ParseResult(products=products, errors=sort_errors(errors))
