"""The embedded index: SQLite FTS5 (BM25) fused with dense vectors, filters in SQL.

Layout of the index file:

* ``products`` / ``variants`` / ``facets`` hold the structured data that filters
  run on (price, stock, size, colour, category, brand, materials, allergens…);
* ``docs_fts`` is an FTS5 table over each product's and passage's search text;
* ``vectors`` holds one float32 vector per document, loaded into one matrix in
  memory at open so a dense query is a single matrix-vector product.

A query ranks candidates with BM25 and with cosine similarity, fuses the two
rankings with reciprocal-rank fusion, then keeps only what the SQL filters allow.
Dense hits below a similarity floor are dropped, so a query about something the
store does not sell comes back empty instead of with the least-bad product.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sqlite3
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import aiosqlite
import numpy as np
import numpy.typing as npt

from kb.embedder import Embedder
from kb.index import ALL_KINDS, BaseIndex, UpsertStats
from kb.models import Hit, HitKind, Passage, Product, SearchFilters, Variant

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS products (
    id         TEXT PRIMARY KEY,
    source     TEXT NOT NULL,
    hash       TEXT NOT NULL,
    data       TEXT NOT NULL,
    category   TEXT NOT NULL,
    brand      TEXT NOT NULL,
    min_price  REAL NOT NULL,
    in_stock   INTEGER NOT NULL,
    edible     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS products_price ON products(min_price);
CREATE INDEX IF NOT EXISTS products_source ON products(source);
CREATE TABLE IF NOT EXISTS variants (
    sku         TEXT PRIMARY KEY,
    product_id  TEXT NOT NULL REFERENCES products(id) ON DELETE CASCADE,
    price       REAL NOT NULL,
    stock       INTEGER,
    size        TEXT,
    color       TEXT
);
CREATE INDEX IF NOT EXISTS variants_product ON variants(product_id);
CREATE TABLE IF NOT EXISTS facets (
    product_id  TEXT NOT NULL REFERENCES products(id) ON DELETE CASCADE,
    facet       TEXT NOT NULL,
    value       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS facets_lookup ON facets(facet, value, product_id);
CREATE INDEX IF NOT EXISTS facets_product ON facets(product_id);
CREATE TABLE IF NOT EXISTS passages (
    id      TEXT PRIMARY KEY,
    source  TEXT NOT NULL,
    hash    TEXT NOT NULL,
    data    TEXT NOT NULL,
    lang    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS passages_source ON passages(source);
CREATE VIRTUAL TABLE IF NOT EXISTS docs_fts USING fts5(
    doc_key UNINDEXED, text, tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TABLE IF NOT EXISTS vectors (doc_key TEXT PRIMARY KEY, vec BLOB NOT NULL);
"""

# Facets copied from product attributes (lists of lowercase words) into the facets table.
FACET_ATTRIBUTES = ("materials", "colors", "allergens", "free_from", "dietary", "recipients", "occasions")
FOOD_CATEGORY = re.compile(r"snack|food|pantry|grocer|coffee|tea|chocolate|beverage|drink|sweet|bakery", re.I)
# Dietary labels that guarantee an allergen is absent.
DIETARY_FREE_FROM = {
    "vegan": ("milk", "eggs", "fish", "shellfish"),
    "gluten-free": ("gluten",),
    "lactose-free": ("milk",),
    "dairy-free": ("milk",),
    "nut-free": ("nuts", "peanuts"),
}

SearchMode = Literal["hybrid", "bm25", "dense"]


@dataclass(frozen=True, slots=True)
class RankingConfig:
    mode: SearchMode = "hybrid"

    @staticmethod
    def for_mode(config: RankingConfig, mode: SearchMode) -> RankingConfig:
        return replace(config, mode=mode)


RRF_K = 60
DENSE_FLOOR = 0.80  # cosine similarity below which a dense-only hit is not relevant (e5 scale)
CANDIDATES = 100

_WORD = re.compile(r"\w+", re.UNICODE)
STOPWORDS = frozenset(
    """a an and any are as at be but by can do does for from have i in is it me my of on or please show
    some that the this to what which with you your yours want need looking find get el la los las un una
    unos unas y o de del en para por con que qué tienen tiene hay le les des du et ou pour avec est vous
    avez je cherche der die das ein eine und oder für mit ist haben sie ich suche o a os as um uma e ou
    para com tem têm vocês você eu procuro""".split()
)


def _normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def fts_query(text: str) -> str | None:
    """An FTS5 OR-query of the meaningful words of ``text``, with light stemming."""
    terms: list[str] = []
    for word in _WORD.findall(_normalize(text)):
        if word in STOPWORDS or len(word) < 2 or word.isdigit():
            continue
        stem = word
        if len(stem) > 4 and stem.endswith("es"):
            stem = stem[:-2]
        elif len(stem) > 3 and stem.endswith("s"):
            stem = stem[:-1]
        term = f'"{stem}"*' if len(stem) >= 3 else f'"{stem}"'
        if term not in terms:
            terms.append(term)
    return " OR ".join(terms) if terms else None


def _product_to_json(product: Product) -> str:
    return json.dumps(asdict(product), default=str, ensure_ascii=False)


def _product_from_json(data: str) -> Product:
    raw: dict[str, Any] = json.loads(data)
    raw["variants"] = tuple(
        Variant(sku=v["sku"], price=Decimal(v["price"]), stock=v["stock"], options=v.get("options") or {})
        for v in raw["variants"]
    )
    raw["tags"] = tuple(raw.get("tags") or ())
    return Product(**raw)


def _passage_from_json(data: str) -> Passage:
    raw: dict[str, Any] = json.loads(data)
    raw["heading_path"] = tuple(raw.get("heading_path") or ())
    return Passage(**raw)


def is_edible(product: Product) -> bool:
    """Whether allergen filters apply to a product (food, by data or category)."""
    attrs = product.attributes
    if any(attrs.get(key) for key in ("allergens", "free_from", "dietary")):
        return True
    return bool(FOOD_CATEGORY.search(product.category))


def _variant_option(variant: Variant, *names: str) -> str | None:
    for key, value in variant.options.items():
        if key.lower() in names:
            return str(value).lower()
    return None


class SQLiteIndex(BaseIndex):
    """The default index: one SQLite file plus an in-memory vector matrix."""

    def __init__(self, path: Path, embedder: Embedder | None, *, ranking: RankingConfig | None = None) -> None:
        self.ranking = ranking or RankingConfig()
        self.path = path
        self.embedder = embedder
        self._db: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._keys: list[str] = []
        self._matrix: npt.NDArray[np.float32] = np.zeros((0, 1), dtype=np.float32)
        self._passage_langs: dict[str, str] = {}

    def __repr__(self) -> str:
        embedder = self.embedder.name if self.embedder else None
        return f"SQLiteIndex(path={str(self.path)!r}, embedder={embedder!r})"

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("the index is not open")
        return self._db

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self.path, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA busy_timeout=5000")
        await self._db.execute("PRAGMA foreign_keys=ON")
        await self._db.executescript(SCHEMA)
        embedder_name = self.embedder.name if self.embedder else ""
        async with self._db.execute("SELECT value FROM meta WHERE key = 'embedder'") as cur:
            row = await cur.fetchone()
        if row is not None and row["value"] != embedder_name:
            # vectors from another model are meaningless: re-embed everything on the next upsert
            log.info("embedder changed (%s -> %s): clearing stored vectors and hashes", row["value"], embedder_name)
            await self._db.execute("DELETE FROM vectors")
            await self._db.execute("UPDATE products SET hash = ''")
            await self._db.execute("UPDATE passages SET hash = ''")
        await self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('embedder', ?)", (embedder_name,))
        await self._load_vectors()

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def _load_vectors(self) -> None:
        async with self.db.execute("SELECT id, lang FROM passages") as cur:
            self._passage_langs = {row["id"]: row["lang"] for row in await cur.fetchall()}
        if self.embedder is None:
            self._keys, self._matrix = [], np.zeros((0, 1), dtype=np.float32)
            return
        async with self.db.execute("SELECT doc_key, vec FROM vectors ORDER BY doc_key") as cur:
            rows = await cur.fetchall()
        self._keys = [r["doc_key"] for r in rows]
        if rows:
            self._matrix = np.vstack([np.frombuffer(r["vec"], dtype=np.float32) for r in rows])
        else:
            self._matrix = np.zeros((0, self.embedder.dim), dtype=np.float32)

    # -- writing --------------------------------------------------------------

    async def _existing_hashes(self, table: str, ids: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            async with self.db.execute(f"SELECT id, hash FROM {table} WHERE id IN ({marks})", chunk) as cur:  # noqa: S608
                for row in await cur.fetchall():
                    found[row["id"]] = row["hash"]
        return found

    async def _embed(self, texts: list[str]) -> npt.NDArray[np.float32] | None:
        if self.embedder is None or not texts:
            return None
        return await asyncio.to_thread(self.embedder.embed_passages, texts)

    async def upsert_products(self, products: Iterable[Product], *, source: str | None = None) -> UpsertStats:
        items = list(products)
        existing = await self._existing_hashes("products", [p.id for p in items])
        changed = [p for p in items if existing.get(p.id) != p.content_hash()]
        vectors = await self._embed([p.search_text() for p in changed])
        async with self._write_lock:
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                for i, product in enumerate(changed):
                    await self._write_product(product, None if vectors is None else vectors[i])
                removed = await self._remove_missing("products", "p:", source, {p.id for p in items})
                await self.db.execute("COMMIT")
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
        if changed or removed:
            await self._load_vectors()
        added = sum(1 for p in changed if p.id not in existing)
        return UpsertStats(added=added, updated=len(changed) - added, unchanged=len(items) - len(changed), removed=removed)

    async def _write_product(self, product: Product, vector: npt.NDArray[np.float32] | None) -> None:
        db = self.db
        key = "p:" + product.id
        await db.execute("DELETE FROM products WHERE id = ?", (product.id,))
        await db.execute("DELETE FROM docs_fts WHERE doc_key = ?", (key,))
        await db.execute(
            "INSERT INTO products (id, source, hash, data, category, brand, min_price, in_stock, edible) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                product.id,
                product.source,
                product.content_hash(),
                _product_to_json(product),
                product.category.casefold(),
                product.brand.casefold(),
                float(product.min_price),
                int(product.in_stock),
                int(is_edible(product)),
            ),
        )
        await db.executemany(
            "INSERT OR REPLACE INTO variants (sku, product_id, price, stock, size, color) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (v.sku, product.id, float(v.price), v.stock, _variant_option(v, "size", "taille", "talla", "größe"),
                 _variant_option(v, "color", "colour", "couleur", "farbe"))
                for v in product.variants
            ],
        )
        facet_rows: list[tuple[str, str, str]] = []
        for facet in FACET_ATTRIBUTES:
            values = product.attributes.get(facet) or []
            if isinstance(values, str):
                values = [values]
            facet_rows.extend((product.id, facet, str(v).casefold()) for v in values)
        for diet in product.attributes.get("dietary") or []:
            facet_rows.extend((product.id, "free_from", a) for a in DIETARY_FREE_FROM.get(str(diet).casefold(), ()))
        facet_rows.extend((product.id, "colors", c) for c in product.option_values("color"))
        await db.executemany("INSERT INTO facets (product_id, facet, value) VALUES (?, ?, ?)", sorted(set(facet_rows)))
        await db.execute("INSERT INTO docs_fts (doc_key, text) VALUES (?, ?)", (key, product.search_text()))
        if vector is not None:
            await db.execute("INSERT OR REPLACE INTO vectors (doc_key, vec) VALUES (?, ?)", (key, vector.astype(np.float32).tobytes()))

    async def upsert_passages(self, passages: Iterable[Passage], *, source: str | None = None) -> UpsertStats:
        items = list(passages)
        existing = await self._existing_hashes("passages", [p.id for p in items])
        changed = [p for p in items if existing.get(p.id) != p.content_hash()]
        vectors = await self._embed([p.search_text() for p in changed])
        async with self._write_lock:
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                for i, passage in enumerate(changed):
                    key = "s:" + passage.id
                    await self.db.execute("DELETE FROM docs_fts WHERE doc_key = ?", (key,))
                    await self.db.execute(
                        "INSERT OR REPLACE INTO passages (id, source, hash, data, lang) VALUES (?, ?, ?, ?, ?)",
                        (
                            passage.id,
                            passage.source,
                            passage.content_hash(),
                            json.dumps(asdict(passage), ensure_ascii=False),
                            passage.lang.replace("-", "_"),
                        ),
                    )
                    await self.db.execute("INSERT INTO docs_fts (doc_key, text) VALUES (?, ?)", (key, passage.search_text()))
                    if vectors is not None:
                        await self.db.execute(
                            "INSERT OR REPLACE INTO vectors (doc_key, vec) VALUES (?, ?)", (key, vectors[i].tobytes())
                        )
                removed = await self._remove_missing("passages", "s:", source, {p.id for p in items})
                await self.db.execute("COMMIT")
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
        if changed or removed:
            await self._load_vectors()
        added = sum(1 for p in changed if p.id not in existing)
        return UpsertStats(added=added, updated=len(changed) - added, unchanged=len(items) - len(changed), removed=removed)

    async def _remove_missing(self, table: str, prefix: str, source: str | None, keep: set[str]) -> int:
        if source is None:
            return 0
        async with self.db.execute(f"SELECT id FROM {table} WHERE source = ?", (source,)) as cur:  # noqa: S608
            stale = [row["id"] for row in await cur.fetchall() if row["id"] not in keep]
        for item_id in stale:
            await self.db.execute(f"DELETE FROM {table} WHERE id = ?", (item_id,))  # noqa: S608
            await self.db.execute("DELETE FROM docs_fts WHERE doc_key = ?", (prefix + item_id,))
            await self.db.execute("DELETE FROM vectors WHERE doc_key = ?", (prefix + item_id,))
        return len(stale)

    # -- reading --------------------------------------------------------------

    async def get_product(self, product_id: str) -> Product | None:
        async with self.db.execute("SELECT data FROM products WHERE id = ?", (product_id,)) as cur:
            row = await cur.fetchone()
        return _product_from_json(row["data"]) if row else None

    async def product_count(self) -> int:
        async with self.db.execute("SELECT COUNT(*) FROM products") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def brands(self) -> tuple[str, ...]:
        async with self.db.execute("SELECT DISTINCT json_extract(data, '$.brand') AS brand FROM products") as cur:
            return tuple(sorted(row["brand"] for row in await cur.fetchall() if row["brand"]))

    async def search(
        self,
        query: str,
        filters: SearchFilters | None = None,
        k: int = 10,
        kinds: Sequence[HitKind] = ALL_KINDS,
    ) -> list[Hit]:
        filters = filters or SearchFilters()
        prefixes = tuple({"product": "p:", "passage": "s:"}[kind] for kind in kinds)
        allowed = await self._allowed_products(filters) if "product" in kinds and not filters.is_empty() else None

        lexical = await self._bm25(query, prefixes)
        dense = await self._dense(query, prefixes)
        fused: dict[str, float] = {}
        for rank, key in enumerate(lexical):
            fused[key] = fused.get(key, 0.0) + 1.0 / (RRF_K + rank + 1)
        for rank, (key, _similarity) in enumerate(dense):
            fused[key] = fused.get(key, 0.0) + 1.0 / (RRF_K + rank + 1)
        if self.embedder is not None:
            # dense is the judge of relevance: a lexical match on a stray word is not enough
            relevant = {key for key, similarity in dense if similarity >= DENSE_FLOOR}
            fused = {key: score for key, score in fused.items() if key in relevant}

        if filters.lang:
            # prefer the shopper's language when a page exists in it: one top-rank bonus
            bonus = 1.0 / (RRF_K + 1)
            for key in list(fused):
                if key.startswith("s:") and self._passage_langs.get(key[2:]) == filters.lang.replace("-", "_"):
                    fused[key] += bonus

        hits: list[Hit] = []
        for key, score in sorted(fused.items(), key=lambda item: item[1], reverse=True):
            if key.startswith("p:"):
                product_id = key[2:]
                if allowed is not None and product_id not in allowed:
                    continue
                product = await self.get_product(product_id)
                if product is not None:
                    hits.append(Hit(kind="product", score=score, product=product))
            else:
                passage = await self._get_passage(key[2:])
                if passage is not None:
                    hits.append(Hit(kind="passage", score=score, passage=passage))
            if len(hits) >= k:
                break
        return hits

    async def _get_passage(self, passage_id: str) -> Passage | None:
        async with self.db.execute("SELECT data FROM passages WHERE id = ?", (passage_id,)) as cur:
            row = await cur.fetchone()
        return _passage_from_json(row["data"]) if row else None

    async def _bm25(self, query: str, prefixes: tuple[str, ...]) -> list[str]:
        match = fts_query(query)
        if match is None:
            return []
        try:
            async with self.db.execute(
                "SELECT doc_key FROM docs_fts WHERE docs_fts MATCH ? ORDER BY bm25(docs_fts) LIMIT ?",
                (match, CANDIDATES * 3),
            ) as cur:
                rows = await cur.fetchall()
        except sqlite3.OperationalError as exc:  # a query FTS5 cannot parse: no lexical hits
            log.debug("fts query failed: %s", exc)
            return []
        return [r["doc_key"] for r in rows if r["doc_key"].startswith(prefixes)][:CANDIDATES]

    async def _dense(self, query: str, prefixes: tuple[str, ...]) -> list[tuple[str, float]]:
        if self.embedder is None or not self._keys:
            return []
        vector = await asyncio.to_thread(self.embedder.embed_query, query)
        similarities = self._matrix @ vector
        order = np.argsort(-similarities)
        result: list[tuple[str, float]] = []
        for i in order:
            key = self._keys[int(i)]
            if key.startswith(prefixes):
                result.append((key, float(similarities[int(i)])))
                if len(result) >= CANDIDATES:
                    break
        return result

    async def _allowed_products(self, f: SearchFilters) -> set[str]:
        """Product ids that satisfy every structured filter, computed in SQL."""
        clauses: list[str] = []
        params: list[Any] = []
        variant_clauses: list[str] = []
        if f.max_price is not None:
            variant_clauses.append("v.price <= ?")
            params.append(float(f.max_price))
        if f.min_price is not None:
            variant_clauses.append("v.price >= ?")
            params.append(float(f.min_price))
        if f.in_stock_only:
            variant_clauses.append("(v.stock IS NULL OR v.stock > 0)")
        if f.sizes:
            variant_clauses.append(f"v.size IN ({','.join('?' * len(f.sizes))})")
            params.extend(s.casefold() for s in f.sizes)
        if f.colors:
            marks = ",".join("?" * len(f.colors))
            variant_clauses.append(
                f"(v.color IN ({marks}) OR (v.color IS NULL AND EXISTS (SELECT 1 FROM facets x WHERE x.product_id = p.id "  # noqa: S608 - placeholders only
                f"AND x.facet = 'colors' AND x.value IN ({marks}))))"
            )
            params.extend(c.casefold() for c in f.colors)
            params.extend(c.casefold() for c in f.colors)
        if f.exclude_colors:
            variant_clauses.append(f"(v.color IS NULL OR v.color NOT IN ({','.join('?' * len(f.exclude_colors))}))")
            params.extend(c.casefold() for c in f.exclude_colors)
        if variant_clauses:
            clauses.append("EXISTS (SELECT 1 FROM variants v WHERE v.product_id = p.id AND " + " AND ".join(variant_clauses) + ")")  # noqa: S608
        if f.category:
            clauses.append("p.category = ?")
            params.append(f.category.casefold())
        if f.brands:
            clauses.append(f"p.brand IN ({','.join('?' * len(f.brands))})")
            params.extend(b.casefold() for b in f.brands)
        if f.exclude_brands:
            clauses.append(f"p.brand NOT IN ({','.join('?' * len(f.exclude_brands))})")
            params.extend(b.casefold() for b in f.exclude_brands)
        for material in f.exclude_materials:
            clauses.append("NOT EXISTS (SELECT 1 FROM facets x WHERE x.product_id = p.id AND x.facet = 'materials' AND x.value = ?)")
            params.append(material.casefold())
        for diet in f.dietary:
            clauses.append("EXISTS (SELECT 1 FROM facets x WHERE x.product_id = p.id AND x.facet = 'dietary' AND x.value = ?)")
            params.append(diet.casefold())
        for allergen in f.exclude_allergens:
            # hard rule: food is kept only when its label says it is free of the allergen
            clauses.append(
                "(p.edible = 0 OR EXISTS (SELECT 1 FROM facets x WHERE x.product_id = p.id AND x.facet = 'free_from' AND x.value = ?))"
            )
            params.append(allergen.casefold())
        where = " AND ".join(clauses) if clauses else "1"
        async with self.db.execute(f"SELECT p.id FROM products p WHERE {where}", params) as cur:  # noqa: S608 - placeholders only
            return {row["id"] for row in await cur.fetchall()}
