"""The search contract every knowledge-base index implements.

An implementation stores products and passages, updates them incrementally
(unchanged items, by content hash, cost nothing) and answers
``search(query, filters, k)`` with :class:`kb.models.Hit` values, best first.
Structured filters are hard: a product that does not satisfy them is never
returned, whatever its text score. A product search whose request names a kind
of product the store carries none of ("yoga mat" in a shop whose only *Yoga* is a
laptop) returns no product: :meth:`BaseIndex.missing_kind`, the same rule
(:mod:`kb.assortment`) for every implementation. One contract suite (``tests/test_index_contract.py``)
runs against every implementation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kb.assortment import Assortment
from kb.models import Hit, HitKind, Passage, Product, ProductName, SearchFilters

ALL_KINDS: tuple[HitKind, ...] = ("product", "passage")


class IndexUnavailableError(RuntimeError):
    """The index cannot answer now (server down, unreachable, timed out, not open).

    Raised instead of the vendor's exceptions so the engine can fall back (to the
    embedded index, or an apology) without importing weaviate.
    """


class WeaviateIndexError(RuntimeError):
    """A server-backed index (Weaviate) answered but refused the request (rejected objects, schema conflict)."""



@dataclass(frozen=True, slots=True)
class UpsertStats:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0

    def __add__(self, other: UpsertStats) -> UpsertStats:
        return UpsertStats(
            self.added + other.added,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
            self.removed + other.removed,
        )


class BaseIndex(ABC):
    """A knowledge-base index. Open once (app lifespan), close at shutdown."""

    async def __aenter__(self) -> BaseIndex:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def upsert_products(self, products: Iterable[Product], *, source: str | None = None) -> UpsertStats:
        """Add or update products; with ``source``, remove that source's products not given."""

    @abstractmethod
    async def upsert_passages(self, passages: Iterable[Passage], *, source: str | None = None) -> UpsertStats:
        """Add or update passages; with ``source``, remove that source's passages not given."""

    @abstractmethod
    async def search(
        self,
        query: str,
        filters: SearchFilters | None = None,
        k: int = 10,
        kinds: Sequence[HitKind] = ALL_KINDS,
    ) -> list[Hit]:
        """The ``k`` best hits for ``query`` that satisfy ``filters``, best first."""

    @abstractmethod
    async def assortment(self) -> Assortment:
        """What the stored products are (:meth:`kb.assortment.Assortment.from_products`: titles, categories, tags)."""

    async def missing_kind(self, query: str, lang: str | None = None) -> str | None:
        """The shopper's words for what ``query`` asks for ("yoga mat") when no stored product is that kind of thing, else None.

        :meth:`search` returns no product then (passages are still searched); the
        engine uses the word to say the store does not carry it.
        """
        return (await self.assortment()).missing_kind(query, lang)

    @abstractmethod
    async def get_product(self, product_id: str) -> Product | None: ...

    @abstractmethod
    async def product_count(self) -> int: ...

    @abstractmethod
    async def brands(self) -> tuple[str, ...]:
        """The catalog's brand names as written in the catalog (for constraint extraction)."""

    @abstractmethod
    async def product_names(self) -> tuple[ProductName, ...]:
        """Brand, title, category and description of every product (product-line names are learned from them)."""
