"""Helpers for the board tests: sample files, packages made on the fly, the OBF rules an
export must pass, and a comparable view of a board."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

from tests.support import Api

SAMPLES = Path(__file__).parent / "samples" / "obf"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def import_bytes(api: Api, data: bytes, filename: str = "boards.obz"):  # noqa: ANN201
    return api.post("/boards/import", files={"file": (filename, data,
                                                      "application/octet-stream")})


def make_zip(members: dict[str, bytes | str | dict], *,
             compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as zf:
        for name, data in members.items():
            if isinstance(data, dict):
                data = json.dumps(data)
            zf.writestr(name, data)
    return out.getvalue()


def simple_board(board_id: str, labels: list[str], **extra: Any) -> dict:
    return {"format": "open-board-0.1", "id": board_id, "name": f"Board {board_id}",
            "locale": "en", "buttons": [{"id": str(i), "label": label}
                                        for i, label in enumerate(labels)],
            "grid": {"rows": 1, "columns": len(labels),
                     "order": [[str(i) for i in range(len(labels))]]}, **extra}


def manifest(boards: dict[str, str], root: str | None = None, **paths: dict) -> dict:
    return {"format": "open-board-0.1", "root": root or next(iter(boards.values())),
            "paths": {"boards": boards, **paths}}


def _ids_are_strings(board: dict, where: str) -> list[str]:
    bad = []
    if not isinstance(board.get("id"), str):
        bad.append(f"{where}: board id")
    for kind in ("buttons", "images", "sounds"):
        for item in board.get(kind, []):
            if not isinstance(item.get("id"), str):
                bad.append(f"{where}: {kind} id {item.get('id')!r}")
    for button in board.get("buttons", []):
        for key in ("image_id", "sound_id"):
            if key in button and not isinstance(button[key], str):
                bad.append(f"{where}: {key}")
    for row in board["grid"]["order"]:
        bad += [f"{where}: grid cell {c!r}" for c in row if c is not None and
                not isinstance(c, str)]
    return bad


def obf_rule_breaks(board: dict, where: str = "board") -> list[str]:
    """What in one board breaks the OBF rules we promise an export keeps."""
    bad = []
    if board.get("format") != "open-board-0.1":
        bad.append(f"{where}: format")
    bad += _ids_are_strings(board, where)
    buttons = {b["id"] for b in board["buttons"]}
    grid = board["grid"]
    if len(grid["order"]) != grid["rows"] or any(len(r) != grid["columns"]
                                                 for r in grid["order"]):
        bad.append(f"{where}: grid shape")
    bad += [f"{where}: grid names {c}" for row in grid["order"] for c in row
            if c is not None and c not in buttons]
    images = {i["id"] for i in board.get("images", [])}
    sounds = {s["id"] for s in board.get("sounds", [])}
    for button in board["buttons"]:
        if "image_id" in button and button["image_id"] not in images:
            bad.append(f"{where}: button {button['id']} names missing image")
        if "sound_id" in button and button["sound_id"] not in sounds:
            bad.append(f"{where}: button {button['id']} names missing sound")
        for key in ("background_color", "border_color"):
            if key in button and not str(button[key]).startswith(("rgb(", "rgba(")):
                bad.append(f"{where}: {key} {button[key]}")
    for kind in ("images", "sounds"):
        for item in board.get(kind, []):
            if not (isinstance(item.get("license"), dict) and item["license"].get("type")):
                bad.append(f"{where}: {kind} {item['id']} has no licence")
            if not any(item.get(k) for k in ("data", "path", "url", "symbol")):
                bad.append(f"{where}: {kind} {item['id']} has no data, path, url or symbol")
            if any(k.startswith("ext_childvoice_asset") or k == "ext_childvoice_url"
                   for k in item):
                bad.append(f"{where}: {kind} {item['id']} leaks a server reference")
    return bad


def obz_rule_breaks(data: bytes) -> list[str]:
    """The OBF rules for a package: manifest root and paths, every path present, links by
    path, ids of images and sounds unique across the package, plus each board's rules."""
    bad = []
    zf = zipfile.ZipFile(io.BytesIO(data))
    names = set(zf.namelist())
    man = json.loads(zf.read("manifest.json"))
    if man.get("format") != "open-board-0.1":
        bad.append("manifest format")
    if man.get("root") not in names:
        bad.append("manifest root missing")
    paths = man.get("paths", {})
    for kind in ("boards", "images", "sounds"):
        for key, path in paths.get(kind, {}).items():
            if path not in names:
                bad.append(f"manifest {kind} {key} -> {path} missing")
    seen: dict[str, set] = {"images": set(), "sounds": set()}
    board_paths = set(paths.get("boards", {}).values())
    for path in board_paths:
        board = json.loads(zf.read(path))
        bad += obf_rule_breaks(board, path)
        for kind in ("images", "sounds"):
            for item in board.get(kind, []):
                if item["id"] in seen[kind]:
                    bad.append(f"{path}: {kind} id {item['id']} not unique in the package")
                seen[kind].add(item["id"])
                if item.get("path") and paths.get(kind, {}).get(item["id"]) != item["path"]:
                    bad.append(f"{path}: {kind} {item['id']} path not in the manifest")
        for button in board["buttons"]:
            link = button.get("load_board")
            if link and link.get("path") and link["path"] not in board_paths:
                bad.append(f"{path}: link to {link['path']} not in the package")
    return bad


def board_view(api: Api, board_id: str, depth: int = 0) -> dict:
    """What a child would see of a board, free of ids that change on import: names,
    layout by label, each button's picture (bytes hash, url or symbol) and licence, its
    sound, its link (to the linked board's name)."""
    board = api.get(f"/boards/{board_id}").json()
    images = {i["id"]: i for i in board["images"]}
    sounds = {s["id"]: s for s in board["sounds"]}

    def media(item: dict | None) -> Any:
        if item is None:
            return None
        return (item.get("ext_childvoice_asset") or item.get("url") or
                json.dumps(item.get("symbol"), sort_keys=True),
                item["license"].get("type"), item["license"].get("author_name"))

    by_id = {b["id"]: b for b in board["buttons"]}
    buttons = []
    for b in board["buttons"]:
        link = b.get("load_board") or {}
        target = None
        if link.get("id"):
            r = api.get(f"/boards/{link['id']}")
            target = r.json()["name"] if r.status_code == 200 else "?"
        ext = {k: v for k, v in b.items() if k.startswith("ext_") and v is not None}
        buttons.append((b.get("label"), b.get("vocalization"), b.get("background_color"),
                        b.get("border_color"), b.get("action"), b.get("hidden"),
                        media(images.get(b.get("image_id"))),
                        media(sounds.get(b.get("sound_id"))), target, link.get("url"),
                        json.dumps(ext, sort_keys=True)))
    layout = [[by_id[c].get("label") if c else None for c in row]
              for row in board["grid"]["order"]]
    return {"name": board["name"], "locale": board["locale"], "layout": layout,
            "buttons": sorted(buttons, key=json.dumps),
            "images": sorted(json.dumps(media(i)) for i in board["images"]),
            "sounds": sorted(json.dumps(media(s)) for s in board["sounds"]),
            "license": board.get("license")}
