"""Search stores for a person's identifiers: every table and text column of a SQLite file, and its raw bytes.

The tables come from ``sqlite_master`` at the time of the search, so a table
added by a later migration is searched without anyone listing it here.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


def table_traces(database: Path, needles: list[str]) -> list[str]:
    """``table.column: needle`` for every text value (or JSON/blob text) that contains a needle, case-insensitively."""
    lowered = [(needle, needle.lower()) for needle in needles]
    found: list[str] = []
    with sqlite3.connect(database) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            columns = [row[1] for row in db.execute(f"PRAGMA table_info({table!r})")]
            for row in db.execute(f"SELECT * FROM {table!r}"):  # noqa: S608 - names from sqlite_master
                for column, value in zip(columns, row, strict=True):
                    if isinstance(value, bytes):
                        value = value.decode("utf-8", "replace")
                    if not isinstance(value, str):
                        continue
                    text = value.lower()
                    found.extend(f"{table}.{column}: {needle}" for needle, low in lowered if low in text)
    return sorted(set(found))


def file_traces(database: Path, needles: list[str]) -> list[str]:
    """``file: needle`` for every needle whose UTF-8 bytes are still in the database file or its WAL (deleted rows too)."""
    found = []
    for path in (database, database.with_name(database.name + "-wal")):
        if not path.exists():
            continue
        data = path.read_bytes()
        found.extend(f"{path.name}: {needle}" for needle in needles if needle.encode() in data)
    return found
