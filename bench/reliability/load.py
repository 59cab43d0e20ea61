"""Load: simulated shoppers over the web chat and the Telegram, Twilio and Messenger webhooks for a fixed time.

Each shopper sends a message, waits for the reply to reach its platform (or the
chat API's response), thinks for a few seconds and writes again. Figures: webhook
ack latency, turn latency (message sent → first platform call of the reply),
turns per second, errors, SQLite "database is locked" lines in the server log,
the server's RSS over time, and the audit (exactly one answer per accepted message).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from bench.reliability.harness import (
    CHANNELS,
    Drive,
    Platforms,
    ServerProcess,
    audit,
    copy_seed,
    fake_claude,
    make_shoppers,
    percentile,
    sample_rss,
    shopper_loop,
    wait_drained,
)


async def run_load(
    seed: Path, workdir: Path, *, shoppers: int, seconds: float, think: tuple[float, float], claude_latency: tuple[float, float] | None,
    run_id: int,
) -> dict[str, Any]:
    data_dir = copy_seed(seed, workdir / "var")
    with Platforms() as platforms:
        if claude_latency is None:
            return await _drive(data_dir, workdir, platforms, {}, shoppers, seconds, think, run_id)
        with fake_claude(claude_latency) as claude:
            env = {"SHOPKEEPER_ANTHROPIC_API_KEY": "sk-ant-api03-FAKE-bench-key", "SHOPKEEPER_ANTHROPIC_BASE_URL": claude.url}
            result = await _drive(data_dir, workdir, platforms, env, shoppers, seconds, think, run_id)
            result["llm_calls"] = sum(claude.calls.values())
            return result


async def _drive(
    data_dir: Path, workdir: Path, platforms: Platforms, env: dict[str, str], count: int, seconds: float, think: tuple[float, float],
    run_id: int,
) -> dict[str, Any]:
    server = ServerProcess(data_dir, platforms.env | env, workdir / "server.log")
    await server.start()
    samples: list[tuple[float, float]] = []
    stop = asyncio.Event()
    started = time.monotonic()
    drive = Drive(server.base_url, platforms, until=started + seconds, think=think)
    sampler = asyncio.create_task(sample_rss(server, samples, started, stop))
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    try:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60, limits=limits) as http:
            await asyncio.gather(*(shopper_loop(s, drive, http) for s in make_shoppers(count, run_id)))
        elapsed = time.monotonic() - started
        drained = await asyncio.to_thread(wait_drained, data_dir / "shopkeeper.db", 120)
    finally:
        stop.set()
        await sampler
        await server.stop()
    stats = drive.stats
    all_turns = [v for ms in stats.turn_ms.values() for v in ms]
    all_acks = [v for ms in stats.ack_ms.values() for v in ms]
    warm = [mb for at, mb in samples if at >= min(20.0, seconds / 3)]
    return {
        "shoppers": count,
        "seconds": round(elapsed, 1),
        "messages_sent": sum(stats.sent.values()),
        "messages_accepted": sum(stats.accepted.values()),
        "turns_answered": stats.turns_done,
        "turns_per_s": round(stats.turns_done / elapsed, 1),
        "webhook_ack_ms": {"p50": percentile(all_acks, 0.5), "p99": percentile(all_acks, 0.99)},
        "turn_ms": {"p50": percentile(all_turns, 0.5), "p99": percentile(all_turns, 0.99)},
        "by_channel": {
            channel: {
                "sent": stats.sent[channel],
                "accepted": stats.accepted[channel],
                "ack_p50_ms": percentile(stats.ack_ms[channel], 0.5),
                "ack_p99_ms": percentile(stats.ack_ms[channel], 0.99),
                "turn_p50_ms": percentile(stats.turn_ms[channel], 0.5),
                "turn_p99_ms": percentile(stats.turn_ms[channel], 0.99),
                "no_reply_seen": stats.no_reply[channel],
            }
            for channel in CHANNELS
        },
        "errors": dict(stats.errors),
        "database_locked_in_log": server.log_count("database is locked"),
        "server_errors_in_log": server.log_count("Traceback"),
        "rss_mb": {
            "after_warmup": warm[0] if warm else None,
            "end": samples[-1][1] if samples else None,
            "max": max((mb for _at, mb in samples), default=None),
            "growth_after_warmup": round(warm[-1] - warm[0], 1) if len(warm) > 1 else None,
            "samples": samples[:: max(1, len(samples) // 30)],
        },
        "drained": drained,
        "audit": audit(data_dir / "shopkeeper.db", platforms),
    }
