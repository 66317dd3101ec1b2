"""The Open Board Format (open-board-0.1) as real files write it, made regular.

No database, no HTTP, no files: dictionaries in, dictionaries out. Import, export and the
JSON API all pass boards through here, so a board is stored the same way whichever door
it came in by:

- ids (board, button, image, sound, grid cells, load_board) become strings;
- colours become `rgb(r, g, b)` or `rgba(r, g, b, a)` (stray spaces, hex and CSS names
  accepted); a colour that cannot be read is dropped, not guessed;
- every image and sound carries a licence: one without is "private, all rights reserved",
  as the spec says, marked `ext_childvoice_assumed` so nobody mistakes it for a real grant;
- unknown fields, `ext_*` included, are kept as they are.
"""

from __future__ import annotations

import base64
import binascii
import math
import posixpath
import re
import urllib.parse
from typing import Any

from PIL import ImageColor

OBF_FORMAT = "open-board-0.1"
ASSUMED_LICENSE_TYPE = "private, all rights reserved"
# Fields the service owns on a board as it answers it; a file's own are kept aside.
RESERVED_BOARD_KEYS = ("id", "format", "version", "latest_version", "owner_child_id",
                       "created_at", "created_by", "origin", "source_id", "copy_of_board_id",
                       "copy_of_version", "archived_at", "import_notes", "change_reason",
                       "safeguarding_changes")
# Internal references that only the server may write (bytes it has checked and stored).
ASSET_KEY = "ext_childvoice_asset"
ASSET_URL_KEY = "ext_childvoice_url"
MAX_GRID = 12

_LICENSE_KEYS = {"type", "copyright_notice_url", "source_url", "author_name", "author_url",
                 "author_email"}
_RGB = re.compile(r"^rgba?\(\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})\s*"
                  r"(?:,\s*(\d*\.?\d+)\s*)?\)$", re.IGNORECASE | re.ASCII)
_HEX = re.compile(r"^#([0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})$", re.IGNORECASE)
_NAME = re.compile(r"^[a-z]{3,30}$", re.IGNORECASE)


class BoardProblem(Exception):
    """A board that cannot be imported; `reason` says why in words a person can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def str_id(value: Any) -> Any:
    """Numeric ids as strings (the spec says strings; real files send numbers)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value


def _alpha(text: str) -> str:
    value = max(0.0, min(1.0, float(text)))
    return f"{round(value, 3):g}"


def normalise_colour(value: Any) -> str | None:
    """`rgb(r, g, b)` / `rgba(r, g, b, a)`, or None when the value is not a colour."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    match = _RGB.match(text)
    if match:
        r, g, b, a = match.groups()
        channels = [int(r), int(g), int(b)]
        if any(c > 255 for c in channels):
            return None
        if a is None:
            return "rgb({}, {}, {})".format(*channels)
        return "rgba({}, {}, {}, {})".format(*channels, _alpha(a))
    if _HEX.match(text) or _NAME.match(text):
        try:
            rgb = ImageColor.getrgb(text)
        except ValueError:
            return None
        if len(rgb) == 4 and rgb[3] != 255:
            return "rgba({}, {}, {}, {})".format(*rgb[:3], _alpha(str(rgb[3] / 255)))
        return "rgb({}, {}, {})".format(*rgb[:3])
    return None


def assumed_license() -> dict[str, Any]:
    return {"type": ASSUMED_LICENSE_TYPE, "ext_childvoice_assumed": True}


def normalise_license(value: Any) -> dict[str, Any]:
    """The licence object kept on an image, sound or board; the spec's default when absent."""
    if not isinstance(value, dict):
        return assumed_license()
    out: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str) or item is None:
            continue
        lowered = key.lower()
        name = lowered if lowered in _LICENSE_KEYS else key
        if name in _LICENSE_KEYS and not isinstance(item, str):
            item = str(item)
        if isinstance(item, str):
            item = item.strip()
            if not item:
                continue
        out[name] = item
    if not out.get("type"):
        if len(out) == (1 if out.get("ext_childvoice_assumed") else 0):
            return assumed_license()
        out["type"] = ASSUMED_LICENSE_TYPE  # an author named but no terms: assume none
        out["ext_childvoice_assumed"] = True
    return out


def _text(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


def normalise_content(content: dict[str, Any],
                      notes: list[str] | None = None) -> dict[str, Any]:
    """Colours and licences made regular on a board's content (any door); what had to be
    left out is said in `notes` when given."""
    for button in content.get("buttons") or []:
        if not isinstance(button, dict):
            continue
        for key in ("background_color", "border_color"):
            if key in button:
                colour = normalise_colour(button[key])
                if colour is None:
                    dropped = button.pop(key)
                    if notes is not None and dropped is not None:
                        notes.append(f"button '{button.get('id')}': its {key} "
                                     f"{str(dropped)[:40]!r} is not a colour and was left out")
                else:
                    button[key] = colour
    for kind in ("images", "sounds"):
        for item in content.get(kind) or []:
            if isinstance(item, dict):
                item["license"] = normalise_license(item.get("license"))
                item.pop(ASSET_URL_KEY, None)
                if str(item.get("content_type", "")).strip().lower() == "image/svg":
                    item["content_type"] = "image/svg+xml"  # the registered name
    if "license" in content and content["license"] is not None:
        content["license"] = normalise_license(content["license"])
    return content


def _auto_grid(button_ids: list[str]) -> dict[str, Any]:
    count = max(1, len(button_ids))
    columns = min(MAX_GRID, math.ceil(math.sqrt(count)))
    rows = math.ceil(count / columns)
    cells: list[str | None] = list(button_ids) + [None] * (rows * columns - len(button_ids))
    return {"rows": rows, "columns": columns,
            "order": [cells[r * columns:(r + 1) * columns] for r in range(rows)]}


def _as_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _trim(order: list[list[Any]]) -> list[list[Any]]:
    while len(order) > 1 and all(c is None for c in order[-1]):
        order = order[:-1]
    while order and len(order[0]) > 1 and all(row[-1] is None for row in order):
        order = [row[:-1] for row in order]
    return order


def _cell_note(r: int, c: int, cell: Any) -> str:
    if isinstance(cell, (str, int)) and not isinstance(cell, bool):
        return (f"grid cell [{r}][{c}] named button '{str(cell)[:100]}', which the board does "
                "not have: the cell is left empty")
    return f"grid cell [{r}][{c}] was not a button id: the cell is left empty"


def fix_grid(grid: Any, button_ids: list[str],
             notes: list[str] | None = None) -> dict[str, Any]:
    """A grid whose order is rows x columns of known button ids (unknown ones left empty).

    A file without a usable grid gets one laid out from its buttons, in their order. Each
    fix-up is said in `notes` when given."""
    said = notes if notes is not None else []
    known = set(button_ids)
    order = grid.get("order") if isinstance(grid, dict) else None
    if not isinstance(order, list) or not any(isinstance(r, list) and r for r in order):
        said.append("it had no usable grid: one was laid out from its buttons, in their order")
        return _auto_grid(button_ids)
    if len(order) > 10 * MAX_GRID or any(isinstance(r, list) and len(r) > 10 * MAX_GRID
                                         for r in order):
        raise BoardProblem(f"its grid is far larger than {MAX_GRID} x {MAX_GRID}")
    cells = []
    for r, row in enumerate(order):
        if not isinstance(row, list):
            said.append(f"grid row {r} was not a list: it is left empty")
            cells.append([])
            continue
        kept = []
        for c, cell in enumerate(row):
            if isinstance(cell, (str, int)) and str_id(cell) in known:
                kept.append(str_id(cell))
            else:
                if cell is not None:
                    said.append(_cell_note(r, c, cell))
                kept.append(None)
        cells.append(kept)
    rows = max(_as_int(grid.get("rows")), len(cells), 1)
    columns = max(_as_int(grid.get("columns")), max(len(r) for r in cells), 1)
    if (rows, columns) != (_as_int(grid.get("rows")), _as_int(grid.get("columns"))) or \
            len(cells) != rows or any(len(row) != columns for row in cells):
        said.append(f"its grid's rows and columns did not match its cells: it is {rows} x "
                    f"{columns}, missing cells left empty")
    cells += [[] for _ in range(rows - len(cells))]
    cells = [row + [None] * (columns - len(row)) for row in cells]
    if rows > MAX_GRID or columns > MAX_GRID:
        cells = _trim(cells)
        rows, columns = len(cells), len(cells[0])
        if rows <= MAX_GRID and columns <= MAX_GRID:
            said.append(f"its grid's empty rows and columns were trimmed to fit {MAX_GRID} x "
                        f"{MAX_GRID}")
    if rows > MAX_GRID or columns > MAX_GRID:
        raise BoardProblem(f"its grid is {rows} rows x {columns} columns; boards here are "
                           f"at most {MAX_GRID} x {MAX_GRID}")
    return {"rows": rows, "columns": columns, "order": cells}


def prepare_board(raw: Any, notes: list[str] | None = None) -> dict[str, Any]:
    """A board from a file, regular enough to validate. Images and sounds keep their
    `data` / `path` / `url` / `symbol` for the importer to resolve; links keep `path`.
    Every fix-up that changes what the board shows or keeps is said in `notes`."""
    said = notes if notes is not None else []
    if not isinstance(raw, dict):
        raise BoardProblem("it is not a JSON object")
    fmt = raw.get("format")
    if fmt is not None and not (isinstance(fmt, str) and fmt.startswith("open-board-")):
        raise BoardProblem(f"its format is {str(fmt)[:40]!r}, not {OBF_FORMAT}")
    board = {k: v for k, v in raw.items() if k not in RESERVED_BOARD_KEYS}
    for key in RESERVED_BOARD_KEYS:
        if key in raw and key not in ("id", "format"):
            said.append(f"its field '{key}' was left out: the service sets that field")
    if raw.get("id") is not None:
        board["ext_childvoice_source_id"] = str(str_id(raw["id"]))[:100]
    name = _text(raw.get("name"))
    if isinstance(name, str) and name.strip():
        board["name"] = name.strip()[:200]
        if len(name.strip()) > 200:
            said.append("its name was longer than 200 characters and was cut short")
    else:
        board["name"] = "Board"
        said.append("it had no name: it is called 'Board'")
    if not isinstance(board.get("locale"), str) or not board["locale"].strip():
        board["locale"] = "en"

    buttons = raw.get("buttons")
    if not isinstance(buttons, list) or not buttons:
        raise BoardProblem("it has no buttons")
    cleaned = []
    for i, button in enumerate(buttons):
        if not isinstance(button, dict):
            raise BoardProblem(f"buttons[{i}] is not an object")
        button = dict(button)
        for key in ("id", "image_id", "sound_id"):
            if key in button:
                button[key] = str_id(button[key])
                if not isinstance(button[key], str):
                    dropped = button.pop(key)  # not an id at all (null, a list…)
                    if key != "id" and dropped is not None:
                        said.append(f"buttons[{i}]: its {key} was not an id and was left out")
        if not button.get("id"):
            raise BoardProblem(f"buttons[{i}] has no id")
        for key in ("label", "vocalization"):
            if key in button:
                button[key] = _text(button[key])
        link = button.get("load_board")
        if isinstance(link, dict):
            button["load_board"] = {k: str_id(v) if k == "id" else v for k, v in link.items()}
        elif link is not None:
            button.pop("load_board")
            said.append(f"button '{button['id']}': its load_board was not an object and was "
                        "left out")
        cleaned.append(button)
    board["buttons"] = cleaned
    ids = [b["id"] for b in cleaned]
    repeated = sorted({i for i in ids if ids.count(i) > 1}, key=str)
    if repeated:
        raise BoardProblem(f"button ids are repeated: {', '.join(map(str, repeated[:5]))}")
    board["grid"] = fix_grid(raw.get("grid"), [i for i in ids if isinstance(i, str)], said)

    for kind in ("images", "sounds"):
        items = raw.get(kind)
        items = items if isinstance(items, list) else []
        out = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise BoardProblem(f"{kind}[{i}] is not an object")
            server_refs = [k for k in (ASSET_KEY, ASSET_URL_KEY) if k in item]
            item = {k: v for k, v in item.items() if k not in (ASSET_KEY, ASSET_URL_KEY)}
            item["id"] = str_id(item.get("id"))
            if server_refs and isinstance(item["id"], str):
                said.append(f"{kind[:-1]} '{item['id']}': its {', '.join(server_refs)} was "
                            "left out (only this service writes it)")
            if not isinstance(item["id"], str) or not item["id"]:
                raise BoardProblem(f"{kind}[{i}] has no id")
            out.append(item)
        item_ids = [x["id"] for x in out]
        repeated = sorted({i for i in item_ids if item_ids.count(i) > 1}, key=str)
        if repeated:
            raise BoardProblem(f"{kind} ids are repeated: {', '.join(map(str, repeated[:5]))}")
        board[kind] = out
    return normalise_content(board, said)


def drop_dangling_refs(board: dict[str, Any], notes: list[str] | None = None) -> None:
    """Buttons naming an image or sound the board does not have keep no reference (real
    files have them; a dangling id would only confuse a tablet or a validator)."""
    said = notes if notes is not None else []
    images = {i["id"] for i in board.get("images", [])}
    sounds = {s["id"] for s in board.get("sounds", [])}
    for button in board["buttons"]:
        for key, have, what in (("image_id", images, "image"), ("sound_id", sounds, "sound")):
            if button.get(key) is not None and button[key] not in have:
                missing = button.pop(key)
                said.append(f"button '{button['id']}' named {what} '{str(missing)[:100]}', "
                            f"which the board does not have: the button has no {what}")


def package_path(value: Any) -> str | None:
    """A path inside a package, as its member is named; None when it cannot be one."""
    if not isinstance(value, str) or not value.strip() or "\x00" in value or "\\" in value:
        return None
    text = value.strip().lstrip("/")
    while text.startswith("./"):
        text = text[2:]
    if not text or ".." in text.split("/"):
        return None
    return posixpath.normpath(text)


def decode_data_uri(uri: str, max_bytes: int) -> tuple[bytes, str | None]:
    """The bytes of a `data:` URI and the type it declares (never trusted)."""
    if not isinstance(uri, str) or not uri.startswith("data:") or "," not in uri:
        raise BoardProblem("an image or sound has a `data` value that is not a data: URI")
    header, payload = uri[5:].split(",", 1)
    parts = header.split(";")
    declared = parts[0].strip().lower() or None
    if "base64" in [p.strip().lower() for p in parts[1:]]:
        if len(payload) > (max_bytes * 4) // 3 + 4:
            raise BoardProblem(f"an inline image or sound is larger than {max_bytes:,} bytes")
        try:
            data = base64.b64decode("".join(payload.split()), validate=True)
        except (binascii.Error, ValueError):
            raise BoardProblem("an inline image or sound is not valid base64") from None
    else:
        data = urllib.parse.unquote_to_bytes(payload)
    if len(data) > max_bytes:
        raise BoardProblem(f"an inline image or sound is larger than {max_bytes:,} bytes")
    if not data:
        raise BoardProblem("an inline image or sound is empty")
    return data, declared
