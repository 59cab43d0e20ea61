"""The knowledge base's data model: what is ingested and what a search returns.

Every ingester (catalog formats, content pages) produces these types and every
index implementation stores and returns them, so nothing downstream depends on
where a product came from or which engine found it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, Literal

HitKind = Literal["product", "passage"]


@dataclass(frozen=True, slots=True)
class Variant:
    """One purchasable variant of a product (a size/colour combination)."""

    sku: str
    price: Decimal
    stock: int | None  # None: the store does not track inventory for it
    options: dict[str, str] = field(default_factory=dict)

    @property
    def in_stock(self) -> bool:
        return self.stock is None or self.stock > 0


@dataclass(frozen=True, slots=True)
class Product:
    """A catalog product with its variants.

    ``attributes`` holds structured facts used as filters: ``materials``,
    ``colors``, ``allergens`` (what it contains), ``free_from`` (what the label
    guarantees absent), ``dietary``, ``recipients``, ``occasions``, ``durable``.
    """

    id: str
    title: str
    description: str
    currency: str
    variants: tuple[Variant, ...]
    category: str = ""
    brand: str = ""
    tags: tuple[str, ...] = ()
    url: str = ""
    image: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # the file or feed it came from

    @property
    def min_price(self) -> Decimal:
        return min(v.price for v in self.variants)

    @property
    def in_stock(self) -> bool:
        return any(v.in_stock for v in self.variants)

    @property
    def total_stock(self) -> int | None:
        if any(v.stock is None for v in self.variants):
            return None
        return sum(v.stock or 0 for v in self.variants)

    def option_values(self, name: str) -> set[str]:
        return {v.options[name].lower() for v in self.variants if name in v.options}

    def search_text(self) -> str:
        """The text that lexical and dense retrieval see for this product."""
        parts = [self.title, self.category, self.brand, " ".join(self.tags), self.description]
        for key in ("materials", "colors", "dietary", "recipients", "occasions"):
            values = self.attributes.get(key)
            if isinstance(values, list):
                parts.append(" ".join(str(v) for v in values))
        return "\n".join(p for p in parts if p)

    def content_hash(self) -> str:
        payload = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ProductName:
    """A product's brand, title, category and description as the catalog writes them.

    What product-line names are learned from (:mod:`kb.product_lines`).
    """

    brand: str
    title: str
    category: str = ""
    description: str = ""


@dataclass(frozen=True, slots=True)
class Passage:
    """A section of a content page (policy, FAQ, size guide) with its heading path."""

    id: str
    page_title: str
    heading_path: tuple[str, ...]
    text: str
    url: str
    lang: str
    source: str = ""

    @property
    def title(self) -> str:
        return " › ".join((self.page_title, *self.heading_path[1:])) if self.heading_path else self.page_title

    def search_text(self) -> str:
        return f"{self.title}\n{self.text}"

    def content_hash(self) -> str:
        payload = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """Structured filters applied outside the text ranking.

    Prices are in the catalog currency. Exclusions are hard: a product is kept
    only if its data shows it is free of each excluded allergen.
    """

    max_price: Decimal | None = None
    min_price: Decimal | None = None
    in_stock_only: bool = False
    category: str | None = None
    sizes: tuple[str, ...] = ()
    colors: tuple[str, ...] = ()
    exclude_colors: tuple[str, ...] = ()
    exclude_materials: tuple[str, ...] = ()
    exclude_allergens: tuple[str, ...] = ()
    dietary: tuple[str, ...] = ()
    brands: tuple[str, ...] = ()
    exclude_brands: tuple[str, ...] = ()
    lang: str | None = None  # preferred language for passages

    def is_empty(self) -> bool:
        return self == SearchFilters(lang=self.lang)


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: a product or a passage, with its score and source."""

    kind: HitKind
    score: float
    product: Product | None = None
    passage: Passage | None = None

    def __post_init__(self) -> None:
        if (self.product is None) == (self.passage is None):
            raise ValueError("a Hit holds exactly one of product or passage")

    @property
    def item(self) -> Product | Passage:
        return self.product if self.product is not None else self.passage  # type: ignore[return-value]

    @property
    def id(self) -> str:
        return self.item.id

    @property
    def source_title(self) -> str:
        return self.item.title

    @property
    def source_url(self) -> str:
        return self.item.url
