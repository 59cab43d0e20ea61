"""The admin HTTP API: stock updates and catalog uploads from the store's own systems.

``POST /api/inventory``
    ``{"sku": "RUN-012-38-WHT", "quantity": 5}`` or ``{"items": [{"sku": ..., "quantity": ...}, ...]}``.
    Answers the changes (old and new stock) and the back-in-stock events recorded.
    A batch is all or nothing when a SKU is unknown (404 naming them).

``POST /api/catalog?format=F&source=S``
    The body is a catalog file (Shopify/Vendure/generic CSV, DummyJSON or generic
    JSON; ``format`` is detected when omitted). It goes through the same parse and
    upsert as ``shopkeeper ingest``: ``source`` (default ``api-catalog``) names the
    catalog, so a later upload of the same source updates it incrementally and
    removes the products it no longer lists. Answers counts and rejected rows.

``POST /api/orders?format=F``
    The body is orders in the JSON form of ``shopkeeper orders import``
    (``{"orders": [...]}``, a list, or one order object), or a Shopify order
    export / plain order CSV (``format`` is detected when omitted). Each order is
    linked to its customer by e-mail, then phone (created when unknown); SKUs are
    resolved to catalog products. All or nothing: a malformed order answers 422
    with every problem as ``orders:line: reason`` and nothing is stored. Sending
    the same orders again updates them (idempotent on the order number).

All are authenticated with a shared secret (``SHOPKEEPER_INVENTORY_SECRET``): the
header ``X-Shopkeeper-Signature: sha256=<hex HMAC-SHA256 of the raw body>``,
compared in constant time. The checks run in this order and fail closed:
secret not configured → 503, header missing → 401, signature wrong → 403,
body too large → 413, then validation → 422 with a message naming the field.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, TypeVar

from fastapi import APIRouter, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from bot.order_import import ORDER_FORMATS, import_orders, parse_orders
from bot.runtime import Runtime
from kb.index import BaseIndex, IndexUnavailableError
from kb.ingest import FORMATS, IngestError
from kb.inventory import MAX_QUANTITY, StockChange, UnknownSkuError, ingest_path, set_stocks

_FormatQuery = TypeVar("_FormatQuery", bound=BaseModel)

SIGNATURE_HEADER = "X-Shopkeeper-Signature"
SIGNATURE_PREFIX = "sha256="
MAX_INVENTORY_BYTES = 1_000_000
MAX_CATALOG_BYTES = 50_000_000
MAX_ORDERS_BYTES = 10_000_000
MAX_BATCH = 1_000
DEFAULT_SOURCE = "api-catalog"
UPLOAD_FORMATS = tuple(f for f in FORMATS if f != "pages")  # pages are folders: use `shopkeeper ingest`

router = APIRouter(prefix="/api", tags=["admin"])

Sku = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
SourceName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,128}$")]


class InventoryItem(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    sku: Sku = Field(description="The variant's SKU, as in the catalog.")
    quantity: int = Field(ge=0, le=MAX_QUANTITY, description="The new stock level (0: sold out).")


class InventoryBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    items: list[InventoryItem] = Field(min_length=1, max_length=MAX_BATCH)


class CatalogQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    format: str | None = Field(default=None, description="One of " + ", ".join(UPLOAD_FORMATS) + "; detected when omitted.")
    source: SourceName = DEFAULT_SOURCE


class StockChangeOut(BaseModel):
    sku: str
    product_id: str
    old: int | None = Field(description="The previous stock (null: not tracked).")
    new: int
    back_in_stock: bool


class BackInStockOut(BaseModel):
    id: int
    sku: str
    product_id: str
    qty: int
    at: str = Field(description="When it was recorded (ISO 8601, UTC).")


class InventoryResponse(BaseModel):
    changes: list[StockChangeOut]
    back_in_stock: list[BackInStockOut]


class CatalogResponse(BaseModel):
    source: str
    products: int
    passages: int
    added: int
    updated: int
    unchanged: int
    removed: int
    rejected: int
    errors: list[str] = Field(description="Rejected rows as `source:line: reason`.")


def sign(body: bytes, secret: str) -> str:
    """The signature header value for ``body`` (what a client sends)."""
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _secret(runtime: Runtime) -> str:
    secret = runtime.settings.inventory_secret
    if secret is None or not secret.get_secret_value():
        raise HTTPException(503, detail="inventory API disabled: set SHOPKEEPER_INVENTORY_SECRET to enable it")
    return secret.get_secret_value()


async def _signed_body(request: Request, limit: int) -> bytes:
    """The raw body, once its signature is checked (fail closed, constant-time comparison)."""
    secret = _secret(_runtime(request))
    signature = request.headers.get(SIGNATURE_HEADER)
    if not signature:
        raise HTTPException(401, detail=f"missing {SIGNATURE_HEADER} header", headers={"WWW-Authenticate": "HMAC-SHA256"})
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, detail=f"body larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, detail=f"body larger than {limit} bytes")
    if not hmac.compare_digest(signature.strip().encode(), sign(bytes(body), secret).encode()):
        raise HTTPException(403, detail="signature verification failed")
    return bytes(body)


def _change_out(change: StockChange) -> StockChangeOut:
    return StockChangeOut(
        sku=change.sku, product_id=change.product_id, old=change.old, new=change.new, back_in_stock=change.back_in_stock
    )


@router.post("/inventory", summary="Set the stock of one or more SKUs", response_model=InventoryResponse)
async def update_inventory(request: Request) -> InventoryResponse:
    body = await _signed_body(request, MAX_INVENTORY_BYTES)
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise HTTPException(422, detail="body: not valid JSON") from None
    try:
        if isinstance(payload, dict) and "items" in payload:
            items = InventoryBatch.model_validate(payload).items
        else:
            items = [InventoryItem.model_validate(payload)]
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False, include_context=False)) from None

    runtime = _runtime(request)
    try:
        changes = await set_stocks(runtime.index, [(item.sku, item.quantity) for item in items], store=runtime.store)
    except UnknownSkuError as exc:
        raise HTTPException(404, detail=str(exc)) from None
    except ValueError as exc:
        raise HTTPException(422, detail=str(exc)) from None
    except IndexUnavailableError as exc:
        raise HTTPException(503, detail=f"knowledge base unavailable: {exc}") from None
    return InventoryResponse(
        changes=[_change_out(change) for change in changes],
        back_in_stock=[
            BackInStockOut(id=e.id, sku=e.sku, product_id=e.product_id, qty=e.qty, at=e.at.isoformat())
            for change in changes
            if (e := change.event) is not None
        ],
    )


def _suffix(fmt: str | None, body: bytes) -> str:
    if fmt is not None:
        return ".json" if fmt.endswith("json") else ".csv"
    return ".json" if body.lstrip()[:1] in (b"[", b"{") else ".csv"


def _write_upload(body: bytes, suffix: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="shopkeeper-upload-"))
    path = folder / f"catalog{suffix}"
    path.write_bytes(body)
    return path


async def _ingest_upload(index: BaseIndex, body: bytes, fmt: str | None, source: str, currency: str) -> CatalogResponse:
    path = await asyncio.to_thread(_write_upload, body, _suffix(fmt, body))
    try:
        report = await ingest_path(index, path, fmt, currency=currency, source=source)
    except IngestError as exc:
        raise HTTPException(422, detail=str(exc).replace(str(path), source)) from None
    finally:
        await asyncio.to_thread(shutil.rmtree, path.parent, True)
    stats = report.stats
    return CatalogResponse(
        source=report.source, products=report.products, passages=report.passages, added=stats.added, updated=stats.updated,
        unchanged=stats.unchanged, removed=stats.removed, rejected=len(report.errors), errors=[str(e) for e in report.errors],
    )


def _query(request: Request, model: type[_FormatQuery], formats: Sequence[str]) -> _FormatQuery:
    """The query parameters of an upload (read only after authentication), with its ``format`` checked: 422 otherwise."""
    try:
        query = model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False, include_context=False)) from None
    fmt = getattr(query, "format", None)
    if fmt is not None and fmt not in formats:
        raise HTTPException(422, detail=f"format: must be one of {', '.join(formats)}")
    return query


@router.post("/catalog", summary="Upload a catalog file (same import as `shopkeeper ingest`)", response_model=CatalogResponse)
async def upload_catalog(request: Request) -> CatalogResponse:
    # query parameters are read after authentication, so an unsigned request never learns what is valid
    body = await _signed_body(request, MAX_CATALOG_BYTES)
    query = _query(request, CatalogQuery, UPLOAD_FORMATS)
    if not body.strip():
        raise HTTPException(422, detail="body: empty catalog file")
    runtime = _runtime(request)
    try:
        return await _ingest_upload(runtime.index, body, query.format, query.source, runtime.settings.currency)
    except IndexUnavailableError as exc:
        raise HTTPException(503, detail=f"knowledge base unavailable: {exc}") from None


class OrdersQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    format: str | None = Field(default=None, description="One of " + ", ".join(ORDER_FORMATS) + "; detected when omitted.")


class OrdersResponse(BaseModel):
    orders: int = Field(description="Orders stored (added or updated).")
    customers_created: int
    unlinked: int = Field(description="Orders without e-mail or phone: kept for co-purchase counts, shown to no shopper.")
    unknown_skus: int = Field(description="Line items whose SKU is not in the catalog.")


def _one_order_as_list(text: str) -> str:
    """A body holding one order object becomes a list of one (the import reads lists)."""
    if not text.lstrip().startswith("{"):
        return text
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return text  # the parser reports it with its position
    return text if isinstance(document, dict) and "orders" in document else "[" + text + "]"


@router.post("/orders", summary="Send orders (linked to customers by e-mail or phone)", response_model=OrdersResponse)
async def receive_orders(request: Request) -> OrdersResponse:
    body = await _signed_body(request, MAX_ORDERS_BYTES)
    query = _query(request, OrdersQuery, ORDER_FORMATS)
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise HTTPException(422, detail="body: not UTF-8 text") from None
    runtime = _runtime(request)
    try:
        parsed = await asyncio.to_thread(
            parse_orders, _one_order_as_list(text), name="orders", fmt=query.format, timezone=runtime.shop.timezone
        )
    except IngestError as exc:
        raise HTTPException(422, detail=str(exc)) from None
    if parsed.errors:
        raise HTTPException(422, detail="; ".join(str(e) for e in parsed.errors))
    if not parsed.orders:
        raise HTTPException(422, detail="body: no orders")
    try:
        report = await import_orders(runtime.store, runtime.index, parsed, source="api-orders", default_currency=runtime.shop.currency)
    except IndexUnavailableError as exc:
        raise HTTPException(503, detail=f"knowledge base unavailable: {exc}") from None
    return OrdersResponse(
        orders=report.orders, customers_created=report.customers_created, unlinked=report.unlinked, unknown_skus=report.unknown_skus
    )
