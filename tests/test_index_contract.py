"""The search contract, run against every index implementation.

Each implementation gets the same small catalog and must give the same
guarantees: hard filters are never broken, incremental upserts skip unchanged
items, removed items disappear, passages carry their source and language.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from kb.embedder import E5Embedder, Embedder, Vector
from kb.index import BaseIndex
from kb.models import Passage, Product, SearchFilters, Variant
from kb.query import clean_query
from kb.sqlite_index import SQLiteIndex


@cache
def e5() -> Embedder:
    return E5Embedder()


def product(pid: str, title: str, price: str, *, category: str = "Socks", stock: int = 5, **attributes: object) -> Product:
    sizes = attributes.pop("sizes", None)
    variants: tuple[Variant, ...]
    if isinstance(sizes, dict):
        variants = tuple(
            Variant(sku=f"{pid}-{size}", price=Decimal(price), stock=qty, options={"size": size}) for size, qty in sizes.items()
        )
    else:
        variants = (Variant(sku=pid, price=Decimal(price), stock=stock),)
    return Product(
        id=pid,
        title=title,
        description=f"{title}. A product of our test shop.",
        currency="EUR",
        variants=variants,
        category=category,
        brand=str(attributes.pop("brand", "Finch")),
        url=f"https://shop.example/products/{pid}",
        attributes=dict(attributes),
        source="test-catalog",
    )


CATALOG = [
    product("socks-wool", "Merino wool hiking socks", "18.00", materials=["wool"], colors=["grey"]),
    product("socks-cotton", "Cotton running socks", "9.50", materials=["cotton"], colors=["white"]),
    product(
        "shoe-road", "Road running shoe", "89.90", category="Running shoes", sizes={"41": 0, "42": 3, "43": 1}, colors=["blue"]
    ),
    product("shoe-race", "Carbon racing shoe", "159.00", category="Running shoes", sizes={"42": 2}, brand="Swift"),
    product("choc-nut", "Hazelnut milk chocolate", "4.50", category="Snacks", allergens=["nuts", "milk"]),
    product("choc-dark", "Dark chocolate 85%", "3.90", category="Snacks", allergens=[], free_from=["nuts", "milk"], dietary=["vegan"]),
    product("granola", "Oat granola", "6.20", category="Snacks"),  # the label says nothing about allergens
    product("kettle", "Stainless steel kettle", "49.00", category="Kitchen", stock=0, materials=["steel"]),
]
PASSAGES = [
    Passage("returns:en:0", "Returns", ("Returns", "Return window"), "You can return unused items within 30 days.",
            "https://shop.example/pages/returns", "en", "pages"),
    Passage("returns:es:0", "Devoluciones", ("Devoluciones", "Plazo"), "Puedes devolver artículos sin usar en 30 días.",
            "https://shop.example/es/pages/returns", "es", "pages"),
]

WEAVIATE_URL = os.environ.get("WEAVIATE_URL")  # a Weaviate >= 1.33 on a loopback address (tests may not leave the machine)

IMPLEMENTATIONS = [
    "sqlite-hybrid",
    "sqlite-bm25",
    pytest.param("weaviate", marks=pytest.mark.skipif(not WEAVIATE_URL, reason="WEAVIATE_URL not set")),
]


@pytest.fixture(params=IMPLEMENTATIONS)
async def index(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BaseIndex]:
    if request.param == "sqlite-hybrid":
        implementation: BaseIndex = SQLiteIndex(tmp_path / "kb.db", e5())
    elif request.param == "weaviate":
        from kb.weaviate_index import WeaviateIndex

        assert WEAVIATE_URL is not None
        # a fresh tenant per test: the cluster may be shared, and no test sees another's objects
        implementation = WeaviateIndex(
            WEAVIATE_URL, api_key=os.environ.get("WEAVIATE_API_KEY") or None, tenant=f"contract-{uuid.uuid4().hex[:12]}", embedder=e5()
        )
    else:
        implementation = SQLiteIndex(tmp_path / "kb.db", None)
    async with implementation:
        await implementation.upsert_products(CATALOG, source="test-catalog")
        await implementation.upsert_passages(PASSAGES)
        try:
            yield implementation
        finally:
            if request.param == "weaviate":
                await implementation.drop_tenant(recreate=False)  # type: ignore[attr-defined]


async def ids(index: BaseIndex, query: str, filters: SearchFilters | None = None, k: int = 10) -> list[str]:
    return [hit.id for hit in await index.search(query, filters, k=k, kinds=("product",))]


async def test_finds_the_product_by_its_words(index: BaseIndex) -> None:
    assert (await ids(index, "wool socks"))[0] == "socks-wool"


async def test_price_filter_is_hard(index: BaseIndex) -> None:
    found = await ids(index, "running shoe", SearchFilters(max_price=Decimal("100")))
    assert found[0] == "shoe-road"
    assert "shoe-race" not in found  # 159.00: relevant, but over the budget


async def test_size_filter_needs_the_size_to_exist(index: BaseIndex) -> None:
    assert await ids(index, "running shoe", SearchFilters(sizes=("41",), in_stock_only=True)) == []
    assert set(await ids(index, "running shoe", SearchFilters(sizes=("42",)))) == {"shoe-road", "shoe-race"}


async def test_in_stock_only_drops_sold_out_products(index: BaseIndex) -> None:
    assert "kettle" in await ids(index, "kettle")
    assert "kettle" not in await ids(index, "kettle", SearchFilters(in_stock_only=True))


async def test_allergen_exclusion_keeps_only_food_labelled_free_of_it(index: BaseIndex) -> None:
    found = await ids(index, "chocolate granola snack", SearchFilters(exclude_allergens=("nuts",)))
    assert "choc-dark" in found
    assert "choc-nut" not in found  # contains nuts
    assert "granola" not in found  # its label does not say it is nut-free


AUDIT = [
    # the label claims lactose-free, yet the ingredients list milk: the ingredients win
    product("bar-milk", "Cocoa protein bar", "2.50", category="Snacks", allergens=["milk"], dietary=["lactose-free"]),
    product("bar-safe", "Cocoa oat bar", "2.20", category="Snacks", free_from=["milk"]),
    product("socks-merino", "Trail liner socks", "15.00", materials=["merino wool", "nylon"]),
]


async def test_an_allergen_listed_in_the_data_excludes_the_product_whatever_its_label_claims(index: BaseIndex) -> None:
    await index.upsert_products(AUDIT, source="audit")
    found = await ids(index, "cocoa bar", SearchFilters(exclude_allergens=("milk",)))
    assert "bar-safe" in found
    assert "bar-milk" not in found


async def test_a_material_exclusion_covers_every_material_named_with_that_word(index: BaseIndex) -> None:
    await index.upsert_products(AUDIT, source="audit")
    assert "socks-merino" in await ids(index, "liner socks")
    found = await ids(index, "liner socks", SearchFilters(exclude_materials=("wool",)))
    assert "socks-merino" not in found and "socks-wool" not in found


def test_weaviates_in_process_check_agrees_on_the_audit_cases() -> None:
    from kb.weaviate_index import product_matches

    milk_bar, safe_bar, merino = AUDIT
    assert not product_matches(milk_bar, SearchFilters(exclude_allergens=("milk",)))
    assert product_matches(safe_bar, SearchFilters(exclude_allergens=("milk",)))
    assert not product_matches(merino, SearchFilters(exclude_materials=("wool",)))


async def test_material_and_brand_exclusions(index: BaseIndex) -> None:
    assert "socks-wool" not in await ids(index, "socks", SearchFilters(exclude_materials=("wool",)))
    assert "shoe-race" not in await ids(index, "running shoe", SearchFilters(exclude_brands=("Swift",)))
    assert await ids(index, "running shoe", SearchFilters(brands=("swift",))) == ["shoe-race"]


async def test_dietary_requirement(index: BaseIndex) -> None:
    assert await ids(index, "chocolate", SearchFilters(dietary=("vegan",))) == ["choc-dark"]


async def test_unchanged_items_cost_nothing_and_changes_are_applied(index: BaseIndex) -> None:
    stats = await index.upsert_products(CATALOG, source="test-catalog")
    assert (stats.added, stats.updated, stats.unchanged) == (0, 0, len(CATALOG))
    cheaper = product("shoe-race", "Carbon racing shoe", "95.00", category="Running shoes", sizes={"42": 2}, brand="Swift")
    stats = await index.upsert_products([*CATALOG[:3], cheaper, *CATALOG[4:]], source="test-catalog")
    assert (stats.updated, stats.unchanged) == (1, len(CATALOG) - 1)
    assert {"shoe-road", "shoe-race"} <= set(await ids(index, "running shoe", SearchFilters(max_price=Decimal("100"))))


async def test_items_removed_from_a_source_disappear(index: BaseIndex) -> None:
    stats = await index.upsert_products([p for p in CATALOG if p.id != "socks-wool"], source="test-catalog")
    assert stats.removed == 1
    assert "socks-wool" not in await ids(index, "wool socks")
    assert await index.get_product("socks-wool") is None


async def test_passages_carry_source_and_prefer_the_shoppers_language(index: BaseIndex) -> None:
    hits = await index.search("devolver artículos 30 días returns", SearchFilters(lang="es"), k=2, kinds=("passage",))
    assert hits[0].passage is not None
    assert hits[0].passage.lang == "es"
    assert hits[0].source_url == "https://shop.example/es/pages/returns"


async def test_product_count_and_brands(index: BaseIndex) -> None:
    assert await index.product_count() == len(CATALOG)
    assert set(await index.brands()) == {"Finch", "Swift"}


async def test_product_names_list_every_product_as_the_catalog_writes_it(index: BaseIndex) -> None:
    names = await index.product_names()
    assert sorted((n.brand, n.title, n.category, n.description) for n in names) == sorted(
        (p.brand, p.title, p.category, p.description) for p in CATALOG
    )


async def test_a_shoppers_message_in_another_language_finds_the_product(index: BaseIndex) -> None:
    cleaned = clean_query("¿tienen calcetines de lana?", "es")
    assert (await ids(index, cleaned.text))[0] == "socks-wool"


async def test_an_empty_query_finds_nothing(index: BaseIndex) -> None:
    assert await ids(index, "   ") == []


async def test_a_kind_of_product_the_store_does_not_carry_finds_no_product(index: BaseIndex) -> None:
    # "hiking" and "running" describe products of the shop, but none of them is a mat or a tire
    english = SearchFilters(lang="en")
    assert await index.missing_kind("hiking mat", "en") == "hiking mat"
    assert await ids(index, "hiking mat", english) == []
    assert await ids(index, "winter tires for running", english) == []
    assert await index.missing_kind("esterilla para senderismo", "es") is None  # "esterilla": in no vocabulary here
    assert all(hit.kind == "passage" for hit in await index.search("hiking mat", english, k=5))  # pages are still searched
    assert await index.missing_kind("wool socks", "en") is None
    assert await index.missing_kind("Finch", "en") is None  # a brand is no kind of product: the ranking decides
    assert await index.missing_kind("hiking mat") is None  # in an unknown language the head cannot be told
    await index.upsert_products([product("mat-1", "Cork yoga mat", "39.00", category="Yoga")])
    assert (await ids(index, "hiking mat", english))[0] == "mat-1"  # carried from the write on


# -- the embedded index's own guarantees ------------------------------------------------

SQLITE = ["sqlite-hybrid", "sqlite-bm25"]


@pytest.fixture(params=SQLITE)
async def sqlite_index(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SQLiteIndex]:
    async with SQLiteIndex(tmp_path / "kb.db", e5() if request.param == "sqlite-hybrid" else None) as implementation:
        await implementation.upsert_products(CATALOG, source="test-catalog")
        await implementation.upsert_passages(PASSAGES)
        yield implementation


@pytest.mark.parametrize("query", ["asdf qwer", "xq zvbn kprt"])
async def test_gibberish_finds_nothing(sqlite_index: SQLiteIndex, query: str) -> None:
    assert await ids(sqlite_index, query) == []


async def test_a_colour_named_in_the_title_satisfies_a_colour_filter(sqlite_index: SQLiteIndex) -> None:
    red = product("mug-red", "Red enamel mug", "12.00", category="Kitchen")  # no colour data besides the title
    await sqlite_index.upsert_products([red])
    assert "mug-red" in await ids(sqlite_index, "enamel mug", SearchFilters(colors=("red",)))
    assert "mug-red" not in await ids(sqlite_index, "enamel mug", SearchFilters(colors=("blue",)))
    assert "socks-wool" in await ids(sqlite_index, "wool socks", SearchFilters(colors=("gray",)))  # "grey" in the data


FILTERS = [
    SearchFilters(max_price=Decimal("20")),
    SearchFilters(min_price=Decimal("50"), in_stock_only=True),
    SearchFilters(sizes=("42",)),
    SearchFilters(sizes=("41",), in_stock_only=True),
    SearchFilters(colors=("grey", "blue")),
    SearchFilters(exclude_colors=("white",)),
    SearchFilters(category="running shoes"),
    SearchFilters(brands=("swift",)),
    SearchFilters(exclude_brands=("Finch",)),
    SearchFilters(exclude_materials=("wool",)),
    SearchFilters(dietary=("vegan",)),
    SearchFilters(exclude_allergens=("nuts",)),
    SearchFilters(exclude_allergens=("milk",), max_price=Decimal("5")),
    SearchFilters(sizes=("99",)),
    SearchFilters(brands=("nobody",)),
]


@pytest.mark.parametrize("filters", FILTERS)
async def test_in_memory_filters_agree_with_the_sql_reference(tmp_path: Path, filters: SearchFilters) -> None:
    async with SQLiteIndex(tmp_path / "kb.db", e5()) as index:
        await index.upsert_products(CATALOG, source="test-catalog")
        memory = await index._current_memory()
        in_memory = {memory.keys[row][2:] for row in memory.eligible(filters).nonzero()[0]}
        assert in_memory == await index.matching_products(filters)


class CountingEmbedder:
    """The test embedder, counting the passages it embeds."""

    def __init__(self, inner: Embedder) -> None:
        self.name, self.dim, self.inner, self.passages = inner.name, inner.dim, inner, 0

    def embed_query(self, text: str) -> Vector:
        return self.inner.embed_query(text)

    def embed_passages(self, texts: list[str]) -> npt.NDArray[np.float32]:
        self.passages += len(texts)
        return self.inner.embed_passages(texts)


async def test_a_stock_change_keeps_the_products_vector(tmp_path: Path) -> None:
    counting = CountingEmbedder(e5())
    async with SQLiteIndex(tmp_path / "kb.db", counting) as index:
        await index.upsert_products(CATALOG, source="test-catalog")
        assert counting.passages == len(CATALOG)
        restocked = product("kettle", "Stainless steel kettle", "49.00", category="Kitchen", stock=7, materials=["steel"])
        stats = await index.upsert_products([restocked])
        assert stats.updated == 1 and counting.passages == len(CATALOG)  # no new embedding
        assert "kettle" in await ids(index, "kettle", SearchFilters(in_stock_only=True))
        renamed = product("kettle", "Stainless steel tea kettle", "49.00", category="Kitchen", stock=7, materials=["steel"])
        await index.upsert_products([renamed])
        assert counting.passages == len(CATALOG) + 1  # the text changed: embedded again


async def test_an_index_file_from_before_the_full_text_change_is_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "kb.db"
    async with SQLiteIndex(path, None) as index:
        await index.upsert_products(CATALOG, source="test-catalog")
        await index.db.execute("DELETE FROM products_fts")
        await index.db.execute("CREATE VIRTUAL TABLE docs_fts USING fts5(doc_key UNINDEXED, text)")
        await index.db.execute("UPDATE meta SET value = '1' WHERE key = 'fts_version'")
        assert await ids(index, "wool socks") == []
    async with SQLiteIndex(path, None) as index:
        assert (await ids(index, "wool socks"))[0] == "socks-wool"
        async with index.db.execute("SELECT name FROM sqlite_master WHERE name = 'docs_fts'") as cur:
            assert await cur.fetchone() is None


async def test_an_index_built_before_material_words_gets_them_at_open(tmp_path: Path) -> None:
    path = tmp_path / "kb.db"
    async with SQLiteIndex(path, None) as index:
        await index.upsert_products(AUDIT, source="audit")
        # what an index written by the previous version holds: whole material names only
        await index.db.execute("DELETE FROM facets WHERE facet = 'materials' AND value IN ('merino', 'wool')")
        await index.db.execute("UPDATE meta SET value = '1' WHERE key = 'facets_version'")
    async with SQLiteIndex(path, None) as index:
        assert "socks-merino" not in await ids(index, "liner socks", SearchFilters(exclude_materials=("wool",)))
        assert "socks-merino" in await ids(index, "liner socks")


async def test_a_restart_reads_the_noise_direction_from_the_index_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kb.sqlite_index as sqlite_index

    class QueryCounting(CountingEmbedder):
        queries = 0

        def embed_query(self, text: str) -> Vector:
            QueryCounting.queries += 1
            return self.inner.embed_query(text)

    path = tmp_path / "kb.db"
    monkeypatch.setattr(sqlite_index, "_NOISE_VECTORS", {})
    async with SQLiteIndex(path, QueryCounting(e5())) as index:
        await index.upsert_products(CATALOG, source="test-catalog")
        first = await ids(index, "wool socks")
    assert QueryCounting.queries > 1  # the probes and the query
    monkeypatch.setattr(sqlite_index, "_NOISE_VECTORS", {})  # a new process
    QueryCounting.queries = 0
    async with SQLiteIndex(path, QueryCounting(e5())) as index:
        assert await ids(index, "wool socks") == first
    assert QueryCounting.queries == 1  # only the shopper's query: no probe embedded again
