"""The ``shopkeeper`` command line.

    shopkeeper serve [--host H] [--port P] [--no-demo] [--no-scheduler]
    shopkeeper worker [--no-demo]
    shopkeeper chat [--json] [--user ID] [--locale L] [--no-demo]
    shopkeeper ingest PATH [--format F]
    shopkeeper inventory set SKU QTY
    shopkeeper orders import PATH [--format shopify|json|csv]
    shopkeeper migrate
    shopkeeper backup DIR
    shopkeeper customer export|erase ID|PHONE|EMAIL [--output F] [--yes]
    shopkeeper channels setup telegram | channels poll telegram
    shopkeeper staff add EMAIL [--role agent|admin] [--name N] [--locale L]
    shopkeeper locales extract|update|compile|check
    shopkeeper eval constraints DATASET [--predictions OUT.jsonl]
    shopkeeper eval retrieval --catalog CATALOG DATASET [--constraints system|labeled|none] [--mode M] [--run OUT.jsonl]

Settings come from the environment and ``.env`` (see ``.env.example``); flags
override them for one run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TextIO

from bot.settings import Settings, SettingsError, load_settings


def _configure_logging(settings: Settings, *, json_format: bool = True) -> None:
    from bot.logs import configure_logging

    configure_logging(settings.log_level, json_format=json_format and settings.log_format == "json")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shopkeeper", description="A shop assistant for messaging apps.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the web app (chat page, API, webhooks) with the scheduler")
    serve.add_argument("--host", help="interface to listen on (default from settings: 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default from settings: 8000)")
    serve.add_argument("--no-demo", action="store_true", help="do not load the demo store into an empty data dir")
    serve.add_argument(
        "--no-scheduler",
        action="store_true",
        help="only accept: leave webhook turns, scheduled work and sending to `shopkeeper worker` (run both)",
    )

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

    inventory = sub.add_parser("inventory", help="change stock levels in the knowledge base")
    inventory_sub = inventory.add_subparsers(dest="action", required=True)
    stock = inventory_sub.add_parser("set", help="set a SKU's stock (0 → more records a back-in-stock event)")
    stock.add_argument("sku")
    stock.add_argument("qty", type=_quantity, metavar="QTY")

    orders = sub.add_parser("orders", help="prior orders (linked to customers by e-mail or phone)")
    orders_sub = orders.add_subparsers(dest="action", required=True)
    orders_import = orders_sub.add_parser("import", help="import an order export (Shopify order CSV, JSON or CSV)")
    orders_import.add_argument("path", type=Path)
    orders_import.add_argument("--format", choices=("shopify", "json", "csv"), help="detected when omitted")

    sub.add_parser("migrate", help="create or upgrade the database and index, then exit")

    customer = sub.add_parser("customer", help="privacy requests: export or erase one shopper's data")
    customer.add_argument("action", choices=["export", "erase"])
    customer.add_argument("who", help="customer id, phone number, e-mail or channel identity")
    customer.add_argument("--output", type=Path, help="export: write the JSON here instead of standard output")
    customer.add_argument("--yes", action="store_true", help="erase: do not ask for confirmation")

    channels = sub.add_parser("channels", help="connect messaging platforms")
    channels_sub = channels.add_subparsers(dest="channel_action", required=True)
    setup = channels_sub.add_parser("setup", help="register this server's webhook with the platform")
    setup.add_argument("platform", choices=["telegram"])
    poll = channels_sub.add_parser("poll", help="receive by polling instead of a webhook (local use, no public URL)")
    poll.add_argument("platform", choices=["telegram"])
    poll.add_argument("--no-demo", action="store_true")

    backup = sub.add_parser("backup", help="write a consistent snapshot of the data dir (safe while running)")
    backup.add_argument("target", type=Path, help="a new, empty directory")

    staff = sub.add_parser("staff", help="manage accounts of the staff console (/staff)")
    staff_sub = staff.add_subparsers(dest="staff_action", required=True)
    staff_add = staff_sub.add_parser(
        "add", help="create a staff account; prompts for the password (read from stdin when it is not a terminal)"
    )
    staff_add.add_argument("email")
    staff_add.add_argument("--role", choices=["agent", "admin"], default="agent", help="admins also manage canned replies")
    staff_add.add_argument("--name", help="name shown to colleagues")
    staff_add.add_argument("--locale", help="locale for dates and numbers in the console, e.g. de or pt-BR")

    locales = sub.add_parser("locales", help="manage the gettext catalogs (run from a source checkout)")
    locales.add_argument("action", choices=["extract", "update", "compile", "check"])

    evaluate = sub.add_parser("eval", help="measure quality on a labelled dataset")
    eval_sub = evaluate.add_subparsers(dest="target", required=True)
    constraints = eval_sub.add_parser("constraints", help="constraint extraction: per-field precision/recall")
    constraints.add_argument("dataset", type=Path)
    constraints.add_argument("--predictions", type=Path, help="write one {id, predicted} object per message")
    retrieval = eval_sub.add_parser("retrieval", help="product search quality: nDCG@10, Recall@20, MRR")
    retrieval.add_argument("dataset", type=Path)
    retrieval.add_argument("--catalog", type=Path, required=True, help="the catalog file the judgments refer to")
    retrieval.add_argument("--constraints", choices=["system", "labeled", "none"], default="system")
    retrieval.add_argument("--mode", choices=["hybrid", "bm25", "dense"], default="hybrid")
    retrieval.add_argument("--run", type=Path, help="write one {qid, ranking} object per query")
    return parser


def _quantity(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number of 0 or more, not {text!r}")
    return int(text)


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
    # a person at a terminal reads plain lines; servers write JSON for the log pipeline
    _configure_logging(settings, json_format=args.command not in {"chat", "ingest", "orders", "eval", "locales", "migrate"})

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
    if args.command == "inventory" and args.action == "set":
        return asyncio.run(_inventory_set(settings, args.sku, args.qty))
    if args.command == "orders" and args.action == "import":
        if not args.path.is_file():
            print(f"shopkeeper: {args.path}: no such file", file=sys.stderr)
            return 2
        return asyncio.run(_orders_import(settings, args.path, args.format))
    if args.command == "migrate":
        return asyncio.run(_migrate(settings))
    if args.command == "staff":
        return asyncio.run(_staff_add(settings, args))
    if args.command == "customer":
        return asyncio.run(_customer(settings, args))
    if args.command == "channels":
        return asyncio.run(_channels(settings, args.channel_action, args.platform))
    if args.command == "backup":
        return _backup(settings, args.target)
    if args.command == "locales":
        return _locales(args.action)
    if args.command == "eval" and args.target == "retrieval":
        return _eval_retrieval(args)
    if args.command == "eval" and args.target == "constraints":
        return _eval_constraints(args.dataset, args.predictions)
    return 2


def _serve(settings: Settings, *, scheduler: bool) -> int:
    import uvicorn

    from bot.app import create_app

    app = create_app(settings, start_scheduler=scheduler, runs_turns=scheduler)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        log_config=None,  # keep our JSON logging
        timeout_graceful_shutdown=5,  # finish in-flight turns; open console streams do not hold a restart
    )
    return 0


async def _worker(settings: Settings) -> int:
    from datetime import timedelta

    from bot.runtime import open_runtime
    from bot.takeover import DIRECT_CHANNELS
    from jobs.inbox_feed import InboxFeed
    from jobs.inbox_recovery import recover_unfinished
    from jobs.lease import SchedulerLease
    from jobs.scheduler import build_scheduler

    # the database thread writes a turn while the event loop computes others: a short GIL switch interval
    # lets it finish the transaction at once instead of holding SQLite's write lock (and the web's acks) 5 ms a statement
    sys.setswitchinterval(0.0005)
    if settings.worker_nice:
        os.nice(settings.worker_nice)  # background work: acknowledging webhooks in the web process comes first
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with open_runtime(settings) as runtime:
        gc.freeze()  # what was loaded at start lives as long as the process: out of the collector's full passes
        await runtime.store.recover_outbox()
        # a web-chat turn a crash left unfinished; the platforms' turns are the feed's, oldest first
        await recover_unfinished(
            runtime.store, runtime.engine, now=runtime.store.now(), older_than=timedelta(0),
            skip=lambda entry: entry.message.channel not in DIRECT_CHANNELS,
        )
        lease = SchedulerLease(runtime.store, ttl=timedelta(seconds=settings.scheduler_lease_seconds))
        scheduler = build_scheduler(runtime, lease=lease)
        scheduler.start()
        sending = asyncio.create_task(runtime.sender.run(), name="outbox-sender")
        feed = InboxFeed(runtime.store, runtime.worker, lease)
        feeding = asyncio.create_task(feed.run(), name="inbox-feed")
        logging.getLogger(__name__).info("worker running; press Ctrl+C to stop")
        await stop.wait()
        feed.stop()
        await feeding
        runtime.sender.stop()
        await sending
        scheduler.shutdown(wait=False)
    return 0


async def _chat(settings: Settings, args: argparse.Namespace) -> int:
    from bot.notifiers import LogNotifier
    from bot.runtime import open_runtime
    from channels.terminal import run_chat

    if args.json:
        logging.getLogger().setLevel(logging.WARNING)  # keep stdout/stderr quiet for scripts
    # the demo sends no e-mail: the one-time code a shopper asks for is shown here, on stderr
    notifier = LogNotifier(echo=lambda line: print(line, file=sys.stderr))
    async with open_runtime(settings, notifier=notifier) as runtime:
        await run_chat(runtime, user_id=args.user, json_mode=args.json, stdin=sys.stdin, stdout=sys.stdout, locale=args.locale)
    return 0


class ProgressBar:
    """A one-line progress bar on a terminal (redrawn about every 1%); silent when not a tty."""

    WIDTH = 30

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self._shown = -1

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        percent = min(100, done * 100 // total)
        if percent == self._shown:
            return
        self._shown = percent
        filled = self.WIDTH * percent // 100
        bar = "#" * filled + "." * (self.WIDTH - filled)
        self.stream.write(f"\r{self.label} [{bar}] {percent:3d}% {done}/{total}")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


async def _ingest(settings: Settings, path: Path, fmt: str | None) -> int:
    from bot.runtime import build_index
    from kb.index import IndexUnavailableError, WeaviateIndexError
    from kb.inventory import ingest_path

    try:
        async with build_index(settings) as index:
            report = await ingest_path(index, path, fmt, currency=settings.currency, progress=ProgressBar(str(path)))
    except ValueError as exc:  # IngestError (the file is unusable) or an unknown format name
        print(f"shopkeeper: {exc}", file=sys.stderr)
        return 2
    except (IndexUnavailableError, WeaviateIndexError) as exc:
        print(f"shopkeeper: {exc}", file=sys.stderr)
        return 3
    for error in report.errors:
        print(f"{error.file}:{error.line}: {error.reason}", file=sys.stderr)
    stats = report.stats
    print(
        f"{path}: {report.products} products, {report.passages} passages "
        f"({stats.added} added, {stats.updated} updated, {stats.unchanged} unchanged, {stats.removed} removed), "
        f"{len(report.errors)} rows rejected"
    )
    return 1 if report.errors else 0


async def _orders_import(settings: Settings, path: Path, fmt: str | None) -> int:
    from bot.order_import import import_orders, read_orders
    from bot.runtime import build_index
    from bot.shop import ShopProfile
    from bot.store import Store
    from kb.index import IndexUnavailableError, WeaviateIndexError

    shop = ShopProfile.load(settings)
    try:
        parsed = await asyncio.to_thread(read_orders, path, fmt, timezone=shop.timezone)
        async with Store(settings.database_path) as store, build_index(settings) as index:
            report = await import_orders(
                store, index, parsed, source=str(path), default_currency=shop.currency, progress=ProgressBar(str(path))
            )
    except ValueError as exc:  # IngestError (the file is unusable) or an unknown format name
        print(f"shopkeeper: {exc}", file=sys.stderr)
        return 2
    except (IndexUnavailableError, WeaviateIndexError) as exc:
        print(f"shopkeeper: {exc}", file=sys.stderr)
        return 3
    for error in report.errors:
        print(f"{error.file}:{error.line}: {error.reason}", file=sys.stderr)
    print(
        f"{path}: {report.orders} orders imported ({report.customers_created} new customers, "
        f"{report.unlinked} without e-mail or phone, {report.unknown_skus} lines with a SKU not in the catalog), "
        f"{len(report.errors)} rejected"
    )
    return 1 if report.errors else 0


async def _inventory_set(settings: Settings, sku: str, qty: int) -> int:
    from bot.runtime import build_index
    from bot.store import Store
    from kb.index import IndexUnavailableError, WeaviateIndexError
    from kb.inventory import UnknownSkuError, set_stock

    try:
        async with Store(settings.database_path) as store, build_index(settings) as index:
            change = await set_stock(index, sku, qty, store=store)
    except UnknownSkuError as exc:
        print(f"shopkeeper: {exc}", file=sys.stderr)
        return 1
    except (IndexUnavailableError, WeaviateIndexError) as exc:
        print(f"shopkeeper: {exc}", file=sys.stderr)
        return 3
    old = "untracked" if change.old is None else str(change.old)
    note = " (back in stock)" if change.back_in_stock else ""
    print(f"{change.sku} ({change.product_id}): {old} -> {change.new}{note}")
    return 0


async def _migrate(settings: Settings) -> int:
    from bot.store import Store

    async with Store(settings.database_path):
        pass
    print(f"database ready at {settings.database_path}")
    return 0


def _read_password() -> str:
    """The new password: asked twice on a terminal, else the first line of stdin (for scripts)."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    import getpass

    password = getpass.getpass("Password: ")
    if getpass.getpass("Repeat the password: ") != password:
        raise ValueError("the two passwords differ")
    return password


async def _staff_add(settings: Settings, args: argparse.Namespace) -> int:
    from bot.staff import StaffAccounts, StaffExists
    from bot.store import Store

    try:
        password = await asyncio.to_thread(_read_password)
        async with Store(settings.database_path) as store:
            user = await StaffAccounts(store).create_user(args.email, password, role=args.role, name=args.name, locale=args.locale)
    except (StaffExists, ValueError) as exc:
        print(f"shopkeeper: {exc}", file=sys.stderr)
        return 2
    print(f"staff account {user.email} ({user.role}) created; sign in at /staff/login")
    return 0


async def _customer(settings: Settings, args: argparse.Namespace) -> int:
    from bot.privacy import UnknownCustomerError, erase_customer, export_customer, find_customer
    from bot.store import Store

    async with Store(settings.database_path) as store:
        try:
            customer_id = await find_customer(store, args.who)
        except UnknownCustomerError as exc:
            print(f"shopkeeper: {exc}", file=sys.stderr)
            return 2
        if args.action == "export":
            document = json.dumps(await export_customer(store, customer_id), ensure_ascii=False, indent=2, default=str)
            if args.output:
                await asyncio.to_thread(args.output.write_text, document + "\n", encoding="utf-8")
                print(f"exported {customer_id} to {args.output}", file=sys.stderr)
            else:
                print(document)
            return 0
        if not args.yes:
            answer = await asyncio.to_thread(input, f"Erase every record of {customer_id}? This cannot be undone. [y/N] ")
            if answer.strip().lower() not in {"y", "yes"}:
                print("nothing erased", file=sys.stderr)
                return 1
        report = await erase_customer(store, customer_id, actor="cli")
        total = sum(report.rows_deleted.values())
        kept = report.consent_withdrawals_kept
        print(f"erased {customer_id}: {total} rows deleted; {kept} consent withdrawals kept as {report.customer_hash}")
        return 0


async def _channels(settings: Settings, action: str, platform: str) -> int:
    from bot.runtime import open_runtime
    from channels.telegram import TelegramChannel, run_polling, setup_webhook

    if not settings.telegram_bot_token:
        print("shopkeeper: set SHOPKEEPER_TELEGRAM_BOT_TOKEN first", file=sys.stderr)
        return 2
    if action == "setup":
        if not settings.public_url:
            print("shopkeeper: set SHOPKEEPER_PUBLIC_URL (the https address Telegram can reach)", file=sys.stderr)
            return 2
        channel = TelegramChannel.from_settings(settings)
        await channel.open()
        try:
            url = await setup_webhook(channel, settings.public_url)
        finally:
            await channel.close()
        print(f"telegram webhook registered: {url}")
        return 0
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with open_runtime(settings) as runtime:
        sending = asyncio.create_task(runtime.sender.run(), name="outbox-sender")
        print("polling telegram; press Ctrl+C to stop", file=sys.stderr)
        await run_polling(runtime, stop=stop)
        runtime.sender.stop()
        await sending
    return 0


def _backup(settings: Settings, target: Path) -> int:
    from bot.backup import backup

    try:
        report = backup(settings.data_dir, target)
    except (FileExistsError, OSError, RuntimeError) as exc:
        print(f"shopkeeper: {exc}", file=sys.stderr)
        return 2
    print(f"backed up {', '.join(report.files)} to {report.target}")
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


def _eval_retrieval(args: argparse.Namespace) -> int:
    from kb.evaluation import evaluate_retrieval, format_table

    for path in (args.dataset, args.catalog):
        if not path.exists():
            print(f"shopkeeper: {path}: no such file", file=sys.stderr)
            return 2
    metrics = evaluate_retrieval(args.catalog, args.dataset, constraints_mode=args.constraints, mode=args.mode, run_out=args.run)
    print(format_table(metrics))
    print(json.dumps(metrics, sort_keys=True, default=str))
    return 0


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
