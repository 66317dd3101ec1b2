"""create_app(): routers, middleware, error handlers — nothing else."""

from __future__ import annotations

import gc
from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from app.core.config import Settings, get_settings
from app.core.db import make_engine, new_session
from app.core.errors import install_error_handlers
from app.core.limits import BodyLimitMiddleware
from app.core.logging import configure_logging
from app.core.middleware import RequestContextMiddleware
from app.core.observability import AccessLogMiddleware
from app.core.openapi import install_openapi
from app.core.pages import STATIC_DIR, TABLET_DIR
from app.core.security import PasswordHashing, StaffTokens
from app.routers import (admin, alerts, audit_trail, auth, boards, children, consents,
                         devices, docs, entries, exports, health, media, plan_pages, plans,
                         reports, sessions, signin, sso, staff, sync, uploads)
from app.routers.deps import get_caller, get_context
from app.services.background import BackgroundWorker
from app.services.media.capture import MediaJobs
from app.services.media.signed import SignedUrls
from app.services.sso import OidcClient
from app.services.staff import bootstrap_admin
from app.storage import make_store

API_PREFIX = "/api/v1"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_format)
    refused = settings.production_problems()
    if refused:
        raise RuntimeError("Refusing to start in production: " + "; ".join(refused) + ".")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        def bootstrap() -> None:
            with new_session(app.state.engine) as db:
                bootstrap_admin(db, app.state.hashing, settings.bootstrap_admin_email,
                                settings.bootstrap_admin_password)
        await run_in_threadpool(bootstrap)
        # Everything made so far lives as long as the process: keep the cyclic garbage
        # collector from walking it again on every full collection (they cost ~100 ms
        # here, landing on whichever request happens to allocate at the time).
        gc.freeze()
        # Background work (webhooks, escalation, retention, sweeps, upload expiry, audit
        # checkpoints) runs here only on the embedded default; with a database server it
        # is `childvoice worker`'s (see services/background.py).
        worker = BackgroundWorker(app.state.engine, settings) \
            if settings.background_in_serve else None
        app.state.background = worker
        if worker:
            worker.start()
        try:
            yield
        finally:
            if worker:
                await run_in_threadpool(worker.stop)
            app.state.engine.dispose()

    app = FastAPI(
        title="childvoice",
        version="0.1.0",
        summary="Hear disabled and non-verbal children: capture their direct work and carry "
                "it into their My plan.",
        lifespan=lifespan,
        # Served by routers/docs.py with assets from the service itself, not a CDN.
        docs_url=None, redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = make_engine(settings.resolved_database_url, settings)
    app.state.hashing = PasswordHashing(settings)
    app.state.tokens = StaffTokens(settings)
    app.state.sso = OidcClient(settings)
    app.state.media_store = make_store(settings)
    app.state.media_jobs = MediaJobs(settings.media_jobs)
    app.state.signed_urls = SignedUrls(settings.resolved_secret_key(), settings.signed_url_seconds)

    install_error_handlers(app)
    install_openapi(app)
    # Innermost first: bodies are bounded (and callers without a token refused) before a
    # route reads them; the access log and RequestContextMiddleware see those answers too,
    # so they get the request id and the security headers.
    app.add_middleware(BodyLimitMiddleware, callers=(get_context, get_caller),
                       default_limit=settings.body_max_bytes,
                       limits_by_path={f"{API_PREFIX}/sync": settings.sync_body_max_bytes})
    app.add_middleware(AccessLogMiddleware, access_log=settings.access_log)
    app.add_middleware(RequestContextMiddleware)

    app.include_router(health.router)
    app.include_router(docs.router)
    app.include_router(signin.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.mount("/tablet", StaticFiles(directory=TABLET_DIR, html=True), name="tablet")
    # plan_pages before plans: its `/plan/versions/{n}.html` must not be read as a version.
    for module in (auth, sso, staff, children, consents, boards, sessions, entries,
                   plan_pages, plans, media, alerts, audit_trail, exports, admin, devices,
                   sync, uploads, reports):
        app.include_router(module.router, prefix=API_PREFIX)
    if settings.bench_endpoints:
        app.include_router(media.bench_router, prefix=API_PREFIX)
    return app
