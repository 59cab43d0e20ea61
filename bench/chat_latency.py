"""Turn latency, throughput and memory of `/api/chat` with the offline responder.

Starts `shopkeeper serve` on loopback with a fresh copy of the demo store, warms it
up, then sends a fixed number of shopper messages from concurrent clients and
reports p50/p99 latency, turns per second and the server's resident memory.

    .venv/bin/python bench/chat_latency.py [--turns 3000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.server import running_server

MESSAGES = [
    "do you have running shoes under 100?",
    "wool socks for hiking",
    "how long does shipping take?",
    "can I return an item?",
    "vegan snacks without nuts",
    "a gift for my mother under 40",
    "¿tienen mochilas impermeables?",
    "je cherche une veste chaude",
    "ich suche Wanderschuhe in Größe 42",
    "vocês têm café em grão?",
    "thanks!",
]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def run(base: str, turns: int, concurrency: int) -> tuple[list[float], float, int]:
    latencies: list[float] = []
    errors = 0
    counter = iter(range(turns))

    async def client(worker: int) -> None:
        nonlocal errors
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            for n in counter:
                text = MESSAGES[n % len(MESSAGES)]
                started = time.perf_counter()
                response = await http.post("/api/chat", json={"user_id": f"bench-{worker}-{n % 50}", "text": text})
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(concurrency)))
    return latencies, time.perf_counter() - started, errors


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running_server(
        Path(tmp) / "var",
        ready_timeout=300,
        # one client address sends all the load here; the per-client limit would refuse it
        extra_env={"SHOPKEEPER_RATE_LIMIT_PER_SECOND": "100000", "SHOPKEEPER_RATE_LIMIT_BURST": "100000"},
    ) as server:
        asyncio.run(run(server.base_url, args.warmup, args.concurrency))
        latencies, elapsed, errors = asyncio.run(run(server.base_url, args.turns, args.concurrency))
        result = {
            "turns": len(latencies),
            "concurrency": args.concurrency,
            "errors": errors,
            "p50_ms": round(statistics.median(latencies), 1),
            "p99_ms": round(percentile(latencies, 0.99), 1),
            "turns_per_s": round(len(latencies) / elapsed, 1),
            "server_rss_mb": round(rss_mb(server.pid), 1),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
