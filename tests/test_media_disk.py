"""What the service leaves on disk is its own user's alone: media files, upload parts and
staging files 0600, their directories 0700, and the SQLite database likewise."""

from __future__ import annotations

import stat
import uuid
from pathlib import Path

from sqlmodel import select

from app import cli
from app.core.config import Settings
from app.core.db import new_session
from app.models.media import MediaFile
from app.storage import LocalDiskStore, staging_dir
from tests.media_support import media_session, sample, upload
from tests.support import World
from tests.sync_support import Tus, enroll


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _assert_owner_only(paths: list[Path]) -> None:
    wrong = {str(p): oct(_mode(p)) for p in paths
             if _mode(p) != (0o700 if p.is_dir() else 0o600)}
    assert not wrong, f"readable by others: {wrong}"


def test_media_files_and_their_directories_are_owner_only(world: World, app) -> None:  # noqa: ANN001
    session, tablet = media_session(world)
    media_ids = [upload(tablet, session["id"], sample(name), kind=kind).json()["media"][0]["id"]
                 for name, kind in (("photo_gps_rotated.jpg", "photo"),
                                    ("voice_ipad.m4a", "audio"))]
    tus = Tus(world.client, world.worker.token, enroll(world.worker))
    data = sample("voice.wav")
    url = tus.create(len(data), tus.meta("audio", session_id=session["id"]))
    assert tus.patch(url, 0, data[:4096], "sha256").status_code == 204  # a part is kept

    root = app.state.settings.media_root
    paths = [root, root / "tmp", staging_dir(root)]
    paths += [p for p in (root / "tmp").iterdir() if p.name.endswith(".lock")]
    store = app.state.media_store
    if isinstance(store, LocalDiskStore):  # on S3 the bytes are in the bucket, not here
        with new_session(app.state.engine) as db:
            keys = db.exec(select(MediaFile.sha256).where(
                MediaFile.media_id.in_([uuid.UUID(i) for i in media_ids]))).all()
        assert len(keys) == 4  # photo, thumbnail; recording, playback copy
        for key in keys:
            blob = store.path(key)
            paths += [blob, blob.parent, blob.parent.parent, root / "objects"]
        upload_dir = root / "uploads" / uuid.UUID(url.rsplit("/", 1)[-1]).hex
        paths += [root / "uploads", upload_dir, *upload_dir.iterdir()]
    _assert_owner_only(paths)


def test_the_sqlite_database_is_owner_only(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "state" / "data", media_root=tmp_path / "media",
                        _env_file=None)
    assert cli.main(["migrate"], settings=settings) == 0
    data_dir = settings.data_dir
    database = data_dir / "childvoice.db"
    settings.resolved_secret_key()
    _assert_owner_only([data_dir.parent, data_dir, database, data_dir / "secret_key",
                        *data_dir.glob("childvoice.db-*")])
