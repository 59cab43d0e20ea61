"""The Claude-backed responder: grounded answers with a small tool allow-list.

One turn:

1. the prompt is built from a stable, cached prefix — the tool schemas
   (:mod:`bot.tools`), the system prompt and the store's policy pages
   (:mod:`bot.prompting`) with ``cache_control`` on its last block — then the
   conversation (a rolling extractive summary of older turns plus the latest
   messages, cached up to their end), then this turn's data: the hits the engine
   retrieved, as JSON inside ``<store_data>``, and the shopper's message;
2. the model may call the allow-listed tools for a few rounds and ends with
   ``send_reply`` (text + ids of the products and passages it used);
3. our code builds the product cards (price, stock) from the catalog data the
   model referenced, never from the model's text, and lists the sources; the
   automated-assistant disclosure is added at the start of a conversation and
   whenever the shopper asks;
4. per-turn metrics (tokens, cache reads and writes, latency) go to
   :attr:`ClaudeResponder.metrics`, and per call to the process's Prometheus
   :class:`~bot.metrics.Metrics` (``/metrics``): tokens by kind, cache hit or miss,
   call latency, and every fallback by reason (:func:`fallback_reason`).

The guardrail (:mod:`bot.guardrails`, run by the engine) then checks the text.
When the API fails — timeout, 429, 5xx, 529 overloaded, connection error — or the
turn exceeds its deadline, that turn is answered by the offline responder instead:
the shopper never sees a stack trace or silence. The SDK retries once by itself
(:data:`CLAUDE_MAX_RETRIES`); the per-turn deadline bounds a long ``retry-after``.
The API key lives only inside the SDK client; nothing here logs or prints it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import anthropic
from anthropic.types import (
    AssistantMessageParam,
    ContentBlock,
    MessageParam,
    TextBlockParam,
    ToolParam,
    ToolResultBlockParam,
    Usage,
    UserMessageParam,
)

from bot.consent import ConsentDialog
from bot.guardrails import EVIDENCE, FEEDBACK, fold
from bot.messages import OutboundMessage, ProductCard, Source
from bot.metrics import Metrics
from bot.profile import ProfileDialog
from bot.prompting import language_name, passage_data, product_data, store_policies_block, strip_invisible, system_prompt, tagged
from bot.reminders import ReminderDialog
from bot.responders import (
    NOT_CARRIED,
    NotCarried,
    OfflineResponder,
    Responder,
    TurnContext,
    disclosure,
    product_card,
    with_history_reason,
)
from bot.settings import Settings
from bot.shop import ShopProfile
from bot.store import Store, StoredMessage
from bot.tools import MAX_RESULTS, SEND_REPLY, FollowUpDesk, ToolBox, ToolInputError, TurnTools, passages_for
from bot.understanding import Intent
from jobs.followups import FollowUpPolicy
from kb.index import BaseIndex

log = logging.getLogger(__name__)

CLAUDE_MAX_RETRIES = 1  # the SDK's own retry (429/5xx/529/connection); a second failure answers offline
MAX_TOOL_ROUNDS = 4  # model calls per turn; the last one must reply
MAX_REPLY_CHARS = 2000
HISTORY_FETCH = 60  # stored messages read per turn
HISTORY_KEEP = 8  # the latest messages always go verbatim
HISTORY_STEP = 6  # older messages join the summary in blocks, so the prompt prefix stays cacheable
HISTORY_MESSAGE_CHARS = 800
SUMMARY_LINE_CHARS = 160
SUMMARY_CHARS = 2400
METRICS_KEPT = 1000
EPHEMERAL: dict[str, str] = {"type": "ephemeral"}

# "are you a bot?" in the five languages (folded: lowercase, no accents)
ASKED_IF_AUTOMATED = re.compile(
    r"\b(?:are you (?:a |an )?(?:bot|robot|human|real|person|ai|machine|automated)|is this (?:a )?(?:bot|human|real person|ai)"
    r"|am i (?:talking|chatting|speaking) (?:to|with) (?:a )?(?:bot|human|person|real|machine)"
    r"|eres (?:un |una )?(?:bot|robot|humano|persona|ia|maquina)|hablo con (?:un |una )?(?:bot|robot|humano|persona|maquina)"
    r"|es un bot|(?:etes-vous|es-tu|tu es|vous etes) (?:un |une )?(?:robot|bot|humain|personne|ia)|c'est un (?:robot|bot)"
    r"|(?:bist du|sind sie) (?:ein )?(?:bot|roboter|mensch|ki)|rede ich mit (?:einem )?(?:bot|menschen|roboter)"
    r"|(?:voce e|tu e|e) (?:um )?(?:robo|bot|humano|ia)|falo com (?:um )?(?:robo|bot|humano))\b"
)


class _NoAnswer(Exception):
    """The model ended the turn without a usable reply (refusal, empty text, rounds exhausted)."""


@dataclass(frozen=True, slots=True)
class TurnMetrics:
    """What one Claude turn cost and how it ended."""

    conversation_id: str
    outcome: str  # "reply", "handoff" or "fallback:<why>"
    calls: int
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int
    cache_creation_input_tokens: int
    latency_seconds: float  # the whole turn
    api_seconds: float  # inside the SDK (network, the model, retries)
    tools: tuple[str, ...] = ()


@dataclass(slots=True)
class ClaudeMetrics:
    """Per-turn records (the latest :data:`METRICS_KEPT`) and running totals, for /metrics."""

    turns: deque[TurnMetrics] = field(default_factory=lambda: deque(maxlen=METRICS_KEPT))
    total_turns: int = 0
    fallbacks: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0

    def record(self, turn: TurnMetrics) -> None:
        self.turns.append(turn)
        self.total_turns += 1
        self.fallbacks += turn.outcome.startswith("fallback")
        self.input_tokens += turn.input_tokens
        self.output_tokens += turn.output_tokens
        self.cache_read_input_tokens += turn.cache_read_input_tokens
        self.cache_creation_input_tokens += turn.cache_creation_input_tokens

    @property
    def cache_hit_rate(self) -> float:
        """Share of prompt tokens read from the cache."""
        prompt = self.input_tokens + self.cache_read_input_tokens + self.cache_creation_input_tokens
        return self.cache_read_input_tokens / prompt if prompt else 0.0


@dataclass(slots=True)
class _Usage:
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read: int = 0
    cache_creation: int = 0
    api_seconds: float = 0.0

    def add(self, usage: Usage, seconds: float) -> None:
        self.calls += 1
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        self.cache_read += usage.cache_read_input_tokens or 0
        self.cache_creation += usage.cache_creation_input_tokens or 0
        self.api_seconds += seconds


def build_client(settings: Settings) -> anthropic.AsyncAnthropic:
    """The process's one Anthropic client (close it at shutdown)."""
    if settings.anthropic_api_key is None:
        raise ValueError("ANTHROPIC_API_KEY is not set")
    return anthropic.AsyncAnthropic(
        api_key=settings.anthropic_api_key.get_secret_value(),
        base_url=settings.anthropic_base_url,
        timeout=settings.anthropic_timeout_seconds,
        max_retries=CLAUDE_MAX_RETRIES,
    )


class ClaudeResponder:
    """Answers with Claude, grounded in the turn's data; falls back to templates when the API fails."""

    name = "claude"

    def __init__(
        self,
        client: anthropic.AsyncAnthropic,
        *,
        model: str,
        max_tokens: int,
        tools: ToolBox,
        store: Store | None = None,
        fallback: Responder | None = None,
        turn_timeout: float = 40.0,
        prometheus: Metrics | None = None,
    ) -> None:
        self.client = client
        self.model = model
        self.max_tokens = max_tokens
        self.tools = tools
        self.store = store
        self.fallback: Responder = fallback or OfflineResponder()
        self.turn_timeout = turn_timeout
        self.metrics = ClaudeMetrics()
        self.prometheus = prometheus
        self._tool_params = [cast(ToolParam, tool) for tool in tools.definitions()]

    @classmethod
    def from_settings(
        cls,
        client: anthropic.AsyncAnthropic,
        settings: Settings,
        *,
        index: BaseIndex,
        store: Store,
        shop: ShopProfile,
        prometheus: Metrics | None = None,
    ) -> ClaudeResponder:
        followups = FollowUpDesk(
            ConsentDialog(store, index, shop), ReminderDialog(store, index, shop, FollowUpPolicy.from_settings(settings))
        )
        return cls(
            client,
            model=settings.anthropic_model,
            max_tokens=settings.anthropic_max_tokens,
            tools=ToolBox(index, results=settings.search_results, followups=followups, profile=ProfileDialog(store)),
            store=store,
            turn_timeout=2 * settings.anthropic_timeout_seconds,
            prometheus=prometheus,
        )

    def __repr__(self) -> str:
        return f"ClaudeResponder(model={self.model!r}, max_tokens={self.max_tokens})"

    async def respond(self, ctx: TurnContext) -> list[OutboundMessage]:
        started = time.perf_counter()
        usage = _Usage()
        state = self.tools.start_turn(ctx)
        ctx.extras[EVIDENCE] = state.evidence
        outcome = "error"
        try:
            try:
                async with asyncio.timeout(self.turn_timeout):
                    replies = await self._converse(ctx, state, usage)
                outcome = "handoff" if state.handoff is not None else "reply"
            except (anthropic.APIError, TimeoutError, _NoAnswer) as exc:
                outcome = "fallback:" + _failure(exc)
                log.warning("Claude could not answer this turn (%s); answering offline", _failure(exc))
                if self.prometheus is not None:
                    self.prometheus.record_llm_fallback("reply", fallback_reason(exc))
                replies = await self.fallback.respond(ctx)
            return replies
        finally:
            self.metrics.record(
                TurnMetrics(
                    conversation_id=ctx.conversation.id,
                    outcome=outcome,
                    calls=usage.calls,
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                    cache_read_input_tokens=usage.cache_read,
                    cache_creation_input_tokens=usage.cache_creation,
                    latency_seconds=time.perf_counter() - started,
                    api_seconds=usage.api_seconds,
                    tools=tuple(state.calls),
                )
            )

    # -- the conversation with the model ------------------------------------------

    async def _converse(self, ctx: TurnContext, state: TurnTools, usage: _Usage) -> list[OutboundMessage]:
        policies = await self.tools.store_policies(ctx.locale)
        state.evidence.add_passages(policies)
        system: list[TextBlockParam] = [{"type": "text", "text": system_prompt(ctx.shop, ctx.locale)}]
        if policies:
            system.append({"type": "text", "text": store_policies_block(policies)})
        system[-1]["cache_control"] = {"type": "ephemeral"}
        messages = await self._messages(ctx)
        for round_ in range(MAX_TOOL_ROUNDS):
            last = round_ == MAX_TOOL_ROUNDS - 1
            sent = time.perf_counter()
            response = await self.client.messages.create(
                model=self.model,
                max_tokens=self.max_tokens,
                system=system,
                tools=self._tool_params,
                tool_choice={"type": "tool", "name": SEND_REPLY} if last else {"type": "auto"},
                messages=messages,
            )
            seconds = time.perf_counter() - sent
            usage.add(response.usage, seconds)
            if self.prometheus is not None:
                self.prometheus.record_llm_call("reply", seconds=seconds, **_call_tokens(response.usage))
            calls = [b for b in response.content if b.type == "tool_use"]
            final = next((b for b in calls if b.name == SEND_REPLY), None)
            if final is not None:
                return self._reply(ctx, state, final.input)
            if response.stop_reason == "tool_use" and calls:
                messages.append(AssistantMessageParam(role="assistant", content=_content_params(response.content)))
                results: list[ToolResultBlockParam] = [await self._run_tool(state, b.id, b.name, b.input) for b in calls]
                if state.handoff is not None:
                    return []
                messages.append(UserMessageParam(role="user", content=results))
                continue
            text = "".join(b.text for b in response.content if b.type == "text")
            if response.stop_reason == "refusal" or not text.strip():
                raise _NoAnswer(str(response.stop_reason))
            return self._reply(ctx, state, {"text": text, "product_ids": _mentioned_products(text, state)})
        raise _NoAnswer("tool rounds exhausted")

    async def _run_tool(self, state: TurnTools, call_id: str, name: str, arguments: object) -> ToolResultBlockParam:
        try:
            result = await self.tools.run(state, name, arguments)
        except ToolInputError as exc:
            return {"type": "tool_result", "tool_use_id": call_id, "content": f"error: {exc}", "is_error": True}
        return {"type": "tool_result", "tool_use_id": call_id, "content": tagged("tool_data", result)}

    def _reply(self, ctx: TurnContext, state: TurnTools, payload: object) -> list[OutboundMessage]:
        """The shopper-facing reply: the model's text, cards and sources built from the data it referenced."""
        fields = payload if isinstance(payload, Mapping) else {}
        text = strip_invisible(str(fields.get("text") or "")).strip()[:MAX_REPLY_CHARS]
        if not text:
            raise _NoAnswer("empty reply")
        products = []
        for reference in _strings(fields.get("product_ids")):
            product = state.product(reference)
            if product is not None and product not in products:
                products.append(product)
        cards: tuple[ProductCard, ...] = tuple(
            with_history_reason(product_card(p, ctx.constraints, ctx.shop.currency, ctx.filters, ctx.implied_brand), ctx, p.id)
            for p in products[:MAX_RESULTS]
        )
        passages = passages_for(state, _strings(fields.get("source_ids")))
        if not passages and ctx.understanding.intent is Intent.POLICY:
            passages = [h.passage for h in ctx.hits[:1] if h.passage is not None]
        sources = [Source(c.title, c.url) for c in cards]
        sources += [Source(p.title, p.url) for p in passages]
        sources += [
            Source(o.order_number, o.tracking_url)
            for o in state.evidence.orders.values()
            if o.tracking_url and o.order_number.casefold() in text.casefold()
        ]
        unique = tuple({(s.title, s.url): s for s in sources}.values())
        return [OutboundMessage(text=self._disclosed(ctx, text), products=cards, sources=unique)]

    @staticmethod
    def _disclosed(ctx: TurnContext, text: str) -> str:
        """The text, opened by the automated-assistant disclosure on a first turn or when asked."""
        asked = ASKED_IF_AUTOMATED.search(fold(ctx.inbound.text))
        notice = disclosure(ctx.shop)
        if (ctx.first_turn or asked) and fold(notice) not in fold(text):
            return f"{notice} {text}"
        return text

    # -- the prompt ---------------------------------------------------------------

    async def _messages(self, ctx: TurnContext) -> list[MessageParam]:
        summary, history = await self._history(ctx)
        turns: list[tuple[str, list[TextBlockParam]]] = []
        if summary:
            turns.append(("user", [{"type": "text", "text": tagged("conversation_summary", summary)}]))
        turns += [(role, [{"type": "text", "text": text}]) for role, text in history]
        if turns:
            turns[-1][1][-1]["cache_control"] = {"type": "ephemeral"}
            if turns[0][0] != "user":
                turns.insert(0, ("user", [{"type": "text", "text": "(The conversation so far.)"}]))
        shopper = strip_invisible(ctx.inbound.button_payload or ctx.inbound.text).strip() or "(no text)"
        data = tagged("turn_context", self._turn_context(ctx)) + "\n" + tagged("store_data", _store_data(ctx))
        turns.append(("user", [{"type": "text", "text": data}, {"type": "text", "text": shopper}]))
        merged: list[tuple[str, list[TextBlockParam]]] = []
        for role, blocks in turns:
            if merged and merged[-1][0] == role:
                merged[-1][1].extend(blocks)
            else:
                merged.append((role, list(blocks)))
        return [
            UserMessageParam(role="user", content=blocks) if role == "user" else AssistantMessageParam(role="assistant", content=blocks)
            for role, blocks in merged
        ]

    async def _history(self, ctx: TurnContext) -> tuple[list[str], list[tuple[str, str]]]:
        """A summary of older messages and the latest ones verbatim, as (role, text)."""
        if self.store is None or ctx.first_turn:
            return [], []
        stored = await self.store.recent_messages(ctx.conversation.id, limit=HISTORY_FETCH)
        boundary = max(0, (len(stored) - HISTORY_KEEP) // HISTORY_STEP * HISTORY_STEP)
        older, recent = stored[:boundary], stored[boundary:]
        summary = [_summary_line(m) for m in older]
        while summary and sum(len(line) for line in summary) > SUMMARY_CHARS:
            summary.pop(0)
        history = [(_role(m), _history_text(m)) for m in recent if m.text.strip() or (m.payload or {}).get("products")]
        return summary, history

    @staticmethod
    def _turn_context(ctx: TurnContext) -> dict[str, Any]:
        context: dict[str, Any] = {
            "today": ctx.now.astimezone(ctx.shop.tz).date().isoformat(),
            "reply_language": language_name(ctx.locale),
            "store_currency": ctx.shop.currency,
            "first_turn": ctx.first_turn,
            "customer_verified": ctx.customer_verified,
            "intent": ctx.understanding.intent.value,
            "constraints": _present(ctx.constraints.to_dict()),
        }
        if ctx.implied_brand is not None:  # not declared: the product line the shopper named is this maker's
            context["brand_implied_by_product_line"] = {"brand": ctx.implied_brand.brand, "line": ctx.implied_brand.line}
        feedback = ctx.extras.get(FEEDBACK)
        if isinstance(feedback, list) and feedback:
            context["previous_draft_rejected_for"] = [str(f) for f in feedback]
            context["instruction"] = "Write the reply again using only facts from the data, without the rejected content."
        return context


def _store_data(ctx: TurnContext) -> dict[str, Any]:
    data: dict[str, Any] = {
        "products": [product_data(h.product, ctx.filters) for h in ctx.hits if h.product is not None],
        "passages": [passage_data(h.passage) for h in ctx.hits if h.passage is not None],
    }
    near = [product_data(h.product) for h in ctx.near_misses if h.product is not None]
    if near:
        data["closest_products_not_matching_every_constraint"] = near
    missing = ctx.extras.get(NOT_CARRIED)
    if isinstance(missing, NotCarried):
        data["store_does_not_carry"] = {"asked_for": missing.asked_for, "store_categories": list(missing.categories)}
    return data


def _present(value: Any) -> Any:
    """``value`` without empty fields (None, "", [], {}, False)."""
    if isinstance(value, Mapping):
        kept = {k: _present(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (None, "", [], {}, False)}
    return value


def _role(message: StoredMessage) -> str:
    return "user" if message.direction == "in" else "assistant"


def _history_text(message: StoredMessage) -> str:
    text = strip_invisible(message.text).strip()
    if message.author == "staff":
        text = "[a member of the store's team wrote] " + text
    shown = [f"{p.get('title')} ({p.get('sku')})" for p in (message.payload or {}).get("products", []) if isinstance(p, dict)]
    if shown:
        text += "\n[products shown: " + "; ".join(shown) + "]"
    if len(text) > HISTORY_MESSAGE_CHARS:
        text = text[: HISTORY_MESSAGE_CHARS - 1] + "…"
    return text


def _summary_line(message: StoredMessage) -> str:
    who = {"in": "shopper"}.get(message.direction, "team" if message.author == "staff" else "assistant")
    text = re.sub(r"\s+", " ", strip_invisible(message.text)).strip()[:SUMMARY_LINE_CHARS]
    titles = [str(p.get("title")) for p in (message.payload or {}).get("products", []) if isinstance(p, dict)]
    if titles:
        text += " [products shown: " + "; ".join(titles) + "]"
    return f"{who}: {text}"


def _content_params(blocks: Sequence[ContentBlock]) -> list[Any]:
    params: list[Any] = []
    for block in blocks:
        if block.type == "text":
            params.append({"type": "text", "text": block.text})
        elif block.type == "tool_use":
            params.append({"type": "tool_use", "id": block.id, "name": block.name, "input": block.input})
    return params


def _strings(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, str)][:MAX_RESULTS * 2]


def _mentioned_products(text: str, state: TurnTools) -> list[str]:
    folded = text.casefold()
    return [p.id for p in state.evidence.products.values() if p.title.casefold() in folded or p.id.casefold() in folded]


def _call_tokens(usage: Usage) -> dict[str, int]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read": usage.cache_read_input_tokens or 0,
        "cache_creation": usage.cache_creation_input_tokens or 0,
    }


def fallback_reason(exc: BaseException) -> str:
    """Why a call to the API gave no usable answer, as a metric label (see :data:`bot.metrics.LLM_FALLBACK_REASONS`)."""
    if isinstance(exc, (anthropic.APITimeoutError, TimeoutError)):
        return "timeout"
    if isinstance(exc, anthropic.APIStatusError):
        body = exc.body if isinstance(exc.body, Mapping) else {}
        inner = body.get("error")
        kind = inner.get("type") if isinstance(inner, Mapping) else None
        if exc.status_code == 529 or kind == "overloaded_error":
            return "overloaded"
        if exc.status_code == 429:
            return "rate_limited"
        return "server_error" if exc.status_code >= 500 else "client_error"
    if isinstance(exc, anthropic.APIConnectionError):
        return "connection"
    if isinstance(exc, _NoAnswer):
        return "no_answer"
    return "malformed"


def _failure(exc: BaseException) -> str:
    """A short, secret-free name for why the API call failed."""
    if isinstance(exc, anthropic.APITimeoutError):
        return "timeout"
    if isinstance(exc, anthropic.APIStatusError):
        return f"http_{exc.status_code}"
    if isinstance(exc, anthropic.APIConnectionError):
        return "connection"
    if isinstance(exc, TimeoutError):
        return "deadline"
    if isinstance(exc, _NoAnswer):
        return "no_answer"
    return type(exc).__name__


__all__ = ["CLAUDE_MAX_RETRIES", "ClaudeMetrics", "ClaudeResponder", "TurnMetrics", "build_client", "fallback_reason"]
