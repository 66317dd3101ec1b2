import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Request, Response, status

from app.models.common import Page
from app.models.sync import DeviceBoardsOut, DeviceCreate, DeviceEnrolled, DeviceOut, DeviceRevoke
from app.routers.deps import AppSettings, Ctx, DeviceKey, Paging
from app.routers.etag import etag_response
from app.services.sync import devices

router = APIRouter(tags=["offline sync"])


@router.post("/devices", response_model=DeviceEnrolled, status_code=status.HTTP_201_CREATED,
             summary="Enroll a tablet; its device key is shown only in this answer")
def enroll(data: DeviceCreate, ctx: Ctx, settings: AppSettings) -> DeviceEnrolled:
    return devices.enroll(ctx, settings, data)


@router.get("/devices", response_model=Page[DeviceOut],
            summary="Devices you may see (yours; your team's as a manager; all as an admin)")
def list_devices(ctx: Ctx, settings: AppSettings, page: Paging) -> dict:
    return devices.list_devices(ctx, settings, page.limit, page.cursor)


@router.get("/devices/{device_id}", response_model=DeviceOut, summary="One device")
def get_device(device_id: uuid.UUID, ctx: Ctx, settings: AppSettings) -> DeviceOut:
    return devices.get_device(ctx, settings, device_id)


@router.post("/devices/{device_id}/revoke", response_model=DeviceOut,
             summary="Revoke a lost or retired device (its worker, their manager, an admin)")
def revoke(device_id: uuid.UUID, ctx: Ctx, settings: AppSettings,
           data: Annotated[DeviceRevoke | None, Body(openapi_examples={"lost": {
               "summary": "A reason (optional)", "value": {"reason": "Left on a train"}}})
           ] = None) -> DeviceOut:
    return devices.revoke(ctx, settings, device_id, data)


@router.get("/devices/{device_id}/boards", response_model=DeviceBoardsOut,
            summary="Every board the tablet needs offline, for each child its worker holds",
            responses={304: {"description": "Unchanged since the ETag in If-None-Match."}})
def device_boards(request: Request, device_id: uuid.UUID, ctx: Ctx, settings: AppSettings,
                  device_key: DeviceKey) -> Response:
    """Send `X-Device-Key` and `If-None-Match` with the ETag you hold."""
    return etag_response(request, devices.device_boards(ctx, settings, device_id, device_key))
