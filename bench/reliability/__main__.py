"""Run the reliability suite: load, a back-in-stock burst, SIGKILL restarts, faults. See docs/reliability.md.

    /tmp/venv/bin/python -m bench.reliability [--phases load,claude,burst,crash,faults] [--out result.json]

Everything runs on loopback against fakes of the platforms and of the Anthropic
API; nothing touches the internet. The default sizes are the issue's (500 shoppers
for 60 s, 5,000 nudges, 10 restarts); ``--quick`` shrinks them for a smoke run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.reliability.harness import PROJECT

PHASES = ("load", "claude", "burst", "crash", "faults")


async def build_seed(target: Path) -> Path:
    """A data dir with the demo store indexed (the slow part: embedding), built once per run."""
    from bot.runtime import open_runtime
    from bot.settings import Settings

    async with open_runtime(Settings(data_dir=target, _env_file=None)):  # type: ignore[call-arg]
        pass
    return target


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    seed = args.seed or await build_seed(workdir / "seed")
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    results: dict[str, Any] = {}
    for number, phase in enumerate(phases, start=1):
        began = time.monotonic()
        where = workdir / phase
        where.mkdir()
        print(f"[{time.strftime('%H:%M:%S')}] {phase} …", file=sys.stderr, flush=True)
        if phase in ("load", "claude"):
            from bench.reliability.load import run_load
        if phase == "load":
            results[phase] = await run_load(seed, where, shoppers=args.shoppers, seconds=args.seconds, think=args.think,
                                            claude_latency=None, run_id=number)
        elif phase == "claude":
            results[phase] = await run_load(seed, where, shoppers=args.shoppers, seconds=args.seconds, think=args.think,
                                            claude_latency=(1.0, 3.0), run_id=number)
        elif phase == "burst":
            from bench.reliability.burst import run_burst

            results[phase] = await run_burst(seed, where, nudges=args.nudges)
        elif phase == "crash":
            from bench.reliability.crash import run_crash

            results[phase] = await run_crash(seed, where, kills=args.kills, shoppers=args.crash_shoppers, reminders=args.reminders)
        elif phase == "faults":
            from bench.reliability.faults import run_faults

            results[phase] = await run_faults(seed, where)
        else:
            raise SystemExit(f"unknown phase {phase!r}; choose from {', '.join(PHASES)}")
        results[phase]["phase_seconds"] = round(time.monotonic() - began, 1)
    return results


def summary(result: dict[str, Any]) -> str:
    lines = [f"reliability suite, {result['date']}, commit {result['commit']}, {result['total_seconds']} s"]
    for name in ("load", "claude"):
        if (r := result["phases"].get(name)) is not None:
            a = r["audit"]
            lines.append(
                f"{name:7} {r['shoppers']} shoppers {r['seconds']} s: "
                f"ack p50/p99 {r['webhook_ack_ms']['p50']}/{r['webhook_ack_ms']['p99']} ms, "
                f"turn p50/p99 {r['turn_ms']['p50']}/{r['turn_ms']['p99']} ms, {r['turns_per_s']} turns/s, "
                f"errors {sum(r['errors'].values())}, locked {r['database_locked_in_log']}, "
                f"RSS {r['rss_mb']['after_warmup']}→{r['rss_mb']['end']} MB; accepted {r['messages_accepted']}, "
                f"unfinished {a['unfinished']}, twice {a['processed_twice']}, duplicates {a['duplicates']}, unanswered {a['unanswered']}, "
                f"replies not queued once {a['replies_not_queued_once']}"
            )
    if (r := result["phases"].get("burst")) is not None:
        lines.append(
            f"burst   {r['nudges']} nudges in {r['delivery_seconds']} s: delivered {r['delivered']}, duplicates {r['duplicates']}, "
            f"missing {r['missing']}, pace violations {r['pace_violations']}"
        )
    if (r := result["phases"].get("crash")) is not None:
        a = r["audit"]
        lines.append(
            f"crash   {r['kills']} SIGKILLs: accepted {r['messages_accepted']}, unfinished {a['unfinished']}, "
            f"twice {a['processed_twice']}, duplicates {a['duplicates']}, replies not queued once {a['replies_not_queued_once']}, "
            f"maybe_sent {a['outbox'].get('maybe_sent', 0)}; "
            f"follow-ups sent twice {r['followups']['sent_twice']}, "
            f"lost {r['followups']['lost']}"
        )
    if (r := result["phases"].get("faults")) is not None:
        for name, fault in r.items():
            if isinstance(fault, dict):
                lines.append(f"fault   {name}: {json.dumps(fault.get('summary', fault), ensure_ascii=False)}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phases", default=",".join(PHASES))
    parser.add_argument("--shoppers", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--think", type=float, nargs=2, default=(5.0, 15.0), metavar=("MIN", "MAX"))
    parser.add_argument("--nudges", type=int, default=5000)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--crash-shoppers", type=int, default=120)
    parser.add_argument("--reminders", type=int, default=300)
    parser.add_argument("--seed", type=Path, help="an already indexed demo data dir (skips building one)")
    parser.add_argument("--out", type=Path, default=Path("bench/reliability/result.json"))
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.shoppers, args.seconds, args.nudges, args.kills, args.crash_shoppers, args.reminders = 40, 15.0, 300, 2, 20, 30
        args.think = (2.0, 5.0)
    started = time.monotonic()
    git = ["git", "rev-parse", "--short", "HEAD"]
    commit = subprocess.run(git, cwd=PROJECT, capture_output=True, text=True, check=False).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="shopkeeper-reliability-") as tmp:
        phases = asyncio.run(run(args, Path(tmp)))
    result = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores, Python {platform.python_version()}",
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "total_seconds": round(time.monotonic() - started, 1),
        "phases": phases,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(summary(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
