from fastapi import APIRouter

router = APIRouter(tags=["service"])


@router.get("/healthz", summary="Is the service up")
async def healthz() -> dict:
    # Async and database-free on purpose: it is the benchmark's ceiling and the load
    # balancer's probe, so it measures the server, not the database.
    return {"status": "ok"}
