"""The ``shopkeeper`` command line.

    shopkeeper serve [--host H] [--port P] [--no-demo] [--no-scheduler]
    shopkeeper worker [--no-demo]
    shopkeeper chat [--json] [--user ID] [--locale L] [--no-demo]
    shopkeeper ingest PATH [--format F]
    shopkeeper migrate
    shopkeeper locales extract|update|compile|check
    shopkeeper eval constraints DATASET [--predictions OUT.jsonl]

Settings come from the environment and ``.env`` (see ``.env.example``); flags
override them for one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from pathlib import Path

from bot.settings import Settings, SettingsError, load_settings


def _configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # third-party request logs would print URLs with tokens in them
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shopkeeper", description="A shop assistant for messaging apps.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the web app (chat page, API, webhooks) with the scheduler")
    serve.add_argument("--host", help="interface to listen on (default from settings: 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default from settings: 8000)")
    serve.add_argument("--no-demo", action="store_true", help="do not load the demo store into an empty data dir")
    serve.add_argument("--no-scheduler", action="store_true", help="leave scheduled work to `shopkeeper worker`")

    worker = sub.add_parser("worker", help="run the scheduler and background work without the web server")
    worker.add_argument("--no-demo", action="store_true")

    chat = sub.add_parser("chat", help="chat with the bot in the terminal")
    chat.add_argument("--json", action="store_true", help="one message per stdin line, one JSON object per reply")
    chat.add_argument("--user", default="terminal-user", help="shopper id for this chat (default: terminal-user)")
    chat.add_argument("--locale", help="locale hint, e.g. fr or pt-BR")
    chat.add_argument("--no-demo", action="store_true")

    ingest = sub.add_parser("ingest", help="import a catalog file or a folder of pages into the knowledge base")
    ingest.add_argument("path", type=Path)
    ingest.add_argument(
        "--format",
        choices=["shopify_csv", "vendure_csv", "generic_csv", "dummyjson", "generic_json", "pages"],
        help="detected from the file when omitted",
    )

    sub.add_parser("migrate", help="create or upgrade the database and index, then exit")

    locales = sub.add_parser("locales", help="manage the gettext catalogs (run from a source checkout)")
    locales.add_argument("action", choices=["extract", "update", "compile", "check"])

    evaluate = sub.add_parser("eval", help="measure quality on a labelled dataset")
    eval_sub = evaluate.add_subparsers(dest="target", required=True)
    constraints = eval_sub.add_parser("constraints", help="constraint extraction: per-field precision/recall")
    constraints.add_argument("dataset", type=Path)
    constraints.add_argument("--predictions", type=Path, help="write one {id, predicted} object per message")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides: dict[str, object] = {}
    if getattr(args, "no_demo", False):
        overrides["demo"] = False
    if getattr(args, "host", None):
        overrides["host"] = args.host
    if getattr(args, "port", None):
        overrides["port"] = args.port
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        print(f"shopkeeper: {exc}", file=sys.stderr)
        return 2
    _configure_logging(settings)

    if args.command == "serve":
        return _serve(settings, scheduler=not args.no_scheduler)
    if args.command == "worker":
        return asyncio.run(_worker(settings))
    if args.command == "chat":
        return asyncio.run(_chat(settings, args))
    if args.command == "ingest":
        if not args.path.exists():
            print(f"shopkeeper: {args.path}: no such file or directory", file=sys.stderr)
            return 2
        return asyncio.run(_ingest(settings, args.path, args.format))
    if args.command == "migrate":
        return asyncio.run(_migrate(settings))
    if args.command == "locales":
        return _locales(args.action)
    if args.command == "eval" and args.target == "constraints":
        return _eval_constraints(args.dataset, args.predictions)
    return 2


def _serve(settings: Settings, *, scheduler: bool) -> int:
    import uvicorn

    from bot.app import create_app

    app = create_app(settings, start_scheduler=scheduler)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level.lower(), access_log=False)
    return 0


async def _worker(settings: Settings) -> int:
    from datetime import timedelta

    from bot.runtime import open_runtime
    from jobs.inbox_recovery import recover_unfinished
    from jobs.scheduler import build_scheduler

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with open_runtime(settings) as runtime:
        await runtime.store.recover_outbox()
        await recover_unfinished(runtime.store, runtime.engine, now=runtime.store.now(), older_than=timedelta(0))
        scheduler = build_scheduler(runtime)
        scheduler.start()
        sending = asyncio.create_task(runtime.sender.run(), name="outbox-sender")
        logging.getLogger(__name__).info("worker running; press Ctrl+C to stop")
        await stop.wait()
        runtime.sender.stop()
        await sending
        scheduler.shutdown(wait=False)
    return 0


async def _chat(settings: Settings, args: argparse.Namespace) -> int:
    from bot.runtime import open_runtime
    from channels.terminal import run_chat

    if args.json:
        logging.getLogger().setLevel(logging.WARNING)  # keep stdout/stderr quiet for scripts
    async with open_runtime(settings) as runtime:
        await run_chat(runtime, user_id=args.user, json_mode=args.json, stdin=sys.stdin, stdout=sys.stdout, locale=args.locale)
    return 0


async def _ingest(settings: Settings, path: Path, fmt: str | None) -> int:
    from kb.embedder import make_embedder
    from kb.ingest import UnknownFormatError, parse
    from kb.sqlite_index import SQLiteIndex

    shop_currency = settings.currency
    try:
        result = await asyncio.to_thread(parse, path, fmt, currency=shop_currency)
    except (UnknownFormatError, ValueError, OSError) as exc:
        print(f"shopkeeper: {exc}", file=sys.stderr)
        return 2
    for error in result.errors:
        print(f"{error.file}:{error.line}: {error.reason}", file=sys.stderr)
    async with SQLiteIndex(settings.index_path, make_embedder(settings.embedder)) as index:
        stats = await index.upsert_products(result.products, source=str(path))
        stats += await index.upsert_passages(result.passages)
    print(
        f"{path}: {len(result.products)} products, {len(result.passages)} passages "
        f"({stats.added} added, {stats.updated} updated, {stats.unchanged} unchanged, {stats.removed} removed), "
        f"{len(result.errors)} rows rejected"
    )
    return 1 if result.errors else 0


async def _migrate(settings: Settings) -> int:
    from bot.store import Store

    async with Store(settings.database_path):
        pass
    print(f"database ready at {settings.database_path}")
    return 0


def _locales(action: str) -> int:
    from bot import catalogs

    if action == "extract":
        template = catalogs.extract()
        print(f"{len(template)} messages extracted to {catalogs.POT_PATH}")
        return 0
    if action == "update":
        catalogs.extract()
        report = catalogs.update()
    elif action == "compile":
        report = catalogs.compile()
    else:
        report = catalogs.check()
    for line in report:
        print(line)
    return 1 if action == "check" and report else 0


def _eval_constraints(dataset: Path, predictions: Path | None) -> int:
    from bot.constraints_eval import evaluate, format_report

    if not dataset.exists():
        print(f"shopkeeper: {dataset}: no such file", file=sys.stderr)
        return 2
    metrics = evaluate(dataset, predictions)
    print(format_report(metrics))
    print(json.dumps(metrics, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
