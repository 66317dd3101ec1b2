"""What a manager's erasure of a photo or recording reached, and what it could not."""

from __future__ import annotations

import uuid
from typing import Literal

from app.models.capture import EntryOut
from app.models.common import ApiModel


class ErasedCopy(ApiModel):
    """Another copy of the same bytes in the child's record, erased with the media."""

    kind: Literal["board_photo"]
    board_ids: list[uuid.UUID]  # the child's personal boards that showed it
    detail: str


class RemainingCopy(ApiModel):
    """A copy of the same bytes this erasure did not remove, and why."""

    kind: Literal["entry_media", "outside_record"]
    entry_id: uuid.UUID | None = None
    media_id: uuid.UUID | None = None
    detail: str


class ErasureOut(ApiModel):
    media_id: uuid.UUID
    copies_erased: list[ErasedCopy] = []
    copies_remaining: list[RemainingCopy] = []


class MediaErasureOut(EntryOut):
    """The entry that carried the media (with its tombstone), and what the erasure reached."""

    erasure: ErasureOut
