"""The FastAPI application: routes of every channel, opened resources, errors as JSON.

:func:`create_app` builds the app for a given :class:`~bot.settings.Settings`;
the lifespan opens the runtime (store, index, engine), finishes turns a crash
left unfinished, starts the scheduler, and closes everything on shutdown.
Errors never leak a traceback: validation problems are 422 with a message
naming the field, anything unexpected is a 500 with a generic message.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot import __version__, console
from bot.runtime import Runtime, open_runtime
from bot.security import HardeningMiddleware, TokenBucket
from bot.settings import Settings, load_settings
from bot.store import storage_unavailable
from channels import admin_api, web, webhooks
from jobs.inbox_recovery import recover_unfinished
from jobs.scheduler import build_scheduler

log = logging.getLogger(__name__)


def _describe(errors: list[dict[str, object]]) -> str:
    parts = []
    for error in errors:
        loc = [str(p) for p in error.get("loc", ()) if p not in ("body",)]  # type: ignore[attr-defined]
        field = ".".join(loc) or "body"
        if error.get("type") == "json_invalid":
            parts.append("body: not valid JSON")
        elif error.get("type") == "missing":
            parts.append(f"{field}: required")
        else:
            parts.append(f"{field}: {error.get('msg')}")
    return "; ".join(parts) or "invalid request"


def create_app(settings: Settings | None = None, *, start_scheduler: bool = True, runs_turns: bool = True) -> FastAPI:
    """The shopkeeper web app (chat API and page, webhooks, staff console, health).

    ``start_scheduler=False`` leaves the scheduled jobs and outbound delivery to
    ``shopkeeper worker``; ``runs_turns=False`` leaves it the webhook turns too, so
    this process only verifies, stores and acknowledges (the Procfile's ``web``).
    """
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_runtime(settings, runs_turns=runs_turns) as runtime:
            app.state.runtime = runtime
            # the catalog, index and model loaded at start live as long as the process: keep them out of the
            # garbage collector's full passes, which otherwise stall every request while they walk them
            gc.freeze()
            scheduler = build_scheduler(runtime) if start_scheduler else None
            sending: asyncio.Task[None] | None = None
            if scheduler is not None:
                # the process that schedules also recovers and delivers: an accepted-but-unfinished
                # turn from before this start died with a previous process
                await runtime.store.recover_outbox()
                await recover_unfinished(runtime.store, runtime.engine, now=runtime.store.now(), older_than=timedelta(0))
                scheduler.start()
                sending = asyncio.create_task(runtime.sender.run(), name="outbox-sender")
            try:
                yield
            finally:
                await runtime.worker.stop()  # finish turns in flight; queued ones stay in the inbox
                runtime.sender.stop()
                if sending is not None:
                    await sending
                if scheduler is not None:
                    scheduler.shutdown(wait=False)

    app = FastAPI(
        title="shopkeeper",
        version=__version__,
        description="A shop assistant for messaging apps: chat API, webhooks and staff console.",
        lifespan=lifespan,
    )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": _describe(list(exc.errors()))}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(sqlite3.OperationalError)
    async def database_error(request: Request, exc: Exception) -> JSONResponse:
        if not storage_unavailable(exc):
            return await unexpected_error(request, exc)
        # disk full or read-only: an operator problem, not a bug; a platform retries on 503, and so can a client
        log.error("the database cannot be written (%s) on %s %s", exc, request.method, request.url.path)
        return JSONResponse(
            {"error": "the shop's database cannot be written right now (disk full or read-only); retry later, "
                      "a retried message_id is answered once"},
            status_code=503,
            headers={"Retry-After": "30"},
        )

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": "internal error; your message was kept and will be answered"}, status_code=500)

    @app.get("/readyz", summary="Readiness probe: database writable, index loaded, channels configured")
    async def readyz(request: Request) -> JSONResponse:
        runtime: Runtime = request.app.state.runtime
        checks: dict[str, object] = {}
        try:
            await runtime.store.check_writable()
            checks["database"] = "ok"
        except Exception as exc:  # report, do not raise: this is the answer to "are you ready?"
            checks["database"] = f"error: {type(exc).__name__}"
        try:
            checks["index"] = "ok" if await runtime.index.product_count() > 0 else "empty"
        except Exception as exc:  # same: a probe reports
            checks["index"] = f"error: {type(exc).__name__}"
        checks["channels"] = sorted(runtime.channels)
        ready = checks["database"] == "ok" and checks["index"] == "ok"
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def metrics(request: Request) -> Response:
        runtime: Runtime = request.app.state.runtime
        await runtime.store.refresh_gauges(runtime.metrics)
        return Response(runtime.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/healthz", summary="Liveness probe")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(
        HardeningMiddleware,
        limiter=TokenBucket(rate=settings.rate_limit_per_second, burst=settings.rate_limit_burst),
        trust_forwarded=settings.trust_forwarded_headers,
    )
    app.include_router(web.router)
    app.include_router(webhooks.router)
    app.include_router(admin_api.router)
    app.include_router(console.router)
    return app
