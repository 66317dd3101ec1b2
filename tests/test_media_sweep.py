"""What a crash can leave behind (staging files, blobs whose transaction never committed)
is removed by `childvoice media-sweep` and by the service itself; nothing in use, nothing
young, is touched."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

from app.core.db import new_session
from app.services.media.records import sweep
from app.storage import staging_dir
from tests.media_support import (blob_bytes, empty_store_like, files_under, media_session,
                                 sample, upload)
from tests.support import World


def test_sweep_removes_only_old_orphans(world: World, app, tmp_path: Path) -> None:  # noqa: ANN001
    session, tablet = media_session(world)
    [m] = upload(tablet, session["id"], sample("voice_ipad.m4a"), kind="audio").json()["media"]
    # A store of its own (the run's store keeps other tests' blobs), holding the blob the
    # row names and one no row names.
    store, root = empty_store_like(app, tmp_path / "media"), tmp_path / "media"
    staging = staging_dir(root)
    named = staging / "named"
    named.write_bytes(blob_bytes(app, m["sha256"]))
    store.put(m["sha256"], named, content_type="audio/mp4")
    orphan_bytes = b"a blob whose transaction never committed"
    orphan = hashlib.sha256(orphan_bytes).hexdigest()
    source = staging / f"{orphan}.tmp"
    source.write_bytes(orphan_bytes)
    store.put(orphan, source, content_type="application/octet-stream")

    with new_session(app.state.engine) as db:  # while young, both stay
        assert sweep(db, store, root)["blobs"] == 0
    assert orphan in {key for key, _ in store.keys()}
    with new_session(app.state.engine) as db:  # every blob old enough (an S3 object's
        # LastModified cannot be set back, so the age limit is lowered instead)
        assert sweep(db, store, root, blob_age_s=-1)["blobs"] == 1
    assert not store.exists(orphan)
    assert store.exists(m["sha256"])  # old, but named by a row
    assert tablet.get(m["url"].removeprefix("/api/v1")).status_code == 200
    store.delete(m["sha256"])


def test_a_live_process_keeps_its_staging_files(app) -> None:  # noqa: ANN001
    """A file this process is using stays, however old; one outside any live process's
    area goes once nobody has touched it for two minutes."""
    root = app.state.settings.media_root
    mine = staging_dir(root) / "transcoding.m4a"
    mine.write_bytes(b"a long transcode")
    loose = root / "tmp" / "left-by-an-older-version.part"
    loose.write_bytes(b"half an upload")
    fresh = root / "tmp" / "fresh.part"
    fresh.write_bytes(b"just written")
    three_minutes_ago = time.time() - 180
    for path in (mine, loose):
        os.utime(path, (three_minutes_ago, three_minutes_ago))
    with new_session(app.state.engine) as db:
        assert sweep(db, app.state.media_store, root)["staging"] == 1
    assert mine.exists() and fresh.exists() and not loose.exists()
    mine.unlink()
    fresh.unlink()


def _crashed_process_leaves(root: Path) -> Path:
    """A process that stages a file and is then killed (SIGKILL): what it leaves."""
    code = ("import os, signal, sys; from pathlib import Path; "
            "from app.storage import staging_dir; "
            "area = staging_dir(Path(sys.argv[1])); "
            "(area / 'tus-assembly').write_bytes(b'x' * 1000); print(area, flush=True); "
            "os.kill(os.getpid(), signal.SIGKILL)")
    run = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True,
                         text=True, cwd=Path(__file__).parent.parent, timeout=60)
    area = Path(run.stdout.strip())
    assert (area / "tus-assembly").exists(), run.stderr
    return area


def test_what_a_killed_process_left_is_swept_at_once(app, settings) -> None:  # noqa: ANN001
    """No waiting a day: the service's housekeeping removes a dead process's staging area
    the next time it runs (every upload_cleanup_seconds, two minutes by default)."""
    from app.services.media.uploads import UploadCleaner

    area = _crashed_process_leaves(settings.media_root)
    UploadCleaner(app.state.engine, settings).run_once()
    assert not area.exists() and not Path(f"{area}.lock").exists()
    assert staging_dir(settings.media_root).is_dir()  # this live process's area stays


def test_a_starting_server_sweeps_what_a_crash_left(tmp_path: Path, settings) -> None:  # noqa: ANN001
    from app.main import create_app

    root = tmp_path / "media"
    area = _crashed_process_leaves(root)
    create_app(settings.model_copy(update={"media_root": root})).state.engine.dispose()
    assert not area.exists()
    assert all(name.startswith("tmp/p") for name in files_under(root))
