"""`shopkeeper chat --json`: one message per stdin line, one JSON object per reply."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path


def run_chat(data_dir: Path, lines: list[str], *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHOPKEEPER_DATA_DIR": str(data_dir)}
    env.pop("ANTHROPIC_API_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "chat", "--json", *extra],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_json_mode_answers_each_line_with_json_objects(data_dir: Path) -> None:
    result = run_chat(data_dir, ["hi", "do you have running shoes under 100?", "", "thanks"])
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 3  # the empty line is skipped
    assert "automated" in records[0]["text"].lower()
    assert records[1]["products"]
    assert all(Decimal(p["price"]) <= 100 for p in records[1]["products"])
    assert {r["conversation_id"] for r in records} == {records[0]["conversation_id"]}


def test_json_mode_reports_an_oversized_line_and_goes_on(data_dir: Path) -> None:
    result = run_chat(data_dir, ["x" * 4001, "wool socks"])
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert "4000" in records[0]["error"]
    assert records[1]["products"]


def test_terminal_conversation_is_remembered_between_runs(data_dir: Path) -> None:
    first = run_chat(data_dir, ["hello"], "--user", "alice")
    second = run_chat(data_dir, ["wool socks"], "--user", "alice")
    ids = {json.loads(line)["conversation_id"] for line in first.stdout.splitlines() + second.stdout.splitlines()}
    assert len(ids) == 1
