"""What a verified customer's prior orders say about them, and how that re-ranks suggestions.

:func:`load_purchase_history` reads one customer's orders (cancelled ones do not
count) with their catalog products and derives:

* the size they buy in each category ("M" in outdoor clothing, "42" in hiking boots);
* brand and category affinity (the share of their items from each);
* their usual price band (the middle half of the unit prices they paid);
* the durable items they own (``attributes["durable"]``), never suggested again;
* complementary products: how many *other* customers' orders contain both one of
  this customer's products and another product (co-purchase counts from the
  orders table, at least :data:`CO_PURCHASE_MIN_ORDERS` orders, so that a suggestion
  never mirrors a single other person's basket).

:func:`rerank` runs **after** the index applied the hard filters (budget, stock,
size, exclusions): it only reorders and drops (owned durables) the hits it is
given, never adds one, so no preference can override a constraint. Each kept
hit gets a short reason in the shopper's language ("goes with the boots you bought
in March", "in your usual size M"). Only ever called for a verified customer.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from bot.i18n import _, format_month
from bot.store import Store
from kb.index import BaseIndex
from kb.inventory import product_for_sku
from kb.models import Hit, Product

CO_PURCHASE_MIN_ORDERS = 2
MAX_REASONS = 2
# relevance falls linearly from 1.0 (the index's first hit) to 1.0 - RELEVANCE_SPREAD (its last);
# the profile adds up to the sum of WEIGHTS on top
RELEVANCE_SPREAD = 0.5
WEIGHTS = {"co_purchase": 0.6, "size": 0.25, "brand": 0.3, "category": 0.2, "price": 0.1}


@dataclass(frozen=True, slots=True)
class Purchase:
    product_id: str
    title: str
    category: str
    brand: str
    size: str | None
    unit_price: Decimal
    bought_at: datetime
    durable: bool


@dataclass(frozen=True, slots=True)
class CoPurchase:
    goes_with: Purchase  # the customer's own purchase it was bought with
    orders: int  # other customers' orders holding both


@dataclass(frozen=True)
class PurchaseHistory:
    purchases: tuple[Purchase, ...] = ()
    sizes_by_category: dict[str, str] = field(default_factory=dict)  # category (casefolded) -> size
    brand_affinity: dict[str, float] = field(default_factory=dict)  # brand (casefolded) -> share of items
    category_affinity: dict[str, float] = field(default_factory=dict)
    price_band: tuple[Decimal, Decimal] | None = None
    owned_durables: dict[str, Purchase] = field(default_factory=dict)  # product id -> latest purchase
    co_purchases: dict[str, CoPurchase] = field(default_factory=dict)  # candidate product id -> strongest pairing

    def is_empty(self) -> bool:
        return not self.purchases


async def load_purchase_history(store: Store, index: BaseIndex, customer_id: str) -> PurchaseHistory:
    """The purchase profile of one customer, from their own orders only (co-purchase counts aside)."""
    orders = [o for o in await store.orders_for(customer_id) if o.status != "cancelled" and o.customer_id == customer_id]
    products: dict[str, Product | None] = {}
    purchases: list[Purchase] = []
    for order in sorted(orders, key=lambda o: o.created_at):
        for line in order.lines:
            product = await _product(index, products, line.product_id, line.sku)
            if product is None:
                continue
            variant = next((v for v in product.variants if v.sku == line.sku), None)
            size = variant.options.get("size") if variant is not None else None
            purchases.append(Purchase(
                product_id=product.id, title=product.title, category=product.category, brand=product.brand,
                size=size or None, unit_price=line.unit_price, bought_at=order.created_at,
                durable=bool(product.attributes.get("durable")),
            ))
    if not purchases:
        return PurchaseHistory()
    sizes: dict[str, Counter[str]] = {}
    for p in purchases:
        if p.size:
            sizes.setdefault(p.category.casefold(), Counter())[p.size] += 1
    total = len(purchases)
    brands = Counter(p.brand.casefold() for p in purchases if p.brand)
    categories = Counter(p.category.casefold() for p in purchases if p.category)
    prices = sorted(p.unit_price for p in purchases)
    band = (prices[len(prices) // 4], prices[(3 * len(prices) - 1) // 4]) if len(prices) >= 2 else None
    owned = {p.product_id: p for p in purchases if p.durable}  # later purchases overwrite earlier ones
    latest = {p.product_id: p for p in purchases}
    return PurchaseHistory(
        purchases=tuple(purchases),
        sizes_by_category={category: counts.most_common(1)[0][0] for category, counts in sizes.items()},
        brand_affinity={brand: n / total for brand, n in brands.items()},
        category_affinity={category: n / total for category, n in categories.items()},
        price_band=band,
        owned_durables=owned,
        co_purchases=await _co_purchases(store, customer_id, latest),
    )


async def _product(index: BaseIndex, cache: dict[str, Product | None], product_id: str | None, sku: str) -> Product | None:
    key = product_id or "sku:" + sku
    if key not in cache:
        product = await index.get_product(product_id) if product_id else None
        if product is None and sku:
            product = await product_for_sku(index, sku)
        cache[key] = product
    return cache[key]


async def _co_purchases(store: Store, customer_id: str, mine: dict[str, Purchase]) -> dict[str, CoPurchase]:
    """Products other customers bought in the same order as one of this customer's products."""
    if not mine:
        return {}
    query = (
        "SELECT b.product_id AS other, a.product_id AS mine, COUNT(*) AS n "
        "FROM order_items a "
        "JOIN order_items b ON b.order_number = a.order_number AND b.product_id != a.product_id "
        "WHERE a.product_id IN (SELECT value FROM json_each(?)) "
        "AND (a.customer_id IS NULL OR a.customer_id != ?) AND a.status != 'cancelled' "
        "GROUP BY other, mine HAVING n >= ? ORDER BY n DESC, other, mine"
    )
    async with store.db.execute(query, (json.dumps(sorted(mine)), customer_id, CO_PURCHASE_MIN_ORDERS)) as cur:
        rows = await cur.fetchall()
    pairs: dict[str, CoPurchase] = {}
    for row in rows:
        if row["other"] not in pairs:  # rows come strongest first
            pairs[str(row["other"])] = CoPurchase(goes_with=mine[str(row["mine"])], orders=int(row["n"]))
    return pairs


@dataclass(frozen=True, slots=True)
class Suggestion:
    hit: Hit
    reason: str  # "" when the history says nothing about this product


def rerank(hits: Sequence[Hit], history: PurchaseHistory, now: datetime) -> list[Suggestion]:
    """Reorder filtered product hits by relevance and the purchase history, with a reason for each.

    Owned durable products are dropped, unless every hit is one (then they are kept,
    saying when they were bought, rather than answering with nothing).
    """
    candidates = [(h, h.product) for h in hits if h.product is not None]
    fresh = [(h, p) for h, p in candidates if p.id not in history.owned_durables]
    if not fresh:
        return [Suggestion(h, _owned_reason(history, p, now)) for h, p in candidates]
    scored: list[tuple[float, int, Suggestion]] = []
    for rank, (hit, product) in enumerate(fresh):
        boost, reasons = _profile_fit(product, history, now)
        # the pool is the index's best few for the query: its order counts, but gently
        relevance = 1.0 - RELEVANCE_SPREAD * rank / len(fresh)
        scored.append((relevance + boost, -rank, Suggestion(hit, " · ".join(reasons[:MAX_REASONS]))))
    scored.sort(key=lambda item: (item[0], item[1]), reverse=True)
    return [suggestion for _score, _rank, suggestion in scored]


def _when(bought_at: datetime, now: datetime) -> str:
    return format_month(bought_at, with_year=bought_at.year != now.year)


def _owned_reason(history: PurchaseHistory, product: Product, now: datetime) -> str:
    owned = history.owned_durables.get(product.id)
    return _("you bought this in {month}", month=_when(owned.bought_at, now)) if owned is not None else ""


def _profile_fit(product: Product, history: PurchaseHistory, now: datetime) -> tuple[float, list[str]]:
    boost = 0.0
    reasons: list[str] = []
    pairing = history.co_purchases.get(product.id)
    if pairing is not None:
        boost += WEIGHTS["co_purchase"] * min(1.0, pairing.orders / 4)
        reasons.append(_(
            "goes with the {item} you bought in {month}", item=pairing.goes_with.title, month=_when(pairing.goes_with.bought_at, now)
        ))
    size = history.sizes_by_category.get(product.category.casefold())
    if size and any(v.in_stock and v.options.get("size", "").casefold() == size.casefold() for v in product.variants):
        boost += WEIGHTS["size"]
        reasons.append(_("in your usual size {size}", size=size))
    brand_share = history.brand_affinity.get(product.brand.casefold(), 0.0) if product.brand else 0.0
    if brand_share:
        boost += WEIGHTS["brand"] * brand_share
        reasons.append(_("from {brand}, a brand you've bought before", brand=product.brand))
    boost += WEIGHTS["category"] * history.category_affinity.get(product.category.casefold(), 0.0)
    if history.price_band is not None and history.price_band[0] <= product.min_price <= history.price_band[1]:
        boost += WEIGHTS["price"]
        if not reasons:
            reasons.append(_("in your usual price range"))
    return boost, reasons


def reasons_by_product(suggestions: Sequence[Suggestion]) -> dict[str, str]:
    """Product id -> reason, for the responder to add to each card."""
    return {s.hit.product.id: s.reason for s in suggestions if s.hit.product is not None and s.reason}

