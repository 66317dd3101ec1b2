"""Install the starter board library (see app/starter): for `childvoice demo` and
`childvoice boards install-starter`. Installing twice adds nothing the second time.

The pictures go in through `board_assets.store_board_media`, the same door as imported
ones, and each keeps its licence (OpenMoji, CC BY-SA 4.0) on its image object.
"""

from __future__ import annotations

import math
import uuid
from importlib import resources

from sqlmodel import Session, select

from app.core.config import Settings
from app.core.context import Actor, Context
from app.models.board import Board, BoardContent, BoardOrigin
from app.services.boards.assets import store_board_media
from app.services import audit
from app.services.boards.library import add_board, get_version
from app.services.boards.obf import ASSET_KEY
from app.starter.boards import OPENMOJI_LICENSE, SAFEGUARDING, STARTER, image_file
from app.storage import MediaStore

STARTER_KEY = "ext_childvoice_starter"


def _button_id(label: str) -> str:
    return label.replace(" ", "_").replace("'", "")


def _picture(db: Session, settings: Settings, store: MediaStore, codepoints: str) -> dict:
    data = resources.files("app.starter").joinpath("images", image_file(codepoints)).read_bytes()
    asset = store_board_media(db, settings, store, "image", data)
    return {"id": f"openmoji-{codepoints.lower()}", "content_type": asset.content_type,
            "width": asset.width, "height": asset.height, ASSET_KEY: asset.sha256,
            "license": OPENMOJI_LICENSE | {
                "source_url": f"https://openmoji.org/library/emoji-{codepoints.upper()}/"}}


def starter_board(db: Session, settings: Settings, store: MediaStore,
                  spec: dict) -> BoardContent:
    images: dict[str, dict] = {}
    buttons = []
    for label, vocalization, codepoints in spec["buttons"]:
        if codepoints not in images:
            images[codepoints] = _picture(db, settings, store, codepoints)
        image = images[codepoints]
        button = {"id": _button_id(label), "label": label, "vocalization": vocalization,
                  "image_id": image["id"]}
        if spec["key"] == "feelings" and label in SAFEGUARDING:
            button["ext_childvoice_safeguarding"] = True
        buttons.append(button)
    columns = spec["columns"]
    rows = math.ceil(len(buttons) / columns)
    ids: list[str | None] = [b["id"] for b in buttons]
    ids += [None] * (rows * columns - len(ids))
    content = {"name": spec["name"], "locale": "en", STARTER_KEY: spec["key"],
               "grid": {"rows": rows, "columns": columns,
                        "order": [ids[r * columns:(r + 1) * columns] for r in range(rows)]},
               "buttons": buttons, "images": list(images.values()), "sounds": []}
    if "scale" in spec:
        content["ext_childvoice_scale"] = spec["scale"]
    return BoardContent.model_validate(content)


def _installed(db: Session, spec: dict) -> bool:
    for board in db.exec(select(Board).where(Board.owner_child_id.is_(None),
                                             Board.name == spec["name"])):
        version = get_version(db, board.id, board.latest_version)
        if version is not None and version.content.get(STARTER_KEY) == spec["key"]:
            return True
    return False


def install_starter(db: Session, settings: Settings, store: MediaStore,
                    created_by: uuid.UUID | None = None) -> list[str]:
    """Add the starter boards the library lacks; answers the names added. Commits."""
    added = []
    for spec in STARTER:
        if _installed(db, spec):
            continue
        board, _ = add_board(db, starter_board(db, settings, store, spec), created_by,
                             origin=BoardOrigin.starter)
        audit.record(Context(db=db, actor=Actor()), "board.create", object_type="board",
                     object_id=board.id)
        added.append(spec["name"])
    db.commit()
    return added
