"""Shared fixtures: no internet, a demo data dir built once, apps on real SQLite files."""

from __future__ import annotations

import ipaddress
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bot.app import create_app
from bot.settings import Settings

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


class NetworkAccessError(RuntimeError):
    """A test tried to reach something other than this machine."""


_real_connect = socket.socket.connect


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise NetworkAccessError(f"tests must not touch the network (tried {host})")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that opens a connection outside the loopback interface."""
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)


@pytest.fixture(scope="session")
def demo_seed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with the demo store indexed once per session (embedding is the slow part)."""
    import asyncio

    from bot.runtime import open_runtime

    seed = tmp_path_factory.mktemp("demo-seed")

    async def build() -> None:
        async with open_runtime(Settings(data_dir=seed, _env_file=None)):  # type: ignore[call-arg]
            pass

    asyncio.run(build())
    return seed


@pytest.fixture
def data_dir(tmp_path: Path, demo_seed: Path) -> Path:
    """A fresh copy of the seeded demo data dir for one test."""
    target = tmp_path / "var"
    shutil.copytree(demo_seed, target)
    return target


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, start_scheduler=False)) as test_client:
        yield test_client
