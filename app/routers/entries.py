import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.models.capture import (EntryKind, EntryOut, FamilyClearance, OtherPeopleUpdate,
                                Source)
from app.models.common import Page, SafeText, UtcDatetime
from app.routers.deps import Ctx, Paging
from app.services import capture

router = APIRouter(tags=["capture"])


@router.get("/children/{child_id}/entries", response_model=Page[EntryOut],
            summary="A child's voice entries, newest first")
def list_entries(child_id: uuid.UUID, ctx: Ctx, page: Paging,
                 kind: EntryKind | None = None,
                 topic: Annotated[SafeText | None, Query(max_length=100)] = None,
                 source: Source | None = None,
                 since: Annotated[UtcDatetime | None,
                                  Query(description="captured_at on or after")] = None,
                 until: Annotated[UtcDatetime | None,
                                  Query(description="captured_at before")] = None) -> dict:
    return capture.list_entries(ctx, child_id, kind=kind, topic=topic, source=source,
                                since=since, until=until, limit=page.limit, cursor=page.cursor)


@router.get("/entries/{entry_id}", response_model=EntryOut, summary="One voice entry")
def get_entry(entry_id: uuid.UUID, ctx: Ctx) -> EntryOut:
    return capture.get_entry(ctx, entry_id)


@router.put("/entries/{entry_id}/other-people", response_model=EntryOut,
            summary="Record that other people appear or are heard in an entry (worker)")
def set_other_people(entry_id: uuid.UUID, data: OtherPeopleUpdate, ctx: Ctx) -> EntryOut:
    return capture.set_other_people(ctx, entry_id, data)


@router.post("/entries/{entry_id}/family-clearance", response_model=EntryOut,
             summary="Clear an entry with other people in it for family-facing exports",
             responses={409: {"description": "No other people are recorded in it."}})
def clear_for_family(entry_id: uuid.UUID, data: FamilyClearance, ctx: Ctx) -> EntryOut:
    return capture.clear_for_family(ctx, entry_id, data)
