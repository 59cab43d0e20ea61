"""The tools a language model may call, and nothing else.

The allow-list is small and read-only; every tool is a thin wrapper over code the
offline path already uses (the knowledge-base index, the turn's verified orders):

* ``search_catalog`` — the index search with the shopper's constraints as hard
  filters; the model may narrow them (a lower budget, a size), never relax them
  (an excluded allergen stays excluded);
* ``get_product`` — one product by id or SKU;
* ``check_order`` — the verified customer's own orders only (``ctx.customer_verified``
  and ``ctx.orders``); any other order number gets the same "no data" answer, so the
  tool does not even confirm that it exists;
* ``hand_off_to_staff`` — asks the engine to hand the thread to staff
  (``ctx.extras[HANDOFF_REQUEST]``);
* ``send_reply`` — the structured end of a turn: text plus the ids of the products and
  passages used. Product cards (price, stock) are then built by our code from the data.

No tool changes a price, grants a discount, issues a refund or edits an order.
Preferences, back-in-stock subscriptions and reminders are not offered: they need
consent records and follow-up storage that the model must not fake.

Everything a tool returns is recorded in the turn's :class:`~bot.guardrails.Evidence`,
so the guardrail and the card builder know exactly what the model saw.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.guardrails import HANDOFF_REQUEST, Evidence
from bot.handoff import EscalationReason
from bot.order_lookup import order_key
from bot.prompting import order_data, product_data
from bot.responders import TurnContext
from kb.index import BaseIndex
from kb.models import Passage, Product, SearchFilters

SEARCH_CATALOG = "search_catalog"
GET_PRODUCT = "get_product"
CHECK_ORDER = "check_order"
HAND_OFF = "hand_off_to_staff"
SEND_REPLY = "send_reply"

MAX_RESULTS = 5
MAX_LIST_ITEMS = 10
MAX_ARGUMENT_CHARS = 200
POLICY_TTL_SECONDS = 300.0
# the store pages every Claude turn carries in its cached prefix, per language
POLICY_QUERIES = ("shipping delivery times costs", "returns refunds exchanges", "payment methods", "contact opening hours")
POLICY_PASSAGES_PER_QUERY = 2

HANDOFF_REASONS: Mapping[str, EscalationReason] = {
    "asked_for_human": EscalationReason.ASKED_FOR_HUMAN,
    "upset": EscalationReason.FRUSTRATION,
    "sensitive": EscalationReason.SENSITIVE,
    "cannot_help": EscalationReason.UNANSWERED,
}

_STRINGS = {"type": "array", "items": {"type": "string", "maxLength": 60}, "maxItems": MAX_LIST_ITEMS}
TOOL_DEFINITIONS: tuple[dict[str, Any], ...] = (
    {
        "name": SEARCH_CATALOG,
        "description": (
            "Search the store's catalog. The shopper's known constraints are always applied; the filters you pass "
            "can only narrow them. Returns products with their prices, stock and variants."
        ),
        "input_schema": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "what the shopper is looking for, in their words", "maxLength": 200},
                "max_price": {"type": "number", "minimum": 0},
                "min_price": {"type": "number", "minimum": 0},
                "in_stock_only": {"type": "boolean"},
                "category": {"type": "string", "maxLength": 60},
                "sizes": _STRINGS,
                "colors": _STRINGS,
                "exclude_colors": _STRINGS,
                "exclude_materials": _STRINGS,
                "exclude_allergens": _STRINGS,
                "dietary": _STRINGS,
                "brands": _STRINGS,
                "limit": {"type": "integer", "minimum": 1, "maximum": MAX_RESULTS},
            },
            "required": ["query"],
        },
    },
    {
        "name": GET_PRODUCT,
        "description": "Look up one product of the catalog by its id or by a variant SKU.",
        "input_schema": {
            "type": "object",
            "properties": {"product_id": {"type": "string", "description": "a product id or SKU from the data", "maxLength": 80}},
            "required": ["product_id"],
        },
    },
    {
        "name": CHECK_ORDER,
        "description": (
            "Status of the shopper's own orders. Works only when the shopper's account is verified, and only for their "
            "orders; without an order number it returns their most recent orders."
        ),
        "input_schema": {
            "type": "object",
            "properties": {"order_number": {"type": "string", "maxLength": 40}},
        },
    },
    {
        "name": HAND_OFF,
        "description": "Hand the conversation to the store's staff; a person will answer the shopper in this chat.",
        "input_schema": {
            "type": "object",
            "properties": {
                "reason": {"type": "string", "enum": sorted(HANDOFF_REASONS)},
                "note": {"type": "string", "description": "one line for the staff member", "maxLength": 200},
            },
            "required": ["reason"],
        },
    },
    {
        "name": SEND_REPLY,
        "description": (
            "Send your answer to the shopper and end the turn. The app shows every listed product as a card with its "
            "catalog price and stock, and lists the sources."
        ),
        "input_schema": {
            "type": "object",
            "properties": {
                "text": {"type": "string", "description": "the message, in the shopper's language", "maxLength": 2000},
                "product_ids": {**_STRINGS, "maxItems": MAX_RESULTS, "description": "ids of the products you recommend"},
                "source_ids": {**_STRINGS, "description": "ids of the policy passages you relied on"},
            },
            "required": ["text"],
        },
    },
)


class ToolInputError(ValueError):
    """The model called a tool with arguments that do not fit its schema."""


@dataclass(slots=True)
class TurnTools:
    """The tool state of one turn: what was looked up, and whether a handoff was asked for."""

    ctx: TurnContext
    evidence: Evidence = field(default_factory=Evidence)
    calls: list[str] = field(default_factory=list)
    handoff: EscalationReason | None = None

    def product(self, reference: str) -> Product | None:
        """A product the model has seen this turn, by id or SKU."""
        wanted = reference.strip().casefold()
        for product in self.evidence.products.values():
            if product.id.casefold() == wanted or any(v.sku.casefold() == wanted for v in product.variants):
                return product
        return None

    def passage(self, reference: str) -> Passage | None:
        return self.evidence.passages.get(reference.strip())


class ToolBox:
    """Runs the allow-listed tools for a model. One per process; state lives in :class:`TurnTools`."""

    def __init__(self, index: BaseIndex, *, results: int = 3, clock: Callable[[], float] = time.monotonic) -> None:
        self.index = index
        self.results = max(1, min(results, MAX_RESULTS))
        self._clock = clock
        self._policies: dict[str, tuple[float, tuple[Passage, ...]]] = {}

    def __repr__(self) -> str:
        return f"ToolBox(index={type(self.index).__name__}, results={self.results})"

    @staticmethod
    def definitions() -> list[dict[str, Any]]:
        """The JSON schemas of the allow-listed tools, in a stable order (part of the cached prefix)."""
        return [dict(tool) for tool in TOOL_DEFINITIONS]

    def start_turn(self, ctx: TurnContext) -> TurnTools:
        """The tool state of a new turn, seeded with what the engine already retrieved."""
        state = TurnTools(ctx)
        state.evidence.add_products(h.product for h in (*ctx.hits, *ctx.near_misses) if h.product is not None)
        state.evidence.add_passages(h.passage for h in ctx.hits if h.passage is not None)
        return state

    async def store_policies(self, locale: str) -> tuple[Passage, ...]:
        """The store's policy pages in ``locale`` (cached a few minutes, so the prompt prefix stays stable)."""
        cached = self._policies.get(locale)
        now = self._clock()
        if cached is not None and now - cached[0] < POLICY_TTL_SECONDS:
            return cached[1]
        found: dict[str, Passage] = {}
        for query in POLICY_QUERIES:
            hits = await self.index.search(query, SearchFilters(lang=locale), k=POLICY_PASSAGES_PER_QUERY, kinds=("passage",))
            for hit in hits:
                if hit.passage is not None:
                    found.setdefault(hit.passage.id, hit.passage)
        passages = tuple(found.values())
        self._policies[locale] = (now, passages)
        return passages

    async def run(self, state: TurnTools, name: str, arguments: object) -> dict[str, Any]:
        """Run one tool call; raises :class:`ToolInputError` for bad arguments or a tool off the list."""
        if not isinstance(arguments, Mapping):
            raise ToolInputError("arguments must be an object")
        state.calls.append(name)
        if name == SEARCH_CATALOG:
            return await self.search_catalog(state, arguments)
        if name == GET_PRODUCT:
            return await self.get_product(state, _text(arguments, "product_id", required=True))
        if name == CHECK_ORDER:
            return self.check_order(state, _text(arguments, "order_number") or None)
        if name == HAND_OFF:
            return self.hand_off(state, _text(arguments, "reason", required=True))
        raise ToolInputError(f"unknown tool {name[:40]!r}")

    async def search_catalog(self, state: TurnTools, arguments: Mapping[str, object]) -> dict[str, Any]:
        query = _text(arguments, "query", required=True)
        filters = narrowed(state.ctx.filters, arguments)
        limit = arguments.get("limit")
        k = max(1, min(limit, MAX_RESULTS)) if isinstance(limit, int) and not isinstance(limit, bool) else self.results
        hits = await self.index.search(query, filters, k=k, kinds=("product",))
        products = [h.product for h in hits if h.product is not None]
        state.evidence.add_products(products)
        return {"products": [product_data(p, filters) for p in products], "count": len(products)}

    async def get_product(self, state: TurnTools, reference: str) -> dict[str, Any]:
        product = state.product(reference) or await self.index.get_product(reference)
        if product is None:
            # a SKU of a product not seen yet: the index finds it by text, the SKU must match exactly
            hits = await self.index.search(reference, SearchFilters(), k=MAX_RESULTS, kinds=("product",))
            wanted = reference.strip().casefold()
            product = next(
                (h.product for h in hits if h.product is not None and any(v.sku.casefold() == wanted for v in h.product.variants)),
                None,
            )
        if product is None:
            return {"found": False}
        state.evidence.add_products([product])
        return {"found": True, "product": product_data(product, state.ctx.filters)}

    @staticmethod
    def check_order(state: TurnTools, order_number: str | None) -> dict[str, Any]:
        ctx = state.ctx
        if not ctx.customer_verified:
            return {"found": False, "reason": "The chat is not linked to a verified account; no order can be looked up."}
        own = [o for o in ctx.orders if o.customer_id == ctx.conversation.customer_id]
        if order_number:
            wanted = order_key(order_number)
            own = [o for o in own if order_key(o.order_number) == wanted]
            if not own:
                # the same answer whether the order does not exist or belongs to someone else
                return {"found": False, "reason": "No order with that number on this shopper's account."}
        if not own:
            return {"found": False, "reason": "This shopper has no orders yet."}
        shown = own[:3]
        state.evidence.add_orders(shown)
        return {"found": True, "orders": [order_data(o) for o in shown]}

    @staticmethod
    def hand_off(state: TurnTools, reason: str) -> dict[str, Any]:
        state.handoff = HANDOFF_REASONS.get(reason, EscalationReason.ASKED_FOR_HUMAN)
        state.ctx.extras[HANDOFF_REQUEST] = state.handoff
        return {"ok": True, "note": "A person from the team will take over this chat."}


def narrowed(base: SearchFilters, arguments: Mapping[str, object]) -> SearchFilters:
    """``base`` (the shopper's constraints) narrowed by the model's filters; exclusions only grow."""
    max_price = _price(arguments, "max_price")
    min_price = _price(arguments, "min_price")
    if base.max_price is not None and (max_price is None or max_price > base.max_price):
        max_price = base.max_price
    if base.min_price is not None and (min_price is None or min_price < base.min_price):
        min_price = base.min_price
    category = _text(arguments, "category") or base.category
    return SearchFilters(
        max_price=max_price,
        min_price=min_price,
        in_stock_only=base.in_stock_only or arguments.get("in_stock_only") is True,
        category=category,
        sizes=_strings(arguments, "sizes") or base.sizes,
        colors=_strings(arguments, "colors") or base.colors,
        exclude_colors=_union(base.exclude_colors, _strings(arguments, "exclude_colors")),
        exclude_materials=_union(base.exclude_materials, _strings(arguments, "exclude_materials")),
        exclude_allergens=_union(base.exclude_allergens, _strings(arguments, "exclude_allergens")),
        dietary=_union(base.dietary, _strings(arguments, "dietary")),
        brands=_strings(arguments, "brands") or base.brands,
        exclude_brands=base.exclude_brands,
        lang=base.lang,
    )


def _text(arguments: Mapping[str, object], key: str, *, required: bool = False) -> str:
    value = arguments.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise ToolInputError(f"{key} must be a non-empty string")
    return value.strip()[:MAX_ARGUMENT_CHARS]


def _strings(arguments: Mapping[str, object], key: str) -> tuple[str, ...]:
    value = arguments.get(key)
    if value is None:
        return ()
    if not isinstance(value, Sequence) or isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise ToolInputError(f"{key} must be a list of strings")
    return tuple(v.strip().lower()[:60] for v in value[:MAX_LIST_ITEMS] if v.strip())


def _price(arguments: Mapping[str, object], key: str) -> Decimal | None:
    value = arguments.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ToolInputError(f"{key} must be a number")
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise ToolInputError(f"{key} must be a number") from exc
    if not number.is_finite() or number < 0:
        raise ToolInputError(f"{key} must be a positive number")
    return number


def _union(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*first, *second)))


def passages_for(state: TurnTools, references: Sequence[str]) -> list[Passage]:
    """The passages among ``references`` the model has actually seen this turn."""
    return [p for p in (state.passage(r) for r in references) if p is not None]
