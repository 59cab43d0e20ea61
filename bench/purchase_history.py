"""Order import throughput and the per-turn cost of purchase-history ranking, on synthetic order tables.

    python bench/purchase_history.py [--orders 10000 50000] [--customers-share 0.2] [--lookups 200]

On a fresh data dir with the demo catalog (126 products), for each size:

1. **import** — ``--orders`` synthetic orders (seed 11) as the JSON form of
   ``shopkeeper orders import``: parse (:func:`bot.order_import.parse_orders`) and
   import (:func:`bot.order_import.import_orders`: customer linking by e-mail,
   SKU → product resolution, upsert), timed separately; orders/s reported;
2. **profile** — :func:`bot.purchase_history.load_purchase_history` for ``--lookups``
   random customers (what a verified shopper's product search adds to a turn):
   p50 / p99, split into the customer's own orders and the co-purchase count query
   over the whole orders table.

Baskets: 1–4 lines; half the orders pair a "durable" product with one of two
complementary products of its category, so co-purchase pairs exist. Prints a
Markdown table for docs/benchmarks.md. Timing assertions never go in tests/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot import purchase_history  # noqa: E402
from bot.order_import import import_orders, parse_orders  # noqa: E402
from bot.runtime import open_runtime  # noqa: E402
from bot.settings import Settings  # noqa: E402

SEED = 11


def synthetic_orders(count: int, customers: int, catalog: list[dict[str, object]], rng: random.Random) -> str:
    variants = [(p, v) for p in catalog for v in p["variants"]]  # type: ignore[union-attr]
    by_category: dict[str, list[tuple[dict[str, object], dict[str, object]]]] = {}
    for product, variant in variants:
        by_category.setdefault(str(product["category"]), []).append((product, variant))
    categories = sorted(by_category)
    orders = []
    for n in range(count):
        lines = []
        if n % 2 == 0:  # a durable item with one of two partners from a fixed other category
            category = rng.choice(categories)
            anchor = rng.choice(by_category[category])
            partners = by_category[categories[(categories.index(category) + 1) % len(categories)]][:2]
            lines = [anchor, rng.choice(partners)]
        lines += [rng.choice(variants) for _ in range(max(0, rng.randint(1, 4) - len(lines)))]
        month, day = rng.randint(1, 11), rng.randint(1, 28)
        orders.append({
            "order_number": f"S-{n:07d}",
            "email": f"shopper{rng.randrange(customers)}@example.org",
            "created_at": f"2026-{month:02d}-{day:02d}T12:00:00+01:00",
            "status": rng.choice(("delivered", "delivered", "shipped", "cancelled")),
            "lines": [{"sku": v["sku"], "title": p["title"], "quantity": 1, "unit_price": str(v["price"])} for p, v in lines],
        })
    return json.dumps({"orders": orders})


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(size: int, customers_share: float, lookups: int) -> dict[str, float]:
    rng = random.Random(SEED)
    catalog = json.loads((ROOT / "kb" / "demo" / "catalog.json").read_text(encoding="utf-8"))["products"]
    customers = max(1, int(size * customers_share))
    text = synthetic_orders(size, customers, catalog, rng)
    with tempfile.TemporaryDirectory(prefix="shopkeeper-bench-orders-") as tmp:
        settings = Settings(data_dir=Path(tmp), _env_file=None)  # type: ignore[call-arg]
        async with open_runtime(settings) as runtime:
            started = time.perf_counter()
            parsed = parse_orders(text, name="bench.json", timezone="Europe/Madrid")
            parse_s = time.perf_counter() - started
            started = time.perf_counter()
            report = await import_orders(runtime.store, runtime.index, parsed, source="bench", default_currency="EUR")
            import_s = time.perf_counter() - started
            assert report.orders == size and not report.errors
            async with runtime.store.db.execute("SELECT id FROM customers WHERE email LIKE 'shopper%'") as cur:
                ids = [row[0] for row in await cur.fetchall()]
            profile_ms: list[float] = []
            pairs_ms: list[float] = []
            original = purchase_history._co_purchases

            async def timed_pairs(*args: object) -> object:
                began = time.perf_counter()
                try:
                    return await original(*args)  # type: ignore[arg-type]
                finally:
                    pairs_ms.append((time.perf_counter() - began) * 1000)

            purchase_history._co_purchases = timed_pairs  # type: ignore[assignment]
            try:
                for customer_id in rng.sample(ids, min(lookups, len(ids))):
                    began = time.perf_counter()
                    await purchase_history.load_purchase_history(runtime.store, runtime.index, customer_id)
                    profile_ms.append((time.perf_counter() - began) * 1000)
            finally:
                purchase_history._co_purchases = original  # type: ignore[assignment]
    return {
        "orders": size, "customers": customers, "parse_per_s": size / parse_s, "import_per_s": size / import_s,
        "p50": statistics.median(profile_ms), "p99": pct(profile_ms, 0.99),
        "pairs_p50": statistics.median(pairs_ms) if pairs_ms else 0.0, "pairs_p99": pct(pairs_ms, 0.99) if pairs_ms else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--orders", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--customers-share", type=float, default=0.2, help="customers per order (0.2: 5 orders each on average)")
    parser.add_argument("--lookups", type=int, default=200)
    args = parser.parse_args()
    print(f"python {platform.python_version()}, {platform.machine()}")
    print("| orders | customers | parse orders/s | import orders/s | profile p50 | profile p99 | of which co-purchase p50 / p99 |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for size in args.orders:
        r = asyncio.run(run(size, args.customers_share, args.lookups))
        print(
            f"| {r['orders']:,} | {r['customers']:,} | {r['parse_per_s']:,.0f} | {r['import_per_s']:,.0f} | "
            f"{r['p50']:.1f} ms | {r['p99']:.1f} ms | {r['pairs_p50']:.1f} / {r['pairs_p99']:.1f} ms |"
        )


if __name__ == "__main__":
    main()
