"""Stock updates, back-in-stock events and catalog uploads (kb.inventory, channels.admin_api, the CLI).

Every test runs on a fresh copy of the seeded demo data dir. In the demo
catalog, RUN-012 ("Carbon Edge Marathon Racer") is sold out in every size.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bot.app import create_app
from bot.cli import ProgressBar
from bot.settings import Settings
from bot.store import Store
from channels.admin_api import SIGNATURE_HEADER, sign
from kb.embedder import make_embedder
from kb.index import BaseIndex
from kb.inventory import (
    PROGRESS_MIN_CHUNK,
    UnknownSkuError,
    back_in_stock_events,
    ingest_path,
    set_stock,
    set_stocks,
)
from kb.models import SearchFilters
from kb.sqlite_index import SQLiteIndex
from tests.test_index_contract import CATALOG
from tests.test_weaviate_index import FakeServer, fake_index

SECRET = "correct horse battery staple"
SOLD_OUT_SKU = "RUN-012-38-WHT"
SOLD_OUT_PRODUCT = "RUN-012"
REPO = Path(__file__).resolve().parents[1]
CATALOGS = REPO / "tests" / "fixtures" / "catalogs"

MINI_HEADER = "id,title,description,category,brand,price,currency,stock,sku,size,color\n"
MINI_ROWS = [
    "mini-1,Trail Bottle,A steel bottle.,Bottles,Finch,12.00,EUR,4,MINI-1,,\n",
    "mini-2,Camp Mug,An enamel mug.,Kitchen,Finch,abc,EUR,2,MINI-2,,\n",  # bad price: rejected
    "mini-3,Head Torch,A small torch.,Lights,Finch,25.00,EUR,0,MINI-3,,\n",
]


def mini_catalog(*, fixed: bool = False) -> bytes:
    rows = [row.replace(",abc,", ",8.50,") if fixed else row for row in MINI_ROWS]
    return (MINI_HEADER + "".join(rows)).encode()


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def secured(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, inventory_secret=SECRET, _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def admin(secured: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(secured, start_scheduler=False)) as test_client:
        yield test_client


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {SIGNATURE_HEADER: sign(body, secret), "content-type": "application/json"}


def post_inventory(client: TestClient, payload: object) -> tuple[int, dict[str, object]]:
    body = json.dumps(payload).encode()
    response = client.post("/api/inventory", content=body, headers=signed(body))
    return response.status_code, response.json()


def events_in(data_dir: Path) -> list[tuple[str, str, int]]:
    with sqlite3.connect(data_dir / "shopkeeper.db") as db:
        return [tuple(row) for row in db.execute("SELECT sku, product_id, qty FROM back_in_stock_events ORDER BY id")]


@pytest.fixture
async def kb(data_dir: Path) -> AsyncIterator[tuple[SQLiteIndex, Store]]:
    async with SQLiteIndex(data_dir / "kb.db", make_embedder("auto")) as index, Store(data_dir / "shopkeeper.db") as store:
        yield index, store


async def in_stock_ids(index: BaseIndex, query: str, **filters: object) -> list[str]:
    found = await index.search(query, SearchFilters(in_stock_only=True, **filters), k=10, kinds=("product",))  # type: ignore[arg-type]
    return [hit.id for hit in found]


# --------------------------------------------------------------------------- authentication


def test_a_signed_request_is_accepted(admin: TestClient) -> None:
    status, answer = post_inventory(admin, {"sku": "RUN-001-36-BLU", "quantity": 7})
    assert status == 200
    assert answer["changes"] == [{"sku": "RUN-001-36-BLU", "product_id": "RUN-001", "old": 2, "new": 7, "back_in_stock": False}]
    assert answer["back_in_stock"] == []


@pytest.mark.parametrize(
    ("make_headers", "status"),
    [
        (lambda body: {}, 401),
        (lambda body: {SIGNATURE_HEADER: ""}, 401),
        (lambda body: signed(body, "wrong secret"), 403),
        (lambda body: {SIGNATURE_HEADER: sign(body, SECRET)[:-8]}, 403),  # truncated
        (lambda body: {SIGNATURE_HEADER: sign(body, SECRET).removeprefix("sha256=")}, 403),  # no scheme
        (lambda body: signed(body + b" "), 403),  # signed another body
    ],
    ids=["missing", "empty", "wrong-secret", "truncated", "no-prefix", "other-body"],
)
def test_bad_signatures_are_refused_and_change_nothing(admin: TestClient, data_dir: Path, make_headers: object, status: int) -> None:
    body = json.dumps({"sku": SOLD_OUT_SKU, "quantity": 5}).encode()
    response = admin.post("/api/inventory", content=body, headers=make_headers(body))  # type: ignore[operator]
    assert response.status_code == status
    assert "error" in response.json()
    _, answer = post_inventory(admin, {"sku": SOLD_OUT_SKU, "quantity": 0})
    assert answer["changes"][0]["old"] == 0  # type: ignore[index]
    assert events_in(data_dir) == []


def test_without_a_secret_the_api_is_disabled(client: TestClient) -> None:
    body = json.dumps({"sku": SOLD_OUT_SKU, "quantity": 5}).encode()
    for path in ("/api/inventory", "/api/catalog"):
        response = client.post(path, content=body, headers=signed(body))
        assert response.status_code == 503
        assert "inventory API disabled" in response.json()["error"]


# --------------------------------------------------------------------------- validation


def test_unknown_skus_are_named_and_a_batch_is_all_or_nothing(admin: TestClient, data_dir: Path) -> None:
    status, answer = post_inventory(admin, {"sku": "NOPE-1", "quantity": 1})
    assert (status, answer["error"]) == (404, "unknown SKU: NOPE-1")
    status, answer = post_inventory(admin, {"items": [{"sku": SOLD_OUT_SKU, "quantity": 5}, {"sku": "NOPE-2", "quantity": 1}]})
    assert (status, answer["error"]) == (404, "unknown SKU: NOPE-2")
    status, answer = post_inventory(admin, {"sku": SOLD_OUT_SKU, "quantity": 0})
    assert answer["changes"][0]["old"] == 0  # type: ignore[index]
    assert events_in(data_dir) == []


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"sku": SOLD_OUT_SKU, "quantity": -1}, "quantity: Input should be greater than or equal to 0"),
        ({"sku": SOLD_OUT_SKU, "quantity": "5"}, "quantity: Input should be a valid integer"),
        ({"sku": SOLD_OUT_SKU, "quantity": 2.5}, "quantity: Input should be a valid integer"),
        ({"sku": SOLD_OUT_SKU, "quantity": True}, "quantity: Input should be a valid integer"),
        ({"quantity": 5}, "sku: required"),
        ({"sku": "", "quantity": 5}, "sku: String should have at least 1 character"),
        ({"sku": SOLD_OUT_SKU, "quantity": 5, "price": 3}, "price: Extra inputs are not permitted"),
        ({"items": []}, "items: List should have at least 1 item"),
        ({"items": [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": -2}]}, "items.1.quantity: Input should be greater"),
        ({"items": [{"sku": SOLD_OUT_SKU, "quantity": 1}, {"sku": SOLD_OUT_SKU, "quantity": 2}]}, "appears more than once"),
        ([1, 2], "body: Input should be a valid dictionary"),
    ],
)
def test_malformed_requests_are_422_with_a_message(admin: TestClient, payload: object, message: str) -> None:
    status, answer = post_inventory(admin, payload)
    assert status == 422
    assert message in str(answer["error"])


def test_a_body_that_is_not_json_is_422(admin: TestClient) -> None:
    body = b"sku=RUN-012-38-WHT&quantity=5"
    response = admin.post("/api/inventory", content=body, headers=signed(body))
    assert (response.status_code, response.json()) == (422, {"error": "body: not valid JSON"})


# --------------------------------------------------------------------------- back-in-stock events


def test_back_in_stock_events_over_http(admin: TestClient, data_dir: Path) -> None:
    status, answer = post_inventory(admin, {"sku": SOLD_OUT_SKU, "quantity": 5})  # 0 -> 5
    assert status == 200
    assert answer["changes"] == [{"sku": SOLD_OUT_SKU, "product_id": SOLD_OUT_PRODUCT, "old": 0, "new": 5, "back_in_stock": True}]
    [event] = answer["back_in_stock"]  # type: ignore[misc]
    assert (event["sku"], event["product_id"], event["qty"]) == (SOLD_OUT_SKU, SOLD_OUT_PRODUCT, 5)
    assert event["at"].endswith("+00:00")
    assert events_in(data_dir) == [(SOLD_OUT_SKU, SOLD_OUT_PRODUCT, 5)]

    assert post_inventory(admin, {"sku": SOLD_OUT_SKU, "quantity": 3})[1]["back_in_stock"] == []  # 5 -> 3
    assert post_inventory(admin, {"sku": SOLD_OUT_SKU, "quantity": 0})[1]["back_in_stock"] == []  # 3 -> 0
    answer = post_inventory(admin, {"sku": SOLD_OUT_SKU, "quantity": 2})[1]  # 0 -> 2
    assert len(answer["back_in_stock"]) == 1  # type: ignore[arg-type]
    assert events_in(data_dir) == [(SOLD_OUT_SKU, SOLD_OUT_PRODUCT, 5), (SOLD_OUT_SKU, SOLD_OUT_PRODUCT, 2)]


def test_a_batch_updates_several_variants_of_one_product(admin: TestClient, data_dir: Path) -> None:
    status, answer = post_inventory(admin, {"items": [
        {"sku": "RUN-012-36-WHT", "quantity": 1}, {"sku": "RUN-012-37-WHT", "quantity": 0}, {"sku": "RUN-001-36-BLU", "quantity": 0},
    ]})
    assert status == 200
    assert [(c["sku"], c["back_in_stock"]) for c in answer["changes"]] == [  # type: ignore[union-attr]
        ("RUN-012-36-WHT", True), ("RUN-012-37-WHT", False), ("RUN-001-36-BLU", False),
    ]
    assert events_in(data_dir) == [("RUN-012-36-WHT", SOLD_OUT_PRODUCT, 1)]


async def test_stock_changes_events_and_search_on_the_embedded_index(kb: tuple[SQLiteIndex, Store]) -> None:
    index, store = kb
    title = "Carbon Edge Marathon Racer"
    assert SOLD_OUT_PRODUCT not in await in_stock_ids(index, title)

    change = await set_stock(index, SOLD_OUT_SKU, 5, store=store)
    assert (change.old, change.new, change.back_in_stock) == (0, 5, True)
    assert change.event is not None and change.event.qty == 5
    assert SOLD_OUT_PRODUCT in await in_stock_ids(index, title)
    assert SOLD_OUT_PRODUCT in await in_stock_ids(index, title, sizes=("38",))
    assert SOLD_OUT_PRODUCT not in await in_stock_ids(index, title, sizes=("39",))  # still sold out in 39
    product = await index.get_product(SOLD_OUT_PRODUCT)
    assert product is not None and next(v.stock for v in product.variants if v.sku == SOLD_OUT_SKU) == 5

    assert (await set_stock(index, SOLD_OUT_SKU, 3, store=store)).back_in_stock is False
    assert (await set_stock(index, SOLD_OUT_SKU, 0, store=store)).back_in_stock is False
    assert SOLD_OUT_PRODUCT not in await in_stock_ids(index, title)
    assert (await set_stock(index, SOLD_OUT_SKU, 2, store=store)).event is not None
    assert [(e.sku, e.qty) for e in await back_in_stock_events(store)] == [(SOLD_OUT_SKU, 5), (SOLD_OUT_SKU, 2)]
    assert len(await back_in_stock_events(store, pending_only=True)) == 2

    with pytest.raises(UnknownSkuError, match="NOPE"):
        await set_stock(index, "NOPE", 1, store=store)
    with pytest.raises(ValueError, match="whole number"):
        await set_stock(index, SOLD_OUT_SKU, -1, store=store)


async def test_untracked_stock_is_never_back_in_stock(kb: tuple[SQLiteIndex, Store]) -> None:
    index, store = kb
    product = await index.get_product("RUN-001")
    assert product is not None
    from dataclasses import replace

    untracked = replace(product, variants=tuple(replace(v, stock=None) for v in product.variants))
    await index.upsert_products([untracked])
    change = await set_stock(index, "RUN-001-36-BLU", 4, store=store)
    assert (change.old, change.back_in_stock) == (None, False)


async def test_the_same_path_works_on_the_weaviate_index(tmp_path: Path) -> None:
    server = FakeServer()
    async with fake_index(server) as index, Store(tmp_path / "shopkeeper.db") as store:
        await index.upsert_products(CATALOG, source="test-catalog")
        assert "shoe-road" not in await in_stock_ids(index, "running shoe", sizes=("41",))
        [first, second] = await set_stocks(index, [("shoe-road-41", 2), ("shoe-road-42", 0)], store=store)
        assert (first.back_in_stock, first.event is not None, second.back_in_stock) == (True, True, False)
        assert "shoe-road" in await in_stock_ids(index, "running shoe", sizes=("41",))
        assert "shoe-road" not in await in_stock_ids(index, "running shoe", sizes=("42",))
        assert [e.sku for e in await back_in_stock_events(store)] == ["shoe-road-41"]


# --------------------------------------------------------------------------- the CLI


def run_cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHOPKEEPER_", "WEAVIATE_"))}
    env.update({"SHOPKEEPER_DATA_DIR": str(data_dir), "SHOPKEEPER_LOG_LEVEL": "WARNING", "PYTHONPATH": str(REPO)})
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args], cwd=data_dir.parent, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def test_cli_inventory_set(data_dir: Path) -> None:
    done = run_cli(data_dir, "inventory", "set", SOLD_OUT_SKU, "5")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{SOLD_OUT_SKU} ({SOLD_OUT_PRODUCT}): 0 -> 5 (back in stock)"
    done = run_cli(data_dir, "inventory", "set", SOLD_OUT_SKU, "5")
    assert done.stdout.strip() == f"{SOLD_OUT_SKU} ({SOLD_OUT_PRODUCT}): 5 -> 5"
    assert events_in(data_dir) == [(SOLD_OUT_SKU, SOLD_OUT_PRODUCT, 5)]

    unknown = run_cli(data_dir, "inventory", "set", "NOPE-9", "1")
    assert (unknown.returncode, unknown.stderr.strip()) == (1, "shopkeeper: unknown SKU: NOPE-9")
    negative = run_cli(data_dir, "inventory", "set", SOLD_OUT_SKU, "-1")
    assert negative.returncode == 2 and "QTY" in negative.stderr


def test_cli_ingest_reports_rejected_rows_as_file_line_reason(data_dir: Path) -> None:
    catalog = CATALOGS / "generic_products.csv"
    done = run_cli(data_dir, "ingest", str(catalog))
    assert done.returncode == 1  # rows were rejected
    lines = done.stderr.strip().splitlines()
    assert f"{catalog}:7: product mug-02: non-numeric price 'abc'" in lines
    assert all(line.startswith(f"{catalog}:") for line in lines)  # not a tty: no progress bar
    assert done.stdout.strip() == f"{catalog}: 2 products, 0 passages (2 added, 0 updated, 0 unchanged, 0 removed), 5 rows rejected"
    again = run_cli(data_dir, "ingest", str(catalog))
    assert "(0 added, 0 updated, 2 unchanged, 0 removed)" in again.stdout


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_draws_on_a_terminal_only() -> None:
    terminal = FakeTerminal()
    bar = ProgressBar("catalog.csv", stream=terminal)
    for done in range(0, 1001):
        bar(done, 1000)
    frames = terminal.getvalue().split("\r")[1:]
    assert len(frames) == 101  # once per percent, not once per item
    assert frames[0].startswith("catalog.csv [..............................]   0% 0/1000")
    assert frames[-1] == "catalog.csv [##############################] 100% 1000/1000\n"
    quiet = io.StringIO()
    ProgressBar("catalog.csv", stream=quiet)(5, 10)
    assert quiet.getvalue() == ""


# --------------------------------------------------------------------------- catalog ingestion


def post_catalog(client: TestClient, body: bytes, query: str = "") -> tuple[int, dict[str, object]]:
    response = client.post(f"/api/catalog{query}", content=body, headers=signed(body))
    return response.status_code, response.json()


def test_http_catalog_upload_of_a_fixture_file(admin: TestClient) -> None:
    body = (CATALOGS / "shopify_products.csv").read_bytes()
    status, answer = post_catalog(admin, body, "?format=shopify_csv&source=shopify-feed")
    assert status == 200, answer
    assert answer == {
        "source": "shopify-feed", "products": 9, "passages": 0, "added": 9, "updated": 0, "unchanged": 0, "removed": 0,
        "rejected": 0, "errors": [],
    }
    status, answer = post_catalog(admin, body, "?source=shopify-feed")  # format detected
    assert (answer["added"], answer["unchanged"]) == (0, 9)


def test_http_catalog_reingest_is_incremental(admin: TestClient) -> None:
    status, answer = post_catalog(admin, mini_catalog(), "?format=generic_csv&source=mini")
    assert status == 200
    assert (answer["products"], answer["added"]) == (2, 2)
    assert answer["errors"] == ["mini:3: product mini-2: non-numeric price 'abc'", "mini:3: product mini-2: no valid variant, not imported"]
    _, answer = post_catalog(admin, mini_catalog(), "?format=generic_csv&source=mini")
    assert (answer["added"], answer["updated"], answer["unchanged"], answer["removed"]) == (0, 0, 2, 0)
    _, answer = post_catalog(admin, mini_catalog(fixed=True), "?format=generic_csv&source=mini")
    assert (answer["added"], answer["updated"], answer["unchanged"], answer["rejected"]) == (1, 0, 2, 0)  # only the fixed row


def test_http_catalog_errors(admin: TestClient) -> None:
    assert admin.post("/api/catalog?format=generic_csv", content=mini_catalog()).status_code == 401
    status, answer = post_catalog(admin, mini_catalog(), "?format=excel")
    assert (status, answer["error"]) == (422, "format: must be one of shopify_csv, vendure_csv, generic_csv, dummyjson, generic_json")
    status, answer = post_catalog(admin, mini_catalog(), "?format=pages")
    assert status == 422
    status, answer = post_catalog(admin, mini_catalog(), "?source=has%20spaces")
    assert status == 422 and "source" in str(answer["error"])
    status, answer = post_catalog(admin, b"   ")
    assert (status, answer["error"]) == (422, "body: empty catalog file")
    status, answer = post_catalog(admin, b"name;colour\nx;y\n", "?source=odd")
    assert status == 422
    assert str(answer["error"]).startswith("odd: unrecognised catalog header")  # named by its source, not a temp path


async def test_ingest_path_in_chunks_reports_progress_and_removes_missing(tmp_path: Path) -> None:
    count = PROGRESS_MIN_CHUNK * 2 + 6
    rows = [f"bulk-{i},Item {i},Thing number {i}.,Bulk,Finch,{i + 1}.00,EUR,3,BULK-{i},,\n" for i in range(count)]
    catalog = tmp_path / "bulk.csv"
    catalog.write_text(MINI_HEADER + "".join(rows), encoding="utf-8")
    seen: list[tuple[int, int]] = []
    async with SQLiteIndex(tmp_path / "kb.db", None) as index:
        report = await ingest_path(index, catalog, currency="EUR", progress=lambda done, total: seen.append((done, total)))
        assert (report.products, report.stats.added, report.errors) == (count, count, ())
        assert seen[0] == (0, count) and seen[-1] == (count, count)
        assert len(seen) == 4  # start + three chunks
        assert [done for done, _ in seen] == sorted(done for done, _ in seen)

        catalog.write_text(MINI_HEADER + "".join(rows[5:]), encoding="utf-8")
        report = await ingest_path(index, catalog, currency="EUR")
        assert (report.stats.added, report.stats.updated, report.stats.unchanged, report.stats.removed) == (0, 0, count - 5, 5)
        assert await index.product_count() == count - 5
