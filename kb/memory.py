"""The in-memory side of the embedded index: vectors, filter columns and dense ranking.

:class:`IndexMemory` holds one row per embedded document (products and passages):
the vector matrix, and for product rows the columns the structured filters need
(variants' price, stock, size and colour; category, brand, edibility; facet
values). :meth:`IndexMemory.eligible` evaluates a :class:`kb.models.SearchFilters`
into a boolean mask over the rows with numpy, so a filtered query over 50,000
products costs about a millisecond instead of a SQL scan. Its semantics are those
of the SQL filter in :meth:`kb.sqlite_index.SQLiteIndex.matching_products`, the
reference; ``tests/test_index_contract.py`` checks that the two agree.

:func:`rank_dense` is the ranking itself (see :mod:`kb.sqlite_index`). Everything
here is blocking numpy: the index calls it through ``asyncio.to_thread``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from kb.models import SearchFilters

if TYPE_CHECKING:
    from kb.sqlite_index import RankingConfig

Bools = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

# rows whose similarities estimate the query's mean and spread (evenly spaced, per kind)
STATISTICS_SAMPLE = 4096


@dataclass(frozen=True, slots=True)
class VariantRow:
    """One variant as loaded from the index file."""

    product_id: str
    price: float
    stock: int | None
    size: str | None
    color: str | None


@dataclass(frozen=True, slots=True)
class ProductRow:
    """One product's filter columns as loaded from the index file."""

    product_id: str
    category: str
    brand: str
    edible: bool


def _codes(values: Iterable[str | None]) -> tuple[Ints, dict[str, int]]:
    """Integer codes for a column of strings (-1 for None) and the code of each value."""
    vocabulary: dict[str, int] = {}
    codes = [-1 if v is None else vocabulary.setdefault(v, len(vocabulary)) for v in values]
    return np.asarray(codes, dtype=np.int64), vocabulary


def _lookup(vocabulary: dict[str, int], values: Iterable[str]) -> Ints:
    return np.asarray([vocabulary[v] for v in values if v in vocabulary], dtype=np.int64)


def _sample(rows: Ints) -> Ints:
    if rows.size <= STATISTICS_SAMPLE:
        return rows
    return rows[np.linspace(0, rows.size - 1, STATISTICS_SAMPLE).astype(np.int64)]


@dataclass(frozen=True, slots=True)
class IndexMemory:
    """Vectors and filter columns of the embedded documents (built by :meth:`build`)."""

    keys: tuple[str, ...]
    vectors: npt.NDArray[np.float32]
    row_of: dict[str, int]
    is_product: Bools
    passage_language: tuple[str, ...]
    variant_row: Ints = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    variant_price: Floats = field(default_factory=lambda: np.zeros(0))
    variant_in_stock: Bools = field(default_factory=lambda: np.zeros(0, dtype=bool))
    variant_size: Ints = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    variant_color: Ints = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    sizes: dict[str, int] = field(default_factory=dict)
    colors: dict[str, int] = field(default_factory=dict)
    category: Ints = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    categories: dict[str, int] = field(default_factory=dict)
    brand: Ints = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    brands: dict[str, int] = field(default_factory=dict)
    edible: Bools = field(default_factory=lambda: np.zeros(0, dtype=bool))
    facets: dict[tuple[str, str], Ints] = field(default_factory=dict)
    statistics_rows: dict[str, Ints] = field(default_factory=dict)
    passages_by_language: dict[str, Ints] = field(default_factory=dict)

    @staticmethod
    def empty(dim: int) -> IndexMemory:
        return IndexMemory((), np.zeros((0, dim), dtype=np.float32), {}, np.zeros(0, dtype=bool), ())

    @staticmethod
    def build(
        keys: tuple[str, ...],
        vectors: npt.NDArray[np.float32],
        passage_languages: dict[str, str],
        products: Sequence[ProductRow],
        variants: Sequence[VariantRow],
        facets: Sequence[tuple[str, str, str]],
    ) -> IndexMemory:
        """Assemble the memory from the index file's rows: one document key per row of ``vectors``."""
        if not keys:
            return IndexMemory.empty(vectors.shape[1] if vectors.ndim == 2 else 1)
        row_of = {key: i for i, key in enumerate(keys)}
        is_product = np.fromiter((key.startswith("p:") for key in keys), dtype=bool, count=len(keys))
        languages = tuple(passage_languages.get(key[2:], "") if key.startswith("s:") else "" for key in keys)

        known = [v for v in variants if "p:" + v.product_id in row_of]
        variant_size, sizes = _codes(v.size for v in known)
        variant_color, colors = _codes(v.color for v in known)
        category_of = {p.product_id: p for p in products}
        rows_products = [category_of.get(key[2:]) if key.startswith("p:") else None for key in keys]
        category, categories = _codes(p.category if p else None for p in rows_products)
        brand, brands = _codes(p.brand if p else None for p in rows_products)
        grouped: dict[tuple[str, str], list[int]] = {}
        for product_id, facet, value in facets:
            row = row_of.get("p:" + product_id)
            if row is not None:
                grouped.setdefault((facet, value), []).append(row)
        all_rows = np.arange(len(keys), dtype=np.int64)
        by_language: dict[str, list[int]] = {}
        for i, language in enumerate(languages):
            if language:
                by_language.setdefault(language, []).append(i)
        return IndexMemory(
            keys=keys,
            vectors=vectors,
            row_of=row_of,
            is_product=is_product,
            passage_language=languages,
            variant_row=np.asarray([row_of["p:" + v.product_id] for v in known], dtype=np.int64),
            variant_price=np.asarray([v.price for v in known], dtype=np.float64),
            variant_in_stock=np.asarray([v.stock is None or v.stock > 0 for v in known], dtype=bool),
            variant_size=variant_size,
            variant_color=variant_color,
            sizes=sizes,
            colors=colors,
            category=category,
            categories=categories,
            brand=brand,
            brands=brands,
            edible=np.asarray([bool(p and p.edible) for p in rows_products], dtype=bool),
            facets={key: np.asarray(sorted(set(rows)), dtype=np.int64) for key, rows in grouped.items()},
            passages_by_language={lang: np.asarray(rows, dtype=np.int64) for lang, rows in by_language.items()},
            statistics_rows={
                "product": _sample(all_rows[is_product]),
                "passage": _sample(all_rows[~is_product]),
                "all": _sample(all_rows),
            },
        )

    def language_rows(self, language: str) -> Ints:
        """The rows of the passages written in ``language``."""
        return self.passages_by_language.get(language, np.zeros(0, dtype=np.int64))

    def _facet(self, facet: str, values: Iterable[str]) -> Bools:
        mask = np.zeros(len(self.keys), dtype=bool)
        for value in values:
            rows = self.facets.get((facet, value))
            if rows is not None:
                mask[rows] = True
        return mask

    def eligible(self, f: SearchFilters) -> Bools:
        """The product rows that satisfy every structured filter of ``f`` (passage rows: False)."""
        n = len(self.keys)
        variant_ok = np.ones(self.variant_row.size, dtype=bool)
        variant_clause = False
        if f.max_price is not None:
            variant_ok &= self.variant_price <= float(f.max_price)
            variant_clause = True
        if f.min_price is not None:
            variant_ok &= self.variant_price >= float(f.min_price)
            variant_clause = True
        if f.in_stock_only:
            variant_ok &= self.variant_in_stock
            variant_clause = True
        if f.sizes:
            variant_ok &= np.isin(self.variant_size, _lookup(self.sizes, (s.casefold() for s in f.sizes)))
            variant_clause = True
        if f.colors:
            wanted = [c.casefold() for c in f.colors]
            by_facet = self._facet("colors", wanted)[self.variant_row]
            variant_ok &= np.isin(self.variant_color, _lookup(self.colors, wanted)) | ((self.variant_color == -1) & by_facet)
            variant_clause = True
        if f.exclude_colors:
            banned = _lookup(self.colors, (c.casefold() for c in f.exclude_colors))
            variant_ok &= (self.variant_color == -1) | ~np.isin(self.variant_color, banned)
            variant_clause = True
        if variant_clause:
            mask = np.zeros(n, dtype=bool)
            mask[self.variant_row[variant_ok]] = True
        else:
            mask = self.is_product.copy()
        if f.category:
            code = self.categories.get(f.category.casefold(), -2)
            mask &= self.category == code
        if f.brands:
            mask &= np.isin(self.brand, _lookup(self.brands, (b.casefold() for b in f.brands)))
        if f.exclude_brands:
            mask &= ~np.isin(self.brand, _lookup(self.brands, (b.casefold() for b in f.exclude_brands)))
        for material in f.exclude_materials:
            mask &= ~self._facet("materials", [material.casefold()])
        for diet in f.dietary:
            mask &= self._facet("dietary", [diet.casefold()])
        for allergen in f.exclude_allergens:
            mask &= (~self.edible | self._facet("free_from", [allergen.casefold()])) & ~self._facet("allergens", [allergen.casefold()])
        return mask & self.is_product


def noise_probes(count: int = 32, seed: int = 20240611) -> list[str]:
    """Random letter strings ("qhy prhlhv"): queries that mean nothing, in no language.

    Their mean query vector is the embedder's *noise direction*; how much closer a
    query is to the catalog than to it tells a real match from a query the model
    cannot place (see :func:`rank_dense`).
    """
    import random
    import string

    rng = random.Random(seed)  # noqa: S311 - a fixed, reproducible probe set

    def word() -> str:
        return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 7)))

    return [" ".join(word() for _ in range(rng.randint(1, 3))) for _ in range(count)]


def noise_direction(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The normalised mean of the probes' query vectors."""
    mean = np.asarray(vectors, dtype=np.float32).mean(axis=0)
    norm = float(np.linalg.norm(mean)) or 1.0
    direction: npt.NDArray[np.float32] = (mean / norm).astype(np.float32)
    return direction


def rank_dense(
    similarities: npt.NDArray[np.float32],
    mean: float,
    spread: float,
    lexical: Floats,
    bonus: Floats,
    config: RankingConfig,
    k: int,
    noise: float = float("-inf"),
) -> list[tuple[int, float]]:
    """The ``k`` best candidates as ``(position, fused score)``, best first; [] when none is relevant.

    ``similarities`` are the query's cosine similarities to the candidates (the
    documents the filters allow), ``mean`` / ``spread`` those of the query to the
    whole catalog, ``lexical`` each candidate's BM25 score (0: no match), ``bonus``
    an addition to its fused score and ``noise`` the query's similarity to the
    noise direction (:func:`noise_direction`). Nothing is returned when the best
    candidate is below ``config.dense_floor``, nor when no candidate matches
    lexically and the best one is less than ``config.noise_margin`` above ``noise``
    (the query is closer to meaningless strings than to the catalog); candidates below
    ``mean + config.min_z · spread`` are dropped; the rest are ranked by
    ``w · dense + (1 − w) · bm25`` with dense scaled to [0, 1] between that cut-off
    and the best candidate and BM25 divided by the best candidate's.
    """
    if k <= 0 or similarities.size == 0:
        return []
    best = float(similarities.max())
    if best < config.dense_floor:
        return []
    if best - noise < config.noise_margin and not (config.mode != "dense" and lexical.size and float(lexical.max()) > 0):
        return []
    cutoff = min(mean + config.min_z * (spread or 1.0), best)
    keep = np.flatnonzero(similarities >= cutoff)
    dense = (similarities[keep].astype(np.float64) - cutoff) / max(best - cutoff, 1e-6)
    if config.mode == "dense":
        fused = dense
    else:
        lexical_kept = lexical[keep]
        top_lexical = float(lexical_kept.max()) if lexical_kept.size else 0.0
        lexical_norm = lexical_kept / top_lexical if top_lexical > 0 else np.zeros_like(lexical_kept)
        fused = config.dense_weight * dense + (1.0 - config.dense_weight) * lexical_norm
    fused = fused + bonus[keep]
    top = np.argpartition(-fused, k - 1)[:k] if keep.size > k else np.arange(keep.size)
    top = top[np.argsort(-fused[top], kind="stable")]
    return [(int(keep[i]), float(fused[i])) for i in top]
