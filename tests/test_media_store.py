"""The store's own promises, on whichever store the run uses: a blob is never overwritten
(also when two writers race past the existence check), Range reads stream exactly the
bytes asked for in chunks, and deletion removes the blob."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest

from app.storage import staging_dir
from tests.media_support import empty_store_like


@pytest.fixture
def store(app, tmp_path: Path):  # noqa: ANN001, ANN201
    return empty_store_like(app, tmp_path / "media")


def _staged(app, data: bytes) -> Path:  # noqa: ANN001
    path = staging_dir(app.state.settings.media_root) / f"blob-{uuid.uuid4().hex}"
    path.write_bytes(data)
    return path


def test_a_blob_is_created_once_and_never_overwritten(app, store) -> None:  # noqa: ANN001
    data = b"the bytes of a clean photo" * 1000
    key = hashlib.sha256(data).hexdigest()
    first = _staged(app, data)
    assert store.put(key, first, content_type="image/jpeg") is True
    assert not first.exists()  # the store consumed it
    assert store.put(key, _staged(app, b"something else"), content_type="image/jpeg") is False
    assert b"".join(store.open_range(key)) == data


def test_a_racing_writer_past_the_existence_check_is_refused(app, store,  # noqa: ANN001
                                                             monkeypatch) -> None:
    """Two processes put the same new blob: both see it missing, one writes it."""
    data = b"a recording" * 5000
    key = hashlib.sha256(data).hexdigest()
    assert store.put(key, _staged(app, data), content_type="audio/wav")
    monkeypatch.setattr(store, "exists", lambda k: False)
    if hasattr(store, "_head"):  # the S3 store's own look before its conditional put
        monkeypatch.setattr(store, "_head", lambda name: None)
    assert store.put(key, _staged(app, b"not these"), content_type="audio/wav") is False
    monkeypatch.undo()
    assert b"".join(store.open_range(key)) == data


def test_range_reads_stream_the_bytes_asked_for(app, store) -> None:  # noqa: ANN001
    data = bytes(range(256)) * 4096  # 1 MiB
    key = hashlib.sha256(data).hexdigest()
    store.put(key, _staged(app, data), content_type="application/octet-stream")
    assert store.size(key) == len(data)
    chunks = list(store.open_range(key, 100, 300_099, chunk_size=64 * 1024))
    assert b"".join(chunks) == data[100:300_100]
    assert max(len(c) for c in chunks) <= 64 * 1024 and len(chunks) >= 5
    assert b"".join(store.open_range(key, len(data) - 10)) == data[-10:]
    with pytest.raises(FileNotFoundError):
        store.open_range(hashlib.sha256(b"never stored").hexdigest())
    store.delete(key)
    assert not store.exists(key)
    with pytest.raises(FileNotFoundError):
        store.open_range(key)
