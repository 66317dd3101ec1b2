import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app.models.capture import (EntryCorrection, EntryKind, EntryOut, EntryRetract,
                                FamilyClearance, OtherPeopleUpdate, Source)
from app.models.common import Page, SafeText, UtcDatetime
from app.routers.deps import AppSettings, Ctx, Paging
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


@router.post("/entries/{entry_id}/retract", response_model=EntryOut,
             summary="Take an entry back: kept in the record, marked retracted, out of the plan",
             responses={409: {"description": "Already retracted or superseded."}})
def retract_entry(entry_id: uuid.UUID, data: EntryRetract, ctx: Ctx) -> EntryOut:
    """The worker's online retraction (the tablet's `retract` sync item does the same).
    Asking again answers the entry as it stands."""
    return capture.retract(ctx, entry_id, data)


@router.post("/entries/{entry_id}/correct", response_model=EntryOut,
             status_code=status.HTTP_201_CREATED,
             summary="Correct an entry with a new one that supersedes it (201), or get back "
             "the stored correction (200)",
             responses={200: {"model": EntryOut, "description": "Already stored: this "
                              "correction's client_id was sent before."},
                        409: {"description": "The entry was already retracted or "
                              "superseded, or the client_id was used for another entry."}})
def correct_entry(entry_id: uuid.UUID, data: EntryCorrection, ctx: Ctx, response: Response,
                  settings: AppSettings) -> EntryOut:
    """Nothing a child said is edited: the old entry stays as it was, marked `superseded`
    with `superseded_by`; the new one names it in `supersedes`."""
    entry, created = capture.correct(ctx, settings, entry_id, data)
    if not created:
        response.status_code = status.HTTP_200_OK
    return entry
