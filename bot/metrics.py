"""Prometheus metrics: what an operator watches (turns, latency, escalations, deliveries, LLM usage).

Metrics live in a registry owned by the runtime (not the global default), so two
apps in one process (tests) never share counters. ``/metrics`` renders it in the
Prometheus text format. Counters count what this process did; the gauges are set
from the database on every scrape (:meth:`bot.store.Store.refresh_gauges`), so
what the scheduler process records (follow-ups, conversions) shows in the web
process too.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The counters and histograms of one shopkeeper process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.turns = Counter("shopkeeper_turns", "Shopper turns handled", ["channel", "intent"], registry=self.registry)
        self.turn_seconds = Histogram(
            "shopkeeper_turn_seconds", "Time to handle one turn", ["channel"], buckets=LATENCY_BUCKETS, registry=self.registry
        )
        self.escalations = Counter("shopkeeper_escalations", "Threads handed to staff", ["reason"], registry=self.registry)
        self.outbox = Counter("shopkeeper_outbox", "Outbox delivery outcomes", ["channel", "outcome"], registry=self.registry)
        self.channel_errors = Counter(
            "shopkeeper_channel_errors", "Send errors by channel and code", ["channel", "code"], registry=self.registry
        )
        self.webhooks = Counter("shopkeeper_webhooks", "Webhook deliveries", ["channel", "result"], registry=self.registry)
        self.llm_tokens = Counter("shopkeeper_llm_tokens", "LLM tokens", ["kind"], registry=self.registry)
        self.followups = Counter("shopkeeper_followups", "Follow-ups sent or blocked", ["kind", "outcome"], registry=self.registry)
        # read from the database on every scrape (Store.refresh_gauges): true in every process, whichever one
        # runs the scheduler that sends follow-ups and attributes orders to them
        self.followups_by_status = Gauge(
            "shopkeeper_followups_by_status", "Follow-ups in the database by status", ["status"], registry=self.registry
        )
        self.followups_delivered = Gauge(
            "shopkeeper_followups_delivered", "Follow-ups delivered (status sent), from the database", ["kind"],
            registry=self.registry,
        )
        self.followup_conversions = Gauge(
            "shopkeeper_followup_conversions",
            "Orders attributed to a follow-up (the nudged item bought within the conversion window), from the database",
            ["kind"],
            registry=self.registry,
        )
        self.conversations_open = Gauge(
            "shopkeeper_conversations_by_state", "Open conversations by state", ["state"], registry=self.registry
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
