"""Keeping the index's catalog current between full imports: stock levels and catalog files.

Stock: :func:`set_stock` (one SKU) and :func:`set_stocks` (a batch) change the
stock of variants through the index contract alone: load the product, replace
the variant's stock, upsert the product without a ``source`` (so nothing else is
removed). A variant that goes from sold out (stock 0 or below) to a positive
stock is *back in stock*: when a conversation store is given, the change is
appended to its durable ``back_in_stock_events`` table, for follow-up jobs to
consume, and returned. An untracked variant (stock None) is never sold out.

Catalog files: :func:`ingest_path` is the one parse-and-upsert path shared by
``shopkeeper ingest`` and ``POST /api/catalog``: parse (in a thread), upsert in
chunks reporting progress, remove the source's products that disappeared, and
return the counts with the rejected rows.

The index is written before the event is recorded, and the two are different
systems: a crash between them loses that one event, never invents one.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from kb.index import BaseIndex, UpsertStats
from kb.ingest import RowError, parse
from kb.models import Product
from kb.sqlite_index import SQLiteIndex

if TYPE_CHECKING:
    from bot.store import Store

MAX_QUANTITY = 1_000_000_000
PROGRESS_STEPS = 100  # report progress about every 1%
PROGRESS_MIN_CHUNK = 32  # ...but never upsert fewer items at once than this (each upsert has a fixed cost)


class UnknownSkuError(LookupError):
    """No product in the index has a variant with this SKU (or these SKUs)."""

    def __init__(self, skus: Sequence[str]) -> None:
        self.skus = tuple(skus)
        super().__init__("unknown SKU" + ("s" if len(self.skus) > 1 else "") + ": " + ", ".join(self.skus))


@dataclass(frozen=True, slots=True)
class BackInStockEvent:
    """A durable record that a sold-out variant can be bought again."""

    id: int
    sku: str
    product_id: str
    qty: int
    at: datetime


@dataclass(frozen=True, slots=True)
class StockChange:
    """The outcome of setting one SKU's stock; ``event`` is set when it was recorded."""

    sku: str
    product_id: str
    old: int | None
    new: int
    back_in_stock: bool
    event: BackInStockEvent | None = field(default=None)


@runtime_checkable
class SkuLookup(Protocol):
    """An index that can find the product owning a SKU itself (e.g. :class:`~kb.weaviate_index.WeaviateIndex`)."""

    async def product_for_sku(self, sku: str) -> Product | None: ...


async def product_for_sku(index: BaseIndex, sku: str) -> Product | None:
    """The product one of whose variants has ``sku``, or None."""
    if isinstance(index, SkuLookup):
        return await index.product_for_sku(sku)
    if isinstance(index, SQLiteIndex):
        # the embedded index has no lookup method of its own: read its variants table
        async with index.db.execute("SELECT product_id FROM variants WHERE sku = ?", (sku,)) as cur:
            row = await cur.fetchone()
        return await index.get_product(row[0]) if row else None
    raise TypeError(f"{type(index).__name__} cannot look up products by SKU")


def is_back_in_stock(old: int | None, new: int) -> bool:
    """Sold out (a tracked stock of 0 or less) before, purchasable now."""
    return old is not None and old <= 0 < new


_locks: weakref.WeakKeyDictionary[BaseIndex, asyncio.Lock] = weakref.WeakKeyDictionary()


def _lock_for(index: BaseIndex) -> asyncio.Lock:
    # read-modify-write of a product: two updates of the same product must not interleave
    lock = _locks.get(index)
    if lock is None:
        lock = _locks[index] = asyncio.Lock()
    return lock


def _check_quantities(quantities: Sequence[tuple[str, int]]) -> None:
    seen: set[str] = set()
    for sku, qty in quantities:
        if not sku:
            raise ValueError("a SKU must not be empty")
        if sku in seen:
            raise ValueError(f"SKU {sku!r} appears more than once")
        seen.add(sku)
        if isinstance(qty, bool) or not isinstance(qty, int) or not 0 <= qty <= MAX_QUANTITY:
            raise ValueError(f"quantity of {sku!r} must be a whole number from 0 to {MAX_QUANTITY}, not {qty!r}")


async def set_stocks(index: BaseIndex, quantities: Sequence[tuple[str, int]], *, store: Store | None = None) -> list[StockChange]:
    """Set the stock of several SKUs at once; all or nothing when a SKU is unknown.

    Raises :class:`UnknownSkuError` naming every unknown SKU (nothing is
    changed) and ``ValueError`` for a negative quantity or a repeated SKU.
    Variants of one product are written in one upsert.
    """
    _check_quantities(quantities)
    async with _lock_for(index):
        products: dict[str, Product] = {}
        owner: dict[str, str] = {}
        unknown: list[str] = []
        for sku, _qty in quantities:
            product = next((p for p in products.values() if any(v.sku == sku for v in p.variants)), None)
            if product is None:
                product = await product_for_sku(index, sku)
            if product is None or not any(v.sku == sku for v in product.variants):
                unknown.append(sku)
                continue
            products.setdefault(product.id, product)
            owner[sku] = product.id
        if unknown:
            raise UnknownSkuError(unknown)

        changes: list[StockChange] = []
        touched: list[str] = []
        for sku, qty in quantities:
            product = products[owner[sku]]
            old = next(v.stock for v in product.variants if v.sku == sku)
            if old != qty:
                variants = tuple(replace(v, stock=qty) if v.sku == sku else v for v in product.variants)
                products[product.id] = replace(product, variants=variants)
                if product.id not in touched:
                    touched.append(product.id)
            changes.append(StockChange(sku, product.id, old, qty, back_in_stock=is_back_in_stock(old, qty)))
        if touched:
            await index.upsert_products([products[product_id] for product_id in touched])

    if store is None or not any(change.back_in_stock for change in changes):
        return changes
    events = iter(await record_back_in_stock(store, [c for c in changes if c.back_in_stock]))
    return [replace(change, event=next(events)) if change.back_in_stock else change for change in changes]


async def set_stock(index: BaseIndex, sku: str, qty: int, *, store: Store | None = None) -> StockChange:
    """Set one SKU's stock (see :func:`set_stocks`)."""
    return (await set_stocks(index, [(sku, qty)], store=store))[0]


async def record_back_in_stock(store: Store, changes: Sequence[StockChange]) -> list[BackInStockEvent]:
    """Append one ``back_in_stock_events`` row per change, in one transaction."""
    at = store.now().astimezone(UTC)
    events: list[BackInStockEvent] = []
    async with store.transaction() as db:
        for change in changes:
            cur = await db.execute(
                "INSERT INTO back_in_stock_events (sku, product_id, qty, at) VALUES (?, ?, ?, ?)",
                (change.sku, change.product_id, change.new, at.isoformat()),
            )
            events.append(BackInStockEvent(int(cur.lastrowid or 0), change.sku, change.product_id, change.new, at))
    return events


async def back_in_stock_events(store: Store, *, pending_only: bool = False) -> list[BackInStockEvent]:
    """The recorded events, oldest first (``pending_only``: not yet consumed)."""
    where = "WHERE consumed_at IS NULL " if pending_only else ""
    async with store.db.execute(f"SELECT id, sku, product_id, qty, at FROM back_in_stock_events {where}ORDER BY id") as cur:  # noqa: S608
        rows = await cur.fetchall()
    return [BackInStockEvent(row[0], row[1], row[2], row[3], datetime.fromisoformat(row[4])) for row in rows]


# --------------------------------------------------------------------------- catalog files

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class IngestReport:
    """What one catalog import did."""

    source: str
    products: int
    passages: int
    stats: UpsertStats
    errors: tuple[RowError, ...]


def _chunk_size(total: int) -> int:
    return max(PROGRESS_MIN_CHUNK, math.ceil(total / PROGRESS_STEPS))


async def ingest_path(
    index: BaseIndex,
    path: Path,
    fmt: str | None = None,
    *,
    currency: str,
    base_url: str = "",
    source: str | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Parse a catalog file (or pages) and upsert it: the path of ``shopkeeper ingest``.

    ``source`` names the catalog for incremental updates (default: the path):
    its products missing from this file are removed, and rejected rows are
    reported against it. ``progress(done, total)`` is called as items are
    written. A file that cannot be parsed at all raises
    :class:`~kb.ingest.IngestError` naming it.
    """
    result = await asyncio.to_thread(parse, path, fmt, currency=currency, base_url=base_url)
    label = str(path) if source is None else source
    products = result.products if source is None else [replace(p, source=label) for p in result.products]
    errors = tuple(result.errors) if source is None else tuple(RowError(label, e.line, e.reason) for e in result.errors)
    total = len(products) + len(result.passages)
    size = _chunk_size(total)
    done = 0
    if progress is not None:
        progress(0, total)

    stats = UpsertStats()
    if len(products) <= size:
        stats += await index.upsert_products(products, source=label)
        done += len(products)
        if progress is not None and products:
            progress(done, total)
    else:
        for start in range(0, len(products), size):
            chunk = products[start : start + size]
            stats += await index.upsert_products(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
        # every product is now stored and unchanged: this pass only removes the source's missing ones
        stats += UpsertStats(removed=(await index.upsert_products(products, source=label)).removed)
    for start in range(0, len(result.passages), size):
        chunk_passages = result.passages[start : start + size]
        stats += await index.upsert_passages(chunk_passages)
        done += len(chunk_passages)
        if progress is not None:
            progress(done, total)
    return IngestReport(label, len(products), len(result.passages), stats, errors)
