"""Every long-lived resource of a shopkeeper process, opened once and closed once.

:func:`open_runtime` is used by the web app's lifespan and by the terminal
commands alike, so both run the same engine on the same data: the conversation
store, the knowledge-base index with its embedder, the store profile and the
dialog engine.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from bot.demo import load_demo
from bot.engine import DialogEngine
from bot.events import EventBus
from bot.outbox import OutboxSender
from bot.settings import Settings
from bot.shop import ShopProfile
from bot.store import Clock, Store, utc_now
from bot.worker import TurnWorker
from channels.base import BaseChannel
from channels.registry import enabled_channels
from kb.embedder import make_embedder
from kb.sqlite_index import SQLiteIndex

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    store: Store
    index: SQLiteIndex
    shop: ShopProfile
    engine: DialogEngine
    channels: dict[str, BaseChannel]
    worker: TurnWorker
    sender: OutboxSender
    events: EventBus


@asynccontextmanager
async def open_runtime(settings: Settings, *, clock: Clock = utc_now) -> AsyncIterator[Runtime]:
    """Open the store and index (loading the demo store on first start), build the engine."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.database_path, clock=clock)
    index = SQLiteIndex(settings.index_path, make_embedder(settings.embedder))
    await store.open()
    try:
        await index.open()
        try:
            if settings.demo and await index.product_count() == 0:
                await load_demo(store, index, settings.data_dir)
            elif await index.product_count() == 0:
                log.warning("the catalog is empty: ingest one with `shopkeeper ingest PATH` (demo disabled)")
            shop = ShopProfile.load(settings)
            events = EventBus()
            engine = DialogEngine(
                store=store, index=index, shop=shop, results=settings.search_results, clock=clock,
                brands=await index.brands(), events=events,
            )
            channels = enabled_channels(settings)
            async with AsyncExitStack() as stack:
                for channel in channels.values():
                    await channel.open()
                    stack.push_async_callback(channel.close)
                sender = OutboxSender(store, channels, clock=clock)
                worker = TurnWorker(engine, on_replies=sender.wake)
                try:
                    yield Runtime(
                        settings=settings, store=store, index=index, shop=shop, engine=engine,
                        channels=channels, worker=worker, sender=sender, events=events,
                    )
                finally:
                    await worker.stop()
                    sender.stop()
        finally:
            await index.close()
    finally:
        await store.close()
