"""The embedded index: SQLite FTS5 (BM25) fused with dense vectors, filters in numpy (SQL as reference).

Layout of the index file:

* ``products`` / ``variants`` / ``facets`` hold the structured data that filters
  run on (price, stock, size, colour, category, brand, materials, allergens…);
* ``products_fts`` / ``passages_fts`` are FTS5 tables (Porter stemming, accents
  folded) over each product's and passage's search text, keyed by the row's rowid;
* ``vectors`` holds one float32 vector per document with the hash of the text it
  was computed from (a price or stock change does not re-embed). After writes the
  next search loads the vectors into one matrix and the filter columns into numpy
  arrays (:class:`kb.memory.IndexMemory`).

How a query is ranked (:class:`RankingConfig` holds the few parameters):

0. a product search for a kind of thing no product is (:meth:`BaseIndex.missing_kind`:
   "yoga mat" when the only *Yoga* is a laptop) returns no product;
1. the structured filters select the products that may be returned: a boolean
   mask over the matrix rows (:meth:`kb.memory.IndexMemory.eligible`), with the
   same meaning as the SQL of :meth:`SQLiteIndex.matching_products`;
2. dense: the cosine similarity of the query to the allowed documents. The query's
   own score distribution over the catalog (mean μ, standard deviation σ, from an
   evenly spaced sample of rows) decides what counts. Nothing is returned when the
   best allowed document is below an absolute floor
   (:attr:`RankingConfig.dense_floor`, calibrated for multilingual-e5-small), nor
   when no allowed document shares a word with the query and the best one is
   barely closer to the query than random letter strings are
   (:attr:`RankingConfig.noise_margin`: "asdf qwer"). Documents less than
   :attr:`RankingConfig.min_z` standard deviations above μ are dropped as unrelated;
3. lexical: BM25 over the same documents, normalised by the best BM25 score;
4. relative-score fusion: ``w · dense + (1 − w) · bm25`` with the dense score
   scaled to [0, 1] between the cut-off and the best document; passages in the
   shopper's language get a small bonus.

Without an embedder the index ranks by BM25 alone (degraded: no cross-lingual
matching and no "we don't sell that").
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import sqlite3
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, TypeVar

import aiosqlite
import numpy as np
import numpy.typing as npt

from kb.assortment import Assortment
from kb.embedder import Embedder
from kb.index import ALL_KINDS, BaseIndex, UpsertStats
from kb.memory import IndexMemory, ProductRow, VariantRow, noise_direction, noise_probes, rank_dense
from kb.models import Hit, HitKind, Passage, Product, ProductName, SearchFilters, Variant

log = logging.getLogger(__name__)

FTS_VERSION = "2"  # bump when the full-text tables change: they are rebuilt at open
FACETS_VERSION = "2"  # bump when facet_rows() changes: the facets table is rebuilt at open (2: material words)
FTS_TOKENIZER = "porter unicode61 remove_diacritics 2"

SCHEMA = f"""
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
CREATE VIRTUAL TABLE IF NOT EXISTS products_fts USING fts5(text, tokenize = '{FTS_TOKENIZER}');
CREATE VIRTUAL TABLE IF NOT EXISTS passages_fts USING fts5(text, tokenize = '{FTS_TOKENIZER}');
CREATE TABLE IF NOT EXISTS vectors (doc_key TEXT PRIMARY KEY, vec BLOB NOT NULL, text_hash TEXT NOT NULL DEFAULT '');
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
# Colour words a title may carry, with the canonical name the constraint extractor uses.
TITLE_COLORS = {
    "white": "white", "ivory": "white", "black": "black", "grey": "gray", "gray": "gray", "charcoal": "gray",
    "red": "red", "burgundy": "red", "maroon": "red", "crimson": "red", "scarlet": "red", "blue": "blue",
    "turquoise": "blue", "teal": "blue", "navy": "navy", "green": "green", "emerald": "green", "olive": "green",
    "yellow": "yellow", "mustard": "yellow", "orange": "orange", "purple": "purple", "violet": "purple",
    "lilac": "purple", "pink": "pink", "fuchsia": "pink", "magenta": "pink", "brown": "brown", "tan": "brown",
    "beige": "beige", "khaki": "beige", "gold": "gold", "golden": "gold", "silver": "silver",
}
COLOR_ALIASES = {"grey": "gray", "gray": "grey", "golden": "gold"}

SearchMode = Literal["hybrid", "bm25", "dense"]
_Document = TypeVar("_Document", Product, Passage)


@dataclass(frozen=True, slots=True)
class RankingConfig:
    """The parameters of ranking (see the module docstring); the defaults are measured.

    ``mode`` chooses the signals: ``hybrid`` (default), ``bm25`` (lexical only, also
    what an index without embedder does) or ``dense``. ``dense_weight`` is ``w`` in
    the fusion; ``dense_floor`` the cosine the best allowed document must reach for
    the query to match anything (multilingual-e5-small's scale); ``noise_margin``
    how much closer than the noise direction the best document must be when no
    document matches lexically (:func:`kb.memory.rank_dense`); ``min_z`` the
    number of standard deviations above the query's mean similarity a document must
    be; ``passage_language_bonus`` what a passage in the shopper's language adds to
    its fused score; ``lexical_candidates`` how many BM25 matches are read;
    ``assortment_check`` whether a request for a kind of product the store does
    not carry returns nothing (:mod:`kb.assortment`; off only to measure it).
    See docs/benchmarks.md for the measurements behind the defaults.
    """

    mode: SearchMode = "hybrid"
    dense_weight: float = 0.8
    dense_floor: float = 0.80
    noise_margin: float = -0.085
    min_z: float = 1.0
    passage_language_bonus: float = 0.15
    lexical_candidates: int = 300
    assortment_check: bool = True

    @staticmethod
    def for_mode(config: RankingConfig, mode: SearchMode) -> RankingConfig:
        """``config`` with another mode."""
        return replace(config, mode=mode)


_WORD = re.compile(r"\w+", re.UNICODE)
# Function words of the five supported languages: never sent to BM25 (English always applies).
_STOPWORDS_BY_LANGUAGE = {
    "en": """a an and any are as at be but by can do does for from have i in is it its me my of on or please show
        some that the this to what which with you your yours want need looking find get got something anything
        stuff thing things into so very really just""",
    "es": """el la los las un una unos unas y o de del en para por con que qué tienen tiene tienes hay algo algún
        alguna mi mis su sus me lo le les se es son muy más menos sin al pero como este esta estos estas busco
        quiero necesito""",
    "fr": """le la les l un une des du de d et ou pour avec est vous avez je cherche ma mon mes ta ton tes sa son
        ses qui que au aux en un une ce cet cette ces il elle nous sur dans par pas plus moins très quelque chose""",
    "de": """der die das den dem des ein eine einen einem einer und oder für mit ist haben sie ich suche von zu
        zum zur im in auf an am mein meine meinen ihr habt gibt es etwas was wie nicht sehr mehr weniger ohne""",
    "pt": """o a os as um uma uns umas e ou de do da dos das para pra pro com que em no na nos nas tem têm
        vocês você eu procuro meu minha meus minhas seu sua algo alguma algum mais menos sem por""",
}
STOPWORDS_BY_LANGUAGE = {lang: frozenset(words.split()) for lang, words in _STOPWORDS_BY_LANGUAGE.items()}
STOPWORDS = frozenset().union(*STOPWORDS_BY_LANGUAGE.values())


def _normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def stopwords_for(lang: str | None) -> frozenset[str]:
    """English function words plus those of ``lang`` (a locale such as ``pt_BR`` works); all when unknown."""
    code = (lang or "").replace("-", "_").split("_")[0].casefold()
    if code in STOPWORDS_BY_LANGUAGE:
        return STOPWORDS_BY_LANGUAGE["en"] | STOPWORDS_BY_LANGUAGE[code]
    return STOPWORDS


def fts_query(text: str, lang: str | None = None) -> str | None:
    """An FTS5 OR-query of the meaningful words of ``text`` (the tokenizer stems them)."""
    stopwords = stopwords_for(lang)
    terms: list[str] = []
    for word in _WORD.findall(_normalize(text)):
        if word in stopwords or len(word) < 2 or word.isdigit():
            continue
        term = '"' + word.replace('"', "") + '"'
        if term not in terms:
            terms.append(term)
    return " OR ".join(terms) if terms else None


def _stack(rows: Iterable[sqlite3.Row], dim: int) -> tuple[tuple[str, ...], npt.NDArray[np.float32]]:
    """Document keys and the vector matrix from ``(doc_key, vec)`` rows."""
    listed = list(rows)
    keys = tuple(str(row[0]) for row in listed)
    matrix = np.frombuffer(b"".join(row[1] for row in listed), dtype=np.float32).reshape(len(listed), dim).copy()
    return keys, matrix


def _changed(items: Sequence[_Document], existing: dict[str, str]) -> tuple[list[_Document], list[str]]:
    """The documents whose content hash differs from the stored one, with their search texts."""
    changed = [item for item in items if existing.get(item.id) != item.content_hash()]
    return changed, [item.search_text() for item in changed]


def _text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


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


def facet_rows(product: Product) -> list[tuple[str, str, str]]:
    """The rows of the facets table for one product (what the structured filters read)."""
    rows: list[tuple[str, str, str]] = []
    for facet in FACET_ATTRIBUTES:
        values = product.attributes.get(facet) or []
        if isinstance(values, str):
            values = [values]
        rows.extend((product.id, facet, str(v).casefold()) for v in values)
    for diet in product.attributes.get("dietary") or []:
        rows.extend((product.id, "free_from", a) for a in DIETARY_FREE_FROM.get(str(diet).casefold(), ()))
    rows.extend((product.id, "materials", w) for w in material_words(product.attributes.get("materials")))
    rows.extend((product.id, "colors", c) for c in product.option_values("color"))
    if not any(facet == "colors" for _, facet, _ in rows):
        rows.extend((product.id, "colors", c) for c in title_colors(product))
    rows.extend((product.id, "colors", COLOR_ALIASES[v]) for _, f, v in list(rows) if f == "colors" and v in COLOR_ALIASES)
    return sorted(set(rows))


def material_words(materials: object) -> list[str]:
    """Each word of multi-word materials ("merino wool" -> "merino", "wool"), so "no wool" excludes merino wool too."""
    values = [materials] if isinstance(materials, str) else materials if isinstance(materials, list | tuple) else []
    return [word for value in values for word in _WORD.findall(str(value).casefold()) if word != str(value).casefold()]


def title_colors(product: Product) -> list[str]:
    """Colours named in a product's title, for catalogs that have no colour data.

    "Red Lipstick" is red and "Green Oval Earring" green: the title is the
    catalog's own statement, so a colour filter can keep them.
    """
    words = _WORD.findall(_normalize(product.title))
    return list(dict.fromkeys(TITLE_COLORS[w] for w in words if w in TITLE_COLORS))


def _variant_option(variant: Variant, *names: str) -> str | None:
    for key, value in variant.options.items():
        if key.lower() in names:
            return str(value).lower()
    return None


# noise direction per embedder model name (the same for every index using that model)
_NOISE_VECTORS: dict[str, npt.NDArray[np.float32]] = {}


# score every row then select when more than 1/GATHER_FRACTION of them are allowed
GATHER_FRACTION = 8


@dataclass(frozen=True, slots=True)
class _Dense:
    """A query's similarities to the allowed rows, with its catalog statistics and noise similarity."""

    rows: npt.NDArray[np.int64]
    similarities: npt.NDArray[np.float32]
    mean: float
    spread: float
    noise: float


@dataclass(frozen=True, slots=True)
class _Ranked:
    key: str
    score: float


class SQLiteIndex(BaseIndex):
    """The default index: one SQLite file plus an in-memory vector matrix.

    ``ranking`` tunes the ranking (:class:`RankingConfig`); without an ``embedder``
    the index is BM25-only whatever the configured mode.
    """

    def __init__(self, path: Path, embedder: Embedder | None, *, ranking: RankingConfig | None = None) -> None:
        self.path = path
        self.embedder = embedder
        self.ranking = ranking or RankingConfig()
        self._db: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._memory_lock = asyncio.Lock()
        self._memory = IndexMemory.empty(embedder.dim if embedder else 1)
        self._memory_stale = True
        self._vectors_changed = True  # the stored vectors differ from the in-memory matrix
        self._txn_vectors = False  # the open write transaction touched vectors
        self._passage_langs: dict[str, str] = {}
        self._assortment = Assortment()

    def __repr__(self) -> str:
        embedder = self.embedder.name if self.embedder else None
        return f"SQLiteIndex(path={str(self.path)!r}, embedder={embedder!r}, mode={self.ranking.mode!r})"

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
        async with self._db.execute("PRAGMA table_info(vectors)") as cur:
            if "text_hash" not in {row["name"] for row in await cur.fetchall()}:  # files written before the column
                await self._db.execute("ALTER TABLE vectors ADD COLUMN text_hash TEXT NOT NULL DEFAULT ''")
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
        await self._migrate_fts()
        await self._migrate_facets()
        self._mark_stale()

    async def _migrate_fts(self) -> None:
        """Rebuild the full-text tables from the stored documents when their layout changed."""
        async with self.db.execute("SELECT value FROM meta WHERE key = 'fts_version'") as cur:
            row = await cur.fetchone()
        if row is not None and row["value"] == FTS_VERSION:
            return
        await self.db.execute("BEGIN IMMEDIATE")
        try:
            await self.db.execute("DROP TABLE IF EXISTS docs_fts")  # version 1: one table for both kinds
            await self.db.execute("DELETE FROM products_fts")
            await self.db.execute("DELETE FROM passages_fts")
            async with self.db.execute("SELECT rowid, data FROM products") as cur:
                product_rows = [(r["rowid"], _product_from_json(r["data"]).search_text()) for r in await cur.fetchall()]
            async with self.db.execute("SELECT rowid, data FROM passages") as cur:
                passage_rows = [(r["rowid"], _passage_from_json(r["data"]).search_text()) for r in await cur.fetchall()]
            await self.db.executemany("INSERT INTO products_fts (rowid, text) VALUES (?, ?)", product_rows)
            await self.db.executemany("INSERT INTO passages_fts (rowid, text) VALUES (?, ?)", passage_rows)
            await self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('fts_version', ?)", (FTS_VERSION,))
            await self.db.execute("COMMIT")
        except BaseException:
            await self.db.execute("ROLLBACK")
            raise
        if product_rows or passage_rows:
            log.info("full-text index rebuilt (%d products, %d passages)", len(product_rows), len(passage_rows))

    async def _migrate_facets(self) -> None:
        """Rebuild the facets table from the stored products when :func:`facet_rows` changed."""
        async with self.db.execute("SELECT value FROM meta WHERE key = 'facets_version'") as cur:
            row = await cur.fetchone()
        if row is not None and row["value"] == FACETS_VERSION:
            return
        await self.db.execute("BEGIN IMMEDIATE")
        try:
            async with self.db.execute("SELECT data FROM products") as cur:
                products = [_product_from_json(r["data"]) for r in await cur.fetchall()]
            await self.db.execute("DELETE FROM facets")
            await self.db.executemany(
                "INSERT INTO facets (product_id, facet, value) VALUES (?, ?, ?)", [r for p in products for r in facet_rows(p)]
            )
            await self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('facets_version', ?)", (FACETS_VERSION,))
            await self.db.execute("COMMIT")
        except BaseException:
            await self.db.execute("ROLLBACK")
            raise
        if products:
            log.info("facets rebuilt (%d products)", len(products))

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    def _mark_stale(self) -> None:
        """After a commit: the next search reloads the in-memory copy (once per burst of writes)."""
        self._memory_stale = True
        self._vectors_changed = self._vectors_changed or self._txn_vectors
        self._txn_vectors = False

    async def _current_memory(self) -> IndexMemory:
        """The in-memory vectors and filter columns, reloaded from the file after writes."""
        if not self._memory_stale:
            return self._memory
        async with self._memory_lock:
            if self._memory_stale:
                self._memory_stale = False
                try:
                    self._memory = await self._read_memory()
                except BaseException:
                    self._memory_stale = True
                    raise
        return self._memory

    async def assortment(self) -> Assortment:
        await self._current_memory()
        return self._assortment

    async def _read_memory(self) -> IndexMemory:
        async with self.db.execute("SELECT id, lang FROM passages") as cur:
            self._passage_langs = {row["id"]: row["lang"] for row in await cur.fetchall()}
        sql = "SELECT json_extract(data, '$.title'), json_extract(data, '$.category'), json_extract(data, '$.tags') FROM products"
        async with self.db.execute(sql) as cur:
            named = [(r[0] or "", r[1] or "", json.loads(r[2]) if r[2] else []) for r in await cur.fetchall()]
        self._assortment = await asyncio.to_thread(Assortment.from_products, named)
        if self.embedder is None:
            return IndexMemory.empty(1)
        db = self.db
        dim = self.embedder.dim
        keys, matrix = self._memory.keys, self._memory.vectors
        if self._vectors_changed or matrix.shape[1] != dim:
            self._vectors_changed = False
            async with db.execute("SELECT doc_key, vec FROM vectors ORDER BY doc_key") as cur:
                documents = await cur.fetchall()
            keys, matrix = await asyncio.to_thread(_stack, documents, dim)
        async with db.execute("SELECT id, category, brand, edible FROM products") as cur:
            products = await cur.fetchall()
        async with db.execute("SELECT product_id, price, stock, size, color FROM variants") as cur:
            variants = await cur.fetchall()
        async with db.execute("SELECT product_id, facet, value FROM facets") as cur:
            facets = await cur.fetchall()

        def build() -> IndexMemory:
            return IndexMemory.build(
                keys,
                matrix,
                dict(self._passage_langs),
                [ProductRow(r[0], r[1], r[2], bool(r[3])) for r in products],
                [VariantRow(r[0], r[1], r[2], r[3], r[4]) for r in variants],
                [(r[0], r[1], r[2]) for r in facets],
            )

        return await asyncio.to_thread(build)

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

    async def _vectors_to_compute(self, keys: list[str], texts: list[str]) -> list[int]:
        """Positions of the documents whose text changed since their vector was computed.

        A price or stock change alters a product's content hash but not its search
        text: its vector is kept, so inventory updates cost no embedding.
        """
        if self.embedder is None:
            return []
        stored: dict[str, str] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            async with self.db.execute(f"SELECT doc_key, text_hash FROM vectors WHERE doc_key IN ({marks})", chunk) as cur:  # noqa: S608
                stored.update((row["doc_key"], row["text_hash"]) for row in await cur.fetchall())
        return [i for i, (key, text) in enumerate(zip(keys, texts, strict=True)) if stored.get(key) != _text_hash(text)]

    async def upsert_products(self, products: Iterable[Product], *, source: str | None = None) -> UpsertStats:
        items = list(products)
        existing = await self._existing_hashes("products", [p.id for p in items])
        changed, texts = await asyncio.to_thread(_changed, items, existing)
        positions = await self._vectors_to_compute(["p:" + p.id for p in changed], texts)
        computed = await self._embed([texts[i] for i in positions])
        fresh = {} if computed is None else {i: computed[j] for j, i in enumerate(positions)}
        async with self._write_lock:
            await self.db.execute("BEGIN IMMEDIATE")
            self._txn_vectors = False
            try:
                for i, product in enumerate(changed):
                    await self._write_product(product, fresh.get(i), texts[i])
                removed = await self._remove_missing("products", source, {p.id for p in items})
                await self.db.execute("COMMIT")
            except BaseException:
                await self.db.execute("ROLLBACK")
                self._txn_vectors = False
                raise
            if changed or removed:
                self._mark_stale()
        added = sum(1 for p in changed if p.id not in existing)
        return UpsertStats(added=added, updated=len(changed) - added, unchanged=len(items) - len(changed), removed=removed)

    async def _delete_product(self, product_id: str, *, keep_vector: bool = False) -> None:
        async with self.db.execute("SELECT rowid FROM products WHERE id = ?", (product_id,)) as cur:
            row = await cur.fetchone()
        if row is not None:
            await self.db.execute("DELETE FROM products_fts WHERE rowid = ?", (row["rowid"],))
        await self.db.execute("DELETE FROM products WHERE id = ?", (product_id,))
        if not keep_vector:
            await self.db.execute("DELETE FROM vectors WHERE doc_key = ?", ("p:" + product_id,))
            self._txn_vectors = True

    async def _write_product(self, product: Product, vector: npt.NDArray[np.float32] | None, text: str) -> None:
        """Replace a product's rows; ``vector`` None keeps the stored vector (its text is unchanged)."""
        db = self.db
        await self._delete_product(product.id, keep_vector=vector is None)
        cursor = await db.execute(
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
        rowid = cursor.lastrowid
        await db.executemany(
            "INSERT OR REPLACE INTO variants (sku, product_id, price, stock, size, color) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (v.sku, product.id, float(v.price), v.stock, _variant_option(v, "size", "taille", "talla", "größe"),
                 _variant_option(v, "color", "colour", "couleur", "farbe"))
                for v in product.variants
            ],
        )
        await db.executemany("INSERT INTO facets (product_id, facet, value) VALUES (?, ?, ?)", facet_rows(product))
        await db.execute("INSERT INTO products_fts (rowid, text) VALUES (?, ?)", (rowid, text))
        if vector is not None:
            await db.execute(
                "INSERT OR REPLACE INTO vectors (doc_key, vec, text_hash) VALUES (?, ?, ?)",
                ("p:" + product.id, vector.astype(np.float32).tobytes(), _text_hash(text)),
            )
            self._txn_vectors = True

    async def _delete_passage(self, passage_id: str) -> None:
        async with self.db.execute("SELECT rowid FROM passages WHERE id = ?", (passage_id,)) as cur:
            row = await cur.fetchone()
        if row is not None:
            await self.db.execute("DELETE FROM passages_fts WHERE rowid = ?", (row["rowid"],))
        await self.db.execute("DELETE FROM passages WHERE id = ?", (passage_id,))
        await self.db.execute("DELETE FROM vectors WHERE doc_key = ?", ("s:" + passage_id,))
        self._txn_vectors = True

    async def upsert_passages(self, passages: Iterable[Passage], *, source: str | None = None) -> UpsertStats:
        items = list(passages)
        existing = await self._existing_hashes("passages", [p.id for p in items])
        changed, texts = await asyncio.to_thread(_changed, items, existing)
        vectors = await self._embed(texts)
        async with self._write_lock:
            await self.db.execute("BEGIN IMMEDIATE")
            self._txn_vectors = False
            try:
                for i, passage in enumerate(changed):
                    await self._delete_passage(passage.id)
                    cursor = await self.db.execute(
                        "INSERT INTO passages (id, source, hash, data, lang) VALUES (?, ?, ?, ?, ?)",
                        (
                            passage.id,
                            passage.source,
                            passage.content_hash(),
                            json.dumps(asdict(passage), ensure_ascii=False),
                            passage.lang.replace("-", "_"),
                        ),
                    )
                    await self.db.execute(
                        "INSERT INTO passages_fts (rowid, text) VALUES (?, ?)", (cursor.lastrowid, texts[i])
                    )
                    if vectors is not None:
                        await self.db.execute(
                            "INSERT OR REPLACE INTO vectors (doc_key, vec, text_hash) VALUES (?, ?, ?)",
                            ("s:" + passage.id, vectors[i].tobytes(), _text_hash(texts[i])),
                        )
                removed = await self._remove_missing("passages", source, {p.id for p in items})
                await self.db.execute("COMMIT")
            except BaseException:
                await self.db.execute("ROLLBACK")
                self._txn_vectors = False
                raise
            if changed or removed:
                self._mark_stale()
        added = sum(1 for p in changed if p.id not in existing)
        return UpsertStats(added=added, updated=len(changed) - added, unchanged=len(items) - len(changed), removed=removed)

    async def _remove_missing(self, table: str, source: str | None, keep: set[str]) -> int:
        if source is None:
            return 0
        async with self.db.execute(f"SELECT id FROM {table} WHERE source = ?", (source,)) as cur:  # noqa: S608
            stale = [row["id"] for row in await cur.fetchall() if row["id"] not in keep]
        for item_id in stale:
            if table == "products":
                await self._delete_product(item_id)
            else:
                await self._delete_passage(item_id)
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

    async def product_names(self) -> tuple[ProductName, ...]:
        async with self.db.execute(
            "SELECT json_extract(data, '$.brand') AS brand, json_extract(data, '$.title') AS title, "
            "json_extract(data, '$.category') AS category, json_extract(data, '$.description') AS description "
            "FROM products ORDER BY id"
        ) as cur:
            rows = await cur.fetchall()
        return tuple(
            ProductName(row["brand"] or "", row["title"] or "", row["category"] or "", row["description"] or "") for row in rows
        )

    async def matching_products(self, filters: SearchFilters) -> set[str] | None:
        """Ids of the products that satisfy ``filters``; None when the filters exclude nothing."""
        if filters.is_empty():
            return None
        return await self._allowed_products(filters)

    async def search(
        self,
        query: str,
        filters: SearchFilters | None = None,
        k: int = 10,
        kinds: Sequence[HitKind] = ALL_KINDS,
    ) -> list[Hit]:
        filters = filters or SearchFilters()
        kinds = tuple(dict.fromkeys(kinds))
        if k <= 0 or not kinds or not query.strip():
            return []
        memory = await self._current_memory()
        if "product" in kinds and self.ranking.assortment_check and await self.missing_kind(query, filters.lang):
            kinds = tuple(kind for kind in kinds if kind != "product")
            if not kinds:
                return []
        if self.embedder is not None and self.ranking.mode != "bm25" and memory.keys:
            # BM25 runs on SQLite's thread while the query is embedded and scored on another
            lexical_task = asyncio.create_task(self._bm25(query, kinds, filters.lang))
            try:
                vector = await asyncio.to_thread(self.embedder.embed_query, query)
                dense = await self._dense(memory, vector, kinds, filters)
                lexical = await lexical_task
            finally:
                lexical_task.cancel()
            ranked = [] if dense is None else await asyncio.to_thread(self._fuse, memory, dense, lexical, kinds, filters.lang, k)
        else:
            lexical = await self._bm25(query, kinds, filters.lang)
            allowed = await self._allowed_products(filters) if "product" in kinds and not filters.is_empty() else None
            ranked = self._rank_lexical(lexical, allowed, filters.lang, k)
        return await self._hits(ranked)

    async def _noise_vector(self) -> npt.NDArray[np.float32]:
        """The embedder's noise direction (:func:`kb.memory.noise_direction`), computed once per model."""
        assert self.embedder is not None  # noqa: S101 - only called with an embedder
        cached = _NOISE_VECTORS.get(self.embedder.name)
        if cached is None:
            # kept in the index file too: a restart reads it instead of embedding every probe again
            key = f"noise:{self.embedder.name}"
            async with self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)) as cur:
                row = await cur.fetchone()
            if row is not None:
                stored = np.frombuffer(bytes.fromhex(row["value"]), dtype=np.float32)
                return _NOISE_VECTORS.setdefault(self.embedder.name, stored)
            embedder = self.embedder
            probes = await asyncio.to_thread(lambda: np.stack([embedder.embed_query(p) for p in noise_probes()]))
            cached = _NOISE_VECTORS.setdefault(embedder.name, noise_direction(probes))
            async with self._write_lock:  # autocommit, never inside another writer's transaction
                await self.db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, cached.astype(np.float32).tobytes().hex())
                )
        return cached

    def _is_preferred_language(self, passage_id: str, lang: str | None) -> bool:
        return bool(lang) and self._passage_langs.get(passage_id) == (lang or "").replace("-", "_")

    def _rank_lexical(self, lexical: dict[str, float], allowed: set[str] | None, lang: str | None, k: int) -> list[_Ranked]:
        """BM25-only ranking (no embedder): every matching document that the filters allow."""
        candidates = {key: s for key, s in lexical.items() if not (key.startswith("p:") and allowed is not None and key[2:] not in allowed)}
        if not candidates:
            return []
        top = max(candidates.values()) or 1.0
        bonus = self.ranking.passage_language_bonus
        scored = [
            _Ranked(key, s / top + (bonus if key.startswith("s:") and self._is_preferred_language(key[2:], lang) else 0.0))
            for key, s in candidates.items()
        ]
        scored.sort(key=lambda r: r.score, reverse=True)
        return scored[:k]

    async def _dense(
        self, memory: IndexMemory, vector: npt.NDArray[np.float32], kinds: tuple[HitKind, ...], filters: SearchFilters
    ) -> _Dense | None:
        """The allowed rows and the query's similarities to them (None: the filters allow nothing)."""
        noise_vector = await self._noise_vector()
        product_filters = "product" in kinds and not filters.is_empty()

        def score() -> _Dense | None:
            if product_filters:
                eligible = memory.eligible(filters)
            else:
                eligible = memory.is_product.copy() if "product" in kinds else np.zeros(len(memory.keys), dtype=bool)
            if "passage" in kinds:
                eligible |= ~memory.is_product
            rows = np.flatnonzero(eligible)
            if rows.size == 0:
                return None
            if rows.size * GATHER_FRACTION > len(memory.keys):
                similarities = np.einsum("ij,j->i", memory.vectors, vector)[rows]  # one pass beats copying most rows
            else:
                similarities = np.einsum("ij,j->i", memory.vectors[rows], vector)
            sample = memory.statistics_rows["all" if len(kinds) > 1 else kinds[0]]
            sample_scores = np.einsum("ij,j->i", memory.vectors[sample], vector)
            return _Dense(rows, similarities, float(sample_scores.mean()), float(sample_scores.std()), float(noise_vector @ vector))

        return await asyncio.to_thread(score)

    def _fuse(
        self, memory: IndexMemory, dense: _Dense, lexical: dict[str, float], kinds: tuple[HitKind, ...], lang: str | None, k: int
    ) -> list[_Ranked]:
        """Dense and BM25 fused by :func:`kb.memory.rank_dense` (blocking numpy: run in a thread)."""
        rows = dense.rows
        lexical_by_row = np.zeros(len(memory.keys), dtype=np.float64)
        matched = [(memory.row_of[key], score) for key, score in lexical.items() if key in memory.row_of]
        if matched:
            lexical_by_row[[row for row, _ in matched]] = [score for _, score in matched]
        bonus = np.zeros(rows.size, dtype=np.float64)
        if "passage" in kinds and lang:
            bonus[np.isin(rows, memory.language_rows(lang.replace("-", "_")))] = self.ranking.passage_language_bonus
        ranked = rank_dense(
            dense.similarities, dense.mean, dense.spread, lexical_by_row[rows], bonus, self.ranking, k, dense.noise
        )
        return [_Ranked(memory.keys[int(rows[i])], score) for i, score in ranked]

    async def _hits(self, ranked: list[_Ranked]) -> list[Hit]:
        """The hits for ranked document keys, fetched in one query per kind, order kept."""
        product_ids = [r.key[2:] for r in ranked if r.key.startswith("p:")]
        passage_ids = [r.key[2:] for r in ranked if r.key.startswith("s:")]
        products: dict[str, Product] = {}
        passages: dict[str, Passage] = {}
        if product_ids:
            marks = ",".join("?" * len(product_ids))
            async with self.db.execute(f"SELECT id, data FROM products WHERE id IN ({marks})", product_ids) as cur:  # noqa: S608
                products = {row["id"]: _product_from_json(row["data"]) for row in await cur.fetchall()}
        if passage_ids:
            marks = ",".join("?" * len(passage_ids))
            async with self.db.execute(f"SELECT id, data FROM passages WHERE id IN ({marks})", passage_ids) as cur:  # noqa: S608
                passages = {row["id"]: _passage_from_json(row["data"]) for row in await cur.fetchall()}
        hits: list[Hit] = []
        for r in ranked:
            if r.key.startswith("p:") and r.key[2:] in products:
                hits.append(Hit(kind="product", score=r.score, product=products[r.key[2:]]))
            elif r.key.startswith("s:") and r.key[2:] in passages:
                hits.append(Hit(kind="passage", score=r.score, passage=passages[r.key[2:]]))
        return hits

    async def _bm25(self, query: str, kinds: tuple[HitKind, ...], lang: str | None) -> dict[str, float]:
        """BM25 scores (higher is better) of the documents matching any meaningful word of ``query``."""
        if self.ranking.mode == "dense" and self.embedder is not None:
            return {}
        match = fts_query(query, lang)
        if match is None:
            return {}
        scores: dict[str, float] = {}
        for kind in kinds:
            table, prefix = ("products", "p:") if kind == "product" else ("passages", "s:")
            # rank inside FTS first, then look up only the best rows' ids
            sql = (
                f"SELECT d.id AS id, f.score AS score FROM (SELECT rowid, -bm25({table}_fts) AS score FROM {table}_fts "  # noqa: S608
                f"WHERE {table}_fts MATCH ? ORDER BY bm25({table}_fts) LIMIT ?) f JOIN {table} d ON d.rowid = f.rowid"
            )
            try:
                async with self.db.execute(sql, (match, self.ranking.lexical_candidates)) as cur:
                    rows = await cur.fetchall()
            except sqlite3.OperationalError as exc:  # a query FTS5 cannot parse: no lexical hits
                log.debug("fts query failed: %s", exc)
                continue
            scores.update((prefix + row["id"], max(float(row["score"]), 0.0)) for row in rows)
        return scores

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
            # hard rule: food is kept only when its label says it is free of the allergen, and a product whose data
            # lists the allergen among its ingredients is out whatever else the label claims ("vegan" yet "milk")
            clauses.append(
                "(p.edible = 0 OR EXISTS (SELECT 1 FROM facets x WHERE x.product_id = p.id AND x.facet = 'free_from' AND x.value = ?)) "
                "AND NOT EXISTS (SELECT 1 FROM facets x WHERE x.product_id = p.id AND x.facet = 'allergens' AND x.value = ?)"
            )
            params.extend((allergen.casefold(), allergen.casefold()))
        where = " AND ".join(clauses) if clauses else "1"
        async with self.db.execute(f"SELECT p.id FROM products p WHERE {where}", params) as cur:  # noqa: S608 - placeholders only
            return {row["id"] for row in await cur.fetchall()}
