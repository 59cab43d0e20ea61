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
LLM_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
# why a model-backed step was answered offline instead (the label values of shopkeeper_llm_fallbacks)
LLM_FALLBACK_REASONS = ("timeout", "rate_limited", "server_error", "overloaded", "connection", "client_error", "no_answer", "malformed")


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
        self.llm_tokens = Counter(
            "shopkeeper_llm_tokens", "LLM tokens by kind (input, output, cache_read, cache_creation)", ["purpose", "kind"],
            registry=self.registry,
        )
        self.llm_cache = Counter(
            "shopkeeper_llm_cache", "LLM calls whose prompt prefix was read from the cache (hit) or not (miss)",
            ["purpose", "result"], registry=self.registry,
        )
        self.llm_call_seconds = Histogram(
            "shopkeeper_llm_call_seconds", "Time of one LLM API call (network, the model, SDK retries)", ["purpose"],
            buckets=LLM_LATENCY_BUCKETS, registry=self.registry,
        )
        self.llm_fallbacks = Counter(
            "shopkeeper_llm_fallbacks", "Model-backed steps answered offline instead, by reason", ["purpose", "reason"],
            registry=self.registry,
        )
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

    def record_llm_call(
        self, purpose: str, *, input_tokens: int, output_tokens: int, cache_read: int, cache_creation: int, seconds: float
    ) -> None:
        """One LLM API call: its tokens, whether the cached prefix was read, how long it took.

        ``purpose`` says what the call was for (``reply``, ``constraints``).
        """
        for kind, count in (("input", input_tokens), ("output", output_tokens), ("cache_read", cache_read),
                            ("cache_creation", cache_creation)):
            self.llm_tokens.labels(purpose, kind).inc(count)
        self.llm_cache.labels(purpose, "hit" if cache_read else "miss").inc()
        self.llm_call_seconds.labels(purpose).observe(seconds)

    def record_llm_fallback(self, purpose: str, reason: str) -> None:
        """A model-backed step answered offline; ``reason`` is one of :data:`LLM_FALLBACK_REASONS`."""
        self.llm_fallbacks.labels(purpose, reason).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
