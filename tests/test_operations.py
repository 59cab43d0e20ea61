"""Operations endpoints and HTTP hardening: readiness, metrics, headers, limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from fastapi.testclient import TestClient

from bot.app import create_app
from bot.security import TokenBucket
from bot.settings import Settings
from bot.store import Order, OrderLine, Store
from jobs.followups import attribute_conversions


def test_readyz_reports_each_check(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["ready"] is True
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["index"] == "ok"
    assert body["checks"]["channels"] == []


def test_readyz_is_503_with_an_empty_catalog(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path / "empty", demo=False, _env_file=None)  # type: ignore[call-arg]
    with TestClient(create_app(settings, start_scheduler=False)) as empty:
        response = empty.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["index"] == "empty"


def test_metrics_count_turns_and_escalations(client: TestClient) -> None:
    client.post("/api/chat", json={"user_id": "m1", "text": "wool socks"})
    client.post("/api/chat", json={"user_id": "m2", "text": "I want to talk to a person"})
    text = client.get("/metrics").text
    assert 'shopkeeper_turns_total{channel="web",intent="product_search"} 1.0' in text
    assert 'shopkeeper_escalations_total{reason="asked_for_human"} 1.0' in text
    assert 'shopkeeper_conversations_by_state{state="pending_human"} 1.0' in text
    assert "shopkeeper_turn_seconds_bucket" in text


async def test_web_metrics_show_conversions_the_worker_attributed(settings: Settings) -> None:
    """The web process (no scheduler) reports what the worker process wrote: /metrics reads the database."""
    now = datetime.now(UTC)
    line = OrderLine("RUN-012-42-WHT", "Carbon Edge Marathon Racer", 1, Decimal("165"))
    with TestClient(create_app(settings, start_scheduler=False)) as web:
        before = web.get("/metrics").text
        assert 'shopkeeper_followup_conversions{kind="back_in_stock"} 0.0' in before
        async with Store(settings.database_path) as worker:  # the worker's own connection and metrics
            async with worker.transaction() as db:
                await db.execute(
                    "INSERT INTO followups (kind, purpose, customer_id, channel, chat_id, sku, timezone, requested_at, due_at, "
                    "status, sent_at, created_at) VALUES ('back_in_stock', 'back_in_stock', 'cus_004', 'telegram', '4004', "
                    "'RUN-012-42-WHT', 'Europe/Madrid', ?, ?, 'sent', ?, ?)",
                    ((now - timedelta(days=3)).isoformat(),) * 4,
                )
            order = Order("N-1", "cus_004", "processing", "EUR", Decimal("165"), None, now - timedelta(days=1), (line,))
            await worker.upsert_orders([order])
            assert await attribute_conversions(worker, window=timedelta(days=7), now=now) == 1
        after = web.get("/metrics").text
    assert 'shopkeeper_followup_conversions{kind="back_in_stock"} 1.0' in after
    assert 'shopkeeper_followups_delivered{kind="back_in_stock"} 1.0' in after
    assert 'shopkeeper_followups_by_status{status="sent"} 1.0' in after and 'status="pending"} 0.0' in after
    assert 'shopkeeper_followup_conversions{kind="reminder"} 0.0' in after


def test_security_headers_on_pages_and_api(client: TestClient) -> None:
    for path in ("/", "/healthz", "/api/chat/x/messages"):
        headers = client.get(path).headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in headers["content-security-policy"]


def test_oversized_body_is_refused_before_it_is_read(client: TestClient) -> None:
    response = client.post("/api/chat", content=b"x" * 1_100_000, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "larger than" in response.json()["error"]


def test_public_api_is_rate_limited_per_client(settings: Settings) -> None:
    limited = settings.model_copy(update={"rate_limit_per_second": 0.001, "rate_limit_burst": 3})
    with TestClient(create_app(limited, start_scheduler=False)) as app:
        codes = [app.get("/api/chat/u/messages").status_code for _ in range(5)]
        refused = app.get("/api/chat/u/messages")
    assert codes[:3] == [200, 200, 200]
    assert codes[3:] == [429, 429]
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"].startswith("too many requests")


def test_token_bucket_refills_with_time() -> None:
    now = [100.0]
    bucket = TokenBucket(rate=2.0, burst=2, clock=lambda: now[0])
    assert [bucket.allow("a")[0] for _ in range(3)] == [True, True, False]
    assert bucket.allow("b")[0] is True  # other clients are not affected
    now[0] += 0.5
    assert bucket.allow("a")[0] is True
