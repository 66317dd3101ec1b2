"""Where media bytes live. Routers and services only see `MediaStore`: the local disk by
default (`CHILDVOICE_MEDIA_STORE=local`), or an S3-compatible bucket (`s3`) when the API
processes share no disk."""

from __future__ import annotations

import threading

from app.core.config import Settings
from app.storage.base import MediaStore, staging_dir, sweep_staging
from app.storage.local import LocalDiskStore

__all__ = ["LocalDiskStore", "MediaStore", "make_store", "staging_dir", "sweep_staging"]

_made: dict[tuple, MediaStore] = {}
_made_lock = threading.Lock()


def make_store(settings: Settings) -> MediaStore:
    """The store the settings name, made once per process (an S3 client keeps a pool of
    connections). Making it prepares this process's staging area, which sweeps what
    crashed processes left there: a restarted server starts clean."""
    where = (settings.media_store, settings.media_root.resolve(), settings.s3_bucket,
             settings.s3_prefix, settings.s3_endpoint_url, settings.s3_region,
             settings.s3_access_key_id, settings.s3_secret_access_key)
    with _made_lock:
        store = _made.get(where)
        if store is None:
            store = _made[where] = _new_store(settings)
    staging_dir(settings.media_root)
    return store


def _new_store(settings: Settings) -> MediaStore:
    if settings.media_store == "s3":
        from app.storage.s3 import S3Store  # boto3 is imported only when it is used

        if not settings.s3_bucket:
            raise ValueError("CHILDVOICE_MEDIA_STORE=s3 needs CHILDVOICE_S3_BUCKET")
        return S3Store(bucket=settings.s3_bucket, prefix=settings.s3_prefix,
                       endpoint_url=settings.s3_endpoint_url, region=settings.s3_region,
                       access_key_id=settings.s3_access_key_id,
                       secret_access_key=settings.s3_secret_access_key)
    return LocalDiskStore(settings.media_root)
