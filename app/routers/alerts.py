import uuid
from typing import Literal

from fastapi import APIRouter

from app.models.common import Page
from app.models.safeguarding import AlertAcknowledge, AlertOut
from app.routers.deps import Ctx, Paging
from app.services.safeguarding import alerts as safeguarding

router = APIRouter(tags=["safeguarding"])


@router.get("/alerts", response_model=Page[AlertOut],
            summary="Safeguarding alerts on your children (open, escalated first)")
def list_alerts(ctx: Ctx, page: Paging,
                status: Literal["open", "acknowledged"] | None = None) -> dict:
    """The allocated worker sees their children's alerts; a team manager, their team's."""
    return safeguarding.list_alerts(ctx, status, page.limit, page.cursor)


@router.get("/alerts/{alert_id}", response_model=AlertOut, summary="One alert")
def get_alert(alert_id: uuid.UUID, ctx: Ctx) -> AlertOut:
    return safeguarding.get_alert(ctx, alert_id)


@router.post("/alerts/{alert_id}/acknowledge", response_model=AlertOut,
             summary="Acknowledge an alert with what was done",
             responses={409: {"description": "Already acknowledged."}})
def acknowledge(alert_id: uuid.UUID, data: AlertAcknowledge, ctx: Ctx) -> AlertOut:
    return safeguarding.acknowledge(ctx, alert_id, data)
