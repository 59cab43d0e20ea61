"""Every public endpoint of the OpenAPI schema, fuzzed with schemathesis against a real server on loopback.

Whatever the body, path, query or headers: never a 5xx, never a traceback in
the response. The server runs with every platform channel enabled (against
loopback fakes) so the webhook routes are the real ones. Webhook bodies are also
fuzzed per adapter with hypothesis (tests/test_<platform>.py); this covers the
routes around them. Examples are few and derandomized: this runs in CI.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from bot.app import create_app
from bot.settings import Settings
from tests.channel_cases import all_cases
from tests.support.fake_server import serve_in_thread
from tests.support.server import Server, running_server

SCHEMA = schemathesis.openapi.from_dict(create_app(Settings(_env_file=None), start_scheduler=False).openapi())  # type: ignore[call-arg]


@pytest.fixture(scope="module")
def fuzz_server(demo_seed: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("fuzz") / "var"
    shutil.copytree(demo_seed, data_dir, ignore=shutil.ignore_patterns("ready"))
    env = {
        "SHOPKEEPER_PUBLIC_URL": "https://shop.example",
        "SHOPKEEPER_RATE_LIMIT_PER_SECOND": "100000",  # the fuzzer is one client sending fast
        "SHOPKEEPER_RATE_LIMIT_BURST": "100000",
        "SHOPKEEPER_INVENTORY_SECRET": "fuzz-inventory-secret",
        "SHOPKEEPER_META_VERIFY_TOKEN": "fuzz-verify-token",
    }
    with ExitStack() as stack:
        for case in all_cases():
            url = stack.enter_context(serve_in_thread(case.fake().app))
            env |= {f"SHOPKEEPER_{k.upper()}": str(v) for k, v in case.settings(url).items()}
        server = stack.enter_context(running_server(data_dir, extra_env=env))
        # the first turn loads the embedder: do it before the fuzzer starts counting
        assert httpx.post(server.base_url + "/api/chat", json={"user_id": "warm-up", "text": "wool socks"}, timeout=300).status_code == 200
        yield server


def test_the_schema_lists_the_public_endpoints() -> None:
    paths = set(SCHEMA.raw_schema["paths"])
    assert {"/api/chat", "/api/chat/{user_id}/messages", "/api/export/{token}", "/webhooks/{name}", "/api/inventory"} <= paths


@SCHEMA.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None)
def test_no_input_gets_a_server_error_or_a_traceback(case: schemathesis.Case, fuzz_server: Server) -> None:
    response = case.call(base_url=fuzz_server.base_url, timeout=120)
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:500]}"
    assert "Traceback" not in response.text and 'File "/' not in response.text
