"""What a crash can leave behind (staging files, blobs whose transaction never committed)
is removed by `childvoice media-sweep`; nothing in use, nothing young, is touched."""

from __future__ import annotations

import hashlib
import os
import time

from app.core.db import new_session
from app.services.media.records import sweep
from app.storage import staging_dir
from tests.media_support import files_under, media_session, sample, upload
from tests.support import World


def test_sweep_removes_only_old_orphans(world: World, app) -> None:  # noqa: ANN001
    session, tablet = media_session(world)
    [m] = upload(tablet, session["id"], sample("voice_ipad.m4a"), kind="audio").json()["media"]
    store, root = app.state.media_store, app.state.settings.media_root
    staging = staging_dir(root)
    day_ago = time.time() - 2 * 86400

    orphan_bytes = b"a blob whose transaction never committed"
    orphan = hashlib.sha256(orphan_bytes).hexdigest()
    young_bytes = b"a blob of an upload still committing"
    young = hashlib.sha256(young_bytes).hexdigest()
    for key, data in ((orphan, orphan_bytes), (young, young_bytes)):
        source = staging / f"{key}.tmp"
        source.write_bytes(data)
        store.put(key, source, content_type="application/octet-stream")
    os.utime(store.path(orphan), (day_ago, day_ago))
    os.utime(store.path(m["sha256"]), (day_ago, day_ago))  # old, but named by a row
    stale = staging / "stale.part"
    stale.write_bytes(b"half an upload")
    os.utime(stale, (day_ago, day_ago))
    fresh = staging / "fresh.part"
    fresh.write_bytes(b"an upload arriving now")

    with new_session(app.state.engine) as db:
        assert sweep(db, store, root) == {"staging": 1, "blobs": 1}
    assert not store.exists(orphan) and not stale.exists()
    assert store.exists(young) and store.exists(m["sha256"]) and fresh.exists()
    assert tablet.get(m["url"].removeprefix("/api/v1")).status_code == 200
    fresh.unlink()
    store.delete(young)
    assert all(not f.startswith("tmp/") for f in files_under(root))


def test_the_service_sweeps_by_itself(app, settings) -> None:  # noqa: ANN001
    """Nobody has to remember the sweep: the background worker runs it."""
    from app.services import background

    stale = staging_dir(settings.media_root) / "left-by-a-crash.part"
    stale.write_bytes(b"half an upload")
    day_ago = time.time() - 2 * 86400
    os.utime(stale, (day_ago, day_ago))
    assert background.run_once(app.state.engine, settings)["swept_staging"] == 1
    assert not stale.exists()
