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
* ``subscribe_back_in_stock`` and ``schedule_reminder`` — the follow-ups of the
  offline path (:meth:`bot.consent.ConsentDialog.offer_alert`,
  :meth:`bot.reminders.ReminderDialog.offer`). Consent is never taken from the model:
  without a standing consent for that purpose on the channel, the tool only leaves the
  offline flow's yes/no question in the conversation and nothing is recorded until the
  shopper says yes; with one, it acts and the confirmation goes out. Either way the
  question or confirmation is our own localized text, put in ``ctx.extras[NOTICES]``
  for the engine to send after the reply; STOP, quiet hours and the shopper's timezone
  apply as for any follow-up;
* ``send_reply`` — the structured end of a turn: text plus the ids of the products and
  passages used. Product cards (price, stock) are then built by our code from the data.
* ``remember_preference`` — keep or forget one of the shopper's preferences across
  conversations, through :class:`bot.profile.ProfileDialog`: keeping needs the
  shopper's own recorded yes (the model cannot give it), forgetting always works.

No tool changes a price, grants a discount, issues a refund or edits an order.

Everything a tool returns is recorded in the turn's :class:`~bot.guardrails.Evidence`,
so the guardrail and the card builder know exactly what the model saw.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.consent import AlertStatus, ConsentDialog
from bot.constraints import Constraints, Size
from bot.guardrails import HANDOFF_REQUEST, NOTICES, Evidence
from bot.handoff import EscalationReason
from bot.messages import OutboundMessage
from bot.order_lookup import order_key
from bot.profile import KEPT_KINDS, ProfileDialog
from bot.prompting import order_data, product_data
from bot.reminders import ReminderDialog, ReminderStatus
from bot.responders import TurnContext
from kb.index import BaseIndex
from kb.inventory import product_for_sku
from kb.models import Passage, Product, SearchFilters, Variant

SEARCH_CATALOG = "search_catalog"
GET_PRODUCT = "get_product"
CHECK_ORDER = "check_order"
HAND_OFF = "hand_off_to_staff"
SUBSCRIBE_BACK_IN_STOCK = "subscribe_back_in_stock"
SCHEDULE_REMINDER = "schedule_reminder"
SEND_REPLY = "send_reply"
REMEMBER_PREFERENCE = "remember_preference"

MAX_RESULTS = 5
MAX_LIST_ITEMS = 10
MAX_ARGUMENT_CHARS = 200
POLICY_TTL_SECONDS = 300.0
# the store pages every Claude turn carries in its cached prefix, per language
POLICY_QUERIES = ("shipping delivery times costs", "returns refunds exchanges", "payment methods", "contact opening hours")
POLICY_PASSAGES_PER_QUERY = 2

SIZE_SYSTEMS = ("clothing", "shoe_eu", "shoe_us", "shoe_uk", "numeric", "other")
DIETARY_LABELS = frozenset({
    "vegan", "vegetarian", "halal", "kosher", "gluten_free", "lactose_free", "dairy_free", "nut_free", "sugar_free", "egg_free",
    "soy_free", "alcohol_free",
})
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
        "name": SUBSCRIBE_BACK_IN_STOCK,
        "description": (
            "Offer to message the shopper when a sold-out product (in their size) is back in stock; only when they ask "
            "for that. Unless they agreed to such alerts before, the app asks them a yes/no question after your reply "
            "and nothing is subscribed until they say yes: never tell them they are subscribed unless the result says so."
        ),
        "input_schema": {
            "type": "object",
            "properties": {
                "product_id": {"type": "string", "description": "a product id or variant SKU from the data", "maxLength": 80},
                "size": {"type": "string", "description": "the size the shopper wants, when the product has sizes", "maxLength": 20},
            },
            "required": ["product_id"],
        },
    },
    {
        "name": SCHEDULE_REMINDER,
        "description": (
            "Remind the shopper later in this chat; only when they ask for a reminder. Unless they agreed to reminders "
            "before, the app asks them a yes/no question after your reply and nothing is scheduled until they say yes. "
            "Quiet hours and their timezone are applied by the app."
        ),
        "input_schema": {
            "type": "object",
            "properties": {
                "when": {
                    "type": "string",
                    "description": "a local date-time like 2026-11-20T18:00 (shopper's timezone) or the shopper's words",
                    "maxLength": 80,
                },
                "about": {"type": "string", "description": "what to remind them about, in their words", "maxLength": 120},
                "product_id": {"type": "string", "description": "the product it is about, if any", "maxLength": 80},
            },
            "required": ["when"],
        },
    },
    {
        "name": REMEMBER_PREFERENCE,
        "description": (
            "Keep or forget one kind of the shopper's preferences for their next conversations: sizes, dietary needs and "
            "allergies (vegan, gluten_free, nut_free…), or materials, colours or brands they avoid. Keeping works only "
            "if the shopper already agreed in this chat to have preferences remembered; otherwise nothing is stored, and "
            "you may tell them they can say \"remember my preferences\". Forgetting always works."
        ),
        "input_schema": {
            "type": "object",
            "properties": {
                "action": {"type": "string", "enum": ["remember", "forget"]},
                "kind": {"type": "string", "enum": list(KEPT_KINDS)},
                "values": {**_STRINGS, "description": "for remember: the sizes, dietary labels, materials, colours or brands"},
                "size_system": {"type": "string", "enum": list(SIZE_SYSTEMS), "description": "for sizes (default clothing)"},
            },
            "required": ["action", "kind"],
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


@dataclass(frozen=True, slots=True)
class FollowUpDesk:
    """The offline path's follow-up dialogs, which the follow-up tools wrap."""

    consent: ConsentDialog
    reminders: ReminderDialog


@dataclass(slots=True)
class TurnTools:
    """The tool state of one turn: what was looked up, and whether a handoff was asked for."""

    ctx: TurnContext
    evidence: Evidence = field(default_factory=Evidence)
    calls: list[str] = field(default_factory=list)
    handoff: EscalationReason | None = None
    notices: list[OutboundMessage] = field(default_factory=list)  # sent after the reply (ctx.extras[NOTICES])

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

    def __init__(
        self,
        index: BaseIndex,
        *,
        results: int = 3,
        clock: Callable[[], float] = time.monotonic,
        followups: FollowUpDesk | None = None,
        profile: ProfileDialog | None = None,
    ) -> None:
        self.index = index
        self.followups = followups
        self.profile = profile
        self.results = max(1, min(results, MAX_RESULTS))
        self._clock = clock
        self._policies: dict[str, tuple[float, tuple[Passage, ...]]] = {}

    def __repr__(self) -> str:
        return f"ToolBox(index={type(self.index).__name__}, results={self.results})"

    def definitions(self) -> list[dict[str, Any]]:
        """The JSON schemas of the allow-listed tools, in a stable order (part of the cached prefix).

        The follow-up tools are listed only when the toolbox has the dialogs they wrap.
        """
        offered = [dict(tool) for tool in TOOL_DEFINITIONS]
        if self.followups is None:
            offered = [tool for tool in offered if tool["name"] not in (SUBSCRIBE_BACK_IN_STOCK, SCHEDULE_REMINDER)]
        return offered

    def start_turn(self, ctx: TurnContext) -> TurnTools:
        """The tool state of a new turn, seeded with what the engine already retrieved."""
        state = TurnTools(ctx)
        notices = ctx.extras.setdefault(NOTICES, [])  # one list per turn, shared with a regenerated draft
        if isinstance(notices, list):
            state.notices = notices
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
        if name == SUBSCRIBE_BACK_IN_STOCK and self.followups is not None:
            return await self.subscribe_back_in_stock(state, self.followups, arguments)
        if name == SCHEDULE_REMINDER and self.followups is not None:
            return await self.schedule_reminder(state, self.followups, arguments)
        if name == REMEMBER_PREFERENCE:
            return await self.remember_preference(state, arguments)
        raise ToolInputError(f"unknown tool {name[:40]!r}")

    async def search_catalog(self, state: TurnTools, arguments: Mapping[str, object]) -> dict[str, Any]:
        query = _text(arguments, "query", required=True)
        filters = narrowed(state.ctx.filters, arguments)
        limit = arguments.get("limit")
        k = max(1, min(limit, MAX_RESULTS)) if isinstance(limit, int) and not isinstance(limit, bool) else self.results
        hits = await self.index.search(query, filters, k=k, kinds=("product",))
        products = [h.product for h in hits if h.product is not None]
        state.evidence.add_products(products)
        result: dict[str, Any] = {"products": [product_data(p, filters) for p in products], "count": len(products)}
        if not products and (missing := await self.index.missing_kind(query, state.ctx.locale)) is not None:
            result["store_does_not_carry"] = missing  # no product of the store is that kind of thing
        return result

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

    async def remember_preference(self, state: TurnTools, arguments: Mapping[str, object]) -> dict[str, Any]:
        action, kind = _text(arguments, "action", required=True), _text(arguments, "kind", required=True)
        if action not in ("remember", "forget") or kind not in KEPT_KINDS:
            raise ToolInputError("action must be remember or forget, kind one of " + ", ".join(KEPT_KINDS))
        if self.profile is None:
            return {"stored": False, "reason": "Preferences cannot be kept in this shop."}
        ctx = state.ctx
        if action == "forget":
            deleted = await self.profile.forget(ctx.conversation, kind)
            return {"forgotten": True, "facts_deleted": deleted}
        additions = _preference(kind, _strings(arguments, "values"), _text(arguments, "size_system") or "clothing")
        kept = await self.profile.remember(ctx.inbound, ctx.conversation, additions, verified=ctx.customer_verified)
        if kept is None:
            return {
                "stored": False,
                "reason": "The shopper has not agreed to have preferences kept; nothing was stored. They can say "
                "\"remember my preferences\" in the chat.",
            }
        return {"stored": True, "kept": {field: value for field, value in kept.to_dict().items() if field in KEPT_KINDS}}

    @staticmethod
    def hand_off(state: TurnTools, reason: str) -> dict[str, Any]:
        state.handoff = HANDOFF_REASONS.get(reason, EscalationReason.ASKED_FOR_HUMAN)
        state.ctx.extras[HANDOFF_REQUEST] = state.handoff
        return {"ok": True, "note": "A person from the team will take over this chat."}


    async def subscribe_back_in_stock(
        self, state: TurnTools, desk: FollowUpDesk, arguments: Mapping[str, object]
    ) -> dict[str, Any]:
        reference = _text(arguments, "product_id", required=True)
        product = await self._product(state, reference)
        if product is None:
            return {"status": AlertStatus.NOT_FOUND.value}
        state.evidence.add_products([product])
        sizes = (_text(arguments, "size"),) if arguments.get("size") else state.ctx.filters.sizes
        variant, sold_out_sizes = _alert_variant(product, reference, sizes)
        if variant is None:
            return {
                "status": "size_needed",
                "sold_out_sizes": sold_out_sizes,
                "note": "Ask the shopper which of these sizes they want an alert for.",
            }
        ctx = state.ctx
        offer = await desk.consent.offer_alert(ctx.inbound, ctx.conversation, variant.sku, ctx.now)
        result: dict[str, Any] = {"status": offer.status.value, "sku": variant.sku}
        if offer.status in (AlertStatus.ASKED, AlertStatus.SUBSCRIBED):
            _notify(state, offer.message)
            result["shown_to_shopper_after_your_reply"] = offer.message.text
            result["note"] = "The app sends that message itself: do not repeat it."
        else:
            result["message"] = offer.message.text
        return result

    async def schedule_reminder(self, state: TurnTools, desk: FollowUpDesk, arguments: Mapping[str, object]) -> dict[str, Any]:
        when = _text(arguments, "when", required=True)
        about = _text(arguments, "about") or None
        reference = _text(arguments, "product_id")
        product = await self._product(state, reference) if reference else None
        if product is not None:
            state.evidence.add_products([product])
        ctx = state.ctx
        offer = await desk.reminders.offer(ctx.inbound, ctx.conversation, when, about, product, ctx.now)
        result: dict[str, Any] = {"status": offer.status.value}
        if offer.status in (ReminderStatus.NEEDS_TIME, ReminderStatus.IN_THE_PAST):
            result["note"] = "Ask the shopper for a day and time in the future."
        if offer.message is not None:
            _notify(state, offer.message)
            result["shown_to_shopper_after_your_reply"] = offer.message.text
            result["note"] = "The app sends that message itself: do not repeat it."
        return result

    async def _product(self, state: TurnTools, reference: str) -> Product | None:
        return state.product(reference) or await self.index.get_product(reference) or await product_for_sku(self.index, reference)


def _notify(state: TurnTools, message: OutboundMessage) -> None:
    if message not in state.notices:
        state.notices.append(message)


def _alert_variant(product: Product, reference: str, sizes: Sequence[str]) -> tuple[Variant | None, list[str]]:
    """The variant an alert is for (the named SKU, else a sold-out one in the shopper's size), or the sizes to choose from."""
    exact = next((v for v in product.variants if v.sku.casefold() == reference.strip().casefold()), None)
    if exact is not None:
        return exact, []
    wanted = {s.strip().casefold() for s in sizes if s.strip()}
    candidates = [v for v in product.variants if not wanted or v.options.get("size", "").casefold() in wanted]
    sold_out = [v for v in candidates if not v.in_stock]
    sold_out_sizes = list(dict.fromkeys(v.options["size"] for v in sold_out if v.options.get("size")))
    if not candidates or len(sold_out_sizes) > 1:
        every = [v for v in product.variants if not v.in_stock]
        return None, sold_out_sizes or list(dict.fromkeys(v.options["size"] for v in every if v.options.get("size")))
    return (sold_out or candidates)[0], []


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


def _preference(kind: str, values: tuple[str, ...], size_system: str) -> Constraints:
    """The facts a ``remember_preference`` call names, validated like the extractor's output."""
    if not values:
        raise ToolInputError("values must name at least one preference to remember")
    if kind == "sizes":
        if size_system not in SIZE_SYSTEMS:
            raise ToolInputError("size_system must be one of " + ", ".join(SIZE_SYSTEMS))
        return Constraints(sizes=tuple(Size(size_system, v.upper() if size_system == "clothing" else v) for v in values))
    if kind == "dietary":
        labels = tuple(v.replace("-", "_").replace(" ", "_") for v in values)
        unknown = [label for label in labels if label not in DIETARY_LABELS]
        if unknown:
            raise ToolInputError("unknown dietary labels: " + ", ".join(unknown[:3]))
        return Constraints(dietary=labels)
    if kind == "materials_exclude":
        return Constraints(materials_exclude=values)
    if kind == "colors_exclude":
        return Constraints(colors_exclude=values)
    return Constraints(brands_exclude=values)


def _union(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*first, *second)))


def passages_for(state: TurnTools, references: Sequence[str]) -> list[Passage]:
    """The passages among ``references`` the model has actually seen this turn."""
    return [p for p in (state.passage(r) for r in references) if p is not None]
