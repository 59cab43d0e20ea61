"""Every long-lived resource of a shopkeeper process, opened once and closed once.

:func:`open_runtime` is used by the web app's lifespan and by the terminal
commands alike, so both run the same engine on the same data: the conversation
store, the knowledge-base index with its embedder, the store profile and the
dialog engine.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.demo import load_demo
from bot.engine import DialogEngine
from bot.events import EventBus
from bot.metrics import Metrics
from bot.notifiers import BaseNotifier
from bot.outbox import OutboxSender
from bot.privacy import load_secret
from bot.responders import Responder
from bot.settings import Settings
from bot.shop import ShopProfile
from bot.store import Clock, Store, utc_now
from bot.worker import TurnWorker
from channels.base import BaseChannel
from channels.registry import enabled_channels
from jobs.followups import FollowUpPolicy
from kb.embedder import make_embedder
from kb.index import BaseIndex
from kb.product_lines import ProductLines
from kb.sqlite_index import SQLiteIndex

if TYPE_CHECKING:
    from bot.claude_constraints import ConstraintExtractor

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    store: Store
    index: BaseIndex
    shop: ShopProfile
    engine: DialogEngine
    channels: dict[str, BaseChannel]
    worker: TurnWorker
    sender: OutboxSender
    events: EventBus
    metrics: Metrics


def build_index(settings: Settings) -> BaseIndex:
    """The configured knowledge-base index (not opened): Weaviate when a URL is set, else SQLite."""
    if settings.weaviate_url:
        from kb.weaviate_index import WeaviateIndex  # imported here: the client is heavy and only needed at scale

        api_key = settings.weaviate_api_key.get_secret_value() if settings.weaviate_api_key else None
        own_vectors = settings.weaviate_vectorizer == "shopkeeper"
        return WeaviateIndex(
            settings.weaviate_url,
            api_key=api_key,
            tenant=settings.weaviate_tenant,
            alpha=settings.weaviate_alpha,
            vectorizer=settings.weaviate_vectorizer,
            embedder=make_embedder(settings.embedder) if own_vectors else None,
        )
    return SQLiteIndex(settings.index_path, make_embedder(settings.embedder))


@asynccontextmanager
async def open_runtime(
    settings: Settings, *, clock: Clock = utc_now, notifier: BaseNotifier | None = None, runs_turns: bool = True
) -> AsyncIterator[Runtime]:
    """Open the store and index (loading the demo store on first start), build the engine.

    ``notifier`` sends the verification codes (default: :class:`bot.notifiers.LogNotifier`).
    With ``runs_turns=False`` the turn worker declines webhook turns: they wait in the
    inbox for the ``shopkeeper worker`` process (:class:`jobs.inbox_feed.InboxFeed`).
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.database_path, clock=clock)
    index = build_index(settings)
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
            metrics = Metrics()
            channels = enabled_channels(settings)
            async with AsyncExitStack() as stack:
                responder: Responder | None = None  # the offline responder
                extractor: ConstraintExtractor | None = None  # the offline extractor
                if settings.anthropic_api_key is not None:
                    from bot.claude import ClaudeResponder, build_client  # the SDK loads only when Claude is configured

                    client = build_client(settings)
                    stack.push_async_callback(client.close)
                    responder = ClaudeResponder.from_settings(
                        client, settings, index=index, store=store, shop=shop, prometheus=metrics
                    )
                    if settings.anthropic_constraints:
                        from bot.claude_constraints import ClaudeConstraintExtractor

                        extractor = ClaudeConstraintExtractor(
                            client, model=settings.anthropic_model, timeout=settings.anthropic_timeout_seconds,
                            prometheus=metrics,
                        )
                # "iPhone" → Apple (kb.product_lines): learned once from the catalog, off the event loop
                product_lines = await asyncio.to_thread(ProductLines.from_catalog, await index.product_names())
                engine = DialogEngine(
                    store=store, index=index, shop=shop, results=settings.search_results, clock=clock,
                    brands=await index.brands(), product_lines=product_lines, events=events, responder=responder, metrics=metrics,
                    secret=await asyncio.to_thread(load_secret, settings.data_dir), public_url=settings.public_url or "",
                    followup_policy=FollowUpPolicy.from_settings(settings), constraint_extractor=extractor,
                    notifier=notifier,
                )
                for channel in channels.values():
                    await channel.open()
                    stack.push_async_callback(channel.close)
                sender = OutboxSender(store, channels, clock=clock, metrics=metrics, default_locale=shop.default_locale)
                worker = TurnWorker(
                    engine, on_replies=sender.wake, max_concurrent=settings.max_concurrent_turns, runs_turns=runs_turns
                )
                try:
                    yield Runtime(
                        settings=settings, store=store, index=index, shop=shop, engine=engine,
                        channels=channels, worker=worker, sender=sender, events=events, metrics=metrics,
                    )
                finally:
                    await worker.stop()
                    sender.stop()
        finally:
            await index.close()
    finally:
        await store.close()
