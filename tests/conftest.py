"""Shared fixtures: no internet, a demo data dir built once, apps on real SQLite files."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import bot
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


# the tree whose code builds the seed: the imported `bot` package's (cwd-first imports), which is not this file's
# tree when tests of one checkout run with another as the working directory; hashing this file's tree then
# stored one schema's seed under another's key
PROJECT = Path(bot.__file__).resolve().parents[1]
SEED_FORMAT = b"seed-2"  # bump to leave every cached seed behind
SEED_INPUTS = ("kb/demo", "kb", "kb/ingest", "bot/demo.py", "bot/migrations.py", "bot/store.py", "bot/runtime.py")


def _seed_key() -> str:
    """A hash of everything that shapes the seeded demo data dir (data, parsers, index, schema)."""
    digest = hashlib.sha256(SEED_FORMAT)
    for name in SEED_INPUTS:
        path = PROJECT / name
        files = sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(PROJECT)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def demo_seed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with the demo store indexed (embedding is the slow part).

    Built once per session, and reused across sessions while none of its inputs
    changed (the cache lives in the system temp dir, keyed by their hash).
    """
    import asyncio

    from bot.runtime import open_runtime

    cached = Path(tempfile.gettempdir()) / "shopkeeper-test-seed" / _seed_key()
    if (cached / "ready").exists():
        return cached
    seed = tmp_path_factory.mktemp("demo-seed")

    async def build() -> None:
        async with open_runtime(Settings(data_dir=seed, _env_file=None)):  # type: ignore[call-arg]
            pass

    asyncio.run(build())
    staging = cached.with_name(cached.name + f".{os.getpid()}")
    shutil.copytree(seed, staging, dirs_exist_ok=True)
    (staging / "ready").touch()
    try:
        staging.rename(cached)
    except OSError:  # another session won the race; its copy is as good
        shutil.rmtree(staging, ignore_errors=True)
    return cached


@pytest.fixture
def data_dir(tmp_path: Path, demo_seed: Path) -> Path:
    """A fresh copy of the seeded demo data dir for one test."""
    target = tmp_path / "var"
    shutil.copytree(demo_seed, target, ignore=shutil.ignore_patterns("ready"))
    return target


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, start_scheduler=False)) as test_client:
        yield test_client
