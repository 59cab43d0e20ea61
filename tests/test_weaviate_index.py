"""The Weaviate index without a Weaviate server.

What is checked here, with no server anywhere:

* the pure pieces: connection parameters, tenant names, the schema passed to
  ``collections.create``, object conversion, and the filter tree built for every
  filter type (compared as the REST dict the client derives from it);
* filter *semantics*: over a catalog with every tricky case, the Weaviate filter
  never rejects a product the SQLite index keeps, and with the exact check the
  kept set is the SQLite index's, filter by filter;
* the index's own logic (incremental upserts, removals, paging past the exact
  check, language preference, tenants, errors) against :class:`FakeWeaviate`, an
  in-memory stand-in for the async client whose method signatures are checked
  against the real client's.

The same behaviour on a real server is the contract suite
(``tests/test_index_contract.py``) plus :class:`TestLiveServer` below, both run
when ``WEAVIATE_URL`` points at one (a loopback address: tests may not leave the machine).
"""

from __future__ import annotations

import inspect
import os
import re
import socket
import uuid as uuid_module
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from weaviate.classes.aggregate import GroupByAggregate
from weaviate.classes.config import DataType, Tokenization
from weaviate.classes.data import DataObject
from weaviate.classes.query import HybridFusion
from weaviate.collections.aggregations.over_all.async_ import _OverAllAsync
from weaviate.collections.classes.config import _CollectionConfigCreate
from weaviate.collections.collection.async_ import CollectionAsync
from weaviate.collections.collections.async_ import _CollectionsAsync
from weaviate.collections.data.async_ import _DataCollectionAsync
from weaviate.collections.filters import _FilterToGRPC, _FilterToREST
from weaviate.collections.queries.bm25.query.async_ import _BM25QueryAsync
from weaviate.collections.queries.fetch_object_by_id.async_ import _FetchObjectByIDQueryAsync
from weaviate.collections.queries.fetch_objects.query.async_ import _FetchObjectsQueryAsync
from weaviate.collections.queries.hybrid.query.async_ import _HybridQueryAsync
from weaviate.collections.tenants.async_ import _TenantsAsync
from weaviate.exceptions import WeaviateConnectionError, WeaviateQueryError

from kb.models import Product, SearchFilters, Variant
from kb.sqlite_index import SQLiteIndex
from kb.weaviate_index import (
    ASSORTMENT_MAX_AGE,
    PASSAGE_COLLECTION,
    PRODUCT_COLLECTION,
    ConnectionParams,
    IndexUnavailableError,
    WeaviateIndex,
    WeaviateIndexError,
    bm25_arguments,
    collection_specs,
    connection_params,
    hybrid_arguments,
    object_uuid,
    passage_from_json,
    passage_properties,
    product_filter,
    product_from_json,
    product_matches,
    product_properties,
    product_to_json,
    redact_url,
    validate_tenant,
)
from tests.test_index_contract import CATALOG, PASSAGES, product

WEAVIATE_URL = os.environ.get("WEAVIATE_URL")

# --------------------------------------------------------------------------- a catalog with the tricky cases

EXTRA = [
    # variants that satisfy different conditions, never all at once
    Product(
        id="split", title="Split trail shoe", description="Trail shoe.", currency="EUR", category="Running shoes", brand="Finch",
        variants=(
            Variant("split-41", Decimal("60.00"), 0, {"Size": "41", "Colour": "Red"}),
            Variant("split-42", Decimal("120.00"), 4, {"taille": "42", "couleur": "blue"}),
        ),
        source="test-catalog",
    ),
    # colour only in the attributes, variants without a colour option
    product("scarf", "Wool scarf", "30.00", category="Accessories", colors=["Green"], materials=["Wool"]),
    # vegan implies free of milk and eggs; contains nuts
    product("bar", "Vegan nut bar", "2.50", category="Snacks", dietary=["Vegan"], allergens=["nuts"]),
    # edible by category only, no brand
    product("tea", "Green tea", "5.00", category="Tea", brand=""),
    # untracked stock
    Product(
        id="card", title="Gift card", description="A gift card.", currency="EUR", category="Gifts", brand="Finch",
        variants=(Variant("card-25", Decimal("25.00"), None),), source="test-catalog",
    ),
]
ALL_PRODUCTS = [*CATALOG, *EXTRA]

FILTERS = [
    SearchFilters(),
    SearchFilters(max_price=Decimal("50")),
    SearchFilters(min_price=Decimal("100")),
    SearchFilters(min_price=Decimal("50"), max_price=Decimal("100")),
    SearchFilters(in_stock_only=True),
    SearchFilters(sizes=("41",)),
    SearchFilters(sizes=("41",), in_stock_only=True),
    SearchFilters(sizes=("42",), max_price=Decimal("100")),
    SearchFilters(colors=("red",), in_stock_only=True),
    SearchFilters(colors=("GREEN",)),
    SearchFilters(colors=("blue",)),
    SearchFilters(exclude_colors=("red",)),
    SearchFilters(exclude_colors=("red", "blue")),
    SearchFilters(category="running SHOES"),
    SearchFilters(brands=("swift",)),
    SearchFilters(exclude_brands=("Swift", "Finch")),
    SearchFilters(exclude_materials=("wool",)),
    SearchFilters(dietary=("vegan",)),
    SearchFilters(exclude_allergens=("nuts",)),
    SearchFilters(exclude_allergens=("milk",)),
    SearchFilters(exclude_allergens=("milk", "eggs")),
    SearchFilters(exclude_allergens=("nuts",), max_price=Decimal("4"), in_stock_only=True),
    SearchFilters(lang="es"),
]


# --------------------------------------------------------------------------- a Weaviate filter evaluator


def as_dict(weaviate_filter: Any) -> dict[str, Any]:
    """The REST form of a filter tree (what the client sends in a where clause)."""
    return _FilterToREST.convert(weaviate_filter)


def _values(node: dict[str, Any]) -> Any:
    return next(value for key, value in node.items() if key.startswith("value"))


def evaluate(node: dict[str, Any], properties: dict[str, Any], object_id: str) -> bool:
    """Evaluate a REST filter dict on one object, the way Weaviate documents each operator."""
    operator = node["operator"]
    if operator == "And":
        return all(evaluate(child, properties, object_id) for child in node["operands"])
    if operator == "Or":
        return any(evaluate(child, properties, object_id) for child in node["operands"])
    if operator == "Not":
        return not evaluate(node["operands"][0], properties, object_id)
    name = node["path"][0]
    actual = object_id if name == "_id" else properties.get(name)
    have = set(actual) if isinstance(actual, list) else ({actual} if actual not in (None, "") else set())
    expected = _values(node)
    if operator == "Equal":
        return expected in have
    if operator == "NotEqual":
        return expected not in have
    if operator == "ContainsAny":
        return bool(have & set(expected))
    if operator == "ContainsAll":
        return set(expected) <= have
    if operator == "ContainsNone":
        return not have & set(expected)
    comparisons: dict[str, Callable[[Any, Any], bool]] = {
        "LessThan": lambda a, b: a < b, "LessThanEqual": lambda a, b: a <= b,
        "GreaterThan": lambda a, b: a > b, "GreaterThanEqual": lambda a, b: a >= b,
    }
    return actual is not None and comparisons[operator](actual, expected)


# --------------------------------------------------------------------------- a fake async client


class FakeServer:
    """The state of an in-memory Weaviate: collections, tenants, objects; can be taken down."""

    def __init__(self) -> None:
        self.schemas: dict[str, dict[str, Any]] = {}
        self.objects: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}  # (collection, tenant) -> uuid -> object
        self.down = False
        self.reject: set[str] = set()  # item ids whose insert fails
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.full_reads = 0  # collection.iterator() calls: every object of a collection read

    def check(self) -> None:
        if self.down:
            raise WeaviateQueryError("connection refused (fake server down)", "GRPC search")

    def client(self) -> FakeClient:
        return FakeClient(self)


class FakeClient:
    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.collections = FakeCollections(server)
        self.connected = False

    async def connect(self) -> None:
        if self.server.down:
            raise WeaviateConnectionError("fake server down")
        self.connected = True

    async def close(self) -> None:
        self.connected = False


class FakeCollections:
    def __init__(self, server: FakeServer) -> None:
        self.server = server

    async def exists(self, name: str) -> bool:
        self.server.check()
        return name in self.server.schemas

    async def create(self, name: str, *, properties: Any = None, vector_config: Any = None, multi_tenancy_config: Any = None) -> None:
        self.server.check()
        config = _CollectionConfigCreate(
            name=name, properties=properties, vector_config=vector_config, multi_tenancy_config=multi_tenancy_config
        )
        self.server.schemas[name] = config._to_dict()

    def use(self, name: str) -> FakeCollection:
        return FakeCollection(self.server, name, None)


class FakeCollection:
    def __init__(self, server: FakeServer, name: str, tenant: str | None) -> None:
        self.server, self.name, self.tenant = server, name, tenant
        self.tenants = FakeTenants(self)
        self.config = SimpleNamespace(get=self._config)
        self.data = FakeData(self)
        self.query = FakeQuery(self)
        self.aggregate = FakeAggregate(self)

    async def _config(self) -> Any:
        self.server.check()
        enabled = bool(self.server.schemas[self.name].get("multiTenancyConfig", {}).get("enabled"))
        return SimpleNamespace(multi_tenancy_config=SimpleNamespace(enabled=enabled))

    def with_tenant(self, tenant: str) -> FakeCollection:
        return FakeCollection(self.server, self.name, tenant)

    def iterator(self, *, return_properties: Any = None) -> AsyncIterator[Any]:
        self.server.full_reads += 1
        return self._every_object()

    async def _every_object(self) -> AsyncIterator[Any]:
        for object_id, obj in list(self.store().items()):
            yield _returned(object_id, obj)

    def store(self) -> dict[str, dict[str, Any]]:
        self.server.check()
        assert self.tenant is not None, "a multi-tenant collection needs a tenant"
        key = (self.name, self.tenant)
        assert key in self.server.objects, f"tenant {self.tenant!r} does not exist in {self.name}"
        return self.server.objects[key]

    def matching(self, filters: Any) -> list[tuple[str, dict[str, Any]]]:
        where = as_dict(filters) if filters is not None else None
        return [
            (object_id, obj) for object_id, obj in self.store().items()
            if where is None or evaluate(where, obj["properties"], object_id)
        ]


class FakeTenants:
    def __init__(self, collection: FakeCollection) -> None:
        self.collection = collection

    async def exists(self, tenant: str) -> bool:
        self.collection.server.check()
        return (self.collection.name, tenant) in self.collection.server.objects

    async def create(self, tenants: list[Any]) -> None:
        self.collection.server.check()
        for tenant in tenants:
            self.collection.server.objects.setdefault((self.collection.name, tenant.name), {})

    async def remove(self, tenants: list[str]) -> None:
        self.collection.server.check()
        for tenant in tenants:
            self.collection.server.objects.pop((self.collection.name, tenant), None)


def _returned(object_id: str, obj: dict[str, Any], score: float = 0.0) -> Any:
    return SimpleNamespace(uuid=uuid_module.UUID(object_id), properties=dict(obj["properties"]), metadata=SimpleNamespace(score=score))


class FakeData:
    def __init__(self, collection: FakeCollection) -> None:
        self.collection = collection

    async def insert_many(self, objects: list[DataObject[Any, Any]]) -> Any:
        store = self.collection.store()
        self.collection.server.calls.append(("insert_many", {"count": len(objects)}))
        errors = {}
        for i, obj in enumerate(objects):
            item_id = obj.properties.get("product_id") or obj.properties.get("passage_id")
            if item_id in self.collection.server.reject:
                errors[i] = SimpleNamespace(message="rejected by the fake")
                continue
            store[str(obj.uuid)] = {"properties": dict(obj.properties), "vector": obj.vector}
        return SimpleNamespace(has_errors=bool(errors), errors=errors)

    async def delete_many(self, where: Any, *, verbose: bool = False, dry_run: bool = False) -> Any:
        store = self.collection.store()
        doomed = [object_id for object_id, _ in self.collection.matching(where)]
        for object_id in doomed:
            del store[object_id]
        return SimpleNamespace(failed=0, matches=len(doomed), successful=len(doomed), objects=None)


_WORD = re.compile(r"\w+")


def _keyword_score(query: str, text: str) -> float:
    words = {w for w in _WORD.findall(query.lower()) if len(w) > 2}
    found = {w for w in words if any(t.startswith(w[:5]) for t in _WORD.findall(text.lower()))}
    return len(found) / len(words) if words else 0.0


class FakeQuery:
    def __init__(self, collection: FakeCollection) -> None:
        self.collection = collection

    async def fetch_objects(
        self, *, limit: int | None = None, after: Any = None, filters: Any = None, return_properties: Any = None
    ) -> Any:
        # objects in uuid order, as Weaviate's cursor pages them; ``after``: those past that uuid
        found = sorted(self.collection.matching(filters), key=lambda item: item[0])
        if after is not None:
            self.collection.server.calls.append(("fetch_objects", {"limit": limit, "after": str(after)}))
            found = [item for item in found if item[0] > str(after)]
        return SimpleNamespace(objects=[_returned(object_id, obj) for object_id, obj in found[:limit]])

    async def fetch_object_by_id(self, uuid: str, *, return_properties: Any = None) -> Any:
        obj = self.collection.store().get(str(uuid))
        return _returned(str(uuid), obj) if obj is not None else None

    def _ranked(self, query: str, limit: int | None, offset: int | None, filters: Any) -> Any:
        matching = self.collection.matching(filters)
        scored = [(_keyword_score(query, obj["properties"]["text"]), object_id, obj) for object_id, obj in matching]
        scored = sorted((s for s in scored if s[0] > 0), key=lambda s: (-s[0], s[1]))
        start = offset or 0
        page = scored[start : start + limit] if limit is not None else scored[start:]
        return SimpleNamespace(objects=[_returned(object_id, obj, score) for score, object_id, obj in page])

    async def hybrid(
        self, query: str, *, alpha: float | None = None, vector: Any = None, query_properties: Any = None, fusion_type: Any = None,
        max_vector_distance: float | None = None, limit: int | None = None, offset: int | None = None, filters: Any = None,
        target_vector: Any = None, return_metadata: Any = None, return_properties: Any = None,
    ) -> Any:
        self.collection.server.calls.append(("hybrid", {"alpha": alpha, "vector": vector, "limit": limit, "offset": offset}))
        return self._ranked(query, limit, offset, filters)

    async def bm25(
        self, query: str, *, query_properties: Any = None, limit: int | None = None, offset: int | None = None, filters: Any = None,
        return_metadata: Any = None, return_properties: Any = None,
    ) -> Any:
        self.collection.server.calls.append(("bm25", {"limit": limit, "offset": offset}))
        return self._ranked(query, limit, offset, filters)


class FakeAggregate:
    def __init__(self, collection: FakeCollection) -> None:
        self.collection = collection

    async def over_all(self, *, filters: Any = None, group_by: GroupByAggregate | None = None, total_count: bool = True) -> Any:
        found = self.collection.matching(filters)
        if group_by is None:
            return SimpleNamespace(total_count=len(found))
        groups: dict[Any, int] = {}
        for _, obj in found:
            value = obj["properties"].get(group_by.prop)
            groups[value] = groups.get(value, 0) + 1
        return SimpleNamespace(groups=[
            SimpleNamespace(grouped_by=SimpleNamespace(prop=group_by.prop, value=value), total_count=n) for value, n in groups.items()
        ])


@pytest.mark.parametrize(
    ("fake", "real"),
    [
        (FakeCollections.exists, _CollectionsAsync.exists),
        (FakeCollections.create, _CollectionsAsync.create),
        (FakeCollections.use, _CollectionsAsync.use),
        (FakeTenants.exists, _TenantsAsync.exists),
        (FakeTenants.create, _TenantsAsync.create),
        (FakeTenants.remove, _TenantsAsync.remove),
        (FakeData.insert_many, _DataCollectionAsync.insert_many),
        (FakeData.delete_many, _DataCollectionAsync.delete_many),
        (FakeQuery.fetch_objects, _FetchObjectsQueryAsync.fetch_objects),
        (FakeQuery.fetch_object_by_id, _FetchObjectByIDQueryAsync.fetch_object_by_id),
        (FakeQuery.hybrid, _HybridQueryAsync.hybrid),
        (FakeQuery.bm25, _BM25QueryAsync.bm25),
        (FakeAggregate.over_all, _OverAllAsync.over_all),
        (FakeCollection.iterator, CollectionAsync.iterator),
    ],
    ids=lambda f: getattr(f, "__qualname__", ""),
)
def test_the_fake_accepts_only_what_the_real_client_accepts(fake: Callable[..., Any], real: Callable[..., Any]) -> None:
    fake_parameters = inspect.signature(fake).parameters
    real_parameters = inspect.signature(real).parameters
    assert set(fake_parameters) <= set(real_parameters)
    for name, parameter in fake_parameters.items():
        assert parameter.kind == real_parameters[name].kind, name


# --------------------------------------------------------------------------- connection and tenants


def test_connection_params_from_the_url() -> None:
    assert connection_params("http://weaviate:8080") == ConnectionParams("weaviate", 8080, False, "weaviate", 50051, False)
    assert connection_params("https://search.example") == ConnectionParams("search.example", 443, True, "search.example", 50051, True)
    assert connection_params("https://abc.weaviate.cloud?grpc_host=grpc-abc.weaviate.cloud&grpc_port=443") == ConnectionParams(
        "abc.weaviate.cloud", 443, True, "grpc-abc.weaviate.cloud", 443, True
    )
    assert connection_params("http://localhost:8081?grpc_port=50052").grpc_port == 50052
    for bad in ("weaviate:8080", "ftp://weaviate", "http://", "http://weaviate:8080?grpc_port=x", "http://weaviate:8080?grpc_port=8080"):
        with pytest.raises(ValueError, match="Weaviate URL"):
            connection_params(bad)


def test_urls_are_logged_without_credentials() -> None:
    assert redact_url("https://user:pw@abc.weaviate.cloud:443/v1?grpc_host=x") == "https://abc.weaviate.cloud:443/v1"
    index = WeaviateIndex("https://user:pw@abc.weaviate.cloud", api_key="sk-secret")
    assert "pw" not in repr(index) and "sk-secret" not in repr(index)


def test_tenant_names() -> None:
    assert validate_tenant("alder-and-finch_2") == "alder-and-finch_2"
    for bad in ("", "two words", "ünï", "x" * 65, "a/b"):
        with pytest.raises(ValueError, match="tenant"):
            validate_tenant(bad)
    with pytest.raises(ValueError, match="tenant"):
        WeaviateIndex("http://localhost:8080", tenant="my store")
    with pytest.raises(ValueError, match="alpha"):
        WeaviateIndex("http://localhost:8080", alpha=1.5)


# --------------------------------------------------------------------------- schema


def _properties(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in schema["properties"]}


def test_schema_is_multi_tenant_with_filterable_facets_and_one_searchable_text() -> None:
    products, passages = collection_specs("shopkeeper")
    assert (products.name, passages.name) == (PRODUCT_COLLECTION, PASSAGE_COLLECTION)
    for spec in (products, passages):
        schema = _CollectionConfigCreate(**spec.create_arguments())._to_dict()
        assert schema["multiTenancyConfig"] == {"enabled": True, "autoTenantCreation": False, "autoTenantActivation": True}
        assert schema["vectorConfig"]["default"]["vectorizer"] == {"none": {}}
        properties = _properties(schema)
        assert [name for name, p in properties.items() if p.get("indexSearchable")] == ["text"]
        assert properties["text"]["tokenization"] == Tokenization.WORD.value
        assert properties["data"]["indexFilterable"] is False and properties["data"]["indexSearchable"] is False
        assert properties["source"]["tokenization"] == Tokenization.FIELD.value

    properties = _properties(_CollectionConfigCreate(**products.create_arguments())._to_dict())
    arrays = {"skus", "sizes", "colors", "materials", "allergens", "free_from", "dietary"}
    assert {name for name, p in properties.items() if p["dataType"] == [DataType.TEXT_ARRAY.value]} == arrays
    for name in (*arrays, "category", "brand", "product_id"):
        assert properties[name]["tokenization"] == Tokenization.FIELD.value, name  # exact values, not words
        assert properties[name]["indexFilterable"] is True
    assert {name for name, p in properties.items() if p["dataType"] == [DataType.NUMBER.value]} == {"min_price", "max_price"}
    assert properties["min_price"]["indexRangeFilters"] is True
    assert {name for name, p in properties.items() if p["dataType"] == [DataType.BOOL.value]} == {"in_stock", "edible"}
    assert "lang" in _properties(_CollectionConfigCreate(**passages.create_arguments())._to_dict())


def test_module_vectorizer_reads_only_the_text() -> None:
    products, _ = collection_specs("module")
    vector = _CollectionConfigCreate(**products.create_arguments())._to_dict()["vectorConfig"]["default"]
    assert vector["vectorizer"]["text2vec-transformers"]["properties"] == ["text"]
    custom, _ = collection_specs("module", module="text2vec-ollama")
    vector = _CollectionConfigCreate(**custom.create_arguments())._to_dict()["vectorConfig"]["default"]
    assert vector["vectorizer"]["text2vec-ollama"]["properties"] == ["text"]


# --------------------------------------------------------------------------- objects


def test_product_properties_are_case_folded_facets() -> None:
    bar = next(p for p in EXTRA if p.id == "bar")
    properties = product_properties(bar, "h")
    assert properties["dietary"] == ["vegan"]
    assert properties["free_from"] == ["eggs", "fish", "milk", "shellfish"]  # what "vegan" guarantees
    assert properties["allergens"] == ["nuts"]
    assert properties["edible"] is True
    assert product_from_json(properties["data"]) == bar

    split = product_properties(next(p for p in EXTRA if p.id == "split"), "h")
    assert split["sizes"] == ["41", "42"]  # "Size" and French "taille"
    assert split["colors"] == ["blue", "red"]  # "Colour" and "couleur"
    assert (split["min_price"], split["max_price"], split["in_stock"]) == (60.0, 120.0, True)
    assert split["skus"] == ["split-41", "split-42"]
    assert (split["category"], split["brand"], split["brand_name"]) == ("running shoes", "finch", "Finch")
    assert split["source"] == "test-catalog"

    scarf = product_properties(next(p for p in EXTRA if p.id == "scarf"), "h")
    assert (scarf["colors"], scarf["materials"], scarf["edible"]) == (["green"], ["wool"], False)
    tea = product_properties(next(p for p in EXTRA if p.id == "tea"), "h")
    assert (tea["edible"], tea["brand"], tea["free_from"]) == (True, "", [])


def test_passages_round_trip_and_languages_are_normalised() -> None:
    passage = replace(PASSAGES[0], lang="pt-BR")
    properties = passage_properties(passage, "h")
    assert properties["lang"] == "pt_BR"
    assert passage_from_json(properties["data"]) == passage
    assert properties["text"] == passage.search_text()


def test_object_ids_are_stable_and_per_collection() -> None:
    assert object_uuid(PRODUCT_COLLECTION, "kettle") == object_uuid(PRODUCT_COLLECTION, "kettle")
    assert object_uuid(PRODUCT_COLLECTION, "kettle") != object_uuid(PASSAGE_COLLECTION, "kettle")
    uuid_module.UUID(object_uuid(PRODUCT_COLLECTION, "kettle"))


def test_product_json_round_trip_keeps_exact_prices() -> None:
    for item in ALL_PRODUCTS:
        assert product_from_json(product_to_json(item)) == item


# --------------------------------------------------------------------------- filters: the trees


def prop(name: str, operator: str, value_key: str, value: Any) -> dict[str, Any]:
    return {"operator": operator, "path": [name], value_key: value}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (SearchFilters(max_price=Decimal("100")), prop("min_price", "LessThanEqual", "valueNumber", 100.0)),
        (SearchFilters(min_price=Decimal("20.5")), prop("max_price", "GreaterThanEqual", "valueNumber", 20.5)),
        (SearchFilters(in_stock_only=True), prop("in_stock", "Equal", "valueBoolean", True)),
        (SearchFilters(sizes=("M", "l")), prop("sizes", "ContainsAny", "valueTextArray", ["l", "m"])),
        (SearchFilters(colors=("Navy",)), prop("colors", "ContainsAny", "valueTextArray", ["navy"])),
        (SearchFilters(category="Running Shoes"), prop("category", "Equal", "valueText", "running shoes")),
        (SearchFilters(brands=("Swift", "FINCH")), prop("brand", "ContainsAny", "valueTextArray", ["finch", "swift"])),
        (SearchFilters(exclude_brands=("Swift",)), prop("brand", "ContainsNone", "valueTextArray", ["swift"])),
        (SearchFilters(exclude_materials=("Wool", "leather")), prop("materials", "ContainsNone", "valueTextArray", ["leather", "wool"])),
        (SearchFilters(dietary=("Vegan", "gluten-free")), prop("dietary", "ContainsAll", "valueTextArray", ["gluten-free", "vegan"])),
        (
            SearchFilters(exclude_allergens=("Nuts", "milk")),
            {"operator": "And", "operands": [
                {"operator": "Or", "operands": [
                    prop("edible", "Equal", "valueBoolean", False),
                    prop("free_from", "ContainsAll", "valueTextArray", ["milk", "nuts"]),
                ]},
                # an allergen listed in the product's data excludes it, whatever its label claims
                prop("allergens", "ContainsNone", "valueTextArray", ["milk", "nuts"]),
            ]},
        ),
    ],
    ids=lambda value: type(value).__name__,
)
def test_each_filter_builds_its_condition(filters: SearchFilters, expected: dict[str, Any]) -> None:
    built = product_filter(filters)
    assert built is not None
    assert as_dict(built) == expected
    assert _FilterToGRPC.convert(built) is not None  # the form actually sent is buildable too


def test_filters_combine_with_and_and_nothing_means_no_filter() -> None:
    assert product_filter(SearchFilters()) is None
    assert product_filter(SearchFilters(lang="fr")) is None  # a passage preference, not a product filter
    assert product_filter(SearchFilters(exclude_colors=("red",))) is None  # per-variant: checked exactly after the query
    combined = as_dict(product_filter(SearchFilters(max_price=Decimal("50"), in_stock_only=True, sizes=("42",))))
    assert combined == {"operator": "And", "operands": [
        prop("min_price", "LessThanEqual", "valueNumber", 50.0),
        prop("in_stock", "Equal", "valueBoolean", True),
        prop("sizes", "ContainsAny", "valueTextArray", ["42"]),
    ]}


# --------------------------------------------------------------------------- filters: the semantics


@pytest.fixture
async def sqlite_allowed(tmp_path: Path) -> AsyncIterator[Callable[[SearchFilters], Any]]:
    async with SQLiteIndex(tmp_path / "kb.db", None) as index:
        await index.upsert_products(ALL_PRODUCTS, source="test-catalog")

        async def allowed(filters: SearchFilters) -> set[str]:
            return await index._allowed_products(filters)

        yield allowed


@pytest.mark.parametrize("filters", FILTERS, ids=[f"f{i}" for i in range(len(FILTERS))])
async def test_weaviate_filter_plus_exact_check_keeps_what_sqlite_keeps(
    filters: SearchFilters, sqlite_allowed: Callable[[SearchFilters], Any]
) -> None:
    where = product_filter(filters)
    passes_weaviate = {
        p.id for p in ALL_PRODUCTS
        if where is None or evaluate(as_dict(where), product_properties(p, "h"), object_uuid(PRODUCT_COLLECTION, p.id))
    }
    exact = {p.id for p in ALL_PRODUCTS if product_matches(p, filters)}
    assert exact <= passes_weaviate  # the server-side filter never loses a product
    assert exact == await sqlite_allowed(filters)  # and the final answer is the SQLite index's


def test_variant_conditions_must_hold_for_one_variant() -> None:
    split = next(p for p in EXTRA if p.id == "split")
    assert product_matches(split, SearchFilters(sizes=("41",)))
    assert not product_matches(split, SearchFilters(sizes=("41",), in_stock_only=True))  # 41 is sold out
    assert not product_matches(split, SearchFilters(sizes=("42",), max_price=Decimal("100")))  # 42 costs 120
    assert product_matches(split, SearchFilters(colors=("blue",), in_stock_only=True))


# --------------------------------------------------------------------------- the index on a fake server


class StubEmbedder:
    """A deterministic embedder: enough to check vectors are computed and sent."""

    name = "stub-embedder"
    dim = 3

    def embed_query(self, text: str) -> Any:
        import numpy as np

        return np.asarray([1.0, 0.0, 0.0], dtype=np.float32)

    def embed_passages(self, texts: list[str]) -> Any:
        import numpy as np

        return np.asarray([[1.0, float(len(t) % 7), 0.5] for t in texts], dtype=np.float32)


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


def fake_index(server: FakeServer, tenant: str = "alder", **options: Any) -> WeaviateIndex:
    return WeaviateIndex("http://weaviate.internal:8080", tenant=tenant, client_factory=server.client, **options)


@pytest.fixture
async def index(server: FakeServer) -> AsyncIterator[WeaviateIndex]:
    async with fake_index(server, embedder=StubEmbedder()) as opened:
        assert isinstance(opened, WeaviateIndex)
        await opened.upsert_products(ALL_PRODUCTS, source="test-catalog")
        await opened.upsert_passages(PASSAGES)
        yield opened


async def test_open_creates_collections_and_the_tenant_once(server: FakeServer) -> None:
    async with fake_index(server):
        assert set(server.schemas) == {PRODUCT_COLLECTION, PASSAGE_COLLECTION}
        assert set(server.objects) == {(PRODUCT_COLLECTION, "alder"), (PASSAGE_COLLECTION, "alder")}
    server.schemas[PRODUCT_COLLECTION]["marker"] = True
    async with fake_index(server, tenant="birch"):
        assert server.schemas[PRODUCT_COLLECTION]["marker"] is True  # existing collections are kept
    assert (PRODUCT_COLLECTION, "birch") in server.objects


async def test_a_collection_without_multi_tenancy_is_refused(server: FakeServer) -> None:
    server.schemas[PRODUCT_COLLECTION] = {"class": PRODUCT_COLLECTION}
    with pytest.raises(WeaviateIndexError, match="without multi-tenancy"):
        await fake_index(server).open()


async def test_stores_are_isolated_by_tenant(server: FakeServer, index: WeaviateIndex) -> None:
    async with fake_index(server, tenant="other-store", embedder=StubEmbedder()) as other:
        assert await other.product_count() == 0
        assert await other.search("wool socks") == []
        await other.upsert_products([CATALOG[0]], source="test-catalog")
        assert await other.product_count() == 1
    assert await index.product_count() == len(ALL_PRODUCTS)


async def test_upserts_are_incremental_and_remove_a_sources_missing_items(server: FakeServer, index: WeaviateIndex) -> None:
    stats = await index.upsert_products(ALL_PRODUCTS, source="test-catalog")
    assert (stats.added, stats.updated, stats.unchanged, stats.removed) == (0, 0, len(ALL_PRODUCTS), 0)
    cheaper = replace(CATALOG[3], variants=(replace(CATALOG[3].variants[0], price=Decimal("95.00")),))
    rest = [p for p in ALL_PRODUCTS if p.id not in {"shoe-race", "socks-wool"}]
    server.calls.clear()
    stats = await index.upsert_products([*rest, cheaper], source="test-catalog")
    assert (stats.added, stats.updated, stats.unchanged, stats.removed) == (0, 1, len(rest), 1)
    assert server.calls == [("insert_many", {"count": 1})]  # only the changed product is sent
    assert await index.get_product("socks-wool") is None
    assert (await index.get_product("shoe-race")) == cheaper
    # upserting without a source never removes anything
    stats = await index.upsert_products([CATALOG[0]])
    assert (stats.added, stats.removed) == (1, 0)
    assert await index.product_count() == len(ALL_PRODUCTS)


async def test_vectors_come_from_our_embedder_and_a_new_embedder_reembeds(server: FakeServer, index: WeaviateIndex) -> None:
    stored = server.objects[(PRODUCT_COLLECTION, "alder")][object_uuid(PRODUCT_COLLECTION, "kettle")]
    assert set(stored["vector"]) == {"default"} and len(stored["vector"]["default"]) == 3
    assert stored["properties"]["hash"].endswith("|stub-embedder")
    async with fake_index(server) as bm25_only:  # same tenant, no embedder: every hash differs
        stats = await bm25_only.upsert_products(ALL_PRODUCTS, source="test-catalog")
        assert stats.updated == len(ALL_PRODUCTS)


async def test_search_sends_a_hybrid_query_with_the_configured_alpha(server: FakeServer) -> None:
    async with fake_index(server, embedder=StubEmbedder(), alpha=0.3) as idx:
        await idx.upsert_products(CATALOG, source="test-catalog")
        server.calls.clear()
        hits = await idx.search("wool socks", kinds=("product",))
    assert hits[0].id == "socks-wool"
    name, call = server.calls[0]
    assert (name, call["alpha"], call["vector"], call["offset"]) == ("hybrid", 0.3, [1.0, 0.0, 0.0], 0)


async def test_without_an_embedder_search_is_bm25(server: FakeServer) -> None:
    async with fake_index(server) as idx:
        await idx.upsert_products(CATALOG, source="test-catalog")
        server.calls.clear()
        assert (await idx.search("kettle", kinds=("product",)))[0].id == "kettle"
    assert server.calls[0][0] == "bm25"


async def test_hard_filters_hold_even_where_weaviate_cannot_say_them(index: WeaviateIndex) -> None:
    async def found(query: str, filters: SearchFilters) -> list[str]:
        return [hit.id for hit in await index.search(query, filters, kinds=("product",))]

    assert "split" in await found("shoe", SearchFilters(sizes=("41",)))
    assert "split" not in await found("shoe", SearchFilters(sizes=("41",), in_stock_only=True))
    assert await found("running shoe", SearchFilters(sizes=("41",), in_stock_only=True)) == []
    assert "shoe-race" not in await found("running shoe", SearchFilters(max_price=Decimal("100")))
    assert set(await found("chocolate granola snack bar", SearchFilters(exclude_allergens=("nuts",)))) == {"choc-dark"}
    assert await found("chocolate", SearchFilters(dietary=("vegan",))) == ["choc-dark"]


async def test_search_pages_past_products_the_exact_check_drops(server: FakeServer) -> None:
    # thirty shoes whose only size 40 is sold out rank first; the one that fits ranks last
    decoys = [product(f"decoy-{i:02}", "Trail shoe", "50.00", category="Running shoes", sizes={"40": 0, "41": 3})
              for i in range(30)]
    fits = product("fits", "Shoe", "50.00", category="Running shoes", sizes={"40": 2})
    async with fake_index(server) as idx:
        await idx.upsert_products([*decoys, fits], source="test-catalog")
        server.calls.clear()
        hits = await idx.search("trail shoe", SearchFilters(sizes=("40",), in_stock_only=True), k=1, kinds=("product",))
    assert [hit.id for hit in hits] == ["fits"]
    assert [call["offset"] for _, call in server.calls] == [0, 30]


async def test_passages_prefer_the_shoppers_language(index: WeaviateIndex) -> None:
    hits = await index.search("returns devolver 30", SearchFilters(lang="es"), k=2, kinds=("passage",))
    assert [hit.passage.lang for hit in hits if hit.passage] == ["es", "en"]
    hits = await index.search("returns devolver 30", SearchFilters(lang="en"), k=2, kinds=("passage",))
    assert [hit.passage.lang for hit in hits if hit.passage] == ["en", "es"]


async def test_both_kinds_are_merged_by_score(index: WeaviateIndex) -> None:
    hits = await index.search("returns kettle", k=5)
    assert {hit.kind for hit in hits} == {"product", "passage"}
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    assert await index.search("   ") == []


async def test_lookups_counts_and_brands(index: WeaviateIndex) -> None:
    assert await index.product_count() == len(ALL_PRODUCTS)
    assert await index.brands() == ("Finch", "Swift")  # as written; the empty brand is not one
    assert (await index.product_for_sku("shoe-road-42")) == CATALOG[2]
    assert await index.product_for_sku("nope") is None
    assert await index.get_product("nope") is None


async def test_product_names_page_through_the_whole_collection(
    index: WeaviateIndex, server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("kb.weaviate_index.NAMES_PAGE", 3)
    names = await index.product_names()
    assert sorted((n.brand, n.title, n.category, n.description) for n in names) == sorted(
        (p.brand, p.title, p.category, p.description) for p in ALL_PRODUCTS
    )
    pages = [call for name, call in server.calls if name == "fetch_objects"]
    assert len(pages) == len(ALL_PRODUCTS) // 3  # the first page has no cursor; each later one starts after the last
    assert all(call["limit"] == 3 for call in pages)
    server.down = True
    with pytest.raises(IndexUnavailableError, match="could not list product names"):
        await index.product_names()


async def test_rejected_objects_are_reported(server: FakeServer, index: WeaviateIndex) -> None:
    server.reject.add("new-one")
    with pytest.raises(WeaviateIndexError, match="new-one: rejected by the fake"):
        await index.upsert_products([product("new-one", "New", "1.00")])


async def test_what_the_products_are_is_read_once_until_a_write_or_its_age_limit(server: FakeServer) -> None:
    now = [1000.0]
    async with fake_index(server, embedder=StubEmbedder(), clock=lambda: now[0]) as idx:
        await idx.upsert_products(CATALOG, source="test-catalog")
        english = SearchFilters(lang="en")
        assert await idx.search("hiking mat", english, kinds=("product",)) == []  # socks and shoes, but no mat
        assert await idx.missing_kind("wool socks", "en") is None
        assert server.full_reads == 1  # one read of the products for both questions
        await idx.upsert_products([product("mat-1", "Cork hiking mat", "39.00", category="Yoga")])
        assert next(hit.id for hit in await idx.search("hiking mat", english, kinds=("product",))) == "mat-1"
        assert server.full_reads == 2  # our own write: read again
        now[0] += ASSORTMENT_MAX_AGE
        await idx.missing_kind("wool socks", "en")
        assert server.full_reads == 3  # another process may have written: read again after the age limit


async def test_an_unreachable_server_is_index_unavailable(server: FakeServer, index: WeaviateIndex) -> None:
    server.down = True
    with pytest.raises(IndexUnavailableError, match="could not search") as caught:
        await index.search("wool socks")
    assert isinstance(caught.value.__cause__, WeaviateQueryError)
    for call in (index.get_product("kettle"), index.product_count(), index.brands()):
        with pytest.raises(IndexUnavailableError):
            await call
    server.down = False  # back up: the same client answers again, no restart
    assert [hit.id for hit in await index.search("wool socks")]
    await index.close()
    with pytest.raises(IndexUnavailableError, match="not open"):
        await index.search("wool socks")


async def test_open_fails_clearly_when_nothing_listens() -> None:
    with socket.socket() as probe, socket.socket() as grpc_probe:
        probe.bind(("127.0.0.1", 0))
        grpc_probe.bind(("127.0.0.1", 0))
        port, grpc_port = probe.getsockname()[1], grpc_probe.getsockname()[1]
    index = WeaviateIndex(f"http://127.0.0.1:{port}?grpc_port={grpc_port}", timeout_seconds=1.0)
    with pytest.raises(IndexUnavailableError, match=f"Weaviate at http://127.0.0.1:{port} could not connect"):
        await index.open()
    with pytest.raises(IndexUnavailableError, match="not open"):
        await index.search("anything")


async def test_drop_tenant_empties_only_this_store(server: FakeServer, index: WeaviateIndex) -> None:
    async with fake_index(server, tenant="other-store") as other:
        await other.upsert_products([CATALOG[0]], source="test-catalog")
        await index.drop_tenant()
        assert await index.product_count() == 0
        assert await other.product_count() == 1


def test_query_arguments() -> None:
    where = product_filter(SearchFilters(in_stock_only=True))
    arguments = hybrid_arguments("wool", alpha=0.7, vector=[0.5, 0.25], limit=30, offset=30, filters=where, max_vector_distance=0.2)
    assert arguments["alpha"] == 0.7 and arguments["vector"] == [0.5, 0.25]
    assert (arguments["query_properties"], arguments["target_vector"], arguments["fusion_type"]) == (
        ["text"], "default", HybridFusion.RELATIVE_SCORE
    )
    assert (arguments["limit"], arguments["offset"], arguments["filters"], arguments["max_vector_distance"]) == (30, 30, where, 0.2)
    assert arguments["return_metadata"].score is True
    module = hybrid_arguments("wool", alpha=0.5, vector=None, limit=10)
    assert "vector" not in module and "max_vector_distance" not in module  # the module embeds the query
    assert set(bm25_arguments("wool", limit=10)) <= set(inspect.signature(_BM25QueryAsync.bm25).parameters)
    assert set(arguments) <= set(inspect.signature(_HybridQueryAsync.hybrid).parameters)


# --------------------------------------------------------------------------- a real server


@pytest.mark.skipif(not WEAVIATE_URL, reason="WEAVIATE_URL not set")
class TestLiveServer:
    """What the fake cannot prove: the server's own reading of the filters (run with WEAVIATE_URL)."""

    @pytest.fixture
    async def live(self) -> AsyncIterator[WeaviateIndex]:
        assert WEAVIATE_URL is not None
        index = WeaviateIndex(WEAVIATE_URL, api_key=os.environ.get("WEAVIATE_API_KEY"), tenant=f"test-{uuid_module.uuid4().hex[:12]}")
        async with index:
            await index.upsert_products(ALL_PRODUCTS, source="test-catalog")
            try:
                yield index
            finally:
                await index.drop_tenant(recreate=False)

    async def test_exclusions_keep_products_with_empty_facets(self, live: WeaviateIndex) -> None:
        found = {hit.id for hit in await live.search("socks scarf gift card tea", SearchFilters(exclude_materials=("wool",)), k=20)}
        assert {"socks-cotton", "card", "tea"} <= found
        assert not {"socks-wool", "scarf"} & found
        found = {hit.id for hit in await live.search("gift card tea", SearchFilters(exclude_brands=("swift",)), k=20)}
        assert "tea" in found  # no brand at all is not the excluded brand

    @pytest.mark.parametrize("filters", FILTERS, ids=[f"f{i}" for i in range(len(FILTERS))])
    async def test_server_filter_never_loses_a_product(self, live: WeaviateIndex, filters: SearchFilters) -> None:
        where = product_filter(filters)
        result = await live._collection(PRODUCT_COLLECTION).query.fetch_objects(filters=where, limit=100, return_properties=["product_id"])
        assert {p.id for p in ALL_PRODUCTS if product_matches(p, filters)} <= {o.properties["product_id"] for o in result.objects}
