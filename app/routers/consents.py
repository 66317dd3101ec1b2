import uuid

from fastapi import APIRouter, status

from app.models.common import Page
from app.models.consent import (ConsentCreate, ConsentOut, ConsentReview, ConsentWithdraw,
                                EffectiveConsentOut, ReviewsDueOut)
from app.routers.deps import Ctx, Paging
from app.services import consent

router = APIRouter(tags=["consent"])


@router.post("/children/{child_id}/consents", response_model=ConsentOut,
             status_code=status.HTTP_201_CREATED, summary="Record a consent (allocated worker)")
def record_consent(child_id: uuid.UUID, data: ConsentCreate, ctx: Ctx) -> ConsentOut:
    return consent.record_consent(ctx, child_id, data)


@router.get("/children/{child_id}/consents", response_model=Page[ConsentOut],
            summary="A child's consents, oldest first")
def list_consents(child_id: uuid.UUID, ctx: Ctx, page: Paging) -> dict:
    return consent.list_consents(ctx, child_id, page.limit, page.cursor)


@router.get("/children/{child_id}/consents/effective", response_model=EffectiveConsentOut,
            summary="What is allowed for this child now, scope by scope")
def effective(child_id: uuid.UUID, ctx: Ctx) -> EffectiveConsentOut:
    return consent.effective(ctx, child_id)


@router.get("/consents/reviews-due", response_model=ReviewsDueOut,
            summary="Consents due for review (worker: own children; manager: team)")
def reviews_due(ctx: Ctx) -> ReviewsDueOut:
    return consent.reviews_due(ctx)


@router.post("/consents/{consent_id}/withdraw", response_model=ConsentOut,
             summary="Withdraw a consent; its entries leave the plan",
             responses={409: {"description": "Already withdrawn."}})
def withdraw(consent_id: uuid.UUID, data: ConsentWithdraw, ctx: Ctx) -> ConsentOut:
    return consent.withdraw_consent(ctx, consent_id, data)


@router.post("/consents/{consent_id}/review", response_model=ConsentOut,
             summary="Record that the allocated worker reviewed a consent and it stands",
             responses={409: {"description": "The consent was withdrawn."}})
def review(consent_id: uuid.UUID, data: ConsentReview, ctx: Ctx) -> ConsentOut:
    return consent.review_consent(ctx, consent_id, data)
