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


async def weaviate_traces(url: str, needles: list[str], *, api_key: str | None = None) -> list[str]:
    """``collection/tenant: needle`` for every object property on the Weaviate server that contains a needle.

    Every collection and, in multi-tenant ones, every tenant is read in full.
    """
    import weaviate
    from weaviate.classes.init import Auth

    from kb.weaviate_index import connection_params

    p = connection_params(url)
    client = weaviate.use_async_with_custom(
        http_host=p.http_host, http_port=p.http_port, http_secure=p.http_secure,
        grpc_host=p.grpc_host, grpc_port=p.grpc_port, grpc_secure=p.grpc_secure,
        auth_credentials=Auth.api_key(api_key) if api_key else None,
    )
    lowered = [(needle, needle.lower()) for needle in needles]
    found: set[str] = set()
    await client.connect()
    try:
        configs = await client.collections.list_all(simple=False)
        for name, config in configs.items():
            collection = client.collections.use(name)
            if config.multi_tenancy_config.enabled:
                targets = [(f"{name}/{tenant}", collection.with_tenant(tenant)) for tenant in await collection.tenants.get()]
            else:
                targets = [(name, collection)]
            for label, target in targets:
                async for obj in target.iterator():
                    text = str(obj.properties).lower()
                    found.update(f"{label}: {needle}" for needle, low in lowered if low in text)
    finally:
        await client.close()
    return sorted(found)
