"""The scale-out index: Weaviate (weaviate-client v4, async), one tenant per store.

Layout in Weaviate:

* two collections, ``Product`` and ``Passage``, both with multi-tenancy enabled;
  every object of a store lives in that store's tenant (``SHOPKEEPER_WEAVIATE_TENANT``),
  so one cluster serves many stores without their catalogs ever mixing;
* each object keeps the item itself as JSON (``data``), the text that keyword and
  vector search see (``text``), its ``source`` and content ``hash`` (incremental
  upserts), and flat, case-folded properties the filters run on: ``min_price`` /
  ``max_price``, ``in_stock``, ``edible``, ``category``, ``brand``, ``skus[]``,
  ``sizes[]``, ``colors[]``, ``materials[]``, ``allergens[]``, ``free_from[]``,
  ``dietary[]`` (passages: ``lang``);
* one named vector, ``default``: either computed by shopkeeper's own embedder and
  sent with each object (``vectorizer="shopkeeper"``, the collection has no
  vectorizer) or computed by a Weaviate vectorizer module from ``text``
  (``vectorizer="module"``).

A search is one hybrid query per kind (BM25 on ``text`` fused with the vector
search, ``alpha`` weighting the vector side). Structured filters keep the SQLite
index's semantics exactly. Weaviate objects are flat, so "one variant satisfies
every variant condition at once" (size 42 *and* in stock *and* under 100) cannot
be said in a Weaviate filter: :func:`product_filter` builds the strongest filter
Weaviate can evaluate that never rejects a product the SQLite index would keep,
and :func:`product_matches` then checks each returned product exactly, paging
further when it drops some. A hard filter is therefore never broken.

Errors, translated at this boundary (``raise ... from exc``)::

    RuntimeError
    ├── IndexUnavailableError   Weaviate cannot answer now (down, unreachable,
    │                           timed out, the index is not open): callers may fall back
    └── WeaviateIndexError      Weaviate answered but refused: a rejected object,
                                a collection created without multi-tenancy, a bad tenant

Requires a Weaviate server >= 1.33 (the ``ContainsNone`` filter operator).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import weaviate
from weaviate import WeaviateAsyncClient
from weaviate.classes.aggregate import GroupByAggregate
from weaviate.classes.config import Configure, DataType, Property, Tokenization
from weaviate.classes.data import DataObject
from weaviate.classes.init import AdditionalConfig, Auth, Timeout
from weaviate.classes.query import Filter, HybridFusion, MetadataQuery
from weaviate.classes.tenants import Tenant
from weaviate.collections.classes.config import _MultiTenancyConfigCreate
from weaviate.collections.classes.config_vectors import _VectorConfigCreate
from weaviate.collections.classes.filters import _Filters
from weaviate.collections.collection.async_ import CollectionAsync
from weaviate.exceptions import WeaviateBaseError
from weaviate.util import generate_uuid5

from kb.assortment import Assortment
from kb.embedder import Embedder
from kb.index import ALL_KINDS, BaseIndex, IndexUnavailableError, UpsertStats, WeaviateIndexError
from kb.models import Hit, HitKind, Passage, Product, ProductName, SearchFilters, Variant
from kb.sqlite_index import COLOR_ALIASES, DIETARY_FREE_FROM, is_edible, material_words, title_colors

log = logging.getLogger(__name__)

VectorizerChoice = Literal["shopkeeper", "module"]

PRODUCT_COLLECTION = "Product"
PASSAGE_COLLECTION = "Passage"
VECTOR_NAME = "default"
DEFAULT_MODULE = "text2vec-transformers"
DEFAULT_GRPC_PORT = 50051

# Option names that carry a variant's size and colour (as the SQLite index reads them).
SIZE_OPTIONS = ("size", "taille", "talla", "größe")
COLOR_OPTIONS = ("color", "colour", "couleur", "farbe")
# Attributes copied to filterable array properties.
FACET_PROPERTIES = ("materials", "allergens", "free_from", "dietary")

TENANT_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
INSERT_CHUNK = 100  # objects per insert_many request
LOOKUP_CHUNK = 200  # ids per hash-lookup request
NAMES_PAGE = 1_000  # products per page when listing product names
DELETE_ROUNDS = 1_000  # a delete_many removes at most QUERY_MAXIMUM_RESULTS objects per call
SEARCH_PAGE_MIN = 30  # candidates per hybrid page, before the exact product check
SEARCH_MAX_PAGES = 5
ASSORTMENT_MAX_AGE = 300.0  # seconds: products another process ingested count as carried after at most this
# Cosine distance above which the vector side of hybrid ignores an object: similarity 0.80
# on the e5 scale, the relevance floor the SQLite index uses. Only for shopkeeper's embedder.
DENSE_MAX_DISTANCE = 0.20
# Score added to a passage in the shopper's language (relative-score fusion tops at 1.0).
LANG_BONUS = 0.5


# --------------------------------------------------------------------------- connection


@dataclass(frozen=True, slots=True)
class ConnectionParams:
    """Where the client connects: REST (HTTP) and gRPC endpoints."""

    http_host: str
    http_port: int
    http_secure: bool
    grpc_host: str
    grpc_port: int
    grpc_secure: bool


def connection_params(url: str) -> ConnectionParams:
    """Connection parameters from ``SHOPKEEPER_WEAVIATE_URL``.

    ``http://weaviate:8080`` → REST on weaviate:8080, gRPC on weaviate:50051.
    The gRPC endpoint can be moved with query parameters, e.g.
    ``https://abc.weaviate.cloud?grpc_host=grpc-abc.weaviate.cloud&grpc_port=443``;
    gRPC is secure exactly when the URL is ``https``.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not a Weaviate URL (expected http(s)://host[:port]): {redact_url(url)!r}")
    secure = parts.scheme == "https"
    query = parse_qs(parts.query)
    grpc_host = query.get("grpc_host", [parts.hostname])[0]
    try:
        http_port = parts.port or (443 if secure else 80)
        grpc_port = int(query.get("grpc_port", [str(DEFAULT_GRPC_PORT)])[0])
    except ValueError as exc:
        raise ValueError(f"bad port in Weaviate URL {redact_url(url)!r}: {exc}") from None
    if grpc_host == parts.hostname and grpc_port == http_port:
        raise ValueError(f"Weaviate URL {redact_url(url)!r}: REST and gRPC cannot share port {http_port}; set ?grpc_port=")
    return ConnectionParams(parts.hostname, http_port, secure, grpc_host, grpc_port, secure)


def redact_url(url: str) -> str:
    """The URL without user info or query string, safe to log."""
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def validate_tenant(name: str) -> str:
    """Return ``name`` if Weaviate accepts it as a tenant name, else raise ``ValueError``."""
    if not TENANT_NAME.fullmatch(name):
        raise ValueError(f"invalid Weaviate tenant name {name!r}: use 1-64 characters of A-Z, a-z, 0-9, _ and -")
    return name


# --------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class CollectionSpec:
    """One collection's definition, as passed to ``client.collections.create``."""

    name: str
    properties: tuple[Property, ...]
    vector_config: _VectorConfigCreate
    multi_tenancy_config: _MultiTenancyConfigCreate

    def create_arguments(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "properties": list(self.properties),
            "vector_config": self.vector_config,
            "multi_tenancy_config": self.multi_tenancy_config,
        }


def _keyword(name: str, *, array: bool = False) -> Property:
    # FIELD tokenization: the whole (case-folded) value is one token, so "running shoes" equals only itself
    return Property(
        name=name,
        data_type=DataType.TEXT_ARRAY if array else DataType.TEXT,
        tokenization=Tokenization.FIELD,
        index_filterable=True,
        index_searchable=False,
        skip_vectorization=True,
        vectorize_property_name=False,
    )


def _stored(name: str) -> Property:
    return Property(
        name=name, data_type=DataType.TEXT, index_filterable=False, index_searchable=False,
        skip_vectorization=True, vectorize_property_name=False,
    )


def _searchable(name: str) -> Property:
    return Property(
        name=name, data_type=DataType.TEXT, tokenization=Tokenization.WORD, index_filterable=False,
        index_searchable=True, vectorize_property_name=False,
    )


def _number(name: str) -> Property:
    return Property(name=name, data_type=DataType.NUMBER, index_filterable=True, index_range_filters=True)


def _flag(name: str) -> Property:
    return Property(name=name, data_type=DataType.BOOL, index_filterable=True)


def product_schema() -> tuple[Property, ...]:
    """The ``Product`` collection's properties."""
    return (
        _keyword("product_id"),
        _keyword("source"),
        _stored("hash"),
        _stored("data"),
        _searchable("text"),
        _keyword("category"),
        _keyword("brand"),
        _keyword("brand_name"),
        _number("min_price"),
        _number("max_price"),
        _flag("in_stock"),
        _flag("edible"),
        _keyword("skus", array=True),
        _keyword("sizes", array=True),
        _keyword("colors", array=True),
        *(_keyword(name, array=True) for name in FACET_PROPERTIES),
    )


def passage_schema() -> tuple[Property, ...]:
    """The ``Passage`` collection's properties."""
    return (
        _keyword("passage_id"),
        _keyword("source"),
        _stored("hash"),
        _stored("data"),
        _searchable("text"),
        _keyword("lang"),
    )


def vector_config(vectorizer: VectorizerChoice, module: str = DEFAULT_MODULE) -> _VectorConfigCreate:
    """The named vector: self-provided (our embedder) or a vectorizer module reading ``text``."""
    if vectorizer == "shopkeeper":
        self_provided: _VectorConfigCreate = Configure.Vectors.self_provided(name=VECTOR_NAME)
        return self_provided
    if module == "text2vec-transformers":
        return Configure.Vectors.text2vec_transformers(name=VECTOR_NAME, source_properties=["text"], vectorize_collection_name=False)
    return Configure.Vectors.custom(name=VECTOR_NAME, module_name=module, source_properties=["text"])


def collection_specs(vectorizer: VectorizerChoice, module: str = DEFAULT_MODULE) -> tuple[CollectionSpec, CollectionSpec]:
    """Both collections: multi-tenant, tenants created explicitly (a typo never makes a store)."""
    tenancy = Configure.multi_tenancy(enabled=True, auto_tenant_creation=False, auto_tenant_activation=True)
    vectors = vector_config(vectorizer, module)
    return (
        CollectionSpec(PRODUCT_COLLECTION, product_schema(), vectors, tenancy),
        CollectionSpec(PASSAGE_COLLECTION, passage_schema(), vectors, tenancy),
    )


# --------------------------------------------------------------------------- objects


def object_uuid(collection: str, item_id: str) -> str:
    """The deterministic object id of an item: re-importing it replaces the same object."""
    return str(generate_uuid5(item_id, collection))


def _folded(values: Iterable[str]) -> list[str]:
    return sorted({str(v).casefold() for v in values})


def _option(variant: Variant, names: tuple[str, ...]) -> str | None:
    for key, value in variant.options.items():
        if key.lower() in names:
            return str(value).lower()
    return None


def product_facets(product: Product) -> dict[str, set[str]]:
    """The case-folded facet values filters read, derived as the SQLite index derives its facets table.

    Colours come from the attributes and the ``color`` option, else from colour
    words in the title, plus their aliases (grey/gray); dietary labels add the
    allergens they guarantee absent to ``free_from``.
    """
    facets: dict[str, set[str]] = {}
    for name in ("materials", "colors", *FACET_PROPERTIES):
        values = product.attributes.get(name) or []
        if isinstance(values, str):
            values = [values]
        facets[name] = {str(v).casefold() for v in values} if isinstance(values, list | tuple) else set()
    for diet in facets["dietary"]:
        facets["free_from"].update(DIETARY_FREE_FROM.get(diet, ()))
    facets["materials"].update(material_words(product.attributes.get("materials")))
    colors = facets["colors"]
    colors.update(product.option_values("color"))
    if not colors:
        colors.update(title_colors(product))  # "Green tea" is green when the catalog says nothing else
    colors.update(COLOR_ALIASES[c] for c in list(colors) if c in COLOR_ALIASES)
    return facets


def product_to_json(product: Product) -> str:
    return json.dumps(asdict(product), default=str, ensure_ascii=False)


def product_from_json(data: str) -> Product:
    raw: dict[str, Any] = json.loads(data)
    raw["variants"] = tuple(
        Variant(sku=v["sku"], price=Decimal(v["price"]), stock=v["stock"], options=v.get("options") or {}) for v in raw["variants"]
    )
    raw["tags"] = tuple(raw.get("tags") or ())
    return Product(**raw)


def passage_from_json(data: str) -> Passage:
    raw: dict[str, Any] = json.loads(data)
    raw["heading_path"] = tuple(raw.get("heading_path") or ())
    return Passage(**raw)


def normalize_lang(lang: str) -> str:
    return lang.replace("-", "_")


def product_properties(product: Product, stored_hash: str) -> dict[str, Any]:
    """The Weaviate properties of a product object."""
    facets = product_facets(product)
    sizes = {s for v in product.variants if (s := _option(v, SIZE_OPTIONS)) is not None}
    colors = facets["colors"] | {c for v in product.variants if (c := _option(v, COLOR_OPTIONS)) is not None}
    return {
        "product_id": product.id,
        "source": product.source,
        "hash": stored_hash,
        "data": product_to_json(product),
        "text": product.search_text(),
        "category": product.category.casefold(),
        "brand": product.brand.casefold(),
        "brand_name": product.brand,
        "min_price": float(product.min_price),
        "max_price": float(max(v.price for v in product.variants)),
        "in_stock": product.in_stock,
        "edible": is_edible(product),
        "skus": sorted({v.sku for v in product.variants}),
        "sizes": sorted(sizes),
        "colors": sorted(colors),
        **{name: sorted(facets[name]) for name in FACET_PROPERTIES},
    }


def passage_properties(passage: Passage, stored_hash: str) -> dict[str, Any]:
    """The Weaviate properties of a passage object."""
    return {
        "passage_id": passage.id,
        "source": passage.source,
        "hash": stored_hash,
        "data": json.dumps(asdict(passage), ensure_ascii=False),
        "text": passage.search_text(),
        "lang": normalize_lang(passage.lang),
    }


# --------------------------------------------------------------------------- filters


def product_filter(f: SearchFilters) -> _Filters | None:
    """The Weaviate filter for ``f``: never rejects a product :func:`product_matches` accepts.

    Each condition alone is exact; what Weaviate cannot say (several variant
    conditions holding for the *same* variant, excluded colours) is left to
    :func:`product_matches`. None when ``f`` filters nothing.
    """
    parts: list[_Filters] = []
    if f.max_price is not None:
        parts.append(Filter.by_property("min_price").less_or_equal(float(f.max_price)))
    if f.min_price is not None:
        parts.append(Filter.by_property("max_price").greater_or_equal(float(f.min_price)))
    if f.in_stock_only:
        parts.append(Filter.by_property("in_stock").equal(True))
    if f.sizes:
        parts.append(Filter.by_property("sizes").contains_any(_folded(f.sizes)))
    if f.colors:
        parts.append(Filter.by_property("colors").contains_any(_folded(f.colors)))
    if f.category:
        parts.append(Filter.by_property("category").equal(f.category.casefold()))
    if f.brands:
        parts.append(Filter.by_property("brand").contains_any(_folded(f.brands)))
    if f.exclude_brands:
        parts.append(Filter.by_property("brand").contains_none(_folded(f.exclude_brands)))
    if f.exclude_materials:
        parts.append(Filter.by_property("materials").contains_none(_folded(f.exclude_materials)))
    if f.dietary:
        parts.append(Filter.by_property("dietary").contains_all(_folded(f.dietary)))
    if f.exclude_allergens:
        # hard rule: food is kept only when its label says it is free of every excluded allergen
        parts.append(
            Filter.any_of([
                Filter.by_property("edible").equal(False),
                Filter.by_property("free_from").contains_all(_folded(f.exclude_allergens)),
            ])
        )
        # listed among its allergens: out, whatever else its label claims
        parts.append(Filter.by_property("allergens").contains_none(_folded(f.exclude_allergens)))
    return Filter.all_of(parts) if parts else None


def _variant_matches(variant: Variant, f: SearchFilters, product_colors: set[str]) -> bool:
    price = float(variant.price)
    if f.max_price is not None and price > float(f.max_price):
        return False
    if f.min_price is not None and price < float(f.min_price):
        return False
    if f.in_stock_only and not variant.in_stock:
        return False
    if f.sizes and _option(variant, SIZE_OPTIONS) not in set(_folded(f.sizes)):
        return False
    color = _option(variant, COLOR_OPTIONS)
    if f.colors:
        wanted = set(_folded(f.colors))
        if color not in wanted and not (color is None and product_colors & wanted):
            return False
    return not (f.exclude_colors and color is not None and color in set(_folded(f.exclude_colors)))


def product_matches(product: Product, f: SearchFilters) -> bool:
    """Whether ``product`` satisfies every structured filter, exactly as the SQLite index decides.

    Variant conditions (price range, stock, size, colour, excluded colour) must
    hold together for at least one variant; an allergen exclusion keeps food
    only when its label (``free_from`` or a dietary label implying it) says so.
    """
    facets = product_facets(product)
    variant_conditions = (
        f.max_price is not None or f.min_price is not None or f.in_stock_only or f.sizes or f.colors or f.exclude_colors
    )
    if variant_conditions and not any(_variant_matches(v, f, facets["colors"]) for v in product.variants):
        return False
    if f.category and product.category.casefold() != f.category.casefold():
        return False
    if f.brands and product.brand.casefold() not in set(_folded(f.brands)):
        return False
    if f.exclude_brands and product.brand.casefold() in set(_folded(f.exclude_brands)):
        return False
    if facets["materials"] & set(_folded(f.exclude_materials)):
        return False
    if not set(_folded(f.dietary)) <= facets["dietary"]:
        return False
    excluded = set(_folded(f.exclude_allergens))
    if excluded & facets["allergens"]:
        return False
    return not (excluded and is_edible(product) and not excluded <= facets["free_from"])


# --------------------------------------------------------------------------- queries


def hybrid_arguments(
    query: str,
    *,
    alpha: float,
    vector: Sequence[float] | None,
    limit: int,
    offset: int = 0,
    filters: _Filters | None = None,
    max_vector_distance: float | None = None,
) -> dict[str, Any]:
    """Keyword arguments of ``collection.query.hybrid`` for one page of candidates.

    ``vector`` is the query's embedding when shopkeeper embeds (None: the
    collection's vectorizer module embeds the query text).
    """
    arguments: dict[str, Any] = {
        "query": query,
        "alpha": alpha,
        "query_properties": ["text"],
        "fusion_type": HybridFusion.RELATIVE_SCORE,
        "target_vector": VECTOR_NAME,
        "limit": limit,
        "offset": offset,
        "filters": filters,
        "return_metadata": MetadataQuery(score=True),
        "return_properties": ["data"],
    }
    if vector is not None:
        arguments["vector"] = [float(x) for x in vector]
    if max_vector_distance is not None:
        arguments["max_vector_distance"] = max_vector_distance
    return arguments


def bm25_arguments(query: str, *, limit: int, offset: int = 0, filters: _Filters | None = None) -> dict[str, Any]:
    """Keyword arguments of ``collection.query.bm25`` (no vectors at all: no embedder installed)."""
    return {
        "query": query,
        "query_properties": ["text"],
        "limit": limit,
        "offset": offset,
        "filters": filters,
        "return_metadata": MetadataQuery(score=True),
        "return_properties": ["data"],
    }


def _score(obj: Any) -> float:
    score = getattr(obj.metadata, "score", None)
    return float(score) if score is not None else 0.0


# --------------------------------------------------------------------------- the index


ClientFactory = Callable[[], WeaviateAsyncClient]


class WeaviateIndex(BaseIndex):
    """The Weaviate implementation of :class:`~kb.index.BaseIndex`, for one store (tenant).

    ``open()`` connects, creates the two collections when missing and this
    store's tenant in each; ``close()`` disconnects. ``client_factory`` replaces
    the real client (tests); by default it is built from ``url`` and ``api_key``.
    """

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        tenant: str = "default",
        alpha: float = 0.5,
        vectorizer: VectorizerChoice = "shopkeeper",
        embedder: Embedder | None = None,
        module: str = DEFAULT_MODULE,
        timeout_seconds: float = 10.0,
        client_factory: ClientFactory | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be between 0 and 1, not {alpha}")
        self.url = url
        self.tenant = validate_tenant(tenant)
        self.alpha = alpha
        self.vectorizer: VectorizerChoice = vectorizer
        self.embedder = embedder if vectorizer == "shopkeeper" else None
        self.module = module
        self._params = connection_params(url)
        self._api_key = api_key
        self._timeout = timeout_seconds
        self._client_factory = client_factory or self._default_client
        self._client: WeaviateAsyncClient | None = None
        self._clock = clock
        self._assortment: tuple[float, Assortment] | None = None  # (read at, what the products are)

    def __repr__(self) -> str:
        embedder = self.embedder.name if self.embedder else None
        return (
            f"WeaviateIndex(url={redact_url(self.url)!r}, tenant={self.tenant!r}, vectorizer={self.vectorizer!r}, "
            f"embedder={embedder!r})"
        )

    # -- lifecycle ------------------------------------------------------------

    def _default_client(self) -> WeaviateAsyncClient:
        p = self._params
        return weaviate.use_async_with_custom(
            http_host=p.http_host,
            http_port=p.http_port,
            http_secure=p.http_secure,
            grpc_host=p.grpc_host,
            grpc_port=p.grpc_port,
            grpc_secure=p.grpc_secure,
            auth_credentials=Auth.api_key(self._api_key) if self._api_key else None,
            additional_config=AdditionalConfig(timeout=Timeout(init=self._timeout, query=self._timeout, insert=max(60.0, self._timeout))),
        )

    async def open(self) -> None:
        if self.vectorizer == "shopkeeper" and self.embedder is None:
            log.warning("Weaviate index without an embedder: searching with BM25 only")
        client = self._client_factory()
        try:
            with self._unavailable("connect"):
                await client.connect()
            with self._unavailable(f"prepare its collections for tenant {self.tenant!r}"):
                for spec in collection_specs(self.vectorizer, self.module):
                    await self._ensure_collection(client, spec)
                    await self._ensure_tenant(client.collections.use(spec.name))
        except BaseException:
            await client.close()
            raise
        self._client = client
        log.info("Weaviate index open at %s, tenant %r", redact_url(self.url), self.tenant)

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    async def _ensure_collection(self, client: WeaviateAsyncClient, spec: CollectionSpec) -> None:
        if not await client.collections.exists(spec.name):
            try:
                await client.collections.create(**spec.create_arguments())
                log.info("created Weaviate collection %s", spec.name)
                return
            except WeaviateBaseError:
                # another process (web and worker start together) may have created it first
                if not await client.collections.exists(spec.name):
                    raise
        config = await client.collections.use(spec.name).config.get()
        if not config.multi_tenancy_config.enabled:
            raise WeaviateIndexError(
                f"Weaviate collection {spec.name} exists without multi-tenancy; delete it or point shopkeeper at another cluster"
            )

    async def _ensure_tenant(self, collection: CollectionAsync[Any, Any]) -> None:
        if await collection.tenants.exists(self.tenant):
            return
        try:
            await collection.tenants.create([Tenant(name=self.tenant)])
            log.info("created tenant %r in Weaviate collection %s", self.tenant, collection.name)
        except WeaviateBaseError:
            if not await collection.tenants.exists(self.tenant):
                raise

    async def drop_tenant(self, *, recreate: bool = True) -> None:
        """Delete this store's tenant from both collections: every product and passage of the store.

        With ``recreate`` an empty tenant replaces it and the next upsert starts
        from nothing (the way to re-index from scratch); without it the index is
        left unusable until reopened (removing a store, cleaning up after tests).
        """
        client = self._require_client()
        self._assortment = None
        with self._unavailable("remove the tenant"):
            for name in (PRODUCT_COLLECTION, PASSAGE_COLLECTION):
                collection = client.collections.use(name)
                if await collection.tenants.exists(self.tenant):
                    await collection.tenants.remove([self.tenant])
            if recreate:
                for name in (PRODUCT_COLLECTION, PASSAGE_COLLECTION):
                    await self._ensure_tenant(client.collections.use(name))

    def _require_client(self) -> WeaviateAsyncClient:
        if self._client is None:
            raise IndexUnavailableError("the Weaviate index is not open")
        return self._client

    def _collection(self, name: str) -> CollectionAsync[Any, Any]:
        return self._require_client().collections.use(name).with_tenant(self.tenant)

    @contextmanager
    def _unavailable(self, action: str) -> Iterator[None]:
        try:
            yield
        except (WeaviateBaseError, OSError) as exc:
            raise IndexUnavailableError(f"Weaviate at {redact_url(self.url)} could not {action}: {exc}") from exc

    # -- writing --------------------------------------------------------------

    def _vector_label(self) -> str:
        if self.vectorizer == "module":
            return f"module:{self.module}"
        return self.embedder.name if self.embedder else "none"

    def stored_hash(self, item: Product | Passage) -> str:
        """Content hash plus what made the vector: a new embedder re-embeds everything."""
        return f"{item.content_hash()}|{self._vector_label()}"

    async def _existing_hashes(self, collection: CollectionAsync[Any, Any], uuids: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(uuids), LOOKUP_CHUNK):
            chunk = uuids[start : start + LOOKUP_CHUNK]
            result = await collection.query.fetch_objects(
                filters=Filter.by_id().contains_any(chunk), limit=len(chunk), return_properties=["hash"]
            )
            found.update({str(obj.uuid): str(obj.properties.get("hash", "")) for obj in result.objects})
        return found

    async def _vectors(self, texts: list[str]) -> list[list[float]] | None:
        if self.embedder is None or not texts:
            return None
        matrix = await asyncio.to_thread(self.embedder.embed_passages, texts)
        return [[float(x) for x in row] for row in matrix]

    async def _insert(self, collection: CollectionAsync[Any, Any], objects: list[DataObject[Any, Any]], labels: list[str]) -> None:
        for start in range(0, len(objects), INSERT_CHUNK):
            result = await collection.data.insert_many(objects[start : start + INSERT_CHUNK])
            if result.has_errors:
                problems = "; ".join(f"{labels[start + i]}: {error.message}" for i, error in list(result.errors.items())[:3])
                raise WeaviateIndexError(f"Weaviate rejected {len(result.errors)} object(s) in {collection.name}: {problems}")

    async def _remove_missing(self, collection: CollectionAsync[Any, Any], source: str | None, keep: list[str]) -> int:
        if source is None:
            return 0
        where = Filter.by_property("source").equal(source)
        if keep:
            where = Filter.all_of([where, Filter.by_id().contains_none(keep)])
        removed = 0
        for _ in range(DELETE_ROUNDS):
            result = await collection.data.delete_many(where=where)
            if result.failed:
                raise WeaviateIndexError(f"Weaviate failed to delete {result.failed} stale object(s) of {source!r}")
            removed += result.successful
            if result.successful == 0 or result.matches <= result.successful:
                break
        return removed

    async def _upsert(
        self,
        collection_name: str,
        items: dict[str, Product] | dict[str, Passage],
        source: str | None,
    ) -> UpsertStats:
        collection = self._collection(collection_name)
        uuids = {item_id: object_uuid(collection_name, item_id) for item_id in items}
        with self._unavailable(f"update {collection_name}"):
            existing = await self._existing_hashes(collection, list(uuids.values()))
            changed = [(item_id, item) for item_id, item in items.items() if existing.get(uuids[item_id]) != self.stored_hash(item)]
            vectors = await self._vectors([item.search_text() for _, item in changed])
            objects: list[DataObject[Any, Any]] = []
            for i, (item_id, item) in enumerate(changed):
                stored = self.stored_hash(item)
                properties = product_properties(item, stored) if isinstance(item, Product) else passage_properties(item, stored)
                vector = {VECTOR_NAME: vectors[i]} if vectors is not None else None
                objects.append(DataObject(properties=properties, uuid=uuids[item_id], vector=vector))
            await self._insert(collection, objects, [item_id for item_id, _ in changed])
            removed = await self._remove_missing(collection, source, list(uuids.values()))
        added = sum(1 for item_id, _ in changed if uuids[item_id] not in existing)
        return UpsertStats(added=added, updated=len(changed) - added, unchanged=len(items) - len(changed), removed=removed)

    async def upsert_products(self, products: Iterable[Product], *, source: str | None = None) -> UpsertStats:
        try:
            return await self._upsert(PRODUCT_COLLECTION, {p.id: p for p in products}, source)
        finally:
            self._assortment = None

    async def upsert_passages(self, passages: Iterable[Passage], *, source: str | None = None) -> UpsertStats:
        return await self._upsert(PASSAGE_COLLECTION, {p.id: p for p in passages}, source)

    # -- reading --------------------------------------------------------------

    async def get_product(self, product_id: str) -> Product | None:
        collection = self._collection(PRODUCT_COLLECTION)
        with self._unavailable("read a product"):
            obj = await collection.query.fetch_object_by_id(object_uuid(PRODUCT_COLLECTION, product_id), return_properties=["data"])
        return product_from_json(str(obj.properties["data"])) if obj is not None else None

    async def product_for_sku(self, sku: str) -> Product | None:
        """The product one of whose variants has ``sku`` (inventory updates)."""
        collection = self._collection(PRODUCT_COLLECTION)
        with self._unavailable("look up a SKU"):
            result = await collection.query.fetch_objects(
                filters=Filter.by_property("skus").contains_any([sku]), limit=1, return_properties=["data"]
            )
        return product_from_json(str(result.objects[0].properties["data"])) if result.objects else None

    async def product_count(self) -> int:
        collection = self._collection(PRODUCT_COLLECTION)
        with self._unavailable("count products"):
            result = await collection.aggregate.over_all(total_count=True)
        return int(result.total_count or 0)

    async def brands(self) -> tuple[str, ...]:
        collection = self._collection(PRODUCT_COLLECTION)
        with self._unavailable("list brands"):
            result = await collection.aggregate.over_all(group_by=GroupByAggregate(prop="brand_name", limit=10_000), total_count=True)
        return tuple(sorted({str(group.grouped_by.value) for group in result.groups if group.grouped_by.value}))

    async def product_names(self) -> tuple[ProductName, ...]:
        collection = self._collection(PRODUCT_COLLECTION)
        names: list[ProductName] = []
        after: Any = None
        with self._unavailable("list product names"):
            while True:  # cursor paging: the whole collection, past the query maximum of offset paging
                result = await collection.query.fetch_objects(limit=NAMES_PAGE, after=after, return_properties=["data"])
                for obj in result.objects:
                    product = product_from_json(str(obj.properties["data"]))
                    names.append(ProductName(product.brand, product.title, product.category, product.description))
                if len(result.objects) < NAMES_PAGE:
                    break
                after = result.objects[-1].uuid
        return tuple(names)
    async def assortment(self) -> Assortment:
        cached = self._assortment
        if cached is not None and self._clock() - cached[0] < ASSORTMENT_MAX_AGE:
            return cached[1]
        collection = self._collection(PRODUCT_COLLECTION)
        named: list[tuple[str, str, tuple[str, ...]]] = []
        with self._unavailable("search the kinds of products it holds"):
            async for obj in collection.iterator(return_properties=["data"]):
                product = product_from_json(str(obj.properties["data"]))
                named.append((product.title, product.category, product.tags))
        assortment = Assortment.from_products(named)
        self._assortment = (self._clock(), assortment)
        return assortment

    async def search(
        self,
        query: str,
        filters: SearchFilters | None = None,
        k: int = 10,
        kinds: Sequence[HitKind] = ALL_KINDS,
    ) -> list[Hit]:
        filters = filters or SearchFilters()
        if not query.strip() or k <= 0:
            return []
        self._require_client()
        if "product" in kinds and await self.missing_kind(query, filters.lang):
            kinds = tuple(kind for kind in kinds if kind != "product")
            if not kinds:
                return []
        with self._unavailable("search"):
            vector = None
            if self.embedder is not None:
                vector = [float(x) for x in await asyncio.to_thread(self.embedder.embed_query, query)]
            searches = []
            if "product" in kinds:
                searches.append(asyncio.ensure_future(self._search_products(query, vector, filters, k)))
            if "passage" in kinds:
                searches.append(asyncio.ensure_future(self._search_passages(query, vector, filters, k)))
            try:
                results = await asyncio.gather(*searches)
            except BaseException:
                for search in searches:
                    search.cancel()
                raise
        hits = [hit for result in results for hit in result]
        hits.sort(key=lambda hit: hit.score, reverse=True)
        return hits[:k]

    async def _page(self, collection: CollectionAsync[Any, Any], query: str, vector: list[float] | None, *,
                    limit: int, offset: int, filters: _Filters | None) -> list[Any]:
        if self.vectorizer == "shopkeeper" and vector is None:
            result = await collection.query.bm25(**bm25_arguments(query, limit=limit, offset=offset, filters=filters))
        else:
            distance = DENSE_MAX_DISTANCE if self.vectorizer == "shopkeeper" else None
            result = await collection.query.hybrid(**hybrid_arguments(
                query, alpha=self.alpha, vector=vector, limit=limit, offset=offset, filters=filters, max_vector_distance=distance,
            ))
        return list(result.objects)

    async def _search_products(self, query: str, vector: list[float] | None, filters: SearchFilters, k: int) -> list[Hit]:
        collection = self._collection(PRODUCT_COLLECTION)
        exact = not filters.is_empty()
        where = product_filter(filters) if exact else None
        page = max(3 * k, SEARCH_PAGE_MIN)
        hits: list[Hit] = []
        for number in range(SEARCH_MAX_PAGES):
            objects = await self._page(collection, query, vector, limit=page, offset=number * page, filters=where)
            for obj in objects:
                product = product_from_json(str(obj.properties["data"]))
                if exact and not product_matches(product, filters):
                    continue
                hits.append(Hit(kind="product", score=_score(obj), product=product))
                if len(hits) >= k:
                    return hits
            if len(objects) < page:
                break
        return hits

    async def _search_passages(self, query: str, vector: list[float] | None, filters: SearchFilters, k: int) -> list[Hit]:
        collection = self._collection(PASSAGE_COLLECTION)
        objects = await self._page(collection, query, vector, limit=max(3 * k, SEARCH_PAGE_MIN), offset=0, filters=None)
        preferred = normalize_lang(filters.lang) if filters.lang else None
        hits: list[Hit] = []
        for obj in objects:
            passage = passage_from_json(str(obj.properties["data"]))
            bonus = LANG_BONUS if preferred and normalize_lang(passage.lang) == preferred else 0.0
            hits.append(Hit(kind="passage", score=_score(obj) + bonus, passage=passage))
        hits.sort(key=lambda hit: hit.score, reverse=True)
        return hits[:k]
