"""Prior orders in: the Shopify order export, the JSON form, plain CSV, ``POST /api/orders`` and the CLI.

``tests/fixtures/orders/shopify_orders_export.csv`` uses the column headers of
Shopify's order export (one row per line item). It holds four good orders and
three problems: #1104 has a quantity "two" (line 8), a line item without an
order Name (line 10), and #1106 an unreadable date (line 11).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bot.app import create_app
from bot.order_import import detect_order_format, import_orders, parse_orders, read_orders
from bot.settings import Settings
from bot.store import Store
from channels.admin_api import SIGNATURE_HEADER, sign
from kb.embedder import make_embedder
from kb.ingest import IngestError
from kb.sqlite_index import SQLiteIndex

REPO = Path(__file__).resolve().parents[1]
SHOPIFY = REPO / "tests" / "fixtures" / "orders" / "shopify_orders_export.csv"
SECRET = "order feed secret"


@pytest.fixture
async def kb(data_dir: Path) -> AsyncIterator[tuple[Store, SQLiteIndex]]:
    async with Store(data_dir / "shopkeeper.db") as store, SQLiteIndex(data_dir / "kb.db", make_embedder("auto")) as index:
        yield store, index


def orders_in(data_dir: Path) -> dict[str, tuple[str | None, str, str, list[dict[str, object]]]]:
    with sqlite3.connect(data_dir / "shopkeeper.db") as db:
        rows = db.execute("SELECT order_number, customer_id, status, total, lines FROM orders").fetchall()
    return {r[0]: (r[1], r[2], r[3], json.loads(r[4])) for r in rows}


def customers_in(data_dir: Path) -> dict[str, tuple[str | None, str | None, str | None]]:
    with sqlite3.connect(data_dir / "shopkeeper.db") as db:
        return {r[0]: (r[1], r[2], r[3]) for r in db.execute("SELECT id, name, email, phone FROM customers")}


# -- parsing -------------------------------------------------------------------------------------------------


def test_the_shopify_export_parses_with_row_level_errors() -> None:
    result = read_orders(SHOPIFY, timezone="Europe/Madrid")
    assert [o.order_number for o in result.orders] == ["#1101", "#1102", "#1103", "#1105"]
    assert [(e.line, e.reason.split(":")[0]) for e in result.errors] == [(8, "order #1104"), (10, "no Name"), (11, "order #1106")]
    assert all(e.file == str(SHOPIFY) for e in result.errors)
    assert "quantity 'two'" in result.errors[0].reason and "unreadable date 'yesterday'" in result.errors[2].reason
    first = result.orders[0]
    assert (first.email, first.phone, first.name, first.status, first.currency) == (
        "ana.silva@example.com", "+351912000011", "Ana Silva", "shipped", "EUR")
    assert first.total == Decimal("229.80") and first.created_at.isoformat() == "2026-03-14T10:22:31+00:00"
    assert [(ln.sku, ln.quantity, ln.unit_price) for ln in first.lines] == [
        ("HIK-001-39-BRN", 1, Decimal("139.00")), ("SOC-001-3942-GRY", 2, Decimal("18.90")), ("BAG-001-GRN", 1, Decimal("53.00"))]
    by_number = {o.order_number: o for o in result.orders}
    assert by_number["#1102"].email == "lucia.romero@example.com"  # e-mails compared in lower case
    assert by_number["#1103"].email is None and by_number["#1103"].phone == "+15550100002"
    assert by_number["#1105"].status == "cancelled"


def test_formats_are_detected() -> None:
    assert detect_order_format("x", SHOPIFY.read_text()) == "shopify"
    assert detect_order_format("x", '{"orders": []}') == "json"
    assert detect_order_format("x", "order_number,created_at,sku,title,quantity,unit_price\n") == "csv"
    with pytest.raises(IngestError, match="not an order export"):
        detect_order_format("products.csv", "Handle,Title,Variant Price\n")


def test_the_json_form_reports_bad_orders_by_line() -> None:
    text = json.dumps({"orders": [
        {"order_number": "W-1", "email": "a@example.com", "created_at": "2026-05-01T10:00:00+02:00", "status": "delivered",
         "currency": "EUR", "tracking_url": "https://track.example/W-1",
         "lines": [{"sku": "SOC-001-3942-GRY", "title": "Merino Hiking Sock", "quantity": 2, "unit_price": 18.9}]},
        {"order_number": "W-2", "email": "a@example.com", "created_at": "2026-05-02T10:00:00+02:00", "status": "lost",
         "lines": [{"sku": "X", "title": "X", "quantity": 1, "unit_price": 1}]},
        {"order_number": "W-3", "email": "not-an-address", "created_at": "2026-05-03T10:00:00+02:00",
         "lines": [{"sku": "X", "title": "X", "quantity": 1, "unit_price": 1}]},
        {"order_number": "W-4", "email": "a@example.com", "created_at": "2026-05-03T10:00:00+02:00", "lines": []},
    ]}, indent=1)
    result = parse_orders(text, name="feed.json", timezone="Europe/Madrid")
    assert [o.order_number for o in result.orders] == ["W-1"]
    assert result.orders[0].total == Decimal("37.8") and result.orders[0].tracking_url == "https://track.example/W-1"
    lines = [text.count("\n", 0, text.index(f'"W-{n}"')) for n in (2, 3, 4)]  # each order's object starts the line before
    assert [e.line for e in result.errors] == lines
    assert ["unknown status 'lost'" in result.errors[0].reason, "invalid e-mail" in result.errors[1].reason,
            "at least one line item" in result.errors[2].reason] == [True, True, True]


def test_plain_csv_and_local_times_in_the_store_timezone() -> None:
    text = (
        "order_number,email,phone,created_at,status,currency,sku,title,quantity,unit_price\n"
        "P-1,,600 11 22 33,2026-06-01 09:30,processing,EUR,SOC-001-3942-GRY,Merino Hiking Sock,1,18.90\n"
        "P-1,,,,,,BAG-001-GRN,Collada 22 Daypack,1,\"79,90\"\n"
    )
    result = parse_orders(text, name="shop.csv", timezone="Europe/Madrid", default_country_code="34")
    assert not result.errors
    order = result.orders[0]
    assert order.phone == "+34600112233" and order.total == Decimal("98.80")
    assert order.created_at.isoformat() == "2026-06-01T09:30:00+02:00"


# -- importing ---------------------------------------------------------------------------------------------


async def test_import_links_customers_resolves_products_and_is_idempotent(
    kb: tuple[Store, SQLiteIndex], data_dir: Path
) -> None:
    store, index = kb
    customers_before = customers_in(data_dir)
    parsed = read_orders(SHOPIFY, timezone="Europe/Madrid")
    report = await import_orders(store, index, parsed, source=str(SHOPIFY), default_currency="EUR")
    assert (report.orders, report.customers_created, report.unlinked, report.unknown_skus, len(report.errors)) == (4, 1, 0, 1, 3)
    orders = orders_in(data_dir)
    ana = next(cid for cid, (name, _e, _p) in customers_in(data_dir).items() if name == "Ana Silva")
    assert customers_in(data_dir)[ana] == ("Ana Silva", "ana.silva@example.com", "+351912000011")
    assert orders["#1101"][0] == ana and orders["#1105"][0] == ana
    assert orders["#1102"][0] == "cus_001"  # by e-mail, whatever its case
    assert orders["#1103"][0] == "cus_002"  # by phone, the order has no e-mail
    assert [ln["product_id"] for ln in orders["#1101"][3]] == ["HIK-001", "SOC-001", "BAG-001"]
    assert orders["#1105"][1] == "cancelled" and orders["#1105"][3][0]["product_id"] is None  # a gift card: not in the catalog
    assert "#1104" not in orders and "#1106" not in orders

    again = await import_orders(store, index, read_orders(SHOPIFY, timezone="Europe/Madrid"), source="x", default_currency="EUR")
    assert again.customers_created == 0
    assert orders_in(data_dir) == orders
    assert len(customers_in(data_dir)) == len(customers_before) + 1


async def test_an_order_without_email_or_phone_is_kept_unlinked(kb: tuple[Store, SQLiteIndex], data_dir: Path) -> None:
    store, index = kb
    text = "order_number,created_at,sku,title,quantity,unit_price\nPOS-1,2026-06-01T10:00:00+02:00,SOC-001-3942-GRY,Sock,1,18.90\n"
    report = await import_orders(store, index, parse_orders(text, name="pos.csv"), source="pos.csv", default_currency="EUR")
    assert report.unlinked == 1
    assert orders_in(data_dir)["POS-1"][0] is None


def test_the_cli_imports_and_reports_bad_rows(data_dir: Path) -> None:
    env = {**os.environ, "SHOPKEEPER_DATA_DIR": str(data_dir), "SHOPKEEPER_LOG_LEVEL": "WARNING"}
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "orders", "import", str(SHOPIFY)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 1  # some rows were rejected
    assert f"{SHOPIFY}:8: order #1104: quantity 'two'" in done.stderr
    assert f"{SHOPIFY}: 4 orders imported (1 new customers" in done.stdout
    assert "#1101" in orders_in(data_dir)
    missing = subprocess.run(
        [sys.executable, "-m", "bot.cli", "orders", "import", str(data_dir / "nope.csv")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert missing.returncode == 2 and "no such file" in missing.stderr


# -- POST /api/orders --------------------------------------------------------------------------------------


@pytest.fixture
def admin(data_dir: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=data_dir, inventory_secret=SECRET, _env_file=None)  # type: ignore[call-arg]
    with TestClient(create_app(settings, start_scheduler=False)) as test_client:
        yield test_client


ORDER = {
    "order_number": "API-1", "email": "new.shopper@example.com", "phone": "+49 151 0000 0099", "name": "Nina Vogel",
    "created_at": "2026-11-01T12:00:00+01:00", "status": "shipped", "currency": "EUR", "tracking_url": "https://track.example/API-1",
    "lines": [{"sku": "OUT-001-M-BLK", "title": "Thermal Merino Base Layer Top", "quantity": 1, "unit_price": "69.90"}],
}


def post(client: TestClient, body: bytes, *, secret: str = SECRET, query: str = "") -> tuple[int, dict[str, object]]:
    response = client.post("/api/orders" + query, content=body, headers={SIGNATURE_HEADER: sign(body, secret)})
    return response.status_code, response.json()


def test_signed_orders_are_stored_and_linked(admin: TestClient, data_dir: Path) -> None:
    status, answer = post(admin, json.dumps({"orders": [ORDER]}).encode())
    assert status == 200
    assert answer == {"orders": 1, "customers_created": 1, "unlinked": 0, "unknown_skus": 0}
    customer, state, total, lines = orders_in(data_dir)["API-1"]
    assert (state, total, lines[0]["product_id"]) == ("shipped", "69.90", "OUT-001")
    assert customers_in(data_dir)[customer or ""] == ("Nina Vogel", "new.shopper@example.com", "+4915100000099")
    status, _ = post(admin, json.dumps(ORDER).encode())  # one order object, sent again: updated in place
    assert status == 200 and len([n for n in orders_in(data_dir) if n == "API-1"]) == 1


def test_a_shopify_csv_body_is_accepted(admin: TestClient, data_dir: Path) -> None:
    good = "\n".join(line for n, line in enumerate(SHOPIFY.read_text().splitlines(), 1) if n <= 6) + "\n"
    status, answer = post(admin, good.encode(), query="?format=shopify")
    assert status == 200 and answer["orders"] == 3
    assert {"#1101", "#1102", "#1103"} <= set(orders_in(data_dir))


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({SIGNATURE_HEADER: sign(b"other", SECRET)}, 403), ({SIGNATURE_HEADER: sign(b"x", "wrong")}, 403)],
    ids=["unsigned", "other-body", "wrong-secret"],
)
def test_bad_signatures_store_nothing(admin: TestClient, data_dir: Path, headers: dict[str, str], status: int) -> None:
    before = orders_in(data_dir)
    response = admin.post("/api/orders", content=json.dumps({"orders": [ORDER]}).encode(), headers=headers)
    assert response.status_code == status and "error" in response.json()
    assert orders_in(data_dir) == before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty"),
        (json.dumps({"orders": [ORDER, {**ORDER, "order_number": "API-2", "lines": []}]}).encode(), "orders:"),
        (json.dumps({"orders": [{**ORDER, "created_at": "soon"}]}).encode(), "unreadable date"),
        (json.dumps({"orders": []}).encode(), "no orders"),
        (b"Handle,Title,Variant Price\n", "not an order export"),
    ],
    ids=["not-json", "empty", "one-bad-order", "bad-date", "no-orders", "a-catalog"],
)
def test_a_bad_body_is_a_422_with_a_message_and_stores_nothing(
    admin: TestClient, data_dir: Path, body: bytes, message: str
) -> None:
    before, people = orders_in(data_dir), customers_in(data_dir)
    status, answer = post(admin, body)
    assert status == 422
    assert message in str(answer["error"])
    assert orders_in(data_dir) == before and customers_in(data_dir) == people


def test_an_unknown_format_is_a_422(admin: TestClient) -> None:
    status, answer = post(admin, json.dumps([ORDER]).encode(), query="?format=xml")
    assert status == 422 and "format" in str(answer["error"])


async def test_order_items_follow_their_order_through_updates_and_erasure(kb: tuple[Store, SQLiteIndex], data_dir: Path) -> None:
    from bot.privacy import erase_customer

    store, index = kb

    def items() -> set[tuple[str, str]]:
        with sqlite3.connect(data_dir / "shopkeeper.db") as db:
            return {(r[0], r[1]) for r in db.execute("SELECT order_number, product_id FROM order_items WHERE order_number LIKE 'W-%'")}

    def feed(*skus: str) -> str:
        lines = [{"sku": sku, "title": sku, "quantity": 1, "unit_price": "10"} for sku in skus]
        return json.dumps([{"order_number": "W-1", "email": "w@example.org", "created_at": "2026-05-01T10:00:00+02:00", "lines": lines}])

    async def send(*skus: str) -> None:
        await import_orders(store, index, parse_orders(feed(*skus), name="w.json"), source="w", default_currency="EUR")

    await send("HIK-001-40-BRN", "BAG-001-GRN")
    assert items() == {("W-1", "HIK-001"), ("W-1", "BAG-001")}
    await send("SOC-001-3942-GRY")
    assert items() == {("W-1", "SOC-001")}
    customer = orders_in(data_dir)["W-1"][0]
    assert customer is not None
    await erase_customer(store, customer)
    assert items() == set() and "W-1" not in orders_in(data_dir)
