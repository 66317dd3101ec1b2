import uuid

from fastapi import APIRouter

from app.models.common import Page
from app.models.safeguarding import WebhookDeliveryOut
from app.routers.deps import Ctx, Paging
from app.services.safeguarding import deliveries

router = APIRouter(tags=["admin"])


@router.get("/admin/webhook-deliveries", response_model=Page[WebhookDeliveryOut],
            summary="Webhook notifications and how their delivery went (admin), newest first")
def list_deliveries(ctx: Ctx, page: Paging) -> dict:
    return deliveries.list_deliveries(ctx, page.limit, page.cursor)


@router.post("/admin/webhook-deliveries/{delivery_id}/retry", response_model=WebhookDeliveryOut,
             summary="Send a delivery that gave up once more, now (admin)",
             responses={409: {"description": "Only a delivery that gave up can be retried."}})
def retry(delivery_id: uuid.UUID, ctx: Ctx) -> WebhookDeliveryOut:
    return deliveries.retry(ctx, delivery_id)
