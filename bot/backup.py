"""Consistent backups of a running shopkeeper: SQLite's online backup API, file by file.

``backup(data_dir, target)`` copies the conversation database and the
knowledge-base index page by page through ``sqlite3.Connection.backup`` (safe
while the server writes: the copy is a consistent snapshot), plus the store
profile. Restoring is copying the files back into an empty data directory
while shopkeeper is stopped (see docs/operations.md).
"""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

DATABASES = ("shopkeeper.db", "kb.db")
PLAIN_FILES = ("store.json",)


@dataclass(frozen=True, slots=True)
class BackupReport:
    target: Path
    files: tuple[str, ...]


def backup(data_dir: Path, target: Path) -> BackupReport:
    """Write a snapshot of ``data_dir`` into the new directory ``target`` (blocking; run in a thread)."""
    if target.exists() and any(target.iterdir()):
        raise FileExistsError(f"{target} exists and is not empty; choose a new directory")
    target.mkdir(parents=True, exist_ok=True)
    copied: list[str] = []
    for name in DATABASES:
        source = data_dir / name
        if not source.exists():
            continue
        with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src, sqlite3.connect(target / name) as dst:
            src.backup(dst, pages=1024)
            result = dst.execute("PRAGMA integrity_check").fetchone()[0]
        if result != "ok":
            raise RuntimeError(f"backup of {name} failed its integrity check: {result}")
        copied.append(name)
    for name in PLAIN_FILES:
        if (data_dir / name).exists():
            shutil.copy2(data_dir / name, target / name)
            copied.append(name)
    return BackupReport(target, tuple(copied))
