"""`shopkeeper backup`: a consistent, restorable snapshot taken while the server writes."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx

from bot.backup import backup
from tests.support.server import running_server


def test_backup_while_the_server_is_writing_restores_to_a_working_store(data_dir: Path, tmp_path: Path) -> None:
    with running_server(data_dir) as server:
        for n in range(5):
            httpx.post(server.base_url + "/api/chat", json={"user_id": f"b{n}", "text": "wool socks"}, timeout=30)
        report = backup(data_dir, tmp_path / "snapshot")
        httpx.post(server.base_url + "/api/chat", json={"user_id": "late", "text": "hello"}, timeout=30)
    assert set(report.files) == {"shopkeeper.db", "kb.db", "store.json"}
    with sqlite3.connect(tmp_path / "snapshot" / "shopkeeper.db") as db:
        assert db.execute("SELECT COUNT(*) FROM conversations").fetchone()[0] == 5
    with running_server(tmp_path / "snapshot") as restored:
        history = httpx.get(restored.base_url + "/api/chat/b0/messages", timeout=30).json()["messages"]
        found = httpx.post(restored.base_url + "/api/chat", json={"user_id": "b9", "text": "wool socks"}, timeout=30).json()
    assert history[0]["text"] == "wool socks"
    assert found["replies"][0]["products"]


def test_backup_refuses_a_non_empty_target(data_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("keep me")
    env = {**os.environ, "SHOPKEEPER_DATA_DIR": str(data_dir)}
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "backup", str(tmp_path / "busy")], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "not empty" in result.stderr
    assert (tmp_path / "busy" / "x").read_text() == "keep me"
