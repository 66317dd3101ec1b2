"""What admins see of the webhook outbox: no child content is in it (ids and links only)."""

from __future__ import annotations

import uuid

from sqlmodel import select

from app.core.clock import utcnow
from app.core.context import Context
from app.core.errors import Conflict, NotFound
from app.core.pagination import paginate
from app.models.safeguarding import WebhookDelivery, WebhookDeliveryOut
from app.services import access


def list_deliveries(ctx: Context, limit: int, cursor: str | None) -> dict:
    access.require_admin(ctx.actor)
    return paginate(ctx.db, select(WebhookDelivery), sort_col=WebhookDelivery.created_at,
                    id_col=WebhookDelivery.id, limit=limit, cursor=cursor, descending=True,
                    shape=WebhookDeliveryOut.model_validate)


def retry(ctx: Context, delivery_id: uuid.UUID) -> WebhookDeliveryOut:
    access.require_admin(ctx.actor)
    delivery = ctx.db.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise NotFound("No webhook delivery with this id.")
    if delivery.status != "failed":
        raise Conflict(f"This delivery is {delivery.status}; only one that gave up can be "
                       "retried.")
    delivery.status = "pending"
    delivery.next_attempt_at = utcnow()
    delivery.claimed_until = None
    ctx.db.add(delivery)
    ctx.db.commit()
    return WebhookDeliveryOut.model_validate(delivery)
