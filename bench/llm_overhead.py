"""What our code adds around a Claude call, and how much of the prompt the cache serves.

Runs scripted 10-turn conversations through the real dialog engine on a copy of the
demo store, with the Claude responder talking to the local fake Messages API
(``tests/fakes/anthropic_api.py``, real ``anthropic`` SDK over ``httpx2.MockTransport``).
The fake model searches the catalog on product questions (one tool round) and then
answers with ``send_reply``; the fake also accounts prompt caching from the
``cache_control`` breakpoints the way the service does. As in production, the
responder has every allow-listed tool (follow-ups included) and records per-call
metrics, and the engine reads constraints through Claude's ``extract_constraints``
tool on product, policy and order turns (the fake answers with the offline
extractor's reading; ``--no-claude-constraints`` leaves extraction offline).

Reported, per turn, with the fake model's own time subtracted:

* turn overhead: the whole engine turn (understanding, retrieval, prompt building,
  SDK serialisation and parsing, tools, cards, guardrail, the store transaction);
* responder overhead: the Claude responder alone (the same minus the engine's steps);
* guardrail: one ``check()`` of the final reply;
* the offline responder's turn time on the same script, for comparison;
* cache-hit rate: prompt tokens read from the cache / all prompt tokens.

    .venv/bin/python bench/llm_overhead.py [--conversations 30] [--model-latency-ms 0] [--data-dir DIR] [--no-claude-constraints]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.claude import ClaudeResponder
from bot.claude_constraints import EXTRACT_CONSTRAINTS, ClaudeConstraintExtractor
from bot.constraints import extract_constraints
from bot.guardrails import check
from bot.messages import InboundMessage
from bot.responders import OfflineResponder, TurnContext
from bot.runtime import open_runtime
from bot.settings import Settings
from bot.tools import FollowUpDesk, ToolBox
from tests.fakes.anthropic_api import FakeMessagesAPI, Step, latest_shopper_text, reply, tool_call

SCRIPT = [
    "hi",
    "I need running shoes under 100",
    "any in blue?",
    "how long does shipping take?",
    "can I return them if they don't fit?",
    "do you have merino socks?",
    "a gift for my dad under 50",
    "is the coffee grinder in stock?",
    "thanks, what payment methods do you accept?",
    "bye",
]
PRODUCT_WORDS = re.compile(r"shoes|socks|gift|grinder|blue")


def scripted_model(body: dict[str, Any]) -> Step:
    """Read constraints like the offline extractor; search on product questions, then reply naming the first product."""
    messages = body["messages"]
    if body["tools"][0]["name"] == EXTRACT_CONSTRAINTS:
        content = str(messages[-1]["content"])
        said = json.loads(content.split("<shopper_message>", 1)[1].rsplit("</shopper_message>", 1)[0])
        return tool_call(EXTRACT_CONSTRAINTS, extract_constraints(said, language="en").to_dict())
    searched = isinstance(messages[-1]["content"], list) and any(b.get("type") == "tool_result" for b in messages[-1]["content"])
    shopper = latest_shopper_text(body)
    if PRODUCT_WORDS.search(shopper) and not searched:
        return tool_call("search_catalog", {"query": shopper})
    texts = [
        str(block.get("text") or block.get("content") or "")
        for message in messages[-3:]
        if isinstance(message["content"], list)
        for block in message["content"]
    ]
    ids = re.findall(r'"id":"([A-Z]{3}-\d{3})"', "\n".join(texts))
    return reply("Here is what I found for you in our catalog.", product_ids=ids[:1]) if ids else reply("Happy to help!")


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


async def measure(data_dir: Path, conversations: int, model_latency: float, claude_constraints: bool = True) -> dict[str, Any]:
    fake = FakeMessagesAPI(default=scripted_model, latency=model_latency)
    turn_ms: list[float] = []
    responder_ms: list[float] = []
    guardrail_ms: list[float] = []
    offline_ms: list[float] = []
    per_turn_hits: list[list[float]] = [[] for _ in SCRIPT]
    settings = Settings(data_dir=data_dir, _env_file=None)  # type: ignore[call-arg]
    async with open_runtime(settings) as runtime:
        client = fake.client()
        followups = FollowUpDesk(runtime.engine.consent, runtime.engine.reminders)
        claude = ClaudeResponder(
            client, model="claude-sonnet-5-5", max_tokens=512, tools=ToolBox(runtime.index, followups=followups),
            store=runtime.store, prometheus=runtime.metrics,
        )
        extraction_model_seconds = [0.0]  # the fake's time inside extraction calls (not the responder's)
        if claude_constraints:
            extractor = ClaudeConstraintExtractor(client, model="claude-sonnet-5-5", prometheus=runtime.metrics)
            real_extract = extractor.extract

            async def extract(text: str, **options: Any) -> Any:
                before = fake.server_seconds
                try:
                    return await real_extract(text, **options)
                finally:
                    extraction_model_seconds[0] += fake.server_seconds - before

            extractor.extract = extract  # type: ignore[method-assign]
            runtime.engine.constraint_extractor = extractor
        seen: list[TurnContext] = []
        real_respond = claude.respond

        async def respond(ctx: TurnContext) -> Any:
            seen.append(ctx)
            return await real_respond(ctx)

        claude.respond = respond  # type: ignore[method-assign]
        for run in range(conversations + 1):  # the first conversation warms up (embedder, catalogs)
            for turn, text in enumerate(SCRIPT):
                runtime.engine.responder = claude
                before_model, before_turns = fake.server_seconds, len(claude.metrics.turns)
                before_extraction = extraction_model_seconds[0]
                inbound = InboundMessage("web", f"c{run}-{turn}", f"bench-{run}", f"bench-{run}", text, datetime.now(UTC))
                started = time.perf_counter()
                replies = await runtime.engine.handle(inbound)
                elapsed = time.perf_counter() - started
                model_time = fake.server_seconds - before_model
                records = list(claude.metrics.turns)[before_turns:]
                if run == 0:
                    continue
                turn_ms.append((elapsed - model_time) * 1000)
                responder_model_time = model_time - (extraction_model_seconds[0] - before_extraction)
                responder_ms.append((sum(r.latency_seconds for r in records) - responder_model_time) * 1000)
                prompt = sum(r.input_tokens + r.cache_read_input_tokens + r.cache_creation_input_tokens for r in records)
                per_turn_hits[turn].append(sum(r.cache_read_input_tokens for r in records) / prompt if prompt else 0.0)
                if seen and replies:
                    checked = time.perf_counter()
                    for r in replies:
                        check(r, seen[-1])
                    guardrail_ms.append((time.perf_counter() - checked) * 1000)
        registry = runtime.metrics.registry

        def counted(name: str, **labels: str) -> float:
            return registry.get_sample_value(name, labels) or 0.0

        extraction = {kind: counted("shopkeeper_llm_tokens_total", purpose="constraints", kind=kind)
                      for kind in ("input", "cache_read", "cache_creation")}
        extraction_calls = counted("shopkeeper_llm_call_seconds_count", purpose="constraints")
        extraction_fallbacks = sum(
            sample.value for family in registry.collect() if family.name == "shopkeeper_llm_fallbacks"
            for sample in family.samples if sample.name.endswith("_total") and sample.labels.get("purpose") == "constraints"
        )
        runtime.engine.responder = OfflineResponder()
        runtime.engine.constraint_extractor = None
        for run in range(conversations):
            for turn, text in enumerate(SCRIPT):
                inbound = InboundMessage("web", f"o{run}-{turn}", f"offline-{run}", f"offline-{run}", text, datetime.now(UTC))
                started = time.perf_counter()
                await runtime.engine.handle(inbound)
                offline_ms.append((time.perf_counter() - started) * 1000)
        await client.close()
    metrics = claude.metrics
    return {
        "conversations": conversations,
        "turns": len(turn_ms),
        "model_latency_ms": model_latency * 1000,
        "model_calls_per_turn": round(sum(t.calls for t in metrics.turns) / metrics.total_turns, 2),
        "regenerated_turns": metrics.total_turns - (conversations + 1) * len(SCRIPT),
        "fallbacks": metrics.fallbacks,
        "turn_overhead_ms": {"p50": percentile(turn_ms, 50), "p99": percentile(turn_ms, 99)},
        "responder_overhead_ms": {"p50": percentile(responder_ms, 50), "p99": percentile(responder_ms, 99)},
        "guardrail_check_ms": {"p50": percentile(guardrail_ms, 50), "p99": percentile(guardrail_ms, 99)},
        "offline_turn_ms": {"p50": percentile(offline_ms, 50), "p99": percentile(offline_ms, 99)},
        "cache_hit_rate": metrics.cache_hit_rate,
        "cache_hit_rate_by_turn": [round(statistics.fmean(h), 3) if h else 0.0 for h in per_turn_hits],
        "constraint_calls_per_turn": round(extraction_calls / metrics.total_turns, 2),
        "constraint_cache_hit_rate": round(extraction["cache_read"] / (sum(extraction.values()) or 1), 3),
        "constraint_fallbacks": extraction_fallbacks,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=30)
    parser.add_argument("--model-latency-ms", type=float, default=0.0, help="simulated model time per call (subtracted)")
    parser.add_argument("--data-dir", type=Path, help="an indexed demo data dir to copy (skips the first indexing)")
    parser.add_argument("--no-claude-constraints", action="store_true", help="read constraints with the offline extractor only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "var"
        if args.data_dir:
            shutil.copytree(args.data_dir, work)
        result = asyncio.run(measure(work, args.conversations, args.model_latency_ms / 1000, not args.no_claude_constraints))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
