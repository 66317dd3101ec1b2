import hmac
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from app.core.errors import NotFound, Unauthorized
from app.core.observability import render_metrics
from app.services import monitoring

router = APIRouter(tags=["service"])


@router.get("/healthz", summary="Is the service up (liveness)")
async def healthz() -> dict:
    # Async and database-free on purpose: it is the benchmark's ceiling and the load
    # balancer's liveness probe, so it measures the server, not the database.
    return {"status": "ok"}


@router.get("/readyz", summary="Can the service do its work: database and media store",
            responses={503: {"description": "The database or the media store cannot be "
                                            "reached; the body says which."}})
async def readyz(request: Request) -> JSONResponse:
    state = request.app.state
    ready = await run_in_threadpool(monitoring.readiness, state.engine, state.media_store)
    body = {"status": "ok" if ready.ok else "unavailable", "database": ready.database,
            "media_store": ready.media_store}
    return JSONResponse(body, status_code=200 if ready.ok else 503)


@router.get("/metrics", summary="Prometheus metrics (needs CHILDVOICE_METRICS_TOKEN)",
            response_class=Response,
            responses={200: {"content": {"text/plain": {}}},
                       401: {"description": "The metrics token is missing or wrong."},
                       404: {"description": "Metrics are off (no token is set)."}})
async def metrics(request: Request,
                  authorization: Annotated[str | None, Header()] = None) -> Response:
    state = request.app.state
    token = state.settings.metrics_token
    if not token:
        raise NotFound("Metrics are off: set CHILDVOICE_METRICS_TOKEN to turn them on.")
    given = (authorization or "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise Unauthorized("Send the metrics token: 'Authorization: Bearer <token>'.")
    figures = await run_in_threadpool(monitoring.service_figures, state.engine)
    body, content_type = render_metrics(figures, state.media_jobs.waiting)
    return Response(body, media_type=content_type)
