"""The built-in demo store (fictional "Alder & Finch"), loaded on first start.

When the data directory holds no catalog yet and the demo is enabled, the demo
catalog and policy pages (``kb/demo/``) are indexed, its customers and past
orders go into the conversation store, and its ``store.json`` becomes the
store profile. A store that ingests its own catalog starts with ``--no-demo``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.phones import to_e164
from bot.store import Customer, Order, OrderLine, Store
from kb.index import BaseIndex, UpsertStats
from kb.ingest import ParseResult, parse
from kb.inventory import product_for_sku

log = logging.getLogger(__name__)

DEMO_DIR = Path(__file__).resolve().parent.parent / "kb" / "demo"


@dataclass(frozen=True, slots=True)
class DemoData:
    catalog: ParseResult
    pages: ParseResult
    customers: list[dict[str, Any]]
    orders: list[dict[str, Any]]


def _read_demo(demo_dir: Path, data_dir: Path) -> DemoData:
    """Read and parse the demo files (blocking file I/O, run in a thread)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    profile = data_dir / "store.json"
    if not profile.exists():
        shutil.copyfile(demo_dir / "store.json", profile)
    store_info = json.loads((demo_dir / "store.json").read_text(encoding="utf-8"))
    base_url = "https://" + store_info["domains"][0]
    return DemoData(
        catalog=parse(demo_dir / "catalog.json", currency=store_info["currency"], base_url=base_url),
        pages=parse(demo_dir / "pages", currency=store_info["currency"], base_url=base_url),
        customers=json.loads((demo_dir / "customers.json").read_text(encoding="utf-8")),
        orders=json.loads((demo_dir / "orders.json").read_text(encoding="utf-8")),
    )


async def load_demo(store: Store, index: BaseIndex, data_dir: Path, demo_dir: Path = DEMO_DIR) -> UpsertStats:
    """Index the demo catalog and pages and import its customers and orders (idempotent)."""
    demo = await asyncio.to_thread(_read_demo, demo_dir, data_dir)
    catalog, pages, customers, orders = demo.catalog, demo.pages, demo.customers, demo.orders
    for error in catalog.errors + pages.errors:
        log.warning("demo data problem: %s line %d: %s", error.file, error.line, error.reason)
    stats = await index.upsert_products(catalog.products, source=str(demo_dir / "catalog.json"))
    stats += await index.upsert_passages(pages.passages)

    await store.upsert_customers(
        Customer(
            id=c["id"], name=c.get("name"), email=c.get("email"), phone=to_e164(c.get("phone")), locale=c.get("locale")
        )
        for c in customers
    )
    # order lines carry their catalog product, for purchase history and co-purchase counts
    product_ids: dict[str, str | None] = {}
    for sku in sorted({ln["sku"] for o in orders for ln in o["lines"]}):
        product = await product_for_sku(index, sku)
        product_ids[sku] = product.id if product is not None else None
    await store.upsert_orders(
        Order(
            order_number=o["order_number"],
            customer_id=o["customer_id"],
            status=o["status"],
            currency=o["currency"],
            total=Decimal(str(o["total"])),
            tracking_url=o.get("tracking_url"),
            created_at=datetime.fromisoformat(o["created_at"]),
            lines=tuple(
                OrderLine(ln["sku"], ln["title"], int(ln["quantity"]), Decimal(str(ln["unit_price"])), product_ids[ln["sku"]])
                for ln in o["lines"]
            ),
        )
        for o in orders
    )
    log.info(
        "demo store loaded: %d products, %d passages, %d customers, %d orders",
        len(catalog.products), len(pages.passages), len(customers), len(orders),
    )
    return stats
