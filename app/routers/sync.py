import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.core.observability import count_sync_results
from app.models.sync import SyncBatch, SyncOut, SyncStateOut
from app.routers.deps import AppSettings, Ctx, DeviceKey
from app.services.sync import batch as sync

router = APIRouter(tags=["offline sync"])


@router.post("/sync", response_model=SyncOut,
             summary="Send a batch from the tablet's queue; each item is answered in order")
def sync_batch(batch: SyncBatch, ctx: Ctx, settings: AppSettings,
               device_key: DeviceKey) -> Response:
    """Staff token of the device's worker plus `X-Device-Key`. Safe to resend any number of
    times: every item is stored once and answered `created`, `duplicate` or `rejected`."""
    out = sync.apply_batch(ctx, settings, batch, device_key)
    count_sync_results(result.status for result in out.results)
    # Serialised once, here: the answer to 500 items is built from models already checked.
    return Response(out.model_dump_json(), media_type="application/json")


@router.get("/sync/state", response_model=SyncStateOut,
            summary="Which of this device's items the server holds (what it still owes)")
def sync_state(ctx: Ctx, settings: AppSettings, device_key: DeviceKey,
               device_id: uuid.UUID,
               cursor: Annotated[str | None, Query(max_length=200, description="`cursor` "
                                                   "from the previous answer.")] = None,
               limit: Annotated[int, Query(ge=1, le=5000)] = 1000) -> SyncStateOut:
    return sync.sync_state(ctx, settings, device_id, device_key, cursor, limit)
