"""Prior orders in: Shopify order exports, a JSON form and a plain CSV, into the orders table.

Formats (:data:`ORDER_FORMATS`, detected from the header or the JSON shape when not given):

``shopify``
    Shopify's order export (Orders → Export): one row per line item, rows of one
    order share ``Name`` (``#1001``); order fields (Email, Phone, Financial Status,
    Fulfillment Status, Currency, Total, Created at, Cancelled at, Billing/Shipping
    Name and Phone) are read from the first row that has them, line items from
    ``Lineitem quantity``, ``Lineitem name``, ``Lineitem price``, ``Lineitem sku``.
``json``
    ``{"orders": [...]}`` or a list; each order has ``order_number``, ``email``
    and/or ``phone``, ``created_at`` (ISO 8601), ``status``, ``currency``, ``total``,
    optional ``name`` and ``tracking_url``, and ``lines`` of ``sku``, ``title``,
    ``quantity``, ``unit_price``. This is also the body of ``POST /api/orders``.
``csv``
    One row per line item with the JSON form's field names as columns.

A malformed order is reported as a :class:`kb.ingest.RowError` (file, line of the
offending row, reason) and skipped whole, so no half order is stored, while the
rest of the file imports; a file that cannot be used raises :class:`kb.ingest.IngestError`.
:func:`import_orders` links each order to a customer by e-mail, then by phone
(E.164, :mod:`bot.phones`), creating the customer when unknown, and resolves each
line's SKU to its catalog product. Re-importing a file updates the same rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiosqlite

from bot.phones import to_e164
from bot.store import Order, OrderLine, Store, write_orders
from kb.index import BaseIndex
from kb.ingest.common import CsvRow, csv_header, json_items, parse_currency, parse_price, read_csv, read_text
from kb.ingest.errors import IngestError, RowError, RowProblem, UnknownFormatError
from kb.ingest.text import clean_line
from kb.inventory import product_for_sku

ORDER_FORMATS = ("shopify", "json", "csv")
ORDER_STATUSES = ("processing", "shipped", "delivered", "cancelled")
SHOPIFY_REQUIRED = ("Name", "Lineitem quantity", "Lineitem name", "Lineitem price")
CSV_REQUIRED = ("order_number", "created_at", "sku", "title", "quantity", "unit_price")
MAX_QUANTITY = 10_000
_STATUS_WORDS = {
    "processing": "processing", "pending": "processing", "unfulfilled": "processing", "partial": "processing",
    "open": "processing", "paid": "processing",
    "shipped": "shipped", "fulfilled": "shipped", "in_transit": "shipped",
    "delivered": "delivered",
    "cancelled": "cancelled", "canceled": "cancelled", "voided": "cancelled", "refunded": "cancelled",
}
_SHOPIFY_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S %z", "%Y-%m-%d %H:%M %z")


@dataclass(frozen=True, slots=True)
class ParsedOrder:
    """One order as read from a file, before it is linked to a customer."""

    order_number: str
    line: int
    email: str | None
    phone: str | None
    name: str | None
    status: str
    currency: str
    total: Decimal
    created_at: datetime
    tracking_url: str | None
    lines: tuple[OrderLine, ...]


@dataclass
class OrderParseResult:
    orders: list[ParsedOrder] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class OrderImportReport:
    source: str
    orders: int
    customers_created: int
    unlinked: int  # orders with neither e-mail nor phone: kept for co-purchase counts, shown to nobody
    unknown_skus: int  # lines whose SKU is not in the catalog (kept, without a product id)
    errors: tuple[RowError, ...]


# --------------------------------------------------------------------------- detection


def detect_order_format(name: str, text: str) -> str:
    """One of :data:`ORDER_FORMATS`, from the JSON shape or the CSV header."""
    if text.lstrip()[:1] in ("[", "{"):
        return "json"
    header = set(csv_header(text))
    if "Name" in header and "Lineitem name" in header:
        return "shopify"
    if {"order_number", "sku"} <= header:
        return "csv"
    raise UnknownFormatError(
        f"{name}: not an order export (expected Shopify's order CSV, the JSON form or a CSV with order_number and sku)"
    )


def read_orders(path: Path, fmt: str | None = None, *, timezone: str = "UTC", default_country_code: str | None = None) -> OrderParseResult:
    """Read and parse an order file (blocking: run it in a thread)."""
    return parse_orders(read_text(path), name=str(path), fmt=fmt, timezone=timezone, default_country_code=default_country_code)


def parse_orders(
    text: str, *, name: str, fmt: str | None = None, timezone: str = "UTC", default_country_code: str | None = None
) -> OrderParseResult:
    """Parse order text named ``name`` (a file name, or the API source) in ``fmt`` (detected when None)."""
    if fmt is not None and fmt not in ORDER_FORMATS:
        raise ValueError(f"unknown order format {fmt!r}; expected one of {', '.join(ORDER_FORMATS)}")
    if not text.strip():
        raise IngestError(f"{name}: empty file")
    chosen = fmt or detect_order_format(name, text)
    reader = _Reader(name, ZoneInfo(timezone), default_country_code)
    if chosen == "json":
        reader.json(text)
    else:
        reader.csv(text, shopify=chosen == "shopify")
    reader.result.errors.sort(key=lambda e: (e.file, e.line))
    return reader.result


class _Reader:
    def __init__(self, name: str, tz: ZoneInfo, country_code: str | None) -> None:
        self.name = name
        self.tz = tz
        self.country_code = country_code
        self.result = OrderParseResult()
        self._seen: set[str] = set()

    def reject(self, line: int, reason: str) -> None:
        self.result.errors.append(RowError(self.name, line, reason))

    # -- CSV (Shopify and plain): rows grouped by order ------------------------

    def csv(self, text: str, *, shopify: bool) -> None:
        errors: list[RowError] = []
        header, rows = read_csv(Path(self.name), text, errors)
        self.result.errors.extend(errors)
        required = SHOPIFY_REQUIRED if shopify else CSV_REQUIRED
        missing = [c for c in required if c not in header]
        if missing:
            raise IngestError(f"{self.name}: missing column(s): {', '.join(missing)}")
        key = "Name" if shopify else "order_number"
        groups: dict[str, list[CsvRow]] = {}
        for row in rows:
            number = row.get(key)
            if not number:
                self.reject(row.line, f"no {key}: cannot tell which order this line item belongs to")
                continue
            groups.setdefault(number, []).append(row)
        for number, group in groups.items():
            try:
                order = self._shopify(number, group) if shopify else self._plain(number, group)
            except _RowFailure as failure:
                self.reject(failure.line, f"order {number}: {failure.reason}")
                continue
            self._add(order)

    def _shopify(self, number: str, rows: list[CsvRow]) -> ParsedOrder:
        def first(*columns: str) -> str:
            return next((row.get(c) for c in columns for row in rows if row.get(c)), "")

        head = rows[0]
        lines = tuple(
            self._line(row.line, row.get("Lineitem sku"), row.get("Lineitem name"), row.get("Lineitem quantity"),
                       row.get("Lineitem price"))
            for row in rows
        )
        created = first("Created at")
        status = "cancelled" if first("Cancelled at") else _status(first("Fulfillment Status") or "unfulfilled", head.line)
        return ParsedOrder(
            order_number=number,
            line=head.line,
            email=_email(first("Email"), head.line),
            phone=self._phone(first("Phone", "Billing Phone", "Shipping Phone")),
            name=first("Billing Name", "Shipping Name") or None,
            status=status,
            currency=_currency(first("Currency"), head.line),
            total=_price(first("Total") or None, head.line, "Total") if first("Total") else _sum(lines),
            created_at=self._time(created, head.line),
            tracking_url=None,  # the order export carries no tracking links; the API and JSON form do
            lines=lines,
        )

    def _plain(self, number: str, rows: list[CsvRow]) -> ParsedOrder:
        def first(column: str) -> str:
            return next((row.get(column) for row in rows if row.get(column)), "")

        head = rows[0]
        lines = tuple(
            self._line(row.line, row.get("sku"), row.get("title"), row.get("quantity"), row.get("unit_price")) for row in rows
        )
        return ParsedOrder(
            order_number=number,
            line=head.line,
            email=_email(first("email"), head.line),
            phone=self._phone(first("phone")),
            name=first("name") or None,
            status=_status(first("status") or "processing", head.line),
            currency=_currency(first("currency"), head.line),
            total=_price(first("total"), head.line, "total") if first("total") else _sum(lines),
            created_at=self._time(first("created_at"), head.line),
            tracking_url=_url(first("tracking_url"), head.line),
            lines=lines,
        )

    # -- JSON ------------------------------------------------------------------

    def json(self, text: str) -> None:
        _meta, items = json_items(Path(self.name), text, "orders", "order")
        for line, item in items:
            number = clean_line(item.get("order_number")) if isinstance(item, dict) else ""
            try:
                if not isinstance(item, dict):
                    raise _RowFailure(line, "an order must be a JSON object")
                order = self._json_order(line, item)
            except _RowFailure as failure:
                self.reject(failure.line, f"order {number}: {failure.reason}" if number else failure.reason)
                continue
            self._add(order)

    def _json_order(self, line: int, item: dict[str, Any]) -> ParsedOrder:
        number = clean_line(item.get("order_number"))
        if not number:
            raise _RowFailure(line, "no order_number")
        raw_lines = item.get("lines")
        if not isinstance(raw_lines, list) or not raw_lines:
            raise _RowFailure(line, "lines: at least one line item is required")
        lines = []
        for raw in raw_lines:
            if not isinstance(raw, dict):
                raise _RowFailure(line, "lines: each line item must be a JSON object")
            lines.append(self._line(line, raw.get("sku"), raw.get("title"), raw.get("quantity"), raw.get("unit_price")))
        total = item.get("total")
        return ParsedOrder(
            order_number=number,
            line=line,
            email=_email(_text(item.get("email")), line),
            phone=self._phone(_text(item.get("phone"))),
            name=_text(item.get("name")) or None,
            status=_status(_text(item.get("status")) or "processing", line),
            currency=_currency(_text(item.get("currency")), line),
            total=_price(total, line, "total") if total is not None else _sum(lines),
            created_at=self._time(_text(item.get("created_at")), line),
            tracking_url=_url(_text(item.get("tracking_url")), line),
            lines=tuple(lines),
        )

    # -- fields ----------------------------------------------------------------

    def _add(self, order: ParsedOrder) -> None:
        if order.order_number in self._seen:
            self.reject(order.line, f"order {order.order_number}: appears twice in this file")
            return
        self._seen.add(order.order_number)
        self.result.orders.append(order)

    def _line(self, line: int, sku: object, title: object, quantity: object, price: object) -> OrderLine:
        name = clean_line(title) if title is not None else ""
        if not name:
            raise _RowFailure(line, "line item without a name/title")
        return OrderLine(
            sku=clean_line(sku) if sku is not None else "",
            title=name,
            quantity=_quantity(quantity, line),
            unit_price=_price(price, line, "price"),
        )

    def _phone(self, raw: str) -> str | None:
        # an unreadable phone is not a reason to drop the order: the e-mail may still link it
        return to_e164(raw, default_country_code=self.country_code) if raw else None

    def _time(self, raw: str, line: int) -> datetime:
        if not raw:
            raise _RowFailure(line, "no created_at / Created at")
        value: datetime | None = None
        for pattern in _SHOPIFY_TIME_FORMATS:
            try:
                value = datetime.strptime(raw, pattern)  # noqa: DTZ007 - every pattern ends in %z
                break
            except ValueError:
                continue
        if value is None:
            try:
                value = datetime.fromisoformat(raw)
            except ValueError:
                raise _RowFailure(line, f"unreadable date {raw!r} (expected ISO 8601 or 2026-03-14 10:22:31 +0100)") from None
        if value.tzinfo is None:  # a local time without offset is the store's
            value = value.replace(tzinfo=self.tz)
        return value


class _RowFailure(Exception):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


def _text(value: object) -> str:
    return clean_line(value) if isinstance(value, str) else ("" if value is None else clean_line(str(value)))


def _price(raw: object, line: int, what: str) -> Decimal:
    try:
        return parse_price(raw)
    except RowProblem as problem:
        raise _RowFailure(line, f"{what}: {problem.reason}") from None


def _sum(lines: Iterable[OrderLine]) -> Decimal:
    return sum((ln.unit_price * ln.quantity for ln in lines), Decimal(0))


def _quantity(raw: object, line: int) -> int:
    text = _text(raw)
    try:
        value = Decimal(text)
    except ArithmeticError:
        raise _RowFailure(line, f"quantity {text!r} is not a whole number") from None
    if not value.is_finite() or value != value.to_integral_value() or not 0 < value <= MAX_QUANTITY:
        raise _RowFailure(line, f"quantity {text!r} is not a whole number from 1 to {MAX_QUANTITY}")
    return int(value)


def _currency(raw: str, line: int) -> str:
    try:
        return parse_currency(raw, "")
    except RowProblem as problem:
        raise _RowFailure(line, problem.reason) from None


def _status(raw: str, line: int) -> str:
    status = _STATUS_WORDS.get(raw.strip().casefold().replace(" ", "_"))
    if status is None:
        raise _RowFailure(line, f"unknown status {raw!r} (expected one of {', '.join(ORDER_STATUSES)})")
    return status


def _email(raw: str, line: int) -> str | None:
    if not raw:
        return None
    local, at, domain = raw.partition("@")
    if not at or not local or "." not in domain or any(ch.isspace() for ch in raw):
        raise _RowFailure(line, f"invalid e-mail address {raw!r}")
    return raw.lower()


def _url(raw: str, line: int) -> str | None:
    if not raw:
        return None
    if not raw.startswith("https://") and not raw.startswith("http://"):
        raise _RowFailure(line, f"tracking_url must be an http(s) link, not {raw!r}")
    return raw


# --------------------------------------------------------------------------- import


async def import_orders(
    store: Store,
    index: BaseIndex | None,
    parsed: OrderParseResult,
    *,
    source: str,
    default_currency: str,
    progress: Callable[[int, int], None] | None = None,
) -> OrderImportReport:
    """Link the parsed orders to customers (creating unknown ones), resolve SKUs, upsert (idempotent)."""
    products: dict[str, str | None] = {}
    if index is not None:
        for sku in sorted({ln.sku for o in parsed.orders for ln in o.lines if ln.sku}):
            product = await product_for_sku(index, sku)
            products[sku] = product.id if product is not None else None
    created = 0
    unlinked = 0
    orders: list[Order] = []
    now = store.now()
    async with store.transaction() as db:
        for position, parsed_order in enumerate(parsed.orders, start=1):
            customer_id, new = await _customer_for(db, parsed_order, now + timedelta(microseconds=position))
            created += int(new)
            unlinked += int(customer_id is None)
            orders.append(
                Order(
                    order_number=parsed_order.order_number,
                    customer_id=customer_id,
                    status=parsed_order.status,
                    currency=parsed_order.currency or default_currency,
                    total=parsed_order.total,
                    tracking_url=parsed_order.tracking_url,
                    created_at=parsed_order.created_at,
                    lines=tuple(
                        OrderLine(ln.sku, ln.title, ln.quantity, ln.unit_price, products.get(ln.sku)) for ln in parsed_order.lines
                    ),
                )
            )
            if progress is not None:
                progress(position, len(parsed.orders))
        await write_orders(db, orders)  # customers and orders land together or not at all
    unknown = sum(1 for o in orders for ln in o.lines if ln.product_id is None) if index is not None else 0
    return OrderImportReport(
        source=source, orders=len(orders), customers_created=created, unlinked=unlinked, unknown_skus=unknown,
        errors=tuple(parsed.errors),
    )


async def _customer_for(db: aiosqlite.Connection, order: ParsedOrder, now: datetime) -> tuple[str | None, bool]:
    """The customer the order belongs to (by e-mail, then phone), created when unknown; and whether it was created."""
    row = None
    if order.email:
        async with db.execute("SELECT * FROM customers WHERE lower(email) = ? ORDER BY created_at, id LIMIT 1", (order.email,)) as cur:
            row = await cur.fetchone()
    if row is None and order.phone:
        async with db.execute("SELECT * FROM customers WHERE phone = ? ORDER BY created_at, id LIMIT 1", (order.phone,)) as cur:
            row = await cur.fetchone()
    if row is not None:
        # fill what the customer record lacks; never overwrite what the shop or the shopper set
        await db.execute(
            "UPDATE customers SET email = COALESCE(email, ?), phone = COALESCE(phone, ?), name = COALESCE(name, ?) WHERE id = ?",
            (order.email, order.phone, order.name, row["id"]),
        )
        return str(row["id"]), False
    if not order.email and not order.phone:
        return None, False
    customer_id = "cus_" + uuid.uuid4().hex[:16]
    await db.execute(
        "INSERT INTO customers (id, name, email, phone, created_at) VALUES (?, ?, ?, ?, ?)",
        (customer_id, order.name, order.email, order.phone, now.isoformat()),
    )
    return customer_id, True
