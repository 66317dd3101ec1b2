"""Symbol boards in the Open Board Format's shape (open-board-0.1), versioned and immutable.

An entry names the exact board version it came from, so what a child chose keeps its
meaning even after the board is edited.
"""

import uuid
from datetime import datetime
from enum import Enum
from typing import Any

from pydantic import ConfigDict, Field as PydField, field_validator, model_validator
from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel, UniqueConstraint

from app.models.common import ApiModel, SafeText, check_free_json, id_field, json_field, utc_field

OBF_FORMAT = "open-board-0.1"


class BoardOrigin(str, Enum):
    made = "made"          # written through the API (POST /boards)
    imported = "imported"  # POST /boards/import
    starter = "starter"    # the starter library
    copy = "copy"          # copied from another board into a child's personal boards


class Board(SQLModel, table=True):
    __tablename__ = "boards"
    id: uuid.UUID = id_field()
    name: str = Field(max_length=200)
    owner_child_id: uuid.UUID | None = Field(default=None, foreign_key="children.id", index=True)
    latest_version: int = 1
    created_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = utc_field(default_now=True)
    origin: str = Field(default=BoardOrigin.made.value, max_length=16)
    # The board's own id in the file it was imported from: a re-import finds it by this.
    source_id: str | None = Field(default=None, max_length=100, index=True)
    copy_of_board_id: uuid.UUID | None = Field(default=None, foreign_key="boards.id")
    copy_of_version: int | None = None
    # Archived library boards are kept (entries name their versions) but offered no more.
    archived_at: datetime | None = utc_field(nullable=True)
    archived_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")


class BoardVersion(SQLModel, table=True):
    __tablename__ = "board_versions"
    __table_args__ = (UniqueConstraint("board_id", "version"),)
    id: uuid.UUID = id_field()
    board_id: uuid.UUID = Field(foreign_key="boards.id", index=True)
    version: int
    content: dict[str, Any] = json_field()
    created_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = utc_field(default_now=True)
    # What an import fixed up in the file's board to make it usable (never silently).
    notes: list[str] = json_field(list)
    change_reason: str | None = Field(default=None, max_length=500)
    # [{"button_id", "before", "after"}] for every safeguarding mark this version changed.
    safeguarding_changes: list[dict[str, Any]] = json_field(list)


class BoardAsset(SQLModel, table=True):
    """Bytes a board carries (an image or a sound), named by their SHA-256 in the media
    store. Boards name an asset by that hash (`ext_childvoice_asset` on an image or sound);
    the same bytes on many boards are one asset."""

    __tablename__ = "board_assets"
    id: uuid.UUID = id_field()
    sha256: str = Field(max_length=64, unique=True)
    kind: str = Field(max_length=16)           # image | sound
    content_type: str = Field(max_length=100)  # sniffed from the bytes, never as declared
    bytes: int = Field(sa_type=BigInteger)
    width: int | None = None
    height: int | None = None
    created_at: datetime = utc_field(default_now=True)


class ChildBoardPhoto(SQLModel, table=True):
    """A photo uploaded for one child's personal boards (their people, places, things):
    only that child's boards may show it."""

    __tablename__ = "child_board_photos"
    __table_args__ = (UniqueConstraint("child_id", "sha256"),)
    id: uuid.UUID = id_field()
    child_id: uuid.UUID = Field(foreign_key="children.id", index=True)
    sha256: str = Field(max_length=64)
    uploaded_by: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = utc_field(default_now=True)


def _as_str_id(value: Any) -> Any:
    # Real OBF files carry numeric ids; the spec says strings.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class ObfModel(ApiModel):
    # Open Board Format objects keep fields we do not know (ext_* and newer spec fields),
    # as long as both databases can store them.
    model_config = ConfigDict(extra="allow")

    @model_validator(mode="after")
    def _storable_extras(self) -> "ObfModel":
        for name, value in (self.model_extra or {}).items():
            check_free_json({name: value}, name.replace("\x00", "?"))
        return self


class License(ObfModel):
    type: SafeText = PydField(max_length=200)
    copyright_notice_url: SafeText | None = PydField(default=None, max_length=2000)
    source_url: SafeText | None = PydField(default=None, max_length=2000)
    author_name: SafeText | None = PydField(default=None, max_length=200)
    author_url: SafeText | None = PydField(default=None, max_length=2000)


class LoadBoard(ObfModel):
    id: SafeText | None = PydField(default=None, max_length=100)
    name: SafeText | None = PydField(default=None, max_length=200)
    path: SafeText | None = PydField(default=None, max_length=500)
    url: SafeText | None = PydField(default=None, max_length=2000)

    _ids = field_validator("id", mode="before")(_as_str_id)


class Button(ObfModel):
    id: SafeText = PydField(min_length=1, max_length=100)
    label: SafeText | None = PydField(default=None, max_length=200)
    vocalization: SafeText | None = PydField(default=None, max_length=500)
    image_id: SafeText | None = PydField(default=None, max_length=100)
    sound_id: SafeText | None = PydField(default=None, max_length=100)
    load_board: LoadBoard | None = None
    background_color: SafeText | None = PydField(default=None, max_length=50)
    border_color: SafeText | None = PydField(default=None, max_length=50)

    _ids = field_validator("id", "image_id", "sound_id", mode="before")(_as_str_id)


class Image(ObfModel):
    id: SafeText = PydField(min_length=1, max_length=100)
    url: SafeText | None = PydField(default=None, max_length=2000)
    content_type: SafeText | None = PydField(default=None, max_length=100)
    width: int | None = PydField(default=None, ge=1, le=10000)
    height: int | None = PydField(default=None, ge=1, le=10000)
    license: License | None = None

    _ids = field_validator("id", mode="before")(_as_str_id)


class Sound(ObfModel):
    id: SafeText = PydField(min_length=1, max_length=100)
    url: SafeText | None = PydField(default=None, max_length=2000)
    content_type: SafeText | None = PydField(default=None, max_length=100)
    duration: float | None = PydField(default=None, ge=0, le=86400, allow_inf_nan=False)
    license: License | None = None

    _ids = field_validator("id", mode="before")(_as_str_id)


class Grid(ApiModel):
    rows: int = PydField(ge=1, le=12)
    columns: int = PydField(ge=1, le=12)
    order: list[list[SafeText | None]]

    @field_validator("order", mode="before")
    @classmethod
    def _ids(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [[_as_str_id(c) for c in row] if isinstance(row, list) else row
                    for row in value]
        return value


_BOARD_EXAMPLE = {
    "name": "How I feel",
    "locale": "en",
    "grid": {"rows": 1, "columns": 3, "order": [["happy", "sad", "scared"]]},
    "buttons": [
        {"id": "happy", "label": "happy", "vocalization": "I feel happy", "image_id": "img-happy"},
        {"id": "sad", "label": "sad", "vocalization": "I feel sad"},
        {"id": "scared", "label": "scared", "vocalization": "I feel scared",
         "ext_childvoice_safeguarding": True},
    ],
    "images": [{"id": "img-happy", "url": "https://example.org/happy.png",
                "content_type": "image/png",
                "license": {"type": "CC BY-SA 4.0", "author_name": "OpenMoji"}}],
    "sounds": [],
}


class BoardContent(ObfModel):
    """A board as the Open Board Format draws it: a grid of buttons with labels and images.
    What is stored; the importer keeps a file's own fields in it."""

    name: SafeText = PydField(min_length=1, max_length=200)
    locale: SafeText = PydField(default="en", max_length=35)
    grid: Grid
    buttons: list[Button] = PydField(min_length=1, max_length=144)
    images: list[Image] = PydField(default_factory=list, max_length=144)
    sounds: list[Sound] = PydField(default_factory=list, max_length=144)

    @model_validator(mode="after")
    def _grid_matches_buttons(self) -> "BoardContent":
        ids = [b.id for b in self.buttons]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"button ids must be unique; repeated: {', '.join(duplicates)}")
        if len(self.grid.order) != self.grid.rows:
            raise ValueError(f"grid.order has {len(self.grid.order)} rows but grid.rows is "
                             f"{self.grid.rows}")
        known = set(ids)
        for r, row in enumerate(self.grid.order):
            if len(row) != self.grid.columns:
                raise ValueError(f"grid.order[{r}] has {len(row)} cells but grid.columns is "
                                 f"{self.grid.columns}")
            for c, cell in enumerate(row):
                if cell is not None and cell not in known:
                    raise ValueError(f"grid.order[{r}][{c}] names button '{cell}', which is "
                                     "not in buttons")
        return self


class BoardWrite(BoardContent):
    """A board written through the API: the Open Board Format's own board fields and
    extension fields (`ext_*`), nothing else. Fields the server sets (`id`, `version`,
    `created_at`, `owner_child_id`, ...) are refused: remove them from a board you read."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [_BOARD_EXAMPLE]})
    url: str | None = PydField(default=None, max_length=2000)
    data_url: str | None = PydField(default=None, max_length=2000)
    description_html: str | None = PydField(default=None, max_length=10000)
    license: License | None = None
    change_reason: str | None = PydField(
        default=None, min_length=1, max_length=500, exclude=True,
        description="Why a safeguarding mark is removed or changed (required then; "
                    "admins only). Kept with the version, not in the board.")

    @model_validator(mode="before")
    @classmethod
    def _known_fields_only(cls, value: Any) -> Any:
        if isinstance(value, dict):
            unknown = sorted(str(k) for k in value
                             if k not in cls.model_fields and not str(k).startswith("ext_"))
            if unknown:
                raise ValueError(
                    f"not a field of a board you can write: {', '.join(unknown[:10])}. "
                    "The server sets id, version, latest_version, owner_child_id, created_at "
                    "and the other fields it answers; send the Open Board Format's board "
                    "fields and extension fields named ext_*")
        return value


class SafeguardingChange(ApiModel):
    button_id: str
    before: Any = None
    after: Any = None


class BoardOut(ObfModel):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"format": OBF_FORMAT, "id": "2b4f0c9a-0000-4000-8000-000000000003", "version": 1,
         **_BOARD_EXAMPLE}]})
    format: str = OBF_FORMAT
    id: uuid.UUID
    version: int
    latest_version: int
    owner_child_id: uuid.UUID | None = None
    name: str
    locale: str
    grid: Grid
    buttons: list[Button]
    images: list[Image]
    sounds: list[Sound]
    created_at: datetime
    created_by: uuid.UUID | None = PydField(default=None, description="Who wrote this version.")
    origin: str = PydField(default=BoardOrigin.made.value,
                           description="How the board came in: made, imported, starter, copy.")
    source_id: str | None = PydField(default=None, description="Its id in the imported file.")
    copy_of_board_id: uuid.UUID | None = None
    copy_of_version: int | None = None
    archived_at: datetime | None = PydField(default=None, description="Set when an admin "
                                            "archived it: no longer offered for new sessions.")
    import_notes: list[str] = PydField(default_factory=list, description="What the import "
                                       "of this version fixed up in the file's board.")
    change_reason: str | None = None
    safeguarding_changes: list[SafeguardingChange] = PydField(
        default_factory=list, description="The safeguarding marks this version changed.")


class BoardSummary(ApiModel):
    id: uuid.UUID
    name: str
    latest_version: int
    owner_child_id: uuid.UUID | None
    created_at: datetime
    created_by: uuid.UUID | None = PydField(default=None,
                                            description="Who made or imported the board.")
    created_by_name: str | None = None
    origin: str = BoardOrigin.made.value
    source_id: str | None = None
    archived_at: datetime | None = None
    archived_by: uuid.UUID | None = None


class BoardCopy(ApiModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "child_id": "2b4f0c9a-0000-4000-8000-000000000001", "name": "Robin's feelings"}]})
    child_id: uuid.UUID = PydField(description="The child whose personal board it becomes.")
    name: str | None = PydField(default=None, min_length=1, max_length=200,
                                description="Its name; the board's own when left out.")
    version: int | None = PydField(default=None, ge=1, le=2_147_483_647,
                                   description="The version copied; the latest when left out.")


# --- import, export, attribution -------------------------------------------------------

class ImportedBoard(ApiModel):
    id: uuid.UUID
    name: str
    version: int
    source_id: str = PydField(description="The board's id in the imported file (or its path "
                              "in the package when it had none).")
    notes: list[str] = PydField(default_factory=list, description="What the import fixed "
                                "up: a grid cell naming a missing button, a picture refused "
                                "and left out, ...")
    previous_version: int | None = PydField(default=None, description="Set when a changed "
                                            "board became a new version of the one imported "
                                            "before.")


class SkippedBoard(ApiModel):
    source_id: str
    reason: str


class ImportResult(ApiModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "imported": [{"id": "2b4f0c9a-0000-4000-8000-000000000003", "name": "Feelings",
                      "version": 1, "source_id": "feelings"}],
        "skipped": [{"source_id": "boards/broken.obf",
                     "reason": "boards/broken.obf is not valid JSON"}]}]})
    imported: list[ImportedBoard]
    already_imported: list[ImportedBoard] = PydField(
        default_factory=list, description="Boards of the file that were imported before, "
        "unchanged: nothing new was stored for them.")
    skipped: list[SkippedBoard]


class AttributionItem(ApiModel):
    text: str = PydField(description="The line a document built from the board shows.")
    license: License
    requires_attribution: bool
    assumed: bool = PydField(description="True when the file gave no licence, so it is "
                             "taken as private, all rights reserved (as the OBF spec says).")
    images: list[str] = PydField(default_factory=list, description="Image ids it covers.")
    sounds: list[str] = PydField(default_factory=list, description="Sound ids it covers.")
    board: bool = PydField(default=False, description="True when it is the board's own licence.")


class AttributionOut(ApiModel):
    board_id: uuid.UUID
    version: int
    name: str
    items: list[AttributionItem]


class BoardPhotoOut(ApiModel):
    """A cleaned photo, ready to be an image of this child's personal boards: put `image`
    in the board's `images` (give it the id its buttons use)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "sha256": "9f2c" + "0" * 60, "image": {
            "id": "photo-9f2c0000", "content_type": "image/jpeg", "width": 1024,
            "height": 768, "ext_childvoice_asset": "9f2c" + "0" * 60,
            "license": {"type": "private, all rights reserved"}}}]})
    sha256: str
    image: dict[str, Any]
