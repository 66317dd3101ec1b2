"""Import boards another AAC app exported: one .obf board, or an .obz package of them.

Tolerant the way real files need (see `obf`), and strict where a file could hurt us (see
`board_package`). One broken board does not fail the package: each board is imported or
skipped with the reason. A package that is hostile as a whole (a bomb, paths outside
itself, absurd member counts, archives inside) is refused with a 4xx and nothing is kept.
Images and sounds, inline (`data:`) or in the package (`path`), go through
`board_assets.clean_board_media`, so through the same checks as uploaded media; `url`s and
`symbol`s are kept as references and never fetched. Bytes the checks refuse skip their
board, unless the image or sound also has a `url` or `symbol` to fall back on (real files
carry SVG or GIF symbols that way): then the reference is kept and the board's import
notes say what was left out. Every other fix-up (a grid cell naming a missing button, a
colour that is not one, a link to a board not imported...) is said in the notes too.

Two phases, so that an import never holds a database connection (SQLite's only one)
while it decodes pictures: first every board is read, checked and its pictures and sounds
cleaned into a work folder, with no database at all; then one short transaction stores
the clean bytes, the boards and their audit events.

Importing the same file again adds nothing: a board whose source id (its id in the file)
and name match a library board imported before keeps that board's id (so links to it
hold); when what would be stored equals one of that board's versions (pictures compared
by their bytes) it is answered as `already_imported`, otherwise it becomes the board's
next version.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlmodel import select

from app.core.config import Settings
from app.core.context import Context
from app.core.errors import Problem
from app.models.board import (Board, BoardContent, BoardOrigin, BoardVersion, ImportedBoard,
                              ImportResult, SkippedBoard)
from app.services import access, audit
from app.services.media.capture import too_large
from app.services.boards.assets import (AssetRefused, CleanAsset, clean_board_media,
                                        store_clean_asset)
from app.services.boards.package import ZIP_MAGIC, MemberProblem, Package, open_package
from app.services.boards.library import (add_board, add_version, mark_changes, mark_events,
                                         stored_content, weakened_marks)
from app.services.boards.obf import (ASSET_KEY, BoardProblem, decode_data_uri, drop_dangling_refs,
                              package_path, prepare_board)
from app.storage import MediaStore, staging_dir

MANIFEST = "manifest.json"


@dataclass
class _Candidate:
    source_id: str
    path: str | None = None          # member path inside a package
    board: dict[str, Any] | None = None
    new_id: uuid.UUID = field(default_factory=uuid.uuid4)
    problem: str | None = None
    notes: list[str] = field(default_factory=list)
    from_file_id: bool = False       # the file gave the board an id (a re-import can match)
    existing: Board | None = None    # the library board this one was imported as before


@dataclass
class _Media:
    """Where an import finds bytes (the package, if any), and what it has cleaned so far
    into `workdir`: no database here."""

    settings: Settings
    workdir: Path
    package: Package | None = None
    manifest_paths: dict[str, dict[str, str]] = field(default_factory=dict)
    # "kind:path" -> what was cleaned, or why not
    stored: dict[str, dict[str, Any] | str] = field(default_factory=dict)
    cleaned: dict[str, CleanAsset] = field(default_factory=dict)  # by SHA-256


def _parse_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # ValueError: also huge ints
        raise BoardProblem(f"{what} is not valid JSON") from None


def _validation_reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{loc}: {err.get('msg', '')}" if loc else err.get("msg", ""))
    more = f" (and {exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
    return "; ".join(parts) + more


def _store(media: _Media, kind: str, data: bytes) -> dict[str, Any]:
    asset = clean_board_media(media.settings, kind, data, media.workdir)
    media.cleaned.setdefault(asset.sha256, asset)
    facts: dict[str, Any] = {ASSET_KEY: asset.sha256, "content_type": asset.content_type}
    if asset.width and asset.height:
        facts |= {"width": asset.width, "height": asset.height}
    return facts


def _from_package(media: _Media, kind: str, path: str, limit: int) -> dict[str, Any]:
    key = f"{kind}:{path}"  # the same file may be offered as an image and as a sound
    if key in media.stored:
        known = media.stored[key]
        if isinstance(known, str):
            raise BoardProblem(known)
        return known
    try:
        if media.package is None:
            raise MemberProblem(f"{path} is a file in a package, and a single .obf carries "
                                "no files")
        data = media.package.read(path, limit)
        facts = _store(media, kind, data)
    except MemberProblem as exc:
        media.stored[key] = exc.reason
        raise BoardProblem(exc.reason) from None
    except AssetRefused as exc:
        reason = f"{path} {exc.reason}"
        media.stored[key] = reason
        raise BoardProblem(reason) from None
    media.stored[key] = facts
    return facts


def _refused(label: str, item: dict[str, Any], reason: str, notes: list[str]) -> None:
    """Refused bytes skip the board, unless a url or symbol can stand in for them."""
    if not (item.get("url") or item.get("symbol")):
        raise BoardProblem(f"{label} {reason}")
    notes.append(f"{label}: its bytes were left out ({reason}); its "
                 f"{'url' if item.get('url') else 'symbol'} is kept as a reference")


def _resolve_media(media: _Media, board: dict[str, Any], notes: list[str]) -> None:
    """Bytes for every image and sound that carries them (data, then path, as the spec
    orders); `url` and `symbol` stay references."""
    s = media.settings
    for kind, singular, limit in (("images", "image", s.board_image_max_bytes),
                                  ("sounds", "sound", s.board_sound_max_bytes)):
        for item in board.get(kind, []):
            label = f"{singular} '{item['id']}'"
            facts = None
            if item.get("data") is not None:
                data, _declared = decode_data_uri(item["data"], limit)  # never trusted
                try:
                    facts = _store(media, singular, data)
                except AssetRefused as exc:
                    _refused(label, item, exc.reason, notes)
            else:
                raw_path = item.get("path")
                if raw_path is None and not (item.get("url") or item.get("symbol")):
                    raw_path = media.manifest_paths.get(kind, {}).get(str(item["id"]))
                if raw_path is not None:
                    path = package_path(raw_path)
                    if path is None:
                        raise BoardProblem(f"{label} names a path outside the package")
                    try:
                        facts = _from_package(media, singular, path, limit)
                    except BoardProblem as exc:
                        _refused(label, item, f"({exc.reason})", notes)
            item.pop("data", None)
            item.pop("path", None)
            if facts is not None:
                item.update(facts)
            elif not (item.get("url") or item.get("symbol")):
                raise BoardProblem(f"{label} has no data, path, url or symbol")
    drop_dangling_refs(board, notes)


def _prepare(media: _Media, candidate: _Candidate, raw: Any) -> None:
    try:
        board = prepare_board(raw, candidate.notes)
        if isinstance(raw, dict) and raw.get("id") is not None:
            candidate.source_id = board["ext_childvoice_source_id"]
            candidate.from_file_id = True
        _resolve_media(media, board, candidate.notes)
        BoardContent.model_validate(board)
        candidate.board = board
    except BoardProblem as exc:
        candidate.problem = exc.reason
    except ValidationError as exc:
        candidate.problem = _validation_reason(exc)


def _resolve_links(candidates: list[_Candidate]) -> None:
    """`load_board.path` (or an id) naming a board of this import becomes that board's new
    id; a link to a board not imported keeps only its name and URLs."""
    ok = [c for c in candidates if c.board is not None]
    by_path = {c.path: c.new_id for c in ok if c.path}
    by_source: dict[str, uuid.UUID | None] = {}
    for c in ok:
        by_source[c.source_id] = None if c.source_id in by_source else c.new_id
    for c in ok:
        for button in c.board["buttons"]:
            link = button.get("load_board")
            if not isinstance(link, dict):
                continue
            target = by_path.get(package_path(link.get("path")) or "")
            if target is None and link.get("id") is not None:
                target = by_source.get(str(link["id"]))
            named = link.pop("path", None) is not None or link.get("id") is not None
            link.pop("id", None)
            if target is not None:
                link["id"] = str(target)
            elif named:
                c.notes.append(f"button '{button['id']}' linked to a board that is not in "
                               "this import: only the link's name and url are kept")
            if not link:
                button.pop("load_board")


def _match_earlier_imports(ctx: Context, candidates: list[_Candidate]) -> None:
    """Find the library board each candidate was imported as before (same source id and
    name, not archived): it keeps that board's id, so links to it still hold."""
    ok = [c for c in candidates if c.board is not None and c.from_file_id]
    if not ok:
        return
    rows = ctx.db.exec(select(Board).where(
        Board.owner_child_id.is_(None), Board.archived_at.is_(None),
        Board.origin == BoardOrigin.imported.value,
        Board.source_id.in_(sorted({c.source_id for c in ok})))
        .order_by(Board.created_at.desc(), Board.id.desc())).all()
    claimed: set[uuid.UUID] = set()
    for c in ok:
        board = next((b for b in rows if b.source_id == c.source_id and
                      b.name == c.board["name"] and b.id not in claimed), None)
        if board is None:
            continue
        claimed.add(board.id)
        c.existing, c.new_id = board, board.id


def _save(ctx: Context, store: MediaStore, media: _Media,
          candidates: list[_Candidate]) -> ImportResult:
    imported, already, skipped, events = [], [], [], []
    used = {item[ASSET_KEY] for c in candidates if c.board is not None
            for kind in ("images", "sounds") for item in c.board.get(kind, [])
            if item.get(ASSET_KEY)}
    for sha in sorted(used):
        store_clean_asset(ctx.db, store, media.cleaned[sha])
    for c in candidates:
        if c.board is None:
            skipped.append(SkippedBoard(source_id=c.source_id, reason=c.problem or "unreadable"))
            continue
        try:
            data = BoardContent.model_validate(c.board)
        except ValidationError as exc:
            skipped.append(SkippedBoard(source_id=c.source_id, reason=_validation_reason(exc)))
            continue
        if c.existing is not None:
            versions = {v.version: v.content for v in ctx.db.exec(
                select(BoardVersion).where(BoardVersion.board_id == c.existing.id))}
            content = stored_content(data)
            if content in versions.values():
                already.append(ImportedBoard(id=c.existing.id, name=c.existing.name,
                                             version=c.existing.latest_version,
                                             source_id=c.source_id))
                continue
            previous = c.existing.latest_version
            changes = mark_changes(versions[previous], content)
            weakened = weakened_marks(changes)
            if weakened:
                skipped.append(SkippedBoard(source_id=c.source_id, reason=(
                    "it would remove or change the safeguarding marks of buttons "
                    f"{', '.join(weakened[:10])} of the board imported before; an admin "
                    f"changes marks with PUT /boards/{c.existing.id} and a change_reason")))
                continue
            board, version = add_version(ctx.db, c.existing, data, ctx.user.id,
                                         notes=c.notes, safeguarding_changes=changes)
            events.append(("board.import.version", None, "board", board.id))
            events += mark_events(changes)
        else:
            previous = None
            board, version = add_board(ctx.db, data, ctx.user.id, board_id=c.new_id,
                                       origin=BoardOrigin.imported, source_id=(
                                           c.source_id if c.from_file_id else None),
                                       notes=c.notes)
            events.append(("board.import", None, "board", board.id))
        imported.append(ImportedBoard(id=board.id, name=board.name, version=version.version,
                                      source_id=c.source_id, notes=c.notes,
                                      previous_version=previous))
    if not imported and not already:
        ctx.db.rollback()
        first = skipped[0].reason if skipped else "the file holds no boards"
        raise Problem(f"No board could be imported: {first}.", status=422,
                      slug="nothing-imported", title="Nothing imported",
                      skipped=[s.model_dump() for s in skipped])
    audit.record_many(ctx, events)
    ctx.db.commit()
    return ImportResult(imported=imported, already_imported=already, skipped=skipped)


def _write(ctx: Context, store: MediaStore, media: _Media,
           candidates: list[_Candidate]) -> ImportResult:
    """The second phase: one transaction, after everything slow is done."""
    _match_earlier_imports(ctx, candidates)
    _resolve_links(candidates)
    return _save(ctx, store, media, candidates)


def _import_obf(ctx: Context, settings: Settings, store: MediaStore, path: Path,
                workdir: Path) -> ImportResult:
    if path.stat().st_size > settings.board_obf_max_bytes:
        raise too_large(settings.board_obf_max_bytes)
    candidate = _Candidate(source_id="board")
    try:
        raw = _parse_json(path.read_bytes(), "The file")
    except BoardProblem:
        raise Problem("This file is neither an .obf board (JSON) nor an .obz package (zip). "
                      "Export the board again from its app.", status=415,
                      slug="unsupported-board-file", title="Not a board file") from None
    media = _Media(settings, workdir)
    _prepare(media, candidate, raw)
    return _write(ctx, store, media, [candidate])


def _manifest(package: Package, settings: Settings) -> dict[str, Any] | None:
    if not package.has(MANIFEST):
        return None
    try:
        raw = _parse_json(package.read(MANIFEST, settings.board_obf_max_bytes), MANIFEST)
    except (BoardProblem, MemberProblem) as exc:
        raise Problem(f"The package's manifest cannot be read: {exc.reason}.", status=422,
                      slug="bad-manifest", title="Board package refused") from None
    if not isinstance(raw, dict):
        raise Problem("The package's manifest.json is not a JSON object.", status=422,
                      slug="bad-manifest", title="Board package refused")
    return raw


def _package_boards(package: Package, manifest: dict[str, Any] | None) -> list[_Candidate]:
    """Every board of the package, root first: those the manifest names (even when their
    file is missing, so the answer says so) and every other .obf member."""
    found: dict[str, _Candidate] = {}

    def add(key: str | None, raw_path: Any) -> None:
        path = package_path(raw_path)
        shown = str(raw_path)[:200] if raw_path is not None else str(key)
        ref = path or f"?{shown}"
        if ref not in found:
            found[ref] = _Candidate(source_id=key or path or shown, path=path)

    if manifest is not None:
        if manifest.get("root") is not None:
            add(None, manifest.get("root"))
        paths = manifest.get("paths")
        boards = paths.get("boards") if isinstance(paths, dict) else None
        if isinstance(boards, dict):
            for key, raw_path in boards.items():
                add(str(key), raw_path)
    for name in package.names():
        if name.lower().endswith(".obf"):
            add(None, name)
    return list(found.values())


def _import_obz(ctx: Context, settings: Settings, store: MediaStore, path: Path,
                workdir: Path) -> ImportResult:
    package = open_package(path, settings)
    try:
        manifest = _manifest(package, settings)
        candidates = _package_boards(package, manifest)
        if len(candidates) > settings.board_max_boards:
            raise Problem(f"This package holds {len(candidates):,} boards; the most accepted "
                          f"is {settings.board_max_boards:,}.", status=422,
                          slug="too-many-boards", title="Board package refused")
        paths = manifest.get("paths") if manifest else None
        media = _Media(settings, workdir, package, manifest_paths={
            kind: {str(k): v for k, v in paths[kind].items()}
            for kind in ("images", "sounds")
            if isinstance(paths, dict) and isinstance(paths.get(kind), dict)})
        for c in candidates:
            if c.path is None:
                c.problem = f"{c.source_id} is not a path inside the package"
                continue
            try:
                raw = _parse_json(package.read(c.path, settings.board_obf_max_bytes), c.path)
            except (BoardProblem, MemberProblem) as exc:
                c.problem = exc.reason
                continue
            _prepare(media, c, raw)
    finally:
        package.close()
    return _write(ctx, store, media, candidates)


def authorise(ctx: Context) -> None:
    """Admins import into the library (it is theirs to change)."""
    access.require_library_admin(ctx.actor)


def import_boards(ctx: Context, settings: Settings, store: MediaStore,
                  path: Path) -> ImportResult:
    """Import the .obf or .obz at `path` (an uploaded file) into the board library."""
    access.require_library_admin(ctx.actor)
    with path.open("rb") as handle:
        head = handle.read(4)
    workdir = staging_dir(settings.media_root) / f"board-import-{uuid.uuid4().hex}"
    workdir.mkdir()
    try:
        if head in ZIP_MAGIC:
            return _import_obz(ctx, settings, store, path, workdir)
        return _import_obf(ctx, settings, store, path, workdir)
    except BaseException:
        ctx.db.rollback()
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
