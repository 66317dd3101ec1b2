"""Boards out: an .obf (one board, bytes inline as data: URIs) or an .obz package (the board
and every board it links to that the caller may see, bytes as files), in the shape the
OBF rules ask for: `format`, string ids, a manifest with `root` and `paths` for boards,
images and sounds, `load_board.path` links, and a licence on every image and sound.

Also the attributions a document built from a board must show.
"""

from __future__ import annotations

import base64
import copy
import json
import uuid
import zipfile
from collections import deque
from pathlib import Path
from typing import Any

from app.core.config import Settings
from app.core.context import Context
from app.core.errors import NotFound
from app.models.board import AttributionItem, AttributionOut, Board, BoardVersion, License
from app.services.boards import library as board_service
from app.services.boards.assets import asset_by_sha, extension_for, read_blob
from app.services.boards.obf import (ASSET_KEY, ASSET_URL_KEY, ASSUMED_LICENSE_TYPE, OBF_FORMAT,
                              RESERVED_BOARD_KEYS, normalise_license)
from app.storage import MediaStore, staging_dir

_NO_ATTRIBUTION = ("public domain", "cc0", "cc-0", "publicdomain")


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        return None


def _board_json(board: Board, content: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"format": OBF_FORMAT, "id": str(board.id)}
    # A version stored before server fields were refused in a body exports without them.
    out.update(copy.deepcopy({k: v for k, v in content.items() if k not in RESERVED_BOARD_KEYS}))
    for kind in ("images", "sounds"):
        for item in out.get(kind, []):
            item["license"] = normalise_license(item.get("license"))
    return out


def _media_item(store: MediaStore, ctx: Context, item: dict[str, Any],
                embed: bool, files: dict[str, str] | None, folder: str) -> None:
    """Point an image or sound at its bytes: inline, or a file in the package."""
    sha = item.pop(ASSET_KEY, None)
    item.pop(ASSET_URL_KEY, None)
    if not sha:
        return
    asset = asset_by_sha(ctx.db, sha)
    if asset is None or not store.exists(sha):
        return  # bytes gone: the url or symbol, if any, still stands
    item["content_type"] = asset.content_type
    if embed:
        encoded = base64.b64encode(read_blob(store, sha)).decode("ascii")
        item["data"] = f"data:{asset.content_type};base64,{encoded}"
    elif files is not None:
        name = f"{folder}/{sha}.{extension_for(asset.content_type)}"
        files[name] = sha
        item["path"] = name


def export_obf(ctx: Context, store: MediaStore, board_id: uuid.UUID,
               version: int | None = None) -> dict[str, Any]:
    board = board_service.visible_board(ctx, board_id)
    found = board_service.version_of(ctx, board, version)
    board_service.record_child_read(ctx, board, "board.export")
    out = _board_json(board, found.content)
    for kind in ("images", "sounds"):
        for item in out.get(kind, []):
            _media_item(store, ctx, item, True, None, kind)
    return out


def _linked_boards(ctx: Context, root: Board, root_version: BoardVersion,
                   limit: int) -> list[tuple[Board, BoardVersion]]:
    """The root and every board reachable by its links that the caller may see."""
    chosen = [(root, root_version)]
    seen = {root.id}
    queue = deque([root_version.content])
    while queue and len(chosen) < limit:
        content = queue.popleft()
        for button in content.get("buttons", []):
            target = _uuid((button.get("load_board") or {}).get("id"))
            if target is None or target in seen:
                continue
            seen.add(target)
            try:
                board = board_service.visible_board(ctx, target)
            except NotFound:
                continue
            version = board_service.get_version(ctx.db, board.id, board.latest_version)
            if version is None or len(chosen) >= limit:
                continue
            chosen.append((board, version))
            queue.append(version.content)
    return chosen


def _unique_ids(boards: list[dict[str, Any]]) -> None:
    """Image and sound ids unique across the package (the spec asks it of an .obz)."""
    for kind, ref in (("images", "image_id"), ("sounds", "sound_id")):
        used: set[str] = set()
        for board in boards:
            renamed: dict[str, str] = {}
            for item in board.get(kind, []):
                new, n = item["id"], 1
                while new in used:
                    n += 1
                    new = f"{item['id']}-{n}"
                used.add(new)
                if new != item["id"]:
                    renamed[item["id"]] = new
                    item["id"] = new
            for button in board.get("buttons", []):
                if button.get(ref) in renamed:
                    button[ref] = renamed[button[ref]]


def export_obz(ctx: Context, settings: Settings, store: MediaStore, board_id: uuid.UUID,
               version: int | None = None) -> Path:
    """Write the package into the media root's staging area; the caller deletes it."""
    root = board_service.visible_board(ctx, board_id)
    root_version = board_service.version_of(ctx, root, version)
    chosen = _linked_boards(ctx, root, root_version, settings.board_max_boards)
    paths = {str(b.id): f"boards/{b.id}.obf" for b, _ in chosen}
    boards = [_board_json(b, v.content) for b, v in chosen]
    _unique_ids(boards)
    files: dict[str, str] = {}
    manifest_media: dict[str, dict[str, str]] = {"images": {}, "sounds": {}}
    for out in boards:
        for kind in ("images", "sounds"):
            for item in out.get(kind, []):
                _media_item(store, ctx, item, False, files, kind)
                if item.get("path"):
                    manifest_media[kind][item["id"]] = item["path"]
        for button in out.get("buttons", []):
            link = button.get("load_board")
            if isinstance(link, dict) and str(link.get("id")) in paths:
                link["path"] = paths[str(link["id"])]
    manifest = {"format": OBF_FORMAT, "root": paths[str(root.id)],
                "paths": {"boards": paths, **manifest_media}}

    target = staging_dir(settings.media_root) / f"{uuid.uuid4().hex}.obz"
    try:
        with zipfile.ZipFile(target, "w") as zf:
            zf.writestr("manifest.json", json.dumps(manifest, indent=2),
                        compress_type=zipfile.ZIP_DEFLATED)
            for (board, _), out in zip(chosen, boards):
                zf.writestr(paths[str(board.id)], json.dumps(out, ensure_ascii=False),
                            compress_type=zipfile.ZIP_DEFLATED)
            for name, sha in files.items():
                with zf.open(zipfile.ZipInfo(name), "w") as member:  # stored: already packed
                    for chunk in store.open_range(sha):
                        member.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    for board, _ in chosen:
        board_service.record_child_read(ctx, board, "board.export")
    return target


def _requires_attribution(license: dict[str, Any]) -> bool:
    kind = str(license.get("type", "")).lower()
    return not any(word in kind for word in _NO_ATTRIBUTION)


def _attribution_text(license: dict[str, Any], what: str) -> str:
    if license.get("ext_childvoice_assumed"):
        return (f"{what}: no licence was given, so it is {ASSUMED_LICENSE_TYPE}; ask its "
                "owner before using it in a shared document")
    parts = [f"{what}: {license.get('author_name') or 'unknown author'}",
             str(license["type"])]
    if license.get("source_url"):
        parts.append(f"source {license['source_url']}")
    if license.get("copyright_notice_url"):
        parts.append(f"licence {license['copyright_notice_url']}")
    return ", ".join(parts)


def attribution(ctx: Context, board_id: uuid.UUID, version: int | None = None) -> AttributionOut:
    board, found = board_service.readable_version(
        ctx, board_id, version or _latest(ctx, board_id))
    board_service.record_child_read(ctx, board, "board.attribution")
    content = found.content
    groups: dict[str, AttributionItem] = {}

    def key_of(license: dict[str, Any]) -> str:
        return json.dumps({k: license.get(k) for k in ("type", "author_name", "author_url",
                                                       "source_url", "copyright_notice_url",
                                                       "ext_childvoice_assumed")},
                          sort_keys=True)

    for kind in ("images", "sounds"):
        for item in content.get(kind, []):
            license = normalise_license(item.get("license"))
            key = key_of(license)
            if key not in groups:
                groups[key] = AttributionItem(
                    text="", license=License.model_validate(license),
                    requires_attribution=_requires_attribution(license),
                    assumed=bool(license.get("ext_childvoice_assumed")))
            getattr(groups[key], kind).append(item["id"])
    items = []
    if isinstance(content.get("license"), dict):
        license = normalise_license(content["license"])
        items.append(AttributionItem(
            text=_attribution_text(license, "This board"), license=License.model_validate(license),
            requires_attribution=_requires_attribution(license),
            assumed=bool(license.get("ext_childvoice_assumed")), board=True))
    for item in groups.values():
        what = []
        if item.images:
            what.append(("Picture " if len(item.images) == 1 else "Pictures ") +
                        ", ".join(item.images))
        if item.sounds:
            what.append(("Sound " if len(item.sounds) == 1 else "Sounds ") +
                        ", ".join(item.sounds))
        item.text = _attribution_text(item.license.model_dump(exclude_none=True),
                                      " and ".join(what))
        items.append(item)
    return AttributionOut(board_id=board.id, version=found.version, name=board.name,
                          items=items)


def _latest(ctx: Context, board_id: uuid.UUID) -> int:
    if ctx.actor.capture_session is not None:
        pinned = [r["version"] for r in ctx.actor.capture_session.boards
                  if r["board_id"] == str(board_id)]
        if not pinned:
            raise NotFound(board_service.BOARD_NOT_FOUND)
        return pinned[0]
    return board_service.visible_board(ctx, board_id).latest_version
