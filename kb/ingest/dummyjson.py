"""DummyJSON products (``database/products.json``: a list of products, or the
API's ``{"products": [...], "total": ...}``).

Each product has a single variant (its ``sku``, ``price`` and ``stock``) with
no options. id = the numeric ``id`` as a string, image = ``thumbnail`` (else
the first image), url = base_url + "/products/" + id. Brand, category and tags
map to the product fields; rating, warranty, shipping, return policy,
availability, dimensions, weight, discount and minimum order quantity are kept
in ``attributes``. Reviews are kept as ``attributes["reviews"]`` — a list of
``{"rating", "comment"}`` only (no reviewer names or e-mails); they are
customer-written, untrusted text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kb.models import Product, Variant

from .common import (
    ParseResult,
    SkuRegistry,
    join_url,
    json_products,
    parse_price,
    parse_stock,
    read_text,
    sort_errors,
    split_tags,
)
from .errors import RowError, RowProblem
from .text import clean_line, clean_value, description_text

_KEPT_ATTRIBUTES = (
    "rating",
    "warrantyInformation",
    "shippingInformation",
    "returnPolicy",
    "availabilityStatus",
    "dimensions",
    "weight",
    "discountPercentage",
    "minimumOrderQuantity",
)
_MARKERS = frozenset({"thumbnail", "discountPercentage", "availabilityStatus", "warrantyInformation", "returnPolicy"})


def looks_like(item: dict[str, Any]) -> bool:
    """True when a product object has DummyJSON's shape (flat price, no variants, its own keys)."""
    return "variants" not in item and "title" in item and "price" in item and bool(_MARKERS & item.keys())


def _reviews(raw: object) -> list[dict[str, Any]]:
    reviews: list[dict[str, Any]] = []
    if not isinstance(raw, list):
        return reviews
    for review in raw:
        if not isinstance(review, dict):
            continue
        comment = clean_value(review.get("comment") if isinstance(review.get("comment"), str) else "")
        rating = clean_value(review.get("rating"))
        if comment or rating is not None:
            reviews.append({"rating": rating, "comment": comment})
    return reviews


def _product(item: object, source: str, currency: str, base_url: str, skus: SkuRegistry, line: int) -> Product:
    if not isinstance(item, dict):
        raise RowProblem(f"product is a JSON {type(item).__name__}, not an object")
    raw_id = item.get("id")
    product_id = clean_line(raw_id) if raw_id is not None and not isinstance(raw_id, bool | dict | list) else ""
    if not product_id:
        raise RowProblem("missing id")
    title = clean_line(item.get("title"))
    if not title:
        raise RowProblem(f"product {product_id}: missing title")
    try:
        price = parse_price(item.get("price"))
        stock = parse_stock(item.get("stock"))
    except RowProblem as problem:
        raise RowProblem(f"product {product_id}: {problem.reason}") from None
    sku = clean_line(item.get("sku")) or product_id
    try:
        skus.claim(sku, line)
    except RowProblem as problem:
        raise RowProblem(f"product {product_id}: {problem.reason}") from None
    attributes: dict[str, Any] = {k: clean_value(item[k]) for k in _KEPT_ATTRIBUTES if item.get(k) is not None}
    attributes["reviews"] = _reviews(item.get("reviews"))
    images = [clean_line(i) for i in item.get("images") or [] if isinstance(i, str) and clean_line(i)]
    if images:
        attributes["images"] = images
    return Product(
        id=product_id,
        title=title,
        description=description_text(item.get("description")),
        currency=currency,
        variants=(Variant(sku=sku, price=price, stock=stock),),
        category=clean_line(item.get("category")),
        brand=clean_line(item.get("brand")),
        tags=split_tags(item.get("tags") or ()),
        url=join_url(base_url, "/products/", product_id),
        image=clean_line(item.get("thumbnail")) or (images[0] if images else ""),
        attributes=attributes,
        source=source,
    )


def parse(path: Path, *, currency: str = "USD", base_url: str = "") -> ParseResult:
    """Parse a DummyJSON products file into products (see the module docstring)."""
    text = read_text(path)
    _, items = json_products(path, text)
    source = str(path)
    skus = SkuRegistry()
    seen_ids: set[str] = set()
    result = ParseResult()
    for line, item in items:
        try:
            product = _product(item, source, currency, base_url, skus, line)
            if product.id in seen_ids:
                raise RowProblem(f"duplicate product id {product.id!r}")
        except RowProblem as problem:
            result.errors.append(RowError(source, line, problem.reason))
            continue
        seen_ids.add(product.id)
        result.products.append(product)
    result.errors = sort_errors(result.errors)
    return result
